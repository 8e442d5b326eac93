import Foundation
import Soma
import Testing

@testable import SomaTrain

/// A tiny synthetic image set: class k lights up its own band of pixels (plus noise), so a
/// working loop beats chance by far within a couple of epochs.
func syntheticImages(count: Int, side: Int = 10, seed: UInt64) -> LabeledImages {
  var g = SomaRandom(seed: seed)
  var pixels = [UInt8](repeating: 0, count: count * side * side)
  var labels = [Int](repeating: 0, count: count)
  for s in 0..<count {
    let k = Int(g.next() % 10)
    labels[s] = k
    for p in 0..<(side * side) {
      let noise = g.unitInterval(Double.self)
      pixels[s * side * side + p] = p / 10 == k ? UInt8(150 + noise * 105) : (noise < 0.1 ? 200 : 0)
    }
  }
  return LabeledImages(pixels: pixels, labels: labels, rows: side, columns: side)
}

/// A fresh temporary directory, removed when the value goes away.
final class TemporaryDirectory {
  let path = NSTemporaryDirectory() + "soma-train-" + UUID().uuidString
  init() throws {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite(.serialized)
struct TrainerTests {
  let train = syntheticImages(count: 600, seed: 1)
  let test = syntheticImages(count: 100, seed: 2)

  func spytorchTrainer(out: String?, epochs: Int = 2) throws -> Trainer {
    let net = try Models.spytorch(inputs: 100, hidden: 32, outputs: 10, surrogate: S2NN(), seed: 3)
    let trainer = try Trainer(
      network: net, loss: Models.spytorchLoss, learningRate: 5e-3,
      encoding: .latency(timeSteps: 20), epochs: epochs, batchSize: 32, seed: 3,
      outputDirectory: out)
    trainer.modelName = "spytorch"
    trainer.log = { _ in }
    return trainer
  }

  @Test func theLoopLearnsAndWritesTheRun() throws {
    let dir = try TemporaryDirectory()
    let out = dir.path + "/run"
    let trainer = try spytorchTrainer(out: out)
    #expect(trainer.model.plan.contains { $0.contains("event-driven CUBA plan") })
    var seen: [Int] = []
    trainer.onEpoch = { seen.append($0.epoch) }
    let history = try trainer.fit(train: train, test: test)
    #expect(seen == [1, 2] && history.count == 2)
    #expect(history[1].testAccuracy > 0.5, "chance is 0.1, got \(history[1].testAccuracy)")
    #expect(history[1].trainLoss < history[0].trainLoss)
    for name in Trainer.runFiles {
      #expect(FileManager.default.fileExists(atPath: out + "/" + name), "\(name) missing")
    }
    #expect(try MetricsLog.read(out + "/metrics.csv").map(\.epoch) == [1, 2])
    // A second run into the same directory is refused.
    #expect(throws: TrainError.self) { try spytorchTrainer(out: out).fit(train: train, test: test) }
  }

  /// Each model kind's checkpoint rebuilds its network: the same test accuracy as the epoch.
  @Test(arguments: ["spytorch", "mlp"])
  func checkpointsRoundTripThroughEvaluation(kind: String) throws {
    let dir = try TemporaryDirectory()
    let trainer: Trainer
    if kind == "mlp" {
      let net = try Models.mlp(inputs: 100, hidden: [24, 16], outputs: 10, surrogate: S2NN(), seed: 4)
      trainer = try Trainer(
        network: net, loss: Models.mlpLoss, learningRate: 5e-3, encoding: .latency(timeSteps: 12),
        epochs: 1, batchSize: 32, outputDirectory: dir.path)
      trainer.modelName = "mlp"
      trainer.log = { _ in }
    } else {
      trainer = try spytorchTrainer(out: dir.path, epochs: 1)
    }
    let history = try trainer.fit(train: train, test: test)
    let loaded = try Checkpoint.load(dir.path + "/final.safetensors")
    #expect(loaded.formatVersion == 2 && loaded.model == kind)
    #expect(loaded.network.linearWidths == trainer.network.linearWidths)
    #expect(loaded.layers == Checkpoint.layerSpecs(trainer.network))
    #expect(loaded.loss == trainer.model.loss)
    #expect(loaded.metadata["epoch"] == "1")
    for (p, q) in zip(loaded.network.parameters, trainer.network.parameters) {
      #expect(p.name == q.name && p.variable.value == q.variable.value, "\(p.name)")
    }
    let again = Trainer(
      model: try loaded.compiled(), optimizer: Adam(parameters: [], learningRate: 0),
      encoding: .latency(timeSteps: loaded.timeSteps))
    #expect(again.evaluate(test).accuracy == history[0].testAccuracy)
  }

  /// A Soma 0.1 checkpoint (hidden.weight / readout.weight, its metadata keys) loads as the
  /// spytorch network with those weights.
  @Test func aFormatOneCheckpointLoads() throws {
    let dir = try TemporaryDirectory()
    var g = SomaRandom(seed: 5)
    let w1 = Tensor<Float>.normal([32, 100], std: 0.2, using: &g)
    let w2 = Tensor<Float>.normal([10, 32], std: 0.2, using: &g)
    let path = dir.path + "/old.safetensors"
    try SafeTensors.write(
      ["hidden.weight": w1, "readout.weight": w2],
      metadata: [
        "format": "soma-checkpoint-1", "model": "mlp", "inputs": "100", "hidden": "32",
        "outputs": "10", "time_steps": "20", "surrogate": "InvSquareGrad:alpha=100.0",
        "tau_syn": "0.005", "tau_mem": "0.01", "encoder": "latency", "epoch": "3",
      ], to: path)
    let loaded = try Checkpoint.load(path)
    #expect(loaded.formatVersion == 1 && loaded.model == "spytorch" && loaded.timeSteps == 20)
    #expect(loaded.loss == .maxMembraneNLL)
    #expect(loaded.layers.map(\.type) == ["Linear", "CUBALIF", "Linear", "LeakyIntegrator"])
    #expect(loaded.layers[1].surrogate == "InvSquareGrad:alpha=100.0")
    #expect(Swift.abs(loaded.layers[1].alpha! - Foundation.exp(-0.2)) < 1e-12)
    #expect(Swift.abs(loaded.layers[1].beta! - Foundation.exp(-0.1)) < 1e-12)
    #expect(loaded.network.parameters.map(\.name) == ["0.weight", "2.weight"])
    #expect(loaded.network.parameters[0].variable.value == w1)
    #expect(loaded.network.parameters[1].variable.value == w2)
    // Its network is SpyTorch's block: the event plan runs it.
    #expect(try loaded.compiled().plan.contains { $0.contains("event-driven CUBA plan") })

    // A bad value gets one sentence naming the file and the key.
    try SafeTensors.write(
      ["hidden.weight": w1, "readout.weight": w2],
      metadata: ["format": "soma-checkpoint-1", "model": "mlp", "inputs": "100", "hidden": "32",
                 "outputs": "10", "time_steps": "20000", "tau_syn": "0.005", "tau_mem": "0.01"],
      to: path)
    #expect(throws: TrainError.self) { try Checkpoint.load(path) }
    do { _ = try Checkpoint.load(path) } catch {
      #expect("\(error)".contains("time_steps = 20000, outside 1...1000"), "\(error)")
    }
  }

  @Test func aDenseEncoderTrainsToo() throws {
    let net = try Models.mlp(inputs: 100, hidden: [16], outputs: 10, surrogate: S2NN(), seed: 6)
    let trainer = try Trainer(
      network: net, loss: Models.mlpLoss, learningRate: 5e-3,
      encoding: .dense(PoissonEncoder(timeSteps: 8, seed: 1)), epochs: 1, batchSize: 50)
    trainer.schedule = StepDecay(initial: 5e-3, stepSize: 1, gamma: 0.5)
    trainer.log = { _ in }
    let history = try trainer.fit(train: train, test: test)
    #expect(history.count == 1 && history[0].trainLoss.isFinite)
    #expect(trainer.optimizer.stepCount == 12)
  }

  /// Ctrl-C (the flag its handler sets) stops after the step, with a checkpoint that loads.
  @Test func anInterruptStopsAfterTheStepWithACheckpoint() throws {
    let dir = try TemporaryDirectory()
    let trainer = try spytorchTrainer(out: dir.path)
    let flag = StopFlag()
    trainer.stopFlag = flag
    trainer.log = { line in
      if line.hasPrefix("training ") { flag.request() }
    }
    do {
      try trainer.fit(train: train, test: test)
      Issue.record("an interrupted fit must throw")
    } catch let stop as TrainingInterrupted {
      #expect(stop.epoch == 1 && stop.step == 1)
      #expect(stop.checkpoint == dir.path + "/final.safetensors")
    }
    let loaded = try Checkpoint.load(dir.path + "/final.safetensors")
    #expect(loaded.metadata["interrupted_at_step"] == "1" && loaded.metadata["epoch"] == "0")
  }

  @Test func labelsBeyondTheOutputsAreRefused() throws {
    let net = try Models.mlp(inputs: 100, hidden: [8], outputs: 5, surrogate: S2NN(), seed: 6)
    let trainer = try Trainer(network: net, loss: Models.mlpLoss, encoding: .latency(timeSteps: 4), epochs: 1)
    trainer.log = { _ in }
    #expect(throws: TrainError.self) { try trainer.fit(train: train, test: test) }
  }
}
