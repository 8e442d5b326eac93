/// A node of the autodiff graph: a tensor value, the gradient accumulated into it by
/// `backward()`, and — for results of operations — how to send an incoming gradient back to
/// the operands.
///
/// Leaves with `requiresGrad: true` are the trainable parameters; every operation on them
/// records a node, and `backward()` walks the recorded graph once in reverse topological
/// order. Gradients accumulate across calls (as in PyTorch): clear them with `zeroGrad()`.
///
/// ```swift
/// let w = Variable(Tensor<Double>([1, 2, 3]), requiresGrad: true)
/// let loss = (w * w).sum()
/// loss.backward()
/// print(w.grad!)   // [2, 4, 6]
/// ```
///
/// A `Variable` is a reference: layers that hold one share it when copied (use `copied()`
/// for an independent parameter).
public final class Variable<Scalar: TensorScalar>: @unchecked Sendable {
  /// The forward value. Optimizers update parameters' values in place.
  ///
  /// A compiled network (`Sequential.compiled(loss:)`) trains its parameters in its kernels'
  /// own layout; it leaves a pending write here, and the first read brings the value up to
  /// date, so a parameter always reads as its latest trained value.
  @inlinable
  public var value: Tensor<Scalar> {
    get {
      if pendingValue != nil { materialize() }
      return _value
    }
    set {
      pendingValue = nil
      _value = newValue
      version &+= 1
    }
    _modify {
      if pendingValue != nil { materialize() }
      version &+= 1
      yield &_value
    }
  }
  @usableFromInline var _value: Tensor<Scalar>
  /// Produces the up-to-date value (set by a compiled network after it trained this parameter).
  @usableFromInline var pendingValue: (() -> Tensor<Scalar>?)?
  /// Counts writes through `value`, so a compiled network sees when someone else changed it.
  @usableFromInline var version = 0

  @usableFromInline
  func materialize() {
    if let make = pendingValue {
      pendingValue = nil
      if let v = make() { _value = v }
    }
  }
  /// The gradient accumulated by `backward()`; nil until a backward pass reaches this leaf.
  public var grad: Tensor<Scalar>?
  /// True for parameters and for results computed from them while gradients are recorded.
  public let requiresGrad: Bool
  /// An optional label (used in error messages and by the gradient checker).
  public var name: String?

  @usableFromInline let parents: [Variable<Scalar>]
  @usableFromInline let pullback: ((Tensor<Scalar>) -> [Tensor<Scalar>?])?

  /// A leaf holding `value`; `requiresGrad: true` makes it a trainable parameter.
  @inlinable
  public init(_ value: Tensor<Scalar>, requiresGrad: Bool = false, name: String? = nil) {
    self._value = value
    self.requiresGrad = requiresGrad
    self.name = name
    self.parents = []
    self.pullback = nil
  }

  @inlinable
  init(
    value: Tensor<Scalar>, parents: [Variable<Scalar>],
    pullback: @escaping (Tensor<Scalar>) -> [Tensor<Scalar>?]
  ) {
    self._value = value
    self.requiresGrad = true
    self.name = nil
    self.parents = parents
    self.pullback = pullback
  }

  /// Records the result of an operation: `pullback` maps the gradient of the result to one
  /// gradient per parent (nil where a parent gets none). Nothing is recorded when no parent
  /// requires a gradient or recording is off (`noGrad`).
  ///
  /// This is the extension point for new differentiable operations:
  ///
  /// ```swift
  /// extension Variable {
  ///   func cube() -> Variable {
  ///     let x = value
  ///     return .record(x * x * x, parents: [self]) { g in [g * 3 * x * x] }
  ///   }
  /// }
  /// ```
  @inlinable
  public static func record(
    _ value: Tensor<Scalar>, parents: [Variable<Scalar>],
    pullback: @escaping (Tensor<Scalar>) -> [Tensor<Scalar>?]
  ) -> Variable<Scalar> {
    if GradientMode.isEnabled {
      for p in parents where p.requiresGrad {
        return Variable(value: value, parents: parents, pullback: pullback)
      }
    }
    return Variable(value)
  }

  /// The shape of the value.
  @inlinable public var shape: [Int] { value.shape }
  /// The rank of the value.
  @inlinable public var rank: Int { value.rank }
  /// True for a variable created directly (not by an operation).
  @inlinable public var isLeaf: Bool { pullback == nil }

  /// The same value, cut from the graph: no gradient flows through the result.
  @inlinable
  public func detached() -> Variable<Scalar> { Variable(value) }

  /// An independent leaf with a copy of the value and the same `requiresGrad`.
  public func copied() -> Variable<Scalar> {
    Variable(value.copiedContiguous(), requiresGrad: requiresGrad, name: name)
  }

  /// Clears the accumulated gradient.
  @inlinable
  public func zeroGrad() { grad = nil }

  /// Back-propagates from this variable: the gradient of `self` is `seed` (ones of this
  /// shape when nil, i.e. d self / d self = 1 for a scalar loss), and every leaf that
  /// requires a gradient has the gradient of `Σ seed ⊙ self` with respect to it added to its
  /// `grad`.
  @inlinable
  public func backward(seed: Tensor<Scalar>? = nil) {
    backward(seed: seed, gradientReady: nil)
  }

  /// `backward(seed:)`, calling `gradientReady` with each leaf that requires a gradient as soon
  /// as its gradient is complete and added to its `grad` (nothing later in the pass adds to
  /// it): the parameters of the last layers first. Data-parallel training starts reducing a
  /// bucket of gradients there while the pass goes on.
  @inlinable
  public func backward(
    seed: Tensor<Scalar>? = nil, gradientReady: ((Variable<Scalar>) -> Void)?
  ) {
    precondition(
      requiresGrad,
      "backward(): this variable of shape \(value.shape) does not depend on any variable that "
        + "requires a gradient (or it was computed inside noGrad)")
    if let seed {
      precondition(
        seed.shape == value.shape,
        "backward(seed:): seed shape \(seed.shape) differs from the value's shape \(value.shape)")
    }
    let order = topologicalOrder()
    var grads: [ObjectIdentifier: Tensor<Scalar>] = [:]
    grads[ObjectIdentifier(self)] = seed ?? Tensor(repeating: 1, shape: value.shape)
    for node in order.reversed() {
      guard let g = grads.removeValue(forKey: ObjectIdentifier(node)) else { continue }
      guard let pullback = node.pullback else {
        if node.requiresGrad {
          node.accumulate(g)
          gradientReady?(node)
        }
        continue
      }
      let pg = pullback(g)
      for (p, gp) in zip(node.parents, pg) where p.requiresGrad {
        guard let gp else { continue }
        precondition(
          gp.shape == p.value.shape,
          "backward: gradient of shape \(gp.shape) for an operand of shape \(p.value.shape)")
        let id = ObjectIdentifier(p)
        if grads[id] == nil {
          grads[id] = gp
        } else {
          grads[id]! += gp
        }
      }
    }
  }

  @inlinable
  func accumulate(_ g: Tensor<Scalar>) {
    if grad == nil {
      grad = g.isContiguous ? g : g.copiedContiguous()
    } else {
      grad! += g
    }
  }

  /// The nodes reachable from `self` that require gradients, parents before children.
  @inlinable
  func topologicalOrder() -> [Variable<Scalar>] {
    var order: [Variable<Scalar>] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(Variable<Scalar>, Int)] = [(self, 0)]
    visited.insert(ObjectIdentifier(self))
    while let top = stack.last {
      let (node, next) = top
      if next < node.parents.count {
        stack[stack.count - 1].1 = next + 1
        let p = node.parents[next]
        if p.requiresGrad && visited.insert(ObjectIdentifier(p)).inserted {
          stack.append((p, 0))
        }
      } else {
        order.append(node)
        stack.removeLast()
      }
    }
    return order
  }
}

extension Variable: CustomStringConvertible {
  public var description: String {
    "Variable(shape: \(value.shape), requiresGrad: \(requiresGrad))"
  }
}

/// Whether operations on variables record the graph. Off inside `noGrad { }`.
public enum GradientMode {
  @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording the autodiff graph (evaluation, optimizer updates).
///
/// ```swift
/// let accuracy = noGrad { evaluate(model, testSet) }
/// ```
@inlinable
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
  try GradientMode.$isEnabled.withValue(false) { try body() }
}

/// Reduces a gradient of a broadcast result back to an operand's `shape`: sums over the
/// leading axes the operand lacked and over its axes of length 1 that were stretched.
@inlinable
public func unbroadcast<S>(_ g: Tensor<S>, to shape: [Int]) -> Tensor<S> {
  if g.shape == shape { return g }
  let extra = g.rank - shape.count
  precondition(extra >= 0, "unbroadcast: gradient shape \(g.shape) is smaller than \(shape)")
  var axes = Array(0..<extra)
  for i in 0..<shape.count where shape[i] == 1 && g.shape[i + extra] != 1 {
    axes.append(i + extra)
  }
  let r = axes.isEmpty ? g : g.sum(axes: axes, keepDims: true)
  return r.reshaped(shape)
}
