import SomaTensor
import Testing
import _TestSupport

/// A well-conditioned n×n matrix: uniform [-1, 1) plus n on the diagonal.
func wellConditioned<S: TensorScalar>(_ n: Int, seed: UInt64, _: S.Type) -> Tensor<S> {
  random([n, n], seed: seed, S.self) + Tensor<S>.eye(n) * S(n)
}

/// max |x| over the elements.
func maxAbs<S: TensorScalar>(_ t: Tensor<S>) -> S { t.abs().max().scalar }

@Test func solveInverseAndCholeskyResidualsInFloat() throws {
  let n = 8
  let a = wellConditioned(n, seed: 61, Float.self)
  let b: Tensor<Float> = random([n], seed: 62)
  let x = try Tensor.solve(a, b)
  #expect(x.shape == [n])
  #expect(maxAbs(a.matmul(x) - b) <= 1e-5)
  // Several right-hand sides, given as a transposed view.
  let bs = random([3, n], seed: 63, Float.self).transposed()
  let xs = try Tensor.solve(a, bs)
  #expect(xs.shape == [n, 3])
  #expect(maxAbs(a.matmul(xs) - bs) <= 1e-5)
  // solve reads a strided view of a without changing it.
  let aT = a.transposed()
  let xt = try Tensor.solve(aT, b)
  #expect(maxAbs(aT.matmul(xt) - b) <= 1e-5)

  let inv = try a.inverse()
  #expect(maxAbs(a.matmul(inv) - Tensor.eye(n)) <= 1e-5)
  #expect(maxAbs(inv.matmul(a) - Tensor.eye(n)) <= 1e-5)

  let m: Tensor<Float> = random([n, n], seed: 64)
  let spd = m.transposed().matmul(m) + Tensor.eye(n)
  let l = try spd.cholesky()
  #expect(maxAbs(l.matmul(l.transposed()) - spd) <= 1e-5)
  for i in 0..<n {
    #expect(l[scalarAt: i, i] > 0)
    for j in (i + 1)..<n { #expect(l[scalarAt: i, j] == 0, "upper triangle [\(i), \(j)]") }
  }
  #expect(a == wellConditioned(n, seed: 61, Float.self))
}

func checkFactorisations<S: TensorScalar>(_: S.Type) throws {
  let tol = S(S.significandBitCount <= 23 ? 1e-5 : 1e-12)
  for shape in [[6, 4], [4, 6], [5, 5], [1, 3], [3, 1]] {
    let a: Tensor<S> = random(shape, seed: 71)
    let k = shape.min()!
    let (q, r) = a.qr()
    #expect(q.shape == [shape[0], k] && r.shape == [k, shape[1]], "qr \(shape)")
    #expect(maxAbs(q.matmul(r) - a) <= tol, "Q·R = A for \(shape)")
    #expect(maxAbs(q.transposed().matmul(q) - Tensor.eye(k)) <= tol, "QᵀQ = I for \(shape)")
    for i in 0..<k { for j in 0..<Swift.min(i, shape[1]) { #expect(r[scalarAt: i, j] == 0) } }

    let (u, s, vt) = try a.svd()
    #expect(u.shape == [shape[0], k] && s.shape == [k] && vt.shape == [k, shape[1]])
    let usv = u.matmul(s.unsqueezed(axis: 1) * vt)  // U · diag(S) · Vᵀ
    #expect(maxAbs(usv - a) <= tol, "U·diag(S)·Vᵀ = A for \(shape)")
    #expect(maxAbs(u.transposed().matmul(u) - Tensor.eye(k)) <= tol)
    #expect(maxAbs(vt.matmul(vt.transposed()) - Tensor.eye(k)) <= tol)
    let sv = s.scalars
    #expect(zip(sv, sv.dropFirst()).allSatisfy { $0 >= $1 } && sv.allSatisfy { $0 >= 0 })
  }
  // QR and SVD of a transposed (non-contiguous) view.
  let w = random([4, 6], seed: 72, S.self).transposed()
  let (q, r) = w.qr()
  #expect(maxAbs(q.matmul(r) - w) <= tol)
  let (u, s, vt) = try w.svd()
  #expect(maxAbs(u.matmul(s.unsqueezed(axis: 1) * vt) - w) <= tol)
}

@Test func qrAndSVDReconstruct() throws {
  try checkFactorisations(Float.self)
  try checkFactorisations(Double.self)
}

func checkDeterminant<S: TensorScalar>(_: S.Type) {
  expectClose(Tensor<S>([1, 2, 3, 4], shape: [2, 2]).det(), 1 * 4 - 2 * 3)
  // Triangular: the product of the diagonal.
  let t = Tensor<S>([2, 5, 7, 0, -3, 1, 0, 0, 0.5], shape: [3, 3])
  expectClose(t.det(), 2 * -3 * 0.5)
  // A permutation matrix with one swap.
  expectClose(Tensor<S>([0, 1, 0, 1, 0, 0, 0, 0, 1], shape: [3, 3]).det(), -1)
  // det(AB) = det(A) det(B), and a singular matrix gives 0.
  let a = wellConditioned(4, seed: 81, S.self)
  let b = wellConditioned(4, seed: 82, S.self)
  expectClose(a.matmul(b).det(), a.det() * b.det(), rtol: S(1e-4))
  #expect(Tensor<S>([1, 2, 2, 4], shape: [2, 2]).det() == 0)
  #expect(Tensor<S>.zeros([0, 0]).det() == 1)
}

@Test func determinant() {
  checkDeterminant(Float.self)
  checkDeterminant(Double.self)
}

@Test func singularAndIndefiniteMatricesThrow() {
  let singular = Tensor<Double>([1, 2, 3, 2, 4, 6, 1, 0, 1], shape: [3, 3])
  #expect(throws: LinearAlgebraError.singular(pivot: 3)) {
    try Tensor.solve(singular, Tensor([1, 2, 3]))
  }
  #expect(throws: LinearAlgebraError.self) { try singular.inverse() }
  let zero = Tensor<Float>.zeros([2, 2])
  #expect(throws: LinearAlgebraError.singular(pivot: 1)) { try zero.inverse() }
  let indefinite = Tensor<Float>([1, 2, 2, 1], shape: [2, 2])
  #expect(throws: LinearAlgebraError.notPositiveDefinite(minor: 2)) { try indefinite.cholesky() }
  do {
    _ = try indefinite.cholesky()
  } catch {
    #expect(error.description.contains("not positive definite"))
  }
  #expect(LinearAlgebraError.singular(pivot: 3).description.contains("singular"))
}
