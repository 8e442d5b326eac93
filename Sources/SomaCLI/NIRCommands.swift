import ArgumentParser
import Foundation
import SomaData
import SomaNIR
import SomaNN
import SomaTrain

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

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
///
/// The `soma` tool reads the NIR file in a child process (this binary again, running the hidden
/// `import-child` command) and writes the checkpoint it hands back: libhdf5 1.10 can crash or
/// loop forever on a damaged file (docs/NIR.md), and that must cost one sentence, not the tool.
/// Run in-process (the tests, `SomaCommand.failureLine`) it reads the file itself.
struct ImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Build a Soma network from a NIR file and write it as a checkpoint.",
    discussion: """
      NIR time constants become per-step decays with beta = 1 - dt / tau (forward Euler). Pass the
      dt the exporting tool simulated with: snnTorch's exporter assumes 1e-4 s, Norse's 1e-3 s.
      The file is read in a separate process, so a damaged file that crashes or hangs the HDF5
      library ends in one error line; reading is stopped after --read-timeout seconds.
      """)

  /// How long `soma import` lets the child read a file of `bytes` bytes, unless --read-timeout
  /// says otherwise: 60 s plus 1 s per 2 MiB. A small file libhdf5 loops on is stopped within a
  /// minute; a 122 MB file (two 4096 × 4096 layers), which a debug build on a 2-core VM reads
  /// in 18 s, gets 118 s, and the largest file Soma reads (1 GiB) 572 s.
  static func defaultReadTimeout(bytes: Int) -> Double {
    60 + Double(max(bytes, 0)) / Double(1 << 21)
  }

  @Argument(help: "The NIR file to read.") var file: String
  @Option(name: .shortAndLong, help: "The .safetensors checkpoint to write.") var output: String
  @Option(help: "The simulation step in seconds.") var dt = 1e-4
  @Option(help: "The surrogate gradient for neurons whose node does not name one.")
  var surrogate = "S2NN"
  @Option(help: "Time steps per sample to record in the checkpoint.") var timeSteps = 100
  @Option(
    help: "Seconds to let reading the file take before stopping it (default: 60 plus 1 per 2 MiB).")
  var readTimeout: Double?

  func validate() throws {
    guard !file.isEmpty else { throw ValidationError("the NIR file needs a name") }
    guard !output.isEmpty else { throw ValidationError("-o/--output needs a file name") }
    guard dt > 0, dt.isFinite else { throw ValidationError("--dt must be > 0 seconds, got \(dt)") }
    guard timeSteps >= 1 && timeSteps <= 100_000 else {
      throw ValidationError("--time-steps must be in 1...100000, got \(timeSteps)")
    }
    if let readTimeout, !(readTimeout > 0 && readTimeout <= 86_400) {
      throw ValidationError("--read-timeout must be in (0, 86400] seconds, got \(readTimeout)")
    }
    guard output != file else { throw ValidationError("-o/--output must differ from the NIR file") }
  }

  func run() throws {
    // A destination that cannot be written fails before the file is read.
    do { _ = try AtomicFile.checkDestination(output) } catch { throw CLIError("\(error)") }
    let converted =
      SomaCommand.readsNIRFilesInChildProcess
      ? try convertInChildProcess()
      : try Self.convert(file, dt: dt, surrogate: surrogate, timeSteps: timeSteps)
    do { try AtomicFile.write(converted.checkpoint, to: output) } catch {
      throw CLIError("\(error)")
    }
    print("wrote \(output): \(converted.layers), dt \(dt) s")
  }

  /// Reads the NIR file at `file` in this process and returns the checkpoint's bytes and its
  /// layer types ("Linear → LIF").
  static func convert(_ file: String, dt: Double, surrogate: String, timeSteps: Int) throws
    -> (checkpoint: [UInt8], layers: String)
  {
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
    let bytes = Checkpoint.encode(
      network, loss: loss, timeSteps: timeSteps, model: "nir",
      extra: ["nir_source": name, "nir_dt": "\(dt)"])
    let types = network.layers.map { "\(type(of: $0.base))".prefix { $0 != "<" } }
    return (bytes, types.joined(separator: " → "))
  }

  /// `convert` in a child process, with the child's failures as one sentence each.
  func convertInChildProcess() throws -> (checkpoint: [UInt8], layers: String) {
    // A file that cannot be examined gets the small-file limit; the child then says what is
    // wrong with it.
    let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
    let readTimeout = self.readTimeout ?? Self.defaultReadTimeout(bytes: size)
    let result = try ChildProcess.run(
      ChildProcess.selfExecutable, name: "soma",
      arguments: [
        // "=" and "--" keep values and file names that start with "-" from reading as options.
        ImportChildCommand.configuration.commandName!, "--dt=\(dt)", "--surrogate=\(surrogate)",
        "--time-steps=\(timeSteps)", "--read-timeout=\(readTimeout)", "--", file,
      ],
      outputs: [ImportChildCommand.checkpointDescriptor], timeLimit: readTimeout)
    let text = String(decoding: result.stdout.prefix(4096), as: UTF8.self)
    let damaged = "the file is damaged or not a NIR file"
    switch result.ending {
    case .exited(0):
      return (result.files[ImportChildCommand.checkpointDescriptor] ?? [], text)
    case .exited(ImportChildCommand.failureStatus) where !text.isEmpty:
      throw CLIError(text)  // the child's own sentence, as in-process reading gives it
    case .exited(let status):
      throw CLIError(
        "\(file): the process reading it failed (exit status \(status)); \(damaged)")
    case .signaled(let signal) where ChildProcess.crashSignals.contains(signal):
      throw CLIError(
        "\(file): the HDF5 library crashed while reading it (signal \(signal),"
          + " \(ChildProcess.signalName(signal))); \(damaged)")
    case .signaled(let signal):
      throw CLIError(
        "\(file): the process reading it was stopped by signal \(signal)"
          + " (\(ChildProcess.signalName(signal)))")
    case .timedOut:
      throw CLIError(
        "\(file): reading it took more than \(seconds(readTimeout)) s, so soma stopped it; the"
          + " file is damaged (the HDF5 library can loop forever on one) or needs a longer"
          + " --read-timeout")
    }
  }

  /// `t` to a tenth, without a fraction when that is whole (60, not 60.0 or 60.0134).
  func seconds(_ t: Double) -> String {
    let tenths = (t * 10).rounded() / 10
    return tenths == tenths.rounded() ? "\(Int(tenths))" : "\(tenths)"
  }
}

/// `soma import`'s reading half, run in the child process that `soma import` starts (hidden:
/// not for users). It reads the NIR file, writes the checkpoint's bytes to descriptor 3 and the
/// layer types to stdout, and exits 0; or writes the one-sentence error to stdout and exits
/// with `failureStatus`. It leaves with `_exit`, so nothing that runs at exit (a sanitizer's
/// leak check of libhdf5's own leaks) can change the status the parent reads.
struct ImportChildCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import-child", abstract: "soma import's file reader (internal).",
    shouldDisplay: false)

  /// Where the checkpoint's bytes go.
  static let checkpointDescriptor: Int32 = 3
  /// The exit status that says stdout holds the error sentence.
  static let failureStatus: Int32 = 3

  @Argument var file: String
  @Option var dt: Double
  @Option var surrogate: String
  @Option var timeSteps: Int
  @Option var readTimeout: Double

  func validate() throws {
    guard readTimeout > 0 && readTimeout <= 86_400 else {
      throw ValidationError("--read-timeout must be in (0, 86400] seconds, got \(readTimeout)")
    }
  }

  func run() throws {
    var st = stat()
    guard fstat(Self.checkpointDescriptor, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
      throw CLIError("soma import-child only runs inside soma import; run soma import instead")
    }
    // A backstop for a child whose parent is gone: the parent kills it at the time limit.
    alarm(UInt32(readTimeout.rounded(.up)) + 10)
    do {
      let converted = try ImportCommand.convert(
        file, dt: dt, surrogate: surrogate, timeSteps: timeSteps)
      guard ChildProcess.writeAll(1, Array(converted.layers.utf8)),
        ChildProcess.writeAll(Self.checkpointDescriptor, converted.checkpoint)
      else {
        let e = errno
        _ = ftruncate(1, 0)
        _ = lseek(1, 0, SEEK_SET)
        _ = ChildProcess.writeAll(
          1,
          Array(
            ("soma import cannot pass the network read from \(file) back through a temporary"
              + " file in \(NSTemporaryDirectory()): \(String(cString: strerror(e)))").utf8))
        _exit(Self.failureStatus)
      }
      _exit(0)
    } catch {
      _ = ChildProcess.writeAll(1, Array(SomaCommand.message(for: error).utf8))
      _exit(Self.failureStatus)
    }
  }
}
