import SomaTensor
import Testing
import _TestSupport

/// One row of the broadcasting table: two operand shapes and how each is laid out.
struct BroadcastCase: Sendable, CustomTestStringConvertible {
  var a: [Int]
  var la: Layout = .contiguous
  var b: [Int]
  var lb: Layout = .contiguous

  var testDescription: String { "\(a) \(la) ⊕ \(b) \(lb)" }
}

let broadcastTable: [BroadcastCase] = [
  BroadcastCase(a: [], b: []),  // 0-D with 0-D
  BroadcastCase(a: [], b: [3, 4]),  // scalar on the left
  BroadcastCase(a: [3, 4], b: []),  // scalar on the right
  BroadcastCase(a: [5], b: [5]),
  BroadcastCase(a: [4, 1], b: [1, 3]),  // both stretch
  BroadcastCase(a: [2, 3, 4], b: [4]),  // row vector
  BroadcastCase(a: [2, 1, 4], b: [3, 1]),  // leading axes added to b
  BroadcastCase(a: [1, 1, 3], b: [2, 3]),  // leading 1s on a
  BroadcastCase(a: [1], b: [3, 2, 1]),
  BroadcastCase(a: [4, 3], la: .transposed, b: [4, 3]),  // transposed operand
  BroadcastCase(a: [4, 3], la: .expanded, b: [4, 3], lb: .transposed),  // stride-0 view
  BroadcastCase(a: [3, 4], la: .strided, b: [4], lb: .reversed),  // step 2 and step −1
  BroadcastCase(a: [6, 5], la: .transposed, b: [6, 1]),
  BroadcastCase(a: [2, 3, 4], la: .reversed, b: [3, 4], lb: .expanded),
  BroadcastCase(a: [0, 3], b: [3]),  // empty
  BroadcastCase(a: [2, 0, 3], b: [1, 3]),
  BroadcastCase(a: [5, 1, 6], la: .strided, b: [1, 7, 6], lb: .strided),
  // Large enough for the tiled walk over transposed operands.
  BroadcastCase(a: [40, 33], la: .transposed, b: [33]),
  BroadcastCase(a: [20, 18], la: .transposed, b: [20, 18], lb: .transposed),
  BroadcastCase(a: [3, 20, 17], la: .transposed, b: [20, 1]),
  BroadcastCase(a: [2, 1, 9], b: [2, 70, 9], lb: .transposed),
]

/// The binary operations under test, each with its scalar definition.
enum BinaryOp: CaseIterable, Sendable {
  case add, sub, mul, div, minimum, maximum, pow, lt, le, gt, ge, eq, ne

  func apply<S: TensorScalar>(_ a: Tensor<S>, _ b: Tensor<S>) -> Tensor<S> {
    switch self {
    case .add: a + b
    case .sub: a - b
    case .mul: a * b
    case .div: a / b
    case .minimum: Tensor.minimum(a, b)
    case .maximum: Tensor.maximum(a, b)
    case .pow: Tensor.pow(a, b)
    case .lt: a .< b
    case .le: a .<= b
    case .gt: a .> b
    case .ge: a .>= b
    case .eq: a .== b
    case .ne: a .!= b
    }
  }

  func reference<S: TensorScalar>(_ x: S, _ y: S) -> S {
    switch self {
    case .add: x + y
    case .sub: x - y
    case .mul: x * y
    case .div: x / y
    case .minimum: x < y ? x : y
    case .maximum: x > y ? x : y
    case .pow: S.pow(x, y)
    case .lt: x < y ? 1 : 0
    case .le: x <= y ? 1 : 0
    case .gt: x > y ? 1 : 0
    case .ge: x >= y ? 1 : 0
    case .eq: x == y ? 1 : 0
    case .ne: x != y ? 1 : 0
    }
  }

  /// The in-place form, where one exists.
  func applyInPlace<S: TensorScalar>(_ a: inout Tensor<S>, _ b: Tensor<S>) -> Bool {
    switch self {
    case .add: a += b
    case .sub: a -= b
    case .mul: a *= b
    case .div: a /= b
    default: return false
    }
    return true
  }
}

/// The naive reference: loop over every output index and read both operands by subscript.
func naiveBinary<S: TensorScalar>(
  _ a: Tensor<S>, _ b: Tensor<S>, _ f: (S, S) -> S
) -> (shape: [Int], values: [S]) {
  let shape = referenceBroadcastShape(a.shape, b.shape)
  let values = TestSupport.indices(shape).map { i in
    f(a[at: broadcastIndex(i, into: a.shape)], b[at: broadcastIndex(i, into: b.shape)])
  }
  return (shape, values)
}

func checkBroadcast<S: TensorScalar>(_ c: BroadcastCase, _: S.Type) {
  let a = operand(c.a, c.la, seed: 1, S.self)
  let b = operand(c.b, c.lb, seed: 2, S.self)
  let aBefore = a.scalars
  let bBefore = b.scalars
  for op in BinaryOp.allCases {
    let got = op.apply(a, b)
    let want = naiveBinary(a, b, op.reference)
    #expect(got.shape == want.shape, "\(op) \(S.self)")
    #expect(got.isContiguous)
    expectClose(got.scalars, want.values, "\(op) \(S.self)")

    // In-place form when the result has a's shape.
    var inPlace = a
    if want.shape == a.shape, op.applyInPlace(&inPlace, b) {
      expectClose(inPlace.scalars, want.values, "\(op)= \(S.self)")
    }
  }
  // where(mask, a, b) with the mask broadcasting from a third shape.
  let mask = a .> Tensor<S>(1)
  let picked = Tensor.where(mask, a, b)
  let want = naiveBinary(a, b) { _, _ in 0 }
  let shape = want.shape
  let ref = TestSupport.indices(shape).map { i in
    let m = mask[at: broadcastIndex(i, into: mask.shape)]
    return m != 0
      ? a[at: broadcastIndex(i, into: a.shape)] : b[at: broadcastIndex(i, into: b.shape)]
  }
  #expect(picked.shape == shape)
  expectClose(picked.scalars, ref, "where")
  // The operands are values: no operation changed them.
  #expect(a.scalars == aBefore && b.scalars == bBefore)
}

@Test("Broadcasting matches a naive loop", arguments: broadcastTable)
func broadcasting(_ c: BroadcastCase) {
  checkBroadcast(c, Float.self)
  checkBroadcast(c, Double.self)
}

func checkScalarOperands<S: TensorScalar>(_: S.Type) {
  let a = operand([3, 4], .transposed, seed: 3, S.self)
  let x = a.scalars
  let s: S = 1.25
  expectClose((a + s).scalars, x.map { $0 + s })
  expectClose((s + a).scalars, x.map { s + $0 })
  expectClose((a - s).scalars, x.map { $0 - s })
  expectClose((s - a).scalars, x.map { s - $0 })
  expectClose((a * s).scalars, x.map { $0 * s })
  expectClose((s * a).scalars, x.map { s * $0 })
  expectClose((a / s).scalars, x.map { $0 / s })
  expectClose((s / a).scalars, x.map { s / $0 })
  #expect((a .< s).scalars == x.map { $0 < s ? 1 : 0 })
  #expect((a .>= s).scalars == x.map { $0 >= s ? 1 : 0 })
  #expect((s .> a).scalars == x.map { s > $0 ? 1 : 0 })
  #expect((a .== s).scalars == x.map { $0 == s ? 1 : 0 })
  expectClose(a.pow(3).scalars, x.map { S.pow($0, 3) })
  var b = a
  b += s
  b *= s
  b -= s
  b /= s
  expectClose(b.scalars, x.map { (($0 + s) * s - s) / s })
  #expect(a.scalars == x)
}

@Test func scalarOperandsOnEitherSide() {
  checkScalarOperands(Float.self)
  checkScalarOperands(Double.self)
}

@Test func inPlaceOnAViewLeavesTheSourceAlone() {
  let source = quantized([3, 4], seed: 9, Float.self)
  var view = source.transposed()
  view += Tensor<Float>([1, 2, 3], shape: [3])
  let want = TestSupport.indices([4, 3]).map { i in source[scalarAt: i[1], i[0]] + Float(i[1] + 1) }
  #expect(view.shape == [4, 3])
  #expect(view.scalars == want)
  #expect(source.scalars == quantized([3, 4], seed: 9, Float.self).scalars)
}

@Test func largeTransposedLayoutsCopyAndMapCorrectly() {
  let t = Tensor<Float>((0..<(3 * 40 * 50)).map { Float($0) }, shape: [3, 40, 50])
  func v(_ i: Int, _ j: Int, _ k: Int) -> Float { Float(2000 * i + 50 * j + k) }
  let perms: [[Int]] = [[0, 2, 1], [2, 1, 0], [1, 2, 0], [2, 0, 1]]
  for p in perms {
    let view = t.permuted(p)
    let want = TestSupport.indices(view.shape).map { idx -> Float in
      var src = [0, 0, 0]
      for (a, axis) in p.enumerated() { src[axis] = idx[a] }
      return v(src[0], src[1], src[2])
    }
    #expect(view.copiedContiguous().scalars == want, "copy \(p)")
    #expect(view.map { $0 * 2 }.scalars == want.map { $0 * 2 }, "map \(p)")
    var acc = Tensor<Float>.ones(view.shape)
    acc += view
    #expect(acc.scalars == want.map { $0 + 1 }, "+= \(p)")
    #expect((view - Tensor<Float>.ones(view.shape)).scalars == want.map { $0 - 1 }, "- \(p)")
  }
  // A reversed transposed view: negative strides in the tiles.
  let r = t[1].transposed()[.stride(by: -1), .stride(by: -1)]
  let want = TestSupport.indices([50, 40]).map { v(1, 39 - $0[1], 49 - $0[0]) }
  #expect(r.copiedContiguous().scalars == want)
  #expect((r + Tensor<Float>(0)).scalars == want)
}
