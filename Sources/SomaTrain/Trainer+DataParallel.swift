import SomaData
import SomaNN

/// What one training step adds to its epoch's numbers, over the whole global batch.
struct StepTotals {
  /// The loss summed over the batch's samples (mean loss × samples).
  var lossSum: Double
  var correct: Int
  var count: Int
  /// Ctrl-C was pressed (on any process): stop after this step.
  var stop: Bool
}

/// Where each parameter's gradient goes in a data-parallel step's flat buffer, and in which
/// buckets the buffer is reduced.
struct GradientBuckets: Equatable {
  /// The parameters' element counts, in the optimizer's order.
  var sizes: [Int]
  /// The parameter indices of each bucket, in the order the buckets are reduced.
  var members: [[Int]]
  /// Each parameter's offset in the buffer.
  var offsets: [Int]
  /// Each bucket's part of the buffer (contiguous, in order, covering 0..<total).
  var ranges: [Range<Int>]
  /// Each parameter's bucket.
  var bucketOf: [Int]
  /// All the gradients' elements.
  var total: Int
  /// False: one bucket of every parameter in order, reduced after the backward pass.
  var overlaps: Bool

  /// One buffer of all gradients in the parameters' order when they take at most
  /// `thresholdBytes` (as Floats), else buckets of the parameters in reverse order (the last
  /// layers' gradients are ready first), each filled while the next parameter keeps it within
  /// `bucketBytes` (a larger parameter has a bucket of its own).
  init(sizes: [Int], thresholdBytes: Int, bucketBytes: Int) {
    self.sizes = sizes
    total = sizes.reduce(0, +)
    overlaps = total * MemoryLayout<Float>.size > thresholdBytes && sizes.count > 1
    if overlaps {
      let cap = Swift.max(1, bucketBytes / MemoryLayout<Float>.size)
      members = []
      var current: [Int] = []
      var filled = 0
      for k in sizes.indices.reversed() {
        if !current.isEmpty && filled + sizes[k] > cap {
          members.append(current)
          (current, filled) = ([], 0)
        }
        current.append(k)
        filled += sizes[k]
      }
      if !current.isEmpty { members.append(current) }
    } else {
      members = [Array(sizes.indices)]
    }
    offsets = Array(repeating: 0, count: sizes.count)
    bucketOf = offsets
    ranges = []
    var at = 0
    for (b, bucket) in members.enumerated() {
      let first = at
      for k in bucket {
        (offsets[k], bucketOf[k]) = (at, b)
        at += sizes[k]
      }
      ranges.append(first..<at)
    }
  }
}

/// SyncBatchNorm's sums over a process group (`ProcessGroup.allReduceSumInPass`), installed by
/// `fit` on every BatchNorm layer of a data-parallel run; each step sets this process's share
/// of the batch. The layers cannot throw inside the passes: the first failed reduction is kept
/// (the later ones are skipped, leaving this process's own values) and the step throws it.
final class GroupBatchNormSynchronizer: BatchNormSynchronizer {
  let group: any ProcessGroup
  var lossShare = 1.0
  var wholeBatch = false
  var failure: (any Error)?
  var rank: Int { group.rank }
  var size: Int { group.size }

  init(_ group: any ProcessGroup) { self.group = group }

  func sum(_ values: UnsafeMutableBufferPointer<Double>) {
    guard failure == nil else { return }
    do { try group.allReduceSumInPass(values) } catch { failure = error }
  }

  /// Throws the failure of a reduction since the last call.
  func check() throws {
    if let failure {
      self.failure = nil
      throw failure
    }
  }
}

extension Trainer {
  /// The running statistics of every BatchNorm layer of `network` and of the `Sequential`s in
  /// it, in the layers' order.
  static func allBatchNormStates(_ network: Sequential<Float>) -> [BatchNormState<Float>] {
    network.layers.flatMap { layer -> [BatchNormState<Float>] in
      if let bn = layer.base as? BatchNorm2d<Float> { return [bn.state] }
      if let bn = layer.base as? BatchNorm1d<Float> { return [bn.state] }
      if let inner = layer.base as? Sequential<Float> { return allBatchNormStates(inner) }
      return []
    }
  }

  /// Gradients of more than this many bytes (4 per parameter) are reduced in buckets that
  /// start while the backward pass goes on, as PyTorch's DDP does; up to it, in one buffer
  /// after the pass (the default network's 318 KB). 1 MB: below it one message costs little
  /// more than its latency, and the backward pass left after the first bucket is short.
  public static let defaultBucketThresholdBytes = 1 << 20
  /// The size buckets fill up to (a larger parameter has its own): 1 MB, DDP's first bucket.
  public static let defaultBucketBytes = 1 << 20

  /// One step on this process's part of a global batch of `globalCount` samples: the gradients
  /// of the local mean loss, each weighted by localCount / globalCount (1 / processes when
  /// every process has the `whole` batch), are summed over the processes (in buckets, or one
  /// flat buffer: see `GradientBuckets`; the loss, the correct count and the Ctrl-C flag
  /// behind them), so every process holds the gradient of the global batch's mean loss, as one
  /// process would compute it, and applies the same Adam update. Synchronised BatchNorm layers
  /// (`batchNormSync`) learn this process's weight for their backward pass.
  /// `gradients` runs the forward and backward pass, calling its argument with each parameter
  /// whose gradient is complete. Returns nil, with the parameters as before the step, when the
  /// loss or a parameter became NaN or infinite (the same decision on every process, since
  /// they hold the same sums and weights).
  ///
  /// Buckets are started in their order on every process, each once all its parameters and
  /// all earlier buckets are ready (so the processes' collectives match whatever order the
  /// gradients come in); each element is summed by the same reduction whatever the timing, so
  /// a fixed number of processes gives bit-identical results run to run.
  func dataParallelStep(
    _ group: any ProcessGroup, localCount: Int, globalCount: Int, whole: Bool = false,
    gradients: (((Variable<Float>) -> Void)?) -> CompiledNetwork<Float>.Step
  ) throws -> StepTotals? {
    let params = optimizer.parameters
    for p in params { p.zeroGrad() }
    let plan = GradientBuckets(
      sizes: params.map { $0.value.count }, thresholdBytes: bucketThresholdBytes,
      bucketBytes: bucketBytes)
    let total = plan.total
    if reduceBuffer.count != total + 3 { reduceBuffer = [Float](repeating: 0, count: total + 3) }
    let weight = whole ? 1 / Float(group.size) : Float(localCount) / Float(globalCount)
    if let sync = batchNormSync {
      sync.lossShare = whole ? 1 / Double(group.size) : Double(localCount) / Double(globalCount)
      sync.wholeBatch = whole
    }
    // The loss and correct count of a whole batch come from process 0 alone.
    let counted = !whole || group.rank == 0
    var local: CompiledNetwork<Float>.Step? = nil
    var communication = 0.0
    try reduceBuffer.withUnsafeMutableBufferPointer { buffer in
      let flat = buffer
      /// Parameter k's weighted gradient (zeros without one) into its place.
      func pack(_ k: Int) {
        let at = plan.offsets[k]
        let n = plan.sizes[k]
        if let g = params[k].grad, localCount > 0 {
          g.contiguous().withUnsafeBufferPointer { src in
            for i in 0..<n { flat[at + i] = src[i] * weight }
          }
        } else {
          for i in 0..<n { flat[at + i] = 0 }
        }
      }
      func timed(_ body: () throws -> Void) rethrows {
        let start = monotonicSeconds()
        defer { communication += monotonicSeconds() - start }
        try body()
      }
      func totals() {
        flat[total] = counted ? local.map { $0.loss * Float(localCount) } ?? 0 : 0
        flat[total + 1] = counted ? Float(local?.correct ?? 0) : 0
        flat[total + 2] = stopFlag.isRequested ? 1 : 0
      }
      if plan.overlaps {
        var remaining = plan.members.map(\.count)
        var next = 0
        var failure: Error? = nil
        // Starts the ready buckets in order (none after a failure: the job is broken).
        func startReady() {
          while failure == nil && next < remaining.count && remaining[next] == 0 {
            for k in plan.members[next] { pack(k) }
            let r = plan.ranges[next]
            do {
              try timed {
                try group.startAllReduceSum(UnsafeMutableBufferPointer(rebasing: flat[r]))
              }
            } catch { failure = error }
            next += 1
          }
        }
        if localCount > 0 {
          let index = Dictionary(
            params.enumerated().map { (ObjectIdentifier($1), $0) }, uniquingKeysWith: { a, _ in a })
          var ready = [Bool](repeating: false, count: params.count)
          local = gradients { v in
            guard let k = index[ObjectIdentifier(v)], !ready[k] else { return }
            ready[k] = true
            remaining[plan.bucketOf[k]] -= 1
            let before = next
            startReady()
            self.bucketsStartedInBackward += next - before
            if failure == nil {
              do { try timed { try group.progressReductions() } } catch { failure = error }
            }
          }
        }
        // Parameters the pass gave no gradient (all of them on a process without samples).
        for b in remaining.indices { remaining[b] = 0 }
        startReady()
        if let failure { throw failure }
        try batchNormSync?.check()
        totals()
        try timed {
          try group.startAllReduceSum(UnsafeMutableBufferPointer(rebasing: flat[total...]))
          try group.waitForReductions()
        }
      } else {
        if localCount > 0 { local = gradients(nil) }
        try batchNormSync?.check()
        for k in params.indices { pack(k) }
        totals()
        try timed { try group.allReduceSum(flat) }
      }
      for (k, p) in params.enumerated() {
        let at = plan.offsets[k]
        var g = Tensor<Float>.zeros(p.value.shape)
        g.withUnsafeMutableBufferPointer { dst in
          for i in 0..<plan.sizes[k] { dst[i] = flat[at + i] }
        }
        p.grad = g
      }
    }
    reduceSeconds += communication
    let lossSum = reduceBuffer[total]
    optimizer.step()
    guard lossSum.isFinite, params.allSatisfy({ Self.allFinite($0.value) }) else {
      for (p, good) in zip(params, lastGood) { p.value = good.copiedContiguous() }
      return nil
    }
    rememberGoodParameters()
    return StepTotals(
      lossSum: Double(lossSum), correct: Int(reduceBuffer[total + 1].rounded()),
      count: globalCount, stop: reduceBuffer[total + 2] > 0)
  }

  /// The step on `local`'s samples of a global batch, data-parallel when `group` is set, else
  /// exactly as one process trains (Adam fused into the backward pass).
  func step(
    events: SpikeEvents?, local: ArraySlice<Int>, globalCount: Int, split: LabeledImages,
    group: (any ProcessGroup)?, whole: Bool = false
  ) throws -> StepTotals? {
    let labels = local.map { split.labels[$0] }
    let steps = encoding.timeSteps
    guard let group else {
      let r =
        if let events {
          trainStep(events: events, steps: steps, labels: labels)
        } else {
          trainStep(input: denseBatch(split, local), labels: labels)
        }
      return r.map {
        StepTotals(
          lossSum: Double($0.loss) * Double(local.count), correct: $0.correct, count: local.count,
          stop: stopFlag.isRequested)
      }
    }
    return try dataParallelStep(
      group, localCount: local.count, globalCount: globalCount, whole: whole
    ) { ready in
      if let events {
        return model.lossAndGradients(
          events: events, steps: steps, labels: labels, gradientReady: ready)
      }
      return model.lossAndGradients(
        input: denseBatch(split, local), labels: labels, gradientReady: ready)
    }
  }

  /// How the epoch line describes the gradients' reduction: " in N buckets during the
  /// backward pass", or nothing for one buffer after it.
  var reductionPlan: String {
    let plan = GradientBuckets(
      sizes: optimizer.parameters.map { $0.value.count }, thresholdBytes: bucketThresholdBytes,
      bucketBytes: bucketBytes)
    return plan.overlaps ? " in \(plan.members.count) buckets during the backward pass" : ""
  }

  /// Replaces the running statistics of every BatchNorm layer, on every process, by their
  /// mean over the processes (each has normalised only its slices of the batches, and
  /// estimated the statistics from them): running mean and variance element by element,
  /// `num_batches_tracked` rounded. Without synchronised BatchNorm (`synchronizesBatchNorm`
  /// false), `fit` calls it before each evaluation, which the processes split and which must
  /// see one network, and so before each checkpoint; synchronised layers need no average, their
  /// statistics being the same on every process.
  func averageBatchNormStatistics(_ group: any ProcessGroup) throws {
    let states = Self.allBatchNormStates(network)
    guard !states.isEmpty else { return }
    var flat: [Double] = []
    for s in states {
      flat += s.runningMean.scalars.map(Double.init) + s.runningVar.scalars.map(Double.init)
      flat.append(Double(s.batchesTracked))
    }
    let sums = try group.sum(flat)
    let n = Double(group.size)
    var at = 0
    func mean(_ like: Tensor<Float>) -> Tensor<Float> {
      let c = like.count
      defer { at += c }
      return Tensor(sums[at..<(at + c)].map { Float($0 / n) }, shape: like.shape)
    }
    for s in states {
      s.runningMean = mean(s.runningMean)
      s.runningVar = mean(s.runningVar)
      s.batchesTracked = Int((sums[at] / n).rounded())
      at += 1
    }
  }

  /// The confusion matrix summed over the processes, each having evaluated its slice of a
  /// split of `count` samples (whose labels `checkSizes` found in range, so the diagonal counts
  /// the correct predictions).
  func reduced(_ e: Evaluation, count: Int, group: any ProcessGroup) throws -> Evaluation {
    let classes = e.confusion.count
    let correct = e.confusion.indices.reduce(0) { $0 + e.confusion[$1][$1] }
    var flat = e.confusion.flatMap { $0.map(Double.init) }
    flat.append(Double(correct))
    let sums = try group.sum(flat)
    var confusion = e.confusion
    for y in 0..<classes {
      for p in 0..<classes { confusion[y][p] = Int(sums[y * classes + p]) }
    }
    let total = Int(sums[classes * classes])
    return Evaluation(
      accuracy: count == 0 ? 0 : Double(total) / Double(count), confusion: confusion)
  }
}
