import ArgumentParser
import Foundation
import SomaData
import SomaNN

/// `soma train`: trains the SpyTorch Fashion-MNIST network (shared/BENCHMARKS.md
/// `fmnist-spytorch`) with a surrogate gradient, S2NN by default.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a spiking network on Fashion-MNIST (or MNIST with --data).",
    discussion: """
      The default network is SpyTorch's 784-100-10 current-based LIF network with latency-coded \
      input (T = 100), a max-over-time membrane readout and Adam, trained with the S2NN \
      surrogate. Writes final.safetensors, best.safetensors, metrics.csv and curves.svg to --out.

      --out must be a new directory, an empty one, or one without an earlier run: a directory \
      that already holds final.safetensors, best.safetensors, metrics.csv or curves.svg is \
      refused, so a second run never overwrites the first by accident. Pass --overwrite to \
      delete those files and train there anyway, or choose another --out.
      """)

  @Option(help: "Passes over the training set.") var epochs = 30
  @Option(name: .customLong("batch-size"), help: "Samples per step.") var batchSize = 256
  @Option(help: "Adam learning rate (default 1e-3 with S2NN, 2e-4, SpyTorch's, otherwise).")
  var lr: Double?
  @Option(help: "Seed for initialisation and shuffling.") var seed: UInt64 = 0
  @Option(help: "Threads for Soma's parallel loops (OpenBLAS runs single-threaded inside them).")
  var threads = 2
  @Option(help: "Hidden neurons.") var hidden = 100
  @Option(name: .customLong("time-steps"), help: "Simulation steps T per sample.") var timeSteps = 100
  @Option(help: "Surrogate NAME[:key=value,...], e.g. S2NN or InvSquareGrad:alpha=100.")
  var surrogate = TrainCommand.defaultSurrogate
  @Option(help: "Network: mlp (784-H-10 current-based LIF, max-membrane readout).")
  var model = "mlp"
  @Option(help: "Directory with the IDX files (train-images-idx3-ubyte[.gz], …).")
  var data = FashionMNIST.defaultDirectory
  @Option(help: "Output directory (default runs/<timestamp>); must not hold an earlier run.")
  var out: String?
  @Flag(help: "Replace the earlier run in --out (its checkpoints, metrics.csv and curves.svg).")
  var overwrite = false

  static let defaultSurrogate = "S2NN"
  /// SpyTorch's learning rate, used with its own surrogate and any other non-S2NN one.
  static let spyTorchLearningRate = 2e-4
  /// Measured over 30 epochs with S2NN (see README): lr 2e-4 peaked at 86.0 % (epoch 22),
  /// 5e-4 first passed 86 % at epoch 12, 1e-3 at epoch 7 and held ≥ 86 % in 22 of 30 epochs.
  static let s2nnLearningRate = 1e-3

  /// The learning rate for `surrogate` when --lr is not given.
  static func defaultLearningRate(for surrogate: any SurrogateGradient) -> Double {
    type(of: surrogate).name == "S2NN" ? s2nnLearningRate : spyTorchLearningRate
  }

  func validate() throws {
    guard epochs >= 1 else { throw ValidationError("--epochs must be ≥ 1, got \(epochs)") }
    guard batchSize >= 1 && batchSize <= 60_000 else {
      throw ValidationError("--batch-size must be in 1...60000, got \(batchSize)")
    }
    if let lr, !(lr > 0 && lr.isFinite && lr < 1) {
      throw ValidationError("--lr must be in (0, 1), got \(lr)")
    }
    guard threads >= 1 && threads <= 64 else {
      throw ValidationError("--threads must be in 1...64, got \(threads)")
    }
    if let bad = ModelLimits.violation(hidden: hidden, timeSteps: timeSteps) {
      throw ValidationError(ModelLimits.flagMessage(bad.limit, bad.value))
    }
    guard !data.isEmpty else { throw ValidationError("--data needs a directory name") }
    if let out, out.isEmpty { throw ValidationError("--out needs a directory name") }
    guard model == "mlp" else {
      throw ValidationError("--model must be 'mlp', got '\(model)'")
    }
  }

  func run() throws {
    let spec = try SurrogateSpec(parsing: surrogate)
    let s = try spec.make()
    // The network splits its own loops over --threads; OpenBLAS stays at one thread so the
    // two never oversubscribe the cores.
    BLASInfo.setThreads(1)
    let dataset: FashionMNIST
    do { dataset = try FashionMNIST(directory: data) } catch { throw CLIError("\(error)") }
    let outDir = out ?? "runs/" + Self.timestamp()
    var o = options
    o.lr = lr ?? Self.defaultLearningRate(for: s)
    let trainer = try Trainer(surrogate: s, options: o, dataset: dataset, outDir: outDir)
    installInterruptHandler()
    try trainer.run()
  }

  var options: TrainOptions {
    TrainOptions(
      epochs: epochs, batchSize: batchSize, lr: lr ?? Self.spyTorchLearningRate, seed: seed,
      threads: threads, hidden: hidden, timeSteps: timeSteps, overwrite: overwrite)
  }

  static func timestamp() -> String {
    let f = DateFormatter()
    f.dateFormat = "yyyyMMdd-HHmmss"
    f.locale = Locale(identifier: "en_US_POSIX")
    return f.string(from: Date())
  }
}

struct TrainOptions {
  var epochs: Int
  var batchSize: Int
  var lr: Double
  var seed: UInt64
  var threads: Int
  var hidden: Int
  var timeSteps: Int
  /// Replace an earlier run in the output directory instead of refusing.
  var overwrite = false
}
