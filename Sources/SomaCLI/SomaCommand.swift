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
