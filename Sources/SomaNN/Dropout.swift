/// The random generator and mode of a `Dropout` layer, shared by its copies.
public final class DropoutState {
  public var mode = LayerMode.automatic
  @usableFromInline var generator: SomaRandom
  init(seed: UInt64) { generator = SomaRandom(seed: seed) }
}

/// Zeroes each feature with probability `p` in training and scales the rest by 1 / (1 − p);
/// the identity in evaluation. In multi-step mode ([T, batch, …]) one mask is drawn per call
/// and shared by all T steps (SpikingJelly's multi-step Dropout), so a neuron is dropped for the
/// whole sequence; in single-step mode (`step`) the mask is drawn at the first step and kept in
/// the layer's state until the state is reset.
///
/// ```swift
/// let drop = try Dropout<Float>(p: 0.5, seed: 3)
/// let y = drop(spikes)        // [T, B, n], the same neurons zeroed at every step
/// ```
public struct Dropout<Scalar: TensorScalar>: Layer, ModalLayer {
  public let p: Double
  public let state: DropoutState

  /// Throws for p outside [0, 1). `seed` nil draws from the system's generator.
  public init(p: Double = 0.5, seed: UInt64? = nil) throws(SomaNNError) {
    guard p >= 0 && p < 1 else {
      throw .invalidHyperparameter(layer: "Dropout", name: "p", value: p, allowed: "in [0, 1)")
    }
    self.p = p
    state = DropoutState(seed: seed ?? UInt64.random(in: 0...UInt64.max))
  }

  public var mode: LayerMode {
    get { state.mode }
    nonmutating set { state.mode = newValue }
  }

  /// A mask of `shape`: 0 with probability p, else 1 / (1 − p).
  @inlinable
  func mask(_ shape: [Int]) -> Tensor<Scalar> {
    let keep = Scalar(1 - p)
    return Tensor<Scalar>.bernoulli(shape, p: keep, using: &state.generator) / keep
  }

  /// [T, batch, …]: one mask [batch, …] for every step.
  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    guard p > 0, state.mode.isTraining else { return input }
    precondition(
      input.rank >= 2,
      "Dropout: multi-step input must be [T, batch, features…], got shape \(input.shape)")
    return input * mask([1] + input.shape.dropFirst())
  }

  /// One step [batch, …]; `state` = [mask], drawn on the first step.
  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    guard p > 0, self.state.mode.isTraining else { return input }
    if let m = state.tensors.first, m.shape == input.shape { return input * m }
    let m = Variable(mask(input.shape))
    state = LayerState([m])
    return input * m
  }
}
