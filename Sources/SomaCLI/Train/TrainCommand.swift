import ArgumentParser
import Foundation
import SomaData
import SomaNN
import SomaTrain

#if MPI
  import SomaMPI
#endif

/// `soma train`: trains a network built with the layer API (SpyTorch's Fashion-MNIST network,
/// docs/Benchmarks.md `fmnist-spytorch`, by default) with a surrogate gradient, S2NN by
/// default, through SomaTrain's `Trainer`.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a spiking network on Fashion-MNIST (or MNIST with --data).",
    discussion: """
      The default network (--model spytorch) is SpyTorch's 784-100-10 current-based LIF \
      network with latency-coded input (T = 100), a max-over-time membrane readout and Adam, \
      trained with the S2NN surrogate. --model mlp trains Linear → LIF layers instead (--hidden \
      takes a comma list, e.g. 256,256; spike-count cross-entropy, PyTorch's default init) on \
      the same latency-coded input. (Before Soma 0.2, --model mlp named the spytorch network.) \
      --model csnn trains SpikingJelly's convolutional network ({conv 3×3 → BatchNorm → IF → \
      max-pool} × 2 → Linear → IF → Linear → IF, --channels wide) on direct-coded input (the \
      image at each of --time-steps steps, default 4), batch 64, Adam 1e-3 along a cosine, MSE \
      of the spike rates. \
      Writes final.safetensors, best.safetensors, metrics.csv and curves.svg to --out; a \
      checkpoint records its network, so soma evaluate and soma raster need only the file.

      --out must be a new directory, an empty one, or one without an earlier run: a directory \
      that already holds final.safetensors, best.safetensors, metrics.csv or curves.svg is \
      refused, so a second run never overwrites the first by accident. Pass --overwrite to \
      delete those files and train there anyway, or choose another --out. --resume continues \
      the run in --out from its final.safetensors (give the flags of that run; --epochs may be \
      larger).

      Under mpirun (mpirun -np N soma train ...) the N processes train data-parallel: each \
      takes its slice of every --batch-size batch, the gradients are summed over all of them \
      before each update, and process 0 alone prints and writes files. Without --threads, each \
      process takes an equal share of its machine's cores.
      """)

  @Option(help: "Passes over the training set (default 30; 12 for csnn).") var epochs: Int?
  @Option(name: .customLong("batch-size"), help: "Samples per step (default 256; 64 for csnn).")
  var batchSize: Int?
  @Option(help: "Adam's (peak) learning rate (default 2e-3 with S2NN, 2e-4, SpyTorch's, otherwise; 1e-3 for csnn).")
  var lr: Double?
  @Option(
    name: .customLong("lr-schedule"),
    help: "Learning rate over the run: cosine[:min=LR] (anneals --lr to min, default 0, over all steps), step[:every=EPOCHS,gamma=G] or constant.")
  var lrSchedule = TrainCommand.defaultLRSchedule
  @Option(
    name: .customLong("weight-decay"),
    help: "Decoupled (AdamW) weight decay: each step scales the weights by 1 − lr·wd first (default 0.1; 0 for csnn).")
  var weightDecayOption: Double?
  @Option(help: "Seed for initialisation and shuffling.") var seed: UInt64 = 0
  @Option(
    help: """
      Threads for Soma's parallel loops (OpenBLAS runs single-threaded inside them); default 2, \
      under mpirun the machine's cores over its processes there.
      """)
  var threads: Int?
  @Option(help: "Hidden neurons: one size for spytorch (default 100), a comma list for mlp (default 256).")
  var hidden: String?
  @Option(name: .customLong("time-steps"), help: "Simulation steps T per sample (default 100; 4 for csnn).")
  var timeStepsOption: Int?
  @Option(help: "Channels of both convolutions of --model csnn (its hidden layer is 16 × channels).")
  var channels = TrainCommand.defaultChannels
  @Option(help: "Surrogate NAME[:key=value,...], e.g. S2NN or InvSquareGrad:alpha=100.")
  var surrogate = TrainCommand.defaultSurrogate
  @Option(
    help: "Network: spytorch (784-H-10 current-based LIF, max-membrane readout), mlp (Linear → LIF layers, spike counts) or csnn (SpikingJelly's convolutional network, direct-coded input).")
  var model = "spytorch"
  @Option(help: "Directory with the IDX files (train-images-idx3-ubyte[.gz], …).")
  var data = FashionMNIST.defaultDirectory
  @Option(help: "Output directory (default runs/<timestamp>); must not hold an earlier run.")
  var out: String?
  @Flag(help: "Replace the earlier run in --out (its checkpoints, metrics.csv and curves.svg).")
  var overwrite = false
  @Flag(help: "Continue the run in --out from its final.safetensors (with that run's flags).")
  var resume = false
  // Under mpirun: gradients of more than this many KB are summed in buckets while the backward
  // pass goes on (default 1024); tests and scripts/mpi-scaling.sh move it.
  @Option(name: .customLong("bucket-threshold-kb"), help: .hidden) var bucketThresholdKB: Int?
  // The size of those buckets in KB (default 1024).
  @Option(name: .customLong("bucket-kb"), help: .hidden) var bucketKB: Int?
  // Under mpirun: each process's BatchNorm normalises its own slice of the batch (DDP without
  // SyncBatchNorm), the running statistics averaged after each epoch; for comparisons.
  @Flag(name: .customLong("local-batchnorm"), help: .hidden) var localBatchNorm = false

  static let defaultSurrogate = "S2NN"
  /// --model csnn's width: see docs/Performance.md (the accuracy/time table) for why.
  static let defaultChannels = 32
  /// --model csnn's defaults: SpikingJelly's T, batch and rate, a short cosine run (12 epochs,
  /// ~8 minutes on 2 cores: 92.56 % against 92.12 % for 8; see docs/Performance.md).
  static let csnnTimeSteps = 4
  static let csnnBatchSize = 64
  static let csnnLearningRate = 1e-3
  static let csnnEpochs = 12

  var isCSNN: Bool { model == "csnn" }
  var timeSteps: Int { timeStepsOption ?? (isCSNN ? Self.csnnTimeSteps : 100) }
  var weightDecay: Double { weightDecayOption ?? (isCSNN ? 0 : Self.defaultWeightDecay) }
  var epochCount: Int { epochs ?? (isCSNN ? Self.csnnEpochs : 30) }
  var batch: Int { batchSize ?? (isCSNN ? Self.csnnBatchSize : 256) }
  /// Annealing Adam's rate from its peak to 0 along a cosine over all steps, with AdamW weight
  /// decay 0.1, lifts S2NN's epoch-30 test accuracy from 86.0–86.2 % (constant 1e-3) to
  /// 87.04–87.30 % (seeds 0–2; docs/Performance.md has the sweep).
  static let defaultLRSchedule = "cosine"
  static let defaultWeightDecay = 0.1
  /// SpyTorch's learning rate, used with its own surrogate and any other non-S2NN one.
  static let spyTorchLearningRate = 2e-4
  /// The peak rate for S2NN under the default cosine schedule: 2e-3 ends higher than 1e-3
  /// (constant 1e-3 passed 86 % at epoch 7 but ended lower).
  static let s2nnLearningRate = 2e-3

  /// The learning rate for `surrogate` when --lr is not given.
  static func defaultLearningRate(for surrogate: any SurrogateGradient) -> Double {
    type(of: surrogate).name == "S2NN" ? s2nnLearningRate : spyTorchLearningRate
  }

  /// The hidden sizes of --hidden (or the model's default).
  var hiddenSizes: [Int] {
    get throws {
      guard let hidden else { return model == "mlp" ? [256] : [100] }
      var sizes: [Int] = []
      for part in hidden.split(separator: ",", omittingEmptySubsequences: false) {
        guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else {
          throw ValidationError("--hidden must be a size or a comma list of sizes, got '\(hidden)'")
        }
        sizes.append(v)
      }
      return sizes
    }
  }

  func validate() throws {
    guard epochCount >= 1 else { throw ValidationError("--epochs must be ≥ 1, got \(epochCount)") }
    guard batch >= 1 && batch <= 60_000 else {
      throw ValidationError("--batch-size must be in 1...60000, got \(batch)")
    }
    if let lr, !(lr > 0 && lr.isFinite && lr < 1) {
      throw ValidationError("--lr must be in (0, 1), got \(lr)")
    }
    guard weightDecay >= 0 && weightDecay.isFinite && (lr ?? 2e-3) * weightDecay < 1 else {
      throw ValidationError(
        "--weight-decay must be ≥ 0 with lr × weight decay < 1, got \(weightDecay)")
    }
    do { _ = try LRScheduleSpec(parsing: lrSchedule) } catch {
      throw ValidationError("\(error)")
    }
    if let threads, !(threads >= 1 && threads <= 64) {
      throw ValidationError("--threads must be in 1...64, got \(threads)")
    }
    guard Models.names.contains(model) else {
      throw ValidationError(
        "--model must be 'spytorch', 'mlp' or 'csnn', got '\(model)' (spytorch: SpyTorch's"
          + " current-based LIF network, the default; mlp: Linear → LIF layers; csnn:"
          + " SpikingJelly's convolutional network)")
    }
    guard (1...512).contains(channels) else {
      throw ValidationError("--channels must be in 1...512, got \(channels)")
    }
    if isCSNN && hidden != nil {
      throw ValidationError("--model csnn takes --channels, not --hidden (its hidden layer is 16 × channels)")
    }
    let sizes = try hiddenSizes
    if model == "spytorch" && sizes.count != 1 {
      throw ValidationError("--hidden takes one size with --model spytorch, got '\(hidden ?? "")'")
    }
    guard sizes.count <= 16 else {
      throw ValidationError("--hidden takes at most 16 sizes, got \(sizes.count)")
    }
    for h in sizes {
      if let bad = ModelLimits.violation(hidden: h, timeSteps: timeSteps) {
        throw ValidationError(ModelLimits.flagMessage(bad.limit, bad.value))
      }
    }
    if let bad = ModelLimits.violation(hidden: 1, timeSteps: timeSteps) {
      throw ValidationError(ModelLimits.flagMessage(bad.limit, bad.value))
    }
    guard !data.isEmpty else { throw ValidationError("--data needs a directory name") }
    if let out, out.isEmpty { throw ValidationError("--out needs a directory name") }
    if let kb = bucketThresholdKB, !(0...(1 << 30)).contains(kb) {
      throw ValidationError("--bucket-threshold-kb must be in 0...\(1 << 30), got \(kb)")
    }
    if let kb = bucketKB, !(1...(1 << 20)).contains(kb) {
      throw ValidationError("--bucket-kb must be in 1...\(1 << 20), got \(kb)")
    }
    if resume && out == nil {
      throw ValidationError("--resume needs --out, the directory of the run to continue")
    }
    if resume && overwrite {
      throw ValidationError("--resume continues the run in --out; it cannot also --overwrite it")
    }
  }

  func run() throws {
    #if MPI
      guard let group = try MPIProcessGroup.launched() else { return try train(group: nil) }
      try Self.run(in: group) { try train(group: $0) }
    #else
      if ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil {
        throw CLIError(
          "this soma was built without MPI (--disable-default-traits), so it cannot train under"
            + " mpirun; build it with the default traits")
      }
      try train(group: nil)
    #endif
  }

  /// Trains, data-parallel over `group` when it has more than one process.
  func train(group: (any ProcessGroup)?) throws {
    let spec = try SurrogateSpec(parsing: surrogate)
    let s = try spec.make()
    // The network splits its own loops over --threads; OpenBLAS stays at one thread so the
    // two never oversubscribe the cores.
    BLASInfo.setThreads(1)
    let dataset: FashionMNIST
    do { dataset = try FashionMNIST(directory: data) } catch { throw CLIError("\(error)") }
    let outDir = out ?? "runs/" + Self.timestamp()
    let trainer = try makeTrainer(
      surrogate: s, dataset: dataset, outDir: outDir,
      lr: lr ?? (isCSNN ? Self.csnnLearningRate : Self.defaultLearningRate(for: s)))
    trainer.trainer.processGroup = group
    if let kb = bucketThresholdKB { trainer.trainer.bucketThresholdBytes = kb << 10 }
    if let kb = bucketKB { trainer.trainer.bucketBytes = kb << 10 }
    if localBatchNorm { trainer.trainer.synchronizesBatchNorm = false }
    if resume {
      try resumeEverywhere(
        trainer.trainer, from: joinPath(outDir, "final.safetensors"), group: group)
    }
    installInterruptHandler()
    #if MPI
      if let group, group.size > 1, group.rank == 0 { reportJobStop(outDir: outDir) }
    #endif
    do { try trainer.run() } catch is TrainingInterrupted { throw ExitCode(130) } catch {
      // In a job, an error while training may be process 0's alone (see `run(in:)`).
      if let group, group.size > 1 { throw ErrorWhileTraining(error: error) }
      throw error
    }
  }

  /// `trainer.resume(from: path)` on every process of `group`; if another process could not
  /// read the checkpoint (process 0 alone reports errors), says which.
  func resumeEverywhere(_ trainer: Trainer, from path: String, group: (any ProcessGroup)?)
    throws
  {
    var failure: (any Error)? = nil
    do { try trainer.resume(from: path) } catch { failure = error }
    if let group, group.size > 1 {
      var failed = [Double](repeating: 0, count: group.size)
      if failure != nil { failed[group.rank] = 1 }
      let all = try group.sum(failed)
      if failure == nil, let other = all.firstIndex(where: { $0 > 0 }) {
        throw CLIError(
          "process \(other) of the job could not resume from \(path); on several machines, --out"
            + " must be on a file system they all share")
      }
    }
    if let failure { throw failure }
  }

  /// An error of one process of a data-parallel job while it trained.
  struct ErrorWhileTraining: Error { var error: any Error }

  #if MPI
    /// Runs `body` as one process of an MPI job: only process 0 reports an error. An error
    /// every process meets before training (flags, data, the checkpoint to resume) ends each
    /// cleanly; one during training (a checkpoint that cannot be written, a failed reduction)
    /// may be process 0's alone, so it stops the whole job (MPI_Abort) instead of leaving the
    /// others waiting.
    static func run(in group: MPIProcessGroup, _ body: (MPIProcessGroup) throws -> Void) throws {
      do {
        try body(group)
        group.finalize()
      } catch let exit as ExitCode {
        group.finalize()  // Ctrl-C: every process stopped after the same step
        throw exit
      } catch {
        let inner = (error as? ErrorWhileTraining)?.error ?? error
        if group.rank == 0 { FileHandle.standardError.write(Data("Error: \(inner)\n".utf8)) }
        if error is ErrorWhileTraining { group.abort(code: 1) }
        group.finalize()
        throw ExitCode(1)
      }
    }
  #endif

  /// The trainer for these flags (what `run` trains), with learning rate `lr`.
  func makeTrainer(
    surrogate s: any SurrogateGradient, dataset: FashionMNIST, outDir: String, lr: Double
  ) throws -> CLITrainer {
    var options = TrainOptions(
      epochs: epochCount, batchSize: batch, lr: lr, seed: seed, threads: threadCount,
      hidden: try hiddenSizes, timeSteps: timeSteps, overwrite: overwrite, model: model)
    options.channels = channels
    options.lrSchedule = try LRScheduleSpec(parsing: lrSchedule)
    options.weightDecay = weightDecay
    return try CLITrainer(surrogate: s, options: options, dataset: dataset, outDir: outDir)
  }

  /// --threads, else 2, or under mpirun the cores of this machine shared among the job's
  /// processes on it (Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE).
  var threadCount: Int {
    if let threads { return threads }
    let env = ProcessInfo.processInfo.environment
    guard let text = env["OMPI_COMM_WORLD_LOCAL_SIZE"], let local = Int(text), local >= 1 else {
      return 2
    }
    return Swift.max(1, Swift.min(64, ProcessInfo.processInfo.activeProcessorCount / local))
  }

  static func timestamp() -> String {
    let f = DateFormatter()
    f.dateFormat = "yyyyMMdd-HHmmss"
    f.locale = Locale(identifier: "en_US_POSIX")
    return f.string(from: Date())
  }
}

/// What `soma train`'s flags ask for.
struct TrainOptions {
  var epochs: Int
  var batchSize: Int
  var lr: Double
  var seed: UInt64
  var threads: Int
  var hidden: [Int]
  var timeSteps: Int
  /// Replace an earlier run in the output directory instead of refusing.
  var overwrite = false
  /// `spytorch` or `mlp`.
  var model = "spytorch"
  /// The learning rate over the run (the CLI's default is cosine; built programmatically,
  /// constant).
  var lrSchedule = LRScheduleSpec.constant
  /// Decoupled (AdamW) weight decay.
  var weightDecay = 0.0
  /// The csnn's channels.
  var channels = TrainCommand.defaultChannels

  init(
    epochs: Int, batchSize: Int, lr: Double, seed: UInt64, threads: Int, hidden: [Int],
    timeSteps: Int, overwrite: Bool = false, model: String = "spytorch"
  ) {
    (self.epochs, self.batchSize, self.lr, self.seed, self.threads) = (
      epochs, batchSize, lr, seed, threads
    )
    (self.hidden, self.timeSteps, self.overwrite, self.model) = (hidden, timeSteps, overwrite, model)
  }

  /// One hidden size (the spytorch network's).
  init(
    epochs: Int, batchSize: Int, lr: Double, seed: UInt64, threads: Int, hidden: Int,
    timeSteps: Int, overwrite: Bool = false, model: String = "spytorch"
  ) {
    self.init(
      epochs: epochs, batchSize: batchSize, lr: lr, seed: seed, threads: threads, hidden: [hidden],
      timeSteps: timeSteps, overwrite: overwrite, model: model)
  }
}

/// `soma train`'s network as SomaTrain trains it: the model named by the flags, built with the
/// layer API for the concrete surrogate type, and the library's `Trainer` set up as the CLI
/// has always run (checks of the data files first, checkpoints naming the surrogate).
struct CLITrainer {
  let options: TrainOptions
  let dataset: FashionMNIST
  let outDir: String
  let trainer: Trainer
  /// Where log lines go (stdout by default; tests capture them).
  var log: (String) -> Void {
    get { trainer.log }
    nonmutating set { trainer.log = newValue }
  }

  init(
    surrogate: any SurrogateGradient, options o: TrainOptions, dataset: FashionMNIST,
    outDir: String
  ) throws {
    options = o
    self.dataset = dataset
    self.outDir = outDir
    trainer = try withConcreteSurrogate(
      surrogate,
      ModelBuilder(
        options: o, inputs: dataset.train.featureCount,
        image: [1, dataset.train.rows, dataset.train.columns]))
    trainer.outputDirectory = outDir
    trainer.overwrite = o.overwrite
    let stepsPerEpoch = (dataset.train.count + o.batchSize - 1) / o.batchSize
    if o.lrSchedule != .constant {
      trainer.schedule = o.lrSchedule.schedule(
        lr: o.lr, epochs: o.epochs, stepsPerEpoch: Swift.max(1, stepsPerEpoch))
      trainer.scheduleName = o.lrSchedule.description
    }
  }

  /// Trains and returns the per-epoch metrics.
  @discardableResult
  func run() throws -> [EpochMetrics] {
    // Refuse what cannot make a run before anything is written.
    try Self.checkData(dataset)
    return try trainer.fit(train: dataset.train, test: dataset.test)
  }

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

  /// Builds the network of `options.model` for the concrete surrogate `S` and its trainer.
  struct ModelBuilder: SurrogateVisitor {
    let options: TrainOptions
    let inputs: Int
    /// One image's [channels, height, width] (the csnn's input).
    var image: [Int] = [1, 28, 28]
    func visit<S: SurrogateGradient>(_ s: S) throws -> Trainer {
      let o = options
      let spec = SurrogateSpec.canonical(s)
      let network: Sequential<Float>
      let loss: SpikingLoss
      var meta = ["surrogate": spec]
      let summary: String
      let classes = FashionMNIST.classCount
      let widths = ([inputs] + o.hidden + [classes]).map(String.init).joined(separator: "-")
      var encoding = InputEncoding.latency(timeSteps: o.timeSteps)
      do {
        if o.model == "csnn" {
          guard image[1] % 4 == 0 && image[2] % 4 == 0 else {
            throw CLIError(
              "--model csnn pools twice by 2, so the images' sides must be multiples of 4; they"
                + " are \(image[1])×\(image[2])")
          }
          network = try Models.csnn(
            channels: o.channels, timeSteps: o.timeSteps, imageShape: image, classes: classes,
            surrogate: s, seed: o.seed)
          loss = Models.csnnLoss
          encoding = .dense(DirectCurrentEncoder(timeSteps: o.timeSteps))
          summary =
            "csnn \(o.channels) channels (\(image[1])×\(image[2]) → \(network.linearWidths.map(String.init).joined(separator: "-")))"
            + ", direct input, spike-rate MSE"
          meta["channels"] = "\(o.channels)"
        } else if o.model == "mlp" {
          network = try Models.mlp(
            inputs: inputs, hidden: o.hidden, outputs: classes, surrogate: s, seed: o.seed)
          loss = Models.mlpLoss
          summary = "mlp \(widths) LIF, spike counts"
        } else {
          network = try Models.spytorch(
            inputs: inputs, hidden: o.hidden[0], outputs: classes, surrogate: s, seed: o.seed)
          loss = Models.spytorchLoss
          summary = "\(widths) current-based LIF"
          meta["tau_syn"] = "\(5e-3)"
          meta["tau_mem"] = "\(10e-3)"
        }
      } catch { throw CLIError("\(error)") }
      let trainer = try Trainer(
        network: network, loss: loss, learningRate: o.lr, weightDecay: o.weightDecay,
        encoding: encoding, epochs: o.epochs, batchSize: o.batchSize,
        seed: o.seed, threads: o.threads)
      trainer.modelName = o.model
      trainer.checkpointMetadata = meta
      trainer.summary = summary
      trainer.curvesTitle = "soma train: \(spec)"
      return trainer
    }
  }
}
