import SomaTensor
import _TestSupport

/// A tensor of `shape` with values 0.5, 0.75, …, 1.75 (a few repeats so comparisons meet ties),
/// drawn from `seed`.
func quantized<S: TensorScalar>(_ shape: [Int], seed: UInt64, _: S.Type = S.self) -> Tensor<S> {
  var g = SomaRandom(seed: seed)
  let n = shape.reduce(1, *)
  return Tensor((0..<n).map { _ in S(0.5) + S(0.25) * S(g.next() % 6) }, shape: shape)
}

/// Uniform values in [-1, 1) from `seed`.
func random<S: TensorScalar>(_ shape: [Int], seed: UInt64, _: S.Type = S.self) -> Tensor<S> {
  var g = SomaRandom(seed: seed)
  return Tensor<S>.uniform(shape, low: -1, high: 1, using: &g)
}

/// How a test operand is laid out in memory.
enum Layout: String, Sendable, CustomStringConvertible {
  /// Freshly allocated, row-major.
  case contiguous
  /// The last two axes swapped in storage (a transposed view; rank ≥ 2).
  case transposed
  /// Axis 0 broadcast from length 1 with stride 0.
  case expanded
  /// Every other element of a tensor twice as long in the last axis.
  case strided
  /// Axis 0 read backwards (a negative stride).
  case reversed

  var description: String { rawValue }
}

/// A tensor of `shape` with the values of `quantized(shape, seed)` laid out as `layout` asks.
func operand<S: TensorScalar>(_ shape: [Int], _ layout: Layout, seed: UInt64, _: S.Type)
  -> Tensor<S>
{
  let dense: Tensor<S> = quantized(shape, seed: seed)
  switch layout {
  case .contiguous:
    return dense
  case .transposed:  // the last two axes swapped in storage
    precondition(shape.count >= 2)
    var axes = Array(0..<shape.count)
    axes.swapAt(shape.count - 2, shape.count - 1)
    return dense.permuted(axes).copiedContiguous().permuted(axes)
  case .expanded:
    precondition(!shape.isEmpty)
    var one = shape
    one[0] = 1
    return dense[0..<Swift.min(1, shape[0])].copiedContiguous().reshaped(one).expanded(to: shape)
  case .strided:
    precondition(!shape.isEmpty)
    // Build the wide buffer by index arithmetic, not through the slicing under test.
    let last = shape[shape.count - 1]
    let values = dense.scalars
    var wide = [S](repeating: -7, count: values.count * 2)
    for e in 0..<values.count { wide[(e / last) * 2 * last + 2 * (e % last)] = values[e] }
    var wideShape = shape
    wideShape[shape.count - 1] *= 2
    let big = Tensor<S>(wide, shape: wideShape)
    var ranges: [any TensorRangeExpression] = Array(repeating: TensorSlice.all, count: shape.count)
    ranges[shape.count - 1] = TensorSlice.stride(by: 2)
    return big.slice(ranges)
  case .reversed:
    precondition(!shape.isEmpty)
    // Store the blocks of axis 0 in reverse order, then read them back with step -1.
    let values = dense.scalars
    let block = shape[0] == 0 ? 0 : values.count / shape[0]
    var stored: [S] = []
    for r in (0..<shape[0]).reversed() { stored += values[(r * block)..<((r + 1) * block)] }
    return Tensor<S>(stored, shape: shape)[.stride(by: -1)]
  }
}

extension Tensor {
  /// The variadic slice subscript with an array of ranges.
  func slice(_ ranges: [any TensorRangeExpression]) -> Tensor {
    switch ranges.count {
    case 1: return self[ranges[0]]
    case 2: return self[ranges[0], ranges[1]]
    case 3: return self[ranges[0], ranges[1], ranges[2]]
    case 4: return self[ranges[0], ranges[1], ranges[2], ranges[3]]
    default: fatalError("slice: up to 4 ranges")
    }
  }

  mutating func setSlice(_ ranges: [any TensorRangeExpression], _ v: Tensor) {
    switch ranges.count {
    case 1: self[ranges[0]] = v
    case 2: self[ranges[0], ranges[1]] = v
    case 3: self[ranges[0], ranges[1], ranges[2]] = v
    case 4: self[ranges[0], ranges[1], ranges[2], ranges[3]] = v
    default: fatalError("setSlice: up to 4 ranges")
    }
  }
}

/// The index into an operand of shape `shape` that output index `out` reads under NumPy
/// broadcasting (right-aligned; a length-1 axis always reads index 0).
func broadcastIndex(_ out: [Int], into shape: [Int]) -> [Int] {
  let lead = out.count - shape.count
  return (0..<shape.count).map { shape[$0] == 1 ? 0 : out[lead + $0] }
}

/// NumPy's broadcast shape, computed independently of Soma.
func referenceBroadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
  let r = Swift.max(a.count, b.count)
  let pa = Array(repeating: 1, count: r - a.count) + a
  let pb = Array(repeating: 1, count: r - b.count) + b
  return (0..<r).map { pa[$0] == 1 ? pb[$0] : pa[$0] }
}
