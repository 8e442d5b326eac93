import Foundation
import SomaNN
import Testing

/// A network built with the layer API and compiled (`Sequential.compiled(loss:)`) against the
/// braintools/JAX whole-network gradients in Fixtures/bptt.json (see the fixtures' README for
/// the conventions), on the dense and the event-driven paths.
struct FusedReferenceTests {
  struct Case {
    var name: String
    var steps: Int
    var batch: Int
    var sizes: [Int]
    var surrogate: [String: Any]
    var lif: [(beta: Double, threshold: Double, reset: Reset, detachReset: Bool)]
    /// "spikeCount" (a LIF output layer) or "meanMembrane" (a leaky-integrator readout).
    var readout: String
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
      func lif(_ key: String) -> (beta: Double, threshold: Double, reset: Reset, detachReset: Bool) {
        let d = c[key] as! [String: Any]
        return (
          (d["beta"] as! NSNumber).doubleValue, (d["threshold"] as! NSNumber).doubleValue,
          Reset(rawValue: d["reset"] as! String)!, d["detachReset"] as! Bool
        )
      }
      let grad = c["grad"] as! [String: Any]
      return Case(
        name: c["name"] as! String, steps: c["T"] as! Int, batch: c["batch"] as! Int,
        sizes: c["sizes"] as! [Int], surrogate: c["surrogate"] as! [String: Any],
        lif: [lif("layer1"), lif("layer2")],
        readout: c["readout"] as! String,
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
    let (h, o) = (c.lif[0], c.lif[1])
    let readout: AnyLayer<T> =
      c.readout == "spikeCount"
      ? AnyLayer(
        try LIF(
          beta: o.beta, threshold: o.threshold, reset: o.reset, detachReset: o.detachReset,
          surrogate: surrogate))
      : AnyLayer(try LeakyIntegrator(beta: o.beta))
    // The fixtures hold W as [out, in], as Linear does.
    let net = Sequential<T>(layers: [
      AnyLayer(
        Linear(
          weight: Tensor(c.w1.map { T($0) }, shape: [c.sizes[1], c.sizes[0]]),
          bias: Tensor(c.b1.map { T($0) }))),
      AnyLayer(
        try LIF(
          beta: h.beta, threshold: h.threshold, reset: h.reset, detachReset: h.detachReset,
          surrogate: surrogate)),
      AnyLayer(
        Linear(
          weight: Tensor(c.w2.map { T($0) }, shape: [c.sizes[2], c.sizes[1]]),
          bias: Tensor(c.b2.map { T($0) }))),
      readout,
    ])
    let model = try net.compiled(
      loss: c.readout == "spikeCount" ? .spikeCountCrossEntropy : .meanMembraneCrossEntropy)
    #expect(model.isFused)
    model.eventPolicy = policy
    let input = Tensor(c.input.map { T($0) }, shape: [c.steps, c.batch, c.sizes[0]])
    let step = model.lossAndGradients(input: input, labels: c.labels)
    #expect(step.spikeCounts[0] == c.hiddenSpikeCount, "\(c.name) hidden spikes")
    #expect(
      Swift.abs(Double(step.loss) - c.loss) <= lossTol * Swift.abs(c.loss),
      "\(c.name) loss \(step.loss) vs \(c.loss)")
    for (got, want) in zip(step.logits.scalars, c.logits) {
      #expect(Swift.abs(Double(got) - want) <= 1e-5 * Swift.max(1, Swift.abs(want)), "\(c.name) logits")
    }
    let grads = net.parameterVariables.map { $0.grad! }
    let pairs: [(String, Tensor<T>)] = [
      ("W1", grads[0]), ("b1", grads[1]), ("W2", grads[2]), ("b2", grads[3]),
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
