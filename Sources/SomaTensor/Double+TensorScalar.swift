import RealModule
internal import COpenBLAS

extension Double: TensorScalar {
  public static var dtypeName: String { "float64" }
  public static var safetensorsDType: String { "F64" }

  public static func _gemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double,
    a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double,
    c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    cblas_dgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
      blasint(ldc))
  }

  public static func _gemv(
    trans: Bool, m: Int, n: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
    x: UnsafePointer<Double>, incx: Int, beta: Double, y: UnsafeMutablePointer<Double>, incy: Int
  ) {
    cblas_dgemv(
      CblasRowMajor, trans ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), alpha, a,
      blasint(lda), x, blasint(incx), beta, y, blasint(incy))
  }

  public static func _ger(
    m: Int, n: Int, alpha: Double, x: UnsafePointer<Double>, incx: Int, y: UnsafePointer<Double>,
    incy: Int, a: UnsafeMutablePointer<Double>, lda: Int
  ) {
    cblas_dger(
      CblasRowMajor, blasint(m), blasint(n), alpha, x, blasint(incx), y, blasint(incy), a,
      blasint(lda))
  }

  public static func _gesv(
    n: Int, nrhs: Int, a: UnsafeMutablePointer<Double>, lda: Int,
    ipiv: UnsafeMutablePointer<Int32>, b: UnsafeMutablePointer<Double>, ldb: Int
  ) -> Int {
    Int(
      LAPACKE_dgesv(
        LAPACK_ROW_MAJOR, soma_lapack_int(n), soma_lapack_int(nrhs), a, soma_lapack_int(lda),
        ipiv, b, soma_lapack_int(ldb)))
  }

  public static func _getrf(
    m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int, ipiv: UnsafeMutablePointer<Int32>
  ) -> Int {
    Int(
      LAPACKE_dgetrf(
        LAPACK_ROW_MAJOR, soma_lapack_int(m), soma_lapack_int(n), a, soma_lapack_int(lda), ipiv))
  }

  public static func _getri(
    n: Int, a: UnsafeMutablePointer<Double>, lda: Int, ipiv: UnsafePointer<Int32>
  ) -> Int {
    Int(LAPACKE_dgetri(LAPACK_ROW_MAJOR, soma_lapack_int(n), a, soma_lapack_int(lda), ipiv))
  }

  public static func _geqrf(
    m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int, tau: UnsafeMutablePointer<Double>
  ) -> Int {
    Int(
      LAPACKE_dgeqrf(
        LAPACK_ROW_MAJOR, soma_lapack_int(m), soma_lapack_int(n), a, soma_lapack_int(lda), tau))
  }

  public static func _orgqr(
    m: Int, n: Int, k: Int, a: UnsafeMutablePointer<Double>, lda: Int, tau: UnsafePointer<Double>
  ) -> Int {
    Int(
      LAPACKE_dorgqr(
        LAPACK_ROW_MAJOR, soma_lapack_int(m), soma_lapack_int(n), soma_lapack_int(k), a,
        soma_lapack_int(lda), tau))
  }

  public static func _gesdd(
    jobz: UInt8, m: Int, n: Int, a: UnsafeMutablePointer<Double>, lda: Int,
    s: UnsafeMutablePointer<Double>, u: UnsafeMutablePointer<Double>, ldu: Int,
    vt: UnsafeMutablePointer<Double>, ldvt: Int
  ) -> Int {
    Int(
      LAPACKE_dgesdd(
        LAPACK_ROW_MAJOR, CChar(bitPattern: jobz), soma_lapack_int(m), soma_lapack_int(n), a,
        soma_lapack_int(lda), s, u, soma_lapack_int(ldu), vt, soma_lapack_int(ldvt)))
  }

  public static func _potrf(upper: Bool, n: Int, a: UnsafeMutablePointer<Double>, lda: Int) -> Int
  {
    Int(
      LAPACKE_dpotrf(
        LAPACK_ROW_MAJOR, CChar(bitPattern: upper ? 85 : 76), soma_lapack_int(n), a,
        soma_lapack_int(lda)))
  }
}
