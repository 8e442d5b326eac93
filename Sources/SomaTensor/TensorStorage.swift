import RealModule
import SomaKernels
/// The heap buffer behind one or more tensors. Views share it; writes copy it first when it is
/// shared (copy-on-write, checked in `Tensor`).
@usableFromInline
final class TensorStorage<Scalar>: @unchecked Sendable {
  @usableFromInline let base: UnsafeMutablePointer<Scalar>
  @usableFromInline let count: Int

  /// Allocates `count` uninitialised elements, 64-byte aligned for vector loads; 1 MiB and
  /// larger on 2 MiB boundaries offered to transparent huge pages (fewer TLB misses when event
  /// kernels gather random rows of a weight or gradient).
  @usableFromInline
  init(uninitializedCount count: Int) {
    self.count = count
    guard let raw = soma_buffer_alloc(Swift.max(count, 1) * MemoryLayout<Scalar>.stride) else {
      fatalError("Tensor: out of memory allocating \(count) elements")
    }
    base = raw.bindMemory(to: Scalar.self, capacity: Swift.max(count, 1))
  }

  @usableFromInline
  convenience init(repeating value: Scalar, count: Int) {
    self.init(uninitializedCount: count)
    base.initialize(repeating: value, count: count)
  }

  deinit {
    // Scalars are trivial (Float/Double): no deinitialisation needed.
    soma_buffer_free(UnsafeMutableRawPointer(base))
  }
}
