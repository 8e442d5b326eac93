import ArgumentParser
import Foundation
import SomaData
import SomaNN

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

/// A checkpoint rebuilt as a network with its recorded configuration and surrogate.
struct LoadedModel {
  let config: ModelConfig
  let w1: Tensor<Float>
  let w2: Tensor<Float>
  let surrogate: any SurrogateGradient
  /// The checkpoint file, for messages.
  let path: String
  let threads: Int

  init(path: String, threads: Int) throws {
    let c = try ModelCheckpoint.load(path)
    config = c.config
    w1 = c.w1
    w2 = c.w2
    surrogate = try SurrogateSpec(
      parsing: c.config.surrogate, source: "checkpoint \(path)'s surrogate"
    ).make()
    self.path = path
    self.threads = threads
  }

  /// Checks that `split`, the test split read from `data`, suits the network: at least one
  /// image, as many pixels per image as the network has inputs, and one output per class.
  func check(against split: LabeledImages, data: String) throws {
    guard split.count > 0 else {
      throw CLIError(
        "\(joinPath(data, "t10k-images-idx3-ubyte"))[.gz] holds no images; soma needs at least one")
    }
    guard split.featureCount == config.inputs else {
      throw CLIError(
        "checkpoint \(path) expects \(config.inputs) inputs but the images in \(data) have"
          + " \(split.featureCount) pixels (\(split.rows)×\(split.columns))")
    }
    guard config.outputs == FashionMNIST.classCount else {
      throw CLIError(
        "checkpoint \(path) has \(config.outputs) outputs but the data in \(data) has"
          + " \(FashionMNIST.classCount) classes; soma needs one output per class")
    }
  }

  struct Evaluation: SurrogateVisitor {
    let model: LoadedModel
    let split: LabeledImages
    func visit<S: SurrogateGradient>(_ s: S) throws -> (accuracy: Double, confusion: [[Int]]) {
      let net = try model.network(s)
      let coder = LatencyEventCoder(
        timeSteps: model.config.timeSteps, encoder: LatencyEncoder(timeSteps: model.config.timeSteps))
      return Trainer.accuracy(net, split: split, coder: coder, timeSteps: model.config.timeSteps)
    }
  }

  func evaluate(_ split: LabeledImages) throws -> (accuracy: Double, confusion: [[Int]]) {
    try withConcreteSurrogate(surrogate, Evaluation(model: self, split: split))
  }

  func network<S: SurrogateGradient>(_ s: S) throws -> CurrentBasedSNN<Float, S> {
    let net: CurrentBasedSNN<Float, S>
    do {
      net = try CurrentBasedSNN<Float, S>(
        inputs: config.inputs, hidden: config.hidden, outputs: config.outputs,
        tauSyn: config.tauSyn, tauMem: config.tauMem, surrogate: s)
    } catch { throw CLIError("checkpoint configuration is invalid: \(error)") }
    net.w1 = w1
    net.w2 = w2
    net.threads = threads
    return net
  }
}
