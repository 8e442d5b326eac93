import RealModule
// Strided iteration: every elementwise kernel walks its operands as runs along the innermost
// axis, after merging axes that are laid out back to back (so a contiguous tensor is one run).

/// Calls `body(offset, count, stride)` for each innermost run of `t`'s elements, in row-major
/// order.
@inlinable
func _forEachRow<S>(_ t: Tensor<S>, _ body: (Int, Int, Int) -> Void) {
  let n = t.count
  if n == 0 { return }
  var sizes: [Int] = []
  var strides: [Int] = []
  sizes.reserveCapacity(t.rank)
  strides.reserveCapacity(t.rank)
  for i in 0..<t.rank where t._shape[i] != 1 {
    if let last = sizes.last, strides[strides.count - 1] == t._strides[i] &* t._shape[i] {
      sizes[sizes.count - 1] = last &* t._shape[i]
      strides[strides.count - 1] = t._strides[i]
    } else {
      sizes.append(t._shape[i])
      strides.append(t._strides[i])
    }
  }
  if sizes.isEmpty {
    body(t._offset, 1, 1)
    return
  }
  let inner = sizes.count - 1
  let runLength = sizes[inner]
  let runStride = strides[inner]
  if inner == 0 {
    body(t._offset, runLength, runStride)
    return
  }
  var counter = [Int](repeating: 0, count: inner)
  var off = t._offset
  let runs = n / runLength
  for _ in 0..<runs {
    body(off, runLength, runStride)
    var axis = inner - 1
    while axis >= 0 {
      counter[axis] &+= 1
      off &+= strides[axis]
      if counter[axis] < sizes[axis] { break }
      off &-= strides[axis] &* sizes[axis]
      counter[axis] = 0
      axis -= 1
    }
  }
}

/// Walks two operands that share `shape` (their strides already broadcast: 0 on broadcast
/// axes), calling `body(offsetA, offsetB, count, strideA, strideB)` per innermost run. The
/// output position of each run is the running sum of `count`s (row-major order).
@inlinable
func _forEachRow2(
  shape: [Int], stridesA: [Int], offsetA: Int, stridesB: [Int], offsetB: Int,
  _ body: (Int, Int, Int, Int, Int) -> Void
) {
  var n = 1
  for d in shape { n &*= d }
  if n == 0 { return }
  var sizes: [Int] = []
  var sa: [Int] = []
  var sb: [Int] = []
  for i in 0..<shape.count where shape[i] != 1 {
    if let last = sizes.last, sa[sa.count - 1] == stridesA[i] &* shape[i],
      sb[sb.count - 1] == stridesB[i] &* shape[i]
    {
      sizes[sizes.count - 1] = last &* shape[i]
      sa[sa.count - 1] = stridesA[i]
      sb[sb.count - 1] = stridesB[i]
    } else {
      sizes.append(shape[i])
      sa.append(stridesA[i])
      sb.append(stridesB[i])
    }
  }
  if sizes.isEmpty {
    body(offsetA, offsetB, 1, 1, 1)
    return
  }
  let inner = sizes.count - 1
  let runLength = sizes[inner]
  if inner == 0 {
    body(offsetA, offsetB, runLength, sa[0], sb[0])
    return
  }
  var counter = [Int](repeating: 0, count: inner)
  var oa = offsetA
  var ob = offsetB
  let runs = n / runLength
  for _ in 0..<runs {
    body(oa, ob, runLength, sa[inner], sb[inner])
    var axis = inner - 1
    while axis >= 0 {
      counter[axis] &+= 1
      oa &+= sa[axis]
      ob &+= sb[axis]
      if counter[axis] < sizes[axis] { break }
      oa &-= sa[axis] &* sizes[axis]
      ob &-= sb[axis] &* sizes[axis]
      counter[axis] = 0
      axis -= 1
    }
  }
}
