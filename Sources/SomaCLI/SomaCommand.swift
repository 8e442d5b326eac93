import ArgumentParser
import Synchronization

/// The `soma` command-line tool.
public struct SomaCommand: ParsableCommand {
  public static let version = "0.1.0"

  public static let configuration = CommandConfiguration(
    commandName: "soma",
    abstract: "Build and train spiking neural networks on the CPU.",
    version: version,
    subcommands: [
      InfoCommand.self,
      SurrogateCommand.self,
      TrainCommand.self,
      EvaluateCommand.self,
      RasterCommand.self,
      BenchCommand.self,
      ExportCommand.self,
      ImportCommand.self,
      ImportChildCommand.self,
    ]
  )

  public init() {}
}

extension SomaCommand {
  private static let childReads = Atomic<Bool>(false)

  /// Makes `soma import` read NIR files in a child process running this executable (the
  /// hidden `import-child` command). The `soma` binary calls it first thing; a process that
  /// runs the commands in-process without it (the tests) reads them itself, as it cannot run
  /// its own executable as `soma`.
  package static func readNIRFilesInChildProcess() {
    childReads.store(true, ordering: .relaxed)
  }

  /// Whether `readNIRFilesInChildProcess()` was called.
  package static var readsNIRFilesInChildProcess: Bool { childReads.load(ordering: .relaxed) }

  /// Runs `soma ARGS` in this process: the one line it prints when it fails, nil when it
  /// succeeds (how the tests drive the tool).
  package static func failureLine(_ args: [String]) -> String? {
    do {
      var command = try parseAsRoot(args)
      try command.run()
      return nil
    } catch {
      return message(for: error)
    }
  }
}
