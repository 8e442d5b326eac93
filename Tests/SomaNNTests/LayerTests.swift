import Testing

@testable import SomaNN

/// A neuron layer's fused and composed paths, behind one interface for the table below.
struct NeuronCase: Sendable, CustomStringConvertible {
  var name: String
  var fused: @Sendable (Variable<Double>) -> Variable<Double>
  var composed: @Sendable (Variable<Double>) -> Variable<Double>
  var description: String { name }
}

func neuronCases() -> [NeuronCase] {
  var c: [NeuronCase] = []
  for reset in [Reset.subtract, .zero] {
    for detach in [false, true] {
      let lif = try! LIF(
        beta: 0.85, threshold: 0.7, reset: reset, detachReset: detach, surrogate: TestS2NN())
      c.append(
        NeuronCase(
          name: "LIF \(reset) detach \(detach)", fused: { lif($0) }, composed: { lif.composed($0) })
      )
    }
  }
  let ifn = try! IF(threshold: 1.2, surrogate: TestSigmoid(alpha: 3))
  c.append(NeuronCase(name: "IF", fused: { ifn($0) }, composed: { ifn.lif.composed($0) }))
  for reset in [Reset.zero, .subtract] {
    let cuba = try! CUBALIF(
      alpha: 0.8, beta: 0.9, threshold: 0.6, reset: reset, surrogate: TestArctan(alpha: 2))
    c.append(
      NeuronCase(name: "CUBALIF \(reset)", fused: { cuba($0) }, composed: { cuba.composed($0) }))
  }
  let leaky = try! LeakyIntegrator(beta: 0.9)
  c.append(
    NeuronCase(name: "LeakyIntegrator", fused: { leaky($0) }, composed: { leaky.composed($0) }))
  let filter = try! LeakyIntegrator(beta: 0.9, alpha: 0.7)
  c.append(
    NeuronCase(
      name: "LeakyIntegrator α/β", fused: { filter($0) }, composed: { filter.composed($0) }))
  return c
}

/// max |a − b| / max(1, max |b|).
func relativeDifference<T: TensorScalar>(_ a: Tensor<T>, _ b: Tensor<T>) -> Double {
  #expect(a.shape == b.shape)
  let x = a.scalars.map { Double($0) }
  let y = b.scalars.map { Double($0) }
  let scale = Swift.max(1, y.map { Swift.abs($0) }.max() ?? 0)
  return (zip(x, y).map { Swift.abs($0 - $1) }.max() ?? 0) / scale
}

@Suite("Layers")
struct LayerTests {
  @Test("fused kernel == composed autodiff ops (values and gradients)", arguments: neuronCases())
  func fusedMatchesComposed(_ n: NeuronCase) {
    var rng = SomaRandom(seed: 11)
    let currents = Tensor<Double>.normal([9, 3, 5], mean: 0.4, std: 0.8, using: &rng)
    let w = Tensor<Double>.normal([9, 3, 5], using: &rng)
    let a = Variable(currents, requiresGrad: true)
    let b = Variable(currents, requiresGrad: true)
    let ya = n.fused(a)
    let yb = n.composed(b)
    #expect(ya.value == yb.value)
    #expect(ya.value.sum().scalar != 0)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    let ga = a.grad!
    let gb = b.grad!
    #expect(ga.abs().max().scalar > 0)
    #expect(relativeDifference(ga, gb) < 1e-12, "\(n.name)")
  }

  @Test(
    "Float: the C time-step kernels equal the composed ops bit for bit",
    arguments: [
      Reset.subtract, .zero,
    ])
  func floatFusedMatchesComposed(_ reset: Reset) throws {
    var rng = SomaRandom(seed: 12)
    let lif = try LIF(beta: 0.9, threshold: 0.5, reset: reset, surrogate: S2NN())
    let currents = Tensor<Float>.normal([12, 4, 33], mean: 0.3, std: 0.7, using: &rng)
    let w = Tensor<Float>.normal([12, 4, 33], using: &rng)
    let a = Variable(currents, requiresGrad: true)
    let b = Variable(currents, requiresGrad: true)
    let ya = lif(a)
    let yb = lif.composed(b)
    #expect(ya.value == yb.value)
    (ya * w).sum().backward()
    (yb * w).sum().backward()
    #expect(relativeDifference(a.grad!, b.grad!) < 1e-5)
  }

  @Test func recurrentLIFFusedMatchesComposed() throws {
    var rng = SomaRandom(seed: 5)
    let rec = try RecurrentLIF<TestS2NN, Double>(
      size: 6, beta: 0.9, threshold: 0.8, surrogate: TestS2NN(), seed: 9)
    let currents = Tensor<Double>.normal([8, 2, 6], mean: 0.3, std: 0.8, using: &rng)
    let w = Tensor<Double>.normal([8, 2, 6], using: &rng)
    let a = Variable(currents, requiresGrad: true)
    let ya = rec(a)
    (ya * w).sum().backward()
    let gwFused = rec.recurrentWeight.grad!
    rec.recurrentWeight.zeroGrad()
    let b = Variable(currents, requiresGrad: true)
    let yb = rec.composed(b)
    (yb * w).sum().backward()
    #expect(ya.value == yb.value)
    #expect(relativeDifference(a.grad!, b.grad!) < 1e-12)
    #expect(gwFused.abs().max().scalar > 0)
    #expect(relativeDifference(gwFused, rec.recurrentWeight.grad!) < 1e-12)
  }

  @Test("the linear leaky integrators pass the finite-difference check")
  func leakyIntegratorGradientCheck() throws {
    var rng = SomaRandom(seed: 3)
    let x = Tensor<Double>.normal([6, 2, 3], using: &rng)
    for alpha in [nil, 0.6] {
      let li = try LeakyIntegrator(beta: 0.8, alpha: alpha)
      #expect(GradientCheck.run([x]) { li($0[0]) }.maxError < 1e-7)
    }
  }

  @Test func linearFoldsTimeIntoOneGEMMAndChecksGradients() {
    var rng = SomaRandom(seed: 1)
    let x = Tensor<Double>.normal([4, 3, 5], using: &rng)
    let w = Tensor<Double>.normal([2, 5], using: &rng)
    let b = Tensor<Double>.normal([2], using: &rng)
    let r = GradientCheck.run([x, w, b]) { v in linear(v[0], weight: v[1], bias: v[2]) }
    #expect(r.maxError < 1e-7)
    let fc = Linear(weight: w, bias: b)
    let y = fc(Variable(x))
    #expect(y.shape == [4, 3, 2])
    // Against the plain definition for one time step and sample.
    let ref = w.matmul(x[2, 1].reshaped(5, 1)).reshaped(2) + b
    #expect(relativeDifference(y.value[2, 1], ref) < 1e-12)
  }

  @Test func linearInitialisation() {
    var rng = SomaRandom(seed: 4)
    let fc = Linear<Float>(64, 32, using: &rng)
    let bound: Float = 1 / 8
    #expect(fc.weight.shape == [32, 64])
    #expect(fc.weight.value.abs().max().scalar <= bound)
    #expect(fc.bias!.value.abs().max().scalar <= bound)
    #expect(fc.weight.value.abs().max().scalar > bound * 0.9)
    for (rows, cols) in [(8, 5), (5, 8)] {
      let q = Linear<Double>(cols, rows, initialization: .orthogonal(gain: 2), seed: 7).weight.value
      let gram = rows >= cols ? q.transposed().matmul(q) : q.matmul(q.transposed())
      let k = Swift.min(rows, cols)
      #expect(relativeDifference(gram, Tensor.eye(k) * 4) < 1e-12)
    }
    let same = Linear<Float>(3, 2, seed: 99).weight.value
    #expect(same == Linear<Float>(3, 2, seed: 99).weight.value)
  }

  @Test func sequentialNamesParametersAndSingleStepMatchesMultiStep() throws {
    let net = try Sequential<Double> {
      Linear(4, 6, seed: 1)
      try LIF(beta: 0.9, threshold: 0.5, surrogate: TestS2NN())
      Linear(6, 3, bias: false, seed: 2)
      try CUBALIF(alpha: 0.7, beta: 0.9, threshold: 0.3, surrogate: TestS2NN())
      Linear(3, 2, seed: 3)
      try LeakyIntegrator(beta: 0.8, alpha: 0.5)
    }
    #expect(net.parameters.map(\.name) == ["0.weight", "0.bias", "2.weight", "4.weight", "4.bias"])
    var rng = SomaRandom(seed: 8)
    let x = Tensor<Double>.bernoulli([7, 2, 4], p: 0.5, using: &rng)
    let multi = net(Variable(x))
    (multi * multi).sum().backward()
    let gMulti = net.parameters.map { $0.variable.grad! }
    net.zeroGrad()
    var state: [LayerState<Double>] = []
    var outs: [Variable<Double>] = []
    for t in 0..<7 { outs.append(net.step(Variable(x[t]), state: &state)) }
    let single = Variable.stack(outs)
    #expect(relativeDifference(single.value, multi.value) < 1e-12)
    (single * single).sum().backward()
    for (p, g) in zip(net.parameters, gMulti) {
      #expect(relativeDifference(p.variable.grad!, g) < 1e-12, "\(p.name)")
    }
  }

  @Test func nestedSequentialStepsThroughItsChildren() throws {
    let inner = try Sequential<Float> {
      Linear(3, 4, seed: 1)
      try LIF(beta: 0.8, threshold: 0.3, surrogate: S2NN())
    }
    let outer = try Sequential<Float> {
      inner
      Linear(4, 2, seed: 2)
      try LeakyIntegrator(beta: 0.5)
    }
    #expect(outer.parameters.map(\.name) == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"])
    var rng = SomaRandom(seed: 3)
    let x = Tensor<Float>.bernoulli([5, 2, 3], p: 0.6, using: &rng)
    var state: [LayerState<Float>] = []
    var outs: [Variable<Float>] = []
    for t in 0..<5 { outs.append(outer.step(Variable(x[t]), state: &state)) }
    #expect(state[0].children.count == 2)
    #expect(relativeDifference(Variable.stack(outs).value, outer(Variable(x)).value) < 1e-6)
  }

  @Test func builderLoopsAndStreamingWithDetachedState() throws {
    let sizes = [5, 8, 8, 3]
    let net = try Sequential<Double> {
      for i in 0..<(sizes.count - 1) {
        Linear(sizes[i], sizes[i + 1], seed: UInt64(i))
        try LIF(beta: 0.9, threshold: 0.2, surrogate: S2NN())
      }
    }
    #expect(net.layers.count == 6)
    #expect(net.parameters.map(\.name).last == "4.bias")
    // Truncated BPTT: with the state detached between steps, the gradient of the last step's
    // output reaches the first layer only through that step's own input.
    var rng = SomaRandom(seed: 2)
    let x0 = Tensor<Double>.bernoulli([2, 5], p: 0.8, using: &rng)
    let x1 = Tensor<Double>.zeros([2, 5])
    var state: [LayerState<Double>] = []
    _ = net.step(Variable(x0), state: &state)
    state = state.map { $0.detached() }
    net.step(Variable(x1), state: &state).sum().backward()
    // x1 is all zeros, so dL/dW1 = dL/dI1ᵀ · x1 = 0 once the history is cut.
    #expect(net.parameters[0].variable.grad!.abs().max().scalar == 0)
  }

  @Test func loadReplacesParametersByName() {
    let fc = Linear<Float>(3, 2, seed: 1)
    let w = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
    let missing = fc.load(["weight": w])
    #expect(missing == ["bias"])
    #expect(fc.weight.value == w)
  }
}
