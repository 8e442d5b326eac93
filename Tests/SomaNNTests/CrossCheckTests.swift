import Testing

@testable import SomaNN

/// The layer API and the hand-fused `CurrentBasedSNN` (SpyTorch's network) are two independent
/// implementations of BENCHMARKS.md's fmnist-spytorch model; they must agree.
@Suite("Layer API vs CurrentBasedSNN")
struct CrossCheckTests {
  @Test func spyTorchNetworkFromLayersMatchesTheFusedNetwork() throws {
    let steps = 30
    let batch = 4
    let net = try CurrentBasedSNN<Double, InvSquareGrad>(
      inputs: 20, hidden: 12, outputs: 3, surrogate: InvSquareGrad(), seed: 5)
    net.threads = 1
    // Stronger weights than the default so the hidden layer spikes.
    net.w1 = net.w1 * 8
    net.w2 = net.w2 * 3
    var rng = SomaRandom(seed: 9)
    let x = Tensor<Double>.bernoulli([steps, batch, 20], p: 0.15, using: &rng)
    let labels = [0, 2, 1, 2]
    let reference = net.lossAndGradients(
      events: SpikeEvents(dense: x.reshaped(steps * batch, 20)), steps: steps, batch: batch,
      labels: labels)

    let alpha = Double.exp(-1.0 / 5)
    let beta = Double.exp(-1.0 / 10)
    let model = try Sequential<Double> {
      Linear(weight: net.w1)
      try CUBALIF(alpha: alpha, beta: beta, surrogate: InvSquareGrad())
      Linear(weight: net.w2)
      try LeakyIntegrator(beta: beta, alpha: alpha)
    }
    let hidden = Sequential(layers: Array(model.layers[0..<2]))(Variable(x))
    let out = Sequential(layers: Array(model.layers[2...]))(hidden)
    let loss = maxMembraneNLL(out, labels: labels)
    loss.backward()
    #expect(reference.hiddenSpikes > 0)
    #expect(reference.gradW1.abs().max().scalar > 1e-4)
    #expect(Int(hidden.value.sum().scalar) == reference.hiddenSpikes)
    #expect(Swift.abs(loss.value.scalar - reference.loss) < 1e-12 * Swift.max(1, reference.loss))
    let g1 = model.parameters[0].variable.grad!
    let g2 = model.parameters[1].variable.grad!
    #expect(relativeDifference(g1, reference.gradW1) < 1e-10 * reference.gradW1.abs().max().scalar)
    #expect(relativeDifference(g2, reference.gradW2) < 1e-10 * reference.gradW2.abs().max().scalar)
  }
}
