/// Compares the gradients that `backward()` computes with central finite differences, in
/// Double. Tests run it on every differentiable operation.
///
/// The function's output is projected onto fixed random weights (L = Σ w ⊙ f(x)), so a
/// non-scalar result is checked in every direction at once.
///
/// ```swift
/// let r = GradientCheck.run([Tensor.normal([3, 4], using: &rng)]) { v in v[0].tanh() }
/// assert(r.maxError < 1e-6)
/// ```
public struct GradientCheck: Sendable {
  /// The largest |analytic − numeric| / max(1, |numeric|) over all input elements.
  public var maxError: Double
  /// Where it occurred: (input index, flat element index).
  public var worst: (input: Int, element: Int)

  /// Checks `f` at `inputs` with step `epsilon`.
  public static func run(
    _ inputs: [Tensor<Double>], epsilon: Double = 1e-6, seed: UInt64 = 7,
    _ f: ([Variable<Double>]) -> Variable<Double>
  ) -> GradientCheck {
    let vars = inputs.map { Variable($0.copiedContiguous(), requiresGrad: true) }
    let out = f(vars)
    var rng = SomaRandom(seed: seed)
    let w = Tensor<Double>.normal(out.shape, using: &rng)
    (out * w).sum().backward()
    func loss(_ xs: [Tensor<Double>]) -> Double {
      noGrad { (f(xs.map { Variable($0) }).value * w).sum().scalar }
    }
    var result = GradientCheck(maxError: 0, worst: (0, 0))
    for i in 0..<inputs.count {
      let analytic = vars[i].grad?.scalars ?? [Double](repeating: 0, count: inputs[i].count)
      var xs = inputs.map { $0.copiedContiguous() }
      let base = xs[i].scalars
      for k in 0..<base.count {
        var plus = base
        plus[k] += epsilon
        xs[i] = Tensor(plus, shape: inputs[i].shape)
        let lp = loss(xs)
        var minus = base
        minus[k] -= epsilon
        xs[i] = Tensor(minus, shape: inputs[i].shape)
        let lm = loss(xs)
        let numeric = (lp - lm) / (2 * epsilon)
        let err = Swift.abs(analytic[k] - numeric) / Swift.max(1, Swift.abs(numeric))
        if err > result.maxError || err.isNaN {
          result.maxError = err.isNaN ? .infinity : err
          result.worst = (i, k)
        }
      }
      xs[i] = inputs[i]
    }
    return result
  }
}
