import ArgumentParser
import Foundation
import SomaData
import SomaKernels
import SomaNN

/// Drives training: shuffling, batching, steps, evaluation, checkpoints, metrics and curves.
struct Trainer {
  let surrogate: any SurrogateGradient
  let options: TrainOptions
  let dataset: FashionMNIST
  let outDir: String
  /// Where log lines go (stdout by default; tests capture them).
  var log: (String) -> Void = {
    print($0)
    fflush(nil)  // one line per epoch even when stdout is a pipe or a file
  }

  init(
    surrogate: any SurrogateGradient, options: TrainOptions, dataset: FashionMNIST, outDir: String
  ) throws {
    self.surrogate = surrogate
    self.options = options
    self.dataset = dataset
    self.outDir = outDir
  }

  /// Trains and returns the per-epoch metrics.
  @discardableResult
  func run() throws -> [EpochMetrics] {
    // Refuse what cannot make a run before anything is written.
    try Self.checkData(dataset)
    try Self.prepareOutputDirectory(outDir, overwrite: options.overwrite)
    return try withConcreteSurrogate(surrogate, self)
  }

  /// The files a run writes to its output directory.
  static let runFiles = ["final.safetensors", "best.safetensors", "metrics.csv", "curves.svg"]

  /// Both splits must hold images: an empty training set has nothing to learn from (its loss
  /// would be 0/0) and an empty test set nothing to measure.
  static func checkData(_ dataset: FashionMNIST) throws {
    for (split, file, role) in [
      (dataset.train, "train-images-idx3-ubyte", "soma train needs at least one to learn from"),
      (dataset.test, "t10k-images-idx3-ubyte", "soma train tests on them after every epoch"),
    ] where split.count == 0 {
      throw CLIError("\(joinPath(dataset.directory, file))[.gz] holds no images; \(role)")
    }
  }

  /// Makes `dir` (with its parents) if needed and checks that a run can be written there.
  /// A directory that already holds a run's files is refused unless `overwrite` is set, which
  /// removes them first, so two runs never mix.
  static func prepareOutputDirectory(_ dir: String, overwrite: Bool) throws {
    guard !dir.isEmpty else { throw CLIError("the output directory name is empty") }
    if fileExists(dir) {
      guard isDirectory(dir) else {
        throw CLIError(
          "the output directory \(dir) is a file, not a directory; choose another --out")
      }
      AtomicFile.removeStaleTemporaries(in: dir)  // left by runs killed mid-write
      // (A directory named like a run file is reported by the destination check below.)
      let earlier = runFiles.filter { fileExists(dir + "/" + $0) && !isDirectory(dir + "/" + $0) }
      if !earlier.isEmpty {
        guard overwrite else {
          throw CLIError(
            "the output directory \(dir) already holds a training run ("
              + earlier.joined(separator: ", ")
              + "); choose another --out, or pass --overwrite to replace that run")
        }
        for name in earlier {
          let path = dir + "/" + name
          if unlink(path) != 0 {
            throw CLIError("cannot remove \(path) of the earlier run: \(errorText(errno))")
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
        throw CLIError("\(error)")
      }
    }
  }

  /// `mkdir -p dir`, with one sentence naming the part that failed.
  static func makeDirectories(_ dir: String) throws {
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
        throw CLIError(
          "cannot create the output directory \(dir): creating \(prefix) failed: \(why)")
      }
      guard isDirectory(prefix) else {
        throw CLIError("cannot create the output directory \(dir): \(prefix) is a file")
      }
      prefix += "/"
    }
  }
}

/// True when `path` names an existing file system entry (following symbolic links).
func fileExists(_ path: String) -> Bool {
  var st = stat()
  return stat(path, &st) == 0
}

/// True when `path` names a directory (following symbolic links).
func isDirectory(_ path: String) -> Bool {
  var st = stat()
  return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// `directory/name`, without doubling a trailing slash of `directory`.
func joinPath(_ directory: String, _ name: String) -> String {
  directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// The C library's text for an `errno` value, in lower case.
func errorText(_ e: Int32) -> String {
  guard let s = strerror(e) else { return "error \(e)" }
  return String(cString: s).lowercased()
}

extension Trainer: SurrogateVisitor {
  func visit<S: SurrogateGradient>(_ s: S) throws -> [EpochMetrics] {
    let o = options
    let net = try CurrentBasedSNN<Float, S>(
      inputs: dataset.train.featureCount, hidden: o.hidden, outputs: FashionMNIST.classCount,
      surrogate: s, seed: o.seed)
    net.threads = o.threads
    var config = ModelConfig()
    config.inputs = dataset.train.featureCount
    config.hidden = o.hidden
    config.timeSteps = o.timeSteps
    config.surrogate = SurrogateSpec.canonical(s)
    let coder = LatencyEventCoder(timeSteps: o.timeSteps, encoder: LatencyEncoder(timeSteps: o.timeSteps))
    // Each training image's code once, so a step's batch is block copies (see LatencyCodes).
    let trainCodes =
      LatencyCodes.fits(dataset.train) ? LatencyCodes(dataset.train, coder: coder) : nil
    var adam = try FusedAdam<Float>(learningRate: o.lr)
    let finalPath = outDir + "/final.safetensors"
    let bestPath = outDir + "/best.safetensors"
    var metrics: [EpochMetrics] = []
    var metricsLog = MetricsLog(path: outDir + "/metrics.csv")
    var best = -1.0
    let stepsPerEpoch = (dataset.train.count + o.batchSize - 1) / o.batchSize
    log(
      "training \(config.inputs)-\(o.hidden)-10 current-based LIF, T = \(o.timeSteps), "
        + "surrogate \(config.surrogate), batch \(o.batchSize), lr \(o.lr), \(o.epochs) epochs → \(outDir)")

    for epoch in 1...o.epochs {
      let start = BenchTimer.now()
      let order = shuffledIndices(count: dataset.train.count, seed: o.seed &+ UInt64(epoch))
      var lossSum = 0.0
      var correct = 0
      var seen = 0
      let bar = ProgressBar(total: stepsPerEpoch, label: "epoch \(epoch)/\(o.epochs)")
      var step = 0
      // Wall time of each whole step (getting the batch, forward, backward, Adam), for the median.
      var stepTimes: [Double] = []
      stepTimes.reserveCapacity(stepsPerEpoch)
      let feed = BatchFeed(
        order: order, batchSize: o.batchSize, images: dataset.train, coder: coder,
        codes: trainCodes, threads: o.threads)
      defer { feed.cancel() }
      while true {
        let stepStart = BenchTimer.now()
        guard let (idx, events) = feed.next() else { break }
        step += 1
        let labels = idx.map { dataset.train.labels[$0] }
        guard
          let result = Self.step(
            net, &adam, events: events, labels: labels, timeSteps: o.timeSteps)
        else {
          bar.finish()
          // The weights are still those before this step: keep them as the last good state.
          try ModelCheckpoint.write(
            net, config: config, extra: ["epoch": "\(epoch - 1)"], to: finalPath)
          throw CLIError(
            "training stopped: the loss or its gradients became NaN or infinite at epoch \(epoch), step \(step); the last good weights are in \(finalPath)"
          )
        }
        lossSum += Double(result.loss) * Double(idx.count)
        correct += result.correct
        seen += idx.count
        stepTimes.append(BenchTimer.now() - stepStart)
        bar.update(step: step, loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen))
        if interruptRequested.load(ordering: .relaxed) {
          bar.finish()
          try ModelCheckpoint.write(
            net, config: config, extra: ["epoch": "\(epoch - 1)", "interrupted_at_step": "\(step)"],
            to: finalPath)
          log("interrupted at epoch \(epoch), step \(step); checkpoint written to \(finalPath)")
          throw ExitCode(130)
        }
      }
      bar.finish()
      let trainSeconds = BenchTimer.now() - start
      let testAcc = Self.accuracy(net, split: dataset.test, coder: coder, timeSteps: o.timeSteps).accuracy
      let m = EpochMetrics(
        epoch: epoch, trainLoss: lossSum / Double(seen), trainAccuracy: Double(correct) / Double(seen),
        testAccuracy: testAcc, seconds: trainSeconds)
      metrics.append(m)
      let extra = ["epoch": "\(epoch)", "test_accuracy": "\(testAcc)"]
      try ModelCheckpoint.write(net, config: config, extra: extra, to: finalPath)
      if testAcc > best {
        best = testAcc
        try ModelCheckpoint.write(net, config: config, extra: extra, to: bestPath)
      }
      try metricsLog.append(m)
      try AtomicFile.write(
        Array(TrainingCurves.svg(metrics, title: "soma train: \(config.surrogate)").utf8),
        to: outDir + "/curves.svg")
      log(
        String(
          format: "epoch %d/%d  loss %.4f  train acc %.2f%%  test acc %.2f%%  %.2f s  (median step %.1f ms)",
          epoch, o.epochs, m.trainLoss, m.trainAccuracy * 100, m.testAccuracy * 100, m.seconds,
          stepTimes.isEmpty ? 0 : BenchTimer.median(stepTimes) * 1000))
    }
    return metrics
  }
}

extension Trainer {
  /// One training step as the loop runs it: forward and BPTT, the finiteness check, then Adam.
  /// Returns nil, with the weights unchanged, when the loss or a gradient is NaN or infinite.
  static func step<S>(
    _ net: CurrentBasedSNN<Float, S>, _ adam: inout FusedAdam<Float>, events: SpikeEvents,
    labels: [Int], timeSteps: Int
  ) -> CurrentBasedSNN<Float, S>.Step? {
    let result = net.lossAndGradients(
      events: events, steps: timeSteps, batch: labels.count, labels: labels)
    guard result.loss.isFinite, allFinite(result.gradW1), allFinite(result.gradW2) else {
      return nil
    }
    net.withParameters { adam.step(&$0, gradients: [result.gradW1, result.gradW2], threads: net.threads) }
    return result
  }

  static func allFinite(_ t: Tensor<Float>) -> Bool {
    t.withUnsafeBufferPointer { p in
      p.isEmpty || soma_all_finite_f32(p.baseAddress!, p.count) != 0
    }
  }

  /// Accuracy and confusion matrix [true][predicted] of `net` on `split`.
  static func accuracy<S>(
    _ net: CurrentBasedSNN<Float, S>, split: LabeledImages, coder: LatencyEventCoder,
    timeSteps: Int, batchSize: Int = 256
  ) -> (accuracy: Double, confusion: [[Int]]) {
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: net.outputs), count: net.outputs)
    var correct = 0
    var start = 0
    let all = Array(0..<split.count)
    while start < split.count {
      let idx = all[start..<Swift.min(start + batchSize, split.count)]
      start += batchSize
      let events = coder.events(split, indices: idx)
      let logits = net.logits(events: events, steps: timeSteps, batch: idx.count)
      let predicted = logits.argmaxIndices(axis: -1)
      for (k, i) in idx.enumerated() {
        let y = split.labels[i]
        if predicted[k] == y { correct += 1 }
        if y >= 0 && y < net.outputs { confusion[y][predicted[k]] += 1 }
      }
    }
    return (split.count == 0 ? 0 : Double(correct) / Double(split.count), confusion)
  }
}
