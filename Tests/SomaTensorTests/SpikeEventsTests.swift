import SomaTensor
import Testing

/// The event (compressed-row) form of 0/1 matrices against dense tensor arithmetic.
struct SpikeEventsTests {
  static func spikes(rows: Int, cols: Int, p: Float, seed: UInt64) -> Tensor<Float> {
    var g = SomaRandom(seed: seed)
    return Tensor<Float>.bernoulli([rows, cols], p: p, using: &g)
  }

  @Test(arguments: [(3, 7), (200, 50), (1025, 33)])
  func roundTripAndProducts(rows: Int, cols: Int) {
    let x = Self.spikes(rows: rows, cols: cols, p: 0.2, seed: UInt64(rows))
    let ev = SpikeEvents(dense: x)
    #expect(ev.isBinary)
    #expect(ev.dense(Float.self) == x)
    #expect(ev.count == Int(x.sum().scalar))
    var g = SomaRandom(seed: 9)
    let w = Tensor<Float>.normal([cols, 12], using: &g)  // [in, out]
    var out = Tensor<Float>.zeros([rows, 12])
    let wc = w.contiguous()
    wc.withUnsafeBufferPointer { wp in
      out.withUnsafeMutableBufferPointer { op in
        ev.matmul(transposedWeight: wp.baseAddress!, nOut: 12, into: op.baseAddress!, rows: 0, rows)
      }
    }
    #expect(((out - x.matmul(w)).abs().max().scalar) <= 1e-4)
    // Weight gradient xᵀ·grad, by column and by scatter.
    let grad = Tensor<Float>.normal([rows, 12], using: &g)
    let want = x.transposed().matmul(grad)
    var byCol = Tensor<Float>.zeros([cols, 12])
    var scattered = Tensor<Float>.zeros([cols, 12])
    let cs = ev.byColumn()
    grad.withUnsafeBufferPointer { gp in
      byCol.withUnsafeMutableBufferPointer { bp in
        ev.columnGradient(gp.baseAddress!, nOut: 12, into: bp.baseAddress!, byColumn: cs, columns: 0, cols)
      }
      scattered.withUnsafeMutableBufferPointer { sp in
        ev.scatterGradient(gp.baseAddress!, nOut: 12, into: sp.baseAddress!, rows: 0, rows)
      }
    }
    #expect(((byCol - want).abs().max().scalar) <= 1e-3)
    #expect(((scattered - want).abs().max().scalar) <= 1e-3)
  }

  @Test func nonBinaryInputIsFlagged() {
    var x = Self.spikes(rows: 100, cols: 20, p: 0.3, seed: 3)
    #expect(SpikeEvents(dense: x).isBinary)
    x[scalarAt: 90, 5] = 0.5
    let ev = SpikeEvents(dense: x)
    #expect(!ev.isBinary)
    #expect(ev.dense(Float.self)[scalarAt: 90, 5] == 1)
    #expect(!SpikeEvents(dense: x.map { Double($0) == 0.5 ? 2 : $0 }).isBinary)
  }
}
