// Fused leaky integrate-and-fire kernels over all T steps: one forward pass that stores only
// the pre-reset membrane h, and one reverse-time backward pass with the surrogate derivative
// inlined (generic over the surrogate, so the call is specialised, never an existential).

/// Parameters of one LIF layer: h_t = β·v_{t−1} + I_t, s_t = H(h_t − θ), reset.
@usableFromInline struct LIFParameters: Sendable, Equatable {
  @usableFromInline var beta: Double
  @usableFromInline var threshold: Double
  @usableFromInline var reset: Reset
  @usableFromInline var detachReset: Bool

  /// Validated parameters: β in [0, 1], θ > 0.
  @usableFromInline init(
    beta: Double = 0.9, threshold: Double = 1, reset: Reset = .subtract,
    detachReset: Bool = false
  ) throws(SomaNNError) {
    try SomaNNError.checkUnitInterval(beta, "beta", layer: "LIF")
    try SomaNNError.checkPositive(threshold, "threshold", layer: "LIF")
    self.beta = beta
    self.threshold = threshold
    self.reset = reset
    self.detachReset = detachReset
  }

  /// Parameters already validated by a layer's initialiser.
  @inlinable
  init(unchecked beta: Double, threshold: Double, reset: Reset, detachReset: Bool) {
    (self.beta, self.threshold, self.reset, self.detachReset) = (beta, threshold, reset, detachReset)
  }
}

@usableFromInline enum FusedLIF {
  /// Forward over `steps` steps of `lanes` neurons (lanes = batch × features), lanes
  /// `[laneBegin, laneEnd)`. `current` is [steps, lanes]; writes the pre-reset membrane to
  /// `h` and spikes to `s` (both [steps, lanes]). State starts at 0.
  @inlinable
  static func forward<T: TensorScalar>(
    _ p: LIFParameters, steps: Int, lanes: Int, laneBegin: Int, laneEnd: Int,
    current: UnsafePointer<T>, h: UnsafeMutablePointer<T>, s: UnsafeMutablePointer<T>,
    v: UnsafeMutablePointer<T>
  ) {
    let (beta, th) = (T(p.beta), T(p.threshold))
    let n = laneEnd - laneBegin
    for k in laneBegin..<laneEnd { v[k] = 0 }
    for t in 0..<steps {
      let base = t * lanes + laneBegin
      lifForwardStep(
        current: current + base, v: v + laneBegin, hOut: h + base, spikes: s + base, n: n,
        beta: beta, threshold: th, reset: p.reset)
    }
  }

  /// Reverse-time backward: given dL/ds_t in `gradSpikes` [steps, lanes] and the stored `h`,
  /// writes dL/dI_t to `gradCurrent` [steps, lanes] (which may alias `gradSpikes`). `gv` is
  /// scratch of `lanes` elements. `workspace`, if given, is scratch of 3 × (laneEnd − laneBegin)
  /// elements (then the pass allocates nothing).
  @inlinable
  static func backward<T: TensorScalar, S: SurrogateGradient>(
    _ p: LIFParameters, surrogate: S, steps: Int, lanes: Int, laneBegin: Int, laneEnd: Int,
    h: UnsafePointer<T>, gradSpikes: UnsafePointer<T>, gradCurrent: UnsafeMutablePointer<T>,
    gv: UnsafeMutablePointer<T>, workspace: UnsafeMutablePointer<T>? = nil
  ) {
    let (beta, th) = (T(p.beta), T(p.threshold))
    let n = laneEnd - laneBegin
    for k in laneBegin..<laneEnd { gv[k] = 0 }
    let owned = workspace == nil
    let base: UnsafeMutablePointer<T> = workspace ?? scratch(3 * n)
    let x = base
    let d = base + n
    // The step kernel's pointers are restrict: when gradCurrent is gradSpikes, write each
    // step into `out` and copy it back.
    let inPlace = UnsafePointer(gradCurrent) == gradSpikes
    let out: UnsafeMutablePointer<T> = inPlace ? base + 2 * n : gradCurrent
    defer { if owned { base.deallocate() } }
    var t = steps - 1
    while t >= 0 {
      let base = t * lanes + laneBegin
      let dst = inPlace ? out : gradCurrent + base
      lifBackwardStep(
        gradSpikes: gradSpikes + base, h: h + base, gv: gv + laneBegin, gradCurrent: dst, x: x,
        d: d, n: n, beta: beta, threshold: th, reset: p.reset, detachReset: p.detachReset,
        surrogate: surrogate)
      if inPlace { (gradCurrent + base).update(from: out, count: n) }
      t -= 1
    }
  }
}
