/// A NIR file or graph that Soma cannot read, write or map, as one sentence naming the file,
/// node or parameter (`soma import` and `soma export` print it as their one line of output).
///
/// ```swift
/// do {
///   _ = try NIRGraph.read("net.nir")
/// } catch {
///   print(error)  // "net.nir node 'conv1' is a Conv2d, which Soma cannot import yet; …"
/// }
/// ```
public struct NIRError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What went wrong, broadly.
  public enum Kind: Sendable, Equatable {
    /// The file is missing, unreadable, not HDF5, or cannot be written.
    case file
    /// The file is HDF5 but does not follow NIR's layout (missing or mistyped field, bad
    /// shape, dangling edge).
    case malformed
    /// A well-formed graph that has no Soma counterpart (a node type, a parameter value, a
    /// branching topology), or a Soma layer that has no NIR counterpart.
    case unsupported
  }

  public var kind: Kind
  /// One sentence saying what is wrong.
  public var description: String

  public init(_ kind: Kind, _ description: String) {
    self.kind = kind
    self.description = description
  }
}
