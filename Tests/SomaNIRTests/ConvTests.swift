import Foundation
import Soma
import SomaNIR
import Testing

/// Convolutional networks: Conv2d, AvgPool2d, Flatten and folded batch norms to NIR and back.
@Suite struct ConvTests {
  /// Unflatten [2, 8, 8] → Conv2d (groups 2, bias) → LIF → AvgPool2d → Conv2d (stride,
  /// padding, dilation different per axis, no bias) → IF → Flatten → Linear → LIF.
  static func convNet() throws -> Sequential<Float> {
    try Sequential<Float> {
      try Unflatten<Float>([2, 8, 8])
      try Conv2d<Float>(2, 4, kernelSize: 3, padding: 1, groups: 2, seed: 1)
      try LIF(beta: 0.85, threshold: 0.3, reset: .zero, surrogate: S2NN())
      try AvgPool2d<Float>(kernelSize: 2)
      try Conv2d<Float>(
        4, 6, kernelSize: Size2D(3, 2), stride: Size2D(2, 1), padding: Size2D(1, 0),
        dilation: Size2D(1, 2), bias: false, seed: 2)
      try IF(threshold: 0.2, reset: .subtract, surrogate: S2NN())
      Flatten<Float>()
      Linear(6 * 2 * 2, 5, seed: 3)
      try LIF(beta: 0.9, threshold: 0.4, reset: .zero, surrogate: S2NN())
    }
  }

  /// Flat spikes [T, batch, 128] for `convNet`.
  static func input(seed: UInt64 = 5) -> Tensor<Float> { randomSpikes(30, 3, 128, seed: seed) }

  func roundTrip(_ net: Sequential<Float>, options: NIROptions = NIROptions()) throws
    -> Sequential<Float>
  {
    try NIRGraph.decode(try net.nirExport(options: options).graph.encoded())
      .sequential(options: options)
  }

  func expectIdentical(_ a: Sequential<Float>, _ b: Sequential<Float>, input: Tensor<Float>) {
    #expect(layerTypes(a) == layerTypes(b))
    #expect(Checkpoint.layerSpecs(a) == Checkpoint.layerSpecs(b))
    #expect(a.parameters.map(\.name) == b.parameters.map(\.name))
    for (p, q) in zip(a.parameters, b.parameters) {
      #expect(p.variable.value.shape == q.variable.value.shape, "\(p.name)")
      #expect(p.variable.value.scalars == q.variable.value.scalars, "\(p.name)")
    }
    let (ya, yb) = (run(a, input), run(b, input))
    #expect(ya.shape == yb.shape)
    #expect(ya.scalars == yb.scalars)
  }

  @Test func convNetworkComesBackIdentical() throws {
    let net = try Self.convNet()
    let back = try roundTrip(net)
    expectIdentical(net, back, input: Self.input())
    // Both spiking image layers and the output spiked, so equal outputs say something.
    let x = Variable(Self.input())
    let maps = noGrad { net.layers[2](net.layers[1](net.layers[0](x))) }
    #expect(maps.value.scalars.contains(1))
    #expect(run(net, Self.input()).scalars.contains(1))
    let second = (back.layers[4].base as? Conv2d<Float>)
    #expect(second?.bias == nil)
    #expect(second?.dilation == Size2D(1, 2) && second?.stride == Size2D(2, 1))
  }

  @Test func layoutFollowsNIR() throws {
    let graph = try NIRGraph.decode(try Self.convNet().nirExport().graph.encoded())
    let types = graph.nodes.mapValues(\.typeName)
    // The first Unflatten is the Input's shape, not a node.
    #expect(
      types == [
        "input": "Input", "1": "Conv2d", "2": "LIF", "3": "AvgPool2d", "4": "Conv2d", "5": "IF",
        "6": "Flatten", "7": "Affine", "8": "LIF", "output": "Output",
      ])
    #expect(graph.edges.first == NIREdge("input", "1"))
    guard case .input(let shape)? = graph.nodes["input"]?.kind,
      case .conv2d(let c1)? = graph.nodes["1"]?.kind,
      case .lif(let tau, _, _, _, _)? = graph.nodes["2"]?.kind,
      case .avgPool2d(let pool)? = graph.nodes["3"]?.kind,
      case .conv2d(let c2)? = graph.nodes["4"]?.kind,
      case .flatten(let start, let end, let flatShape)? = graph.nodes["6"]?.kind
    else {
      Issue.record("node kinds")
      return
    }
    #expect(shape == [2, 8, 8])
    #expect(graph.nodes["input"]?.metadata["soma.input"] == "flat")
    #expect(c1.weight.shape == [4, 1, 3, 3] && c1.groups == 2 && c1.inputShape == [8, 8])
    #expect(c1.padding == .sizes([1, 1]) && c1.stride == [1, 1] && c1.dilation == [1, 1])
    #expect(tau.shape == [4, 8, 8])  // per neuron, shaped as the maps
    #expect(pool == NIRPool2d(kernelSize: [2, 2], stride: [2, 2], padding: [0, 0]))
    #expect(c2.weight.shape == [6, 4, 3, 2] && c2.inputShape == [4, 4])
    #expect(c2.stride == [2, 1] && c2.padding == .sizes([1, 0]) && c2.dilation == [1, 2])
    // No bias in Soma: NIR's Conv2d always has one, so zeros and a note in the metadata.
    #expect(c2.bias.values == Array(repeating: 0, count: 6))
    #expect(graph.nodes["4"]?.metadata["soma.bias"] == "none")
    #expect(start == 0 && end == -1 && flatShape == [6, 2, 2])
  }

  @Test func networkThatTakesImagesNeedsTheInputShape() throws {
    let net = Sequential<Float>(layers: Array(try Self.convNet().layers.dropFirst()))
    let error = #expect(throws: NIRError.self) { try net.nirExport() }
    #expect(error?.description.contains("pass it as NIROptions(inputShape:)") == true)
    let options = NIROptions(inputShape: [2, 8, 8])
    let graph = try net.nirExport(options: options).graph
    #expect(graph.nodes["input"]?.metadata["soma.input"] == "images")
    // It comes back without an Unflatten, taking [T, batch, 2, 8, 8] as before.
    let back = try roundTrip(net, options: options)
    expectIdentical(net, back, input: Self.input().reshaped([30, 3, 2, 8, 8]))
    let wrong = #expect(throws: NIRError.self) {
      try net.nirExport(options: NIROptions(inputShape: [3, 8, 8]))
    }
    #expect(wrong?.description == "layer 0 (Conv2d) takes 2 channels but receives 3.")
  }

  @Test func maxPoolAndAMiddleUnflattenHaveNoNIRForm() throws {
    let pooled = try Sequential<Float> {
      try Unflatten<Float>([1, 4, 4])
      try Conv2d<Float>(1, 2, kernelSize: 3, padding: 1, seed: 1)
      try MaxPool2d<Float>(kernelSize: 2)
    }
    let e1 = #expect(throws: NIRError.self) { try pooled.nirExport() }
    #expect(
      e1?.description.hasPrefix(
        "layer 2 (MaxPool2d) has no NIR form; NIR 1.0 pools only by sum or average") == true)
    #expect(e1?.description.contains("\n") == false)
    let reshaped = try Sequential<Float> {
      Linear(4, 4, seed: 1)
      try Unflatten<Float>([1, 2, 2])
    }
    let e2 = #expect(throws: NIRError.self) { try reshaped.nirExport() }
    #expect(e2?.description.contains("NIR 1.0 has no node that unflattens") == true)
  }

  /// Conv2d → BatchNorm2d → LIF with running statistics far from 0 and 1, on 1×`side`×`side`
  /// images; then Flatten → Linear → BatchNorm1d (evaluation, default statistics) → LIF.
  static func batchNormNet(first side: Int = 6) throws -> Sequential<Float> {
    let bn = try BatchNorm2d<Float>(3)
    bn.state.runningMean = Tensor([0.3, -0.2, 0.1], shape: [3])
    bn.state.runningVar = Tensor([0.5, 2.0, 0.8], shape: [3])
    bn.weight!.value = Tensor([1.5, 0.7, -1.1], shape: [3])
    bn.bias!.value = Tensor([0.2, -0.1, 0.4], shape: [3])
    bn.mode = .evaluation
    let bn1 = try BatchNorm1d<Float>(4)
    bn1.mode = .evaluation
    return try Sequential<Float> {
      try Unflatten<Float>([1, side, side])
      try Conv2d<Float>(1, 3, kernelSize: 3, padding: 1, bias: false, seed: 4)
      bn
      try LIF(beta: 0.9, threshold: 0.5, reset: .zero, surrogate: S2NN())
      Flatten<Float>()
      Linear(3 * side * side, 4, seed: 5)
      bn1
      try LIF(beta: 0.9, threshold: 0.5, reset: .zero, surrogate: S2NN())
    }
  }

  @Test func batchNormFoldsIntoTheLayerBefore() throws {
    let net = try Self.batchNormNet()
    let export = try net.nirExport()
    #expect(export.notes.count == 2)
    #expect(export.notes[0].hasPrefix("layer 2 (BatchNorm2d) is folded into the weights"))
    #expect(export.graph.nodes["2"] == nil && export.graph.nodes["6"] == nil)
    #expect(export.graph.edges.contains(NIREdge("1", "3")))
    let back = try NIRGraph.decode(try export.graph.encoded()).sequential()
    #expect(
      layerTypes(back) == ["Unflatten", "Conv2d", "LIF", "Flatten", "Linear", "LIF"])
    // The folded convolution gives what Conv2d then BatchNorm2d (evaluation) gave.
    let x = Variable(randomSpikes(10, 2, 36, p: 0.4, seed: 6))
    let before = noGrad { net.layers[2](net.layers[1](net.layers[0](x))) }.value
    let after = noGrad { back.layers[1](back.layers[0](x)) }.value
    let worst = zip(before.scalars, after.scalars).map { abs($0 - $1) }.max() ?? 1
    #expect(worst < 1e-5, "largest difference \(worst)")
    #expect((back.layers[1].base as? Conv2d<Float>)?.bias != nil)
    let y = run(net, x.value)
    let z = run(back, x.value)
    let same = zip(y.scalars, z.scalars).filter { $0 == $1 }.count
    #expect(Double(same) / Double(y.count) >= 0.99)
    #expect(y.scalars.contains(1))
  }

  @Test func batchNormNeedsAConvolutionAndRunningStatistics() throws {
    let loose = try Sequential<Float> {
      try Unflatten<Float>([1, 4, 4])
      try BatchNorm2d<Float>(1)
    }
    let e1 = #expect(throws: NIRError.self) { try loose.nirExport() }
    #expect(e1?.description.contains("does not follow a Conv2d with 1 outputs") == true)
    let batchOnly = try Sequential<Float> {
      try Unflatten<Float>([1, 4, 4])
      try Conv2d<Float>(1, 2, kernelSize: 1, seed: 1)
      try BatchNorm2d<Float>(2, trackRunningStats: false)
    }
    let e2 = #expect(throws: NIRError.self) { try batchOnly.nirExport() }
    #expect(e2?.description.contains("keeps no running statistics") == true)
  }

  @Test func unitResistanceScalesTheConvolution() throws {
    let net = try Self.convNet()
    let options = NIROptions(dt: 1e-3, resistance: .unitResistance)
    let graph = try net.nirExport(options: options).graph
    guard case .conv2d(let c)? = graph.nodes["1"]?.kind else {
      Issue.record("node 1 is not a Conv2d")
      return
    }
    // LIF beta 0.85: tau/dt = 1/0.15.
    let trained = (net.layers[1].base as! Conv2d<Float>).weight.value.scalars
    #expect(abs(c.weight.values[0] - Double(trained[0]) / 0.15) < 1e-5)
    let back = try NIRGraph.decode(try graph.encoded()).sequential(options: options)
    let (ya, yb) = (run(net, Self.input()).scalars, run(back, Self.input()).scalars)
    let same = zip(ya, yb).filter { $0 == $1 }.count
    #expect(Double(same) / Double(ya.count) >= 0.99)
  }
}

/// Foreign conv graphs: padding "same", SumPool2d, per-channel gains and partial flattens.
@Suite struct ConvImportTests {
  static func lif(_ shape: [Int], r: [Double]? = nil) -> NIRNode {
    let n = shape.reduce(1, *)
    func a(_ v: Double) -> NIRArray { NIRArray(Array(repeating: v, count: n), shape: shape) }
    return NIRNode(
      .lif(
        tau: a(1e-3), r: r.map { NIRArray($0, shape: shape) } ?? a(10), vLeak: a(0),
        vThreshold: a(1), vReset: a(0)))
  }

  static func conv(
    _ out: Int, _ ins: Int, k: Int = 3, padding: NIRConv2d.Padding = .sizes([1, 1]),
    stride: [Int] = [1, 1], inputShape: [Int]? = nil
  ) -> NIRNode {
    var values: [Double] = []
    for i in 0..<(out * ins * k * k) { values.append(Double((i * 7) % 11) / 10 - 0.4) }
    return NIRNode(
      .conv2d(
        NIRConv2d(
          weight: NIRArray(values, shape: [out, ins, k, k], elementType: .float32),
          bias: NIRArray(Array(repeating: 0.1, count: out), shape: [out]), stride: stride,
          padding: padding, dilation: [1, 1], groups: 1, inputShape: inputShape)))
  }

  func chain(_ nodes: [(String, NIRNode)], input: [Int], output: [Int]) -> NIRGraph {
    var all = Dictionary(uniqueKeysWithValues: nodes)
    all["input"] = NIRNode(.input(shape: input))
    all["output"] = NIRNode(.output(shape: output))
    let names = ["input"] + nodes.map(\.0) + ["output"]
    return NIRGraph(nodes: all, edges: zip(names, names.dropFirst()).map { NIREdge($0, $1) })
  }

  func importError(_ g: NIRGraph) throws -> NIRError? {
    let decoded = try NIRGraph.decode(try g.encoded(), path: "g.nir")
    let error = #expect(throws: NIRError.self) { try decoded.sequential(source: "g.nir") }
    if let error { #expect(!error.description.contains("\n"), "\(error)") }
    return error
  }

  @Test func samePaddingAndSumPool() throws {
    let g = chain(
      [
        ("conv", Self.conv(2, 1, padding: .same)), ("lif", Self.lif([2, 4, 4])),
        (
          "pool",
          NIRNode(.sumPool2d(NIRPool2d(kernelSize: [2, 2], stride: [2, 2], padding: [0, 0])))
        ),
        ("flat", NIRNode(.flatten(startDim: 0, endDim: -1, inputShape: [2, 2, 2]))),
      ], input: [1, 4, 4], output: [8])
    let net = try NIRGraph.decode(try g.encoded()).sequential()
    #expect(layerTypes(net) == ["Unflatten", "Conv2d", "LIF", "Conv2d", "Flatten"])
    #expect((net.layers[1].base as? Conv2d<Float>)?.padding == Size2D(1))
    // The sum pool: each output is the sum of its 2×2 window of spikes.
    let x = randomSpikes(5, 2, 16, p: 0.6, seed: 3)
    let spikes = noGrad { net.layers[2](net.layers[1](net.layers[0](Variable(x)))) }.value
    let pooled = noGrad { net.layers[3](Variable(spikes)) }.value
    let s = spikes.contiguous().scalars
    let p = pooled.contiguous().scalars
    #expect(pooled.shape == [5, 2, 2, 2, 2])
    #expect(s.contains(1))
    for plane in 0..<(5 * 2 * 2) {
      for i in 0..<2 {
        for j in 0..<2 {
          let at = { (y: Int, x: Int) in s[plane * 16 + y * 4 + x] }
          let sum = at(2 * i, 2 * j) + at(2 * i, 2 * j + 1) + at(2 * i + 1, 2 * j)
            + at(2 * i + 1, 2 * j + 1)
          #expect(p[plane * 4 + i * 2 + j] == sum)
        }
      }
    }
  }

  @Test func perChannelGainsScaleTheConvolution() throws {
    // r differs per channel (1 and 2): the gain r·dt/τ = 0.1 and 0.2 scales each output channel.
    let r = Array(repeating: 1.0, count: 16) + Array(repeating: 2.0, count: 16)
    let g = chain(
      [("conv", Self.conv(2, 1)), ("lif", Self.lif([2, 4, 4], r: r))], input: [1, 4, 4],
      output: [2, 4, 4])
    let net = try g.sequential()
    let conv = try #require(net.layers[1].base as? Conv2d<Float>)
    guard case .conv2d(let c)? = g.nodes["conv"]?.kind else { return }
    let w = conv.weight.value.scalars
    #expect(abs(Double(w[0]) - c.weight.values[0] * 0.1) < 1e-7)
    #expect(abs(Double(w[9]) - c.weight.values[9] * 0.2) < 1e-7)
    let bias = conv.bias!.value.scalars.map { Double($0) }
    #expect(abs(bias[0] - 0.01) < 1e-8 && abs(bias[1] - 0.02) < 1e-8)
    // A gain that differs within a channel has no per-channel form.
    var uneven = r
    uneven[3] = 3
    let bad = chain(
      [("conv", Self.conv(2, 1)), ("lif", Self.lif([2, 4, 4], r: uneven))], input: [1, 4, 4],
      output: [2, 4, 4])
    #expect(try importError(bad)?.description.contains("differs within a channel") == true)
    // A neuron on maps straight after the input gets a depthwise 1×1 convolution for its gain.
    let first = chain(
      [("lif", Self.lif([2, 4, 4], r: r)), ("conv", Self.conv(2, 2))], input: [2, 4, 4],
      output: [2, 4, 4])
    let net2 = try first.sequential()
    #expect(layerTypes(net2) == ["Unflatten", "Conv2d", "LIF", "Conv2d"])
    let dw = try #require(net2.layers[1].base as? Conv2d<Float>)
    #expect(dw.groups == 2 && dw.weight.shape == [2, 1, 1, 1])
  }

  @Test func shapesAndFieldsSomaCannotMap() throws {
    let pool = { (k: [Int], s: [Int], p: [Int]) in
      NIRNode(.avgPool2d(NIRPool2d(kernelSize: k, stride: s, padding: p)))
    }
    let cases: [(NIRGraph, String)] = [
      (
        chain(
          [("conv", Self.conv(2, 1, k: 2, padding: .same))], input: [1, 4, 4],
          output: [2, 4, 4]),
        "padding \"same\" with stride [1, 1] and kernel 2×2"
      ),
      (
        chain(
          [
            ("conv", Self.conv(2, 1)),
            ("flat", NIRNode(.flatten(startDim: 1, endDim: -1, inputShape: [2, 4, 4]))),
          ], input: [1, 4, 4], output: [2, 16]),
        "flattens axes 1…-1 of [2, 4, 4]"
      ),
      (
        chain([("pool", pool([2, 2], [0, 2], [0, 0]))], input: [1, 4, 4], output: [1, 2, 2]),
        "kernel_size [2, 2] and stride [0, 2]; both must be ≥ 1."
      ),
      (
        chain([("pool", pool([2, 2], [2, 2], [2, 0]))], input: [1, 4, 4], output: [1, 2, 2]),
        "padding [2, 0]; it must be ≥ 0 and at most half of [2, 2]."
      ),
      (
        chain([("pool", pool([5, 5], [1, 1], [0, 0]))], input: [1, 4, 4], output: [1, 1, 1]),
        "window [5, 5] larger than its 4×4 input"
      ),
      (
        chain([("conv", Self.conv(2, 1))], input: [16], output: [2, 4, 4]),
        "receives samples of shape [16]; Soma's image layers take [C, H, W] maps"
      ),
      (
        chain(
          [("conv", Self.conv(2, 1)), ("fc", BadFileTests.affine(2, 32))], input: [1, 4, 4],
          output: [2]),
        "receives [C, H, W] maps ([2, 4, 4]); Soma maps Affine and Linear on flat features"
      ),
    ]
    for (g, says) in cases {
      let e = try importError(g)
      #expect(e?.description.contains(says) == true, "\(String(describing: e))")
    }
  }
}

/// Hostile sizes in image graphs: one line, no overflow, no unbounded allocation.
@Suite struct HostileConvTests {
  func importError(_ g: NIRGraph) throws -> String? {
    let decoded = try NIRGraph.decode(try g.encoded(), path: "g.nir")
    let error = #expect(throws: NIRError.self) { try decoded.sequential(source: "g.nir") }
    if let error { #expect(!error.description.contains("\n"), "\(error)") }
    return error?.description
  }

  func chain(_ nodes: [(String, NIRNode)], input: [Int], output: [Int]) -> NIRGraph {
    ConvImportTests().chain(nodes, input: input, output: output)
  }

  @Test func shapesThatWouldOverflow() throws {
    let big = 1 << 21
    let g1 = chain([("lif", ConvImportTests.lif([1]))], input: [big, big, big], output: [1])
    #expect(try importError(g1)?.contains("its Input gives samples of shape") == true)
    let g2 = chain(
      [("conv", ConvImportTests.conv(2, 1, padding: .sizes([1 << 29, 1 << 29])))],
      input: [1, 4, 4], output: [2, 4, 4])
    let m2 = try importError(g2)
    #expect(m2?.contains("more than the 16777216 values") == true, "\(String(describing: m2))")
    let pool = NIRPool2d(
      kernelSize: [1 << 29, 1 << 29], stride: [1, 1], padding: [1 << 28, 1 << 28])
    let g3 = chain([("pool", NIRNode(.sumPool2d(pool)))], input: [1, 4, 4], output: [1, 1, 1])
    #expect(try importError(g3)?.contains("wider than its 4×4 input") == true)
    let g4 = chain(
      [("scale", NIRNode(.scale(NIRArray(repeating: 2, count: 10_000))))], input: [10_000],
      output: [10_000])
    #expect(try importError(g4)?.contains("needs a diagonal Linear of 10000 × 10000") == true)
  }
}

/// Every neuron node NIR has runs on [C, H, W] maps after a convolution.
@Suite struct NeuronsOnMapsTests {
  @Test func everyNeuronTypeRunsOnMaps() throws {
    let shape = [2, 4, 4]
    func a(_ v: Double) -> NIRArray { NIRArray(Array(repeating: v, count: 32), shape: shape) }
    let neurons: [(String, NIRNode)] = [
      ("LIF", ConvImportTests.lif(shape)),
      ("IF", NIRNode(.integrateAndFire(r: a(1e4), vThreshold: a(1), vReset: a(0)))),
      ("I", NIRNode(.integrator(r: a(1e4)))),
      ("LI", NIRNode(.leakyIntegrator(tau: a(1e-3), r: a(10), vLeak: a(0)))),
      (
        "CubaLIF",
        NIRNode(
          .cubaLIF(
            tauSyn: a(5e-4), tauMem: a(1e-3), r: a(10), vLeak: a(0), vThreshold: a(1),
            vReset: a(0), wIn: a(5)))
      ),
      (
        "CubaLI",
        NIRNode(.cubaLI(tauSyn: a(5e-4), tauMem: a(1e-3), r: a(10), vLeak: a(0), wIn: a(5)))
      ),
    ]
    for (type, neuron) in neurons {
      let g = ConvImportTests().chain(
        [("conv", ConvImportTests.conv(2, 1)), ("n", neuron)], input: [1, 4, 4], output: shape)
      let net = try NIRGraph.decode(try g.encoded()).sequential()
      let y = run(net, randomSpikes(6, 2, 16, p: 0.5, seed: 8))
      #expect(y.shape == [6, 2, 2, 4, 4], "\(type)")
      #expect(y.scalars.allSatisfy { $0.isFinite }, "\(type)")
    }
    // A recurrent loop on maps has no RecurrentLIF.
    var g = ConvImportTests().chain(
      [("conv", ConvImportTests.conv(2, 1)), ("lif", ConvImportTests.lif(shape))],
      input: [1, 4, 4], output: shape)
    g.nodes["w_rec"] = NIRNode(
      .linear(weight: NIRArray(Array(repeating: 0.01, count: 32 * 32), shape: [32, 32])))
    g.edges += [NIREdge("lif", "w_rec"), NIREdge("w_rec", "lif")]
    let loop = g
    let e = #expect(throws: NIRError.self) { try loop.sequential() }
    #expect(e?.description.contains("recurrent connection on [C, H, W] maps") == true)
  }
}

extension ConvImportTests {
  /// An Input written with axes [1, 1, 12] before an Affine is read flat, as before.
  @Test func inputAxesBeforeADenseLayerAreFlat() throws {
    let g = chain(
      [("fc", BadFileTests.affine(3, 12)), ("lif", BadFileTests.lif(3))], input: [1, 1, 12],
      output: [3])
    let net = try g.sequential()
    #expect(layerTypes(net) == ["Linear", "LIF"])
    let reshapeOnly = chain(
      [("flat", NIRNode(.flatten(startDim: 0, endDim: -1, inputShape: [1, 4, 4])))],
      input: [1, 4, 4], output: [16])
    #expect(try importError(reshapeOnly)?.description.contains("maps to no Soma layer") == true)
  }
}
