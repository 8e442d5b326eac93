/// A failure of training, checkpoint loading or their input, as one sentence that names the file
/// or value (`soma` prints it as its one-line error and exits 1).
public struct TrainError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
