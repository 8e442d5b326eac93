import Foundation
import Soma
import Testing

@testable import SomaTrain

/// N processes of a data-parallel run simulated by N threads of this process: the same
/// `ProcessGroup` contract as MPI (every member blocks in `allReduceSum` until all have given
/// their buffer, then each gets the sums, added in rank order).
final class ThreadGroup: @unchecked Sendable {
  let size: Int
  private let lock = NSCondition()
  private var contributions: [[Double]]
  private var result: [Double] = []
  private var arrived = 0
  private var generation = 0

  /// The channel of the reductions inside the passes (`allReduceSumInPass`, MPI's duplicated
  /// communicator): BatchNorm's blocking sums go on there while the buckets' started reductions
  /// run on the members' queues here, and the two never meet.
  private(set) var inPass: ThreadGroup?

  init(size: Int, inPass: Bool = true) {
    self.size = size
    contributions = Array(repeating: [], count: size)
    if inPass { self.inPass = ThreadGroup(size: size, inPass: false) }
  }

  func member(_ rank: Int) -> Member { Member(group: self, rank: rank) }

  /// Sums `values` over the members, in rank order, rounding each partial sum as `round` does.
  func reduce(_ values: [Double], rank: Int, round: (Double) -> Double) -> [Double] {
    lock.lock()
    defer { lock.unlock() }
    let mine = generation
    contributions[rank] = values
    arrived += 1
    if arrived == size {
      result = contributions[0]
      for r in 1..<size {
        for i in result.indices { result[i] = round(result[i] + contributions[r][i]) }
      }
      arrived = 0
      generation += 1
      lock.broadcast()
    } else {
      while generation == mine { lock.wait() }
    }
    return result
  }

  /// A member's buffer handed to its reduction queue.
  struct Pending: @unchecked Sendable { let buffer: UnsafeMutableBufferPointer<Float> }

  final class Member: ProcessGroup, @unchecked Sendable {
    let group: ThreadGroup
    let rank: Int
    var size: Int { group.size }
    /// Reductions started without waiting (the bucketed path), counted.
    var started = 0
    /// Runs the started reductions one after the other, beside the member's own thread (as
    /// MPI's non-blocking reductions go on beside the training loop).
    let queue = DispatchQueue(label: "ThreadGroup.Member")
    init(group: ThreadGroup, rank: Int) { (self.group, self.rank) = (group, rank) }

    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
      started += 1
      let pending = Pending(buffer: buffer)
      queue.async { try? self.allReduceSum(pending.buffer) }
    }

    func waitForReductions() throws { queue.sync {} }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
      let sums = group.reduce(buffer.map(Double.init), rank: rank) { Double(Float($0)) }
      for i in buffer.indices { buffer[i] = Float(sums[i]) }
    }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
      let sums = group.reduce(Array(buffer), rank: rank) { $0 }
      for i in buffer.indices { buffer[i] = sums[i] }
    }

    /// Reductions made inside the passes, counted.
    var inPass = 0

    func allReduceSumInPass(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
      inPass += 1
      let sums = group.inPass!.reduce(Array(buffer), rank: rank) { $0 }
      for i in buffer.indices { buffer[i] = sums[i] }
    }
  }
}

/// The threads' results, each written once under a lock.
final class ThreadResults<R>: @unchecked Sendable {
  var results: [Result<R, any Error>?]
  init(_ size: Int) { results = Array(repeating: nil, count: size) }
}

/// Runs `body(rank)` on `size` threads at once and returns their results in rank order.
func onThreads<R: Sendable>(_ size: Int, _ body: @escaping @Sendable (Int) throws -> R) throws
  -> [R]
{
  let box = ThreadResults<R>(size)
  let done = DispatchGroup()
  let lock = NSLock()
  for rank in 0..<size {
    done.enter()
    let thread = Thread {
      let r = Result { try body(rank) }
      lock.lock()
      box.results[rank] = r
      lock.unlock()
      done.leave()
    }
    thread.stackSize = 8 << 20
    thread.start()
  }
  done.wait()
  return try box.results.map { try $0!.get() }
}

// Nested in TrainerTests, whose tests run one at a time: its Ctrl-C test sets the process-wide
// interrupt flag, which would stop a data-parallel run going on beside it.
extension TrainerTests {
  @Suite struct DataParallelTests {
    @Test(arguments: [(0, 1), (1, 1), (7, 2), (256, 2), (10, 3), (255, 4), (3, 4), (96, 64)])
    func slicesCoverEachItemOnceInRankOrder(count: Int, size: Int) {
      var next = 0
      for rank in 0..<size {
        let r = DataParallel.slice(count, rank: rank, of: size)
        #expect(r.lowerBound == next)
        #expect(r.count == count / size || r.count == count / size + 1)
        next = r.upperBound
      }
      #expect(next == count)
    }

    @Test func everyGlobalBatchIsSplitOverTheProcesses() {
      let order = Array((0..<70).reversed())
      let one = DataParallel.batches(order: order, batchSize: 32)
      #expect(one.map(\.global.count) == [32, 32, 6])
      #expect(one.allSatisfy { Array($0.global) == Array($0.local) })
      let parts = (0..<3).map { DataParallel.batches(order: order, batchSize: 32, rank: $0, of: 3) }
      for b in 0..<3 {
        #expect(Array(one[b].global) == parts.flatMap { Array($0[b].local) })
        #expect(parts.allSatisfy { Array($0[b].global) == Array(one[b].global) })
      }
      let skipped = DataParallel.batches(order: order, batchSize: 32, rank: 1, of: 2, skip: 2)
      #expect(skipped.count == 1 && Array(skipped[0].local) == [2, 1, 0])
    }

    // 4 global batches of 50 and one of 2: with 3 processes, process 0's part of it is empty.
    static let train = syntheticImages(count: 202, seed: 1)
    static let test = syntheticImages(count: 61, seed: 2)

    /// A small csnn: Conv2d → BatchNorm2d → IF → MaxPool2d → Linear → IF on 10×10 images,
    /// direct-coded (it trains on the autodiff tape).
    /// The networks' neuron: IF with a hard, detached reset and S2NN.
    static func neuron() throws -> IF<S2NN> {
      try IF(threshold: 1, reset: .zero, detachReset: true, surrogate: S2NN())
    }

    static func convNetwork() throws -> Sequential<Float> {
      var g = SomaRandom(seed: 3)
      return try Sequential<Float> {
        try Unflatten<Float>([1, 10, 10])
        try Conv2d<Float>(1, 4, kernelSize: 3, padding: 1, bias: false, using: &g)
        try BatchNorm2d<Float>(4)
        try neuron()
        try MaxPool2d<Float>(kernelSize: 2)
        Flatten<Float>()
        Linear<Float>(100, 10, bias: false, using: &g)
        try neuron()
      }
    }

    /// Two convolutions, each → BatchNorm2d → IF: the first BatchNorm normalises a
    /// direct-coded (repeated) input once, the second a spiking one at every step.
    static func deepConvNetwork() throws -> Sequential<Float> {
      var g = SomaRandom(seed: 4)
      return try Sequential<Float> {
        try Unflatten<Float>([1, 10, 10])
        try Conv2d<Float>(1, 4, kernelSize: 3, padding: 1, bias: false, using: &g)
        try BatchNorm2d<Float>(4)
        try neuron()
        try MaxPool2d<Float>(kernelSize: 2)
        try Conv2d<Float>(4, 4, kernelSize: 3, padding: 1, bias: false, using: &g)
        try BatchNorm2d<Float>(4)
        try neuron()
        Flatten<Float>()
        Linear<Float>(100, 10, bias: false, using: &g)
        try neuron()
      }
    }

    /// Linear → BatchNorm1d → IF twice, then the output layer: [T, batch, features], the first
    /// BatchNorm1d on a direct-coded input (normalised once), the second on spikes.
    static func batchNorm1dNetwork() throws -> Sequential<Float> {
      var g = SomaRandom(seed: 5)
      return try Sequential<Float> {
        Linear<Float>(100, 32, bias: false, using: &g)
        try BatchNorm1d<Float>(32, momentum: nil)
        try neuron()
        Linear<Float>(32, 16, bias: false, using: &g)
        try BatchNorm1d<Float>(16)
        try neuron()
        Linear<Float>(16, 10, bias: false, using: &g)
        try neuron()
      }
    }

    static func trainer(model: String, out: String?, epochs: Int = 2, threads: Int = 1) throws
      -> Trainer
    {
      let convolutional = ["conv", "deepconv", "bn1d"].contains(model)
      let net =
        switch model {
        case "mlp":
          try Models.mlp(inputs: 100, hidden: [24], outputs: 10, surrogate: S2NN(), seed: 3)
        case "conv": try convNetwork()
        case "deepconv": try deepConvNetwork()
        case "bn1d": try batchNorm1dNetwork()
        default:
          try Models.spytorch(inputs: 100, hidden: 32, outputs: 10, surrogate: S2NN(), seed: 3)
        }
      let loss =
        switch model {
        case "mlp": Models.mlpLoss
        case "spytorch": Models.spytorchLoss
        default: Models.csnnLoss
        }
      let trainer = try Trainer(
        network: net, loss: loss, learningRate: 5e-3, weightDecay: convolutional ? 0 : 0.1,
        encoding: convolutional
          ? .dense(DirectCurrentEncoder(timeSteps: 4)) : .latency(timeSteps: 12),
        epochs: epochs, batchSize: 50, seed: 3, threads: threads, outputDirectory: out)
      trainer.modelName = model
      trainer.log = { _ in }
      trainer.showsProgress = false
      return trainer
    }

    static func weights(_ t: Trainer) -> [[Float]] {
      t.optimizer.parameters.map { $0.value.contiguous().withUnsafeBufferPointer(Array.init) }
    }

    /// Every BatchNorm layer's running mean, running variance and batch count.
    static func statistics(_ t: Trainer) -> [[Float]] {
      Checkpoint.batchNormStates(t.network).flatMap {
        [$0.1.runningMean.scalars, $0.1.runningVar.scalars, [Float($0.1.batchesTracked)]]
      }
    }

    static func largestDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
      zip(a, b).map { x, y in zip(x, y).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
    }

    /// Two and three "processes" (threads) train to the weights one process reaches with the
    /// same seed and global batch, within Float rounding; only rank 0 writes files; the
    /// evaluation split over the ranks gives the one-process accuracy.
    @Test(arguments: ["spytorch", "mlp"], [2, 3])
    func processesReachTheOneProcessWeights(model: String, size: Int) throws {
      let one = try Self.trainer(model: model, out: nil)
      let oneHistory = try one.fit(train: Self.train, test: Self.test)
      let reference = Self.weights(one)
      let dir = try TemporaryDirectory()
      let group = ThreadGroup(size: size)
      let path = dir.path
      let runs = try onThreads(size) { rank in
        let t = try Self.trainer(model: model, out: path + "/run\(rank)")
        t.processGroup = group.member(rank)
        let history = try t.fit(train: Self.train, test: Self.test)
        return (Self.weights(t), history.map(\.testAccuracy), history.map(\.trainLoss))
      }
      for (rank, run) in runs.enumerated() {
        let diff = Self.largestDifference(run.0, reference)
        #expect(diff < 2e-5, "rank \(rank) of \(size): weights differ by \(diff)")
        #expect(run.0 == runs[0].0, "rank \(rank)'s weights differ from rank 0's")
        #expect(run.1 == oneHistory.map(\.testAccuracy))
        for (a, b) in zip(run.2, oneHistory.map(\.trainLoss)) { #expect(abs(a - b) < 1e-4) }
        let wrote = FileManager.default.fileExists(atPath: path + "/run\(rank)/final.safetensors")
        #expect(wrote == (rank == 0), "rank \(rank) wrote files: \(wrote)")
      }
      #expect(!FileManager.default.fileExists(atPath: path + "/run1"))
    }

    /// For a fixed number of processes the weights are the same bit for bit from run to run.
    @Test func aFixedNumberOfProcessesIsReproducible() throws {
      var runs: [[[Float]]] = []
      for _ in 0..<2 {
        let group = ThreadGroup(size: 2)
        runs.append(
          try onThreads(2) { rank in
            let t = try Self.trainer(model: "spytorch", out: nil, epochs: 1)
            t.processGroup = group.member(rank)
            try t.fit(train: Self.train, test: Self.test)
            return Self.weights(t)
          }[0])
      }
      #expect(runs[0] == runs[1])
    }

    /// A run resumed from its final checkpoint after epoch 1 ends where the uninterrupted run
    /// ends, bit for bit, with metrics.csv holding both epochs.
    /// (spytorch updates in its block plan, mlp in the kernels' layout, which the checkpoint
    /// moves to the parameters' own.)
    @Test(arguments: ["spytorch", "mlp"])
    func aResumedRunEndsWhereTheWholeRunEnds(model: String) throws {
      let whole = try Self.trainer(model: model, out: nil, threads: 2)
      try whole.fit(train: Self.train, test: Self.test)
      let dir = try TemporaryDirectory()
      let first = try Self.trainer(model: model, out: dir.path, epochs: 1, threads: 2)
      try first.fit(train: Self.train, test: Self.test)
      let second = try Self.trainer(model: model, out: dir.path, threads: 2)
      try second.resume(from: dir.path + "/final.safetensors")
      let history = try second.fit(train: Self.train, test: Self.test)
      #expect(history.map(\.epoch) == [2])
      #expect(try MetricsLog.read(dir.path + "/metrics.csv").map(\.epoch) == [1, 2])
      #expect(Self.weights(second) == Self.weights(whole))
      // The checkpoint still loads as an ordinary one.
      let loaded = try Checkpoint.load(dir.path + "/final.safetensors")
      #expect(loaded.metadata["epoch"] == "2")
      // Nothing is left to train at epoch 2 of 2.
      let third = try Self.trainer(model: model, out: dir.path, threads: 2)
      try third.resume(from: dir.path + "/final.safetensors")
      #expect(throws: TrainError.self) { try third.fit(train: Self.train, test: Self.test) }
    }

    /// A run resumed with another number of processes continues to the same weights (within
    /// Float rounding).
    @Test func aRunResumesWithAnotherNumberOfProcesses() throws {
      let whole = try Self.trainer(model: "mlp", out: nil)
      try whole.fit(train: Self.train, test: Self.test)
      let dir = try TemporaryDirectory()
      let first = try Self.trainer(model: "mlp", out: dir.path, epochs: 1)
      try first.fit(train: Self.train, test: Self.test)
      let group = ThreadGroup(size: 2)
      let path = dir.path
      let resumed = try onThreads(2) { rank in
        let t = try Self.trainer(model: "mlp", out: rank == 0 ? path : nil)
        t.processGroup = group.member(rank)
        try t.resume(from: path + "/final.safetensors")
        try t.fit(train: Self.train, test: Self.test)
        return Self.weights(t)
      }
      #expect(Self.largestDifference(resumed[0], Self.weights(whole)) < 2e-5)
    }

    @Test func resumingWithOtherSettingsIsRefused() throws {
      let dir = try TemporaryDirectory()
      let first = try Self.trainer(model: "mlp", out: dir.path, epochs: 1)
      try first.fit(train: Self.train, test: Self.test)
      let path = dir.path + "/final.safetensors"
      let otherBatch = try Self.trainer(model: "mlp", out: dir.path)
      otherBatch.batchSize = 40
      #expect(throws: TrainError.self) { try otherBatch.resume(from: path) }
      let otherNetwork = try Self.trainer(model: "spytorch", out: dir.path)
      #expect(throws: TrainError.self) { try otherNetwork.resume(from: path) }
      // best.safetensors records no optimizer state.
      #expect(throws: TrainError.self) {
        try Self.trainer(model: "mlp", out: dir.path).resume(from: dir.path + "/best.safetensors")
      }
    }

    // MARK: Buckets

    @Test func bucketsTakeTheParametersInReverseOrder() {
      let sizes = [10, 300, 5, 2000, 7]
      let b = GradientBuckets(sizes: sizes, thresholdBytes: 0, bucketBytes: 310 * 4)
      #expect(b.overlaps)
      // 7, then 2000 alone (over the cap), then 5 + 300 (within it), then 10.
      #expect(b.members == [[4], [3], [2, 1], [0]])
      #expect(b.ranges == [0..<7, 7..<2007, 2007..<2312, 2312..<2322])
      #expect(b.offsets == [2312, 2012, 2007, 7, 0])
      #expect(b.bucketOf == [3, 2, 2, 1, 0])
      #expect(b.total == 2322)
      // At most the threshold: one buffer in the parameters' order, as before buckets.
      let flat = GradientBuckets(sizes: sizes, thresholdBytes: 2322 * 4, bucketBytes: 310 * 4)
      #expect(!flat.overlaps && flat.members == [[0, 1, 2, 3, 4]])
      #expect(flat.offsets == [0, 10, 310, 315, 2315] && flat.ranges == [0..<2322])
      #expect(GradientBuckets(sizes: sizes, thresholdBytes: 2321 * 4, bucketBytes: 1).overlaps)
    }

    /// The backward pass hands over each parameter's gradient, complete, from the last layer
    /// to the first: per parameter on the tape (conv), per layer on the fused kernels (mlp).
    @Test(arguments: ["conv", "mlp"])
    func gradientsAreReadyFromTheLastLayerToTheFirst(model: String) throws {
      let t = try Self.trainer(model: model, out: nil)
      let params = t.optimizer.parameters
      let idx = Array(0..<20)
      let labels = idx.map { Self.train.labels[$0] }
      var order: [Int] = []
      var complete = true
      let reference = try Self.trainer(model: model, out: nil)
      func ready(_ v: Variable<Float>) {
        guard let k = params.firstIndex(where: { $0 === v }) else { return }
        order.append(k)
        complete = complete && v.grad != nil
      }
      if model == "conv" {
        let input = t.denseBatch(Self.train, idx[...])
        _ = t.model.lossAndGradients(input: input, labels: labels, gradientReady: ready)
        _ = reference.model.lossAndGradients(input: input, labels: labels)
      } else {
        let coder = LatencyEventCoder(timeSteps: 12, encoder: LatencyEncoder(timeSteps: 12))
        let events = coder.events(Self.train, indices: idx[...])
        _ = t.model.lossAndGradients(events: events, steps: 12, labels: labels, gradientReady: ready)
        _ = reference.model.lossAndGradients(events: events, steps: 12, labels: labels)
      }
      #expect(complete)
      #expect(order.sorted() == Array(params.indices), "each parameter once: \(order)")
      // Layer by layer from the output back (BatchNorm's weight and bias in either order).
      let shapes = order.map { params[$0].value.shape }
      if model == "conv" {
        #expect(shapes.first == [10, 100] && shapes.last == [4, 1, 3, 3], "\(shapes)")
      } else {
        #expect(shapes == [[10, 24], [10], [24, 100], [24]], "\(shapes)")
      }
      // The gradients are those of the pass without the callback.
      for (p, q) in zip(params, reference.optimizer.parameters) {
        #expect(p.grad?.scalars == q.grad?.scalars)
      }
    }

    /// Trains `model` on `size` thread "processes" with gradients of more than `threshold`
    /// bytes reduced in buckets of `bucket` bytes: rank 0's weights, every rank's BatchNorm
    /// statistics, reductions started without waiting and buckets started during the backward
    /// pass, and the number of buckets.
    static func processes(
      _ size: Int, _ model: String, threshold: Int, bucket: Int = 64, epochs: Int = 1
    ) throws -> (
        weights: [[Float]], statistics: [[[Float]]], started: [Int], buckets: Int, early: [Int]
      )
    {
      let group = ThreadGroup(size: size)
      let runs = try onThreads(size) { rank in
        let t = try Self.trainer(model: model, out: nil, epochs: epochs)
        t.bucketThresholdBytes = threshold
        t.bucketBytes = bucket
        let member = group.member(rank)
        t.processGroup = member
        try t.fit(train: Self.train, test: Self.test)
        let plan = GradientBuckets(
          sizes: t.optimizer.parameters.map(\.value.count), thresholdBytes: threshold,
          bucketBytes: bucket)
        return (
          Self.weights(t), Self.statistics(t), member.started, plan.members.count,
          t.bucketsStartedInBackward
        )
      }
      return (runs[0].0, runs.map(\.1), runs.map(\.2), runs[0].3, runs.map(\.4))
    }

    /// Gradients reduced in buckets while the backward pass goes on (the tape's per-parameter
    /// hook for the conv network, the fused kernels' per-layer one for the mlp) give the
    /// weights of the one flat reduction after it, and of one process, within Float rounding,
    /// and the same weights bit for bit from run to run.
    @Test(arguments: ["conv", "mlp"], [2, 3])
    func bucketedReductionsGiveTheFlatOnesWeights(model: String, size: Int) throws {
      let flat = try Self.processes(size, model, threshold: .max)
      let bucketed = try Self.processes(size, model, threshold: 0)
      let again = try Self.processes(size, model, threshold: 0)
      #expect(flat.started == Array(repeating: 0, count: size))
      // 5 steps per epoch (202 samples, batches of 50), each starting every bucket and the
      // totals, on every rank.
      let b = bucketed.buckets
      #expect(b >= 3, "\(b) buckets")
      #expect(bucketed.started == Array(repeating: 5 * (b + 1), count: size))
      // Every bucket started from the backward pass, as its last gradient came, except for
      // the mlp in the last step on 3 processes: its 2 samples leave rank 0 none, and no
      // backward pass. (The conv network's synchronised BatchNorm gives every process the whole
      // of that batch instead.)
      #expect(
        bucketed.early
          == (size == 3 && model == "mlp" ? [4 * b, 5 * b, 5 * b] : Array(repeating: 5 * b, count: size)))
      let diff = Self.largestDifference(bucketed.weights, flat.weights)
      #expect(diff < 1e-6, "bucketed and flat weights differ by \(diff)")
      #expect(bucketed.weights == again.weights)
      #expect(bucketed.statistics == again.statistics)
      let one = try Self.trainer(model: model, out: nil, epochs: 1)
      try one.fit(train: Self.train, test: Self.test)
      let d = Self.largestDifference(bucketed.weights, Self.weights(one))
      #expect(d < 2e-5, "bucketed and one-process weights differ by \(d)")
    }

    // MARK: BatchNorm

    /// Without synchronised BatchNorm, after a data-parallel epoch every process holds the same
    /// BatchNorm statistics, the mean of what each gathered, and rank 0's checkpoint records
    /// them.
    @Test func batchNormStatisticsAreAveragedOverTheProcesses() throws {
      let group = ThreadGroup(size: 2)
      let dir = try TemporaryDirectory()
      let path = dir.path
      let runs = try onThreads(2) { rank in
        let t = try Self.trainer(model: "conv", out: path + "/run\(rank)", epochs: 1)
        t.processGroup = group.member(rank)
        t.synchronizesBatchNorm = false
        try t.fit(train: Self.train, test: Self.test)
        let own = Self.statistics(t)
        // Different statistics on the two ranks, then averaged.
        let state = Checkpoint.batchNormStates(t.network)[0].1
        state.runningMean = Tensor([Float(rank), 2, 4, 8])
        state.runningVar = Tensor([1, Float(3 * rank + 1), 1, 1])
        state.batchesTracked = 10 + rank
        try t.averageBatchNormStatistics(group.member(rank))
        return (own, Self.statistics(t))
      }
      #expect(runs[0].0 == runs[1].0)
      #expect(runs[0].0[2] == [5])  // 5 steps, each rank normalising its part of each batch
      #expect(runs[0].0[0] != [Float](repeating: 0, count: 4))
      let saved = try Checkpoint.load(path + "/run0/final.safetensors").network
      let savedState = Checkpoint.batchNormStates(saved)[0].1
      #expect(
        [savedState.runningMean.scalars, savedState.runningVar.scalars] == Array(runs[0].0[0..<2]))
      for run in runs {
        #expect(run.1 == [[0.5, 2, 4, 8], [1, 2.5, 1, 1], [11]])  // 10.5 rounds up
      }
    }

    /// With synchronised BatchNorm (the default), 2 and 3 "processes" train BatchNorm networks
    /// to the weights AND running statistics of one process with the same seed and global
    /// batch, within Float rounding: every process normalises by the whole batch's statistics
    /// and back-propagates through them. The batches of 50 split 25 + 25 and 16 + 17 + 17; the
    /// last batch of 2 splits 1 + 1 (a BatchNorm1d slice of one sample) or, on 3 processes, goes
    /// whole to each. The statistics are the same bit for bit on every process, each BatchNorm
    /// layer makes 2 reductions per step (forward, backward), and the layers are left without
    /// a synchroniser after `fit`.
    ///
    /// Tolerance 2e-5, as for the networks without BatchNorm: measured ≤ 6e-8 (a few ulps of
    /// weights near 1) after 10 steps. bn1d trains on 201 samples, its last batch a single one
    /// (whole on every process): with 202, its last batch of 2 normalises each feature of the
    /// first BatchNorm1d (one value per sample) to about ±1, and the run becomes sensitive to
    /// rounding (measured: 1 + 1 samples end 2e-5 from one process, the batch whole on 3
    /// processes, its gradient summed as three thirds, 1e-4).
    @Test(arguments: ["conv", "deepconv", "bn1d"], [2, 3])
    func batchNormNetworksReachTheOneProcessWeightsAndStatistics(model: String, size: Int) throws
    {
      let train = model == "bn1d" ? syntheticImages(count: 201, seed: 1) : Self.train
      let one = try Self.trainer(model: model, out: nil)
      let oneHistory = try one.fit(train: train, test: Self.test)
      let (reference, referenceStatistics) = (Self.weights(one), Self.statistics(one))
      let group = ThreadGroup(size: size)
      let runs = try onThreads(size) { rank in
        let t = try Self.trainer(model: model, out: nil)
        let member = group.member(rank)
        t.processGroup = member
        let history = try t.fit(train: train, test: Self.test)
        let left = Trainer.allBatchNormStates(t.network).filter { $0.synchronizer != nil }.count
        return (
          Self.weights(t), Self.statistics(t), history.map(\.testAccuracy),
          history.map(\.trainLoss), member.inPass, left
        )
      }
      let layers = Trainer.allBatchNormStates(one.network).count
      for (rank, run) in runs.enumerated() {
        let diff = Self.largestDifference(run.0, reference)
        #expect(diff < 2e-5, "\(model), rank \(rank) of \(size): weights differ by \(diff)")
        let statDiff = Self.largestDifference(run.1, referenceStatistics)
        #expect(statDiff < 2e-5, "\(model), rank \(rank): statistics differ by \(statDiff)")
        #expect(run.0 == runs[0].0 && run.1 == runs[0].1, "rank \(rank) differs from rank 0")
        #expect(run.2 == oneHistory.map(\.testAccuracy))
        for (a, b) in zip(run.3, oneHistory.map(\.trainLoss)) { #expect(abs(a - b) < 1e-4) }
        #expect(run.4 == 2 * 5 * 2 * layers)  // 2 epochs of 5 steps
        #expect(run.5 == 0)
      }
    }

    /// The same runs without synchronisation (`synchronizesBatchNorm` false, each process
    /// normalising its own slice) end elsewhere: the test above can fail.
    @Test(arguments: ["conv", "bn1d"])
    func unsynchronisedBatchNormTrainsOtherwise(model: String) throws {
      let one = try Self.trainer(model: model, out: nil)
      try one.fit(train: Self.train, test: Self.test)
      let group = ThreadGroup(size: 2)
      let runs = try onThreads(2) { rank in
        let t = try Self.trainer(model: model, out: nil)
        let member = group.member(rank)
        t.processGroup = member
        t.synchronizesBatchNorm = false
        try t.fit(train: Self.train, test: Self.test)
        return (Self.weights(t), Self.statistics(t), member.inPass)
      }
      let diff = Self.largestDifference(runs[0].0, Self.weights(one))
      #expect(diff > 1e-3, "unsynchronised weights differ by only \(diff)")
      let statDiff = Self.largestDifference(runs[0].1, Self.statistics(one))
      #expect(statDiff > 1e-3, "unsynchronised statistics differ by only \(statDiff)")
      #expect(runs.map(\.2) == [0, 0])
    }

    /// A conv run resumed after epoch 1 ends where the uninterrupted run ends, BatchNorm's
    /// running statistics included, bit for bit; with 2 processes too.
    @Test(arguments: [1, 2])
    func aResumedConvRunEndsWhereTheWholeRunEnds(processes: Int) throws {
      func run(epochs: Int, out: String?, resume: Bool) throws -> ([[Float]], [[Float]]) {
        let group = ThreadGroup(size: processes)
        return try onThreads(processes) { rank in
          let t = try Self.trainer(model: "conv", out: rank == 0 ? out : nil, epochs: epochs)
          if processes > 1 { t.processGroup = group.member(rank) }
          if resume { try t.resume(from: out! + "/final.safetensors") }
          try t.fit(train: Self.train, test: Self.test)
          return (Self.weights(t), Self.statistics(t))
        }[0]
      }
      let whole = try run(epochs: 2, out: nil, resume: false)
      let dir = try TemporaryDirectory()
      let first = try run(epochs: 1, out: dir.path, resume: false)
      #expect(first.1 != whole.1)
      let resumed = try run(epochs: 2, out: dir.path, resume: true)
      #expect(resumed.0 == whole.0)
      #expect(resumed.1 == whole.1)
    }
  }
}
