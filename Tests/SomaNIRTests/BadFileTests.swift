import Foundation
import Soma
import SomaNIR
import Testing

/// Damaged or unmappable NIR files give one sentence that names the problem, never a trap.
@Suite struct BadFileTests {
  /// Imports `path` and returns the error, which must be one line.
  func importError(_ path: String, options: NIROptions = NIROptions()) -> NIRError? {
    let error = #expect(throws: NIRError.self) {
      try Sequential<Float>(nirFile: path, options: options)
    }
    if let error { #expect(!error.description.contains("\n"), "\(error)") }
    return error
  }

  func graphError(_ graph: NIRGraph) throws -> NIRError? {
    let decoded = try NIRGraph.decode(try graph.encoded(), path: "g.nir")
    let error = #expect(throws: NIRError.self) { try decoded.sequential(source: "g.nir") }
    if let error { #expect(!error.description.contains("\n"), "\(error)") }
    return error
  }

  struct BadFixture: CustomStringConvertible, Sendable {
    var file: String
    var kind: NIRError.Kind
    var says: String
    var description: String { file }
  }

  static let fixtures: [BadFixture] = [
    BadFixture(file: "truncated.nir", kind: .file, says: "is not a readable HDF5 file"),
    BadFixture(
      file: "missing_field.nir", kind: .malformed, says: "node 'lif' (LIF) has no 'tau' dataset"),
    BadFixture(
      file: "wrong_type.nir", kind: .malformed, says: "node 'lif' 'tau' does not hold numbers"),
    BadFixture(file: "missing_edges.nir", kind: .malformed, says: "has no 'edges' dataset"),
    BadFixture(file: "dangling_edge.nir", kind: .malformed, says: "'nowhere', which is not one of"),
    // An Affine relabelled Conv2d lacks Conv2d's fields.
    BadFixture(
      file: "conv2d.nir", kind: .malformed, says: "node 'fc' (Conv2d) has no 'stride' dataset"),
    BadFixture(
      file: "conv1d.nir", kind: .unsupported,
      says: "node 'conv' is a Conv1d, which Soma cannot import"),
    BadFixture(
      file: "conv_weight_shape.nir", kind: .malformed,
      says: "node 'conv' (Conv2d) has a weight of shape [3, 2, 3, 3] with groups 1 but receives"
        + " 1 channels ([1, 6, 6])"),
    BadFixture(
      file: "conv_input_shape.nir", kind: .malformed,
      says: "node 'conv' (Conv2d) has input_shape [5, 5] but receives 6×6 maps"),
    BadFixture(
      file: "conv_negative_stride.nir", kind: .malformed,
      says: "node 'conv' (Conv2d) has stride [-1, 1] and dilation [1, 1]; both must be ≥ 1."),
    // Found by Fuzz/FuzzNIR: an integer type 91 bytes wide, which HDF5 1.10 reads past its
    // buffer (AddressSanitizer: heap-buffer-overflow in H5VM_memcpyvv) unless refused first.
    BadFixture(
      file: "wide_integer.nir", kind: .malformed, says: "node 'pool' 'padding' cannot be read."),
    // Found by Fuzz/FuzzNIR: an unfiltered chunk of 14 bytes for 3 int64 values, which HDF5
    // 1.10 copies 24 bytes out of.
    BadFixture(
      file: "short_chunk.nir", kind: .malformed, says: "node 'input' 'shape' cannot be read."),
    BadFixture(
      file: "sparse_tau.nir", kind: .malformed,
      says: "node 'lif' 'tau' has shape [134217728], more values than a file of its size can"),
    BadFixture(
      file: "pool_missing_kernel.nir", kind: .malformed,
      says: "node 'pool' (AvgPool2d) has no 'kernel_size' dataset"),
  ]

  @Test(arguments: fixtures)
  func damagedFileIsOneSentence(_ f: BadFixture) throws {
    let error = importError(try fixturePath("bad/" + f.file))
    #expect(error?.kind == f.kind)
    #expect(error?.description.contains(f.says) == true, "\(String(describing: error))")
  }

  @Test func missingFileAndDirectory() throws {
    let dir = try TemporaryDirectory()
    #expect(importError(dir.file("none.nir"))?.description.contains("does not exist") == true)
    #expect(importError(dir.path)?.description.contains("is a directory") == true)
  }

  @Test func everyTruncationOfAGoodFileFails() throws {
    let net = try RoundTripTests.everyLayer()
    let bytes = try net.nirExport().graph.encoded()
    for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 40)) {
      let error = #expect(throws: NIRError.self) {
        try NIRGraph.decode(Array(bytes[..<cut]), path: "cut.nir").sequential()
      }
      #expect(error?.description.contains("\n") == false)
    }
    var garbage = bytes
    for i in stride(from: 0, to: garbage.count, by: 7) { garbage[i] ^= 0x5a }
    #expect(throws: NIRError.self) { try NIRGraph.decode(garbage).sequential() }
  }

  // Graphs that are valid HDF5 and valid NIR but do not map.

  static func vector(_ v: Double, _ n: Int) -> NIRArray { NIRArray(repeating: v, count: n) }

  static func lif(_ n: Int, tau: Double = 1e-3, threshold: [Double]? = nil) -> NIRNode {
    NIRNode(
      .lif(
        tau: vector(tau, n), r: vector(10, n), vLeak: vector(0, n),
        vThreshold: threshold.map { NIRArray($0, shape: [n]) } ?? vector(1, n),
        vReset: vector(0, n)))
  }

  static func affine(_ outs: Int, _ ins: Int) -> NIRNode {
    NIRNode(
      .affine(
        weight: NIRArray(Array(repeating: 0.1, count: outs * ins), shape: [outs, ins]),
        bias: vector(0, outs)))
  }

  static func chain(_ nodes: [(String, NIRNode)], input: Int, output: Int) -> NIRGraph {
    var all = Dictionary(uniqueKeysWithValues: nodes)
    all["input"] = NIRNode(.input(shape: [input]))
    all["output"] = NIRNode(.output(shape: [output]))
    let names = ["input"] + nodes.map(\.0) + ["output"]
    return NIRGraph(
      nodes: all, edges: zip(names, names.dropFirst()).map { NIREdge($0, $1) })
  }

  @Test func mismatchedShapes() throws {
    let g = Self.chain([("fc", Self.affine(3, 5)), ("lif", Self.lif(3))], input: 4, output: 3)
    let e = try graphError(g)
    #expect(e?.kind == .malformed)
    #expect(
      e?.description
        == "g.nir node 'fc' (Affine) has a weight of shape [3, 5] but receives 4 values.")
    let g2 = Self.chain([("fc", Self.affine(3, 4)), ("lif", Self.lif(2))], input: 4, output: 3)
    #expect(
      try graphError(g2)?.description.contains(
        "node 'lif' (LIF) has tau of shape [2] for 3 neurons") == true)
    let g3 = Self.chain([("fc", Self.affine(3, 4)), ("lif", Self.lif(3))], input: 4, output: 5)
    #expect(try graphError(g3)?.description.contains("Output shape") == true)
  }

  @Test func cycleWithoutANeuron() throws {
    var g = Self.chain([("a", Self.affine(4, 4)), ("b", Self.affine(4, 4))], input: 4, output: 4)
    g.edges.append(NIREdge("b", "a"))
    let e = try graphError(g)
    #expect(e?.description.contains("has the cycle 'a' → 'b' → 'a' with no neuron in it") == true)
  }

  @Test func loopThatIsNotARecurrentLIF() throws {
    var g = Self.chain(
      [("fc", Self.affine(4, 4)), ("lif", Self.lif(4)), ("fc2", Self.affine(4, 4))], input: 4,
      output: 4)
    g.edges.append(NIREdge("fc2", "fc"))
    #expect(try graphError(g)?.description.contains("which Soma cannot map") == true)
  }

  @Test func branchingGraph() throws {
    var g = Self.chain([("fc", Self.affine(4, 4)), ("lif", Self.lif(4))], input: 4, output: 4)
    g.nodes["side"] = Self.lif(4)
    g.edges.append(NIREdge("fc", "side"))
    #expect(try graphError(g)?.description.contains("node 'fc' (Affine) feeds 2 nodes") == true)
  }

  @Test func parametersSomaCannotHold() throws {
    let perNeuronTau = NIRNode(
      .lif(
        tau: NIRArray([1e-3, 2e-3], shape: [2]), r: Self.vector(1, 2), vLeak: Self.vector(0, 2),
        vThreshold: Self.vector(1, 2), vReset: Self.vector(0, 2)))
    let g1 = Self.chain([("fc", Self.affine(2, 3)), ("lif", perNeuronTau)], input: 3, output: 2)
    #expect(try graphError(g1)?.description.contains("a different tau per neuron") == true)
    let resetTo = NIRNode(
      .lif(
        tau: Self.vector(1e-3, 2), r: Self.vector(10, 2), vLeak: Self.vector(0, 2),
        vThreshold: Self.vector(1, 2), vReset: Self.vector(-0.5, 2)))
    let g2 = Self.chain([("fc", Self.affine(2, 3)), ("lif", resetTo)], input: 3, output: 2)
    #expect(try graphError(g2)?.description.contains("v_reset other than 0") == true)
    let fast = Self.chain(
      [("fc", Self.affine(2, 3)), ("lif", Self.lif(2, tau: 1e-5))], input: 3, output: 2)
    #expect(try graphError(fast)?.description.contains("shorter than dt") == true)
    let io = NIRGraph(
      nodes: ["input": NIRNode(.input(shape: [2])), "output": NIRNode(.output(shape: [2]))],
      edges: [NIREdge("input", "output")])
    #expect(try graphError(io)?.description.contains("has no layers") == true)
  }

  @Test func badOptions() throws {
    let g = Self.chain([("fc", Self.affine(2, 3)), ("lif", Self.lif(2))], input: 3, output: 2)
    #expect(throws: NIRError.self) { try g.sequential(options: NIROptions(dt: 0)) }
    #expect(throws: NIRError.self) { try g.sequential(options: NIROptions(surrogate: "Nope")) }
  }
}

/// How foreign NIR parameters fold into Soma's layers.
@Suite struct ImportMappingTests {
  /// A reference simulation of NIR's LIF by forward Euler: v += dt/τ·(v_leak − v + r·I), spike
  /// when v ≥ θ (Soma's comparison), reset to 0.
  func eulerLIF(
    _ currents: [[Double]], tau: Double, r: [Double], vLeak: [Double], threshold: [Double],
    dt: Double
  ) -> [[Double]] {
    var v = [Double](repeating: 0, count: r.count)
    return currents.map { current in
      (0..<r.count).map { i in
        v[i] += dt / tau * (vLeak[i] - v[i] + r[i] * current[i])
        if v[i] >= threshold[i] {
          v[i] = 0
          return 1
        }
        return 0
      }
    }
  }

  @Test func gainsLeaksAndThresholdsFoldIntoTheWeights() throws {
    // Norse-style r = 1 (gain dt/τ), a leak potential and a different threshold per neuron.
    let n = 3
    let (tau, dt) = (2e-3, 1e-4)
    let r = [1.0, 2.0, 0.5]
    let vLeak = [0.2, 0.0, -0.1]
    let threshold = [0.05, 0.1, 0.02]
    let w = NIRArray([1, 0.5, -0.2, 0.3, 0.8, 0.1], shape: [n, 2])
    let graph = BadFileTests.chain(
      [
        ("fc", NIRNode(.linear(weight: w))),
        (
          "lif",
          NIRNode(
            .lif(
              tau: BadFileTests.vector(tau, n), r: NIRArray(r, shape: [n]),
              vLeak: NIRArray(vLeak, shape: [n]), vThreshold: NIRArray(threshold, shape: [n]),
              vReset: BadFileTests.vector(0, n)))
        ),
      ], input: 2, output: n)
    let net = try graph.sequential(options: NIROptions(dt: dt))
    #expect(layerTypes(net) == ["Linear", "LIF"])
    let x = randomSpikes(60, 1, 2, p: 0.5, seed: 5)
    let y = run(net, x)
    let xs = x.scalars.map(Double.init)
    var currents: [[Double]] = []
    for t in 0..<60 {
      var row: [Double] = []
      for i in 0..<n {
        let a: Double = w.values[i * 2] * xs[t * 2]
        row.append(a + w.values[i * 2 + 1] * xs[t * 2 + 1])
      }
      currents.append(row)
    }
    let reference = eulerLIF(
      currents, tau: tau, r: r, vLeak: vLeak, threshold: threshold, dt: dt)
    let agree = zip(y.scalars, reference.flatMap { $0 }).filter { Double($0) == $1 }.count
    #expect(agree == 60 * n)
    #expect(y.scalars.contains(1))
  }

  @Test func scaleAndFlattenMap() throws {
    let graph = BadFileTests.chain(
      [
        ("flat", NIRNode(.flatten(startDim: 0, endDim: -1, inputShape: [2, 2]))),
        ("scale", NIRNode(.scale(NIRArray([1, 2, 3, 4], shape: [4])))),
        ("lif", BadFileTests.lif(4)),
      ], input: 4, output: 4)
    let net = try graph.sequential()
    #expect(layerTypes(net) == ["Linear", "LIF"])
    let w = try #require(net.parameters.first).variable.value
    // The diagonal Scale times the LIF's gain r·dt/τ = 10·1e-4/1e-3 = 1.
    #expect(w.scalars == [1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4])
  }

  @Test func neuronWithoutALinearBeforeItGetsADiagonalOne() throws {
    let graph = BadFileTests.chain([("lif", BadFileTests.lif(2, tau: 2e-3))], input: 2, output: 2)
    let net = try graph.sequential()
    #expect(layerTypes(net) == ["Linear", "LIF"])
    // Gain r·dt/τ = 10·1e-4/2e-3 = 0.5.
    #expect(net.parameters[0].variable.value.scalars == [0.5, 0, 0, 0.5])
  }
}

/// Hostile sizes stay fast and shallow.
@Suite struct HostileGraphTests {
  @Test func longChainWithAClosingCycle() throws {
    // 5000 Affine nodes in a ring behind the input: the cycle check walks it without recursion.
    let n = 5000
    var nodes: [String: NIRNode] = [
      "input": NIRNode(.input(shape: [1])), "output": NIRNode(.output(shape: [1])),
    ]
    var edges = [NIREdge("input", "a0")]
    for i in 0..<n {
      nodes["a\(i)"] = NIRNode(.linear(weight: NIRArray([1], shape: [1, 1])))
      edges.append(NIREdge("a\(i)", "a\((i + 1) % n)"))
    }
    edges.append(NIREdge("a\(n - 1)", "output"))
    let error = #expect(throws: NIRError.self) {
      try NIRGraph(nodes: nodes, edges: edges).sequential()
    }
    #expect(error?.description.contains("with no neuron in it") == true)
  }
}
