/// The q-PseudoSpike surrogate (Herranz-Celotti & Rouat, 2022), with a tail whose fatness is
/// set by α.
///
///     c = 2/(α + 1)
///     derivative(x) = (1 + c·|x|)^(−α)
///     primitive(x)  = 1/2 + sign(x)·(1 − (1 + c·|x|)^(1−α)) / (c·(α − 1))
///                     (1/2 + sign(x)·ln(1 + c·|x|)/c when α = 1)
///
/// Default α = 2. Evaluated through log1p/expm1, so it stays accurate near 0.
///
/// ```swift
/// let q = QPseudoSpike()
/// let g = q.derivative(-1 as Double)   // 0.36
/// ```
public struct QPseudoSpike: SurrogateGradient, Hashable {
  public static let name = "QPseudoSpike"
  /// Tail exponent.
  public let alpha: Double

  /// The braintools default: alpha 2.
  @inlinable public init() { alpha = 2 }

  /// Throws when alpha ≤ 0.
  @inlinable
  public init(alpha: Double = 2) throws(SurrogateError) {
    try Check.positive(alpha, "alpha", Self.name)
    self.alpha = alpha
  }

  public var parameters: [(name: String, value: Double)] { [("alpha", alpha)] }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let l = T.log(onePlus: T(2 / (alpha + 1)) * Swift.abs(x))
    return T.exp(-T(alpha) * l)
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let c = 2 / (alpha + 1)
    let l = T.log(onePlus: T(c) * Swift.abs(x))
    let half: T
    if alpha == 1 {
      half = l / T(c)
    } else {
      half = -T.expMinusOne(T(1 - alpha) * l) / T(c * (alpha - 1))
    }
    return x < 0 ? 0.5 - half : 0.5 + half
  }
}
