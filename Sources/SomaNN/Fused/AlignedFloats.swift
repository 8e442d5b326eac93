/// Zeroed Float storage whose first element starts a cache line (64-byte aligned), for the
/// fused kernels' per-neuron rows: with rows of `soma_cuba_row_stride(hidden)` floats, every
/// 16-neuron chunk is then one line. Swift arrays only promise 16-byte alignment.
@usableFromInline
final class AlignedFloats {
  @usableFromInline let base: UnsafeMutablePointer<Float>
  @usableFromInline let count: Int

  @usableFromInline
  init(count: Int) {
    let n = Swift.max(count, 1)
    self.count = count
    base = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<Float>.stride, alignment: 64)
      .bindMemory(to: Float.self, capacity: n)
    base.initialize(repeating: 0, count: n)
  }

  deinit { base.deallocate() }
}
