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

  /// Events for the images at `indices` of `split` (counting sort by row).
  func events(_ split: LabeledImages, indices: ArraySlice<Int>) -> SpikeEvents {
    let batch = indices.count
    let f = split.featureCount
    let rows = timeSteps * batch
    var counts = [Int32](repeating: 0, count: rows + 1)
    split.pixels.withUnsafeBufferPointer { px in
      for (b, i) in indices.enumerated() {
        let img = px.baseAddress! + i * f
        for j in 0..<f {
          let t = stepForByte[Int(img[j])]
          if t >= 0 { counts[Int(t) * batch + b + 1] += 1 }
        }
      }
    }
    for r in 0..<rows { counts[r + 1] += counts[r] }
    var fill = counts
    var idx = [Int32](repeating: 0, count: Int(counts[rows]))
    split.pixels.withUnsafeBufferPointer { px in
      for (b, i) in indices.enumerated() {
        let img = px.baseAddress! + i * f
        for j in 0..<f {
          let t = stepForByte[Int(img[j])]
          if t >= 0 {
            let r = Int(t) * batch + b
            idx[Int(fill[r])] = Int32(j)
            fill[r] += 1
          }
        }
      }
    }
    return SpikeEvents(rows: rows, columns: f, rowStart: counts, indices: idx)
  }
}
