import Testing

@testable import SomaNN

/// A surrogate the library does not ship: the fast sigmoid 1/(1 + k|x|)², written by a user.
struct UserFastSigmoid: SurrogateGradient {
  var slope = 5.0
  func derivative<T: TensorScalar>(_ x: T) -> T {
    let d = 1 + T(slope) * Swift.abs(x)
    return 1 / (d * d)
  }
}

@Suite("Training")
struct TrainingTests {
  @Test func aUserDefinedSurrogateTrainsATinyNetwork() throws {
    var rng = SomaRandom(seed: 21)
    let steps = 8
    let batch = 16
    // Class 0 fires on inputs 0..<6, class 1 on inputs 6..<12.
    var labels: [Int] = []
    var x = Tensor<Float>.zeros([steps, batch, 12])
    for b in 0..<batch {
      let label = b % 2
      labels.append(label)
      for t in 0..<steps {
        for i in 0..<6 where rng.unitInterval(Float.self) < 0.5 { x[scalarAt: t, b, label * 6 + i] = 1 }
      }
    }
    let net = try Sequential<Float> {
      Linear(12, 20, using: &rng)
      try LIF(beta: 0.9, surrogate: UserFastSigmoid())
      Linear(20, 2, using: &rng)
      try LIF(beta: 0.9, surrogate: UserFastSigmoid())
    }
    var opt = Adam(parameters: net.parameterVariables, learningRate: 0.02)
    var losses: [Float] = []
    for _ in 0..<40 {
      opt.zeroGrad()
      let loss = spikeCountCrossEntropy(net(Variable(x)), labels: labels)
      loss.backward()
      opt.step()
      losses.append(loss.value.scalar)
    }
    #expect(losses.last! < 0.5 * losses.first!, "losses \(losses)")
    let counts = noGrad { net(Variable(x)).value.sum(axis: 0) }
    let predicted = counts.argmaxIndices()
    let correct = zip(predicted, labels).filter { $0 == $1 }.count
    #expect(correct >= batch - 1)
  }
}
