import SomaData
import SomaNN
import SomaSurrogate

/// Training-step benchmarks of the networks in shared/BENCHMARKS.md: each step is forward over
/// all T steps, BPTT backward and an Adam update, timed after warm-up (median).
enum NetworkBench {
  static let workloads = [
    "mlp-small", "mlp-single-step", "mlp-deep", "fmnist-spytorch", "fmnist-train-loop",
  ]

  static func run(
    _ workload: String, seconds: Double, threads: Int, surrogate: (any SurrogateGradient)? = nil
  ) throws -> [BenchResult] {
    // Soma splits the work itself (GEMM rows, events, neurons) over `threads` parts; OpenBLAS
    // runs single-threaded inside each part, so spinning BLAS workers never compete with them.
    BLASInfo.setThreads(1)
    defer { BLASInfo.setThreads(threads) }
    switch workload {
    case "mlp-small": return [try mlp(workload, sizes: [784, 256, 10], steps: 8, batch: 128, seconds: seconds, threads: threads)]
    case "mlp-single-step": return [try mlp(workload, sizes: [784, 512, 10], steps: 1, batch: 256, seconds: seconds, threads: threads)]
    case "mlp-deep": return [try mlp(workload, sizes: [784, 512, 512, 10], steps: 16, batch: 64, seconds: seconds, threads: threads)]
    case "fmnist-spytorch":
      let s: any SurrogateGradient = try surrogate ?? InvSquareGrad(alpha: 100)
      return [try withConcreteSurrogate(s, FMNISTBench(seconds: seconds, threads: threads))]
    case "fmnist-train-loop":
      let s: any SurrogateGradient = try surrogate ?? S2NN()
      return try withConcreteSurrogate(s, TrainLoopBench(seconds: seconds, threads: threads))
    default: throw BenchUnavailable(workload: workload)
    }
  }

  static func mlp(
    _ name: String, sizes: [Int], steps: Int, batch: Int, seconds: Double, threads: Int
  ) throws -> BenchResult {
    let net = try SpikingMLP<Float, S2NN>(sizes: sizes, surrogate: S2NN(), seed: 0)
    net.threads = threads
    var g = SomaRandom(seed: 1)
    let x = Tensor<Float>.bernoulli([steps, batch, sizes[0]], p: 0.2, using: &g)
    let labels = (0..<batch).map { _ in Int(g.next() % UInt64(sizes.last!)) }
    var adam = try FusedAdam<Float>(learningRate: 1e-3)
    let timing = BenchTimer.measure(seconds: seconds) {
      _ = net.trainStep(input: x, labels: labels, optimizer: &adam)
    }
    return BenchResult(name: name, msPerCall: timing.ms, calls: timing.calls)
  }

  /// The fmnist-spytorch step with surrogate `s` (the benchmark's is InvSquareGrad(alpha: 100)).
  static func fmnist<S: SurrogateGradient>(seconds: Double, threads: Int, surrogate s: S) throws
    -> BenchResult
  {
    let steps = 100
    let batch = 256
    let net = try CurrentBasedSNN<Float, S>(surrogate: s, seed: 0)
    net.threads = threads
    // As BENCHMARKS.md and the peers' script: 8 latency-coded batches of real Fashion-MNIST
    // training images, cycled. Without the dataset, random events at its density (0.42 %).
    var g = SomaRandom(seed: 2)
    var batches: [(events: SpikeEvents, labels: [Int])] = []
    var source = "Fashion-MNIST batches"
    if let data = try? FashionMNIST.readSplit("train", in: FashionMNIST.defaultDirectory) {
      batches = benchmarkBatches(data, steps: steps, batch: batch)
    } else {
      source = "random events (dataset not installed)"
      var starts: [Int32] = [0]
      var idx: [Int32] = []
      for _ in 0..<(steps * batch) {
        for i in 0..<784 where g.unitInterval(Double.self) < 0.0042 { idx.append(Int32(i)) }
        starts.append(Int32(idx.count))
      }
      let events = SpikeEvents(rows: steps * batch, columns: 784, rowStart: starts, indices: idx)
      batches.append((events, (0..<batch).map { _ in Int(g.next() % 10) }))
    }
    var adam = FlatAdam(shapes: [net.w1.shape, net.w2.shape], lr: 2e-4)
    var k = 0
    let timing = BenchTimer.measure(seconds: seconds) {
      let (events, labels) = batches[k % batches.count]
      k += 1
      let step = net.lossAndGradients(events: events, steps: steps, batch: batch, labels: labels)
      net.withParameters { adam.step(&$0, grads: [step.gradW1, step.gradW2]) }
    }
    let named = S.self == InvSquareGrad.self && (s as? InvSquareGrad)?.alpha == 100
      ? "" : ", surrogate \(SurrogateSpec.canonical(s))"
    return BenchResult(
      name: "fmnist-spytorch", msPerCall: timing.ms, calls: timing.calls,
      note: "s/epoch(235 steps) \(String(format: "%.2f", timing.ms * 235 / 1000)), \(source)\(named)")
  }
}

extension NetworkBench {
  /// The fmnist-spytorch benchmark's 8 batches: latency-coded training images, picked by seeds
  /// 0–7.
  static func benchmarkBatches(_ data: LabeledImages, steps: Int, batch: Int) -> [(
    events: SpikeEvents, labels: [Int]
  )] {
    let coder = LatencyEventCoder(timeSteps: steps, encoder: LatencyEncoder(timeSteps: steps))
    return (0..<8).map { k in
      let pick = shuffledIndices(count: data.count, seed: UInt64(k))[0..<batch]
      return (coder.events(data, indices: pick), pick.map { data.labels[$0] })
    }
  }

  /// `soma train`'s step against the fmnist-spytorch step in one process, on one network and
  /// one Adam: blocks of 10 steps alternate the benchmark's 8 cycled batches (its timed body:
  /// forward, BPTT, Adam) with fresh shuffled batches of the whole training set through the
  /// training loop's own path (`BatchFeed`, `Trainer.step`), timing each step.
  /// Across processes the two drift apart by more than the difference being measured.
  static func trainLoop<S: SurrogateGradient>(seconds: Double, threads: Int, surrogate s: S)
    throws -> [BenchResult]
  {
    let (steps, batch) = (100, 256)
    let data: LabeledImages
    do {
      data = try FashionMNIST.readSplit("train", in: FashionMNIST.defaultDirectory)
    } catch {
      throw CLIError(
        "fmnist-train-loop needs the Fashion-MNIST training set in \(FashionMNIST.defaultDirectory): \(error)")
    }
    let net = try CurrentBasedSNN<Float, S>(surrogate: s, seed: 0)
    net.threads = threads
    var adam = FlatAdam(shapes: [net.w1.shape, net.w2.shape], lr: 2e-4)
    let cached = benchmarkBatches(data, steps: steps, batch: batch)
    let coder = LatencyEventCoder(timeSteps: steps, encoder: LatencyEncoder(timeSteps: steps))
    let codes = LatencyCodes.fits(data) ? LatencyCodes(data, coder: coder) : nil
    var epoch: UInt64 = 0
    func newFeed() -> BatchFeed {
      epoch += 1
      return BatchFeed(
        order: shuffledIndices(count: data.count, seed: epoch), batchSize: batch, images: data,
        coder: coder, codes: codes, threads: threads)
    }
    var feed = newFeed()
    defer { feed.cancel() }
    var (k, bench, loop) = (0, [Double](), [Double]())
    func benchStep() {
      let (events, labels) = cached[k % cached.count]
      k += 1
      let step = net.lossAndGradients(events: events, steps: steps, batch: batch, labels: labels)
      net.withParameters { adam.step(&$0, grads: [step.gradW1, step.gradW2]) }
    }
    func loopStep() throws {
      guard let (idx, events) = feed.next() else {
        feed = newFeed()
        return try loopStep()
      }
      let labels = idx.map { data.labels[$0] }
      guard Trainer.step(net, &adam, events: events, labels: labels, timeSteps: steps) != nil
      else { throw CLIError("fmnist-train-loop: the loss became NaN or infinite") }
    }
    for _ in 0..<3 {
      benchStep()
      try loopStep()
    }
    let end = BenchTimer.now() + 2 * seconds
    while BenchTimer.now() < end || bench.count < 10 {
      for _ in 0..<10 {
        let t0 = BenchTimer.now()
        benchStep()
        bench.append((BenchTimer.now() - t0) * 1e3)
      }
      for _ in 0..<10 {
        let t0 = BenchTimer.now()
        try loopStep()
        loop.append((BenchTimer.now() - t0) * 1e3)
      }
    }
    let (b, l) = (BenchTimer.median(bench), BenchTimer.median(loop))
    let named = ", surrogate \(SurrogateSpec.canonical(s))"
    return [
      BenchResult(
        name: "fmnist-spytorch", msPerCall: b, calls: bench.count,
        note: "in the same process as the training loop\(named)"),
      BenchResult(
        name: "fmnist-train-loop", msPerCall: l, calls: loop.count,
        note: "training loop / benchmark step \(String(format: "%.3f", l / b))\(named)"),
    ]
  }
}

/// Runs the fmnist-train-loop comparison specialised for the concrete surrogate type.
struct TrainLoopBench: SurrogateVisitor {
  var seconds: Double
  var threads: Int
  func visit<S: SurrogateGradient>(_ surrogate: S) throws -> [BenchResult] {
    try NetworkBench.trainLoop(seconds: seconds, threads: threads, surrogate: surrogate)
  }
}

/// Runs the fmnist-spytorch benchmark specialised for the concrete surrogate type.
struct FMNISTBench: SurrogateVisitor {
  var seconds: Double
  var threads: Int
  func visit<S: SurrogateGradient>(_ surrogate: S) throws -> BenchResult {
    try NetworkBench.fmnist(seconds: seconds, threads: threads, surrogate: surrogate)
  }
}

struct BenchUnavailable: Error, CustomStringConvertible {
  var workload: String
  var description: String { "unknown workload '\(workload)'" }
}
