// Views and shape changes on variables. Their gradients undo the shape change.

extension Variable {
  /// The same elements with a new shape (one entry may be -1).
  @inlinable
  public func reshaped(_ newShape: [Int]) -> Variable {
    let s = shape
    return .record(value.reshaped(newShape), parents: [self]) { g in [g.reshaped(s)] }
  }

  /// Same as `reshaped(_:)`, variadic.
  @inlinable
  public func reshaped(_ newShape: Int...) -> Variable { reshaped(newShape) }

  /// The 2-D transpose.
  @inlinable
  public func transposed() -> Variable {
    .record(value.transposed(), parents: [self]) { g in [g.transposed()] }
  }

  /// The axes reordered: result axis i is input axis `axes[i]`.
  @inlinable
  public func permuted(_ axes: [Int]) -> Variable {
    var inverse = [Int](repeating: 0, count: axes.count)
    for (i, a) in axes.enumerated() { inverse[a] = i }
    return .record(value.permuted(axes), parents: [self]) { g in [g.permuted(inverse)] }
  }

  /// The last two axes swapped (a batched transpose).
  @inlinable
  public func swappingLastTwoAxes() -> Variable {
    precondition(rank >= 2, "swappingLastTwoAxes(): needs rank ≥ 2, got shape \(shape)")
    var axes = Array(0..<rank)
    axes.swapAt(rank - 1, rank - 2)
    return permuted(axes)
  }

  /// Broadcast to `shape` (stride-0 view); the gradient is summed back.
  @inlinable
  public func expanded(to newShape: [Int]) -> Variable {
    let s = shape
    return .record(value.expanded(to: newShape), parents: [self]) { g in
      [unbroadcast(g, to: s)]
    }
  }

  /// With a length-1 axis inserted at `axis`.
  @inlinable
  public func unsqueezed(axis: Int) -> Variable {
    let s = shape
    return .record(value.unsqueezed(axis: axis), parents: [self]) { g in [g.reshaped(s)] }
  }

  /// Without the length-1 axis `axis`.
  @inlinable
  public func squeezed(axis: Int) -> Variable {
    let s = shape
    return .record(value.squeezed(axis: axis), parents: [self]) { g in [g.reshaped(s)] }
  }

  /// Elements `range` along `axis` (the axis is kept).
  @inlinable
  public func slice(axis: Int, _ range: Range<Int>) -> Variable {
    let ax = axis < 0 ? axis + rank : axis
    precondition(ax >= 0 && ax < rank, "slice(axis:): axis \(axis) out of range for \(shape)")
    precondition(
      range.lowerBound >= 0 && range.upperBound <= shape[ax],
      "slice(axis:): range \(range) out of bounds for axis \(ax) of shape \(shape)")
    let s = shape
    let perm = Variable.moveToFront(ax, rank: rank)
    let inverse = Variable.inversePermutation(perm)
    let out = value.permuted(perm)[range].permuted(inverse)
    return .record(out, parents: [self]) { g in
      var front = Tensor<Scalar>.zeros(perm.map { s[$0] })
      front[range] = g.permuted(perm)
      return [front.permuted(inverse)]
    }
  }

  /// The element `index` along `axis`; the axis is dropped (`x.select(axis: 0, 3)` is the
  /// fourth time step of a [T, batch, n] tensor).
  @inlinable
  public func select(axis: Int = 0, _ index: Int) -> Variable {
    let ax = axis < 0 ? axis + rank : axis
    return slice(axis: ax, index..<(index + 1)).squeezed(axis: ax)
  }

  /// The element `index` along the first axis (e.g. one time step).
  @inlinable
  public subscript(index: Int) -> Variable { select(axis: 0, index) }

  @inlinable
  static func moveToFront(_ axis: Int, rank: Int) -> [Int] {
    [axis] + (0..<rank).filter { $0 != axis }
  }

  @inlinable
  static func inversePermutation(_ p: [Int]) -> [Int] {
    var inv = [Int](repeating: 0, count: p.count)
    for (i, a) in p.enumerated() { inv[a] = i }
    return inv
  }

  /// `parts` joined along `axis`; all other axes must agree.
  @inlinable
  public static func concatenate(_ parts: [Variable], axis: Int = 0) -> Variable {
    precondition(!parts.isEmpty, "concatenate: no tensors to join")
    let r = parts[0].rank
    let ax = axis < 0 ? axis + r : axis
    precondition(ax >= 0 && ax < r, "concatenate: axis \(axis) out of range for rank \(r)")
    var shape = parts[0].shape
    var total = 0
    for p in parts {
      var a = p.shape
      var b = shape
      precondition(
        a.count == r,
        "concatenate: shapes \(parts[0].shape) and \(p.shape) differ in rank")
      a[ax] = 0
      b[ax] = 0
      precondition(
        a == b, "concatenate: shapes \(parts[0].shape) and \(p.shape) differ off axis \(ax)")
      total += p.shape[ax]
    }
    shape[ax] = total
    let perm = moveToFront(ax, rank: r)
    let inverse = inversePermutation(perm)
    var front = Tensor<Scalar>(uninitializedShape: perm.map { shape[$0] })
    var lengths: [Int] = []
    var start = 0
    for p in parts {
      let n = p.shape[ax]
      if n > 0 { front[start..<(start + n)] = p.value.permuted(perm) }
      lengths.append(n)
      start += n
    }
    let out = front.permuted(inverse)
    return record(out, parents: parts) { g in
      let gf = g.permuted(perm)
      var result: [Tensor<Scalar>?] = []
      var s = 0
      for n in lengths {
        result.append(gf[s..<(s + n)].permuted(inverse))
        s += n
      }
      return result
    }
  }

  /// `parts` (all the same shape) stacked along a new axis `axis` (e.g. per-step outputs into
  /// [T, batch, n]).
  @inlinable
  public static func stack(_ parts: [Variable], axis: Int = 0) -> Variable {
    precondition(!parts.isEmpty, "stack: no tensors to stack")
    return concatenate(parts.map { $0.unsqueezed(axis: axis) }, axis: axis)
  }
}
