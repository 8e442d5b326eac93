/// A leaky piecewise-linear surrogate: slope 1/(2w) inside [−w, w], slope c outside.
///
///     derivative(x) = 1/(2w) for |x| ≤ w, else c
///     primitive(x)  = c·x + c·w            for x < −w
///                   = x/(2w) + 1/2         for |x| ≤ w
///                   = c·x − c·w + 1        for x > w
///
/// Defaults c = 0.01, w = 1.
///
/// ```swift
/// let plr = try PiecewiseLeakyRelu(c: 0.1, w: 0.5)
/// let g = plr.derivative(Tensor<Float>([0, 2]))   // [1, 0.1]
/// ```
public struct PiecewiseLeakyRelu: SurrogateGradient {
  public static let name = "PiecewiseLeakyRelu"
  /// Slope outside the window.
  public let c: Double
  /// Half-width of the window.
  public let w: Double

  /// The braintools defaults: c 0.01, w 1.
  @inlinable public init() { (c, w) = (0.01, 1) }

  /// Throws when c < 0 or w ≤ 0.
  @inlinable
  public init(c: Double = 0.01, w: Double = 1) throws(SurrogateError) {
    try Check.nonNegative(c, "c", Self.name)
    try Check.positive(w, "w", Self.name)
    (self.c, self.w) = (c, w)
  }

  public var parameters: [(name: String, value: Double)] { [("c", c), ("w", w)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    Swift.abs(x) > T(w) ? T(c) : T(1 / (2 * w))
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let (c, w) = (T(self.c), T(self.w))
    if x < -w { return c * x + c * w }
    if x > w { return c * x - c * w + 1 }
    return x / (2 * w) + 0.5
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
