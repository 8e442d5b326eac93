internal import COpenBLAS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// How many parts `Tensor.gemm` splits a product of m × n × k into: the cores when OpenBLAS
/// runs one thread (Soma's training setting, where a large product on the tape — a Linear
/// layer of a convolutional network — would otherwise run on one core) and the product is
/// large; 1 otherwise.
@usableFromInline
func _gemmParts(m: Int, n: Int, k: Int) -> Int {
  if m * n * k < 1 << 25 || max(m, n) < 64 { return 1 }
  if openblas_get_num_threads() > 1 { return 1 }
  return max(1, min(_gemmCores, max(m, n) / 32))
}

let _gemmCores: Int = max(1, min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 16))
