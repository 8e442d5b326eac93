/// A user-supplied value that Soma cannot use, with one sentence saying which and why.
public enum SomaNNError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A hyperparameter outside its allowed range, e.g. `LIF beta must be in [0, 1], got 1.5.`
  case invalidHyperparameter(layer: String, name: String, value: Double, allowed: String)
  /// Layer sizes a model cannot be built from, e.g.
  /// `Sequential layer sizes must be each Linear layer's input width equal to the width before it (6), got [8, 5].`
  case invalidSizes(model: String, sizes: [Int], allowed: String)

  public var description: String {
    switch self {
    case .invalidHyperparameter(let layer, let name, let value, let allowed):
      return "\(layer) \(name) must be \(allowed), got \(value)."
    case .invalidSizes(let model, let sizes, let allowed):
      return "\(model) layer sizes must be \(allowed), got \(sizes)."
    }
  }

  @usableFromInline
  static func checkUnitInterval(_ value: Double, _ name: String, layer: String) throws(SomaNNError)
  {
    guard value >= 0 && value <= 1 else {
      throw .invalidHyperparameter(layer: layer, name: name, value: value, allowed: "in [0, 1]")
    }
  }

  /// A value in [0, 1) (Adam's betas).
  @usableFromInline
  static func checkUnitIntervalOpen(_ value: Double, _ name: String, layer: String)
    throws(SomaNNError)
  {
    guard value >= 0 && value < 1 else {
      throw .invalidHyperparameter(layer: layer, name: name, value: value, allowed: "in [0, 1)")
    }
  }

  @usableFromInline
  static func checkPositive(_ value: Double, _ name: String, layer: String) throws(SomaNNError) {
    guard value > 0 && value.isFinite else {
      throw .invalidHyperparameter(
        layer: layer, name: name, value: value, allowed: value.isInfinite ? "finite and > 0" : "> 0")
    }
  }
}
