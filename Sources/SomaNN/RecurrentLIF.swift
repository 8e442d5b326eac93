/// LIF neurons with a recurrent weight from the layer's own spikes of the previous step:
/// h_t = β·v_{t−1} + I_t + s_{t−1}·Vᵀ, then spike and reset as in `LIF`.
///
/// V is [n, n] (row i receives from neuron j through V[i, j]). The fused kernel runs one small
/// GEMM per step for the recurrent input (forward and backward) and one GEMM over all steps
/// for dV.
///
/// ```swift
/// let rec = try RecurrentLIF<S2NN, Float>(size: 128, beta: 0.9, surrogate: S2NN(), seed: 3)
/// let spikes = rec(currents)   // [T, batch, 128]
/// ```
public struct RecurrentLIF<S: SurrogateGradient, Scalar: TensorScalar>: Layer {
  public let lif: LIF<S>
  /// The recurrent weight [n, n].
  public let recurrentWeight: Variable<Scalar>

  /// A layer of `size` neurons; V is uniform in ±1/√size (PyTorch's default for a square
  /// Linear). Throws for bad beta or threshold.
  public init(
    size: Int, beta: Double = 0.9, threshold: Double = 1, reset: Reset = .subtract,
    detachReset: Bool = false, surrogate: S, seed: UInt64? = nil
  ) throws(SomaNNError) {
    var rng = SomaRandom(seed: seed ?? UInt64.random(in: 0...UInt64.max))
    let bound = Scalar(1 / Double(size).squareRoot())
    try self.init(
      recurrentWeight: Tensor.uniform([size, size], low: -bound, high: bound, using: &rng),
      beta: beta, threshold: threshold, reset: reset, detachReset: detachReset,
      surrogate: surrogate)
  }

  /// A layer with the given recurrent weight [n, n].
  public init(
    recurrentWeight: Tensor<Scalar>, beta: Double = 0.9, threshold: Double = 1,
    reset: Reset = .subtract, detachReset: Bool = false, surrogate: S
  ) throws(SomaNNError) {
    precondition(
      recurrentWeight.rank == 2 && recurrentWeight.shape[0] == recurrentWeight.shape[1],
      "RecurrentLIF: the recurrent weight must be square, got \(recurrentWeight.shape)")
    lif = try LIF(
      beta: beta, threshold: threshold, reset: reset, detachReset: detachReset,
      surrogate: surrogate)
    self.recurrentWeight = Variable(
      recurrentWeight.copiedContiguous(), requiresGrad: true, name: "recurrentWeight")
  }

  public var parameters: [(name: String, variable: Variable<Scalar>)] {
    [("recurrentWeight", recurrentWeight)]
  }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    fusedRecurrentLIF(
      input, recurrentWeight: recurrentWeight, beta: Scalar(lif.beta),
      threshold: Scalar(lif.threshold), reset: lif.reset, detachReset: lif.detachReset,
      surrogate: lif.surrogate)
  }

  /// One step; `state` = [v, previous spikes].
  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    let zero = Variable(Tensor<Scalar>.zeros(input.shape))
    let v = state.tensors.count == 2 ? state.tensors[0] : zero
    let prev = state.tensors.count == 2 ? state.tensors[1] : zero
    let recurrent = prev.matmul(recurrentWeight.transposed())
    var inner = LayerState([v])
    let s = lif.step(input + recurrent, state: &inner)
    state = LayerState([inner.tensors[0], s])
    return s
  }

  /// The composed-op path.
  @inlinable
  public func composed(_ input: Variable<Scalar>) -> Variable<Scalar> {
    composedSequence(input, layer: "RecurrentLIF") { x, state in step(x, state: &state) }
  }
}

/// The fused recurrent LIF: currents [T, batch, n] and V [n, n] → spikes [T, batch, n].
@inlinable
public func fusedRecurrentLIF<S: SurrogateGradient, T: TensorScalar>(
  _ currents: Variable<T>, recurrentWeight: Variable<T>, beta: T, threshold: T, reset: Reset,
  detachReset: Bool, surrogate: S
) -> Variable<T> {
  let (steps, n) = checkSequence(currents, layer: "RecurrentLIF")
  let size = recurrentWeight.shape[0]
  precondition(
    currents.rank == 3 && currents.shape[2] == size,
    "RecurrentLIF: input of shape \(currents.shape) does not match recurrent weight of shape "
      + "\(recurrentWeight.shape) (expected [T, batch, \(size)])")
  let batch = currents.shape[1]
  let shape = currents.shape
  let keep =
    GradientMode.isEnabled && (currents.requiresGrad || recurrentWeight.requiresGrad)
  var spikes = Tensor<T>(uninitializedShape: shape)
  var h = Tensor<T>(uninitializedShape: keep ? shape : [0])
  let w = recurrentWeight.value.contiguous()
  let v: UnsafeMutablePointer<T> = scratch(n)
  let cur: UnsafeMutablePointer<T> = scratch(n)
  defer {
    v.deallocate()
    cur.deallocate()
  }
  currents.value.withUnsafeBufferPointer { pi in
    w.withUnsafeBufferPointer { pw in
      spikes.withUnsafeMutableBufferPointer { ps in
        h.withUnsafeMutableBufferPointer { ph in
          for t in 0..<steps {
            let o = t * n
            cur.update(from: pi.baseAddress! + o, count: n)
            if t > 0 {
              T._gemm(
                transA: false, transB: true, m: batch, n: size, k: size, alpha: 1,
                a: ps.baseAddress! + o - n, lda: size, b: pw.baseAddress!, ldb: size, beta: 1,
                c: cur, ldc: size)
            }
            lifForwardStep(
              current: cur, v: v, hOut: keep ? ph.baseAddress! + o : nil,
              spikes: ps.baseAddress! + o, n: n, beta: beta, threshold: threshold, reset: reset)
          }
        }
      }
    }
  }
  if !keep { return Variable(spikes) }
  let out = spikes
  return .record(spikes, parents: [currents, recurrentWeight]) { g in
    var dI = Tensor<T>(uninitializedShape: shape)
    var dW = Tensor<T>(repeating: 0, shape: [size, size])
    let gv: UnsafeMutablePointer<T> = scratch(n)
    let gs: UnsafeMutablePointer<T> = scratch(n)
    let x: UnsafeMutablePointer<T> = scratch(n)
    let d: UnsafeMutablePointer<T> = scratch(n)
    defer {
      gv.deallocate()
      gs.deallocate()
      x.deallocate()
      d.deallocate()
    }
    g.withUnsafeBufferPointer { pg in
      h.withUnsafeBufferPointer { ph in
        w.withUnsafeBufferPointer { pw in
          dI.withUnsafeMutableBufferPointer { pd in
            for t in stride(from: steps - 1, through: 0, by: -1) {
              let o = t * n
              gs.update(from: pg.baseAddress! + o, count: n)
              if t < steps - 1 {
                // dL/ds_t += dL/dh_{t+1} · V
                T._gemm(
                  transA: false, transB: false, m: batch, n: size, k: size, alpha: 1,
                  a: pd.baseAddress! + o + n, lda: size, b: pw.baseAddress!, ldb: size, beta: 1,
                  c: gs, ldc: size)
              }
              lifBackwardStep(
                gradSpikes: gs, h: ph.baseAddress! + o, gv: gv, gradCurrent: pd.baseAddress! + o,
                x: x, d: d, n: n, beta: beta, threshold: threshold, reset: reset,
                detachReset: detachReset, surrogate: surrogate)
            }
            if steps > 1 {
              out.withUnsafeBufferPointer { ps in
                dW.withUnsafeMutableBufferPointer { pdw in
                  // dV = Σ_{t≥1} dh_tᵀ · s_{t−1}, one GEMM over all steps.
                  T._gemm(
                    transA: true, transB: false, m: size, n: size, k: (steps - 1) * batch,
                    alpha: 1, a: pd.baseAddress! + n, lda: size, b: ps.baseAddress!, ldb: size,
                    beta: 0, c: pdw.baseAddress!, ldc: size)
                }
              }
            }
          }
        }
      }
    }
    return [dI, dW]
  }
}
