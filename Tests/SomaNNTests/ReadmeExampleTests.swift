import Testing
import SomaNN

@Suite("README example")
struct ReadmeExampleTests {
  @Test func threeLinesBuildRunAndDifferentiate() throws {
    var rng = SomaRandom(seed: 1)
    let spikes = Tensor<Float>.bernoulli([8, 4, 784], p: 0.2, using: &rng)  // [T, batch, 784]
    let labels = [3, 1, 4, 1]
    // The README's three lines:
    let net = try Sequential<Float> { Linear(784, 256); try LIF<S2NN>(beta: 0.9); Linear(256, 10); try LIF<S2NN>(beta: 0.9) }
    let loss = spikeCountCrossEntropy(net(Variable(spikes)), labels: labels)
    loss.backward()  // every net.parameters[i].variable.grad is now filled
    #expect(net.parameters.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
    #expect(net.parameters.allSatisfy { $0.variable.grad?.shape == $0.variable.shape })
    #expect(loss.value.scalar.isFinite)
    #expect(net.parameters[0].variable.grad!.abs().max().scalar > 0)
  }
}
