import SomaKernels
import SomaSurrogate
import Testing

/// A user-defined surrogate, outside the module: a triangle of half-width `width`.
struct Triangle: SurrogateGradient {
  var width = 1.0
  func derivative<T: TensorScalar>(_ x: T) -> T {
    Swift.max(0, 1 - Swift.abs(x) / T(width)) / T(width)
  }
}

/// A user-defined surrogate with a primitive and a name and parameters of its own.
struct FastSigmoid: SurrogateGradient {
  static let name = "FastSigmoid"
  var slope = 25.0
  var parameters: [(name: String, value: Double)] { [("slope", slope)] }
  func derivative<T: TensorScalar>(_ x: T) -> T {
    let d = 1 + T(slope) * Swift.abs(x)
    return 1 / (d * d)
  }
  func primitive<T: TensorScalar>(_ x: T) -> T? {
    let s = T(slope) * x
    return 0.5 + 0.5 * s / (1 + Swift.abs(s))
  }
}

/// Evaluates through a generic context, as the spiking layers do.
func tensorDerivative<S: SurrogateGradient, T: TensorScalar>(_ s: S, _ x: Tensor<T>) -> Tensor<T> {
  s.derivative(x)
}

/// Every built-in surrogate with its defaults, and the fixture's other parameter sets.
let allFixtureSurrogates: [any SurrogateGradient] = SurrogateFixture.shared.cases.map {
  try! SurrogateRegistry.make($0.name, parameters: $0.params)
}

/// A dense grid over [−60, 60] plus the values that break careless formulas.
func denseGrid() -> [Double] {
  var xs = (0...12_000).map { -60 + Double($0) * 0.01 }
  xs += [-1, -1.0000001, -0.9999999, -0.5, 0.5, -1e6, 1e6, -0.0, 1e-30, -1e-30]
  return xs
}

@Suite("scalar and tensor evaluation")
struct EvaluationTests {
  @Test func customConformerWorksForScalarsAndTensors() {
    let t = Triangle(width: 2)
    #expect(Triangle.name == "Triangle")
    #expect(t.parameters.isEmpty)
    #expect(t.spike(-0.5 as Float) == 0)
    #expect(t.spike(0 as Double) == 1)
    #expect(t.derivative(1 as Double) == 0.25)
    #expect(t.primitive(1 as Double) == nil)
    #expect(!t.hasPrimitive)
    let x = Tensor<Float>([-3, -1, 0, 1, 3], shape: [5])
    #expect(t.spike(x).scalars == [0, 0, 1, 1, 1])
    #expect(tensorDerivative(t, x).scalars == x.scalars.map { t.derivative($0) })
    #expect(t.primitive(x) == nil)

    let f = FastSigmoid()
    #expect(f.hasPrimitive)
    #expect(FastSigmoid.name == "FastSigmoid")
    let y = Tensor<Double>([-0.1, 0, 0.1])
    #expect(f.primitive(y)?.scalars == y.scalars.map { f.primitive($0)! })
    #expect(f.derivative(y).scalars == [1.0 / 12.25, 1, 1.0 / 12.25])
  }

  @Test func customConformerWorksAsAnExistential() {
    let list: [any SurrogateGradient] = [Triangle(), S2NN()]
    let x = Tensor<Float>([-0.5, 0.5])
    for s in list {
      let d = s.derivative(x)
      #expect(d.shape == [2])
      #expect(d.scalars.allSatisfy { $0 > 0 })
    }
  }

  @Test(
    "Float tensor kernels agree with the Double scalar formula on a dense grid",
    arguments: 0..<39)
  func denseFloatMatchesDouble(_ index: Int) {
    let s = allFixtureSurrogates[index]
    let xs = denseGrid().filter { Swift.abs($0) <= 50 }.map { Double(Float($0)) }
    let got = s.derivative(Tensor<Float>(xs.map { Float($0) })).scalars
    var bad: [String] = []
    for (x, g) in zip(xs, got) {
      let ref = s.derivative(x)
      if !Tolerance.float.accepts(Double(g), ref) { bad.append("\(x): \(g) vs \(ref)") }
    }
    #expect(bad.isEmpty, "\(type(of: s).name) \(s.parameters): \(bad.prefix(5))")
  }

  @Test("never NaN or infinite", arguments: 0..<39)
  func finiteEverywhere(_ index: Int) {
    let s = allFixtureSurrogates[index]
    let xs = denseGrid()
    func check<T: TensorScalar>(_: T.Type) -> Bool {
      let x = Tensor<T>(xs.map { T($0) })
      let values =
        s.derivative(x).scalars + s.spike(x).scalars + (s.primitive(x)?.scalars ?? [])
        + xs.map { s.derivative(T($0)) }
      return values.allSatisfy(\.isFinite)
    }
    #expect(check(Float.self), "\(type(of: s).name) Float")
    #expect(check(Double.self), "\(type(of: s).name) Double")
  }

  @Test func s2nnAtMinusOneIsFinite() {
    let s = S2NN()
    #expect(s.derivative(-1 as Float).isFinite)
    #expect(
      s.derivative(Tensor<Float>([-1, -1, -1, -1, -1, -1, -1, -1, -1])).scalars
        .allSatisfy { $0.isFinite && $0 > 0 })
    #expect(s.primitive(-1 as Double)!.isFinite)
  }

  /// The AVX-512 S2NN kernel (vscalef exp, vrcp14 and a Newton step) against the portable
  /// loop over 20 001 points of [−100, 100], ±∞, NaN, −1 and values around 0 and the exp
  /// cut-off, in a length that leaves a partial vector: within 2 ulp where finite, NaN where
  /// NaN. (On a CPU without AVX-512 both take the portable loop.)
  @Test func s2nnVectorKernelMatchesThePortableLoop() {
    var xs = (0...20_000).map { Float($0) / 100 - 100 }
    xs += [.infinity, -.infinity, .nan, -1, 0, -0.0, Float.leastNonzeroMagnitude, -1e-30, -87 / 4, -88 / 4]
    let s = S2NN()
    let x = Tensor<Float>(xs)
    let vector = s.derivative(x).scalars
    soma_use_portable_kernels(1)
    let portable = s.derivative(x).scalars
    soma_use_portable_kernels(0)
    for (i, (v, p)) in zip(vector, portable).enumerated() {
      if p.isNaN {
        #expect(v.isNaN, "x = \(xs[i])")
        continue
      }
      let ulps = p == 0 ? (v == 0 ? 0 : Float.infinity) : Swift.abs(v - p) / p.ulp
      #expect(ulps <= 2, "x = \(xs[i]): \(v) vs \(p)")
    }
    #expect(vector.filter(\.isNaN).count == 1)
  }

  @Test func stridedAndShapedTensors() {
    let s = S2NN()
    let base = Tensor<Float>((0..<12).map { Float($0) / 4 - 1.5 }, shape: [3, 4])
    let t = base.transposed()
    let d = s.derivative(t)
    #expect(d.shape == [4, 3])
    // The transposed view is evaluated in row-major order of its own shape.
    let expected = t.scalars.map { s.derivative(Double($0)) }
    #expect(zip(d.scalars, expected).allSatisfy { Tolerance.float.accepts(Double($0), $1) })
    #expect(s.spike(t).scalars == t.scalars.map { $0 >= 0 ? 1 : 0 })
    #expect(s.primitive(t)!.shape == [4, 3])
    let empty = Tensor<Double>([], shape: [0, 3])
    #expect(s.derivative(empty).shape == [0, 3])
  }

  @Test func sigmoidDerivativeDoesNotCancelInFloat() {
    // braintools' s·(1 − s) loses ~1 % here in Float; compare with the Double formula.
    let s = try! Sigmoid(alpha: 10)
    let x: Float = 1.2
    let got = Double(s.derivative(x))
    let ref = s.derivative(Double(x))
    #expect(Swift.abs(got - ref) <= 1e-6 * ref)
  }
}

@Suite("vectorised kernels in Double")
struct DoubleKernelTests {
  @Test("Double tensor kernels agree with the Double scalar formula", arguments: 0..<39)
  func denseDoubleMatchesScalar(_ index: Int) {
    let s = allFixtureSurrogates[index]
    let xs = denseGrid()
    let got = s.derivative(Tensor<Double>(xs)).scalars
    var bad: [String] = []
    for (x, g) in zip(xs, got) {
      let ref = s.derivative(x)
      if !Tolerance.double.accepts(g, ref) { bad.append("\(x): \(g) vs \(ref)") }
    }
    #expect(bad.isEmpty, "\(type(of: s).name) \(s.parameters): \(bad.prefix(5))")
  }
}
