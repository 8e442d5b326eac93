import SomaData
import SomaTensor
import Testing

@Suite struct EncoderTests {
  /// Spike steps worked out by hand: for x = b/255, x/(x − 0.2) = b/(b − 51), so the step is
  /// floor(20 · ln(b / (b − 51))).
  ///   b = 255: 20 · ln 1.25 = 4.46 → 4      b = 102: 20 · ln 2 = 13.86 → 13
  ///   b = 68:  20 · ln 4 = 27.73 → 27      b = 52:  20 · ln 52 = 79.02 → 79
  ///   b = 51 (x = 0.2 exactly) and below: never.
  @Test(arguments: [(255, 4), (102, 13), (68, 27), (52, 79)])
  func latencyStepsForPixelBytes(byte: Int, step: Int) {
    let e = LatencyEncoder(timeSteps: 100)
    #expect(e.spikeStep(Double(Float(byte) / 255)) == step)
  }

  @Test func latencyNeverFiresAtOrBelowThresholdOrPastT() {
    let e = LatencyEncoder(timeSteps: 100)
    #expect(e.spikeStep(0.2) == nil)
    #expect(e.spikeStep(Double(Float(51) / 255)) == nil)
    #expect(e.spikeStep(0.19) == nil)
    #expect(e.spikeStep(0) == nil)
    #expect(e.spikeStep(.nan) == nil)
    // x = 0.21: 20 · ln 21 = 60.9 → 60 with T = 100, but not with T = 60.
    #expect(e.spikeStep(0.21) == 60)
    #expect(LatencyEncoder(timeSteps: 60).spikeStep(0.21) == nil)
    #expect(LatencyEncoder(timeSteps: 61).spikeStep(0.21) == 60)
  }

  @Test func latencyEncodeTensor() {
    // Sample 0: bytes 255, 102, 0; sample 1: 68, 51, 52.
    let x = Tensor<Float>(
      [255, 102, 0, 68, 51, 52].map { Float($0) / 255 }, shape: [2, 3])
    let out = LatencyEncoder(timeSteps: 100).encode(x)
    #expect(out.spikes.shape == [100, 2, 3])
    #expect(out.nonzeroCount == 4)
    #expect(out.density == 4.0 / 600)
    #expect(out.spikes.scalars.reduce(0, +) == 4)
    #expect(out.spikes[scalarAt: 4, 0, 0] == 1)
    #expect(out.spikes[scalarAt: 13, 0, 1] == 1)
    #expect(out.spikes[scalarAt: 27, 1, 0] == 1)
    #expect(out.spikes[scalarAt: 79, 1, 2] == 1)

    // Events: row t · batch + b.
    let events = LatencyEncoder(timeSteps: 100).spikeEvents(x)
    #expect(events.rows == 200 && events.columns == 3 && events.count == 4)
    var spikes: [(row: Int, column: Int)] = []
    for r in 0..<events.rows {
      for e in Int(events.rowStart[r])..<Int(events.rowStart[r + 1]) {
        spikes.append((r, Int(events.indices[e])))
      }
    }
    #expect(spikes.map(\.row) == [4 * 2 + 0, 13 * 2 + 0, 27 * 2 + 1, 79 * 2 + 1])
    #expect(spikes.map(\.column) == [0, 1, 0, 2])
  }

  @Test func latencyTensorAgreesWithSpikeStepForEveryByteAndOddValues() {
    let values = (0..<256).map { Float($0) / 255 } + [0.2000001, 0.5000001, 0.99999994, 1.5, -1]
    let e = LatencyEncoder(timeSteps: 100)
    let out = e.encode(Tensor<Float>(values, shape: [1, values.count])).spikes
    for (j, x) in values.enumerated() {
      let column = out[.all, 0, j].scalars
      if let t = e.spikeStep(Double(x)) {
        #expect(column.enumerated().allSatisfy { $0.element == ($0.offset == t ? 1 : 0) }, "x = \(x)")
      } else {
        #expect(column.allSatisfy { $0 == 0 }, "x = \(x)")
      }
    }
  }

  @Test func latencyEventsMatchDenseSpikes() throws {
    var g = SomaRandom(seed: 3)
    let x = Tensor<Float>.uniform([4, 50], using: &g)
    let e = LatencyEncoder(timeSteps: 30)
    let dense = e.encode(x).spikes
    let reference = SpikeEvents(dense: dense.reshaped([30 * 4, 50]))
    let events = e.spikeEvents(x)
    #expect(events.rowStart == reference.rowStart)
    #expect(events.indices == reference.indices)
    #expect(events.dense(Float.self) == dense.reshaped([120, 50]))

    // From dataset bytes, for a batch picked out of order.
    let pixels: [UInt8] = (0..<30).map { (i: Int) -> UInt8 in UInt8((i * 37 + 11) % 256) }
    let images = LabeledImages(pixels: pixels, labels: [0, 1, 2, 3, 4], rows: 2, columns: 3)
    let indices = [4, 0, 2]
    let fromBytes = e.spikeEvents(images, at: indices)
    let fromFloats = e.spikeEvents(images.images(at: indices))
    #expect(fromBytes.rows == 90)
    #expect(fromBytes.count > 0)
    #expect(fromBytes.rowStart == fromFloats.rowStart)
    #expect(fromBytes.indices == fromFloats.indices)
  }

  @Test func poissonIsReproducibleAndHasTheRightRate() {
    var g = SomaRandom(seed: 11)
    let x = Tensor<Float>.uniform([8, 100], using: &g)
    var a = PoissonEncoder(timeSteps: 50, seed: 42)
    var b = PoissonEncoder(timeSteps: 50, seed: 42)
    var c = PoissonEncoder(timeSteps: 50, seed: 43)
    let a1 = a.encode(x), a2 = a.encode(x)
    #expect(a1.spikes == b.encode(x).spikes)
    #expect(a2.spikes == b.encode(x).spikes)  // the generator advances the same way
    #expect(a1.spikes != a2.spikes)
    #expect(a1.spikes != c.encode(x).spikes)
    #expect(a1.spikes.scalars.allSatisfy { $0 == 0 || $0 == 1 })
    // The density estimates the mean input: 40 000 Bernoulli draws, σ ≈ 0.0025.
    let mean = Double(x.scalars.reduce(0, +)) / Double(x.count)
    #expect(abs(a1.density - mean) < 0.015, "density \(a1.density), mean input \(mean)")
    // Inputs 0 and 1 are certain.
    var d = PoissonEncoder(timeSteps: 20, seed: 1)
    let sure = d.encode(Tensor<Float>([0, 1], shape: [1, 2])).spikes
    #expect(sure[.all, 0, 0].scalars.allSatisfy { $0 == 0 })
    #expect(sure[.all, 0, 1].scalars.allSatisfy { $0 == 1 })
  }

  @Test func encodingIntoABufferMatchesAFreshEncoding() {
    var g = SomaRandom(seed: 5)
    let x1 = Tensor<Float>.uniform([3, 20], using: &g)
    let x2 = Tensor<Float>.uniform([3, 20], using: &g)
    let x3 = Tensor<Float>.uniform([2, 20], using: &g)
    var buffer = Tensor<Float>.zeros([0])
    let latency = LatencyEncoder(timeSteps: 40)
    for x in [x1, x2, x3] {
      let n = latency.encode(x, into: &buffer)
      let fresh = latency.encode(x)
      #expect(buffer == fresh.spikes)  // stale spikes from the previous batch are cleared
      #expect(n == fresh.nonzeroCount)
    }
    var p1 = PoissonEncoder(timeSteps: 10, seed: 8), p2 = PoissonEncoder(timeSteps: 10, seed: 8)
    for x in [x1, x2, x3] {
      let n = p1.encode(x, into: &buffer)
      #expect(buffer == p2.encode(x).spikes)
      #expect(n == Int(buffer.scalars.reduce(0, +)))
    }
    let dc = DirectCurrentEncoder(timeSteps: 4)
    for x in [x1, x3] {
      _ = dc.encode(x, into: &buffer)
      #expect(buffer == dc.encode(x).spikes)
    }
  }

  @Test func directCurrentRepeatsTheInput() {
    let x = Tensor<Float>([0.5, 0, 0.25, 1], shape: [2, 2])
    let e = DirectCurrentEncoder(timeSteps: 3)
    let out = e.encode(x)
    #expect(out.spikes.shape == [3, 2, 2])
    for t in 0..<3 { #expect(out.spikes[t].scalars == x.scalars) }
    #expect(out.nonzeroCount == 9)
  }
}
