import SomaSurrogate

/// `soma bench surrogate`: the surrogate derivative over one million elements in a Tensor, for
/// every built-in type with its default parameters (Float, the backward pass's type), plus
/// S2NN in Double and S2NN through the plain scalar loop (libm exp) for comparison.
public enum SurrogateBench {
  /// Elements per call.
  public static let count = 1 << 20

  public static func run(seconds: Double) -> [BenchResult] {
    var rng = SomaRandom(seed: 42)
    let xf = Tensor<Float>.uniform([count], low: -3, high: 3, using: &rng)
    let xd = Tensor<Double>.uniform([count], low: -3, high: 3, using: &rng)
    var results: [BenchResult] = []
    for entry in SurrogateRegistry.all {
      let s = try! entry.make()
      results.append(measure(s, xf, label: "float32", seconds: seconds))
    }
    results.append(measure(S2NN(), xd, label: "float64", seconds: seconds))
    results.append(measure(ScalarLoop(S2NN()), xf, label: "float32 scalar loop", seconds: seconds))
    return results
  }

  static func measure<S: SurrogateGradient, T: TensorScalar>(
    _ s: S, _ x: Tensor<T>, label: String, seconds: Double
  ) -> BenchResult {
    var sink: T = 0
    let (ms, calls) = BenchTimer.measure(seconds: seconds) {
      let d = s.derivative(x)
      sink += d[scalarAt: 0]
    }
    precondition(sink.isFinite, "surrogate bench produced a non-finite value")
    let gps = Double(x.count) / (ms * 1e-3) / 1e9
    return BenchResult(
      name: "surrogate \(S.name) derivative \(label) 1M", msPerCall: ms, calls: calls,
      throughput: (gps, "G elem/s"))
  }

  /// Wraps a surrogate so that its bulk hook is the protocol's default scalar loop.
  struct ScalarLoop<Base: SurrogateGradient>: SurrogateGradient {
    static var name: String { Base.name }
    var base: Base
    init(_ base: Base) { self.base = base }
    func derivative<T: TensorScalar>(_ x: T) -> T { base.derivative(x) }
  }
}
