/// S2NN (Suetake et al., 2023): a sigmoid derivative below the threshold and a slowly
/// decaying 1/(x + 1) tail above it.
///
///     derivative(x) = α·σ(αx)·(1 − σ(αx))     for x < 0
///                   = β / (x + 1)              for x ≥ 0
///     primitive(x)  = σ(αx)                    for x < 0
///                   = β·ln(x + 1 + ε) + 1/2    for x ≥ 0
///
/// with σ the logistic function. Defaults α = 4, β = 1, ε = 1e-8.
///
/// ```swift
/// let s2nn = S2NN()                                    // alpha 4, beta 1, epsilon 1e-8
/// let g = s2nn.derivative(Tensor<Float>([-1, 0, 1]))   // [0.0707, 1, 0.5]
/// ```
public struct S2NN: SurrogateGradient, Hashable {
  public static let name = "S2NN"
  /// Steepness of the sigmoid side.
  public let alpha: Double
  /// Height of the tail side.
  public let beta: Double
  /// Keeps the logarithm of the primitive finite.
  public let epsilon: Double

  /// The braintools defaults: alpha 4, beta 1, epsilon 1e-8.
  @inlinable
  public init() { (alpha, beta, epsilon) = (4, 1, 1e-8) }

  /// The fused neuron kernels evaluate S2NN inline.
  public var fusedKernel: SurrogateKernel? { .s2nn(alpha: alpha, beta: beta) }

  /// Throws when alpha ≤ 0, beta ≤ 0 or epsilon < 0.
  @inlinable
  public init(alpha: Double = 4, beta: Double = 1, epsilon: Double = 1e-8) throws(SurrogateError) {
    try Check.positive(alpha, "alpha", Self.name)
    try Check.positive(beta, "beta", Self.name)
    try Check.nonNegative(epsilon, "epsilon", Self.name)
    (self.alpha, self.beta, self.epsilon) = (alpha, beta, epsilon)
  }

  public var parameters: [(name: String, value: Double)] {
    [("alpha", alpha), ("beta", beta), ("epsilon", epsilon)]
  }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    if x < 0 {
      let a = T(alpha)
      return a * SurrogateMath.sigmoidDerivative(a * x)
    }
    return T(beta) / (x + 1)
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    if x < 0 { return SurrogateMath.sigmoid(T(alpha) * x) }
    return T(beta) * T.log(onePlus: x + T(epsilon)) + 0.5
  }
}
