import Foundation
import Soma
import SomaNIR
import Testing

/// Soma → NIR → Soma keeps every parameter and hyperparameter and so every spike.
@Suite struct RoundTripTests {
  /// A network with every layer type Soma exports.
  static func everyLayer() throws -> Sequential<Float> {
    try Sequential<Float> {
      Linear(6, 8, seed: 1)
      try LIF(beta: 0.8, threshold: 0.7, reset: .zero, surrogate: try Sigmoid(alpha: 4))
      Linear(8, 5, bias: false, seed: 2)
      try RecurrentLIF<S2NN, Float>(size: 5, beta: 0.9, threshold: 0.5, surrogate: S2NN(), seed: 3)
      Linear(5, 5, seed: 4)
      try CUBALIF(alpha: 0.7, beta: 0.85, threshold: 0.4, surrogate: InvSquareGrad())
      Linear(5, 4, seed: 5)
      try IF(threshold: 1.5, reset: .subtract, detachReset: true, surrogate: S2NN())
      Linear(4, 4, seed: 6)
      try LIF(beta: 1, threshold: 0.3, surrogate: S2NN())
      Linear(4, 3, seed: 7)
      try LeakyIntegrator(beta: 0.9, alpha: 0.6)
      try LeakyIntegrator(beta: 0.95)
      try LeakyIntegrator(beta: 1)
    }
  }

  func roundTrip(_ net: Sequential<Float>, options: NIROptions = NIROptions()) throws
    -> Sequential<Float>
  {
    let bytes = try net.nirExport(options: options).graph.encoded()
    return try NIRGraph.decode(bytes).sequential(options: options)
  }

  func expectIdentical(_ a: Sequential<Float>, _ b: Sequential<Float>, input: Tensor<Float>) {
    #expect(layerTypes(a) == layerTypes(b))
    #expect(Checkpoint.layerSpecs(a) == Checkpoint.layerSpecs(b))
    let pa = a.parameters.map { ($0.name, $0.variable.value.shape, $0.variable.value.scalars) }
    let pb = b.parameters.map { ($0.name, $0.variable.value.shape, $0.variable.value.scalars) }
    #expect(pa.map(\.0) == pb.map(\.0))
    #expect(pa.map(\.1) == pb.map(\.1))
    #expect(pa.map(\.2) == pb.map(\.2))
    let (ya, yb) = (run(a, input), run(b, input))
    #expect(ya.shape == yb.shape)
    #expect(ya.scalars == yb.scalars)
  }

  @Test func everyLayerTypeComesBackIdentical() throws {
    let net = try Self.everyLayer()
    let back = try roundTrip(net)
    expectIdentical(net, back, input: randomSpikes(30, 4, 6, seed: 9))
    // The spiking layers did spike, so identical outputs say something.
    let hidden = noGrad { net.layers[1](net.layers[0](Variable(randomSpikes(30, 4, 6, seed: 9)))) }
    #expect(hidden.value.scalars.contains(1))
  }

  @Test(arguments: [1e-4, 1e-3, 0.5e-3])
  func anyStepSizeRoundTrips(dt: Double) throws {
    let net = try Self.everyLayer()
    let back = try roundTrip(net, options: NIROptions(dt: dt))
    expectIdentical(net, back, input: randomSpikes(20, 2, 6, seed: 10))
  }

  @Test func unitResistanceMovesTheGainIntoTheWeights() throws {
    // Every layer type but the two leaky integrators at the end, which follow no Linear.
    let net = Sequential<Float>(layers: Array(try Self.everyLayer().layers.dropLast(2)))
    let options = NIROptions(dt: 1e-3, resistance: .unitResistance)
    let graph = try net.nirExport(options: options).graph
    guard case .lif(_, let r, _, _, _)? = graph.nodes["1"]?.kind,
      case .affine(let w, _)? = graph.nodes["0"]?.kind
    else {
      Issue.record("layers 0 and 1 are not Affine and LIF")
      return
    }
    #expect(r.values.allSatisfy { $0 == 1 })
    // LIF beta 0.8: the weights into it carry tau/dt = 1/(1 - 0.8) = 5.
    let trained = net.parameters[0].variable.value.scalars
    #expect(abs(w.values[0] - 5 * Double(trained[0])) < 1e-5)
    // Soma reads the gain dt/tau back out of r = 1: the same network up to float rounding.
    let back = try NIRGraph.decode(try graph.encoded()).sequential(options: options)
    #expect(Checkpoint.layerSpecs(back) == Checkpoint.layerSpecs(net))
    for (a, b) in zip(net.parameters, back.parameters) {
      for (x, y) in zip(a.variable.value.scalars, b.variable.value.scalars) {
        #expect(abs(x - y) <= 1e-6 * max(1, abs(x)), "\(a.name)")
      }
    }
    let x = randomSpikes(30, 4, 6, seed: 13)
    let (ya, yb) = (run(net, x).scalars, run(back, x).scalars)
    let same = zip(ya, yb).filter { abs($0 - $1) <= 1e-4 }.count
    #expect(Double(same) / Double(ya.count) >= 0.99)
  }

  @Test func unitResistanceNeedsALinearBeforeEachNeuron() throws {
    let net = try Sequential<Float> {
      Linear(3, 2, seed: 1)
      try LIF(beta: 0.9, reset: .zero)
      try LIF(beta: 0.9, reset: .zero)
    }
    let error = #expect(throws: NIRError.self) {
      try net.nirExport(options: NIROptions(resistance: .unitResistance))
    }
    #expect(error?.description.contains("layer 2 (LIF) follows no Linear or Conv2d layer") == true)
  }

  @Test func throughAFileOnDisk() throws {
    let dir = try TemporaryDirectory()
    let net = try Self.everyLayer()
    try net.writeNIR(to: dir.file("net.nir"))
    let back = try Sequential<Float>(nirFile: dir.file("net.nir"))
    expectIdentical(net, back, input: randomSpikes(20, 2, 6, seed: 11))
    #expect(try dir.contents() == ["net.nir"])  // no temporary file left behind
  }

  @Test func nestedSequentialFlattensWithTheSameSpikes() throws {
    let inner = try Sequential<Float> {
      Linear(5, 4, seed: 21)
      try LIF(beta: 0.9, threshold: 0.5, reset: .zero)
    }
    let net = try Sequential<Float> {
      Linear(6, 5, seed: 20)
      try LIF(beta: 0.7, reset: .zero)
      inner
    }
    let graph = try net.nirExport().graph
    guard case .graph(let sub)? = graph.nodes["2"]?.kind else {
      Issue.record("the nested Sequential is not a nested NIR graph")
      return
    }
    #expect(Set(sub.nodes.keys) == ["input", "0", "1", "output"])
    let back = try NIRGraph.decode(try graph.encoded()).sequential()
    #expect(layerTypes(back) == ["Linear", "LIF", "Linear", "LIF"])
    let x = randomSpikes(25, 3, 6, seed: 12)
    #expect(run(net, x).scalars == run(back, x).scalars)
  }

  @Test func layoutFollowsNIR() throws {
    let net = try Self.everyLayer()
    let graph = try NIRGraph.decode(try net.nirExport().graph.encoded())
    let types = graph.nodes.mapValues(\.typeName)
    #expect(types["input"] == "Input")
    #expect(types["0"] == "Affine")
    #expect(types["1"] == "LIF")
    #expect(types["2"] == "Linear")
    #expect(types["3"] == "NIRGraph")
    #expect(types["5"] == "CubaLIF")
    #expect(types["7"] == "IF")
    #expect(types["9"] == "IF")  // LIF with beta 1 has no finite tau
    #expect(types["11"] == "CubaLI")
    #expect(types["12"] == "LI")
    #expect(types["13"] == "I")
    #expect(types["output"] == "Output")
    #expect(graph.edges.first == NIREdge("input", "0"))
    #expect(graph.edges.count == 15)
    guard case .lif(let tau, let r, let vLeak, let vThreshold, let vReset)? = graph.nodes["1"]?.kind
    else { return }
    // snnTorch's convention at dt = 0.1 ms: tau = dt / (1 - beta), r = tau / dt.
    #expect(tau.shape == [8])
    #expect(abs(tau.values[0] - 1e-4 / 0.2) < 1e-15)
    #expect(abs(r.values[0] - 5) < 1e-12)
    #expect(vLeak.values == Array(repeating: 0, count: 8))
    #expect(vReset.values == Array(repeating: 0, count: 8))
    #expect(abs(vThreshold.values[0] - 0.7) < 1e-15)
    guard case .graph(let rec)? = graph.nodes["3"]?.kind else { return }
    #expect(
      Set(rec.edges) == [
        NIREdge("input", "lif"), NIREdge("lif", "w_rec"), NIREdge("w_rec", "lif"),
        NIREdge("lif", "output"),
      ])
  }

  @Test func subtractResetIsNotedOrRefused() throws {
    let net = try Sequential<Float> {
      Linear(3, 2, seed: 1)
      try LIF(beta: 0.9)  // .subtract by default
    }
    let export = try net.nirExport()
    #expect(export.notes.count == 1)
    #expect(export.notes[0].contains("layer 1 (LIF) resets by subtraction"))
    let refusal = #expect(throws: NIRError.self) {
      try net.nirExport(options: NIROptions(subtractReset: .refuse))
    }
    #expect(refusal?.description.contains("layer 1 (LIF)") == true)
    // Read back by Soma, the subtraction survives.
    let back = try export.graph.sequential()
    #expect(Checkpoint.layerSpecs(back)[1].reset == "subtract")
  }

  @Test func aLayerWithoutNIRFormIsNamed() throws {
    struct Doubler: Layer {
      typealias Scalar = Float
      func callAsFunction(_ x: Variable<Float>) -> Variable<Float> { x * 2 }
    }
    let net = try Sequential<Float> {
      Linear(3, 2, seed: 1)
      Doubler()
      try LIF(beta: 0.9, reset: .zero)
    }
    let error = #expect(throws: NIRError.self) { try net.nirExport() }
    #expect(error?.description.contains("layer 1 (Doubler) has no NIR form") == true)
  }

  /// With SOMA_NIR_FIXTURES_OUT set, writes the NIR files Soma makes for the Python-side check
  /// (scripts/fixtures/make_nir_fixtures.py check DIR/*.nir), each with an input and Soma's
  /// output on it (`NAME.input.npy`, `NAME.output.npy`); otherwise does nothing.
  @Test func writesSomaFixtures() throws {
    guard let out = ProcessInfo.processInfo.environment["SOMA_NIR_FIXTURES_OUT"] else { return }
    func write(
      _ net: Sequential<Float>, _ name: String, inputs: Int, options: NIROptions = NIROptions()
    ) throws {
      try net.writeNIR(to: out + "/\(name).nir", options: options)
      let x = randomSpikes(40, 3, inputs, seed: 77)
      try NPY.write(x, to: out + "/\(name).input.npy")
      try NPY.write(run(net, x), to: out + "/\(name).output.npy")
    }
    let zero = try Sequential<Float> {
      Linear(12, 10, seed: 31)
      try LIF(beta: 0.9, threshold: 0.6, reset: .zero)
      Linear(10, 4, seed: 32)
      try LIF(beta: 0.9, threshold: 0.6, reset: .zero)
    }
    try write(zero, "soma_lif", inputs: 12)
    // r = 1, as Norse reads NIR.
    let norse = NIROptions(resistance: .unitResistance)
    try write(zero, "soma_lif_r1", inputs: 12, options: norse)
    let recurrent = try Sequential<Float> {
      Linear(12, 10, seed: 33)
      try RecurrentLIF<S2NN, Float>(
        size: 10, beta: 0.9, threshold: 0.6, reset: .zero, surrogate: S2NN(), seed: 34)
      Linear(10, 4, seed: 35)
      try LIF(beta: 0.9, threshold: 0.6, reset: .zero)
    }
    try write(recurrent, "soma_recurrent", inputs: 12)
    try write(recurrent, "soma_recurrent_r1", inputs: 12, options: norse)
    let cuba = try Sequential<Float> {
      Linear(12, 10, seed: 36)
      try CUBALIF(alpha: 0.8, beta: 0.9, threshold: 0.6, surrogate: S2NN())
      Linear(10, 4, seed: 37)
      try CUBALIF(alpha: 0.8, beta: 0.9, threshold: 0.6, surrogate: S2NN())
    }
    try write(cuba, "soma_cubalif", inputs: 12)
    try write(cuba, "soma_cubalif_r1", inputs: 12, options: norse)
    try write(try Self.everyLayer(), "soma_every_layer", inputs: 6)
    // Images 1×8×8, flat in the input files: Unflatten, Conv2d, LIF, AvgPool2d, Flatten,
    // Linear, LIF; and with a BatchNorm2d (folded on export) after the convolution.
    let conv = try Sequential<Float> {
      try Unflatten<Float>([1, 8, 8])
      try Conv2d<Float>(1, 4, kernelSize: 3, padding: 1, seed: 38)
      try LIF(beta: 0.9, threshold: 0.3, reset: .zero)
      try AvgPool2d<Float>(kernelSize: 2)
      Flatten<Float>()
      Linear(64, 5, seed: 39)
      try LIF(beta: 0.9, threshold: 0.1, reset: .zero)
    }
    try write(conv, "soma_conv", inputs: 64)
    try write(try ConvTests.batchNormNet(first: 8), "soma_conv_bn", inputs: 64)
  }
}
