import SomaTensor
import Testing
import _TestSupport

/// The naive triple loop in Double, for 2-D operands read by subscript.
func naiveMatmul<S: TensorScalar>(_ a: Tensor<S>, _ b: Tensor<S>) -> [S] {
  let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
  var out: [S] = []
  for i in 0..<m {
    for j in 0..<n {
      var s = 0.0
      for p in 0..<k { s += Double(a[scalarAt: i, p]) * Double(b[scalarAt: p, j]) }
      out.append(S(s))
    }
  }
  return out
}

/// A [rows, cols] matrix with the given layout, values from `seed`.
enum MatrixLayout: String, CaseIterable, Sendable {
  case normal, transposed, rowStrided, columnStrided, reversed, broadcastRow, nonContiguousCopy

  func make<S: TensorScalar>(_ rows: Int, _ cols: Int, seed: UInt64, _: S.Type) -> Tensor<S> {
    switch self {
    case .normal:
      return random([rows, cols], seed: seed)
    case .transposed:  // reaches BLAS as a transpose flag
      return random([cols, rows], seed: seed, S.self).transposed()
    case .rowStrided:  // leading dimension larger than the row
      return random([rows * 2, cols + 3], seed: seed, S.self)[.stride(by: 2), 1..<(cols + 1)]
    case .columnStrided:  // column stride 2: BLAS cannot read it directly
      return random([rows, cols * 2], seed: seed, S.self)[.all, .stride(by: 2)]
    case .reversed:
      return random([rows, cols], seed: seed, S.self)[.stride(by: -1)]
    case .broadcastRow:
      return random([1, cols], seed: seed, S.self).expanded(to: [rows, cols])
    case .nonContiguousCopy:
      return random([cols, rows], seed: seed, S.self).transposed().copiedContiguous()
    }
  }
}

struct MatmulCase: Sendable, CustomTestStringConvertible {
  var a: MatrixLayout
  var b: MatrixLayout
  var testDescription: String { "\(a.rawValue) × \(b.rawValue)" }
}

let matmulCases: [MatmulCase] = MatrixLayout.allCases.flatMap { a in
  MatrixLayout.allCases.map { b in MatmulCase(a: a, b: b) }
}

func checkMatmul<S: TensorScalar>(_ c: MatmulCase, _: S.Type) {
  for (m, k, n) in [(5, 7, 3), (1, 4, 6), (6, 1, 2), (4, 3, 1)] {
    let a = c.a.make(m, k, seed: 41, S.self)
    let b = c.b.make(k, n, seed: 42, S.self)
    let got = a.matmul(b)
    #expect(got.shape == [m, n])
    expectClose(got.scalars, naiveMatmul(a, b), atol: S(1e-5), "\(c) m\(m) k\(k) n\(n)")
  }
}

@Test("matmul of every layout pair matches a triple loop", arguments: matmulCases)
func matmulLayouts(_ c: MatmulCase) {
  checkMatmul(c, Float.self)
  checkMatmul(c, Double.self)
}

/// Batched reference: loop over the broadcast batch index, multiply the matrices naively.
func naiveBatched<S: TensorScalar>(_ a: Tensor<S>, _ b: Tensor<S>) -> (shape: [Int], values: [S]) {
  let batch = referenceBroadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)))
  var values: [S] = []
  for bi in TestSupport.indices(batch) {
    func matrix(_ t: Tensor<S>) -> Tensor<S> {
      let ib = broadcastIndex(bi, into: Array(t.shape.dropLast(2)))
      let (r, c) = (t.shape[t.rank - 2], t.shape[t.rank - 1])
      return Tensor(
        TestSupport.indices([r, c]).map { t[at: ib + $0] }, shape: [r, c])
    }
    values += naiveMatmul(matrix(a), matrix(b))
  }
  return (batch + [a.shape[a.rank - 2], b.shape[b.rank - 1]], values)
}

func checkBatched<S: TensorScalar>(_: S.Type) {
  let cases: [(Tensor<S>, Tensor<S>)] = [
    (random([2, 5, 7], seed: 1), random([2, 7, 3], seed: 2)),
    (random([2, 5, 7], seed: 3), random([7, 3], seed: 4)),  // 2-D b broadcasts
    (random([5, 7], seed: 5), random([4, 7, 3], seed: 6)),  // 2-D a broadcasts
    (random([3, 1, 5, 7], seed: 7), random([1, 2, 7, 3], seed: 8)),  // both broadcast
    (
      random([2, 7, 5], seed: 9).permuted([0, 2, 1]),
      random([2, 3, 7], seed: 10).permuted([0, 2, 1])
    ),
    (random([5, 2, 7], seed: 11).permuted([1, 0, 2]), random([2, 7, 3], seed: 12)),  // batch not outermost
    (random([1, 5, 7], seed: 13).expanded(to: [3, 5, 7]), random([3, 7, 3], seed: 14)),  // stride 0
    (random([2, 5, 14], seed: 15)[.all, .all, .stride(by: 2)], random([2, 7, 3], seed: 16)),
    (random([2, 0, 7], seed: 17), random([2, 7, 3], seed: 18)),
  ]
  for (a, b) in cases {
    let got = a.matmul(b)
    let want = naiveBatched(a, b)
    #expect(got.shape == want.shape, "\(a.shape) × \(b.shape)")
    expectClose(got.scalars, want.values, atol: S(1e-5), "\(a.shape) × \(b.shape)")
  }
}

@Test func batchedMatmulBroadcastsBatchAxes() {
  checkBatched(Float.self)
  checkBatched(Double.self)
}

func checkVectors<S: TensorScalar>(_: S.Type) {
  let m: Tensor<S> = random([5, 7], seed: 51)
  let v: Tensor<S> = random([7], seed: 52)
  let w: Tensor<S> = random([5], seed: 53)
  let asColumn = v.reshaped([7, 1])
  // 1-D · 1-D: a 0-D dot product.
  let d = v.matmul(v)
  #expect(d.shape == [])
  expectClose(d.scalar, naiveMatmul(v.reshaped([1, 7]), asColumn)[0])
  // gemv, plain, transposed and with a strided vector.
  expectClose(m.matmul(v).scalars, naiveMatmul(m, asColumn), atol: S(1e-5))
  expectClose(
    m.transposed().matmul(w).scalars, naiveMatmul(m.transposed(), w.reshaped([5, 1])),
    atol: S(1e-5))
  let sv = random([14], seed: 54, S.self)[.stride(by: 2)]
  expectClose(m.matmul(sv).scalars, naiveMatmul(m, sv.reshaped([7, 1])), atol: S(1e-5))
  let rv = random([7], seed: 55, S.self)[.stride(by: -1)]
  expectClose(m.matmul(rv).scalars, naiveMatmul(m, rv.reshaped([7, 1])), atol: S(1e-5))
  expectClose(m.matvec(v).scalars, m.matmul(v).scalars)
  // 1-D · 2-D and 1-D · batched, 2-D · 1-D batched.
  let vm = w.matmul(m)
  #expect(vm.shape == [7])
  expectClose(vm.scalars, naiveMatmul(w.reshaped([1, 5]), m), atol: S(1e-5))
  let stack: Tensor<S> = random([3, 5, 7], seed: 56)
  let left = w.matmul(stack)
  #expect(left.shape == [3, 7])
  expectClose(left.scalars, naiveBatched(w.reshaped([1, 5]), stack).values, atol: S(1e-5))
  let right = stack.matmul(v)
  #expect(right.shape == [3, 5])
  expectClose(right.scalars, naiveBatched(stack, asColumn).values, atol: S(1e-5))
  // Outer product, also of strided vectors.
  expectClose(w.outer(v).scalars, naiveMatmul(w.reshaped([5, 1]), v.reshaped([1, 7])))
  expectClose(rv.outer(sv).scalars, naiveMatmul(rv.reshaped([7, 1]), sv.reshaped([1, 7])))
  // gemm into a caller's buffer, accumulating.
  var c = Tensor<S>.ones([5, 5])
  c.withUnsafeMutableBufferPointer { p in
    Tensor.gemm(m, m.transposed(), into: p.baseAddress!, ldc: 5, alpha: 2, beta: 1)
  }
  expectClose(c.scalars, naiveMatmul(m, m.transposed()).map { 2 * $0 + 1 }, atol: S(1e-5))
}

@Test func vectorProducts() {
  checkVectors(Float.self)
  checkVectors(Double.self)
}
