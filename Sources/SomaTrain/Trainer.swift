import Foundation
import SomaData
import SomaKernels
import SomaNN

/// How a trainer turns a batch of images into spikes.
public enum InputEncoding {
  /// The latency code of `LatencyEncoder(timeSteps:)` (bright pixels spike early, dark ones
  /// never), built straight from the pixel bytes as events and encoded during the previous
  /// step. SpyTorch's network (`Models.spytorch`) runs its event plan on it.
  case latency(timeSteps: Int)
  /// Any dense encoder: the batch's images [batch, features] in [0, 1] become
  /// [T, batch, features] (e.g. `PoissonEncoder`, `DirectCurrentEncoder`).
  case dense(any SpikeEncoder)

  /// The simulation steps T per sample.
  public var timeSteps: Int {
    switch self {
    case .latency(let t): return t
    case .dense(let e): return e.timeSteps
    }
  }

  /// How checkpoints record it.
  public var name: String {
    switch self {
    case .latency: return "latency"
    case .dense(let e): return "\(type(of: e))"
    }
  }
}

/// Test accuracy and confusion matrix.
public struct Evaluation: Sendable {
  public var accuracy: Double
  /// [true class][predicted class] counts.
  public var confusion: [[Int]]
}

/// Training stopped by Ctrl-C (after `Trainer.installInterruptHandler()`): the step finished
/// and `checkpoint` holds the weights.
public struct TrainingInterrupted: Error, CustomStringConvertible {
  public var epoch: Int
  public var step: Int
  public var checkpoint: String?
  public var description: String {
    "interrupted at epoch \(epoch), step \(step)"
      + (checkpoint.map { "; checkpoint written to \($0)" } ?? "")
  }
}

/// The training loop of `soma train`, for any compiled network: shuffled mini-batches (encoded
/// during the previous step on the worker pool's idle time), Adam, a NaN guard, test accuracy
/// after each epoch, Ctrl-C, and in `outputDirectory` the checkpoints `final.safetensors` and
/// `best.safetensors`, `metrics.csv` and `curves.svg`.
///
/// ```swift
/// let net = try Sequential<Float> {
///   Linear<Float>(784, 256, seed: 1); try LIF(beta: 0.9, surrogate: S2NN())
///   Linear<Float>(256, 10, seed: 2); try LIF(beta: 0.9, surrogate: S2NN())
/// }
/// let trainer = try Trainer(network: net, loss: .spikeCountCrossEntropy, learningRate: 1e-3,
///                           encoding: .latency(timeSteps: 50), epochs: 5, outputDirectory: "runs/mlp")
/// let data = try FashionMNIST()
/// let history = try trainer.fit(train: data.train, test: data.test)
/// ```
public final class Trainer {
  /// The network being trained (its parameters are `model.network`'s).
  public let model: CompiledNetwork<Float>
  /// Holds the network's parameters (`network.parameterVariables`) and Adam's moments.
  public var optimizer: Adam<Float>
  /// Sets the learning rate before each step from the step's index over the whole run (0, 1,
  /// …, `epochs` × steps per epoch − 1), when given.
  public var schedule: (any LearningRateSchedule)?
  /// How `schedule` is named in the first log line (e.g. "cosine").
  public var scheduleName: String?
  public var encoding: InputEncoding
  public var epochs: Int
  public var batchSize: Int
  /// Seeds the shuffling (epoch e uses seed &+ e).
  public var seed: UInt64
  /// Parallel parts for the network's loops and the batch encoding (also `model.threads`).
  public var threads: Int
  /// Where checkpoints, metrics.csv and curves.svg go (nil: nothing is written).
  public var outputDirectory: String?
  /// Replace an earlier run in `outputDirectory` instead of refusing it.
  public var overwrite = false
  /// The model name checkpoints record (`spytorch`, `mlp`, …).
  public var modelName = "custom"
  /// What stops `fit` cleanly after a step: Ctrl-C's flag by default. (Tests give each trainer
  /// its own, so one test's stop request never reaches another's loop.)
  package var stopFlag = interruptRequested
  /// What the first log line calls the network (default: its widths and the loss; the line
  /// also names `checkpointMetadata["surrogate"]` when set).
  public var summary: String?
  /// Extra metadata for every checkpoint (surrogate, time constants, …).
  public var checkpointMetadata: [String: String] = [:]
  /// The title of curves.svg.
  public var curvesTitle = "Training curves"
  /// Where log lines go: the first line, one per epoch, the interrupt notice (stdout by
  /// default, flushed per line).
  public var log: (String) -> Void = {
    print($0)
    fflush(nil)  // one line per epoch even when stdout is a pipe or a file
  }
  /// Called after each epoch with its metrics.
  public var onEpoch: ((EpochMetrics) -> Void)?
  /// Draws a progress bar on a terminal.
  public var showsProgress = true

  /// The processes of a data-parallel run (`SomaMPI`'s `MPIProcessGroup` under `mpirun`):
  /// with more than one, each trains on its slice of every global batch of `batchSize`, the
  /// gradients are summed over all of them before each update, and only process 0 prints and
  /// writes files. nil (or one process) trains exactly as a single process does.
  public var processGroup: (any ProcessGroup)?

  /// Data-parallel gradients of more than this many bytes are summed in buckets started while
  /// the backward pass goes on (`defaultBucketThresholdBytes`, 1 MB); smaller ones in one
  /// buffer after it.
  public var bucketThresholdBytes = Trainer.defaultBucketThresholdBytes
  /// The size those buckets fill up to (`defaultBucketBytes`, 1 MB).
  public var bucketBytes = Trainer.defaultBucketBytes
  /// With several processes, BatchNorm layers normalise by the statistics of the whole global
  /// batch, summed over the processes in every forward and backward pass (PyTorch's
  /// SyncBatchNorm), so that N processes train like one (true, the default). False: each
  /// process normalises its own slice, and the running statistics are averaged over the
  /// processes after every epoch (PyTorch's DDP without SyncBatchNorm).
  public var synchronizesBatchNorm = true
  /// The synchroniser on the network's BatchNorm layers during a data-parallel `fit`.
  var batchNormSync: GroupBatchNormSynchronizer?

  /// Each parameter's value after the last good step (restored when a step turns them NaN).
  var lastGood: [Tensor<Float>] = []
  /// The flat buffer of a data-parallel step's gradients and totals, reused.
  var reduceBuffer: [Float] = []
  /// Seconds spent in the data-parallel steps' reductions (waiting for the slowest process
  /// included) since the epoch began.
  var reduceSeconds = 0.0
  /// Buckets of gradients whose reduction started during the backward pass, over the run
  /// (the rest start after it).
  package var bucketsStartedInBackward = 0
  /// Where `resume(from:)` continues (nil: from the start).
  var resumePoint: ResumePoint?

  /// A trainer for `model` with `optimizer`, which must hold `model.network.parameterVariables`.
  public init(
    model: CompiledNetwork<Float>, optimizer: Adam<Float>,
    encoding: InputEncoding = .latency(timeSteps: 100), epochs: Int = 30, batchSize: Int = 256,
    seed: UInt64 = 0, threads: Int = 2, outputDirectory: String? = nil
  ) {
    self.model = model
    self.optimizer = optimizer
    self.encoding = encoding
    self.epochs = epochs
    self.batchSize = batchSize
    self.seed = seed
    self.threads = threads
    self.outputDirectory = outputDirectory
  }

  /// A trainer for `network` compiled with `loss`, trained by Adam at `learningRate`, with
  /// AdamW's decoupled `weightDecay` when it is not 0.
  public convenience init(
    network: Sequential<Float>, loss: SpikingLoss, learningRate: Double = 1e-3,
    weightDecay: Double = 0, encoding: InputEncoding = .latency(timeSteps: 100), epochs: Int = 30,
    batchSize: Int = 256, seed: UInt64 = 0, threads: Int = 2, outputDirectory: String? = nil
  ) throws {
    let model: CompiledNetwork<Float>
    do { model = try network.compiled(loss: loss) } catch { throw TrainError("\(error)") }
    let adam = Adam(
      parameters: network.parameterVariables, learningRate: learningRate, weightDecay: weightDecay,
      decoupled: true)
    self.init(
      model: model, optimizer: adam,
      encoding: encoding, epochs: epochs, batchSize: batchSize, seed: seed, threads: threads,
      outputDirectory: outputDirectory)
  }

  /// The network being trained.
  public var network: Sequential<Float> { model.network }

  /// Makes Ctrl-C stop training cleanly: the current step finishes, `final.safetensors` is
  /// written and `fit` throws `TrainingInterrupted`. A second Ctrl-C kills the process (call
  /// this again before another `fit` to catch the next one).
  public static func installInterruptHandler() { SomaTrain.installInterruptHandler() }

  /// The files a run writes to its output directory.
  public static let runFiles = ["final.safetensors", "best.safetensors", "metrics.csv", "curves.svg"]

  /// The checkpoint metadata of this trainer's network.
  public var checkpointDescription: [String: String] {
    var meta = Checkpoint.metadata(
      network, loss: model.loss, timeSteps: encoding.timeSteps, encoder: encoding.name,
      model: modelName)
    for (k, v) in checkpointMetadata { meta[k] = v }
    return meta
  }

  /// Trains for `epochs` passes over `train` (after `resume(from:)`, the passes left),
  /// measuring accuracy on `test` after each, and returns the metrics of the epochs trained.
  /// Throws `TrainError` (one sentence) for unusable data or output directory, a NaN or
  /// infinite loss or gradient (the last good weights are then in final.safetensors), and
  /// `TrainingInterrupted` after Ctrl-C.
  @discardableResult
  public func fit(train: LabeledImages, test: LabeledImages) throws -> [EpochMetrics] {
    try checkSizes(train: train, test: test)
    stopFlag.clear()  // a Ctrl-C that stopped an earlier fit
    // Data-parallel over `processGroup` when it has more than one process; process 0 alone
    // prints and writes files.
    let group = processGroup.flatMap { $0.size > 1 ? $0 : nil }
    let (rank, ranks) = (group?.rank ?? 0, group?.size ?? 1)
    let outputDirectory = rank == 0 ? self.outputDirectory : nil
    let log: (String) -> Void = rank == 0 ? self.log : { _ in }
    let resume = resumePoint
    var earlier: [EpochMetrics] = []  // metrics.csv's epochs before a resume
    var prepared: Error? = nil
    if let dir = outputDirectory {
      do {
        if let resume {
          earlier = try Self.prepareResumedDirectory(dir, upTo: resume.epoch)
        } else {
          try Self.prepareOutputDirectory(dir, overwrite: overwrite)
        }
      } catch { prepared = error }
    }
    if let group, try !group.all(prepared == nil), prepared == nil {
      throw TrainError("process 0 could not prepare the output directory")
    }
    if let prepared { throw prepared }
    model.threads = threads
    // SyncBatchNorm on every BatchNorm layer for the run (removed when it ends).
    let synced = group != nil && synchronizesBatchNorm ? Self.allBatchNormStates(network) : []
    batchNormSync = group.flatMap { synced.isEmpty ? nil : GroupBatchNormSynchronizer($0) }
    for state in synced { state.synchronizer = batchNormSync }
    defer {
      for state in synced { state.synchronizer = nil }
      batchNormSync = nil
    }
    let steps = encoding.timeSteps
    let classes = model.network.linearWidths.last ?? 0
    let meta = checkpointDescription
    var coder: LatencyEventCoder? = nil
    if case .latency(let t) = encoding {
      coder = LatencyEventCoder(timeSteps: t, encoder: LatencyEncoder(timeSteps: t))
    }
    let finalPath = outputDirectory.map { joinPath($0, "final.safetensors") }
    let bestPath = outputDirectory.map { joinPath($0, "best.safetensors") }
    var metrics: [EpochMetrics] = []
    var metricsLog = outputDirectory.map {
      MetricsLog(path: joinPath($0, "metrics.csv"), rows: earlier)
    }
    var best = resume?.bestTestAccuracy ?? -1.0
    let stepsPerEpoch = (train.count + batchSize - 1) / batchSize
    let widths = model.network.linearWidths.map(String.init).joined(separator: "-")
    let firstEpoch = (resume?.epoch ?? 0) + 1
    guard firstEpoch <= epochs else {
      throw TrainError(
        "the run already trained all \(epochs) epochs; pass a larger number of epochs to go on")
    }
    log(
      (resume.map { "resuming at epoch \(firstEpoch), step \($0.stepInEpoch + 1): " } ?? "")
        + "training \(summary ?? "\(widths), loss \(model.loss)"), T = \(steps)"
        + (checkpointMetadata["surrogate"].map { ", surrogate \($0)" } ?? "")
        + ", batch \(batchSize), "
        + "lr \(optimizer.learningRate)" + (scheduleName.map { " \($0)" } ?? "")
        + (optimizer.weightDecay > 0 ? ", weight decay \(optimizer.weightDecay)" : "")
        + ", \(epochs) epochs"
        + (ranks > 1 ? ", \(ranks) processes" : "")
        + (outputDirectory.map { " → \($0)" } ?? ""))
    func save(_ extra: [String: String], to path: String?, state: Bool = false) throws {
      guard let path else { return }
      var m = meta
      for (k, v) in extra { m[k] = v }
      try Checkpoint.write(
        network, metadata: m, optimizer: state ? optimizer : nil,
        state: state ? movingMoments(optimizer.state, toKernelLayout: false) : nil, to: path)
    }
    rememberGoodParameters()

    var runStep = resume?.runStep ?? 0
    for epoch in firstEpoch...epochs {
      let start = monotonicSeconds()
      let order = shuffledIndices(count: train.count, seed: seed &+ UInt64(epoch))
      let skip = epoch == firstEpoch ? resume?.stepInEpoch ?? 0 : 0
      let batches = DataParallel.batches(
        order: order, batchSize: batchSize, rank: rank, of: ranks, skip: skip,
        wholeWhenShort: batchNormSync != nil)
      var lossSum = 0.0
      var correct = 0
      var seen = 0
      let bar = ProgressBar(
        total: stepsPerEpoch, label: "epoch \(epoch)/\(epochs)",
        enabled: showsProgress && rank == 0)
      var step = skip
      reduceSeconds = 0
      // Wall time of each whole step (getting the batch, forward, backward, Adam), for the median.
      var stepTimes: [Double] = []
      stepTimes.reserveCapacity(stepsPerEpoch)
      let feed: BatchFeed? = coder.map {
        BatchFeed(batches: batches.map(\.local), images: train, coder: $0, threads: threads)
      }
      defer { feed?.cancel() }
      for (global, local) in batches {
        let stepStart = monotonicSeconds()
        let events = feed?.next()?.events
        step += 1
        if let schedule { optimizer.learningRate = schedule.learningRate(at: runStep) }
        runStep += 1
        let result = try self.step(
          events: events, local: local, globalCount: global.count, split: train, group: group,
          whole: batchNormSync != nil && global.count < ranks)
        guard let result else {
          bar.finish()
          // The weights are those before this step again: keep them as the last good state.
          try save(["epoch": "\(epoch - 1)"], to: finalPath)
          throw TrainError(
            "training stopped: the loss or its gradients became NaN or infinite at epoch \(epoch), step \(step)"
              + (finalPath.map { "; the last good weights are in \($0)" } ?? ""))
        }
        lossSum += result.lossSum
        correct += result.correct
        seen += result.count
        stepTimes.append(monotonicSeconds() - stepStart)
        bar.update(step: step, loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen))
        if result.stop {
          bar.finish()
          if let group, batchNormSync == nil { try averageBatchNormStatistics(group) }
          try save(
            resumeMetadata(epoch: epoch - 1, stepInEpoch: step, runStep: runStep, best: best)
              .merging(["interrupted_at_step": "\(step)"]) { a, _ in a },
            to: finalPath, state: true)
          let stop = TrainingInterrupted(epoch: epoch, step: step, checkpoint: finalPath)
          log(stop.description)
          throw stop
        }
      }
      bar.finish()
      let trainSeconds = monotonicSeconds() - start
      if let group, batchNormSync == nil { try averageBatchNormStatistics(group) }
      let testAcc = try evaluate(test, classes: classes, coder: coder, group: group).accuracy
      let m = EpochMetrics(
        epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: Double(correct) / Double(seen),
        testAccuracy: testAcc, seconds: trainSeconds)
      metrics.append(m)
      let extra = ["epoch": "\(epoch)", "test_accuracy": "\(testAcc)"]
      // metrics.csv first: a run stopped before final.safetensors is written resumes from the
      // epoch before and drops this epoch's row.
      if let dir = outputDirectory {
        try metricsLog?.append(m)
        do {
          try AtomicFile.write(
            Array(TrainingCurves.svg(metricsLog?.rows ?? metrics, title: curvesTitle).utf8),
            to: joinPath(dir, "curves.svg"))
        } catch { throw TrainError("\(error)") }
      }
      let improved = testAcc > best
      if improved { best = testAcc }
      try save(
        extra.merging(resumeMetadata(epoch: epoch, stepInEpoch: 0, runStep: runStep, best: best)) {
          a, _ in a
        }, to: finalPath, state: true)
      if improved { try save(extra, to: bestPath) }
      log(
        String(
          format: "epoch %d/%d  loss %.4f  train acc %.2f%%  test acc %.2f%%  %.2f s  (median step %.1f ms",
          epoch, epochs, m.trainLoss, m.trainAccuracy * 100, m.testAccuracy * 100, m.seconds,
          stepTimes.isEmpty ? 0 : median(stepTimes) * 1000)
          + (group == nil
            ? ""
            : String(format: ", allreduce %.0f%% of the time", 100 * reduceSeconds / trainSeconds)
              + reductionPlan)
          + ")")
      onEpoch?(m)
    }
    resumePoint = nil
    return metrics
  }

  /// Accuracy and confusion matrix of the network on `split`, encoded as in training.
  public func evaluate(_ split: LabeledImages, batchSize: Int = 256) -> Evaluation {
    model.threads = threads
    var coder: LatencyEventCoder? = nil
    if case .latency(let t) = encoding {
      coder = LatencyEventCoder(timeSteps: t, encoder: LatencyEncoder(timeSteps: t))
    }
    return evaluate(
      split, classes: model.network.linearWidths.last ?? 0, coder: coder, batchSize: batchSize)
  }

  /// Accuracy and confusion matrix of `model` on `split` with input `encoding` (e.g. a
  /// network loaded from a checkpoint).
  public static func evaluate(
    _ model: CompiledNetwork<Float>, on split: LabeledImages, encoding: InputEncoding,
    threads: Int = 2, batchSize: Int = 256
  ) -> Evaluation {
    Trainer(
      model: model, optimizer: Adam(parameters: [], learningRate: 0), encoding: encoding,
      threads: threads
    ).evaluate(split, batchSize: batchSize)
  }

  /// The evaluation on `split`, each process of `group` taking its slice of it.
  func evaluate(
    _ split: LabeledImages, classes: Int, coder: LatencyEventCoder?, group: (any ProcessGroup)?
  ) throws -> Evaluation {
    guard let group else { return evaluate(split, classes: classes, coder: coder) }
    let mine = evaluate(
      split, classes: classes, coder: coder,
      range: DataParallel.slice(split.count, rank: group.rank, of: group.size))
    return try reduced(mine, count: split.count, group: group)
  }

  func evaluate(
    _ split: LabeledImages, classes: Int, coder: LatencyEventCoder?, batchSize: Int = 256,
    range: Range<Int>? = nil
  ) -> Evaluation {
    let range = range ?? 0..<split.count
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    var correct = 0
    var start = range.lowerBound
    let all = Array(0..<split.count)
    let steps = encoding.timeSteps
    while start < range.upperBound {
      let idx = all[start..<Swift.min(start + batchSize, range.upperBound)]
      start += batchSize
      let logits: Tensor<Float>
      if let coder {
        logits = model.logits(events: coder.events(split, indices: idx), steps: steps)
      } else {
        logits = model.logits(denseBatch(split, idx))
      }
      let predicted = logits.argmaxIndices(axis: -1)
      for (k, i) in idx.enumerated() {
        let y = split.labels[i]
        if predicted[k] == y { correct += 1 }
        if y >= 0 && y < classes && predicted[k] < classes { confusion[y][predicted[k]] += 1 }
      }
    }
    return Evaluation(
      accuracy: range.isEmpty ? 0 : Double(correct) / Double(range.count), confusion: confusion)
  }

  // MARK: Steps

  /// One training step on event input as the loop runs it: forward, BPTT and Adam, then the
  /// finiteness check. Returns nil, with the parameters as before the step, when the loss or
  /// a gradient was NaN or infinite (a non-finite gradient leaves a non-finite weight).
  package func trainStep(events: SpikeEvents, steps: Int, labels: [Int])
    -> CompiledNetwork<Float>.Step?
  {
    let r = model.trainStep(events: events, steps: steps, labels: labels, optimizer: &optimizer)
    return checked(r)
  }

  /// One training step on dense input [T, batch, features] (see `trainStep(events:…)`).
  package func trainStep(input: Tensor<Float>, labels: [Int]) -> CompiledNetwork<Float>.Step? {
    checked(model.trainStep(input: input, labels: labels, optimizer: &optimizer))
  }

  func checked(_ r: CompiledNetwork<Float>.Step) -> CompiledNetwork<Float>.Step? {
    let params = optimizer.parameters
    guard r.loss.isFinite, params.allSatisfy({ Self.allFinite($0.value) }) else {
      for (p, good) in zip(params, lastGood) { p.value = good.copiedContiguous() }
      return nil
    }
    rememberGoodParameters()
    return r
  }

  /// Copies the parameters into `lastGood` (into the same buffers after the first call).
  package func rememberGoodParameters() {
    let params = optimizer.parameters
    if lastGood.count != params.count || zip(lastGood, params).contains(where: { $0.shape != $1.shape })
    {
      lastGood = params.map { Tensor<Float>.zeros($0.shape) }
    }
    for k in params.indices {
      let v = params[k].value
      v.withUnsafeBufferPointer { src in
        lastGood[k].withUnsafeMutableBufferPointer { dst in
          guard let s = src.baseAddress, let d = dst.baseAddress else { return }
          d.update(from: s, count: Swift.min(src.count, dst.count))
        }
      }
    }
  }

  func denseBatch(_ split: LabeledImages, _ idx: ArraySlice<Int>) -> Tensor<Float> {
    guard case .dense(var encoder) = encoding else {
      preconditionFailure("denseBatch with a latency encoding")
    }
    var out = Tensor<Float>.zeros([0])
    _ = encoder.encode(split.images(at: idx), into: &out)
    encoding = .dense(encoder)  // a random encoder advances its generator
    return out
  }

  /// True when every value of `t` is finite.
  package static func allFinite(_ t: Tensor<Float>) -> Bool {
    let c = t.contiguous()
    return c.withUnsafeBufferPointer { p in
      p.isEmpty || soma_all_finite_f32(p.baseAddress!, p.count) != 0
    }
  }

  func checkSizes(train: LabeledImages, test: LabeledImages) throws {
    guard epochs >= 1 else { throw TrainError("epochs must be ≥ 1, got \(epochs)") }
    guard batchSize >= 1 else { throw TrainError("the batch size must be ≥ 1, got \(batchSize)") }
    guard train.count > 0 else {
      throw TrainError("the training set holds no images; there is nothing to learn from")
    }
    guard test.count > 0 else { throw TrainError("the test set holds no images") }
    let widths = network.linearWidths
    if let first = network.inputFeatures {
      for (name, split) in [("training", train), ("test", test)] where split.featureCount != first {
        throw TrainError(
          "the network expects \(first) inputs but the \(name) images have \(split.featureCount)"
            + " pixels (\(split.rows)×\(split.columns))")
      }
    }
    if let classes = widths.last {
      for (name, split) in [("training", train), ("test", test)] {
        if let k = split.labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
          throw TrainError(
            "the \(name) set holds label \(split.labels[k]) at index \(k); the network has"
              + " \(classes) outputs, so labels must be in 0..<\(classes)")
        }
      }
    }
  }
}

// MARK: The output directory

extension Trainer {
  /// Makes `dir` (with its parents) if needed and checks that a run can be written there.
  /// A directory that already holds a run's files is refused unless `overwrite` is set, which
  /// removes them first, so two runs never mix.
  package static func prepareOutputDirectory(_ dir: String, overwrite: Bool) throws {
    guard !dir.isEmpty else { throw TrainError("the output directory name is empty") }
    if fileExists(dir) {
      guard isDirectory(dir) else {
        throw TrainError(
          "the output directory \(dir) is a file, not a directory; choose another --out")
      }
      AtomicFile.removeStaleTemporaries(in: dir)  // left by runs killed mid-write
      // (A directory named like a run file is reported by the destination check below.)
      let earlier = runFiles.filter { fileExists(dir + "/" + $0) && !isDirectory(dir + "/" + $0) }
      if !earlier.isEmpty {
        guard overwrite else {
          throw TrainError(
            "the output directory \(dir) already holds a training run ("
              + earlier.joined(separator: ", ")
              + "); choose another --out, or pass --overwrite to replace that run")
        }
        for name in earlier {
          let path = dir + "/" + name
          if unlink(path) != 0 {
            throw TrainError("cannot remove \(path) of the earlier run: \(errorText(errno))")
          }
        }
      }
    } else {
      try makeDirectories(dir)
    }
    // The run's files must be writable there (a directory named like one of them, a
    // read-only directory, ...): found now, not after the first epoch.
    for name in runFiles {
      do { _ = try AtomicFile.checkDestination(dir + "/" + name) } catch {
        throw TrainError("\(error)")
      }
    }
  }

  /// `mkdir -p dir`, with one sentence naming the part that failed.
  package static func makeDirectories(_ dir: String) throws {
    var prefix = dir.hasPrefix("/") ? "/" : ""
    for part in dir.split(separator: "/") {
      prefix += part
      if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
        let e = errno
        let why =
          e == ENOENT
          ? "its parent does not accept new directories (is it on a special file system such"
            + " as /proc?)"
          : errorText(e)
        throw TrainError(
          "cannot create the output directory \(dir): creating \(prefix) failed: \(why)")
      }
      guard isDirectory(prefix) else {
        throw TrainError("cannot create the output directory \(dir): \(prefix) is a file")
      }
      prefix += "/"
    }
  }
}

/// True when `path` names an existing file system entry (following symbolic links).
package func fileExists(_ path: String) -> Bool {
  var st = stat()
  return stat(path, &st) == 0
}

/// True when `path` names a directory (following symbolic links).
package func isDirectory(_ path: String) -> Bool {
  var st = stat()
  return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// `directory/name`, without doubling a trailing slash of `directory`.
package func joinPath(_ directory: String, _ name: String) -> String {
  directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// The C library's text for an `errno` value, in lower case.
package func errorText(_ e: Int32) -> String {
  guard let s = strerror(e) else { return "error \(e)" }
  return String(cString: s).lowercased()
}

/// Monotonic time in seconds.
package func monotonicSeconds() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// The median of `samples` (not empty).
package func median(_ samples: [Double]) -> Double {
  let s = samples.sorted()
  let n = s.count
  return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}
