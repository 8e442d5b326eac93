import SomaKernels

/// LIF/IF neurons over spike-map currents [T, B, C, H, W] followed by a `MaxPool2d`, as one
/// autodiff node: what `Sequential` runs when a `LIF` or `IF` layer is followed by max
/// pooling (a convolutional network's usual `… → IF → MaxPool2d`).
///
/// The results and gradients are those of the two layers one after the other (the same
/// kernels, per block of planes, in the same order), but the [T, B, C, H, W] spike maps, the
/// pool's window indices and the spike maps' gradient are never stored: the forward pass keeps
/// a block of planes' membranes in cache over the T steps and pools each step's spikes as they
/// are made; the backward pass recomputes them the same way (the window maxima from the
/// recomputed spikes), routes the pooled gradient into the block and runs the neurons back
/// through time. A direct-coded input (a stride-0 view over time) is read from its one slice
/// and gets a gradient tied over time, as in `fusedLIF`.
///
/// For the usual 2 × 2, stride-2 pool after neurons with S2NN or Arctan (Float, Double) both
/// passes are one C kernel instead (`LIFPool2Kernel`), which carries groups of windows through
/// the T steps in registers.
///
/// Returns nil (the caller then runs the layers separately) unless `currents` is [T, B, C, H, W].
@inlinable
public func fusedLIFMaxPool<S: SurrogateGradient, T: TensorScalar>(
  _ currents: Variable<T>, beta: T, threshold: T, reset: Reset, detachReset: Bool,
  surrogate: S, pool: MaxPool2d<T>
) -> Variable<T>? {
  guard currents.rank == 5 else { return nil }
  let shape = currents.shape
  let (batch, geo) = poolGeometry(
    shape, "MaxPool2d", pool.kernelSize, pool.stride, pool.padding, pool.dilation)
  let (steps, n) = checkSequence(currents, layer: "LIF")
  let planes = shape[1] * batch.channels  // per time step
  let (plane, pixels) = (geo.plane, geo.pixels)
  let keep = GradientMode.isEnabled && currents.requiresGrad
  let x = currents.value
  let repeats = steps > 1 && x.strides[0] == 0
  let source = repeats ? x[0].contiguous() : x.contiguous()
  let stepStride = repeats ? 0 : n
  let outStep = planes * pixels
  var y = Tensor<T>(uninitializedShape: batch.lead + [batch.channels, geo.outHeight, geo.outWidth])
  let parts = spatialParts(n * steps >= 1 << 18 ? planes : 1, usesBLAS: false)
  // Planes per block: the forward pass's membranes and spikes (2 floats a lane) stay in L1/L2.
  let forwardBlock = Swift.max(1, (1 << 14) / plane)
  let windows = LIFPool2Kernel(
    geo, surrogate: surrogate, beta: beta, threshold: threshold, reset: reset,
    detachReset: detachReset)
  source.withUnsafeBufferPointer { pi in
    y.withUnsafeMutableBufferPointer { py in
      let (ip, yp) = (pi.baseAddress!, py.baseAddress!)
      parallel(parts) { part in
        let (a, b) = partRange(part, of: parts, count: planes)
        if a == b { return }
        if let windows {
          windows.forward(
            ip, stepStride: stepStride, steps: steps, planes: a..<b, into: yp, outStep: outStep)
          return
        }
        let P = Swift.min(forwardBlock, b - a)
        let work: UnsafeMutablePointer<T> = scratch(2 * P * plane)
        let idx = UnsafeMutablePointer<Int32>.allocate(capacity: P * pixels)
        defer {
          work.deallocate()
          idx.deallocate()
        }
        let (v, s) = (work, work + P * plane)
        var q = a
        while q < b {
          let m = Swift.min(P, b - q)
          _zero(v, m * plane)
          for t in 0..<steps {
            lifForwardStep(
              current: ip + t * stepStride + q * plane, v: v, hOut: nil, spikes: s,
              n: m * plane, beta: beta, threshold: threshold, reset: reset)
            _maxPool2d(geo, UnsafePointer(s), 0, m, yp + t * outStep + q * pixels, idx)
          }
          q += m
        }
      }
    }
  }
  if !keep { return Variable(y) }
  let tied = repeats && isTiedOverTime(currents)
  // Planes per backward block: T membranes of it stay near L2, as in `fusedLIF`.
  let backwardBlock = Swift.max(1, Swift.min(8192, (1 << 16) / steps) / plane)
  return .record(y, parents: [currents]) { g in
    var dI = Tensor<T>(uninitializedShape: tied ? Array(shape.dropFirst()) : shape)
    let gc = g.contiguous()
    source.withUnsafeBufferPointer { pi in
      gc.withUnsafeBufferPointer { pg in
        dI.withUnsafeMutableBufferPointer { pd in
          let (ip, gp, dp) = (pi.baseAddress!, pg.baseAddress!, pd.baseAddress!)
          parallel(parts) { part in
            let (a, b) = partRange(part, of: parts, count: planes)
            if a == b { return }
            if let windows {
              windows.backward(
                ip, stepStride: stepStride, steps: steps, planes: a..<b, gradient: gp,
                outStep: outStep, into: dp, gradStep: n, tied: tied)
              return
            }
            let P = Swift.min(backwardBlock, b - a)
            let L = P * plane
            let work: UnsafeMutablePointer<T> = scratch((steps + 7) * L + P * pixels)
            let idx = UnsafeMutablePointer<Int32>.allocate(capacity: steps * P * pixels)
            defer {
              work.deallocate()
              idx.deallocate()
            }
            // The neurons' block work first, then the spike gradient and the pooled scratch.
            let gs = work + (steps + 6) * L
            let pooled = gs + L
            var q = a
            while q < b {
              let m = Swift.min(P, b - q)
              lifReverseBlock(
                current: ip + q * plane, stepStride: stepStride, lanes: m * plane, steps: steps,
                work: work, gradCurrent: dp + q * plane, stepLanes: n, tied: tied, beta: beta,
                threshold: threshold, reset: reset, detachReset: detachReset,
                surrogate: surrogate,
                spikesMade: { t, s in
                  _maxPool2d(geo, UnsafePointer(s), 0, m, pooled, idx + t * m * pixels)
                },
                gradSpikes: { t in
                  _maxPool2dBackward(
                    geo, gp + t * outStep + q * pixels, idx + t * m * pixels, 0, m, gs)
                  return UnsafePointer(gs)
                })
              q += m
            }
          }
        }
      }
    }
    return [tied ? repeated(dI, steps: steps) : dI]
  }
}

/// The 2 × 2, stride-2 max pool (no padding or dilation) after LIF neurons whose surrogate has
/// an inlined C derivative (S2NN, Arctan), in Float or Double: one C pass carries each group of
/// 8 windows through the T steps in registers (`soma_lif_pool2_forward` /
/// `_backward`), with the same expressions, so the same results, as the blocks of
/// `fusedLIFMaxPool`. Nil for other pools, surrogates and scalar types.
@usableFromInline
struct LIFPool2Kernel<T: TensorScalar>: Sendable {
  @usableFromInline let height, width, kind: Int
  @usableFromInline let beta, threshold, sa, sb: T
  @usableFromInline let zeroReset, detachReset: Bool

  @inlinable
  init?<S: SurrogateGradient>(
    _ geo: ConvGeometry, surrogate: S, beta: T, threshold: T, reset: Reset, detachReset: Bool
  ) {
    guard T.self == Float.self || T.self == Double.self,
      geo.kernel == (2, 2) && geo.stride == (2, 2) && geo.padding == (0, 0)
        && geo.dilation == (1, 1)
    else { return nil }
    switch surrogate.fusedKernel {
    case .s2nn(let a, let b)?: (kind, sa, sb) = (0, T(a), T(b))
    // k and c rounded as `Arctan.derivative` and the reverse LIF step round them.
    case .arctan(let alpha)?: (kind, sa, sb) = (1, T(Double.pi / 2 * alpha), T(alpha / 2))
    default: return nil
    }
    (height, width) = (geo.height, geo.width)
    (self.beta, self.threshold, zeroReset, self.detachReset) =
      (beta, threshold, reset == .zero, detachReset)
  }

  @inlinable
  func forward(
    _ current: UnsafePointer<T>, stepStride: Int, steps: Int, planes: Range<Int>,
    into pooled: UnsafeMutablePointer<T>, outStep: Int
  ) {
    let (h, w, z) = (height, width, Int32(zeroReset ? 1 : 0))
    let work: UnsafeMutablePointer<T> = scratch(steps * 256)
    defer { work.deallocate() }
    if T.self == Float.self {
      soma_lif_pool2_forward_f32(
        cast(current, Float.self), stepStride, steps, planes.lowerBound, planes.upperBound, h, w,
        Float(beta), Float(threshold), z, cast(pooled, Float.self), outStep,
        cast(work, Float.self))
    } else {
      soma_lif_pool2_forward_f64(
        cast(current, Double.self), stepStride, steps, planes.lowerBound, planes.upperBound, h,
        w, Double(beta), Double(threshold), z, cast(pooled, Double.self), outStep,
        cast(work, Double.self))
    }
  }

  @inlinable
  func backward(
    _ current: UnsafePointer<T>, stepStride: Int, steps: Int, planes: Range<Int>,
    gradient g: UnsafePointer<T>, outStep: Int, into grad: UnsafeMutablePointer<T>,
    gradStep: Int, tied: Bool
  ) {
    let (h, w) = (height, width)
    let (z, d, k, t) = (
      Int32(zeroReset ? 1 : 0), Int32(detachReset ? 1 : 0), Int32(kind), Int32(tied ? 1 : 0)
    )
    let work: UnsafeMutablePointer<T> = scratch(steps * 256)
    defer { work.deallocate() }
    if T.self == Float.self {
      soma_lif_pool2_backward_f32(
        cast(current, Float.self), stepStride, steps, planes.lowerBound, planes.upperBound, h, w,
        Float(beta), Float(threshold), z, d, k, Float(sa), Float(sb), cast(g, Float.self),
        outStep, cast(grad, Float.self), gradStep, t, 1 / Float(steps), cast(work, Float.self))
    } else {
      soma_lif_pool2_backward_f64(
        cast(current, Double.self), stepStride, steps, planes.lowerBound, planes.upperBound, h,
        w, Double(beta), Double(threshold), z, d, k, Double(sa), Double(sb),
        cast(g, Double.self), outStep, cast(grad, Double.self), gradStep, t, 1 / Double(steps),
        cast(work, Double.self))
    }
  }
}
