import FuzzDriver
import SomaNIR
import SomaNN

/// SwiftPM links `main` to this symbol; it hands the command line to libFuzzer.
@_cdecl("FuzzNIR_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> CInt
{
  soma_fuzz_run(argc, argv) { data, size in fuzzNIR(data, size) }
}

/// NIR files (HDF5): anything that decodes writes back to a file that decodes to the same graph
/// (when Soma can write every node and no value is NaN), and any graph that imports runs two
/// steps of silent input to an output of the Output node's size.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNIR(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let graph = try? NIRGraph.decode(bytes, path: "fuzz") else { return 0 }
  if writable(graph) {
    guard let again = try? NIRGraph.decode(graph.encoded(), path: "fuzz"), again == graph else {
      fatalError("nir: a decoded graph of \(graph.nodes.count) nodes does not round-trip")
    }
  }
  guard let net = try? graph.sequential(source: "fuzz") else { return 0 }
  guard let (input, output) = inputAndOutput(graph), small(graph, input) else { return 0 }
  let features = input.reduce(1, *)
  // Soma's imported networks take flat features unless Soma wrote one that took images.
  let flat = net.layers.first?.base is Unflatten<Float> || input.count != 3
  let x = Tensor<Float>.zeros([2, 1] + (flat ? [features] : input))
  let y = noGrad { net(Variable(x)).value }
  guard y.count == 2 * output.reduce(1, *) else {
    fatalError("nir: output of shape \(y.shape) for an Output of shape \(output)")
  }
  return 0
}

func inputAndOutput(_ graph: NIRGraph) -> ([Int], [Int])? {
  var input: [Int]?
  var output: [Int]?
  for node in graph.nodes.values {
    switch node.kind {
    case .input(let s): input = s
    case .output(let s): output = s
    default: break
    }
  }
  guard let input, let output else { return nil }
  return (input, output)
}

/// Graphs small enough to run within the fuzzer's time limit: few input values and little
/// padding (padding grows the maps).
func small(_ graph: NIRGraph, _ input: [Int]) -> Bool {
  guard input.reduce(1, *) <= 4096 else { return false }
  for node in graph.nodes.values {
    switch node.kind {
    case .conv2d(let c):
      if case .sizes(let p) = c.padding, p.contains(where: { $0 > 8 }) { return false }
    case .graph(let sub): if !small(sub, []) { return false }
    default: break
    }
  }
  return true
}

/// Soma writes every node type it reads but the ones it only reads past, and NaN breaks `==`.
func writable(_ graph: NIRGraph) -> Bool {
  func finite(_ arrays: NIRArray...) -> Bool {
    arrays.allSatisfy { !$0.values.contains(where: \.isNaN) }
  }
  for node in graph.nodes.values {
    switch node.kind {
    case .unsupported: return false
    case .graph(let sub): if !writable(sub) { return false }
    case .affine(let w, let b): if !finite(w, b) { return false }
    case .linear(let w), .scale(let w), .integrator(let w): if !finite(w) { return false }
    case .lif(let a, let b, let c, let d, let e): if !finite(a, b, c, d, e) { return false }
    case .integrateAndFire(let a, let b, let c): if !finite(a, b, c) { return false }
    case .leakyIntegrator(let a, let b, let c): if !finite(a, b, c) { return false }
    case .cubaLIF(let a, let b, let c, let d, let e, let f, let g):
      if !finite(a, b, c, d, e, f, g) { return false }
    case .cubaLI(let a, let b, let c, let d, let e): if !finite(a, b, c, d, e) { return false }
    case .conv2d(let c): if !finite(c.weight, c.bias) { return false }
    case .input, .output, .flatten, .sumPool2d, .avgPool2d: break
    }
  }
  return true
}
