import RealModule

extension Tensor {
  /// Applies `transform` to every element into a fresh contiguous tensor.
  @inlinable
  public func map(_ transform: (Scalar) -> Scalar) -> Tensor {
    var out = Tensor(uninitializedShape: _shape)
    let po = out.storage.base
    if isContiguous {
      let pa = storage.base + _offset
      for i in 0..<count { po[i] = transform(pa[i]) }
    } else if var tiles = _TileCursor2(
      shape: _shape, stridesA: _strides, offsetA: _offset, stridesB: _strides, offsetB: _offset)
    {
      let base = storage.base
      let (ra, ca, ro) = (tiles.rowA, tiles.colA, tiles.colsTotal)
      while let t = tiles.next() {
        for i in 0..<t.rows {
          let pa = base + (t.oa &+ i &* ra)
          let pr = po + (t.oo &+ i &* ro)
          for j in 0..<t.cols { pr[j] = transform(pa[j &* ca]) }
        }
      }
    } else {
      let base = storage.base
      var pk = po
      var cursor = _RunCursor2(
        shape: _shape, stridesA: _strides, offsetA: _offset,
        stridesB: Tensor.contiguousStrides(_shape), offsetB: 0)
      let n = cursor.runLength
      let s = cursor.strideA
      while let (off, _) = cursor.next() {
        let pa = base + off
        if s == 1 {
          for i in 0..<n { pk[i] = transform(pa[i]) }
        } else {
          for i in 0..<n { pk[i] = transform(pa[i &* s]) }
        }
        pk += n
      }
    }
    out._offset = 0
    return out
  }

  /// Replaces every element `x` with `transform(x)` in place.
  @inlinable
  public mutating func updateEach(_ transform: (Scalar) -> Scalar) {
    if !isContiguous || !isKnownUniquelyReferenced(&storage) { self = copiedContiguous() }
    let p = storage.base + _offset
    for i in 0..<count { p[i] = transform(p[i]) }
  }

  @inlinable public static prefix func - (a: Tensor) -> Tensor { a.map { -$0 } }

  /// |x| elementwise.
  @inlinable public func abs() -> Tensor { map { Swift.abs($0) } }
  /// eˣ elementwise.
  @inlinable public func exp() -> Tensor { map { Scalar.exp($0) } }
  /// Natural logarithm elementwise.
  @inlinable public func log() -> Tensor { map { Scalar.log($0) } }
  /// Square root elementwise.
  @inlinable public func sqrt() -> Tensor { map { $0.squareRoot() } }
  /// x² elementwise.
  @inlinable public func square() -> Tensor { map { $0 * $0 } }
  /// tanh elementwise.
  @inlinable public func tanh() -> Tensor { map { Scalar.tanh($0) } }
  /// max(x, 0) elementwise.
  @inlinable public func relu() -> Tensor { map { $0 > 0 ? $0 : 0 } }
  /// −1, 0 or 1 by the sign of x (NaN stays NaN).
  @inlinable public func sign() -> Tensor { map { $0 > 0 ? 1 : ($0 < 0 ? -1 : $0) } }
  /// The spike: 1 where x ≥ 0, else 0.
  @inlinable public func heaviside() -> Tensor { map { $0 >= 0 ? 1 : 0 } }
  /// 1/(1+e⁻ˣ), computed without overflow for large |x|.
  @inlinable public func sigmoid() -> Tensor { map { Tensor.stableSigmoid($0) } }

  /// Limits every element to `lower...upper`.
  @inlinable
  public func clamped(to range: ClosedRange<Scalar>) -> Tensor {
    let lo = range.lowerBound
    let hi = range.upperBound
    return map { Swift.min(Swift.max($0, lo), hi) }
  }

  /// Limits every element to at least `lower` and at most `upper` (either may be nil).
  @inlinable
  public func clamped(min lower: Scalar? = nil, max upper: Scalar? = nil) -> Tensor {
    let lo = lower ?? -.infinity
    let hi = upper ?? .infinity
    return map { Swift.min(Swift.max($0, lo), hi) }
  }

  /// σ(x) without overflow: e⁻ˣ is only formed for x ≥ 0 and eˣ for x < 0.
  @inlinable
  public static func stableSigmoid(_ x: Scalar) -> Scalar {
    if x >= 0 {
      return 1 / (1 + Scalar.exp(-x))
    } else {
      let e = Scalar.exp(x)
      return e / (1 + e)
    }
  }
}
