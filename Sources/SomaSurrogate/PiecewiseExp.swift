/// A two-sided exponential (Neftci et al., 2019).
///
///     derivative(x) = (α/2)·exp(−α·|x|)
///     primitive(x)  = exp(αx)/2 for x < 0,  1 − exp(−αx)/2 for x ≥ 0
///
/// Default α = 1.
///
/// ```swift
/// let pe = try PiecewiseExp(alpha: 3)
/// let g = pe.derivative(Tensor<Float>([0, 1]))   // [1.5, 0.0747]
/// ```
public struct PiecewiseExp: SurrogateGradient {
  public static let name = "PiecewiseExp"
  /// Decay rate.
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
    let a = T(alpha)
    return a / 2 * T.exp(-a * Swift.abs(x))
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let a = T(alpha)
    return x < 0 ? T.exp(a * x) / 2 : 1 - T.exp(-a * x) / 2
  }
}
