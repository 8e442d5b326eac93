/// The 18 built-in surrogates by name, for command lines and configuration files.
///
/// A name matches a surrogate's braintools class name (`S2NN`, `PiecewiseQuadratic`) or its
/// braintools functional name (`s2nn`, `piecewise_quadratic`), ignoring case, underscores and
/// hyphens; so `s2nn`, `S2NN` and `piecewise-quadratic` all work. Parameter keys match the
/// braintools names (`alpha`, `t_period`) under the same rule, so the Swift spelling `tPeriod`
/// works too. A parameter that is not given keeps its braintools default.
///
/// ```swift
/// let s = try SurrogateRegistry.make("s2nn", parameters: ["alpha": 8])
/// s.parameters.map(\.value)   // [8.0, 1.0, 1e-08]
/// ```
public enum SurrogateRegistry {
  /// One built-in surrogate: its names, its parameters with their defaults, and a builder.
  public struct Entry: Sendable {
    /// The braintools class name, e.g. `PiecewiseQuadratic`.
    public let name: String
    /// The braintools functional name, e.g. `piecewise_quadratic`.
    public let functionalName: String
    /// The parameters in declaration order with their defaults.
    public let defaults: [(name: String, value: Double)]
    /// True when the surrogate has a smooth primitive.
    public let hasPrimitive: Bool
    let build: @Sendable ([String: Double]) throws(SurrogateError) -> any SurrogateGradient

    /// Builds the surrogate from `parameters` (keys as described on `SurrogateRegistry`),
    /// filling the rest with defaults. Throws for an unknown key or a value out of its domain.
    public func make(_ parameters: [String: Double] = [:]) throws(SurrogateError)
      -> any SurrogateGradient
    {
      var values: [String: Double] = [:]
      for (name, value) in defaults { values[name] = value }
      for (key, value) in parameters {
        guard let canonical = defaults.first(where: { normalize($0.name) == normalize(key) })
        else {
          throw .unknownParameter(
            surrogate: name, parameter: key, accepted: defaults.map(\.name))
        }
        values[canonical.name] = value
      }
      return try build(values)
    }
  }

  /// Every built-in surrogate, in braintools' order.
  public static let all: [Entry] = [
    entry(Sigmoid()) { p throws(SurrogateError) in try Sigmoid(alpha: p["alpha"]!) },
    entry(PiecewiseQuadratic()) { p throws(SurrogateError) in
      try PiecewiseQuadratic(alpha: p["alpha"]!)
    },
    entry(PiecewiseExp()) { p throws(SurrogateError) in try PiecewiseExp(alpha: p["alpha"]!) },
    entry(SoftSign(), functional: "soft_sign") { p throws(SurrogateError) in
      try SoftSign(alpha: p["alpha"]!)
    },
    entry(Arctan()) { p throws(SurrogateError) in try Arctan(alpha: p["alpha"]!) },
    entry(NonzeroSignLog()) { p throws(SurrogateError) in
      try NonzeroSignLog(alpha: p["alpha"]!)
    },
    entry(ERF(), functional: "erf") { p throws(SurrogateError) in try ERF(alpha: p["alpha"]!) },
    entry(PiecewiseLeakyRelu()) { p throws(SurrogateError) in
      try PiecewiseLeakyRelu(c: p["c"]!, w: p["w"]!)
    },
    entry(SquarewaveFourierSeries()) { p throws(SurrogateError) in
      let n = p["n"]!
      guard n.isFinite, n == n.rounded(), n >= 1, n <= 1_000_000 else {
        throw .invalidParameter(
          surrogate: SquarewaveFourierSeries.name, parameter: "n",
          requirement: "an integer ≥ 1", value: n)
      }
      return try SquarewaveFourierSeries(n: Int(n), tPeriod: p["t_period"]!)
    },
    entry(S2NN(), functional: "s2nn") { p throws(SurrogateError) in
      try S2NN(alpha: p["alpha"]!, beta: p["beta"]!, epsilon: p["epsilon"]!)
    },
    entry(QPseudoSpike(), functional: "q_pseudo_spike") { p throws(SurrogateError) in
      try QPseudoSpike(alpha: p["alpha"]!)
    },
    entry(LeakyRelu()) { p throws(SurrogateError) in
      try LeakyRelu(alpha: p["alpha"]!, beta: p["beta"]!)
    },
    entry(LogTailedRelu()) { p throws(SurrogateError) in try LogTailedRelu(alpha: p["alpha"]!) },
    entry(ReluGrad()) { p throws(SurrogateError) in
      try ReluGrad(alpha: p["alpha"]!, width: p["width"]!)
    },
    entry(GaussianGrad()) { p throws(SurrogateError) in
      try GaussianGrad(sigma: p["sigma"]!, alpha: p["alpha"]!)
    },
    entry(MultiGaussianGrad()) { p throws(SurrogateError) in
      try MultiGaussianGrad(h: p["h"]!, s: p["s"]!, sigma: p["sigma"]!, scale: p["scale"]!)
    },
    entry(InvSquareGrad()) { p throws(SurrogateError) in try InvSquareGrad(alpha: p["alpha"]!) },
    entry(SlayerGrad()) { p throws(SurrogateError) in try SlayerGrad(alpha: p["alpha"]!) },
  ]

  /// The entry whose class or functional name matches `name`, or nil.
  public static func entry(named name: String) -> Entry? {
    let key = normalize(name)
    return all.first { normalize($0.name) == key }
  }

  /// Builds the surrogate called `name` with `parameters` over its defaults.
  ///
  /// Throws `SurrogateError.unknownSurrogate` (listing the known names),
  /// `.unknownParameter` (listing the accepted ones) or `.invalidParameter`.
  public static func make(_ name: String, parameters: [String: Double] = [:])
    throws(SurrogateError) -> any SurrogateGradient
  {
    guard let entry = entry(named: name) else {
      throw .unknownSurrogate(name: name, known: all.map(\.name))
    }
    return try entry.make(parameters)
  }

  private static func entry<S: SurrogateGradient>(
    _ defaults: S, functional: String? = nil,
    _ build: @escaping @Sendable ([String: Double]) throws(SurrogateError) -> any SurrogateGradient
  ) -> Entry {
    Entry(
      name: S.name, functionalName: functional ?? snakeCase(S.name),
      defaults: defaults.parameters, hasPrimitive: defaults.hasPrimitive, build: build)
  }
}

/// Lowercased, without `_` and `-`: the form names and keys are compared in.
func normalize(_ s: String) -> String {
  String(s.lowercased().filter { $0 != "_" && $0 != "-" })
}

/// `PiecewiseQuadratic` → `piecewise_quadratic`.
func snakeCase(_ s: String) -> String {
  var out = ""
  for c in s {
    if c.isUppercase, !out.isEmpty { out.append("_") }
    out.append(contentsOf: c.lowercased())
  }
  return out
}
