import SomaSurrogate

/// `NAME[:key=value,...]`, e.g. `InvSquareGrad:alpha=100` or `s2nn`.
package struct SurrogateSpec: CustomStringConvertible {
  package var name: String
  package var parameters: [String: Double]
  /// Where the text came from, for error messages: `--surrogate` or a checkpoint.
  package var source = "--surrogate"

  package init(parsing text: String, source: String = "--surrogate") throws {
    self.source = source
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
    name = String(parts[0])
    parameters = [:]
    if name.isEmpty {
      throw TrainError("\(source) needs a name, e.g. S2NN or InvSquareGrad:alpha=100")
    }
    if parts.count == 2 {
      for item in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
        let kv = item.split(separator: "=", maxSplits: 1)
        guard kv.count == 2, let value = Double(kv[1]), value.isFinite else {
          throw TrainError("\(source) parameter '\(item)' is not KEY=NUMBER (e.g. alpha=4)")
        }
        parameters[String(kv[0])] = value
      }
    }
  }

  /// The surrogate this spec names, validated.
  package func make() throws -> any SurrogateGradient {
    do {
      return try SurrogateRegistry.make(name, parameters: parameters)
    } catch {
      throw TrainError("\(source) \(self): \(error)")
    }
  }

  /// The canonical spelling with every parameter, for checkpoints.
  package static func canonical(_ s: some SurrogateGradient) -> String {
    let params = s.parameters.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
    return params.isEmpty ? type(of: s).name : "\(type(of: s).name):\(params)"
  }

  package var description: String {
    parameters.isEmpty
      ? name
      : name + ":" + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
  }
}
