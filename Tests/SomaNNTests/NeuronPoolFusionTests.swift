import Testing

@testable import SomaNN

/// One neuron → max-pool configuration for the fused pass.
struct NeuronPoolCase: Sendable, CustomStringConvertible {
  var shape: [Int]  // [T, B, C, H, W]
  var kernel: Size2D
  var stride: Size2D? = nil
  var padding: Size2D = 0
  var dilation: Size2D = 1
  var lif = false  // LIF(β 0.8, subtract, S2NN) instead of IF(zero reset, detached, Arctan)
  var tied = false  // the currents one slice repeated over time by an operation
  var detach: Bool? = nil  // the reset's detachment, if not the neuron's above
  var description: String {
    "\(lif ? "LIF" : "IF") \(shape) k \(kernel) s \(stride ?? kernel) p \(padding) d \(dilation)"
      + (tied ? " tied" : "") + (detach.map { " detach \($0)" } ?? "")
  }
}

@Suite("Neuron + max pool fusion")
struct NeuronPoolFusionTests {
  static let cases: [NeuronPoolCase] = [
    NeuronPoolCase(shape: [4, 3, 5, 8, 8], kernel: 2),
    NeuronPoolCase(shape: [4, 3, 5, 8, 8], kernel: 2, tied: true),
    NeuronPoolCase(shape: [3, 2, 4, 9, 7], kernel: 3, stride: 2, padding: 1, lif: true),
    NeuronPoolCase(shape: [5, 2, 3, 7, 10], kernel: [2, 3], stride: [1, 2], lif: true, tied: true),
    NeuronPoolCase(shape: [2, 1, 2, 11, 11], kernel: 2, dilation: 2),
    // Planes larger than a backward block (one plane a block) and blocks that split unevenly.
    NeuronPoolCase(shape: [3, 2, 3, 96, 96], kernel: 2, tied: true),
    NeuronPoolCase(shape: [4, 5, 7, 30, 30], kernel: 2),
    // 2 × 2 windows through the one-pass kernel (groups of 8 windows): odd sides (a row and a
    // column outside every window), rows of 3 to 70 windows (part-filled and several groups a
    // row), each reset with and without detachment, both surrogates.
    NeuronPoolCase(shape: [4, 3, 5, 9, 7], kernel: 2),
    NeuronPoolCase(shape: [3, 2, 4, 10, 6], kernel: 2, lif: true),
    NeuronPoolCase(shape: [4, 2, 3, 8, 22], kernel: 2, lif: true, tied: true, detach: true),
    NeuronPoolCase(shape: [3, 2, 2, 7, 9], kernel: 2, tied: true, detach: false),
    NeuronPoolCase(shape: [2, 2, 2, 6, 141], kernel: 2, detach: false),
    // One or two windows a row (a group's spare lanes reach several rows on), and planes split
    // over the cores (≥ 2¹⁸ currents) with an odd row and part-filled groups.
    NeuronPoolCase(shape: [3, 2, 3, 6, 2], kernel: 2, lif: true, detach: true),
    NeuronPoolCase(shape: [3, 2, 3, 7, 5], kernel: 2, tied: true),
    NeuronPoolCase(shape: [4, 4, 16, 35, 30], kernel: 2),
  ]

  func layers(_ c: NeuronPoolCase) throws -> (any NeuronLayer, MaxPool2d<Double>) {
    let neuron: any NeuronLayer =
      c.lif
      ? try LIF(
        beta: 0.8, threshold: 0.9, reset: .subtract, detachReset: c.detach ?? false,
        surrogate: S2NN())
      : try IF(
        threshold: 0.7, reset: .zero, detachReset: c.detach ?? true, surrogate: Arctan(alpha: 2))
    let pool = try MaxPool2d<Double>(
      kernelSize: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
    return (neuron, pool)
  }

  /// The currents (a leaf, or a node repeating one slice over time) and the leaf to read.
  func currents<T: TensorScalar>(_ c: NeuronPoolCase, _ type: T.Type, seed: UInt64)
    -> (Variable<T>, Variable<T>)
  {
    var rng = SomaRandom(seed: seed)
    if c.tied {
      let leaf = Variable(
        Tensor<T>.normal(Array(c.shape.dropFirst()), mean: 0.4, std: 0.6, using: &rng),
        requiresGrad: true)
      let steps = c.shape[0]
      let x = Variable<T>.record(repeated(leaf.value, steps: steps), parents: [leaf]) { g in
        [g.sum(axis: 0)]
      }
      return (x, leaf)
    }
    let leaf = Variable(
      Tensor<T>.normal(c.shape, mean: 0.4, std: 0.6, using: &rng), requiresGrad: true)
    return (leaf, leaf)
  }

  @Test("the fused pass equals the two layers one after the other", arguments: cases)
  func fusedEqualsSeparate(_ c: NeuronPoolCase) throws {
    try check(c, Double.self, tolerance: 1e-14)
    try check(c, Float.self, tolerance: 1e-6)
  }

  func check<T: TensorScalar>(_ c: NeuronPoolCase, _ type: T.Type, tolerance: Double) throws {
    let (neuron, _) = try layers(c)
    let pool = try MaxPool2d<T>(
      kernelSize: c.kernel, stride: c.stride, padding: c.padding, dilation: c.dilation)
    let (xf, leafF) = currents(c, T.self, seed: 5)
    let (xs, leafS) = currents(c, T.self, seed: 5)
    let fused = try #require(neuron.pooled(xf, by: pool), "\(c): the fused form ran")
    let separate = pool(neuron(xs))
    #expect(fused.shape == separate.shape)
    #expect(relativeDifference(fused.value, separate.value) == 0, "\(c)")
    #expect(separate.value.sum().scalar > 0, "some neurons spike")
    #expect(separate.value.min().scalar == 0, "some windows stay silent")
    var rng = SomaRandom(seed: 9)
    let seed = Tensor<T>.normal(fused.shape, using: &rng)
    fused.backward(seed: seed)
    separate.backward(seed: seed)
    let (gf, gs) = (try #require(leafF.grad), try #require(leafS.grad))
    #expect(relativeDifference(gf, gs) <= tolerance, "\(c)")
    #expect(gs.abs().max().scalar > 0)
  }

  @Test("Sequential runs a neuron followed by max pooling fused, and the gradients agree")
  func sequentialFuses() throws {
    var rng = SomaRandom(seed: 21)
    let net = try Sequential<Double> {
      try Conv2d<Double>(2, 4, kernelSize: 3, padding: 1, seed: 2)
      try IF(threshold: 0.5, reset: .zero, detachReset: true, surrogate: Arctan(alpha: 2))
      try MaxPool2d<Double>(kernelSize: 2)
      Flatten<Double>()
    }
    let x = Tensor<Double>.normal([3, 2, 2, 6, 6], mean: 0.5, using: &rng)
    let y = net(Variable(x))
    // The pooled output's one parent is the convolution's output: no spike-map node between.
    let pooled = try #require(y.parents.first)
    #expect(pooled.parents.count == 1 && pooled.parents[0].shape == [3, 2, 4, 6, 6])
    var h = Variable(x)
    for layer in net.layers { h = layer(h) }
    #expect(relativeDifference(y.value, h.value) == 0)
    let seed = Tensor<Double>.normal(y.shape, using: &rng)
    y.backward(seed: seed)
    let fusedGrads = net.parameterVariables.map { $0.grad! }
    net.zeroGrad()
    h.backward(seed: seed)
    for (a, p) in zip(fusedGrads, net.parameterVariables) {
      #expect(relativeDifference(a, p.grad!) < 1e-13, "\(p.name ?? "?")")
      #expect(a.abs().max().scalar > 0)
    }
  }

  @Test("input a fused form does not take runs the two layers separately")
  func otherRanksRunSeparately() throws {
    let neuron = try IF(threshold: 1, surrogate: Arctan(alpha: 2))
    let pool = try MaxPool2d<Float>(kernelSize: 2)
    var rng = SomaRandom(seed: 3)
    // [T·B, C, H, W]: the neuron's time axis is the pool's batch axis; no fused form.
    let x = Variable(Tensor<Float>.normal([4, 2, 6, 6], mean: 1, using: &rng))
    #expect(neuron.pooled(x, by: pool) == nil)
    let net = Sequential<Float> {
      neuron
      pool
    }
    #expect(relativeDifference(net(x).value, pool(neuron(x)).value) == 0)
  }

  @Test("the 2 × 2 max pool's vector rows equal a direct loop (ties to the first)", arguments: [8, 14, 16, 30, 34])
  func twoByTwoPoolMatchesLoop(width: Int) throws {
    var rng = SomaRandom(seed: UInt64(width))
    // Spikes (many ties) and a second plane of reals.
    let spikes = Tensor<Float>.uniform([1, 3, 6, width], using: &rng).map { $0 < 0.4 ? 1 : 0 }
    let x = Variable(spikes, requiresGrad: true)
    let pool = try MaxPool2d<Float>(kernelSize: 2)
    let y = pool(x)
    let seed = Tensor<Float>.uniform(y.shape, low: 1, high: 2, using: &rng)
    y.backward(seed: seed)
    let (xs, ys, gs, dx) = (spikes.scalars, y.value.scalars, seed.scalars, x.grad!.scalars)
    var expected = [Float](repeating: 0, count: xs.count)
    let (oh, ow) = (3, width / 2)
    for c in 0..<3 {
      for oy in 0..<oh {
        for ox in 0..<ow {
          var (best, at) = (-Float.infinity, -1)
          for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let i = c * 6 * width + (2 * oy + dy) * width + 2 * ox + dx
            if xs[i] > best { (best, at) = (xs[i], i) }
          }
          let o = c * oh * ow + oy * ow + ox
          #expect(ys[o] == best)
          expected[at] += gs[o]
        }
      }
    }
    #expect(dx == expected)
  }

  /// Arctan with the bulk derivative pass only (no `fusedKernel`): the unfused reference.
  struct BulkArctan: SurrogateGradient {
    let base: Arctan
    func derivative<T: TensorScalar>(_ x: T) -> T { base.derivative(x) }
    func derivative<T: TensorScalar>(
      _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
    ) {
      base.derivative(x, into: out, count: count)
    }
  }

  @Test(
    "the LIF backward with Arctan inlined equals the shift, bulk derivative and update passes",
    arguments: [(Reset.zero, true), (.zero, false), (.subtract, true), (.subtract, false)])
  func arctanInlinedEqualsBulk(reset: Reset, detach: Bool) throws {
    for alpha in [0.5, 2.0, 3.7] {
      try arctanCase(Float.self, alpha: alpha, reset: reset, detach: detach)
      try arctanCase(Double.self, alpha: alpha, reset: reset, detach: detach)
    }
  }

  func arctanCase<T: TensorScalar>(_ type: T.Type, alpha: Double, reset: Reset, detach: Bool)
    throws
  {
    let arctan = try Arctan(alpha: alpha)
    #expect(arctan.fusedKernel == .arctan(alpha: alpha))
    let fused = try LIF(
      beta: 0.9, threshold: 0.8, reset: reset, detachReset: detach, surrogate: arctan)
    let bulk = try LIF(
      beta: 0.9, threshold: 0.8, reset: reset, detachReset: detach,
      surrogate: BulkArctan(base: arctan))
    var rng = SomaRandom(seed: 17)
    let x = Tensor<T>.normal([6, 3, 37], mean: 0.5, std: 0.9, using: &rng)
    let seed = Tensor<T>.normal([6, 3, 37], using: &rng)
    let (a, b) = (Variable(x, requiresGrad: true), Variable(x, requiresGrad: true))
    fused(a).backward(seed: seed)
    bulk(b).backward(seed: seed)
    #expect(a.grad!.scalars == b.grad!.scalars, "α \(alpha) \(reset) detach \(detach) \(T.self)")
    #expect(a.grad!.abs().max().scalar > 0)
  }
}
