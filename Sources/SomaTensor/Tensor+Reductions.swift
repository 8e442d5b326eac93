import RealModule

extension Tensor {
  /// Normalises `axes` (nil = all, negative counts from the end), trapping on a bad axis.
  @inlinable
  func normalizedAxes(_ axes: [Int]?, op: String) -> [Int] {
    guard let axes else { return Array(0..<rank) }
    var out: [Int] = []
    for a in axes {
      let ax = a < 0 ? a + rank : a
      precondition(ax >= 0 && ax < rank, "\(op): axis \(a) out of range for shape \(_shape)")
      if !out.contains(ax) { out.append(ax) }
    }
    return out.sorted()
  }

  /// Reduces over `axes`: each output element folds its group with `combine` from `initial`,
  /// visiting elements in row-major order, then applies `finish(acc, groupSize)`.
  @inlinable
  public func reduce(
    axes: [Int]?, keepDims: Bool, op: String = "reduce", initial: Scalar,
    _ combine: (Scalar, Scalar) -> Scalar, finish: (Scalar, Int) -> Scalar = { a, _ in a }
  ) -> Tensor {
    let red = normalizedAxes(axes, op: op)
    let kept = (0..<rank).filter { !red.contains($0) }
    let outShape = kept.map { _shape[$0] }
    let keptShape = (0..<rank).map { red.contains($0) ? 1 : _shape[$0] }
    var groupSize = 1
    for a in red { groupSize *= _shape[a] }
    var out = Tensor(uninitializedShape: outShape)
    let po = out.storage.base
    let outCount = out.count
    // Fast path: contiguous input reduced over its leading axes — accumulate whole rows.
    if isContiguous && red == Array(0..<red.count) && groupSize > 0 {
      let pa = storage.base + _offset
      for j in 0..<outCount { po[j] = initial }
      for i in 0..<groupSize {
        let row = pa + i * outCount
        for j in 0..<outCount { po[j] = combine(po[j], row[j]) }
      }
      for j in 0..<outCount { po[j] = finish(po[j], groupSize) }
    } else {
      // Move the reduced axes last, then fold each contiguous group.
      let t = permuted(kept + red).contiguous()
      let pa = t.storage.base + t._offset
      for j in 0..<outCount {
        var acc = initial
        let g = pa + j * groupSize
        for i in 0..<groupSize { acc = combine(acc, g[i]) }
        po[j] = finish(acc, groupSize)
      }
      withExtendedLifetime(t) {}
    }
    if keepDims { out = out.reshaped(keptShape) }
    return out
  }

  /// Sum over `axes` (nil = all). Long sums are pairwise, so the rounding error grows like
  /// log n rather than n.
  ///
  /// ```swift
  /// let t = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
  /// t.sum(axes: [1])                  // [6, 15]
  /// t.sum(axes: [0], keepDims: true)  // [[5, 7, 9]]
  /// ```
  @inlinable
  public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
    _sum(axes: axes, keepDims: keepDims, op: "sum")
  }

  @inlinable
  func _sum(axes: [Int]?, keepDims: Bool, op: String) -> Tensor {
    let red = normalizedAxes(axes, op: op)
    let kept = (0..<rank).filter { !red.contains($0) }
    var outCount = 1
    for a in kept { outCount *= _shape[a] }
    // Leading axes of a contiguous tensor, many outputs: accumulate whole rows (vectorised
    // across the outputs).
    if isContiguous && red == Array(0..<red.count) && outCount >= 16 {
      return reduce(axes: axes, keepDims: keepDims, op: op, initial: 0, +)
    }
    var groupSize = 1
    for a in red { groupSize *= _shape[a] }
    let t = permuted(kept + red).contiguous()
    var out = Tensor(uninitializedShape: kept.map { _shape[$0] })
    let pa = t.storage.base + t._offset
    let po = out.storage.base
    for j in 0..<outCount { po[j] = Tensor.pairwiseSum(pa + j &* groupSize, groupSize) }
    withExtendedLifetime(t) {}
    if keepDims { out = out.reshaped((0..<rank).map { red.contains($0) ? 1 : _shape[$0] }) }
    return out
  }

  /// Σ of `n` contiguous elements by pairwise summation, with eight independent accumulators
  /// in each leaf of at most 256 elements (NumPy's scheme).
  @inlinable
  static func pairwiseSum(_ p: UnsafePointer<Scalar>, _ n: Int) -> Scalar {
    if n > 256 {
      let half = (n / 2) & ~7
      return pairwiseSum(p, half) + pairwiseSum(p + half, n - half)
    }
    var (s0, s1, s2, s3): (Scalar, Scalar, Scalar, Scalar) = (0, 0, 0, 0)
    var (s4, s5, s6, s7): (Scalar, Scalar, Scalar, Scalar) = (0, 0, 0, 0)
    var i = 0
    while i &+ 8 <= n {
      s0 += p[i]
      s1 += p[i &+ 1]
      s2 += p[i &+ 2]
      s3 += p[i &+ 3]
      s4 += p[i &+ 4]
      s5 += p[i &+ 5]
      s6 += p[i &+ 6]
      s7 += p[i &+ 7]
      i &+= 8
    }
    var s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    while i < n {
      s += p[i]
      i &+= 1
    }
    return s
  }
  /// Sum over one axis.
  @inlinable
  public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
    sum(axes: [axis], keepDims: keepDims)
  }
  /// Mean over `axes` (nil = all).
  @inlinable
  public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
    var n = 1
    for a in normalizedAxes(axes, op: "mean") { n *= _shape[a] }
    var s = _sum(axes: axes, keepDims: keepDims, op: "mean")
    let scale = Scalar(n)
    s.updateEach { $0 / scale }
    return s
  }
  /// Mean over one axis.
  @inlinable
  public func mean(axis: Int, keepDims: Bool = false) -> Tensor {
    mean(axes: [axis], keepDims: keepDims)
  }
  /// Maximum over `axes` (nil = all); NaN propagates.
  @inlinable
  public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
    reduce(axes: axes, keepDims: keepDims, op: "max", initial: -.infinity) {
      $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1)
    }
  }
  /// Maximum over one axis.
  @inlinable
  public func max(axis: Int, keepDims: Bool = false) -> Tensor {
    max(axes: [axis], keepDims: keepDims)
  }
  /// Minimum over `axes` (nil = all); NaN propagates.
  @inlinable
  public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
    reduce(axes: axes, keepDims: keepDims, op: "min", initial: .infinity) {
      $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1)
    }
  }
  /// Minimum over one axis.
  @inlinable
  public func min(axis: Int, keepDims: Bool = false) -> Tensor {
    min(axes: [axis], keepDims: keepDims)
  }

  /// Index of the largest element along `axis` (first one on ties), as scalars of this tensor's
  /// type (exact up to 2²⁴ for Float).
  @inlinable
  public func argmax(axis: Int, keepDims: Bool = false) -> Tensor {
    let ax = normalizedAxes([axis], op: "argmax")[0]
    let kept = (0..<rank).filter { $0 != ax }
    let t = permuted(kept + [ax]).contiguous()
    let n = _shape[ax]
    precondition(n > 0, "argmax: axis \(axis) of shape \(_shape) is empty")
    var out = Tensor(uninitializedShape: kept.map { _shape[$0] })
    let pa = t.storage.base + t._offset
    for j in 0..<out.count {
      let g = pa + j * n
      var best = 0
      for i in 1..<n where g[i] > g[best] || (g[i].isNaN && !g[best].isNaN) { best = i }
      out.storage.base[j] = Scalar(best)
    }
    withExtendedLifetime(t) {}
    if keepDims {
      out = out.reshaped((0..<rank).map { $0 == ax ? 1 : _shape[$0] })
    }
    return out
  }

  /// Indices of the largest element along the last axis of a 2-D tensor, as `Int`s.
  @inlinable
  public func argmaxIndices(axis: Int = -1) -> [Int] {
    argmax(axis: axis).scalars.map { Int($0) }
  }

  /// log Σ exp over `axes`, finite for logits of ±1e4 (the maximum is subtracted first).
  @inlinable
  public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
    var m = max(axes: axes, keepDims: true)
    m.updateEach { $0.isFinite ? $0 : 0 }
    let s = (self - m).exp().sum(axes: axes, keepDims: true).log() + m
    if keepDims { return s }
    let red = normalizedAxes(axes, op: "logSumExp")
    return s.reshaped((0..<rank).filter { !red.contains($0) }.map { _shape[$0] })
  }

  /// log softmax along `axis`: x − logSumExp(x), stable for large |x|.
  @inlinable
  public func logSoftmax(axis: Int = -1) -> Tensor {
    self - logSumExp(axes: [axis], keepDims: true)
  }

  /// softmax along `axis`: exp(x − max) / Σ exp(x − max).
  @inlinable
  public func softmax(axis: Int = -1) -> Tensor {
    var m = max(axes: [axis], keepDims: true)
    m.updateEach { $0.isFinite ? $0 : 0 }
    let e = (self - m).exp()
    return e / e.sum(axes: [axis], keepDims: true)
  }
}
