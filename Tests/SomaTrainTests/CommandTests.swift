import ArgumentParser
import Foundation
import Soma
import Testing

@testable import SomaCLI
@testable import SomaTrain

/// `soma train --model NAME` through SomaTrain, and `evaluate`/`raster` from the checkpoint alone.
@Suite(.serialized)
struct CommandTests {
  /// Runs `soma ARGS` in-process; the one line it prints on failure, nil on success.
  func failure(_ args: [String]) -> String? { SomaCommand.failureLine(args) }

  /// The synthetic images as IDX files in `dir`.
  func writeIDX(_ dir: String) throws {
    for (prefix, split) in [
      ("train", syntheticImages(count: 200, seed: 1)), ("t10k", syntheticImages(count: 60, seed: 2)),
    ] {
      try Data(IDXArray(dimensions: [split.count, 10, 10], bytes: split.pixels).encoded())
        .write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-images-idx3-ubyte"))
      try Data(IDXArray(dimensions: [split.count], bytes: split.labels.map { UInt8($0) }).encoded())
        .write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-labels-idx1-ubyte"))
    }
  }

  @Test func anUnknownModelIsOneLine() {
    let message = failure(["train", "--model", "bogus"])
    #expect(
      message
        == "--model must be 'spytorch', 'mlp' or 'csnn', got 'bogus' (spytorch: SpyTorch's"
        + " current-based LIF network, the default; mlp: Linear → LIF layers; csnn: SpikingJelly's"
        + " convolutional network)")
    #expect(message.map { !$0.contains("\n") } ?? false)
    #expect(failure(["train", "--model", "spytorch", "--hidden", "8,8"]) != nil)
    #expect(failure(["train", "--model", "mlp", "--hidden", "8,0"]) == "--hidden must be in 1...10000, got 0")
  }

  @Test(arguments: [["--model", "spytorch", "--hidden", "12"], ["--model", "mlp", "--hidden", "12,8"]])
  func eachModelTrainsEvaluatesAndDraws(flags: [String]) throws {
    let dir = try TemporaryDirectory()
    try writeIDX(dir.path)
    let out = dir.path + "/run"
    let fast = ["--epochs", "1", "--time-steps", "8", "--batch-size", "32", "--threads", "1"]
    #expect(failure(["train", "--data", dir.path, "--out", out] + fast + flags) == nil)
    let checkpoint = out + "/final.safetensors"
    let loaded = try Checkpoint.load(checkpoint)
    #expect(loaded.model == flags[1] && loaded.timeSteps == 8)
    #expect(loaded.network.linearWidths == (flags[1] == "mlp" ? [100, 12, 8, 10] : [100, 12, 10]))
    #expect(loaded.metadata["surrogate"] == "S2NN:alpha=4.0,beta=1.0,epsilon=1e-08")
    // The checkpoint alone: the same accuracy as the run measured.
    let model = try LoadedModel(path: checkpoint, threads: 1)
    let test = try FashionMNIST.readSplit("t10k", in: dir.path)
    let metrics = try MetricsLog.read(out + "/metrics.csv")
    #expect(Swift.abs(try model.evaluate(test).accuracy - metrics[0].testAccuracy) < 1e-12)
    #expect(failure(["evaluate", "--checkpoint", checkpoint, "--data", dir.path]) == nil)
    let svg = dir.path + "/r.svg"
    #expect(failure(["raster", "--checkpoint", checkpoint, "--data", dir.path, "-o", svg]) == nil)
    #expect(FileManager.default.fileExists(atPath: svg))
  }

  /// `soma train`'s log lines keep their wording.
  @Test func theLogLinesKeepTheirWording() throws {
    let dir = try TemporaryDirectory()
    try writeIDX(dir.path)
    let trainer = try CLITrainer(
      surrogate: S2NN(),
      options: TrainOptions(
        epochs: 1, batchSize: 50, lr: 1e-3, seed: 1, threads: 1, hidden: 8, timeSteps: 6),
      dataset: FashionMNIST(directory: dir.path), outDir: dir.path + "/run")
    var lines: [String] = []
    trainer.log = { lines.append($0) }
    try trainer.run()
    #expect(
      lines.first
        == "training 100-8-10 current-based LIF, T = 6, surrogate S2NN:alpha=4.0,beta=1.0,"
        + "epsilon=1e-08, batch 50, lr 0.001, 1 epochs → \(dir.path)/run")
    #expect(lines.count == 2 && lines[1].hasPrefix("epoch 1/1  loss "))
  }

  /// A checkpoint of Soma 0.1 evaluates from the command line.
  @Test func aFormatOneCheckpointEvaluates() throws {
    let dir = try TemporaryDirectory()
    try writeIDX(dir.path)
    var g = SomaRandom(seed: 5)
    let path = dir.path + "/old.safetensors"
    try SafeTensors.write(
      [
        "hidden.weight": Tensor<Float>.normal([16, 100], std: 0.3, using: &g),
        "readout.weight": Tensor<Float>.normal([10, 16], std: 0.3, using: &g),
      ],
      metadata: [
        "format": "soma-checkpoint-1", "model": "mlp", "inputs": "100", "hidden": "16",
        "outputs": "10", "time_steps": "10", "surrogate": "S2NN:alpha=4.0,beta=1.0",
        "tau_syn": "0.005", "tau_mem": "0.01", "encoder": "latency",
      ], to: path)
    #expect(failure(["evaluate", "--checkpoint", path, "--data", dir.path]) == nil)
    #expect(
      failure(["raster", "--checkpoint", path, "--data", dir.path, "-o", dir.path + "/r.svg"])
        == nil)
  }
}
