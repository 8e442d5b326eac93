import RealModule
import SomaKernels
/// The heap buffer behind one or more tensors. Views share it; writes copy it first when it is
/// shared (copy-on-write, checked in `Tensor`).
@usableFromInline
final class TensorStorage<Scalar>: @unchecked Sendable {
  @usableFromInline let base: UnsafeMutablePointer<Scalar>
  @usableFromInline let count: Int
  /// Allocated by `soma_buffer_alloc` (2 MiB-aligned, advised onto huge pages when large).
  @usableFromInline let largePages: Bool

  /// Allocates `count` uninitialised elements, 64-byte aligned for vector loads. (Not on huge
  /// pages: a fresh 2 MiB-aligned buffer for every temporary cost page faults, and adding two
  /// 1M-float tensors ran at 75 % of a raw loop instead of 100 %. The fused models' reused
  /// workspaces use huge pages instead.)
  @usableFromInline
  init(uninitializedCount count: Int) {
    self.count = count
    largePages = false
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: Swift.max(count, 1) * MemoryLayout<Scalar>.stride, alignment: 64)
    base = raw.bindMemory(to: Scalar.self, capacity: Swift.max(count, 1))
  }

  /// Storage for long-lived data (parameters, optimizer moments): from 1 MiB on it is
  /// 2 MiB-aligned and advised onto transparent huge pages, so kernels reading rows at random
  /// (an event gather over a weight matrix) miss the TLB far less; 10 % faster gathers over a
  /// 784 × 512 weight on this machine.
  @usableFromInline
  init(largePageCount count: Int) {
    self.count = count
    largePages = true
    let raw = soma_buffer_alloc(Swift.max(count, 1) * MemoryLayout<Scalar>.stride)!
    base = raw.bindMemory(to: Scalar.self, capacity: Swift.max(count, 1))
  }

  @usableFromInline
  convenience init(repeating value: Scalar, count: Int) {
    self.init(uninitializedCount: count)
    base.initialize(repeating: value, count: count)
  }

  deinit {
    // Scalars are trivial (Float/Double): no deinitialisation needed.
    if largePages { soma_buffer_free(UnsafeMutableRawPointer(base)) } else {
      UnsafeMutableRawPointer(base).deallocate()
    }
  }
}
