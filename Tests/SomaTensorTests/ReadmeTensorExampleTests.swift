import SomaTensor
import Testing

/// The README's Tensor example, compiled and checked.
@Test func readmeTensorExample() {
  let a = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
  let b = a + Tensor([10, 20, 30], shape: [3])
  let c = a.matmul(b.transposed())
  let row = a[1]
  let col = a[.all, 2]
  let x = a[scalarAt: 1, 2]
  var g = SomaRandom(seed: 42)
  let p = (a + Tensor<Float>.normal([2, 3], using: &g)).softmax(axis: -1)
  let (q, r) = a.matmul(a.transposed()).qr()
  #expect(b.scalars == [11, 22, 33, 14, 25, 36])
  #expect(c.scalars == [154, 172, 352, 397])
  #expect(row.scalars == [4, 5, 6] && row.sharesStorage(with: a))
  #expect(col.scalars == [3, 6] && col.sharesStorage(with: a))
  #expect(x == 6)
  #expect(p.sum(axes: [1]).scalars.allSatisfy { Swift.abs($0 - 1) < 1e-6 })
  #expect(((q.matmul(r) - a.matmul(a.transposed())).abs().max().scalar) < 1e-4)
}
