#!/bin/bash
# `soma train`'s median step against `soma bench fmnist-spytorch` with the same surrogate,
# interleaved in separate processes (train one epoch, then the benchmark, PAIRS times):
#   scripts/train-vs-bench.sh [SOMA] [PAIRS] [SURROGATE]
# SURROGATE is passed to both (`soma train --surrogate`, `soma bench --surrogate`); without it
# train runs its default (S2NN) and the benchmark runs S2NN too. Prints each pair and the
# median of train/bench.
set -euo pipefail
SOMA=$(realpath "${1:-.build/release/soma}")
PAIRS=${2:-6}
SUR=${3:-S2NN}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
t=(); b=()
for k in $(seq "$PAIRS"); do
  if [ -n "${3:-}" ]; then extra=(--surrogate "$SUR"); else extra=(); fi
  "$SOMA" train --epochs 1 --out "$OUT/run$k" "${extra[@]}" ${TRAIN_ARGS:-} > "$OUT/train$k.log" 2>&1
  t+=("$(grep -o 'median step [0-9.]*' "$OUT/train$k.log" | tail -1 | awk '{print $3}')")
  b+=("$("$SOMA" bench fmnist-spytorch --seconds 3 --surrogate "$SUR" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])')")
done
python3 - "$SUR" "${t[*]}" "${b[*]}" <<'P'
import sys, statistics as st
s = sys.argv[1]; t = list(map(float, sys.argv[2].split())); b = list(map(float, sys.argv[3].split()))
r = [x / y for x, y in zip(t, b)]
print(f"surrogate {s}: train {' '.join(f'{x:.2f}' for x in t)} | bench {' '.join(f'{x:.2f}' for x in b)} | "
      f"train/bench {' '.join(f'{x:.3f}' for x in r)} | median {st.median(r):.3f}")
P
