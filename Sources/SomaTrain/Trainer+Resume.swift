import Foundation
import SomaData
import SomaNN

/// Where a resumed run continues: after `stepInEpoch` steps of epoch `epoch + 1`.
struct ResumePoint {
  /// Epochs finished.
  var epoch: Int
  /// Steps of the next epoch already trained (after Ctrl-C; 0 after a whole epoch).
  var stepInEpoch: Int
  /// Steps trained over the whole run (the learning-rate schedule's index).
  var runStep: Int
  var bestTestAccuracy: Double
}

extension Checkpoint {
  /// The name of parameter `name`'s first (`m`) or second (`v`) Adam moment in a checkpoint
  /// that can be resumed.
  static func momentName(_ moment: String, _ name: String) -> String {
    "optimizer.\(moment).\(name)"
  }

  /// Writes `network` as `write(_:metadata:to:)` does, plus, when given, `optimizer`'s moments
  /// (tensors `optimizer.m.<parameter>` and `optimizer.v.<parameter>`) and step count
  /// (`optimizer_steps`), so that `Trainer.resume(from:)` continues the run exactly.
  /// The moments are in the parameters' own layout (`Trainer` saves them so).
  static func write(
    _ network: Sequential<Float>, metadata: [String: String], optimizer: Adam<Float>?,
    state: (stepCount: Int, first: [Tensor<Float>], second: [Tensor<Float>])?, to path: String
  ) throws {
    guard let optimizer, let state else { return try write(network, metadata: metadata, to: path) }
    var tensors: [String: Tensor<Float>] = [:]
    var meta = metadata
    let names = Dictionary(
      network.parameters.map { (ObjectIdentifier($0.1), $0.0) }, uniquingKeysWith: { a, _ in a })
    for (k, p) in optimizer.parameters.enumerated() {
      guard let name = names[ObjectIdentifier(p)] else { continue }
      tensors[name] = p.value
      tensors[momentName("m", name)] = state.first[k]
      tensors[momentName("v", name)] = state.second[k]
    }
    for (name, v) in network.parameters where tensors[name] == nil { tensors[name] = v.value }
    for (name, t) in buffers(network) { tensors[name] = t }
    meta["optimizer_steps"] = "\(state.stepCount)"
    do { try SafeTensors.write(tensors, metadata: meta, to: path) } catch {
      throw TrainError("\(error)")
    }
  }
}

extension Trainer {
  /// What a checkpoint that can be resumed records besides the optimizer's state.
  func resumeMetadata(epoch: Int, stepInEpoch: Int, runStep: Int, best: Double)
    -> [String: String]
  {
    [
      "epoch": "\(epoch)", "resume_step": "\(stepInEpoch)", "run_step": "\(runStep)",
      "best_test_accuracy": "\(best)", "batch_size": "\(batchSize)", "seed": "\(seed)",
    ]
  }

  /// Continues the run whose last checkpoint is `path` (a `final.safetensors` written by `fit`
  /// after an epoch or on Ctrl-C): the next `fit` starts where that run stopped, with its
  /// weights, BatchNorm's running statistics, Adam's moments and step count, the
  /// learning-rate schedule's position, its best test accuracy so far and, in
  /// `outputDirectory`, its metrics.csv, which it extends. The trainer must describe the same
  /// network, loss, encoding, batch size and seed (the number of processes may differ). A run
  /// resumed after Ctrl-C starts mid-epoch; that epoch's metrics then cover only the steps
  /// after the resume. A dense encoder's random state is not saved.
  ///
  /// ```swift
  /// let trainer = try Trainer(network: net, loss: .spikeCountCrossEntropy, epochs: 10,
  ///                           outputDirectory: "runs/mine")
  /// try trainer.resume(from: "runs/mine/final.safetensors")
  /// try trainer.fit(train: data.train, test: data.test)
  /// ```
  public func resume(from path: String) throws {
    let file: SafeTensors.File
    do { file = try SafeTensors.read(path) } catch { throw TrainError("\(error)") }
    let m = file.metadata
    let mine = checkpointDescription
    for key in ["format", "layers", "loss", "time_steps", "encoder"] where m[key] != mine[key] {
      throw TrainError(
        "checkpoint \(path) records another \(key.replacingOccurrences(of: "_", with: " "))"
          + " (\(m[key].map { String($0.prefix(60)) } ?? "none")) than this run"
          + " (\(mine[key].map { String($0.prefix(60)) } ?? "none")); resume with the settings"
          + " of the run that wrote it")
    }
    func int(_ key: String) throws -> Int {
      guard let text = m[key], let v = Int(text), v >= 0 else {
        throw TrainError(
          "checkpoint \(path) has no valid '\(key)' in its metadata, so it cannot be resumed"
            + " (only final.safetensors of a run that finished an epoch or was stopped by"
            + " Ctrl-C can)")
      }
      return v
    }
    let steps = try int("optimizer_steps")
    let point = ResumePoint(
      epoch: try int("epoch"), stepInEpoch: try int("resume_step"), runStep: try int("run_step"),
      bestTestAccuracy: m["best_test_accuracy"].flatMap(Double.init) ?? -1)
    let settings = [("batch_size", "\(batchSize)"), ("seed", "\(seed)")]
    for (key, value) in settings where m[key] != value {
      throw TrainError(
        "checkpoint \(path) was trained with \(key.replacingOccurrences(of: "_", with: " "))"
          + " \(m[key].map { String($0.prefix(40)) } ?? "unknown"), this run has \(value); resume"
          + " with the same one")
    }
    let names = Dictionary(
      network.parameters.map { (ObjectIdentifier($0.1), $0.0) }, uniquingKeysWith: { a, _ in a })
    var first: [Tensor<Float>] = []
    var second: [Tensor<Float>] = []
    var values: [Tensor<Float>] = []
    for p in optimizer.parameters {
      guard let name = names[ObjectIdentifier(p)] else {
        throw TrainError("the optimizer holds a parameter that is not the network's")
      }
      let stored = [name, Checkpoint.momentName("m", name), Checkpoint.momentName("v", name)]
      for (list, tensorName) in stored.enumerated() {
        let t = try Checkpoint.finiteTensor(file, tensorName, path: path)
        guard t.shape == p.value.shape else {
          throw TrainError(
            "checkpoint \(path) has \(tensorName) of shape \(t.shape); the network's is"
              + " \(p.value.shape)")
        }
        switch list {
        case 0: values.append(t)
        case 1: first.append(t)
        default: second.append(t)
        }
      }
    }
    // BatchNorm's running statistics, so that the next steps and evaluations use them.
    var statistics: [(BatchNormState<Float>, Tensor<Float>, Tensor<Float>, Int)] = []
    for (i, state) in Checkpoint.batchNormStates(network) {
      var read: [Tensor<Float>] = []
      for (name, like) in [
        ("running_mean", state.runningMean), ("running_var", state.runningVar),
        ("num_batches_tracked", Tensor<Float>([0], shape: [1])),
      ] {
        let t = try Checkpoint.finiteTensor(file, "\(i).\(name)", path: path)
        guard t.shape == like.shape else {
          throw TrainError(
            "checkpoint \(path) has \(i).\(name) of shape \(t.shape); the network's is"
              + " \(like.shape)")
        }
        read.append(t)
      }
      let count = read[2].scalars[0]
      guard count >= 0, count <= 1e9 else {
        throw TrainError("checkpoint \(path) has \(i).num_batches_tracked \(count)")
      }
      statistics.append((state, read[0], read[1], Int(count)))
    }
    for (p, v) in zip(optimizer.parameters, values) { p.value = v }
    for (state, mean, variance, count) in statistics {
      (state.runningMean, state.runningVar, state.batchesTracked) = (mean, variance, count)
    }
    optimizer.state = (steps, first, second)
    optimizer.state = movingMoments(optimizer.state, toKernelLayout: true)
    resumePoint = point
  }

  /// `state` with the moments the single-process fused update keeps in the kernels' layout
  /// (see `CompiledNetwork.adamMomentsInKernelLayout`) moved to it (`toKernelLayout`) or back
  /// to the parameters' layout, in which checkpoints record them. A data-parallel run updates
  /// outside the kernels, so its moments are always in the parameters' layout.
  func movingMoments(
    _ state: (stepCount: Int, first: [Tensor<Float>], second: [Tensor<Float>]),
    toKernelLayout: Bool
  ) -> (stepCount: Int, first: [Tensor<Float>], second: [Tensor<Float>]) {
    guard (processGroup?.size ?? 1) <= 1 else { return state }
    var eventInput = false
    if case .latency = encoding { eventInput = true }
    let kernel = model.adamMomentsInKernelLayout(eventInput: eventInput, optimizer: optimizer)
    func move(_ t: Tensor<Float>) -> Tensor<Float> {
      let (rows, cols) = (t.shape[0], t.shape[1])
      // Kernel layout: the [out, in] tensor's data is the [in, out] matrix.
      return toKernelLayout
        ? t.transposed().contiguous().reshaped([rows, cols])
        : t.reshaped([cols, rows]).transposed().contiguous()
    }
    var out = state
    for k in kernel.indices where kernel[k] && state.first[k].rank == 2 {
      out.first[k] = move(state.first[k])
      out.second[k] = move(state.second[k])
    }
    return out
  }

  /// Checks that a resumed run can go on writing in `dir` and returns the epochs its
  /// metrics.csv records up to `epoch` (none when it is missing or unreadable).
  static func prepareResumedDirectory(_ dir: String, upTo epoch: Int) throws -> [EpochMetrics] {
    guard isDirectory(dir) else {
      throw TrainError("the output directory \(dir) of the run to resume does not exist")
    }
    AtomicFile.removeStaleTemporaries(in: dir)
    for name in runFiles {
      do { _ = try AtomicFile.checkDestination(dir + "/" + name) } catch {
        throw TrainError("\(error)")
      }
    }
    guard let text = try? String(contentsOfFile: joinPath(dir, "metrics.csv"), encoding: .utf8),
      let rows = try? MetricsLog.parse(text)
    else { return [] }
    return rows.filter { $0.epoch <= epoch }
  }
}
