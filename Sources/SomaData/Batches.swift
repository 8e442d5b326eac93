import SomaTensor

/// What to do with the last mini-batch of an epoch when the sample count is not a multiple of
/// the batch size.
public enum PartialBatchPolicy: Sendable, Hashable {
  /// Yield it, smaller than the rest: every sample is seen once per epoch.
  case keep
  /// Leave it out (its samples are still seen in other epochs, as the order changes).
  case drop
}

/// A seeded permutation of `0..<count`: the same seed gives the same order on every platform
/// and Swift version (Fisher–Yates over `SomaRandom`, with unbiased bounded draws).
///
/// ```swift
/// let order = shuffledIndices(count: 5, seed: 42)   // e.g. [3, 0, 4, 1, 2], always the same
/// ```
public func shuffledIndices(count: Int, seed: UInt64) -> [Int] {
  precondition(count >= 0, "shuffledIndices: count must be ≥ 0, got \(count)")
  var order = Array(0..<count)
  var g = SomaRandom(seed: seed)
  var i = count - 1
  while i > 0 {
    let j = Int(boundedRandom(UInt64(i + 1), &g))
    order.swapAt(i, j)
    i -= 1
  }
  return order
}

/// A uniform value in 0..<bound (Lemire's multiply-and-reject, no modulo bias).
func boundedRandom(_ bound: UInt64, _ g: inout SomaRandom) -> UInt64 {
  var (hi, lo) = g.next().multipliedFullWidth(by: bound)
  if lo < bound {
    let t = (0 &- bound) % bound
    while lo < t { (hi, lo) = g.next().multipliedFullWidth(by: bound) }
  }
  return hi
}

/// The mini-batches of one epoch, as arrays of sample indices.
///
/// With a seed, the order is a seeded permutation that differs from epoch to epoch but is the
/// same for the same (seed, epoch); without one, samples come in order (evaluation).
/// The last, smaller batch is kept by default, so an epoch of Fashion-MNIST at batch size 256
/// is 235 steps, as ../BENCHMARKS.md counts them (SpyTorch's own loop drops it: 234 steps);
/// pass `.drop` for equal-sized batches only.
///
/// ```swift
/// for indices in BatchIterator(count: 60_000, batchSize: 256, seed: 1, epoch: e) {
///   let x = data.train.images(at: indices)      // [≤256, 784]
///   let y = data.train.labels(at: indices)
/// }
/// ```
public struct BatchIterator: Sequence, IteratorProtocol, Sendable {
  /// The sample order for the epoch.
  public let order: [Int]
  /// The batch size.
  public let batchSize: Int
  /// What happens to the last batch when it is short.
  public let partialBatch: PartialBatchPolicy
  private var position = 0

  /// Batches of `batchSize` over `count` samples; shuffled when `seed` is given.
  public init(
    count: Int, batchSize: Int, seed: UInt64? = nil, epoch: Int = 0,
    partialBatch: PartialBatchPolicy = .keep
  ) {
    precondition(batchSize > 0, "BatchIterator: batchSize must be > 0, got \(batchSize)")
    precondition(count >= 0, "BatchIterator: count must be ≥ 0, got \(count)")
    if let seed {
      // A distinct, well-mixed stream per epoch.
      var mix = SomaRandom(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
      order = shuffledIndices(count: count, seed: mix.next())
    } else {
      order = Array(0..<count)
    }
    self.batchSize = batchSize
    self.partialBatch = partialBatch
  }

  /// The number of batches this epoch yields.
  public var batchCount: Int {
    partialBatch == .keep
      ? (order.count + batchSize - 1) / batchSize : order.count / batchSize
  }

  public mutating func next() -> ArraySlice<Int>? {
    let remaining = order.count - position
    if remaining <= 0 || (remaining < batchSize && partialBatch == .drop) { return nil }
    let end = position + Swift.min(batchSize, remaining)
    defer { position = end }
    return order[position..<end]
  }
}
