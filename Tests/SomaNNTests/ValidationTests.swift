import Testing

@testable import SomaNN

@Suite("Hyperparameter validation")
struct ValidationTests {
  @Test func badBetaAndThresholdAreRejectedWithTheValueAndRange() {
    #expect(
      throws: SomaNNError.invalidHyperparameter(
        layer: "LIF", name: "beta", value: 1.5, allowed: "in [0, 1]")
    ) {
      try LIF(beta: 1.5, surrogate: TestS2NN())
    }
    #expect(throws: SomaNNError.self) { try LIF(beta: -0.1, surrogate: TestS2NN()) }
    #expect(
      throws: SomaNNError.invalidHyperparameter(
        layer: "LIF", name: "threshold", value: 0, allowed: "> 0")
    ) {
      try LIF(threshold: 0, surrogate: TestS2NN())
    }
    #expect(throws: SomaNNError.self) { try IF(threshold: -1, surrogate: TestS2NN()) }
    #expect(throws: SomaNNError.self) {
      try CUBALIF(alpha: 2, beta: 0.9, surrogate: TestS2NN())
    }
    #expect(throws: SomaNNError.self) { try LeakyIntegrator(beta: 1.01) }
    #expect(throws: SomaNNError.self) {
      try RecurrentLIF<TestS2NN, Float>(size: 4, beta: 3, surrogate: TestS2NN())
    }
    #expect(throws: Never.self) { try LIF(beta: 1, threshold: 0.01, surrogate: TestS2NN()) }
  }

  @Test func messagesNameTheValueAndTheAllowedRange() {
    do {
      _ = try LIF(beta: 1.5, surrogate: TestS2NN())
      Issue.record("beta 1.5 was accepted")
    } catch {
      #expect(error.description == "LIF beta must be in [0, 1], got 1.5.")
    }
    do {
      _ = try IF(threshold: -2, surrogate: TestS2NN())
      Issue.record("threshold -2 was accepted")
    } catch {
      #expect(error.description == "IF threshold must be > 0, got -2.0.")
    }
  }

  @Test func zeroTimeStepsTrap() async {
    await #expect(processExitsWith: .failure) {
      let lif = try! LIF(surrogate: TestS2NN())
      _ = lif(Variable(Tensor<Float>.zeros([0, 2, 3])))
    }
  }

  @Test func backwardOnAConstantTraps() async {
    await #expect(processExitsWith: .failure) {
      Variable(Tensor<Float>([1, 2])).sum().backward()
    }
  }

  @Test func mismatchedInputWidthTraps() async {
    await #expect(processExitsWith: .failure) {
      let fc = Linear<Float>(4, 2, seed: 1)
      _ = fc(Variable(Tensor<Float>.zeros([3, 2, 5])))
    }
  }
}
