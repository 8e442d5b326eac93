import ArgumentParser
import Foundation
import Soma
import Testing

@testable import SomaCLI
@testable import SomaTrain

/// `soma train --model csnn`, and `evaluate`/`raster` of its checkpoint.
@Suite(.serialized)
struct CSNNCommandTests {
  func failure(_ args: [String]) -> String? { SomaCommand.failureLine(args) }

  /// 12 × 12 synthetic images as IDX files in `dir` (the csnn pools twice by 2).
  func writeIDX(_ dir: String, side: Int = 12) throws {
    for (prefix, split) in [
      ("train", syntheticImages(count: 128, side: side, seed: 1)),
      ("t10k", syntheticImages(count: 40, side: side, seed: 2)),
    ] {
      try Data(IDXArray(dimensions: [split.count, side, side], bytes: split.pixels).encoded())
        .write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-images-idx3-ubyte"))
      try Data(IDXArray(dimensions: [split.count], bytes: split.labels.map { UInt8($0) }).encoded())
        .write(to: URL(fileURLWithPath: "\(dir)/\(prefix)-labels-idx1-ubyte"))
    }
  }

  @Test func theCSNNTrainsEvaluatesAndDraws() throws {
    let dir = try TemporaryDirectory()
    try writeIDX(dir.path)
    let out = dir.path + "/run"
    let flags = ["--model", "csnn", "--channels", "4", "--epochs", "1", "--threads", "1"]
    #expect(failure(["train", "--data", dir.path, "--out", out] + flags) == nil)
    let checkpoint = out + "/final.safetensors"
    let loaded = try Checkpoint.load(checkpoint)
    #expect(loaded.model == "csnn" && loaded.timeSteps == 4 && loaded.encoder == "DirectCurrentEncoder")
    #expect(loaded.network.linearWidths == [4 * 9, 64, 10])
    #expect(loaded.metadata["channels"] == "4")
    #expect(loaded.metadata["surrogate"] == "S2NN:alpha=4.0,beta=1.0,epsilon=1e-08")
    let model = try LoadedModel(path: checkpoint, threads: 1)
    let test = try FashionMNIST.readSplit("t10k", in: dir.path)
    let metrics = try MetricsLog.read(out + "/metrics.csv")
    #expect(metrics.count == 1)
    #expect(Swift.abs(try model.evaluate(test).accuracy - metrics[0].testAccuracy) < 1e-12)
    #expect(failure(["evaluate", "--checkpoint", checkpoint, "--data", dir.path]) == nil)
    let svg = dir.path + "/r.svg"
    #expect(failure(["raster", "--checkpoint", checkpoint, "--data", dir.path, "-o", svg]) == nil)
    let text = try String(contentsOfFile: svg, encoding: .utf8)
    #expect(text.contains("spikes per channel") && text.contains("4 channels, 4 steps"))
  }

  @Test func theCSNNDefaultsAndFlags() throws {
    let c = try TrainCommand.parse(["--model", "csnn"])
    #expect(c.timeSteps == 4 && c.batch == 64 && c.channels == TrainCommand.defaultChannels)
    #expect(c.weightDecay == 0 && c.epochCount == TrainCommand.csnnEpochs)
    let d = try TrainCommand.parse([])
    #expect(d.timeSteps == 100 && d.batch == 256 && d.epochCount == 30 && d.weightDecay == 0.1)
    #expect(failure(["train", "--model", "csnn", "--channels", "0"]) == "--channels must be in 1...512, got 0")
    #expect(failure(["train", "--model", "csnn", "--hidden", "8"])?.contains("--channels") == true)
    // Images whose sides are not multiples of 4 are refused in one sentence.
    let dir = try TemporaryDirectory()
    try writeIDX(dir.path, side: 10)
    let message = failure(
      ["train", "--model", "csnn", "--data", dir.path, "--out", dir.path + "/r", "--epochs", "1"])
    #expect(message?.contains("multiples of 4") == true, "\(message ?? "nil")")
  }
}
