import Testing

@testable import SomaNN

/// One differentiable operation to check: input shapes, how to draw inputs, and the function.
struct OpCase: Sendable, CustomStringConvertible {
  var name: String
  var shapes: [[Int]]
  var positive = false
  var f: @Sendable ([Variable<Double>]) -> Variable<Double>
  var description: String { name }
}

let opCases: [OpCase] = makeOpCases()

func makeOpCases() -> [OpCase] {
  var c: [OpCase] = []
  c.append(
    OpCase(name: "add broadcast", shapes: [[2, 3, 4], [3, 1]]) { $0[0] + $0[1] })
  c.append(
    OpCase(name: "sub broadcast", shapes: [[4], [2, 3, 4]]) { $0[0] - $0[1] })
  c.append(
    OpCase(name: "mul broadcast", shapes: [[2, 1, 4], [3, 1]]) { $0[0] * $0[1] })
  c.append(
    OpCase(name: "div broadcast", shapes: [[2, 3], [3]], positive: true) { $0[0] / $0[1] })
  c.append(
    OpCase(name: "scalar ops", shapes: [[3, 2]], positive: true) {
      let a: Variable<Double> = (2 - $0[0] * 3 + 1.5) / 2
      let b: Variable<Double> = 4 / $0[0]
      return a + b - (-$0[0])
    })
  c.append(
    OpCase(name: "exp", shapes: [[3, 4]]) { $0[0].exp() })
  c.append(
    OpCase(name: "log", shapes: [[3, 4]], positive: true) { $0[0].log() })
  c.append(
    OpCase(name: "relu", shapes: [[3, 4]]) { $0[0].relu() })
  c.append(
    OpCase(name: "sigmoid", shapes: [[3, 4]]) { $0[0].sigmoid() })
  c.append(
    OpCase(name: "tanh", shapes: [[3, 4]]) { $0[0].tanh() })
  c.append(
    OpCase(name: "square", shapes: [[3, 4]]) { $0[0].square() })
  c.append(
    OpCase(name: "sqrt", shapes: [[3, 4]], positive: true) { $0[0].sqrt() })
  c.append(
    OpCase(name: "abs", shapes: [[3, 4]]) { $0[0].abs() })
  c.append(
    OpCase(name: "where", shapes: [[2, 3], [3]]) { v in
      Variable.where(Tensor([1, 0, 1, 0, 0, 1], shape: [2, 3]), v[0], v[1])
    })
  c.append(
    OpCase(name: "reshape", shapes: [[2, 6]]) { $0[0].reshaped(3, -1) * $0[0].reshaped(3, 4) })
  c.append(
    OpCase(name: "transpose", shapes: [[2, 3], [3, 2]]) { $0[0].transposed() * $0[1] })
  c.append(
    OpCase(name: "permute", shapes: [[2, 3, 4]]) { $0[0].permuted([2, 0, 1]).square() })
  c.append(
    OpCase(name: "expand", shapes: [[3, 1]]) { $0[0].expanded(to: [2, 3, 4]).square() })
  c.append(
    OpCase(name: "slice", shapes: [[3, 5, 2]]) { $0[0].slice(axis: 1, 1..<4).square() })
  c.append(
    OpCase(name: "select", shapes: [[4, 3]]) { $0[0][2] * $0[0].select(axis: 1, 0).sum() })
  c.append(
    OpCase(name: "concat", shapes: [[2, 3], [2, 1]]) {
      Variable.concatenate([$0[0], $0[1], $0[0]], axis: 1).square()
    })
  c.append(
    OpCase(name: "stack", shapes: [[2, 3], [2, 3]]) { Variable.stack([$0[0], $0[1]]).square() })
  c.append(
    OpCase(name: "sum axes", shapes: [[2, 3, 4]]) { $0[0].sum(axes: [0, 2]).square() })
  c.append(
    OpCase(name: "sum keepDims", shapes: [[2, 3]]) { $0[0] * $0[0].sum(axis: 1, keepDims: true) })
  c.append(
    OpCase(name: "sum all", shapes: [[2, 3]]) { $0[0].sum().square() })
  c.append(
    OpCase(name: "mean", shapes: [[2, 3, 4]]) { $0[0].mean(axes: [1]).square() + $0[0].mean() })
  c.append(
    OpCase(name: "max over axis", shapes: [[5, 2, 3]]) { $0[0].max(axis: 0).square() })
  c.append(
    OpCase(name: "logSoftmax", shapes: [[3, 5]]) { $0[0].logSoftmax(axis: 1) })
  c.append(
    OpCase(name: "softmax", shapes: [[3, 5]]) { $0[0].softmax(axis: 0) })
  c.append(
    OpCase(name: "matmul 2-D", shapes: [[3, 4], [4, 2]]) { $0[0].matmul($0[1]) })
  c.append(
    OpCase(name: "matmul transposed", shapes: [[4, 3], [2, 4]]) {
      $0[0].transposed().matmul($0[1].transposed())
    })
  c.append(
    OpCase(name: "matmul batched", shapes: [[2, 3, 4], [4, 5]]) { $0[0].matmul($0[1]) })
  c.append(
    OpCase(name: "matmul batch broadcast", shapes: [[2, 1, 3, 4], [3, 4, 2]]) {
      $0[0].matmul($0[1])
    })
  c.append(
    OpCase(name: "reused operand", shapes: [[3]]) { v in (v[0] * v[0] + v[0].exp()) * v[0] })
  return c
}

@Suite("Autodiff")
struct AutodiffTests {
  @Test("finite differences agree with backward()", arguments: opCases)
  func gradientCheck(_ op: OpCase) {
    var rng = SomaRandom(seed: 42)
    let inputs = op.shapes.map { s -> Tensor<Double> in
      let t = Tensor<Double>.normal(s, using: &rng)
      return op.positive ? t.abs() + 0.5 : t
    }
    let r = GradientCheck.run(inputs, op.f)
    #expect(r.maxError < 1e-7, "\(op.name): max error \(r.maxError) at \(r.worst)")
  }

  @Test func gradientCheckerCatchesAWrongGradient() {
    // A deliberately wrong pullback (factor 2 missing) must be reported.
    let r = GradientCheck.run([Tensor<Double>([0.3, -1.2, 2.0])]) { v in
      let x = v[0].value
      return .record(x.square(), parents: [v[0]]) { g in [g * x] }
    }
    #expect(r.maxError > 0.1)
  }

  @Test func gradientsAccumulateAcrossBackwardCalls() {
    let w = Variable(Tensor<Double>([1, 2, 3]), requiresGrad: true)
    (w * w).sum().backward()
    #expect(w.grad == Tensor([2, 4, 6]))
    (w * 3).sum().backward()
    #expect(w.grad == Tensor([5, 7, 9]))
    w.zeroGrad()
    #expect(w.grad == nil)
  }

  @Test func noGradAndDetachRecordNothing() {
    let w = Variable(Tensor<Float>([1, 2]), requiresGrad: true)
    let y = noGrad { w * w }
    #expect(!y.requiresGrad)
    let z = (w.detached() * w).sum()
    z.backward()
    #expect(w.grad == Tensor([1, 2]))  // only through the non-detached factor
  }

  @Test func spikeUsesTheSurrogateDerivativeBackward() {
    struct Triangle: SurrogateGradient {
      func derivative<T: TensorScalar>(_ x: T) -> T { Swift.max(0, 1 - Swift.abs(x)) }
    }
    let x = Variable(Tensor<Double>([-2, -0.5, 0, 0.25, 3]), requiresGrad: true)
    let s = x.spike(surrogate: Triangle())
    #expect(s.value == Tensor([0, 0, 1, 1, 1]))
    (s * Tensor([1, 2, 3, 4, 5])).sum().backward()
    #expect(x.grad == Tensor([0, 1, 3, 3, 0]))
  }
}
