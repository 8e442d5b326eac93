import SomaNN
import SomaSurrogate
import SomaTensor
import SomaTrain

/// A network written as a NIR graph, with notes on anything NIR holds only approximately.
public struct NIRExport: Sendable {
  public var graph: NIRGraph
  /// One sentence per approximation (a subtraction reset written as reset to zero, a
  /// current-based layer whose spike timing other tools simulate a step or two earlier).
  public var notes: [String]
}

extension Sequential where Scalar == Float {
  /// The network as a NIR graph: nodes `input`, `0`, `1`, … (the layer indices, so node `2`'s
  /// `weight` is parameter `2.weight`) and `output`, chained by edges.
  ///
  /// `Linear` becomes Affine (or Linear without bias); `LIF` → LIF, `IF` → IF, `CUBALIF` →
  /// CubaLIF, `LeakyIntegrator` → LI (CubaLI with alpha, I with beta 1), `RecurrentLIF` → a
  /// nested graph of a LIF and a Linear feeding back, a nested `Sequential` → a nested graph;
  /// `Conv2d`, `AvgPool2d` and `Flatten` → their NIR nodes, a first `Unflatten` → the Input's
  /// shape (else `options.inputShape`), a `BatchNorm2d`/`BatchNorm1d` folded into the
  /// `Conv2d`/`Linear` before it with its running statistics. Throws `NIRError` naming the
  /// first layer NIR cannot hold (`MaxPool2d`, for one).
  ///
  /// ```swift
  /// let export = try net.nirExport()
  /// export.notes.forEach { print("note:", $0) }
  /// try export.graph.write(to: "net.nir")
  /// ```
  public func nirExport(options: NIROptions = NIROptions()) throws(NIRError) -> NIRExport {
    try options.check()
    var context = ExportContext(options: options)
    let shape = try nirInputShape(of: self, options: options)
    let graph = try context.graph(of: self, shape: shape, path: "")
    return NIRExport(graph: graph, notes: context.notes)
  }

  /// Writes the network to `path` as a NIR file (atomically) and returns the export's notes.
  @discardableResult
  public func writeNIR(to path: String, options: NIROptions = NIROptions()) throws(NIRError)
    -> [String]
  {
    let export = try nirExport(options: options)
    try export.graph.write(to: path)
    return export.notes
  }
}

/// The shape of one input sample: `options.inputShape` if given, else a first `Unflatten`'s
/// shape or the first layer that knows its input width (neuron layers keep the shape).
func nirInputShape(of network: Sequential<Float>, options: NIROptions) throws(NIRError) -> [Int] {
  if let shape = options.inputShape {
    guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }) else {
      throw NIRError(.unsupported, "the input shape \(shape) must be one or more sizes ≥ 1.")
    }
    return shape
  }
  if let u = network.layers.first?.base as? Unflatten<Float> { return u.shape }
  if let w = inputWidth(of: network) { return [w] }
  throw NIRError(
    .unsupported,
    "the network's input shape cannot be told (no Unflatten first, no Linear or RecurrentLIF"
      + " before any image layer); NIR needs every node's shape: pass it as"
      + " NIROptions(inputShape:) (soma export --input-shape C,H,W).")
}

/// The width a network takes: the first layer that knows its input size decides (neuron
/// layers keep the width); nil when an image layer comes first.
func inputWidth(of network: Sequential<Float>) -> Int? {
  for layer in network.layers {
    switch layer.base {
    case is Conv2d<Float>, is AvgPool2d<Float>, is MaxPool2d<Float>, is Flatten<Float>,
      is Unflatten<Float>, is BatchNorm2d<Float>:
      return nil
    default: break
    }
    if let e = layer.base as? any NIRExportable, let w = e.nirInputWidth { return w }
  }
  return nil
}

struct ExportContext {
  let options: NIROptions
  var notes: [String] = []
  /// What the weights into the layer being exported must be multiplied by (`.unitResistance`).
  var inputScale = 1.0
  var dt: Double { options.dt }

  /// Nodes `input`, one per layer, `output`, chained. A first `Unflatten` (top level) sets the
  /// Input's shape instead of being a node; a batch norm is folded into the layer before it.
  mutating func graph(of network: Sequential<Float>, shape start: [Int], path: String)
    throws(NIRError) -> NIRGraph
  {
    var nodes: [String: NIRNode] = [:]
    var inputMeta: [String: String] = [:]
    var edges: [NIREdge] = []
    var previous = "input"
    var shape = start
    for (i, layer) in network.layers.enumerated() {
      let name = "\(i)"
      let where_ = "layer \(path)\(i) (\(typeName(layer.base)))"
      if let u = layer.base as? Unflatten<Float> {
        guard i == 0, path.isEmpty else {
          throw NIRError(
            .unsupported,
            "\(where_) has no NIR form (NIR 1.0 has no node that unflattens); Soma exports an"
              + " Unflatten only as the first layer, where it gives the Input's shape.")
        }
        if let given = options.inputShape, given != u.shape {
          throw NIRError(
            .unsupported,
            "\(where_) unflattens to \(u.shape), but the input shape given is \(given).")
        }
        inputMeta[SomaMetadata.input] = "flat"
        continue
      }
      if i == 0, path.isEmpty, shape.count > 1 { inputMeta[SomaMetadata.input] = "images" }
      if let bn = layer.base as? any NIRFoldable {
        try bn.fold(into: &nodes[previous], label: where_, context: &self)
        continue
      }
      guard let e = layer.base as? any NIRExportable else {
        let hint =
          layer.base is MaxPool2d<Float>
          ? " NIR 1.0 pools only by sum or average (SumPool2d, AvgPool2d): train with AvgPool2d"
            + " to export."
          : " Soma exports Linear, Conv2d, AvgPool2d, Flatten, BatchNorm (folded), LIF, IF,"
            + " CUBALIF, LeakyIntegrator, RecurrentLIF and nested Sequential layers."
        throw NIRError(.unsupported, "\(where_) has no NIR form;" + hint)
      }
      inputScale = 1
      var (node, out) = try e.nirNode(
        shape: shape, context: &self, label: where_, path: "\(path)\(i).")
      if inputScale != 1 {
        // r = 1: the neuron's Euler gain dt/τ is undone in the weights that feed it.
        let k = inputScale
        func scaled(_ a: NIRArray) -> NIRArray {
          NIRArray(a.values.map { $0 * k }, shape: a.shape, elementType: a.elementType)
        }
        switch nodes[previous]?.kind {
        case .affine(let weight, let bias)?:
          nodes[previous]!.kind = .affine(weight: scaled(weight), bias: scaled(bias))
        case .linear(let weight)?: nodes[previous]!.kind = .linear(weight: scaled(weight))
        case .conv2d(var c)?:
          (c.weight, c.bias) = (scaled(c.weight), scaled(c.bias))
          nodes[previous]!.kind = .conv2d(c)
        default:
          throw NIRError(
            .unsupported,
            "\(where_) follows no Linear or Conv2d layer, so its input cannot be rescaled for"
              + " r = 1; export with the default resistance (r = τ/dt).")
        }
      }
      if shape.count > 1 { node = node.reshapingNeuronArrays(to: shape) }
      nodes[name] = node
      edges.append(NIREdge(previous, name))
      previous = name
      shape = out
    }
    nodes["input"] = NIRNode(.input(shape: start), metadata: inputMeta)
    nodes["output"] = NIRNode(.output(shape: shape))
    edges.append(NIREdge(previous, "output"))
    return NIRGraph(nodes: nodes, edges: edges)
  }

  func vector(_ value: Double, _ n: Int) -> NIRArray { NIRArray(repeating: value, count: n) }

  /// τ for a per-step decay: β = 1 − dt/τ.
  func tau(_ decay: Double) -> Double { dt / (1 - decay) }

  /// r (or w_in) for an input whose Euler gain is r·dt/τ (`tau` nil: an integrator, r·dt).
  /// With `.unitGain` the gain is made 1; with `.unitResistance` r is 1 and the inverse gain
  /// is owed by the weights before the layer (`inputScale`).
  mutating func resistance(tau: Double?) -> Double {
    let inverseGain = (tau ?? 1) / dt
    switch options.resistance {
    case .unitGain: return inverseGain
    case .unitResistance:
      inputScale *= inverseGain
      return 1
    }
  }

  mutating func resetMetadata(_ reset: Reset, label: String) throws(NIRError) -> [String: String] {
    if reset == .subtract {
      if options.subtractReset == .refuse {
        throw NIRError(
          .unsupported,
          "\(label) resets by subtraction, which NIR cannot express (its neurons reset to"
            + " v_reset); use reset: .zero or allow the approximation.")
      }
      notes.append(
        "\(label) resets by subtraction, which NIR cannot express: written as reset to"
          + " v_reset = 0 (Soma reads the subtraction back from the node's metadata).")
    }
    return [SomaMetadata.reset: reset.rawValue]
  }

  /// A LIF node (or IF for β = 1) with gain 1: r = τ/dt.
  mutating func lifNode<S: SurrogateGradient>(_ lif: LIF<S>, width n: Int, label: String)
    throws(NIRError) -> NIRNode
  {
    var meta = try resetMetadata(lif.reset, label: label)
    meta[SomaMetadata.layer] = "LIF"
    meta[SomaMetadata.detachReset] = "\(lif.detachReset)"
    meta[SomaMetadata.surrogate] = SurrogateSpec.canonical(lif.surrogate)
    meta[SomaMetadata.beta] = "\(lif.beta)"
    if lif.beta == 1 {
      return NIRNode(
        .integrateAndFire(
          r: vector(resistance(tau: nil), n), vThreshold: vector(lif.threshold, n),
          vReset: vector(0, n)),
        metadata: meta)
    }
    let tau = tau(lif.beta)
    return NIRNode(
      .lif(
        tau: vector(tau, n), r: vector(resistance(tau: tau), n), vLeak: vector(0, n),
        vThreshold: vector(lif.threshold, n), vReset: vector(0, n)),
      metadata: meta)
  }
}

func typeName(_ value: Any) -> String {
  let name = "\(type(of: value))"
  return String(name.prefix(while: { $0 != "<" }))
}

/// A Soma layer that has a NIR form.
protocol NIRExportable {
  /// The input width if the layer knows it (nil for neuron layers).
  var nirInputWidth: Int? { get }
  /// The node for this layer receiving samples of `shape`, and the shape it gives.
  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
}

/// A layer that export folds into the node before it (a batch norm in evaluation mode).
protocol NIRFoldable {
  func fold(into node: inout NIRNode?, label: String, context: inout ExportContext)
    throws(NIRError)
}

/// Neuron layers act on each value of any shape.
protocol NIRNeuronExportable: NIRExportable {
  func nirNode(width: Int, context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, Int)
}

extension NIRNeuronExportable {
  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
  {
    let (node, _) = try nirNode(
      width: shape.reduce(1, *), context: &context, label: label, path: path)
    return (node, shape)
  }
}

/// Layers that need one feature axis.
func flatWidth(_ shape: [Int], _ label: String) throws(NIRError) -> Int {
  guard shape.count == 1 else {
    throw NIRError(
      .unsupported,
      "\(label) receives samples of shape \(shape); put a Flatten before it to export it.")
  }
  return shape[0]
}

extension NIRExportable {
  var nirInputWidth: Int? { nil }
}

extension Linear: NIRExportable where Scalar == Float {
  var nirInputWidth: Int? { inFeatures }

  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
  {
    let width = try flatWidth(shape, label)
    guard width == inFeatures else {
      throw NIRError(
        .unsupported, "\(label) takes \(inFeatures) features but receives \(width).")
    }
    let w = NIRArray(
      weight.value.scalars.map(Double.init), shape: [outFeatures, inFeatures],
      elementType: .float32)
    if let bias {
      let b = NIRArray(
        bias.value.scalars.map(Double.init), shape: [outFeatures], elementType: .float32)
      return (NIRNode(.affine(weight: w, bias: b)), [outFeatures])
    }
    return (NIRNode(.linear(weight: w)), [outFeatures])
  }
}

extension LIF: NIRNeuronExportable {
  func nirNode(width: Int, context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, Int)
  {
    (try context.lifNode(self, width: width, label: label), width)
  }
}

extension IF: NIRNeuronExportable {
  func nirNode(width n: Int, context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, Int)
  {
    var meta = try context.resetMetadata(lif.reset, label: label)
    meta[SomaMetadata.layer] = "IF"
    meta[SomaMetadata.detachReset] = "\(lif.detachReset)"
    meta[SomaMetadata.surrogate] = SurrogateSpec.canonical(lif.surrogate)
    let node = NIRNode(
      .integrateAndFire(
        r: context.vector(context.resistance(tau: nil), n),
        vThreshold: context.vector(lif.threshold, n),
        vReset: context.vector(0, n)),
      metadata: meta)
    return (node, n)
  }
}

extension CUBALIF: NIRNeuronExportable {
  func nirNode(width n: Int, context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, Int)
  {
    guard alpha < 1, beta < 1 else {
      throw NIRError(
        .unsupported,
        "\(label) has alpha \(alpha) and beta \(beta); a decay of 1 has no finite NIR time"
          + " constant.")
    }
    var meta = try context.resetMetadata(reset, label: label)
    meta[SomaMetadata.layer] = "CUBALIF"
    meta[SomaMetadata.surrogate] = SurrogateSpec.canonical(surrogate)
    meta[SomaMetadata.alpha] = "\(alpha)"
    meta[SomaMetadata.beta] = "\(beta)"
    context.notes.append(
      "\(label) reads its spike from the membrane before each step's update, so tools that"
        + " simulate NIR's CubaLIF by forward Euler see its spikes two steps earlier.")
    let tauSyn = context.tau(alpha)
    let tauMem = context.tau(beta)
    let node = NIRNode(
      .cubaLIF(
        tauSyn: context.vector(tauSyn, n), tauMem: context.vector(tauMem, n),
        r: context.vector(context.resistance(tau: tauMem), n), vLeak: context.vector(0, n),
        vThreshold: context.vector(threshold, n), vReset: context.vector(0, n),
        wIn: context.vector(context.resistance(tau: tauSyn), n)),
      metadata: meta)
    return (node, n)
  }
}

extension LeakyIntegrator: NIRNeuronExportable {
  func nirNode(width n: Int, context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, Int)
  {
    var meta = [SomaMetadata.layer: "LeakyIntegrator", SomaMetadata.beta: "\(beta)"]
    if let alpha {
      guard alpha < 1, beta < 1 else {
        throw NIRError(
          .unsupported,
          "\(label) has alpha \(alpha) and beta \(beta); a decay of 1 has no finite NIR time"
            + " constant.")
      }
      meta[SomaMetadata.alpha] = "\(alpha)"
      context.notes.append(
        "\(label) feeds its output from the filter's previous value, so tools that simulate"
          + " NIR's CubaLI by forward Euler see it one step earlier.")
      let tauSyn = context.tau(alpha)
      let tauMem = context.tau(beta)
      return (
        NIRNode(
          .cubaLI(
            tauSyn: context.vector(tauSyn, n), tauMem: context.vector(tauMem, n),
            r: context.vector(context.resistance(tau: tauMem), n), vLeak: context.vector(0, n),
            wIn: context.vector(context.resistance(tau: tauSyn), n)),
          metadata: meta), n
      )
    }
    if beta == 1 {
      let r = context.resistance(tau: nil)
      return (NIRNode(.integrator(r: context.vector(r, n)), metadata: meta), n)
    }
    let tau = context.tau(beta)
    return (
      NIRNode(
        .leakyIntegrator(
          tau: context.vector(tau, n), r: context.vector(context.resistance(tau: tau), n),
          vLeak: context.vector(0, n)),
        metadata: meta), n
    )
  }
}

extension RecurrentLIF: NIRExportable where Scalar == Float {
  var nirInputWidth: Int? { recurrentWeight.shape[0] }

  /// A nested graph as snnTorch writes RLeaky: input → lif → output, lif → w_rec → lif.
  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
  {
    let n = try flatWidth(shape, label)
    let size = recurrentWeight.shape[0]
    guard n == size else {
      throw NIRError(.unsupported, "\(label) has \(size) neurons but receives \(n) features.")
    }
    let lifNode = try context.lifNode(lif, width: n, label: label)
    let w = NIRArray(
      recurrentWeight.value.scalars.map { Double($0) * context.inputScale }, shape: [n, n],
      elementType: .float32)
    let graph = NIRGraph(
      nodes: [
        "input": NIRNode(.input(shape: [n])), "lif": lifNode,
        "w_rec": NIRNode(.linear(weight: w)), "output": NIRNode(.output(shape: [n])),
      ],
      edges: [
        NIREdge("input", "lif"), NIREdge("lif", "w_rec"), NIREdge("w_rec", "lif"),
        NIREdge("lif", "output"),
      ])
    return (NIRNode(.graph(graph), metadata: [SomaMetadata.layer: "RecurrentLIF"]), [n])
  }
}

extension Sequential: NIRExportable where Scalar == Float {
  var nirInputWidth: Int? { inputWidth(of: self) }

  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
  {
    let graph = try context.graph(of: self, shape: shape, path: path)
    guard case .output(let out)? = graph.nodes["output"]?.kind else {
      return (NIRNode(.graph(graph)), shape)
    }
    return (NIRNode(.graph(graph)), out)
  }
}
