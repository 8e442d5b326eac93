import Foundation
import Soma
import SomaNIR
import Testing

/// NIR files written by snnTorch and Norse (Fixtures/, made by
/// scripts/fixtures/make_nir_fixtures.py) load in Soma, run on the input the exporting
/// framework ran, and agree with its output as far as the file describes that network.
@Suite struct InteropFixtureTests {
  struct Entry: Decodable {
    var dt: Double
    var output: String
    var note: String
  }

  /// What each fixture must reach, and why it is not exact where it is not.
  struct Expectation: CustomStringConvertible, Sendable {
    var name: String
    /// The least fraction of equal spikes, or for a membrane output the largest difference.
    var bound: Double
    /// Soma's output compared this many steps later than the framework's.
    var shift = 0
    var why: String
    var description: String { name }
  }

  static let expectations: [Expectation] = [
    Expectation(
      name: "snntorch_leaky", bound: 1,
      why: "Leaky with reset to zero in the same step is exactly NIR's LIF under Euler"),
    Expectation(
      name: "snntorch_leaky_default", bound: 0.9,
      why: "snnTorch's default Leaky subtracts the threshold one step late; its exporter writes"
        + " reset to 0, which Soma simulates"),
    Expectation(
      name: "snntorch_synaptic", bound: 1,
      why: "Synaptic (zero reset, same step) is Euler CubaLIF with the new current entering the"
        + " membrane in the same step: Soma's LeakyIntegrator then LIF"),
    Expectation(
      name: "snntorch_rleaky", bound: 1,
      why: "RLeaky (zero reset, same step) is NIR's LIF with a recurrent Affine"),
    Expectation(
      name: "snntorch_conv_avgpool", bound: 1,
      why: "Conv2d, Leaky (zero reset, same step), AvgPool2d, Flatten, Linear, Leaky: Soma's"
        + " Unflatten, Conv2d, LIF, AvgPool2d, Flatten, Linear, LIF"),
    Expectation(
      name: "snntorch_conv_sumpool", bound: 1,
      why: "as snntorch_conv_avgpool with a sum pool, which Soma runs as a depthwise Conv2d of"
        + " ones"),
    Expectation(
      name: "norse_lifbox", bound: 1e-5,
      why: "LIFBoxCell and LIBoxCell are Euler steps; float32 rounding only"),
  ]

  static func manifest() throws -> [String: Entry] {
    let data = try Data(contentsOf: URL(fileURLWithPath: try fixturePath("manifest.json")))
    return try JSONDecoder().decode([String: Entry].self, from: data)
  }

  @Test func everyFixtureHasAnExpectation() throws {
    #expect(Set(try Self.manifest().keys) == Set(Self.expectations.map(\.name)))
  }

  @Test(arguments: expectations)
  func fixtureRunsLikeItsFramework(_ e: Expectation) throws {
    let entry = try #require(try Self.manifest()[e.name])
    let net = try Sequential<Float>(
      nirFile: try fixturePath(e.name + ".nir"), options: NIROptions(dt: entry.dt))
    var x = try NPY.read(try fixturePath(e.name + ".input.npy"), as: Float.self)
    // Image input [T, batch, C, H, W]: Soma's imported network takes it flat and unflattens.
    if x.rank > 3 { x = x.reshaped([x.shape[0], x.shape[1], -1]) }
    let expected = try NPY.read(try fixturePath(e.name + ".output.npy"), as: Float.self)
    let y = run(net, x)
    #expect(y.shape == expected.shape)
    guard y.shape == expected.shape else { return }
    let (a, b) = (y.scalars, expected.scalars)
    if entry.output == "spikes" {
      let stride = y.count / y.shape[0]
      let offset = e.shift * stride
      let pairs = zip(a[offset...], b[..<(b.count - offset)])
      let agree = Double(pairs.filter { $0 == $1 }.count) / Double(b.count - offset)
      print("NIR fixture \(e.name): \(agree) of spikes equal (\(e.why))")
      #expect(agree >= e.bound, "\(e.name): \(agree) of spikes agree; \(e.why)")
      #expect(b.contains(1), "\(e.name): the framework's output has no spike")
    } else {
      let worst = zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0
      print("NIR fixture \(e.name): largest membrane difference \(worst) (\(e.why))")
      #expect(worst <= e.bound, "\(e.name): membranes differ by \(worst); \(e.why)")
    }
  }

  /// The files Soma wrote for the Python check (Fixtures/soma) still read back as the network
  /// that wrote them: the same output on the stored input.
  @Test(arguments: [
    "soma_lif", "soma_lif_r1", "soma_recurrent", "soma_recurrent_r1", "soma_cubalif",
    "soma_cubalif_r1", "soma_every_layer", "soma_conv",
  ])
  func somaFilesReadBackAsWritten(_ name: String) throws {
    let net = try Sequential<Float>(nirFile: try fixturePath("soma/\(name).nir"))
    let x = try NPY.read(try fixturePath("soma/\(name).input.npy"), as: Float.self)
    let expected = try NPY.read(try fixturePath("soma/\(name).output.npy"), as: Float.self)
    let y = run(net, x)
    let worst = zip(y.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
    // r = 1 files carry tau/dt in the weights, so they come back within float rounding.
    #expect(worst <= (name.hasSuffix("_r1") ? 1e-4 : 0), "\(name): \(worst)")
  }

  /// The batch norm was folded into the convolution and the Linear on export, so the file reads
  /// back as a network without it that differs from the original by float rounding.
  @Test func somaBatchNormFileReadsBackFolded() throws {
    let net = try Sequential<Float>(nirFile: try fixturePath("soma/soma_conv_bn.nir"))
    #expect(layerTypes(net) == ["Unflatten", "Conv2d", "LIF", "Flatten", "Linear", "LIF"])
    let x = try NPY.read(try fixturePath("soma/soma_conv_bn.input.npy"), as: Float.self)
    let expected = try NPY.read(try fixturePath("soma/soma_conv_bn.output.npy"), as: Float.self)
    let y = run(net, x)
    #expect(y.shape == expected.shape)
    let same = zip(y.scalars, expected.scalars).filter { $0 == $1 }.count
    #expect(Double(same) / Double(y.count) >= 0.99, "\(same) of \(y.count)")
    #expect(expected.scalars.contains(1))
  }

  @Test func snnTorchLayersMapAsDocumented() throws {
    let leaky = try Sequential<Float>(nirFile: try fixturePath("snntorch_leaky.nir"))
    #expect(layerTypes(leaky) == ["Linear", "LIF", "Linear", "LIF"])
    let synaptic = try Sequential<Float>(nirFile: try fixturePath("snntorch_synaptic.nir"))
    #expect(
      layerTypes(synaptic) == [
        "Linear", "LeakyIntegrator", "LIF", "Linear", "LeakyIntegrator", "LIF",
      ])
    let rleaky = try Sequential<Float>(nirFile: try fixturePath("snntorch_rleaky.nir"))
    #expect(layerTypes(rleaky) == ["Linear", "RecurrentLIF", "Linear", "LIF"])
    // snnTorch writes beta = 0.9 as tau = dt / (1 - beta) in float32; Soma recovers it.
    let spec = Checkpoint.layerSpecs(leaky)[1]
    #expect(abs((spec.beta ?? 0) - 0.9) < 1e-6)
    #expect(spec.reset == "zero")
  }

  @Test func snnTorchConvLayersMapAsDocumented() throws {
    let avg = try Sequential<Float>(nirFile: try fixturePath("snntorch_conv_avgpool.nir"))
    #expect(
      layerTypes(avg) == [
        "Unflatten", "Conv2d", "LIF", "AvgPool2d", "Flatten", "Linear", "LIF",
      ])
    let conv = try #require(avg.layers[1].base as? Conv2d<Float>)
    #expect(conv.weight.shape == [4, 1, 3, 3])
    #expect(conv.padding == Size2D(1) && conv.stride == Size2D(1) && conv.groups == 1)
    #expect(conv.bias != nil)
    let pool = try #require(avg.layers[3].base as? AvgPool2d<Float>)
    #expect(pool.kernelSize == Size2D(2) && pool.stride == Size2D(2))
    #expect((avg.layers[0].base as? Unflatten<Float>)?.shape == [1, 8, 8])
    #expect(avg.inputFeatures == 64)
    // The sum pool is a depthwise convolution with a 2×2 kernel of ones, stride 2, no bias.
    let sum = try Sequential<Float>(nirFile: try fixturePath("snntorch_conv_sumpool.nir"))
    #expect(
      layerTypes(sum) == ["Unflatten", "Conv2d", "LIF", "Conv2d", "Flatten", "Linear", "LIF"])
    let pooling = try #require(sum.layers[3].base as? Conv2d<Float>)
    #expect(pooling.weight.shape == [4, 1, 2, 2] && pooling.groups == 4)
    #expect(pooling.weight.value.scalars.allSatisfy { $0 == 1 } && pooling.bias == nil)
    #expect(pooling.stride == Size2D(2) && pooling.padding == Size2D(0))
  }

  @Test func norseNeedsTheSquaredStep() throws {
    // At Soma's default dt (0.1 ms) Norse's tau of dt·τ = 5 µs is shorter than a step.
    let error = #expect(throws: NIRError.self) {
      try Sequential<Float>(nirFile: try fixturePath("norse_lifbox.nir"))
    }
    #expect(error?.description.contains("shorter than dt") == true)
  }
}
