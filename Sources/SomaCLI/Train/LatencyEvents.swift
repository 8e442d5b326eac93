import SomaData
import SomaNN

/// Latency-coded input for a mini-batch, straight from the dataset's pixel bytes to events
/// (rows t·batch + b), never through the dense [T, batch, 784] tensor (≈ 0.4 % ones).
struct LatencyEventCoder {
  let timeSteps: Int
  /// Spike step for each of the 256 byte values, or −1 for no spike.
  let stepForByte: [Int32]

  init(timeSteps: Int, encoder: LatencyEncoder) {
    self.timeSteps = timeSteps
    stepForByte = (0..<256).map { v in
      encoder.spikeStep(Double(Float(v) / 255)).map { Int32($0) } ?? -1
    }
  }

  /// Events for the images at `indices` of `split` (counting sort by row). Samples split over
  /// `threads` parts: each part counts and fills the rows of its own samples.
  func events(_ split: LabeledImages, indices: ArraySlice<Int>, threads: Int = 2) -> SpikeEvents {
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
