import Foundation
import SomaData
import SomaNN
import SomaSurrogate

/// One layer of a network as a checkpoint records it (the `layers` entry of the metadata, a
/// JSON array of these). Only the fields of the layer's type are present.
public struct LayerSpec: Codable, Equatable, Sendable {
  /// `Linear`, `LIF`, `IF`, `CUBALIF`, `LeakyIntegrator`, `RecurrentLIF`, `Conv2d`,
  /// `MaxPool2d`, `AvgPool2d`, `Flatten`, `Unflatten`, `BatchNorm2d`, `BatchNorm1d` or `Dropout`
  /// (another name cannot be rebuilt).
  public var type: String
  public var inputs: Int?
  public var outputs: Int?
  public var bias: Bool?
  public var alpha: Double?
  public var beta: Double?
  public var threshold: Double?
  /// `zero` or `subtract`.
  public var reset: String?
  public var detachReset: Bool?
  /// `NAME:key=value,...`, every parameter spelled out (e.g. `S2NN:alpha=4.0,beta=1.0`).
  public var surrogate: String?
  /// Convolution and pooling: [height, width] of the kernel, stride, padding and dilation.
  public var kernel: [Int]?
  public var stride: [Int]?
  public var padding: [Int]?
  public var dilation: [Int]?
  /// Conv2d's groups.
  public var groups: Int?
  /// AvgPool2d: whether padding counts in the average.
  public var countIncludePad: Bool?
  /// Unflatten: one sample's shape.
  public var shape: [Int]?
  /// BatchNorm (`outputs` holds the features; `momentum` absent: a cumulative average).
  public var epsilon: Double?
  public var momentum: Double?
  public var affine: Bool?
  public var trackRunningStats: Bool?
  /// Dropout's probability.
  public var p: Double?

  public init(type: String) { self.type = type }
}

/// A layer that can describe itself in a checkpoint's metadata.
public protocol CheckpointDescribable {
  var layerSpec: LayerSpec { get }
}

extension Linear: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "Linear")
    (s.inputs, s.outputs, s.bias) = (inFeatures, outFeatures, bias != nil)
    return s
  }
}

extension LIF: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "LIF")
    (s.beta, s.threshold, s.reset, s.detachReset) = (beta, threshold, reset.rawValue, detachReset)
    s.surrogate = SurrogateSpec.canonical(surrogate)
    return s
  }
}

extension IF: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = lif.layerSpec
    s.type = "IF"
    s.beta = nil
    return s
  }
}

extension CUBALIF: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "CUBALIF")
    (s.alpha, s.beta, s.threshold, s.reset) = (alpha, beta, threshold, reset.rawValue)
    s.surrogate = SurrogateSpec.canonical(surrogate)
    return s
  }
}

extension LeakyIntegrator: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "LeakyIntegrator")
    (s.beta, s.alpha) = (beta, alpha)
    return s
  }
}

extension RecurrentLIF: CheckpointDescribable where Scalar == Float {
  /// A `LIF` spec with the layer's size in `inputs` and `outputs`; the tensor
  /// `<index>.recurrentWeight` holds V.
  public var layerSpec: LayerSpec {
    var s = lif.layerSpec
    s.type = "RecurrentLIF"
    (s.inputs, s.outputs) = (recurrentWeight.shape[0], recurrentWeight.shape[0])
    return s
  }
}

extension Size2D {
  var list: [Int] { [height, width] }
}

extension Conv2d: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "Conv2d")
    (s.inputs, s.outputs, s.bias) = (inChannels, outChannels, bias != nil)
    (s.kernel, s.stride, s.padding, s.dilation) = (
      kernelSize.list, stride.list, padding.list, dilation.list
    )
    s.groups = groups
    return s
  }
}

extension MaxPool2d: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "MaxPool2d")
    (s.kernel, s.stride, s.padding, s.dilation) = (
      kernelSize.list, stride.list, padding.list, dilation.list
    )
    return s
  }
}

extension AvgPool2d: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "AvgPool2d")
    (s.kernel, s.stride, s.padding, s.countIncludePad) = (
      kernelSize.list, stride.list, padding.list, countIncludePad
    )
    return s
  }
}

extension Flatten: CheckpointDescribable {
  public var layerSpec: LayerSpec { LayerSpec(type: "Flatten") }
}

extension Unflatten: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "Unflatten")
    s.shape = shape
    return s
  }
}

/// The spec of a BatchNorm layer of either kind.
func batchNormSpec(
  _ type: String, features: Int, epsilon: Double, momentum: Double?, affine: Bool, track: Bool
) -> LayerSpec {
  var s = LayerSpec(type: type)
  (s.outputs, s.epsilon, s.momentum, s.affine, s.trackRunningStats) = (
    features, epsilon, momentum, affine, track
  )
  return s
}

extension BatchNorm2d: CheckpointDescribable {
  /// The tensors `<index>.running_mean`, `<index>.running_var` and `<index>.num_batches_tracked`
  /// (PyTorch's buffer names) hold the running statistics.
  public var layerSpec: LayerSpec {
    batchNormSpec(
      "BatchNorm2d", features: numFeatures, epsilon: epsilon, momentum: momentum, affine: affine,
      track: trackRunningStats)
  }
}

extension BatchNorm1d: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    batchNormSpec(
      "BatchNorm1d", features: numFeatures, epsilon: epsilon, momentum: momentum, affine: affine,
      track: trackRunningStats)
  }
}

extension Dropout: CheckpointDescribable {
  public var layerSpec: LayerSpec {
    var s = LayerSpec(type: "Dropout")
    s.p = p
    return s
  }
}

/// A checkpoint read back: the network rebuilt from its recorded layers, with its weights.
public struct LoadedCheckpoint {
  /// The network, its parameters holding the file's tensors.
  public var network: Sequential<Float>
  /// The loss it was trained with.
  public var loss: SpikingLoss
  /// The simulation steps T per sample it was trained with.
  public var timeSteps: Int
  /// How its input was encoded: `latency` for `soma train`'s latency code.
  public var encoder: String
  /// The model name (`spytorch`, `mlp`, or what the trainer was told).
  public var model: String
  /// The first layer's inputs and the last layer's outputs.
  public var inputs: Int
  public var outputs: Int
  /// The recorded layers.
  public var layers: [LayerSpec]
  /// The file's whole `__metadata__` (epoch, test accuracy, …).
  public var metadata: [String: String]
  /// 1 for a checkpoint of Soma 0.1 (`hidden.weight`/`readout.weight`), 2 for the current one.
  public var formatVersion: Int

  /// The network compiled with its loss, running `threads` parallel parts.
  public func compiled(threads: Int = 2) throws -> CompiledNetwork<Float> {
    let model = try network.compiled(loss: loss)
    model.threads = threads
    return model
  }
}

/// Checkpoints: safetensors files whose tensors are the network's parameters under their
/// `Sequential` names (`0.weight`, `2.weight`, …) and whose `__metadata__` records the network,
/// so a checkpoint alone rebuilds it (`Checkpoint.load`).
///
/// Metadata (format `soma-checkpoint-2`): `layers` (a JSON array of `LayerSpec`), `loss`,
/// `time_steps`, `encoder`, `model`, `inputs`, `outputs`, `hidden` (comma list of hidden
/// widths), plus what the writer adds (`surrogate`, `tau_syn`, `tau_mem`, `epoch`,
/// `test_accuracy`, …). A checkpoint of Soma 0.1 (format `soma-checkpoint-1`, tensors
/// `hidden.weight` and `readout.weight`) loads as the `spytorch` network it was.
public enum Checkpoint {
  public static let format = "soma-checkpoint-2"
  static let formatV1 = "soma-checkpoint-1"

  /// The layer list of `network` (a layer that is not `CheckpointDescribable` is recorded by
  /// its type name and cannot be rebuilt by `load`).
  public static func layerSpecs(_ network: Sequential<Float>) -> [LayerSpec] {
    network.layers.map { layer in
      (layer.base as? any CheckpointDescribable)?.layerSpec
        ?? LayerSpec(type: "\(type(of: layer.base))")
    }
  }

  /// The metadata describing `network` (everything but the per-save extras).
  public static func metadata(
    _ network: Sequential<Float>, loss: SpikingLoss, timeSteps: Int, encoder: String,
    model: String
  ) -> [String: String] {
    let specs = layerSpecs(network)
    let widths = network.linearWidths
    let encoderJSON = JSONEncoder()
    encoderJSON.outputFormatting = [.sortedKeys]
    let layers = (try? encoderJSON.encode(specs)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    return [
      "format": format, "model": model, "layers": layers, "loss": lossName(loss),
      "time_steps": "\(timeSteps)", "encoder": encoder,
      "inputs": "\(network.inputFeatures ?? widths.first ?? 0)", "outputs": "\(widths.last ?? 0)",
      "hidden": widths.dropFirst().dropLast().map(String.init).joined(separator: ","),
    ]
  }

  /// Writes `network`'s parameters and `metadata` (from `Checkpoint.metadata`, plus extras)
  /// to `path`, atomically.
  public static func write(
    _ network: Sequential<Float>, metadata: [String: String], to path: String
  ) throws {
    do { try SafeTensors.write(tensors(network), metadata: metadata, to: path) } catch {
      throw TrainError("\(error)")
    }
  }

  /// The bytes `write(_:metadata:to:)` writes: the same file, kept in memory (how a child
  /// process hands an imported network back to `soma import`).
  public static func encode(_ network: Sequential<Float>, metadata: [String: String]) -> [UInt8] {
    SafeTensors.encode(tensors(network).mapValues { AnyTensor($0) }, metadata: metadata)
  }

  /// The bytes of a checkpoint of `network`, as `write(_:loss:timeSteps:encoder:model:extra:to:)`
  /// writes them.
  public static func encode(
    _ network: Sequential<Float>, loss: SpikingLoss, timeSteps: Int, encoder: String = "latency",
    model: String = "custom", extra: [String: String] = [:]
  ) -> [UInt8] {
    var meta = metadata(network, loss: loss, timeSteps: timeSteps, encoder: encoder, model: model)
    for (k, v) in extra { meta[k] = v }
    return encode(network, metadata: meta)
  }

  /// A checkpoint's tensors: the parameters and the buffers, by name.
  static func tensors(_ network: Sequential<Float>) -> [String: Tensor<Float>] {
    var tensors: [String: Tensor<Float>] = [:]
    for (name, v) in network.parameters { tensors[name] = v.value }
    for (name, t) in buffers(network) { tensors[name] = t }
    return tensors
  }

  /// The state a network keeps outside its parameters, under PyTorch's buffer names: each
  /// BatchNorm layer's `<index>.running_mean`, `<index>.running_var` and
  /// `<index>.num_batches_tracked` (a one-element Float tensor).
  public static func buffers(_ network: Sequential<Float>) -> [(String, Tensor<Float>)] {
    var out: [(String, Tensor<Float>)] = []
    for (i, state) in batchNormStates(network) {
      out.append(("\(i).running_mean", state.runningMean.copiedContiguous()))
      out.append(("\(i).running_var", state.runningVar.copiedContiguous()))
      out.append(("\(i).num_batches_tracked", Tensor([Float(state.batchesTracked)], shape: [1])))
    }
    return out
  }

  /// The running statistics of `network`'s BatchNorm layers, with the layers' indices.
  static func batchNormStates(_ network: Sequential<Float>) -> [(Int, BatchNormState<Float>)] {
    network.layers.enumerated().compactMap { i, layer in
      if let bn = layer.base as? BatchNorm2d<Float> { return (i, bn.state) }
      if let bn = layer.base as? BatchNorm1d<Float> { return (i, bn.state) }
      return nil
    }
  }

  /// Writes a checkpoint of `network` trained with `loss` on `timeSteps`-step input.
  public static func write(
    _ network: Sequential<Float>, loss: SpikingLoss, timeSteps: Int, encoder: String = "latency",
    model: String = "custom", extra: [String: String] = [:], to path: String
  ) throws {
    var meta = metadata(network, loss: loss, timeSteps: timeSteps, encoder: encoder, model: model)
    for (k, v) in extra { meta[k] = v }
    try write(network, metadata: meta, to: path)
  }

  /// The spelling of `loss` in the metadata.
  public static func lossName(_ loss: SpikingLoss) -> String {
    if case .mseCount(let on, let off) = loss {
      return "mseCount:correctRate=\(on),incorrectRate=\(off)"
    }
    return "\(loss)"
  }

  static func parseLoss(_ text: String) -> SpikingLoss? {
    switch text {
    case "spikeCountCrossEntropy": return .spikeCountCrossEntropy
    case "meanMembraneCrossEntropy": return .meanMembraneCrossEntropy
    case "maxMembraneNLL": return .maxMembraneNLL
    default:
      guard text.hasPrefix("mseCount:"),
        let spec = try? SurrogateSpec(parsing: text),
        let on = spec.parameters["correctRate"], let off = spec.parameters["incorrectRate"],
        spec.parameters.count == 2
      else { return nil }
      return .mseCount(correctRate: on, incorrectRate: off)
    }
  }

  /// Reads a checkpoint and rebuilds its network. Every size read from the metadata is checked
  /// against `ModelLimits` and every tensor must match the recorded layers and be finite, so a
  /// file cannot make the loader allocate more than its weights need. Errors are one sentence
  /// naming the file.
  public static func load(_ path: String) throws -> LoadedCheckpoint {
    let file: SafeTensors.File
    do { file = try SafeTensors.read(path) } catch { throw TrainError("\(error)") }
    return try load(file, path: path)
  }

  /// `load(_:)` for a checkpoint's bytes (`path` names it in errors).
  public static func decode(_ bytes: [UInt8], path: String = "the checkpoint") throws
    -> LoadedCheckpoint
  {
    let file: SafeTensors.File
    do { file = try SafeTensors.decode(bytes, path: path) } catch { throw TrainError("\(error)") }
    return try load(file, path: path)
  }

  static func load(_ file: SafeTensors.File, path: String) throws -> LoadedCheckpoint {
    let m = file.metadata
    switch m["format"] {
    case format?: return try loadV2(file, path: path)
    case formatV1?: return try loadV1(file, path: path)
    case nil where file.tensors["hidden.weight"] != nil: return try loadV1(file, path: path)
    case let other:
      throw TrainError(
        "checkpoint \(path) has format '\(other.map { String($0.prefix(40)) } ?? "none")'; soma"
          + " reads \(format) and \(formatV1) (was it written by soma train?)")
    }
  }

  static func invalid(_ m: [String: String], _ key: String, _ path: String) -> TrainError {
    let got = m[key].map { " (it holds '\($0.prefix(40))')" } ?? ""
    return TrainError(
      "checkpoint \(path) has no valid '\(key)' in its metadata\(got); was it written by soma"
        + " train?")
  }

  static func positiveInt(_ m: [String: String], _ key: String, _ path: String) throws -> Int {
    guard let s = m[key], let v = Int(s), v > 0 else { throw invalid(m, key, path) }
    return v
  }

  static func positiveDouble(_ m: [String: String], _ key: String, _ path: String) throws
    -> Double
  {
    guard let s = m[key], let v = Double(s), v > 0, v.isFinite else { throw invalid(m, key, path) }
    return v
  }

  static func checkLimits(hidden: [Int], timeSteps: Int, path: String) throws {
    for h in hidden {
      if let bad = ModelLimits.violation(hidden: h, timeSteps: 1) {
        throw TrainError(ModelLimits.checkpointMessage(bad.limit, bad.value, path: path))
      }
    }
    if let bad = ModelLimits.violation(hidden: 1, timeSteps: timeSteps) {
      throw TrainError(ModelLimits.checkpointMessage(bad.limit, bad.value, path: path))
    }
  }

  static func finiteTensor(_ file: SafeTensors.File, _ name: String, path: String) throws
    -> Tensor<Float>
  {
    let t: Tensor<Float>
    do { t = try file.tensor(name, as: Float.self, path: path) } catch {
      throw TrainError("\(error)")
    }
    guard Trainer.allFinite(t) else {
      throw TrainError(
        "checkpoint \(path) holds a NaN or infinite value in \(name); it cannot be evaluated")
    }
    return t
  }

  // MARK: Format 1 (Soma 0.1): SpyTorch's network

  static func loadV1(_ file: SafeTensors.File, path: String) throws -> LoadedCheckpoint {
    let m = file.metadata
    guard let model = m["model"], model == "mlp" else {
      throw TrainError(
        "checkpoint \(path) holds model '\(m["model"] ?? "none")'; soma knows 'mlp' in"
          + " \(formatV1) files")
    }
    let inputs = try positiveInt(m, "inputs", path)
    let hidden = try positiveInt(m, "hidden", path)
    let outputs = try positiveInt(m, "outputs", path)
    let timeSteps = try positiveInt(m, "time_steps", path)
    let tauSyn = try positiveDouble(m, "tau_syn", path)
    let tauMem = try positiveDouble(m, "tau_mem", path)
    let surrogateText = m["surrogate"] ?? "S2NN"
    try checkLimits(hidden: [hidden], timeSteps: timeSteps, path: path)
    let surrogate = try SurrogateSpec(
      parsing: surrogateText, source: "checkpoint \(path)'s surrogate"
    ).make()
    let w1: Tensor<Float>
    let w2: Tensor<Float>
    do {
      w1 = try file.tensor("hidden.weight", as: Float.self, path: path)
      w2 = try file.tensor("readout.weight", as: Float.self, path: path)
    } catch { throw TrainError("\(error)") }
    guard w1.shape == [hidden, inputs], w2.shape == [outputs, hidden] else {
      throw TrainError(
        "checkpoint \(path) has weights \(w1.shape) and \(w2.shape), which do not match its"
          + " metadata (\(inputs)-\(hidden)-\(outputs))")
    }
    for name in ["hidden.weight", "readout.weight"] { _ = try finiteTensor(file, name, path: path) }
    let network: Sequential<Float>
    do {
      network = try withConcreteSurrogate(
        surrogate, SpyTorchBuilder(w1: w1, w2: w2, tauSyn: tauSyn, tauMem: tauMem))
    } catch { throw TrainError("checkpoint \(path): \(error)") }
    var meta = m
    meta["model"] = "spytorch"
    return LoadedCheckpoint(
      network: network, loss: Models.spytorchLoss, timeSteps: timeSteps,
      encoder: m["encoder"] ?? "latency", model: "spytorch", inputs: inputs, outputs: outputs,
      layers: layerSpecs(network), metadata: meta, formatVersion: 1)
  }

  struct SpyTorchBuilder: SurrogateVisitor {
    let w1: Tensor<Float>, w2: Tensor<Float>, tauSyn: Double, tauMem: Double
    func visit<S: SurrogateGradient>(_ s: S) throws -> Sequential<Float> {
      try Models.spytorch(w1: w1, w2: w2, tauSyn: tauSyn, tauMem: tauMem, surrogate: s)
    }
  }

  // MARK: Format 2: the layer list

  /// The most layers a checkpoint may record.
  static let maximumLayers = 256

  static func loadV2(_ file: SafeTensors.File, path: String) throws -> LoadedCheckpoint {
    let m = file.metadata
    let specs: [LayerSpec]
    do {
      guard let text = m["layers"] else { throw invalid(m, "layers", path) }
      specs = try JSONDecoder().decode([LayerSpec].self, from: Data(text.utf8))
    } catch { throw invalid(m, "layers", path) }
    guard !specs.isEmpty, specs.count <= maximumLayers else {
      throw TrainError(
        "checkpoint \(path) records \(specs.count) layers; soma loads 1...\(maximumLayers)")
    }
    let timeSteps = try positiveInt(m, "time_steps", path)
    guard let lossText = m["loss"], let loss = parseLoss(lossText) else {
      throw invalid(m, "loss", path)
    }
    // The metadata's sizes obey soma train's limits before anything is built.
    let linear = specs.filter { $0.type == "Linear" }
    guard !linear.isEmpty else {
      throw TrainError("checkpoint \(path) records no Linear layer; there is nothing to load")
    }
    let hiddenWidths = linear.dropLast().compactMap(\.outputs)
    if let h = m["hidden"], !h.isEmpty {
      for part in h.split(separator: ",", omittingEmptySubsequences: false) {
        guard let v = Int(part), v > 0 else { throw invalid(m, "hidden", path) }
        try checkLimits(hidden: [v], timeSteps: 1, path: path)
      }
    }
    try checkLimits(hidden: hiddenWidths, timeSteps: timeSteps, path: path)
    for key in ["tau_syn", "tau_mem"] where m[key] != nil {
      _ = try positiveDouble(m, key, path)
    }
    var layers: [AnyLayer<Float>] = []
    for (i, spec) in specs.enumerated() {
      layers.append(try layer(spec, index: i, file: file, path: path))
    }
    let network = Sequential<Float>(layers: layers)
    let widths = network.linearWidths
    do { _ = try network.compiled(loss: loss) } catch {
      throw TrainError("checkpoint \(path) records layers that do not fit together: \(error)")
    }
    return LoadedCheckpoint(
      network: network, loss: loss, timeSteps: timeSteps, encoder: m["encoder"] ?? "latency",
      model: m["model"] ?? "custom", inputs: network.inputFeatures ?? widths.first!, outputs: widths.last!, layers: specs,
      metadata: m, formatVersion: 2)
  }

  static func layer(_ spec: LayerSpec, index i: Int, file: SafeTensors.File, path: String) throws
    -> AnyLayer<Float>
  {
    let what = "checkpoint \(path) layer \(i) (\(spec.type.prefix(40)))"
    if spec.type == "Linear" {
      guard let nIn = spec.inputs, let nOut = spec.outputs, nIn > 0, nOut > 0 else {
        throw TrainError("\(what) has no valid inputs and outputs")
      }
      let w = try finiteTensor(file, "\(i).weight", path: path)
      guard w.shape == [nOut, nIn] else {
        throw TrainError(
          "checkpoint \(path) has \(i).weight of shape \(w.shape), which does not match its"
            + " metadata (Linear \(nIn) → \(nOut))")
      }
      var b: Tensor<Float>? = nil
      if spec.bias == true {
        let t = try finiteTensor(file, "\(i).bias", path: path)
        guard t.shape == [nOut] else {
          throw TrainError(
            "checkpoint \(path) has \(i).bias of shape \(t.shape), which does not match its"
              + " metadata (Linear \(nIn) → \(nOut))")
        }
        b = t
      }
      return AnyLayer(Linear<Float>(weight: w, bias: b))
    }
    if let image = try imageLayer(spec, index: i, file: file, path: path) { return image }
    if spec.type == "LeakyIntegrator" {
      do {
        return AnyLayer<Float>(try LeakyIntegrator(beta: spec.beta ?? 0.9, alpha: spec.alpha))
      } catch { throw TrainError("\(what): \(error)") }
    }
    var recurrent: Tensor<Float>? = nil
    if spec.type == "RecurrentLIF" {
      guard let n = spec.outputs, n > 0, spec.inputs == n else {
        throw TrainError("\(what) has no valid size (inputs equal to outputs)")
      }
      try checkLimits(hidden: [n], timeSteps: 1, path: path)
      let v = try finiteTensor(file, "\(i).recurrentWeight", path: path)
      guard v.shape == [n, n] else {
        throw TrainError(
          "checkpoint \(path) has \(i).recurrentWeight of shape \(v.shape), which does not match"
            + " its metadata (RecurrentLIF of \(n))")
      }
      recurrent = v
    }
    guard ["LIF", "IF", "CUBALIF", "RecurrentLIF"].contains(spec.type) else {
      throw TrainError(
        "\(what) is not a layer soma can rebuild (Linear, LIF, IF, CUBALIF, LeakyIntegrator,"
          + " RecurrentLIF, Conv2d, MaxPool2d, AvgPool2d, Flatten, Unflatten, BatchNorm2d,"
          + " BatchNorm1d, Dropout);"
          + " load its tensors into your own network with Checkpoint.loadParameters")
    }
    let surrogate = try SurrogateSpec(
      parsing: spec.surrogate ?? "S2NN", source: "checkpoint \(path)'s surrogate"
    ).make()
    guard let reset = Reset(rawValue: spec.reset ?? "subtract") else {
      throw TrainError("\(what) has reset '\(spec.reset!.prefix(40))'; soma knows zero and subtract")
    }
    do {
      return try withConcreteSurrogate(
        surrogate, NeuronBuilder(spec: spec, reset: reset, recurrentWeight: recurrent))
    } catch { throw TrainError("\(what): \(error)") }
  }

  /// The largest kernel, stride, padding or dilation a checkpoint may record.
  static let maximumWindow = 64

  /// A [height, width] pair of the spec, each in `minimum`...maximumWindow.
  static func pair(_ v: [Int]?, _ key: String, minimum: Int, _ what: String) throws -> Size2D {
    guard let v, v.count == 2, v.allSatisfy({ $0 >= minimum && $0 <= maximumWindow }) else {
      throw TrainError(
        "\(what) has no valid \(key) (two numbers in \(minimum)...\(maximumWindow))")
    }
    return Size2D(v[0], v[1])
  }

  /// The image layers (convolution, pooling, reshapes, BatchNorm, Dropout), or nil for another
  /// type.
  static func imageLayer(_ spec: LayerSpec, index i: Int, file: SafeTensors.File, path: String)
    throws -> AnyLayer<Float>?
  {
    let what = "checkpoint \(path) layer \(i) (\(spec.type.prefix(40)))"
    func size(_ v: Int?, _ key: String) throws -> Int {
      guard let v, ModelLimits.hidden.range.contains(v) else {
        throw TrainError("\(what) has no valid \(key) (in \(ModelLimits.hidden.range))")
      }
      return v
    }
    func tensor(_ name: String, _ shape: [Int]) throws -> Tensor<Float> {
      let t = try finiteTensor(file, "\(i).\(name)", path: path)
      guard t.shape == shape else {
        throw TrainError(
          "checkpoint \(path) has \(i).\(name) of shape \(t.shape), which does not match its"
            + " metadata (\(spec.type) expects \(shape))")
      }
      return t
    }
    do {
      switch spec.type {
      case "Conv2d":
        let (cIn, cOut) = (try size(spec.inputs, "inputs"), try size(spec.outputs, "outputs"))
        let groups = spec.groups ?? 1
        guard groups >= 1, cIn % groups == 0, cOut % groups == 0 else {
          throw TrainError("\(what) has groups \(groups), which do not divide its channels")
        }
        let k = try pair(spec.kernel, "kernel", minimum: 1, what)
        let w = try tensor("weight", [cOut, cIn / groups, k.height, k.width])
        let b = spec.bias == true ? try tensor("bias", [cOut]) : nil
        return AnyLayer(
          try Conv2d<Float>(
            weight: w, bias: b, stride: try pair(spec.stride ?? [1, 1], "stride", minimum: 1, what),
            padding: try pair(spec.padding ?? [0, 0], "padding", minimum: 0, what),
            dilation: try pair(spec.dilation ?? [1, 1], "dilation", minimum: 1, what),
            groups: groups))
      case "MaxPool2d":
        let k = try pair(spec.kernel, "kernel", minimum: 1, what)
        return AnyLayer(
          try MaxPool2d<Float>(
            kernelSize: k, stride: try pair(spec.stride ?? k.list, "stride", minimum: 1, what),
            padding: try pair(spec.padding ?? [0, 0], "padding", minimum: 0, what),
            dilation: try pair(spec.dilation ?? [1, 1], "dilation", minimum: 1, what)))
      case "AvgPool2d":
        let k = try pair(spec.kernel, "kernel", minimum: 1, what)
        return AnyLayer(
          try AvgPool2d<Float>(
            kernelSize: k, stride: try pair(spec.stride ?? k.list, "stride", minimum: 1, what),
            padding: try pair(spec.padding ?? [0, 0], "padding", minimum: 0, what),
            countIncludePad: spec.countIncludePad ?? true))
      case "Flatten":
        return AnyLayer(Flatten<Float>())
      case "Unflatten":
        guard let shape = spec.shape, (1...8).contains(shape.count),
          shape.allSatisfy({ (1...ModelLimits.hidden.range.upperBound).contains($0) }),
          shape.reduce(1, *) <= 1 << 24
        else { throw TrainError("\(what) has no valid shape") }
        return AnyLayer(try Unflatten<Float>(shape))
      case "BatchNorm2d", "BatchNorm1d":
        let n = try size(spec.outputs, "outputs")
        let affine = spec.affine ?? true
        let layer: AnyLayer<Float>
        let state: BatchNormState<Float>
        var params: [String: Tensor<Float>] = [:]
        if affine {
          params["weight"] = try tensor("weight", [n])
          params["bias"] = try tensor("bias", [n])
        }
        let (eps, momentum, track) = (
          spec.epsilon ?? 1e-5, spec.momentum, spec.trackRunningStats ?? true
        )
        if spec.type == "BatchNorm2d" {
          let bn = try BatchNorm2d<Float>(
            n, epsilon: eps, momentum: momentum, affine: affine, trackRunningStats: track)
          (layer, state) = (AnyLayer(bn), bn.state)
        } else {
          let bn = try BatchNorm1d<Float>(
            n, epsilon: eps, momentum: momentum, affine: affine, trackRunningStats: track)
          (layer, state) = (AnyLayer(bn), bn.state)
        }
        for p in layer.parameters { p.variable.value = params[p.name]! }
        if track {
          state.runningMean = try tensor("running_mean", [n])
          state.runningVar = try tensor("running_var", [n])
          let count = try tensor("num_batches_tracked", [1]).scalars[0]
          guard count >= 0, count <= 1e9 else {
            throw TrainError("\(what) has num_batches_tracked \(count), outside 0...1e9")
          }
          state.batchesTracked = Int(count)
        }
        return layer
      case "Dropout":
        return AnyLayer(try Dropout<Float>(p: spec.p ?? 0.5))
      default:
        return nil
      }
    } catch let error as TrainError {
      throw error
    } catch {
      throw TrainError("\(what): \(error)")
    }
  }

  struct NeuronBuilder: SurrogateVisitor {
    let spec: LayerSpec
    let reset: Reset
    var recurrentWeight: Tensor<Float>? = nil
    func visit<S: SurrogateGradient>(_ s: S) throws -> AnyLayer<Float> {
      let threshold = spec.threshold ?? 1
      switch spec.type {
      case "RecurrentLIF":
        return AnyLayer(
          try RecurrentLIF<S, Float>(
            recurrentWeight: recurrentWeight!, beta: spec.beta ?? 0.9, threshold: threshold,
            reset: reset, detachReset: spec.detachReset ?? false, surrogate: s))
      case "LIF":
        return AnyLayer(
          try LIF(
            beta: spec.beta ?? 0.9, threshold: threshold, reset: reset,
            detachReset: spec.detachReset ?? false, surrogate: s))
      case "IF":
        return AnyLayer(
          try IF(
            threshold: threshold, reset: reset, detachReset: spec.detachReset ?? false,
            surrogate: s))
      default:
        guard let alpha = spec.alpha, let beta = spec.beta else {
          throw TrainError("CUBALIF needs alpha and beta")
        }
        return AnyLayer(
          try CUBALIF(alpha: alpha, beta: beta, threshold: threshold, reset: reset, surrogate: s))
      }
    }
  }

  /// Reads the tensors of a checkpoint into `network`'s parameters by name (for a network
  /// with layers `load` cannot rebuild). Every parameter must be present with its shape.
  public static func loadParameters(from path: String, into network: Sequential<Float>) throws {
    let file: SafeTensors.File
    do { file = try SafeTensors.read(path) } catch { throw TrainError("\(error)") }
    for (name, v) in network.parameters {
      let t = try finiteTensor(file, name, path: path)
      guard t.shape == v.shape else {
        throw TrainError(
          "checkpoint \(path) has \(name) of shape \(t.shape); the network's is \(v.shape)")
      }
      v.value = t
    }
  }
}
