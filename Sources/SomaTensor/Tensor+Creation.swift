import RealModule

/// A seedable pseudo-random generator (xoshiro256**, seeded through SplitMix64): the same
/// seed gives the same sequence on every platform. Pass it explicitly to random creators.
public struct SomaRandom: RandomNumberGenerator, Sendable {
  @usableFromInline var s0, s1, s2, s3: UInt64

  public init(seed: UInt64) {
    var x = seed
    func splitMix(_ x: inout UInt64) -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s0 = splitMix(&x)
    s1 = splitMix(&x)
    s2 = splitMix(&x)
    s3 = splitMix(&x)
  }

  @inlinable
  public mutating func next() -> UInt64 {
    let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
    let t = s1 << 17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << 45) | (s3 >> 19)
    return result
  }

  /// A uniform value in [0, 1) with 53 random bits (24 for Float).
  @inlinable
  public mutating func unitInterval<S: TensorScalar>(_: S.Type = S.self) -> S {
    if S.significandBitCount <= 23 {
      return S(next() >> 40) * S(1.0 / 16_777_216.0)
    }
    return S(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0))
  }

  /// A standard normal value (Box–Muller).
  @inlinable
  public mutating func normal<S: TensorScalar>(_: S.Type = S.self) -> S {
    var u1: Double = 0
    repeat { u1 = unitInterval(Double.self) } while u1 == 0
    let u2: Double = unitInterval(Double.self)
    return S(
      (-2 * Double.log(u1)).squareRoot() * Double.cos(2 * Double.pi * u2))
  }
}

extension Tensor {
  /// Zeros of `shape`.
  @inlinable public static func zeros(_ shape: [Int]) -> Tensor {
    Tensor(repeating: 0, shape: shape)
  }
  /// Ones of `shape`.
  @inlinable public static func ones(_ shape: [Int]) -> Tensor {
    Tensor(repeating: 1, shape: shape)
  }
  /// `value` repeated over `shape`.
  @inlinable public static func full(_ shape: [Int], _ value: Scalar) -> Tensor {
    Tensor(repeating: value, shape: shape)
  }
  /// Zeros shaped like `other`.
  @inlinable public static func zeros(like other: Tensor) -> Tensor { zeros(other.shape) }

  /// `start, start + step, …` up to but excluding `end` (1-D).
  @inlinable
  public static func arange(_ start: Scalar = 0, _ end: Scalar, step: Scalar = 1) -> Tensor {
    precondition(step != 0, "arange: step must not be 0")
    let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
    var out = Tensor(uninitializedShape: [n])
    for i in 0..<n { out.storage.base[i] = start + Scalar(i) * step }
    out._offset = 0
    return out
  }

  /// `count` evenly spaced values from `start` to `end` inclusive (1-D).
  @inlinable
  public static func linspace(_ start: Scalar, _ end: Scalar, count: Int) -> Tensor {
    precondition(count >= 0, "linspace: count must be ≥ 0, got \(count)")
    let out = Tensor(uninitializedShape: [count])
    if count == 1 { out.storage.base[0] = start }
    if count > 1 {
      let step = (end - start) / Scalar(count - 1)
      for i in 0..<count { out.storage.base[i] = start + Scalar(i) * step }
      out.storage.base[count - 1] = end
    }
    return out
  }

  /// The n×n identity (or n×m with ones on the diagonal).
  @inlinable
  public static func eye(_ n: Int, _ m: Int? = nil) -> Tensor {
    let cols = m ?? n
    let out = Tensor(repeating: 0, shape: [n, cols])
    for i in 0..<Swift.min(n, cols) { out.storage.base[i * cols + i] = 1 }
    return out
  }

  /// Uniform in [low, high), from `generator`.
  @inlinable
  public static func uniform<G: RandomNumberGenerator>(
    _ shape: [Int], low: Scalar = 0, high: Scalar = 1, using generator: inout G
  ) -> Tensor {
    let out = Tensor(uninitializedShape: shape)
    let p = out.storage.base
    for i in 0..<out.count {
      p[i] = Scalar.random(in: low..<high, using: &generator)
    }
    return out
  }

  /// Normal with `mean` and standard deviation `std`, from a `SomaRandom` generator.
  @inlinable
  public static func normal(
    _ shape: [Int], mean: Scalar = 0, std: Scalar = 1, using generator: inout SomaRandom
  ) -> Tensor {
    let out = Tensor(uninitializedShape: shape)
    let p = out.storage.base
    for i in 0..<out.count { p[i] = mean + std * generator.normal(Scalar.self) }
    return out
  }

  /// 1 with probability `p`, else 0, from a `SomaRandom` generator.
  @inlinable
  public static func bernoulli(_ shape: [Int], p prob: Scalar, using generator: inout SomaRandom)
    -> Tensor
  {
    precondition(prob >= 0 && prob <= 1, "bernoulli: p must be in [0, 1], got \(prob)")
    let out = Tensor(uninitializedShape: shape)
    let p = out.storage.base
    for i in 0..<out.count { p[i] = generator.unitInterval(Scalar.self) < prob ? 1 : 0 }
    return out
  }
}
