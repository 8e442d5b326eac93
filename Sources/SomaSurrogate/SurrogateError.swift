/// Why a surrogate could not be built from user input (a hyperparameter out of its domain, an
/// unknown name or parameter). `description` is one sentence naming what was wrong and what is
/// accepted.
public enum SurrogateError: Error, Equatable, CustomStringConvertible, Sendable {
  /// `parameter` of `surrogate` is outside its domain; `requirement` reads like "> 0".
  case invalidParameter(surrogate: String, parameter: String, requirement: String, value: Double)
  /// No surrogate is registered under `name`.
  case unknownSurrogate(name: String, known: [String])
  /// `surrogate` has no parameter called `parameter`.
  case unknownParameter(surrogate: String, parameter: String, accepted: [String])

  public var description: String {
    switch self {
    case .invalidParameter(let surrogate, let parameter, let requirement, let value):
      return "\(surrogate): \(parameter) must be \(requirement), got \(formatNumber(value))"
    case .unknownSurrogate(let name, let known):
      return "unknown surrogate '\(name)'; known: \(known.joined(separator: ", "))"
    case .unknownParameter(let surrogate, let parameter, let accepted):
      let list = accepted.isEmpty ? "none" : accepted.joined(separator: ", ")
      return "\(surrogate) has no parameter '\(parameter)'; accepted: \(list)"
    }
  }
}

/// Prints `v` as its shortest round-trip decimal, without a trailing ".0" for integers.
@usableFromInline
func formatNumber(_ v: Double) -> String {
  if v.isFinite, v == v.rounded(), Swift.abs(v) < 1e15 { return String(Int64(v)) }
  return v.description
}

/// Domain checks used by the initialisers.
@usableFromInline
enum Check {
  @usableFromInline
  static func positive(_ v: Double, _ p: String, _ s: String) throws(SurrogateError) {
    guard v.isFinite, v > 0 else {
      throw .invalidParameter(surrogate: s, parameter: p, requirement: "> 0", value: v)
    }
  }

  @usableFromInline
  static func nonNegative(_ v: Double, _ p: String, _ s: String) throws(SurrogateError) {
    guard v.isFinite, v >= 0 else {
      throw .invalidParameter(surrogate: s, parameter: p, requirement: "≥ 0", value: v)
    }
  }

  @usableFromInline
  static func finite(_ v: Double, _ p: String, _ s: String) throws(SurrogateError) {
    guard v.isFinite else {
      throw .invalidParameter(surrogate: s, parameter: p, requirement: "finite", value: v)
    }
  }
}
