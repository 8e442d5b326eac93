// What a neuron layer lowers to in a compiled network: a forward pass over all T steps and a
// reverse-time backward pass over a range of lanes (batch × features), each specialised for the
// layer's surrogate when the layer creates it. The tape path (`fusedLIF`, `fusedCUBALIF`,
// `fusedLeakyIntegrator`) runs the same lane-range kernels over all lanes, so each recurrence
// has one implementation.

/// The buffers of one neuron pass over `[steps, lanes]`, restricted to lanes `k0 ..< k1`.
///
/// Forward: `input` holds the currents, `output` receives the layer's output; `saved0`
/// receives what the backward pass needs, if anything. Backward: `input` holds dL/d(output),
/// `output` receives dL/d(currents) (it may be the same buffer). `scratch` has
/// `scratchPerLane × lanes` elements, indexed by absolute lane.
public struct NeuronPass<T: TensorScalar> {
  @usableFromInline let steps: Int
  @usableFromInline let lanes: Int
  @usableFromInline let k0: Int
  @usableFromInline let k1: Int
  @usableFromInline let input: UnsafeMutablePointer<T>
  @usableFromInline let output: UnsafeMutablePointer<T>
  @usableFromInline let saved0: UnsafeMutablePointer<T>?
  @usableFromInline let scratch: UnsafeMutablePointer<T>

  @inlinable
  init(
    steps: Int, lanes: Int, k0: Int, k1: Int, input: UnsafeMutablePointer<T>,
    output: UnsafeMutablePointer<T>, saved0: UnsafeMutablePointer<T>?,
    scratch: UnsafeMutablePointer<T>
  ) {
    (self.steps, self.lanes, self.k0, self.k1) = (steps, lanes, k0, k1)
    (self.input, self.output, self.saved0, self.scratch) = (
      input, output, saved0, scratch
    )
  }
}

/// The fused form of a neuron layer, which the layer itself provides
/// (`NeuronLayer.neuronKernel(_:)`): its closures are created where the surrogate's type is
/// known, so the per-element loops inside them are specialised. A compiled network calls them
/// once per layer and thread, never per element.
public struct NeuronKernel<T: TensorScalar> {
  /// A short description for `CompiledNetwork.plan` ("LIF(β 0.9, θ 1, subtract, S2NN)").
  public let name: String
  /// True when the output is 0/1 spikes (the next Linear layer may then read it as events).
  public let emitsSpikes: Bool
  /// How many `[steps, lanes]` buffers the forward pass keeps for the backward pass (0 or 1).
  @usableFromInline let saved: Int
  /// Scratch elements per lane.
  @usableFromInline let scratchPerLane: Int
  @usableFromInline let forward: (NeuronPass<T>) -> Void
  @usableFromInline let backward: (NeuronPass<T>) -> Void
  /// What the neuron is, for plans that fuse across layers.
  @usableFromInline let kind: Kind
  /// For a CUBA-LIF layer: builds the whole-block plan (input events → this layer → a leaky
  /// readout with the same α and β, max-membrane loss) for (inputs, hidden, outputs).
  @usableFromInline let makeCUBABlock: ((Int, Int, Int) -> CUBABlock<T>)?

  @usableFromInline
  enum Kind: Equatable {
    case cuba(alpha: Double, beta: Double, threshold: Double, reset: Reset)
    case leaky(beta: Double, alpha: Double?)
    case other
  }

  @inlinable
  init(
    name: String, emitsSpikes: Bool, saved: Int, scratchPerLane: Int, kind: Kind = .other,
    makeCUBABlock: ((Int, Int, Int) -> CUBABlock<T>)? = nil,
    forward: @escaping (NeuronPass<T>) -> Void, backward: @escaping (NeuronPass<T>) -> Void
  ) {
    (self.name, self.emitsSpikes, self.saved, self.scratchPerLane) = (
      name, emitsSpikes, saved, scratchPerLane
    )
    (self.kind, self.makeCUBABlock) = (kind, makeCUBABlock)
    (self.forward, self.backward) = (forward, backward)
  }
}

/// SpyTorch's block — Linear (no bias) → CUBA-LIF → Linear (no bias) → leaky readout with α,
/// max-membrane loss — on event input as one plan: the fused event kernels of
/// `CurrentBasedSNN` (recomputation instead of stored [T, B, H] state, reverse steps a
/// max-readout cannot reach skipped). Weights are [out, in], the layers' own layout.
public struct CUBABlock<T: TensorScalar> {
  @usableFromInline typealias Result = (
    loss: T, logits: Tensor<T>, gradW1: Tensor<T>, gradW2: Tensor<T>, hiddenSpikes: Int,
    correct: Int
  )
  @usableFromInline let step:
    (SpikeEvents, Int, Int, [Int], Tensor<T>, Tensor<T>, Int) -> Result
  @usableFromInline let logits: (SpikeEvents, Int, Int, Tensor<T>, Tensor<T>, Int) -> Tensor<T>

  @inlinable
  static func make<S: SurrogateGradient>(
    inputs: Int, hidden: Int, outputs: Int, alpha: Double, beta: Double, threshold: Double,
    surrogate: S
  ) -> CUBABlock<T> {
    let net = CurrentBasedSNN<T, S>(
      block: inputs, hidden: hidden, outputs: outputs, alpha: alpha, beta: beta,
      threshold: threshold, surrogate: surrogate)
    return CUBABlock(
      step: { events, steps, batch, labels, w1, w2, threads in
        (net.w1, net.w2, net.threads) = (w1, w2, threads)
        defer { (net.w1, net.w2) = (Tensor.zeros([0]), Tensor.zeros([0])) }
        let s = net.lossAndGradients(events: events, steps: steps, batch: batch, labels: labels)
        return (s.loss, s.logits, s.gradW1, s.gradW2, s.hiddenSpikes, s.correct)
      },
      logits: { events, steps, batch, w1, w2, threads in
        (net.w1, net.w2, net.threads) = (w1, w2, threads)
        defer { (net.w1, net.w2) = (Tensor.zeros([0]), Tensor.zeros([0])) }
        return net.logits(events: events, steps: steps, batch: batch)
      })
  }

  @inlinable
  init(
    step: @escaping (SpikeEvents, Int, Int, [Int], Tensor<T>, Tensor<T>, Int) -> Result,
    logits: @escaping (SpikeEvents, Int, Int, Tensor<T>, Tensor<T>, Int) -> Tensor<T>
  ) {
    (self.step, self.logits) = (step, logits)
  }
}

extension NeuronLayer {
  /// No fused kernel: a compiled network runs this layer through the autodiff tape.
  public func neuronKernel<T: TensorScalar>(_ type: T.Type) -> NeuronKernel<T>? { nil }
}

/// A compact description of a surrogate for plan printouts ("S2NN(alpha 4, beta 1)").
@inlinable
func surrogateLabel<S: SurrogateGradient>(_ s: S) -> String {
  let p = s.parameters.map { "\($0.name) \($0.value)" }.joined(separator: ", ")
  return p.isEmpty ? S.name : "\(S.name)(\(p))"
}

// MARK: LIF

extension LIF {
  /// The fused LIF kernel: forward keeps the pre-reset membrane h; backward is the reverse pass
  /// with the surrogate's derivative.
  @inlinable
  public func neuronKernel<T: TensorScalar>(_ type: T.Type) -> NeuronKernel<T>? {
    let p = LIFParameters(
      unchecked: beta, threshold: threshold, reset: reset, detachReset: detachReset)
    let surrogate = self.surrogate
    return NeuronKernel(
      name: "LIF(β \(beta), θ \(threshold), \(reset)\(detachReset ? ", detached" : ""), "
        + "\(surrogateLabel(surrogate)))",
      emitsSpikes: true, saved: 1, scratchPerLane: 4,
      forward: { f in
        FusedLIF.forward(
          p, steps: f.steps, lanes: f.lanes, laneBegin: f.k0, laneEnd: f.k1, current: f.input,
          h: f.saved0!, s: f.output, v: f.scratch)
      },
      backward: { b in
        FusedLIF.backward(
          p, surrogate: surrogate, steps: b.steps, lanes: b.lanes, laneBegin: b.k0,
          laneEnd: b.k1, h: b.saved0!, gradSpikes: b.input, gradCurrent: b.output,
          gv: b.scratch, workspace: b.scratch + b.lanes + 3 * b.k0)
      })
  }
}

extension IF {
  /// The LIF kernel with β = 1.
  @inlinable
  public func neuronKernel<T: TensorScalar>(_ type: T.Type) -> NeuronKernel<T>? {
    lif.neuronKernel(type)
  }
}

// MARK: CUBA-LIF

/// The current-based LIF recurrence over lanes `k0 ..< k1` of `[steps, lanes]` buffers.
public enum CUBAKernel {
  /// Forward from rest: spikes into `spikes`; the membrane before each step into `memOut`
  /// (if given). `syn` and `mem` are lane-indexed state of `lanes` elements.
  @inlinable
  public static func forward<T: TensorScalar>(
    alpha: T, beta: T, threshold: T, reset: Reset, steps: Int, lanes: Int, k0: Int, k1: Int,
    current: UnsafePointer<T>, memOut: UnsafeMutablePointer<T>?,
    spikes: UnsafeMutablePointer<T>, syn: UnsafeMutablePointer<T>, mem: UnsafeMutablePointer<T>
  ) {
    let n = k1 - k0
    guard n > 0 else { return }
    let (sy, m) = (syn + k0, mem + k0)
    for i in 0..<n { (sy[i], m[i]) = (0, 0) }
    for t in 0..<steps {
      let o = t * lanes + k0
      let it = current + o
      let st = spikes + o
      let mo = memOut.map { $0 + o }
      if _cCUBAForward(
        current: it, syn: sy, mem: m, memOut: mo, spikes: st, n: n, alpha: alpha, beta: beta,
        threshold: threshold, zeroReset: reset == .zero)
      {
        continue
      }
      if let mo { mo.update(from: m, count: n) }
      for i in 0..<n {
        let s: T = m[i] - threshold >= 0 ? 1 : 0
        st[i] = s
        let oldSyn = sy[i]
        sy[i] = alpha * oldSyn + it[i]
        m[i] = reset == .zero ? (beta * m[i] + oldSyn) * (1 - s) : beta * m[i] + oldSyn - threshold * s
      }
    }
  }

  /// Reverse pass: dL/ds in `gradSpikes` → dL/dI in `gradCurrent` (may alias). `scratch` is
  /// lane-indexed, 5 × lanes elements.
  @inlinable
  public static func backward<T: TensorScalar, S: SurrogateGradient>(
    alpha: T, beta: T, threshold: T, reset: Reset, surrogate: S, steps: Int, lanes: Int,
    k0: Int, k1: Int, mem: UnsafePointer<T>, gradSpikes: UnsafePointer<T>,
    gradCurrent: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>
  ) {
    let n = k1 - k0
    guard n > 0 else { return }
    let gs = scratch + k0
    let gm = scratch + lanes + k0
    let x = scratch + 2 * lanes + k0
    let d = scratch + 3 * lanes + k0
    let tmp = scratch + 4 * lanes + k0
    for i in 0..<n { (gs[i], gm[i]) = (0, 0) }
    let inPlace = UnsafePointer(gradCurrent) == gradSpikes
    var t = steps - 1
    while t >= 0 {
      let o = t * lanes + k0
      let mt = mem + o
      let gt = gradSpikes + o
      let dt = inPlace ? tmp : gradCurrent + o
      if !_cShift(mt, into: x, count: n, minus: threshold) {
        for i in 0..<n { x[i] = mt[i] - threshold }
      }
      surrogate.derivative(UnsafePointer(x), into: d, count: n)
      if !_cCUBABackward(
        gradSpikes: gt, mem: mt, d: UnsafePointer(d), gs: gs, gm: gm, gradCurrent: dt, n: n,
        alpha: alpha, beta: beta, threshold: threshold, zeroReset: reset == .zero)
      {
        for i in 0..<n {
          dt[i] = gs[i]
          let k: T = reset == .zero && x[i] >= 0 ? 0 : 1
          let g = gm[i] * k
          gm[i] = gt[i] * d[i] + beta * g
          gs[i] = alpha * gs[i] + g
        }
      }
      if inPlace { (gradCurrent + o).update(from: tmp, count: n) }
      t -= 1
    }
  }
}

extension CUBALIF {
  /// The fused CUBA-LIF kernel: forward keeps the membrane before each step.
  @inlinable
  public func neuronKernel<T: TensorScalar>(_ type: T.Type) -> NeuronKernel<T>? {
    let (a, b, th, reset, surrogate) = (T(alpha), T(beta), T(threshold), reset, surrogate)
    let (alpha, beta, threshold) = (self.alpha, self.beta, self.threshold)
    return NeuronKernel(
      name: "CUBALIF(α \(alpha), β \(beta), θ \(threshold), \(reset), "
        + "\(surrogateLabel(surrogate)))",
      emitsSpikes: true, saved: 1, scratchPerLane: 5,
      kind: .cuba(alpha: alpha, beta: beta, threshold: threshold, reset: reset),
      makeCUBABlock: reset == .zero
        ? { inputs, hidden, outputs in
          CUBABlock.make(
            inputs: inputs, hidden: hidden, outputs: outputs, alpha: alpha, beta: beta,
            threshold: threshold, surrogate: surrogate)
        } : nil,
      forward: { f in
        CUBAKernel.forward(
          alpha: a, beta: b, threshold: th, reset: reset, steps: f.steps, lanes: f.lanes,
          k0: f.k0, k1: f.k1, current: f.input, memOut: f.saved0, spikes: f.output,
          syn: f.scratch, mem: f.scratch + f.lanes)
      },
      backward: { g in
        CUBAKernel.backward(
          alpha: a, beta: b, threshold: th, reset: reset, surrogate: surrogate, steps: g.steps,
          lanes: g.lanes, k0: g.k0, k1: g.k1, mem: g.saved0!, gradSpikes: g.input,
          gradCurrent: g.output, scratch: g.scratch)
      })
  }
}

// MARK: Leaky integrator

/// The non-spiking leaky integrator over lanes `k0 ..< k1` (see `LeakyIntegrator`).
public enum LeakyKernel {
  /// Forward from rest; `state` is lane-indexed, 2 × lanes elements.
  @inlinable
  public static func forward<T: TensorScalar>(
    beta: T, alpha: T?, steps: Int, lanes: Int, k0: Int, k1: Int, current: UnsafePointer<T>,
    out: UnsafeMutablePointer<T>, state: UnsafeMutablePointer<T>
  ) {
    let n = k1 - k0
    guard n > 0 else { return }
    let (a, b) = (state + k0, state + lanes + k0)
    for i in 0..<n { (a[i], b[i]) = (0, 0) }
    for t in 0..<steps {
      let it = current + t * lanes + k0
      let ot = out + t * lanes + k0
      if let alpha {
        for i in 0..<n {
          let f = a[i]
          a[i] = alpha * f + it[i]
          b[i] = beta * b[i] + f
          ot[i] = b[i]
        }
      } else {
        for i in 0..<n {
          a[i] = beta * a[i] + it[i]
          ot[i] = a[i]
        }
      }
    }
  }

  /// Reverse pass: dL/d(out) in `grad` → dL/dI in `gradCurrent` (may alias); `state` as in
  /// the forward pass.
  @inlinable
  public static func backward<T: TensorScalar>(
    beta: T, alpha: T?, steps: Int, lanes: Int, k0: Int, k1: Int, grad: UnsafePointer<T>,
    gradCurrent: UnsafeMutablePointer<T>, state: UnsafeMutablePointer<T>
  ) {
    let n = k1 - k0
    guard n > 0 else { return }
    let (ga, gb) = (state + k0, state + lanes + k0)
    for i in 0..<n { (ga[i], gb[i]) = (0, 0) }
    var t = steps - 1
    while t >= 0 {
      let gt = grad + t * lanes + k0
      let dt = gradCurrent + t * lanes + k0
      if let alpha {
        // ga = dL/dflt_{t+1}, gb = dL/dout_{t+1} on entry (each read before it is written).
        for i in 0..<n {
          let f = alpha * ga[i] + gb[i]
          gb[i] = gt[i] + beta * gb[i]
          ga[i] = f
          dt[i] = f
        }
      } else {
        for i in 0..<n {
          let g = gt[i] + beta * ga[i]
          ga[i] = g
          dt[i] = g
        }
      }
      t -= 1
    }
  }
}

extension LeakyIntegrator {
  /// The fused leaky integrator (linear: nothing is kept for the backward pass).
  @inlinable
  public func neuronKernel<T: TensorScalar>(_ type: T.Type) -> NeuronKernel<T>? {
    let (b, a) = (T(beta), alpha.map { T($0) })
    return NeuronKernel(
      name: alpha.map { "LeakyIntegrator(β \(beta), α \($0))" } ?? "LeakyIntegrator(β \(beta))",
      emitsSpikes: false, saved: 0, scratchPerLane: 2, kind: .leaky(beta: beta, alpha: alpha),
      forward: { f in
        LeakyKernel.forward(
          beta: b, alpha: a, steps: f.steps, lanes: f.lanes, k0: f.k0, k1: f.k1,
          current: f.input, out: f.output, state: f.scratch)
      },
      backward: { g in
        LeakyKernel.backward(
          beta: b, alpha: a, steps: g.steps, lanes: g.lanes, k0: g.k0, k1: g.k1, grad: g.input,
          gradCurrent: g.output, state: g.scratch)
      })
  }
}

/// A recurrent LIF layer's kernels for a compiled network (samples `b0 ..< b1` per thread).
public struct RecurrentStageKernel<T: TensorScalar> {
  @usableFromInline let name: String
  @usableFromInline let forward:
    (
      Int, Int, Int, Int, Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>?,
      UnsafeMutablePointer<T>, UnsafeMutablePointer<T>
    ) -> Void
  @usableFromInline let backward:
    (
      Int, Int, Int, Int, Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>,
      UnsafeMutablePointer<T>
    ) -> Void

  @inlinable
  init(
    name: String,
    forward: @escaping (
      Int, Int, Int, Int, Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>?,
      UnsafeMutablePointer<T>, UnsafeMutablePointer<T>
    ) -> Void,
    backward: @escaping (
      Int, Int, Int, Int, Int, UnsafePointer<T>, UnsafePointer<T>, UnsafeMutablePointer<T>,
      UnsafeMutablePointer<T>
    ) -> Void
  ) {
    (self.name, self.forward, self.backward) = (name, forward, backward)
  }
}
