@_exported import RealModule

/// The element types a `Tensor` can hold: `Float` and `Double`.
///
/// The protocol binds each type once to its BLAS and LAPACK routines (`Float._gemm` calls
/// `cblas_sgemm`, `Double._gemm` calls `cblas_dgemm`), so the rest of Soma is written once,
/// generically. The underscored requirements are implementation hooks, not API: call the
/// `Tensor` methods (`matmul`, `solve`, `qr`, …) instead.
public protocol TensorScalar: BinaryFloatingPoint, Real, Sendable, Codable,
  LosslessStringConvertible
where RawSignificand: FixedWidthInteger {
  /// NumPy's name for the type: `float32` or `float64`.
  static var dtypeName: String { get }
  /// The safetensors dtype tag: `F32` or `F64`.
  static var safetensorsDType: String { get }

  /// Row-major `C = alpha · op(A) · op(B) + beta · C`.
  static func _gemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Self,
    a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int, beta: Self,
    c: UnsafeMutablePointer<Self>, ldc: Int)
  /// Row-major `y = alpha · op(A) · x + beta · y`.
  static func _gemv(
    trans: Bool, m: Int, n: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
    x: UnsafePointer<Self>, incx: Int, beta: Self, y: UnsafeMutablePointer<Self>, incy: Int)
  /// Row-major rank-1 update `A += alpha · x · yᵀ`.
  static func _ger(
    m: Int, n: Int, alpha: Self, x: UnsafePointer<Self>, incx: Int, y: UnsafePointer<Self>,
    incy: Int, a: UnsafeMutablePointer<Self>, lda: Int)

  /// LAPACKE (row-major) hooks; each returns LAPACK's `info`.
  static func _gesv(
    n: Int, nrhs: Int, a: UnsafeMutablePointer<Self>, lda: Int,
    ipiv: UnsafeMutablePointer<Int32>, b: UnsafeMutablePointer<Self>, ldb: Int) -> Int
  static func _getrf(
    m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int, ipiv: UnsafeMutablePointer<Int32>
  ) -> Int
  static func _getri(
    n: Int, a: UnsafeMutablePointer<Self>, lda: Int, ipiv: UnsafePointer<Int32>) -> Int
  static func _geqrf(
    m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int, tau: UnsafeMutablePointer<Self>
  ) -> Int
  static func _orgqr(
    m: Int, n: Int, k: Int, a: UnsafeMutablePointer<Self>, lda: Int, tau: UnsafePointer<Self>
  ) -> Int
  static func _gesdd(
    jobz: UInt8, m: Int, n: Int, a: UnsafeMutablePointer<Self>, lda: Int,
    s: UnsafeMutablePointer<Self>, u: UnsafeMutablePointer<Self>, ldu: Int,
    vt: UnsafeMutablePointer<Self>, ldvt: Int) -> Int
  static func _potrf(
    upper: Bool, n: Int, a: UnsafeMutablePointer<Self>, lda: Int) -> Int
}
