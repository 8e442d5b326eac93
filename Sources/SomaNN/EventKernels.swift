import SomaKernels

// How a compiled network's Linear layers read spike input as events, and the element kernels
// of those passes.

/// When a Linear layer reads its spike input as events instead of a dense GEMM.
public enum EventPolicy: Sendable, Equatable {
  /// Events when the measured input density is below `threshold`; for a layer of at most
  /// `narrowOutputs` outputs, below max(threshold, `narrowThreshold`) (a GEMM that narrow runs
  /// far below BLAS's peak, while an event costs one short vector add).
  case auto(threshold: Double)
  case always
  case never

  /// The crossover measured for the event kernels against OpenBLAS sgemm: with the AVX-512
  /// kernels, events win below 30 % input density (784 × 256–512 layers, 2 cores); with the
  /// AVX2 ones (AMD Zen 3, one thread, 1024 × 512 × 512) the scatter takes 3.4 ms at 30 %,
  /// 4.4–4.9 at 40 % and 5.5 at 50 % against sgemm's 5.9–6.8 ms. Without either, only very
  /// sparse input (latency codes) pays.
  public static let automatic = EventPolicy.auto(
    threshold: soma_has_avx512() != 0 ? 0.3 : soma_sparse_scatter_wants_packed() != 0 ? 0.45 : 0.02)
  /// Layers this narrow use events up to `narrowThreshold` (e.g. a 10-class output layer
  /// reading 40 %-dense hidden spikes: 0.05 ms by events against 0.4 ms by GEMM per step).
  public static let narrowOutputs = 64
  public static let narrowThreshold = 0.75

  @inlinable
  func useEvents(density: Double, outputs: Int) -> Bool {
    switch self {
    case .auto(let th):
      return density < (outputs <= Self.narrowOutputs ? Swift.max(th, Self.narrowThreshold) : th)
    case .always: return true
    case .never: return false
    }
  }
}

/// Element kernels of the event-driven Linear passes: C (AVX-512 where the CPU has it) for
/// Float, Swift loops otherwise.
@usableFromInline
enum MLPKernels {
  /// Row lists and row masks of the rows [r0, r1) of x in Swift (the element types without C
  /// kernels).
  @inlinable
  static func events<T: TensorScalar>(
    _ x: UnsafePointer<T>, rows r0: Int, _ r1: Int, width n: Int,
    list: UnsafeMutablePointer<Int32>, offset: Int, begin: UnsafeMutablePointer<Int32>,
    end: UnsafeMutablePointer<Int32>, binary: UnsafeMutablePointer<Int32>,
    rowMask: UnsafeMutablePointer<UInt16>, rowsPadded: Int
  ) -> Int {
    // (Float input goes through soma_sparse_masks_f32 and soma_sparse_lists_from_masks.)
    var k = offset
    for r in r0..<r1 {
      begin[r] = Int32(k)
      for cb in 0..<((n + 15) / 16) { rowMask[cb * rowsPadded + r] = 0 }
      for i in 0..<n {
        let value = x[r * n + i]
        if value != 0 {
          list[k] = Int32(i)
          k += 1
          rowMask[(i / 16) * rowsPadded + r] |= UInt16(1) << UInt16(i % 16)
          if value != 1 { binary.pointee = 0 }
        }
      }
      end[r] = Int32(k)
    }
    return k - offset
  }


  @inlinable
  static func gather<T: TensorScalar>(
    begin: UnsafePointer<Int32>, end: UnsafePointer<Int32>, list: UnsafePointer<Int32>,
    from i0: Int, to i1: Int, source: UnsafePointer<T>, width n: Int, initial: UnsafePointer<T>?,
    into dst: UnsafeMutablePointer<T>
  ) {
    guard i1 > i0 else { return }
    if T.self == Float.self {
      soma_sparse_gather_f32(
        begin, end, list, i0, i1, UnsafeRawPointer(source).assumingMemoryBound(to: Float.self), n,
        initial.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) },
        UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self))
      return
    }
    for i in i0..<i1 {
      let o = dst + i * n
      for j in 0..<n { o[j] = initial?[j] ?? 0 }
      for e in Int(begin[i])..<Int(end[i]) {
        let src = source + Int(list[e]) * n
        for j in 0..<n { o[j] += src[j] }
      }
    }
  }

  @inlinable
  static func columnSums<T: TensorScalar>(
    _ x: UnsafePointer<T>, rows: Int, width n: Int, from j0: Int, to j1: Int,
    into out: UnsafeMutablePointer<T>
  ) {
    guard j1 > j0 else { return }
    if T.self == Float.self {
      soma_column_sums_f32(
        UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), rows, n, j0, j1,
        UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self))
      return
    }
    for j in j0..<j1 { out[j] = 0 }
    for r in 0..<rows {
      for j in j0..<j1 { out[j] += x[r * n + j] }
    }
  }

  /// The density from which the mask scatter beats the row-list gather (standalone, 784 × 512
  /// source: 0.52 vs 0.63 ms at 5 %, 0.59 vs 0.39 ms at 3 %).
  /// Without AVX-512 the mask scatter has only its portable loop, slower than the gather at
  /// every density measured (mlp-small 12.3 vs 11.7 ms), so it is never chosen there.
  /// With AVX2 only (1024 × 512 × 512, one thread): scatter 0.47 vs gather 0.51 ms at 2 %,
  /// 0.76 vs 1.35 ms at 5 %.
  @usableFromInline static let maskScatterDensity =
    soma_has_avx512() != 0 ? 0.05 : soma_sparse_scatter_wants_packed() != 0 ? 0.02 : .infinity

  /// Boundary `part` of `parts` over `count` rows, at a multiple of 16 (the bit words' rows).
  @inlinable
  static func split16(_ part: Int, of parts: Int, count: Int) -> Int {
    part >= parts ? count : Swift.min(count, part * count / parts / 16 * 16)
  }

  /// Layers with at most this many outputs form dI · Wᵀ with `soma_narrow_product_f32`.
  @usableFromInline static let narrowProductWidth = 32

  @inlinable
  static func countNonzero<T: TensorScalar>(_ x: UnsafePointer<T>, _ n: Int) -> Int {
    if T.self == Float.self {
      return soma_count_nonzero_f32(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), n)
    }
    var c = 0
    for i in 0..<n where x[i] != 0 { c += 1 }
    return c
  }
}
