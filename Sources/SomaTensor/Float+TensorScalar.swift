import RealModule
internal import COpenBLAS

extension Float: TensorScalar {
  public static var dtypeName: String { "float32" }
  public static var safetensorsDType: String { "F32" }

  public static func _gemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    cblas_sgemm(
      CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
      blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
      blasint(ldc))
  }

  public static func _gemv(
    trans: Bool, m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
    x: UnsafePointer<Float>, incx: Int, beta: Float, y: UnsafeMutablePointer<Float>, incy: Int
  ) {
    cblas_sgemv(
      CblasRowMajor, trans ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), alpha, a,
      blasint(lda), x, blasint(incx), beta, y, blasint(incy))
  }

  public static func _ger(
    m: Int, n: Int, alpha: Float, x: UnsafePointer<Float>, incx: Int, y: UnsafePointer<Float>,
    incy: Int, a: UnsafeMutablePointer<Float>, lda: Int
  ) {
    cblas_sger(
      CblasRowMajor, blasint(m), blasint(n), alpha, x, blasint(incx), y, blasint(incy), a,
      blasint(lda))
  }

  public static func _gesv(
    n: Int, nrhs: Int, a: UnsafeMutablePointer<Float>, lda: Int,
    ipiv: UnsafeMutablePointer<Int32>, b: UnsafeMutablePointer<Float>, ldb: Int
  ) -> Int {
    Int(
      LAPACKE_sgesv(
        LAPACK_ROW_MAJOR, soma_lapack_int(n), soma_lapack_int(nrhs), a, soma_lapack_int(lda),
        ipiv, b, soma_lapack_int(ldb)))
  }

  public static func _getrf(
    m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int, ipiv: UnsafeMutablePointer<Int32>
  ) -> Int {
    Int(
      LAPACKE_sgetrf(
        LAPACK_ROW_MAJOR, soma_lapack_int(m), soma_lapack_int(n), a, soma_lapack_int(lda), ipiv))
  }

  public static func _getri(
    n: Int, a: UnsafeMutablePointer<Float>, lda: Int, ipiv: UnsafePointer<Int32>
  ) -> Int {
    Int(LAPACKE_sgetri(LAPACK_ROW_MAJOR, soma_lapack_int(n), a, soma_lapack_int(lda), ipiv))
  }

  public static func _geqrf(
    m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int, tau: UnsafeMutablePointer<Float>
  ) -> Int {
    Int(
      LAPACKE_sgeqrf(
        LAPACK_ROW_MAJOR, soma_lapack_int(m), soma_lapack_int(n), a, soma_lapack_int(lda), tau))
  }

  public static func _orgqr(
    m: Int, n: Int, k: Int, a: UnsafeMutablePointer<Float>, lda: Int, tau: UnsafePointer<Float>
  ) -> Int {
    Int(
      LAPACKE_sorgqr(
        LAPACK_ROW_MAJOR, soma_lapack_int(m), soma_lapack_int(n), soma_lapack_int(k), a,
        soma_lapack_int(lda), tau))
  }

  public static func _gesdd(
    jobz: UInt8, m: Int, n: Int, a: UnsafeMutablePointer<Float>, lda: Int,
    s: UnsafeMutablePointer<Float>, u: UnsafeMutablePointer<Float>, ldu: Int,
    vt: UnsafeMutablePointer<Float>, ldvt: Int
  ) -> Int {
    Int(
      LAPACKE_sgesdd(
        LAPACK_ROW_MAJOR, CChar(bitPattern: jobz), soma_lapack_int(m), soma_lapack_int(n), a,
        soma_lapack_int(lda), s, u, soma_lapack_int(ldu), vt, soma_lapack_int(ldvt)))
  }

  public static func _potrf(upper: Bool, n: Int, a: UnsafeMutablePointer<Float>, lda: Int) -> Int
  {
    Int(
      LAPACKE_spotrf(
        LAPACK_ROW_MAJOR, CChar(bitPattern: upper ? 85 : 76), soma_lapack_int(n), a,
        soma_lapack_int(lda)))
  }
}
