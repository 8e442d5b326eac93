import ArgumentParser
import Foundation
import Soma
import SomaData
import Testing
import _TestSupport

@testable import SomaCLI
@testable import SomaTrain

/// Wrong input to `soma train`, `evaluate`, `raster` and `surrogate plot`, driven through
/// `SomaCommand` as the executable runs it: every case must end in one sentence naming the file
/// or value, never a trap, a silent success or a stray file.
@Suite(.serialized)
struct ReliabilityTests {
  /// A tiny MNIST-style dataset (4×4 images) with chosen labels, in a fresh directory.
  final class TinyData {
    let path = NSTemporaryDirectory() + "soma-reliability-" + UUID().uuidString

    init(
      train: Int = 30, test: Int = 12, trainLabel: (Int) -> UInt8 = { UInt8($0 % 10) },
      testLabel: (Int) -> UInt8 = { UInt8($0 % 10) }, trainLabelCount: Int? = nil
    ) throws {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
      var g = SomaRandom(seed: 9)
      func split(_ prefix: String, _ n: Int, _ labelCount: Int, _ label: (Int) -> UInt8) throws {
        let pixels = (0..<(n * 16)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        try write(IDXArray(dimensions: [n, 4, 4], bytes: pixels), "\(prefix)-images-idx3-ubyte")
        let labels = (0..<labelCount).map(label)
        try write(IDXArray(dimensions: [labelCount], bytes: labels), "\(prefix)-labels-idx1-ubyte")
      }
      try split("train", train, trainLabelCount ?? train, trainLabel)
      try split("t10k", test, test, testLabel)
    }

    func write(_ array: IDXArray, _ name: String) throws {
      try Data(array.encoded()).write(to: URL(fileURLWithPath: path + "/" + name))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
  }

  /// Training flags that make a run take milliseconds.
  static let fast = [
    "--epochs", "1", "--hidden", "4", "--time-steps", "3", "--batch-size", "16", "--threads", "1",
  ]

  /// Parses and runs `soma ARGS` in-process.
  func soma(_ args: [String]) throws {
    var command = try SomaCommand.parseAsRoot(args)
    try command.run()
  }

  /// The one line `soma ARGS` prints when it fails (nil when it succeeds).
  func failure(_ args: [String]) -> String? { SomaCommand.failureLine(args) }

  func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

  /// A checkpoint written by a real (tiny) `soma train` run, in `data`'s directory.
  func trainedCheckpoint(_ data: TinyData) throws -> String {
    let out = data.path + "/run"
    try soma(["train", "--data", data.path, "--out", out] + Self.fast)
    return out + "/final.safetensors"
  }

  /// `source` with some metadata replaced and optionally its weights, written to `name`.
  func editedCheckpoint(
    _ source: String, _ name: String, metadata: [String: String] = [:],
    weights: (inout Tensor<Float>, inout Tensor<Float>) -> Void = { _, _ in }
  ) throws -> String {
    let file = try SafeTensors.read(source)
    // The spytorch network's Sequential names: 0 is the hidden Linear layer, 2 the readout's.
    var w1 = try file.tensor("0.weight", as: Float.self)
    var w2 = try file.tensor("2.weight", as: Float.self)
    weights(&w1, &w2)
    var meta = file.metadata
    for (k, v) in metadata { meta[k] = v }
    // The layer list records the readout's width: keep it in step with an edited w2.
    meta["layers"] = meta["layers"]!.replacingOccurrences(
      of: "\"outputs\":10,", with: "\"outputs\":\(w2.shape[0]),")
    let path = (source as NSString).deletingLastPathComponent + "/" + name
    try SafeTensors.write(["0.weight": w1, "2.weight": w2], metadata: meta, to: path)
    return path
  }

  // MARK: 2. labels outside 0..<10

  @Test func trainRefusesLabelsOutOfRangeBeforeWriting() throws {
    let data = try TinyData(trainLabel: { $0 == 4 ? 200 : 1 })
    let out = data.path + "/run"
    let message = failure(["train", "--data", data.path, "--out", out] + Self.fast)
    #expect(
      message
        == "\(data.path)/train-labels-idx1-ubyte holds label 200 at index 4; labels must be in"
        + " 0..<10, one per class.")
    #expect(!exists(out))
  }

  @Test func evaluateAndRasterRefuseLabelsOutOfRange() throws {
    let good = try TinyData()
    let checkpoint = try trainedCheckpoint(good)
    let bad = try TinyData(testLabel: { $0 == 7 ? 10 : 0 })
    let want =
      "\(bad.path)/t10k-labels-idx1-ubyte holds label 10 at index 7; labels must be in 0..<10,"
      + " one per class."
    #expect(failure(["evaluate", "--checkpoint", checkpoint, "--data", bad.path]) == want)
    let svg = bad.path + "/r.svg"
    #expect(
      failure(["raster", "--checkpoint", checkpoint, "--data", bad.path, "-o", svg]) == want)
    #expect(!exists(svg))
  }

  // MARK: 3. empty data sets, count mismatch

  @Test func emptyTrainingSetIsRefusedBeforeWriting() throws {
    let data = try TinyData(train: 0)
    let out = data.path + "/run"
    #expect(
      failure(["train", "--data", data.path, "--out", out] + Self.fast)
        == "\(data.path)/train-images-idx3-ubyte[.gz] holds no images; soma train needs at"
        + " least one to learn from")
    #expect(!exists(out))
  }

  @Test func emptyTestSetIsRefused() throws {
    let data = try TinyData(test: 0)
    let out = data.path + "/run"
    #expect(
      failure(["train", "--data", data.path, "--out", out] + Self.fast)
        == "\(data.path)/t10k-images-idx3-ubyte[.gz] holds no images; soma train tests on them"
        + " after every epoch")
    #expect(!exists(out))

    let good = try TinyData()
    let checkpoint = try trainedCheckpoint(good)
    let want = "\(data.path)/t10k-images-idx3-ubyte[.gz] holds no images; soma needs at least one"
    #expect(failure(["evaluate", "--checkpoint", checkpoint, "--data", data.path]) == want)
    #expect(
      failure(["raster", "--checkpoint", checkpoint, "--data", data.path, "-o", out + ".svg"])
        == want)
  }

  @Test func imageAndLabelCountsMustAgree() throws {
    let data = try TinyData(train: 30, trainLabelCount: 29)
    let out = data.path + "/run"
    #expect(
      failure(["train", "--data", data.path, "--out", out] + Self.fast)
        == "\(data.path)/train-labels-idx1-ubyte holds 29 labels but"
        + " \(data.path)/train-images-idx3-ubyte holds 30 images.")
    #expect(!exists(out))
  }

  // MARK: 4. checkpoint metadata and weights

  @Test func checkpointSizesObeyTrainsLimits() throws {
    let data = try TinyData()
    let checkpoint = try trainedCheckpoint(data)
    let steps = try editedCheckpoint(
      checkpoint, "t.safetensors", metadata: ["time_steps": "100000000"])
    let want =
      "checkpoint \(steps) records time_steps = 100000000, outside 1...1000 (the range of soma"
      + " train's --time-steps); it cannot be loaded"
    #expect(failure(["evaluate", "--checkpoint", steps, "--data", data.path]) == want)
    #expect(
      failure(["raster", "--checkpoint", steps, "--data", data.path, "-o", data.path + "/r.svg"])
        == want)

    let hidden = try editedCheckpoint(checkpoint, "h.safetensors", metadata: ["hidden": "10001"])
    #expect(
      failure(["evaluate", "--checkpoint", hidden, "--data", data.path])
        == "checkpoint \(hidden) records hidden = 10001, outside 1...10000 (the range of soma"
        + " train's --hidden); it cannot be loaded")

    // The flags and the loader share one set of limits.
    #expect(
      failure(["train", "--time-steps", "1001"]) == "--time-steps must be in 1...1000, got 1001")
    #expect(failure(["train", "--hidden", "10001"]) == "--hidden must be in 1...10000, got 10001")
    #expect(ModelLimits.violation(hidden: 10_000, timeSteps: 1000) == nil)

    let tau = try editedCheckpoint(checkpoint, "tau.safetensors", metadata: ["tau_mem": "inf"])
    #expect(
      failure(["evaluate", "--checkpoint", tau, "--data", data.path])
        == "checkpoint \(tau) has no valid 'tau_mem' in its metadata (it holds 'inf'); was it"
        + " written by soma train?")
  }

  @Test func nonFiniteWeightsAreRefused() throws {
    let data = try TinyData()
    let checkpoint = try trainedCheckpoint(data)
    let nan = try editedCheckpoint(checkpoint, "nan.safetensors") { _, w2 in w2[scalarAt: 1, 2] = .nan }
    #expect(
      failure(["evaluate", "--checkpoint", nan, "--data", data.path])
        == "checkpoint \(nan) holds a NaN or infinite value in 2.weight; it cannot be"
        + " evaluated")
  }

  @Test func outputsMustMatchTheClasses() throws {
    let data = try TinyData()
    let checkpoint = try trainedCheckpoint(data)
    let twelve = try editedCheckpoint(checkpoint, "12.safetensors", metadata: ["outputs": "12"]) {
      _, w2 in w2 = Tensor<Float>.zeros([12, 4])
    }
    let want =
      "checkpoint \(twelve) has 12 outputs but the data in \(data.path) has 10 classes; soma"
      + " needs one output per class"
    #expect(failure(["evaluate", "--checkpoint", twelve, "--data", data.path]) == want)
    #expect(
      failure(["raster", "--checkpoint", twelve, "--data", data.path, "-o", data.path + "/r.svg"])
        == want)
  }

  // MARK: 5. output paths

  @Test func rasterOutputPathProblemsAreOneSentence() throws {
    let data = try TinyData()
    let checkpoint = try trainedCheckpoint(data)
    let base = ["raster", "--checkpoint", checkpoint, "--data", data.path, "-o"]
    let dir = data.path + "/dir"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    #expect(
      failure(base + [dir + "/"]) == "\(dir)/ names a directory, not a file (give a file name).")
    #expect(failure(base + [dir]) == "\(dir) is a directory, not a file.")
    #expect(
      failure(base + [data.path + "/missing/r.svg"])
        == "\(data.path)/missing/r.svg cannot be written: the directory \(data.path)/missing does"
        + " not exist.")
    #expect(
      failure(base + [checkpoint + "/r.svg"])
        == "\(checkpoint)/r.svg cannot be written: \(checkpoint) is not a directory.")
    #if os(Linux)
      #expect(
        failure(base + ["/proc/soma-test.svg"])
          == "/proc/soma-test.svg cannot be written: the directory /proc does not accept new"
          + " files (is it on a special file system such as /proc?).")
      #expect(
        failure(base + ["/dev/null"])
          == "/dev/null is not a regular file (a device, pipe or socket); Soma only writes"
          + " regular files.")
    #endif
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
  }

  @Test func surrogatePlotOutputPathProblemsAreOneSentence() throws {
    let dir = NSTemporaryDirectory() + "soma-plot-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func saveError(_ output: String) throws -> String? {
      let c = try parseSurrogate(["plot", "s2nn", "-o", output], as: SurrogatePlotCommand.self)
      do throws(SurrogateInputError) {
        try c.save(try c.render())
        return nil
      } catch {
        return error.description
      }
    }
    #expect(try saveError(dir + "/") == "\(dir)/ names a directory, not a file (give a file name).")
    #expect(try saveError(dir) == "\(dir) is a directory, not a file.")
    #expect(
      try saveError(dir + "/no/p.svg")
        == "\(dir)/no/p.svg cannot be written: the directory \(dir)/no does not exist.")
    #expect(try saveError(dir + "/p.svg") == nil)
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["p.svg"])
  }

  @Test func trainOutputPathProblemsAreOneSentence() throws {
    let data = try TinyData()
    let file = data.path + "/train-images-idx3-ubyte"
    let base = ["train", "--data", data.path] + Self.fast + ["--out"]
    #expect(
      failure(base + [file])
        == "the output directory \(file) is a file, not a directory; choose another --out")
    #expect(
      failure(base + [file + "/run"])
        == "cannot create the output directory \(file)/run: \(file) is a file")
    #expect(failure(base + [""]) == "--out needs a directory name")
    let out = data.path + "/run"
    try FileManager.default.createDirectory(
      atPath: out + "/best.safetensors", withIntermediateDirectories: true)
    #expect(
      failure(base + [out]) == "\(out)/best.safetensors is a directory, not a file.")
  }

  // MARK: 6. an output directory that already holds a run

  @Test func secondRunIntoTheSameDirectoryIsRefused() throws {
    let data = try TinyData()
    let out = data.path + "/run"
    // An existing empty directory is fine.
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    try soma(["train", "--data", data.path, "--out", out] + Self.fast)
    let first = try Data(contentsOf: URL(fileURLWithPath: out + "/final.safetensors"))
    #expect(
      failure(["train", "--data", data.path, "--out", out, "--seed", "5"] + Self.fast)
        == "the output directory \(out) already holds a training run (final.safetensors,"
        + " best.safetensors, metrics.csv, curves.svg); choose another --out, or pass"
        + " --overwrite to replace that run")
    #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/final.safetensors")) == first)

    // --overwrite replaces the run, leftovers of the earlier one included.
    try Data("epoch,train_loss\n99,1\n".utf8).write(to: URL(fileURLWithPath: out + "/metrics.csv"))
    try FileManager.default.removeItem(atPath: out + "/final.safetensors")
    try soma(["train", "--data", data.path, "--out", out, "--seed", "5", "--overwrite"] + Self.fast)
    #expect(try MetricsLog.read(out + "/metrics.csv").map(\.epoch) == [1])
    #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/final.safetensors")) != first)
    let help = TrainCommand.helpMessage()
    #expect(help.contains("--overwrite") && help.contains("already holds"))
  }

  // MARK: 7. temporaries of killed runs

  @Test func trainingRemovesTemporariesOfDeadRuns() throws {
    let data = try TinyData()
    let out = data.path + "/run"
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let dead = try reapedChildPID()
    let stale = ".final.safetensors.tmp-\(dead)-1x2y3z"
    try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: out + "/" + stale))
    try soma(["train", "--data", data.path, "--out", out] + Self.fast)
    #expect(!exists(out + "/" + stale))
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        == ["best.safetensors", "curves.svg", "final.safetensors", "metrics.csv"])
  }
}
