/// The state a layer carries from one time step to the next in single-step mode (membrane,
/// synaptic current, last spikes). Empty means "start from rest" (zeros).
public struct LayerState<Scalar: TensorScalar> {
  /// The state variables, in an order each layer documents.
  public var tensors: [Variable<Scalar>]
  /// The states of nested layers (a `Sequential` inside a `Sequential`).
  public var children: [LayerState<Scalar>]
  /// The resting state.
  @inlinable public init() { (tensors, children) = ([], []) }
  @inlinable public init(_ tensors: [Variable<Scalar>], children: [LayerState<Scalar>] = []) {
    self.tensors = tensors
    self.children = children
  }
  /// Cuts the state from the graph (truncated BPTT when streaming).
  public func detached() -> LayerState {
    LayerState(tensors.map { $0.detached() }, children: children.map { $0.detached() })
  }
}

/// A network layer over one scalar type.
///
/// Multi-step mode (`callAsFunction`) takes a whole sequence, [T, batch, features]; a layer
/// without state treats the leading axes as a batch. Single-step mode (`step`) takes one time
/// step, [batch, features], and threads the state explicitly (streaming, T = 1 networks).
public protocol Layer<Scalar> {
  associatedtype Scalar: TensorScalar
  /// Runs the layer over a whole sequence.
  func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar>
  /// Runs one time step from `state`, updating it.
  func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar>
  /// The trainable parameters with their names (`weight`, `bias`, …), in a fixed order.
  var parameters: [(name: String, variable: Variable<Scalar>)] { get }
  /// What a compiled network runs for this layer, or nil to run it through the autodiff tape
  /// (the default for a user's own layer).
  var lowering: LayerLowering<Scalar>? { get }
}

/// What a compiled network runs for a layer (opaque: Soma's layers provide it).
public struct LayerLowering<Scalar: TensorScalar> {
  @usableFromInline let ops: [PlanOp<Scalar>]
  @inlinable init(_ ops: [PlanOp<Scalar>]) { self.ops = ops }
}

extension Layer {
  /// A stateless layer's step is its ordinary forward pass.
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    callAsFunction(input)
  }
  public var parameters: [(name: String, variable: Variable<Scalar>)] { [] }
  public var lowering: LayerLowering<Scalar>? { nil }

  /// The parameters' variables alone, for an optimizer.
  public var parameterVariables: [Variable<Scalar>] { parameters.map(\.variable) }

  /// Clears every parameter's gradient.
  public func zeroGrad() { for p in parameters { p.variable.zeroGrad() } }

  /// Replaces parameter values by name (e.g. from a checkpoint). Traps on a shape mismatch;
  /// returns the names that were not found in `values`.
  @discardableResult
  public func load(_ values: [String: Tensor<Scalar>]) -> [String] {
    var missing: [String] = []
    for (name, v) in parameters {
      guard let t = values[name] else {
        missing.append(name)
        continue
      }
      precondition(
        t.shape == v.value.shape,
        "load: parameter \(name) has shape \(v.value.shape), the value given has \(t.shape)")
      v.value = t.copiedContiguous()
    }
    return missing
  }
}

/// A layer without parameters that works for any scalar type (the spiking neurons, the leaky
/// readout). `Sequential` accepts these next to `Layer`s of its scalar type.
public protocol NeuronLayer: Sendable {
  /// Runs the neurons over a whole sequence [T, batch, features…].
  func callAsFunction<T: TensorScalar>(_ input: Variable<T>) -> Variable<T>
  /// Runs one time step from `state`, updating it.
  func step<T: TensorScalar>(_ input: Variable<T>, state: inout LayerState<T>) -> Variable<T>
  /// The fused kernel a compiled network runs for this layer, or nil to run it through the
  /// autodiff tape (the default for a user's own neuron layer).
  func neuronKernel<T: TensorScalar>(_ type: T.Type) -> NeuronKernel<T>?
  /// These neurons followed by `pool` as one pass (what `Sequential` runs for a neuron layer
  /// followed by a `MaxPool2d`), or nil to run the two layers one after the other (the
  /// default for a user's own neuron layer, and for input a fused form does not take).
  func pooled<T: TensorScalar>(_ input: Variable<T>, by pool: MaxPool2d<T>) -> Variable<T>?
}

extension NeuronLayer {
  public func pooled<T: TensorScalar>(_ input: Variable<T>, by pool: MaxPool2d<T>) -> Variable<T>?
  {
    nil
  }
}

/// A type-erased layer of scalar type `Scalar` (what `Sequential` stores).
public struct AnyLayer<Scalar: TensorScalar>: Layer {
  /// The wrapped layer.
  public let base: Any
  @usableFromInline let _forward: (Variable<Scalar>) -> Variable<Scalar>
  @usableFromInline let _step: (Variable<Scalar>, inout LayerState<Scalar>) -> Variable<Scalar>
  @usableFromInline let _parameters: () -> [(name: String, variable: Variable<Scalar>)]
  /// What a compiled network runs for this layer (nested `Sequential`s flattened).
  @usableFromInline let _ops: [PlanOp<Scalar>]
  /// A neuron layer's fused form with a following max pool (`NeuronLayer.pooled(_:by:)`).
  @usableFromInline let _pooled: ((Variable<Scalar>, MaxPool2d<Scalar>) -> Variable<Scalar>?)?

  @inlinable
  public init<L: Layer>(_ layer: L) where L.Scalar == Scalar {
    base = layer
    _pooled = nil
    _forward = { layer($0) }
    _step = { layer.step($0, state: &$1) }
    _parameters = { layer.parameters }
    // Asked here, where L is concrete: a layer's kernels are specialised for it.
    _ops = layer.lowering?.ops ?? [.tape("\(L.self)")]
  }

  @inlinable
  public init<N: NeuronLayer>(_ neuron: N) {
    base = neuron
    _pooled = { neuron.pooled($0, by: $1) }
    _forward = { neuron($0) }
    _step = { neuron.step($0, state: &$1) }
    _parameters = { [] }
    // Created here, where N (and so its surrogate) is concrete: the kernel is specialised.
    _ops = neuron.neuronKernel(Scalar.self).map { [.neuron($0)] } ?? [.tape("\(N.self)")]
  }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> { _forward(input) }
  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    _step(input, &state)
  }
  public var parameters: [(name: String, variable: Variable<Scalar>)] { _parameters() }
  @inlinable public var lowering: LayerLowering<Scalar>? { LayerLowering(_ops) }
}

/// Builds the layer list of a `Sequential`.
@resultBuilder
public enum LayerBuilder<Scalar: TensorScalar> {
  @inlinable
  public static func buildExpression<L: Layer>(_ layer: L) -> [AnyLayer<Scalar>]
  where L.Scalar == Scalar { [AnyLayer(layer)] }
  @inlinable
  public static func buildExpression<N: NeuronLayer>(_ neuron: N) -> [AnyLayer<Scalar>] {
    [AnyLayer(neuron)]
  }
  @inlinable
  public static func buildExpression(_ layers: [AnyLayer<Scalar>]) -> [AnyLayer<Scalar>] {
    layers
  }
  @inlinable
  public static func buildBlock(_ parts: [AnyLayer<Scalar>]...) -> [AnyLayer<Scalar>] {
    parts.flatMap { $0 }
  }
  @inlinable
  public static func buildOptional(_ part: [AnyLayer<Scalar>]?) -> [AnyLayer<Scalar>] {
    part ?? []
  }
  @inlinable
  public static func buildEither(first: [AnyLayer<Scalar>]) -> [AnyLayer<Scalar>] { first }
  @inlinable
  public static func buildEither(second: [AnyLayer<Scalar>]) -> [AnyLayer<Scalar>] { second }
  @inlinable
  public static func buildArray(_ parts: [[AnyLayer<Scalar>]]) -> [AnyLayer<Scalar>] {
    parts.flatMap { $0 }
  }
}

/// Layers applied in order. Parameter names are prefixed by the layer's index, as in
/// PyTorch (`0.weight`, `2.bias`).
///
/// ```swift
/// let net = try Sequential<Float> {
///   Linear(784, 256, seed: 1)
///   try LIF(beta: 0.9, surrogate: S2NN())
///   Linear(256, 10, seed: 2)
///   try LIF(beta: 0.9, surrogate: S2NN())
/// }
/// let spikes = net(Variable(input))          // [T, batch, 10]
/// ```
public struct Sequential<Scalar: TensorScalar>: Layer {
  /// The layers, in order.
  public var layers: [AnyLayer<Scalar>]

  @inlinable
  public init(@LayerBuilder<Scalar> _ build: () throws -> [AnyLayer<Scalar>]) rethrows {
    layers = try build()
  }

  public init(layers: [AnyLayer<Scalar>]) { self.layers = layers }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    var x = input
    var i = 0
    while i < layers.count {
      // A neuron layer followed by max pooling runs as one pass where the neuron has a fused
      // form (LIF, IF): the spike maps between the two are never stored.
      if let fused = layers[i]._pooled, i + 1 < layers.count,
        let pool = layers[i + 1].base as? MaxPool2d<Scalar>, let y = fused(x, pool)
      {
        x = y
        i += 2
      } else {
        x = layers[i](x)
        i += 1
      }
    }
    return x
  }

  /// One time step through every layer; `state` holds one entry per layer (filled with the
  /// resting state on first use).
  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout [LayerState<Scalar>]) -> Variable<Scalar>
  {
    if state.count != layers.count { state = Array(repeating: LayerState(), count: layers.count) }
    var x = input
    for i in layers.indices { x = layers[i].step(x, state: &state[i]) }
    return x
  }

  /// `Layer` conformance (a `Sequential` nested in another): the per-layer states are kept
  /// in `state.children`.
  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    step(input, state: &state.children)
  }

  /// The layers' lowerings in order (nested `Sequential`s flatten).
  @inlinable
  public var lowering: LayerLowering<Scalar>? { LayerLowering(layers.flatMap(\._ops)) }

  public var parameters: [(name: String, variable: Variable<Scalar>)] {
    var out: [(name: String, variable: Variable<Scalar>)] = []
    for (i, l) in layers.enumerated() {
      for p in l.parameters { out.append((name: "\(i).\(p.name)", variable: p.variable)) }
    }
    return out
  }
}
