/// Leaky integrate-and-fire neurons, generic over the surrogate gradient.
///
/// For t = 1…T with v₀ = 0: h_t = β·v_{t−1} + I_t; s_t = H(h_t − θ) (1 where h_t − θ ≥ 0),
/// whose backward uses `surrogate.derivative(h_t − θ)`; then `.subtract`: v_t = h_t − θ·s_t, or
/// `.zero`: v_t = h_t·(1 − s_t). With `detachReset`, the s_t inside the reset is a constant for
/// the backward pass.
///
/// Multi-step mode runs the fused kernel (one pass forward, one in reverse); `composed(_:)`
/// builds the same network from elementwise autodiff ops (slow; a cross-check), and
/// `step(_:state:)` runs one step with the membrane as explicit state.
///
/// ```swift
/// let lif = try LIF(beta: 0.9, threshold: 1, surrogate: S2NN())
/// let spikes = lif(currents)        // currents [T, batch, n] → spikes [T, batch, n]
/// ```
public struct LIF<S: SurrogateGradient>: NeuronLayer {
  /// The membrane decay per step, in [0, 1].
  public let beta: Double
  /// The firing threshold, > 0.
  public let threshold: Double
  public let reset: Reset
  public let detachReset: Bool
  public let surrogate: S

  /// Throws `SomaNNError.invalidHyperparameter` for beta outside [0, 1] or threshold ≤ 0.
  public init(
    beta: Double = 0.9, threshold: Double = 1, reset: Reset = .subtract,
    detachReset: Bool = false, surrogate: S
  ) throws(SomaNNError) {
    try SomaNNError.checkUnitInterval(beta, "beta", layer: "LIF")
    try SomaNNError.checkPositive(threshold, "threshold", layer: "LIF")
    self.beta = beta
    self.threshold = threshold
    self.reset = reset
    self.detachReset = detachReset
    self.surrogate = surrogate
  }

  @inlinable
  public func callAsFunction<T: TensorScalar>(_ input: Variable<T>) -> Variable<T> {
    fusedLIF(
      input, beta: T(beta), threshold: T(threshold), reset: reset, detachReset: detachReset,
      surrogate: surrogate)
  }

  /// The neurons and `pool` as one pass over [T, B, C, H, W] (`fusedLIFMaxPool`).
  @inlinable
  public func pooled<T: TensorScalar>(_ input: Variable<T>, by pool: MaxPool2d<T>) -> Variable<T>?
  {
    fusedLIFMaxPool(
      input, beta: T(beta), threshold: T(threshold), reset: reset, detachReset: detachReset,
      surrogate: surrogate, pool: pool)
  }

  /// One step: `input` [batch, n] and `state` = [v] (empty: v = 0) → spikes; v is updated.
  @inlinable
  public func step<T: TensorScalar>(_ input: Variable<T>, state: inout LayerState<T>)
    -> Variable<T>
  {
    let v = state.tensors.first ?? Variable(Tensor<T>.zeros(input.shape))
    precondition(
      v.shape == input.shape,
      "LIF.step: input shape \(input.shape) differs from the state's shape \(v.shape)")
    let h = v * T(beta) + input
    let s = (h - T(threshold)).spike(surrogate: surrogate)
    let r = detachReset ? s.detached() : s
    let next: Variable<T>
    switch reset {
    case .subtract: next = h - r * T(threshold)
    case .zero: next = h * (1 - r)
    }
    state = LayerState([next])
    return s
  }

  /// The same forward and gradients as `callAsFunction`, built from per-step autodiff ops.
  @inlinable
  public func composed<T: TensorScalar>(_ input: Variable<T>) -> Variable<T> {
    composedSequence(input, layer: "LIF") { x, state in step(x, state: &state) }
  }
}

extension LIF where S == S2NN {
  /// LIF neurons with S2NN's default surrogate (alpha 4, beta 1): `try LIF<S2NN>(beta: 0.9)`.
  public init(
    beta: Double = 0.9, threshold: Double = 1, reset: Reset = .subtract, detachReset: Bool = false
  ) throws(SomaNNError) {
    try self.init(
      beta: beta, threshold: threshold, reset: reset, detachReset: detachReset,
      surrogate: S2NN())
  }
}

/// Integrate-and-fire neurons: `LIF` with β = 1 (no leak).
public struct IF<S: SurrogateGradient>: NeuronLayer {
  public let lif: LIF<S>

  /// Throws for threshold ≤ 0.
  public init(
    threshold: Double = 1, reset: Reset = .subtract, detachReset: Bool = false, surrogate: S
  ) throws(SomaNNError) {
    do {
      lif = try LIF(
        beta: 1, threshold: threshold, reset: reset, detachReset: detachReset,
        surrogate: surrogate)
    } catch .invalidHyperparameter(_, let name, let value, let allowed) {
      throw .invalidHyperparameter(layer: "IF", name: name, value: value, allowed: allowed)
    }
  }

  @inlinable
  public func callAsFunction<T: TensorScalar>(_ input: Variable<T>) -> Variable<T> { lif(input) }
  @inlinable
  public func pooled<T: TensorScalar>(_ input: Variable<T>, by pool: MaxPool2d<T>) -> Variable<T>?
  {
    lif.pooled(input, by: pool)
  }
  @inlinable
  public func step<T: TensorScalar>(_ input: Variable<T>, state: inout LayerState<T>)
    -> Variable<T>
  {
    lif.step(input, state: &state)
  }
}

/// Runs `step` over axis 0 of `input` and stacks the outputs (the composed-op path).
@inlinable
func composedSequence<T: TensorScalar>(
  _ input: Variable<T>, layer: String,
  _ step: (Variable<T>, inout LayerState<T>) -> Variable<T>
) -> Variable<T> {
  let (steps, _) = checkSequence(input, layer: layer)
  var state = LayerState<T>()
  var outs: [Variable<T>] = []
  for t in 0..<steps { outs.append(step(input[t], &state)) }
  return Variable.stack(outs)
}

/// Current-based LIF neurons (SpyTorch's): a synaptic current filters the input and the
/// membrane integrates the current; the spike is read from the membrane before the update.
///
/// With syn₀ = mem₀ = 0, for each step: s_t = H(mem − θ); then, both right sides using the old
/// values, syn ← α·syn + I_t and mem ← (β·mem + syn)·(1 − s_t) for `.zero` (or
/// β·mem + syn − θ·s_t for `.subtract`). The s_t in the reset is always treated as a constant
/// by the backward pass, as in SpyTorch.
///
/// ```swift
/// let hidden = try CUBALIF(alpha: exp(-1 / 5), beta: exp(-1 / 10), surrogate: InvSquareGrad())
/// ```
public struct CUBALIF<S: SurrogateGradient>: NeuronLayer {
  public let alpha: Double
  public let beta: Double
  public let threshold: Double
  public let reset: Reset
  public let surrogate: S

  /// Throws for alpha or beta outside [0, 1] or threshold ≤ 0.
  public init(
    alpha: Double, beta: Double, threshold: Double = 1, reset: Reset = .zero, surrogate: S
  ) throws(SomaNNError) {
    try SomaNNError.checkUnitInterval(alpha, "alpha", layer: "CUBALIF")
    try SomaNNError.checkUnitInterval(beta, "beta", layer: "CUBALIF")
    try SomaNNError.checkPositive(threshold, "threshold", layer: "CUBALIF")
    self.alpha = alpha
    self.beta = beta
    self.threshold = threshold
    self.reset = reset
    self.surrogate = surrogate
  }

  @inlinable
  public func callAsFunction<T: TensorScalar>(_ input: Variable<T>) -> Variable<T> {
    fusedCUBALIF(
      input, alpha: T(alpha), beta: T(beta), threshold: T(threshold), reset: reset,
      surrogate: surrogate)
  }

  /// One step; `state` = [syn, mem].
  @inlinable
  public func step<T: TensorScalar>(_ input: Variable<T>, state: inout LayerState<T>)
    -> Variable<T>
  {
    let zero = Variable(Tensor<T>.zeros(input.shape))
    let syn = state.tensors.count == 2 ? state.tensors[0] : zero
    let mem = state.tensors.count == 2 ? state.tensors[1] : zero
    let s = (mem - T(threshold)).spike(surrogate: surrogate)
    let r = s.detached()
    let nextSyn = syn * T(alpha) + input
    let nextMem: Variable<T>
    switch reset {
    case .zero: nextMem = (mem * T(beta) + syn) * (1 - r)
    case .subtract: nextMem = mem * T(beta) + syn - r * T(threshold)
    }
    state = LayerState([nextSyn, nextMem])
    return s
  }

  /// The composed-op path (a cross-check of the fused kernel).
  @inlinable
  public func composed<T: TensorScalar>(_ input: Variable<T>) -> Variable<T> {
    composedSequence(input, layer: "CUBALIF") { x, state in step(x, state: &state) }
  }
}

/// A non-spiking leaky integrator, the usual readout: v_t = β·v_{t−1} + I_t, output v_t for
/// every step. With `alpha`, a synaptic filter comes first (SpyTorch's readout):
/// (flt, out) ← (α·flt + I_t, β·out + flt_old), output `out`.
///
/// ```swift
/// let readout = try LeakyIntegrator(beta: 0.9)
/// let membrane = readout(currents)   // [T, batch, classes]
/// ```
public struct LeakyIntegrator: NeuronLayer {
  public let beta: Double
  public let alpha: Double?

  /// Throws for beta or alpha outside [0, 1].
  public init(beta: Double = 0.9, alpha: Double? = nil) throws(SomaNNError) {
    try SomaNNError.checkUnitInterval(beta, "beta", layer: "LeakyIntegrator")
    if let alpha { try SomaNNError.checkUnitInterval(alpha, "alpha", layer: "LeakyIntegrator") }
    self.beta = beta
    self.alpha = alpha
  }

  @inlinable
  public func callAsFunction<T: TensorScalar>(_ input: Variable<T>) -> Variable<T> {
    fusedLeakyIntegrator(input, beta: T(beta), alpha: alpha.map { T($0) })
  }

  /// One step; `state` = [v] or, with alpha, [flt, out].
  @inlinable
  public func step<T: TensorScalar>(_ input: Variable<T>, state: inout LayerState<T>)
    -> Variable<T>
  {
    let zero = Variable(Tensor<T>.zeros(input.shape))
    if let alpha {
      let flt = state.tensors.count == 2 ? state.tensors[0] : zero
      let out = state.tensors.count == 2 ? state.tensors[1] : zero
      let nextOut = out * T(beta) + flt
      state = LayerState([flt * T(alpha) + input, nextOut])
      return nextOut
    }
    let v = (state.tensors.first ?? zero) * T(beta) + input
    state = LayerState([v])
    return v
  }

  /// The composed-op path.
  @inlinable
  public func composed<T: TensorScalar>(_ input: Variable<T>) -> Variable<T> {
    composedSequence(input, layer: "LeakyIntegrator") { x, state in step(x, state: &state) }
  }
}
