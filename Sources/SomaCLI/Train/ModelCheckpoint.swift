import Foundation
import SomaData
import SomaNN

/// What a checkpoint's `__metadata__` records, so `soma evaluate` and `soma raster` need only
/// the file. Tensors: `hidden.weight` [hidden, 784] and `readout.weight` [10, hidden]
/// (PyTorch's [out, in] layout).
struct ModelConfig: Equatable {
  var model = "mlp"
  var inputs = 784
  var hidden = 100
  var outputs = 10
  var timeSteps = 100
  var surrogate = "S2NN"
  var tauSyn = 5e-3
  var tauMem = 10e-3

  var metadata: [String: String] {
    [
      "format": "soma-checkpoint-1", "model": model, "inputs": "\(inputs)", "hidden": "\(hidden)",
      "outputs": "\(outputs)", "time_steps": "\(timeSteps)", "surrogate": surrogate,
      "tau_syn": "\(tauSyn)", "tau_mem": "\(tauMem)", "encoder": "latency",
    ]
  }

  init() {}

  /// Reads and checks a checkpoint's metadata: every size must be one `soma train` accepts
  /// (`ModelLimits`), so a file cannot make the loader allocate more than its weights need.
  init(metadata m: [String: String], path: String) throws {
    func invalid(_ key: String) -> CLIError {
      let got = m[key].map { " (it holds '\($0.prefix(40))')" } ?? ""
      return CLIError(
        "checkpoint \(path) has no valid '\(key)' in its metadata\(got); was it written by soma"
          + " train?")
    }
    func int(_ key: String) throws -> Int {
      guard let s = m[key], let v = Int(s), v > 0 else { throw invalid(key) }
      return v
    }
    func double(_ key: String) throws -> Double {
      guard let s = m[key], let v = Double(s), v > 0, v.isFinite else { throw invalid(key) }
      return v
    }
    guard let model = m["model"], model == "mlp" else {
      throw CLIError("checkpoint \(path) holds model '\(m["model"] ?? "none")'; soma knows 'mlp'")
    }
    self.model = model
    inputs = try int("inputs")
    hidden = try int("hidden")
    outputs = try int("outputs")
    timeSteps = try int("time_steps")
    tauSyn = try double("tau_syn")
    tauMem = try double("tau_mem")
    surrogate = m["surrogate"] ?? "S2NN"
    if let bad = ModelLimits.violation(hidden: hidden, timeSteps: timeSteps) {
      throw CLIError(ModelLimits.checkpointMessage(bad.limit, bad.value, path: path))
    }
  }
}

enum ModelCheckpoint {
  static func write<S>(
    _ net: CurrentBasedSNN<Float, S>, config: ModelConfig, extra: [String: String], to path: String
  ) throws {
    var meta = config.metadata
    for (k, v) in extra { meta[k] = v }
    try SafeTensors.write(
      ["hidden.weight": net.w1, "readout.weight": net.w2], metadata: meta, to: path)
  }

  /// Reads a checkpoint: its configuration (checked against `ModelLimits`) and its weights,
  /// which must match that configuration and be finite.
  static func load(_ path: String) throws
    -> (config: ModelConfig, w1: Tensor<Float>, w2: Tensor<Float>)
  {
    let file: SafeTensors.File
    do { file = try SafeTensors.read(path) } catch { throw CLIError("\(error)") }
    let config = try ModelConfig(metadata: file.metadata, path: path)
    let w1: Tensor<Float>
    let w2: Tensor<Float>
    do {
      w1 = try file.tensor("hidden.weight", as: Float.self, path: path)
      w2 = try file.tensor("readout.weight", as: Float.self, path: path)
    } catch { throw CLIError("\(error)") }
    guard w1.shape == [config.hidden, config.inputs], w2.shape == [config.outputs, config.hidden]
    else {
      throw CLIError(
        "checkpoint \(path) has weights \(w1.shape) and \(w2.shape), which do not match its"
          + " metadata (\(config.inputs)-\(config.hidden)-\(config.outputs))")
    }
    for (name, w) in [("hidden.weight", w1), ("readout.weight", w2)] where !Trainer.allFinite(w) {
      throw CLIError(
        "checkpoint \(path) holds a NaN or infinite value in \(name); it cannot be evaluated")
    }
    return (config, w1, w2)
  }
}
