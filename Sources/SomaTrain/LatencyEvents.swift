import SomaData
import SomaKernels
import SomaNN

/// Latency-coded input for a mini-batch, straight from the dataset's pixel bytes to events
/// (rows t·batch + b), never through the dense [T, batch, 784] tensor (≈ 0.4 % ones).
package struct LatencyEventCoder {
  package let timeSteps: Int
  /// Spike step for each of the 256 byte values, or −1 for no spike.
  package let stepForByte: [Int32]

  package init(timeSteps: Int, encoder: LatencyEncoder) {
    self.timeSteps = timeSteps
    stepForByte = (0..<256).map { v in
      encoder.spikeStep(Double(Float(v) / 255)).map { Int32($0) } ?? -1
    }
  }

  /// Events for the images at `indices` of `split` (counting sort by row). Samples split over
  /// `threads` parts: each part counts and fills the rows of its own samples.
  package func events(_ split: LabeledImages, indices: ArraySlice<Int>, threads: Int = 2) -> SpikeEvents {
    let batch = indices.count
    let f = split.featureCount
    let rows = timeSteps * batch
    let parts = Swift.max(1, Swift.min(threads, batch))
    let order = Array(indices)
    var counts = [Int32](repeating: 0, count: rows + 1)
    var idx: [Int32] = []
    split.pixels.withUnsafeBufferPointer { px in
      stepForByte.withUnsafeBufferPointer { table in
        counts.withUnsafeMutableBufferPointer { cb in
          let (pxP, tP, cP) = (px.baseAddress!, table.baseAddress!, cb.baseAddress!)
          parallel(parts) { part in
            for b in (part * batch / parts)..<((part + 1) * batch / parts) {
              let img = pxP + order[b] * f
              for j in 0..<f {
                let t = tP[Int(img[j])]
                if t >= 0 { cP[Int(t) * batch + b + 1] += 1 }
              }
            }
          }
        }
      }
      for r in 0..<rows { counts[r + 1] += counts[r] }
      idx = [Int32](repeating: 0, count: Int(counts[rows]))
      var fill = counts
      stepForByte.withUnsafeBufferPointer { table in
        fill.withUnsafeMutableBufferPointer { fb in
          idx.withUnsafeMutableBufferPointer { ib in
            let (pxP, tP, fP, iP) = (px.baseAddress!, table.baseAddress!, fb.baseAddress!, ib.baseAddress!)
            parallel(parts) { part in
              for b in (part * batch / parts)..<((part + 1) * batch / parts) {
                let img = pxP + order[b] * f
                for j in 0..<f {
                  let t = tP[Int(img[j])]
                  if t >= 0 {
                    let r = Int(t) * batch + b
                    iP[Int(fP[r])] = Int32(j)
                    fP[r] += 1
                  }
                }
              }
            }
          }
        }
      }
    }
    return SpikeEvents(rows: rows, columns: f, rowStart: counts, indices: idx)
  }
}

/// Every image's latency code, computed once per split: each image's spiking pixels sorted by
/// spike step. A mini-batch is then a few block copies per image and step (no per-pixel table
/// lookups or branches per training step), so encoding stays well below the step's compute.
/// Needs images of at most 65 535 pixels (`LatencyCodes.fits`).
package struct LatencyCodes {
  let timeSteps: Int
  let featureCount: Int
  /// Image i's spikes are pixels[imageStart[i] ..< imageStart[i + 1]], in step order; those at
  /// step t are the offsets stepStart[i·(T+1) + t] ..< stepStart[i·(T+1) + t + 1] within it.
  let imageStart: [Int]
  let stepStart: [UInt16]
  /// The spiking pixels of all images, then 8 padding entries.
  let pixels: [UInt16]

  package static func fits(_ split: LabeledImages) -> Bool { split.featureCount <= Int(UInt16.max) }

  package init(_ split: LabeledImages, coder: LatencyEventCoder, threads: Int = 2) {
    precondition(Self.fits(split), "LatencyCodes: \(split.featureCount) pixels per image exceed 65535")
    let (n, f, T) = (split.count, split.featureCount, coder.timeSteps)
    timeSteps = T
    featureCount = f
    var starts = [Int](repeating: 0, count: n + 1)
    var offsets = [UInt16](repeating: 0, count: n * (T + 1))
    split.pixels.withUnsafeBufferPointer { px in
      coder.stepForByte.withUnsafeBufferPointer { table in
        for i in 0..<n {
          var c = 0
          for j in 0..<f where table[Int(px[i * f + j])] >= 0 { c += 1 }
          starts[i + 1] = starts[i] + c
        }
      }
    }
    // 8 spare entries: the batch kernel reads whole blocks of 8 past a run's end.
    var codes = [UInt16](repeating: 0, count: starts[n] + 8)
    split.pixels.withUnsafeBufferPointer { px in
      coder.stepForByte.withUnsafeBufferPointer { table in
        starts.withUnsafeBufferPointer { sb in
          offsets.withUnsafeMutableBufferPointer { ob in
            codes.withUnsafeMutableBufferPointer { cb in
              let (pxP, tP, sP, oP, cP) = (px.baseAddress!, table.baseAddress!, sb.baseAddress!, ob.baseAddress!, cb.baseAddress)
              let parts = Swift.max(1, Swift.min(threads, n))
              parallel(parts) { part in
                var fill = [Int](repeating: 0, count: T + 1)
                for i in (part * n / parts)..<((part + 1) * n / parts) {
                  // Counting sort of the image's spikes by step.
                  let img = pxP + i * f
                  let o = oP + i * (T + 1)
                  for t in 0...T { fill[t] = 0 }
                  for j in 0..<f {
                    let t = tP[Int(img[j])]
                    if t >= 0 { fill[Int(t) + 1] += 1 }
                  }
                  for t in 0..<T { fill[t + 1] += fill[t] }
                  for t in 0...T { o[t] = UInt16(fill[t]) }
                  let base = cP! + sP[i]
                  for j in 0..<f {
                    let t = tP[Int(img[j])]
                    if t >= 0 {
                      base[fill[Int(t)]] = UInt16(j)
                      fill[Int(t)] += 1
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    imageStart = starts
    stepStart = offsets
    pixels = codes
  }

  /// Events for the images at `indices` (rows t·batch + b), as `LatencyEventCoder.events`.
  package func events(indices: ArraySlice<Int>) -> SpikeEvents {
    let slot = EventSlot()
    encode(indices: Array(indices), into: slot)
    return slot.events
  }
}

extension LatencyCodes {
  /// Writes the events of the images at `indices` into `slot`'s arrays, reusing their memory
  /// when no earlier `slot.events` is still held. One thread, in chunks of `chunkSteps` steps
  /// with a pool yield point after each, so it can run as a `PoolBackgroundTask`.
  package func encode(indices: [Int], into slot: EventSlot, chunkSteps: Int = 10) {
    let batch = indices.count
    let T = timeSteps
    let rows = T * batch
    if slot.rowStart.count != rows + 1 {
      slot.rowStart = [Int32](repeating: 0, count: rows + 1)
    }
    indices.withUnsafeBufferPointer { order in
      stepStart.withUnsafeBufferPointer { ob in
        let (oP, stP) = (order.baseAddress, ob.baseAddress!)
        func before(_ t: Int) -> Int { soma_latency_batch_count(stP, oP, batch, T, t) }
        let total = before(T)
        // Resize by the difference only; every slot is overwritten below.
        let have = slot.indices.count
        if have > total {
          slot.indices.removeLast(have - total)
        } else if have < total {
          slot.indices.append(contentsOf: repeatElement(0, count: total - have))
        }
        PoolBackgroundTask.yield()
        pixels.withUnsafeBufferPointer { pb in
          imageStart.withUnsafeBufferPointer { sb in
            slot.rowStart.withUnsafeMutableBufferPointer { rb in
              slot.indices.withUnsafeMutableBufferPointer { ib in
                var (t0, pos0) = (0, 0)
                while t0 < T {
                  let t1 = Swift.min(t0 + chunkSteps, T)
                  let pos1 = t1 == T ? total : before(t1)
                  soma_latency_batch_fill(
                    pb.baseAddress!, sb.baseAddress!, stP, oP, batch, T, t0, t1, pos0, pos1,
                    rb.baseAddress!, ib.baseAddress)
                  PoolBackgroundTask.yield()
                  (t0, pos0) = (t1, pos1)
                }
              }
            }
          }
        }
      }
    }
    slot.rows = rows
    slot.columns = featureCount
  }
}

/// One batch's event arrays, kept across steps and written by one thread at a time (see
/// `BatchPipeline`). Separate stored properties, so both arrays can be open for writing at once.
package final class EventSlot: @unchecked Sendable {
  package var rowStart: [Int32] = [0]
  package var indices: [Int32] = []
  package var rows = 0
  package var columns = 0

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
  let codes: LatencyCodes
  private let slots = [EventSlot(), EventSlot()]
  private var pending: (task: PoolBackgroundTask, slot: EventSlot)?
  private var turn = 0

  package init(codes: LatencyCodes) { self.codes = codes }

  /// Starts encoding the images at `indices` (the previous batch must have been taken).
  package func start(_ indices: ArraySlice<Int>) {
    precondition(pending == nil, "BatchPipeline: the previous batch was not taken")
    let slot = slots[turn]
    turn = 1 - turn
    let (codes, order) = (self.codes, Array(indices))
    pending = (PoolBackgroundTask { codes.encode(indices: order, into: slot) }, slot)
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

/// One pass's batches in `order`, as the training loop gets them: with two threads or more
/// and precomputed codes, each batch is encoded during the previous step (`BatchPipeline`);
/// otherwise at the start of its own step, from the codes or from the raw pixels.
package final class BatchFeed {
  let order: [Int]
  let batchSize: Int
  let images: LabeledImages
  let coder: LatencyEventCoder
  let codes: LatencyCodes?
  let threads: Int
  private let pipeline: BatchPipeline?
  private let slot = EventSlot()
  private var start = 0

  package init(
    order: [Int], batchSize: Int, images: LabeledImages, coder: LatencyEventCoder,
    codes: LatencyCodes?, threads: Int
  ) {
    (self.order, self.batchSize, self.images, self.coder) = (order, batchSize, images, coder)
    (self.codes, self.threads) = (codes, threads)
    pipeline = threads >= 2 ? codes.map { BatchPipeline(codes: $0) } : nil
    pipeline?.start(batch(at: 0))
  }

  private func batch(at s: Int) -> ArraySlice<Int> {
    order[s..<Swift.min(s + batchSize, order.count)]
  }

  /// The next batch's image indices and events (valid until the call after next), or nil
  /// when the pass is over.
  package func next() -> (indices: ArraySlice<Int>, events: SpikeEvents)? {
    guard start < order.count else { return nil }
    let idx = batch(at: start)
    start += batchSize
    if let pipeline {
      let events = pipeline.take()
      if start < order.count { pipeline.start(batch(at: start)) }
      return (idx, events)
    }
    if let codes {
      codes.encode(indices: Array(idx), into: slot)
      return (idx, slot.events)
    }
    return (idx, coder.events(images, indices: idx, threads: threads))
  }

  /// Waits for a batch still being encoded (before leaving a pass early).
  package func cancel() { pipeline?.cancel() }
}
