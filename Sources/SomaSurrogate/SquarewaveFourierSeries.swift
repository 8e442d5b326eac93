/// The first n odd harmonics of a square wave of period T (primitive) and their derivative.
///
///     ω = 2π/T,  c_i = 2i − 1
///     derivative(x) = (4/T)·Σ_{i=1…n} cos(c_i·ω·x)
///     primitive(x)  = 1/2 + (2/π)·Σ_{i=1…n} sin(c_i·ω·x)/c_i
///
/// Defaults n = 2, T = 8. Both are periodic in x with period T, so x is first reduced exactly
/// to [−T/2, T/2] (a fused multiply-add) and the phases are carried in two parts and evaluated
/// as cos(π·w)/sin(π·w); Float stays within 1e-7 of the exact value at any x.
///
/// ```swift
/// let sw = try SquarewaveFourierSeries(n: 4, tPeriod: 6)
/// let g = sw.derivative(0 as Double)   // 2.667 (n·4/T)
/// ```
public struct SquarewaveFourierSeries: SurrogateGradient {
  public static let name = "SquarewaveFourierSeries"
  /// The number of odd harmonics.
  public let n: Int
  /// The period T (braintools' `t_period`).
  public let tPeriod: Double

  /// The braintools defaults: n 2, t_period 8.
  @inlinable public init() { (n, tPeriod) = (2, 8) }

  /// Throws when n < 1 or tPeriod ≤ 0.
  @inlinable
  public init(n: Int = 2, tPeriod: Double = 8) throws(SurrogateError) {
    guard n >= 1 else {
      throw .invalidParameter(
        surrogate: Self.name, parameter: "n", requirement: "an integer ≥ 1", value: Double(n))
    }
    try Check.positive(tPeriod, "t_period", Self.name)
    (self.n, self.tPeriod) = (n, tPeriod)
  }

  public var parameters: [(name: String, value: Double)] {
    [("n", Double(n)), ("t_period", tPeriod)]
  }

  /// ω·x in half-turns (ω·x = π·u mod 2π) as an unevaluated sum hi + lo: x is reduced exactly
  /// into [−T/2, T/2] by a fused multiply-add, then divided by T/2 keeping the remainder.
  @inlinable @inline(__always)
  func halfTurns<T: TensorScalar>(_ x: T) -> (hi: T, lo: T) {
    let period = T(tPeriod)
    let half = period / 2
    let k = (x / period).rounded()
    let r = x.addingProduct(-k, period)
    let hi = r / half
    let lo = r.addingProduct(-hi, half) / half
    return (hi, lo)
  }

  /// c·u reduced into about [−1, 1] half-turns, keeping the rounding error of c·u.
  @inlinable @inline(__always)
  static func harmonic<T: TensorScalar>(_ c: T, _ u: (hi: T, lo: T)) -> T {
    let v = c * u.hi
    let error = (-v).addingProduct(c, u.hi)
    return SurrogateMath.reduceHalfTurns(v) + (error + c * u.lo)
  }

  @inlinable
  public func derivative<T: TensorScalar>(_ x: T) -> T {
    let u = halfTurns(x)
    var sum: T = 0
    for i in 0..<n { sum += SurrogateMath.cosPi(Self.harmonic(T(2 * i + 1), u)) }
    return T(4 / tPeriod) * sum
  }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? {
    let u = halfTurns(x)
    var sum: T = 0
    for i in 0..<n {
      let c = T(2 * i + 1)
      sum += SurrogateMath.sinPi(Self.harmonic(c, u)) / c
    }
    return 0.5 + T(2 / Double.pi) * sum
  }
}
