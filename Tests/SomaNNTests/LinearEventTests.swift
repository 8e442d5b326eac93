import SomaKernels
import Testing

@testable import SomaNN

/// The tape's Linear on 0/1 input: the event forward pass and weight gradient against a plain
/// reference computed here in Double (y = x·Wᵀ + b, dX = g·W, dW = gᵀ·x, db = Σ g), for odd
/// widths, one row, with and without bias, at 0 %, ~2 %, ~30 % and 100 % density; input with
/// other values runs dense.
@Suite struct LinearEventTests {
  struct Case: Sendable, CustomStringConvertible {
    var rows: Int
    var inputs: Int
    var outputs: Int
    var bias: Bool
    var description: String { "\(rows)×\(inputs)→\(outputs)\(bias ? "" : " no bias")" }
  }

  /// Widths not multiples of 8, 16 or 64 (and some that are), one row, and enough rows and
  /// inputs (≥ 192) that the AVX2 weight gradient reads g from packed slabs.
  static let cases = [
    Case(rows: 1, inputs: 37, outputs: 5, bias: true),
    Case(rows: 7, inputs: 100, outputs: 130, bias: false),
    Case(rows: 33, inputs: 203, outputs: 70, bias: true),
    Case(rows: 200, inputs: 520, outputs: 129, bias: false),
    Case(rows: 64, inputs: 64, outputs: 64, bias: true),
  ]
  static let densities: [Float] = [0, 0.02, 0.3, 1]

  /// The four results in Double, from plain loops over the dense operands.
  static func reference<T: TensorScalar>(
    x: Tensor<T>, w: Tensor<T>, b: Tensor<T>?, g: Tensor<T>
  ) -> (y: [Double], dX: [Double], dW: [Double], db: [Double]) {
    let (rows, n, k) = (x.shape[0], w.shape[0], w.shape[1])
    let xs = x.scalars.map { Double($0) }
    let ws = w.scalars.map { Double($0) }
    let gs = g.scalars.map { Double($0) }
    let bs = b.map { $0.scalars.map { Double($0) } } ?? [Double](repeating: 0, count: n)
    var y = [Double](repeating: 0, count: rows * n)
    var dX = [Double](repeating: 0, count: rows * k)
    var dW = [Double](repeating: 0, count: n * k)
    var db = [Double](repeating: 0, count: n)
    for r in 0..<rows {
      for j in 0..<n {
        var s = bs[j]
        for i in 0..<k { s += xs[r * k + i] * ws[j * k + i] }
        y[r * n + j] = s
        db[j] += gs[r * n + j]
        for i in 0..<k {
          dX[r * k + i] += gs[r * n + j] * ws[j * k + i]
          dW[j * k + i] += gs[r * n + j] * xs[r * k + i]
        }
      }
    }
    return (y, dX, dW, db)
  }

  /// Largest |a − b| over the largest |b| (at least 1).
  static func error<T: TensorScalar>(_ a: Tensor<T>?, _ b: [Double]) -> Double {
    guard let a else { return .infinity }
    let av = a.scalars.map { Double($0) }
    guard av.count == b.count else { return .infinity }
    let scale = Swift.max(1, b.map { Swift.abs($0) }.max() ?? 0)
    return zip(av, b).map { Swift.abs($0 - $1) }.max().map { $0 / scale } ?? 0
  }

  /// Runs `linear` forward and backward with `policy` on 0/1 input of density `p` and
  /// checks all four results against the reference; returns the events `linear` would read.
  static func check<T: TensorScalar>(
    _ c: Case, p: Float, policy: EventPolicy, _: T.Type, tolerance: Double, seed: UInt64 = 3,
    input: Tensor<T>? = nil
  ) -> LinearSpikes? {
    var rng = SomaRandom(seed: seed)
    let x =
      input
      ?? Tensor<T>.bernoulli([c.rows, c.inputs], p: T(Double(p)), using: &rng)
    let w = Tensor<T>.uniform([c.outputs, c.inputs], low: -1, high: 1, using: &rng)
    let b = c.bias ? Tensor<T>.uniform([c.outputs], low: -1, high: 1, using: &rng) : nil
    let g = Tensor<T>.uniform([c.rows, c.outputs], low: -1, high: 1, using: &rng)
    let xv = Variable(x, requiresGrad: true)
    let wv = Variable(w, requiresGrad: true)
    let bv = b.map { Variable($0, requiresGrad: true) }
    let y = linear(xv, weight: wv, bias: bv, eventPolicy: policy)
    y.backward(seed: g)
    let ref = reference(x: x, w: w, b: b, g: g)
    let label = "\(c), density \(p), \(policy), \(T.self)"
    #expect(error(y.value, ref.y) < tolerance, "y: \(label)")
    #expect(error(xv.grad, ref.dX) < tolerance, "dX: \(label)")
    #expect(error(wv.grad, ref.dW) < tolerance, "dW: \(label)")
    if let bv { #expect(error(bv.grad, ref.db) < tolerance, "db: \(label)") }
    return x.withUnsafeBufferPointer {
      LinearSpikes(
        $0.baseAddress!, rows: c.rows, width: c.inputs, outputs: c.outputs, policy: policy,
        needWeight: true)
    }
  }

  @Test(arguments: cases)
  func floatEventsMatchReference(_ c: Case) {
    for p in Self.densities {
      let spikes = Self.check(c, p: p, policy: .always, Float.self, tolerance: 1e-5)
      // Forced events: both passes must have read them.
      #expect(spikes?.forward == true && spikes?.weight == true, "\(c) at \(p)")
    }
  }

  @Test(arguments: cases)
  func doubleEventsMatchReference(_ c: Case) {
    for p in Self.densities {
      let spikes = Self.check(c, p: p, policy: .always, Double.self, tolerance: 1e-12)
      #expect(spikes?.forward == true && spikes?.weight == true, "\(c) at \(p)")
    }
  }

  /// Dense runs (policy never, and Double under auto) give the same results and read no events.
  @Test func densePathsMatchReference() {
    for c in Self.cases {
      #expect(Self.check(c, p: 0.3, policy: .never, Float.self, tolerance: 1e-5) == nil)
      #expect(Self.check(c, p: 0.02, policy: .automatic, Double.self, tolerance: 1e-12) == nil)
    }
  }

  /// Input with a value other than 0 and 1, in the first row or only in the last one, runs
  /// dense even when events are forced.
  @Test func nonBinaryInputRunsDense() {
    for c in Self.cases {
      for lastRowOnly in [false, true] {
        var rng = SomaRandom(seed: 9)
        var x = Tensor<Float>.bernoulli([c.rows, c.inputs], p: 0.2, using: &rng)
        x[scalarAt: lastRowOnly ? c.rows - 1 : 0, c.inputs / 2] = 0.5
        let spikes = Self.check(c, p: 0.2, policy: .always, Float.self, tolerance: 1e-5, input: x)
        #expect(spikes == nil, "\(c), last row only \(lastRowOnly)")
      }
    }
  }

  /// Under `.auto`, the forward pass pays for its transposed weight only with enough rows,
  /// and neither pass reads events above the threshold.
  @Test func automaticPolicyFollowsDensityAndRows() {
    let policy = EventPolicy.auto(threshold: 0.45)
    let wide = Case(rows: 256, inputs: 300, outputs: 200, bias: true)
    let sparse = Self.check(wide, p: 0.05, policy: policy, Float.self, tolerance: 1e-5)
    #expect(sparse?.forward == true && sparse?.weight == true)
    #expect(Self.check(wide, p: 0.7, policy: policy, Float.self, tolerance: 1e-5) == nil)
    let oneRow = Case(rows: 1, inputs: 300, outputs: 200, bias: true)
    let few = Self.check(oneRow, p: 0.05, policy: policy, Float.self, tolerance: 1e-5)
    #expect(few?.forward == false && few?.weight == true)
  }

  /// A multi-step input [T, batch, in] folds into rows, as the dense path does.
  @Test func leadingAxesFoldIntoRows() {
    var rng = SomaRandom(seed: 4)
    let x = Tensor<Float>.bernoulli([3, 5, 70], p: 0.3, using: &rng)
    let fc = Linear<Float>(70, 90, seed: 2)
    let events = fc(Variable(x))
    var dense = fc
    dense.eventPolicy = .never
    let reference = dense(Variable(x))
    #expect(events.shape == [3, 5, 90])
    #expect(Self.error(events.value, reference.value.scalars.map { Double($0) }) < 1e-5)
  }

  /// The kernels' new forms against the ones they extend, on this thread (AVX2 or AVX-512
  /// where the CPU has it, then the portable C): packing Wᵀ from W equals packing an explicit
  /// transpose, and a scatter written transposed equals the transpose of the plain scatter,
  /// bit for bit.
  @Test func transposedKernelFormsMatchPlainOnes() {
    for portable in [false, true] {
      soma_use_portable_kernels(portable ? 1 : 0)
      defer { soma_use_portable_kernels(0) }
      for (n, kc) in [(5, 37), (70, 203), (129, 64), (64, 9)] {
        var rng = SomaRandom(seed: UInt64(n * kc))
        let w = Tensor<Float>.uniform([n, kc], low: -1, high: 1, using: &rng)
        let wt = w.transposedCopy()
        let count = soma_sparse_packed_count(kc, n)
        var a = [Float](repeating: 1, count: count)
        var b = [Float](repeating: 2, count: count)
        w.withUnsafeBufferPointer { pw in
          soma_sparse_pack_transposed_f32(pw.baseAddress!, n, kc, 0, kc / 3, &a)
          soma_sparse_pack_transposed_f32(pw.baseAddress!, n, kc, kc / 3, kc, &a)
        }
        wt.withUnsafeBufferPointer { soma_sparse_pack_f32($0.baseAddress!, kc, n, 0, kc, &b) }
        #expect(a == b, "pack \(n)×\(kc), portable \(portable)")

        // Scatter rows of Wᵀ [kc, n] into `rows` outputs, by the column bits of x [rows, kc].
        let rows = n + 3
        let padded = (rows + 15) / 16 * 16
        let x = Tensor<Float>.bernoulli([rows, kc], p: 0.3, using: &rng)
        var mask = [UInt16](repeating: 0, count: (kc + 15) / 16 * padded)
        var bits = [UInt16](repeating: 0, count: kc * padded / 16)
        var binary: Int32 = 1
        x.withUnsafeBufferPointer { px in
          _ = soma_sparse_masks_f32(px.baseAddress!, 0, rows, kc, &binary, &mask, padded)
        }
        soma_sparse_transpose_masks(&mask, kc, padded, 0, (kc + 15) / 16, 0, padded / 16, &bits)
        for packed in [false, true] {
          var plain = [Float](repeating: 0, count: rows * n)
          var transposed = [Float](repeating: 0, count: n * rows)
          var next = 0
          wt.withUnsafeBufferPointer { pt in
            b.withUnsafeBufferPointer { pb in
              let (src, p) = (pt.baseAddress!, packed ? pb.baseAddress : nil)
              soma_sparse_scatter_shared_f32(
                bits, 1, padded / 16, kc, 0, rows, 0, 1, &next, src, p, n, nil, &plain, 0, nil, nil,
                nil, nil)
              next = 0
              soma_sparse_scatter_shared_f32(
                bits, 1, padded / 16, kc, 0, rows, 0, 1, &next, src, p, n, nil, &transposed, rows,
                nil, nil, nil, nil)
            }
          }
          var same = true
          for i in 0..<rows {
            for j in 0..<n where plain[i * n + j] != transposed[j * rows + i] { same = false }
          }
          #expect(same, "scatter \(rows)×\(kc)→\(n), packed \(packed), portable \(portable)")
        }
      }
    }
  }
}
