import Foundation
import SomaData
import SomaKernels
import SomaNN
import SomaSurrogate
import SomaTrain

/// `soma bench csnn-fmnist`: one training step of SpikingJelly's convolutional Fashion-MNIST
/// network (docs/Benchmarks.md `csnn-fmnist`), built with the layer API as a user builds it.
enum CSNNBench {
  static let (batch, steps) = (64, 4)
  /// 128 as defined; `SOMA_CSNN_CHANNELS` times another width (the peers' script takes it too).
  static var channels: Int {
    ProcessInfo.processInfo.environment["SOMA_CSNN_CHANNELS"].flatMap { Int($0) } ?? 128
  }

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
    return try runNetwork(net, seconds: seconds, threads: threads)
  }

  /// Times `net`'s training step (OpenBLAS at one thread, as `NetworkBench` sets it: Soma
  /// splits the convolutions' blocks and the large tape GEMMs over the cores itself).
  /// `SOMA_CSNN_PROFILE=1` first prints each layer's forward and backward time to stderr.
  static func runNetwork(_ net: Sequential<Float>, seconds: Double, threads: Int) throws
    -> BenchResult
  {
    let model = try net.compiled(loss: Models.csnnLoss)
    model.threads = threads
    var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-3)
    let (list, source) = batches(batch: batch, steps: steps)
    if ProcessInfo.processInfo.environment["SOMA_CSNN_PROFILE"] != nil {
      profile(net, input: list[0].0, labels: list[0].1, adam: &adam)
    }
    var k = 0
    var (hits0, misses0) = (0, 0)
    soma_cache_counts(&hits0, &misses0)
    let timing = BenchTimer.measure(seconds: seconds) {
      let (x, labels) = list[k % list.count]
      k += 1
      _ = model.trainStep(input: x, labels: labels, optimizer: &adam)
    }
    let rss = peakRSSMegabytes()
    if ProcessInfo.processInfo.environment["SOMA_CSNN_PROFILE"] != nil {
      var (hits, misses) = (0, 0)
      soma_cache_counts(&hits, &misses)
      let calls = Double(Swift.max(timing.calls, 1))
      FileHandle.standardError.write(
        String(
          format: "buffer cache per step: %.1f hits, %.1f misses, %.0f MB held\n",
          Double(hits - hits0) / calls, Double(misses - misses0) / calls,
          Double(soma_cache_held_bytes()) / 1048576
        ).data(using: .utf8)!)
    }
    return BenchResult(
      name: "csnn-fmnist", msPerCall: timing.ms, calls: timing.calls,
      note: String(
        format: "C=%d B=%d T=%d, %@, peak RSS %.0f MB, min/epoch(938 steps) %.1f", channels, batch,
        steps, source, rss, timing.ms * 938 / 60_000))
  }

  /// Prints each layer's forward and backward milliseconds (median of 5 steps) to stderr:
  /// identity nodes around each layer stamp the time when the backward pass reaches them.
  static func profile(
    _ net: Sequential<Float>, input: Tensor<Float>, labels: [Int], adam: inout Adam<Float>
  ) {
    let n = net.layers.count
    var fwd = [[Double]](repeating: [], count: n)
    var density = [Double?](repeating: nil, count: n)
    var bwd = [[Double]](repeating: [], count: n)
    final class Stamps { var after = [Double](repeating: 0, count: 64); var before = [Double](repeating: 0, count: 64) }
    let stamps = Stamps()
    var loss = [Double]()
    for _ in 0..<6 {
      adam.zeroGrad()
      var h = Variable(input)
      var i = 0
      while i < n {
        let layer = net.layers[i]
        let pre = Variable<Float>.record(h.value, parents: [h]) { [i] g in
          stamps.before[i] = BenchTimer.now()
          return [g]
        }
        let t0 = BenchTimer.now()
        // As `Sequential` runs it: a neuron layer and the max pool after it as one pass (shown
        // on the neuron's line; the pool's line then reads 0).
        var y: Variable<Float>
        var fused = false
        if let neuron = layer.base as? any NeuronLayer, i + 1 < n,
          let pool = net.layers[i + 1].base as? MaxPool2d<Float>,
          let z = neuron.pooled(pre, by: pool)
        {
          (y, fused) = (z, true)
        } else {
          y = layer(pre)
        }
        fwd[i].append((BenchTimer.now() - t0) * 1e3)
        let values = y.value.scalars
        if values.allSatisfy({ $0 == 0 || $0 == 1 }) {
          density[i] = Double(values.reduce(0, +)) / Double(Swift.max(values.count, 1))
        }
        h = Variable<Float>.record(y.value, parents: [y]) { [i] g in
          stamps.after[i] = BenchTimer.now()
          return [g]
        }
        if fused { fwd[i + 1].append(0) }
        i += fused ? 2 : 1
      }
      let t0 = BenchTimer.now()
      let l = Models.csnnLoss(h, labels: labels)
      l.backward()
      loss.append((BenchTimer.now() - t0) * 1e3)
      let t1 = BenchTimer.now()
      adam.step()
      let adamMs = (BenchTimer.now() - t1) * 1e3
      for i in 0..<n where stamps.before[i] > 0 {
        bwd[i].append((stamps.before[i] - stamps.after[i]) * 1e3)
      }
      if fwd[0].count == 6 { FileHandle.standardError.write("adam \(adamMs) ms\n".data(using: .utf8)!) }
    }
    for i in 0..<n {
      let f = BenchTimer.median(Array(fwd[i].dropFirst()))
      let b = bwd[i].count > 1 ? BenchTimer.median(Array(bwd[i].dropFirst())) : 0
      let spikes = density[i].map { String(format: "  spikes %.1f %%", $0 * 100) } ?? ""
      let line = String(format: "%2d %-40@ fwd %8.1f ms  bwd %8.1f ms%@\n", i, "\(type(of: net.layers[i].base))" as NSString, f, b, spikes as NSString)
      FileHandle.standardError.write(line.data(using: .utf8)!)
    }
    FileHandle.standardError.write(String(format: "backward total %.1f ms\n", BenchTimer.median(loss)).data(using: .utf8)!)
  }

  /// The process's peak resident set so far, in MB.
  static func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
  }
}
