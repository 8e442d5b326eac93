import Dispatch
import RealModule
import SomaKernels

/// The SpyTorch tutorial-2 network (the `fmnist-spytorch` workload of docs/Benchmarks.md): input spikes →
/// W1 → current-based LIF hidden layer → W2 → non-spiking two-state leaky readout, logits =
/// max over time of the readout membrane, NLL of log-softmax. No biases.
///
/// Hidden layer, with I_t = x_t·W1ᵀ and state starting at 0:
///   s_t = H(mem_t − θ);  syn_{t+1} = α·syn_t + I_t;  mem_{t+1} = (β·mem_t + syn_t)·(1 − s_t)
/// where the reset factor uses s_t detached. Readout, with J_t = s_t·W2ᵀ:
///   flt_{t+1} = α·flt_t + J_t;  out_{t+1} = β·out_t + flt_t;  logits = max_t out_{t+1}.
///
/// The input layer reads the (≈0.4 % dense) latency-coded spikes as events, so its forward is
/// a sum of weight rows and its weight gradient a scatter. Forward and backward of both
/// recurrences are single fused passes over time in the C kernels of SomaKernels (cuba.c), so
/// this plan is for Float and hidden layers of at most 65 536 neurons (its spike lists are
/// 16-bit); a compiled `Sequential` runs it for SpyTorch's block on event input and runs
/// every other case through the layers' own kernels. The workspace is reused across steps.
///
/// ```swift
/// let net = try CurrentBasedSNN<Float, InvSquareGrad>(surrogate: InvSquareGrad(alpha: 100))
/// let step = net.lossAndGradients(events: events, steps: 100, batch: 256, labels: labels)
/// ```
@usableFromInline final class CurrentBasedSNN<T: TensorScalar, S: SurrogateGradient> {
  /// [hidden, inputs]
  @usableFromInline var w1: Tensor<T>
  /// [outputs, hidden]
  @usableFromInline var w2: Tensor<T>
  @usableFromInline let inputs: Int
  @usableFromInline let hidden: Int
  @usableFromInline let outputs: Int
  /// Synaptic decay α = exp(−dt/τ_syn).
  @usableFromInline let alpha: T
  /// Membrane decay β = exp(−dt/τ_mem).
  @usableFromInline let beta: T
  @usableFromInline let threshold: T
  @usableFromInline var surrogate: S
  /// Parallel lanes for the fused loops (OpenBLAS runs between them, never alongside).
  @usableFromInline var threads: Int = 2

  /// Builds the network with SpyTorch's init: weights N(0, (0.2/√fan_in)²) from `seed`.
  @usableFromInline init(
    inputs: Int = 784, hidden: Int = 100, outputs: Int = 10, tauSyn: Double = 5e-3,
    tauMem: Double = 10e-3, dt: Double = 1e-3, threshold: Double = 1, surrogate: S,
    seed: UInt64 = 0
  ) throws(SomaNNError) {
    guard inputs >= 1, hidden >= 1, outputs >= 2 else {
      throw .invalidSizes(
        model: "CurrentBasedSNN", sizes: [inputs, hidden, outputs],
        allowed: "inputs ≥ 1, hidden ≥ 1, outputs ≥ 2")
    }
    // A time constant of +∞ is a current or membrane that never decays (α or β = 1).
    for (tau, name) in [(tauSyn, "tauSyn"), (tauMem, "tauMem")] where !(tau > 0) {
      throw .invalidHyperparameter(layer: "CurrentBasedSNN", name: name, value: tau, allowed: "> 0")
    }
    try SomaNNError.checkPositive(dt, "dt", layer: "CurrentBasedSNN")
    try SomaNNError.checkPositive(threshold, "threshold", layer: "CurrentBasedSNN")
    precondition(
      T.self == Float.self && hidden <= 1 << 16,
      "CurrentBasedSNN: the kernels run Float with at most 65 536 hidden neurons, got \(T.self), "
        + "hidden \(hidden)")
    self.inputs = inputs
    self.hidden = hidden
    self.outputs = outputs
    self.alpha = T(Double.exp(-dt / tauSyn))
    self.beta = T(Double.exp(-dt / tauMem))
    self.threshold = T(threshold)
    self.surrogate = surrogate
    var g = SomaRandom(seed: seed)
    w1 = Tensor.normal([hidden, inputs], std: T(0.2) / T(inputs).squareRoot(), using: &g)
    w2 = Tensor.normal([outputs, hidden], std: T(0.2) / T(hidden).squareRoot(), using: &g)
  }

  /// The plan a compiled `Sequential` runs for its CUBA block: α, β and θ as the layers hold
  /// them; the weights are the layers' own, set before each step.
  @usableFromInline
  init(
    block inputs: Int, hidden: Int, outputs: Int, alpha: Double, beta: Double,
    threshold: Double, surrogate: S
  ) {
    precondition(
      T.self == Float.self && hidden <= 1 << 16,
      "CurrentBasedSNN: the kernels run Float with at most 65 536 hidden neurons, got \(T.self), "
        + "hidden \(hidden)")
    (self.inputs, self.hidden, self.outputs) = (inputs, hidden, outputs)
    (self.alpha, self.beta, self.threshold) = (T(alpha), T(beta), T(threshold))
    self.surrogate = surrogate
    (w1, w2) = (Tensor.zeros([hidden, inputs]), Tensor.zeros([outputs, hidden]))
  }

  /// The result of one forward + backward pass.
  @usableFromInline struct Step {
    @usableFromInline var loss: T
    /// [batch, outputs]: max over time of the readout membrane.
    @usableFromInline var logits: Tensor<T>
    @usableFromInline var gradW1: Tensor<T>
    @usableFromInline var gradW2: Tensor<T>
    @usableFromInline var hiddenSpikes: Int
    @usableFromInline var correct: Int
    /// The (step, sample) pairs whose reverse step can add to the gradients: each sample's
    /// steps from its first input event up to the one before its outputs' latest peak (the
    /// kernels visit these and a few more). The
    /// backward's and the membrane recomputation's cost grow with it, so two networks of the
    /// same shape can differ in step time by how late their readouts peak.
    @usableFromInline var reverseSteps: Int

    @inlinable
    init(
      loss: T, logits: Tensor<T>, gradW1: Tensor<T>, gradW2: Tensor<T>, hiddenSpikes: Int,
      correct: Int, reverseSteps: Int
    ) {
      (self.loss, self.logits, self.gradW1, self.gradW2) = (loss, logits, gradW1, gradW2)
      (self.hiddenSpikes, self.correct, self.reverseSteps) = (hiddenSpikes, correct, reverseSteps)
    }
  }

  /// Reused buffers: a steady-state step allocates nothing large.
  @usableFromInline
  final class Workspace {
    @usableFromInline var steps = 0, batch = 0, parts = 0
    @usableFromInline var readIn: [T] = []  // [T, B, O] J_t, then dL/dJ_t
    @usableFromInline var peak: [T] = []  // [B, O]
    @usableFromInline var peakStep: [Int32] = []  // [B, O]
    @usableFromInline var lastStep: [Int32] = []  // [B]: the last step with dL/dJ ≠ 0 (or −1)
    @usableFromInline var firstStep: [Int32] = []  // [B]: the first step with an input event (or T)
    // Per-neuron rows of ld = soma_cuba_row_stride(H) floats, cache-line aligned.
    @usableFromInline var ld = 0
    @usableFromInline var kw1t = AlignedFloats(count: 0)  // [I, ld] W1ᵀ
    @usableFromInline var kgw1t = AlignedFloats(count: 0)  // per-part dW1ᵀ partials, [parts, I, ld]
    @usableFromInline var kx = AlignedFloats(count: 0)  // per part, [T, 8, ld]: a block's mem − θ
    @usableFromInline var kSyn = AlignedFloats(count: 0)  // [B, ld] syn, then dL/dmem
    @usableFromInline var kMem = AlignedFloats(count: 0)  // [B, ld] mem, then dL/dsyn
    @usableFromInline var kDsur = AlignedFloats(count: 0)  // per part, [8, ld]: one step's surrogate'(x)
    @usableFromInline var spikeCount: [Int32] = []  // [T·B]
    @usableFromInline var spikeIndex: [UInt16] = []  // [T·B, H]
    @usableFromInline var w2t: [T] = []  // [H, O]
    @usableFromInline var kgw2t = AlignedFloats(count: 0)  // per-part dW2ᵀ partials, [parts, H, ldo]
    @usableFromInline var rowScratch: [T] = []  // [parts, 3H]
    @usableFromInline var order: [Int32] = []  // [B]: each part's samples, latest last step first
    @usableFromInline var kBlockState = AlignedFloats(count: 0)  // [parts, 2, 8, ld]: recomputed syn/mem
    /// Samples whose membranes the backward recomputes together (see hiddenBackwardKernel).
    @usableFromInline static var backwardBlock: Int { 8 }

    /// The distance between two threads' slices of a per-part buffer of `n` elements: at
    /// least one cache line of padding, so the threads never write the same line (the row
    /// scratch of one thread sharing a line with the next made its backward 25–40 % slower).
    @inlinable
    static func partStride(_ n: Int) -> Int { (n + 31) / 16 * 16 }

    @usableFromInline
    func prepare(
      steps: Int, batch: Int, inputs: Int, hidden: Int, outputs: Int, threads: Int
    ) {
      if self.steps == steps && self.batch == batch && parts == threads { return }
      (self.steps, self.batch, parts) = (steps, batch, threads)
      let n = steps * batch
      readIn = Array(repeating: 0, count: n * outputs)
      peak = Array(repeating: 0, count: batch * outputs)
      peakStep = Array(repeating: 0, count: batch * outputs)
      lastStep = Array(repeating: 0, count: batch)
      firstStep = Array(repeating: 0, count: batch)
      let ld = soma_cuba_row_stride(hidden)
      let sb = Self.backwardBlock
      self.ld = ld
      kw1t = AlignedFloats(count: inputs * ld)
      kgw1t = AlignedFloats(count: threads * Self.partStride(inputs * ld))
      kx = AlignedFloats(count: threads * Self.partStride(steps * sb * ld))
      kSyn = AlignedFloats(count: batch * ld)
      kMem = AlignedFloats(count: batch * ld)
      kDsur = AlignedFloats(count: threads * Self.partStride(sb * ld))
      kBlockState = AlignedFloats(count: threads * Self.partStride(2 * sb * ld))
      spikeCount = Array(repeating: 0, count: n)
      spikeIndex = Array(repeating: 0, count: n * hidden)
      w2t = Array(repeating: 0, count: hidden * outputs)
      kgw2t = AlignedFloats(count: threads * Self.partStride(hidden * soma_cuba_row_stride(outputs)))
      rowScratch = Array(repeating: 0, count: threads * Self.partStride(3 * hidden))
      order = Array(repeating: 0, count: batch)
    }
  }
  @usableFromInline let ws = Workspace()


  /// The forward pass alone: logits [batch, outputs], the hidden spike raster
  /// [T, batch, hidden] and the readout membrane [T, batch, outputs] (for plots and evaluation).
  @inlinable
  func forward(events: SpikeEvents, steps: Int, batch: Int) -> (
    logits: Tensor<T>, hiddenSpikes: Tensor<T>, readout: Tensor<T>
  ) {
    let outs = runForward(events: events, steps: steps, batch: batch, recordReadout: true)
    var raster = Tensor<T>.zeros([steps, batch, hidden])
    raster.withUnsafeMutableBufferPointer { rp in
      for r in 0..<(steps * batch) {
        for j in 0..<Int(ws.spikeCount[r]) { rp[r * hidden + Int(ws.spikeIndex[r * hidden + j])] = 1 }
      }
    }
    return (Tensor(ws.peak, shape: [batch, outputs]), raster, Tensor(outs, shape: [steps, batch, outputs]))
  }

  /// The logits [batch, outputs] (each output's maximum membrane over the steps) alone, for
  /// evaluation: `forward` without the spike raster and readout trace it builds.
  @inlinable
  func logits(events: SpikeEvents, steps: Int, batch: Int) -> Tensor<T> {
    runForward(events: events, steps: steps, batch: batch, recordReadout: false)
    return Tensor(ws.peak, shape: [batch, outputs])
  }

  /// Hidden layer and readout forward: fills the spike lists, ws.readIn
  /// (J), ws.peak and ws.peakStep; returns the readout membrane [T, B, O] when `recordReadout`.
  @inlinable @discardableResult
  func runForward(events: SpikeEvents, steps: Int, batch: Int, recordReadout: Bool) -> [T] {
    precondition(
      events.columns == inputs && events.rows == steps * batch,
      "CurrentBasedSNN: events [\(events.rows), \(events.columns)] do not match [T·B = \(steps * batch), \(inputs)]"
    )
    let parts = Swift.max(1, Swift.min(threads, batch))
    ws.prepare(
      steps: steps, batch: batch, inputs: inputs, hidden: hidden, outputs: outputs,
      threads: parts)
    let H = hidden
    // W1ᵀ [I, H] for row gathers (rows of ws.ld floats on the kernel path).
    w1.withUnsafeBufferPointer { wp in
      soma_transpose_strided_f32(
        UnsafeRawPointer(wp.baseAddress!).assumingMemoryBound(to: Float.self), H, inputs,
        ws.kw1t.base, ws.ld)
    }
    hiddenForwardKernel(events: events, steps: steps, batch: batch, parts: parts)
    return readoutForward(steps: steps, batch: batch, record: recordReadout)
  }

  @inlinable
  func hiddenForwardKernel(events: SpikeEvents, steps: Int, batch: Int, parts: Int) {
    let (I, H, O) = (inputs, hidden, outputs)
    w2.withUnsafeBufferPointer { wp in
      ws.w2t.withUnsafeMutableBufferPointer { tp in
        for o in 0..<O { for h in 0..<H { tp[h * O + o] = wp[o * H + h] } }
      }
    }
    let (alpha, beta, th) = (Float(self.alpha), Float(self.beta), Float(threshold))
    let (w1f, synP, memP) = (UnsafePointer(ws.kw1t.base), ws.kSyn.base, ws.kMem.base)
    events.rowStart.withUnsafeBufferPointer { rs in
      events.indices.withUnsafeBufferPointer { ix in
        ws.w2t.withUnsafeBufferPointer { w2p in
          ws.spikeCount.withUnsafeMutableBufferPointer { sc in
            ws.spikeIndex.withUnsafeMutableBufferPointer { si in
              ws.readIn.withUnsafeMutableBufferPointer { jp in
                let jP = UnsafeMutableRawPointer(jp.baseAddress!).assumingMemoryBound(to: Float.self)
                let w2f = UnsafeRawPointer(w2p.baseAddress!).assumingMemoryBound(to: Float.self)
                let (rsP, ixP, scP, siP) = (rs.baseAddress!, ix.baseAddress, sc.baseAddress!, si.baseAddress!)
                parallel(parts) { part in
                  soma_cuba_forward_f32(
                    steps, batch, I, H, O, part * batch / parts, (part + 1) * batch / parts,
                    rsP, ixP, w1f, w2f, alpha, beta, th, synP, memP, scP, siP, jP)
                }
              }
            }
          }
        }
      }
    }
  }

  /// flt_{t+1} = α·flt_t + J_t; out_{t+1} = β·out_t + flt_t; running max and its step.
  /// The readout lanes (b·outputs + o) of part `part`: the samples the hidden layer's kernels
  /// give that part, so the readout's rows stay in the cache of the core that wrote them.
  @inlinable
  static func readoutLanes(part: Int, parts: Int, batch: Int, outputs: Int) -> (Int, Int) {
    (part * batch / parts * outputs, (part + 1) * batch / parts * outputs)
  }

  @inlinable
  func readoutForward(steps: Int, batch: Int, record: Bool) -> [T] {
    let lanesO = batch * outputs
    let (alpha, beta) = (self.alpha, self.beta)
    var trace: [T] = record ? Array(repeating: 0, count: steps * lanesO) : []
    // Split over the samples as the hidden layer's kernels are: each thread reads the J_t rows
    // it wrote itself, so they do not cross between the cores' caches.
    let parts = Swift.max(1, Swift.min(ws.parts, batch))
    let O = outputs
    ws.readIn.withUnsafeBufferPointer { jb in
      ws.peak.withUnsafeMutableBufferPointer { pkb in
        ws.peakStep.withUnsafeMutableBufferPointer { psb in
          trace.withUnsafeMutableBufferPointer { trb in
            // (An empty array's buffer may still have a base address: test `record`, not nil.)
            let tr = record ? trb.baseAddress : nil
            let (jp, pk, ps) = (jb.baseAddress!, pkb.baseAddress!, psb.baseAddress!)
            parallel(parts) { part in
              let (k0, k1) = Self.readoutLanes(part: part, parts: parts, batch: batch, outputs: O)
              let n = k1 - k0
              withUnsafeTemporaryAllocation(of: T.self, capacity: 2 * n) { state in
                let (flt, out) = (state.baseAddress!, state.baseAddress! + n)
                // The loop in C, where it vectorises (with the running maximum).
                let fp = { (p: UnsafeMutablePointer<T>) in
                  UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
                }
                soma_cuba_readout_f32(
                  steps, lanesO, k0, k1, Float(alpha), Float(beta),
                  UnsafeRawPointer(jp).assumingMemoryBound(to: Float.self), fp(flt), fp(out),
                  fp(pk), ps, tr.map(fp))
              }
            }
          }
        }
      }
    }
    return trace
  }

  /// Calls `body` with `[w1, w2]` moved out of the network, so an optimizer updates them in
  /// place without copy-on-write copies; they are moved back afterwards (same shapes).
  @inlinable
  func withParameters<R>(_ body: (inout [Tensor<T>]) throws -> R) rethrows -> R {
    var params = [w1, w2]
    w1 = Tensor.zeros([0])
    w2 = Tensor.zeros([0])
    defer {
      precondition(
        params.count == 2, "CurrentBasedSNN.withParameters: \(params.count) parameters returned, expected 2")
      w1 = params[0]
      w2 = params[1]
    }
    return try body(&params)
  }

  /// Forward over all steps, NLL of log-softmax of the max-over-time readout, and BPTT
  /// gradients of W1 and W2. `events` is the input spikes [steps·batch rows (t-major), inputs].
  @inlinable
  func lossAndGradients(events: SpikeEvents, steps: Int, batch: Int, labels: [Int]) -> Step
  {
    precondition(steps >= 1, "CurrentBasedSNN: T must be ≥ 1, got \(steps)")
    precondition(
      labels.count == batch, "CurrentBasedSNN: \(labels.count) labels for a batch of \(batch)")
    runForward(events: events, steps: steps, batch: batch, recordReadout: false)
    let reverseSteps = reverseRange(events: events, steps: steps, batch: batch)
    let (O, B) = (outputs, batch)
    let (alpha, beta) = (self.alpha, self.beta)
    let lanesO = B * O

    // Loss and dL/dlogits = (softmax − onehot) / B.
    let logits = Tensor(ws.peak, shape: [B, O])
    let logp = logits.logSoftmax(axis: -1)
    let lp = logp.scalars
    let predicted = logits.argmaxIndices(axis: -1)
    var loss: T = 0
    var correct = 0
    var dlogits = logp.exp().scalars
    for b in 0..<B {
      let y = labels[b]
      precondition(y >= 0 && y < O, "CurrentBasedSNN: label \(y) outside 0..<\(O)")
      loss -= lp[b * O + y]
      dlogits[b * O + y] -= 1
      if predicted[b] == y { correct += 1 }
    }
    loss /= T(B)
    for k in 0..<lanesO { dlogits[k] /= T(B) }

    // Readout backward in reverse time: dL/dJ_t into ws.readIn, split over the samples as the
    // hidden layer's backward reads it.
    let parts = Swift.max(1, Swift.min(ws.parts, B))
    ws.readIn.withUnsafeMutableBufferPointer { jb in
      ws.peakStep.withUnsafeBufferPointer { psb in
        dlogits.withUnsafeBufferPointer { dlb in
          let (jp, ps, dl) = (jb.baseAddress!, psb.baseAddress!, dlb.baseAddress!)
          parallel(parts) { part in
            let (k0, k1) = Self.readoutLanes(part: part, parts: parts, batch: B, outputs: O)
            let n = k1 - k0
            withUnsafeTemporaryAllocation(of: T.self, capacity: 2 * n) { state in
              let (gOut, gFlt) = (state.baseAddress!, state.baseAddress! + n)
              let fp = { (p: UnsafeMutablePointer<T>) in
                UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
              }
              soma_cuba_readout_backward_f32(
                steps, lanesO, k0, k1, Float(alpha), Float(beta), ps,
                UnsafeRawPointer(dl).assumingMemoryBound(to: Float.self), fp(jp), fp(gOut),
                fp(gFlt))
            }
          }
        }
      }
    }
    let grads = hiddenBackwardKernel(events: events, steps: steps, batch: batch)
    return Step(
      loss: loss, logits: logits, gradW1: grads.w1, gradW2: grads.w2, hiddenSpikes: grads.spikes,
      correct: correct, reverseSteps: reverseSteps)
  }

  /// Each sample's range of reverse steps that can add to the gradients, into ws.firstStep and
  /// ws.lastStep; returns the number of (step, sample) pairs in them.
  /// - The max-over-time readout sends each logit's gradient to its peak step p only, and J_t
  ///   reaches the readout from out_{t+1} on, so dL/dJ_t of sample b is zero for t ≥ its
  ///   outputs' latest peak (last step = that peak − 1; −1 when all peak at step 0).
  /// - Before a sample's first input event its state is zero and, the threshold being
  ///   positive, it cannot spike: no reverse step there scatters anything into dW1 or dW2 (a
  ///   latency code's first events come at step 4 at the earliest).
  @inlinable
  func reverseRange(events: SpikeEvents, steps: Int, batch: Int) -> Int {
    let O = outputs
    var pairs = 0
    ws.peakStep.withUnsafeBufferPointer { ps in
      events.rowStart.withUnsafeBufferPointer { rs in
        for b in 0..<batch {
          var peak: Int32 = 0
          for o in 0..<O { peak = Swift.max(peak, ps[b * O + o]) }
          var t = 0
          while t < steps && rs[t * batch + b] == rs[t * batch + b + 1] { t += 1 }
          (ws.lastStep[b], ws.firstStep[b]) = (peak - 1, Int32(t))
          pairs += Swift.max(0, Int(peak) - t)
        }
      }
    }
    return pairs
  }

  /// Sums the per-part dW1ᵀ partials (rows of `ld` elements, parts `partStride` apart from
  /// `p`) and transposes to [H, I]. Split over rows of dW1 as an optimizer's parallel update
  /// splits it, so each thread later reads the rows it wrote.
  @inlinable
  func reduceGradW1(parts: Int, from p: UnsafePointer<T>, ld: Int, partStride sIH: Int) -> Tensor<T> {
    let (I, H) = (inputs, hidden)
    var gradW1 = Tensor<T>(uninitializedShape: [H, I])
    let threads = Swift.max(1, Swift.min(ws.parts, H))
    let kernel = T.self == Float.self && ld == soma_cuba_row_stride(H)
    gradW1.withUnsafeMutableBufferPointer { gb in
      let g = gb.baseAddress!
      parallel(threads) { part in
        // Row ranges on 16-row boundaries where the kernel's 16 × 16 tiles run.
        let (h0, h1) =
          kernel
          ? (Swift.min(H, (part * H / threads + 8) / 16 * 16),
             part + 1 == threads ? H : Swift.min(H, ((part + 1) * H / threads + 8) / 16 * 16))
          : (part * H / threads, (part + 1) * H / threads)
        if kernel {
          soma_cuba_reduce_dw1_f32(
            UnsafeRawPointer(p).assumingMemoryBound(to: Float.self), Swift.max(parts, 1), sIH, I,
            H, UnsafeMutableRawPointer(g).assumingMemoryBound(to: Float.self), h0, h1)
          return
        }
        // 32 × 32 tiles: the column reads and the row writes both stay in a few lines.
        for i0 in stride(from: 0, to: I, by: 32) {
          let i1 = Swift.min(i0 + 32, I)
          for hb in stride(from: h0, to: h1, by: 32) {
            let he = Swift.min(hb + 32, h1)
            for i in i0..<i1 {
              let row = p + i * ld
              for h in hb..<he {
                var sum = row[h]
                for q in 1..<Swift.max(parts, 1) { sum += row[q * sIH + h] }
                g[h * I + i] = sum
              }
            }
          }
        }
      }
    }
    return gradW1
  }

  @inlinable
  func hiddenBackwardKernel(events: SpikeEvents, steps: Int, batch: Int) -> (
    w1: Tensor<T>, w2: Tensor<T>, spikes: Int
  ) {
    let (I, H, O) = (inputs, hidden, outputs)
    let parts = ws.parts
    let surrogate = self.surrogate
    let (alpha, beta) = (Float(self.alpha), Float(self.beta))
    let ldo = soma_cuba_row_stride(O)
    let (sIH, sHO, sRow) = (
      Workspace.partStride(I * ws.ld), Workspace.partStride(H * ldo), Workspace.partStride(3 * H))
    // Each block of samples is recomputed and reversed from its samples' earliest first input
    // step, and each sample in it up to its own last step (ws.firstStep, ws.lastStep from
    // reverseRange): the steps outside would add exact zeros and are skipped, surrogate
    // included (about two thirds of all steps on Fashion-MNIST).
    // S2NN and InvSquareGrad are evaluated inside the reverse step itself (the same values as
    // their bulk kernels): the derivative then overlaps the step's memory stalls instead of
    // being a pass of its own.
    let fused: (kind: Int32, a: Float, b: Float) =
      switch surrogate.fusedKernel {
      case .s2nn(let alpha, let beta)?: (Int32(SOMA_CUBA_SURROGATE_S2NN), Float(alpha), Float(beta))
      case .inverseSquare(let alpha)?: (Int32(SOMA_CUBA_SURROGATE_INV_SQUARE), Float(alpha), 0)
      case .arctan?, nil: (Int32(SOMA_CUBA_SURROGATE_GIVEN), 0, 0)
      }
    let ld = ws.ld
    let sb = Workspace.backwardBlock
    let sDsur = Workspace.partStride(sb * ld)
    let (sX, sState) = (Workspace.partStride(steps * sb * ld), Workspace.partStride(2 * sb * ld))
    let th = Float(threshold)
    let (w1f, xf, df, stf) = (UnsafePointer(ws.kw1t.base), ws.kx.base, ws.kDsur.base, ws.kBlockState.base)
    let (gmf, gyf, g1f) = (ws.kSyn.base, ws.kMem.base, ws.kgw1t.base)
    events.rowStart.withUnsafeBufferPointer { rs in
      events.indices.withUnsafeBufferPointer { ix in
        w2.withUnsafeBufferPointer { w2p in
          ws.order.withUnsafeMutableBufferPointer { orderBuffer in
            ws.spikeCount.withUnsafeBufferPointer { sc in
              ws.spikeIndex.withUnsafeBufferPointer { si in
                ws.readIn.withUnsafeBufferPointer { jp in
                  ws.lastStep.withUnsafeBufferPointer { lastBuffer in
                   ws.firstStep.withUnsafeBufferPointer { firstBuffer in
                    ws.rowScratch.withUnsafeMutableBufferPointer { row in
                      let c = { (p: UnsafeBufferPointer<T>) in
                        UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: Float.self)
                      }
                      let m = { (p: UnsafeMutableBufferPointer<T>) in
                        UnsafeMutableRawPointer(p.baseAddress!).assumingMemoryBound(to: Float.self)
                      }
                      let (w2f, jf, rowf, g2f) = (c(w2p), c(jp), m(row), ws.kgw2t.base)
                      let (ord, last, first) = (
                        orderBuffer.baseAddress!, lastBuffer.baseAddress!, firstBuffer.baseAddress!)
                      let (rsP, ixP, scP, siP) = (rs.baseAddress!, ix.baseAddress, sc.baseAddress!, si.baseAddress!)
                      parallel(parts) { part in
                        (g1f + part * sIH).update(repeating: 0, count: I * ld)
                        (g2f + part * sHO).update(repeating: 0, count: H * ldo)
                        let (b0, b1) = (part * batch / parts, (part + 1) * batch / parts)
                        let (xs, st, d) = (xf + part * sX, stf + part * sState, df + part * sDsur)
                        // The same buffers typed as the surrogate's scalar, for its bulk derivative.
                        let (xT, dT) = (UnsafeMutableRawPointer(xs).assumingMemoryBound(to: T.self),
                                        UnsafeMutableRawPointer(d).assumingMemoryBound(to: T.self))
                        let row = rowf + part * sRow
                        // The forward kept no membranes: they are recomputed here for
                        // blocks of `sb` samples, enough independent recurrences to
                        // keep the core busy, into a [T, sb, ld] slice that stays in
                        // L2 for the reverse pass. The samples go in order of their
                        // latest reverse step (latest first), so a block's
                        // recomputation, which runs to its first sample's step, does
                        // little beyond what its samples need.
                        var k = b0
                        for b in b0..<b1 where last[b] >= first[b] {
                          ord[k] = Int32(b)
                          k += 1
                        }
                        var mine = UnsafeMutableBufferPointer(start: ord + b0, count: k - b0)
                        mine.sort {
                          last[Int($0)] != last[Int($1)] ? last[Int($0)] > last[Int($1)] : $0 < $1
                        }
                        var i = b0
                        while i < k {
                          let (block, count) = (ord + i, Swift.min(sb, k - i))
                          i += count
                          let latest = Int(last[Int(block[0])])
                          var earliest = latest
                          for j in 0..<count { earliest = Swift.min(earliest, Int(first[Int(block[j])])) }
                          soma_cuba_states_f32(
                            earliest, latest + 1, batch, H, block, count, rsP, ixP, w1f, alpha,
                            beta, th, st, st + sb * ld, xs)
                          for j in 0..<count {
                            (gmf + Int(block[j]) * ld).update(repeating: 0, count: ld)
                            (gyf + Int(block[j]) * ld).update(repeating: 0, count: ld)
                          }
                          if fused.kind != Int32(SOMA_CUBA_SURROGATE_GIVEN) {
                            // S2NN and InvSquareGrad: the kernel computes the
                            // derivative itself, so all steps go in one call.
                            soma_cuba_backward_f32(
                              batch, H, O, block, count, rsP, ixP, w2f, alpha, beta, xs, d,
                              scP, siP, jf, gmf, gyf, row, g1f + part * sIH, g2f + part * sHO,
                              earliest, latest + 1, last, fused.kind, fused.a, fused.b)
                            continue
                          }
                          // Any other surrogate, user-written ones too: its bulk kernel
                          // over the step's active samples (a prefix of the block),
                          // then the step's reverse pass while they are in cache.
                          for t in stride(from: latest, through: earliest, by: -1) {
                            var active = 0
                            while active < count && Int(last[Int(block[active])]) >= t { active += 1 }
                            surrogate.derivative(
                              xT + t * count * ld, into: dT, count: active * ld)
                            soma_cuba_backward_f32(
                              batch, H, O, block, count, rsP, ixP, w2f, alpha, beta, xs, d,
                              scP, siP, jf, gmf, gyf, row, g1f + part * sIH, g2f + part * sHO,
                              t, t + 1, last, 0, 0, 0)
                          }
                        }
                      }
                    }
                   }
                  }
                }
              }
            }
          }
        }
      }
    }
    let gradW1 = reduceGradW1(
      parts: parts, from: UnsafeRawPointer(ws.kgw1t.base).assumingMemoryBound(to: T.self),
      ld: ws.ld, partStride: sIH)
    var gradW2 = Tensor<T>(uninitializedShape: [O, H])
    gradW2.withUnsafeMutableBufferPointer { gp in
      let pp = ws.kgw2t.base
      for h in 0..<H {
        for o in 0..<O {
          var s: Float = 0
          for p in 0..<parts { s += pp[p * sHO + h * ldo + o] }
          gp[o * H + h] = T(s)
        }
      }
    }
    var spikes = 0
    for v in ws.spikeCount { spikes += Int(v) }
    return (gradW1, gradW2, spikes)
  }
}
