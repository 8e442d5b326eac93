import Foundation
import SomaData
import Testing

@testable import SomaCLI
@testable import SomaTrain

@Suite struct BenchCommandTests {
  /// --surrogate is an fmnist-spytorch option; other workloads and bad specs are refused.
  @Test func surrogateOptionIsValidated() throws {
    let ok = try SomaCommand.parseAsRoot(["bench", "fmnist-spytorch", "--surrogate", "S2NN"])
    #expect((ok as? BenchCommand)?.surrogate == "S2NN")
    #expect(throws: (any Error).self) {
      _ = try SomaCommand.parseAsRoot(["bench", "mlp-small", "--surrogate", "S2NN"])
    }
    var bad = try SomaCommand.parseAsRoot(
      ["bench", "fmnist-spytorch", "--surrogate", "NoSuchSurrogate", "--seconds", "0.01"])
    #expect(throws: CLIError.self) { try bad.run() }
  }

  /// The fmnist-spytorch step runs with another surrogate and says which one it timed.
  @Test func fmnistBenchTimesTheNamedSurrogate() throws {
    let r = try NetworkBench.run(
      "fmnist-spytorch", seconds: 0.01, threads: 2, surrogate: try SurrogateSpec(parsing: "S2NN").make())
    #expect(r.count == 1 && r[0].calls >= 1 && r[0].msPerCall > 0)
    #expect(r[0].note.contains("surrogate S2NN"))
    let plain = try NetworkBench.run("fmnist-spytorch", seconds: 0.01, threads: 2)
    #expect(!plain[0].note.contains("surrogate"))
  }

  /// The training loop's step against the benchmark step, in one process: four results, each
  /// from whole 10-step blocks. The loop comparison names its ratio and the surrogate both of
  /// its sides ran with; the defaults comparison runs `soma train`'s default network (S2NN)
  /// against the benchmark's own (InvSquareGrad), whatever --surrogate says.
  @Test(.enabled(if: FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory)))
  func trainLoopBenchComparesBothStepsOnOneNetwork() throws {
    let r = try NetworkBench.run(
      "fmnist-train-loop", seconds: 0.01, threads: 2,
      surrogate: try SurrogateSpec(parsing: "InvSquareGrad:alpha=100").make())
    #expect(
      r.map(\.name) == [
        "fmnist-spytorch", "fmnist-train-loop", "fmnist-spytorch-own", "fmnist-train-defaults",
      ])
    #expect(r.allSatisfy { $0.calls >= 10 && $0.calls % 10 == 0 && $0.msPerCall > 0 })
    #expect(r[1].note.contains("training loop / benchmark step"))
    #expect(r[0...1].allSatisfy { $0.note.contains("surrogate InvSquareGrad") })
    #expect(r[2].note.contains("InvSquareGrad:alpha=100.0, lr 2e-4"))
    #expect(r[3].note.contains("S2NN, lr 0.002") && r[3].note.contains("benchmark's own step"))
    #expect(try SomaCommand.parseAsRoot(["bench", "fmnist-train-loop", "--surrogate", "S2NN"]) is BenchCommand)
  }
}
