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

  init(size: Int) {
    self.size = size
    contributions = Array(repeating: [], count: size)
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

  final class Member: ProcessGroup {
    let group: ThreadGroup
    let rank: Int
    var size: Int { group.size }
    init(group: ThreadGroup, rank: Int) { (self.group, self.rank) = (group, rank) }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
      let sums = group.reduce(buffer.map(Double.init), rank: rank) { Double(Float($0)) }
      for i in buffer.indices { buffer[i] = Float(sums[i]) }
    }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
      let sums = group.reduce(Array(buffer), rank: rank) { $0 }
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

    static func trainer(model: String, out: String?, epochs: Int = 2, threads: Int = 1) throws
      -> Trainer
    {
      let net =
        model == "mlp"
        ? try Models.mlp(inputs: 100, hidden: [24], outputs: 10, surrogate: S2NN(), seed: 3)
        : try Models.spytorch(inputs: 100, hidden: 32, outputs: 10, surrogate: S2NN(), seed: 3)
      let trainer = try Trainer(
        network: net, loss: model == "mlp" ? Models.mlpLoss : Models.spytorchLoss,
        learningRate: 5e-3, weightDecay: 0.1, encoding: .latency(timeSteps: 12), epochs: epochs,
        batchSize: 50, seed: 3, threads: threads, outputDirectory: out)
      trainer.modelName = model
      trainer.log = { _ in }
      trainer.showsProgress = false
      return trainer
    }

    static func weights(_ t: Trainer) -> [[Float]] {
      t.optimizer.parameters.map { $0.value.contiguous().withUnsafeBufferPointer(Array.init) }
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
  }
}
