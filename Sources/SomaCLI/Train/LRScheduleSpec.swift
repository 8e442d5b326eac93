import SomaNN

/// `soma train --lr-schedule`: `constant`, `cosine[:min=LR]` (cosine annealing from --lr to min,
/// default 0, over all steps) or `step[:every=EPOCHS,gamma=G]` (×gamma every `every` epochs,
/// default 10 and 0.1). The rate is set before every step.
enum LRScheduleSpec: Equatable, CustomStringConvertible {
  case constant
  case cosine(minimum: Double)
  case step(everyEpochs: Int, gamma: Double)

  init(parsing text: String) throws {
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    var params: [String: Double] = [:]
    if parts.count == 2 {
      for item in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
        let kv = item.split(separator: "=", maxSplits: 1)
        guard kv.count == 2, let value = Double(kv[1]), value.isFinite, value >= 0 else {
          throw CLIError("--lr-schedule parameter '\(item)' is not KEY=NUMBER ≥ 0 (e.g. min=1e-5)")
        }
        params[String(kv[0])] = value
      }
    }
    func take(_ allowed: Set<String>) throws {
      if let bad = params.keys.first(where: { !allowed.contains($0) }) {
        throw CLIError("--lr-schedule \(parts[0]) has no parameter '\(bad)'")
      }
    }
    switch parts[0].lowercased() {
    case "constant":
      try take([])
      self = .constant
    case "cosine":
      try take(["min"])
      self = .cosine(minimum: params["min"] ?? 0)
    case "step":
      try take(["every", "gamma"])
      let every = params["every"] ?? 10
      guard every >= 1, every == every.rounded(), every <= 1e6 else {
        throw CLIError("--lr-schedule step: every must be a whole number of epochs ≥ 1")
      }
      self = .step(everyEpochs: Int(every), gamma: params["gamma"] ?? 0.1)
    default:
      throw CLIError("--lr-schedule must be constant, cosine[:min=LR] or step[:every=EPOCHS,gamma=G], got '\(text)'")
    }
  }

  /// The learning rate before each step (0-based) of a run of `epochs` × `stepsPerEpoch` steps.
  func schedule(lr: Double, epochs: Int, stepsPerEpoch: Int) -> any LearningRateSchedule {
    switch self {
    case .constant: StepDecay(initial: lr, stepSize: Int.max, gamma: 1)
    case .cosine(let minimum):
      CosineAnnealing(initial: lr, totalSteps: Swift.max(1, epochs * stepsPerEpoch), minimum: minimum)
    case .step(let every, let gamma): StepDecay(initial: lr, stepSize: every * stepsPerEpoch, gamma: gamma)
    }
  }

  var description: String {
    switch self {
    case .constant: "constant"
    case .cosine(let minimum): minimum == 0 ? "cosine" : "cosine:min=\(minimum)"
    case .step(let every, let gamma): "step:every=\(every),gamma=\(gamma)"
    }
  }
}
