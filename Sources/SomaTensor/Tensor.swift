import RealModule
/// An n-dimensional array of `Float` or `Double` with NumPy semantics.
///
/// A tensor is a shape, strides (in elements) and an offset over shared storage. Views —
/// `transposed()`, `permuted(_:)`, slices, `expanded(to:)` — share that storage and copy
/// nothing; a write to a tensor whose storage is shared copies it first (copy-on-write), so
/// tensors behave as values:
///
/// ```swift
/// let a = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
/// let b = a + Tensor([10, 20, 30], shape: [3])   // broadcasts the row
/// let c = a.matmul(b.transposed())                // [2, 2], through cblas_sgemm
/// print(c.sum(axes: [1]))
/// ```
@frozen
public struct Tensor<Scalar: TensorScalar>: @unchecked Sendable {
  @usableFromInline var storage: TensorStorage<Scalar>
  @usableFromInline var _shape: [Int]
  @usableFromInline var _strides: [Int]
  @usableFromInline var _offset: Int

  /// The extent of each axis.
  @inlinable public var shape: [Int] { _shape }
  /// The distance in elements between neighbours along each axis (0 for a broadcast axis).
  @inlinable public var strides: [Int] { _strides }
  /// Where element `[0, 0, …]` sits in the storage.
  @inlinable public var offset: Int { _offset }
  /// The number of axes.
  @inlinable public var rank: Int { _shape.count }
  /// The number of elements.
  @inlinable public var count: Int { Self.elementCount(_shape) }

  @inlinable
  init(storage: TensorStorage<Scalar>, shape: [Int], strides: [Int], offset: Int) {
    self.storage = storage
    self._shape = shape
    self._strides = strides
    self._offset = offset
  }

  /// A contiguous tensor of `shape` whose elements are not initialised; fill every element
  /// before reading.
  @inlinable
  public init(uninitializedShape shape: [Int]) {
    Self.checkShape(shape)
    let n = Self.elementCount(shape)
    self.init(
      storage: TensorStorage(uninitializedCount: n), shape: shape,
      strides: Self.contiguousStrides(shape), offset: 0)
  }

  /// A contiguous copy of this tensor on storage meant to be kept: parameters and optimizer
  /// state that a training loop updates in place for many steps. From 1 MiB on, the storage is
  /// 2 MiB-aligned and advised onto huge pages (where the OS offers transparent huge pages), so
  /// kernels that read its rows in random order miss the TLB far less. Not for temporaries:
  /// a fresh huge-page buffer costs page faults that a short-lived tensor never earns back.
  @inlinable
  public func withLargePageStorage() -> Tensor {
    let n = count
    let out = Tensor(
      storage: TensorStorage(largePageCount: n), shape: _shape,
      strides: Self.contiguousStrides(_shape), offset: 0)
    let c = contiguous()
    out.storage.base.initialize(from: c.storage.base + c._offset, count: n)
    return out
  }

  /// True when this tensor's storage came from `withLargePageStorage()`; copies made by
  /// copy-on-write do not keep it.
  @inlinable
  public var hasLargePageStorage: Bool { storage.largePages }

  /// A tensor of `shape` filled with `value`.
  @inlinable
  public init(repeating value: Scalar, shape: [Int]) {
    Self.checkShape(shape)
    let n = Self.elementCount(shape)
    self.init(
      storage: TensorStorage(repeating: value, count: n), shape: shape,
      strides: Self.contiguousStrides(shape), offset: 0)
  }

  /// A tensor of `shape` holding `scalars` in row-major order.
  @inlinable
  public init(_ scalars: [Scalar], shape: [Int]) {
    Self.checkShape(shape)
    let n = Self.elementCount(shape)
    precondition(
      scalars.count == n,
      "Tensor(_:shape:): \(scalars.count) scalars cannot fill shape \(shape) (\(n) elements)")
    self.init(uninitializedShape: shape)
    scalars.withUnsafeBufferPointer { src in
      storage.base.update(from: src.baseAddress!, count: n)
    }
  }

  /// A 1-D tensor holding `scalars`.
  @inlinable
  public init(_ scalars: [Scalar]) {
    self.init(scalars, shape: [scalars.count])
  }

  /// A 0-D tensor holding one scalar.
  @inlinable
  public init(_ scalar: Scalar) {
    self.init(repeating: scalar, shape: [])
  }

  // MARK: Layout helpers

  @inlinable
  static func elementCount(_ shape: [Int]) -> Int {
    var n = 1
    for d in shape { n &*= d }
    return n
  }

  @inlinable
  static func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    var i = shape.count - 1
    while i >= 0 {
      strides[i] = s
      s &*= Swift.max(shape[i], 1)
      i -= 1
    }
    return strides
  }

  @inlinable
  static func checkShape(_ shape: [Int]) {
    for d in shape {
      precondition(d >= 0, "Tensor: negative dimension in shape \(shape)")
    }
  }

  /// True when the elements lie in row-major order with no gaps, starting at `offset`
  /// (always for a tensor with no elements).
  @inlinable
  public var isContiguous: Bool {
    for d in _shape where d == 0 { return true }
    var expected = 1
    var i = _shape.count - 1
    while i >= 0 {
      if _shape[i] != 1 {
        if _strides[i] != expected { return false }
        expected &*= _shape[i]
      }
      i -= 1
    }
    return true
  }

  /// The storage offset of the element at `indices`.
  @inlinable
  func storageIndex(_ indices: [Int]) -> Int {
    precondition(
      indices.count == rank,
      "Tensor: \(indices.count) indices for a tensor of shape \(_shape)")
    var o = _offset
    for i in 0..<indices.count {
      let idx = indices[i]
      precondition(
        idx >= 0 && idx < _shape[i],
        "Tensor: index \(indices) out of range for shape \(_shape)")
      o &+= idx &* _strides[i]
    }
    return o
  }

  // MARK: Element access

  /// The element at `indices`, one index per axis: `t[scalarAt: i, j]` reads or writes one
  /// scalar of a rank-2 tensor.
  ///
  /// Element access is labelled on purpose. The unlabelled subscript always returns a view, as
  /// in NumPy and PyTorch: `t[i]` is the sub-tensor at `i` along axis 0 (row `i` of a matrix,
  /// a rank-0 tensor for a vector) and `t[i, j]` is a view of rank − 2. So `t[i]` means the same
  /// thing at every rank, and no index count turns it into an element read that traps.
  ///
  /// ```swift
  /// var m = Tensor<Float>([1, 2, 3, 4, 5, 6], shape: [2, 3])
  /// m[scalarAt: 1, 2] = 60          // the element
  /// let row = m[1]                  // a view: [4, 5, 60]
  /// let x = m[1, 2].scalar          // 60, through a rank-0 view
  /// ```
  @inlinable
  public subscript(scalarAt indices: Int...) -> Scalar {
    get { storage.base[storageIndex(indices)] }
    set {
      makeUnique()
      storage.base[storageIndex(indices)] = newValue
    }
  }

  /// The element at `indices` given as an array (one index per axis), like
  /// `subscript(scalarAt:)`.
  @inlinable
  public subscript(at indices: [Int]) -> Scalar {
    get { storage.base[storageIndex(indices)] }
    set {
      makeUnique()
      storage.base[storageIndex(indices)] = newValue
    }
  }

  /// The only element of a tensor with one element.
  @inlinable
  public var scalar: Scalar {
    precondition(count == 1, "Tensor.scalar: shape \(_shape) has \(count) elements, not 1")
    return storage.base[_offset]
  }

  /// The elements in row-major order.
  @inlinable
  public var scalars: [Scalar] {
    let c = contiguous()
    return Array(UnsafeBufferPointer(start: c.storage.base + c._offset, count: c.count))
  }

  // MARK: Copy-on-write

  /// Ensures this tensor owns its storage exclusively and that no two of its elements share a
  /// storage slot (a broadcast view from `expanded(to:)` does), copying it contiguously if not.
  @inlinable @inline(__always)
  public mutating func makeUnique() {
    if !isKnownUniquelyReferenced(&storage) || _hasAliasedElements { _copyStorage() }
  }

  /// True when a stride of 0 makes several elements one storage slot.
  @inlinable
  var _hasAliasedElements: Bool {
    for i in 0..<_shape.count where _strides[i] == 0 && _shape[i] > 1 { return true }
    return false
  }

  /// True when `self` and `other` read the same storage (a view of one another, or an
  /// unwritten copy). For tests of copy-on-write.
  @inlinable
  public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }

  @inlinable @inline(never)
  mutating func _copyStorage() {
    let fresh = copiedContiguous()
    self = fresh
  }

  /// A contiguous tensor with the same values: `self` when it already is contiguous
  /// (no copy), else a fresh copy.
  @inlinable
  public func contiguous() -> Tensor {
    isContiguous ? self : copiedContiguous()
  }

  /// A fresh contiguous copy that shares nothing with `self`.
  @inlinable
  public func copiedContiguous() -> Tensor {
    var out = Tensor(uninitializedShape: _shape)
    let dst = out.storage.base
    if isContiguous {
      dst.update(from: storage.base + _offset, count: count)
    } else if var tiles = _TileCursor2(
      shape: _shape, stridesA: _strides, offsetA: _offset, stridesB: _strides, offsetB: _offset)
    {
      let src = storage.base
      let (ra, ca, ro) = (tiles.rowA, tiles.colA, tiles.colsTotal)
      while let t = tiles.next() {
        for i in 0..<t.rows {
          let pa = src + (t.oa &+ i &* ra)
          let pr = dst + (t.oo &+ i &* ro)
          for j in 0..<t.cols { pr[j] = pa[j &* ca] }
        }
      }
    } else {
      var k = 0
      _forEachRow(self) { off, n, stride in
        let src = storage.base + off
        if stride == 1 {
          (dst + k).update(from: src, count: n)
        } else {
          for i in 0..<n { dst[k + i] = src[i &* stride] }
        }
        k &+= n
      }
    }
    out._offset = 0
    return out
  }

  /// Calls `body` with the elements in row-major order, copying only when `self` is not
  /// contiguous.
  @inlinable
  public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R)
    rethrows -> R
  {
    let c = contiguous()
    return try withExtendedLifetime(c) {
      try body(UnsafeBufferPointer(start: c.storage.base + c._offset, count: c.count))
    }
  }

  /// Calls `body` with mutable access to the elements in row-major order. Makes `self`
  /// contiguous and uniquely owned first.
  @inlinable
  public mutating func withUnsafeMutableBufferPointer<R>(
    _ body: (UnsafeMutableBufferPointer<Scalar>) throws -> R
  ) rethrows -> R {
    if !isContiguous || !isKnownUniquelyReferenced(&storage) { self = copiedContiguous() }
    return try body(UnsafeMutableBufferPointer(start: storage.base + _offset, count: count))
  }
}

extension Tensor: Equatable {
  /// Same shape and same values (not the same layout).
  @inlinable
  public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
    lhs._shape == rhs._shape && lhs.scalars == rhs.scalars
  }
}
