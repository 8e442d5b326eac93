import Testing
import SomaNN

/// A user's own surrogate, as in the README.
struct Triangle: SurrogateGradient {
  var width = 1.0
  func derivative<T: TensorScalar>(_ x: T) -> T { Swift.max(0, 1 - Swift.abs(x) / T(width)) }
}

@Suite("README examples")
struct ReadmeExampleTests {
  @Test func sequentialTrainsWithAdam() throws {
    // The README's network and training loop.
    let net = try Sequential<Float> {
      Linear(784, 256)
      try LIF<S2NN>(beta: 0.9)
      Linear(256, 10)
      try LIF<S2NN>(beta: 0.9)
    }
    var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-3)

    var rng = SomaRandom(seed: 0)
    let spikes = Tensor<Float>.bernoulli([25, 32, 784], p: 0.1, using: &rng)  // [T, batch, 784]
    let labels = (0..<32).map { $0 % 10 }

    var losses: [Float] = []
    for _ in 1...10 {
      adam.zeroGrad()
      let loss = spikeCountCrossEntropy(net(Variable(spikes)), labels: labels)
      loss.backward()  // fills the grad of "0.weight", "0.bias", "2.weight", "2.bias"
      #expect(net.parameters.allSatisfy { $0.variable.grad?.shape == $0.variable.shape })
      adam.step()
      losses.append(loss.value.scalar)
    }
    #expect(net.parameters.map(\.name) == ["0.weight", "0.bias", "2.weight", "2.bias"])
    #expect(losses.allSatisfy { $0.isFinite })
    #expect(losses.last! < losses.first!, "losses \(losses)")
  }

  @Test func compiledNetworkTrainsTheSameParameters() throws {
    // The README's "Fast training" section, after its first example.
    let net = try Sequential<Float> {
      Linear(784, 256)
      try LIF<S2NN>(beta: 0.9)
      Linear(256, 10)
      try LIF<S2NN>(beta: 0.9)
    }
    var rng = SomaRandom(seed: 0)
    let spikes = Tensor<Float>.bernoulli([25, 32, 784], p: 0.1, using: &rng)
    let labels = (0..<32).map { $0 % 10 }
    let before = net.parameters[0].variable.value

    let model = try net.compiled(loss: .spikeCountCrossEntropy)
    var fastAdam = Adam(parameters: net.parameterVariables, learningRate: 1e-3)
    var losses: [Float] = []
    for _ in 1...10 {
      let step = model.trainStep(input: spikes, labels: labels, optimizer: &fastAdam)
      losses.append(step.loss)
    }
    #expect(model.isFused)
    #expect(losses.last! < losses.first!, "losses \(losses)")
    // `net` holds the trained values: the tape's loss on them is the compiled one's.
    #expect(net.parameters[0].variable.value != before)
    let tape = spikeCountCrossEntropy(net(Variable(spikes)), labels: labels).value.scalar
    let compiled = model.evaluate(input: spikes, labels: labels).loss
    #expect(Swift.abs(tape - compiled) <= 1e-4 * Swift.max(1, Swift.abs(tape)))
  }

  @Test func surrogatesSwapByType() throws {
    let s2nn = try S2NN(alpha: 8, beta: 2)
    #expect(s2nn.derivative(Float(-0.5)) > 0)
    #expect(s2nn.derivative(Tensor<Float>([-1, 0, 1])).shape == [3])
    let lif = try LIF(beta: 0.9, surrogate: try Sigmoid(alpha: 4))
    let custom = try LIF(beta: 0.9, surrogate: Triangle(width: 0.5))
    #expect(custom.surrogate.derivative(0.25) == 0.5)
    // Both run the same fused forward: identical spikes, whatever the surrogate.
    var rng = SomaRandom(seed: 3)
    let x = Variable(Tensor<Float>.normal([6, 2, 5], using: &rng))
    #expect(lif(x).value == custom(x).value)
  }
}
