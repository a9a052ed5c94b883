#!/usr/bin/env bash
# Runs the matrix of README.md: river's defaults and the tuned setting,
# modes noop and run, unpaced and offered 1,000 jobs/s, 3 times each. Each
# measurement holds /tmp/hushflow-bench.lock so it never overlaps another
# benchmark on this machine. Prints one RESULT line per measurement; the
# full outputs go to $OUT (default: a new temporary directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
OUT=${OUT:-$(mktemp -d)}
go build -o "$OUT/riverbench" .
echo "outputs in $OUT" >&2
for rep in 1 2 3; do
  for cfg in default tuned; do
    if [ "$cfg" = default ]; then
      flags=(-workers 100)
    else
      flags=(-workers 64 -fetch-cooldown 10ms -fetch-poll-interval 100ms)
    fi
    for mode in noop run; do
      for rate in 0 1000; do
        f="$OUT/${cfg}_${mode}_${rate}_${rep}.txt"
        flock /tmp/hushflow-bench.lock "$OUT/riverbench" -mode "$mode" -rate "$rate" -label "$cfg" "${flags[@]}" "$@" >"$f" 2>&1 ||
          { echo "FAILED: $f" >&2; cat "$f" >&2; exit 1; }
        grep RESULT "$f"
      done
    done
  done
done
