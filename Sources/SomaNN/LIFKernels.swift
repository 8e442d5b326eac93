// Fused multi-step kernels for the LIF family: one forward pass over all T steps of the
// BLAS-computed currents and one backward pass in reverse time, each recorded as a single
// autodiff node. Only the pre-reset membrane h (or, for CUBA-LIF, the membrane before each step)
// is stored for the backward pass; spikes are recomputed from it. The surrogate derivative is
// called through the specialised generic `S`, in bulk per time step (a conformer may vectorise
// it).

/// How a spiking neuron resets after a spike.
public enum Reset: String, Sendable, Codable {
  /// v ← h − θ·s (keeps the overshoot).
  case subtract
  /// v ← h·(1 − s).
  case zero
}

@inlinable
func checkSequence<T>(_ x: Variable<T>, layer: String) -> (steps: Int, n: Int) {
  precondition(
    x.rank >= 2,
    "\(layer): multi-step input must be [T, batch, features…], got shape \(x.shape)")
  precondition(
    x.shape[0] >= 1,
    "\(layer): T must be ≥ 1, got T = \(x.shape[0]) (input shape \(x.shape))")
  return (x.shape[0], x.value.count / x.shape[0])
}

/// A zero-filled scratch buffer.
@inlinable
func scratch<T: TensorScalar>(_ n: Int) -> UnsafeMutablePointer<T> {
  let p = UnsafeMutablePointer<T>.allocate(capacity: Swift.max(n, 1))
  _zero(p, Swift.max(n, 1))
  return p
}

/// One LIF forward step over `n` neurons: h = β·v + I, s = H(h − θ), reset into `v`; stores h
/// when `hOut` is given.
@inlinable @inline(__always)
func lifForwardStep<T: TensorScalar>(
  current: UnsafePointer<T>, v: UnsafeMutablePointer<T>, hOut: UnsafeMutablePointer<T>?,
  spikes: UnsafeMutablePointer<T>, n: Int, beta: T, threshold: T, reset: Reset
) {
  if _cLIFForward(
    current: current, v: v, hOut: hOut, spikes: spikes, n: n, beta: beta, threshold: threshold,
    zeroReset: reset == .zero)
  {
    return
  }
  switch (reset, hOut) {
  case (.subtract, let hp?):
    for i in 0..<n {
      let h = beta * v[i] + current[i]
      let s: T = h - threshold >= 0 ? 1 : 0
      hp[i] = h
      spikes[i] = s
      v[i] = h - threshold * s
    }
  case (.subtract, nil):
    for i in 0..<n {
      let h = beta * v[i] + current[i]
      let s: T = h - threshold >= 0 ? 1 : 0
      spikes[i] = s
      v[i] = h - threshold * s
    }
  case (.zero, let hp?):
    for i in 0..<n {
      let h = beta * v[i] + current[i]
      let s: T = h - threshold >= 0 ? 1 : 0
      hp[i] = h
      spikes[i] = s
      v[i] = h * (1 - s)
    }
  case (.zero, nil):
    for i in 0..<n {
      let h = beta * v[i] + current[i]
      let s: T = h - threshold >= 0 ? 1 : 0
      spikes[i] = s
      v[i] = h * (1 - s)
    }
  }
}

/// One LIF backward step: from dL/ds_t (`gradSpikes`), the stored h_t and dL/dv_t (`gv`,
/// updated in place to dL/dv_{t−1}), writes dL/dI_t = dL/dh_t into `gradCurrent`.
@inlinable @inline(__always)
func lifBackwardStep<S: SurrogateGradient, T: TensorScalar>(
  gradSpikes: UnsafePointer<T>, h: UnsafePointer<T>, gv: UnsafeMutablePointer<T>,
  gradCurrent: UnsafeMutablePointer<T>, x: UnsafeMutablePointer<T>,
  d: UnsafeMutablePointer<T>, n: Int, beta: T, threshold: T, reset: Reset, detachReset: Bool,
  surrogate: S
) {
  // S2NN (the default surrogate): one fused pass instead of shift, derivative and update.
  if case .s2nn(let a, let b)? = surrogate.fusedKernel,
    _cLIFBackwardS2NN(
      gradSpikes: gradSpikes, h: h, gv: gv, gradCurrent: gradCurrent, n: n, beta: beta,
      threshold: threshold, zeroReset: reset == .zero, detachReset: detachReset, alpha: a,
      surrogateBeta: b)
  {
    return
  }
  if case .arctan(let alpha)? = surrogate.fusedKernel,
    _cLIFBackwardArctan(
      gradSpikes: gradSpikes, h: h, gv: gv, gradCurrent: gradCurrent, n: n, beta: beta,
      threshold: threshold, zeroReset: reset == .zero, detachReset: detachReset,
      k: T(Double.pi / 2 * alpha), c: T(alpha / 2))
  {
    return
  }
  if !_cShift(h, into: x, count: n, minus: threshold) {
    for i in 0..<n { x[i] = h[i] - threshold }
  }
  surrogate.derivative(UnsafePointer(x), into: d, count: n)
  if _cLIFBackward(
    gradSpikes: gradSpikes, h: h, d: UnsafePointer(d), gv: gv, gradCurrent: gradCurrent, n: n,
    beta: beta, threshold: threshold, zeroReset: reset == .zero, detachReset: detachReset)
  {
    return
  }
  switch (reset, detachReset) {
  case (.subtract, false):
    for i in 0..<n {
      let sg = d[i]
      let dh = gradSpikes[i] * sg + gv[i] * (1 - threshold * sg)
      gradCurrent[i] = dh
      gv[i] = beta * dh
    }
  case (.subtract, true):
    for i in 0..<n {
      let dh = gradSpikes[i] * d[i] + gv[i]
      gradCurrent[i] = dh
      gv[i] = beta * dh
    }
  case (.zero, false):
    for i in 0..<n {
      let sg = d[i]
      let keep: T = x[i] >= 0 ? 0 : 1
      let dh = gradSpikes[i] * sg + gv[i] * (keep - h[i] * sg)
      gradCurrent[i] = dh
      gv[i] = beta * dh
    }
  case (.zero, true):
    for i in 0..<n {
      let keep: T = x[i] >= 0 ? 0 : 1
      let dh = gradSpikes[i] * d[i] + gv[i] * keep
      gradCurrent[i] = dh
      gv[i] = beta * dh
    }
  }
}

/// One block of `lanes` neurons' reverse pass in the fused LIF kernels: recomputes the
/// membranes over the T steps from `current` (step t at `current + t · stepStride`), calling
/// `spikesMade(t, spikes)` after each step, then runs back through time with the spike
/// gradient `gradSpikes(t)`, writing step t's current gradient at `gradCurrent + t · stepLanes`,
/// or with `tied` their sum / T at `gradCurrent`. `work` holds (steps + 6) · lanes scalars.
@inlinable
func lifReverseBlock<S: SurrogateGradient, T: TensorScalar>(
  current: UnsafePointer<T>, stepStride: Int, lanes m: Int, steps: Int,
  work: UnsafeMutablePointer<T>, gradCurrent dp: UnsafeMutablePointer<T>, stepLanes: Int,
  tied: Bool, beta: T, threshold: T, reset: Reset, detachReset: Bool, surrogate: S,
  spikesMade: (Int, UnsafeMutablePointer<T>) -> Void, gradSpikes: (Int) -> UnsafePointer<T>
) {
  let (v, s, gv, xs, d, gcur) = (work, work + m, work + 2 * m, work + 3 * m, work + 4 * m, work + 5 * m)
  let h = work + 6 * m
  _zero(v, m)
  for t in 0..<steps {
    lifForwardStep(
      current: current + t * stepStride, v: v, hOut: h + t * m, spikes: s, n: m, beta: beta,
      threshold: threshold, reset: reset)
    spikesMade(t, s)
  }
  _zero(gv, m)
  if tied { _zero(dp, m) }
  for t in stride(from: steps - 1, through: 0, by: -1) {
    lifBackwardStep(
      gradSpikes: gradSpikes(t), h: h + t * m, gv: gv,
      gradCurrent: tied ? gcur : dp + t * stepLanes, x: xs, d: d, n: m, beta: beta,
      threshold: threshold, reset: reset, detachReset: detachReset, surrogate: surrogate)
    if tied { _vecAdd(dp, gcur, m) }
  }
  // A tied gradient is the sum / T at every step: scaled here, while in cache.
  if tied { _vecScale(dp, 1 / T(steps), m) }
}

/// The fused LIF over a whole sequence of currents [T, …] → spikes [T, …], one autodiff node.
///
/// Nothing but the input is kept for the backward pass: it recomputes each block of lanes'
/// membrane over the T steps (in cache) before running back through them, which costs less
/// than writing and re-reading a [T, …] membrane. A direct-coded input (the same currents at
/// every step, a stride-0 view over time) is read from its one slice; when an operation produced
/// it, the gradient it gets back is tied over time too (see `tiedGradient`).
@inlinable
public func fusedLIF<S: SurrogateGradient, T: TensorScalar>(
  _ currents: Variable<T>, beta: T, threshold: T, reset: Reset, detachReset: Bool,
  surrogate: S
) -> Variable<T> {
  let (steps, n) = checkSequence(currents, layer: "LIF")
  let shape = currents.shape
  let keep = GradientMode.isEnabled && currents.requiresGrad
  var spikes = Tensor<T>(uninitializedShape: shape)
  let x = currents.value
  let repeats = steps > 1 && x.strides[0] == 0
  let source = repeats ? x[0].contiguous() : x.contiguous()
  let stepStride = repeats ? 0 : n
  // Lanes are independent: large layers (a convolution's spike maps) split them over the cores.
  let parts = spatialParts(n * steps >= 1 << 18 ? n / 4096 : 1, usesBLAS: false)
  source.withUnsafeBufferPointer { pi in
    spikes.withUnsafeMutableBufferPointer { ps in
      let (ip, sp) = (pi.baseAddress!, ps.baseAddress!)
      parallel(parts) { part in
        let (a, b) = partRange(part, of: parts, count: n)
        if a == b { return }
        let v: UnsafeMutablePointer<T> = scratch(b - a)
        defer { v.deallocate() }
        for t in 0..<steps {
          lifForwardStep(
            current: ip + t * stepStride + a, v: v, hOut: nil, spikes: sp + t * n + a,
            n: b - a, beta: beta, threshold: threshold, reset: reset)
        }
      }
    }
  }
  if !keep { return Variable(spikes) }
  let tied = repeats && isTiedOverTime(currents)
  // Lanes per recomputed block: T membranes of them stay near L2.
  let block = Swift.max(64, Swift.min(8192, (1 << 16) / steps) / 64 * 64)
  return .record(spikes, parents: [currents]) { g in
    var dI = Tensor<T>(uninitializedShape: tied ? Array(shape.dropFirst()) : shape)
    let gc = g.contiguous()
    source.withUnsafeBufferPointer { pi in
      gc.withUnsafeBufferPointer { pg in
        dI.withUnsafeMutableBufferPointer { pd in
          let (ip, gp, dp) = (pi.baseAddress!, pg.baseAddress!, pd.baseAddress!)
          parallel(parts) { part in
            let (a, b) = partRange(part, of: parts, count: n)
            if a == b { return }
            let L = Swift.min(block, b - a)
            let work: UnsafeMutablePointer<T> = scratch((steps + 6) * L)
            defer { work.deallocate() }
            var a0 = a
            while a0 < b {
              let m = Swift.min(L, b - a0)
              lifReverseBlock(
                current: ip + a0, stepStride: stepStride, lanes: m, steps: steps, work: work,
                gradCurrent: dp + a0, stepLanes: n, tied: tied, beta: beta, threshold: threshold,
                reset: reset, detachReset: detachReset, surrogate: surrogate,
                spikesMade: { _, _ in }, gradSpikes: { t in gp + t * n + a0 })
              a0 += m
            }
          }
        }
      }
    }
    return [tied ? repeated(dI, steps: steps) : dI]
  }
}

/// The fused current-based LIF (SpyTorch's neuron) over currents [T, …] → spikes [T, …]:
/// s_t = H(mem_t − θ); syn ← α·syn + I_t; mem ← (β·mem + syn_old)·(1 − s_t) (`.zero`) or
/// β·mem + syn_old − θ·s_t (`.subtract`), the reset's s_t treated as a constant. Stores the
/// membrane before each step. Runs `CUBAKernel` over all lanes.
@inlinable
public func fusedCUBALIF<S: SurrogateGradient, T: TensorScalar>(
  _ currents: Variable<T>, alpha: T, beta: T, threshold: T, reset: Reset, surrogate: S
) -> Variable<T> {
  let (steps, n) = checkSequence(currents, layer: "CUBALIF")
  let shape = currents.shape
  let keep = GradientMode.isEnabled && currents.requiresGrad
  var spikes = Tensor<T>(uninitializedShape: shape)
  var mem = Tensor<T>(uninitializedShape: keep ? shape : [0])
  let state: UnsafeMutablePointer<T> = scratch(2 * n)
  defer { state.deallocate() }
  let input = currents.value.contiguous()
  input.withUnsafeBufferPointer { pi in
    spikes.withUnsafeMutableBufferPointer { ps in
      mem.withUnsafeMutableBufferPointer { pm in
        CUBAKernel.forward(
          alpha: alpha, beta: beta, threshold: threshold, reset: reset, steps: steps, lanes: n,
          k0: 0, k1: n, current: pi.baseAddress!, memOut: keep ? pm.baseAddress! : nil,
          spikes: ps.baseAddress!, syn: state, mem: state + n)
      }
    }
  }
  if !keep { return Variable(spikes) }
  return .record(spikes, parents: [currents]) { g in
    var dI = Tensor<T>(uninitializedShape: shape)
    let work: UnsafeMutablePointer<T> = scratch(5 * n)
    defer { work.deallocate() }
    let gc = g.contiguous()
    gc.withUnsafeBufferPointer { pg in
      mem.withUnsafeBufferPointer { pm in
        dI.withUnsafeMutableBufferPointer { pd in
          CUBAKernel.backward(
            alpha: alpha, beta: beta, threshold: threshold, reset: reset, surrogate: surrogate,
            steps: steps, lanes: n, k0: 0, k1: n, mem: pm.baseAddress!,
            gradSpikes: pg.baseAddress!, gradCurrent: pd.baseAddress!, scratch: work)
        }
      }
    }
    return [dI]
  }
}

/// The fused non-spiking leaky integrator over currents [T, …] → membrane [T, …].
/// Without `alpha`: v_t = β·v_{t−1} + I_t. With `alpha` (SpyTorch's readout, two states):
/// (flt, out) ← (α·flt + I_t, β·out + flt_old), recording `out`. Linear, so nothing is stored.
/// Runs `LeakyKernel` over all lanes.
@inlinable
public func fusedLeakyIntegrator<T: TensorScalar>(_ currents: Variable<T>, beta: T, alpha: T?)
  -> Variable<T>
{
  let (steps, n) = checkSequence(currents, layer: "LeakyIntegrator")
  let shape = currents.shape
  var out = Tensor<T>(uninitializedShape: shape)
  let state: UnsafeMutablePointer<T> = scratch(2 * n)
  defer { state.deallocate() }
  let input = currents.value.contiguous()
  input.withUnsafeBufferPointer { pi in
    out.withUnsafeMutableBufferPointer { po in
      LeakyKernel.forward(
        beta: beta, alpha: alpha, steps: steps, lanes: n, k0: 0, k1: n, current: pi.baseAddress!,
        out: po.baseAddress!, state: state)
    }
  }
  return .record(out, parents: [currents]) { g in
    var dI = Tensor<T>(uninitializedShape: shape)
    let work: UnsafeMutablePointer<T> = scratch(2 * n)
    defer { work.deallocate() }
    let gc = g.contiguous()
    gc.withUnsafeBufferPointer { pg in
      dI.withUnsafeMutableBufferPointer { pd in
        LeakyKernel.backward(
          beta: beta, alpha: alpha, steps: steps, lanes: n, k0: 0, k1: n, grad: pg.baseAddress!,
          gradCurrent: pd.baseAddress!, state: work)
      }
    }
    return [dI]
  }
}
