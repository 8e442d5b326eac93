import RealModule

// Matrix products through BLAS. A transposed view reaches BLAS as a transpose flag.

extension Tensor {
  /// How BLAS can read the 2-D matrix whose last two axes have `rows`, `cols` and strides
  /// `rs`, `cs`: (transposed?, leading dimension), or nil when a copy is needed.
  @inlinable
  static func blasLayout(rows: Int, cols: Int, rs: Int, cs: Int) -> (trans: Bool, ld: Int)? {
    if (cols == 1 || cs == 1) && (rows == 1 || rs >= Swift.max(cols, 1)) {
      return (false, rows == 1 ? Swift.max(cols, 1) : rs)
    }
    if (rows == 1 || rs == 1) && (cols == 1 || cs >= Swift.max(rows, 1)) {
      return (true, cols == 1 ? Swift.max(rows, 1) : cs)
    }
    return nil
  }

  /// The matrix product, following NumPy's `matmul`: 1-D·1-D is a dot product, 2-D·1-D and
  /// 1-D·2-D go through gemv, 2-D·2-D through gemm, and ≥3-D operands are stacks of matrices
  /// whose batch axes broadcast. Traps with both shapes when the inner dimensions differ.
  @inlinable
  public func matmul(_ other: Tensor) -> Tensor {
    precondition(
      rank >= 1 && other.rank >= 1,
      "matmul: shapes \(_shape) and \(other._shape) need at least one axis each")
    if rank == 1 && other.rank == 1 {
      precondition(
        _shape[0] == other._shape[0],
        "matmul: shapes \(_shape) and \(other._shape) have different lengths")
      return Tensor(dot(other))
    }
    if rank == 2 && other.rank == 1 { return matvec(other) }
    if rank == 1 && other.rank == 2 { return other.transposed().matvec(self) }
    if rank == 2 && other.rank == 2 {
      precondition(
        _shape[1] == other._shape[0],
        "matmul: shapes \(_shape) and \(other._shape) are not aligned (\(_shape[1]) ≠ \(other._shape[0]))"
      )
      let out = Tensor(uninitializedShape: [_shape[0], other._shape[1]])
      Tensor.gemm(self, other, into: out.storage.base, ldc: other._shape[1])
      return out
    }
    // Batched: promote 1-D operands, broadcast the batch axes.
    let a = rank == 1 ? unsqueezed(axis: 0) : self
    let b = other.rank == 1 ? other.unsqueezed(axis: 1) : other
    let m = a._shape[a.rank - 2]
    let k = a._shape[a.rank - 1]
    let n = b._shape[b.rank - 1]
    precondition(
      k == b._shape[b.rank - 2],
      "matmul: shapes \(_shape) and \(other._shape) are not aligned (\(k) ≠ \(b._shape[b.rank - 2]))"
    )
    let batchA = Array(a._shape.dropLast(2))
    let batchB = Array(b._shape.dropLast(2))
    let batch = Tensor.broadcastShape(batchA, batchB, op: "matmul")
    let ea = a.expanded(to: batch + [m, k])
    let eb = b.expanded(to: batch + [k, n])
    let out = Tensor(uninitializedShape: batch + [m, n])
    let nb = Tensor.elementCount(batch)
    var index = [Int](repeating: 0, count: batch.count)
    for bi in 0..<nb {
      var oa = ea._offset
      var ob = eb._offset
      for (ax, i) in index.enumerated() {
        oa += i * ea._strides[ax]
        ob += i * eb._strides[ax]
      }
      let ma = Tensor(
        storage: ea.storage, shape: [m, k], strides: Array(ea._strides.suffix(2)), offset: oa)
      let mb = Tensor(
        storage: eb.storage, shape: [k, n], strides: Array(eb._strides.suffix(2)), offset: ob)
      Tensor.gemm(ma, mb, into: out.storage.base + bi * m * n, ldc: n)
      var ax = batch.count - 1
      while ax >= 0 {
        index[ax] += 1
        if index[ax] < batch[ax] { break }
        index[ax] = 0
        ax -= 1
      }
    }
    var result = out
    if rank == 1 { result = result.squeezed(axis: -2) }
    if other.rank == 1 { result = result.squeezed(axis: -1) }
    return result
  }

  /// `C = A·B` for 2-D `a` [m, k] and `b` [k, n] into `c` (row-major, leading dimension `ldc`),
  /// optionally accumulating (`beta = 1`).
  @inlinable
  public static func gemm(
    _ a: Tensor, _ b: Tensor, into c: UnsafeMutablePointer<Scalar>, ldc: Int,
    alpha: Scalar = 1, beta: Scalar = 0
  ) {
    let m = a._shape[0]
    let k = a._shape[1]
    let n = b._shape[1]
    if m == 0 || n == 0 { return }
    if k == 0 {
      for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
      return
    }
    let la = blasLayout(rows: m, cols: k, rs: a._strides[0], cs: a._strides[1])
    let lb = blasLayout(rows: k, cols: n, rs: b._strides[0], cs: b._strides[1])
    let ac = la == nil ? a.copiedContiguous() : a
    let bc = lb == nil ? b.copiedContiguous() : b
    let fa = la ?? (false, k)
    let fb = lb ?? (false, n)
    let pa = ac.storage.base + ac._offset
    let pb = bc.storage.base + bc._offset
    let parts = _gemmParts(m: m, n: n, k: k)
    if parts > 1 {
      // Split the longer side of C over the cores, each part one single-threaded GEMM.
      let alongRows = m >= n
      let shared = UnsafeMutablePointer<Scalar>(c)
      parallel(parts) { part in
        let total = alongRows ? m : n
        let lo = total * part / parts
        let hi = total * (part + 1) / parts
        if lo == hi { return }
        if alongRows {
          Scalar._gemm(
            transA: fa.trans, transB: fb.trans, m: hi - lo, n: n, k: k, alpha: alpha,
            a: pa + (fa.trans ? lo : lo * fa.ld), lda: fa.ld, b: pb, ldb: fb.ld, beta: beta,
            c: shared + lo * ldc, ldc: ldc)
        } else {
          Scalar._gemm(
            transA: fa.trans, transB: fb.trans, m: m, n: hi - lo, k: k, alpha: alpha,
            a: pa, lda: fa.ld, b: pb + (fb.trans ? lo * fb.ld : lo), ldb: fb.ld, beta: beta,
            c: shared + lo, ldc: ldc)
        }
      }
    } else {
      Scalar._gemm(
        transA: fa.trans, transB: fb.trans, m: m, n: n, k: k, alpha: alpha, a: pa, lda: fa.ld,
        b: pb, ldb: fb.ld, beta: beta, c: c, ldc: ldc)
    }
    withExtendedLifetime((ac, bc)) {}
  }

  /// Matrix [m, n] times vector [n] through gemv.
  @inlinable
  public func matvec(_ v: Tensor) -> Tensor {
    precondition(
      rank == 2 && v.rank == 1 && _shape[1] == v._shape[0],
      "matvec: shapes \(_shape) and \(v._shape) are not aligned")
    let m = _shape[0]
    let n = _shape[1]
    let out = Tensor(repeating: 0, shape: [m])
    if m == 0 || n == 0 { return out }
    let l = Tensor.blasLayout(rows: m, cols: n, rs: _strides[0], cs: _strides[1])
    let a = l == nil ? copiedContiguous() : self
    let f = l ?? (false, n)
    let x = v._strides[0] > 0 ? v : v.copiedContiguous()
    // Row-major gemv: for a transposed layout, the stored matrix is [n, m].
    Scalar._gemv(
      trans: f.trans, m: f.trans ? n : m, n: f.trans ? m : n, alpha: 1,
      a: a.storage.base + a._offset, lda: f.ld, x: x.storage.base + x._offset,
      incx: x._strides[0], beta: 0, y: out.storage.base, incy: 1)
    withExtendedLifetime((a, x)) {}
    return out
  }

  /// Σ aᵢbᵢ of two 1-D tensors of equal length.
  @inlinable
  public func dot(_ other: Tensor) -> Scalar {
    precondition(
      rank == 1 && other.rank == 1 && _shape[0] == other._shape[0],
      "dot: shapes \(_shape) and \(other._shape) are not two vectors of equal length")
    var s: Scalar = 0
    let pa = storage.base + _offset
    let pb = other.storage.base + other._offset
    let sa = _strides[0]
    let sb = other._strides[0]
    for i in 0..<_shape[0] { s += pa[i * sa] * pb[i * sb] }
    return s
  }

  /// The outer product of two vectors: [m] ⊗ [n] → [m, n], through ger.
  @inlinable
  public func outer(_ other: Tensor) -> Tensor {
    precondition(
      rank == 1 && other.rank == 1,
      "outer: shapes \(_shape) and \(other._shape) are not two vectors")
    let m = _shape[0]
    let n = other._shape[0]
    let out = Tensor(repeating: 0, shape: [m, n])
    if m == 0 || n == 0 { return out }
    let x = _strides[0] > 0 ? self : copiedContiguous()
    let y = other._strides[0] > 0 ? other : other.copiedContiguous()
    Scalar._ger(
      m: m, n: n, alpha: 1, x: x.storage.base + x._offset, incx: x._strides[0],
      y: y.storage.base + y._offset, incy: y._strides[0], a: out.storage.base, lda: n)
    withExtendedLifetime((x, y)) {}
    return out
  }
}
