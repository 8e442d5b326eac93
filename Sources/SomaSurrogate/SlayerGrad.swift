/// The SLAYER surrogate derivative (Shrestha & Orchard, 2018). No primitive.
///
///     derivative(x) = exp(−α·|x|)
///
/// Default α = 1.
///
/// ```swift
/// let sg = try SlayerGrad(alpha: 2)
/// let g = sg.derivative(Tensor<Float>([0, 1]))   // [1, 0.1353]
/// ```
public struct SlayerGrad: SurrogateGradient {
  public static let name = "SlayerGrad"
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
  public func derivative<T: TensorScalar>(_ x: T) -> T { T.exp(-T(alpha) * Swift.abs(x)) }
}
