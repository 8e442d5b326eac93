/// A Gaussian with two wider negative side lobes (Yin et al., 2021). No primitive.
///
///     derivative(x) = scale·[(1 + h)·N(x; 0, σ) − h·N(x; σ, s·σ) − h·N(x; −σ, s·σ)]
///
/// with N(x; μ, σ) the normal density. Defaults h = 0.15, s = 6, σ = 0.5, scale = 0.5.
///
/// ```swift
/// let mg = MultiGaussianGrad()
/// let g = mg.derivative(Tensor<Float>([0, 1]))
/// ```
public struct MultiGaussianGrad: SurrogateGradient, Hashable {
  public static let name = "MultiGaussianGrad"
  /// Weight of the side lobes.
  public let h: Double
  /// Width of the side lobes relative to sigma.
  public let s: Double
  /// Standard deviation of the central lobe.
  public let sigma: Double
  /// Overall scale.
  public let scale: Double

  /// The braintools defaults: h 0.15, s 6, sigma 0.5, scale 0.5.
  @inlinable public init() { (h, s, sigma, scale) = (0.15, 6, 0.5, 0.5) }

  /// Throws when h < 0, s ≤ 0, sigma ≤ 0 or scale ≤ 0.
  @inlinable
  public init(h: Double = 0.15, s: Double = 6, sigma: Double = 0.5, scale: Double = 0.5)
    throws(SurrogateError)
  {
    try Check.nonNegative(h, "h", Self.name)
    try Check.positive(s, "s", Self.name)
    try Check.positive(sigma, "sigma", Self.name)
    try Check.positive(scale, "scale", Self.name)
    (self.h, self.s, self.sigma, self.scale) = (h, s, sigma, scale)
  }

  public var parameters: [(name: String, value: Double)] {
    [("h", h), ("s", s), ("sigma", sigma), ("scale", scale)]
  }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let root2pi = (2 * Double.pi).squareRoot()
    let center = T(scale * (1 + h) / (root2pi * sigma))
    let side = T(scale * h / (root2pi * s * sigma))
    let k0 = T(1 / (2.0.squareRoot() * sigma))
    let k1 = T(1 / (2.0.squareRoot() * s * sigma))
    let mu = T(sigma)
    let z0 = x * k0
    let zp = (x - mu) * k1
    let zm = (x + mu) * k1
    return center * T.exp(-z0 * z0) - side * (T.exp(-zp * zp) + T.exp(-zm * zm))
  }
}
