import SomaData
import SomaNN
import SomaSurrogate

/// Training-step benchmarks of the networks in shared/BENCHMARKS.md: each step is forward over
/// all T steps, BPTT backward and an Adam update, timed after warm-up (median).
enum NetworkBench {
  static let workloads = ["mlp-small", "mlp-single-step", "mlp-deep", "fmnist-spytorch"]

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
      let coder = LatencyEventCoder(timeSteps: steps, encoder: LatencyEncoder(timeSteps: steps))
      for k in 0..<8 {
        let pick = shuffledIndices(count: data.count, seed: UInt64(k))[0..<batch]
        batches.append((coder.events(data, indices: pick), pick.map { data.labels[$0] }))
      }
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
