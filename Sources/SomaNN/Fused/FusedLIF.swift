import SomaKernels
// Fused leaky integrate-and-fire kernels over all T steps: one forward pass that stores only
// the pre-reset membrane h, and one reverse-time backward pass with the surrogate derivative
// inlined (generic over the surrogate, so the call is specialised, never an existential).

/// How a LIF neuron resets after a spike.
public enum ResetMode: String, Sendable, Codable {
  /// v ← h − θ·s
  case subtract
  /// v ← h·(1 − s)
  case zero
}

/// Parameters of one LIF layer: h_t = β·v_{t−1} + I_t, s_t = H(h_t − θ), reset.
public struct LIFParameters: Sendable, Equatable {
  public var beta: Double
  public var threshold: Double
  public var reset: ResetMode
  public var detachReset: Bool

  /// Validated parameters: β in [0, 1], θ > 0.
  public init(
    beta: Double = 0.9, threshold: Double = 1, reset: ResetMode = .subtract,
    detachReset: Bool = false
  ) throws(HyperparameterError) {
    guard beta >= 0 && beta <= 1 else {
      throw HyperparameterError("LIF beta must be in [0, 1], got \(beta)")
    }
    guard threshold > 0 && threshold.isFinite else {
      throw HyperparameterError("LIF threshold must be > 0, got \(threshold)")
    }
    self.beta = beta
    self.threshold = threshold
    self.reset = reset
    self.detachReset = detachReset
  }
}

/// A hyperparameter outside its allowed range; the message names the value and the range.
public struct HyperparameterError: Error, CustomStringConvertible, Sendable, Equatable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

public enum FusedLIF {
  /// Forward over `steps` steps of `lanes` neurons (lanes = batch × features), lanes
  /// `[laneBegin, laneEnd)`. `current` is [steps, lanes]; writes the pre-reset membrane to
  /// `h` and spikes to `s` (both [steps, lanes]). State starts at 0.
  @inlinable
  public static func forward<T: TensorScalar>(
    _ p: LIFParameters, steps: Int, lanes: Int, laneBegin: Int, laneEnd: Int,
    current: UnsafePointer<T>, h: UnsafeMutablePointer<T>, s: UnsafeMutablePointer<T>,
    v: UnsafeMutablePointer<T>
  ) {
    let beta = T(p.beta)
    let th = T(p.threshold)
    for k in laneBegin..<laneEnd { v[k] = 0 }
    if T.self == Float.self {
      // The vectorised step kernel of SomaKernels (restrict pointers, AVX-512/AVX2).
      let f = { (q: UnsafeMutablePointer<T>) in UnsafeMutableRawPointer(q).assumingMemoryBound(to: Float.self) }
      let n = laneEnd - laneBegin
      for t in 0..<steps {
        let base = t * lanes + laneBegin
        soma_lif_forward_f32(
          UnsafeRawPointer(current + base).assumingMemoryBound(to: Float.self), f(v + laneBegin),
          f(h + base), f(s + base), n, Float(p.beta), Float(p.threshold), p.reset == .zero ? 1 : 0)
      }
      return
    }
    for t in 0..<steps {
      let base = t * lanes
      let ip = current + base
      let hp = h + base
      let sp = s + base
      switch p.reset {
      case .subtract:
        for k in laneBegin..<laneEnd {
          let hk = beta * v[k] + ip[k]
          let sk: T = hk >= th ? 1 : 0
          hp[k] = hk
          sp[k] = sk
          v[k] = hk - th * sk
        }
      case .zero:
        for k in laneBegin..<laneEnd {
          let hk = beta * v[k] + ip[k]
          let sk: T = hk >= th ? 1 : 0
          hp[k] = hk
          sp[k] = sk
          v[k] = hk - hk * sk
        }
      }
    }
  }

  /// Reverse-time backward: given dL/ds_t in `gradSpikes` [steps, lanes] and the stored `h`,
  /// writes dL/dI_t to `gradCurrent` [steps, lanes] (which may alias `gradSpikes`). `gv` is
  /// scratch of `lanes` elements.
  @inlinable
  public static func backward<T: TensorScalar, S: SurrogateGradient>(
    _ p: LIFParameters, surrogate: S, steps: Int, lanes: Int, laneBegin: Int, laneEnd: Int,
    h: UnsafePointer<T>, gradSpikes: UnsafePointer<T>, gradCurrent: UnsafeMutablePointer<T>,
    gv: UnsafeMutablePointer<T>
  ) {
    let beta = T(p.beta)
    let th = T(p.threshold)
    for k in laneBegin..<laneEnd { gv[k] = 0 }
    // surrogate'(h − θ) for one step's lanes at a time, through the surrogate's bulk
    // (vectorised) kernel, then the recurrence.
    let n = laneEnd - laneBegin
    var shifted = [T](repeating: 0, count: n)
    var slope = [T](repeating: 0, count: n)
    shifted.withUnsafeMutableBufferPointer { xb in
      slope.withUnsafeMutableBufferPointer { db in
        let xs = xb.baseAddress!
        let ds = db.baseAddress!
        var t = steps - 1
        while t >= 0 {
          let base = t * lanes + laneBegin
          let hp = h + base
          let gs = gradSpikes + base
          let gi = gradCurrent + base
          let g = gv + laneBegin
          for k in 0..<n { xs[k] = hp[k] - th }
          surrogate.derivative(UnsafePointer(xs), into: ds, count: n)
          if T.self == Float.self {
            // Elementwise in place (gi may be gs): each index is read before it is written.
            let c = { (q: UnsafePointer<T>) in UnsafeRawPointer(q).assumingMemoryBound(to: Float.self) }
            let m = { (q: UnsafeMutablePointer<T>) in UnsafeMutableRawPointer(q).assumingMemoryBound(to: Float.self) }
            soma_lif_backward_f32(
              c(gs), c(hp), c(UnsafePointer(ds)), m(g), m(gi), n, Float(p.beta), Float(p.threshold),
              p.reset == .zero ? 1 : 0, p.detachReset ? 1 : 0)
            t -= 1
            continue
          }
          switch (p.reset, p.detachReset) {
          case (.subtract, false):
            for k in 0..<n {
              let gk = g[k]
              let dh = ds[k] * (gs[k] - th * gk) + gk
              gi[k] = dh
              g[k] = beta * dh
            }
          case (.subtract, true):
            for k in 0..<n {
              let dh = ds[k] * gs[k] + g[k]
              gi[k] = dh
              g[k] = beta * dh
            }
          case (.zero, false):
            for k in 0..<n {
              let hk = hp[k]
              let sk: T = xs[k] >= 0 ? 1 : 0
              let gk = g[k]
              let dh = ds[k] * (gs[k] - hk * gk) + gk * (1 - sk)
              gi[k] = dh
              g[k] = beta * dh
            }
          case (.zero, true):
            for k in 0..<n {
              let sk: T = xs[k] >= 0 ? 1 : 0
              let dh = ds[k] * gs[k] + g[k] * (1 - sk)
              gi[k] = dh
              g[k] = beta * dh
            }
          }
          t -= 1
        }
      }
    }
  }
}
