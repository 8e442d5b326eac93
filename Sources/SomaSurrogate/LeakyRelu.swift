/// The leaky-ReLU surrogate: slope α below the threshold, β above.
///
///     derivative(x) = α for x < 0, β for x ≥ 0
///     primitive(x)  = α·x for x < 0, β·x for x ≥ 0
///
/// Defaults α = 0.1, β = 1.
///
/// ```swift
/// let lr = LeakyRelu()
/// let g = lr.derivative(Tensor<Float>([-1, 1]))   // [0.1, 1]
/// ```
public struct LeakyRelu: SurrogateGradient {
  public static let name = "LeakyRelu"
  /// Slope below the threshold.
  public let alpha: Double
  /// Slope above the threshold.
  public let beta: Double

  /// The braintools defaults: alpha 0.1, beta 1.
  @inlinable public init() { (alpha, beta) = (0.1, 1) }

  /// Throws when alpha < 0 or beta ≤ 0.
  @inlinable
  public init(alpha: Double = 0.1, beta: Double = 1) throws(SurrogateError) {
    try Check.nonNegative(alpha, "alpha", Self.name)
    try Check.positive(beta, "beta", Self.name)
    (self.alpha, self.beta) = (alpha, beta)
  }

  public var parameters: [(name: String, value: Double)] { [("alpha", alpha), ("beta", beta)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T { x < 0 ? T(alpha) : T(beta) }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? { x < 0 ? T(alpha) * x : T(beta) * x }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
