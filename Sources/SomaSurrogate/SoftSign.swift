/// The soft-sign surrogate.
///
///     derivative(x) = α / (2·(1 + |αx|)²)
///     primitive(x)  = (αx / (1 + |αx|) + 1) / 2
///
/// Default α = 1. The primitive is evaluated in a form that does not cancel for large |x|.
///
/// ```swift
/// let ss = try SoftSign(alpha: 4)
/// let g = ss.derivative(0.25 as Float)   // 0.5
/// ```
public struct SoftSign: SurrogateGradient {
  public static let name = "SoftSign"
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
    let a = T(alpha)
    let d = 1 + Swift.abs(a * x)
    return a / (2 * d * d)
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let ax = T(alpha) * x
    let h = 0.5 / (1 + Swift.abs(ax))
    return ax < 0 ? h : 1 - h
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
