import SomaTensor
import Testing
import _TestSupport

/// A view under test, the values it must show (computed from the source by index arithmetic)
/// and whether it must share the source's storage.
struct ViewCase<S: TensorScalar> {
  var name: String
  var view: Tensor<S>
  var shape: [Int]
  var values: [S]
  var sharesStorage = true
}

/// t = 0, 1, …, 119 as [4, 5, 6]; element [i, j, k] = 30i + 6j + k.
func viewCases<S: TensorScalar>(_: S.Type) -> (Tensor<S>, [ViewCase<S>]) {
  let t = Tensor<S>((0..<120).map { S($0) }, shape: [4, 5, 6])
  func v(_ i: Int, _ j: Int, _ k: Int) -> S { S(30 * i + 6 * j + k) }
  func grid(_ a: [Int], _ b: [Int], _ c: [Int], _ f: (Int, Int, Int) -> S) -> [S] {
    a.flatMap { i in b.flatMap { j in c.map { k in f(i, j, k) } } }
  }
  var cases: [ViewCase<S>] = []
  cases.append(
    ViewCase(
      name: "transposed", view: t[1].transposed(), shape: [6, 5],
      values: (0..<6).flatMap { k in (0..<5).map { j in v(1, j, k) } }))
  cases.append(
    ViewCase(
      name: "permuted [2, 0, 1]", view: t.permuted([2, 0, 1]), shape: [6, 4, 5],
      values: grid(Array(0..<6), Array(0..<4), Array(0..<5)) { k, i, j in v(i, j, k) }))
  cases.append(
    ViewCase(
      name: "reshaped contiguous", view: t.reshaped([20, 6]), shape: [20, 6],
      values: (0..<120).map { S($0) }))
  cases.append(
    ViewCase(
      name: "reshaped -1", view: t.reshaped([2, -1, 3]), shape: [2, 20, 3],
      values: (0..<120).map { S($0) }))
  cases.append(
    ViewCase(
      name: "reshaped strided view (split last axis)",
      view: t[.stride(by: 2)].reshaped([2, 5, 2, 3]),
      shape: [2, 5, 2, 3], values: grid([0, 2], Array(0..<5), Array(0..<6), v)))
  cases.append(
    ViewCase(
      name: "reshaped strided view (merge leading axes)",
      view: t[.all, .all, 1..<3].reshaped([20, 2]),
      shape: [20, 2], values: grid(Array(0..<4), Array(0..<5), [1, 2], v)))
  cases.append(
    ViewCase(
      name: "reshaped permuted (copy)", view: t.permuted([1, 0, 2]).reshaped([20, 6]),
      shape: [20, 6],
      values: grid(Array(0..<5), Array(0..<4), Array(0..<6)) { j, i, k in v(i, j, k) },
      sharesStorage: false))
  cases.append(
    ViewCase(
      name: "reshaped slice (copy)", view: t[.all, 1..<3, .all].reshaped([48]), shape: [48],
      values: grid(Array(0..<4), [1, 2], Array(0..<6), v), sharesStorage: false))
  cases.append(
    ViewCase(
      name: "ranges", view: t[1..<3, .all, 2...4], shape: [2, 5, 3],
      values: grid([1, 2], Array(0..<5), [2, 3, 4], v)))
  cases.append(
    ViewCase(
      name: "index drops the axis", view: t[2, 1..<4], shape: [3, 6],
      values: grid([2], [1, 2, 3], Array(0..<6), v)))
  cases.append(
    ViewCase(
      name: "steps",
      view: t[.stride(from: 1, by: 2), .stride(by: 3), .stride(from: 1, to: 6, by: 2)],
      shape: [2, 2, 3], values: grid([1, 3], [0, 3], [1, 3, 5], v)))
  cases.append(
    ViewCase(
      name: "negative steps", view: t[.stride(by: -1), .all, .stride(from: 4, by: -2)],
      shape: [4, 5, 3], values: grid([3, 2, 1, 0], Array(0..<5), [4, 2, 0], v)))
  cases.append(
    ViewCase(
      name: "negative step, negative bounds", view: t[0, 0, .stride(from: -1, to: -4, by: -1)],
      shape: [3], values: [5, 4, 3].map { v(0, 0, $0) }))
  cases.append(
    ViewCase(
      name: "negative step, end -1 is the last element",
      view: t[0, 0, .stride(from: 4, to: -1, by: -1)],
      shape: [0], values: []))
  cases.append(
    ViewCase(
      name: "partial ranges", view: t[..<2, 3..., ...1], shape: [2, 2, 2],
      values: grid([0, 1], [3, 4], [0, 1], v)))
  cases.append(
    ViewCase(
      name: "squeezed", view: t[1..<2, .all, 3..<4].squeezed(), shape: [5],
      values: (0..<5).map { v(1, $0, 3) }))
  cases.append(
    ViewCase(
      name: "squeezed axis", view: t[.all, 2..<3].squeezed(axis: 1), shape: [4, 6],
      values: grid(Array(0..<4), [2], Array(0..<6), v)))
  cases.append(
    ViewCase(
      name: "unsqueezed middle of a transpose", view: t[0].transposed().unsqueezed(axis: 1),
      shape: [6, 1, 5], values: (0..<6).flatMap { k in (0..<5).map { j in v(0, j, k) } }))
  cases.append(
    ViewCase(
      name: "unsqueezed last", view: t[.all, 0, 0].unsqueezed(axis: -1), shape: [4, 1],
      values: (0..<4).map { v($0, 0, 0) }))
  cases.append(
    ViewCase(
      name: "expanded", view: t[0, 0..<1, .all].expanded(to: [3, 4, 6]), shape: [3, 4, 6],
      values: grid([0, 1, 2], Array(0..<4), Array(0..<6)) { _, _, k in v(0, 0, k) }))
  cases.append(
    ViewCase(
      name: "expanded transpose", view: t[0, .all, 0..<1].transposed().expanded(to: [2, 3, 5]),
      shape: [2, 3, 5], values: grid([0, 1], [0, 1, 2], Array(0..<5)) { _, _, j in v(0, j, 0) }))
  return (t, cases)
}

func checkViews<S: TensorScalar>(_: S.Type) {
  let (t, cases) = viewCases(S.self)
  for c in cases {
    let copy = c.view.copiedContiguous()
    #expect(c.view.shape == c.shape, "\(c.name)")
    #expect(c.view.scalars == c.values, "\(c.name)")
    #expect(copy.scalars == c.values, "\(c.name)")
    #expect(copy.isContiguous && !copy.sharesStorage(with: t), "\(c.name)")
    #expect(c.view.sharesStorage(with: t) == c.sharesStorage, "\(c.name) storage")
    // The view behaves exactly like its contiguous copy in every kernel.
    #expect((c.view + 1).scalars == (copy + 1).scalars, "\(c.name)")
    #expect(c.view.exp().scalars == copy.exp().scalars, "\(c.name)")
    if c.view.rank > 0 {
      #expect(c.view.sum(axes: [0]).scalars == copy.sum(axes: [0]).scalars, "\(c.name)")
      #expect(c.view.max(axes: [-1]).scalars == copy.max(axes: [-1]).scalars, "\(c.name)")
    }
    #expect(c.view.reshaped([-1]).scalars == c.values, "\(c.name)")
    #expect(c.view == copy)
    for (k, i) in TestSupport.indices(c.shape).enumerated() {
      if c.view[at: i] != c.values[k] {
        Issue.record("\(c.name): element \(i) is \(c.view[at: i]), expected \(c.values[k])")
        break
      }
    }
  }
  // Nothing above wrote to t.
  #expect(t.scalars == (0..<120).map { S($0) })
}

@Test func everyViewKindMatchesACopiedContiguousTensor() {
  checkViews(Float.self)
  checkViews(Double.self)
}

@Test func isContiguousReflectsTheLayout() {
  let t = Tensor<Float>.zeros([3, 4])
  #expect(t.isContiguous)
  #expect(!t.transposed().isContiguous)
  #expect(t[1..<3].isContiguous)
  #expect(!t[.all, 1..<3].isContiguous)
  #expect(t[.all, 1..<2].squeezed().isContiguous == false)
  #expect(t.unsqueezed(axis: 1).isContiguous)
  #expect(Tensor<Float>.zeros([2, 0, 3]).transposed(0, 2).isContiguous)
  #expect(t.contiguous().sharesStorage(with: t))
  #expect(!t.transposed().contiguous().sharesStorage(with: t))
}

extension Tensor {
  fileprivate func transposed(_ a: Int, _ b: Int) -> Tensor {
    var axes = Array(0..<rank)
    axes.swapAt(a, b)
    return permuted(axes)
  }
}

// MARK: Copy-on-write

/// The address of the first element; reading it must not copy a contiguous tensor.
func address<S>(_ t: Tensor<S>) -> UnsafePointer<S>? {
  t.withUnsafeBufferPointer { $0.baseAddress.map { UnsafePointer($0) } }
}

@Test func valueCopiesShareStorageUntilWritten() {
  let a = Tensor<Float>((0..<12).map { Float($0) }, shape: [3, 4])
  var b = a
  #expect(b.sharesStorage(with: a))
  // Reads never copy.
  _ = b[scalarAt: 1, 2]
  _ = b.scalars
  _ = b.sum()
  _ = b[1..<2, .all]
  _ = b.transposed().scalars
  _ = b.description
  #expect(address(b) == address(a))
  #expect(b.sharesStorage(with: a))
  // The first write copies; a keeps its values.
  b[scalarAt: 1, 2] = 100
  #expect(!b.sharesStorage(with: a))
  #expect(a[scalarAt: 1, 2] == 6 && b[scalarAt: 1, 2] == 100)
  #expect(a.scalars == (0..<12).map { Float($0) })
  // A uniquely owned tensor is written in place: no further copies.
  let before = address(b)
  b[scalarAt: 0, 0] = -1
  b += Tensor(1)
  b.updateEach { $0 * 2 }
  b[0..<1, .all] = Tensor([7, 7, 7, 7])
  #expect(address(b) == before)
}

@Test func mutatingAViewNeverChangesItsSource() {
  let a = Tensor<Double>((0..<12).map { Double($0) }, shape: [3, 4])
  var t = a.transposed()
  t[scalarAt: 0, 1] = 99
  #expect(a[scalarAt: 1, 0] == 4 && t[scalarAt: 0, 1] == 99)
  var s = a[.all, .stride(by: -2)]
  s += Tensor(1000)
  #expect(a.scalars == (0..<12).map { Double($0) })
  #expect(s.scalars == [1003, 1001, 1007, 1005, 1011, 1009])
  var r = a.reshaped([12])
  r[scalarAt: 3] = -3
  #expect(a[scalarAt: 0, 3] == 3)
}

@Test func mutatingTheSourceNeverChangesAView() {
  var a = Tensor<Float>((0..<12).map { Float($0) }, shape: [3, 4])
  let row: Tensor<Float> = a[1]
  let col: Tensor<Float> = a.transposed()[2]
  let wide = a[0..<1].expanded(to: [5, 4])
  a[scalarAt: 1, 2] = -1
  a *= Tensor(10)
  a[.all, 0] = Tensor(0)
  #expect(row.scalars == [4, 5, 6, 7])
  #expect(col.scalars == [2, 6, 10])
  #expect(wide.scalars == Array(repeating: [0, 1, 2, 3], count: 5).flatMap { $0 })
}

@Test func writingIntoABroadcastViewWritesOneElement() {
  // A uniquely owned stride-0 view: the write must not land in every row.
  var e = Tensor<Float>([1, 2, 3]).expanded(to: [2, 3])
  e[scalarAt: 0, 0] = 9
  #expect(e.scalars == [9, 2, 3, 1, 2, 3])
  var f = Tensor<Float>([1, 2, 3]).unsqueezed(axis: 1).expanded(to: [3, 2])
  f[1..<2, .all] = Tensor([5, 6])
  #expect(f.scalars == [1, 1, 5, 6, 3, 3])
}

@Test func sliceAssignmentWritesThroughCopyOnWrite() {
  var t = Tensor<Float>.zeros([4, 3])
  let snapshot = t
  let u = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
  t[1..<3, .all] = u
  #expect(t.scalars == [0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0])
  #expect(snapshot.scalars == Array(repeating: 0, count: 12))
  // The value broadcasts to the region.
  t[.all, 2] = Tensor(-1)
  #expect(t.scalars == [0, 0, -1, 1, 2, -1, 4, 5, -1, 0, 0, -1])
  t[.stride(by: -3), 0..<2] = Tensor([8, 9])
  #expect(t.scalars == [8, 9, -1, 1, 2, -1, 4, 5, -1, 8, 9, -1])
  // From an overlapping view of itself: reads the old values.
  t[1..<4] = t[0..<3]
  #expect(t.scalars == [8, 9, -1, 8, 9, -1, 1, 2, -1, 4, 5, -1])
  // Through a transposed layout.
  var m = Tensor<Double>.zeros([2, 3]).transposed()
  m[1] = Tensor([5, 6])
  #expect(m.transposed().scalars == [0, 5, 0, 0, 6, 0])
}

@Test func zeroSizedShapes() {
  let e = Tensor<Float>.zeros([0, 3])
  #expect(e.count == 0 && e.scalars.isEmpty)
  #expect((e + Tensor([1, 2, 3])).shape == [0, 3])
  #expect(e.sum(axes: [0]).scalars == [0, 0, 0])
  #expect(e.sum(axes: [1]).shape == [0])
  #expect(e.reshaped([3, 0]).shape == [3, 0])
  #expect(e.transposed().copiedContiguous().shape == [3, 0])
  #expect(Tensor<Float>.arange(0, 10)[5..<5].count == 0)
  #expect(Tensor<Float>.zeros([0, 3]).matmul(Tensor.ones([3, 2])).shape == [0, 2])
  #expect(Tensor<Float>.ones([2, 0]).matmul(Tensor.ones([0, 3])).scalars == [0, 0, 0, 0, 0, 0])
}
