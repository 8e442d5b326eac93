import Testing

@testable import SomaCLI

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
}
