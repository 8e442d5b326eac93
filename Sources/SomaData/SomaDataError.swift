/// An error reading or writing a data file: a dataset, a checkpoint, an array file.
///
/// Every case carries the file it is about and one sentence that says what is wrong, so a
/// command-line tool can print `error.description` as its single line of output:
///
/// ```swift
/// do {
///   _ = try FashionMNIST(directory: "/no/such/dir")
/// } catch let error as SomaDataError {
///   print(error)  // "The dataset directory /no/such/dir does not exist; install …"
/// }
/// ```
public struct SomaDataError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong, broadly; tests and callers can switch on it.
  public enum Kind: Sendable, Equatable {
    /// The file or directory does not exist.
    case missing
    /// The file exists but could not be read or written (permissions, I/O error).
    case io
    /// The file's contents do not follow its format (bad magic, truncated, inconsistent).
    case malformed
    /// The file is well formed but holds something Soma does not support (a dtype, an order).
    case unsupported
  }

  /// The broad kind of failure.
  public var kind: Kind
  /// The file or directory the error is about.
  public var path: String
  /// One sentence naming `path` and saying what is wrong.
  public var description: String

  public init(_ kind: Kind, path: String, _ description: String) {
    self.kind = kind
    self.path = path
    self.description = description
  }

  @usableFromInline
  static func malformed(_ path: String, _ what: String) -> SomaDataError {
    SomaDataError(.malformed, path: path, "\(path) is malformed: \(what).")
  }
}
