import SomaKernels

// (A plain import: CurrentBasedSNN.swift imports the module the same way, and Swift 6 rejects
// mixed access levels for one module.)
// Bridges from the generic fused kernels to the vectorised C time-step kernels
// (Sources/SomaKernels/lif.c). One call per time step, so these stay non-inlinable and the C
// module stays an implementation detail. They return false for a scalar type without a C
// kernel (the caller then runs the Swift loop).

@usableFromInline
func _cLIFForward<T: TensorScalar>(
  current: UnsafePointer<T>, v: UnsafeMutablePointer<T>, hOut: UnsafeMutablePointer<T>?,
  spikes: UnsafeMutablePointer<T>, n: Int, beta: T, threshold: T, zeroReset: Bool
) -> Bool {
  if T.self == Float.self {
    soma_lif_forward_f32(
      UnsafeRawPointer(current).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(v).assumingMemoryBound(to: Float.self),
      hOut.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self) },
      UnsafeMutableRawPointer(spikes).assumingMemoryBound(to: Float.self), n,
      Float(beta), Float(threshold), zeroReset ? 1 : 0)
    return true
  }
  if T.self == Double.self {
    soma_lif_forward_f64(
      UnsafeRawPointer(current).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(v).assumingMemoryBound(to: Double.self),
      hOut.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Double.self) },
      UnsafeMutableRawPointer(spikes).assumingMemoryBound(to: Double.self), n,
      Double(beta), Double(threshold), zeroReset ? 1 : 0)
    return true
  }
  return false
}

@usableFromInline
func _cShift<T: TensorScalar>(
  _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count n: Int, minus c: T
) -> Bool {
  if T.self == Float.self {
    soma_lif_shift_f32(
      UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self), n, Float(c))
    return true
  }
  if T.self == Double.self {
    soma_lif_shift_f64(
      UnsafeRawPointer(x).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(out).assumingMemoryBound(to: Double.self), n, Double(c))
    return true
  }
  return false
}

@usableFromInline
func _cLIFBackward<T: TensorScalar>(
  gradSpikes: UnsafePointer<T>, h: UnsafePointer<T>, d: UnsafePointer<T>,
  gv: UnsafeMutablePointer<T>, gradCurrent: UnsafeMutablePointer<T>, n: Int, beta: T,
  threshold: T, zeroReset: Bool, detachReset: Bool
) -> Bool {
  if T.self == Float.self {
    soma_lif_backward_f32(
      UnsafeRawPointer(gradSpikes).assumingMemoryBound(to: Float.self),
      UnsafeRawPointer(h).assumingMemoryBound(to: Float.self),
      UnsafeRawPointer(d).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(gv).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(gradCurrent).assumingMemoryBound(to: Float.self), n,
      Float(beta), Float(threshold), zeroReset ? 1 : 0, detachReset ? 1 : 0)
    return true
  }
  if T.self == Double.self {
    soma_lif_backward_f64(
      UnsafeRawPointer(gradSpikes).assumingMemoryBound(to: Double.self),
      UnsafeRawPointer(h).assumingMemoryBound(to: Double.self),
      UnsafeRawPointer(d).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(gv).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(gradCurrent).assumingMemoryBound(to: Double.self), n,
      Double(beta), Double(threshold), zeroReset ? 1 : 0, detachReset ? 1 : 0)
    return true
  }
  return false
}

/// `p` as a pointer to `U` (T is U, checked by the caller): the generic fused code's way into
/// the Float/Double C kernels.
@inlinable @inline(__always)
func cast<T, U>(_ p: UnsafePointer<T>, _: U.Type) -> UnsafePointer<U> {
  UnsafeRawPointer(p).assumingMemoryBound(to: U.self)
}

@inlinable @inline(__always)
func cast<T, U>(_ p: UnsafeMutablePointer<T>, _: U.Type) -> UnsafeMutablePointer<U> {
  UnsafeMutableRawPointer(p).assumingMemoryBound(to: U.self)
}

@usableFromInline
func _cCUBAForward<T: TensorScalar>(
  current: UnsafePointer<T>, syn: UnsafeMutablePointer<T>, mem: UnsafeMutablePointer<T>,
  memOut: UnsafeMutablePointer<T>?, spikes: UnsafeMutablePointer<T>, n: Int, alpha: T,
  beta: T, threshold: T, zeroReset: Bool
) -> Bool {
  if T.self == Float.self {
    soma_lif_cuba_forward_f32(
      cast(current, Float.self), cast(syn, Float.self), cast(mem, Float.self),
      memOut.map { cast($0, Float.self) }, cast(spikes, Float.self), n, Float(alpha),
      Float(beta), Float(threshold), zeroReset ? 1 : 0)
    return true
  }
  if T.self == Double.self {
    soma_lif_cuba_forward_f64(
      cast(current, Double.self), cast(syn, Double.self), cast(mem, Double.self),
      memOut.map { cast($0, Double.self) }, cast(spikes, Double.self), n, Double(alpha),
      Double(beta), Double(threshold), zeroReset ? 1 : 0)
    return true
  }
  return false
}

@usableFromInline
func _cCUBABackward<T: TensorScalar>(
  gradSpikes: UnsafePointer<T>, mem: UnsafePointer<T>, d: UnsafePointer<T>,
  gs: UnsafeMutablePointer<T>, gm: UnsafeMutablePointer<T>, gradCurrent: UnsafeMutablePointer<T>,
  n: Int, alpha: T, beta: T, threshold: T, zeroReset: Bool
) -> Bool {
  if T.self == Float.self {
    soma_lif_cuba_backward_f32(
      cast(gradSpikes, Float.self), cast(mem, Float.self), cast(d, Float.self),
      cast(gs, Float.self), cast(gm, Float.self), cast(gradCurrent, Float.self), n,
      Float(alpha), Float(beta), Float(threshold), zeroReset ? 1 : 0)
    return true
  }
  if T.self == Double.self {
    soma_lif_cuba_backward_f64(
      cast(gradSpikes, Double.self), cast(mem, Double.self), cast(d, Double.self),
      cast(gs, Double.self), cast(gm, Double.self), cast(gradCurrent, Double.self), n,
      Double(alpha), Double(beta), Double(threshold), zeroReset ? 1 : 0)
    return true
  }
  return false
}

/// The S2NN-fused reverse LIF step (see soma_lif_backward_s2nn); false when T has no kernel.
@usableFromInline
func _cLIFBackwardS2NN<T: TensorScalar>(
  gradSpikes: UnsafePointer<T>, h: UnsafePointer<T>, gv: UnsafeMutablePointer<T>,
  gradCurrent: UnsafeMutablePointer<T>, n: Int, beta: T, threshold: T, zeroReset: Bool,
  detachReset: Bool, alpha: Double, surrogateBeta: Double
) -> Bool {
  if T.self == Float.self {
    soma_lif_backward_s2nn_f32(
      UnsafeRawPointer(gradSpikes).assumingMemoryBound(to: Float.self),
      UnsafeRawPointer(h).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(gv).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(gradCurrent).assumingMemoryBound(to: Float.self), n,
      Float(beta), Float(threshold), zeroReset ? 1 : 0, detachReset ? 1 : 0, Float(alpha),
      Float(surrogateBeta))
    return true
  }
  if T.self == Double.self {
    soma_lif_backward_s2nn_f64(
      UnsafeRawPointer(gradSpikes).assumingMemoryBound(to: Double.self),
      UnsafeRawPointer(h).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(gv).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(gradCurrent).assumingMemoryBound(to: Double.self), n,
      Double(beta), Double(threshold), zeroReset ? 1 : 0, detachReset ? 1 : 0, alpha,
      surrogateBeta)
    return true
  }
  return false
}

/// One reverse LIF step with the Arctan derivative inlined (`k` = π·α/2 and `c` = α/2 as
/// `Arctan.derivative` rounds them); false for scalar types without a C kernel.
@usableFromInline
func _cLIFBackwardArctan<T: TensorScalar>(
  gradSpikes: UnsafePointer<T>, h: UnsafePointer<T>, gv: UnsafeMutablePointer<T>,
  gradCurrent: UnsafeMutablePointer<T>, n: Int, beta: T, threshold: T, zeroReset: Bool,
  detachReset: Bool, k: T, c: T
) -> Bool {
  if T.self == Float.self {
    soma_lif_backward_arctan_f32(
      UnsafeRawPointer(gradSpikes).assumingMemoryBound(to: Float.self),
      UnsafeRawPointer(h).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(gv).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(gradCurrent).assumingMemoryBound(to: Float.self), n,
      Float(beta), Float(threshold), zeroReset ? 1 : 0, detachReset ? 1 : 0, Float(k), Float(c))
    return true
  }
  if T.self == Double.self {
    soma_lif_backward_arctan_f64(
      UnsafeRawPointer(gradSpikes).assumingMemoryBound(to: Double.self),
      UnsafeRawPointer(h).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(gv).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(gradCurrent).assumingMemoryBound(to: Double.self), n,
      Double(beta), Double(threshold), zeroReset ? 1 : 0, detachReset ? 1 : 0, Double(k),
      Double(c))
    return true
  }
  return false
}

/// dst[i] += src[i] for i < n (C for Float and Double: one dispatch per call, also from
/// unspecialised generic code).
@inlinable
func _vecAdd<T: TensorScalar>(_ dst: UnsafeMutablePointer<T>, _ src: UnsafePointer<T>, _ n: Int) {
  if T.self == Float.self {
    soma_vec_add_f32(cast(dst, Float.self), cast(src, Float.self), n)
  } else if T.self == Double.self {
    soma_vec_add_f64(cast(dst, Double.self), cast(src, Double.self), n)
  } else {
    for i in 0..<n { dst[i] += src[i] }
  }
}

/// x[i] *= k for i < n (C for Float and Double).
@inlinable
func _vecScale<T: TensorScalar>(_ x: UnsafeMutablePointer<T>, _ k: T, _ n: Int) {
  if T.self == Float.self {
    soma_vec_scale_f32(cast(x, Float.self), k as! Float, n)
  } else if T.self == Double.self {
    soma_vec_scale_f64(cast(x, Double.self), k as! Double, n)
  } else {
    for i in 0..<n { x[i] *= k }
  }
}

/// Zeroes n elements (a byte fill: no per-element generic call).
@inlinable
func _zero<T: TensorScalar>(_ x: UnsafeMutablePointer<T>, _ n: Int) {
  UnsafeMutableRawPointer(x).initializeMemory(
    as: UInt8.self, repeating: 0, count: n * MemoryLayout<T>.stride)
}
