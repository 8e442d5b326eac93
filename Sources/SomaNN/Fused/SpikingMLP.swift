import Dispatch

/// How a fused network's last layer turns into logits.
public enum Readout: String, Sendable, Codable {
  /// logits = Σ_t s_t of a LIF output layer.
  case spikeCount
  /// The output layer is a non-spiking leaky integrator v_t = β·v_{t−1} + I_t; logits = mean_t v_t.
  case meanMembrane
}

/// When a Linear layer reads its spike input as events instead of a dense GEMM.
public enum EventPolicy: Sendable, Equatable {
  /// Events when the measured input density is below `threshold` (Float only).
  case auto(threshold: Double)
  case always
  case never

  /// The crossover measured on this machine's class (AVX-512 event kernels vs OpenBLAS sgemm).
  public static let automatic = EventPolicy.auto(threshold: 0.3)

  @inlinable
  func useEvents(density: Double) -> Bool {
    switch self {
    case .auto(let th): return density < th
    case .always: return true
    case .never: return false
    }
  }
}

/// A stack of `Linear → LIF` layers trained by BPTT with fused kernels: one GEMM (or one
/// event-driven pass) per layer for all T steps, one forward and one reverse-time pass per LIF
/// layer, spike-count or mean-membrane readout and cross-entropy loss.
///
/// ```swift
/// let net = try SpikingMLP<Float, S2NN>(sizes: [784, 256, 10], surrogate: S2NN(), seed: 0)
/// let step = net.lossAndGradients(input: spikes, labels: labels)   // spikes [T, B, 784]
/// ```
public final class SpikingMLP<T: TensorScalar, S: SurrogateGradient> {
  /// Weights [out, in] per layer (PyTorch layout).
  public var weights: [Tensor<T>]
  /// Biases [out] per layer (zeros and untrained when `hasBias` is false).
  public var biases: [Tensor<T>]
  public let sizes: [Int]
  public let lif: [LIFParameters]
  public let readout: Readout
  public let hasBias: Bool
  public var surrogate: S
  public var eventPolicy: EventPolicy = EventPolicy.automatic
  /// Parallel parts for the GEMM, event and LIF loops. Run OpenBLAS at one thread beside
  /// this (`soma bench` and `soma train` do) so the two never oversubscribe the cores.
  public var threads = 2

  /// Builds the network with PyTorch's default Linear init, U(±1/√fan_in), from `seed`.
  public init(
    sizes: [Int], lif: [LIFParameters]? = nil, readout: Readout = .spikeCount,
    hasBias: Bool = true, surrogate: S, seed: UInt64 = 0
  ) throws(HyperparameterError) {
    guard sizes.count >= 2, sizes.allSatisfy({ $0 >= 1 }) else {
      throw HyperparameterError(
        "layer sizes must be at least two positive widths, got \(sizes)")
    }
    var params: [LIFParameters]
    if let lif { params = lif } else {
      params = Array(repeating: try LIFParameters(), count: sizes.count - 1)
    }
    guard params.count == sizes.count - 1 else {
      throw HyperparameterError(
        "need one LIF parameter set per layer (\(sizes.count - 1)), got \(params.count)")
    }
    self.sizes = sizes
    self.lif = params
    self.readout = readout
    self.hasBias = hasBias
    self.surrogate = surrogate
    var g = SomaRandom(seed: seed)
    weights = []
    biases = []
    for l in 0..<(sizes.count - 1) {
      let bound = T(1) / T(sizes[l]).squareRoot()
      weights.append(Tensor.uniform([sizes[l + 1], sizes[l]], low: -bound, high: bound, using: &g))
      biases.append(
        hasBias
          ? Tensor.uniform([sizes[l + 1]], low: -bound, high: bound, using: &g)
          : Tensor.zeros([sizes[l + 1]]))
    }
  }

  /// The result of one forward + backward pass.
  public struct Step {
    public var loss: T
    public var logits: Tensor<T>
    public var gradWeights: [Tensor<T>]
    public var gradBiases: [Tensor<T>]
    /// Spikes emitted by each LIF layer (all steps, all samples).
    public var spikeCounts: [Int]
    /// Samples whose largest logit is the label.
    public var correct: Int

    @inlinable
    init(
      loss: T, logits: Tensor<T>, gradWeights: [Tensor<T>], gradBiases: [Tensor<T>],
      spikeCounts: [Int], correct: Int
    ) {
      (self.loss, self.logits, self.gradWeights, self.gradBiases) = (loss, logits, gradWeights, gradBiases)
      (self.spikeCounts, self.correct) = (spikeCounts, correct)
    }
  }

  /// Forward over all steps, cross-entropy loss, and BPTT gradients of every parameter.
  /// `input` is [T, batch, sizes[0]] (0/1 spikes for the event path; any values otherwise).
  @inlinable
  public func lossAndGradients(input: Tensor<T>, labels: [Int]) -> Step {
    precondition(
      input.rank == 3 && input.shape[2] == sizes[0],
      "SpikingMLP: input shape \(input.shape) does not match [T, batch, \(sizes[0])]")
    let steps = input.shape[0]
    let batch = input.shape[1]
    precondition(steps >= 1, "SpikingMLP: T must be ≥ 1, got shape \(input.shape)")
    precondition(
      labels.count == batch, "SpikingMLP: \(labels.count) labels for a batch of \(batch)")
    let rows = steps * batch
    let layers = sizes.count - 1
    var xs: [Tensor<T>] = [input.reshaped([rows, sizes[0]])]
    var events: [SpikeEvents?] = []
    var hs: [Tensor<T>] = []
    var spikeCounts: [Int] = []
    var logits = Tensor<T>.zeros([batch, sizes[layers]])

    // Forward.
    for l in 0..<layers {
      let nOut = sizes[l + 1]
      var current = Tensor<T>(uninitializedShape: [rows, nOut])
      let ev = eventsIfSparse(xs[l])
      events.append(ev)
      let parts = Swift.max(1, Swift.min(threads, rows))
      current.withUnsafeMutableBufferPointer { cp in
        let cP = cp.baseAddress!
        if let ev {
          let wt = weights[l].transposedCopy()
          wt.withUnsafeBufferPointer { wp in
            let wP = wp.baseAddress!
            parallel(parts) { part in
              ev.matmul(
                transposedWeight: wP, nOut: nOut, into: cP, rows: part * rows / parts,
                (part + 1) * rows / parts)
            }
          }
        } else {
          splitGemm(xs[l], weights[l].transposed(), into: cP, ldc: nOut)
        }
        if hasBias {
          biases[l].withUnsafeBufferPointer { bp in
            let bP = bp.baseAddress!
            parallel(parts) { part in
              for r in (part * rows / parts)..<((part + 1) * rows / parts) {
                let row = cP + r * nOut
                for j in 0..<nOut { row[j] += bP[j] }
              }
            }
          }
        }
      }
      if l == layers - 1 && readout == .meanMembrane {
        // Leaky integrator readout: logits = mean_t v_t.
        let beta = T(lif[l].beta)
        logits.withUnsafeMutableBufferPointer { lp in
          current.withUnsafeBufferPointer { cp in
            var v = [T](repeating: 0, count: batch * nOut)
            for t in 0..<steps {
              let c = cp.baseAddress! + t * batch * nOut
              for k in 0..<(batch * nOut) {
                v[k] = beta * v[k] + c[k]
                lp[k] += v[k]
              }
            }
            for k in 0..<(batch * nOut) { lp[k] /= T(steps) }
          }
        }
        hs.append(Tensor<T>.zeros([0]))
        continue
      }
      var h = Tensor<T>(uninitializedShape: [rows, nOut])
      var s = Tensor<T>(uninitializedShape: [rows, nOut])
      let lanes = batch * nOut
      let lifParts = Swift.max(1, Swift.min(threads, lanes))
      var partCounts = [Int](repeating: 0, count: lifParts)
      h.withUnsafeMutableBufferPointer { hp in
        s.withUnsafeMutableBufferPointer { sp in
          current.withUnsafeBufferPointer { cp in
            var v = [T](repeating: 0, count: lanes)
            v.withUnsafeMutableBufferPointer { vp in
              partCounts.withUnsafeMutableBufferPointer { pc in
                let (cP, hP, sP, vP, pcP) = (cp.baseAddress!, hp.baseAddress!, sp.baseAddress!, vp.baseAddress!, pc.baseAddress!)
                let p = lif[l]
                parallel(lifParts) { part in
                  let k0 = part * lanes / lifParts
                  let k1 = (part + 1) * lanes / lifParts
                  FusedLIF.forward(
                    p, steps: steps, lanes: lanes, laneBegin: k0, laneEnd: k1, current: cP, h: hP,
                    s: sP, v: vP)
                  var c = 0
                  for t in 0..<steps {
                    let row = sP + t * lanes
                    for k in k0..<k1 where row[k] != 0 { c += 1 }
                  }
                  pcP[part] = c
                }
              }
            }
          }
        }
      }
      let count = partCounts.reduce(0, +)
      spikeCounts.append(count)
      hs.append(h)
      xs.append(s)
      if l == layers - 1 {
        logits = s.reshaped([steps, batch, nOut]).sum(axes: [0])
      }
    }

    // Loss: mean cross-entropy; dlogits = (softmax − onehot) / batch.
    let nOut = sizes[layers]
    let logSoftmax = logits.logSoftmax(axis: -1)
    var loss: T = 0
    var correct = 0
    var dlogits = logSoftmax.exp()
    let predicted = logits.argmaxIndices(axis: -1)
    dlogits.withUnsafeMutableBufferPointer { dp in
      logSoftmax.withUnsafeBufferPointer { lp in
        for b in 0..<batch {
          let y = labels[b]
          precondition(y >= 0 && y < nOut, "SpikingMLP: label \(y) outside 0..<\(nOut)")
          loss -= lp[b * nOut + y]
          dp[b * nOut + y] -= 1
          if predicted[b] == y { correct += 1 }
        }
        for i in 0..<(batch * nOut) { dp[i] /= T(batch) }
      }
    }
    loss /= T(batch)

    // Backward.
    var gradWeights = [Tensor<T>](repeating: Tensor<T>.zeros([0]), count: layers)
    var gradBiases = [Tensor<T>](repeating: Tensor<T>.zeros([0]), count: layers)
    var gradCurrent = Tensor<T>(uninitializedShape: [rows, nOut])
    let lanesOut = batch * nOut
    gradCurrent.withUnsafeMutableBufferPointer { gp in
      dlogits.withUnsafeBufferPointer { dp in
        if readout == .meanMembrane {
          let beta = T(lif[layers - 1].beta)
          var gv = [T](repeating: 0, count: lanesOut)
          var t = steps - 1
          while t >= 0 {
            let g = gp.baseAddress! + t * lanesOut
            for k in 0..<lanesOut {
              gv[k] = beta * gv[k] + dp[k] / T(steps)
              g[k] = gv[k]
            }
            t -= 1
          }
        } else {
          for t in 0..<steps {
            (gp.baseAddress! + t * lanesOut).update(from: dp.baseAddress!, count: lanesOut)
          }
          lifBackward(layer: layers - 1, h: hs[layers - 1], grad: gp.baseAddress!, lanes: lanesOut, steps: steps)
        }
      }
    }

    var l = layers - 1
    while l >= 0 {
      let nIn = sizes[l]
      let nOutL = sizes[l + 1]
      // dW = dIᵀ · x
      var gw = Tensor<T>(uninitializedShape: [nOutL, nIn])
      if let ev = events[l] {
        // dWᵀ column by column (each input's active rows summed), columns split over threads.
        let parts = Swift.max(1, Swift.min(threads, nIn))
        let cols = ev.byColumn()
        var gwt = [T](repeating: 0, count: nIn * nOutL)
        gwt.withUnsafeMutableBufferPointer { tp in
          gradCurrent.withUnsafeBufferPointer { gp in
            let (tP, gP) = (tp.baseAddress!, gp.baseAddress!)
            parallel(parts) { part in
              ev.columnGradient(
                gP, nOut: nOutL, into: tP, byColumn: cols, columns: part * nIn / parts,
                (part + 1) * nIn / parts)
            }
          }
          gw.withUnsafeMutableBufferPointer { gwp in
            transpose(UnsafePointer(tp.baseAddress!), rows: nIn, cols: nOutL, into: gwp.baseAddress!)
          }
        }
      } else {
        gw.withUnsafeMutableBufferPointer { gwp in
          splitGemm(gradCurrent.transposed(), xs[l], into: gwp.baseAddress!, ldc: nIn)
        }
      }
      gradWeights[l] = gw
      gradBiases[l] = hasBias ? gradCurrent.sum(axes: [0]) : Tensor<T>.zeros([nOutL])
      if l > 0 {
        // dL/ds_{l−1} = dI · W, then the previous LIF layer's reverse pass.
        var gs = Tensor<T>(uninitializedShape: [rows, nIn])
        gs.withUnsafeMutableBufferPointer { gsp in
          splitGemm(gradCurrent, weights[l], into: gsp.baseAddress!, ldc: nIn)
          lifBackward(layer: l - 1, h: hs[l - 1], grad: gsp.baseAddress!, lanes: batch * nIn, steps: steps)
        }
        gradCurrent = gs
      }
      l -= 1
    }
    return Step(
      loss: loss, logits: logits, gradWeights: gradWeights, gradBiases: gradBiases,
      spikeCounts: spikeCounts, correct: correct)
  }

  /// `C = A·B` with A's rows split over `threads` parts, each a single BLAS call. With
  /// OpenBLAS itself at one thread, Soma owns all parallelism and nothing oversubscribes.
  @inlinable
  func splitGemm(_ a: Tensor<T>, _ b: Tensor<T>, into c: UnsafeMutablePointer<T>, ldc: Int) {
    let m = a.shape[0]
    let parts = Swift.max(1, Swift.min(threads, m / 32))
    parallel(parts) { part in
      let m0 = part * m / parts
      let m1 = (part + 1) * m / parts
      let rows: Tensor<T> = a[m0..<m1]
      Tensor.gemm(rows, b, into: c + m0 * ldc, ldc: ldc)
    }
  }

  /// The reverse-time LIF pass of `layer`, lanes split over `threads` parts; `grad` holds
  /// dL/ds on entry and dL/dI on return.
  @inlinable
  func lifBackward(layer: Int, h: Tensor<T>, grad: UnsafeMutablePointer<T>, lanes: Int, steps: Int) {
    let parts = Swift.max(1, Swift.min(threads, lanes))
    let p = lif[layer]
    let surrogate = self.surrogate
    h.withUnsafeBufferPointer { hp in
      var gv = [T](repeating: 0, count: lanes)
      gv.withUnsafeMutableBufferPointer { gvp in
        let (hP, gvP) = (hp.baseAddress!, gvp.baseAddress!)
        parallel(parts) { part in
          FusedLIF.backward(
            p, surrogate: surrogate, steps: steps, lanes: lanes, laneBegin: part * lanes / parts,
            laneEnd: (part + 1) * lanes / parts, h: hP, gradSpikes: UnsafePointer(grad),
            gradCurrent: grad, gv: gvP)
        }
      }
    }
  }

  @inlinable
  func eventsIfSparse(_ x: Tensor<T>) -> SpikeEvents? {
    guard T.self == Float.self, eventPolicy != .never else { return nil }
    // Events only make sense for 0/1 input.
    let ev = SpikeEvents(dense: x)
    // Events carry no values: only 0/1 input can take the event path.
    guard ev.isBinary else { return nil }
    return eventPolicy.useEvents(density: ev.density) ? ev : nil
  }

}
