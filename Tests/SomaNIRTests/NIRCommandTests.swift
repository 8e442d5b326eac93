import Foundation
import Soma
import SomaCLI
import SomaNIR
import Testing

/// `soma export` and `soma import`, run in-process.
@Suite struct NIRCommandTests {
  func soma(_ args: [String]) throws {
    var command = try SomaCommand.parseAsRoot(args)
    try command.run()
  }

  /// The one line `soma ARGS` prints when it fails (nil when it succeeds).
  func failure(_ args: [String]) -> String? { SomaCommand.failureLine(args) }

  static func recurrentNetwork() throws -> Sequential<Float> {
    try Sequential<Float> {
      Linear(12, 10, seed: 41)
      try RecurrentLIF<S2NN, Float>(
        size: 10, beta: 0.85, threshold: 0.6, reset: .zero, surrogate: S2NN(), seed: 42)
      Linear(10, 4, seed: 43)
      try LIF(beta: 0.9, threshold: 0.5, reset: .subtract, surrogate: try Sigmoid(alpha: 4))
    }
  }

  @Test func exportThenImportGivesTheSameCheckpoint() throws {
    let dir = try TemporaryDirectory()
    let net = try Self.recurrentNetwork()
    try Checkpoint.write(
      net, loss: .spikeCountCrossEntropy, timeSteps: 40, to: dir.file("a.safetensors"))
    try soma(["export", dir.file("a.safetensors"), "-o", dir.file("net.nir"), "--dt", "1e-3"])
    try soma([
      "import", dir.file("net.nir"), "-o", dir.file("b.safetensors"), "--dt", "1e-3",
      "--time-steps", "40",
    ])
    let back = try Checkpoint.load(dir.file("b.safetensors"))
    #expect(back.layers == Checkpoint.layerSpecs(net))
    #expect(back.timeSteps == 40)
    let x = randomSpikes(40, 3, 12, seed: 44)
    #expect(run(net, x).scalars == run(back.network, x).scalars)
    #expect(try dir.contents() == ["a.safetensors", "b.safetensors", "net.nir"])
  }

  @Test func unitResistanceFlagWritesROfOne() throws {
    let dir = try TemporaryDirectory()
    try Checkpoint.write(
      try Self.recurrentNetwork(), loss: .spikeCountCrossEntropy, timeSteps: 10,
      to: dir.file("a.safetensors"))
    try soma(["export", dir.file("a.safetensors"), "-o", dir.file("n.nir"), "--unit-resistance"])
    let graph = try NIRGraph.read(dir.file("n.nir"))
    guard case .lif(_, let r, _, _, _)? = graph.nodes["3"]?.kind else {
      Issue.record("node 3 is not a LIF")
      return
    }
    #expect(r.values.allSatisfy { $0 == 1 })
  }

  @Test func importedSnnTorchNetworkRunsLikeSnnTorch() throws {
    let dir = try TemporaryDirectory()
    try soma(["import", try fixturePath("snntorch_rleaky.nir"), "-o", dir.file("c.safetensors")])
    let loaded = try Checkpoint.load(dir.file("c.safetensors"))
    #expect(loaded.model == "nir")
    #expect(loaded.metadata["nir_source"] == "snntorch_rleaky.nir")
    let x = try NPY.read(try fixturePath("snntorch_rleaky.input.npy"), as: Float.self)
    let expected = try NPY.read(try fixturePath("snntorch_rleaky.output.npy"), as: Float.self)
    #expect(run(loaded.network, x).scalars == expected.scalars)
  }

  @Test func convCheckpointExportsAndImportsBack() throws {
    let dir = try TemporaryDirectory()
    let net = try ConvTests.convNet()
    try Checkpoint.write(
      net, loss: .spikeCountCrossEntropy, timeSteps: 30, to: dir.file("a.safetensors"))
    try soma(["export", dir.file("a.safetensors"), "-o", dir.file("net.nir")])
    try soma([
      "import", dir.file("net.nir"), "-o", dir.file("b.safetensors"), "--time-steps", "30",
    ])
    let back = try Checkpoint.load(dir.file("b.safetensors"))
    #expect(back.layers == Checkpoint.layerSpecs(net))
    let x = ConvTests.input()
    #expect(run(net, x).scalars == run(back.network, x).scalars)
    // Without its Unflatten the network takes images, and export needs their shape.
    let images = Sequential<Float>(layers: Array(net.layers.dropFirst()))
    try Checkpoint.write(
      images, loss: .spikeCountCrossEntropy, timeSteps: 30, to: dir.file("c.safetensors"))
    let message = failure(["export", dir.file("c.safetensors"), "-o", dir.file("c.nir")])
    #expect(message?.contains("--input-shape C,H,W") == true, "\(String(describing: message))")
    try soma([
      "export", dir.file("c.safetensors"), "-o", dir.file("c.nir"), "--input-shape", "2,8,8",
    ])
    guard case .input(let shape)? = try NIRGraph.read(dir.file("c.nir")).nodes["input"]?.kind
    else {
      Issue.record("no Input node")
      return
    }
    #expect(shape == [2, 8, 8])
  }

  @Test func importedSnnTorchConvNetworkRunsLikeSnnTorch() throws {
    let dir = try TemporaryDirectory()
    try soma([
      "import", try fixturePath("snntorch_conv_sumpool.nir"), "-o", dir.file("c.safetensors"),
    ])
    let loaded = try Checkpoint.load(dir.file("c.safetensors"))
    #expect(loaded.network.inputFeatures == 64)
    let x = try NPY.read(try fixturePath("snntorch_conv_sumpool.input.npy"), as: Float.self)
    let expected = try NPY.read(
      try fixturePath("snntorch_conv_sumpool.output.npy"), as: Float.self)
    #expect(run(loaded.network, x.reshaped([40, 3, 64])).scalars == expected.scalars)
  }

  @Test func csnnExportNamesItsMaxPool() throws {
    let dir = try TemporaryDirectory()
    let csnn = try Models.csnn(channels: 2, surrogate: S2NN())
    try Checkpoint.write(
      csnn, loss: .spikeCountCrossEntropy, timeSteps: 4, to: dir.file("csnn.safetensors"))
    let message = failure(["export", dir.file("csnn.safetensors"), "-o", dir.file("x.nir")])
    #expect(
      message?.contains("layer 4 (MaxPool2d) has no NIR form") == true,
      "\(String(describing: message))")
    #expect(message?.contains("\n") == false)
    #expect(try dir.contents() == ["csnn.safetensors"])
  }

  @Test func badInputIsOneLineAndWritesNothing() throws {
    let dir = try TemporaryDirectory()
    let out = dir.file("out.safetensors")
    let cases: [([String], String)] = [
      (["import", try fixturePath("bad/truncated.nir"), "-o", out], "is not a readable HDF5 file"),
      (["import", try fixturePath("bad/conv2d.nir"), "-o", out], "Conv2d"),
      (
        ["import", try fixturePath("bad/conv_negative_stride.nir"), "-o", out],
        "has stride [-1, 1]"
      ),
      (["export", "a.safetensors", "-o", "x.nir", "--input-shape", "1,0,3"], "--input-shape"),
      (["import", dir.file("missing.nir"), "-o", out], "does not exist"),
      (["import", try fixturePath("norse_lifbox.nir"), "-o", out], "shorter than dt"),
      (["import", try fixturePath("snntorch_leaky.nir"), "-o", out, "--dt", "-1"], "--dt"),
      (
        ["import", try fixturePath("snntorch_leaky.nir"), "-o", out, "--read-timeout", "0"],
        "--read-timeout"
      ),
      (
        ["export", dir.file("missing.safetensors"), "-o", dir.file("x.nir")], "missing.safetensors"
      ),
    ]
    for (args, says) in cases {
      let message = try #require(failure(args), "soma \(args.joined(separator: " ")) succeeded")
      #expect(message.contains(says), "\(message)")
      #expect(!message.contains("\n"), "\(message)")
    }
    // A subtraction reset with --strict-reset.
    let net = try Self.recurrentNetwork()
    try Checkpoint.write(
      net, loss: .spikeCountCrossEntropy, timeSteps: 10, to: dir.file("s.safetensors"))
    let strict = failure([
      "export", dir.file("s.safetensors"), "-o", dir.file("s.nir"), "--strict-reset",
    ])
    #expect(
      strict?.contains("layer 3 (LIF) resets by subtraction") == true,
      "\(String(describing: strict))")
    #expect(try dir.contents() == ["s.safetensors"])
  }
}
