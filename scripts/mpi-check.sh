#!/usr/bin/env bash
# Data-parallel training under Open MPI, end to end: `mpirun -np 2 --oversubscribe soma train`
# on a small slice of Fashion-MNIST must
#   1. end with the weights one process reaches (within Float rounding), bit for bit the same
#      from run to run;
#   2. leave printing and every file to process 0 (each process runs in its own directory);
#   3. when one process is killed, stop with one clear error, keep the checkpoints whole, and
#      continue with --resume under another number of processes;
#   4. for the convolutional network (--model csnn, with BatchNorm), reduce the gradients in
#      buckets during the backward pass (MPI_Iallreduce) to the weights and BatchNorm
#      statistics of one reduction after it, bit for bit the same from run to run;
#   5. with BatchNorm synchronised over the processes (the default), end csnn's epoch with one
#      process's weights and BatchNorm statistics (within Float rounding), with its BatchNorm
#      reductions (on a duplicated communicator) beside the buckets' in flight, and otherwise
#      (--local-batchnorm: each process normalises its own slice) not.
# Uses the debug build of `swift build` (SCRATCH=… for another build directory) and
# scripts/compare-checkpoints.py. Ends with "N passed, N failed".
#
#   scripts/mpi-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
scratch=${SCRATCH:-.build}
fashion=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
swift build --scratch-path "$scratch" --product soma || exit 1
soma=$(swift build --scratch-path "$scratch" --show-bin-path)/soma
case $soma in /*) ;; *) soma=$PWD/$soma ;; esac
# Open MPI refuses to start processes as root unless told to; CI runs as root.
if [ "$(id -u)" = 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }

source scripts/idx-subset.sh  # the repository root is the working directory
data=$work/data
mkdir -p "$data"
subset "$fashion/train-images-idx3-ubyte.gz" "$data/train-images-idx3-ubyte" 1000 784 16
subset "$fashion/train-labels-idx1-ubyte.gz" "$data/train-labels-idx1-ubyte" 1000 1 8
subset "$fashion/t10k-images-idx3-ubyte.gz" "$data/t10k-images-idx3-ubyte" 300 784 16
subset "$fashion/t10k-labels-idx1-ubyte.gz" "$data/t10k-labels-idx1-ubyte" 300 1 8

# 128 per global batch: 64 + 64 per process, and a last batch of 104 (1000 = 7 × 128 + 104).
flags=(train --data "$data" --batch-size 128 --threads 1 --hidden 64 --time-steps 50)

# 1 and 2. One process, then two processes each in its own working directory (MPMD form).
"$soma" "${flags[@]}" --epochs 2 --out "$work/one" >"$work/one.log" 2>&1 || fail "one process"
two() {  # two processes into $1/rank0/run and $1/rank1/run
  mkdir -p "$1/rank0" "$1/rank1"
  mpirun --oversubscribe --tag-output \
    -np 1 -wdir "$1/rank0" "$soma" "${flags[@]}" --epochs 2 --out run : \
    -np 1 -wdir "$1/rank1" "$soma" "${flags[@]}" --epochs 2 --out run >"$1.log" 2>&1
}
if two "$work/a" && two "$work/b"; then
  # Float rounding: the sums are added in another order. (Measured: ≤ 6e-8 here, as between
  # one process on one thread and on two. Some batch sizes make a run itself sensitive to
  # rounding, a neuron's spike flipping, and then both comparisons differ by up to 1e-4.)
  if scripts/compare-checkpoints.py "$work/one/final.safetensors" \
    "$work/a/rank0/run/final.safetensors" 1e-5; then
    ok "2 processes reach the 1-process weights"
  else
    fail "2 processes reach the 1-process weights"
  fi
  if scripts/compare-checkpoints.py "$work/a/rank0/run/final.safetensors" \
    "$work/b/rank0/run/final.safetensors"; then
    ok "2 processes give bit-identical weights run to run"
  else
    fail "2 processes give bit-identical weights run to run"
  fi
  if [ "$(cut -d, -f4 "$work/one/metrics.csv")" = "$(cut -d, -f4 "$work/a/rank0/run/metrics.csv")" ]; then
    ok "the test accuracy split over 2 processes is the 1-process one"
  else
    fail "the test accuracy split over 2 processes is the 1-process one"
  fi
  files=$(ls "$work/a/rank0/run" | tr '\n' ' ')
  if [ "$files" = "best.safetensors curves.svg final.safetensors metrics.csv " ] &&
    [ ! -e "$work/a/rank1/run" ]; then
    ok "process 0 alone writes the run's files"
  else
    fail "process 0 alone writes the run's files (rank 0: $files; rank 1: $(ls "$work/a/rank1"))"
  fi
  if grep -q 'epoch 2/2  loss' "$work/a.log" && ! grep -q '^\[1,1\]<std' "$work/a.log"
  then
    ok "process 0 alone prints"
  else
    fail "process 0 alone prints"; cat "$work/a.log"
  fi
else
  fail "mpirun -np 2 soma train"
  cat "$work/a.log" "$work/b.log" 2>/dev/null
fi

# 3. Kill process 1 once the first epoch's checkpoint is written.
mpirun -np 2 --oversubscribe "$soma" "${flags[@]}" --epochs 60 --out "$work/killed" \
  >"$work/killed.log" 2>&1 &
launcher=$!
for _ in $(seq 600); do [ -f "$work/killed/final.safetensors" ] && break; sleep 0.1; done
victim=""  # mpirun's child of rank 1 (found through /proc: procps may not be installed)
for stat in /proc/[0-9]*/stat; do
  pid=${stat#/proc/}
  pid=${pid%/stat}
  read -r -a fields <"$stat" 2>/dev/null || continue
  [ "${fields[3]:-}" = "$launcher" ] || continue
  if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then
    victim=$pid
  fi
done
if [ -n "$victim" ]; then kill -9 "$victim"; fi
status=0
for _ in $(seq 600); do kill -0 "$launcher" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$launcher" 2>/dev/null; then
  kill "$launcher"
  fail "the job did not stop within 60 s of a killed process"
fi
wait "$launcher" || status=$?
if [ -n "$victim" ] && [ "$status" -ne 0 ] &&
  [ "$(grep -c '^Error: the MPI job was stopped' "$work/killed.log")" = 1 ] &&
  grep -q 'process rank 1 .* exited on signal 9' "$work/killed.log"; then
  ok "a killed process stops the job with one clear error (exit status $status)"
else
  fail "a killed process stops the job with one clear error (status $status, victim '$victim')"
  cat "$work/killed.log"
fi
done_epochs=$(tail -n 1 "$work/killed/metrics.csv" | cut -d, -f1)
if "$soma" evaluate --checkpoint "$work/killed/final.safetensors" --data "$data" \
  >"$work/evaluate.log" 2>&1; then
  ok "the checkpoint left by the stopped job loads (epoch $done_epochs)"
else
  fail "the checkpoint left by the stopped job loads"; cat "$work/evaluate.log"
fi
# Resume in one process (another N) for one more epoch.
if "$soma" "${flags[@]}" --epochs $((done_epochs + 1)) --out "$work/killed" --resume \
  >"$work/resume.log" 2>&1 &&
  [ "$(cut -d, -f1 "$work/killed/metrics.csv" | tail -n +2 | tr '\n' ' ')" = \
    "$(seq -s ' ' 1 $((done_epochs + 1))) " ]; then
  ok "--resume continues the stopped run in 1 process (epoch $((done_epochs + 1)))"
else
  fail "--resume continues the stopped run"; cat "$work/resume.log" "$work/killed/metrics.csv"
fi

# 4. csnn in buckets (every bucket 16 KB, whatever the total) against one buffer.
csnn=(train --data "$data" --model csnn --channels 4 --batch-size 128 --threads 1 --epochs 1)
buckets() {  # $1: the run's directory; the rest: extra flags
  local out=$1
  shift
  mpirun -np 2 --oversubscribe "$soma" "${csnn[@]}" --out "$out" "$@" >"$out.log" 2>&1
}
if buckets "$work/flat" && buckets "$work/bucketed" --bucket-threshold-kb 0 --bucket-kb 16 &&
  buckets "$work/bucketed2" --bucket-threshold-kb 0 --bucket-kb 16; then
  if grep -q 'in 3 buckets during the backward pass' "$work/bucketed.log" &&
    ! grep -q 'buckets' "$work/flat.log" &&
    scripts/compare-checkpoints.py "$work/flat/final.safetensors" \
      "$work/bucketed/final.safetensors" 1e-6 &&
    scripts/compare-checkpoints.py "$work/bucketed/final.safetensors" \
      "$work/bucketed2/final.safetensors"; then
    ok "csnn: gradients reduced in 3 buckets during the backward pass give one buffer's weights"
  else
    fail "csnn: buckets against one buffer"; cat "$work/bucketed.log" "$work/flat.log"
  fi
else
  fail "csnn under mpirun -np 2"
  cat "$work/flat.log" "$work/bucketed.log" "$work/bucketed2.log" 2>/dev/null
fi

# 5. csnn with synchronised BatchNorm (the runs of 4) against one process, and without it.
# Each global batch of 128 splits 64 + 64, the last of 104 52 + 52.
"$soma" "${csnn[@]}" --out "$work/csnn-one" >"$work/csnn-one.log" 2>&1 || fail "csnn, one process"
if buckets "$work/local" --local-batchnorm && [ -f "$work/flat/final.safetensors" ]; then
  # Measured: 1.8e-6 for both (in the output layer; the BatchNorm statistics closer); 1e-5 as
  # in 1. Without synchronisation: 7e-3 (1323 weights differ by more than 1e-3).
  if scripts/compare-checkpoints.py "$work/csnn-one/final.safetensors" \
    "$work/flat/final.safetensors" 1e-5 &&
    scripts/compare-checkpoints.py "$work/csnn-one/final.safetensors" \
      "$work/bucketed/final.safetensors" 1e-5; then
    ok "csnn: 2 processes with synchronised BatchNorm reach the 1-process weights and statistics"
  else
    fail "csnn: 2 processes with synchronised BatchNorm reach the 1-process weights and statistics"
  fi
  if scripts/compare-checkpoints.py "$work/csnn-one/final.safetensors" \
    "$work/local/final.safetensors" 1e-3 >"$work/local.compare" 2>&1; then
    fail "csnn: with --local-batchnorm the weights should differ from one process's"
    cat "$work/local.compare"
  else
    cat "$work/local.compare"
    ok "csnn: each process normalising its own slice (--local-batchnorm) ends elsewhere"
  fi
else
  fail "csnn --local-batchnorm under mpirun -np 2"; cat "$work/local.log" 2>/dev/null
fi

echo "mpi-check: $passed passed, $failed failed"
[ "$failed" = 0 ]
