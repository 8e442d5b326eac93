import RealModule
/// The heap buffer behind one or more tensors. Views share it; writes copy it first when it is
/// shared (copy-on-write, checked in `Tensor`).
@usableFromInline
final class TensorStorage<Scalar>: @unchecked Sendable {
  @usableFromInline let base: UnsafeMutablePointer<Scalar>
  @usableFromInline let count: Int

  /// Allocates `count` uninitialised elements, 64-byte aligned for vector loads. (Not on huge
  /// pages: a fresh 2 MiB-aligned buffer for every temporary cost page faults, and adding two
  /// 1M-float tensors ran at 75 % of a raw loop instead of 100 %. The fused models' reused
  /// workspaces use huge pages instead.)
  @usableFromInline
  init(uninitializedCount count: Int) {
    self.count = count
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: Swift.max(count, 1) * MemoryLayout<Scalar>.stride, alignment: 64)
    base = raw.bindMemory(to: Scalar.self, capacity: Swift.max(count, 1))
  }

  @usableFromInline
  convenience init(repeating value: Scalar, count: Int) {
    self.init(uninitializedCount: count)
    base.initialize(repeating: value, count: count)
  }

  deinit {
    // Scalars are trivial (Float/Double): no deinitialisation needed.
    UnsafeMutableRawPointer(base).deallocate()
  }
}
