#!/bin/bash
# Soma vs JAX on the mlp workloads over several interleaved rounds (JAX, Soma, JAX, Soma, …),
# with the ratio of each Soma run to the mean of the JAX runs on either side of it, and the
# median of those ratios. One side-by-side run swings by ±10-20 % on this machine; the
# median over rounds says more reliably which side of a target a ratio is on.
#   PEERS=/path/with/peers-jax venv  scripts/jax-rounds.sh [SOMA] [ROUNDS]
set -uo pipefail
SOMA=$(realpath "${1:-.build/release/soma}")
ROUNDS=${2:-5}
PEERS=${PEERS:?set PEERS to the directory holding the peers-jax and peers-torch venvs}
# PEER_SCRIPTS: the directory with the peers' timing scripts (jax_peer.py, torch_peers.py,
# fmnist_peers.py), which implement docs/Benchmarks.md's workloads in JAX and PyTorch.
cd "${PEER_SCRIPTS:?set PEER_SCRIPTS to the directory holding jax_peer.py and torch_peers.py}"
echo "== $(date)"
jax() { "$PEERS/peers-jax/bin/python" jax_peer.py "$1" 2>&1 | tail -1 | awk '{print $3}'; }
soma() { "$SOMA" bench "$1" --seconds 5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])'; }
for w in ${WORKLOADS:-mlp-small mlp-single-step mlp-deep}; do
  j=("$(jax "$w")"); s=()
  for _ in $(seq "$ROUNDS"); do s+=("$(soma "$w")"); j+=("$(jax "$w")"); done
  python3 - "$w" "${j[*]}" "${s[*]}" <<'P'
import sys, statistics as st
w = sys.argv[1]; j = list(map(float, sys.argv[2].split())); s = list(map(float, sys.argv[3].split()))
r = [s[k] / ((j[k] + j[k + 1]) / 2) for k in range(len(s))]
print(f"{w}: jax {' '.join(f'{x:.2f}' for x in j)} | soma {' '.join(f'{x:.2f}' for x in s)} | "
      f"ratios {' '.join(f'{x:.3f}' for x in r)} | median ratio {st.median(r):.3f}")
P
done
echo "== $(date)"
