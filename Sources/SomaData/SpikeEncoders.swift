import SomaTensor

/// Spikes made from one batch of inputs: a time-major tensor and how dense it is.
public struct EncodedSpikes: Sendable {
  /// The spikes, [T, batch, features], 0 or 1 (or the input value itself for
  /// `DirectCurrentEncoder`).
  public var spikes: Tensor<Float>
  /// How many entries of `spikes` are non-zero.
  public var nonzeroCount: Int
  /// The fraction of entries that are non-zero (`nonzeroCount / spikes.count`).
  public var density: Double {
    spikes.count == 0 ? 0 : Double(nonzeroCount) / Double(spikes.count)
  }
}

/// Turns a batch of inputs in [0, 1], shaped [batch, features], into time-major input
/// currents or spikes, shaped [T, batch, features].
public protocol SpikeEncoder {
  /// The number of time steps T.
  var timeSteps: Int { get }
  /// Encodes `inputs` ([batch, features]); mutating because a random encoder advances its
  /// generator.
  mutating func encode(_ inputs: Tensor<Float>) -> EncodedSpikes
}

/// One spike of an event-form spike train: at time step `step`, input `index` fires.
public struct SpikeEvent: Hashable, Sendable, Comparable {
  public var step: Int32
  public var index: Int32
  public init(step: Int, index: Int) {
    self.step = Int32(step)
    self.index = Int32(index)
  }
  /// Ordered by time step, then by input index.
  public static func < (a: SpikeEvent, b: SpikeEvent) -> Bool {
    (a.step, a.index) < (b.step, b.index)
  }
}

/// Time-to-first-spike (latency) coding as in SpyTorch's Fashion-MNIST tutorial: each input
/// spikes at most once, and brighter inputs spike earlier.
///
/// An input x at or below the threshold θ (default 0.2) never spikes. Above it, x fires once at
/// step `floor(τ · ln(x / (x − θ)))` with τ = 20 steps (τ_eff = 20 ms at dt = 1 ms), if that
/// step is < T. Pixel 255 (x = 1) fires at step 4; x → θ⁺ fires ever later, so the pixel value
/// 51 (x = 51/255 = 0.2 exactly, where ln(x / 0) is infinite) never fires. SpyTorch clips x at
/// θ + 1e-7 and gets step 290 for it — beyond T = 100, so also no spike; we take the limit
/// instead, which agrees with the benchmark's "x < 0.2 never spikes" for every T ≤ 290.
/// The step is computed in `Double`, as SpyTorch does in float64; for every 8-bit pixel value
/// the result equals the float64 result for pixel/255.
///
/// ```swift
/// var encoder = LatencyEncoder(timeSteps: 100)
/// let out = encoder.encode(Tensor<Float>([1, 0.5, 0.1], shape: [1, 3]))
/// // out.spikes is [100, 1, 3]: input 0 fires at step 4, input 1 at step 10, input 2 never.
/// ```
public struct LatencyEncoder: SpikeEncoder, Sendable {
  public var timeSteps: Int
  /// The time constant τ in steps (τ_eff / dt).
  public var tau: Double
  /// Inputs at or below this never spike.
  public var threshold: Double

  public init(timeSteps: Int = 100, tau: Double = 20, threshold: Double = 0.2) {
    precondition(timeSteps > 0, "LatencyEncoder: timeSteps must be > 0, got \(timeSteps)")
    precondition(tau > 0, "LatencyEncoder: tau must be > 0, got \(tau)")
    self.timeSteps = timeSteps
    self.tau = tau
    self.threshold = threshold
  }

  /// The step at which input `x` fires, or nil when it never fires within T steps.
  @inlinable
  public func spikeStep(_ x: Double) -> Int? {
    guard x > threshold else { return nil }  // also rejects NaN
    let t = (tau * Double.log(x / (x - threshold))).rounded(.down)
    guard t < Double(timeSteps) else { return nil }
    return Int(t)
  }

  public func encode(_ inputs: Tensor<Float>) -> EncodedSpikes {
    let (b, f) = Self.checkInputs(inputs, "LatencyEncoder")
    var out = Tensor<Float>.zeros([timeSteps, b, f])
    var n = 0
    out.withUnsafeMutableBufferPointer { dst in
      inputs.withUnsafeBufferPointer { src in
        for i in 0..<(b * f) {
          if let t = spikeStep(Double(src[i])) {
            dst[t * b * f + i] = 1
            n += 1
          }
        }
      }
    }
    return EncodedSpikes(spikes: out, nonzeroCount: n)
  }

  /// The same spikes as `encode(_:)`, as events: for each sample, its (step, input) pairs
  /// ordered by step and then input. For event-driven simulation, where the dense [T, B, F]
  /// tensor (≈ 0.4 % ones on Fashion-MNIST) is mostly zeros.
  ///
  /// ```swift
  /// let events = LatencyEncoder().events(Tensor<Float>([0.1, 1, 0.5], shape: [1, 3]))
  /// // [[SpikeEvent(step: 4, index: 1), SpikeEvent(step: 10, index: 2)]]
  /// ```
  public func events(_ inputs: Tensor<Float>) -> [[SpikeEvent]] {
    let (b, f) = Self.checkInputs(inputs, "LatencyEncoder.events")
    return inputs.withUnsafeBufferPointer { src in
      (0..<b).map { s in
        var row: [SpikeEvent] = []
        for j in 0..<f {
          if let t = spikeStep(Double(src[s * f + j])) { row.append(SpikeEvent(step: t, index: j)) }
        }
        row.sort()
        return row
      }
    }
  }

  static func checkInputs(_ inputs: Tensor<Float>, _ who: String) -> (Int, Int) {
    precondition(
      inputs.rank == 2, "\(who): inputs must be [batch, features], got shape \(inputs.shape)")
    return (inputs.shape[0], inputs.shape[1])
  }
}

/// Rate (Poisson, Bernoulli per step) coding: at every step, input x spikes with probability
/// `min(1, max(0, x · gain))`, independently, drawn from a seeded `SomaRandom`.
///
/// The generator lives in the encoder and advances with each call, so a fresh encoder with the
/// same seed reproduces the same sequence of batches. Draws run in [t, b, f] order.
///
/// ```swift
/// var encoder = PoissonEncoder(timeSteps: 50, seed: 7)
/// let out = encoder.encode(images)   // [50, batch, 784]; out.density ≈ mean pixel
/// ```
public struct PoissonEncoder: SpikeEncoder, Sendable {
  public var timeSteps: Int
  /// Spike probability per step for an input of 1.
  public var gain: Float
  /// The generator; advances with every `encode`.
  public var generator: SomaRandom

  public init(timeSteps: Int = 100, gain: Float = 1, seed: UInt64) {
    precondition(timeSteps > 0, "PoissonEncoder: timeSteps must be > 0, got \(timeSteps)")
    precondition(gain >= 0, "PoissonEncoder: gain must be ≥ 0, got \(gain)")
    self.timeSteps = timeSteps
    self.gain = gain
    self.generator = SomaRandom(seed: seed)
  }

  public mutating func encode(_ inputs: Tensor<Float>) -> EncodedSpikes {
    let (b, f) = LatencyEncoder.checkInputs(inputs, "PoissonEncoder")
    var out = Tensor<Float>(uninitializedShape: [timeSteps, b, f])
    var n = 0
    let probs = inputs.scalars.map { Swift.min(1, Swift.max(0, $0 * gain)) }
    var g = generator
    out.withUnsafeMutableBufferPointer { dst in
      probs.withUnsafeBufferPointer { p in
        let m = b * f
        for t in 0..<timeSteps {
          let row = dst.baseAddress! + t * m
          for i in 0..<m {
            // 24 random bits against p: P(u < p) = p for every Float p in [0, 1].
            let u = Float(g.next() >> 40) * (1 / 16_777_216 as Float)
            let s: Float = u < p[i] ? 1 : 0
            row[i] = s
            n &+= Int(s)
          }
        }
      }
    }
    generator = g
    return EncodedSpikes(spikes: out, nonzeroCount: n)
  }
}

/// Direct-current coding: the input value itself, repeated at every step (the first layer then
/// integrates it as a constant current).
///
/// ```swift
/// var encoder = DirectCurrentEncoder(timeSteps: 25)
/// let out = encoder.encode(images)   // [25, batch, 784], out.spikes[t] == images for every t
/// ```
public struct DirectCurrentEncoder: SpikeEncoder, Sendable {
  public var timeSteps: Int

  public init(timeSteps: Int = 100) {
    precondition(timeSteps > 0, "DirectCurrentEncoder: timeSteps must be > 0, got \(timeSteps)")
    self.timeSteps = timeSteps
  }

  public func encode(_ inputs: Tensor<Float>) -> EncodedSpikes {
    let (b, f) = LatencyEncoder.checkInputs(inputs, "DirectCurrentEncoder")
    var out = Tensor<Float>(uninitializedShape: [timeSteps, b, f])
    var nonzero = 0
    out.withUnsafeMutableBufferPointer { dst in
      inputs.withUnsafeBufferPointer { src in
        let m = b * f
        for i in 0..<m where src[i] != 0 { nonzero += 1 }
        for t in 0..<timeSteps {
          UnsafeMutableBufferPointer(rebasing: dst[(t * m)..<((t + 1) * m)]).update(
            fromContentsOf: src)
        }
      }
    }
    return EncodedSpikes(spikes: out, nonzeroCount: nonzero * timeSteps)
  }
}
