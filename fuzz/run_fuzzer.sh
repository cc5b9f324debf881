#!/usr/bin/env bash
# Fuzzes one target for a bounded time, starting from a copy of its seed corpus and
# regressions, so that the repository is never written. New inputs and crash artifacts go
# to WORKDIR (in the build directory). The libFuzzer statistics end up in the test log.
# usage: run_fuzzer.sh TARGET WORKDIR SECONDS CORPUS_DIR...
# FUZZ_SECONDS in the environment overrides SECONDS; FUZZ_SEED=N fixes libFuzzer's seed
# (CI does, so that its verdict is about the change and not the dice; unset, each run
# explores differently, which is what longer hunts by hand want).
set -euo pipefail
target=$1 work=$2 seconds=${FUZZ_SECONDS:-$3}
shift 3
name=$(basename "$target")
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
for dir in "$@"; do
    [ -d "$dir" ] && find "$dir" -type f ! -name '.*' ! -name '*.md' -exec cp {} "$work/corpus/" \;
done
seeds=$(find "$work/corpus" -type f | wc -l)
seed=()
[ -n "${FUZZ_SEED:-}" ] && seed=(-seed="$FUZZ_SEED")
set +e
# -error_exitcode: libFuzzer's default, 77, would read as "skipped" to meson.
"$target" "${seed[@]}" -max_total_time="$seconds" -timeout=10 -error_exitcode=1 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/corpus" 2>&1 | tee "$work/log" | tail -n 150
rc=${PIPESTATUS[0]}
set -e
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
now=$(find "$work/corpus" -type f | wc -l)
echo "$name: $seconds s, ${runs:-?} executions, ${rate:-?} exec/s, corpus $seeds -> $now, exit $rc"
if [ "$rc" -ne 0 ]; then
    echo "$name: FAILED; the input is in $work/artifacts/:"
    ls -l "$work/artifacts/"
    echo "Save it as fuzz/regressions/$name/<what-it-shows> so the replay test keeps it."
fi
exit "$rc"
