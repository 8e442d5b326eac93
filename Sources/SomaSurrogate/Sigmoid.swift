/// The logistic surrogate.
///
///     derivative(x) = α·σ(αx)·(1 − σ(αx)),  computed as α·e/(1 + e)² with e = exp(−|αx|)
///     primitive(x)  = σ(αx) = 1 / (1 + exp(−αx))
///
/// Default α = 4.
///
/// ```swift
/// let sigmoid = try Sigmoid(alpha: 10)
/// let g = sigmoid.derivative(Tensor<Float>([-0.1, 0, 0.1]))   // [1.966, 2.5, 1.966]
/// ```
public struct Sigmoid: SurrogateGradient {
  public static let name = "Sigmoid"
  /// Steepness.
  public let alpha: Double

  /// The braintools default: alpha 4.
  @inlinable public init() { alpha = 4 }

  /// Throws when alpha ≤ 0.
  @inlinable
  public init(alpha: Double = 4) throws(SurrogateError) {
    try Check.positive(alpha, "alpha", Self.name)
    self.alpha = alpha
  }

  public var parameters: [(name: String, value: Double)] { [("alpha", alpha)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let a = T(alpha)
    return a * SurrogateMath.sigmoidDerivative(a * x)
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? { SurrogateMath.sigmoid(T(alpha) * x) }
}
