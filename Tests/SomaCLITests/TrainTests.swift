import Foundation
import Soma
import SomaData
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import SomaCLI
@testable import SomaTrain

/// `soma train` / `evaluate` on a small synthetic dataset written as IDX files: class k lights
/// up its own block of pixels (plus noise), so a working trainer must beat chance by far.
@Suite(.serialized)
struct TrainTests {
  final class Dataset {
    let path = NSTemporaryDirectory() + "soma-train-tests-" + UUID().uuidString
    init(train: Int = 600, test: Int = 200, side: Int = 10, seed: UInt64 = 1) throws {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
      var g = SomaRandom(seed: seed)
      func split(_ n: Int, _ prefix: String) throws {
        var pixels = [UInt8](repeating: 0, count: n * side * side)
        var labels = [UInt8](repeating: 0, count: n)
        for s in 0..<n {
          let k = Int(g.next() % 10)
          labels[s] = UInt8(k)
          for p in 0..<(side * side) {
            let inBlock = p / 10 == k
            let noise = g.unitInterval(Double.self)
            pixels[s * side * side + p] = inBlock ? UInt8(150 + noise * 105) : (noise < 0.1 ? 200 : 0)
          }
        }
        try Data(IDXArray(dimensions: [n, side, side], bytes: pixels).encoded())
          .write(to: URL(fileURLWithPath: "\(path)/\(prefix)-images-idx3-ubyte"))
        try Data(IDXArray(dimensions: [n], bytes: labels).encoded())
          .write(to: URL(fileURLWithPath: "\(path)/\(prefix)-labels-idx1-ubyte"))
      }
      try split(train, "train")
      try split(test, "t10k")
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
  }

  func train(_ data: Dataset, out: String, seed: UInt64 = 3) throws -> [EpochMetrics] {
    let trainer = try CLITrainer(
      surrogate: S2NN(),
      options: TrainOptions(
        epochs: 2, batchSize: 32, lr: 5e-3, seed: seed, threads: 2, hidden: 32, timeSteps: 20),
      dataset: FashionMNIST(directory: data.path), outDir: out)
    trainer.log = { _ in }
    return try trainer.run()
  }

  @Test func twoEpochsLearnAndWriteEverything() throws {
    let data = try Dataset()
    let out = data.path + "/run"
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    let metrics = try train(data, out: out)
    #expect(metrics.count == 2)
    #expect(metrics[1].testAccuracy > 0.6, "10 classes: chance is 0.1, got \(metrics[1].testAccuracy)")
    #expect(metrics[1].trainLoss < metrics[0].trainLoss)
    for name in ["final.safetensors", "best.safetensors", "metrics.csv", "curves.svg"] {
      #expect(FileManager.default.fileExists(atPath: out + "/" + name), "\(name) missing")
    }
    let csv = try MetricsLog.read(out + "/metrics.csv")
    #expect(csv.map(\.epoch) == [1, 2])
    let svg = try String(contentsOfFile: out + "/curves.svg", encoding: .utf8)
    #expect(XMLParser(data: Data(svg.utf8)).parse())

    // The checkpoint alone rebuilds the network: same test accuracy as the last epoch.
    let model = try LoadedModel(path: out + "/final.safetensors", threads: 1)
    #expect(model.checkpoint.network.linearWidths == [100, 32, 10])
    #expect(model.timeSteps == 20 && model.inputs == 100 && model.checkpoint.model == "spytorch")
    let test = try FashionMNIST.readSplit("t10k", in: data.path)
    let eval = try model.evaluate(test)
    #expect(Swift.abs(eval.accuracy - metrics[1].testAccuracy) < 1e-12)
    #expect(eval.confusion.flatMap { $0 }.reduce(0, +) == test.count)
  }

  @Test func sameSeedSameLosses() throws {
    let data = try Dataset(train: 200, test: 50)
    let a = try train(data, out: data.path + "/a")
    let b = try train(data, out: data.path + "/b")
    let c = try train(data, out: data.path + "/c", seed: 4)
    #expect(a.map(\.trainLoss) == b.map(\.trainLoss))
    #expect(a.map(\.testAccuracy) == b.map(\.testAccuracy))
    #expect(a.map(\.trainLoss) != c.map(\.trainLoss))
  }

  @Test func badInputGivesOneSentence() throws {
    #expect(throws: CLIError.self) { _ = try SurrogateSpec(parsing: "S2NN:alpha") }
    #expect(throws: CLIError.self) { _ = try SurrogateSpec(parsing: "NoSuchSurrogate").make() }
    #expect(throws: CLIError.self) { _ = try SurrogateSpec(parsing: "S2NN:alpha=-1").make() }
    #expect(throws: CLIError.self) { _ = try LoadedModel(path: "/no/such/file.safetensors", threads: 1) }
    let spec = try SurrogateSpec(parsing: "InvSquareGrad:alpha=100")
    #expect(spec.name == "InvSquareGrad" && spec.parameters == ["alpha": 100])
    #expect(throws: (any Error).self) { _ = try SomaCommand.parseAsRoot(["train", "--epochs", "0"]) }
    #expect(throws: (any Error).self) { _ = try SomaCommand.parseAsRoot(["train", "--model", "cnn"]) }
    #expect(throws: (any Error).self) {
      _ = try SomaCommand.parseAsRoot(["train", "--model", "spytorch", "--hidden", "10,10"])
    }
    #expect(throws: (any Error).self) { _ = try SomaCommand.parseAsRoot(["train", "--hidden", "1,x"]) }
  }

  /// A surrogate whose derivative is NaN poisons the gradients wherever one flows back through
  /// the hidden layer. (A network whose readout never rises above its start gets exact zero
  /// gradients instead: its reverse pass is skipped, surrogate included, so the NaN is never
  /// formed; this one spikes.)
  struct PoisonSurrogate: SurrogateGradient {
    func derivative<T: TensorScalar>(_ x: T) -> T { .nan }
  }

  @Test func nanStopsNamingTheStepAndKeepsGoodWeights() throws {
    let data = try Dataset(train: 100, test: 20)
    let out = data.path + "/nan"
    let trainer = try CLITrainer(
      surrogate: PoisonSurrogate(),
      options: TrainOptions(
        epochs: 1, batchSize: 32, lr: 1e-3, seed: 1, threads: 1, hidden: 32, timeSteps: 20),
      dataset: FashionMNIST(directory: data.path), outDir: out)
    trainer.log = { _ in }
    do {
      try trainer.run()
      Issue.record("training with NaN gradients must stop")
    } catch {
      #expect("\(error)".contains("NaN or infinite at epoch 1, step "), "\(error)")
    }
    let file = try SafeTensors.read(out + "/final.safetensors")
    let w1 = try file.tensor("0.weight", as: Float.self)
    let finite = w1.scalars.allSatisfy { $0.isFinite }
    #expect(finite)
  }

  /// The event coder (a counting sort of each image's pixels by step) against the dense
  /// latency encoder, at T = 30 and at T = 8 (where only the brightest pixels spike).
  @Test(arguments: [30, 8]) func latencyEventsEqualTheDenseEncoder(timeSteps: Int) throws {
    let data = try Dataset(train: 40, test: 10)
    let split = try FashionMNIST.readSplit("train", in: data.path)
    let indices = Array([5, 0, 17, 33, 2, 9, 11, 5])[...]
    let coder = LatencyEventCoder(timeSteps: timeSteps, encoder: LatencyEncoder(timeSteps: timeSteps))
    let events = coder.events(split, indices: indices)
    let encoder = LatencyEncoder(timeSteps: timeSteps)
    let dense = encoder.encode(split.images(at: indices)).spikes  // [T, batch, features]
    #expect(dense.sum().scalar > 0)
    #expect(events.dense(Float.self) == dense.reshaped([timeSteps * 8, 100]))
  }

  @Test func reusedEventSlotGivesTheSameEvents() throws {
    let data = try Dataset(train: 40, test: 10)
    let split = try FashionMNIST.readSplit("train", in: data.path)
    let coder = LatencyEventCoder(timeSteps: 30, encoder: LatencyEncoder(timeSteps: 30))
    let slot = EventSlot()
    // Batches of different sizes and event counts, in both directions, through one slot.
    for indices in [Array(0..<40), [39], [5, 0, 17, 33, 2, 9, 11], Array(0..<40)] {
      let want = coder.events(split, indices: indices[...])
      coder.encode(split, indices: indices, into: slot, chunkSteps: 7)
      let got = slot.events
      #expect(want.count > 0)
      #expect(got.rows == want.rows && got.columns == want.columns)
      #expect(got.rowStart == want.rowStart)
      #expect(got.indices == want.indices)
    }
    // An event set still held elsewhere is not overwritten by the next batch.
    coder.encode(split, indices: [3, 4], into: slot)
    let kept = slot.events
    coder.encode(split, indices: [7, 8, 9], into: slot)
    let fresh = coder.events(split, indices: [3, 4][...])
    #expect(kept.rowStart == fresh.rowStart && kept.indices == fresh.indices)
  }

  @Test func batchPipelineGivesEachBatchInTurn() throws {
    let data = try Dataset(train: 40, test: 10)
    let split = try FashionMNIST.readSplit("train", in: data.path)
    let coder = LatencyEventCoder(timeSteps: 30, encoder: LatencyEncoder(timeSteps: 30))
    let pipeline = BatchPipeline(coder: coder, images: split)
    let batches = [Array(0..<16)[...], Array([5, 0, 17, 33, 2, 9, 11])[...], [39][...], Array(20..<40)[...]]
    pipeline.start(batches[0])
    var kept: [SpikeEvents] = []
    for (k, indices) in batches.enumerated() {
      let got = pipeline.take()
      if k + 1 < batches.count { pipeline.start(batches[k + 1]) }
      // Work on the pool while the next batch is encoded, as a training step does.
      parallel(2) { _ in }
      let want = coder.events(split, indices: indices)
      #expect(got.rows == want.rows && got.columns == want.columns)
      #expect(got.rowStart == want.rowStart)
      #expect(got.indices == want.indices)
      kept.append(got)
    }
    // Batches still held are not overwritten when their slot is reused.
    for (k, indices) in batches.enumerated() {
      #expect(kept[k].indices == coder.events(split, indices: indices).indices)
    }
    pipeline.cancel()  // nothing pending: returns at once
  }

  @Test func allFiniteFindsEveryNonFiniteValue() {
    #expect(Trainer.allFinite(Tensor<Float>.zeros([0])))
    let n = 37  // two 16-wide blocks and a tail
    #expect(Trainer.allFinite(Tensor<Float>((0..<n).map { Float($0) - 18 }, shape: [n])))
    #expect(Trainer.allFinite(Tensor<Float>([Float.greatestFiniteMagnitude, -.greatestFiniteMagnitude], shape: [2])))
    for bad in [Float.nan, .infinity, -.infinity] {
      for position in [0, 15, 16, 31, 32, 36] {
        var x = [Float](repeating: 1, count: n)
        x[position] = bad
        #expect(!Trainer.allFinite(Tensor<Float>(x, shape: [n])), "\(bad) at \(position)")
      }
    }
  }

  @Test func learningRateDefaultsFollowTheSurrogate() throws {
    #expect(TrainCommand.defaultLearningRate(for: S2NN()) == 2e-3)
    #expect(TrainCommand.defaultLearningRate(for: try InvSquareGrad(alpha: 100)) == 2e-4)
  }

  @Test func missingDatasetNamesTheInstallCommand() throws {
    let cmd = try SomaCommand.parseAsRoot(["train", "--data", "/no/such/dir", "--out", NSTemporaryDirectory() + "soma-x"])
    do {
      var c = cmd
      try c.run()
      Issue.record("training without data must fail")
    } catch {
      #expect("\(error)".contains("apt-get install"), "\(error)")
    }
  }
}
