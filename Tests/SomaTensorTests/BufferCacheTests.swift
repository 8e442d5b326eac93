import SomaKernels
import Testing

@testable import SomaTensor

@Suite("Large-buffer cache", .serialized)
struct BufferCacheTests {
  @Test("a freed large buffer is reused for the next tensor of its size; values are fresh")
  func reuse() {
    // An odd size (rounds to 14 MiB) that no other test allocates.
    let count = 3_400_001
    var (hits0, misses0) = (0, 0)
    soma_cache_counts(&hits0, &misses0)
    do {
      var a = Tensor<Float>(repeating: 7, shape: [count])
      a[scalarAt: count - 1] = 3
      #expect(a.sum().scalar == Float(7) * Float(count - 1) + 3)
    }
    let b = Tensor<Float>(repeating: 1, shape: [count])
    var (hits1, misses1) = (0, 0)
    soma_cache_counts(&hits1, &misses1)
    #expect(hits1 >= hits0 + 1, "the second tensor took the first one's buffer")
    #expect(b[scalarAt: count - 1] == 1)
    #expect(b.max().scalar == 1 && b.min().scalar == 1)
    // Small tensors bypass the cache.
    #expect(soma_cache_min_bytes() == 4 << 20)
  }

  @Test("the limit bounds what is kept; 0 keeps nothing")
  func limit() {
    let previous = soma_cache_limit()
    defer { soma_cache_set_limit(previous) }
    soma_cache_set_limit(0)
    #expect(soma_cache_held_bytes() == 0)
    do { _ = Tensor<Double>(repeating: 2, shape: [1_100_003]) }
    #expect(soma_cache_held_bytes() == 0)
    soma_cache_set_limit(16 << 20)
    do { _ = Tensor<Double>(repeating: 2, shape: [1_100_003]) }  // 8.8 MB → a 10 MiB buffer
    #expect(soma_cache_held_bytes() <= 16 << 20)
    soma_cache_trim()
    #expect(soma_cache_held_bytes() == 0)
  }
}
