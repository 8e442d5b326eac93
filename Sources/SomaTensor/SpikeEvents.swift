import SomaKernels

/// A 0/1 spike matrix [rows, columns] held as compressed rows: the columns that spiked in each
/// row. Memory and work scale with the number of spikes, not the matrix size.
///
/// ```swift
/// let events = SpikeEvents(dense: spikes.reshaped([-1, 784]))   // [T·B, 784] → events
/// print(events.density)                                          // e.g. 0.0042
/// ```
public struct SpikeEvents: Sendable {
  /// Number of rows (e.g. T × batch).
  public private(set) var rows: Int
  /// Number of columns (input features).
  public private(set) var columns: Int
  /// Row r's events are `indices[rowStart[r] ..< rowStart[r + 1]]`.
  public private(set) var rowStart: [Int32]
  /// Column index of each event, row by row.
  public private(set) var indices: [Int32]
  /// False when built from a dense tensor holding values other than 0 and 1 (its events then
  /// mark the non-zero entries but lose their values).
  public private(set) var isBinary = true

  /// Events per row and column index, given directly (rows in order).
  public init(rows: Int, columns: Int, rowStart: [Int32], indices: [Int32]) {
    precondition(
      rowStart.count == rows + 1 && Int(rowStart[rows]) == indices.count,
      "SpikeEvents: rowStart of \(rowStart.count) entries does not describe \(rows) rows of \(indices.count) events"
    )
    self.rows = rows
    self.columns = columns
    self.rowStart = rowStart
    self.indices = indices
  }

  /// The events of a dense 2-D tensor (non-zero entries count as spikes).
  public init<T: TensorScalar>(dense x: Tensor<T>) {
    precondition(x.rank == 2, "SpikeEvents(dense:): needs a 2-D tensor, got shape \(x.shape)")
    let rows = x.shape[0]
    let cols = x.shape[1]
    var starts = [Int32](repeating: 0, count: rows + 1)
    var idx: [Int32] = []
    var binary: Int32 = 1
    x.withUnsafeBufferPointer { p in
      if T.self == Float.self {
        // Two halves of the rows in parallel, each into its own region of one index buffer
        // (16 spare slots each for the kernel's vector stores), then joined.
        let parts = rows >= 64 ? 2 : 1
        var tmp = [Int32](repeating: 0, count: rows * cols + 16 * parts)
        var begin = [Int32](repeating: 0, count: Swift.max(rows, 1))
        var end = [Int32](repeating: 0, count: Swift.max(rows, 1))
        var counts = [Int](repeating: 0, count: parts)
        var flags = [Int32](repeating: 1, count: parts)
        p.withMemoryRebound(to: Float.self) { fp in
          tmp.withUnsafeMutableBufferPointer { ib in
            begin.withUnsafeMutableBufferPointer { bb in
              end.withUnsafeMutableBufferPointer { eb in
                counts.withUnsafeMutableBufferPointer { cb in
                  flags.withUnsafeMutableBufferPointer { fb in
                    let (xP, iP, bP, eP, cP, fP) = (fp.baseAddress!, ib.baseAddress!, bb.baseAddress!, eb.baseAddress!, cb.baseAddress!, fb.baseAddress!)
                    parallel(parts) { part in
                      let r0 = part * rows / parts
                      let r1 = (part + 1) * rows / parts
                      cP[part] = soma_sparse_from_dense_f32(
                        xP, r0, r1, cols, iP, r0 * cols + part * 16, bP, eP, fP + part, nil, 0)
                    }
                  }
                }
              }
            }
          }
        }
        // Join: row starts relative to the joined buffer, each part's indices moved down.
        var offset = 0
        for part in 0..<parts {
          let r0 = part * rows / parts
          let r1 = (part + 1) * rows / parts
          let region = r0 * cols + part * 16
          for r in r0..<r1 { starts[r] = begin[r] - Int32(region) + Int32(offset) }
          idx.append(contentsOf: tmp[region..<(region + counts[part])])
          offset += counts[part]
          if flags[part] == 0 { binary = 0 }
        }
        starts[rows] = Int32(offset)
      } else {
        for r in 0..<rows {
          starts[r] = Int32(idx.count)
          for c in 0..<cols where p[r * cols + c] != 0 {
            idx.append(Int32(c))
            if p[r * cols + c] != 1 { binary = 0 }
          }
        }
        starts[rows] = Int32(idx.count)
      }
    }
    self.init(rows: rows, columns: cols, rowStart: starts, indices: idx)
    isBinary = binary != 0
  }

  /// Number of spikes.
  public var count: Int { indices.count }

  /// Fraction of entries that are spikes.
  public var density: Double {
    rows * columns == 0 ? 0 : Double(indices.count) / Double(rows * columns)
  }

  /// The dense [rows, columns] 0/1 tensor.
  public func dense<T: TensorScalar>(_: T.Type = T.self) -> Tensor<T> {
    var out = Tensor<T>.zeros([rows, columns])
    out.withUnsafeMutableBufferPointer { p in
      for r in 0..<rows {
        for e in Int(rowStart[r])..<Int(rowStart[r + 1]) { p[r * columns + Int(indices[e])] = 1 }
      }
    }
    return out
  }

  /// out[r, :] = Σ over row r's events i of wt[i, :]  (that is, dense(self) · wt), for rows
  /// `[begin, end)`. `wt` is [columns, nOut] contiguous; `out` is [rows, nOut].
  @inlinable
  public func matmul<T: TensorScalar>(
    transposedWeight wt: UnsafePointer<T>, nOut: Int, into out: UnsafeMutablePointer<T>,
    rows begin: Int, _ end: Int
  ) {
    rowStart.withUnsafeBufferPointer { rs in
      indices.withUnsafeBufferPointer { ix in
        if T.self == Float.self {
          // Row r's events are indices[rowStart[r] ..< rowStart[r + 1]]: begin = rowStart,
          // end = rowStart + 1 for the shared gather kernel.
          soma_sparse_gather_f32(
            rs.baseAddress!, rs.baseAddress! + 1, ix.baseAddress, begin, end,
            UnsafeRawPointer(wt).assumingMemoryBound(to: Float.self), nOut, nil,
            UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self))
        } else {
          for r in begin..<end {
            let o = out + r * nOut
            for j in 0..<nOut { o[j] = 0 }
            for e in Int(rs[r])..<Int(rs[r + 1]) {
              let w = wt + Int(ix[e]) * nOut
              for j in 0..<nOut { o[j] += w[j] }
            }
          }
        }
      }
    }
  }

  /// The same events by column: `rows[colStart[c] ..< colStart[c + 1]]` are the rows (in
  /// order) where column c spiked.
  public func byColumn() -> (colStart: [Int32], rows: [Int32]) {
    var start = [Int32](repeating: 0, count: columns + 1)
    for i in indices { start[Int(i) + 1] += 1 }
    for c in 0..<columns { start[c + 1] += start[c] }
    var fill = start
    var rowList = [Int32](repeating: 0, count: indices.count)
    for r in 0..<rows {
      for e in Int(rowStart[r])..<Int(rowStart[r + 1]) {
        let c = Int(indices[e])
        rowList[Int(fill[c])] = Int32(r)
        fill[c] += 1
      }
    }
    return (start, rowList)
  }

  /// dwt[c, :] = Σ grad[r, :] over the rows r where column c spiked, for columns
  /// `[begin, end)` — the weight gradient dense(self)ᵀ · grad, overwriting `dwt` [columns, nOut]
  /// in that column range. `byColumn` is `self.byColumn()`.
  @inlinable
  public func columnGradient<T: TensorScalar>(
    _ grad: UnsafePointer<T>, nOut: Int, into dwt: UnsafeMutablePointer<T>,
    byColumn: (colStart: [Int32], rows: [Int32]), columns begin: Int, _ end: Int
  ) {
    byColumn.colStart.withUnsafeBufferPointer { cs in
      byColumn.rows.withUnsafeBufferPointer { rs in
        if T.self == Float.self {
          soma_sparse_gather_f32(
            cs.baseAddress!, cs.baseAddress! + 1, rs.baseAddress, begin, end,
            UnsafeRawPointer(grad).assumingMemoryBound(to: Float.self), nOut, nil,
            UnsafeMutableRawPointer(dwt).assumingMemoryBound(to: Float.self))
        } else {
          for c in begin..<end {
            let d = dwt + c * nOut
            for j in 0..<nOut { d[j] = 0 }
            for e in Int(cs[c])..<Int(cs[c + 1]) {
              let g = grad + Int(rs[e]) * nOut
              for j in 0..<nOut { d[j] += g[j] }
            }
          }
        }
      }
    }
  }

  /// dwt[i, :] += grad[r, :] for every event (r, i) with r in `[begin, end)`: the weight
  /// gradient dense(self)ᵀ · grad, as a scatter. `dwt` is [columns, nOut].
  @inlinable
  public func scatterGradient<T: TensorScalar>(
    _ grad: UnsafePointer<T>, nOut: Int, into dwt: UnsafeMutablePointer<T>,
    rows begin: Int, _ end: Int
  ) {
    rowStart.withUnsafeBufferPointer { rs in
      indices.withUnsafeBufferPointer { ix in
        if T.self == Float.self {
          soma_events_weight_grad_f32(
            rs.baseAddress!, ix.baseAddress!, begin, end,
            UnsafeRawPointer(grad).assumingMemoryBound(to: Float.self), nOut,
            UnsafeMutableRawPointer(dwt).assumingMemoryBound(to: Float.self))
        } else {
          for r in begin..<end {
            let g = grad + r * nOut
            for e in Int(rs[r])..<Int(rs[r + 1]) {
              let d = dwt + Int(ix[e]) * nOut
              for j in 0..<nOut { d[j] += g[j] }
            }
          }
        }
      }
    }
  }
}
