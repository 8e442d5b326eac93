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
    // Sizes are the program's, like Linear's: a bad one traps; hyperparameters throw.
    precondition(size > 0, "RecurrentLIF: size must be positive, got \(size)")
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

  /// A recurrent stage in a compiled network: `RecurrentLIFKernel` with threads splitting the
  /// samples, specialised for the surrogate.
  @inlinable
  public var lowering: LayerLowering<Scalar>? {
    let (beta, th) = (Scalar(lif.beta), Scalar(lif.threshold))
    let (reset, detach, surrogate) = (lif.reset, lif.detachReset, lif.surrogate)
    let kernel = RecurrentStageKernel<Scalar>(
      name: "RecurrentLIF(\(recurrentWeight.shape[0]), β \(lif.beta), θ \(lif.threshold), "
        + "\(reset), \(surrogateLabel(surrogate)))",
      forward: { steps, batch, n, b0, b1, current, weight, h, spikes, scratch in
        RecurrentLIFKernel.forward(
          beta: beta, threshold: th, reset: reset, steps: steps, batch: batch, n: n, b0: b0,
          b1: b1, current: current, weight: weight, h: h, spikes: spikes, scratch: scratch)
      },
      backward: { steps, batch, n, b0, b1, h, weight, grad, scratch in
        RecurrentLIFKernel.backward(
          beta: beta, threshold: th, reset: reset, detachReset: detach, surrogate: surrogate,
          steps: steps, batch: batch, n: n, b0: b0, b1: b1, h: h, weight: weight, grad: grad,
          scratch: scratch)
      })
    return LayerLowering([.recurrent(weight: recurrentWeight, kernel: kernel)])
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

/// The recurrent LIF recurrence over the samples `b0 ..< b1` of `[steps, batch, n]` buffers
/// (samples are independent, so threads split them). One implementation for the tape's
/// `fusedRecurrentLIF` and a compiled network's recurrent stage.
public enum RecurrentLIFKernel {
  /// Forward from rest: h_t = β·v + I_t + s_{t−1}·Vᵀ, spikes into `spikes`, h into `h`.
  /// `scratch` holds 2 × batch × n elements.
  @inlinable
  public static func forward<T: TensorScalar>(
    beta: T, threshold: T, reset: Reset, steps: Int, batch: Int, n: Int, b0: Int, b1: Int,
    current: UnsafePointer<T>, weight: UnsafePointer<T>, h: UnsafeMutablePointer<T>?,
    spikes: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>
  ) {
    let rows = b1 - b0
    guard rows > 0 else { return }
    let lanes = rows * n
    let v = scratch + b0 * n
    let cur = scratch + batch * n + b0 * n
    for k in 0..<lanes { v[k] = 0 }
    for t in 0..<steps {
      let o = t * batch * n + b0 * n
      cur.update(from: current + o, count: lanes)
      if t > 0 {
        T._gemm(
          transA: false, transB: true, m: rows, n: n, k: n, alpha: 1, a: spikes + o - batch * n,
          lda: n, b: weight, ldb: n, beta: 1, c: cur, ldc: n)
      }
      lifForwardStep(
        current: cur, v: v, hOut: h.map { $0 + o }, spikes: spikes + o, n: lanes, beta: beta,
        threshold: threshold, reset: reset)
    }
  }

  /// Reverse pass: dL/ds in `grad` becomes dL/dI (= dL/dh) in place. `scratch` holds
  /// 4 × batch × n elements. dV is formed afterwards by `weightGradient`.
  @inlinable
  public static func backward<T: TensorScalar, S: SurrogateGradient>(
    beta: T, threshold: T, reset: Reset, detachReset: Bool, surrogate: S, steps: Int,
    batch: Int, n: Int, b0: Int, b1: Int, h: UnsafePointer<T>, weight: UnsafePointer<T>,
    grad: UnsafeMutablePointer<T>, scratch: UnsafeMutablePointer<T>
  ) {
    let rows = b1 - b0
    guard rows > 0 else { return }
    let lanes = rows * n
    let gv = scratch + b0 * n
    let gs = scratch + batch * n + b0 * n
    let x = scratch + 2 * batch * n + b0 * n
    let d = scratch + 3 * batch * n + b0 * n
    for k in 0..<lanes { gv[k] = 0 }
    var t = steps - 1
    while t >= 0 {
      let o = t * batch * n + b0 * n
      gs.update(from: grad + o, count: lanes)
      if t < steps - 1 {
        // dL/ds_t += dL/dh_{t+1} · V
        T._gemm(
          transA: false, transB: false, m: rows, n: n, k: n, alpha: 1, a: grad + o + batch * n,
          lda: n, b: weight, ldb: n, beta: 1, c: gs, ldc: n)
      }
      lifBackwardStep(
        gradSpikes: gs, h: h + o, gv: gv, gradCurrent: grad + o, x: x, d: d, n: lanes,
        beta: beta, threshold: threshold, reset: reset, detachReset: detachReset,
        surrogate: surrogate)
      t -= 1
    }
  }

  /// dV[i0 ..< i1, :] = Σ_{t≥1} dh_tᵀ · s_{t−1} (one GEMM over all steps), rows of dV split.
  @inlinable
  public static func weightGradient<T: TensorScalar>(
    steps: Int, batch: Int, n: Int, i0: Int, i1: Int, gradH: UnsafePointer<T>,
    spikes: UnsafePointer<T>, into dW: UnsafeMutablePointer<T>
  ) {
    guard i1 > i0 else { return }
    if steps < 2 {
      for k in (i0 * n)..<(i1 * n) { dW[k] = 0 }
      return
    }
    T._gemm(
      transA: true, transB: false, m: i1 - i0, n: n, k: (steps - 1) * batch, alpha: 1,
      a: gradH + batch * n + i0, lda: n, b: spikes, ldb: n, beta: 0, c: dW + i0 * n, ldc: n)
  }
}

/// The fused recurrent LIF: currents [T, batch, n] and V [n, n] → spikes [T, batch, n].
@inlinable
public func fusedRecurrentLIF<S: SurrogateGradient, T: TensorScalar>(
  _ currents: Variable<T>, recurrentWeight: Variable<T>, beta: T, threshold: T, reset: Reset,
  detachReset: Bool, surrogate: S
) -> Variable<T> {
  let (steps, _) = checkSequence(currents, layer: "RecurrentLIF")
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
  let work: UnsafeMutablePointer<T> = scratch(4 * batch * size)
  defer { work.deallocate() }
  let input = currents.value.contiguous()
  input.withUnsafeBufferPointer { pi in
    w.withUnsafeBufferPointer { pw in
      spikes.withUnsafeMutableBufferPointer { ps in
        h.withUnsafeMutableBufferPointer { ph in
          RecurrentLIFKernel.forward(
            beta: beta, threshold: threshold, reset: reset, steps: steps, batch: batch, n: size,
            b0: 0, b1: batch, current: pi.baseAddress!, weight: pw.baseAddress!,
            h: keep ? ph.baseAddress! : nil, spikes: ps.baseAddress!, scratch: work)
        }
      }
    }
  }
  if !keep { return Variable(spikes) }
  let out = spikes
  return .record(spikes, parents: [currents, recurrentWeight]) { g in
    var dI = g.copiedContiguous()
    var dW = Tensor<T>(repeating: 0, shape: [size, size])
    let work: UnsafeMutablePointer<T> = scratch(4 * batch * size)
    defer { work.deallocate() }
    h.withUnsafeBufferPointer { ph in
      w.withUnsafeBufferPointer { pw in
        dI.withUnsafeMutableBufferPointer { pd in
          RecurrentLIFKernel.backward(
            beta: beta, threshold: threshold, reset: reset, detachReset: detachReset,
            surrogate: surrogate, steps: steps, batch: batch, n: size, b0: 0, b1: batch,
            h: ph.baseAddress!, weight: pw.baseAddress!, grad: pd.baseAddress!, scratch: work)
          out.withUnsafeBufferPointer { ps in
            dW.withUnsafeMutableBufferPointer { pdw in
              RecurrentLIFKernel.weightGradient(
                steps: steps, batch: batch, n: size, i0: 0, i1: size,
                gradH: UnsafePointer(pd.baseAddress!), spikes: ps.baseAddress!,
                into: pdw.baseAddress!)
            }
          }
        }
      }
    }
    return [dI, dW]
  }
}
