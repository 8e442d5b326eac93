import ArgumentParser
internal import COpenBLAS

/// `soma info`: what OpenBLAS this build runs on.
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Print the OpenBLAS build configuration, core type and threads.")

  func run() throws {
    print(BLASInfo.describe())
  }
}

/// Facts about the linked OpenBLAS.
public enum BLASInfo {
  /// The build configuration string, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell".
  public static var config: String { String(cString: openblas_get_config()) }
  /// The kernel family in use (honours OPENBLAS_CORETYPE).
  public static var coreName: String { String(cString: openblas_get_corename()) }
  /// OpenBLAS's thread count.
  public static var threads: Int { Int(openblas_get_num_threads()) }
  /// Sets OpenBLAS's thread count.
  public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

  public static func describe() -> String {
    """
    soma \(SomaCommand.version)
    OpenBLAS config: \(config)
    core type:       \(coreName)
    threads:         \(threads)
    """
  }
}
