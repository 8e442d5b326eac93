import SomaTensor
import Testing
import _TestSupport

func checkCreation<S: TensorScalar>(_: S.Type) {
  #expect(Tensor<S>.zeros([2, 3]).scalars == [S](repeating: 0, count: 6))
  #expect(Tensor<S>.ones([4]).scalars == [1, 1, 1, 1])
  #expect(Tensor<S>.full([2], 7).scalars == [7, 7])
  #expect(Tensor<S>(3).shape == [] && Tensor<S>(3).scalar == 3)
  #expect(Tensor<S>.arange(0, 5).scalars == [0, 1, 2, 3, 4])
  #expect(Tensor<S>.arange(1, 2, step: 0.25).scalars == [1, 1.25, 1.5, 1.75])
  #expect(Tensor<S>.arange(3, 0, step: -1).scalars == [3, 2, 1])
  #expect(Tensor<S>.linspace(0, 1, count: 5).scalars == [0, 0.25, 0.5, 0.75, 1])
  #expect(Tensor<S>.eye(2, 3).scalars == [1, 0, 0, 0, 1, 0])
  #expect(Tensor<S>([1, 2, 3, 4, 5, 6], shape: [3, 2])[scalarAt: 2, 1] == 6)
}

@Test func deterministicCreation() {
  checkCreation(Float.self)
  checkCreation(Double.self)
}

func checkRandom<S: TensorScalar>(_: S.Type) {
  var g1 = SomaRandom(seed: 42)
  var g2 = SomaRandom(seed: 42)
  var g3 = SomaRandom(seed: 43)
  let n = 20_000
  let u1 = Tensor<S>.uniform([n], low: -2, high: 3, using: &g1)
  let u2 = Tensor<S>.uniform([n], low: -2, high: 3, using: &g2)
  let u3 = Tensor<S>.uniform([n], low: -2, high: 3, using: &g3)
  #expect(u1 == u2)
  #expect(u1 != u3)
  #expect(u1.scalars.allSatisfy { $0 >= -2 && $0 < 3 })
  expectClose(u1.mean().scalar, 0.5, atol: S(0.05))

  let n1 = Tensor<S>.normal([n], mean: 1, std: 2, using: &g1)
  let n2 = Tensor<S>.normal([n], mean: 1, std: 2, using: &g2)
  let n3 = Tensor<S>.normal([n], mean: 1, std: 2, using: &g3)
  #expect(n1 == n2 && n1 != n3)
  expectClose(n1.mean().scalar, 1, atol: S(0.06))
  expectClose((n1 - Tensor(1)).square().mean().scalar.squareRoot(), 2, atol: S(0.06))

  let b1 = Tensor<S>.bernoulli([n], p: 0.2, using: &g1)
  let b2 = Tensor<S>.bernoulli([n], p: 0.2, using: &g2)
  let b3 = Tensor<S>.bernoulli([n], p: 0.2, using: &g3)
  #expect(b1 == b2 && b1 != b3)
  #expect(b1.scalars.allSatisfy { $0 == 0 || $0 == 1 })
  expectClose(b1.mean().scalar, 0.2, atol: S(0.02))
}

@Test func sameSeedSameTensorDifferentSeedDifferentTensor() {
  checkRandom(Float.self)
  checkRandom(Double.self)
}

/// Large-page storage holds the same values as the source (also of a strided view), is its own
/// storage, survives writes, and a copy-on-write copy of it is ordinary storage.
@Test func largePageStorageCopiesValues() {
  var g = SomaRandom(seed: 5)
  for shape in [[3, 5], [640, 512]] {  // below and above the 1 MiB huge-page size
    let a = Tensor<Float>.uniform(shape, low: -1, high: 1, using: &g)
    let t = a.transposed()
    let big = t.withLargePageStorage()
    #expect(big.hasLargePageStorage && !a.hasLargePageStorage)
    #expect(big.shape == t.shape && big.isContiguous && !big.sharesStorage(with: a))
    #expect(big.scalars == t.contiguous().scalars)
    var copy = big
    copy[scalarAt: 0, 1] = 42
    #expect(!copy.hasLargePageStorage && big.hasLargePageStorage)
    #expect(big[scalarAt: 0, 1] == a[scalarAt: 1, 0] && copy[scalarAt: 0, 1] == 42)
    var owned = Tensor<Double>.zeros(shape).withLargePageStorage()
    owned[scalarAt: 1, 2] = -3
    #expect(owned.hasLargePageStorage && owned.sum().scalar == -3)
  }
}
