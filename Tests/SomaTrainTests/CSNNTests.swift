import Foundation
import Soma
import Testing

@testable import SomaTrain

/// The convolutional network (`Models.csnn`) in the training loop and in checkpoints.
@Suite(.serialized)
struct CSNNTests {
  let train = syntheticImages(count: 320, side: 12, seed: 11)
  let test = syntheticImages(count: 80, side: 12, seed: 12)

  func csnnTrainer(out: String?, epochs: Int = 1) throws -> Trainer {
    let net = try Models.csnn(
      channels: 4, timeSteps: 3, imageShape: [1, 12, 12], surrogate: S2NN(), seed: 7)
    let trainer = try Trainer(
      network: net, loss: Models.csnnLoss, learningRate: 5e-3,
      encoding: .dense(DirectCurrentEncoder(timeSteps: 3)), epochs: epochs, batchSize: 32,
      seed: 7, outputDirectory: out)
    trainer.modelName = "csnn"
    trainer.log = { _ in }
    return trainer
  }

  @Test func theNetworkIsSpikingJellysLayerList() throws {
    let net = try Models.csnn(channels: 8, surrogate: Arctan(alpha: 2), seed: 1)
    #expect(
      Checkpoint.layerSpecs(net).map(\.type) == [
        "Unflatten", "Conv2d", "BatchNorm2d", "IF", "MaxPool2d", "Conv2d", "BatchNorm2d", "IF",
        "MaxPool2d", "Flatten", "Linear", "IF", "Linear", "IF",
      ])
    #expect(net.linearWidths == [8 * 49, 128, 10])
    #expect(net.inputFeatures == 784)
    #expect(net.parameters.map(\.name) == [
      "1.weight", "2.weight", "2.bias", "5.weight", "6.weight", "6.bias", "10.weight", "12.weight",
    ])
    let spec = Checkpoint.layerSpecs(net)[3]
    #expect(spec.reset == "zero" && spec.detachReset == true && spec.threshold == 1)
    #expect(throws: TrainError.self) { try Models.csnn(channels: 0, surrogate: S2NN()) }
  }

  /// A csnn checkpoint holds BatchNorm's running statistics and evaluates with the accuracy the
  /// epoch measured.
  @Test func aCheckpointEvaluatesWithTheSameAccuracy() throws {
    let dir = try TemporaryDirectory()
    let trainer = try csnnTrainer(out: dir.path)
    let history = try trainer.fit(train: train, test: test)
    #expect(history[0].trainLoss.isFinite)
    let loaded = try Checkpoint.load(dir.path + "/final.safetensors")
    #expect(loaded.model == "csnn" && loaded.timeSteps == 3)
    #expect(loaded.encoder == "DirectCurrentEncoder")
    #expect(loaded.inputs == 144 && loaded.outputs == 10)
    #expect(loaded.layers == Checkpoint.layerSpecs(trainer.network))
    for (p, q) in zip(loaded.network.parameters, trainer.network.parameters) {
      #expect(p.name == q.name && p.variable.value == q.variable.value, "\(p.name)")
    }
    for i in [2, 6] {
      let a = try #require(trainer.network.layers[i].base as? BatchNorm2d<Float>).state
      let b = try #require(loaded.network.layers[i].base as? BatchNorm2d<Float>).state
      #expect(a.batchesTracked == 10 && b.batchesTracked == 10)
      #expect(a.runningMean == b.runningMean && a.runningVar == b.runningVar)
      #expect(a.runningMean != Tensor<Float>.zeros([4]), "the statistics moved")
    }
    let again = Trainer.evaluate(
      try loaded.compiled(), on: test, encoding: .dense(DirectCurrentEncoder(timeSteps: 3)))
    #expect(again.accuracy == history[0].testAccuracy)
    // The tensors are PyTorch's names.
    let file = try SafeTensors.read(dir.path + "/final.safetensors")
    #expect(file.tensors["2.running_var"] != nil && file.tensors["6.num_batches_tracked"] != nil)
  }

  @Test func everyImageLayerRoundTrips() throws {
    let net = try Sequential<Float> {
      try Unflatten<Float>([2, 8, 8])
      try Conv2d<Float>(
        2, 6, kernelSize: Size2D(3, 1), stride: 2, padding: Size2D(1, 0), dilation: 1, groups: 2,
        bias: true, seed: 1)
      try AvgPool2d<Float>(kernelSize: 2, stride: 1, padding: 1, countIncludePad: false)
      try MaxPool2d<Float>(kernelSize: 3, stride: 2, padding: 1, dilation: 1)
      try BatchNorm2d<Float>(6, epsilon: 1e-3, momentum: nil, affine: false)
      Flatten<Float>()
      try Dropout<Float>(p: 0.25, seed: 1)
      Linear<Float>(6 * 3 * 3, 5, seed: 2)
      try BatchNorm1d<Float>(5, momentum: 0.3)
      try LIF(beta: 0.8, surrogate: S2NN())
    }
    let dir = try TemporaryDirectory()
    let path = dir.path + "/net.safetensors"
    var g = SomaRandom(seed: 3)
    let x = Tensor<Float>.uniform([2, 4, 128], using: &g)
    _ = net(Variable(x))  // moves the running statistics
    try Checkpoint.write(net, loss: .spikeCountCrossEntropy, timeSteps: 2, to: path)
    let loaded = try Checkpoint.load(path)
    #expect(loaded.layers == Checkpoint.layerSpecs(net))
    #expect(loaded.inputs == 128)
    let (a, b) = noGrad { (net(Variable(x)).value, loaded.network(Variable(x)).value) }
    #expect(a == b)
  }
}
