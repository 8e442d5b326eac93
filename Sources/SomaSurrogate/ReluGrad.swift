/// A triangular (ReLU-shaped) surrogate derivative. No primitive.
///
///     derivative(x) = α·max(0, width − |x|)
///
/// Defaults α = 0.3, width = 1.
///
/// ```swift
/// let rg = ReluGrad()
/// let g = rg.derivative(Tensor<Float>([0, 0.5, 2]))   // [0.3, 0.15, 0]
/// ```
public struct ReluGrad: SurrogateGradient {
  public static let name = "ReluGrad"
  /// Height per unit of width.
  public let alpha: Double
  /// Half-width of the triangle.
  public let width: Double

  /// The braintools defaults: alpha 0.3, width 1.
  @inlinable public init() { (alpha, width) = (0.3, 1) }

  /// Throws when alpha ≤ 0 or width ≤ 0.
  @inlinable
  public init(alpha: Double = 0.3, width: Double = 1) throws(SurrogateError) {
    try Check.positive(alpha, "alpha", Self.name)
    try Check.positive(width, "width", Self.name)
    (self.alpha, self.width) = (alpha, width)
  }

  public var parameters: [(name: String, value: Double)] { [("alpha", alpha), ("width", width)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    T(alpha) * Swift.max(0, T(width) - Swift.abs(x))
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
