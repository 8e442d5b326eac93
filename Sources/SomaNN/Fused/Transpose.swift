import SomaKernels

/// dst [cols, rows] = transpose of src [rows, cols] (both contiguous), in cache-sized tiles.
@inlinable
public func transpose<T: TensorScalar>(
  _ src: UnsafePointer<T>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_transpose_f32(
      UnsafeRawPointer(src).assumingMemoryBound(to: Float.self), rows, cols,
      UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self))
  } else {
    for r in 0..<rows { for c in 0..<cols { dst[c * rows + r] = src[r * cols + c] } }
  }
}

extension Tensor {
  /// The 2-D transpose as a new contiguous tensor (tiled copy).
  @inlinable
  public func transposedCopy() -> Tensor {
    precondition(rank == 2, "transposedCopy(): needs a 2-D tensor, got shape \(shape)")
    var out = Tensor(uninitializedShape: [shape[1], shape[0]])
    let (r, c) = (shape[0], shape[1])
    withUnsafeBufferPointer { sp in
      out.withUnsafeMutableBufferPointer { dp in
        transpose(sp.baseAddress!, rows: r, cols: c, into: dp.baseAddress!)
      }
    }
    return out
  }
}
