import Testing

@testable import SomaNN

@Suite("Optimizers")
struct OptimizerTests {
  let p0: [Double] = [1, -2, 0.5]
  let g1: [Double] = [0.5, 0.1, -0.3]
  let g2: [Double] = [-0.2, 0.4, 0.05]

  func param() -> Variable<Double> { Variable(Tensor(p0), requiresGrad: true) }

  func close(_ t: Tensor<Double>, _ want: [Double], _ tol: Double = 1e-12) -> Bool {
    zip(t.scalars, want).allSatisfy { Swift.abs($0 - $1) <= tol }
  }

  @Test func sgdWithMomentumAndWeightDecay() {
    let p = param()
    var opt = SGD(parameters: [p], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
    p.grad = Tensor(g1)
    opt.step()
    let d1 = zip(g1, p0).map { $0 + 0.01 * $1 }
    let p1 = zip(p0, d1).map { $0 - 0.1 * $1 }
    #expect(close(p.value, p1))
    p.grad = Tensor(g2)
    opt.step()
    let d2 = zip(g2, p1).map { $0 + 0.01 * $1 }
    let buf = zip(d1, d2).map { 0.9 * $0 + $1 }
    #expect(close(p.value, zip(p1, buf).map { $0 - 0.1 * $1 }))
  }

  @Test func sgdNesterov() {
    let p = param()
    var opt = SGD(parameters: [p], learningRate: 0.05, momentum: 0.8, nesterov: true)
    p.grad = Tensor(g1)
    opt.step()
    let p1 = zip(p0, g1).map { $0 - 0.05 * ($1 + 0.8 * $1) }
    #expect(close(p.value, p1))
    p.grad = Tensor(g2)
    opt.step()
    let buf = zip(g1, g2).map { 0.8 * $0 + $1 }
    let p2 = (0..<3).map { p1[$0] - 0.05 * (g2[$0] + 0.8 * buf[$0]) }
    #expect(close(p.value, p2))
  }

  @Test func plainSGDSkipsParametersWithoutGradient() {
    let p = param()
    let q = param()
    var opt = SGD(parameters: [p, q], learningRate: 0.5)
    p.grad = Tensor(g1)
    opt.step()
    #expect(close(p.value, zip(p0, g1).map { $0 - 0.5 * $1 }))
    #expect(q.value == Tensor(p0))
  }

  func adamReference(decoupled: Bool, wd: Double) -> [Double] {
    let lr = 0.01
    let b1 = 0.9
    let b2 = 0.999
    let eps = 1e-8
    var p = p0
    var m = [0.0, 0, 0]
    var v = [0.0, 0, 0]
    for (t, g) in [g1, g2].enumerated() {
      let step = Double(t + 1)
      for i in 0..<3 {
        let d = decoupled ? g[i] : g[i] + wd * p[i]
        if decoupled { p[i] *= 1 - lr * wd }
        m[i] = b1 * m[i] + (1 - b1) * d
        v[i] = b2 * v[i] + (1 - b2) * d * d
        let mHat = m[i] / (1 - Double.pow(b1, step))
        let vHat = v[i] / (1 - Double.pow(b2, step))
        p[i] -= lr * mHat / (vHat.squareRoot() + eps)
      }
    }
    return p
  }

  @Test(arguments: [(false, 0.0), (false, 0.1), (true, 0.1)])
  func adamTwoStepsMatchTheTextbookFormula(decoupled: Bool, wd: Double) {
    let p = param()
    var opt =
      decoupled
      ? AdamW(parameters: [p], learningRate: 0.01, weightDecay: wd)
      : Adam(parameters: [p], learningRate: 0.01, weightDecay: wd)
    p.grad = Tensor(g1)
    opt.step()
    p.grad = Tensor(g2)
    opt.step()
    #expect(opt.stepCount == 2)
    #expect(close(p.value, adamReference(decoupled: decoupled, wd: wd), 1e-12))
  }

  @Test func clipByGlobalNorm() {
    let a = Variable(Tensor<Double>([0, 0]), requiresGrad: true)
    let b = Variable(Tensor<Double>([0]), requiresGrad: true)
    a.grad = Tensor([3, 0])
    b.grad = Tensor([4])
    let norm = clipGradientNorm([a, b], maxNorm: 1)
    #expect(Swift.abs(norm - 5) < 1e-12)
    #expect(close(a.grad!, [0.6, 0], 1e-6))
    #expect(close(b.grad!, [0.8], 1e-6))
    clipGradientNorm([a, b], maxNorm: 10)  // under the bound: unchanged
    #expect(close(b.grad!, [0.8], 1e-6))
  }

  @Test func schedules() {
    let s = StepDecay(initial: 1, stepSize: 10, gamma: 0.5)
    #expect(s.learningRate(at: 0) == 1)
    #expect(s.learningRate(at: 9) == 1)
    #expect(s.learningRate(at: 10) == 0.5)
    #expect(s.learningRate(at: 25) == 0.25)
    let c = CosineAnnealing(initial: 0.1, totalSteps: 100, minimum: 0.02)
    #expect(Swift.abs(c.learningRate(at: 0) - 0.1) < 1e-15)
    #expect(Swift.abs(c.learningRate(at: 50) - 0.06) < 1e-15)
    #expect(Swift.abs(c.learningRate(at: 100) - 0.02) < 1e-15)
    #expect(Swift.abs(c.learningRate(at: 500) - 0.02) < 1e-15)
    #expect(c.learningRate(at: 30) > c.learningRate(at: 31))
  }
}
