/// A user-facing failure: ArgumentParser prints its description as one line and exits 1.
struct CLIError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
