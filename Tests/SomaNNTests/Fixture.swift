import Foundation

@testable import SomaNN

// bptt.json: reference gradients generated in float64 by braintools 0.3.0 on JAX 0.10.2 (see
// Fixtures/SOURCE.txt for the generator). Read at test time, never pasted.

struct BPTTFixture: Decodable {
  struct LayerSpec: Decodable {
    var beta: Double
    var threshold: Double
    var reset: String
    var detachReset: Bool
  }
  struct SurrogateSpec: Decodable {
    var name: String
    var params: [String: Double]
  }
  struct Grad: Decodable {
    var W1: [[Double]]
    var b1: [Double]
    var W2: [[Double]]
    var b2: [Double]
  }
  struct Case: Decodable, CustomStringConvertible {
    var name: String
    var T: Int
    var batch: Int
    var sizes: [Int]
    var surrogate: SurrogateSpec
    var layer1: LayerSpec
    var layer2: LayerSpec
    var readout: String
    var input: [[[Double]]]
    var labels: [Int]
    var W1: [[Double]]
    var b1: [Double]
    var W2: [[Double]]
    var b2: [Double]
    var hiddenSpikeCount: Double
    var logits: [[Double]]
    var loss: Double
    var grad: Grad
    var description: String { name }
  }
  var cases: [Case]

  static let shared: BPTTFixture = {
    let url = Bundle.module.url(
      forResource: "bptt", withExtension: "json", subdirectory: "Fixtures")!
    return try! JSONDecoder().decode(BPTTFixture.self, from: Data(contentsOf: url))
  }()
}

extension Tensor {
  init(matrix: [[Double]]) {
    self.init(matrix.flatMap { $0 }.map { Scalar($0) }, shape: [matrix.count, matrix[0].count])
  }
  init(vector: [Double]) { self.init(vector.map { Scalar($0) }) }
  init(cube: [[[Double]]]) {
    self.init(
      cube.flatMap { $0.flatMap { $0 } }.map { Scalar($0) },
      shape: [cube.count, cube[0].count, cube[0][0].count])
  }
}

/// max |got − want| / max |want| (0 when both are zero).
func scaledError<T: TensorScalar>(_ got: Tensor<T>, _ want: [Double]) -> Double {
  let g = got.scalars.map { Double($0) }
  precondition(g.count == want.count, "scaledError: \(g.count) values vs \(want.count)")
  let scale = want.map { Swift.abs($0) }.max() ?? 0
  let diff = zip(g, want).map { Swift.abs($0 - $1) }.max() ?? 0
  return scale == 0 ? diff : diff / scale
}
