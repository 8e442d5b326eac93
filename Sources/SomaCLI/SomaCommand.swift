import ArgumentParser

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
    ]
  )

  public init() {}
}

extension SomaCommand {
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
