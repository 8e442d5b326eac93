// Elementwise arithmetic on variables, broadcasting like `Tensor`; gradients of broadcast
// operands are summed back to the operand's shape.

extension Variable {
  @inlinable
  public static func + (a: Variable, b: Variable) -> Variable {
    let sa = a.shape
    let sb = b.shape
    return record(a.value + b.value, parents: [a, b]) { g in
      [unbroadcast(g, to: sa), unbroadcast(g, to: sb)]
    }
  }

  @inlinable
  public static func - (a: Variable, b: Variable) -> Variable {
    let sa = a.shape
    let sb = b.shape
    return record(a.value - b.value, parents: [a, b]) { g in
      [unbroadcast(g, to: sa), b.requiresGrad ? unbroadcast(-g, to: sb) : nil]
    }
  }

  @inlinable
  public static func * (a: Variable, b: Variable) -> Variable {
    let va = a.value
    let vb = b.value
    return record(va * vb, parents: [a, b]) { g in
      [
        a.requiresGrad ? unbroadcast(g * vb, to: va.shape) : nil,
        b.requiresGrad ? unbroadcast(g * va, to: vb.shape) : nil,
      ]
    }
  }

  @inlinable
  public static func / (a: Variable, b: Variable) -> Variable {
    let va = a.value
    let vb = b.value
    return record(va / vb, parents: [a, b]) { g in
      [
        a.requiresGrad ? unbroadcast(g / vb, to: va.shape) : nil,
        b.requiresGrad ? unbroadcast(-(g * va) / (vb * vb), to: vb.shape) : nil,
      ]
    }
  }

  @inlinable
  public static prefix func - (a: Variable) -> Variable {
    record(-a.value, parents: [a]) { g in [-g] }
  }

  // MARK: With constants

  @inlinable
  public static func + (a: Variable, s: Scalar) -> Variable {
    record(a.value + s, parents: [a]) { g in [g] }
  }
  @inlinable
  public static func + (s: Scalar, a: Variable) -> Variable { a + s }
  @inlinable
  public static func - (a: Variable, s: Scalar) -> Variable {
    record(a.value - s, parents: [a]) { g in [g] }
  }
  @inlinable
  public static func - (s: Scalar, a: Variable) -> Variable {
    record(s - a.value, parents: [a]) { g in [-g] }
  }
  @inlinable
  public static func * (a: Variable, s: Scalar) -> Variable {
    record(a.value * s, parents: [a]) { g in [g * s] }
  }
  @inlinable
  public static func * (s: Scalar, a: Variable) -> Variable { a * s }
  @inlinable
  public static func / (a: Variable, s: Scalar) -> Variable {
    record(a.value / s, parents: [a]) { g in [g / s] }
  }
  @inlinable
  public static func / (s: Scalar, a: Variable) -> Variable {
    let x = a.value
    return record(s / x, parents: [a]) { g in [Tensor.zip(g, x) { gi, xi in -s * gi / (xi * xi) }] }
  }

  /// `a + t` with a constant tensor `t` (no gradient for `t`).
  @inlinable
  public static func + (a: Variable, t: Tensor<Scalar>) -> Variable { a + Variable(t) }
  /// `a − t` with a constant tensor `t`.
  @inlinable
  public static func - (a: Variable, t: Tensor<Scalar>) -> Variable { a - Variable(t) }
  /// `a ⊙ t` with a constant tensor `t`.
  @inlinable
  public static func * (a: Variable, t: Tensor<Scalar>) -> Variable { a * Variable(t) }
  /// `a / t` with a constant tensor `t`.
  @inlinable
  public static func / (a: Variable, t: Tensor<Scalar>) -> Variable { a / Variable(t) }

  // MARK: Unary functions

  /// eˣ elementwise.
  @inlinable
  public func exp() -> Variable {
    let y = value.exp()
    return .record(y, parents: [self]) { g in [g * y] }
  }

  /// Natural logarithm elementwise.
  @inlinable
  public func log() -> Variable {
    let x = value
    return .record(x.log(), parents: [self]) { g in [g / x] }
  }

  /// max(x, 0) elementwise; the gradient at 0 is 0.
  @inlinable
  public func relu() -> Variable {
    let x = value
    return .record(x.relu(), parents: [self]) { g in
      [Tensor.zip(g, x) { gi, xi in xi > 0 ? gi : 0 }]
    }
  }

  /// The logistic sigmoid elementwise.
  @inlinable
  public func sigmoid() -> Variable {
    let y = value.sigmoid()
    return .record(y, parents: [self]) { g in
      [Tensor.zip(g, y) { gi, yi in gi * yi * (1 - yi) }]
    }
  }

  /// tanh elementwise.
  @inlinable
  public func tanh() -> Variable {
    let y = value.tanh()
    return .record(y, parents: [self]) { g in
      [Tensor.zip(g, y) { gi, yi in gi * (1 - yi * yi) }]
    }
  }

  /// x² elementwise.
  @inlinable
  public func square() -> Variable {
    let x = value
    return .record(x.square(), parents: [self]) { g in
      [Tensor.zip(g, x) { gi, xi in 2 * xi * gi }]
    }
  }

  /// √x elementwise.
  @inlinable
  public func sqrt() -> Variable {
    let y = value.sqrt()
    return .record(y, parents: [self]) { g in [Tensor.zip(g, y) { gi, yi in gi / (2 * yi) }] }
  }

  /// |x| elementwise; the gradient at 0 is 0.
  @inlinable
  public func abs() -> Variable {
    let x = value
    return .record(x.abs(), parents: [self]) { g in
      [Tensor.zip(g, x) { gi, xi in xi > 0 ? gi : (xi < 0 ? -gi : 0) }]
    }
  }

  /// Picks `a` where `mask` is non-zero and `b` elsewhere (all three broadcast). The mask is a
  /// constant; each branch gets the gradient where it was picked.
  @inlinable
  public static func `where`(_ mask: Tensor<Scalar>, _ a: Variable, _ b: Variable) -> Variable {
    let sa = a.shape
    let sb = b.shape
    return record(Tensor.where(mask, a.value, b.value), parents: [a, b]) { g in
      [
        a.requiresGrad ? unbroadcast(Tensor.where(mask, g, Tensor(0)), to: sa) : nil,
        b.requiresGrad ? unbroadcast(Tensor.where(mask, Tensor(0), g), to: sb) : nil,
      ]
    }
  }
}
