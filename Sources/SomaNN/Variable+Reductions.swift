// Reductions, softmax and friends on variables.

extension Variable {
  @inlinable
  func keptShape(_ axes: [Int]?) -> [Int] {
    guard let axes else { return [Int](repeating: 1, count: rank) }
    let norm = axes.map { $0 < 0 ? $0 + rank : $0 }
    return (0..<rank).map { norm.contains($0) ? 1 : shape[$0] }
  }

  /// Sum over `axes` (nil = all).
  @inlinable
  public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Variable {
    let s = shape
    let kept = keptShape(axes)
    return .record(value.sum(axes: axes, keepDims: keepDims), parents: [self]) { g in
      [g.reshaped(kept).expanded(to: s)]
    }
  }

  /// Sum over one axis.
  @inlinable
  public func sum(axis: Int, keepDims: Bool = false) -> Variable {
    sum(axes: [axis], keepDims: keepDims)
  }

  /// Mean over `axes` (nil = all).
  @inlinable
  public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Variable {
    let s = shape
    let kept = keptShape(axes)
    let n = Scalar(value.count / Swift.max(1, kept.reduce(1, *)))
    return .record(value.mean(axes: axes, keepDims: keepDims), parents: [self]) { g in
      [(g / n).reshaped(kept).expanded(to: s)]
    }
  }

  /// Mean over one axis.
  @inlinable
  public func mean(axis: Int, keepDims: Bool = false) -> Variable {
    mean(axes: [axis], keepDims: keepDims)
  }

  /// Maximum over `axis`; the gradient goes to the first maximal element of each group.
  @inlinable
  public func max(axis: Int, keepDims: Bool = false) -> Variable {
    let ax = axis < 0 ? axis + rank : axis
    precondition(ax >= 0 && ax < rank, "max(axis:): axis \(axis) out of range for \(shape)")
    let x = value
    let kept = keptShape([ax])
    let index = x.argmax(axis: ax, keepDims: true)
    var positions = [Int](repeating: 1, count: rank)
    positions[ax] = shape[ax]
    let along = Tensor<Scalar>.arange(0, Scalar(shape[ax])).reshaped(positions)
    let out = x.max(axes: [ax], keepDims: keepDims)
    return .record(out, parents: [self]) { g in
      [Tensor.where(along .== index, g.reshaped(kept), Tensor(0)).expanded(to: x.shape)]
    }
  }

  /// log softmax along `axis`.
  @inlinable
  public func logSoftmax(axis: Int = -1) -> Variable {
    let y = value.logSoftmax(axis: axis)
    return .record(y, parents: [self]) { g in
      [g - y.exp() * g.sum(axes: [axis], keepDims: true)]
    }
  }

  /// softmax along `axis`.
  @inlinable
  public func softmax(axis: Int = -1) -> Variable {
    let y = value.softmax(axis: axis)
    return .record(y, parents: [self]) { g in
      [y * (g - (g * y).sum(axes: [axis], keepDims: true))]
    }
  }
}
