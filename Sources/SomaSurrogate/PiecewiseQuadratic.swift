/// A quadratic bump on [−1/α, 1/α] (Esser et al., 2016).
///
///     derivative(x) = α − α²·|x|                    for |x| ≤ 1/α, else 0
///     primitive(x)  = −α²·|x|·x/2 + α·x + 1/2       for |x| ≤ 1/α
///                   = 0 for x < −1/α,  1 for x > 1/α
///
/// Default α = 1.
///
/// ```swift
/// let pq = PiecewiseQuadratic()
/// let g = pq.derivative(0.5 as Double)   // 0.5
/// ```
public struct PiecewiseQuadratic: SurrogateGradient {
  public static let name = "PiecewiseQuadratic"
  /// Inverse half-width of the bump.
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
    let ax = Swift.abs(x)
    return ax > 1 / a ? 0 : a - a * a * ax
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let a = T(alpha)
    let w = 1 / a
    if x < -w { return 0 }
    if x > w { return 1 }
    return -a * a * Swift.abs(x) * x / 2 + a * x + 0.5
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
