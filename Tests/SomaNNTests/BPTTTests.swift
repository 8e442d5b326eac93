import Testing

@testable import SomaNN

/// What one bptt.json case produced through the public layer API.
struct BPTTResult<T: TensorScalar> {
  var hiddenSpikes: Double
  var logits: Tensor<T>
  var loss: Double
  var grads: [String: Tensor<T>]
}

enum Path { case fused, composed }

/// Builds Linear → LIF → Linear → (LIF | LeakyIntegrator) as a user would, runs the case and
/// back-propagates the cross-entropy.
func runCase<S: SurrogateGradient, T: TensorScalar>(
  _ c: BPTTFixture.Case, surrogate: S, as _: T.Type, path: Path = .fused
) throws -> BPTTResult<T> {
  let l1 = c.layer1
  let l2 = c.layer2
  let lif1 = try LIF(
    beta: l1.beta, threshold: l1.threshold, reset: Reset(rawValue: l1.reset)!,
    detachReset: l1.detachReset, surrogate: surrogate)
  let lif2 = try LIF(
    beta: l2.beta, threshold: l2.threshold, reset: Reset(rawValue: l2.reset)!,
    detachReset: l2.detachReset, surrogate: surrogate)
  let readout = try LeakyIntegrator(beta: l2.beta)
  let spikeCount = c.readout == "spikeCount"
  let fc1 = Linear(weight: Tensor<T>(matrix: c.W1), bias: Tensor(vector: c.b1))
  let fc2 = Linear(weight: Tensor<T>(matrix: c.W2), bias: Tensor(vector: c.b2))
  let net: Sequential<T>
  switch path {
  case .fused:
    net = Sequential {
      fc1
      lif1
      fc2
      if spikeCount { lif2 } else { readout }
    }
  case .composed:
    net = Sequential {
      fc1
      Composed(lif1.composed)
      fc2
      if spikeCount { Composed(lif2.composed) } else { Composed(readout.composed) }
    }
  }
  let x = Variable(Tensor<T>(cube: c.input))
  let hidden = Sequential(layers: Array(net.layers[0..<2]))(x)
  let out = Sequential(layers: Array(net.layers[2...]))(hidden)
  let loss =
    spikeCount
    ? spikeCountCrossEntropy(out, labels: c.labels)
    : meanMembraneCrossEntropy(out, labels: c.labels)
  loss.backward()
  var grads: [String: Tensor<T>] = [:]
  for (name, v) in net.parameters { grads[name] = v.grad }
  return BPTTResult(
    hiddenSpikes: Double(hidden.value.sum().scalar),
    logits: spikeCount ? out.value.sum(axis: 0) : out.value.mean(axis: 0),
    loss: Double(loss.value.scalar), grads: grads)
}

/// Wraps a composed-op multi-step function as a layer (test helper).
struct Composed<T: TensorScalar>: Layer {
  var f: (Variable<T>) -> Variable<T>
  init(_ f: @escaping (Variable<T>) -> Variable<T>) { self.f = f }
  func callAsFunction(_ input: Variable<T>) -> Variable<T> { f(input) }
}

func runCase<T: TensorScalar>(_ c: BPTTFixture.Case, as t: T.Type, path: Path = .fused) throws
  -> BPTTResult<T>
{
  let p = c.surrogate.params
  switch c.surrogate.name {
  case "S2NN":
    return try runCase(
      c, surrogate: try S2NN(alpha: p["alpha"]!, beta: p["beta"]!, epsilon: p["epsilon"]!),
      as: t, path: path)
  case "Sigmoid":
    return try runCase(c, surrogate: try Sigmoid(alpha: p["alpha"]!), as: t, path: path)
  case "Arctan":
    return try runCase(c, surrogate: try Arctan(alpha: p["alpha"]!), as: t, path: path)
  default:
    fatalError("bptt.json: unknown surrogate \(c.surrogate.name)")
  }
}

func check<T: TensorScalar>(_ r: BPTTResult<T>, _ c: BPTTFixture.Case, tolerance: Double) {
  #expect(r.hiddenSpikes == c.hiddenSpikeCount, "\(c.name): hidden spike count")
  #expect(
    scaledError(r.logits, c.logits.flatMap { $0 }) <= tolerance, "\(c.name): logits")
  #expect(Swift.abs(r.loss - c.loss) <= tolerance * Swift.abs(c.loss), "\(c.name): loss")
  let want: [(String, [Double])] = [
    ("0.weight", c.grad.W1.flatMap { $0 }), ("0.bias", c.grad.b1),
    ("2.weight", c.grad.W2.flatMap { $0 }), ("2.bias", c.grad.b2),
  ]
  for (name, w) in want {
    guard let g = r.grads[name] else {
      Issue.record("\(c.name): no gradient for \(name)")
      continue
    }
    let e = scaledError(g, w)
    #expect(e <= tolerance, "\(c.name): d loss / d \(name) off by \(e) of its max")
  }
}

@Suite("bptt.json through the public layer API")
struct BPTTTests {
  @Test("Double, fused kernels", arguments: BPTTFixture.shared.cases)
  func double(_ c: BPTTFixture.Case) throws {
    check(try runCase(c, as: Double.self), c, tolerance: 1e-9)
  }

  @Test("Float, fused kernels", arguments: BPTTFixture.shared.cases)
  func float(_ c: BPTTFixture.Case) throws {
    // README: loss to 1e-6 relative, gradients within 1e-5 · max|grad|.
    let r = try runCase(c, as: Float.self)
    #expect(Swift.abs(r.loss - c.loss) <= 1e-6 * Swift.abs(c.loss), "\(c.name): loss")
    check(r, c, tolerance: 1e-5)
  }

  @Test("Double, composed autodiff ops", arguments: BPTTFixture.shared.cases)
  func composed(_ c: BPTTFixture.Case) throws {
    check(try runCase(c, as: Double.self, path: .composed), c, tolerance: 1e-9)
  }
}
