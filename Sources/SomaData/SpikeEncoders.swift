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
///
/// `encode(_:)` allocates the output; in a training loop, `encode(_:into:)` refills one buffer
/// instead (a [100, 256, 784] batch is 80 MB, and fresh memory of that size costs page faults
/// every step).
///
/// ```swift
/// var encoder = LatencyEncoder(timeSteps: 100)
/// var spikes = Tensor<Float>.zeros([0])
/// for indices in BatchIterator(count: data.train.count, batchSize: 256, seed: 1) {
///   let ones = encoder.encode(data.train.images(at: indices), into: &spikes)
///   // spikes is [100, indices.count, 784]
/// }
/// ```
public protocol SpikeEncoder {
  /// The number of time steps T.
  var timeSteps: Int { get }
  /// Writes the encoding of `inputs` ([batch, features]) into `output`, which becomes
  /// [T, batch, features] (reusing its storage when it already has that shape and is not
  /// shared), and returns how many entries are non-zero. Mutating because a random encoder
  /// advances its generator.
  mutating func encode(_ inputs: Tensor<Float>, into output: inout Tensor<Float>) -> Int
}

extension SpikeEncoder {
  /// The encoding of `inputs` ([batch, features]) in a new [T, batch, features] tensor.
  public mutating func encode(_ inputs: Tensor<Float>) -> EncodedSpikes {
    var out = Tensor<Float>.zeros([0])
    let n = encode(inputs, into: &out)
    return EncodedSpikes(spikes: out, nonzeroCount: n)
  }
}

/// Makes `output` a tensor of `shape`, keeping its storage when it already has that shape.
func prepareOutput(_ output: inout Tensor<Float>, _ shape: [Int]) {
  if output.shape != shape || !output.isContiguous {
    output = Tensor<Float>(uninitializedShape: shape)
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
/// let encoder = LatencyEncoder(timeSteps: 100)
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

  /// `spikeStep` for inputs that are exactly a byte / 255 (every dataset pixel), as a table
  /// (−1: no spike), and the step for any input: from the table when it applies, which gives
  /// the same result as `spikeStep` and saves a logarithm per pixel.
  func withStepTable<R>(_ body: ((Float) -> Int?) -> R) -> R {
    let units = LabeledImages.byteToUnit
    let steps = units.map { Int16(spikeStep(Double($0)) ?? -1) }
    return units.withUnsafeBufferPointer { u in
      steps.withUnsafeBufferPointer { st in
        body { x in
          if x >= 0 && x <= 1 {
            // x ≥ 0: truncating x·255 + ½ rounds (`rounded()` is a libm call on baseline x86-64).
            let k = Int(x * 255 + 0.5)
            if u[k] == x {
              let t = st[k]
              return t < 0 ? nil : Int(t)
            }
          }
          return spikeStep(Double(x))
        }
      }
    }
  }

  /// The spikes for `inputs` ([batch, features]) in a new [T, batch, features] tensor.
  public func encode(_ inputs: Tensor<Float>) -> EncodedSpikes {
    var out = Tensor<Float>.zeros([0])
    let n = encode(inputs, into: &out)
    return EncodedSpikes(spikes: out, nonzeroCount: n)
  }

  public func encode(_ inputs: Tensor<Float>, into out: inout Tensor<Float>) -> Int {
    let (b, f) = Self.checkInputs(inputs, "LatencyEncoder")
    prepareOutput(&out, [timeSteps, b, f])
    var n = 0
    out.withUnsafeMutableBufferPointer { dst in
      dst.update(repeating: 0)
      inputs.withUnsafeBufferPointer { src in
        withStepTable { step in
          for i in 0..<(b * f) {
            if let t = step(src[i]) {
              dst[t * b * f + i] = 1
              n += 1
            }
          }
        }
      }
    }
    return n
  }

  /// The same spikes as `encode(_:)`, as events: row t · batch + b of the result is sample b
  /// at step t (the dense [T, batch, features] tensor reshaped to [T · batch, features]). For
  /// event-driven simulation, where the dense tensor (≈ 0.4 % ones on Fashion-MNIST) is mostly
  /// zeros.
  ///
  /// ```swift
  /// let events = LatencyEncoder(timeSteps: 100).spikeEvents(Tensor<Float>([0.1, 1, 0.5], shape: [1, 3]))
  /// // rows 0..<100; row 4 holds input 1, row 10 holds input 2
  /// ```
  public func spikeEvents(_ inputs: Tensor<Float>) -> SpikeEvents {
    let (b, f) = Self.checkInputs(inputs, "LatencyEncoder.spikeEvents")
    return inputs.withUnsafeBufferPointer { src in
      withStepTable { step in
        makeEvents(batch: b, features: f) { s, j in step(src[s * f + j]) ?? -1 }
      }
    }
  }

  /// The events of `images.images(at: indices)` straight from the pixel bytes, without the
  /// `Float` images or the dense spike tensor; rows as in `spikeEvents(_:)`.
  ///
  /// ```swift
  /// for indices in BatchIterator(count: data.train.count, batchSize: 256, seed: 1, epoch: e) {
  ///   let input = encoder.spikeEvents(data.train, at: indices)   // [T · batch, 784] events
  /// }
  /// ```
  public func spikeEvents<C: Collection<Int>>(_ images: LabeledImages, at indices: C)
    -> SpikeEvents
  {
    let f = images.featureCount
    let table = LabeledImages.byteToUnit.map { spikeStep(Double($0)) ?? -1 }
    let order = Array(indices)
    for i in order {
      precondition(i >= 0 && i < images.count, "LatencyEncoder: index \(i) out of 0..<\(images.count)")
    }
    return images.pixels.withUnsafeBufferPointer { px in
      table.withUnsafeBufferPointer { t in
        makeEvents(batch: order.count, features: f) { s, j in t[Int(px[order[s] * f + j])] }
      }
    }
  }

  /// Compressed rows (t · batch + b) from `step(b, j)` (−1: no spike), by a counting sort.
  func makeEvents(batch: Int, features f: Int, _ step: (Int, Int) -> Int) -> SpikeEvents {
    let rows = timeSteps * batch
    var starts = [Int32](repeating: 0, count: rows + 1)
    var stepOf = [Int32](repeating: -1, count: batch * f)
    for s in 0..<batch {
      for j in 0..<f {
        let t = step(s, j)
        if t >= 0 {
          stepOf[s * f + j] = Int32(t)
          starts[t * batch + s + 1] += 1
        }
      }
    }
    for r in 0..<rows { starts[r + 1] += starts[r] }
    var fill = starts
    var indices = [Int32](repeating: 0, count: Int(starts[rows]))
    for s in 0..<batch {
      for j in 0..<f where stepOf[s * f + j] >= 0 {
        let r = Int(stepOf[s * f + j]) * batch + s
        indices[Int(fill[r])] = Int32(j)
        fill[r] += 1
      }
    }
    return SpikeEvents(rows: rows, columns: f, rowStart: starts, indices: indices)
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
/// same seed reproduces the same sequence of batches. Draws run in [t, b, f] order, two 24-bit
/// draws from each 64-bit generator output.
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

  public mutating func encode(_ inputs: Tensor<Float>, into out: inout Tensor<Float>) -> Int {
    let (b, f) = LatencyEncoder.checkInputs(inputs, "PoissonEncoder")
    prepareOutput(&out, [timeSteps, b, f])
    var n = 0
    // Probabilities as 24-bit integer thresholds: P(u < ⌈p·2²⁴⌉) for u uniform in 0..<2²⁴.
    let thresholds = inputs.scalars.map { x -> UInt32 in
      let p = Swift.min(1, Swift.max(0, x * gain))
      return UInt32((p * 16_777_216).rounded(.up))
    }
    var g = generator
    out.withUnsafeMutableBufferPointer { dst in
      thresholds.withUnsafeBufferPointer { p in
        let m = b * f
        for t in 0..<timeSteps {
          let row = dst.baseAddress! + t * m
          var i = 0
          // Two 24-bit draws from each 64-bit output.
          while i + 1 < m {
            let r = g.next()
            let s0: Float = UInt32(truncatingIfNeeded: r >> 40) < p[i] ? 1 : 0
            let s1: Float = UInt32(truncatingIfNeeded: (r >> 16) & 0xff_ffff) < p[i + 1] ? 1 : 0
            row[i] = s0
            row[i + 1] = s1
            n &+= Int(s0 + s1)
            i += 2
          }
          if i < m {
            let s0: Float = UInt32(truncatingIfNeeded: g.next() >> 40) < p[i] ? 1 : 0
            row[i] = s0
            n &+= Int(s0)
          }
        }
      }
    }
    generator = g
    return n
  }
}

/// Direct-current coding: the input value itself, repeated at every step (the first layer then
/// integrates it as a constant current).
///
/// ```swift
/// let encoder = DirectCurrentEncoder(timeSteps: 25)
/// let out = encoder.encode(images)   // [25, batch, 784], out.spikes[t] == images for every t
/// ```
public struct DirectCurrentEncoder: SpikeEncoder, Sendable {
  public var timeSteps: Int

  public init(timeSteps: Int = 100) {
    precondition(timeSteps > 0, "DirectCurrentEncoder: timeSteps must be > 0, got \(timeSteps)")
    self.timeSteps = timeSteps
  }

  /// The currents for `inputs` ([batch, features]) in a new [T, batch, features] tensor.
  public func encode(_ inputs: Tensor<Float>) -> EncodedSpikes {
    var out = Tensor<Float>.zeros([0])
    let n = encode(inputs, into: &out)
    return EncodedSpikes(spikes: out, nonzeroCount: n)
  }

  public func encode(_ inputs: Tensor<Float>, into out: inout Tensor<Float>) -> Int {
    let (b, f) = LatencyEncoder.checkInputs(inputs, "DirectCurrentEncoder")
    prepareOutput(&out, [timeSteps, b, f])
    var nonzero = 0
    out.withUnsafeMutableBufferPointer { dst in
      inputs.withUnsafeBufferPointer { src in
        let m = b * f
        for i in 0..<m where src[i] != 0 { nonzero += 1 }
        for t in 0..<timeSteps {
          _ = UnsafeMutableBufferPointer(rebasing: dst[(t * m)..<((t + 1) * m)]).update(
            fromContentsOf: src)
        }
      }
    }
    return nonzero * timeSteps
  }
}
