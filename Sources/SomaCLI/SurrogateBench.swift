/// Placeholder until the surrogate micro-benchmarks land (branch surr).
public enum SurrogateBench {
  public static func run(seconds: Double) -> [BenchResult] { [] }
}
