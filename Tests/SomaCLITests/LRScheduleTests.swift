import Testing

@testable import SomaCLI

/// `soma train --lr-schedule`: parsing and the rate at each step.
struct LRScheduleTests {
  @Test func parsesEachSchedule() throws {
    #expect(try LRScheduleSpec(parsing: "constant") == .constant)
    #expect(try LRScheduleSpec(parsing: "cosine") == .cosine(minimum: 0))
    #expect(try LRScheduleSpec(parsing: "Cosine:min=1e-5") == .cosine(minimum: 1e-5))
    #expect(try LRScheduleSpec(parsing: "step") == .step(everyEpochs: 10, gamma: 0.1))
    #expect(try LRScheduleSpec(parsing: "step:every=5,gamma=0.5") == .step(everyEpochs: 5, gamma: 0.5))
    for bad in ["", "linear", "cosine:min", "cosine:max=1", "step:every=0", "step:every=2.5", "constant:x=1", "step:gamma=-1"] {
      #expect(throws: CLIError.self, "\(bad)") { _ = try LRScheduleSpec(parsing: bad) }
    }
    #expect(throws: (any Error).self) { _ = try SomaCommand.parseAsRoot(["train", "--lr-schedule"]) }
  }

  @Test func ratesPerStep() throws {
    let cosine = LRScheduleSpec.cosine(minimum: 0).schedule(lr: 1e-3, epochs: 2, stepsPerEpoch: 5)
    #expect(cosine.learningRate(at: 0) == 1e-3)
    #expect(Swift.abs(cosine.learningRate(at: 5) - 5e-4) < 1e-12)
    #expect(cosine.learningRate(at: 9) > 0 && cosine.learningRate(at: 9) < 3e-5)
    let step = LRScheduleSpec.step(everyEpochs: 1, gamma: 0.5).schedule(lr: 1e-3, epochs: 2, stepsPerEpoch: 5)
    #expect(step.learningRate(at: 4) == 1e-3 && step.learningRate(at: 5) == 5e-4)
    let constant = LRScheduleSpec.constant.schedule(lr: 1e-3, epochs: 2, stepsPerEpoch: 5)
    #expect((0..<10).allSatisfy { constant.learningRate(at: $0) == 1e-3 })
  }

  @Test func trainDefaultsToCosineWithAdamWDecay() throws {
    let command = try #require(try SomaCommand.parseAsRoot(["train"]) as? TrainCommand)
    #expect(command.lrSchedule == "cosine")
    #expect(command.weightDecay == 0.1)
    #expect(throws: (any Error).self) {
      _ = try SomaCommand.parseAsRoot(["train", "--weight-decay", "-1"])
    }
    #expect(throws: (any Error).self) {
      _ = try SomaCommand.parseAsRoot(["train", "--lr-schedule", "linear"])
    }
  }
}
