import Foundation
import SomaData
import SomaNN
import SomaSurrogate
import SomaTrain

/// `soma bench csnn-fmnist`: one training step of SpikingJelly's convolutional Fashion-MNIST
/// network (docs/Benchmarks.md `csnn-fmnist`), built with the layer API as a user builds it.
enum CSNNBench {
  static let (channels, batch, steps) = (128, 64, 4)

  /// The benchmark's network: {Conv 3×3 (padding 1, no bias) → BatchNorm2d → IF → MaxPool 2} × 2
  /// → Flatten → Linear(C·49 → 16·C, no bias) → IF → Linear(16·C → 10, no bias) → IF; IF with
  /// threshold 1, hard reset, detached reset and ATan(α = 2).
  static func network(channels c: Int, seed: UInt64 = 0) throws -> Sequential<Float> {
    var g = SomaRandom(seed: seed)
    let atan = try Arctan(alpha: 2)
    func neuron() throws -> IF<Arctan> {
      try IF(threshold: 1, reset: .zero, detachReset: true, surrogate: atan)
    }
    return try Sequential<Float> {
      try Conv2d<Float>(1, c, kernelSize: 3, padding: 1, bias: false, using: &g)
      try BatchNorm2d<Float>(c)
      try neuron()
      try MaxPool2d<Float>(kernelSize: 2)
      try Conv2d<Float>(c, c, kernelSize: 3, padding: 1, bias: false, using: &g)
      try BatchNorm2d<Float>(c)
      try neuron()
      try MaxPool2d<Float>(kernelSize: 2)
      Flatten<Float>()
      Linear<Float>(c * 49, 16 * c, bias: false, using: &g)
      try neuron()
      Linear<Float>(16 * c, 10, bias: false, using: &g)
      try neuron()
    }
  }

  /// The step's inputs: 8 batches of real Fashion-MNIST training images (pixel / 255) as
  /// direct-coded [T, B, 1, 28, 28] views (the image repeated, stride 0 over time), cycled; or
  /// uniform random images without the dataset.
  static func batches(batch: Int, steps: Int) -> (batches: [(Tensor<Float>, [Int])], source: String)
  {
    func direct(_ images: Tensor<Float>) -> Tensor<Float> {
      images.reshaped([1, batch, 1, 28, 28]).expanded(to: [steps, batch, 1, 28, 28])
    }
    if let data = try? FashionMNIST.readSplit("train", in: FashionMNIST.defaultDirectory),
      data.rows == 28, data.columns == 28
    {
      let list = (0..<8).map { k -> (Tensor<Float>, [Int]) in
        let pick = shuffledIndices(count: data.count, seed: UInt64(k))[0..<batch]
        return (direct(data.images(at: pick)), pick.map { data.labels[$0] })
      }
      return (list, "Fashion-MNIST batches")
    }
    var g = SomaRandom(seed: 1)
    let images = Tensor<Float>.uniform([batch, 784], using: &g)
    return ([(direct(images), (0..<batch).map { _ in Int(g.next() % 10) })], "random images")
  }

  static func run(seconds: Double, threads: Int) throws -> BenchResult {
    let net = try network(channels: channels)
    let model = try net.compiled(loss: Models.csnnLoss)
    model.threads = threads
    var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-3)
    let (list, source) = batches(batch: batch, steps: steps)
    var k = 0
    let timing = BenchTimer.measure(seconds: seconds) {
      let (x, labels) = list[k % list.count]
      k += 1
      _ = model.trainStep(input: x, labels: labels, optimizer: &adam)
    }
    let rss = peakRSSMegabytes()
    return BenchResult(
      name: "csnn-fmnist", msPerCall: timing.ms, calls: timing.calls,
      note: String(
        format: "C=%d B=%d T=%d, %@, peak RSS %.0f MB, min/epoch(938 steps) %.1f", channels, batch,
        steps, source, rss, timing.ms * 938 / 60_000))
  }

  /// The process's peak resident set so far, in MB.
  static func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
  }
}
