import ArgumentParser
import Foundation
import SomaData
import SomaNN
import SomaTrain

/// `soma evaluate --checkpoint FILE`: test accuracy and confusion matrix of a trained network.
struct EvaluateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "Print the test accuracy and confusion matrix of a checkpoint from soma train.")

  @Option(help: "A .safetensors checkpoint written by soma train.") var checkpoint: String
  @Option(help: "Directory with the IDX files.") var data = FashionMNIST.defaultDirectory
  @Option(help: "Threads for Soma's parallel loops (OpenBLAS runs single-threaded inside them).")
  var threads = 2

  func validate() throws {
    guard !checkpoint.isEmpty else { throw ValidationError("--checkpoint needs a file name") }
    guard !data.isEmpty else { throw ValidationError("--data needs a directory name") }
    guard threads >= 1 && threads <= 64 else {
      throw ValidationError("--threads must be in 1...64, got \(threads)")
    }
  }

  func run() throws {
    BLASInfo.setThreads(1)
    let loaded = try LoadedModel(path: checkpoint, threads: threads)
    let test: LabeledImages
    do { test = try FashionMNIST.readSplit("t10k", in: data) } catch { throw CLIError("\(error)") }
    try loaded.check(against: test, data: data)
    let result = try loaded.evaluate(test)
    print(String(format: "test accuracy: %.2f%% (%d images)", result.accuracy * 100, test.count))
    print(Self.confusionTable(result.confusion, names: FashionMNIST.classNames))
  }

  /// Rows: true class; columns: predicted class.
  static func confusionTable(_ m: [[Int]], names: [String]) -> String {
    let width = Swift.max(6, (m.flatMap { $0 }.max() ?? 0).description.count + 1)
    func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: Swift.max(0, w - s.count)) + s }
    let label = { (i: Int) -> String in i < names.count ? names[i] : "class \(i)" }
    let nameWidth = (0..<m.count).map { label($0).count }.max() ?? 8
    var lines = ["confusion matrix (rows: true class, columns: predicted class)"]
    lines.append(pad("", nameWidth) + (0..<m.count).map { pad("\($0)", width) }.joined())
    for (i, row) in m.enumerated() {
      lines.append(
        pad(label(i), nameWidth) + row.map { pad("\($0)", width) }.joined() + "   \(i)")
    }
    return lines.joined(separator: "\n")
  }
}

/// A checkpoint rebuilt as a network from its recorded layers (`Checkpoint.load`).
struct LoadedModel {
  let checkpoint: LoadedCheckpoint
  /// The checkpoint file, for messages.
  let path: String
  let threads: Int

  init(path: String, threads: Int) throws {
    checkpoint = try Checkpoint.load(path)
    self.path = path
    self.threads = threads
    guard ["latency", "DirectCurrentEncoder"].contains(checkpoint.encoder) else {
      throw CLIError(
        "checkpoint \(path) was trained on '\(checkpoint.encoder.prefix(40))' input; soma evaluate"
          + " and raster feed the latency code or direct input (DirectCurrentEncoder); load it"
          + " with SomaTrain's Checkpoint.load instead")
    }
  }

  /// The input coding the network was trained with: the latency code, or the image at every
  /// step (direct input, the csnn's).
  var encoding: InputEncoding {
    checkpoint.encoder == "latency"
      ? .latency(timeSteps: timeSteps) : .dense(DirectCurrentEncoder(timeSteps: timeSteps))
  }

  var timeSteps: Int { checkpoint.timeSteps }
  var inputs: Int { checkpoint.inputs }
  var outputs: Int { checkpoint.outputs }

  /// Checks that `split`, the test split read from `data`, suits the network: at least one
  /// image, as many pixels per image as the network has inputs, and one output per class.
  func check(against split: LabeledImages, data: String) throws {
    guard split.count > 0 else {
      throw CLIError(
        "\(joinPath(data, "t10k-images-idx3-ubyte"))[.gz] holds no images; soma needs at least one")
    }
    guard split.featureCount == inputs else {
      throw CLIError(
        "checkpoint \(path) expects \(inputs) inputs but the images in \(data) have"
          + " \(split.featureCount) pixels (\(split.rows)×\(split.columns))")
    }
    guard outputs == FashionMNIST.classCount else {
      throw CLIError(
        "checkpoint \(path) has \(outputs) outputs but the data in \(data) has"
          + " \(FashionMNIST.classCount) classes; soma needs one output per class")
    }
  }

  /// Accuracy and confusion matrix on `split`, as the training loop measures them.
  func evaluate(_ split: LabeledImages) throws -> (accuracy: Double, confusion: [[Int]]) {
    let model = try checkpoint.compiled(threads: threads)
    let e = Trainer.evaluate(
      model, on: split, encoding: encoding, threads: threads)
    return (e.accuracy, e.confusion)
  }
}
