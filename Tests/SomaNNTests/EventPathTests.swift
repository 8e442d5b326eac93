import SomaKernels
import Testing

@testable import SomaNN

/// The event-driven Linear passes of a compiled Linear→LIF stack: they must give the dense
/// path's results, on one thread or two, and fuse Adam without changing the update.
@Suite struct EventPathTests {
  struct Config: Sendable, CustomStringConvertible {
    var sizes: [Int]
    var steps: Int
    var batch: Int
    var description: String { "\(sizes) T\(steps) B\(batch)" }
  }

  static let configs = [
    Config(sizes: [64, 48, 10], steps: 4, batch: 24),
    Config(sizes: [300, 160, 130, 10], steps: 3, batch: 40),
    // 640 rows and 600 inputs: the AVX2 scatter reads packed slabs in both directions (it
    // reads the source in place for fewer than 192 output rows, as in the 120-row forward
    // above).
    Config(sizes: [600, 200, 10], steps: 4, batch: 160),
  ]

  static func network(_ c: Config) throws -> Sequential<Float> {
    var g = SomaRandom(seed: 5)
    return try Sequential<Float> {
      for l in 0..<(c.sizes.count - 1) {
        Linear<Float>(c.sizes[l], c.sizes[l + 1], using: &g)
        try LIF(beta: 0.9, threshold: 0.25, surrogate: S2NN())
      }
    }
  }

  static func input(_ c: Config, seed: UInt64, p: Float = 0.15) -> (Tensor<Float>, [Int]) {
    var g = SomaRandom(seed: seed)
    let x = Tensor<Float>.bernoulli([c.steps, c.batch, c.sizes[0]], p: p, using: &g)
    return (x, (0..<c.batch).map { _ in Int(g.next() % 10) })
  }

  static func maxDifference(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Float {
    zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
  }

  /// The output-row-first mask pass (gather tiles) adds each row's events in the scatter's
  /// order, so the two agree bit for bit: forward, weight gradients, and through fused Adam
  /// steps. 300 rows and 312 / 200 inputs make both directions read packed slabs; 200 and
  /// 136 outputs leave a narrower last slab; the inputs' widths are not multiples of 64.
  @Test func gatherTilesMatchScatterExactly() throws {
    guard soma_sparse_gather_tiles_available() != 0 else { return }
    let c = Config(sizes: [312, 200, 136, 10], steps: 3, batch: 100)
    func model(tiles: Bool) throws -> (Sequential<Float>, CompiledNetwork<Float>) {
      let net = try Self.network(c)
      let m = try net.compiled(loss: .spikeCountCrossEntropy)
      m.eventPolicy = .always
      m.maskScatterDensity = 0
      m.gatherTiles = tiles
      return (net, m)
    }
    let (x, y) = Self.input(c, seed: 23, p: 0.3)
    let ((na, a), (nb, b)) = (try model(tiles: true), try model(tiles: false))
    let sa = a.lossAndGradients(input: x, labels: y)
    let sb = b.lossAndGradients(input: x, labels: y)
    #expect(a.workspace!.usesMasks[0] && a.workspace!.usesMasks[1])
    #expect(sa.spikeCounts == sb.spikeCounts)
    #expect(sa.logits == sb.logits)
    for (p, q) in zip(na.parameterVariables, nb.parameterVariables) {
      #expect(p.grad! == q.grad!)
      #expect(q.grad!.abs().max().scalar > 0)
    }
    // Against the dense path (a GEMM sums in another order): within Float rounding.
    let (nd, d) = try model(tiles: false)
    d.eventPolicy = .never
    _ = d.lossAndGradients(input: x, labels: y)
    for (p, q) in zip(na.parameterVariables, nd.parameterVariables) {
      let scale = Swift.max(1, q.grad!.abs().max().scalar)
      #expect(Self.maxDifference(p.grad!, q.grad!) <= 1e-4 * scale)
    }
    var (oa, ob) = (
      Adam(parameters: na.parameterVariables, learningRate: 1e-2),
      Adam(parameters: nb.parameterVariables, learningRate: 1e-2)
    )
    for k in 1...3 {
      let (xs, ys) = Self.input(c, seed: UInt64(80 + k), p: 0.3)
      #expect(
        a.trainStep(input: xs, labels: ys, optimizer: &oa).spikeCounts
          == b.trainStep(input: xs, labels: ys, optimizer: &ob).spikeCounts)
    }
    for (p, q) in zip(na.parameterVariables, nb.parameterVariables) { #expect(p.value == q.value) }
  }

  /// Bit masks scattered into a tile and row lists gathered into registers add each row's
  /// events in the same order after the bias, so with full 128-wide column blocks they agree
  /// bit for bit, through a fused Adam step too.
  @Test func maskScatterMatchesListGatherExactly() throws {
    let c = Config(sizes: [200, 256, 128, 10], steps: 3, batch: 24)
    func model(masks: Bool) throws -> (Sequential<Float>, CompiledNetwork<Float>) {
      let net = try Self.network(c)
      let m = try net.compiled(loss: .spikeCountCrossEntropy)
      m.eventPolicy = .always
      m.maskScatterDensity = masks ? 0 : 2
      return (net, m)
    }
    let (x, y) = Self.input(c, seed: 17)
    let ((na, a), (nb, b)) = (try model(masks: true), try model(masks: false))
    let sa = a.lossAndGradients(input: x, labels: y)
    let sb = b.lossAndGradients(input: x, labels: y)
    #expect(a.workspace!.usesMasks == [true, true, false])
    #expect(b.workspace!.usesMasks == [false, false, false])
    #expect(sa.spikeCounts == sb.spikeCounts)
    #expect(sa.logits == sb.logits)
    for (p, q) in zip(na.parameterVariables, nb.parameterVariables) {
      #expect(p.grad! == q.grad!)
      #expect(q.grad!.abs().max().scalar > 0)
    }
    var (oa, ob) = (
      Adam(parameters: na.parameterVariables, learningRate: 1e-2),
      Adam(parameters: nb.parameterVariables, learningRate: 1e-2)
    )
    for k in 1...2 {
      let (xs, ys) = Self.input(c, seed: UInt64(60 + k))
      #expect(
        a.trainStep(input: xs, labels: ys, optimizer: &oa).spikeCounts
          == b.trainStep(input: xs, labels: ys, optimizer: &ob).spikeCounts)
    }
    for (p, q) in zip(na.parameterVariables, nb.parameterVariables) { #expect(p.value == q.value) }
  }

  /// Adam, AdamW (decay fused too) and Adam with L2 decay (gradients first, then its step).
  static func optimizer(_ kind: Int, _ p: [Variable<Float>]) -> Adam<Float> {
    switch kind {
    case 1: return AdamW(parameters: p, learningRate: 1e-2, weightDecay: 0.5)
    case 2: return Adam(parameters: p, learningRate: 1e-2, weightDecay: 0.05)
    default: return Adam(parameters: p, learningRate: 1e-2)
    }
  }

  @Test(arguments: configs, [(EventPolicy.always, 0), (.never, 0), (.always, 1), (.never, 1), (.always, 2)])
  func fusedAdamEqualsGradientsThenAdam(_ c: Config, setting: (EventPolicy, Int)) throws {
    let (policy, kind) = setting
    let (na, nb) = (try Self.network(c), try Self.network(c))
    let (a, b) = (try na.compiled(loss: .spikeCountCrossEntropy), try nb.compiled(loss: .spikeCountCrossEntropy))
    (a.eventPolicy, b.eventPolicy) = (policy, policy)
    var (oa, ob) = (
      Self.optimizer(kind, na.parameterVariables), Self.optimizer(kind, nb.parameterVariables)
    )
    for k in 0..<3 {
      let (x, y) = Self.input(c, seed: UInt64(30 + k))
      let sa = a.trainStep(input: x, labels: y, optimizer: &oa)
      nb.zeroGrad()
      let sb = b.lossAndGradients(input: x, labels: y)
      ob.step()
      #expect(sa.loss == sb.loss, "step \(k)")
    }
    for (p, q) in zip(na.parameterVariables, nb.parameterVariables) {
      #expect(Self.maxDifference(p.value, q.value) <= 1e-6)
    }
    if kind == 1 {
      // The decay acted: the same steps without it end elsewhere.
      let plain = try Self.network(c)
      let m = try plain.compiled(loss: .spikeCountCrossEntropy)
      m.eventPolicy = policy
      var o = Self.optimizer(0, plain.parameterVariables)
      for k in 0..<3 {
        let (x, y) = Self.input(c, seed: UInt64(30 + k))
        _ = m.trainStep(input: x, labels: y, optimizer: &o)
      }
      #expect(Self.maxDifference(plain.parameterVariables[0].value, na.parameterVariables[0].value) > 1e-4)
    }
  }

  @Test(arguments: configs)
  func eventAndDensePathsAndThreadsAgree(_ c: Config) throws {
    let (x, y) = Self.input(c, seed: 3)
    var results: [(CompiledNetwork<Float>.Step, [Tensor<Float>])] = []
    for (policy, threads) in [(EventPolicy.never, 1), (.never, 2), (.always, 1), (.always, 2)] {
      let net = try Self.network(c)
      let m = try net.compiled(loss: .spikeCountCrossEntropy)
      (m.eventPolicy, m.threads) = (policy, threads)
      let s = m.lossAndGradients(input: x, labels: y)
      #expect(m.workspace!.usesEvents.allSatisfy { $0 == (policy == .always) })
      results.append((s, net.parameterVariables.map { $0.grad! }))
    }
    let (ref, refGrads) = results[0]
    for (s, grads) in results.dropFirst() {
      #expect(s.spikeCounts == ref.spikeCounts)
      #expect(Self.maxDifference(s.logits, ref.logits) <= 1e-5)
      for (g, r) in zip(grads, refGrads) {
        #expect(Self.maxDifference(g, r) <= 1e-5 * Swift.max(1, r.abs().max().scalar))
      }
    }
  }

  @Test func nonBinaryInputTakesTheDensePath() throws {
    let c = Self.configs[0]
    let m = try Self.network(c).compiled(loss: .spikeCountCrossEntropy)
    m.eventPolicy = .always
    var (x, y) = Self.input(c, seed: 4)
    x[scalarAt: 0, 0, 0] = 0.5
    _ = m.lossAndGradients(input: x, labels: y)
    #expect(m.workspace!.usesEvents[0] == false)
    // Hidden spikes are 0/1, so the next layer still reads events.
    #expect(m.workspace!.usesEvents[1] == true)
    y[0] = y[0]
  }

  @Test func aReusedWorkspaceNeverChangesAnEarlierStep() throws {
    let c = Self.configs[0]
    let m = try Self.network(c).compiled(loss: .spikeCountCrossEntropy)
    let (x1, y1) = Self.input(c, seed: 1)
    let (x2, y2) = Self.input(c, seed: 2, p: 0.4)
    let first = m.lossAndGradients(input: x1, labels: y1)
    let kept = first.logits.copiedContiguous()
    let second = m.lossAndGradients(input: x2, labels: y2)
    #expect(first.logits == kept)
    #expect(second.logits != kept)
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

/// Event input (`SpikeEvents`) feeds the first Linear layer's event pass directly.
@Suite struct EventInputTests {
  @Test(arguments: [false, true])
  func eventInputMatchesDenseInput(_ train: Bool) throws {
    let c = EventPathTests.Config(sizes: [300, 160, 10], steps: 5, batch: 12)
    let (na, nb) = (try EventPathTests.network(c), try EventPathTests.network(c))
    let (a, b) = (try na.compiled(loss: .spikeCountCrossEntropy), try nb.compiled(loss: .spikeCountCrossEntropy))
    // Both read the input as row lists (the dense side extracts them), so the sums run in the
    // same order whatever the CPU's automatic policy would pick; Adam would amplify rounding.
    (a.eventPolicy, b.eventPolicy) = (.always, .always)
    (a.maskScatterDensity, b.maskScatterDensity) = (2, 2)
    var (oa, ob) = (
      Adam(parameters: na.parameterVariables, learningRate: 1e-2),
      Adam(parameters: nb.parameterVariables, learningRate: 1e-2)
    )
    for k in 0..<2 {
      let (x, y) = EventPathTests.input(c, seed: UInt64(40 + k), p: 0.05)
      let events = SpikeEvents(dense: x.reshaped([c.steps * c.batch, c.sizes[0]]))
      let (sa, sb): (CompiledNetwork<Float>.Step, CompiledNetwork<Float>.Step)
      if train {
        sa = a.trainStep(events: events, steps: c.steps, labels: y, optimizer: &oa)
        sb = b.trainStep(input: x, labels: y, optimizer: &ob)
      } else {
        (na.zeroGrad(), nb.zeroGrad())
        sa = a.lossAndGradients(events: events, steps: c.steps, labels: y)
        sb = b.lossAndGradients(input: x, labels: y)
        for (p, q) in zip(na.parameterVariables, nb.parameterVariables) {
          #expect(EventPathTests.maxDifference(p.grad!, q.grad!) <= 1e-6)
        }
      }
      #expect(sa.spikeCounts == sb.spikeCounts)
      #expect(EventPathTests.maxDifference(sa.logits, sb.logits) <= 1e-5)
      #expect(Swift.abs(sa.loss - sb.loss) <= 1e-6)
      #expect(a.workspace!.usesEvents[0])
      let ea = a.evaluate(events: events, steps: c.steps, labels: y)
      let eb = b.evaluate(input: x, labels: y)
      #expect(ea.correct == eb.correct)
      #expect(EventPathTests.maxDifference(a.logits(events: events, steps: c.steps), eb.logits) <= 1e-5)
    }
    for (p, q) in zip(na.parameterVariables, nb.parameterVariables) {
      #expect(EventPathTests.maxDifference(p.value, q.value) <= 1e-6)
    }
  }
}
