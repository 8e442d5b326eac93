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
    #expect(out.spikes[4, 0, 0] == 1)
    #expect(out.spikes[13, 0, 1] == 1)
    #expect(out.spikes[27, 1, 0] == 1)
    #expect(out.spikes[79, 1, 2] == 1)

    let events = LatencyEncoder(timeSteps: 100).events(x)
    #expect(events == [
      [SpikeEvent(step: 4, index: 0), SpikeEvent(step: 13, index: 1)],
      [SpikeEvent(step: 27, index: 0), SpikeEvent(step: 79, index: 2)],
    ])
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

  @Test func latencyEventsMatchDenseSpikes() {
    var g = SomaRandom(seed: 3)
    let x = Tensor<Float>.uniform([4, 50], using: &g)
    let e = LatencyEncoder(timeSteps: 30)
    let dense = e.encode(x).spikes
    var fromEvents = Tensor<Float>.zeros([30, 4, 50])
    for (s, list) in e.events(x).enumerated() {
      #expect(list == list.sorted())
      for ev in list { fromEvents[Int(ev.step), s, Int(ev.index)] = 1 }
    }
    #expect(fromEvents == dense)
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
    var latency = LatencyEncoder(timeSteps: 40)
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
    var dc = DirectCurrentEncoder(timeSteps: 4)
    for x in [x1, x3] {
      _ = dc.encode(x, into: &buffer)
      #expect(buffer == dc.encode(x).spikes)
    }
  }

  @Test func directCurrentRepeatsTheInput() {
    let x = Tensor<Float>([0.5, 0, 0.25, 1], shape: [2, 2])
    var e = DirectCurrentEncoder(timeSteps: 3)
    let out = e.encode(x)
    #expect(out.spikes.shape == [3, 2, 2])
    for t in 0..<3 { #expect(out.spikes[t].scalars == x.scalars) }
    #expect(out.nonzeroCount == 9)
  }
}
