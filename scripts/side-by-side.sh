#!/bin/bash
# Soma beside JAX and PyTorch on the BENCHMARKS.md workloads, each peer right before and after
# Soma's run of the same workload (ms/step medians, 2 threads), plus the fmnist peak RSS.
#   PEERS=/path/with/peers-jax,peers-torch venvs  scripts/side-by-side.sh [SOMA]
# Build SOMA with `swift build -c release` after touching all sources (see README's notes).
set -uo pipefail
SOMA=$(realpath "${1:-.build/release/soma}")
PEERS=${PEERS:?set PEERS to the directory holding the peers-jax and peers-torch venvs}
# PEER_SCRIPTS: the directory with the peers' timing scripts (jax_peer.py, torch_peers.py,
# fmnist_peers.py), which implement docs/Benchmarks.md's workloads in JAX and PyTorch.
cd "${PEER_SCRIPTS:?set PEER_SCRIPTS to the directory holding jax_peer.py and torch_peers.py}"
echo "== $(date)"
for w in mlp-small mlp-single-step mlp-deep; do
  "$PEERS/peers-jax/bin/python" jax_peer.py "$w" 2>&1 | tail -1
  "$SOMA" bench "$w" --seconds 5 --json
  THREADS=2 "$PEERS/peers-torch/bin/python" torch_peers.py "$w" 2>&1 | tail -3
done
"$PEERS/peers-jax/bin/python" fmnist_peers.py jax 20 2>&1 | tail -1
"$SOMA" bench fmnist-spytorch --seconds 5 --json
"$PEERS/peers-torch/bin/python" fmnist_peers.py torch 10 2>&1 | tail -1
/usr/bin/time -v "$SOMA" bench fmnist-spytorch --seconds 3 2>&1 | grep -E "Maximum resident|ms"
echo "== $(date)"
