@testable import SomaNN

// Test-only surrogate conformers with braintools' formulas (stand-ins until SomaSurrogate's
// own types land; they also show a user-defined conformer plugging into the layers).

struct TestS2NN: SurrogateGradient {
  var alpha = 4.0
  var beta = 1.0
  var epsilon = 1e-8
  func derivative<T: TensorScalar>(_ x: T) -> T {
    if x < 0 {
      let e = T.exp(-Swift.abs(T(alpha) * x))
      return T(alpha) * e / ((1 + e) * (1 + e))
    }
    return T(beta) / (x + 1)
  }
}

struct TestSigmoid: SurrogateGradient {
  var alpha = 4.0
  func derivative<T: TensorScalar>(_ x: T) -> T {
    let e = T.exp(-Swift.abs(T(alpha) * x))
    return T(alpha) * e / ((1 + e) * (1 + e))
  }
}

struct TestArctan: SurrogateGradient {
  var alpha = 1.0
  func derivative<T: TensorScalar>(_ x: T) -> T {
    let z = T.pi / 2 * T(alpha) * x
    return T(alpha) / 2 / (1 + z * z)
  }
}
