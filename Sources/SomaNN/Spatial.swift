internal import COpenBLAS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// What the image layers (Conv2d, the pools, BatchNorm, Flatten) share: their window sizes,
// how they read [T, B, C, H, W] against [B, C, H, W] input, and how they split work over
// threads.

/// A height and a width: a kernel size, stride, padding or dilation. An integer means the same
/// for both (`3` is 3 × 3), as in PyTorch; `[3, 5]` is 3 high and 5 wide.
public struct Size2D: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral,
  ExpressibleByArrayLiteral
{
  public var height: Int
  public var width: Int

  @inlinable public init(_ height: Int, _ width: Int) {
    (self.height, self.width) = (height, width)
  }
  @inlinable public init(_ both: Int) { self.init(both, both) }
  @inlinable public init(integerLiteral value: Int) { self.init(value, value) }
  public init(arrayLiteral elements: Int...) {
    precondition(
      elements.count == 2, "Size2D: an array literal needs [height, width], got \(elements)")
    self.init(elements[0], elements[1])
  }

  @inlinable var pair: (h: Int, w: Int) { (height, width) }
  public var description: String { height == width ? "\(height)" : "(\(height), \(width))" }

  /// Throws unless both values are at least `minimum`.
  func check(_ name: String, layer: String, minimum: Int) throws(SomaNNError) {
    for v in [height, width] where v < minimum {
      throw .invalidHyperparameter(
        layer: layer, name: name, value: Double(v), allowed: "≥ \(minimum)")
    }
  }
}

/// Whether a layer that behaves differently in training and in evaluation (`BatchNorm2d`,
/// `BatchNorm1d`, `Dropout`) is training.
public enum LayerMode: Sendable, Equatable {
  /// Training while the autodiff tape records (a training step), evaluating inside `noGrad`
  /// (evaluation, `CompiledNetwork.evaluate`). The default.
  case automatic
  /// Always training: batch statistics, dropout on (PyTorch's `model.train()`).
  case training
  /// Always evaluating: running statistics, dropout off (PyTorch's `model.eval()`).
  case evaluation

  /// True when a layer in this mode trains now.
  @inlinable public var isTraining: Bool {
    switch self {
    case .automatic: GradientMode.isEnabled
    case .training: true
    case .evaluation: false
    }
  }
}

/// A layer with a training and an evaluation behaviour. The mode lives in a shared box, so
/// setting it on a copy (or through `Sequential.setMode(_:)`) sets it for the layer.
public protocol ModalLayer {
  var mode: LayerMode { get nonmutating set }
}

extension Sequential {
  /// Sets the mode of every layer that has one (nested `Sequential`s included), like PyTorch's
  /// `model.train()` / `model.eval()`.
  ///
  /// ```swift
  /// net.setMode(.evaluation)   // running BatchNorm statistics, no dropout
  /// ```
  public func setMode(_ mode: LayerMode) {
    for layer in layers {
      if let inner = layer.base as? Sequential<Scalar> {
        inner.setMode(mode)
      } else if let modal = layer.base as? any ModalLayer {
        modal.mode = mode
      }
    }
  }
}

/// Image input read as a batch of [C, H, W] images: multi-step [T, B, C, H, W] with time folded
/// into the batch, or [N, C, H, W].
@usableFromInline
struct ImageBatch: Sendable {
  /// The leading axes ([T, B] or [N]).
  @usableFromInline let lead: [Int]
  @usableFromInline let channels: Int
  @usableFromInline let height: Int
  @usableFromInline let width: Int
  @inlinable var images: Int { lead.reduce(1, *) }

  @inlinable
  init(_ shape: [Int], layer: String) {
    precondition(
      shape.count == 4 || shape.count == 5,
      "\(layer): input must be [T, batch, C, H, W] or [batch, C, H, W], got shape \(shape)")
    lead = Array(shape.dropLast(3))
    (channels, height, width) = (shape[shape.count - 3], shape[shape.count - 2], shape.last!)
  }
}

/// True when every slice of `x` along axis 0 holds the same values (a direct-coded input: the
/// same image at each time step): free for a stride-0 (expanded) axis, otherwise one comparison
/// pass that stops at the first difference.
@inlinable
func repeatsOverTime<T: TensorScalar>(_ x: Tensor<T>) -> Bool {
  guard x.rank >= 2, x.shape[0] > 1 else { return false }
  if x.strides[0] == 0 { return true }
  guard x.isContiguous else { return false }
  let n = x.count / x.shape[0]
  return x.withUnsafeBufferPointer { p in
    for t in 1..<x.shape[0] {
      let base = t * n
      for i in 0..<n where p[base + i] != p[i] { return false }
    }
    return true
  }
}

/// The first time slice of a tensor that repeats over axis 0, contiguous.
@inlinable
func firstSlice<T: TensorScalar>(_ x: Tensor<T>) -> Tensor<T> {
  x[0].contiguous()
}

/// `y` [rest…] repeated `steps` times along a new axis 0, as a stride-0 view (no copy).
@inlinable
func repeated<T: TensorScalar>(_ y: Tensor<T>, steps: Int) -> Tensor<T> {
  y.unsqueezed(axis: 0).expanded(to: [steps] + y.shape)
}

/// True when `v` is one slice repeated over axis 0 (a stride-0 view) that an operation produced:
/// a direct-coded input after a layer that ran once per image. Its producer depends on the
/// gradient only through the sum over time, so a consumer may send back a tied gradient
/// (`tiedGradient`) instead of T separate slices. Not for leaves: a leaf's `grad` is read per
/// step.
@inlinable
func isTiedOverTime<T: TensorScalar>(_ v: Variable<T>) -> Bool {
  guard !v.isLeaf else { return false }
  let x = v.value
  return x.rank >= 2 && x.shape[0] > 1 && x.strides[0] == 0
}

/// The gradient of a tied value whose per-step gradients sum to `sum` [rest…]: `sum` / T at
/// every step, as a stride-0 view (its sum over time is `sum`, exactly when T is a power of
/// two, else within rounding). `sum` is scaled in place.
@inlinable
func tiedGradient<T: TensorScalar>(sum: Tensor<T>, steps: Int) -> Tensor<T> {
  var s = sum
  let k = 1 / T(steps)
  s.withUnsafeMutableBufferPointer { p in _vecScale(p.baseAddress!, k, p.count) }
  return repeated(s, steps: steps)
}

/// A [T, …] gradient summed over axis 0 as `factor` × `slice`: a tied gradient (stride 0 over
/// time) is its one slice, read in place, and factor T; any other is summed (factor 1).
/// Consumers linear in the gradient run on `slice` and scale their (small) results by `factor`
/// instead of copying and scaling the slice.
@inlinable
func timeSum<T: TensorScalar>(_ g: Tensor<T>) -> (slice: Tensor<T>, factor: T) {
  let steps = g.shape[0]
  if steps > 1 && g.strides[0] == 0 { return (g[0].contiguous(), T(steps)) }
  return (sumOverTime(g), 1)
}

/// The tied gradient whose per-step gradients sum to `factor` × `slice` (see `timeSum`):
/// `slice` itself repeated when factor is T (no pass over it), else `tiedGradient(sum:)`.
@inlinable
func tiedGradient<T: TensorScalar>(_ slice: Tensor<T>, factor: T, steps: Int) -> Tensor<T> {
  if factor == T(steps) { return repeated(slice, steps: steps) }
  var s = slice
  if factor != 1 { s.withUnsafeMutableBufferPointer { p in _vecScale(p.baseAddress!, factor, p.count) } }
  return tiedGradient(sum: s, steps: steps)
}

/// Σ over axis 0 of a [T, …] gradient, contiguous: T × one slice when the gradient is tied
/// (stride 0 over time).
@inlinable
func sumOverTime<T: TensorScalar>(_ g: Tensor<T>) -> Tensor<T> {
  let steps = g.shape[0]
  if steps > 1 && g.strides[0] == 0 {
    var s = g[0].copiedContiguous()
    let k = T(steps)
    s.withUnsafeMutableBufferPointer { p in _vecScale(p.baseAddress!, k, p.count) }
    return s
  }
  let gc = g.contiguous()
  let n = gc.count / Swift.max(steps, 1)
  var out = Tensor<T>(uninitializedShape: Array(gc.shape.dropFirst()))
  gc.withUnsafeBufferPointer { pg in
    out.withUnsafeMutableBufferPointer { po in
      po.baseAddress!.update(from: pg.baseAddress!, count: n)
      for t in 1..<Swift.max(steps, 1) { _vecAdd(po.baseAddress!, pg.baseAddress! + t * n, n) }
    }
  }
  return out
}

/// How many parts to split `work` independent pieces into: the cores when OpenBLAS runs one
/// thread (the setting Soma's training uses; each part then runs its own GEMMs), one when
/// OpenBLAS runs several (its threads split each GEMM, and two levels would oversubscribe).
@usableFromInline
func spatialParts(_ work: Int, usesBLAS: Bool) -> Int {
  if usesBLAS && openblas_get_num_threads() > 1 { return 1 }
  return Swift.max(1, Swift.min(work, spatialCores))
}

/// Runs `body(part)` for every part: on the cores, or one after another on this thread while
/// OpenBLAS runs several threads (its GEMMs inside the parts would oversubscribe the cores).
/// Callers that sum partial results per part choose `parts` without looking at OpenBLAS
/// (`spatialParts(_, usesBLAS: false)`), so the sums do not depend on its thread count.
@usableFromInline
func parallelAroundBLAS(_ parts: Int, _ body: (Int) -> Void) {
  if openblas_get_num_threads() > 1 {
    for part in 0..<parts { body(part) }
  } else {
    parallel(parts, body)
  }
}

@usableFromInline
let spatialCores: Int = {
  #if canImport(Glibc) || canImport(Darwin)
    return Swift.max(1, Swift.min(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), 16))
  #else
    return 1
  #endif
}()

/// [lo, hi) of part `part` when `count` items are split into `parts` nearly equal parts.
@inlinable
func partRange(_ part: Int, of parts: Int, count: Int) -> (Int, Int) {
  (count * part / parts, count * (part + 1) / parts)
}
