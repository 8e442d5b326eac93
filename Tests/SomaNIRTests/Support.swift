import Foundation
import Soma
import SomaNIR

// Fixtures/: NIR files written by snnTorch and Norse with their own exporters, the input each
// network was run on and the framework's own output, plus hand-damaged files under bad/. All
// are made by scripts/fixtures/make_nir_fixtures.py (bad/heap_*.nir, which crash or hang
// libhdf5, by scripts/fixtures/make_hostile_nir.py); manifest.json says how to import each.

/// The path of `name` under Fixtures/.
func fixturePath(_ name: String) throws -> String {
  guard let dir = Bundle.module.resourceURL?.appendingPathComponent("Fixtures") else {
    throw NIRError(.file, "the test bundle has no Fixtures directory")
  }
  return dir.appendingPathComponent(name).path
}

/// A fresh directory under the system temporary directory, removed when the value dies.
final class TemporaryDirectory {
  let path: String
  init() throws {
    path = NSTemporaryDirectory() + "soma-nir-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
  func file(_ name: String) -> String { path + "/" + name }
  func contents() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).sorted()
  }
}

/// Bernoulli spikes [steps, batch, features].
func randomSpikes(_ steps: Int, _ batch: Int, _ features: Int, p: Float = 0.3, seed: UInt64)
  -> Tensor<Float>
{
  var rng = SomaRandom(seed: seed)
  return Tensor<Float>.bernoulli([steps, batch, features], p: p, using: &rng)
}

/// The network's output on `x`, without building a tape.
func run(_ net: Sequential<Float>, _ x: Tensor<Float>) -> Tensor<Float> {
  noGrad { net(Variable(x)).value }
}

/// The layer type names without generic arguments (`LIF`, `Linear`, …).
func layerTypes(_ net: Sequential<Float>) -> [String] {
  net.layers.map { String("\(type(of: $0.base))".prefix { $0 != "<" }) }
}
