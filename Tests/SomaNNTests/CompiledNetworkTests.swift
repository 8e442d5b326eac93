import Testing
import _TestSupport

@testable import SomaNN

/// A triangle surrogate defined here, as a user would: the compiled path must run it too.
struct UserTriangle: SurrogateGradient {
  var width = 0.8
  func derivative<T: TensorScalar>(_ x: T) -> T { Swift.max(0, 1 - Swift.abs(x) / T(width)) }
}

/// A user's own layer without a fused form.
struct Doubler: Layer {
  typealias Scalar = Double
  func callAsFunction(_ input: Variable<Double>) -> Variable<Double> { input * 2 }
}

/// A user's own layer that changes the width: the first half of the features.
struct FirstHalf: Layer {
  typealias Scalar = Double
  func callAsFunction(_ input: Variable<Double>) -> Variable<Double> {
    input.slice(axis: -1, 0..<(input.shape.last! / 2))
  }
}

/// A network description the tests build twice (compiled and plain), with the same seeds.
struct NetCase: Sendable, CustomStringConvertible {
  var name: String
  var loss: SpikingLoss
  var inputWidth: Int
  var build: @Sendable () throws -> Sequential<Double>
  var buildFloat: @Sendable () throws -> Sequential<Float>
  var description: String { name }
}

/// Networks covering each layer kind, reset, readout, loss and surrogate family.
func netCases() -> [NetCase] {
  func both(
    _ name: String, _ loss: SpikingLoss, _ width: Int,
    _ make: @escaping @Sendable (Bool) throws -> (Sequential<Double>?, Sequential<Float>?)
  ) -> NetCase {
    NetCase(
      name: name, loss: loss, inputWidth: width, build: { try make(true).0! },
      buildFloat: { try make(false).1! })
  }
  return [
    both("Linear+bias→LIF(S2NN)×2, spike count", .spikeCountCrossEntropy, 40) { d in
      func net<T: TensorScalar>(_: T.Type) throws -> Sequential<T> {
        try Sequential<T> {
          Linear<T>(40, 24, seed: 1)
          try LIF(beta: 0.9, threshold: 0.5, surrogate: S2NN())
          Linear<T>(24, 5, seed: 2)
          try LIF(beta: 0.8, threshold: 0.5, surrogate: S2NN(alpha: 3, beta: 0.5))
        }
      }
      return d ? (try net(Double.self), nil) : (nil, try net(Float.self))
    },
    both("Linear→IF(zero, detached, Sigmoid)→Linear→Leaky, mean membrane", .meanMembraneCrossEntropy, 30) { d in
      func net<T: TensorScalar>(_: T.Type) throws -> Sequential<T> {
        try Sequential<T> {
          Linear<T>(30, 20, bias: false, seed: 3)
          try IF(threshold: 0.4, reset: .zero, detachReset: true, surrogate: Sigmoid(alpha: 3))
          Linear<T>(20, 4, seed: 4)
          try LeakyIntegrator(beta: 0.85)
        }
      }
      return d ? (try net(Double.self), nil) : (nil, try net(Float.self))
    },
    both("SpyTorch: CUBALIF(InvSquareGrad)→LeakyIntegrator α, max membrane", .maxMembraneNLL, 36) { d in
      func net<T: TensorScalar>(_: T.Type) throws -> Sequential<T> {
        try Sequential<T> {
          Linear<T>(36, 16, bias: false, initialization: .normal(std: 0.5), seed: 5)
          try CUBALIF(alpha: 0.8, beta: 0.9, threshold: 1, surrogate: InvSquareGrad(alpha: 10))
          Linear<T>(16, 6, bias: false, initialization: .normal(std: 0.5), seed: 6)
          try LeakyIntegrator(beta: 0.9, alpha: 0.8)
        }
      }
      return d ? (try net(Double.self), nil) : (nil, try net(Float.self))
    },
    both("nested Sequential, CUBALIF subtract(Arctan), LIF detached(user surrogate), MSE count", .mseCount(), 32) { d in
      func net<T: TensorScalar>(_: T.Type) throws -> Sequential<T> {
        let inner = try Sequential<T> {
          Linear<T>(32, 18, seed: 7)
          try CUBALIF(alpha: 0.7, beta: 0.85, threshold: 0.3, reset: .subtract, surrogate: Arctan(alpha: 2))
        }
        return try Sequential<T> {
          inner
          Linear<T>(18, 5, seed: 8)
          try LIF(beta: 0.9, threshold: 0.3, detachReset: true, surrogate: UserTriangle())
        }
      }
      return d ? (try net(Double.self), nil) : (nil, try net(Float.self))
    },
    both("Linear→RecurrentLIF(S2NN)→Linear→LIF(subtract), spike count", .spikeCountCrossEntropy, 26) { d in
      func net<T: TensorScalar>(_: T.Type) throws -> Sequential<T> {
        try Sequential<T> {
          Linear<T>(26, 12, seed: 12)
          try RecurrentLIF<S2NN, T>(size: 12, beta: 0.85, threshold: 0.4, surrogate: S2NN(), seed: 13)
          Linear<T>(12, 4, seed: 14)
          try LIF(beta: 0.9, threshold: 0.4, surrogate: SoftSign())
        }
      }
      return d ? (try net(Double.self), nil) : (nil, try net(Float.self))
    },
    both("Linear→LIF(zero)→Linear readout without a neuron, deep, mean membrane", .meanMembraneCrossEntropy, 24) { d in
      func net<T: TensorScalar>(_: T.Type) throws -> Sequential<T> {
        try Sequential<T> {
          Linear<T>(24, 20, seed: 9)
          try LIF(beta: 0.7, threshold: 0.4, reset: .zero, surrogate: PiecewiseQuadratic())
          Linear<T>(20, 20, seed: 10)
          try LIF(beta: 0.9, threshold: 0.4, surrogate: GaussianGrad())
          Linear<T>(20, 3, seed: 11)
        }
      }
      return d ? (try net(Double.self), nil) : (nil, try net(Float.self))
    },
  ]
}

/// Gradients by the plain spelling: `loss(net(x))`, `backward()`.
func tapeGradients<T: TensorScalar>(
  _ net: Sequential<T>, _ loss: SpikingLoss, _ x: Tensor<T>, _ labels: [Int]
) -> (T, [Tensor<T>]) {
  net.zeroGrad()
  let l = loss(net(Variable(x)), labels: labels)
  l.backward()
  return (l.value.scalar, net.parameterVariables.map { $0.grad! })
}

func sampleInput<T: TensorScalar>(
  _: T.Type, steps: Int, batch: Int, width: Int, spikes: Bool, seed: UInt64
) -> (Tensor<T>, [Int]) {
  var g = SomaRandom(seed: seed)
  let x: Tensor<T> =
    spikes
    ? Tensor.bernoulli([steps, batch, width], p: 0.25, using: &g)
    : Tensor.uniform([steps, batch, width], low: 0, high: 1, using: &g)
  let labels = (0..<batch).map { _ in Int(g.next() % 3) }
  return (x, labels)
}

@Suite struct CompiledNetworkTests {
  @Test(arguments: netCases(), [true, false])
  func doubleGradientsMatchTheTape(_ c: NetCase, spikes: Bool) throws {
    let (fast, plain) = (try c.build(), try c.build())
    let model = try fast.compiled(loss: c.loss)
    #expect(model.isFused, "plan: \(model.plan)")
    let (x, y) = sampleInput(Double.self, steps: 6, batch: 9, width: c.inputWidth, spikes: spikes, seed: 3)
    let (tapeLoss, tapeGrads) = tapeGradients(plain, c.loss, x, y)
    let step = model.lossAndGradients(input: x, labels: y)
    #expect(isClose(step.loss, tapeLoss, atol: 1e-12, rtol: 1e-10), "loss \(step.loss) vs \(tapeLoss)")
    for (p, g) in zip(fast.parameters, tapeGrads) {
      expectClose(p.variable.grad!, g, atol: 1e-11, rtol: 1e-9, "\(c.name): \(p.name)")
    }
    // Some gradient must flow, or the comparison proves nothing.
    let norm = tapeGrads.map { $0.abs().sum().scalar }.reduce(0, +)
    #expect(norm > 1e-6, "\(c.name): the tape's gradients are all zero")
  }

  @Test(arguments: netCases())
  func floatGradientsMatchTheTapeOnEveryEventPath(_ c: NetCase) throws {
    let (x, y) = sampleInput(Float.self, steps: 5, batch: 20, width: c.inputWidth, spikes: true, seed: 4)
    let plain = try c.buildFloat()
    let (tapeLoss, tapeGrads) = tapeGradients(plain, c.loss, x, y)
    for (policy, maskDensity) in [
      (EventPolicy.never, 1.0), (.always, 1.0), (.always, 0.0), (.automatic, 0.05),
    ] {
      let fast = try c.buildFloat()
      let model = try fast.compiled(loss: c.loss)
      model.eventPolicy = policy
      model.maskScatterDensity = maskDensity
      for threads in [1, 2] {
        model.threads = threads
        fast.zeroGrad()
        let step = model.lossAndGradients(input: x, labels: y)
        #expect(
          isClose(step.loss, tapeLoss, atol: 1e-5, rtol: 1e-4),
          "\(c.name) \(policy): loss \(step.loss) vs \(tapeLoss)")
        for (p, g) in zip(fast.parameters, tapeGrads) {
          expectClose(p.variable.grad!, g, atol: 2e-5, rtol: 2e-3, "\(c.name) \(policy): \(p.name)")
        }
      }
    }
  }

  /// Two Adam steps through the fused update equal two tape steps with `Adam.step()`.
  @Test(arguments: netCases())
  func fusedAdamStepsMatchTheTape(_ c: NetCase) throws {
    let (fast, plain) = (try c.build(), try c.build())
    let model = try fast.compiled(loss: c.loss)
    var adamFast = Adam(parameters: fast.parameterVariables, learningRate: 1e-2)
    var adamPlain = Adam(parameters: plain.parameterVariables, learningRate: 1e-2)
    for k in 0..<3 {
      let (x, y) = sampleInput(Double.self, steps: 4, batch: 7, width: c.inputWidth, spikes: k != 1, seed: 10 + UInt64(k))
      let step = model.trainStep(input: x, labels: y, optimizer: &adamFast)
      let (tapeLoss, _) = tapeGradients(plain, c.loss, x, y)
      adamPlain.step()
      #expect(isClose(step.loss, tapeLoss, atol: 1e-10, rtol: 1e-8), "step \(k): \(step.loss) vs \(tapeLoss)")
    }
    // Reading a trained weight brings it up to date.
    for (p, q) in zip(fast.parameters, plain.parameters) {
      expectClose(p.variable.value, q.variable.value, atol: 1e-9, rtol: 1e-7, "\(c.name): \(p.name)")
    }
    #expect(adamFast.stepCount == 3)
  }

  @Test func aWeightSetOutsideIsImportedBeforeTheNextStep() throws {
    let net = try netCases()[0].build()
    let model = try net.compiled(loss: .spikeCountCrossEntropy)
    var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-2)
    let (x, y) = sampleInput(Double.self, steps: 4, batch: 6, width: 40, spikes: true, seed: 1)
    _ = model.trainStep(input: x, labels: y, optimizer: &adam)
    // Overwrite the first weight with zeros: the first layer then passes no current.
    let w = net.parameters[0].variable
    w.value = Tensor.zeros(w.shape)
    let step = model.evaluate(input: x, labels: y)
    #expect(step.spikeCounts[0] == 0)
    #expect(step.spikeCounts[1] == 0)
  }

  @Test func aLayerWithoutAFusedKernelTrainsOnTheTape() throws {
    func make() -> Sequential<Double> {
      Sequential<Double> {
        Linear<Double>(10, 6, seed: 1)
        Doubler()
        try! LIF(beta: 0.9, threshold: 0.5, surrogate: S2NN())
      }
    }
    let net = make()
    let model = try net.compiled(loss: .spikeCountCrossEntropy)
    #expect(!model.isFused)
    #expect(model.plan.contains { $0.contains("Doubler") })
    let (x, y) = sampleInput(Double.self, steps: 3, batch: 4, width: 10, spikes: true, seed: 2)
    let (tapeLoss, tapeGrads) = tapeGradients(make(), .spikeCountCrossEntropy, x, y)
    let step = model.lossAndGradients(input: x, labels: y)
    #expect(isClose(step.loss, tapeLoss, atol: 1e-12, rtol: 1e-10))
    for (p, g) in zip(net.parameters, tapeGrads) {
      expectClose(p.variable.grad!, g, atol: 1e-12, rtol: 1e-10, "\(p.name)")
    }
  }

  /// A Linear after a layer of unknown output width is not checked against the width before
  /// that layer (12 → FirstHalf → 6).
  @Test func aLinearAfterATapeLayerThatChangesTheWidthCompiles() throws {
    func make() -> Sequential<Double> {
      Sequential<Double> {
        Linear<Double>(10, 12, seed: 1)
        FirstHalf()
        Linear<Double>(6, 4, seed: 2)
        try! LIF(beta: 0.9, threshold: 0.5, surrogate: S2NN())
      }
    }
    let net = make()
    let model = try net.compiled(loss: .spikeCountCrossEntropy)
    #expect(!model.isFused)
    let (x, y) = sampleInput(Double.self, steps: 3, batch: 4, width: 10, spikes: true, seed: 3)
    let (tapeLoss, _) = tapeGradients(make(), .spikeCountCrossEntropy, x, y)
    let step = model.lossAndGradients(input: x, labels: y)
    #expect(isClose(step.loss, tapeLoss, atol: 1e-12, rtol: 1e-10))
  }

  @Test func widthsThatDoNotChainAreRejected() throws {
    let net = Sequential<Float> {
      Linear<Float>(8, 6, seed: 1)
      Linear<Float>(5, 2, seed: 2)
    }
    #expect(throws: SomaNNError.self) { try net.compiled(loss: .meanMembraneCrossEntropy) }
  }

  @Test func logitsAndEvaluateAgreeWithTheLoss() throws {
    let c = netCases()[2]
    let net = try c.build()
    let model = try net.compiled(loss: c.loss)
    let (x, y) = sampleInput(Double.self, steps: 5, batch: 8, width: c.inputWidth, spikes: true, seed: 9)
    let expected = noGrad { c.loss.logits(net(Variable(x)).value) }
    expectClose(model.logits(x), expected, atol: 1e-12, rtol: 1e-10)
    let step = model.evaluate(input: x, labels: y)
    #expect(step.correct == model.countCorrect(expected, y))
  }
}

/// SpyTorch's block on event input runs the CUBA event plan; it must agree with the tape.
@Suite struct CompiledCUBABlockTests {
  func spyTorch<S: SurrogateGradient>(_ s: S, hidden: Int = 24) throws -> Sequential<Float> {
    let (a, b) = (Double.exp(-1.0 / 5), Double.exp(-1.0 / 10))
    return try Sequential<Float> {
      Linear<Float>(50, hidden, bias: false, initialization: .normal(std: 0.6), seed: 21)
      try CUBALIF(alpha: a, beta: b, threshold: 1, reset: .zero, surrogate: s)
      Linear<Float>(hidden, 10, bias: false, initialization: .normal(std: 0.6), seed: 22)
      try LeakyIntegrator(beta: b, alpha: a)
    }
  }

  func events(steps: Int, batch: Int, seed: UInt64) -> (SpikeEvents, Tensor<Float>, [Int]) {
    var g = SomaRandom(seed: seed)
    let x = Tensor<Float>.bernoulli([steps, batch, 50], p: 0.08, using: &g)
    let labels = (0..<batch).map { _ in Int(g.next() % 10) }
    return (SpikeEvents(dense: x.reshaped([steps * batch, 50])), x, labels)
  }

  @Test(arguments: [0, 1, 2])
  func eventPlanMatchesTheTape(_ surrogateKind: Int) throws {
    func check<S: SurrogateGradient>(_ s: S) throws {
      let (fast, plain) = (try spyTorch(s), try spyTorch(s))
      let model = try fast.compiled(loss: .maxMembraneNLL)
      #expect(model.cubaBlock != nil, "plan: \(model.plan)")
      let (ev, x, y) = events(steps: 30, batch: 12, seed: 5)
      let (tapeLoss, tapeGrads) = tapeGradients(plain, .maxMembraneNLL, x, y)
      for threads in [1, 2] {
        fast.zeroGrad()
        model.threads = threads
        let step = model.lossAndGradients(events: ev, steps: 30, labels: y)
        #expect(isClose(step.loss, tapeLoss, atol: 1e-5, rtol: 1e-4), "\(step.loss) vs \(tapeLoss)")
        for (p, g) in zip(fast.parameters, tapeGrads) {
          expectClose(p.variable.grad!, g, atol: 1e-5, rtol: 2e-3, "\(S.self) \(p.name)")
        }
      }
      let norm = tapeGrads.map { $0.abs().sum().scalar }.reduce(0, +)
      #expect(norm > 1e-6)
    }
    switch surrogateKind {
    case 0: try check(S2NN())
    case 1: try check(InvSquareGrad(alpha: 100))
    default: try check(UserTriangle(width: 1.5))
    }
  }

  /// Adam (plain, AdamW, L2) through the event plan equals it through the dense fused plan.
  @Test(arguments: [0, 1, 2])
  func eventPlanTrainsLikeTheDensePlan(_ kind: Int) throws {
    let (a, b) = (try spyTorch(S2NN()), try spyTorch(S2NN()))
    let (ma, mb) = (try a.compiled(loss: .maxMembraneNLL), try b.compiled(loss: .maxMembraneNLL))
    func optimizer(_ p: [Variable<Float>]) -> Adam<Float> {
      switch kind {
      case 1: return AdamW(parameters: p, learningRate: 5e-3, weightDecay: 0.5)
      case 2: return Adam(parameters: p, learningRate: 5e-3, weightDecay: 0.05)
      default: return Adam(parameters: p, learningRate: 5e-3)
      }
    }
    var (oa, ob) = (optimizer(a.parameterVariables), optimizer(b.parameterVariables))
    for k in 0..<3 {
      let (ev, x, y) = events(steps: 20, batch: 8, seed: 30 + UInt64(k))
      let sa = ma.trainStep(events: ev, steps: 20, labels: y, optimizer: &oa)
      let sb = mb.trainStep(input: x, labels: y, optimizer: &ob)
      #expect(isClose(sa.loss, sb.loss, atol: 1e-5, rtol: 1e-4), "step \(k): \(sa.loss) vs \(sb.loss)")
      #expect(sa.correct == sb.correct)
    }
    for (p, q) in zip(a.parameters, b.parameters) {
      expectClose(p.variable.value, q.variable.value, atol: 1e-5, rtol: 1e-3, "\(p.name)")
    }
    let (ev, x, _) = events(steps: 20, batch: 8, seed: 99)
    expectClose(ma.logits(events: ev, steps: 20), mb.logits(x), atol: 1e-5, rtol: 1e-4)
  }

  @Test func otherParametersDoNotFormTheBlock() throws {
    let net = try Sequential<Float> {
      Linear<Float>(50, 8, bias: false, seed: 1)
      try CUBALIF(alpha: 0.8, beta: 0.9, surrogate: S2NN())
      Linear<Float>(8, 10, bias: false, seed: 2)
      try LeakyIntegrator(beta: 0.9, alpha: 0.7)  // α differs from the hidden layer's
    }
    #expect(try net.compiled(loss: .maxMembraneNLL).cubaBlock == nil)
    #expect(try net.compiled(loss: .meanMembraneCrossEntropy).cubaBlock == nil)
  }
}
