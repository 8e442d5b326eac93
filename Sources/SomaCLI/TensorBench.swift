internal import COpenBLAS
import SomaTensor

/// `soma bench tensor`: the Tensor layer against raw BLAS and raw-pointer loops on the same
/// buffers, in the same run. Each pair is timed in alternation so machine noise hits both
/// sides alike; the note gives the ratio and the bar from issue #2.
public enum TensorBench {
  public static func run(seconds: Double) -> [BenchResult] {
    let budget = seconds / 3
    return matmul(seconds: budget) + elementwise(seconds: budget) + broadcast(seconds: budget)
  }

  /// Times `a` and `b` alternately (after warm-up) until `seconds` have passed; returns their
  /// median milliseconds, the calls timed per side and the fastest call of each (the best
  /// call is the steadier figure on a shared machine).
  static func timePair(
    seconds: Double, _ a: () -> Void, _ b: () -> Void
  ) -> (a: Double, b: Double, calls: Int, bestA: Double, bestB: Double) {
    for _ in 0..<3 {
      a()
      b()
    }
    var ta: [Double] = []
    var tb: [Double] = []
    let end = BenchTimer.now() + seconds
    while BenchTimer.now() < end || ta.count < 5 {
      var t0 = BenchTimer.now()
      a()
      ta.append((BenchTimer.now() - t0) * 1e3)
      t0 = BenchTimer.now()
      b()
      tb.append((BenchTimer.now() - t0) * 1e3)
    }
    return (BenchTimer.median(ta), BenchTimer.median(tb), ta.count, ta.min()!, tb.min()!)
  }

  static func times(_ x: Double) -> String { String(Double((x * 100).rounded()) / 100) }

  static func percent(_ x: Double) -> String {
    String(Int((x * 100).rounded())) + " %"
  }

  /// x [1024, 784] · wᵀ with w stored [256, 784]: `Tensor.matmul` of a transposed view against
  /// `cblas_sgemm` with the transpose flag, on the same buffers.
  static func matmul(seconds: Double) -> [BenchResult] {
    let (m, k, n) = (1024, 784, 256)
    var g = SomaRandom(seed: 1)
    let x = Tensor<Float>.uniform([m, k], low: -1, high: 1, using: &g)
    let w = Tensor<Float>.uniform([n, k], low: -1, high: 1, using: &g)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
    defer { c.deallocate() }
    var sink: Float = 0
    let t = x.withUnsafeBufferPointer { px in
      w.withUnsafeBufferPointer { pw in
        timePair(
          seconds: seconds,
          {
            let y = x.matmul(w.transposed())
            sink += y[scalarAt: 0, 0]
          },
          {
            cblas_sgemm(
              CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(n), blasint(k), 1,
              px.baseAddress, blasint(k), pw.baseAddress, blasint(k), 0, c, blasint(n))
            sink += c[0]
          })
      }
    }
    let flop = 2.0 * Double(m * n * k)
    let ratio = t.b / t.a
    withExtendedLifetime(sink) {}
    return [
      BenchResult(
        name: "tensor.matmul [1024,784]x[256,784]^T", msPerCall: t.a, calls: t.calls,
        throughput: (flop / t.a / 1e6, "GFLOP/s"),
        note:
          "\(percent(ratio)) of raw cblas_sgemm by median, \(percent(t.bestB / t.bestA)) by best call"
          + " (bar: >= 95 %)"),
      BenchResult(
        name: "raw cblas_sgemm [1024,784]x[256,784]^T", msPerCall: t.b, calls: t.calls,
        throughput: (flop / t.b / 1e6, "GFLOP/s")),
    ]
  }

  /// Contiguous add and multiply of 1M Floats: `a + b` (allocating its result, as the
  /// operator does) against a raw-pointer loop into a preallocated buffer.
  static func elementwise(seconds: Double) -> [BenchResult] {
    let count = 1 << 20
    var g = SomaRandom(seed: 2)
    let a = Tensor<Float>.uniform([count], low: -1, high: 1, using: &g)
    let b = Tensor<Float>.uniform([count], low: 1, high: 2, using: &g)
    let out = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { out.deallocate() }
    var sink: Float = 0
    var results: [BenchResult] = []
    for op in ["add", "multiply"] {
      let isAdd = op == "add"
      let t = a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
          timePair(
            seconds: seconds / 2,
            {
              let y = isAdd ? a + b : a * b
              sink += y[scalarAt: count - 1]
            },
            {
              let x = pa.baseAddress!
              let z = pb.baseAddress!
              if isAdd {
                for i in 0..<count { out[i] = x[i] + z[i] }
              } else {
                for i in 0..<count { out[i] = x[i] * z[i] }
              }
              sink += out[count - 1]
            })
        }
      }
      let ratio = t.b / t.a
      results.append(
        BenchResult(
          name: "tensor.\(op) 1M floats", msPerCall: t.a, calls: t.calls,
          throughput: (Double(count) / t.a / 1e6, "G elem/s"),
          note: "\(percent(ratio)) of a raw-pointer loop by median, "
            + "\(percent(t.bestB / t.bestA)) by best call (bar: >= 50 %)"))
      results.append(
        BenchResult(
          name: "raw loop \(op) 1M floats", msPerCall: t.b, calls: t.calls,
          throughput: (Double(count) / t.b / 1e6, "G elem/s")))
    }
    withExtendedLifetime(sink) {}
    return results
  }

  /// [1024, 1024] + [1024] (the row broadcast with stride 0) against the contiguous
  /// [1024, 1024] + [1024, 1024].
  static func broadcast(seconds: Double) -> [BenchResult] {
    var g = SomaRandom(seed: 3)
    let a = Tensor<Float>.uniform([1024, 1024], low: -1, high: 1, using: &g)
    let b = Tensor<Float>.uniform([1024, 1024], low: -1, high: 1, using: &g)
    let row = Tensor<Float>.uniform([1024], low: -1, high: 1, using: &g)
    var sink: Float = 0
    let t = timePair(
      seconds: seconds,
      {
        let y = a + row
        sink += y[scalarAt: 1023, 1023]
      },
      {
        let y = a + b
        sink += y[scalarAt: 1023, 1023]
      })
    // Not a bar in the issue, but common in backward passes: a transposed operand.
    let tt = BenchTimer.measure(seconds: seconds / 2) {
      let y = a + b.transposed()
      sink += y[scalarAt: 1023, 1023]
    }
    withExtendedLifetime(sink) {}
    let slowdown = t.a / t.b
    let elems = Double(1024 * 1024)
    return [
      BenchResult(
        name: "tensor.add row broadcast [1024,1024]+[1024]", msPerCall: t.a, calls: t.calls,
        throughput: (elems / t.a / 1e6, "G elem/s"),
        note:
          "\(times(slowdown))x the contiguous add by median, \(times(t.bestA / t.bestB))x by best"
          + " call (bar: <= 1.5x)"),
      BenchResult(
        name: "tensor.add contiguous [1024,1024]+[1024,1024]", msPerCall: t.b, calls: t.calls,
        throughput: (elems / t.b / 1e6, "G elem/s")),
      BenchResult(
        name: "tensor.add transposed [1024,1024]+[1024,1024]^T", msPerCall: tt.ms,
        calls: tt.calls, throughput: (elems / tt.ms / 1e6, "G elem/s"),
        note: "\(times(tt.ms / t.b))x the contiguous add (tiled walk)"),
    ]
  }
}
