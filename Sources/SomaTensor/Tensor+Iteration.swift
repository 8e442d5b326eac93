import RealModule

// Strided iteration: every elementwise kernel walks its operands as runs along the innermost
// axis, after merging axes that are laid out back to back (so a contiguous tensor is one run).
//
// The kernels loop over a cursor's runs in their own body rather than passing a closure to a
// walker: a closure that captures the kernel's `op` is not reliably specialised, and an
// unspecialised `op` per element was 7× slower for a broadcast row-add (measured).

/// The runs of two operands that share a shape (strides already broadcast: 0 on stretched
/// axes). Each run has `runLength` elements at strides `strideA`/`strideB` from the offsets
/// `next()` returns; runs come in row-major order of the shared shape.
@usableFromInline
struct _RunCursor2 {
  @usableFromInline var sizes: [Int] = []
  @usableFromInline var sa: [Int] = []
  @usableFromInline var sb: [Int] = []
  @usableFromInline var counter: [Int]
  @usableFromInline var oa: Int
  @usableFromInline var ob: Int
  @usableFromInline var runsLeft: Int
  /// Elements per run (1 for an all-ones shape; runs are never empty).
  @usableFromInline let runLength: Int
  @usableFromInline let strideA: Int
  @usableFromInline let strideB: Int

  @inlinable
  init(shape: [Int], stridesA: [Int], offsetA: Int, stridesB: [Int], offsetB: Int) {
    var n = 1
    for d in shape { n &*= d }
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
    oa = offsetA
    ob = offsetB
    if sizes.isEmpty {
      runLength = 1
      strideA = 1
      strideB = 1
      runsLeft = n  // 1, or 0 for no elements
      counter = []
    } else {
      runLength = sizes[sizes.count - 1]
      strideA = sa[sa.count - 1]
      strideB = sb[sb.count - 1]
      runsLeft = runLength == 0 ? 0 : n / runLength
      counter = [Int](repeating: 0, count: sizes.count - 1)
    }
  }

  /// The offsets of the next run, or nil when all runs have been visited.
  @inlinable
  mutating func next() -> (Int, Int)? {
    if runsLeft == 0 { return nil }
    runsLeft &-= 1
    let current = (oa, ob)
    if runsLeft > 0 {
      var axis = counter.count - 1
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
    return current
  }
}

/// Calls `body(offset, count, stride)` for each innermost run of `t`'s elements, in row-major
/// order.
@inlinable
func _forEachRow<S>(_ t: Tensor<S>, _ body: (Int, Int, Int) -> Void) {
  var cursor = _RunCursor2(
    shape: t._shape, stridesA: t._strides, offsetA: t._offset,
    stridesB: Tensor<S>.contiguousStrides(t._shape), offsetB: 0)
  while let (o, _) = cursor.next() { body(o, cursor.runLength, cursor.strideA) }
}

/// Walks two operands that share `shape` (their strides already broadcast: 0 on broadcast
/// axes), calling `body(offsetA, offsetB, count, strideA, strideB)` per innermost run. The
/// output position of each run is the running sum of `count`s (row-major order).
@inlinable
func _forEachRow2(
  shape: [Int], stridesA: [Int], offsetA: Int, stridesB: [Int], offsetB: Int,
  _ body: (Int, Int, Int, Int, Int) -> Void
) {
  var cursor = _RunCursor2(
    shape: shape, stridesA: stridesA, offsetA: offsetA, stridesB: stridesB, offsetB: offsetB)
  while let (oa, ob) = cursor.next() {
    body(oa, ob, cursor.runLength, cursor.strideA, cursor.strideB)
  }
}

/// Tiles of two operands whose innermost axis is read with a long stride (a transposed
/// operand): walking the output row by row would then touch a new cache line per element,
/// so the last two (merged) axes are visited in square tiles instead. Each tile is `rows` ×
/// `cols` elements; row `i`, column `j` of a tile is at `oa + i·rowA + j·colA` in A (likewise
/// B) and at `oo + i·outRow + j` in the row-major output.
@usableFromInline
struct _TileCursor2 {
  @usableFromInline static var tile: Int { 32 }

  @usableFromInline let outerSizes: [Int]
  @usableFromInline let outerA: [Int]
  @usableFromInline let outerB: [Int]
  @usableFromInline var counter: [Int]
  @usableFromInline let rowsTotal: Int
  @usableFromInline let colsTotal: Int
  @usableFromInline let rowA: Int
  @usableFromInline let colA: Int
  @usableFromInline let rowB: Int
  @usableFromInline let colB: Int
  @usableFromInline var baseA = 0
  @usableFromInline var baseB = 0
  @usableFromInline var baseO = 0
  @usableFromInline var i0 = 0
  @usableFromInline var j0 = 0
  @usableFromInline var started = false
  @usableFromInline var done = false

  /// The cursor when tiling pays off for these layouts, else nil.
  @inlinable
  init?(shape: [Int], stridesA: [Int], offsetA: Int, stridesB: [Int], offsetB: Int) {
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
    let r = sizes.count
    guard r >= 2, !sizes.contains(0), sizes[r - 1] >= 8, sizes[r - 2] >= 8,
      Swift.abs(sa[r - 1]) >= 16 || Swift.abs(sb[r - 1]) >= 16
    else { return nil }
    rowsTotal = sizes[r - 2]
    colsTotal = sizes[r - 1]
    rowA = sa[r - 2]
    colA = sa[r - 1]
    rowB = sb[r - 2]
    colB = sb[r - 1]
    outerSizes = Array(sizes[0..<(r - 2)])
    outerA = Array(sa[0..<(r - 2)])
    outerB = Array(sb[0..<(r - 2)])
    counter = [Int](repeating: 0, count: r - 2)
    baseA = offsetA
    baseB = offsetB
  }

  /// Steps the outer axes (row-major odometer); false after the last outer index.
  @inlinable
  mutating func advanceOuter() -> Bool {
    var axis = counter.count - 1
    while axis >= 0 {
      counter[axis] &+= 1
      baseA &+= outerA[axis]
      baseB &+= outerB[axis]
      if counter[axis] < outerSizes[axis] { return true }
      baseA &-= outerA[axis] &* outerSizes[axis]
      baseB &-= outerB[axis] &* outerSizes[axis]
      counter[axis] = 0
      axis -= 1
    }
    return false
  }

  /// The next tile: offsets in A, B and the output, and its extent.
  @inlinable
  mutating func next() -> (oa: Int, ob: Int, oo: Int, rows: Int, cols: Int)? {
    if done { return nil }
    let t = _TileCursor2.tile
    if !started {
      started = true
    } else {
      j0 += t
      if j0 >= colsTotal {
        j0 = 0
        i0 += t
        if i0 >= rowsTotal {
          i0 = 0
          if !advanceOuter() {
            done = true
            return nil
          }
          baseO += rowsTotal &* colsTotal
        }
      }
    }
    return (
      baseA &+ i0 &* rowA &+ j0 &* colA, baseB &+ i0 &* rowB &+ j0 &* colB,
      baseO &+ i0 &* colsTotal &+ j0, Swift.min(t, rowsTotal - i0), Swift.min(t, colsTotal - j0)
    )
  }
}
