import Testing

@testable import SomaNN

@Suite("Losses")
struct LossTests {
  let labels = [2, 0, 1]

  @Test func crossEntropyValueAndGradient() {
    var rng = SomaRandom(seed: 2)
    let logits = Tensor<Double>.normal([3, 4], using: &rng)
    let loss = crossEntropy(logits: Variable(logits), labels: labels).value.scalar
    var want = 0.0
    for b in 0..<3 {
      let row = (0..<4).map { logits[scalarAt: b, $0] }
      let lse = Double.log(row.map { Double.exp($0) }.reduce(0, +))
      want += (lse - row[labels[b]]) / 3
    }
    #expect(Swift.abs(loss - want) < 1e-12)
    let r = GradientCheck.run([logits]) { crossEntropy(logits: $0[0], labels: labels) }
    #expect(r.maxError < 1e-8)
  }

  @Test func sequenceLossesPassTheGradientCheck() {
    var rng = SomaRandom(seed: 3)
    let x = Tensor<Double>.normal([5, 3, 4], using: &rng)
    let checks: [(String, ([Variable<Double>]) -> Variable<Double>)] = [
      ("spike count CE", { spikeCountCrossEntropy($0[0], labels: labels) }),
      ("mean membrane CE", { meanMembraneCrossEntropy($0[0], labels: labels) }),
      ("max membrane NLL", { maxMembraneNLL($0[0], labels: labels) }),
      ("mse count", { mseCountLoss($0[0], labels: labels) }),
      ("firing rate", { firingRateRegularizer($0[0], targetRate: 0.1) }),
    ]
    for (name, f) in checks {
      let r = GradientCheck.run([x], f)
      #expect(r.maxError < 1e-8, "\(name): \(r.maxError)")
    }
  }

  @Test func maxMembraneNLLUsesTheMaximumOverTime() {
    var rng = SomaRandom(seed: 4)
    let m = Tensor<Double>.normal([6, 3, 4], using: &rng)
    let got = maxMembraneNLL(Variable(m), labels: labels).value.scalar
    let want = crossEntropy(logits: Variable(m.max(axis: 0)), labels: labels).value.scalar
    #expect(Swift.abs(got - want) < 1e-12)
  }

  @Test func mseCountLossTargetsRates() {
    // T = 10: the label's target count is 8, the others' 2.
    var spikes = Tensor<Float>.zeros([10, 2, 3])
    for t in 0..<8 { spikes[scalarAt: t, 0, 1] = 1 }
    for t in 0..<2 {
      spikes[scalarAt: t, 0, 0] = 1
      spikes[scalarAt: t, 0, 2] = 1
    }
    let perfect = mseCountLoss(Variable(spikes), labels: [1, 0])
    // Sample 0 hits its targets; sample 1 (all zero) misses 8, 2, 2 → (64 + 4 + 4) / 6 / 10.
    #expect(Swift.abs(perfect.value.scalar - 72.0 / 6 / 10) < 1e-6)
  }

  @Test func firingRateRegularizerMeasuresRates() {
    var s = Tensor<Double>.zeros([4, 2, 2])
    for t in 0..<4 { s[scalarAt: t, 0, 0] = 1 }  // neuron 0 fires in half the samples: rate 0.5
    let r = firingRateRegularizer(Variable(s), targetRate: 0.25).value.scalar
    #expect(Swift.abs(r - (0.0625 + 0.0625) / 2) < 1e-12)
  }
}
