import Foundation
import SomaData

/// Reading and writing NIR's HDF5 layout, as the `nir` Python package 1.0.8 does:
///
/// - `/version`: the NIR version, a variable-length UTF-8 string;
/// - `/node`: the top graph, a group with `type` = `"NIRGraph"`, a `nodes` group holding one
///   group per node, an `edges` dataset of [N, 2] strings (source, target) and an optional
///   `metadata` group;
/// - each node group: `type` (a string such as `"LIF"`) and one dataset per field (`weight`,
///   `tau`, …), arrays gzip-compressed; a nested graph is a node group laid out like `/node`.
extension NIRGraph {
  /// The largest file `read` accepts (bytes).
  public static let maximumFileSize = 1 << 30
  /// How deep graphs may nest.
  public static let maximumDepth = 16
  /// The most nodes a file may hold, over all nesting levels.
  public static let maximumNodes = 10_000
  /// The most values one sample may have at any node (2^24, e.g. 64 maps of 512 × 512).
  public static let maximumFeatures = 1 << 24
  /// The most array values `read` takes per byte of file (beyond the first 2^20): more than
  /// gzip can pack into a byte, fewer than would let a small file allocate gigabytes.
  public static let valuesPerFileByte = 512

  /// Reads the NIR file at `path`. Throws `NIRError` with one sentence naming the file and
  /// what is wrong (not HDF5, truncated, a missing or mistyped field).
  ///
  /// - Important: The file is read in this process by the system's libhdf5, and libhdf5 1.10
  ///   (Debian's 1.10.8) can loop forever or crash (SIGSEGV) on a file whose string heap was
  ///   damaged on purpose, which Soma cannot check beforehand. Read untrusted files in a
  ///   process you can stop: `soma import` reads each file in a child process with a time limit.
  public static func read(_ path: String) throws(NIRError) -> NIRGraph {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw NIRError(.file, "\(path) does not exist.")
    }
    guard !isDirectory.boolValue else {
      throw NIRError(.file, "\(path) is a directory, not a NIR file.")
    }
    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    guard size <= maximumFileSize else {
      throw NIRError(.file, "\(path) is \(size) bytes; Soma reads NIR files up to 1 GiB.")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw NIRError(.file, "\(path) cannot be read (permissions?).")
    }
    return try decode([UInt8](data), path: path)
  }

  /// Reads a NIR file from its bytes; `path` names it in errors. Like `read(_:)`, it can hang or
  /// crash inside libhdf5 1.10 on bytes damaged on purpose.
  public static func decode(_ bytes: [UInt8], path: String = "the NIR file") throws(NIRError)
    -> NIRGraph
  {
    try HDF5Lock.run { () throws(NIRError) in
      guard let file = HDF5.File.open(image: bytes) else {
        throw NIRError(
          .file,
          "\(path) is not a readable HDF5 file (it may be truncated or not a NIR file at all).")
      }
      guard let top = file.root.group("node") else {
        throw NIRError(.malformed, "\(path) has no /node group, so it is not a NIR graph.")
      }
      var reader = Reader(path: path, fileSize: bytes.count)
      let node = try reader.node(top, name: "", depth: 0)
      guard case .graph(let graph) = node.kind else {
        throw NIRError(
          .malformed, "\(path) holds a \(node.typeName) at /node; NIR files hold a NIRGraph there.")
      }
      return graph
    }
  }

  /// Writes the graph to `path` in NIR's HDF5 layout, atomically: readers see the old file or
  /// the whole new one, and a failure leaves no partial file.
  public func write(to path: String) throws(NIRError) {
    let bytes = try encoded()
    do { try AtomicFile.write(bytes, to: path) } catch {
      throw NIRError(.file, "\(error)")
    }
  }

  /// The bytes of the graph's NIR file.
  public func encoded() throws(NIRError) -> [UInt8] {
    try HDF5Lock.run { () throws(NIRError) in
      let file = try HDF5.File.create()
      try file.root.write("version", strings: [NIRGraph.version], shape: [])
      try Writer.write(graph: self, into: try file.root.createGroup("node"))
      return try file.image()
    }
  }
}

/// Serialises HDF5 calls: the library keeps global state (error stacks, open-object tables)
/// that Soma does not rely on being thread-safe in every build.
enum HDF5Lock {
  private static let lock = NSLock()
  static func run<R>(_ body: () throws(NIRError) -> R) throws(NIRError) -> R {
    lock.lock()
    defer { lock.unlock() }
    return try body()
  }
}

// MARK: - Reading

private struct Reader {
  let path: String
  var nodeCount = 0
  /// How many more array values the file may hold: gzip stores at most about 1032 bytes per
  /// byte, so a real file cannot hold more than a few hundred values per byte; HDF5's unwritten
  /// chunks (read as fill values) could otherwise make a small file ask for gigabytes.
  let budget: Budget

  final class Budget {
    var left: Int
    init(_ left: Int) { self.left = left }
  }

  init(path: String, fileSize: Int) {
    self.path = path
    budget = Budget(NIRGraph.valuesPerFileByte * fileSize + (1 << 20))
  }

  func qualified(_ name: String) -> String { name.isEmpty ? "/node" : "node '\(name)'" }

  mutating func node(_ g: HDF5.Group, name: String, depth: Int) throws(NIRError) -> NIRNode {
    nodeCount += 1
    guard nodeCount <= NIRGraph.maximumNodes else {
      throw NIRError(
        .malformed, "\(path) holds more than \(NIRGraph.maximumNodes) nodes; Soma stops there.")
    }
    let type = try string(g, "type", of: name)
    let metadata = try self.metadata(g)
    let kind: NIRNode.Kind
    switch type {
    case "NIRGraph":
      guard depth < NIRGraph.maximumDepth else {
        throw NIRError(
          .malformed,
          "\(path) \(qualified(name)) nests graphs more than \(NIRGraph.maximumDepth) deep.")
      }
      kind = .graph(try graph(g, name: name, depth: depth, metadata: metadata))
    case "Input": kind = .input(shape: try shape(g, "shape", of: name))
    case "Output": kind = .output(shape: try shape(g, "shape", of: name))
    case "Affine":
      kind = .affine(weight: try array(g, "weight", of: name), bias: try array(g, "bias", of: name))
    case "Linear": kind = .linear(weight: try array(g, "weight", of: name))
    case "Scale": kind = .scale(try array(g, "scale", of: name))
    case "LIF":
      let vThreshold = try array(g, "v_threshold", of: name)
      kind = .lif(
        tau: try array(g, "tau", of: name), r: try array(g, "r", of: name),
        vLeak: try array(g, "v_leak", of: name), vThreshold: vThreshold,
        vReset: try optionalArray(g, "v_reset", of: name) ?? zeros(like: vThreshold))
    case "IF":
      let vThreshold = try array(g, "v_threshold", of: name)
      kind = .integrateAndFire(
        r: try array(g, "r", of: name), vThreshold: vThreshold,
        vReset: try optionalArray(g, "v_reset", of: name) ?? zeros(like: vThreshold))
    case "I": kind = .integrator(r: try array(g, "r", of: name))
    case "LI":
      kind = .leakyIntegrator(
        tau: try array(g, "tau", of: name), r: try array(g, "r", of: name),
        vLeak: try array(g, "v_leak", of: name))
    case "CubaLIF":
      let vThreshold = try array(g, "v_threshold", of: name)
      kind = .cubaLIF(
        tauSyn: try array(g, "tau_syn", of: name), tauMem: try array(g, "tau_mem", of: name),
        r: try array(g, "r", of: name), vLeak: try array(g, "v_leak", of: name),
        vThreshold: vThreshold,
        vReset: try optionalArray(g, "v_reset", of: name) ?? zeros(like: vThreshold),
        wIn: try optionalArray(g, "w_in", of: name) ?? ones(like: vThreshold))
    case "CubaLI":
      let vLeak = try array(g, "v_leak", of: name)
      kind = .cubaLI(
        tauSyn: try array(g, "tau_syn", of: name), tauMem: try array(g, "tau_mem", of: name),
        r: try array(g, "r", of: name), vLeak: vLeak,
        wIn: try optionalArray(g, "w_in", of: name) ?? ones(like: vLeak))
    case "Flatten":
      kind = .flatten(
        startDim: try integer(g, "start_dim", of: name),
        endDim: try integer(g, "end_dim", of: name),
        inputShape: g.member("input_type") == nil ? nil : try shape(g, "input_type", of: name))
    case "Conv2d":
      kind = .conv2d(
        NIRConv2d(
          weight: try array(g, "weight", of: name), bias: try array(g, "bias", of: name),
          stride: try pair(g, "stride", of: name), padding: try padding(g, of: name),
          dilation: try pair(g, "dilation", of: name), groups: try integer(g, "groups", of: name),
          inputShape: g.member("input_shape") == nil
            ? nil : try pair(g, "input_shape", of: name)))
    case "SumPool2d", "AvgPool2d":
      let pool = NIRPool2d(
        kernelSize: try pair(g, "kernel_size", of: name), stride: try pair(g, "stride", of: name),
        padding: try pair(g, "padding", of: name))
      kind = type == "SumPool2d" ? .sumPool2d(pool) : .avgPool2d(pool)
    default: kind = .unsupported(type: String(type.prefix(64)))
    }
    return NIRNode(kind, metadata: metadata)
  }

  mutating func graph(
    _ g: HDF5.Group, name: String, depth: Int, metadata: [String: String]
  ) throws(NIRError) -> NIRGraph {
    guard let nodesGroup = g.group("nodes") else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) (NIRGraph) has no 'nodes' group.")
    }
    var nodes: [String: NIRNode] = [:]
    for child in try nodesGroup.memberNames() {
      let childName = name.isEmpty ? child : "\(name).\(child)"
      guard let cg = nodesGroup.group(child) else {
        throw NIRError(
          .malformed, "\(path) node '\(childName)' is not a group; NIR stores each node as one.")
      }
      nodes[child] = try node(cg, name: childName, depth: depth + 1)
    }
    let edges = try self.edges(g, of: name)
    for e in edges {
      for end in [e.source, e.target] where nodes[end] == nil {
        throw NIRError(
          .malformed,
          "\(path) \(qualified(name)) has the edge \(e) to '\(end.prefix(64))', which is not one of"
            + " its nodes.")
      }
    }
    return NIRGraph(nodes: nodes, edges: edges, metadata: metadata)
  }

  func edges(_ g: HDF5.Group, of name: String) throws(NIRError) -> [NIREdge] {
    guard let ds = g.dataset("edges") else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) (NIRGraph) has no 'edges' dataset.")
    }
    guard let shape = ds.shape() else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) has an unreadable 'edges' shape.")
    }
    let count = shape.reduce(1, *)
    if count == 0 { return [] }  // `nir.write` stores an empty edge list as an empty float array
    guard ds.kind() == .string else {
      throw NIRError(
        .malformed, "\(path) \(qualified(name)) 'edges' holds numbers; NIR stores name pairs.")
    }
    guard shape.count == 2, shape[1] == 2 else {
      throw NIRError(
        .malformed,
        "\(path) \(qualified(name)) 'edges' has shape \(shape); NIR stores [N, 2] name pairs.")
    }
    guard let s = ds.strings(count: count) else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) 'edges' cannot be read.")
    }
    return (0..<shape[0]).map { NIREdge(s[2 * $0], s[2 * $0 + 1]) }
  }

  func metadata(_ g: HDF5.Group) throws(NIRError) -> [String: String] {
    guard let m = g.group("metadata") else { return [:] }
    var out: [String: String] = [:]
    for key in try m.memberNames() {
      guard let ds = m.dataset(key), let shape = ds.shape(), shape.isEmpty else { continue }
      switch ds.kind() {
      case .string: if let s = ds.strings(count: 1) { out[key] = s[0] }
      case .integer, .float:
        if let v = ds.doubles(count: 1) { out[key] = "\(v[0])" }
      case .other: continue
      }
    }
    return out
  }

  func field(_ g: HDF5.Group, _ field: String, of name: String) throws(NIRError) -> HDF5.Dataset {
    guard let ds = g.dataset(field) else {
      let type = (try? string(g, "type", of: name)) ?? "node"
      throw NIRError(
        .malformed, "\(path) \(qualified(name)) (\(type)) has no '\(field)' dataset.")
    }
    return ds
  }

  func string(_ g: HDF5.Group, _ field: String, of name: String) throws(NIRError) -> String {
    guard let ds = g.dataset(field) else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) has no '\(field)' dataset.")
    }
    guard ds.kind() == .string, let shape = ds.shape(), shape.reduce(1, *) == 1,
      let s = ds.strings(count: 1)
    else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) '\(field)' is not a single string.")
    }
    return s[0]
  }

  func optionalArray(_ g: HDF5.Group, _ field: String, of name: String) throws(NIRError)
    -> NIRArray?
  {
    g.member(field) == nil ? nil : try array(g, field, of: name)
  }

  func array(_ g: HDF5.Group, _ field: String, of name: String) throws(NIRError) -> NIRArray {
    let ds = try self.field(g, field, of: name)
    guard let shape = ds.shape() else {
      throw NIRError(
        .malformed,
        "\(path) \(qualified(name)) '\(field)' has a shape Soma does not read (rank above"
          + " \(HDF5.maximumRank) or more than 2^28 values).")
    }
    let type: NIRArray.ElementType
    switch ds.kind() {
    case .integer: type = .int64
    case .float(let bytes): type = bytes <= 4 ? .float32 : .float64
    case .string, .other:
      throw NIRError(.malformed, "\(path) \(qualified(name)) '\(field)' does not hold numbers.")
    }
    let count = shape.reduce(1, *)
    guard count <= budget.left else {
      throw NIRError(
        .malformed,
        "\(path) \(qualified(name)) '\(field)' has shape \(shape), more values than a file of its"
          + " size can store.")
    }
    budget.left -= count
    guard let values = ds.doubles(count: count) else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) '\(field)' cannot be read.")
    }
    return NIRArray(values, shape: shape, elementType: type)
  }

  func integer(_ g: HDF5.Group, _ field: String, of name: String) throws(NIRError) -> Int {
    let a = try array(g, field, of: name)
    guard a.count == 1, let v = a.values.first, v == v.rounded(), abs(v) < Double(1 << 30) else {
      throw NIRError(.malformed, "\(path) \(qualified(name)) '\(field)' is not one integer.")
    }
    return Int(v)
  }

  func shape(_ g: HDF5.Group, _ field: String, of name: String) throws(NIRError) -> [Int] {
    let a = try array(g, field, of: name)
    guard a.shape.count <= 1, a.count <= HDF5.maximumRank,
      a.values.allSatisfy({ $0 >= 0 && $0 == $0.rounded() && $0 <= Double(HDF5.maximumElements) })
    else {
      throw NIRError(
        .malformed,
        "\(path) \(qualified(name)) '\(field)' is not a shape (a short list of sizes ≥ 0).")
    }
    return a.values.map { Int($0) }
  }

  /// A (height, width) pair: one integer for both or two.
  func pair(_ g: HDF5.Group, _ field: String, of name: String) throws(NIRError) -> [Int] {
    let a = try array(g, field, of: name)
    guard a.shape.count <= 1, a.count == 1 || a.count == 2,
      a.values.allSatisfy({ $0 == $0.rounded() && abs($0) < Double(1 << 30) })
    else {
      throw NIRError(
        .malformed,
        "\(path) \(qualified(name)) '\(field)' has shape \(a.shape); NIR stores one integer or a"
          + " (height, width) pair.")
    }
    let v = a.values.map { Int($0) }
    return v.count == 1 ? [v[0], v[0]] : v
  }

  /// Conv2d's padding: a pair, or the string "same" or "valid".
  func padding(_ g: HDF5.Group, of name: String) throws(NIRError) -> NIRConv2d.Padding {
    if g.dataset("padding")?.kind() == .string {
      switch try string(g, "padding", of: name) {
      case "same": return .same
      case "valid": return .valid
      case let other:
        throw NIRError(
          .malformed,
          "\(path) \(qualified(name)) 'padding' is \"\(other.prefix(32))\"; NIR allows sizes,"
            + " \"same\" or \"valid\".")
      }
    }
    return .sizes(try pair(g, "padding", of: name))
  }

  func zeros(like a: NIRArray) -> NIRArray {
    NIRArray(Array(repeating: 0, count: a.count), shape: a.shape, elementType: a.elementType)
  }
  func ones(like a: NIRArray) -> NIRArray {
    NIRArray(Array(repeating: 1, count: a.count), shape: a.shape, elementType: a.elementType)
  }
}

// MARK: - Writing

private enum Writer {
  static func write(graph: NIRGraph, into g: HDF5.Group) throws(NIRError) {
    try g.write("type", strings: ["NIRGraph"], shape: [])
    let nodes = try g.createGroup("nodes")
    for name in graph.nodes.keys.sorted() {
      try write(node: graph.nodes[name]!, into: try nodes.createGroup(name))
    }
    let flat = graph.edges.flatMap { [$0.source, $0.target] }
    try g.write("edges", strings: flat, shape: [graph.edges.count, 2])
    try write(metadata: graph.metadata, into: g)
  }

  static func write(metadata: [String: String], into g: HDF5.Group) throws(NIRError) {
    guard !metadata.isEmpty else { return }
    let m = try g.createGroup("metadata")
    for key in metadata.keys.sorted() {
      try m.write(key, strings: [metadata[key]!], shape: [])
    }
  }

  static func write(node: NIRNode, into g: HDF5.Group) throws(NIRError) {
    if case .graph(let sub) = node.kind {
      var sub = sub
      for (k, v) in node.metadata { sub.metadata[k] = v }
      return try write(graph: sub, into: g)
    }
    try g.write("type", strings: [node.typeName], shape: [])
    func put(_ name: String, _ a: NIRArray) throws(NIRError) {
      try g.write(name, values: a.values, shape: a.shape, type: a.elementType)
    }
    func putShape(_ name: String, _ s: [Int]) throws(NIRError) {
      try g.write(name, values: s.map(Double.init), shape: [s.count], type: .int64)
    }
    switch node.kind {
    case .input(let shape), .output(let shape): try putShape("shape", shape)
    case .affine(let w, let b):
      try put("weight", w)
      try put("bias", b)
    case .linear(let w): try put("weight", w)
    case .scale(let s): try put("scale", s)
    case .lif(let tau, let r, let vLeak, let vThreshold, let vReset):
      for (k, a) in [
        ("tau", tau), ("r", r), ("v_leak", vLeak), ("v_threshold", vThreshold),
        ("v_reset", vReset),
      ] { try put(k, a) }
    case .integrateAndFire(let r, let vThreshold, let vReset):
      for (k, a) in [("r", r), ("v_threshold", vThreshold), ("v_reset", vReset)] {
        try put(k, a)
      }
    case .integrator(let r): try put("r", r)
    case .leakyIntegrator(let tau, let r, let vLeak):
      for (k, a) in [("tau", tau), ("r", r), ("v_leak", vLeak)] { try put(k, a) }
    case .cubaLIF(let tauSyn, let tauMem, let r, let vLeak, let vThreshold, let vReset, let wIn):
      for (k, a) in [
        ("tau_syn", tauSyn), ("tau_mem", tauMem), ("r", r), ("v_leak", vLeak),
        ("v_threshold", vThreshold), ("v_reset", vReset), ("w_in", wIn),
      ] { try put(k, a) }
    case .cubaLI(let tauSyn, let tauMem, let r, let vLeak, let wIn):
      for (k, a) in [
        ("tau_syn", tauSyn), ("tau_mem", tauMem), ("r", r), ("v_leak", vLeak), ("w_in", wIn),
      ] { try put(k, a) }
    case .flatten(let start, let end, let inputShape):
      try g.write("start_dim", values: [Double(start)], shape: [], type: .int64)
      try g.write("end_dim", values: [Double(end)], shape: [], type: .int64)
      if let inputShape { try putShape("input_type", inputShape) }
    case .conv2d(let c):
      try put("weight", c.weight)
      try put("bias", c.bias)
      try putShape("stride", c.stride)
      switch c.padding {
      case .sizes(let p): try putShape("padding", p)
      case .same: try g.write("padding", strings: ["same"], shape: [])
      case .valid: try g.write("padding", strings: ["valid"], shape: [])
      }
      try putShape("dilation", c.dilation)
      try g.write("groups", values: [Double(c.groups)], shape: [], type: .int64)
      if let s = c.inputShape { try putShape("input_shape", s) }
    case .sumPool2d(let p), .avgPool2d(let p):
      try putShape("kernel_size", p.kernelSize)
      try putShape("stride", p.stride)
      try putShape("padding", p.padding)
    case .unsupported(let type):
      throw NIRError(.unsupported, "Soma cannot write a NIR \(type) node; it only reads past one.")
    case .graph: break
    }
    try write(metadata: node.metadata, into: g)
  }
}
