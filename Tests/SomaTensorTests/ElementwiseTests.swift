import SomaTensor
import Testing
import _TestSupport

func checkElementwise<S: TensorScalar>(_: S.Type) {
  // A strided operand, so the kernels' non-contiguous path runs too.
  let x = (random([6, 5], seed: 11, S.self) * 3).transposed()
  let v = x.scalars
  #expect((-x).scalars == v.map { -$0 })
  #expect(x.abs().scalars == v.map { Swift.abs($0) })
  expectClose(x.exp().scalars, v.map { S.exp($0) })
  expectClose(x.abs().log().scalars, v.map { S.log(Swift.abs($0)) })
  expectClose(x.abs().sqrt().scalars, v.map { Swift.abs($0).squareRoot() })
  #expect(x.square().scalars == v.map { $0 * $0 })
  expectClose(x.tanh().scalars, v.map { S.tanh($0) })
  expectClose(x.sigmoid().scalars, v.map { 1 / (1 + S.exp(-$0)) })
  #expect(x.relu().scalars == v.map { Swift.max($0, 0) })
  #expect(x.sign().scalars == v.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) })
  #expect(x.heaviside().scalars == v.map { $0 >= 0 ? 1 : 0 })
  #expect(x.clamped(to: -1...0.5).scalars == v.map { Swift.min(Swift.max($0, -1), 0.5) })
  #expect(x.clamped(min: 0).scalars == v.map { Swift.max($0, 0) })
  #expect(x.map { $0 * 2 + 1 }.scalars == v.map { $0 * 2 + 1 })
  var y = x
  y.updateEach { $0 - 1 }
  #expect(y.scalars == v.map { $0 - 1 })
  #expect(x.scalars == v)

  // Edge values.
  let edges = Tensor<S>([-1e4, -100, -0.0, 0, 100, 1e4])
  let s = edges.sigmoid().scalars
  #expect(s.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
  #expect(s[0] == 0 && s[5] == 1 && s[2] == 0.5 && s[3] == 0.5)
  #expect(edges.tanh().scalars.allSatisfy { $0.isFinite })
  #expect(edges.heaviside().scalars == [0, 0, 1, 1, 1, 1])
  #expect(Tensor<S>([.nan]).sign().scalars[0].isNaN)
}

@Test func elementwiseOpsMatchTheirScalarDefinitions() {
  checkElementwise(Float.self)
  checkElementwise(Double.self)
}

// MARK: Reductions

/// A naive reduction: for each output index, loop over every input index that maps to it.
func naiveReduce<S: TensorScalar>(
  _ t: Tensor<S>, axes: [Int], keepDims: Bool, _ f: ([S]) -> S
) -> (shape: [Int], values: [S]) {
  let red = Set(axes.map { $0 < 0 ? $0 + t.rank : $0 })
  let keptShape = (0..<t.rank).map { red.contains($0) ? 1 : t.shape[$0] }
  var groups = [[S]](repeating: [], count: TestSupport.indices(keptShape).count)
  let strides = (0..<t.rank).map { a in keptShape[(a + 1)...].reduce(1, *) }
  for i in TestSupport.indices(t.shape) {
    var g = 0
    for a in 0..<t.rank where !red.contains(a) { g += i[a] * strides[a] }
    groups[g].append(t[at: i])
  }
  let shape = keepDims ? keptShape : (0..<t.rank).filter { !red.contains($0) }.map { t.shape[$0] }
  return (shape, groups.map(f))
}

let axisSets: [[Int]] = [
  [], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2], [-1], [2, 0], [-3, -2],
]

func checkReductions<S: TensorScalar>(_ axes: [Int], _: S.Type) {
  let dense: Tensor<S> = random([3, 4, 5], seed: 21)
  let permuted = random([5, 3, 4], seed: 22, S.self).permuted([1, 2, 0])
  for t in [dense, permuted] {
    for keep in [false, true] {
      let sum = naiveReduce(t, axes: axes, keepDims: keep) { $0.reduce(0, +) }
      let got = t.sum(axes: axes, keepDims: keep)
      #expect(got.shape == sum.shape, "sum \(axes) keepDims \(keep)")
      expectClose(got.scalars, sum.values, atol: S(1e-5), "sum \(axes)")
      let mean = naiveReduce(t, axes: axes, keepDims: keep) { $0.reduce(0, +) / S($0.count) }
      expectClose(t.mean(axes: axes, keepDims: keep).scalars, mean.values, atol: S(1e-6), "mean")
      let mx = naiveReduce(t, axes: axes, keepDims: keep) { $0.max()! }
      #expect(t.max(axes: axes, keepDims: keep).scalars == mx.values, "max \(axes)")
      #expect(t.max(axes: axes, keepDims: keep).shape == mx.shape)
      let mn = naiveReduce(t, axes: axes, keepDims: keep) { $0.min()! }
      #expect(t.min(axes: axes, keepDims: keep).scalars == mn.values, "min \(axes)")
      let lse = naiveReduce(t, axes: axes, keepDims: keep) { g in
        S.log(g.map { S.exp($0) }.reduce(0, +))
      }
      let gotLSE = t.logSumExp(axes: axes, keepDims: keep)
      #expect(gotLSE.shape == lse.shape)
      expectClose(gotLSE.scalars, lse.values, atol: S(1e-5), "logSumExp \(axes)")
    }
  }
}

@Test("Reductions over axis sets match a naive loop", arguments: axisSets)
func reductions(_ axes: [Int]) {
  checkReductions(axes, Float.self)
  checkReductions(axes, Double.self)
}

func checkArgmaxAndSoftmax<S: TensorScalar>(_: S.Type) {
  let t = quantized([4, 5, 3], seed: 31, S.self).transposed(0, 1)  // ties included
  for axis in 0..<3 {
    let got = t.argmax(axis: axis)
    let want = naiveReduce(t, axes: [axis], keepDims: false) { g in
      S(g.firstIndex(of: g.max()!)!)
    }
    #expect(got.scalars == want.values, "argmax axis \(axis)")
    #expect(
      t.argmax(axis: axis, keepDims: true).shape == (0..<3).map { $0 == axis ? 1 : t.shape[$0] })
  }

  let x = random([3, 7], seed: 32, S.self) * 4
  let sm = x.softmax(axis: 1)
  let ls = x.logSoftmax(axis: 1)
  for r in 0..<3 {
    let row = (0..<7).map { x[scalarAt: r, $0] }
    let z = row.map { S.exp($0) }.reduce(0, +)
    expectClose((0..<7).map { sm[scalarAt: r, $0] }, row.map { S.exp($0) / z })
    expectClose((0..<7).map { ls[scalarAt: r, $0] }, row.map { $0 - S.log(z) }, atol: S(1e-5))
  }
  expectClose(x.softmax(axis: 0).sum(axes: [0]).scalars, [S](repeating: 1, count: 7))

  // Logits of ±1e4 stay finite.
  let big = Tensor<S>([1e4, -1e4, 0, 1e4 - 1, -1e4, -1e4], shape: [2, 3])
  let lse = big.logSumExp(axes: [1])
  #expect(lse.scalars.allSatisfy { $0.isFinite })
  expectClose(lse[scalarAt: 0], 1e4, rtol: S(1e-6))
  expectClose(lse[scalarAt: 1], 1e4 - 1 + S.log(1 + 2 * S.exp(-(1e4 - 1))), rtol: S(1e-6))
  let p = big.softmax(axis: 1)
  #expect(p.scalars.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 })
  expectClose(p.sum(axes: [1]).scalars, [1, 1])
  expectClose(p[scalarAt: 0, 0], 1)
  let lp = big.logSoftmax(axis: 1)
  #expect(lp.scalars.allSatisfy { $0.isFinite })
  expectClose(lp[scalarAt: 0, 0], 0, atol: S(1e-3))
  expectClose(lp[scalarAt: 0, 1], -2e4, rtol: S(1e-6))
  let all = Tensor<S>([-1e4, -1e4]).logSumExp()
  expectClose(all.scalar, -1e4 + S.log(2), rtol: S(1e-6))
  #expect(Tensor<S>([-.infinity, -.infinity]).logSumExp().scalar == -.infinity)
}

@Test func argmaxSoftmaxAndLogSumExpAreStable() {
  checkArgmaxAndSoftmax(Float.self)
  checkArgmaxAndSoftmax(Double.self)
}

extension Tensor {
  fileprivate func transposed(_ a: Int, _ b: Int) -> Tensor {
    var axes = Array(0..<rank)
    axes.swapAt(a, b)
    return permuted(axes)
  }
}

@Test func longFloatSumsStayAccurate() {
  // 2²⁰ copies of 0.1: a running Float sum drifts by about 1 %; a pairwise one stays close.
  let n = 1 << 20
  let t = Tensor<Float>(repeating: 0.1, shape: [n])
  let exact = Double(Float(0.1)) * Double(n)
  #expect(Swift.abs(Double(t.sum().scalar) - exact) / exact < 1e-5)
  #expect(Swift.abs(Double(t.mean().scalar) - Double(Float(0.1))) < 1e-6)
  // Along the last axis of a matrix, and over a strided view.
  let m = Tensor<Float>(repeating: 0.1, shape: [4, n / 4])
  for v in m.sum(axes: [1]).scalars { #expect(Swift.abs(Double(v) - exact / 4) / exact < 1e-5) }
  let strided = Tensor<Float>(repeating: 0.1, shape: [n])[.stride(by: 2)]
  #expect(Swift.abs(Double(strided.sum().scalar) - exact / 2) / exact < 1e-5)
}
