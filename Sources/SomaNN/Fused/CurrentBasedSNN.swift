import Dispatch
import RealModule

/// The SpyTorch tutorial-2 network (shared/BENCHMARKS.md `fmnist-spytorch`): input spikes →
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
/// recurrences are single fused passes over time; the workspace is reused across steps.
///
/// ```swift
/// let net = try CurrentBasedSNN<Float, InvSquareGrad>(surrogate: InvSquareGrad(alpha: 100))
/// let step = net.lossAndGradients(events: events, steps: 100, batch: 256, labels: labels)
/// ```
public final class CurrentBasedSNN<T: TensorScalar, S: SurrogateGradient> {
  /// [hidden, inputs]
  public var w1: Tensor<T>
  /// [outputs, hidden]
  public var w2: Tensor<T>
  public let inputs: Int
  public let hidden: Int
  public let outputs: Int
  /// Synaptic decay α = exp(−dt/τ_syn).
  public let alpha: T
  /// Membrane decay β = exp(−dt/τ_mem).
  public let beta: T
  public let threshold: T
  public var surrogate: S
  /// Parallel lanes for the fused loops (OpenBLAS runs between them, never alongside).
  public var threads: Int = 2

  /// Builds the network with SpyTorch's init: weights N(0, (0.2/√fan_in)²) from `seed`.
  public init(
    inputs: Int = 784, hidden: Int = 100, outputs: Int = 10, tauSyn: Double = 5e-3,
    tauMem: Double = 10e-3, dt: Double = 1e-3, threshold: Double = 1, surrogate: S,
    seed: UInt64 = 0
  ) throws(HyperparameterError) {
    guard inputs >= 1, hidden >= 1, outputs >= 2 else {
      throw HyperparameterError(
        "network sizes must be inputs ≥ 1, hidden ≥ 1, outputs ≥ 2; got \(inputs)-\(hidden)-\(outputs)")
    }
    guard tauSyn > 0, tauMem > 0, dt > 0 else {
      throw HyperparameterError("time constants and dt must be > 0, got τ_syn \(tauSyn), τ_mem \(tauMem), dt \(dt)")
    }
    guard threshold > 0 else {
      throw HyperparameterError("threshold must be > 0, got \(threshold)")
    }
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

  /// The result of one forward + backward pass.
  public struct Step {
    public var loss: T
    /// [batch, outputs]: max over time of the readout membrane.
    public var logits: Tensor<T>
    public var gradW1: Tensor<T>
    public var gradW2: Tensor<T>
    public var hiddenSpikes: Int
    public var correct: Int

    @inlinable
    init(loss: T, logits: Tensor<T>, gradW1: Tensor<T>, gradW2: Tensor<T>, hiddenSpikes: Int, correct: Int) {
      (self.loss, self.logits, self.gradW1, self.gradW2) = (loss, logits, gradW1, gradW2)
      (self.hiddenSpikes, self.correct) = (hiddenSpikes, correct)
    }
  }

  /// Reused buffers: a steady-state step allocates nothing large.
  @usableFromInline
  final class Workspace {
    @usableFromInline var steps = 0, batch = 0
    @usableFromInline var current: [T] = []  // [T, B, H] I_t, then dL/dI_t
    @usableFromInline var mem: [T] = []  // [T, B, H] mem_t (pre-spike)
    @usableFromInline var spikes: [T] = []  // [T, B, H]
    @usableFromInline var readIn: [T] = []  // [T, B, O] J_t, then dL/dJ_t
    @usableFromInline var gradSpikes: [T] = []  // [T, B, H]
    @usableFromInline var w1t: [T] = []  // [I, H]
    @usableFromInline var gw1t: [T] = []  // per-thread partials, [parts, I, H]
    @usableFromInline var parts = 0
    @usableFromInline var peak: [T] = []  // [B, O]
    @usableFromInline var peakStep: [Int32] = []  // [B, O]

    @usableFromInline
    func prepare(steps: Int, batch: Int, inputs: Int, hidden: Int, outputs: Int, threads: Int) {
      if self.steps == steps && self.batch == batch && parts == threads { return }
      parts = threads
      self.steps = steps
      self.batch = batch
      let n = steps * batch
      current = Array(repeating: 0, count: n * hidden)
      mem = Array(repeating: 0, count: n * hidden)
      spikes = Array(repeating: 0, count: n * hidden)
      gradSpikes = Array(repeating: 0, count: n * hidden)
      readIn = Array(repeating: 0, count: n * outputs)
      w1t = Array(repeating: 0, count: inputs * hidden)
      gw1t = Array(repeating: 0, count: threads * inputs * hidden)
      peak = Array(repeating: 0, count: batch * outputs)
      peakStep = Array(repeating: 0, count: batch * outputs)
    }
  }
  @usableFromInline let ws = Workspace()


  /// The forward pass alone: logits [batch, outputs] and hidden spike raster [T, batch, hidden]
  /// plus readout membrane [T, batch, outputs] (for plots and evaluation).
  @inlinable
  public func forward(events: SpikeEvents, steps: Int, batch: Int) -> (
    logits: Tensor<T>, hiddenSpikes: Tensor<T>, readout: Tensor<T>
  ) {
    let outs = runForward(events: events, steps: steps, batch: batch, recordReadout: true)
    return (
      Tensor(ws.peak, shape: [batch, outputs]),
      Tensor(ws.spikes, shape: [steps, batch, hidden]),
      Tensor(outs, shape: [steps, batch, outputs])
    )
  }

  /// Fills ws.current (I), ws.mem, ws.spikes, ws.readIn (J), ws.peak, ws.peakStep.
  @inlinable @discardableResult
  func runForward(events: SpikeEvents, steps: Int, batch: Int, recordReadout: Bool) -> [T] {
    precondition(
      events.columns == inputs && events.rows == steps * batch,
      "CurrentBasedSNN: events [\(events.rows), \(events.columns)] do not match [T·B = \(steps * batch), \(inputs)]"
    )
    let parts = Swift.max(1, Swift.min(threads, batch))
    ws.prepare(
      steps: steps, batch: batch, inputs: inputs, hidden: hidden, outputs: outputs, threads: parts)
    let H = hidden
    let O = outputs
    let B = batch
    let rows = steps * batch
    // W1ᵀ [I, H] for row gathers.
    w1.withUnsafeBufferPointer { wp in
      ws.w1t.withUnsafeMutableBufferPointer { tp in
        for h in 0..<H {
          let src = wp.baseAddress! + h * inputs
          for i in 0..<inputs { tp[i * H + h] = src[i] }
        }
      }
    }
    let alpha = self.alpha
    let beta = self.beta
    let th = self.threshold
    let lanes = B * H
    ws.w1t.withUnsafeBufferPointer { wt in
      ws.current.withUnsafeMutableBufferPointer { cur in
        ws.mem.withUnsafeMutableBufferPointer { mem in
          ws.spikes.withUnsafeMutableBufferPointer { spk in
            let curP = cur.baseAddress!
            let memP = mem.baseAddress!
            let spkP = spk.baseAddress!
            let wtP = wt.baseAddress!
            parallel(parts) { part in
              let b0 = part * B / parts
              let b1 = (part + 1) * B / parts
              // I_t for this part's samples: rows t·B + b.
              for t in 0..<steps {
                events.matmul(
                  transposedWeight: wtP, nOut: H, into: curP, rows: t * B + b0, t * B + b1)
              }
              // Current-based LIF over time for lanes [b0·H, b1·H).
              let k0 = b0 * H
              let k1 = b1 * H
              var syn = [T](repeating: 0, count: k1 - k0)
              var m = [T](repeating: 0, count: k1 - k0)
              syn.withUnsafeMutableBufferPointer { sy in
                m.withUnsafeMutableBufferPointer { mv in
                  for t in 0..<steps {
                    let base = t * lanes + k0
                    let ip = curP + base
                    let mp = memP + base
                    let sp = spkP + base
                    for k in 0..<(k1 - k0) {
                      let mk = mv[k]
                      let s: T = mk - th >= 0 ? 1 : 0
                      mp[k] = mk
                      sp[k] = s
                      let sk = sy[k]
                      sy[k] = alpha * sk + ip[k]
                      mv[k] = (beta * mk + sk) * (1 - s)
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    // J = S · W2ᵀ, one GEMM for all steps.
    ws.spikes.withUnsafeBufferPointer { sp in
      ws.readIn.withUnsafeMutableBufferPointer { jp in
        w2.withUnsafeBufferPointer { wp in
          T._gemm(
            transA: false, transB: true, m: rows, n: O, k: H, alpha: 1, a: sp.baseAddress!,
            lda: H, b: wp.baseAddress!, ldb: H, beta: 0, c: jp.baseAddress!, ldc: O)
        }
      }
    }
    // Readout filter and running max over time.
    var record: [T] = recordReadout ? Array(repeating: 0, count: rows * O) : []
    let lanesO = B * O
    ws.readIn.withUnsafeBufferPointer { jp in
      ws.peak.withUnsafeMutableBufferPointer { pk in
        ws.peakStep.withUnsafeMutableBufferPointer { ps in
          var flt = [T](repeating: 0, count: lanesO)
          var out = [T](repeating: 0, count: lanesO)
          for k in 0..<lanesO {
            pk[k] = -.infinity
            ps[k] = 0
          }
          for t in 0..<steps {
            let j = jp.baseAddress! + t * lanesO
            for k in 0..<lanesO {
              let f = flt[k]
              flt[k] = alpha * f + j[k]
              let o = beta * out[k] + f
              out[k] = o
              if o > pk[k] {
                pk[k] = o
                ps[k] = Int32(t)
              }
            }
            if recordReadout {
              for k in 0..<lanesO { record[t * lanesO + k] = out[k] }
            }
          }
        }
      }
    }
    return record
  }

  /// Forward over all steps, NLL of log-softmax of the max-over-time readout, and BPTT
  /// gradients of W1 and W2. `events` is the input spikes [steps·batch rows (t-major), inputs].
  @inlinable
  public func lossAndGradients(events: SpikeEvents, steps: Int, batch: Int, labels: [Int]) -> Step
  {
    precondition(steps >= 1, "CurrentBasedSNN: T must be ≥ 1, got \(steps)")
    precondition(
      labels.count == batch, "CurrentBasedSNN: \(labels.count) labels for a batch of \(batch)")
    runForward(events: events, steps: steps, batch: batch, recordReadout: false)
    let H = hidden
    let O = outputs
    let B = batch
    let rows = steps * batch
    let alpha = self.alpha
    let beta = self.beta
    let th = self.threshold
    let lanesO = B * O

    // Loss and dL/dlogits.
    let logits = Tensor(ws.peak, shape: [B, O])
    let logp = logits.logSoftmax(axis: -1)
    let probs = logp.exp().scalars
    let lp = logp.scalars
    let predicted = logits.argmaxIndices(axis: -1)
    var loss: T = 0
    var correct = 0
    var dlogits = probs
    for b in 0..<B {
      let y = labels[b]
      precondition(y >= 0 && y < O, "CurrentBasedSNN: label \(y) outside 0..<\(O)")
      loss -= lp[b * O + y]
      dlogits[b * O + y] -= 1
      if predicted[b] == y { correct += 1 }
    }
    loss /= T(B)
    for k in 0..<lanesO { dlogits[k] /= T(B) }

    // Readout backward in reverse time: dL/dJ_t into ws.readIn.
    ws.readIn.withUnsafeMutableBufferPointer { jp in
      ws.peakStep.withUnsafeBufferPointer { ps in
        var gOut = [T](repeating: 0, count: lanesO)
        var gFlt = [T](repeating: 0, count: lanesO)
        var t = steps - 1
        while t >= 0 {
          let j = jp.baseAddress! + t * lanesO
          for k in 0..<lanesO {
            if ps[k] == Int32(t) { gOut[k] += dlogits[k] }
            j[k] = gFlt[k]
            gFlt[k] = alpha * gFlt[k] + gOut[k]
            gOut[k] = beta * gOut[k]
          }
          t -= 1
        }
      }
    }
    // dW2 = dJᵀ·S  [O, H];  dS = dJ·W2  [rows, H].
    var gradW2 = Tensor<T>(uninitializedShape: [O, H])
    ws.readIn.withUnsafeBufferPointer { jp in
      ws.spikes.withUnsafeBufferPointer { sp in
        gradW2.withUnsafeMutableBufferPointer { gp in
          T._gemm(
            transA: true, transB: false, m: O, n: H, k: rows, alpha: 1, a: jp.baseAddress!,
            lda: O, b: sp.baseAddress!, ldb: H, beta: 0, c: gp.baseAddress!, ldc: H)
        }
        ws.gradSpikes.withUnsafeMutableBufferPointer { gs in
          w2.withUnsafeBufferPointer { wp in
            T._gemm(
              transA: false, transB: false, m: rows, n: H, k: O, alpha: 1, a: jp.baseAddress!,
              lda: O, b: wp.baseAddress!, ldb: H, beta: 0, c: gs.baseAddress!, ldc: H)
          }
        }
      }
    }
    // Hidden layer backward in reverse time (dL/dI_t into ws.current), then the dW1 scatter.
    let parts = ws.parts
    let lanes = B * H
    let IH = inputs * H
    let surrogate = self.surrogate
    ws.gradSpikes.withUnsafeBufferPointer { gsb in
      ws.mem.withUnsafeBufferPointer { memb in
        ws.current.withUnsafeMutableBufferPointer { curb in
          let gsP = gsb.baseAddress!
          let memP = memb.baseAddress!
          let curP = curb.baseAddress!
          ws.gw1t.withUnsafeMutableBufferPointer { parr in
            let pbase = parr.baseAddress!
            parallel(parts) { part in
              let b0 = part * B / parts
              let b1 = (part + 1) * B / parts
              let k0 = b0 * H
              let n = (b1 - b0) * H
              var gMem = [T](repeating: 0, count: n)
              var gSyn = [T](repeating: 0, count: n)
              gMem.withUnsafeMutableBufferPointer { gm in
                gSyn.withUnsafeMutableBufferPointer { gy in
                  var t = steps - 1
                  while t >= 0 {
                    let base = t * lanes + k0
                    let mp = memP + base
                    let gs = gsP + base
                    let ip = curP + base
                    for k in 0..<n {
                      let x = mp[k] - th
                      let keep: T = x >= 0 ? 0 : 1
                      let gmNext = gm[k]
                      let gyNext = gy[k]
                      ip[k] = gyNext
                      gm[k] = gs[k] * surrogate.derivative(x) + beta * keep * gmNext
                      gy[k] = alpha * gyNext + keep * gmNext
                    }
                    t -= 1
                  }
                }
              }
              // Scatter dI rows of this part's samples into its own partial dW1ᵀ.
              let dw = pbase + part * IH
              dw.update(repeating: 0, count: IH)
              for t in 0..<steps {
                events.scatterGradient(
                  UnsafePointer(curP), nOut: H, into: dw, rows: t * B + b0, t * B + b1)
              }
            }
          }
        }
      }
    }
    // Sum the partials and transpose to [H, I].
    var gradW1 = Tensor<T>(uninitializedShape: [H, inputs])
    gradW1.withUnsafeMutableBufferPointer { gp in
      ws.gw1t.withUnsafeMutableBufferPointer { pp in
        for p in 1..<Swift.max(parts, 1) {
          for i in 0..<IH { pp[i] += pp[p * IH + i] }
        }
        for i in 0..<inputs {
          for h in 0..<H { gp[h * inputs + i] = pp[i * H + h] }
        }
      }
    }
    var spikes = 0
    ws.spikes.withUnsafeBufferPointer { sp in
      for v in sp where v != 0 { spikes += 1 }
    }
    return Step(
      loss: loss, logits: logits, gradW1: gradW1, gradW2: gradW2, hiddenSpikes: spikes,
      correct: correct)
  }
}
