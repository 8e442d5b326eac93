import SomaTensor
import Testing

@Test func descriptionPrintsLikeNumPy() {
  #expect(
    Tensor<Float>([1, 2, 3, 4], shape: [2, 2]).description
      == "tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2], dtype=float32)")
  #expect(
    Tensor<Double>([0.5, -1.25, 10]).description
      == "tensor([ 0.5000, -1.2500, 10.0000], shape=[3], dtype=float64)")
  #expect(Tensor<Float>(3).description == "tensor(3., dtype=float32)")
  #expect(Tensor<Float>.zeros([0, 3]).description == "tensor([], shape=[0, 3], dtype=float32)")
  #expect(
    Tensor<Double>([1e-7, 1e10]).description
      == "tensor([1.0000e-07, 1.0000e+10], shape=[2], dtype=float64)")
  #expect(
    Tensor<Float>([.nan, .infinity, 1.5]).description
      == "tensor([   nan,    inf, 1.5000], shape=[3], dtype=float32)")
  // A view prints its own values, in its own order.
  let t = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3]).transposed()
  #expect(
    t.description
      == "tensor([[1., 4.],\n        [2., 5.],\n        [3., 6.]], shape=[3, 2], dtype=float32)")
  // Rank 3: a blank line between blocks.
  let r3 = Tensor<Float>.arange(0, 8).reshaped([2, 2, 2]).description
  #expect(r3.contains("[2., 3.]]],\n\n") || r3.contains("[2., 3.]],\n\n"))
  #expect(t.debugDescription.contains("strides: [1, 3]"))
}

@Test func largeTensorsAreAbbreviated() {
  let v = Tensor<Float>.arange(0, 2000)
  #expect(
    v.description
      == "tensor([   0.,    1.,    2., ..., 1997., 1998., 1999.], shape=[2000], dtype=float32)")
  let m = Tensor<Double>.arange(0, 40 * 50).reshaped([40, 50]).description
  let lines = m.split(separator: "\n")
  #expect(lines.count == 7)  // 3 rows, "...", 3 rows
  #expect(lines[0].hasPrefix("tensor([[   0.,    1.,    2., ...,   47.,   48.,   49.],"))
  #expect(lines[3].drop(while: { $0 == " " }) == "...,")
  #expect(lines[6].hasSuffix("1999.]], shape=[40, 50], dtype=float64)"))
  // Small tensors are printed in full.
  #expect(!Tensor<Float>.zeros([10, 100]).description.contains("..."))
}
