import SomaTensor
import Testing

@Test func smokeAdd() {
  let a = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
  let b = a + Tensor([10, 20, 30], shape: [3])
  #expect(b.scalars == [11, 22, 33, 14, 25, 36])
  let c = a.matmul(a.transposed())
  #expect(c.scalars == [14, 32, 32, 77])
  #expect(a[1..<2, .all].scalars == [4, 5, 6])
}
