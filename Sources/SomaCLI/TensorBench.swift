/// Placeholder until the tensor micro-benchmarks land (branch tensor).
public enum TensorBench {
  public static func run(seconds: Double) -> [BenchResult] { [] }
}
