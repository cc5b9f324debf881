#!/usr/bin/env bash
# Runs a fuzz target once on every file under the given directories (seed corpus,
# regressions): each finding saved there stays a test. Reads the files, writes nothing.
# usage: replay.sh TARGET DIR...
set -euo pipefail
target=$1; shift
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
"$target" -error_exitcode=1 "${files[@]}"
echo "$(basename "$target"): replayed ${#files[@]} inputs, no failure"
