import ArgumentParser
import Foundation
import SomaNIR
import SomaNN
import SomaTrain

/// `soma export CHECKPOINT -o net.nir`: a checkpoint's network as a NIR graph.
struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write a checkpoint's network as a NIR file (HDF5) for other SNN tools.",
    discussion: """
      Soma's per-step decays become NIR time constants with tau = dt / (1 - beta) and r = tau / dt
      (forward Euler, as snnTorch and Norse simulate NIR). A layer that resets by subtraction is
      written as NIR's reset to 0 and a note says so, unless --strict-reset refuses it. A batch
      norm is folded into the Conv2d or Linear before it (running statistics). A network that
      starts with Conv2d or a pool and no Unflatten needs --input-shape C,H,W.
      """)

  @Argument(help: "A .safetensors checkpoint written by soma train or soma import.")
  var checkpoint: String
  @Option(name: .shortAndLong, help: "The NIR file to write.") var output: String
  @Option(help: "The simulation step in seconds (snnTorch assumes 1e-4, Norse 1e-3).")
  var dt = 1e-4
  @Flag(help: "Refuse layers that reset by subtraction instead of writing reset to 0.")
  var strictReset = false
  @Flag(help: "Write r = 1, as Norse reads NIR, with the input gain moved into the weights.")
  var unitResistance = false
  @Option(help: "One input sample's shape, e.g. 1,28,28, for a network that takes images.")
  var inputShape: String?

  /// `--input-shape` as sizes, nil when not given.
  func parsedInputShape() throws -> [Int]? {
    guard let inputShape else { return nil }
    let sizes = inputShape.split(separator: ",", omittingEmptySubsequences: false).map {
      Int($0.trimmingCharacters(in: .whitespaces))
    }
    guard !sizes.isEmpty, sizes.count <= 8, sizes.allSatisfy({ ($0 ?? 0) >= 1 }) else {
      throw ValidationError(
        "--input-shape must be sizes ≥ 1 separated by commas (e.g. 1,28,28), got '\(inputShape)'")
    }
    return sizes.map { $0! }
  }

  func validate() throws {
    guard !checkpoint.isEmpty else { throw ValidationError("the checkpoint needs a file name") }
    guard !output.isEmpty else { throw ValidationError("-o/--output needs a file name") }
    guard dt > 0, dt.isFinite else { throw ValidationError("--dt must be > 0 seconds, got \(dt)") }
    guard output != checkpoint else {
      throw ValidationError("-o/--output must differ from the checkpoint it reads")
    }
    _ = try parsedInputShape()
  }

  func run() throws {
    let loaded = try Checkpoint.load(checkpoint)
    let options = NIROptions(
      dt: dt, subtractReset: strictReset ? .refuse : .resetToZero,
      resistance: unitResistance ? .unitResistance : .unitGain, inputShape: try parsedInputShape())
    do {
      let export = try loaded.network.nirExport(options: options)
      try export.graph.write(to: output)
      for note in export.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
      let types = loaded.network.layers.map { "\(type(of: $0.base))".prefix { $0 != "<" } }
      print("wrote \(output): \(types.joined(separator: " → ")) as NIR, dt \(dt) s")
    } catch { throw CLIError("cannot export \(checkpoint): \(error)") }
  }
}

/// `soma import net.nir -o checkpoint.safetensors`: a NIR graph as a Soma checkpoint.
struct ImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Build a Soma network from a NIR file and write it as a checkpoint.",
    discussion: """
      NIR time constants become per-step decays with beta = 1 - dt / tau (forward Euler). Pass the
      dt the exporting tool simulated with: snnTorch's exporter assumes 1e-4 s, Norse's 1e-3 s.
      """)

  @Argument(help: "The NIR file to read.") var file: String
  @Option(name: .shortAndLong, help: "The .safetensors checkpoint to write.") var output: String
  @Option(help: "The simulation step in seconds.") var dt = 1e-4
  @Option(help: "The surrogate gradient for neurons whose node does not name one.")
  var surrogate = "S2NN"
  @Option(help: "Time steps per sample to record in the checkpoint.") var timeSteps = 100

  func validate() throws {
    guard !file.isEmpty else { throw ValidationError("the NIR file needs a name") }
    guard !output.isEmpty else { throw ValidationError("-o/--output needs a file name") }
    guard dt > 0, dt.isFinite else { throw ValidationError("--dt must be > 0 seconds, got \(dt)") }
    guard timeSteps >= 1 && timeSteps <= 100_000 else {
      throw ValidationError("--time-steps must be in 1...100000, got \(timeSteps)")
    }
    guard output != file else { throw ValidationError("-o/--output must differ from the NIR file") }
  }

  func run() throws {
    let options = NIROptions(dt: dt, surrogate: surrogate)
    let network: Sequential<Float>
    do { network = try Sequential<Float>(nirFile: file, options: options) } catch {
      throw CLIError("\(error)")
    }
    // A readout that does not spike is scored by its membrane; spiking outputs by their count.
    let loss: SpikingLoss =
      network.layers.last?.base is LeakyIntegrator
      ? .meanMembraneCrossEntropy : .spikeCountCrossEntropy
    do { _ = try network.compiled(loss: loss) } catch {
      throw CLIError("\(file) maps to layers that do not fit together: \(error)")
    }
    let name = (file as NSString).lastPathComponent
    try Checkpoint.write(
      network, loss: loss, timeSteps: timeSteps, model: "nir",
      extra: ["nir_source": name, "nir_dt": "\(dt)"], to: output)
    let types = network.layers.map { "\(type(of: $0.base))".prefix { $0 != "<" } }
    print("wrote \(output): \(types.joined(separator: " → ")), dt \(dt) s")
  }
}
