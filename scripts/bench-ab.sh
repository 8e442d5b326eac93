#!/bin/bash
# Paired A/B timing of two soma binaries on one workload, interleaved so machine noise hits both:
#   scripts/bench-ab.sh OLD_SOMA NEW_SOMA WORKLOAD [PAIRS]
# Prints min and median of each side's per-run medians and the median of the paired ratios.
set -euo pipefail
OLD=$1; NEW=$2; W=$3; N=${4:-6}
o=(); n=()
ms() { "$1" bench "$W" --seconds 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])'; }
for _ in $(seq "$N"); do o+=("$(ms "$OLD")"); n+=("$(ms "$NEW")"); done
python3 - "$W" "${o[*]}" "${n[*]}" <<'P'
import sys, statistics as st
w = sys.argv[1]; o = list(map(float, sys.argv[2].split())); n = list(map(float, sys.argv[3].split()))
print(f"{w}: old min {min(o):.2f} med {st.median(o):.2f} | new min {min(n):.2f} "
      f"med {st.median(n):.2f} | paired ratio med {st.median([b / a for a, b in zip(o, n)]):.3f}")
P
