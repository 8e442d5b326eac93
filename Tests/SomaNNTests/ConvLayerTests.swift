import Testing

@testable import SomaNN

/// One convolution configuration for the finite-difference checks.
struct ConvConfig: Sendable, CustomStringConvertible {
  var inShape: [Int]
  var out: Int
  var kernel: Size2D
  var stride: Size2D = 1
  var padding: Size2D = 0
  var dilation: Size2D = 1
  var groups = 1
  var bias = true
  var description: String {
    "in \(inShape) out \(out) k \(kernel) s \(stride) p \(padding) d \(dilation) g \(groups)"
  }
}

@Suite("Image layers")
struct ConvLayerTests {
  @Test(
    "Conv2d gradients match finite differences",
    arguments: [
      ConvConfig(inShape: [2, 2, 5, 5], out: 3, kernel: 3, padding: 1),
      ConvConfig(
        inShape: [1, 2, 6, 7], out: 2, kernel: [2, 3], stride: 2, padding: [1, 0],
        dilation: [1, 2], bias: false),
      ConvConfig(inShape: [2, 4, 4, 4], out: 4, kernel: 3, stride: [1, 2], padding: 1, groups: 2),
      ConvConfig(inShape: [2, 1, 2, 4, 4], out: 2, kernel: 3, padding: 1),
      // 256 or more output pixels: products image by image, in place (`directProducts`).
      ConvConfig(inShape: [2, 4, 17, 16], out: 4, kernel: 3, padding: 1, groups: 2),
      ConvConfig(inShape: [3, 1, 18, 18], out: 3, kernel: 3, bias: false),
    ])
  func convFiniteDifferences(_ c: ConvConfig) throws {
    var rng = SomaRandom(seed: 3)
    let conv = try Conv2d<Double>(
      c.inShape[c.inShape.count - 3], c.out, kernelSize: c.kernel, stride: c.stride,
      padding: c.padding, dilation: c.dilation, groups: c.groups, bias: c.bias, seed: 4)
    var inputs = [Tensor<Double>.normal(c.inShape, using: &rng), conv.weight.value]
    if let b = conv.bias { inputs.append(b.value) }
    let r = GradientCheck.run(inputs) { v in
      conv2d(
        v[0], weight: v[1], bias: v.count > 2 ? v[2] : nil, stride: c.stride, padding: c.padding,
        dilation: c.dilation, groups: c.groups)
    }
    #expect(r.maxError < 1e-7, "worst at \(r.worst)")
  }

  @Test("pooling and BatchNorm gradients match finite differences")
  func poolAndNormFiniteDifferences() throws {
    var rng = SomaRandom(seed: 5)
    let x = Tensor<Double>.normal([2, 2, 3, 5, 5], using: &rng)
    let maxPool = try MaxPool2d<Double>(kernelSize: 3, stride: 2, padding: 1)
    #expect(GradientCheck.run([x]) { maxPool($0[0]) }.maxError < 1e-7)
    let avgPool = try AvgPool2d<Double>(kernelSize: 2, stride: 1, padding: 1)
    #expect(GradientCheck.run([x]) { avgPool($0[0]) }.maxError < 1e-7)
    for mode in [LayerMode.training, .evaluation] {
      let bn = try BatchNorm2d<Double>(3)
      bn.mode = mode
      bn.state.runningVar = Tensor([0.5, 1.5, 2])
      bn.weight!.value = Tensor([0.7, 1.3, -0.4])
      bn.bias!.value = Tensor([0.1, -0.2, 0.3])
      let r = GradientCheck.run([x]) { bn($0[0]) }
      #expect(r.maxError < 1e-6, "\(mode) worst at \(r.worst)")
    }
  }

  @Test("event-driven conv equals dense conv within Float rounding (forward and weight grad)")
  func eventsMatchDense() throws {
    var rng = SomaRandom(seed: 8)
    for (groups, stride, padding) in [(1, Size2D(1), Size2D(1)), (2, Size2D(2, 1), Size2D(0, 2))] {
      let dense = try Conv2d<Float>(
        8, 16, kernelSize: 3, stride: stride, padding: padding, groups: groups, seed: 9)
      var events = try Conv2d<Float>(
        weight: dense.weight.value, bias: dense.bias!.value, stride: stride, padding: padding,
        groups: groups)
      var denseOnly = dense
      denseOnly.eventPolicy = .never
      events.eventPolicy = .always
      let spikes = Tensor<Float>.bernoulli([3, 2, 8, 10, 10], p: 0.05, using: &rng)
      let xa = Variable(spikes, requiresGrad: true)
      let xb = Variable(spikes, requiresGrad: true)
      let ya = denseOnly(xa)
      let yb = events(xb)
      #expect(relativeDifference(yb.value, ya.value) < 1e-5)
      let seed = Tensor<Float>.normal(ya.shape, using: &rng)
      ya.backward(seed: seed)
      yb.backward(seed: seed)
      #expect(relativeDifference(events.weight.grad!, denseOnly.weight.grad!) < 1e-5)
      #expect(relativeDifference(events.bias!.grad!, denseOnly.bias!.grad!) < 1e-5)
      #expect(relativeDifference(xb.grad!, xa.grad!) < 1e-5)
      #expect(denseOnly.weight.grad!.abs().max().scalar > 0)
    }
  }

  /// The plan of `conv` (4 → 8 channels, 3 × 3, padding 1) on side × side images.
  func eventPlan(_ conv: Conv2d<Float>, side: Int) -> ConvPlan<Float> {
    ConvPlan<Float>(
      geometry: ConvGeometry(
        channels: 4, height: side, width: side, kernel: (3, 3), stride: (1, 1), padding: (1, 1),
        dilation: (1, 1)), outChannels: 8, groups: 1, weight: conv.weight.value)
  }

  @Test("the automatic policy runs events on sparse spikes only, with the same result")
  func automaticEvents() throws {
    var rng = SomaRandom(seed: 10)
    let conv = try Conv2d<Float>(4, 8, kernelSize: 3, padding: 1, seed: 2)
    let plan = eventPlan(conv, side: 6)
    let sparse = Tensor<Float>.bernoulli([2, 4, 6, 6], p: 0.03, using: &rng)
    let dense = Tensor<Float>.bernoulli([2, 4, 6, 6], p: 0.5, using: &rng)
    let analog = sparse * 0.5
    let auto = Conv2d<Float>.automaticEvents
    #expect(plan.eventUse(sparse, images: 2, policy: auto) == (true, true))
    #expect(plan.eventUse(dense, images: 2, policy: auto) == (false, false))
    #expect(plan.eventUse(analog, images: 2, policy: .always) == (false, false))
    #expect(plan.eventUse(sparse, images: 2, policy: .never) == (false, false))
    #expect(plan.eventUse(dense, images: 2, policy: .always) == (true, true))
    var never = conv
    never.eventPolicy = .never
    for x in [sparse, dense, analog] {
      #expect(relativeDifference(conv(Variable(x)).value, never(Variable(x)).value) < 1e-5)
    }
  }

  @Test("the density count stops early on a dense map and still decides as a full count")
  func densityCountStopsEarly() throws {
    var rng = SomaRandom(seed: 12)
    let conv = try Conv2d<Float>(4, 8, kernelSize: 3, padding: 1, seed: 2)
    let plan = eventPlan(conv, side: 40)
    // 20 images × 4 × 1600 = 128 000 values: two and a bit chunks of the count.
    let dense = Tensor<Float>.bernoulli([20, 4, 40, 40], p: 0.5, using: &rng)
    let sparse = Tensor<Float>.bernoulli([20, 4, 40, 40], p: 0.02, using: &rng)
    // Sparse in the first chunk, dense after it: the whole map decides.
    var mixed = sparse
    mixed[10..<20] = dense[10..<20]
    let auto = Conv2d<Float>.automaticEvents
    #expect(plan.spikeDensity(dense, images: 20, stopAbove: 0.1) == nil)
    let full = try #require(plan.spikeDensity(dense, images: 20))
    #expect(Swift.abs(full - 0.5) < 0.01)
    #expect(plan.eventUse(dense, images: 20, policy: auto) == (false, false))
    #expect(plan.eventUse(sparse, images: 20, policy: auto) == (true, true))
    #expect(plan.eventUse(mixed, images: 20, policy: auto) == (false, false))
    #expect(plan.eventUse(dense, images: 20, policy: .always) == (true, true))
    let d = try #require(plan.spikeDensity(sparse, images: 20, stopAbove: 0.1))
    #expect(Swift.abs(d - 0.02) < 0.005)
  }

  @Test("a direct-coded input is convolved once; values and gradients equal the full pass")
  func repeatedInput() throws {
    var rng = SomaRandom(seed: 12)
    let image = Tensor<Double>.normal([3, 2, 6, 6], using: &rng)
    let steps = 4
    let expanded = image.unsqueezed(axis: 0).expanded(to: [steps, 3, 2, 6, 6])
    #expect(repeatsOverTime(expanded))
    #expect(repeatsOverTime(expanded.copiedContiguous()))
    var changed = expanded.copiedContiguous()
    changed[scalarAt: 3, 2, 1, 5, 5] += 1
    #expect(!repeatsOverTime(changed))
    let conv = try Conv2d<Double>(2, 5, kernelSize: 3, padding: 1, seed: 1)
    let bn = try BatchNorm2d<Double>(5)
    let reference = try Conv2d<Double>(
      weight: conv.weight.value, bias: conv.bias!.value, padding: 1)
    let refBN = try BatchNorm2d<Double>(5)
    let y = bn(conv(Variable(expanded)))
    // The folded [T·B, …] input runs every image.
    let yRef = refBN(
      reference(Variable(expanded.copiedContiguous().reshaped([steps * 3, 2, 6, 6]))))
    #expect(y.value.strides[0] == 0, "the output repeats as a view")
    #expect(relativeDifference(y.value.reshaped([steps * 3, 5, 6, 6]), yRef.value) < 1e-12)
    let seed = Tensor<Double>.normal(y.shape, using: &rng)
    y.backward(seed: seed)
    yRef.backward(seed: seed.reshaped(yRef.shape))
    #expect(relativeDifference(conv.weight.grad!, reference.weight.grad!) < 1e-12)
    #expect(relativeDifference(conv.bias!.grad!, reference.bias!.grad!) < 1e-12)
    #expect(relativeDifference(bn.weight!.grad!, refBN.weight!.grad!) < 1e-12)
    #expect(relativeDifference(bn.state.runningVar, refBN.state.runningVar) < 1e-12)
  }

  @Test(
    "Winograd F(2×2), F(4×4) and F(5×5) equal im2col: forward, input and weight gradients, paddings 0–2",
    arguments: [2, 4, 5])
  func winogradMatchesIm2col(tile: Int) throws {
    var rng = SomaRandom(seed: 21)
    let cases = [(9, 7, 1, true), (8, 8, 0, false), (5, 6, 2, true), (14, 14, 1, false)]
    for (h, w, pad, bias) in cases {
      for (C, K) in [(16, 16), (17, 24)] {
        let conv = try Conv2d<Double>(C, K, kernelSize: 3, padding: Size2D(pad), bias: bias, seed: 3)
        let geo = ConvGeometry(
          channels: C, height: h, width: w, kernel: (3, 3), stride: (1, 1), padding: (pad, pad),
          dilation: (1, 1))
        let plan = ConvPlan<Double>(
          geometry: geo, outChannels: K, groups: 1, weight: conv.weight.value.contiguous())
        #expect(plan.winograd)
        let x = Tensor<Double>.normal([3, C, h, w], using: &rng)
        let b = conv.bias?.value
        let wino = plan.forwardWinograd(x, images: 3, bias: b, tile: tile)
        let im2col = plan.forwardDense(x, images: 3, bias: b)
        #expect(relativeDifference(wino, im2col) < 1e-12, "\(h)×\(w) p\(pad) C\(C) K\(K)")
        let g = Tensor<Double>.normal(im2col.shape, using: &rng)
        let dx = plan.inputGradient(g, images: 3, tile: tile)
        let dxRef = plan.backwardDense(grad: g, input: nil, images: 3, needInput: true).dX!
        #expect(dx.shape == x.shape)
        #expect(relativeDifference(dx, dxRef) < 1e-12, "\(h)×\(w) p\(pad) C\(C) K\(K)")
        let dw = plan.weightGradientWinograd(grad: g, input: x, images: 3, tile: tile)
        let dwRef = plan.backwardDense(grad: g, input: x, images: 3, needInput: false).dW!
        #expect(relativeDifference(dw, dwRef) < 1e-12, "\(h)×\(w) p\(pad) C\(C) K\(K)")
        // Float: within Float rounding of the Double result.
        let pf = ConvPlan<Float>(
          geometry: geo, outChannels: K, groups: 1, weight: asFloat(conv.weight.value))
        let yf = pf.forwardWinograd(asFloat(x), images: 3, bias: b.map(asFloat), tile: tile)
        #expect(relativeToLargest(yf, im2col) < (tile == 2 ? 2e-6 : tile == 4 ? 2e-5 : 4e-5))
      }
    }
    // Strides, dilations, groups, few channels and wide padding keep im2col.
    let geo = ConvGeometry(
      channels: 16, height: 8, width: 8, kernel: (3, 3), stride: (2, 2), padding: (1, 1),
      dilation: (1, 1))
    let strided = ConvPlan<Float>(
      geometry: geo, outChannels: 16, groups: 1, weight: Tensor.zeros([16, 16, 3, 3]))
    #expect(!strided.winograd)
    var few = geo
    (few.channels, few.stride) = (4, (1, 1))
    let narrow = ConvPlan<Float>(
      geometry: few, outChannels: 16, groups: 1, weight: Tensor.zeros([16, 4, 3, 3]))
    #expect(!narrow.winograd)
  }

  @Test(
    "Winograd F(4×4) and F(5×5) in Float and Double over several blocks, both cores and ragged channels",
    arguments: [4, 5])
  func winogradLargeTileBlocks(tile: Int) throws {
    var rng = SomaRandom(seed: 23)
    // 20 × 20 with 64 + 64 channels makes blocks of 9 (F(4×4)) or 10 (F(5×5)) images: 21
    // images split over the parts run more than one block, the last one short. 11 × 13 has ragged tiles on both axes;
    // 19 and 27 channels fill part of the last group of 8.
    let cases = [(20, 20, 1, 64, 64, 21), (11, 13, 0, 19, 27, 5), (11, 13, 2, 27, 19, 4)]
    for (h, w, pad, C, K, n) in cases {
      let conv = try Conv2d<Double>(C, K, kernelSize: 3, padding: Size2D(pad), bias: true, seed: 7)
      let geo = ConvGeometry(
        channels: C, height: h, width: w, kernel: (3, 3), stride: (1, 1), padding: (pad, pad),
        dilation: (1, 1))
      let plan = ConvPlan<Double>(
        geometry: geo, outChannels: K, groups: 1, weight: conv.weight.value.contiguous())
      #expect(plan.winograd && plan.winogradTile == 5)
      let label = "F(\(tile)) \(h)×\(w) p\(pad) C\(C) K\(K) n\(n)"
      // Spikes in, as a convolution after an IF layer sees them.
      let x = Tensor<Double>.uniform([n, C, h, w], using: &rng).map { $0 < 0.3 ? 1 : 0 }
      let b = conv.bias!.value
      let y = plan.forwardWinograd(x, images: n, bias: b, tile: tile)
      let yRef = plan.forwardDense(x, images: n, bias: b)
      #expect(relativeToLargest(y, yRef) < 1e-12, "\(label)")
      let g = Tensor<Double>.normal(yRef.shape, using: &rng)
      let dx = plan.inputGradient(g, images: n, tile: tile)
      let dxRef = plan.backwardDense(grad: g, input: nil, images: n, needInput: true).dX!
      #expect(relativeToLargest(dx, dxRef) < 1e-12, "\(label)")
      let dw = plan.weightGradientWinograd(grad: g, input: x, images: n, tile: tile)
      let dwRef = plan.backwardDense(grad: g, input: x, images: n, needInput: false).dW!
      #expect(relativeToLargest(dw, dwRef) < 1e-12, "\(label)")

      let pf = ConvPlan<Float>(
        geometry: geo, outChannels: K, groups: 1, weight: asFloat(conv.weight.value))
      let yf = pf.forwardWinograd(asFloat(x), images: n, bias: asFloat(b), tile: tile)
      #expect(relativeToLargest(yf, yRef) < (tile == 4 ? 2e-5 : 4e-5), "\(label)")
      let dxf = pf.inputGradient(asFloat(g), images: n, tile: tile)
      #expect(relativeToLargest(dxf, dxRef) < (tile == 4 ? 2e-5 : 4e-5), "\(label)")
      let dwf = pf.weightGradientWinograd(grad: asFloat(g), input: asFloat(x), images: n, tile: tile)
      #expect(relativeToLargest(dwf, dwRef) < (tile == 4 ? 2e-5 : 4e-5), "\(label)")
    }
  }

  @Test("Winograd tile choice: the tile whose tiles need the fewest multiplications")
  func winogradTileChoice() {
    func tile(_ h: Int, _ w: Int, padding p: Int) -> Int {
      let geo = ConvGeometry(
        channels: 16, height: h, width: w, kernel: (3, 3), stride: (1, 1), padding: (p, p),
        dilation: (1, 1))
      return ConvPlan<Float>(
        geometry: geo, outChannels: 16, groups: 1, weight: Tensor.zeros([16, 16, 3, 3])
      ).winogradTile
    }
    // Products per channel pair: F(2×2) ⌈h/2⌉⌈w/2⌉·16, F(4×4) ⌈h/4⌉⌈w/4⌉·36, F(5×5)
    // ⌈h/5⌉⌈w/5⌉·49 for an output h × w; the smaller tile on a tie.
    #expect(tile(14, 14, padding: 1) == 5)  // 441 against 576 and 784
    #expect(tile(10, 10, padding: 1) == 5)  // 196 against 324 and 400
    #expect(tile(5, 5, padding: 1) == 5)  // 49 against 144 and 144
    #expect(tile(16, 5, padding: 1) == 5)  // 4 × 1 tiles × 49 = 196 against 288 and 384
    #expect(tile(28, 28, padding: 1) == 4)  // 1764 for both, against 3136
    #expect(tile(7, 7, padding: 1) == 4)  // 144 against 196 and 256
    #expect(tile(5, 5, padding: 0) == 4)  // 36 against 49 and 64
    #expect(tile(4, 4, padding: 1) == 4)
    #expect(tile(4, 4, padding: 0) == 2)
    #expect(tile(8, 8, padding: 0) == 2)  // 144 for F(2×2) and F(4×4), 196
  }

  @Test("the tile GEMM equals a direct sum: row blocks of 1–6, ragged columns, both layouts")
  func tileGemm() {
    func check<T: TensorScalar & BinaryFloatingPoint>(_: T.Type, tolerance: Double) {
      var rng = SomaRandom(seed: 31)
      for (m, n, k) in [(1, 1, 1), (6, 16, 7), (13, 27, 19), (81, 40, 128), (5, 8, 3), (7, 33, 2)] {
        for (rowMajor, accumulate) in [(true, false), (false, true)] {
          // a as rows [m, k] (row stride k + 3) or as columns [k, m] (depth stride m + 2).
          let (rs, ds) = rowMajor ? (k + 3, 1) : (1, m + 2)
          let aLen = rowMajor ? m * rs : k * ds
          let a = (0..<aLen).map { _ in T(Double.random(in: -1...1, using: &rng)) }
          let ldb = n + 5
          let b = (0..<(k * ldb)).map { _ in T(Double.random(in: -1...1, using: &rng)) }
          let ldc = n + 1
          var c = (0..<(m * ldc)).map { _ in T(Double.random(in: -1...1, using: &rng)) }
          let before = c
          a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
              c.withUnsafeMutableBufferPointer { pc in
                _tileGemm(
                  m: m, n: n, k: k, a: pa.baseAddress!, rowStride: rs, depthStride: ds,
                  b: pb.baseAddress!, ldb: ldb, c: pc.baseAddress!, ldc: ldc,
                  accumulate: accumulate)
              }
            }
          }
          var worst = 0.0
          for i in 0..<m {
            for j in 0..<ldc {
              var want = Double(before[i * ldc + j])
              if j < n {
                var sum = 0.0
                for p in 0..<k { sum += Double(a[i * rs + p * ds]) * Double(b[p * ldb + j]) }
                want = accumulate ? want + sum : sum
              }
              worst = Swift.max(worst, abs(Double(c[i * ldc + j]) - want))
            }
          }
          #expect(worst < tolerance * Double(k + 1), "\(m)×\(n)×\(k) \(rowMajor) \(accumulate)")
        }
      }
    }
    check(Float.self, tolerance: 1e-6)
    check(Double.self, tolerance: 1e-14)
  }

  @Test("Winograd tile buffers keep their matrices an odd number of cache lines apart")
  func winogradStride() {
    let geo = ConvGeometry(
      channels: 16, height: 8, width: 8, kernel: (3, 3), stride: (1, 1), padding: (1, 1),
      dilation: (1, 1))
    let pf = ConvPlan<Float>(
      geometry: geo, outChannels: 16, groups: 1, weight: Tensor.zeros([16, 16, 3, 3]))
    let pd = ConvPlan<Double>(
      geometry: geo, outChannels: 16, groups: 1, weight: Tensor.zeros([16, 16, 3, 3]))
    for count in [1, 15, 16, 17, 128 * 128, 128 * 112, 24 * 35] {
      let f = pf.winogradStride(count)
      let d = pd.winogradStride(count)
      #expect(f >= count && f < count + 32 && f % 16 == 0 && (f / 16) % 2 == 1, "\(count)")
      #expect(d >= count && d < count + 16 && d % 8 == 0 && (d / 8) % 2 == 1, "\(count)")
    }
  }

  @Test("a direct-coded network's tied gradients equal the per-step pass (conv, BN, IF, pool)")
  func tiedGradientsMatchPerStep() throws {
    var rng = SomaRandom(seed: 31)
    let (steps, batch) = (4, 3)
    let image = Tensor<Double>.uniform([batch, 1, 8, 8], using: &rng)
    func network() throws -> Sequential<Double> {
      try Sequential<Double> {
        try Conv2d<Double>(1, 16, kernelSize: 3, padding: 1, bias: false, seed: 4)
        try BatchNorm2d<Double>(16)
        try IF(threshold: 0.5, reset: .zero, detachReset: true, surrogate: Arctan(alpha: 2))
        try MaxPool2d<Double>(kernelSize: 2)
        try Conv2d<Double>(16, 16, kernelSize: 3, padding: 1, bias: true, seed: 5)
        try BatchNorm2d<Double>(16)
        try IF(threshold: 1, reset: .subtract, surrogate: Arctan(alpha: 2))
      }
    }
    let tied = try network()
    let perStep = try network()
    let direct = image.unsqueezed(axis: 0).expanded(to: [steps, batch, 1, 8, 8])
    let y = tied(Variable(direct))
    // The reference folds time into the batch for the first convolution, so nothing after it
    // sees a stride-0 input.
    let conv1 = perStep.layers[0]
    let folded = conv1(Variable(direct.copiedContiguous().reshaped([steps * batch, 1, 8, 8])))
    var h = folded.reshaped([steps, batch, 16, 8, 8])
    for layer in perStep.layers.dropFirst() { h = layer(h) }
    #expect(relativeDifference(y.value, h.value) < 1e-12)
    #expect(y.value.sum().scalar > 0, "some neurons spike")
    let seed = Tensor<Double>.normal(y.shape, using: &rng)
    y.backward(seed: seed)
    h.backward(seed: seed)
    for (a, b) in zip(tied.parameterVariables, perStep.parameterVariables) {
      #expect(relativeDifference(a.grad!, b.grad!) < 1e-10, "\(a.name ?? "?")")
      #expect(b.grad!.abs().max().scalar > 0)
    }
  }

  @Test("BatchNorm: batch statistics in training, running ones in evaluation")
  func batchNormModes() throws {
    var rng = SomaRandom(seed: 14)
    let bn = try BatchNorm2d<Float>(3, momentum: 0.5)
    let x = Tensor<Float>.normal([2, 4, 3, 5, 5], mean: 2, std: 3, using: &rng)
    // Automatic: training while recording gradients; the output is normalised per channel.
    let y = bn(Variable(x)).value
    let perChannel = y.permuted([2, 0, 1, 3, 4]).reshaped([3, -1])
    for c in 0..<3 {
      #expect(Swift.abs(perChannel[c].mean().scalar) < 1e-5)
      #expect(Swift.abs(perChannel[c].square().mean().scalar - 1) < 1e-3)
    }
    #expect(bn.state.batchesTracked == 1)
    let mean1 = bn.state.runningMean
    #expect(mean1.abs().max().scalar > 0.5, "moved halfway toward the batch mean (≈ 2)")
    // Inside noGrad (automatic → evaluation): running statistics, nothing updated.
    let e = noGrad { bn(Variable(x)).value }
    #expect(bn.state.batchesTracked == 1)
    #expect(bn.state.runningMean == mean1)
    let rm = mean1.scalars
    let rv = bn.state.runningVar.scalars
    let x0 = x[scalarAt: 0, 0, 1, 2, 3]
    let want = (x0 - rm[1]) / (rv[1] + 1e-5).squareRoot()
    #expect(Swift.abs(e[scalarAt: 0, 0, 1, 2, 3] - want) < 1e-5)
    // An explicit mode wins over the tape; Sequential.setMode reaches nested layers.
    let net = Sequential<Float> { Sequential<Float> { bn } }
    net.setMode(.evaluation)
    #expect(bn.mode == .evaluation)
    #expect(relativeDifference(bn(Variable(x)).value, e) < 1e-6)
    net.setMode(.training)
    _ = noGrad { bn(Variable(x)) }
    #expect(bn.state.batchesTracked == 2)
  }

  @Test("Dropout: one mask for all steps, scaled by 1/(1 − p), off in evaluation")
  func dropout() throws {
    let drop = try Dropout<Float>(p: 0.25, seed: 7)
    drop.mode = .training
    let x = Variable(Tensor<Float>.ones([5, 64, 50]), requiresGrad: true)
    let y = drop(x)
    let v = y.value
    for t in 1..<5 { #expect(v[t] == v[0]) }
    let kept = v[0].scalars.filter { $0 != 0 }
    #expect(kept.allSatisfy { Swift.abs($0 - 4 / 3) < 1e-6 })
    let dropped = 1 - Double(kept.count) / Double(64 * 50)
    #expect(Swift.abs(dropped - 0.25) < 0.03)
    y.sum().backward()
    #expect(x.grad! == v, "the gradient is the mask")
    // Single-step: the first step's mask is kept in the state.
    var state = LayerState<Float>()
    let a = drop.step(Variable(Tensor<Float>.ones([64, 50])), state: &state).value
    let b = drop.step(Variable(Tensor<Float>.ones([64, 50])), state: &state).value
    #expect(a == b)
    drop.mode = .evaluation
    #expect(drop(x).value == x.value)
    drop.mode = .automatic
    #expect(noGrad { drop(x).value } == x.value)
  }

  @Test("Flatten: [T, B, …] → [T, B, n]; one step [B, …] → [B, n]")
  func flatten() {
    let f = Flatten<Float>()
    let x = Variable(Tensor<Float>.arange(0, 120).reshaped([2, 3, 4, 5]), requiresGrad: true)
    let y = f(x)
    #expect(y.shape == [2, 3, 20])
    var state = LayerState<Float>()
    #expect(f.step(x, state: &state).shape == [2, 60])
    y.backward(seed: Tensor.ones([2, 3, 20]))
    #expect(x.grad!.shape == [2, 3, 4, 5])
  }

  @Test("hyperparameters a layer cannot use throw, naming the value")
  func hyperparametersThrow() {
    #expect(throws: SomaNNError.self) { try Conv2d<Float>(3, 4, kernelSize: 3, groups: 2) }
    #expect(throws: SomaNNError.self) { try Conv2d<Float>(2, 4, kernelSize: 3, stride: 0) }
    #expect(throws: SomaNNError.self) { try Conv2d<Float>(2, 4, kernelSize: 3, padding: -1) }
    #expect(throws: SomaNNError.self) { try Conv2d<Float>(2, 4, kernelSize: [3, 0]) }
    #expect(throws: SomaNNError.self) { try MaxPool2d<Float>(kernelSize: 2, padding: 2) }
    #expect(throws: SomaNNError.self) { try AvgPool2d<Float>(kernelSize: 0) }
    #expect(throws: SomaNNError.self) { try BatchNorm2d<Float>(4, momentum: 1.5) }
    #expect(throws: SomaNNError.self) { try BatchNorm1d<Float>(0) }
    #expect(throws: SomaNNError.self) { try Dropout<Float>(p: 1) }
    do {
      _ = try Conv2d<Float>(6, 4, kernelSize: 3, groups: 4)
    } catch {
      #expect("\(error)".contains("groups") && "\(error)".contains("4"))
    }
  }

  @Test func convChannelMismatchTraps() async {
    await #expect(processExitsWith: .failure) {
      let conv = try! Conv2d<Float>(3, 4, kernelSize: 3, seed: 1)
      _ = conv(Variable(Tensor<Float>.zeros([2, 2, 5, 5])))
    }
  }

  @Test func convInputSmallerThanKernelTraps() async {
    await #expect(processExitsWith: .failure) {
      let conv = try! Conv2d<Float>(1, 4, kernelSize: 5, seed: 1)
      _ = conv(Variable(Tensor<Float>.zeros([2, 1, 3, 3])))
    }
  }

  @Test func batchNormChannelMismatchTraps() async {
    await #expect(processExitsWith: .failure) {
      let bn = try! BatchNorm2d<Float>(3)
      _ = bn(Variable(Tensor<Float>.zeros([2, 4, 5, 5])))
    }
  }

  /// The 2 × 2, stride-2 max pool's gradient against a direct loop: each window's gradient to
  /// its first largest input in row-major order, 0 to the others and to the inputs past the
  /// last window of an odd height or width. Spike maps make ties common; a tie sent to the
  /// later input fails it.
  @Test(arguments: [(6, 6), (7, 5), (5, 8), (3, 3)])
  func maxPoolGradientMatchesDirectLoop(_ size: (Int, Int)) throws {
    let (h, w) = size
    var rng = SomaRandom(seed: UInt64(h * 10 + w))
    for spikes in [false, true] {
      let x =
        spikes
        ? Tensor<Float>.bernoulli([2, 3, h, w], p: 0.4, using: &rng)
        : Tensor<Float>.uniform([2, 3, h, w], low: -1, high: 1, using: &rng)
      let g = Tensor<Float>.uniform([2, 3, h / 2, w / 2], low: 0.5, high: 1.5, using: &rng)
      let xv = Variable(x, requiresGrad: true)
      let y = try MaxPool2d<Float>(kernelSize: 2)(xv)
      y.backward(seed: g)
      let xs = x.scalars, gs = g.scalars
      var want = [Float](repeating: 0, count: xs.count)
      for plane in 0..<6 {
        for oy in 0..<(h / 2) {
          for ox in 0..<(w / 2) {
            var best = plane * h * w + 2 * oy * w + 2 * ox
            for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
              let i = plane * h * w + (2 * oy + dy) * w + 2 * ox + dx
              if xs[i] > xs[best] { best = i }
            }
            want[best] = gs[(plane * (h / 2) + oy) * (w / 2) + ox]
          }
        }
      }
      #expect(xv.grad?.scalars == want, "\(h)×\(w), spikes \(spikes)")
    }
  }
}

/// max |a − b| / max |b|: the error against the reference's largest entry, whatever its size.
func relativeToLargest<T: TensorScalar, U: TensorScalar>(_ a: Tensor<T>, _ b: Tensor<U>) -> Double {
  #expect(a.shape == b.shape)
  let x = a.contiguous().scalars.map { Double($0) }
  let y = b.contiguous().scalars.map { Double($0) }
  let scale = y.map { Swift.abs($0) }.max() ?? 0
  return (zip(x, y).map { Swift.abs($0 - $1) }.max() ?? 0) / Swift.max(scale, .leastNormalMagnitude)
}

/// A Double tensor rounded to Float.
func asFloat(_ t: Tensor<Double>) -> Tensor<Float> {
  Tensor(t.contiguous().scalars.map { Float($0) }, shape: t.shape)
}
