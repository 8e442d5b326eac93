import SomaNN
import SomaSurrogate
import SomaTensor
import SomaTrain

extension Sequential where Scalar == Float {
  /// Reads the NIR file at `path` and builds the network it describes.
  ///
  /// ```swift
  /// let net = try Sequential<Float>(nirFile: "from-snntorch.nir")
  /// let spikes = net(Variable(input))   // input [T, batch, features]
  /// ```
  ///
  /// - Important: It reads the file in this process (`NIRGraph.read(_:)`), where a file made to
  ///   break libhdf5 1.10 can hang or crash it; `soma import` reads untrusted files in a child
  ///   process instead.
  public init(nirFile path: String, options: NIROptions = NIROptions()) throws(NIRError) {
    self = try NIRGraph.read(path).sequential(options: options, source: path)
  }
}

extension NIRGraph {
  /// The Soma network this graph describes.
  ///
  /// The graph must be a chain from its Input to its Output once nested graphs are inlined
  /// and each LIF ⇄ Linear/Affine loop is taken as a `RecurrentLIF`. Affine and Linear
  /// become `Linear`, Scale a diagonal `Linear`; a [C, H, W] Input before an image layer an
  /// `Unflatten` first, Conv2d → `Conv2d`, AvgPool2d → `AvgPool2d`, SumPool2d → a depthwise
  /// `Conv2d` of ones, Flatten of maps → `Flatten` (of flat features, nothing); LIF → `LIF`,
  /// IF → `IF`, I and LI → `LeakyIntegrator`, CubaLIF → `LeakyIntegrator` (the synaptic
  /// current) then `LIF`, CubaLI → two `LeakyIntegrator`s.
  /// Nodes that Soma wrote come back as the exact layers (its metadata names them). Input
  /// gains r·dt/τ ≠ 1, leak potentials and per-neuron thresholds are folded into the weights
  /// before the neuron (a diagonal `Linear` is inserted when there is none).
  ///
  /// Throws `NIRError` with one sentence naming the node and the type or parameter Soma
  /// cannot map; `source` names the file in it.
  public func sequential(options: NIROptions = NIROptions(), source: String = "the NIR graph")
    throws(NIRError) -> Sequential<Float>
  {
    try options.check()
    var importer = Importer(source: source, options: options)
    return try importer.network(from: self)
  }
}

// MARK: - The chain

/// A layer on its way into Soma: linear stages can still absorb a following neuron's input
/// gain.
private enum Stage {
  case linear(weight: [Double], bias: [Double]?, inputs: Int, outputs: Int)
  case conv(ConvStage)
  case avgPool(NIRPool2d)
  case flatten
  case unflatten([Int])
  case neuron(Neuron)
}

/// A `Conv2d` on its way: weight [out, in / groups, kh, kw] row-major.
struct ConvStage {
  var weight: [Double]
  var shape: [Int]
  var bias: [Double]?
  var stride: [Int]
  var padding: [Int]
  var dilation: [Int]
  var groups: Int
}

private struct Neuron {
  enum Model {
    case lif(beta: Double, threshold: Double, reset: Reset, detachReset: Bool, asIF: Bool)
    case cubaLIF(alpha: Double, beta: Double, threshold: Double, reset: Reset)
    case leaky(beta: Double, alpha: Double?)
  }
  var model: Model
  var surrogate: String
  /// The input reaches the layer as gain ⊙ I + offset.
  var gain: [Double]
  var offset: [Double]
  /// A recurrent weight [n, n] (a `RecurrentLIF`).
  var recurrent: [Double]?
  /// The channels when the layer acts on [C, H, W] maps (its gains then fold per channel).
  var channels: Int? = nil
  /// The node, for errors.
  var what = ""
}

private struct Importer {
  let source: String
  let options: NIROptions
  var dt: Double { options.dt }
  let tolerance = NIROptions.tolerance

  init(source: String, options: NIROptions) {
    self.source = source
    self.options = options
  }

  func fail(_ kind: NIRError.Kind, _ text: String) -> NIRError {
    NIRError(kind, "\(source) \(text)")
  }
  func fail(_ text: String) -> NIRError { fail(.unsupported, text) }

  func label(_ name: String, _ node: NIRNode) -> String { "node '\(name)' (\(node.typeName))" }

  mutating func network(from graph: NIRGraph) throws(NIRError) -> Sequential<Float> {
    var flat = try inline(graph, prefix: "", depth: 0)
    let inputs = flat.nodes.filter { if case .input = $0.value.kind { true } else { false } }
    let outputs = flat.nodes.filter { if case .output = $0.value.kind { true } else { false } }
    guard inputs.count == 1, outputs.count == 1 else {
      throw fail(
        "has \(inputs.count) Input and \(outputs.count) Output nodes; Soma imports graphs with"
          + " one of each.")
    }
    let recurrent = try takeRecurrentLoops(&flat)
    try checkAcyclic(flat)
    let chain = try self.chain(flat, from: inputs.first!.key, to: outputs.first!.key)
    return try build(chain, flat: flat, recurrent: recurrent)
  }

  // MARK: Inlining nested graphs

  struct Flat {
    var nodes: [String: NIRNode]
    var edges: [NIREdge]
    func successors(_ n: String) -> [String] { edges.filter { $0.source == n }.map(\.target) }
    func predecessors(_ n: String) -> [String] { edges.filter { $0.target == n }.map(\.source) }
    func successorMap() -> [String: [String]] {
      var map: [String: [String]] = [:]
      for e in edges { map[e.source, default: []].append(e.target) }
      return map
    }
    func predecessorMap() -> [String: [String]] {
      var map: [String: [String]] = [:]
      for e in edges { map[e.target, default: []].append(e.source) }
      return map
    }
  }

  /// The graph with every nested graph replaced by its nodes (named `outer.inner`), its
  /// Input and Output bypassed.
  func inline(_ graph: NIRGraph, prefix: String, depth: Int) throws(NIRError) -> Flat {
    var flat = Flat(
      nodes: [:],
      edges: graph.edges.map { NIREdge(prefix + $0.source, prefix + $0.target) })
    for (name, node) in graph.nodes {
      guard case .graph(let sub) = node.kind else {
        flat.nodes[prefix + name] = node
        continue
      }
      let full = prefix + name
      let inner = try inline(sub, prefix: full + ".", depth: depth + 1)
      let ins = inner.nodes.filter { if case .input = $0.value.kind { true } else { false } }
      let outs = inner.nodes.filter { if case .output = $0.value.kind { true } else { false } }
      guard ins.count == 1, outs.count == 1 else {
        throw fail(
          "node '\(full)' (NIRGraph) has \(ins.count) Input and \(outs.count) Output nodes;"
            + " Soma inlines nested graphs with one of each.")
      }
      let (innerIn, innerOut) = (ins.first!.key, outs.first!.key)
      for (k, v) in inner.nodes { flat.nodes[k] = v }
      // Edges into the nested graph enter at its Input; edges out leave from its Output.
      flat.edges = flat.edges.map { e in
        NIREdge(e.source == full ? innerOut : e.source, e.target == full ? innerIn : e.target)
      }
      flat.edges += inner.edges
      // The nested Input and Output pass their values through.
      for bypass in [innerIn, innerOut] {
        let preds = flat.predecessors(bypass)
        let succs = flat.successors(bypass)
        flat.edges.removeAll { $0.source == bypass || $0.target == bypass }
        for p in preds { for s in succs { flat.edges.append(NIREdge(p, s)) } }
        flat.nodes[bypass] = nil
      }
    }
    var seen = Set<NIREdge>()
    for e in flat.edges where !seen.insert(e).inserted {
      throw fail(.malformed, "has the edge \(e) twice.")
    }
    return flat
  }

  // MARK: Topology

  /// Removes each LIF ⇄ Linear/Affine loop (the weight node with one input and one output,
  /// both the neuron) and returns the weight node per neuron.
  func takeRecurrentLoops(_ flat: inout Flat) throws(NIRError) -> [String: NIRNode] {
    var loops: [String: NIRNode] = [:]
    // Removing a weight node only drops its own edges, so the maps stay right for the others.
    let successors = flat.successorMap()
    let predecessors = flat.predecessorMap()
    for (w, wNode) in flat.nodes.sorted(by: { $0.key < $1.key }) {
      switch wNode.kind {
      case .affine, .linear: break
      default: continue
      }
      let preds = predecessors[w] ?? []
      let succs = successors[w] ?? []
      guard preds.count == 1, succs.count == 1, preds[0] == succs[0], preds[0] != w else {
        continue
      }
      let n = preds[0]
      let neuron = flat.nodes[n]!
      guard case .lif = neuron.kind else {
        throw fail(
          "\(label(n, neuron)) has a recurrent connection through '\(w)'; Soma maps recurrence"
            + " only on a LIF (as RecurrentLIF).")
      }
      guard loops[n] == nil else {
        throw fail("\(label(n, neuron)) has two recurrent connections; Soma maps one.")
      }
      loops[n] = wNode
      flat.nodes[w] = nil
      flat.edges.removeAll { $0.source == w || $0.target == w }
    }
    return loops
  }

  /// Throws for any cycle left (a loop without a neuron has no time step to break it).
  /// Iterative depth-first search, so a long hostile chain cannot exhaust the stack.
  func checkAcyclic(_ flat: Flat) throws(NIRError) {
    let successors = flat.successorMap()
    var state: [String: Int] = [:]  // 1 on the path, 2 done
    for root in flat.nodes.keys.sorted() where state[root] == nil {
      var path: [String] = [root]
      var next: [Int] = [0]  // index of the next successor to visit, per path entry
      state[root] = 1
      while let node = path.last {
        let succs = successors[node] ?? []
        let i = next[next.count - 1]
        guard i < succs.count else {
          state[node] = 2
          path.removeLast()
          next.removeLast()
          continue
        }
        next[next.count - 1] = i + 1
        let s = succs[i]
        if state[s] == 1 {
          let cycle = Array(path[path.lastIndex(of: s)!...]) + [s]
          let text = cycle.map { "'\($0)'" }.joined(separator: " → ")
          let hasNeuron = cycle.contains { flat.nodes[$0].map(isNeuron) ?? false }
          throw fail(
            .unsupported,
            hasNeuron
              ? "has the loop \(text), which Soma cannot map (it maps a LIF with one Linear or"
                + " Affine feeding back, as RecurrentLIF)."
              : "has the cycle \(text) with no neuron in it, so nothing delays the signal by a"
                + " step; it cannot be simulated.")
        }
        if state[s] == nil {
          state[s] = 1
          path.append(s)
          next.append(0)
        }
      }
    }
  }

  func isNeuron(_ node: NIRNode) -> Bool {
    switch node.kind {
    case .lif, .integrateAndFire, .integrator, .leakyIntegrator, .cubaLIF, .cubaLI: true
    default: false
    }
  }

  /// The node names from Input to Output (exclusive); every node must lie on that path.
  func chain(_ flat: Flat, from input: String, to output: String) throws(NIRError) -> [String] {
    let successors = flat.successorMap()
    let predecessors = flat.predecessorMap()
    var path: [String] = []
    var onPath: Set<String> = []
    var current = input
    while current != output {
      let succs = successors[current] ?? []
      let node = flat.nodes[current]!
      guard succs.count == 1 else {
        throw fail(
          succs.isEmpty
            ? "\(label(current, node)) leads nowhere; Soma imports a chain from Input to Output."
            : "\(label(current, node)) feeds \(succs.count) nodes"
              + " (\(succs.sorted().prefix(4).map { "'\($0)'" }.joined(separator: ", ")));"
              + " Soma imports a chain from Input to Output.")
      }
      let next = succs[0]
      let preds = predecessors[next] ?? []
      guard preds.count == 1 else {
        throw fail(
          "\(label(next, flat.nodes[next]!)) has \(preds.count) inputs; Soma imports a chain from"
            + " Input to Output.")
      }
      if next != output {
        path.append(next)
        onPath.insert(next)
      }
      current = next
    }
    guard (successors[output] ?? []).isEmpty else {
      throw fail(.malformed, "Output node '\(output)' feeds other nodes.")
    }
    if let stray = flat.nodes.keys.sorted().first(where: {
      $0 != input && $0 != output && !onPath.contains($0)
    }) {
      throw fail(
        "\(label(stray, flat.nodes[stray]!)) is not on the path from Input to Output; Soma"
          + " imports a chain.")
    }
    guard !path.isEmpty else { throw fail("has no layers between its Input and Output.") }
    return path
  }

  // MARK: Layers

  mutating func build(_ chain: [String], flat: Flat, recurrent: [String: NIRNode])
    throws(NIRError) -> Sequential<Float>
  {
    guard
      case .input(let inShape)? = flat.nodes.values.first(where: {
        if case .input = $0.kind { true } else { false }
      })?.kind
    else { throw fail(.malformed, "has no Input node.") }
    var width = try features(inShape, "its Input")
    guard width > 0 else {
      throw fail(.malformed, "has an Input of shape \(inShape), which is empty.")
    }
    var stages: [Stage] = []
    // [C, H, W] samples keep their shape for the image layers; Soma's networks take flat
    // features and unflatten them, unless Soma wrote the file from one that took images.
    var shape = [width]
    // Only a graph whose first layer (past any neurons) is an image layer reads the Input's
    // axes; others take its values flat, as before there were image layers.
    let firstLayer = chain.lazy.map { flat.nodes[$0]!.kind }.first { !isNeuron(NIRNode($0)) }
    let readsMaps: Bool
    switch firstLayer {
    case .conv2d?, .avgPool2d?, .sumPool2d?: readsMaps = true
    default: readsMaps = false
    }
    if inShape.count == 3, readsMaps {
      shape = inShape
      let meta = flat.nodes.values.first { if case .input = $0.kind { true } else { false } }
      if meta?.metadata[SomaMetadata.input] != "images" { stages.append(.unflatten(inShape)) }
    }
    for name in chain {
      let node = flat.nodes[name]!
      let what = label(name, node)
      switch node.kind {
      case .affine(let w, let b):
        let (outs, ins) = try matrix(w, what, field: "weight", shape: shape)
        guard b.count == outs, b.shape.count <= 1 else {
          throw fail(.malformed, "\(what) has bias of shape \(b.shape) for weight \(w.shape).")
        }
        try finite(b, what, "bias")
        stages.append(.linear(weight: w.values, bias: b.values, inputs: ins, outputs: outs))
        shape = [outs]
      case .linear(let w):
        let (outs, ins) = try matrix(w, what, field: "weight", shape: shape)
        stages.append(.linear(weight: w.values, bias: nil, inputs: ins, outputs: outs))
        shape = [outs]
      case .scale(let s):
        guard shape.count == 1 else {
          throw fail("\(what) scales [C, H, W] maps; Soma maps Scale on flat features only.")
        }
        let v = try perNeuron(s, width, what, "scale")
        try diagonalFits(width, what)
        var diag = [Double](repeating: 0, count: width * width)
        for i in 0..<width { diag[i * width + i] = v[i] }
        stages.append(.linear(weight: diag, bias: nil, inputs: width, outputs: width))
      case .flatten(let start, let end, let inputShape):
        if let inputShape, try features(inputShape, what) != width {
          throw fail(
            .malformed, "\(what) expects input of shape \(inputShape) but receives \(width) values."
          )
        }
        if shape.count > 1 {
          let rank = shape.count
          let (s, e) = (start < 0 ? start + rank : start, end < 0 ? end + rank : end)
          guard s == 0, e == rank - 1 else {
            throw fail(
              "\(what) flattens axes \(start)…\(end) of \(shape); Soma's Flatten flattens"
                + " whole samples (axes 0…−1).")
          }
          stages.append(.flatten)
          shape = [width]
        }
      case .conv2d(let c):
        let (stage, out) = try conv(c, what, shape: shape, bias: node.metadata[SomaMetadata.bias])
        stages.append(.conv(stage))
        shape = out
      case .avgPool2d(let p):
        let (c, h, w) = try maps(shape, what)
        let (oh, ow) = try pool(p, what, h, w)
        stages.append(.avgPool(p))
        shape = [c, oh, ow]
      case .sumPool2d(let p):
        // A sum over each window of each channel is a depthwise convolution with a kernel of
        // ones: exact, with zero padding, in one Soma layer.
        let (c, h, w) = try maps(shape, what)
        let (oh, ow) = try pool(p, what, h, w)
        let k = p.kernelSize
        let (area, over) = k[0].multipliedReportingOverflow(by: k[1])
        guard !over, area <= NIRGraph.maximumFeatures / c else {
          throw fail("\(what) has a window \(k) too large for \(c) channels.")
        }
        stages.append(
          .conv(
            ConvStage(
              weight: Array(repeating: 1, count: c * k[0] * k[1]), shape: [c, 1, k[0], k[1]],
              bias: nil, stride: p.stride, padding: p.padding, dilation: [1, 1], groups: c)))
        shape = [c, oh, ow]
      case .lif, .integrateAndFire, .integrator, .leakyIntegrator, .cubaLIF, .cubaLI:
        if recurrent[name] != nil, shape.count != 1 {
          throw fail(
            "\(what) has a recurrent connection on [C, H, W] maps (\(shape)); Soma's RecurrentLIF"
              + " takes flat features.")
        }
        for var n in try neurons(node, what, width: width, recurrent: recurrent[name]) {
          n.channels = shape.count == 3 ? shape[0] : nil
          n.what = what
          stages.append(.neuron(n))
        }
      case .input, .output:
        throw fail(.malformed, "has \(what) in the middle of the chain.")
      case .graph:
        throw fail(.malformed, "\(what) was not inlined.")
      case .unsupported(let type):
        throw fail(
          "node '\(name)' is a \(type), which Soma cannot import; it imports Input, Output,"
            + " Affine, Linear, Scale, Flatten, Conv2d, AvgPool2d, SumPool2d, LIF, IF, I, LI,"
            + " CubaLIF, CubaLI and nested graphs.")
      }
      width = try features(shape, what)
    }
    guard
      case .output(let outShape)? = flat.nodes.values.first(where: {
        if case .output = $0.kind { true } else { false }
      })?.kind, try features(outShape, "its Output") == width
    else {
      throw fail(
        .malformed, "has an Output shape that does not match the \(width) values reaching it.")
    }
    guard stages.contains(where: { if case .unflatten = $0 { false } else { true } }) else {
      throw fail("maps to no Soma layer: its nodes between Input and Output only reshape.")
    }
    return try layers(from: try fold(stages))
  }

  /// The values in one sample of `shape`; throws past `NIRGraph.maximumFeatures`, so a
  /// hostile shape cannot overflow or make Soma allocate without bound.
  func features(_ shape: [Int], _ what: String) throws(NIRError) -> Int {
    var n = 1
    for d in shape {
      let (m, overflow) = n.multipliedReportingOverflow(by: d)
      guard !overflow, m <= NIRGraph.maximumFeatures else {
        throw fail(
          "\(what) gives samples of shape \(shape), more than the \(NIRGraph.maximumFeatures)"
            + " values Soma imports per sample.")
      }
      n = m
    }
    return n
  }

  /// A diagonal `Linear` of n × n (for Scale, or a neuron's gain with no Linear before it) is
  /// dense in Soma; refuses sizes whose matrix would pass 2^24 values.
  func diagonalFits(_ n: Int, _ what: String) throws(NIRError) {
    guard n <= 1 << 12 else {
      throw fail(
        "\(what) needs a diagonal Linear of \(n) × \(n) (a Scale, or a gain with no Linear"
          + " before the neuron), too large for Soma's dense Linear.")
    }
  }

  /// The [C, H, W] of maps reaching an image layer.
  func maps(_ shape: [Int], _ what: String) throws(NIRError) -> (Int, Int, Int) {
    guard shape.count == 3 else {
      throw fail(
        "\(what) receives samples of shape \(shape); Soma's image layers take [C, H, W] maps.")
    }
    return (shape[0], shape[1], shape[2])
  }

  /// Checks a pool's fields against Soma's `AvgPool2d` rules; returns the output's size.
  func pool(_ p: NIRPool2d, _ what: String, _ h: Int, _ w: Int) throws(NIRError) -> (Int, Int) {
    let (k, s, pad) = (p.kernelSize, p.stride, p.padding)
    guard k.allSatisfy({ $0 >= 1 }), s.allSatisfy({ $0 >= 1 }) else {
      throw fail(
        .malformed, "\(what) has kernel_size \(k) and stride \(s); both must be ≥ 1.")
    }
    guard pad.allSatisfy({ $0 >= 0 }), 2 * pad[0] <= k[0], 2 * pad[1] <= k[1] else {
      throw fail(
        .malformed, "\(what) has padding \(pad); it must be ≥ 0 and at most half of \(k).")
    }
    // Padding wider than the input would only add windows of padding (and would let the
    // window grow without bound).
    guard pad[0] <= h, pad[1] <= w else {
      throw fail("\(what) has padding \(pad) wider than its \(h)×\(w) input.")
    }
    let oh = slidingOutput(h, kernel: k[0], stride: s[0], padding: pad[0], dilation: 1)
    let ow = slidingOutput(w, kernel: k[1], stride: s[1], padding: pad[1], dilation: 1)
    guard oh >= 1, ow >= 1 else {
      throw fail(.malformed, "\(what) has a window \(k) larger than its \(h)×\(w) input.")
    }
    return (oh, ow)
  }

  /// Checks a Conv2d node against the maps it receives; returns the stage and output shape.
  func conv(_ c: NIRConv2d, _ what: String, shape: [Int], bias: String?) throws(NIRError)
    -> (ConvStage, [Int])
  {
    let (channels, h, w) = try maps(shape, what)
    let ws = c.weight.shape
    guard ws.count == 4, ws.allSatisfy({ $0 >= 1 }) else {
      throw fail(
        .malformed, "\(what) has a weight of shape \(ws); Conv2d's is [out, in / groups, kh, kw].")
    }
    guard c.groups >= 1, ws[0] % c.groups == 0, ws[1] * c.groups == channels else {
      throw fail(
        .malformed,
        "\(what) has a weight of shape \(ws) with groups \(c.groups) but receives \(channels)"
          + " channels (\(shape)).")
    }
    if let s = c.inputShape, s != [h, w] {
      throw fail(
        .malformed, "\(what) has input_shape \(s) but receives \(h)×\(w) maps (\(shape)).")
    }
    guard c.bias.count == ws[0], c.bias.shape.count <= 1 else {
      throw fail(.malformed, "\(what) has bias of shape \(c.bias.shape) for weight \(ws).")
    }
    try finite(c.weight, what, "weight")
    try finite(c.bias, what, "bias")
    guard c.stride.allSatisfy({ $0 >= 1 }), c.dilation.allSatisfy({ $0 >= 1 }) else {
      throw fail(
        .malformed, "\(what) has stride \(c.stride) and dilation \(c.dilation); both must be ≥ 1.")
    }
    let padding: [Int]
    switch c.padding {
    case .sizes(let p):
      guard p.allSatisfy({ $0 >= 0 }) else {
        throw fail(.malformed, "\(what) has padding \(p); it must be ≥ 0.")
      }
      padding = p
    case .valid: padding = [0, 0]
    case .same:
      // PyTorch pads (d·(k − 1))/2 on each side, the odd one at the end; Soma pads evenly.
      let total = [c.dilation[0] * (ws[2] - 1), c.dilation[1] * (ws[3] - 1)]
      guard c.stride == [1, 1], total.allSatisfy({ $0 % 2 == 0 }) else {
        throw fail(
          "\(what) has padding \"same\" with stride \(c.stride) and kernel \(ws[2])×\(ws[3]);"
            + " Soma pads both sides evenly, so it maps \"same\" for stride 1 and odd kernels.")
      }
      padding = total.map { $0 / 2 }
    }
    let oh = slidingOutput(
      h, kernel: ws[2], stride: c.stride[0], padding: padding[0], dilation: c.dilation[0])
    let ow = slidingOutput(
      w, kernel: ws[3], stride: c.stride[1], padding: padding[1], dilation: c.dilation[1])
    guard oh >= 1, ow >= 1 else {
      throw fail(.malformed, "\(what) has a window larger than its \(h)×\(w) input.")
    }
    let noBias = bias == "none" && c.bias.values.allSatisfy { $0 == 0 }
    let stage = ConvStage(
      weight: c.weight.values, shape: ws, bias: noBias ? nil : c.bias.values, stride: c.stride,
      padding: padding, dilation: c.dilation, groups: c.groups)
    return (stage, [ws[0], oh, ow])
  }

  func matrix(_ w: NIRArray, _ what: String, field: String, shape: [Int]) throws(NIRError)
    -> (Int, Int)
  {
    guard shape.count == 1 else {
      throw fail(
        "\(what) receives [C, H, W] maps (\(shape)); Soma maps Affine and Linear on flat"
          + " features (a Flatten before it).")
    }
    let width = shape[0]
    guard w.shape.count == 2 else {
      throw fail(.unsupported, "\(what) has a \(field) of shape \(w.shape); Soma maps 2-D weights.")
    }
    guard w.shape[1] == width else {
      throw fail(
        .malformed, "\(what) has a \(field) of shape \(w.shape) but receives \(width) values.")
    }
    guard w.shape[0] > 0 else { throw fail(.malformed, "\(what) has an empty \(field).") }
    try finite(w, what, field)
    return (w.shape[0], w.shape[1])
  }

  func finite(_ a: NIRArray, _ what: String, _ field: String) throws(NIRError) {
    guard a.values.allSatisfy(\.isFinite) else {
      throw fail(.malformed, "\(what) has a NaN or infinite value in \(field).")
    }
  }

  /// One value per neuron (a single value applies to all).
  func perNeuron(_ a: NIRArray, _ n: Int, _ what: String, _ field: String) throws(NIRError)
    -> [Double]
  {
    guard a.count == n || a.count == 1 else {
      throw fail(.malformed, "\(what) has \(field) of shape \(a.shape) for \(n) neurons.")
    }
    guard a.values.allSatisfy({ !$0.isNaN }) else {
      throw fail(.malformed, "\(what) has a NaN in \(field).")
    }
    return a.count == n ? a.values : Array(repeating: a.values[0], count: n)
  }

  /// The single value of `a`, which must be the same for every neuron.
  func uniform(_ a: NIRArray, _ n: Int, _ what: String, _ field: String, layer: String)
    throws(NIRError) -> Double
  {
    let v = try perNeuron(a, n, what, field)
    let first = v[0]
    guard v.allSatisfy({ close($0, first) }) else {
      throw fail(
        "\(what) has a different \(field) per neuron; Soma's \(layer) has one value per layer.")
    }
    return first
  }

  func close(_ a: Double, _ b: Double) -> Bool {
    a == b || abs(a - b) <= tolerance * max(abs(a), abs(b))
  }

  /// The per-step decay 1 − dt/τ; τ must be at least dt.
  func decay(_ tau: Double, _ what: String, _ field: String, meta: String?) throws(NIRError)
    -> Double
  {
    guard tau > 0 else { throw fail(.malformed, "\(what) has \(field) \(tau); it must be > 0.") }
    guard tau >= dt * (1 - tolerance) else {
      throw fail(
        "\(what) has \(field) \(tau) s, shorter than dt = \(dt) s, so its per-step decay"
          + " 1 − dt/\(field) would be negative; import with a smaller dt.")
    }
    let value = max(0, 1 - dt / tau)
    if let meta, let exact = Double(meta), abs(exact - value) <= tolerance { return exact }
    return value
  }

  func zeroReset(_ vReset: NIRArray, _ n: Int, _ what: String) throws(NIRError) {
    guard try perNeuron(vReset, n, what, "v_reset").allSatisfy({ $0 == 0 }) else {
      throw fail("\(what) resets to a v_reset other than 0; Soma's neurons reset to 0.")
    }
  }

  func positiveThresholds(_ a: NIRArray, _ n: Int, _ what: String) throws(NIRError) -> [Double] {
    let v = try perNeuron(a, n, what, "v_threshold")
    guard v.allSatisfy({ $0 > 0 && $0.isFinite }) else {
      throw fail("\(what) has a v_threshold ≤ 0 or infinite; Soma's thresholds are > 0.")
    }
    return v
  }

  /// One threshold for the layer: when the neurons' thresholds differ, each neuron's input is
  /// scaled by 1/θᵢ and the threshold is 1 (exact: with v_reset = 0 the membrane is linear in
  /// its input).
  func threshold(_ thresholds: [Double]) -> (threshold: Double, scale: [Double]) {
    if thresholds.allSatisfy({ close($0, thresholds[0]) }) {
      return (thresholds[0], Array(repeating: 1, count: thresholds.count))
    }
    return (1, thresholds.map { 1 / $0 })
  }

  func reset(_ node: NIRNode) -> Reset {
    node.metadata[SomaMetadata.reset] == "subtract" ? .subtract : .zero
  }

  /// The stages for one neuron node (two for a foreign CubaLIF or CubaLI).
  func neurons(_ node: NIRNode, _ what: String, width n: Int, recurrent: NIRNode?)
    throws(NIRError) -> [Neuron]
  {
    let meta = node.metadata
    let surrogate = meta[SomaMetadata.surrogate] ?? options.surrogate
    let soma = meta[SomaMetadata.layer]
    let detach = meta[SomaMetadata.detachReset] == "true"
    let ones = [Double](repeating: 1, count: n)
    let zeros = [Double](repeating: 0, count: n)
    switch node.kind {
    case .lif(let tau, let r, let vLeak, let vThreshold, let vReset):
      let t = try uniform(tau, n, what, "tau", layer: "LIF")
      let beta = try decay(t, what, "tau", meta: meta[SomaMetadata.beta])
      try zeroReset(vReset, n, what)
      let gain = try perNeuron(r, n, what, "r").map { $0 * dt / t }
      let leak = try perNeuron(vLeak, n, what, "v_leak").map { $0 * dt / t }
      let (theta, scale) = threshold(try positiveThresholds(vThreshold, n, what))
      var neuron = Neuron(
        model: .lif(
          beta: beta, threshold: theta, reset: reset(node), detachReset: detach, asIF: false),
        surrogate: surrogate, gain: zip(gain, scale).map(*), offset: zip(leak, scale).map(*))
      if let recurrent { try attach(recurrent, to: &neuron, n, what) }
      return [neuron]
    case .integrateAndFire(let r, let vThreshold, let vReset):
      try zeroReset(vReset, n, what)
      let gain = try perNeuron(r, n, what, "r").map { $0 * dt }
      let (theta, scale) = threshold(try positiveThresholds(vThreshold, n, what))
      return [
        Neuron(
          model: .lif(
            beta: 1, threshold: theta, reset: reset(node), detachReset: detach,
            asIF: soma != "LIF"),
          surrogate: surrogate, gain: zip(gain, scale).map(*), offset: zeros)
      ]
    case .integrator(let r):
      let gain = try perNeuron(r, n, what, "r").map { $0 * dt }
      return [
        Neuron(model: .leaky(beta: 1, alpha: nil), surrogate: surrogate, gain: gain, offset: zeros)
      ]
    case .leakyIntegrator(let tau, let r, let vLeak):
      let t = try uniform(tau, n, what, "tau", layer: "LeakyIntegrator")
      let beta = try decay(t, what, "tau", meta: meta[SomaMetadata.beta])
      let gain = try perNeuron(r, n, what, "r").map { $0 * dt / t }
      let leak = try perNeuron(vLeak, n, what, "v_leak").map { $0 * dt / t }
      return [
        Neuron(
          model: .leaky(beta: beta, alpha: nil), surrogate: surrogate, gain: gain, offset: leak)
      ]
    case .cubaLIF(let tauSyn, let tauMem, let r, let vLeak, let vThreshold, let vReset, let wIn):
      let ts = try uniform(tauSyn, n, what, "tau_syn", layer: "CUBALIF")
      let tm = try uniform(tauMem, n, what, "tau_mem", layer: "CUBALIF")
      let alpha = try decay(ts, what, "tau_syn", meta: meta[SomaMetadata.alpha])
      let beta = try decay(tm, what, "tau_mem", meta: meta[SomaMetadata.beta])
      try zeroReset(vReset, n, what)
      guard try perNeuron(vLeak, n, what, "v_leak").allSatisfy({ $0 == 0 }) else {
        throw fail("\(what) has a v_leak other than 0, which Soma's current-based layers lack.")
      }
      let synGain = try perNeuron(wIn, n, what, "w_in").map { $0 * dt / ts }
      let memGain = try perNeuron(r, n, what, "r").map { $0 * dt / tm }
      guard memGain.allSatisfy({ $0 > 0 }) else {
        throw fail("\(what) has r ≤ 0; Soma maps a positive membrane gain.")
      }
      // Current and membrane are linear up to the threshold, so both gains move into the
      // weights before the layer.
      let (theta, scale) = threshold(try positiveThresholds(vThreshold, n, what))
      let gain = (0..<n).map { synGain[$0] * memGain[$0] * scale[$0] }
      if soma == "CUBALIF" {
        return [
          Neuron(
            model: .cubaLIF(alpha: alpha, beta: beta, threshold: theta, reset: reset(node)),
            surrogate: surrogate, gain: gain, offset: zeros)
        ]
      }
      return [
        Neuron(
          model: .leaky(beta: alpha, alpha: nil), surrogate: surrogate, gain: gain, offset: zeros),
        Neuron(
          model: .lif(
            beta: beta, threshold: theta, reset: reset(node), detachReset: detach, asIF: false),
          surrogate: surrogate, gain: ones, offset: zeros),
      ]
    case .cubaLI(let tauSyn, let tauMem, let r, let vLeak, let wIn):
      let ts = try uniform(tauSyn, n, what, "tau_syn", layer: "LeakyIntegrator")
      let tm = try uniform(tauMem, n, what, "tau_mem", layer: "LeakyIntegrator")
      let alpha = try decay(ts, what, "tau_syn", meta: meta[SomaMetadata.alpha])
      let beta = try decay(tm, what, "tau_mem", meta: meta[SomaMetadata.beta])
      guard try perNeuron(vLeak, n, what, "v_leak").allSatisfy({ $0 == 0 }) else {
        throw fail("\(what) has a v_leak other than 0, which Soma's current-based layers lack.")
      }
      let synGain = try perNeuron(wIn, n, what, "w_in").map { $0 * dt / ts }
      let memGain = try perNeuron(r, n, what, "r").map { $0 * dt / tm }
      // Both stages are linear, so the membrane gain moves in front of the filter.
      let gain = zip(synGain, memGain).map(*)
      if soma == "LeakyIntegrator" {
        return [
          Neuron(
            model: .leaky(beta: beta, alpha: alpha), surrogate: surrogate, gain: gain, offset: zeros
          )
        ]
      }
      return [
        Neuron(
          model: .leaky(beta: alpha, alpha: nil), surrogate: surrogate, gain: gain, offset: zeros),
        Neuron(
          model: .leaky(beta: beta, alpha: nil), surrogate: surrogate, gain: ones, offset: zeros),
      ]
    default:
      throw fail(.malformed, "\(what) is not a neuron.")
    }
  }

  /// The recurrent weight reaches the membrane like any input: its rows take the neuron's
  /// gain, its bias (an Affine's) joins the offset.
  func attach(_ w: NIRNode, to neuron: inout Neuron, _ n: Int, _ what: String) throws(NIRError) {
    let weight: NIRArray
    var bias: [Double]? = nil
    switch w.kind {
    case .affine(let wt, let b):
      weight = wt
      guard b.count == n else {
        throw fail(.malformed, "\(what)'s recurrent bias has shape \(b.shape) for \(n) neurons.")
      }
      bias = b.values
    case .linear(let wt): weight = wt
    default: throw fail(.malformed, "\(what)'s recurrent node is not Linear or Affine.")
    }
    guard weight.shape == [n, n] else {
      throw fail(
        .malformed, "\(what) has a recurrent weight of shape \(weight.shape) for \(n) neurons.")
    }
    try finite(weight, what, "its recurrent weight")
    var v = weight.values
    for i in 0..<n {
      for j in 0..<n { v[i * n + j] *= neuron.gain[i] }
      if let bias { neuron.offset[i] += neuron.gain[i] * bias[i] }
    }
    neuron.recurrent = v
  }

  /// Moves every neuron's gain and offset into the linear stage before it, inserting a
  /// diagonal one (on maps, a depthwise 1×1 convolution) when there is none. On maps the gain
  /// and offset must be the same across each channel.
  func fold(_ stages: [Stage]) throws(NIRError) -> [Stage] {
    var out: [Stage] = []
    for stage in stages {
      guard case .neuron(var neuron) = stage else {
        out.append(stage)
        continue
      }
      let n = neuron.gain.count
      let unitGain = neuron.gain.allSatisfy { close($0, 1) }
      let noOffset = neuron.offset.allSatisfy { $0 == 0 }
      if !(unitGain && noOffset) {
        let gain = unitGain ? [Double](repeating: 1, count: n) : neuron.gain
        if let channels = neuron.channels {
          try foldPerChannel(&out, neuron, gain: gain, channels: channels)
        } else if case .linear(var w, let b, let ins, let outs)? = out.last {
          for i in 0..<outs { for j in 0..<ins { w[i * ins + j] *= gain[i] } }
          var bias = b
          if b != nil || !noOffset {
            bias = (0..<outs).map { i in (b?[i] ?? 0) * gain[i] + neuron.offset[i] }
          }
          out[out.count - 1] = .linear(weight: w, bias: bias, inputs: ins, outputs: outs)
        } else {
          try diagonalFits(n, neuron.what)
          var diag = [Double](repeating: 0, count: n * n)
          for i in 0..<n { diag[i * n + i] = gain[i] }
          out.append(
            .linear(weight: diag, bias: noOffset ? nil : neuron.offset, inputs: n, outputs: n))
        }
        neuron.gain = [Double](repeating: 1, count: n)
        neuron.offset = [Double](repeating: 0, count: n)
      }
      out.append(.neuron(neuron))
    }
    return out
  }

  /// A neuron on [C, H, W] maps: its gain and offset, one per channel, scale the output
  /// channels of the Conv2d before it, or become a depthwise 1×1 one.
  func foldPerChannel(_ out: inout [Stage], _ neuron: Neuron, gain: [Double], channels: Int)
    throws(NIRError)
  {
    let per = gain.count / channels
    var g: [Double] = []
    var o: [Double] = []
    for c in 0..<channels {
      let block = (c * per)..<((c + 1) * per)
      guard gain[block].allSatisfy({ close($0, gain[c * per]) }),
        neuron.offset[block].allSatisfy({ close($0, neuron.offset[c * per]) })
      else {
        throw fail(
          "\(neuron.what) has an input gain r·dt/τ, leak or threshold that differs within a"
            + " channel; Soma folds them into the convolution before it, per channel.")
      }
      g.append(gain[c * per])
      o.append(neuron.offset[c * per])
    }
    let noOffset = o.allSatisfy { $0 == 0 }
    if case .conv(var conv)? = out.last {
      let rows = conv.weight.count / channels
      for c in 0..<channels { for j in 0..<rows { conv.weight[c * rows + j] *= g[c] } }
      if conv.bias != nil || !noOffset {
        conv.bias = (0..<channels).map { c in (conv.bias?[c] ?? 0) * g[c] + o[c] }
      }
      out[out.count - 1] = .conv(conv)
    } else {
      out.append(
        .conv(
          ConvStage(
            weight: g, shape: [channels, 1, 1, 1], bias: noOffset ? nil : o, stride: [1, 1],
            padding: [0, 0], dilation: [1, 1], groups: channels)))
    }
  }

  func layers(from stages: [Stage]) throws(NIRError) -> Sequential<Float> {
    var layers: [AnyLayer<Float>] = []
    for stage in stages {
      switch stage {
      case .linear(let w, let b, let ins, let outs):
        layers.append(
          AnyLayer(
            Linear<Float>(
              weight: Tensor(w.map { Float($0) }, shape: [outs, ins]),
              bias: b.map { Tensor($0.map { Float($0) }, shape: [outs]) })))
      case .conv(let c):
        let pair = { (v: [Int]) in Size2D(v[0], v[1]) }
        do {
          layers.append(
            AnyLayer(
              try Conv2d<Float>(
                weight: Tensor(c.weight.map { Float($0) }, shape: c.shape),
                bias: c.bias.map { Tensor($0.map { Float($0) }, shape: [c.shape[0]]) },
                stride: pair(c.stride), padding: pair(c.padding), dilation: pair(c.dilation),
                groups: c.groups)))
        } catch { throw fail("has a convolution Soma cannot build: \(error)") }
      case .avgPool(let p):
        do {
          layers.append(
            AnyLayer(
              try AvgPool2d<Float>(
                kernelSize: Size2D(p.kernelSize[0], p.kernelSize[1]),
                stride: Size2D(p.stride[0], p.stride[1]),
                padding: Size2D(p.padding[0], p.padding[1]))))
        } catch { throw fail("has a pool Soma cannot build: \(error)") }
      case .flatten: layers.append(AnyLayer(Flatten<Float>()))
      case .unflatten(let shape):
        do { layers.append(AnyLayer(try Unflatten<Float>(shape))) } catch {
          throw fail("has an Input shape Soma cannot unflatten to: \(error)")
        }
      case .neuron(let neuron):
        let surrogate: any SurrogateGradient
        do {
          surrogate = try SurrogateSpec(parsing: neuron.surrogate, source: "the surrogate").make()
        } catch { throw fail("names a surrogate Soma cannot build: \(error)") }
        do {
          layers.append(try withConcreteSurrogate(surrogate, LayerBuilder(neuron: neuron)))
        } catch {
          throw fail("has a neuron Soma cannot build: \(error)")
        }
      }
    }
    return Sequential(layers: layers)
  }

  struct LayerBuilder: SurrogateVisitor {
    let neuron: Neuron
    func visit<S: SurrogateGradient>(_ s: S) throws -> AnyLayer<Float> {
      switch neuron.model {
      case .lif(let beta, let threshold, let reset, let detach, let asIF):
        if let v = neuron.recurrent {
          let n = neuron.gain.count
          return AnyLayer(
            try RecurrentLIF<S, Float>(
              recurrentWeight: Tensor(v.map { Float($0) }, shape: [n, n]), beta: beta,
              threshold: threshold, reset: reset, detachReset: detach, surrogate: s))
        }
        if asIF {
          return AnyLayer<Float>(
            try IF(threshold: threshold, reset: reset, detachReset: detach, surrogate: s))
        }
        return AnyLayer<Float>(
          try LIF(beta: beta, threshold: threshold, reset: reset, detachReset: detach, surrogate: s)
        )
      case .cubaLIF(let alpha, let beta, let threshold, let reset):
        return AnyLayer<Float>(
          try CUBALIF(alpha: alpha, beta: beta, threshold: threshold, reset: reset, surrogate: s))
      case .leaky(let beta, let alpha):
        return AnyLayer<Float>(try LeakyIntegrator(beta: beta, alpha: alpha))
      }
    }
  }
}
