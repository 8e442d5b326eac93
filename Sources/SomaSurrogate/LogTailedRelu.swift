/// The log-tailed ReLU surrogate (Cai et al., 2017).
///
///     derivative(x) = α for x ≤ 0,  1 for 0 < x ≤ 1,  1/x for x > 1
///     primitive(x)  = α·x for x ≤ 0,  x for 0 < x ≤ 1,  ln(x) + 1 for x > 1
///
/// Default α = 0.
///
/// ```swift
/// let ltr = try LogTailedRelu(alpha: 0.2)
/// let g = ltr.derivative(Tensor<Double>([-1, 0.5, 2]))   // [0.2, 1, 0.5]
/// ```
public struct LogTailedRelu: SurrogateGradient {
  public static let name = "LogTailedRelu"
  /// Slope below the threshold.
  public let alpha: Double

  /// The braintools default: alpha 0.
  @inlinable public init() { alpha = 0 }

  /// Throws when alpha < 0.
  @inlinable
  public init(alpha: Double = 0) throws(SurrogateError) {
    try Check.nonNegative(alpha, "alpha", Self.name)
    self.alpha = alpha
  }

  public var parameters: [(name: String, value: Double)] { [("alpha", alpha)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    if x > 1 { return 1 / x }
    return x <= 0 ? T(alpha) : 1
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    if x > 1 { return T.log(x) + 1 }
    return x <= 0 ? T(alpha) * x : x
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
