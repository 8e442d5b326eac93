import RealModule
// NumPy broadcasting for every binary operation.

extension Tensor {
  /// The shape two operands broadcast to under NumPy's rules (align right; a 1 stretches).
  /// Traps with a message naming both shapes when they are incompatible.
  @inlinable
  public static func broadcastShape(_ a: [Int], _ b: [Int], op: String = "broadcast") -> [Int] {
    let r = Swift.max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
      let da = i < r - a.count ? 1 : a[i - (r - a.count)]
      let db = i < r - b.count ? 1 : b[i - (r - b.count)]
      if da == db || db == 1 {
        out[i] = da
      } else if da == 1 {
        out[i] = db
      } else {
        preconditionFailure("\(op): shapes \(a) and \(b) cannot be broadcast together")
      }
    }
    return out
  }

  /// Strides that read `self` as if it had `shape` (0 on stretched axes).
  @inlinable
  func broadcastStrides(to shape: [Int], op: String) -> [Int] {
    let r = shape.count
    precondition(
      r >= rank, "\(op): shape \(_shape) cannot be broadcast to \(shape)")
    var out = [Int](repeating: 0, count: r)
    for i in 0..<rank {
      let j = i + r - rank
      if _shape[i] == shape[j] {
        out[j] = _shape[i] == 1 ? 0 : _strides[i]
      } else if _shape[i] == 1 {
        out[j] = 0
      } else {
        preconditionFailure("\(op): shape \(_shape) cannot be broadcast to \(shape)")
      }
    }
    return out
  }

  /// A view of `self` broadcast to `shape` (stride 0 on stretched axes); copies nothing.
  @inlinable
  public func expanded(to shape: [Int]) -> Tensor {
    let s = broadcastStrides(to: shape, op: "expanded(to:)")
    return Tensor(storage: storage, shape: shape, strides: s, offset: _offset)
  }

  /// Applies `op` elementwise to two broadcast operands into a fresh contiguous tensor.
  @inlinable
  public static func zip(
    _ a: Tensor, _ b: Tensor, op name: String = "zip", _ op: (Scalar, Scalar) -> Scalar
  ) -> Tensor {
    if a._shape == b._shape && a.isContiguous && b.isContiguous {
      var out = Tensor(uninitializedShape: a._shape)
      let n = a.count
      let pa = a.storage.base + a._offset
      let pb = b.storage.base + b._offset
      let po = out.storage.base
      for i in 0..<n { po[i] = op(pa[i], pb[i]) }
      out._offset = 0
      return out
    }
    let shape = broadcastShape(a._shape, b._shape, op: name)
    let sa = a.broadcastStrides(to: shape, op: name)
    let sb = b.broadcastStrides(to: shape, op: name)
    let out = Tensor(uninitializedShape: shape)
    let baseA = a.storage.base
    let baseB = b.storage.base
    var po = out.storage.base
    if var tiles = _TileCursor2(
      shape: shape, stridesA: sa, offsetA: a._offset, stridesB: sb, offsetB: b._offset)
    {
      let (ra, ca, rb, cb, ro) = (tiles.rowA, tiles.colA, tiles.rowB, tiles.colB, tiles.colsTotal)
      while let t = tiles.next() {
        for i in 0..<t.rows {
          let pa = baseA + (t.oa &+ i &* ra)
          let pb = baseB + (t.ob &+ i &* rb)
          let pr = po + (t.oo &+ i &* ro)
          for j in 0..<t.cols { pr[j] = op(pa[j &* ca], pb[j &* cb]) }
        }
      }
      return withExtendedLifetime((a, b)) { out }
    }
    var cursor = _RunCursor2(
      shape: shape, stridesA: sa, offsetA: a._offset, stridesB: sb, offsetB: b._offset)
    let n = cursor.runLength
    let isa = cursor.strideA
    let isb = cursor.strideB
    while let (oa, ob) = cursor.next() {
      let pa = baseA + oa
      let pb = baseB + ob
      if isa == 1 && isb == 1 {
        for i in 0..<n { po[i] = op(pa[i], pb[i]) }
      } else if isa == 1 && isb == 0 {
        let v = pb[0]
        for i in 0..<n { po[i] = op(pa[i], v) }
      } else if isa == 0 && isb == 1 {
        let v = pa[0]
        for i in 0..<n { po[i] = op(v, pb[i]) }
      } else {
        for i in 0..<n { po[i] = op(pa[i &* isa], pb[i &* isb]) }
      }
      po += n
    }
    return withExtendedLifetime((a, b)) { out }
  }

  /// Applies `op(self[i], other[i])` in place; `other` must broadcast to `self`'s shape.
  @inlinable
  public mutating func update(
    with other: Tensor, op name: String = "update", _ op: (Scalar, Scalar) -> Scalar
  ) {
    let sb = other.broadcastStrides(to: _shape, op: name)
    if !isContiguous || !isKnownUniquelyReferenced(&storage) { self = copiedContiguous() }
    var po = storage.base + _offset
    let baseB = other.storage.base
    if var tiles = _TileCursor2(
      shape: _shape, stridesA: Tensor.contiguousStrides(_shape), offsetA: 0, stridesB: sb,
      offsetB: other._offset)
    {
      let (rb, cb, ro) = (tiles.rowB, tiles.colB, tiles.colsTotal)
      while let t = tiles.next() {
        for i in 0..<t.rows {
          let pb = baseB + (t.ob &+ i &* rb)
          let pr = po + (t.oo &+ i &* ro)
          for j in 0..<t.cols { pr[j] = op(pr[j], pb[j &* cb]) }
        }
      }
      withExtendedLifetime(other) {}
      return
    }
    var cursor = _RunCursor2(
      shape: _shape, stridesA: Tensor.contiguousStrides(_shape), offsetA: 0, stridesB: sb,
      offsetB: other._offset)
    let n = cursor.runLength
    let isb = cursor.strideB
    while let (_, ob) = cursor.next() {
      let pb = baseB + ob
      if isb == 1 {
        for i in 0..<n { po[i] = op(po[i], pb[i]) }
      } else if isb == 0 {
        let v = pb[0]
        for i in 0..<n { po[i] = op(po[i], v) }
      } else {
        for i in 0..<n { po[i] = op(po[i], pb[i &* isb]) }
      }
      po += n
    }
    withExtendedLifetime(other) {}
  }

  // MARK: Arithmetic

  @inlinable public static func + (a: Tensor, b: Tensor) -> Tensor { zip(a, b, op: "+", +) }
  @inlinable public static func - (a: Tensor, b: Tensor) -> Tensor { zip(a, b, op: "-", -) }
  @inlinable public static func * (a: Tensor, b: Tensor) -> Tensor { zip(a, b, op: "*", *) }
  @inlinable public static func / (a: Tensor, b: Tensor) -> Tensor { zip(a, b, op: "/", /) }

  @inlinable public static func + (a: Tensor, s: Scalar) -> Tensor { a.map { $0 + s } }
  @inlinable public static func - (a: Tensor, s: Scalar) -> Tensor { a.map { $0 - s } }
  @inlinable public static func * (a: Tensor, s: Scalar) -> Tensor { a.map { $0 * s } }
  @inlinable public static func / (a: Tensor, s: Scalar) -> Tensor { a.map { $0 / s } }
  @inlinable public static func + (s: Scalar, a: Tensor) -> Tensor { a.map { s + $0 } }
  @inlinable public static func - (s: Scalar, a: Tensor) -> Tensor { a.map { s - $0 } }
  @inlinable public static func * (s: Scalar, a: Tensor) -> Tensor { a.map { s * $0 } }
  @inlinable public static func / (s: Scalar, a: Tensor) -> Tensor { a.map { s / $0 } }

  @inlinable public static func += (a: inout Tensor, b: Tensor) { a.update(with: b, op: "+=", +) }
  @inlinable public static func -= (a: inout Tensor, b: Tensor) { a.update(with: b, op: "-=", -) }
  @inlinable public static func *= (a: inout Tensor, b: Tensor) { a.update(with: b, op: "*=", *) }
  @inlinable public static func /= (a: inout Tensor, b: Tensor) { a.update(with: b, op: "/=", /) }
  @inlinable public static func += (a: inout Tensor, s: Scalar) { a.updateEach { $0 + s } }
  @inlinable public static func -= (a: inout Tensor, s: Scalar) { a.updateEach { $0 - s } }
  @inlinable public static func *= (a: inout Tensor, s: Scalar) { a.updateEach { $0 * s } }
  @inlinable public static func /= (a: inout Tensor, s: Scalar) { a.updateEach { $0 / s } }

  /// Elementwise minimum, broadcasting. NaN in either operand gives NaN.
  @inlinable
  public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
    zip(a, b, op: "minimum") { x, y in x.isNaN || y.isNaN ? .nan : Swift.min(x, y) }
  }
  /// Elementwise maximum, broadcasting. NaN in either operand gives NaN.
  @inlinable
  public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
    zip(a, b, op: "maximum") { x, y in x.isNaN || y.isNaN ? .nan : Swift.max(x, y) }
  }
  /// Elementwise `a` to the power `b`, broadcasting.
  @inlinable
  public static func pow(_ a: Tensor, _ b: Tensor) -> Tensor {
    zip(a, b, op: "pow") { x, y in Scalar.pow(x, y) }
  }
  /// Elementwise `self` to the power `exponent`.
  @inlinable
  public func pow(_ exponent: Scalar) -> Tensor {
    if exponent == 2 { return map { $0 * $0 } }
    return map { Scalar.pow($0, exponent) }
  }

  // MARK: Comparisons (masks of 0 and 1)

  @inlinable public static func .< (a: Tensor, b: Tensor) -> Tensor {
    zip(a, b, op: ".<") { $0 < $1 ? 1 : 0 }
  }
  @inlinable public static func .<= (a: Tensor, b: Tensor) -> Tensor {
    zip(a, b, op: ".<=") { $0 <= $1 ? 1 : 0 }
  }
  @inlinable public static func .> (a: Tensor, b: Tensor) -> Tensor {
    zip(a, b, op: ".>") { $0 > $1 ? 1 : 0 }
  }
  @inlinable public static func .>= (a: Tensor, b: Tensor) -> Tensor {
    zip(a, b, op: ".>=") { $0 >= $1 ? 1 : 0 }
  }
  @inlinable public static func .== (a: Tensor, b: Tensor) -> Tensor {
    zip(a, b, op: ".==") { $0 == $1 ? 1 : 0 }
  }
  @inlinable public static func .!= (a: Tensor, b: Tensor) -> Tensor {
    zip(a, b, op: ".!=") { $0 != $1 ? 1 : 0 }
  }
  @inlinable public static func .< (a: Tensor, s: Scalar) -> Tensor { a.map { $0 < s ? 1 : 0 } }
  @inlinable public static func .<= (a: Tensor, s: Scalar) -> Tensor { a.map { $0 <= s ? 1 : 0 } }
  @inlinable public static func .> (a: Tensor, s: Scalar) -> Tensor { a.map { $0 > s ? 1 : 0 } }
  @inlinable public static func .>= (a: Tensor, s: Scalar) -> Tensor { a.map { $0 >= s ? 1 : 0 } }
  @inlinable public static func .== (a: Tensor, s: Scalar) -> Tensor { a.map { $0 == s ? 1 : 0 } }
  @inlinable public static func .!= (a: Tensor, s: Scalar) -> Tensor { a.map { $0 != s ? 1 : 0 } }
  @inlinable public static func .< (s: Scalar, a: Tensor) -> Tensor { a.map { s < $0 ? 1 : 0 } }
  @inlinable public static func .<= (s: Scalar, a: Tensor) -> Tensor { a.map { s <= $0 ? 1 : 0 } }
  @inlinable public static func .> (s: Scalar, a: Tensor) -> Tensor { a.map { s > $0 ? 1 : 0 } }
  @inlinable public static func .>= (s: Scalar, a: Tensor) -> Tensor { a.map { s >= $0 ? 1 : 0 } }

  /// Picks `a` where `mask` is non-zero and `b` elsewhere; all three broadcast together.
  @inlinable
  public static func `where`(_ mask: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = broadcastShape(
      broadcastShape(mask._shape, a._shape, op: "where"), b._shape, op: "where")
    let m = mask.expanded(to: shape).contiguous()
    let x = a.expanded(to: shape).contiguous()
    let y = b.expanded(to: shape).contiguous()
    let out = Tensor(uninitializedShape: shape)
    let pm = m.storage.base + m._offset
    let px = x.storage.base + x._offset
    let py = y.storage.base + y._offset
    let po = out.storage.base
    for i in 0..<out.count { po[i] = pm[i] != 0 ? px[i] : py[i] }
    return withExtendedLifetime((m, x, y)) { out }
  }
}

/// Picks `a` where `mask` is non-zero and `b` elsewhere, broadcasting all three.
@inlinable
public func `where`<S>(_ mask: Tensor<S>, _ a: Tensor<S>, _ b: Tensor<S>) -> Tensor<S> {
  Tensor.where(mask, a, b)
}
