// Numerically careful building blocks shared by the surrogates.

@usableFromInline
enum SurrogateMath {
  /// The logistic function 1/(1 + e^(−z)), without overflow for any z.
  @inlinable @inline(__always)
  static func sigmoid<T: TensorScalar>(_ z: T) -> T {
    if z >= 0 { return 1 / (1 + T.exp(-z)) }
    let e = T.exp(z)
    return e / (1 + e)
  }

  /// σ'(z) = σ(z)(1 − σ(z)) written as e/(1 + e)² with e = exp(−|z|): no cancellation in
  /// Float and no overflow.
  @inlinable @inline(__always)
  static func sigmoidDerivative<T: TensorScalar>(_ z: T) -> T {
    let e = T.exp(-Swift.abs(z))
    let d = 1 + e
    return e / (d * d)
  }
}

extension SurrogateMath {
  /// v reduced exactly into [−1, 1] modulo 2 (v in half-turns).
  @inlinable @inline(__always)
  static func reduceHalfTurns<T: TensorScalar>(_ v: T) -> T {
    v.addingProduct(-2, (v / 2).rounded())
  }

  /// cos(π·w) for w in [−1, 1], exact at the zeros w = ±1/2 (it evaluates sin(π·(1/2 − |w|)),
  /// whose argument is exact there).
  @inlinable @inline(__always)
  static func cosPi<T: TensorScalar>(_ w: T) -> T {
    let a = Swift.abs(w)
    if a <= 0.25 { return T.cos(T.pi * a) }
    return T.sin(T.pi * (0.5 - a))
  }

  /// sin(π·w) for w in [−1, 1], exact at w = 0 and ±1.
  @inlinable @inline(__always)
  static func sinPi<T: TensorScalar>(_ w: T) -> T {
    let a = Swift.abs(w)
    let s = a <= 0.5 ? T.sin(T.pi * a) : T.sin(T.pi * (1 - a))
    return w < 0 ? -s : s
  }
}
