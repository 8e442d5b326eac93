import RealModule
// Views share storage and copy nothing (except `reshaped` of a non-contiguous layout).

/// One axis of a slice: an index (drops the axis), a range, a strided range, or the whole axis.
public protocol TensorRangeExpression {
  /// Resolves against an axis of length `count`: (start, length, step, keepsAxis).
  func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool)
}

/// A strided or full slice of one axis: `.all`, `.stride(from: 0, to: 10, by: 2)`.
public struct TensorSlice: TensorRangeExpression, Sendable {
  public var start: Int?
  public var end: Int?
  public var step: Int

  public init(start: Int? = nil, end: Int? = nil, step: Int = 1) {
    precondition(step != 0, "TensorSlice: step must not be 0")
    self.start = start
    self.end = end
    self.step = step
  }

  /// The whole axis.
  public static var all: TensorSlice { TensorSlice() }
  /// Elements `from`, `from + by`, … before `to` (Python's `from:to:by`; negative steps walk
  /// backwards).
  public static func stride(from: Int? = nil, to: Int? = nil, by: Int) -> TensorSlice {
    TensorSlice(start: from, end: to, step: by)
  }

  public func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool) {
    // Python's rules: a negative bound counts from the end, then bounds clamp to the axis;
    // an omitted bound means "from the first element visited" / "through the last".
    if step > 0 {
      var s = start ?? 0
      var e = end ?? count
      if s < 0 { s += count }
      if e < 0 { e += count }
      s = Swift.min(Swift.max(s, 0), count)
      e = Swift.min(Swift.max(e, 0), count)
      let len = e > s ? (e - s + step - 1) / step : 0
      return (s, len, step, true)
    } else {
      var s = start ?? count - 1
      var e = -1
      if let end { e = end < 0 ? end + count : end }
      if s < 0 { s += count }
      s = Swift.min(Swift.max(s, -1), count - 1)
      e = Swift.min(Swift.max(e, -1), count - 1)
      let len = s > e ? (s - e - step - 1) / (-step) : 0
      return (len > 0 ? s : 0, len, step, true)
    }
  }
}

extension TensorRangeExpression where Self == TensorSlice {
  /// The whole axis.
  public static var all: TensorSlice { TensorSlice() }
  /// A strided slice.
  public static func stride(from: Int? = nil, to: Int? = nil, by: Int) -> TensorSlice {
    TensorSlice(start: from, end: to, step: by)
  }
}

extension Int: TensorRangeExpression {
  public func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool) {
    let i = self < 0 ? self + count : self
    precondition(i >= 0 && i < count, "Tensor slice: index \(self) out of range 0..<\(count)")
    return (i, 1, 1, false)
  }
}

extension Range: TensorRangeExpression where Bound == Int {
  public func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool) {
    precondition(
      lowerBound >= 0 && upperBound <= count,
      "Tensor slice: range \(self) out of bounds 0..<\(count)")
    return (lowerBound, upperBound - lowerBound, 1, true)
  }
}

extension ClosedRange: TensorRangeExpression where Bound == Int {
  public func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool) {
    (lowerBound..<(upperBound + 1))._resolve(count: count)
  }
}

extension PartialRangeFrom: TensorRangeExpression where Bound == Int {
  public func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool) {
    (lowerBound..<count)._resolve(count: count)
  }
}

extension PartialRangeUpTo: TensorRangeExpression where Bound == Int {
  public func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool) {
    (0..<upperBound)._resolve(count: count)
  }
}

extension PartialRangeThrough: TensorRangeExpression where Bound == Int {
  public func _resolve(count: Int) -> (start: Int, length: Int, step: Int, keepsAxis: Bool) {
    (0..<(upperBound + 1))._resolve(count: count)
  }
}

extension Tensor {
  /// The 2-D transpose, as a view.
  @inlinable
  public func transposed() -> Tensor {
    precondition(rank == 2, "transposed(): needs a 2-D tensor, got shape \(_shape)")
    return Tensor(
      storage: storage, shape: [_shape[1], _shape[0]], strides: [_strides[1], _strides[0]],
      offset: _offset)
  }

  /// The axes reordered: result axis i is input axis `axes[i]`. A view.
  @inlinable
  public func permuted(_ axes: [Int]) -> Tensor {
    precondition(
      axes.count == rank && Set(axes) == Set(0..<rank),
      "permuted(_:): \(axes) is not a permutation of the axes of shape \(_shape)")
    return Tensor(
      storage: storage, shape: axes.map { _shape[$0] }, strides: axes.map { _strides[$0] },
      offset: _offset)
  }

  /// The same elements in row-major order with a new shape; one entry may be -1 (inferred).
  /// A view when the layout allows (always for a contiguous tensor; for a strided view when the
  /// regrouped axes are back to back), else a copy.
  ///
  /// ```swift
  /// let t = Tensor<Float>.arange(0, 24).reshaped([2, 3, 4])
  /// let v = t.permuted([1, 0, 2]).reshaped([3, 8])   // a copy: axes 1, 0 are not adjacent
  /// let w = t[.all, 1..<3].reshaped([4, 4])          // a copy; t.reshaped([6, 4]) is a view
  /// ```
  @inlinable
  public func reshaped(_ newShape: [Int]) -> Tensor {
    var shape = newShape
    let n = count
    if let k = shape.firstIndex(of: -1) {
      let rest = shape.enumerated().reduce(1) { $1.offset == k ? $0 : $0 * $1.element }
      precondition(
        rest > 0 && n % rest == 0,
        "reshaped(_:): cannot reshape \(_shape) (\(n) elements) to \(newShape)")
      shape[k] = n / rest
    }
    Tensor.checkShape(shape)
    precondition(
      Tensor.elementCount(shape) == n,
      "reshaped(_:): cannot reshape \(_shape) (\(n) elements) to \(newShape)")
    if n == 0 {
      return Tensor(
        storage: storage, shape: shape, strides: Tensor.contiguousStrides(shape), offset: _offset)
    }
    if let strides = Tensor.reshapedStrides(_shape, _strides, to: shape) {
      return Tensor(storage: storage, shape: shape, strides: strides, offset: _offset)
    }
    let c = copiedContiguous()
    return Tensor(
      storage: c.storage, shape: shape, strides: Tensor.contiguousStrides(shape), offset: 0)
  }

  /// Strides that read the layout (`shape`, `strides`) as `newShape` in row-major order, or nil
  /// when no such strides exist (the new axes would straddle a gap). Both shapes hold the same
  /// non-zero number of elements. Groups of old axes are matched with groups of new axes of
  /// equal product; a group of old axes can be regrouped only if its axes are back to back.
  @inlinable
  static func reshapedStrides(_ shape: [Int], _ strides: [Int], to newShape: [Int]) -> [Int]? {
    var od: [Int] = []
    var os: [Int] = []
    for i in 0..<shape.count where shape[i] != 1 {
      od.append(shape[i])
      os.append(strides[i])
    }
    var out = [Int](repeating: 1, count: newShape.count)
    var oi = 0
    var oj = 1
    var ni = 0
    var nj = 1
    while ni < newShape.count && oi < od.count {
      var np = newShape[ni]
      var op = od[oi]
      while np != op {
        if np < op {
          np *= newShape[nj]
          nj += 1
        } else {
          op *= od[oj]
          oj += 1
        }
      }
      for k in oi..<(oj - 1) where os[k] != od[k + 1] * os[k + 1] { return nil }
      out[nj - 1] = os[oj - 1]
      var k = nj - 1
      while k > ni {
        out[k - 1] = out[k] * newShape[k]
        k -= 1
      }
      ni = nj
      nj += 1
      oi = oj
      oj += 1
    }
    return out
  }

  /// Same as `reshaped(_:)`, variadic.
  @inlinable
  public func reshaped(_ newShape: Int...) -> Tensor { reshaped(newShape) }

  /// Flattened to one axis.
  @inlinable
  public func flattened() -> Tensor { reshaped([count]) }

  /// Without the axis `axis` (which must have length 1), or without every length-1 axis.
  @inlinable
  public func squeezed(axis: Int? = nil) -> Tensor {
    if let a = axis {
      let ax = a < 0 ? a + rank : a
      precondition(
        ax >= 0 && ax < rank && _shape[ax] == 1,
        "squeezed(axis:): axis \(a) of shape \(_shape) does not have length 1")
      var s = _shape
      var st = _strides
      s.remove(at: ax)
      st.remove(at: ax)
      return Tensor(storage: storage, shape: s, strides: st, offset: _offset)
    }
    var s: [Int] = []
    var st: [Int] = []
    for i in 0..<rank where _shape[i] != 1 {
      s.append(_shape[i])
      st.append(_strides[i])
    }
    return Tensor(storage: storage, shape: s, strides: st, offset: _offset)
  }

  /// With a new axis of length 1 inserted at `axis` (negative counts from the end).
  @inlinable
  public func unsqueezed(axis: Int) -> Tensor {
    let ax = axis < 0 ? axis + rank + 1 : axis
    precondition(
      ax >= 0 && ax <= rank, "unsqueezed(axis:): axis \(axis) out of range for shape \(_shape)")
    var s = _shape
    var st = _strides
    s.insert(1, at: ax)
    st.insert(ax < rank ? _strides[ax] * _shape[ax] : 1, at: ax)
    return Tensor(storage: storage, shape: s, strides: st, offset: _offset)
  }

  @inlinable
  func sliceLayout(_ ranges: [any TensorRangeExpression]) -> (
    shape: [Int], strides: [Int], offset: Int
  ) {
    precondition(
      ranges.count <= rank, "Tensor slice: \(ranges.count) ranges for shape \(_shape)")
    var shape: [Int] = []
    var strides: [Int] = []
    var off = _offset
    for i in 0..<rank {
      if i < ranges.count {
        let r = ranges[i]._resolve(count: _shape[i])
        off += r.start * _strides[i]
        if r.keepsAxis {
          shape.append(r.length)
          strides.append(r.step * _strides[i])
        }
      } else {
        shape.append(_shape[i])
        strides.append(_strides[i])
      }
    }
    return (shape, strides, off)
  }

  /// A view of a rectangular (optionally strided) region: `t[1..<3, .all]`,
  /// `t[.stride(by: 2)]`, `t[2, 1...]` (an integer drops its axis). Axes not named are taken
  /// whole, so `t[i]` is the sub-tensor at `i` along axis 0 (rank − 1) at every rank ≥ 1: row
  /// `i` of a matrix, a rank-0 tensor for a vector. Assigning writes through copy-on-write; the
  /// value assigned broadcasts to the region. A single element is `t[scalarAt: i, j]`.
  ///
  /// ```swift
  /// var t = Tensor<Float>.zeros([4, 3])
  /// t[1..<3, .all] = Tensor([1, 2, 3])       // rows 1 and 2 become [1, 2, 3]
  /// t[3] = Tensor([7, 8, 9])                  // row 3
  /// let reversed = t[.stride(by: -1)]         // rows in reverse order, a view
  /// let row = t[0]                            // row 0, a view of shape [3]
  /// let x = t[scalarAt: 3, 2]                 // 9, the element
  /// ```
  @inlinable
  public subscript(ranges: any TensorRangeExpression...) -> Tensor {
    get {
      let l = sliceLayout(ranges)
      return Tensor(storage: storage, shape: l.shape, strides: l.strides, offset: l.offset)
    }
    set {
      makeUnique()
      let l = sliceLayout(ranges)
      let sb = newValue.broadcastStrides(to: l.shape, op: "slice assignment")
      let dst = storage.base
      let src = newValue.storage.base
      _forEachRow2(
        shape: l.shape, stridesA: l.strides, offsetA: l.offset, stridesB: sb,
        offsetB: newValue._offset
      ) { oa, ob, n, sa, sbi in
        for i in 0..<n { dst[oa + i &* sa] = src[ob + i &* sbi] }
      }
      withExtendedLifetime(newValue) {}
    }
  }
}
