#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (with AddressSanitizer) and runs each for SECONDS,
# one after another, then prints executions and crashes per target.
#
#   scripts/fuzz.sh SECONDS [TARGET ...]     # default: every target
#
# FUZZ_SCRATCH (default /tmp/soma-fuzz-build) is the build directory, FUZZ_OUT (default a new
# temporary directory) receives each target's grown corpus, log and any crash inputs, and
# FUZZ_RUNS=N also stops a target after N executions. The committed seeds in Fuzz/Corpus are
# read, never written. Exits 1 when any target crashed (a trap, a failed property, a sanitizer
# report, a leak, a timeout or running out of memory).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [TARGET ...]" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
# FuzzNIR (NIR files, through the system's libhdf5) runs only when named: Debian's HDF5 1.10
# leaks, loops and overflows its buffers on damaged files inside the library, beyond what Soma
# can check first (see docs/NIR.md), so it would fail every run for reasons outside Soma.
# `soma import` survives those files by reading them in a child process, but FuzzNIR drives the
# library in-process, as a program using SomaNIR does, so it still meets them.
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(FuzzIDX FuzzGzip FuzzSafeTensors FuzzNPY FuzzJSON FuzzCheckpoint)
fi
scratch=${FUZZ_SCRATCH:-/tmp/soma-fuzz-build}
out=${FUZZ_OUT:-$(mktemp -d /tmp/soma-fuzz.XXXXXX)}
mkdir -p "$out"

flags=(-c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
swift build --package-path Fuzz --scratch-path "$scratch" "${flags[@]}"
bin=$(swift build --package-path Fuzz --scratch-path "$scratch" "${flags[@]}" --show-bin-path)

# Any report ends the run with an error (libFuzzer's own default for ASan reports; said
# explicitly so an inherited ASAN_OPTIONS cannot turn it off).
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}halt_on_error=1:abort_on_error=0

extra=()
if [[ -n ${FUZZ_RUNS:-} ]]; then extra+=("-runs=$FUZZ_RUNS"); fi

failed=0
results=()
for t in "${targets[@]}"; do
  mkdir -p "$out/$t/corpus" "$out/$t/artifacts"
  start=$(date +%s)
  set +e
  "$bin/$t" "$out/$t/corpus" "Fuzz/Corpus/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$out/$t/artifacts/" "${extra[@]}" >"$out/$t/log" 2>&1
  rc=$?
  set -e
  took=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t/log" | tail -n 1)
  crashes=$(find "$out/$t/artifacts" -type f | wc -l)
  status=ok
  if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
    status="FAILED (exit $rc, see $out/$t/log)"
    failed=1
  fi
  results+=("$(printf '%-16s %8ss %12s %8s  %s' "$t" "$took" "${runs:-?}" "$crashes" "$status")")
done

printf '%-16s %9s %12s %8s  %s\n' target time executions crashes result
printf '%s\n' "${results[@]}"
echo "logs, grown corpora and crash inputs: $out"
exit $failed
