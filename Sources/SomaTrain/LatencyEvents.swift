import SomaData
import SomaKernels
import SomaNN

/// Latency-coded input for a mini-batch, straight from the dataset's pixel bytes to events
/// (rows t·batch + b), never through the dense [T, batch, 784] tensor (≈ 0.4 % ones).
///
/// Each batch is coded from its images' bytes when it is needed: a counting sort of each
/// image's pixels by spike step, then block copies per step and sample. Nothing per image is
/// kept between batches, so training holds the dataset's bytes and nothing more (a table of
/// every training image's code took 52 MB of Fashion-MNIST's 60 000 images).
package struct LatencyEventCoder: Sendable {
  package let timeSteps: Int
  /// Spike step for each of the 256 byte values, or `timeSteps` for no spike.
  package let stepOfByte: [UInt32]

  package init(timeSteps: Int, encoder: LatencyEncoder) {
    self.timeSteps = timeSteps
    stepOfByte = (0..<256).map { v in
      encoder.spikeStep(Double(Float(v) / 255)).map { UInt32($0) } ?? UInt32(timeSteps)
    }
  }

  /// Events for the images at `indices` of `split`.
  package func events(_ split: LabeledImages, indices: ArraySlice<Int>) -> SpikeEvents {
    let slot = EventSlot()
    encode(split, indices: Array(indices), into: slot)
    return slot.events
  }

  /// Writes the events of the images at `indices` of `split` into `slot`'s arrays, reusing
  /// their memory when no earlier `slot.events` is still held. One thread, in chunks (32
  /// images, then `chunkSteps` steps) with a pool yield point after each, so it can run as a
  /// `PoolBackgroundTask`.
  package func encode(
    _ split: LabeledImages, indices: [Int], into slot: EventSlot, chunkSteps: Int = 10
  ) {
    let batch = indices.count
    let (T, f) = (timeSteps, split.featureCount)
    let rows = T * batch
    if slot.rowStart.count != rows + 1 {
      slot.rowStart = [Int32](repeating: 0, count: rows + 1)
    }
    if slot.stepStart.count != batch * (T + 1) {
      slot.stepStart = [UInt32](repeating: 0, count: batch * (T + 1))
    }
    // 8 spare entries: the fill kernel reads whole blocks of 8 past a run's end.
    if slot.codes.count != batch * f + 8 {
      slot.codes = [Int32](repeating: 0, count: batch * f + 8)
    }
    indices.withUnsafeBufferPointer { order in
      split.pixels.withUnsafeBufferPointer { px in
        stepOfByte.withUnsafeBufferPointer { table in
          slot.stepStart.withUnsafeMutableBufferPointer { ss in
            slot.codes.withUnsafeMutableBufferPointer { cb in
              var b0 = 0
              while b0 < batch {
                let b1 = Swift.min(b0 + 32, batch)
                soma_latency_code(
                  px.baseAddress, f, table.baseAddress!, T, order.baseAddress, b0, b1,
                  ss.baseAddress!, cb.baseAddress!)
                PoolBackgroundTask.yield()
                b0 = b1
              }
            }
          }
        }
      }
    }
    slot.stepStart.withUnsafeBufferPointer { ss in
      let stP = ss.baseAddress!
      func before(_ t: Int) -> Int { soma_latency_batch_count(stP, batch, T, t) }
      let total = before(T)
      // Resize by the difference only; every slot is overwritten below.
      let have = slot.indices.count
      if have > total {
        slot.indices.removeLast(have - total)
      } else if have < total {
        slot.indices.append(contentsOf: repeatElement(0, count: total - have))
      }
      PoolBackgroundTask.yield()
      slot.codes.withUnsafeBufferPointer { cb in
        slot.rowStart.withUnsafeMutableBufferPointer { rb in
          slot.indices.withUnsafeMutableBufferPointer { ib in
            var (t0, pos0) = (0, 0)
            while t0 < T {
              let t1 = Swift.min(t0 + chunkSteps, T)
              let pos1 = t1 == T ? total : before(t1)
              soma_latency_batch_fill(
                cb.baseAddress!, f, stP, batch, T, t0, t1, pos0, pos1, rb.baseAddress!,
                ib.baseAddress)
              PoolBackgroundTask.yield()
              (t0, pos0) = (t1, pos1)
            }
            if T == 0 { rb[0] = 0 }
          }
        }
      }
    }
    slot.rows = rows
    slot.columns = f
  }
}

/// One batch's event arrays, kept across steps and written by one thread at a time (see
/// `BatchPipeline`). Separate stored properties, so both arrays can be open for writing at once.
package final class EventSlot: @unchecked Sendable {
  package var rowStart: [Int32] = [0]
  package var indices: [Int32] = []
  package var rows = 0
  package var columns = 0
  /// The batch's codes (see `soma_latency_code`), kept for the next batch's.
  var stepStart: [UInt32] = []
  var codes: [Int32] = []

  package init() {}

  /// The events last encoded (sharing the arrays until the next encode writes them).
  package var events: SpikeEvents {
    SpikeEvents(rows: rows, columns: columns, rowStart: rowStart, indices: indices)
  }
}

/// Encodes the next training batch while the current step runs, on the pool worker's idle
/// time between the step's parallel regions (a separate thread would compete with the two
/// compute threads on two cores and stall whole regions when it preempted one). Two slots
/// alternate: the step reads one while the next batch is written into the other.
package final class BatchPipeline {
  let coder: LatencyEventCoder
  let images: LabeledImages
  private let slots = [EventSlot(), EventSlot()]
  private var pending: (task: PoolBackgroundTask, slot: EventSlot)?
  private var turn = 0

  package init(coder: LatencyEventCoder, images: LabeledImages) {
    (self.coder, self.images) = (coder, images)
  }

  /// Starts encoding the images at `indices` (the previous batch must have been taken).
  package func start(_ indices: ArraySlice<Int>) {
    precondition(pending == nil, "BatchPipeline: the previous batch was not taken")
    let slot = slots[turn]
    turn = 1 - turn
    let (coder, images, order) = (self.coder, self.images, Array(indices))
    pending = (PoolBackgroundTask { coder.encode(images, indices: order, into: slot) }, slot)
  }

  /// The batch last started, once encoded.
  package func take() -> SpikeEvents {
    guard let (task, slot) = pending else {
      preconditionFailure("BatchPipeline: take() without start()")
    }
    task.wait()
    pending = nil
    return slot.events
  }

  /// Waits for a batch still being encoded (before leaving the training loop early).
  package func cancel() {
    pending?.task.wait()
    pending = nil
  }
}

/// One pass's batches in `order`, as the training loop gets them: with two threads or more,
/// each batch is encoded during the previous step (`BatchPipeline`); otherwise at the start of
/// its own step.
package final class BatchFeed {
  let batches: [ArraySlice<Int>]
  let images: LabeledImages
  let coder: LatencyEventCoder
  private let pipeline: BatchPipeline?
  private let slot = EventSlot()
  private var taken = 0

  package convenience init(
    order: [Int], batchSize: Int, images: LabeledImages, coder: LatencyEventCoder, threads: Int
  ) {
    self.init(
      batches: stride(from: 0, to: order.count, by: batchSize).map {
        order[$0..<Swift.min($0 + batchSize, order.count)]
      }, images: images, coder: coder, threads: threads)
  }

  /// The batches of image indices given (a data-parallel process's slices of the global ones).
  package init(
    batches: [ArraySlice<Int>], images: LabeledImages, coder: LatencyEventCoder, threads: Int
  ) {
    (self.batches, self.images, self.coder) = (batches, images, coder)
    pipeline = threads >= 2 && !batches.isEmpty ? BatchPipeline(coder: coder, images: images) : nil
    if !batches.isEmpty { pipeline?.start(batches[0]) }
  }

  /// The next batch's image indices and events (valid until the call after next), or nil
  /// when the pass is over.
  package func next() -> (indices: ArraySlice<Int>, events: SpikeEvents)? {
    guard taken < batches.count else { return nil }
    let idx = batches[taken]
    taken += 1
    if let pipeline {
      let events = pipeline.take()
      if taken < batches.count { pipeline.start(batches[taken]) }
      return (idx, events)
    }
    coder.encode(images, indices: Array(idx), into: slot)
    return (idx, slot.events)
  }

  /// Waits for a batch still being encoded (before leaving a pass early).
  package func cancel() { pipeline?.cancel() }
}
