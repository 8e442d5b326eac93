/// An inverse-square surrogate derivative. No primitive.
///
///     derivative(x) = 1 / (α·|x| + 1)²
///
/// Default α = 100.
///
/// ```swift
/// let isg = InvSquareGrad()
/// let g = isg.derivative(Tensor<Float>([0, 0.01]))   // [1, 0.25]
/// ```
public struct InvSquareGrad: SurrogateGradient, Hashable {
  public static let name = "InvSquareGrad"
  /// Steepness.
  public let alpha: Double

  /// The braintools default: alpha 100.
  @inlinable public init() { alpha = 100 }

  /// Throws when alpha ≤ 0.
  @inlinable
  public init(alpha: Double = 100) throws(SurrogateError) {
    try Check.positive(alpha, "alpha", Self.name)
    self.alpha = alpha
  }

  public var parameters: [(name: String, value: Double)] { [("alpha", alpha)] }
  /// The fused neuron kernels evaluate it inline.
  public var fusedKernel: SurrogateKernel? { .inverseSquare(alpha: alpha) }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let d = T(alpha) * Swift.abs(x) + 1
    return 1 / (d * d)
  }

  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    bulkDerivative(self, x, out, count)
  }
}
