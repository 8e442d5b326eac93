/// A logarithmic surrogate whose primitive has a nonzero sign at 0.
///
///     derivative(x) = 1 / (1/α + |x|)
///     primitive(x)  = sign(x)·ln(1 + |αx|),   sign(0) = 1
///
/// Default α = 1.
///
/// ```swift
/// let nsl = try NonzeroSignLog(alpha: 3)
/// let g = nsl.derivative(1 as Double)   // 0.75
/// ```
public struct NonzeroSignLog: SurrogateGradient {
  public static let name = "NonzeroSignLog"
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
  public func derivative<T: TensorScalar>(_ x: T) -> T { 1 / (T(1 / alpha) + Swift.abs(x)) }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let l = T.log(onePlus: Swift.abs(T(alpha) * x))
    return x < 0 ? -l : l
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
