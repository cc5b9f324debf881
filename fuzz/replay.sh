#!/usr/bin/env bash
# Runs a fuzz target once on every file under the given directories (seed corpus,
# regressions): each finding saved there stays a test. Reads the files, writes nothing.
# usage: replay.sh TARGET DIR...
set -uo pipefail
target=$1; shift
name=$(basename "$target")
files=()
for dir in "$@"; do
    [ -d "$dir" ] || continue
    while IFS= read -r -d '' f; do files+=("$f"); done \
        < <(find "$dir" -type f ! -name '.*' ! -name '*.md' -print0 | sort -z)
done
if [ ${#files[@]} -eq 0 ]; then
    echo "no inputs under $*"
    exit 77 # meson: skipped
fi
# Given files (not directories), libFuzzer runs each once and does not fuzz. Its default
# failure status, 77, would read as "skipped" to meson.
if "$target" -error_exitcode=1 -timeout=10 "${files[@]}"; then
    echo "$name: replayed ${#files[@]} inputs, no failure"
    exit 0
fi
# libFuzzer stops at the first failure: name every failing input, each with its first
# error line, so that one known bug does not hide the others.
failed=0
for f in "${files[@]}"; do
    if ! out=$("$target" -error_exitcode=1 -timeout=10 "$f" 2>&1); then
        failed=$((failed + 1))
        why=$(grep -m1 -E 'runtime error|ERROR: |ALARM|^fuzz_[a-z]+: ' <<<"$out")
        echo "FAILED: $f: ${why:-exit status non-zero}"
    fi
done
echo "$name: $failed of ${#files[@]} inputs fail"
exit 1
