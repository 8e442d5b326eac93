import SomaTensor
import Testing

// The unlabelled subscript is always a view: `t[i]` is the sub-tensor at i along axis 0 at
// every rank ≥ 1, and single elements are `t[scalarAt: …]`. Before, an all-integer subscript
// with no type context resolved to the element subscript, so `t[i]` on a matrix trapped.

@Suite("Tensor subscripts")
struct SubscriptTests {
  /// 0, 1, 2, … in `shape`.
  static func iota(_ shape: [Int]) -> Tensor<Float> {
    let n = shape.reduce(1, *)
    return Tensor((0..<n).map { Float($0) }, shape: shape)
  }

  @Test func oneIndexIsTheSubTensorAlongAxisZeroAtEveryRank() {
    let shapes: [[Int]] = [[4, 3], [2, 3, 4], [2, 2, 3, 2]]
    for shape in shapes {
      let t = Self.iota(shape)
      let inner = shape.dropFirst().reduce(1, *)
      for i in 0..<shape[0] {
        let sub = t[i]
        #expect(sub.shape == Array(shape.dropFirst()), "shape \(shape), index \(i)")
        #expect(sub.scalars == (0..<inner).map { Float(i * inner + $0) }, "shape \(shape)")
        #expect(sub.sharesStorage(with: t), "t[\(i)] must be a view")
      }
    }
  }

  @Test func oneIndexOnAVectorIsARankZeroView() {
    let v = Tensor<Float>([5, 6, 7])
    let e = v[1]
    #expect(e.rank == 0)
    #expect(e.shape == [])
    #expect(e.scalar == 6)
    #expect(e.sharesStorage(with: v))
  }

  @Test func negativeIndexCountsFromTheEnd() {
    let m = Self.iota([3, 2])
    #expect(m[-1].scalars == [4, 5])
    #expect(m[-3].scalars == [0, 1])
  }

  @Test func oneIndexOfATransposedViewIsItsRow() {
    let m = Self.iota([2, 3]).transposed()  // [[0, 3], [1, 4], [2, 5]]
    #expect(m[2].scalars == [2, 5])
    #expect(m[2].strides == [3])
  }

  @Test func allIntegerIndicesGiveAViewOfLowerRank() {
    let t = Self.iota([2, 3, 4])
    let fiber = t[1, 2]
    #expect(fiber.shape == [4])
    #expect(fiber.scalars == [20, 21, 22, 23])
    let element = t[1, 2, 3]
    #expect(element.shape == [])
    #expect(element.scalar == 23)
    #expect(t[1][2] == fiber)
  }

  @Test func scalarAtReadsAndWritesOneElement() {
    var m = Self.iota([2, 3])
    #expect(m[scalarAt: 1, 2] == 5)
    #expect(m[scalarAt: 0, 0] == 0)
    let before = m
    m[scalarAt: 1, 2] = -1
    #expect(m.scalars == [0, 1, 2, 3, 4, -1])
    #expect(before.scalars == [0, 1, 2, 3, 4, 5], "copy-on-write keeps the old value")
    m[scalarAt: 0, 1] += 10
    #expect(m[scalarAt: 0, 1] == 11)
    #expect(m[scalarAt: 1, 2] == m[at: [1, 2]])
    let v = Tensor<Double>([1, 2, 3])
    #expect(v[scalarAt: 2] == 3)
  }

  @Test func assigningThroughOneIndexWritesTheRow() {
    var m = Tensor<Float>.zeros([3, 2])
    m[1] = Tensor([7, 8])
    m[2] = Tensor(9)  // broadcasts over the row
    #expect(m.scalars == [0, 0, 7, 8, 9, 9])
    var t = Tensor<Float>.zeros([2, 2, 2])
    t[0] = Tensor([1, 2, 3, 4], shape: [2, 2])
    #expect(t.scalars == [1, 2, 3, 4, 0, 0, 0, 0])
  }

  @Test func rowsInAGenericContext() {
    func rows<S: TensorScalar>(_ t: Tensor<S>) -> [Tensor<S>] {
      (0..<t.shape[0]).map { t[$0] }
    }
    let r = rows(Self.iota([3, 2]))
    #expect(r.map(\.scalars) == [[0, 1], [2, 3], [4, 5]])
  }

  /// Under the old overloads this child process trapped: with no type context, `m[1]` picked
  /// the element subscript, which needs one index per axis.
  @Test func oneIndexWithoutTypeContextDoesNotTrap() async {
    await #expect(processExitsWith: .success) {
      let m = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
      _ = m[1]
      let text = "\(m[0])"
      precondition(text == "\(Tensor<Float>([1, 2, 3]))", "got \(text)")
    }
  }

  @Test func outOfRangeAndRankZeroIndicesTrap() async {
    await #expect(processExitsWith: .failure) {
      _ = Tensor<Float>.zeros([2, 3])[2]
    }
    await #expect(processExitsWith: .failure) {
      _ = Tensor<Float>(1)[0]
    }
    await #expect(processExitsWith: .failure) {
      _ = Tensor<Float>.zeros([2, 3])[scalarAt: 1]  // one index for two axes
    }
  }
}
