/// A surrogate gradient: the spike is always the Heaviside step (1 where x ≥ 0), and the
/// backward pass replaces its zero derivative with `derivative(_:)`.
///
/// Conformers are small value types whose parameters are stored properties. Generic code
/// (`LIF<S: SurrogateGradient>`) is specialised per conformer, so the derivative is inlined in
/// the fused kernels; a user's own conformer works everywhere a built-in one does:
///
/// ```swift
/// struct Triangle: SurrogateGradient {
///   var width = 1.0
///   func derivative<T: TensorScalar>(_ x: T) -> T { Swift.max(0, 1 - Swift.abs(x) / T(width)) }
/// }
/// ```
public protocol SurrogateGradient: Sendable {
  /// The braintools class name, e.g. `S2NN`.
  static var name: String { get }
  /// The parameters and their current values, in declaration order, under their braintools
  /// names (for printing and for checkpoints).
  var parameters: [(name: String, value: Double)] { get }
  /// The surrogate derivative at `x`, used by the backward pass.
  func derivative<T: TensorScalar>(_ x: T) -> T
  /// The smooth primitive whose derivative is `derivative(_:)`, or nil when there is none.
  func primitive<T: TensorScalar>(_ x: T) -> T?
  /// Writes `derivative(x[i])` to `out[i]` for `count` elements. The default loops over the
  /// scalar form; a conformer may supply a vectorised kernel.
  func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int)
  /// A derivative the fused neuron kernels can evaluate inside their own reverse step, or nil
  /// (the default) for the bulk `derivative(_:into:count:)` pass. It must give the values of
  /// `derivative(_:)`.
  var fusedKernel: SurrogateKernel? { get }
}

/// A surrogate derivative that Soma's C neuron kernels evaluate inline (vectorised, inside the
/// reverse-time step), offered by a surrogate through `SurrogateGradient.fusedKernel`.
public enum SurrogateKernel: Sendable, Equatable {
  /// α·σ(αx)(1 − σ(αx)) for x < 0, β/(x + 1) for x ≥ 0 (S2NN).
  case s2nn(alpha: Double, beta: Double)
  /// 1 / (α·|x| + 1)² (InvSquareGrad, SuperSpike's).
  case inverseSquare(alpha: Double)
  /// (α/2) / (1 + (π·α·x/2)²) (Arctan).
  case arctan(alpha: Double)
}

extension SurrogateGradient {
  public static var name: String { String(describing: Self.self) }
  public var fusedKernel: SurrogateKernel? { nil }
  public var parameters: [(name: String, value: Double)] { [] }

  @inlinable
  public func primitive<T: TensorScalar>(_ x: T) -> T? { nil }

  /// The spike: 1 where x ≥ 0, else 0.
  @inlinable
  public func spike<T: TensorScalar>(_ x: T) -> T { x >= 0 ? 1 : 0 }

  @inlinable
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    for i in 0..<count { out[i] = derivative(x[i]) }
  }

  /// True when the surrogate has a smooth primitive (`primitive(_:)` is not nil).
  @inlinable
  public var hasPrimitive: Bool { primitive(0 as Double) != nil }
}

// MARK: Tensor evaluation

extension SurrogateGradient {
  /// The spike of every element: 1 where x ≥ 0, else 0.
  ///
  /// ```swift
  /// S2NN().spike(Tensor<Float>([-1, 0, 1]))   // [0, 1, 1]
  /// ```
  @inlinable
  public func spike<T: TensorScalar>(_ x: Tensor<T>) -> Tensor<T> {
    x.map { $0 >= 0 ? 1 : 0 }
  }

  /// The surrogate derivative of every element, through the bulk
  /// `derivative(_:into:count:)` hook (vectorised for the built-in types where it pays).
  ///
  /// ```swift
  /// S2NN().derivative(Tensor<Float>([-1, 0, 1]))   // [0.0707, 1, 0.5]
  /// ```
  @inlinable
  public func derivative<T: TensorScalar>(_ x: Tensor<T>) -> Tensor<T> {
    var out = Tensor<T>(uninitializedShape: x.shape)
    let n = out.count
    if n == 0 { return out }
    x.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        derivative(src.baseAddress!, into: dst.baseAddress!, count: n)
      }
    }
    return out
  }

  /// The smooth primitive of every element, or nil when the surrogate has none.
  ///
  /// ```swift
  /// Arctan().primitive(Tensor<Double>([0]))?.scalars   // [0.5]
  /// ```
  @inlinable
  public func primitive<T: TensorScalar>(_ x: Tensor<T>) -> Tensor<T>? {
    guard primitive(T.zero) != nil else { return nil }
    return x.map { primitive($0)! }
  }
}

/// The scalar loop behind the built-in types' bulk `derivative(_:into:count:)`, with the
/// element type made concrete first, so that the loop is specialised (and vectorisable) even
/// when it is reached through `any SurrogateGradient` or unspecialised generic code.
@inlinable @inline(__always)
func bulkDerivative<S: SurrogateGradient, T: TensorScalar>(
  _ s: S, _ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ count: Int
) {
  if T.self == Float.self {
    let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
    let of = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self)
    for i in 0..<count { of[i] = s.derivative(xf[i]) }
  } else if T.self == Double.self {
    let xd = UnsafeRawPointer(x).assumingMemoryBound(to: Double.self)
    let od = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Double.self)
    for i in 0..<count { od[i] = s.derivative(xd[i]) }
  } else {
    for i in 0..<count { out[i] = s.derivative(x[i]) }
  }
}
