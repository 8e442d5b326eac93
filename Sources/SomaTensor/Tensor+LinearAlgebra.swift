import RealModule

// Dense linear algebra through LAPACKE (row-major), reached through the `TensorScalar` hooks.
// Every routine works on a fresh contiguous copy, so the operands are never modified.

/// Why a LAPACK factorisation could not finish. The matrix is valid input of the right shape,
/// but its values do not allow the operation.
public enum LinearAlgebraError: Error, Equatable, Sendable, CustomStringConvertible {
  /// LU factorisation found an exact zero pivot at 1-based position `pivot`: the matrix is
  /// singular.
  case singular(pivot: Int)
  /// Cholesky factorisation failed at the leading minor of 1-based order `minor`: the matrix
  /// is not positive definite.
  case notPositiveDefinite(minor: Int)
  /// The SVD iteration did not converge (`superdiagonals` did not reach zero).
  case svdDidNotConverge(superdiagonals: Int)

  public var description: String {
    switch self {
    case .singular(let pivot):
      return "The matrix is singular: LU factorisation found a zero pivot at position \(pivot)."
    case .notPositiveDefinite(let minor):
      return
        "The matrix is not positive definite: its leading minor of order \(minor) is not positive."
    case .svdDidNotConverge(let n):
      return "The SVD did not converge: \(n) superdiagonals did not reach zero."
    }
  }
}

extension Tensor {
  /// Traps unless `self` is a square matrix.
  @inlinable
  func checkSquare(_ op: String) {
    precondition(
      rank == 2 && _shape[0] == _shape[1], "\(op): needs a square matrix, got shape \(_shape)")
  }

  /// Traps on LAPACK's `info < 0` (an illegal argument is a bug in Soma, not bad input).
  @inlinable
  static func checkArguments(_ info: Int, _ routine: String) {
    precondition(info >= 0, "\(routine): LAPACK rejected argument \(-info) (a bug in Soma)")
  }

  /// The solution `x` of `a · x = b` for a square `a` [n, n] and `b` [n] or [n, k], by LU
  /// factorisation with partial pivoting (LAPACK gesv).
  ///
  /// ```swift
  /// let a = Tensor<Double>([3, 1, 1, 2], shape: [2, 2])
  /// let x = try Tensor.solve(a, Tensor([9, 8]))   // [2, 3]
  /// ```
  /// - Throws: `LinearAlgebraError.singular` when `a` is singular.
  @inlinable
  public static func solve(_ a: Tensor, _ b: Tensor) throws(LinearAlgebraError) -> Tensor {
    precondition(
      a.rank == 2 && a._shape[0] == a._shape[1] && (b.rank == 1 || b.rank == 2)
        && b._shape[0] == a._shape[0],
      "solve: shapes \(a._shape) and \(b._shape) do not form a square system a · x = b")
    let n = a._shape[0]
    let nrhs = b.rank == 1 ? 1 : b._shape[1]
    var x = b.copiedContiguous()
    if n == 0 || nrhs == 0 { return x }
    var lu = a.copiedContiguous()
    var pivots = [Int32](repeating: 0, count: n)
    let info = lu.withUnsafeMutableBufferPointer { pa in
      x.withUnsafeMutableBufferPointer { px in
        pivots.withUnsafeMutableBufferPointer { pp in
          Scalar._gesv(
            n: n, nrhs: nrhs, a: pa.baseAddress!, lda: n, ipiv: pp.baseAddress!,
            b: px.baseAddress!, ldb: nrhs)
        }
      }
    }
    checkArguments(info, "gesv")
    if info > 0 { throw .singular(pivot: info) }
    return x
  }

  /// This square matrix's inverse (LAPACK getrf + getri).
  ///
  /// ```swift
  /// let a = Tensor<Double>([4, 7, 2, 6], shape: [2, 2])
  /// let ai = try a.inverse()   // [[0.6, -0.7], [-0.2, 0.4]]
  /// ```
  /// - Throws: `LinearAlgebraError.singular` when the matrix is singular.
  @inlinable
  public func inverse() throws(LinearAlgebraError) -> Tensor {
    checkSquare("inverse")
    let n = _shape[0]
    var out = copiedContiguous()
    if n == 0 { return out }
    var pivots = [Int32](repeating: 0, count: n)
    let info = out.withUnsafeMutableBufferPointer { pa in
      pivots.withUnsafeMutableBufferPointer { pp -> Int in
        let f = Scalar._getrf(m: n, n: n, a: pa.baseAddress!, lda: n, ipiv: pp.baseAddress!)
        Tensor.checkArguments(f, "getrf")
        if f > 0 { return f }
        let i = Scalar._getri(n: n, a: pa.baseAddress!, lda: n, ipiv: pp.baseAddress!)
        Tensor.checkArguments(i, "getri")
        return i
      }
    }
    if info > 0 { throw .singular(pivot: info) }
    return out
  }

  /// The determinant of this square matrix, from its LU factorisation (LAPACK getrf): the
  /// product of U's diagonal, negated once per row swap. A singular matrix gives 0.
  ///
  /// ```swift
  /// Tensor<Double>([1, 2, 3, 4], shape: [2, 2]).det()   // -2
  /// ```
  @inlinable
  public func det() -> Scalar {
    checkSquare("det")
    let n = _shape[0]
    if n == 0 { return 1 }
    var lu = copiedContiguous()
    var pivots = [Int32](repeating: 0, count: n)
    return lu.withUnsafeMutableBufferPointer { pa in
      pivots.withUnsafeMutableBufferPointer { pp -> Scalar in
        let info = Scalar._getrf(m: n, n: n, a: pa.baseAddress!, lda: n, ipiv: pp.baseAddress!)
        Tensor.checkArguments(info, "getrf")
        if info > 0 { return 0 }
        var d: Scalar = 1
        for i in 0..<n {
          d *= pa[i * n + i]
          if Int(pp[i]) != i + 1 { d = -d }
        }
        return d
      }
    }
  }

  /// The reduced QR decomposition of an [m, n] matrix: `q` [m, k] with orthonormal columns
  /// and upper-triangular `r` [k, n], k = min(m, n), with `q · r = self` (LAPACK geqrf +
  /// orgqr).
  ///
  /// ```swift
  /// let (q, r) = Tensor<Double>([1, 2, 3, 4, 5, 6], shape: [3, 2]).qr()   // q [3, 2], r [2, 2]
  /// ```
  @inlinable
  public func qr() -> (q: Tensor, r: Tensor) {
    precondition(rank == 2, "qr: needs a matrix, got shape \(_shape)")
    let m = _shape[0]
    let n = _shape[1]
    let k = Swift.min(m, n)
    var a = copiedContiguous()
    var r = Tensor(repeating: 0, shape: [k, n])
    if k == 0 { return (Tensor(repeating: 0, shape: [m, k]), r) }
    var tau = [Scalar](repeating: 0, count: k)
    a.withUnsafeMutableBufferPointer { pa in
      tau.withUnsafeMutableBufferPointer { pt in
        let info = Scalar._geqrf(m: m, n: n, a: pa.baseAddress!, lda: n, tau: pt.baseAddress!)
        Tensor.checkArguments(info, "geqrf")
        r.withUnsafeMutableBufferPointer { pr in
          for i in 0..<k { for j in i..<n { pr[i * n + j] = pa[i * n + j] } }
        }
        // The first k columns of the [m, n] buffer hold the reflectors; orgqr turns them
        // into Q in place (row-major with leading dimension n ≥ k).
        let info2 = Scalar._orgqr(
          m: m, n: k, k: k, a: pa.baseAddress!, lda: n, tau: UnsafePointer(pt.baseAddress!))
        Tensor.checkArguments(info2, "orgqr")
      }
    }
    let q = k == n ? a : a[.all, 0..<k].copiedContiguous()
    return (q, r)
  }

  /// The reduced singular value decomposition of an [m, n] matrix: `u` [m, k], singular
  /// values `s` [k] in descending order and `vt` [k, n], k = min(m, n), with
  /// `u · diag(s) · vt = self` (LAPACK gesdd).
  ///
  /// ```swift
  /// let (u, s, vt) = try Tensor<Float>([3, 0, 0, -2], shape: [2, 2]).svd()   // s = [3, 2]
  /// ```
  /// - Throws: `LinearAlgebraError.svdDidNotConverge` in the rare case LAPACK's iteration
  ///   fails.
  @inlinable
  public func svd() throws(LinearAlgebraError) -> (u: Tensor, s: Tensor, vt: Tensor) {
    precondition(rank == 2, "svd: needs a matrix, got shape \(_shape)")
    let m = _shape[0]
    let n = _shape[1]
    let k = Swift.min(m, n)
    var a = copiedContiguous()
    var u = Tensor(repeating: 0, shape: [m, k])
    var s = Tensor(repeating: 0, shape: [k])
    var vt = Tensor(repeating: 0, shape: [k, n])
    if k == 0 { return (u, s, vt) }
    let info = a.withUnsafeMutableBufferPointer { pa in
      u.withUnsafeMutableBufferPointer { pu in
        s.withUnsafeMutableBufferPointer { ps in
          vt.withUnsafeMutableBufferPointer { pv in
            Scalar._gesdd(
              jobz: UInt8(ascii: "S"), m: m, n: n, a: pa.baseAddress!, lda: n,
              s: ps.baseAddress!, u: pu.baseAddress!, ldu: k, vt: pv.baseAddress!, ldvt: n)
          }
        }
      }
    }
    Tensor.checkArguments(info, "gesdd")
    if info > 0 { throw .svdDidNotConverge(superdiagonals: info) }
    return (u, s, vt)
  }

  /// The lower-triangular Cholesky factor `l` of a symmetric positive-definite matrix, with
  /// `l · lᵀ = self` (LAPACK potrf; only the lower triangle of `self` is read).
  ///
  /// ```swift
  /// let l = try Tensor<Double>([4, 2, 2, 3], shape: [2, 2]).cholesky()   // [[2, 0], [1, √2]]
  /// ```
  /// - Throws: `LinearAlgebraError.notPositiveDefinite` when the matrix is not positive
  ///   definite.
  @inlinable
  public func cholesky() throws(LinearAlgebraError) -> Tensor {
    checkSquare("cholesky")
    let n = _shape[0]
    var l = copiedContiguous()
    if n == 0 { return l }
    let info = l.withUnsafeMutableBufferPointer { pa in
      let info = Scalar._potrf(upper: false, n: n, a: pa.baseAddress!, lda: n)
      for i in 0..<n { for j in (i + 1)..<Swift.max(n, i + 1) { pa[i * n + j] = 0 } }
      return info
    }
    Tensor.checkArguments(info, "potrf")
    if info > 0 { throw .notPositiveDefinite(minor: info) }
    return l
  }
}
