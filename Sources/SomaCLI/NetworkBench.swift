/// Training-step benchmarks of the networks in shared/BENCHMARKS.md.
enum NetworkBench {
  static let workloads = ["mlp-small", "mlp-single-step", "mlp-deep", "fmnist-spytorch"]

  static func run(_ workload: String, seconds: Double, threads: Int) throws -> [BenchResult] {
    throw BenchUnavailable(workload: workload)
  }
}

struct BenchUnavailable: Error, CustomStringConvertible {
  var workload: String
  var description: String { "workload '\(workload)' needs SomaNN, which is not built yet" }
}
