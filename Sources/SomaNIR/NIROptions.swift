/// How Soma's discrete-time layers map to NIR's continuous-time neurons.
///
/// NIR writes a neuron as an ODE (τ·v̇ = (v_leak − v) + r·I); Soma steps it with forward Euler
/// at `dt`, as snnTorch and Norse do: β = 1 − dt/τ, and the input reaches the membrane with
/// gain r·dt/τ. Export picks r = τ/dt so that gain is 1 and the weights stay as trained.
/// See docs/NIR.md for every node type.
///
/// ```swift
/// let options = NIROptions(dt: 1e-3)          // Norse's default step
/// let graph = try net.nirExport(options: options).graph
/// ```
public struct NIROptions: Sendable {
  /// What export does with a layer that resets by subtraction (v ← v − θ), which NIR cannot
  /// express (its neurons reset to v_reset).
  public enum SubtractReset: Sendable {
    /// Write NIR's reset to v_reset = 0, as snnTorch's exporter does, record the subtraction
    /// in the node's metadata (Soma reads it back exactly), and add a note to the export.
    case resetToZero
    /// Throw `NIRError` naming the layer.
    case refuse
  }

  /// How export writes the resistance r, whose Euler gain r·dt/τ scales a neuron's input.
  public enum Resistance: Sendable {
    /// r = τ/dt (IF and I: 1/dt), so the gain is 1 and the weights are written as trained:
    /// snnTorch's convention, and exact in a Soma round trip.
    case unitGain
    /// r = 1, as Norse writes and reads NIR (its importer ignores r); the weights into each
    /// neuron are multiplied by τ/dt to keep the same network. Every neuron layer must follow a
    /// `Linear`.
    case unitResistance
  }

  /// The simulation step in seconds. The default, 0.1 ms, is the step snnTorch's exporter
  /// and importer assume (they have no option), so Soma ⇄ snnTorch keeps every β; Norse's
  /// default is 1 ms.
  public var dt: Double
  public var subtractReset: SubtractReset
  public var resistance: Resistance
  /// The surrogate gradient, in `soma train --surrogate` syntax (`S2NN`,
  /// `InvSquareGrad:alpha=100`), for imported neurons whose node does not name one (NIR has
  /// no surrogates; Soma records its own in the node's metadata).
  public var surrogate: String
  /// Export: the shape of one input sample, [C, H, W] for a network that starts with an image
  /// layer (`Conv2d`, a pool) and has no `Unflatten` first to tell it. nil: taken from the
  /// network.
  public var inputShape: [Int]?

  public init(
    dt: Double = 1e-4, subtractReset: SubtractReset = .resetToZero, surrogate: String = "S2NN",
    resistance: Resistance = .unitGain, inputShape: [Int]? = nil
  ) {
    self.inputShape = inputShape
    self.resistance = resistance
    self.dt = dt
    self.subtractReset = subtractReset
    self.surrogate = surrogate
  }

  /// Relative tolerance under which NIR values count as equal: a gain r·dt/τ within it of 1
  /// is 1, per-neuron τ or thresholds within it of each other are one value. Files written
  /// in float32 (snnTorch's) are a few 1e-8 off.
  public static let tolerance = 1e-6

  func check() throws(NIRError) {
    guard dt > 0, dt.isFinite else {
      throw NIRError(.unsupported, "dt must be a positive number of seconds, got \(dt).")
    }
  }
}

/// Metadata keys Soma writes on NIR nodes for what NIR cannot express. Other tools ignore
/// them; Soma's import uses them to rebuild the exact layer.
enum SomaMetadata {
  /// The Soma layer type (`LIF`, `IF`, `CUBALIF`, `LeakyIntegrator`, `RecurrentLIF`).
  static let layer = "soma.layer"
  /// `zero` or `subtract`.
  static let reset = "soma.reset"
  static let detachReset = "soma.detach_reset"
  /// The surrogate gradient in `NAME:key=value` form.
  static let surrogate = "soma.surrogate"
  /// β and α exactly as Soma held them (import uses them only when τ gives the same value
  /// to within `NIROptions.tolerance`, so an edited τ wins).
  static let beta = "soma.beta"
  static let alpha = "soma.alpha"
  /// On the Input node: `flat` when Soma's network took flat features and unflattened them
  /// (an `Unflatten` first), `images` when it took [C, H, W] samples as they are. A file
  /// without it is imported with an `Unflatten` first when its Input has more than one axis.
  static let input = "soma.input"
  /// On a Conv2d node: `none` when Soma's layer had no bias (NIR's Conv2d always has one; the
  /// file holds zeros).
  static let bias = "soma.bias"
}
