import Testing

@testable import SomaNN

/// A small CSNN in SpikingJelly's shape, for the training tests.
func smallCSNN(seed: UInt64) throws -> Sequential<Float> {
  try Sequential<Float> {
    try Conv2d<Float>(1, 6, kernelSize: 3, padding: 1, bias: false, seed: seed)
    try BatchNorm2d<Float>(6)
    try LIF<S2NN>(beta: 0.5)
    try MaxPool2d<Float>(kernelSize: 2)
    Flatten<Float>()
    Linear<Float>(6 * 4 * 4, 4, seed: seed + 1)
    try LIF<S2NN>(beta: 0.5)
  }
}

/// Four classes of 8 × 8 images, a bright quadrant each, with noise; direct-coded over T steps.
func quadrantBatch(steps: Int, batch: Int, seed: UInt64) -> (Tensor<Float>, [Int]) {
  var rng = SomaRandom(seed: seed)
  var images = Tensor<Float>.uniform([batch, 1, 8, 8], low: 0, high: 0.3, using: &rng)
  let labels = (0..<batch).map { $0 % 4 }
  for (b, l) in labels.enumerated() {
    for y in 0..<4 {
      for x in 0..<4 { images[scalarAt: b, 0, y + 4 * (l / 2), x + 4 * (l % 2)] += 0.7 }
    }
  }
  return (images.unsqueezed(axis: 0).expanded(to: [steps, batch, 1, 8, 8]), labels)
}

@Suite("CSNN training")
struct CSNNTrainingTests {
  @Test("Conv2d → BatchNorm2d → LIF → MaxPool2d → Flatten → Linear → LIF trains on the tape")
  func tapeLoop() throws {
    let net = try smallCSNN(seed: 21)
    var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-2)
    let (x, labels) = quadrantBatch(steps: 4, batch: 32, seed: 1)
    var losses: [Float] = []
    for _ in 0..<25 {
      adam.zeroGrad()
      let loss = spikeCountCrossEntropy(net(Variable(x)), labels: labels)
      loss.backward()
      adam.step()
      losses.append(loss.value.scalar)
    }
    #expect(losses.last! < losses.first! * 0.7, "losses \(losses)")
    #expect(net.parameters.map(\.name) == ["0.weight", "1.weight", "1.bias", "5.weight", "5.bias"])
  }

  @Test("the same network trains through compiled(loss:)'s tape fallback, and evaluates")
  func compiled() throws {
    let net = try smallCSNN(seed: 21)
    let model = try net.compiled(loss: .spikeCountCrossEntropy)
    #expect(!model.isFused)
    #expect(model.plan.contains { $0.contains("Conv2d") && $0.contains("tape") })
    var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-2)
    let (x, labels) = quadrantBatch(steps: 4, batch: 32, seed: 1)
    var first: Float = 0
    var last: Float = 0
    for i in 0..<25 {
      let step = model.trainStep(input: x, labels: labels, optimizer: &adam)
      if i == 0 { first = step.loss }
      last = step.loss
    }
    #expect(last < first * 0.7, "loss \(first) → \(last)")
    // Evaluation runs inside noGrad: BatchNorm uses its running statistics and keeps them.
    let bn = net.layers[1].base as! BatchNorm2d<Float>
    let tracked = bn.state.batchesTracked
    let (tx, tl) = quadrantBatch(steps: 4, batch: 32, seed: 2)
    let eval = model.evaluate(input: tx, labels: tl)
    #expect(bn.state.batchesTracked == tracked)
    #expect(eval.correct >= 24, "\(eval.correct) of 32 correct")
  }

  @Test("the README's convolutional network runs")
  func readmeExample() throws {
    let csnn = try Sequential<Float> {
      try Conv2d<Float>(1, 32, kernelSize: 3, padding: 1, bias: false)
      try BatchNorm2d<Float>(32)
      try IF(threshold: 1, reset: .zero, detachReset: true, surrogate: Arctan(alpha: 2))
      try MaxPool2d<Float>(kernelSize: 2)
      Flatten<Float>()
      Linear<Float>(32 * 14 * 14, 10, bias: false)
      try IF(threshold: 1, reset: .zero, detachReset: true, surrogate: Arctan(alpha: 2))
    }
    var rng = SomaRandom(seed: 0)
    let images = Tensor<Float>.uniform([64, 1, 28, 28], using: &rng)
    let direct = images.unsqueezed(axis: 0).expanded(to: [4, 64, 1, 28, 28])  // same image, T = 4
    let rates = csnn(Variable(direct)).mean(axis: 0)
    #expect(rates.shape == [64, 10])
    #expect(rates.value.min().scalar >= 0 && rates.value.max().scalar <= 1)
  }
}
