/// The processes of a data-parallel run, as the training loop needs them: who this process is,
/// how many there are, and an element-wise sum over all of them.
///
/// `SomaMPI`'s `MPIProcessGroup` implements it over MPI (`mpirun -np N`); a trainer given a
/// group of more than one process (`Trainer.processGroup`) trains data-parallel: each process
/// takes its slice of every global batch, the gradients are summed over the processes (one
/// `allReduceSum` per step, or over 1 MB buckets started by `startAllReduceSum` during the
/// backward pass), and every process applies the same update, so the weights stay identical.
/// BatchNorm layers sum their statistics over the processes inside the passes
/// (`allReduceSumInPass`), so that they normalise by the whole batch (SyncBatchNorm).
///
/// ```swift
/// import SomaMPI
/// let group = try MPIProcessGroup.launched()   // nil without mpirun
/// trainer.processGroup = group
/// ```
public protocol ProcessGroup: AnyObject {
  /// This process's index, 0..<size. Process 0 prints and writes files.
  var rank: Int { get }
  /// The number of processes.
  var size: Int { get }
  /// Replaces `buffer` on every process by the element-wise sum over all processes' buffers
  /// (the same count everywhere). Every process must get bit-identical sums. Throws
  /// `TrainError` when the sum cannot be made (a process is gone).
  func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
  /// `allReduceSum` for doubles (counts and metrics).
  func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws

  /// Starts `allReduceSum(buffer)` and may return before it is done (a bucket of gradients
  /// reduced while the backward pass goes on). `buffer` must stay allocated and untouched
  /// until `waitForReductions()` returns. Every process starts the same reductions in the same
  /// order, and each must give the sums `allReduceSum` would. The default reduces at once.
  func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
  /// Lets the started reductions advance (MPI moves non-blocking collectives on only inside
  /// its calls); called between pieces of work. The default does nothing.
  func progressReductions() throws
  /// Returns when every started reduction is done (its buffer holds the sums).
  func waitForReductions() throws

  /// `allReduceSum` for the reductions made inside the forward and backward passes
  /// (synchronised BatchNorm's statistics), on a channel of their own: while the backward pass
  /// calls it, reductions started by `startAllReduceSum` may be under way, and the two kinds
  /// must never pair up (MPI: a duplicate of the communicator). Every process makes these
  /// reductions in the same order among themselves. The default is `allReduceSum`, right for a
  /// group whose `startAllReduceSum` reduces at once.
  func allReduceSumInPass(_ buffer: UnsafeMutableBufferPointer<Double>) throws
}

extension ProcessGroup {
  public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
    try allReduceSum(buffer)
  }
  public func progressReductions() throws {}
  public func waitForReductions() throws {}
  public func allReduceSumInPass(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
    try allReduceSum(buffer)
  }

  /// The sums over all processes of `values`.
  public func sum(_ values: [Double]) throws -> [Double] {
    var v = values
    try v.withUnsafeMutableBufferPointer { try allReduceSum($0) }
    return v
  }

  /// True on every process when `ok` is true on every process (one reduction).
  public func all(_ ok: Bool) throws -> Bool {
    try sum([ok ? 0 : 1])[0] == 0
  }
}

/// How a data-parallel run splits its work: every global batch, and the test set, into one
/// contiguous slice per process.
public enum DataParallel {
  /// Process `rank`'s share of `count` items split over `size` processes: contiguous, in rank
  /// order, sizes differing by at most one, together covering 0..<count exactly once.
  ///
  /// ```swift
  /// DataParallel.slice(10, rank: 0, of: 3)   // 0..<3
  /// DataParallel.slice(10, rank: 2, of: 3)   // 6..<10
  /// ```
  public static func slice(_ count: Int, rank: Int, of size: Int) -> Range<Int> {
    precondition(size >= 1 && rank >= 0 && rank < size, "DataParallel: rank \(rank) of \(size)")
    precondition(count >= 0, "DataParallel: negative count \(count)")
    return (count * rank / size)..<(count * (rank + 1) / size)
  }

  /// The global batches of one pass over `order` (`batchSize` each, the last one shorter), from
  /// batch `skip` on, and for each the part process `rank` of `size` trains on. With
  /// `wholeWhenShort`, a batch of fewer samples than processes (which would leave some without
  /// any) goes whole to every process: synchronised BatchNorm needs every process in the pass.
  public static func batches(
    order: [Int], batchSize: Int, rank: Int = 0, of size: Int = 1, skip: Int = 0,
    wholeWhenShort: Bool = false
  ) -> [(global: ArraySlice<Int>, local: ArraySlice<Int>)] {
    precondition(batchSize >= 1, "DataParallel: batch size \(batchSize)")
    var out: [(global: ArraySlice<Int>, local: ArraySlice<Int>)] = []
    var start = skip * batchSize
    while start < order.count {
      let global = order[start..<Swift.min(start + batchSize, order.count)]
      if wholeWhenShort && global.count < size {
        out.append((global, global))
        start += batchSize
        continue
      }
      let r = slice(global.count, rank: rank, of: size)
      let local = global[(global.startIndex + r.lowerBound)..<(global.startIndex + r.upperBound)]
      out.append((global, local))
      start += batchSize
    }
    return out
  }
}
