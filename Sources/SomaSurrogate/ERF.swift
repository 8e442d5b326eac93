/// The Gaussian-error-function surrogate.
///
///     derivative(x) = (α/√π)·exp(−α²x²)
///     primitive(x)  = erfc(−αx)/2 = (1 + erf(αx))/2
///
/// Default α = 1.
///
/// ```swift
/// let erf = ERF()
/// let g = erf.derivative(0 as Double)   // 0.5642 (1/√π)
/// ```
public struct ERF: SurrogateGradient {
  public static let name = "ERF"
  /// Steepness.
  public let alpha: Double

  /// The braintools default: alpha 1.
  @inlinable public init() { alpha = 1 }

  /// Throws when alpha ≤ 0.
  @inlinable
  public init(alpha: Double = 1) throws(SurrogateError) {
    try Check.positive(alpha, "alpha", Self.name)
    self.alpha = alpha
  }

  public var parameters: [(name: String, value: Double)] { [("alpha", alpha)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let z = T(alpha) * x
    return T(alpha / Double.pi.squareRoot()) * T.exp(-z * z)
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? { T.erfc(-T(alpha) * x) / 2 }
}
