/// An array field of a NIR node: a shape and its values in row-major order.
///
/// Values are kept as `Double` whatever the file stores; `elementType` says how they are
/// written back (Soma writes weights as float32, neuron parameters as float64).
public struct NIRArray: Equatable, Sendable, CustomStringConvertible {
  /// How the values are stored in the file.
  public enum ElementType: String, Sendable {
    case float32, float64, int64
  }

  public var shape: [Int]
  public var values: [Double]
  public var elementType: ElementType

  /// An array of `values` with `shape` (a scalar when `shape` is empty). Traps when the
  /// counts disagree.
  public init(_ values: [Double], shape: [Int], elementType: ElementType = .float64) {
    precondition(
      shape.reduce(1, *) == values.count,
      "NIRArray: \(values.count) values do not fill shape \(shape)")
    self.values = values
    self.shape = shape
    self.elementType = elementType
  }

  /// A vector of `count` copies of `value`.
  public init(repeating value: Double, count: Int, elementType: ElementType = .float64) {
    self.init(Array(repeating: value, count: count), shape: [count], elementType: elementType)
  }

  /// The number of values.
  public var count: Int { values.count }

  public var description: String { "\(shape)" }
}

/// One node of a NIR graph: what it computes and the metadata stored with it.
public struct NIRNode: Equatable, Sendable {
  /// The node types of NIR 1.0 that Soma reads and writes. Continuous-time neuron parameters
  /// are per-neuron arrays (a scalar array applies to every neuron).
  public enum Kind: Equatable, Sendable {
    /// The graph's input, of `shape` (without time and batch axes).
    case input(shape: [Int])
    /// The graph's output.
    case output(shape: [Int])
    /// y = W·x + b, weight [out, in].
    case affine(weight: NIRArray, bias: NIRArray)
    /// y = W·x, weight [out, in].
    case linear(weight: NIRArray)
    /// y = x ⊙ s.
    case scale(NIRArray)
    /// Leaky integrate-and-fire: τ·v̇ = (v_leak − v) + r·I; spike and reset to v_reset when v
    /// exceeds v_threshold.
    case lif(tau: NIRArray, r: NIRArray, vLeak: NIRArray, vThreshold: NIRArray, vReset: NIRArray)
    /// Integrate-and-fire: v̇ = r·I, with threshold and reset.
    case integrateAndFire(r: NIRArray, vThreshold: NIRArray, vReset: NIRArray)
    /// Integrator: v̇ = r·I (no spikes).
    case integrator(r: NIRArray)
    /// Leaky integrator: τ·v̇ = (v_leak − v) + r·I (no spikes).
    case leakyIntegrator(tau: NIRArray, r: NIRArray, vLeak: NIRArray)
    /// Current-based LIF: τ_syn·İ = −I + w_in·S, then a LIF with τ_mem driven by I.
    case cubaLIF(
      tauSyn: NIRArray, tauMem: NIRArray, r: NIRArray, vLeak: NIRArray, vThreshold: NIRArray,
      vReset: NIRArray, wIn: NIRArray)
    /// Current-based leaky integrator (no spikes).
    case cubaLI(tauSyn: NIRArray, tauMem: NIRArray, r: NIRArray, vLeak: NIRArray, wIn: NIRArray)
    /// Flattens axes `startDim...endDim` of the input (no time or batch axis counted).
    case flatten(startDim: Int, endDim: Int, inputShape: [Int]?)
    /// A 2-D convolution over [C, H, W] maps (PyTorch's `Conv2d`).
    case conv2d(NIRConv2d)
    /// Sums over each window of each channel (an average pool times the window's area).
    case sumPool2d(NIRPool2d)
    /// Averages over each window of each channel, padding counted (PyTorch's default).
    case avgPool2d(NIRPool2d)
    /// A nested graph.
    case graph(NIRGraph)
    /// A NIR node type Soma reads past but cannot map (Conv1d, Delay, Threshold, …).
    case unsupported(type: String)
  }

  public var kind: Kind
  /// String-valued entries of the node's `metadata` group. Soma records what NIR cannot
  /// express here (`soma.layer`, `soma.reset`, `soma.surrogate`, …); other tools ignore them.
  public var metadata: [String: String]

  public init(_ kind: Kind, metadata: [String: String] = [:]) {
    self.kind = kind
    self.metadata = metadata
  }

  /// NIR's name for the node type (the `type` dataset).
  public var typeName: String {
    switch kind {
    case .input: "Input"
    case .output: "Output"
    case .affine: "Affine"
    case .linear: "Linear"
    case .scale: "Scale"
    case .lif: "LIF"
    case .integrateAndFire: "IF"
    case .integrator: "I"
    case .leakyIntegrator: "LI"
    case .cubaLIF: "CubaLIF"
    case .cubaLI: "CubaLI"
    case .flatten: "Flatten"
    case .conv2d: "Conv2d"
    case .sumPool2d: "SumPool2d"
    case .avgPool2d: "AvgPool2d"
    case .graph: "NIRGraph"
    case .unsupported(let type): type
    }
  }
}

/// The fields of a NIR `Conv2d` node. Pairs are (height, width).
public struct NIRConv2d: Equatable, Sendable {
  /// NIR's padding: explicit sizes, or PyTorch's `"same"` and `"valid"`.
  public enum Padding: Equatable, Sendable {
    case sizes([Int])
    case same
    case valid
  }

  /// [out, in / groups, kh, kw].
  public var weight: NIRArray
  /// [out].
  public var bias: NIRArray
  public var stride: [Int]
  public var padding: Padding
  public var dilation: [Int]
  public var groups: Int
  /// The input's (height, width), if the file gives it.
  public var inputShape: [Int]?

  public init(
    weight: NIRArray, bias: NIRArray, stride: [Int], padding: Padding, dilation: [Int],
    groups: Int, inputShape: [Int]?
  ) {
    (self.weight, self.bias, self.stride, self.padding) = (weight, bias, stride, padding)
    (self.dilation, self.groups, self.inputShape) = (dilation, groups, inputShape)
  }
}

/// The fields of a NIR `SumPool2d` or `AvgPool2d` node, each a (height, width) pair.
public struct NIRPool2d: Equatable, Sendable {
  public var kernelSize: [Int]
  public var stride: [Int]
  public var padding: [Int]

  public init(kernelSize: [Int], stride: [Int], padding: [Int]) {
    (self.kernelSize, self.stride, self.padding) = (kernelSize, stride, padding)
  }
}

/// A directed edge between two nodes of one graph, by name.
public struct NIREdge: Hashable, Sendable, CustomStringConvertible {
  public var source: String
  public var target: String
  public init(_ source: String, _ target: String) {
    self.source = source
    self.target = target
  }
  public var description: String { "\(source) → \(target)" }
}

/// A NIR graph: named nodes and the edges between them, as NIR 1.0 (the `nir` Python package)
/// stores it in HDF5.
///
/// ```swift
/// let graph = try NIRGraph.read("net.nir")
/// for (name, node) in graph.nodes { print(name, node.typeName) }
/// let net = try graph.sequential()                      // a Soma network
/// try net.nirExport().graph.write(to: "copy.nir")
/// ```
public struct NIRGraph: Equatable, Sendable {
  /// The NIR version written to `/version`.
  public static let version = "1.0.8"

  /// The nodes by name.
  public var nodes: [String: NIRNode]
  /// The edges, in file order.
  public var edges: [NIREdge]
  /// String-valued metadata of the graph itself.
  public var metadata: [String: String]

  public init(
    nodes: [String: NIRNode], edges: [NIREdge], metadata: [String: String] = [:]
  ) {
    self.nodes = nodes
    self.edges = edges
    self.metadata = metadata
  }
}
