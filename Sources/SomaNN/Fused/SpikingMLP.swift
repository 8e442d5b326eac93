import Dispatch
import SomaKernels

/// How a fused network's last layer turns into logits.
public enum Readout: String, Sendable, Codable {
  /// logits = Σ_t s_t of a LIF output layer.
  case spikeCount
  /// The output layer is a non-spiking leaky integrator v_t = β·v_{t−1} + I_t; logits = mean_t v_t.
  case meanMembrane
}

/// A stack of `Linear → LIF` layers trained by BPTT with fused kernels: one GEMM (or one
/// event-driven pass) per layer for all T steps, one forward and one reverse-time pass per LIF
/// layer, spike-count or mean-membrane readout and cross-entropy loss.
///
/// Weights are stored `[in, out]` (a layer computes `x · W + b`, the layout JAX and Flax use):
/// an event-fed layer then sums rows of `W`, and its weight gradient comes out in the same
/// layout, so a training step never transposes a weight. Buffers live in a workspace that is
/// reused while T and the batch size stay the same; a steady-state step allocates no buffers
/// (the returned gradients are reused too, unless the caller still holds the previous step).
///
/// ```swift
/// let net = try SpikingMLP<Float, S2NN>(sizes: [784, 256, 10], surrogate: S2NN(), seed: 0)
/// let step = net.lossAndGradients(input: spikes, labels: labels)   // spikes [T, B, 784]
/// net.withParameters { params in adam.step(&params, grads: step.gradWeights + step.gradBiases) }
/// ```
public final class SpikingMLP<T: TensorScalar, S: SurrogateGradient> {
  /// Weights [in, out] per layer.
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
  /// Event layers at least this dense (and at least 128 outputs wide) read their events from
  /// bit masks into an L1 tile (`soma_sparse_scatter_f32`); sparser ones gather by row lists.
  /// Both give the same sums; tests move this to run one path or the other.
  @usableFromInline var maskScatterDensity = MLPKernels.maskScatterDensity
  @usableFromInline var workspace: MLPWorkspace<T>?

  /// Builds the network with PyTorch's default Linear init, U(±1/√fan_in), from `seed`.
  public init(
    sizes: [Int], lif: [LIFParameters]? = nil, readout: Readout = .spikeCount,
    hasBias: Bool = true, surrogate: S, seed: UInt64 = 0
  ) throws(SomaNNError) {
    guard sizes.count >= 2, sizes.allSatisfy({ $0 >= 1 }) else {
      throw .invalidSizes(model: "SpikingMLP", sizes: sizes, allowed: "at least two positive widths")
    }
    var params: [LIFParameters]
    if let lif { params = lif } else {
      params = Array(repeating: try LIFParameters(), count: sizes.count - 1)
    }
    guard params.count == sizes.count - 1 else {
      throw .invalidSizes(
        model: "SpikingMLP", sizes: sizes,
        allowed: "one longer than the list of LIF parameter sets (\(params.count))")
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
      weights.append(Tensor.uniform([sizes[l], sizes[l + 1]], low: -bound, high: bound, using: &g))
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
    /// dL/dW per layer, [in, out] like `weights`.
    public var gradWeights: [Tensor<T>]
    public var gradBiases: [Tensor<T>]
    /// Spikes emitted by each LIF layer (all steps, all samples).
    public var spikeCounts: [Int]
    /// Samples whose largest logit is the label (ties go to the lowest class index).
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

  /// Calls `body` with the parameters (all weights, then all biases) moved out of the network,
  /// so an optimizer can update them in place without copy-on-write copies; they are moved
  /// back afterwards. The shapes must not change.
  @inlinable
  public func withParameters<R>(_ body: (inout [Tensor<T>]) throws -> R) rethrows -> R {
    let layers = weights.count
    var params = weights + biases
    weights = []
    biases = []
    defer {
      precondition(
        params.count == 2 * layers, "SpikingMLP.withParameters: \(params.count) parameters returned, expected \(2 * layers)")
      weights = Array(params[0..<layers])
      biases = Array(params[layers...])
    }
    return try body(&params)
  }

  /// Forward over all steps, cross-entropy loss, and BPTT gradients of every parameter.
  /// `input` is [T, batch, sizes[0]] (0/1 spikes for the event path; any values otherwise).
  @inlinable
  public func lossAndGradients(input: Tensor<T>, labels: [Int]) -> Step {
    settleParameters()
    return run(input: input, labels: labels, adam: nil)
  }

  /// One training step: forward, loss, BPTT and an Adam update of every parameter, with the
  /// update fused into the backward pass (an event-driven layer's weight gradient goes from
  /// registers straight into Adam). Equals `lossAndGradients` followed by the same Adam step
  /// on each parameter. The returned step's `gradWeights` and `gradBiases` are empty: the
  /// gradients were applied, not kept.
  @inlinable
  public func trainStep(input: Tensor<T>, labels: [Int], optimizer: inout FusedAdam<T>) -> Step {
    // Unique, contiguous parameters: the update writes through their pointers.
    settleParameters()
    for l in weights.indices {
      weights[l].withUnsafeMutableBufferPointer { _ in }
      biases[l].withUnsafeMutableBufferPointer { _ in }
    }
    let adam = optimizer.begin(shapes: weights.map(\.shape) + biases.map(\.shape))
    return withExtendedLifetime(optimizer) { run(input: input, labels: labels, adam: adam) }
  }

  /// Moves weights onto large-page storage the first time they are used (and again after the
  /// caller replaces one): the event gathers read weight rows in random order, and on 4 KiB
  /// pages a 784 × 512 weight spans more pages than the TLB holds.
  @inlinable
  func settleParameters() {
    for l in weights.indices where !weights[l].hasLargePageStorage {
      weights[l] = weights[l].withLargePageStorage()
    }
  }

  @inlinable
  func run(input: Tensor<T>, labels: [Int], adam: AdamStep<T>?) -> Step {
    precondition(
      input.rank == 3 && input.shape[2] == sizes[0],
      "SpikingMLP: input shape \(input.shape) does not match [T, batch, \(sizes[0])]")
    let steps = input.shape[0]
    let batch = input.shape[1]
    precondition(
      steps >= 1 && batch >= 1, "SpikingMLP: T and the batch must be ≥ 1, got shape \(input.shape)")
    precondition(
      labels.count == batch, "SpikingMLP: \(labels.count) labels for a batch of \(batch)")
    let layers = sizes.count - 1
    precondition(
      weights.count == layers && biases.count == layers,
      "SpikingMLP: \(weights.count) weights and \(biases.count) biases for \(layers) layers")
    for (l, w) in weights.enumerated() {
      precondition(
        w.shape == [sizes[l], sizes[l + 1]],
        "SpikingMLP: weight \(l) has shape \(w.shape), expected [\(sizes[l]), \(sizes[l + 1])] ([in, out])")
      precondition(
        biases[l].shape == [sizes[l + 1]],
        "SpikingMLP: bias \(l) has shape \(biases[l].shape), expected [\(sizes[l + 1])]")
    }
    let parts = Swift.max(1, threads)
    if workspace == nil || !workspace!.fits(steps: steps, batch: batch, sizes: sizes, parts: parts) {
      workspace = MLPWorkspace(steps: steps, batch: batch, sizes: sizes, parts: parts)
    }
    let ws = workspace!
    let rows = steps * batch
    // Contiguous parameters, held for the whole step so their base addresses stay valid.
    let x0 = input.contiguous()
    let wc = weights.map { $0.contiguous() }
    let bs = biases.map { $0.contiguous() }
    return withExtendedLifetime((x0, wc, bs)) {
      let xP = x0.withUnsafeBufferPointer { $0.baseAddress! }
      let wP = wc.map { w in w.withUnsafeBufferPointer { $0.baseAddress! } }
      let bP = bs.map { b in b.withUnsafeBufferPointer { $0.baseAddress! } }
      var spikeCounts = [Int](repeating: 0, count: readout == .meanMembrane ? layers - 1 : layers)

      // Forward.
      for l in 0..<layers {
        let nIn = sizes[l]
        let nOut = sizes[l + 1]
        let x: UnsafePointer<T> = l == 0 ? xP : UnsafePointer(ws.s[l - 1])
        let cur = ws.current
        ws.usesEvents[l] = extractEvents(x, layer: l, rows: rows, ws: ws)
        let rowParts = Swift.max(1, Swift.min(parts, rows / 8))
        if ws.usesMasks[l] {
          // The scatter over the column bits (built with the masks): same sums as the gather
          // below, bit for bit, and faster once many rows share each input. Threads take
          // 64-row blocks in turn.
          let (bits, words, next) = (ws.colBits, ws.rowsPadded / 16, ws.blockCounter)
          let init_ = hasBias ? cast(bP[l], Float.self) : nil
          let w = cast(wP[l], Float.self)
          let out = cast(cur, Float.self)
          next.pointee = 0
          parallel(parts) { _ in
            soma_sparse_scatter_shared_f32(
              bits, 1, words, nIn, 0, rows, next, w, nOut, init_, out, nil, nil, nil, nil)
          }
        } else if ws.usesEvents[l] {
          let (b, e, list) = (ws.begin[l], ws.end[l], ws.list[l])
          let init_: UnsafePointer<T>? = hasBias ? bP[l] : nil
          let w = wP[l]
          parallel(rowParts) { part in
            MLPKernels.gather(
              begin: b, end: e, list: list, from: part * rows / rowParts,
              to: (part + 1) * rows / rowParts, source: w, width: nOut, initial: init_,
              into: cur)
          }
        } else {
          let w = wP[l]
          let hasBias = self.hasBias
          let bias = bP[l]
          parallel(rowParts) { part in
            let r0 = part * rows / rowParts
            let r1 = (part + 1) * rows / rowParts
            guard r1 > r0 else { return }
            T._gemm(
              transA: false, transB: false, m: r1 - r0, n: nOut, k: nIn, alpha: 1,
              a: x + r0 * nIn, lda: nIn, b: w, ldb: nOut, beta: 0, c: cur + r0 * nOut, ldc: nOut)
            if hasBias {
              for r in r0..<r1 {
                let row = cur + r * nOut
                for j in 0..<nOut { row[j] += bias[j] }
              }
            }
          }
        }
        let lanes = batch * nOut
        if l == layers - 1 && readout == .meanMembrane {
          // Leaky integrator readout: logits = mean_t v_t.
          let beta = T(lif[l].beta)
          let lg = ws.logitsPointer
          let v = ws.v
          for k in 0..<lanes { v[k] = 0; lg[k] = 0 }
          for t in 0..<steps {
            let c = cur + t * lanes
            for k in 0..<lanes {
              v[k] = beta * v[k] + c[k]
              lg[k] += v[k]
            }
          }
          for k in 0..<lanes { lg[k] /= T(steps) }
          continue
        }
        let lifParts = Swift.max(1, Swift.min(parts, lanes / 16))
        let (h, s, v, counts) = (ws.h[l], ws.s[l], ws.v, ws.partCounts)
        let p = lif[l]
        parallel(lifParts) { part in
          let k0 = part * lanes / lifParts
          let k1 = (part + 1) * lanes / lifParts
          FusedLIF.forward(
            p, steps: steps, lanes: lanes, laneBegin: k0, laneEnd: k1, current: cur, h: h, s: s,
            v: v)
          var c = 0
          for t in 0..<steps { c += MLPKernels.countNonzero(s + t * lanes + k0, k1 - k0) }
          counts[part] = c
        }
        spikeCounts[l] = (0..<lifParts).reduce(0) { $0 + counts[$1] }
        if l == layers - 1 {
          // logits = Σ_t s_t
          let lg = ws.logitsPointer
          for k in 0..<lanes { lg[k] = 0 }
          for t in 0..<steps {
            let st = s + t * lanes
            for k in 0..<lanes { lg[k] += st[k] }
          }
        }
      }

      // Loss: mean cross-entropy; dlogits = (softmax − onehot) / batch.
      let nLast = sizes[layers]
      let (lg, dl) = (ws.logitsPointer, ws.dlogits)
      for y in labels {
        precondition(y >= 0 && y < nLast, "SpikingMLP: label \(y) outside 0..<\(nLast)")
      }
      // Samples split over the threads; one exp per logit.
      let lossParts = Swift.max(1, Swift.min(parts, batch / 32))
      let (partLoss, partCorrect) = (ws.partLoss, ws.partCounts)
      labels.withUnsafeBufferPointer { yl in
        parallel(lossParts) { part in
          var loss: T = 0
          var correct = 0
          for b in (part * batch / lossParts)..<((part + 1) * batch / lossParts) {
            let y = yl[b]
            let row = lg + b * nLast
            var best = 0
            for j in 1..<Swift.max(nLast, 1) where row[j] > row[best] { best = j }
            if best == y { correct += 1 }
            let m = row[best]
            let d = dl + b * nLast
            var z: T = 0
            for j in 0..<nLast {
              let e = T.exp(row[j] - m)
              d[j] = e
              z += e
            }
            loss -= row[y] - (m + T.log(z))
            let scale = 1 / (z * T(batch))
            for j in 0..<nLast { d[j] *= scale }
            d[y] -= 1 / T(batch)
          }
          partLoss[part] = loss
          partCorrect[part] = correct
        }
      }
      var loss: T = 0
      var correct = 0
      for part in 0..<lossParts {
        loss += partLoss[part]
        correct += partCorrect[part]
      }
      loss /= T(batch)

      // Backward.
      let gW = (0..<layers).map { l in ws.gradW[l].withUnsafeMutableBufferPointer { $0.baseAddress! } }
      let gB = (0..<layers).map { l in ws.gradB[l].withUnsafeMutableBufferPointer { $0.baseAddress! } }
      var g = ws.gradA
      var gs = ws.gradB2
      let lanesOut = batch * nLast
      if readout == .meanMembrane {
        let beta = T(lif[layers - 1].beta)
        let gv = ws.v
        for k in 0..<lanesOut { gv[k] = 0 }
        var t = steps - 1
        while t >= 0 {
          let gt = g + t * lanesOut
          for k in 0..<lanesOut {
            gv[k] = beta * gv[k] + dl[k] / T(steps)
            gt[k] = gv[k]
          }
          t -= 1
        }
      } else {
        for t in 0..<steps { (g + t * lanesOut).update(from: dl, count: lanesOut) }
        lifBackward(layer: layers - 1, ws: ws, grad: g, lanes: lanesOut, steps: steps)
      }

      var l = layers - 1
      while l >= 0 {
        let nIn = sizes[l]
        let nOut = sizes[l + 1]
        let x: UnsafePointer<T> = l == 0 ? xP : UnsafePointer(ws.s[l - 1])
        let dW = gW[l]
        let gradOut = UnsafePointer(g)
        // The parameters themselves, for an Adam step (made unique by trainStep).
        let wMut = UnsafeMutablePointer(mutating: wP[l])
        let bMut = UnsafeMutablePointer(mutating: bP[l])
        // Adam fuses into the weight-gradient gather of the first layer only: any other
        // layer's old W is still needed for dI · Wᵀ, and computing that first would push dI
        // out of cache before the gather reads it.
        let fusedEvents = adam != nil && T.self == Float.self && l == 0
        if ws.usesMasks[l] {
          // dW[i, :] = Σ dI[r, :] over the rows r where input i spiked, read straight from the
          // row masks; threads take 64-row blocks of dW in turn.
          let (mask, padded, next) = (ws.rowMask[l], ws.rowsPadded, ws.blockCounter)
          let adamConstants = adam?.constants
          let (mW, vW) = (adam?.m[l], adam?.v[l])
          let src = cast(gradOut, Float.self)
          next.pointee = 0
          parallel(parts) { _ in
            if fusedEvents, var c = adamConstants, let mW, let vW {
              soma_sparse_scatter_shared_f32(
                mask, padded, 1, rows, 0, nIn, next, src, nOut, nil, nil, &c,
                cast(wMut, Float.self), cast(mW, Float.self), cast(vW, Float.self))
            } else {
              soma_sparse_scatter_shared_f32(
                mask, padded, 1, rows, 0, nIn, next, src, nOut, nil, cast(dW, Float.self), nil,
                nil, nil, nil)
            }
          }
        } else if ws.usesEvents[l] {
          // dW[i, :] = Σ dI[r, :] over the rows r where input i spiked: the row masks
          // transposed to column bits, then one gather per weight row, split over the threads.
          let (mask, bits, padded) = (ws.rowMask[l], ws.colBits, ws.rowsPadded)
          let blocks = (nIn + 15) / 16
          let blockParts = Swift.max(1, Swift.min(parts, blocks / 4))
          parallel(blockParts) { part in
            soma_sparse_transpose_masks(
              mask, nIn, padded, part * blocks / blockParts, (part + 1) * blocks / blockParts, 0,
              padded / 16, bits)
          }
          // Split over weight rows (input columns). (Splitting over 128-column slabs of dI
          // instead, so each thread reads half of dI, measured slower on mlp-small/-deep.)
          let colParts = Swift.max(1, Swift.min(parts, nIn / 8))
          // Bits → per-column row lists, then the forward's gather kernel over them.
          let (cl, cb, ce) = (ws.colList, ws.colBegin, ws.colEnd)
          let adamConstants = adam?.constants
          let (mW, vW) = (adam?.m[l], adam?.v[l])
          parallel(colParts) { part in
            let c0 = part * nIn / colParts
            let c1 = (part + 1) * nIn / colParts
            soma_sparse_bits_to_lists(bits, padded, c0, c1, cl, c0 * rows + part * 16, cb, ce)
            if fusedEvents, var c = adamConstants, let mW, let vW {
              soma_sparse_gather_adam_f32(
                cb, ce, cl, c0, c1, cast(gradOut, Float.self), nOut, nil, &c,
                cast(wMut, Float.self), cast(mW, Float.self), cast(vW, Float.self))
            } else {
              MLPKernels.gather(
                begin: cb, end: ce, list: cl, from: c0, to: c1, source: gradOut, width: nOut,
                initial: nil, into: dW)
            }
          }
        } else {
          // dW = xᵀ · dI, split over the rows of dW.
          let inParts = Swift.max(1, Swift.min(parts, nIn / 16))
          parallel(inParts) { part in
            let i0 = part * nIn / inParts
            let i1 = (part + 1) * nIn / inParts
            guard i1 > i0 else { return }
            T._gemm(
              transA: true, transB: false, m: i1 - i0, n: nOut, k: rows, alpha: 1, a: x + i0,
              lda: nIn, b: gradOut, ldb: nOut, beta: 0, c: dW + i0 * nOut, ldc: nOut)
          }
        }
        let db = gB[l]
        if hasBias {
          let jParts = Swift.max(1, Swift.min(parts, nOut / 64))
          parallel(jParts) { part in
            MLPKernels.columnSums(
              gradOut, rows: rows, width: nOut, from: part * nOut / jParts,
              to: (part + 1) * nOut / jParts, into: db)
          }
          adam?.apply(index: layers + l, param: bMut, grad: db, from: 0, to: nOut)
        } else {
          for j in 0..<nOut { db[j] = 0 }
        }
        if l > 0 {
          // dL/ds_{l−1} = dI · Wᵀ (with the old W), then the previous LIF layer's reverse pass.
          let w = wP[l]
          let out = gs
          let rowParts = Swift.max(1, Swift.min(parts, rows / 32))
          if T.self == Float.self && nOut <= MLPKernels.narrowProductWidth {
            // A GEMM this thin (k = nOut) runs far below BLAS's peak: Wᵀ rows as axpys.
            let wt = ws.narrowTransposed
            for i in 0..<nIn {
              for j in 0..<nOut { wt[j * nIn + i] = w[i * nOut + j] }
            }
            parallel(rowParts) { part in
              soma_narrow_product_f32(
                cast(gradOut, Float.self), part * rows / rowParts, (part + 1) * rows / rowParts,
                nOut, cast(UnsafePointer(wt), Float.self), nIn, cast(out, Float.self))
            }
          } else {
            parallel(rowParts) { part in
              let r0 = part * rows / rowParts
              let r1 = (part + 1) * rows / rowParts
              guard r1 > r0 else { return }
              T._gemm(
                transA: false, transB: true, m: r1 - r0, n: nIn, k: nOut, alpha: 1,
                a: gradOut + r0 * nOut, lda: nOut, b: w, ldb: nOut, beta: 0,
                c: out + r0 * nIn, ldc: nIn)
            }
          }
        }
        if let adam, !(ws.usesEvents[l] && fusedEvents) {
          // The weight gradient is in dW: the same Adam step, split over the threads.
          let n = nIn * nOut
          let p = Swift.max(1, Swift.min(parts, n / 16_384))
          parallel(p) { part in
            adam.apply(index: l, param: wMut, grad: dW, from: part * n / p, to: (part + 1) * n / p)
          }
        }
        if l > 0 {
          lifBackward(layer: l - 1, ws: ws, grad: gs, lanes: batch * nIn, steps: steps)
          swap(&g, &gs)
        }
        l -= 1
      }
      return Step(
        loss: loss, logits: ws.logits, gradWeights: adam == nil ? ws.gradW : [],
        gradBiases: adam == nil ? ws.gradB : [], spikeCounts: spikeCounts, correct: correct)
    }
  }

  /// Builds layer `layer`'s input events from the dense input `x` [rows, sizes[layer]] when
  /// the policy allows, and says whether the layer should use them. For Float the row masks
  /// come first; row lists are built from them only for a layer that gathers by lists
  /// (`ws.usesMasks[layer]` false).
  @inlinable
  func extractEvents(_ x: UnsafePointer<T>, layer l: Int, rows: Int, ws: MLPWorkspace<T>) -> Bool {
    ws.usesMasks[l] = false
    if eventPolicy == .never { return false }
    let n = sizes[l]
    let parts = Swift.max(1, Swift.min(ws.parts, rows / 8))
    let (list, b, e, counts, flags) = (ws.list[l], ws.begin[l], ws.end[l], ws.partCounts, ws.partFlags)
    let (mask, padded) = (ws.rowMask[l], ws.rowsPadded)
    // Float builds row masks (and, for a layer wide enough for the mask scatter, each part
    // transposes its own rows' masks right away: parts own whole 16-row words); the generic
    // path builds row lists and masks together.
    let isFloat = T.self == Float.self
    let bits = isFloat && sizes[l + 1] >= 128 ? ws.colBits : nil
    parallel(parts) { part in
      let r0 = MLPKernels.split16(part, of: parts, count: rows)
      let r1 = MLPKernels.split16(part + 1, of: parts, count: rows)
      flags[part] = 1
      if isFloat {
        counts[part] = soma_sparse_masks_f32(
          cast(x, Float.self), r0, r1, n, flags + part, mask, padded)
        if let bits, r1 > r0 {
          soma_sparse_transpose_masks(
            mask, n, padded, 0, (n + 15) / 16, r0 / 16, (r1 + 15) / 16, bits)
        }
      } else {
        // Each part fills its own region of the list (with 16 spare slots for vector stores).
        counts[part] = MLPKernels.events(
          x, rows: r0, r1, width: n, list: list, offset: r0 * n + part * 16, begin: b, end: e,
          binary: flags + part, rowMask: mask, rowsPadded: padded)
      }
    }
    var total = 0
    for part in 0..<parts {
      total += counts[part]
      // Events carry no values: only 0/1 input can take the event path.
      if flags[part] == 0 { return false }
    }
    let density = Double(total) / Double(Swift.max(1, rows * n))
    guard eventPolicy.useEvents(density: density, outputs: sizes[l + 1]) else { return false }
    guard isFloat else { return true }
    if sizes[l + 1] >= 128 && density >= maskScatterDensity {
      ws.usesMasks[l] = true
      return true
    }
    // Row lists for the gather, expanded from the masks.
    parallel(parts) { part in
      let r0 = MLPKernels.split16(part, of: parts, count: rows)
      let r1 = MLPKernels.split16(part + 1, of: parts, count: rows)
      _ = soma_sparse_lists_from_masks(mask, padded, n, r0, r1, list, r0 * n + part * 16, b, e)
    }
    return true
  }

  /// The reverse-time LIF pass of `layer`, lanes split over the threads; `grad` holds dL/ds on
  /// entry and dL/dI on return.
  @inlinable
  func lifBackward(layer: Int, ws: MLPWorkspace<T>, grad: UnsafeMutablePointer<T>, lanes: Int, steps: Int) {
    let parts = Swift.max(1, Swift.min(ws.parts, lanes / 16))
    let p = lif[layer]
    let surrogate = self.surrogate
    let (h, gv, scratch) = (UnsafePointer(ws.h[layer]), ws.v, ws.lifScratch)
    parallel(parts) { part in
      let k0 = part * lanes / parts
      let k1 = (part + 1) * lanes / parts
      FusedLIF.backward(
        p, surrogate: surrogate, steps: steps, lanes: lanes, laneBegin: k0, laneEnd: k1, h: h,
        gradSpikes: UnsafePointer(grad), gradCurrent: grad, gv: gv, workspace: scratch + 3 * k0)
    }
  }
}

/// Buffers of one `SpikingMLP` training step, kept while T, the batch size and the thread
/// count stay the same.
@usableFromInline
final class MLPWorkspace<T: TensorScalar> {
  @usableFromInline let steps: Int
  @usableFromInline let batch: Int
  @usableFromInline let sizes: [Int]
  @usableFromInline let parts: Int
  /// Input currents of the layer being run, [rows, out].
  @usableFromInline let current: UnsafeMutablePointer<T>
  /// Per LIF layer: pre-reset membrane h and spikes s, [rows, out].
  @usableFromInline let h: [UnsafeMutablePointer<T>]
  @usableFromInline let s: [UnsafeMutablePointer<T>]
  /// Membrane (forward) or its gradient (backward), one row of lanes.
  @usableFromInline let v: UnsafeMutablePointer<T>
  /// 3 × lanes scratch for the LIF backward pass.
  @usableFromInline let lifScratch: UnsafeMutablePointer<T>
  /// Two [rows, widest] gradient buffers, swapped layer by layer.
  @usableFromInline let gradA: UnsafeMutablePointer<T>
  @usableFromInline let gradB2: UnsafeMutablePointer<T>
  @usableFromInline let dlogits: UnsafeMutablePointer<T>
  /// Per layer input: events as row ranges into a list.
  @usableFromInline let list: [UnsafeMutablePointer<Int32>]
  @usableFromInline let begin: [UnsafeMutablePointer<Int32>]
  @usableFromInline let end: [UnsafeMutablePointer<Int32>]
  @usableFromInline var usesEvents: [Bool]
  /// Per layer: events read from the bit masks by `soma_sparse_scatter_f32` (else row lists).
  @usableFromInline var usesMasks: [Bool]
  /// Per layer input: 16-bit masks of each row's events per block of 16 columns,
  /// [blocks, rowsPadded] (rows padded to a multiple of 16 with zero masks).
  @usableFromInline let rowMask: [UnsafeMutablePointer<UInt16>]
  @usableFromInline let rowsPadded: Int
  /// The events by column as row bits, [in, rowsPadded / 16] (built in the forward pass for
  /// the mask scatter, in the backward pass for the row-list gather).
  @usableFromInline let colBits: UnsafeMutablePointer<UInt16>
  /// The same events as row lists per column: colList[colBegin[c] ..< colEnd[c]].
  @usableFromInline let colList: UnsafeMutablePointer<Int32>
  @usableFromInline let colBegin: UnsafeMutablePointer<Int32>
  @usableFromInline let colEnd: UnsafeMutablePointer<Int32>
  /// The next 64-row block for `soma_sparse_scatter_shared_f32`.
  @usableFromInline let blockCounter: UnsafeMutablePointer<Int>
  /// Per-thread partial results.
  @usableFromInline let partCounts: UnsafeMutablePointer<Int>
  @usableFromInline let partLoss: UnsafeMutablePointer<T>
  @usableFromInline let partFlags: UnsafeMutablePointer<Int32>
  /// Wᵀ of a narrow layer (at most `MLPKernels.narrowProductWidth` outputs), [out, in].
  @usableFromInline let narrowTransposed: UnsafeMutablePointer<T>
  /// Outputs handed to the caller (copied on write only if the caller still holds them).
  @usableFromInline var logits: Tensor<T>
  @usableFromInline var gradW: [Tensor<T>]
  @usableFromInline var gradB: [Tensor<T>]
  @usableFromInline var allocations: [UnsafeMutableRawPointer] = []

  @usableFromInline
  init(steps: Int, batch: Int, sizes: [Int], parts: Int) {
    (self.steps, self.batch, self.sizes, self.parts) = (steps, batch, sizes, parts)
    let rows = steps * batch
    let layers = sizes.count - 1
    let widest = sizes.max()!
    let widestIn = sizes.dropLast().max()!
    var owned: [UnsafeMutableRawPointer] = []
    func make<E>(_ n: Int, _ zero: E) -> UnsafeMutablePointer<E> {
      let raw = soma_buffer_alloc(Swift.max(n, 1) * MemoryLayout<E>.stride)!
      let p = raw.bindMemory(to: E.self, capacity: Swift.max(n, 1))
      p.initialize(repeating: zero, count: Swift.max(n, 1))
      owned.append(raw)
      return p
    }
    current = make(rows * widest, T.zero)
    h = (0..<layers).map { l in make(rows * sizes[l + 1], T.zero) }
    s = (0..<layers).map { l in make(rows * sizes[l + 1], T.zero) }
    v = make(batch * widest, T.zero)
    lifScratch = make(3 * batch * widest, T.zero)
    gradA = make(rows * widest, T.zero)
    gradB2 = make(rows * widest, T.zero)
    dlogits = make(batch * sizes[layers], T.zero)
    list = (0..<layers).map { l in make(rows * sizes[l] + 16 * parts, Int32(0)) }
    begin = (0..<layers).map { _ in make(rows, Int32(0)) }
    end = (0..<layers).map { _ in make(rows, Int32(0)) }
    usesEvents = Array(repeating: false, count: layers)
    usesMasks = Array(repeating: false, count: layers)
    let padded = (rows + 15) / 16 * 16
    rowsPadded = padded
    rowMask = (0..<layers).map { l in make((sizes[l] + 15) / 16 * padded, UInt16(0)) }
    colBits = make(widestIn * padded / 16, UInt16(0))
    colList = make(rows * widestIn + 16 * parts, Int32(0))
    colBegin = make(widestIn, Int32(0))
    colEnd = make(widestIn, Int32(0))
    partCounts = make(parts, 0)
    blockCounter = make(1, 0)
    partLoss = make(parts, T.zero)
    narrowTransposed = make(widestIn * MLPKernels.narrowProductWidth, T.zero)
    partFlags = make(parts, Int32(1))
    logits = Tensor.zeros([batch, sizes[layers]])
    gradW = (0..<layers).map { l in Tensor.zeros([sizes[l], sizes[l + 1]]).withLargePageStorage() }
    gradB = (0..<layers).map { l in Tensor.zeros([sizes[l + 1]]) }
    allocations = owned
  }

  @inlinable
  func fits(steps: Int, batch: Int, sizes: [Int], parts: Int) -> Bool {
    self.steps == steps && self.batch == batch && self.sizes == sizes && self.parts == parts
  }

  /// The logits buffer, made unique first (the caller may still hold the last step's).
  @inlinable
  var logitsPointer: UnsafeMutablePointer<T> {
    logits.withUnsafeMutableBufferPointer { $0.baseAddress! }
  }

  deinit {
    for p in allocations { soma_buffer_free(p) }
  }
}

