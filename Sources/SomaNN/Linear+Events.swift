import SomaKernels

// The tape's Linear layer on spike input. When x is 0/1 and sparse enough, y = x·Wᵀ + b and
// dW = gᵀ·x are event passes over x's row masks (the compiled network's mask scatter); dX =
// g·W stays a dense GEMM, as g is not sparse.

/// The 0/1 input [rows, width] of a tape Linear layer as events, and which passes read them.
///
/// Float runs the C kernels: the forward pass scatters rows of Wᵀ (packed, or transposed, once
/// per call) into the outputs through column bits, the weight gradient scatters rows of g into
/// dW through the row masks, writing dW [out, in] transposed from the kernel's tile. Other
/// element types run Swift loops over row and column lists, and only when the policy is
/// `.always`: the thresholds of `.auto` were measured for the C kernels.
@usableFromInline
struct LinearSpikes: @unchecked Sendable {
  @usableFromInline let rows: Int
  @usableFromInline let width: Int
  @usableFromInline let rowsPadded: Int
  /// rowMask[cb · rowsPadded + r]: the 16-bit mask of row r's non-zero columns in block cb
  /// (padding rows 0).
  @usableFromInline var rowMask: [UInt16]
  /// Row r's columns are list[begin[r] ..< end[r]] (element types without C kernels only).
  @usableFromInline var list: [Int32] = []
  @usableFromInline var begin: [Int32] = []
  @usableFromInline var end: [Int32] = []
  /// Number of non-zero entries.
  @usableFromInline var count = 0
  /// Whether the forward pass and the weight gradient read the events.
  @usableFromInline var forward = false
  @usableFromInline var weight = false

  @inlinable var density: Double { Double(count) / Double(Swift.max(1, rows * width)) }

  /// A weight element packed transposed for the forward pass costs about as much as this many
  /// event additions (csnn-fmnist's 6272 → 2048 layer, one thread, AVX2: the pack 9.7 ms, the
  /// scatter 43.5 ms for 1.02 G additions at 31 % of 256 rows): the forward pass reads events
  /// when density + transposeCost / rows is below the policy's threshold.
  @usableFromInline static var transposeCost: Double { 18 }

  /// The events of `x` [rows, width] when `policy` lets a pass read them: nil for `.never`,
  /// for input with an entry that is neither 0 nor 1 (the first row is checked before the
  /// rest), and when no pass would use them.
  @inlinable
  init?<T: TensorScalar>(
    _ x: UnsafePointer<T>, rows: Int, width: Int, outputs: Int, policy: EventPolicy,
    needWeight: Bool
  ) {
    let isFloat = T.self == Float.self
    if policy == .never || rows == 0 || width == 0 || (!isFloat && policy != .always) {
      return nil
    }
    for i in 0..<width where x[i] != 0 && x[i] != 1 { return nil }
    (self.rows, self.width) = (rows, width)
    rowsPadded = (rows + 15) / 16 * 16
    let blocks = (width + 15) / 16
    rowMask = [UInt16](repeating: 0, count: blocks * rowsPadded)
    let parts = Swift.max(1, Swift.min(spatialParts(rows, usesBLAS: false), rows / 16))
    var counts = [Int](repeating: 0, count: parts)
    var flags = [Int32](repeating: 1, count: parts)
    if !isFloat {
      list = [Int32](repeating: 0, count: rows * width + 16 * parts)
      begin = [Int32](repeating: 0, count: rows)
      end = [Int32](repeating: 0, count: rows)
    }
    let padded = rowsPadded
    rowMask.withUnsafeMutableBufferPointer { pm in
      list.withUnsafeMutableBufferPointer { pl in
        begin.withUnsafeMutableBufferPointer { pb in
          end.withUnsafeMutableBufferPointer { pe in
            counts.withUnsafeMutableBufferPointer { pc in
              flags.withUnsafeMutableBufferPointer { pf in
                let (m, c, f) = (pm.baseAddress!, pc.baseAddress!, pf.baseAddress!)
                let (l, b, e) = (pl.baseAddress, pb.baseAddress, pe.baseAddress)
                parallel(parts) { part in
                  let r0 = MLPKernels.split16(part, of: parts, count: rows)
                  let r1 = MLPKernels.split16(part + 1, of: parts, count: rows)
                  if isFloat {
                    c[part] = soma_sparse_masks_f32(
                      cast(x, Float.self), r0, r1, width, f + part, m, padded)
                  } else {
                    c[part] = MLPKernels.events(
                      x, rows: r0, r1, width: width, list: l!, offset: r0 * width + part * 16,
                      begin: b!, end: e!, binary: f + part, rowMask: m, rowsPadded: padded)
                  }
                }
              }
            }
          }
        }
      }
    }
    if flags.contains(0) { return nil }
    count = counts.reduce(0, +)
    forward = policy.useEvents(
      density: density + Self.transposeCost / Double(rows), outputs: outputs)
    weight = needWeight && policy.useEvents(density: density, outputs: outputs)
    if !forward && !weight { return nil }
  }

  /// y [rows, outputs] = x·Wᵀ (+ bias) for `weight` W [outputs, width], both contiguous.
  @inlinable
  func forward<T: TensorScalar>(
    weight w: UnsafePointer<T>, outputs n: Int, bias: UnsafePointer<T>?,
    into y: UnsafeMutablePointer<T>
  ) {
    let (rows, width) = (self.rows, self.width)
    let parts = spatialParts(rows * n, usesBLAS: false)
    guard T.self == Float.self else {
      // Wᵀ [width, n], so that each event adds one contiguous row.
      var wt = Tensor<T>(uninitializedShape: [width, n])
      wt.withUnsafeMutableBufferPointer { transpose(w, rows: n, cols: width, into: $0.baseAddress!) }
      let rowParts = Swift.max(1, Swift.min(parts, rows / 8))
      wt.withUnsafeBufferPointer { pw in
        list.withUnsafeBufferPointer { pl in
          begin.withUnsafeBufferPointer { pb in
            end.withUnsafeBufferPointer { pe in
              let (src, l, b, e) = (pw.baseAddress!, pl.baseAddress!, pb.baseAddress!, pe.baseAddress!)
              parallel(rowParts) { part in
                MLPKernels.gather(
                  begin: b, end: e, list: l, from: part * rows / rowParts,
                  to: (part + 1) * rows / rowParts, source: src, width: n, initial: bias, into: y)
              }
            }
          }
        }
      }
      return
    }
    // Column bits: for each input k, the rows where it spiked.
    let words = rowsPadded / 16
    let blocks = (width + 15) / 16
    var bits = [UInt16](repeating: 0, count: width * words)
    let padded = rowsPadded
    bits.withUnsafeMutableBufferPointer { pbits in
      rowMask.withUnsafeBufferPointer { pm in
        let (cb, m) = (pbits.baseAddress!, pm.baseAddress!)
        let p = Swift.max(1, Swift.min(parts, blocks / 4))
        parallel(p) { part in
          soma_sparse_transpose_masks(
            m, width, padded, part * blocks / p, (part + 1) * blocks / p, 0, words, cb)
        }
      }
    }
    // Wᵀ in the scatter's packed slabs (AVX2) or transposed in place (the other kernels).
    let packs = soma_sparse_scatter_wants_packed() != 0
    let wf = cast(w, Float.self)
    var wt = Tensor<Float>(
      uninitializedShape: [packs ? soma_sparse_packed_count(width, n) : width * n])
    wt.withUnsafeMutableBufferPointer { pt in
      let dst = pt.baseAddress!
      if packs {
        let p = Swift.max(1, Swift.min(parts, width / 64))
        parallel(p) { part in
          soma_sparse_pack_transposed_f32(wf, n, width, part * width / p, (part + 1) * width / p, dst)
        }
      } else {
        let p = Swift.max(1, Swift.min(parts, n / 64))
        parallel(p) { part in
          let (j0, j1) = (part * n / p, (part + 1) * n / p)
          soma_transpose_strided_f32(wf + j0 * width, j1 - j0, width, dst + j0, n)
        }
      }
    }
    let next = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    defer { next.deallocate() }
    next.initialize(to: 0)
    wt.withUnsafeBufferPointer { pt in
      bits.withUnsafeBufferPointer { pb in
        let (src, cb) = (pt.baseAddress!, pb.baseAddress!)
        let initial = bias.map { cast($0, Float.self) }
        let out = cast(y, Float.self)
        parallel(Swift.min(parts, (rows + 63) / 64)) { _ in
          soma_sparse_scatter_shared_f32(
            cb, 1, words, width, 0, rows, 0, 1, next, packs ? nil : src, packs ? src : nil, n,
            initial, out, 0, nil, nil, nil, nil)
        }
      }
    }
  }

  /// dW [outputs, width] = gᵀ·x for the output gradient `g` [rows, outputs] (contiguous).
  @inlinable
  func weightGradient<T: TensorScalar>(_ g: UnsafePointer<T>, outputs n: Int) -> Tensor<T> {
    let (rows, width) = (self.rows, self.width)
    let parts = spatialParts(width * n, usesBLAS: false)
    var dW = Tensor<T>(uninitializedShape: [n, width])
    guard T.self == Float.self else {
      // Column lists (the rows where each input spiked), each column's sum of g rows into
      // dWᵀ [width, n], then transposed.
      var colStart = [Int32](repeating: 0, count: width + 1)
      var rowList = [Int32](repeating: 0, count: Swift.max(1, count))
      for r in 0..<rows {
        for e in Int(begin[r])..<Int(end[r]) { colStart[Int(list[e]) + 1] += 1 }
      }
      for c in 0..<width { colStart[c + 1] += colStart[c] }
      var fill = colStart
      for r in 0..<rows {
        for e in Int(begin[r])..<Int(end[r]) {
          let c = Int(list[e])
          rowList[Int(fill[c])] = Int32(r)
          fill[c] += 1
        }
      }
      var dWt = Tensor<T>(uninitializedShape: [width, n])
      let colParts = Swift.max(1, Swift.min(parts, width / 8))
      dWt.withUnsafeMutableBufferPointer { pd in
        colStart.withUnsafeBufferPointer { ps in
          rowList.withUnsafeBufferPointer { pr in
            let (d, s, l) = (pd.baseAddress!, ps.baseAddress!, pr.baseAddress!)
            parallel(colParts) { part in
              MLPKernels.gather(
                begin: s, end: s + 1, list: l, from: part * width / colParts,
                to: (part + 1) * width / colParts, source: g, width: n, initial: nil, into: d)
            }
          }
        }
      }
      dWt.withUnsafeBufferPointer { ps in
        dW.withUnsafeMutableBufferPointer { pd in
          transpose(ps.baseAddress!, rows: width, cols: n, into: pd.baseAddress!)
        }
      }
      return dW
    }
    let gf = cast(g, Float.self)
    // g in the scatter's packed slabs when enough output blocks read each slab (as the
    // compiled network's weight gradient decides).
    let packs = soma_sparse_scatter_wants_packed() != 0 && width >= 192
    var packed = Tensor<Float>(
      uninitializedShape: [packs ? soma_sparse_packed_count(rows, n) : 0])
    if packs {
      packed.withUnsafeMutableBufferPointer { pp in
        let dst = pp.baseAddress!
        let p = Swift.max(1, Swift.min(parts, rows / 64))
        parallel(p) { part in
          soma_sparse_pack_f32(gf, rows, n, part * rows / p, (part + 1) * rows / p, dst)
        }
      }
    }
    let next = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    defer { next.deallocate() }
    next.initialize(to: 0)
    dW.withUnsafeMutableBufferPointer { pd in
      packed.withUnsafeBufferPointer { pp in
        rowMask.withUnsafeBufferPointer { pm in
          let (d, m) = (cast(pd.baseAddress!, Float.self), pm.baseAddress!)
          let src = packs ? pp.baseAddress : nil
          let padded = rowsPadded
          parallel(Swift.min(parts, (width + 63) / 64)) { _ in
            soma_sparse_scatter_shared_f32(
              m, padded, 1, rows, 0, width, 0, 1, next, gf, src, n, nil, d, width, nil, nil, nil,
              nil)
          }
        }
      }
    }
    return dW
  }
}
