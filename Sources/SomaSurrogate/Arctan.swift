/// The arctangent surrogate (Fang et al., 2021).
///
///     derivative(x) = (α/2) / (1 + (π·α·x/2)²)
///     primitive(x)  = arctan(π·α·x/2)/π + 1/2
///
/// Default α = 1. For π·α·x/2 < −1 the primitive is evaluated as arctan(−2/(παx))/π, which
/// does not cancel.
///
/// ```swift
/// let arctan = Arctan()
/// let g = arctan.derivative(Tensor<Float>([0, 1]))   // [0.5, 0.1442]
/// ```
public struct Arctan: SurrogateGradient, Hashable {
  public static let name = "Arctan"
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
  public var fusedKernel: SurrogateKernel? { .arctan(alpha: alpha) }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let z = T(Double.pi / 2 * alpha) * x
    return T(alpha / 2) / (1 + z * z)
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let z = T(Double.pi / 2 * alpha) * x
    if z < -1 { return T.atan(-1 / z) / T.pi }
    return T.atan(z) / T.pi + 0.5
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
