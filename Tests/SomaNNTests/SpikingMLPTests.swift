import SomaKernels
import Testing

@testable import SomaNN

/// The fused `SpikingMLP`: its event-driven path (AVX-512 gathers over spike lists and column
/// bits) against its dense GEMM path, and its reused workspace against fresh runs.
struct SpikingMLPTests {
  struct Config: CustomTestStringConvertible, Sendable {
    var sizes: [Int]
    var steps: Int
    var batch: Int
    var testDescription: String { "\(sizes) T=\(steps) B=\(batch)" }
  }

  static let configs = [
    // Widths and row counts off the 16/128 vector blocks, so every tail path runs.
    Config(sizes: [100, 70, 45, 13], steps: 5, batch: 9),
    Config(sizes: [784, 256, 10], steps: 3, batch: 20),
    Config(sizes: [37, 300, 7], steps: 1, batch: 33),
    // Batches of 32 and 64: each of two threads owns whole 16-sample words of the batch.
    Config(sizes: [100, 70, 45, 13], steps: 3, batch: 32),
    Config(sizes: [784, 256, 10], steps: 2, batch: 64),
  ]

  static func network(_ c: Config, policy: EventPolicy) throws -> SpikingMLP<Float, S2NN> {
    let net = try SpikingMLP<Float, S2NN>(sizes: c.sizes, surrogate: S2NN(), seed: 3)
    // Stronger than the default init so every layer spikes.
    net.weights = net.weights.map { $0 * 4 }
    net.eventPolicy = policy
    return net
  }

  static func input(_ c: Config, seed: UInt64) -> (Tensor<Float>, [Int]) {
    var g = SomaRandom(seed: seed)
    let x = Tensor<Float>.bernoulli([c.steps, c.batch, c.sizes[0]], p: 0.3, using: &g)
    let labels = (0..<c.batch).map { _ in Int(g.next() % UInt64(c.sizes.last!)) }
    return (x, labels)
  }

  static func maxDifference(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Float {
    zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
  }

  @Test(arguments: configs)
  func eventAndDensePathsAgree(_ c: Config) throws {
    let (x, labels) = Self.input(c, seed: 11)
    let events = try Self.network(c, policy: .always).lossAndGradients(input: x, labels: labels)
    let dense = try Self.network(c, policy: .never).lossAndGradients(input: x, labels: labels)
    #expect(events.spikeCounts == dense.spikeCounts)
    #expect(events.spikeCounts.allSatisfy { $0 > 0 }, "every layer should spike: \(events.spikeCounts)")
    #expect(Swift.abs(events.loss - dense.loss) <= 1e-5 * Swift.max(1, Swift.abs(dense.loss)))
    #expect(events.logits == dense.logits)
    #expect(events.correct == dense.correct)
    for l in 0..<(c.sizes.count - 1) {
      let scaleW = dense.gradWeights[l].abs().max().scalar
      let scaleB = dense.gradBiases[l].abs().max().scalar
      #expect(scaleW > 0, "layer \(l) weight gradient is all zero")
      #expect(events.gradWeights[l].shape == [c.sizes[l], c.sizes[l + 1]])
      #expect(Self.maxDifference(events.gradWeights[l], dense.gradWeights[l]) <= 1e-5 * scaleW)
      #expect(Self.maxDifference(events.gradBiases[l], dense.gradBiases[l]) <= 1e-5 * scaleB)
    }
  }

  /// The two event readers: bit masks scattered into an L1 tile, and row lists gathered into
  /// registers. Both add each row's events in ascending order after the bias, so where every
  /// column block is a full 128 wide they agree bit for bit, through a fused Adam step too;
  /// a narrower last block sums in a different order (rounding only).
  @Test(arguments: [
    (Config(sizes: [200, 512, 384, 10], steps: 3, batch: 24), true),
    (Config(sizes: [784, 256, 10], steps: 2, batch: 64), true),
    (Config(sizes: [37, 300, 7], steps: 1, batch: 33), false),
  ])
  func maskScatterMatchesListGather(_ c: Config, exact: Bool) throws {
    func network(masks: Bool) throws -> SpikingMLP<Float, S2NN> {
      let net = try Self.network(c, policy: .always)
      net.maskScatterDensity = masks ? 0 : 2
      return net
    }
    let (x, labels) = Self.input(c, seed: 17)
    let scatterNet = try network(masks: true)
    let a = scatterNet.lossAndGradients(input: x, labels: labels)
    let b = try network(masks: false).lossAndGradients(input: x, labels: labels)
    let masked = scatterNet.workspace!.usesMasks
    #expect(masked == (0..<(c.sizes.count - 1)).map { c.sizes[$0 + 1] >= 128 })
    #expect(a.spikeCounts == b.spikeCounts)
    #expect(a.logits == b.logits)
    for l in 0..<(c.sizes.count - 1) {
      let scale = b.gradWeights[l].abs().max().scalar
      #expect(scale > 0)
      if exact {
        #expect(a.gradWeights[l] == b.gradWeights[l], "layer \(l)")
      } else {
        #expect(Self.maxDifference(a.gradWeights[l], b.gradWeights[l]) <= 1e-5 * scale)
      }
    }
    // The first layer's Adam step fuses into its weight-gradient pass on both paths.
    let (p, q) = (try network(masks: true), try network(masks: false))
    var (adamP, adamQ) = (try FusedAdam<Float>(learningRate: 1e-2), try FusedAdam<Float>(learningRate: 1e-2))
    for step in 1...2 {
      let (xs, ys) = Self.input(c, seed: UInt64(60 + step))
      let sp = p.trainStep(input: xs, labels: ys, optimizer: &adamP)
      let sq = q.trainStep(input: xs, labels: ys, optimizer: &adamQ)
      #expect(sp.spikeCounts == sq.spikeCounts)
      for l in 0..<(c.sizes.count - 1) {
        if exact {
          #expect(p.weights[l] == q.weights[l], "step \(step) layer \(l)")
        } else {
          #expect(Self.maxDifference(p.weights[l], q.weights[l]) <= 1e-5, "step \(step) layer \(l)")
        }
      }
    }
  }

  @Test func doubleEventPathMatchesDoubleDensePath() throws {
    // Double has no C kernels: this checks the portable Swift event loops.
    let c = Self.configs[0]
    func run(_ policy: EventPolicy) throws -> SpikingMLP<Double, S2NN>.Step {
      let net = try SpikingMLP<Double, S2NN>(sizes: c.sizes, surrogate: S2NN(), seed: 3)
      net.weights = net.weights.map { $0 * 4 }
      net.eventPolicy = policy
      let (x, labels) = Self.input(c, seed: 11)
      return net.lossAndGradients(
        input: Tensor<Double>(x.scalars.map { Double($0) }, shape: x.shape), labels: labels)
    }
    let events = try run(.always)
    let dense = try run(.never)
    #expect(events.spikeCounts == dense.spikeCounts)
    #expect(events.spikeCounts.allSatisfy { $0 > 0 })
    #expect(Swift.abs(events.loss - dense.loss) <= 1e-12 * Swift.abs(dense.loss))
    for l in 0..<(c.sizes.count - 1) {
      let scale = dense.gradWeights[l].abs().max().scalar
      let worst = zip(events.gradWeights[l].scalars, dense.gradWeights[l].scalars)
        .map { Swift.abs($0 - $1) }.max() ?? 0
      #expect(scale > 0 && worst <= 1e-12 * scale)
    }
  }

  /// Two threads split the samples (or rows) between them and sum partial weight gradients;
  /// one thread does everything: the results must agree.
  @Test(arguments: configs, [EventPolicy.always, .never])
  func twoThreadsMatchOne(_ c: Config, policy: EventPolicy) throws {
    let (x, labels) = Self.input(c, seed: 21)
    let one = try Self.network(c, policy: policy)
    one.threads = 1
    let two = try Self.network(c, policy: policy)
    two.threads = 2
    let a = one.lossAndGradients(input: x, labels: labels)
    let b = two.lossAndGradients(input: x, labels: labels)
    #expect(a.spikeCounts == b.spikeCounts)
    #expect(a.logits == b.logits)
    #expect(Swift.abs(a.loss - b.loss) <= 1e-6 * Swift.max(1, Swift.abs(a.loss)))
    for l in 0..<(c.sizes.count - 1) {
      let scaleW = a.gradWeights[l].abs().max().scalar
      #expect(scaleW > 0)
      #expect(Self.maxDifference(a.gradWeights[l], b.gradWeights[l]) <= 1e-5 * scaleW)
      let scaleB = a.gradBiases[l].abs().max().scalar
      #expect(Self.maxDifference(a.gradBiases[l], b.gradBiases[l]) <= 1e-5 * Swift.max(scaleB, 1e-12))
    }
  }

  @Test func nonBinaryInputTakesTheDensePath() throws {
    let c = Self.configs[0]
    var (x, labels) = Self.input(c, seed: 5)
    x = x * 0.5  // values 0 and 0.5: events would lose the 0.5
    let auto = try Self.network(c, policy: .automatic).lossAndGradients(input: x, labels: labels)
    let dense = try Self.network(c, policy: .never).lossAndGradients(input: x, labels: labels)
    // (Hidden layers still take events, so allow Float rounding; events on the input would
    // have doubled its currents.)
    #expect(Swift.abs(auto.loss - dense.loss) <= 1e-6 * Swift.abs(dense.loss))
    #expect(auto.logits == dense.logits)
    let scale = dense.gradWeights[0].abs().max().scalar
    #expect(Self.maxDifference(auto.gradWeights[0], dense.gradWeights[0]) <= 1e-5 * scale)
  }

  @Test func reusedWorkspaceNeverChangesAnEarlierStep() throws {
    let c = Self.configs[0]
    let net = try Self.network(c, policy: .always)
    let (x1, y1) = Self.input(c, seed: 1)
    let (x2, y2) = Self.input(c, seed: 2)
    let first = net.lossAndGradients(input: x1, labels: y1)
    let firstW0 = first.gradWeights[0].scalars
    let firstLogits = first.logits.scalars
    // The second step reuses the workspace while `first` is still held: `first` must not move.
    let second = net.lossAndGradients(input: x2, labels: y2)
    #expect(first.gradWeights[0].scalars == firstW0)
    #expect(first.logits.scalars == firstLogits)
    #expect(second.gradWeights[0].scalars != firstW0)
    // A different batch size rebuilds the workspace; coming back gives the first result again.
    let small = Config(sizes: c.sizes, steps: c.steps, batch: 4)
    let (x3, y3) = Self.input(small, seed: 3)
    _ = net.lossAndGradients(input: x3, labels: y3)
    let again = net.lossAndGradients(input: x1, labels: y1)
    #expect(again.gradWeights[0].scalars == firstW0)
    #expect(again.loss == first.loss)
    let fresh = try Self.network(c, policy: .always).lossAndGradients(input: x1, labels: y1)
    #expect(fresh.gradWeights[1] == first.gradWeights[1])
  }

  @Test func withParametersUpdatesInPlaceAndTrains() throws {
    let c = Config(sizes: [40, 32, 4], steps: 4, batch: 16)
    let net = try Self.network(c, policy: .automatic)
    let (x, labels) = Self.input(c, seed: 8)
    let before = net.lossAndGradients(input: x, labels: labels).loss
    for _ in 0..<30 {
      let step = net.lossAndGradients(input: x, labels: labels)
      net.withParameters { params in
        for (i, g) in (step.gradWeights + step.gradBiases).enumerated() {
          params[i] = params[i] - g * 0.5
        }
      }
    }
    #expect(net.weights.count == 2 && net.biases.count == 2)
    #expect(net.weights[0].shape == [40, 32])
    let after = net.lossAndGradients(input: x, labels: labels).loss
    #expect(after < before * 0.8, "loss \(before) → \(after)")
  }

  /// Adam on `params` from `grads` in Double, as PyTorch's: the composed reference for
  /// `trainStep`'s fused update.
  struct ReferenceAdam {
    var m: [[Double]] = []
    var v: [[Double]] = []
    var t = 0
    let lr: Double

    mutating func step<T: TensorScalar>(_ params: inout [Tensor<T>], grads: [Tensor<T>]) {
      if m.isEmpty {
        m = params.map { Array(repeating: 0, count: $0.count) }
        v = m
      }
      t += 1
      let c1 = 1 - Double.pow(0.9, Double(t))
      let c2 = 1 - Double.pow(0.999, Double(t))
      for k in params.indices {
        var w = params[k].scalars.map { Double($0) }
        for (i, gi) in grads[k].scalars.enumerated() {
          let g = Double(gi)
          m[k][i] = 0.9 * m[k][i] + 0.1 * g
          v[k][i] = 0.999 * v[k][i] + 0.001 * g * g
          w[i] -= lr / c1 * m[k][i] / ((v[k][i] / c2).squareRoot() + 1e-8)
        }
        params[k] = Tensor(w.map { T($0) }, shape: params[k].shape)
      }
    }
  }

  /// trainStep (Adam fused into the first layer's event gather, separate elsewhere) against
  /// lossAndGradients followed by a reference Adam, step by step over three steps. Each step
  /// starts the composed side from the fused side's parameters and moments: Adam divides by
  /// √v, so a gradient near 0 turns a rounding-level difference into one of order lr, and
  /// comparing whole runs would measure that, not the fused update.
  @Test(arguments: configs, [EventPolicy.always, .never])
  func trainStepEqualsGradientsThenAdam(_ c: Config, policy: EventPolicy) throws {
    let fused = try Self.network(c, policy: policy)
    let composed = try Self.network(c, policy: policy)
    let initial = fused.weights[0]
    var adam = try FusedAdam<Float>(learningRate: 1e-2)
    var reference = ReferenceAdam(lr: 1e-2)
    for step in 1...3 {
      composed.weights = fused.weights
      composed.biases = fused.biases
      if step > 1 {
        reference.m = adam.moments.m.map { $0.scalars.map { Double($0) } }
        reference.v = adam.moments.v.map { $0.scalars.map { Double($0) } }
      }
      let (x, labels) = Self.input(c, seed: UInt64(40 + step))
      let a = fused.trainStep(input: x, labels: labels, optimizer: &adam)
      let b = composed.lossAndGradients(input: x, labels: labels)
      composed.withParameters { reference.step(&$0, grads: b.gradWeights + b.gradBiases) }
      #expect(a.gradWeights.isEmpty && a.gradBiases.isEmpty)
      #expect(a.loss == b.loss, "step \(step)")
      #expect(a.spikeCounts == b.spikeCounts)
      // Float against Double Adam arithmetic: a few ulps of the weights (|w| < 1).
      for l in 0..<(c.sizes.count - 1) {
        #expect(Self.maxDifference(fused.weights[l], composed.weights[l]) <= 3e-7, "step \(step) weight \(l)")
        #expect(Self.maxDifference(fused.biases[l], composed.biases[l]) <= 3e-7, "step \(step) bias \(l)")
      }
    }
    #expect(adam.stepCount == 3)
    #expect(Self.maxDifference(fused.weights[0], initial) > 2e-2, "the first layer should train")
  }

  @Test func doubleTrainStepEqualsGradientsThenAdam() throws {
    let c = Self.configs[0]
    func network() throws -> SpikingMLP<Double, S2NN> {
      let net = try SpikingMLP<Double, S2NN>(sizes: c.sizes, surrogate: S2NN(), seed: 3)
      net.weights = net.weights.map { $0 * 4 }
      return net
    }
    let (fused, composed) = (try network(), try network())
    var adam = try FusedAdam<Double>(learningRate: 1e-2)
    var reference = ReferenceAdam(lr: 1e-2)
    for step in 1...3 {
      composed.weights = fused.weights
      composed.biases = fused.biases
      if step > 1 { (reference.m, reference.v) = (adam.moments.m.map(\.scalars), adam.moments.v.map(\.scalars)) }
      let (x32, labels) = Self.input(c, seed: UInt64(step))
      let x = Tensor<Double>(x32.scalars.map { Double($0) }, shape: x32.shape)
      _ = fused.trainStep(input: x, labels: labels, optimizer: &adam)
      let b = composed.lossAndGradients(input: x, labels: labels)
      composed.withParameters { reference.step(&$0, grads: b.gradWeights + b.gradBiases) }
      for l in 0..<(c.sizes.count - 1) {
        let worst = zip(fused.weights[l].scalars, composed.weights[l].scalars)
          .map { Swift.abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-15, "step \(step) weight \(l)")
      }
    }
  }

  @Test func trainStepKeepsValueSemanticsAndRejectsBadHyperparameters() throws {
    let c = Self.configs[1]
    let net = try Self.network(c, policy: .automatic)
    let held = net.weights[0]  // a copy the caller keeps: the update must not write into it
    let heldScalars = held.scalars
    var adam = try FusedAdam<Float>()
    let (x, labels) = Self.input(c, seed: 9)
    _ = net.trainStep(input: x, labels: labels, optimizer: &adam)
    #expect(held.scalars == heldScalars)
    #expect(net.weights[0] != held)
    #expect(throws: SomaNNError.self) { try FusedAdam<Float>(learningRate: 0) }
    #expect(throws: SomaNNError.self) { try FusedAdam<Float>(learningRate: .nan) }
    #expect(
      throws: SomaNNError.invalidHyperparameter(layer: "Adam", name: "beta1", value: 1, allowed: "in [0, 1)")
    ) { try FusedAdam<Float>(beta1: 1) }
    #expect(
      throws: SomaNNError.invalidSizes(model: "SpikingMLP", sizes: [784], allowed: "at least two positive widths")
    ) { try SpikingMLP<Float, S2NN>(sizes: [784], surrogate: S2NN()) }
    #expect(throws: SomaNNError.self) {
      try SpikingMLP<Float, S2NN>(sizes: [784, 10, 10], lif: [try LIFParameters()], surrogate: S2NN())
    }
    #expect(throws: SomaNNError.self) { try FusedAdam<Float>(epsilon: -1) }
  }

  /// The thin dI · Wᵀ kernel (layers of ≤ 32 outputs) against a BLAS matmul.
  @Test(arguments: [(1, 37, 300), (10, 33, 512), (13, 45, 45), (32, 7, 100)])
  func narrowProductMatchesMatmul(_ k: Int, _ rows: Int, _ n: Int) {
    var g = SomaRandom(seed: UInt64(k * 1000 + n))
    let a = Tensor<Float>.uniform([rows, k], low: -1, high: 1, using: &g)
    let w = Tensor<Float>.uniform([n, k], low: -1, high: 1, using: &g)  // [in, out]
    let expected = a.matmul(w.transposed())
    let wt = w.transposed().contiguous().scalars
    var out = [Float](repeating: .nan, count: rows * n)
    a.scalars.withUnsafeBufferPointer { ap in
      soma_narrow_product_f32(ap.baseAddress!, 0, rows, k, wt, n, &out)
    }
    let worst = zip(out, expected.scalars).map { Swift.abs($0 - $1) }.max() ?? .nan
    #expect(worst <= 1e-5 * Float(k), "worst \(worst)")
  }
}
