/// A Gaussian surrogate derivative. No primitive.
///
///     derivative(x) = α·N(x; 0, σ) = α·exp(−x²/(2σ²)) / (√(2π)·σ)
///
/// Defaults σ = 0.5, α = 0.5.
///
/// ```swift
/// let gg = GaussianGrad()
/// let g = gg.derivative(0 as Double)   // 0.3989
/// ```
public struct GaussianGrad: SurrogateGradient {
  public static let name = "GaussianGrad"
  /// Standard deviation.
  public let sigma: Double
  /// Scale.
  public let alpha: Double

  /// The braintools defaults: sigma 0.5, alpha 0.5.
  @inlinable public init() { (sigma, alpha) = (0.5, 0.5) }

  /// Throws when sigma ≤ 0 or alpha ≤ 0.
  @inlinable
  public init(sigma: Double = 0.5, alpha: Double = 0.5) throws(SurrogateError) {
    try Check.positive(sigma, "sigma", Self.name)
    try Check.positive(alpha, "alpha", Self.name)
    (self.sigma, self.alpha) = (sigma, alpha)
  }

  public var parameters: [(name: String, value: Double)] { [("sigma", sigma), ("alpha", alpha)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let z = x * T(1 / (2.0.squareRoot() * sigma))
    return T(alpha / ((2 * Double.pi).squareRoot() * sigma)) * T.exp(-z * z)
  }
}
