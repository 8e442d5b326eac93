#!/usr/bin/env bash
# Data-parallel training on this machine, measured: one process with 2 threads against
# `mpirun -np 2` with one thread each, for the default network (spytorch) and for --model csnn,
# and for csnn also with its gradients (3.2 MB at 32 channels) reduced in one buffer after the
# backward pass instead of in buckets during it. Prints, per setting, the training seconds per
# epoch (the mean over the epochs; the test evaluation after each is not counted), the median
# step and the share of the training time the processes were blocked in the gradients'
# allreduce (from the epoch lines of `soma train`). Run it on a quiet machine: the processes
# share its cores with nothing else.
#
#   scripts/mpi-scaling.sh                                  # full epochs, release build
#   scripts/mpi-scaling.sh --images 6400 --epochs 2         # the first 6400 training images
#   scripts/mpi-scaling.sh --channels 16 --models csnn      # a narrower csnn only
#   CONFIG=debug SCRATCH=/tmp/b scripts/mpi-scaling.sh --images 256 --test-images 64 --epochs 1
#
# Options: --images N (training images, default all 60000), --test-images N (default all
# 10000), --epochs E (default 1), --channels C (csnn, default 32), --hidden H (spytorch, default
# 100), --models "spytorch csnn" (default both). Environment: CONFIG (release, or debug),
# SCRATCH (the build directory, default .build), FASHION_MNIST (the data directory, default
# /usr/share/datasets/fashion-mnist). Any other arguments go to every `soma train`.
set -uo pipefail
cd "$(dirname "$0")/.."
images=60000
test_images=10000
epochs=1
channels=32
hidden=100
models="spytorch csnn"
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --images) images=$2; shift 2 ;;
    --test-images) test_images=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --channels) channels=$2; shift 2 ;;
    --hidden) hidden=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
config=${CONFIG:-release}
scratch=${SCRATCH:-.build}
fashion=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
swift build -c "$config" --scratch-path "$scratch" --product soma >/dev/null || exit 1
soma=$(swift build -c "$config" --scratch-path "$scratch" --show-bin-path)/soma
case $soma in /*) ;; *) soma=$PWD/$soma ;; esac
command -v mpirun >/dev/null || { echo "mpi-scaling: mpirun not found (openmpi-bin)"; exit 1; }
# Open MPI refuses to start processes as root unless told to.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

source scripts/idx-subset.sh  # the repository root is the working directory
data=$fashion
if [ "$images" -lt 60000 ] || [ "$test_images" -lt 10000 ]; then
  data=$work/data
  mkdir -p "$data"
  subset "$fashion/train-images-idx3-ubyte.gz" "$data/train-images-idx3-ubyte" "$images" 784 16
  subset "$fashion/train-labels-idx1-ubyte.gz" "$data/train-labels-idx1-ubyte" "$images" 1 8
  subset "$fashion/t10k-images-idx3-ubyte.gz" "$data/t10k-images-idx3-ubyte" "$test_images" 784 16
  subset "$fashion/t10k-labels-idx1-ubyte.gz" "$data/t10k-labels-idx1-ubyte" "$test_images" 1 8
fi

# One row of the table from a run's log: the mean of its epochs' training seconds, the last
# epoch's median step and the mean allreduce share.
row() {
  local label=$1 log=$2
  tr '\r' '\n' <"$log" | awk -v label="$label" '
    /epoch [0-9]+\/[0-9]+  loss / {
      for (i = 1; i <= NF; i++) {
        if ($(i + 1) == "s" && $(i + 2) == "(median") { s += $i; n++ }
        if ($i == "step") { step = $(i + 1) }
        if ($i == "allreduce") { a = $(i + 1); sub("%", "", a); share += a; shared++ }
      }
    }
    END {
      if (n == 0) { printf "%-34s  no epoch finished\n", label; exit 1 }
      printf "%-34s  %9.2f  %9s  %s\n", label, s / n, step,
        shared ? sprintf("%.0f %%", share / shared) : "-"
    }'
}

failed=0
run() {  # label, log name, command...
  local label=$1 name=$2
  shift 2
  if "$@" >"$work/$name.log" 2>&1; then
    row "$label" "$work/$name.log" || failed=1
  else
    echo "$label: failed"; cat "$work/$name.log"; failed=1
  fi
}

echo "Fashion-MNIST, $images training images, $epochs epoch(s), $(nproc) cores"
printf "%-34s  %9s  %9s  %s\n" "setting" "s/epoch" "step ms" "allreduce"
for model in $models; do
  case $model in
    spytorch) flags=(train --model spytorch --hidden "$hidden") ;;
    csnn) flags=(train --model csnn --channels "$channels") ;;
    *) echo "mpi-scaling: unknown model $model"; exit 2 ;;
  esac
  flags+=(--data "$data" --epochs "$epochs" "${extra[@]}")
  run "$model: 1 process x 2 threads" "$model-1" "$soma" "${flags[@]}" --threads 2 \
    --out "$work/$model-1"
  run "$model: 2 processes x 1 thread" "$model-2" mpirun -np 2 --oversubscribe "$soma" \
    "${flags[@]}" --threads 1 --out "$work/$model-2"
  if [ "$model" = csnn ]; then
    # The same without buckets: one reduction after the backward pass.
    run "csnn: 2 x 1, one buffer after" "$model-2flat" mpirun -np 2 --oversubscribe "$soma" \
      "${flags[@]}" --threads 1 --bucket-threshold-kb 1073741824 --out "$work/$model-2flat"
  fi
  grep -h -o 'allreduce [0-9]*% of the time[^)]*' "$work/$model-2.log" | tail -n 1 |
    sed "s/^/  $model, 2 processes: /"
done
exit $failed
