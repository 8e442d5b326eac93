import Foundation
import SomaNN
import Testing

/// The fused `SpikingMLP` path against the braintools/JAX whole-network gradients in
/// Fixtures/bptt.json (copied from shared/reference; see its README for the conventions).
struct FusedReferenceTests {
  struct Case {
    var name: String
    var steps: Int
    var batch: Int
    var sizes: [Int]
    var surrogate: [String: Any]
    var lif: [LIFParameters]
    var readout: Readout
    var input: [Double]
    var labels: [Int]
    var w1, b1, w2, b2: [Double]
    var hiddenSpikeCount: Int
    var logits: [Double]
    var loss: Double
    var grad: [String: [Double]]
  }

  static func flatten(_ any: Any) -> [Double] {
    if let d = any as? Double { return [d] }
    if let n = any as? NSNumber { return [n.doubleValue] }
    if let a = any as? [Any] { return a.flatMap(flatten) }
    return []
  }

  static func loadCases() throws -> [Case] {
    let url = try #require(Bundle.module.url(forResource: "Fixtures/bptt", withExtension: "json"))
    let root = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    let cases = try #require(root["cases"] as? [[String: Any]])
    return try cases.map { c in
      func lif(_ key: String) throws -> LIFParameters {
        let d = c[key] as! [String: Any]
        return try LIFParameters(
          beta: (d["beta"] as! NSNumber).doubleValue,
          threshold: (d["threshold"] as! NSNumber).doubleValue,
          reset: Reset(rawValue: d["reset"] as! String)!,
          detachReset: d["detachReset"] as! Bool)
      }
      let grad = c["grad"] as! [String: Any]
      return Case(
        name: c["name"] as! String, steps: c["T"] as! Int, batch: c["batch"] as! Int,
        sizes: c["sizes"] as! [Int], surrogate: c["surrogate"] as! [String: Any],
        lif: [try lif("layer1"), try lif("layer2")],
        readout: Readout(rawValue: c["readout"] as! String)!,
        input: flatten(c["input"]!), labels: c["labels"] as! [Int],
        w1: flatten(c["W1"]!), b1: flatten(c["b1"]!), w2: flatten(c["W2"]!),
        b2: flatten(c["b2"]!), hiddenSpikeCount: Int((c["hiddenSpikeCount"] as! NSNumber).doubleValue),
        logits: flatten(c["logits"]!), loss: (c["loss"] as! NSNumber).doubleValue,
        grad: grad.mapValues { flatten($0) })
    }
  }

  func run<T: TensorScalar, S: SurrogateGradient>(
    _ c: Case, _: T.Type, surrogate: S, policy: EventPolicy, lossTol: Double, gradTol: Double
  ) throws {
    let net = try SpikingMLP<T, S>(
      sizes: c.sizes, lif: c.lif, readout: c.readout, hasBias: true, surrogate: surrogate)
    net.eventPolicy = policy
    // The fixtures hold W as [out, in] (PyTorch); SpikingMLP stores [in, out].
    net.weights = [
      Tensor(c.w1.map { T($0) }, shape: [c.sizes[1], c.sizes[0]]).transposed().contiguous(),
      Tensor(c.w2.map { T($0) }, shape: [c.sizes[2], c.sizes[1]]).transposed().contiguous(),
    ]
    net.biases = [Tensor(c.b1.map { T($0) }), Tensor(c.b2.map { T($0) })]
    let input = Tensor(c.input.map { T($0) }, shape: [c.steps, c.batch, c.sizes[0]])
    let step = net.lossAndGradients(input: input, labels: c.labels)
    #expect(step.spikeCounts[0] == c.hiddenSpikeCount, "\(c.name) hidden spikes")
    #expect(
      Swift.abs(Double(step.loss) - c.loss) <= lossTol * Swift.abs(c.loss),
      "\(c.name) loss \(step.loss) vs \(c.loss)")
    for (got, want) in zip(step.logits.scalars, c.logits) {
      #expect(Swift.abs(Double(got) - want) <= 1e-5 * Swift.max(1, Swift.abs(want)), "\(c.name) logits")
    }
    let pairs: [(String, Tensor<T>)] = [
      ("W1", step.gradWeights[0].transposed()), ("b1", step.gradBiases[0]),
      ("W2", step.gradWeights[1].transposed()), ("b2", step.gradBiases[1]),
    ]
    for (key, got) in pairs {
      let want = try #require(c.grad[key])
      let scale = want.map { Swift.abs($0) }.max() ?? 0
      var worst = 0.0
      for (g, w) in zip(got.scalars, want) { worst = Swift.max(worst, Swift.abs(Double(g) - w)) }
      #expect(got.count == want.count)
      #expect(worst <= gradTol * Swift.max(scale, 1e-30), "\(c.name) d\(key): off by \(worst), scale \(scale)")
    }
  }

  func runAny<T: TensorScalar>(_ c: Case, _ t: T.Type, policy: EventPolicy, lossTol: Double, gradTol: Double)
    throws
  {
    let name = c.surrogate["name"] as! String
    let p = (c.surrogate["params"] as! [String: Any]).mapValues { ($0 as! NSNumber).doubleValue }
    switch name {
    case "S2NN":
      try run(
        c, t, surrogate: try S2NN(alpha: p["alpha"]!, beta: p["beta"]!, epsilon: p["epsilon"]!),
        policy: policy, lossTol: lossTol, gradTol: gradTol)
    case "Sigmoid":
      try run(c, t, surrogate: try Sigmoid(alpha: p["alpha"]!), policy: policy, lossTol: lossTol, gradTol: gradTol)
    case "Arctan":
      try run(c, t, surrogate: try Arctan(alpha: p["alpha"]!), policy: policy, lossTol: lossTol, gradTol: gradTol)
    default:
      Issue.record("unexpected surrogate \(name) in bptt.json")
    }
  }

  @Test func allCasesDouble() throws {
    let cases = try Self.loadCases()
    #expect(cases.count == 5)
    for c in cases { try runAny(c, Double.self, policy: .never, lossTol: 1e-9, gradTol: 1e-9) }
  }

  @Test func allCasesFloatDense() throws {
    for c in try Self.loadCases() {
      try runAny(c, Float.self, policy: .never, lossTol: 1e-6, gradTol: 1e-5)
    }
  }

  @Test func allCasesFloatEventDriven() throws {
    for c in try Self.loadCases() {
      try runAny(c, Float.self, policy: .always, lossTol: 1e-6, gradTol: 1e-5)
    }
  }
}
