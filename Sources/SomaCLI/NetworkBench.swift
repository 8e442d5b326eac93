import Foundation
import SomaData
import SomaNN
import SomaTrain
import SomaSurrogate

/// Training-step benchmarks of the networks in docs/Benchmarks.md: each step is forward over
/// all T steps, BPTT backward and an Adam update, timed after warm-up (median).
enum NetworkBench {
  static let workloads = [
    "mlp-small", "mlp-single-step", "mlp-deep", "fmnist-spytorch", "fmnist-train-loop",
    "csnn-fmnist",
  ]

  static func run(
    _ workload: String, seconds: Double, threads: Int, surrogate: (any SurrogateGradient)? = nil,
    events: EventPolicy = .automatic
  ) throws -> [BenchResult] {
    // Soma splits the work itself (GEMM rows, events, neurons) over `threads` parts; OpenBLAS
    // runs single-threaded inside each part, so spinning BLAS workers never compete with them.
    BLASInfo.setThreads(1)
    defer { BLASInfo.setThreads(threads) }
    switch workload {
    case "mlp-small": return [try mlp(workload, sizes: [784, 256, 10], steps: 8, batch: 128, seconds: seconds, threads: threads, events: events)]
    case "mlp-single-step": return [try mlp(workload, sizes: [784, 512, 10], steps: 1, batch: 256, seconds: seconds, threads: threads, events: events)]
    case "mlp-deep": return [try mlp(workload, sizes: [784, 512, 512, 10], steps: 16, batch: 64, seconds: seconds, threads: threads, events: events)]
    case "fmnist-spytorch":
      let s: any SurrogateGradient = try surrogate ?? InvSquareGrad(alpha: 100)
      return [try withConcreteSurrogate(s, FMNISTBench(seconds: seconds, threads: threads))]
    case "fmnist-train-loop":
      let s: any SurrogateGradient = surrogate ?? S2NN()
      return try withConcreteSurrogate(s, TrainLoopBench(seconds: seconds, threads: threads))
    case "csnn-fmnist": return [try CSNNBench.run(seconds: seconds, threads: threads)]
    default: throw BenchUnavailable(workload: workload)
    }
  }

  static func mlp(
    _ name: String, sizes: [Int], steps: Int, batch: Int, seconds: Double, threads: Int,
    events: EventPolicy = .automatic
  ) throws -> BenchResult {
    // Built as a user builds it: the layer API, compiled with the loss.
    var init_ = SomaRandom(seed: 0)
    let net = try Sequential<Float> {
      for l in 0..<(sizes.count - 1) {
        Linear<Float>(sizes[l], sizes[l + 1], using: &init_)
        try LIF(beta: 0.9, threshold: 1, reset: .subtract, surrogate: S2NN())
      }
    }
    let model = try net.compiled(loss: .spikeCountCrossEntropy)
    model.threads = threads
    model.eventPolicy = events

    var g = SomaRandom(seed: 1)
    let x = Tensor<Float>.bernoulli([steps, batch, sizes[0]], p: 0.2, using: &g)
    let labels = (0..<batch).map { _ in Int(g.next() % UInt64(sizes.last!)) }
    var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-3)
    let timing = BenchTimer.measure(seconds: seconds) {
      _ = model.trainStep(input: x, labels: labels, optimizer: &adam)
    }
    return BenchResult(name: name, msPerCall: timing.ms, calls: timing.calls)
  }

  /// The fmnist-spytorch network as a user builds it: SpyTorch's layers (`Models.spytorch`,
  /// seed 0) compiled with the max-membrane loss, and Adam at `lr`.
  static func spytorch<S: SurrogateGradient>(surrogate s: S, lr: Double, threads: Int) throws
    -> (model: CompiledNetwork<Float>, adam: Adam<Float>)
  {
    let net = try Models.spytorch(surrogate: s, seed: 0)
    let model = try net.compiled(loss: Models.spytorchLoss)
    model.threads = threads
    return (model, Adam(parameters: net.parameterVariables, learningRate: lr))
  }

  /// The fmnist-spytorch step with surrogate `s` (the benchmark's is InvSquareGrad(alpha: 100)).
  static func fmnist<S: SurrogateGradient>(seconds: Double, threads: Int, surrogate s: S) throws
    -> BenchResult
  {
    let steps = 100
    let batch = 256
    var (model, adam) = try spytorch(surrogate: s, lr: 2e-4, threads: threads)
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
    var k = 0
    let timing = BenchTimer.measure(seconds: seconds) {
      let (events, labels) = batches[k % batches.count]
      k += 1
      _ = model.trainStep(events: events, steps: steps, labels: labels, optimizer: &adam)
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

  /// `soma train`'s step against the fmnist-spytorch step in one process. Two comparisons, in
  /// alternating blocks of 10 timed steps:
  /// - the loop itself: on one network and one Adam (surrogate `s`, lr 2e-4), the benchmark's
  ///   8 cycled batches (its timed body: forward, BPTT, Adam) against fresh shuffled batches
  ///   of the whole training set through the training loop's own path (`BatchFeed`,
  ///   `Trainer.trainStep` with its NaN guard);
  /// - the defaults: a network as `soma train` builds it with its defaults (S2NN, its
  ///   learning rate, seed 0) through the same loop, against the benchmark's own network
  ///   (InvSquareGrad(alpha: 100), lr 2e-4) on its cached batches. Each network learns as it
  ///   goes, so the two step costs follow their own networks' activity.
  /// Across processes the steps drift apart by more than the differences being measured.
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
    // Two trainers as `soma train` makes them (its loop's step: `Trainer.trainStep`, with the
    // NaN guard), each also stepped on the benchmark's cached batches.
    func trainer<N: SurrogateGradient>(_ n: N, lr: Double) throws -> Trainer {
      let (model, adam) = try spytorch(surrogate: n, lr: lr, threads: threads)
      return Trainer(model: model, optimizer: adam, threads: threads)
    }
    let net = try trainer(s, lr: 2e-4)
    let cached = benchmarkBatches(data, steps: steps, batch: batch)
    let coder = LatencyEventCoder(timeSteps: steps, encoder: LatencyEncoder(timeSteps: steps))
    var epoch: UInt64 = 0
    func newFeed() -> BatchFeed {
      epoch += 1
      return BatchFeed(
        order: shuffledIndices(count: data.count, seed: epoch), batchSize: batch, images: data,
        coder: coder, threads: threads)
    }
    let defaults = try trainer(S2NN(), lr: TrainCommand.defaultLearningRate(for: S2NN()))
    let spec = try trainer(InvSquareGrad(alpha: 100), lr: 2e-4)
    // One feed for both loop-side networks: its next batch is encoded during whichever step
    // runs before it, as in `soma train`.
    var feed = newFeed()
    defer { feed.cancel() }
    var (k, kSpec) = (0, 0)
    // Per kind of timed step: hidden spikes and samples summed (the loop's last batch of an
    // epoch is a partial one).
    typealias Activity = (spikes: Int, samples: Int)
    var activity = [Activity](repeating: (0, 0), count: 4)
    var kind = 0
    func record(_ step: CompiledNetwork<Float>.Step, samples: Int) {
      activity[kind].spikes += step.spikeCounts.first ?? 0
      activity[kind].samples += samples
    }
    func benchStep(_ t: Trainer, _ k: inout Int) {
      let (events, labels) = cached[k % cached.count]
      k += 1
      let step = t.model.trainStep(events: events, steps: steps, labels: labels, optimizer: &t.optimizer)
      record(step, samples: batch)
    }
    func loopStep(_ t: Trainer) throws {
      guard let (idx, events) = feed.next() else {
        feed = newFeed()
        return try loopStep(t)
      }
      let labels = idx.map { data.labels[$0] }
      guard let step = t.trainStep(events: events, steps: steps, labels: labels)
      else { throw CLIError("fmnist-train-loop: the loss became NaN or infinite") }
      record(step, samples: labels.count)
    }
    for t in [net, defaults, spec] { t.rememberGoodParameters() }
    for _ in 0..<3 {
      benchStep(net, &k)
      try loopStep(net)
      benchStep(spec, &kSpec)
      try loopStep(defaults)
    }
    // Blocks of 10 timed steps of one kind, the kinds in turn.
    var times: [[Double]] = [[], [], [], []]
    activity = [Activity](repeating: (0, 0), count: 4)
    func block(_ k: Int, _ body: () throws -> Void) rethrows {
      kind = k
      for _ in 0..<10 {
        let t0 = BenchTimer.now()
        try body()
        times[k].append((BenchTimer.now() - t0) * 1e3)
      }
    }
    let end = BenchTimer.now() + 4 * seconds
    while BenchTimer.now() < end || times[0].count < 10 {
      block(0) { benchStep(net, &k) }
      try block(1) { try loopStep(net) }
      block(2) { benchStep(spec, &kSpec) }
      try block(3) { try loopStep(defaults) }
    }
    let ms = times.map { BenchTimer.median($0) }
    let named = ", surrogate \(SurrogateSpec.canonical(s))"
    let ratio = { (a: Double, b: Double) in String(format: "%.3f", a / b) }
    // What the step's cost follows: hidden spikes per step.
    let busy = { (k: Int) in
      let n = Double(Swift.max(times[k].count, 1))
      return String(format: "; %.0f hidden spikes per step", Double(activity[k].spikes) / n)
    }
    return [
      BenchResult(
        name: "fmnist-spytorch", msPerCall: ms[0], calls: times[0].count,
        note: "in the same process as the training loop\(named), lr 2e-4"),
      BenchResult(
        name: "fmnist-train-loop", msPerCall: ms[1], calls: times[1].count,
        note: "training loop / benchmark step \(ratio(ms[1], ms[0])) (one network\(named))"),
      BenchResult(
        name: "fmnist-spytorch-own", msPerCall: ms[2], calls: times[2].count,
        note: "the benchmark's own network (InvSquareGrad:alpha=100.0, lr 2e-4), same process"
          + busy(2)),
      BenchResult(
        name: "fmnist-train-defaults", msPerCall: ms[3], calls: times[3].count,
        note: "soma train's defaults (S2NN, lr \(TrainCommand.defaultLearningRate(for: S2NN()))) "
          + "through the loop / the benchmark's own step \(ratio(ms[3], ms[2]))" + busy(3)),
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
