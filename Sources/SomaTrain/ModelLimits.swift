/// The model sizes soma accepts, in one place: `soma train` checks its flags against them and
/// checkpoint loading checks a file's metadata against them, so `soma evaluate` and `soma
/// raster` never build (or allocate for) a network that `soma train` could not have made.
package enum ModelLimits {
  /// One bounded hyperparameter: its flag, its checkpoint metadata key and its range.
  package struct Limit: Equatable {
    package let flag: String
    package let key: String
    package let range: ClosedRange<Int>
  }

  package static let hidden = Limit(flag: "--hidden", key: "hidden", range: 1...10_000)
  package static let timeSteps = Limit(flag: "--time-steps", key: "time_steps", range: 1...1000)

  /// The first limit that `hidden` or `timeSteps` breaks, with the offending value; nil when
  /// both are within range.
  package static func violation(hidden: Int, timeSteps: Int) -> (limit: Limit, value: Int)? {
    for (limit, value) in [(Self.hidden, hidden), (Self.timeSteps, timeSteps)]
    where !limit.range.contains(value) {
      return (limit, value)
    }
    return nil
  }

  /// The sentence `soma train` prints for a flag out of range.
  package static func flagMessage(_ limit: Limit, _ value: Int) -> String {
    "\(limit.flag) must be in \(limit.range), got \(value)"
  }

  /// The sentence checkpoint loading prints for metadata out of range.
  package static func checkpointMessage(_ limit: Limit, _ value: Int, path: String) -> String {
    "checkpoint \(path) records \(limit.key) = \(value), outside \(limit.range) (the range of"
      + " soma train's \(limit.flag)); it cannot be loaded"
  }
}
