import SomaKernels

// Bridges from the generic layer code to the C kernels of include/SomaConv.h
// (image_kernels.c): one call per image range, channel range or plane range, so these
// stay non-inlinable and the C module stays an implementation detail. Float and Double have
// kernels; the layers are only ever instantiated for TensorScalar, which is one of the two.

/// The geometry of a convolution or pooling window over one image (see soma_conv_shape).
@usableFromInline
struct ConvGeometry: Sendable, Equatable {
  @usableFromInline var channels, height, width, outHeight, outWidth: Int
  @usableFromInline var kernel, stride, padding, dilation: (h: Int, w: Int)

  @inlinable
  init(
    channels: Int, height: Int, width: Int, kernel: (h: Int, w: Int), stride: (h: Int, w: Int),
    padding: (h: Int, w: Int), dilation: (h: Int, w: Int)
  ) {
    (self.channels, self.height, self.width) = (channels, height, width)
    (self.kernel, self.stride, self.padding, self.dilation) = (kernel, stride, padding, dilation)
    outHeight = ConvGeometry.outputSize(height, kernel.h, stride.h, padding.h, dilation.h)
    outWidth = ConvGeometry.outputSize(width, kernel.w, stride.w, padding.w, dilation.w)
  }

  /// PyTorch's ⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1 (≤ 0 when the window does not fit).
  @inlinable
  static func outputSize(_ n: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int) -> Int {
    let span = n + 2 * p - d * (k - 1) - 1
    return span < 0 ? 0 : span / s + 1
  }

  /// Output pixels per plane.
  @inlinable var pixels: Int { outHeight * outWidth }
  /// Input pixels per plane.
  @inlinable var plane: Int { height * width }

  @inlinable
  static func == (a: ConvGeometry, b: ConvGeometry) -> Bool {
    (a.channels, a.height, a.width, a.outHeight, a.outWidth) == (
      b.channels, b.height, b.width, b.outHeight, b.outWidth
    )
      && a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding
      && a.dilation == b.dilation
  }

  var c: soma_conv_shape {
    soma_conv_shape(
      channels: channels, height: height, width: width, out_height: outHeight,
      out_width: outWidth, kernel_h: kernel.h, kernel_w: kernel.w, stride_h: stride.h,
      stride_w: stride.w, pad_h: padding.h, pad_w: padding.w, dilation_h: dilation.h,
      dilation_w: dilation.w)
  }
}

@usableFromInline
func _im2col<T: TensorScalar>(
  _ g: ConvGeometry, _ x: UnsafePointer<T>, _ n0: Int, _ n1: Int, _ r0: Int, _ r1: Int,
  _ cols: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    var s = g.c
    soma_im2col_f32(&s, cast(x, Float.self), n0, n1, r0, r1, cast(cols, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_im2col_f64(&s, cast(x, Double.self), n0, n1, r0, r1, cast(cols, Double.self))
  }
}

@usableFromInline
func _col2im<T: TensorScalar>(
  _ g: ConvGeometry, _ cols: UnsafePointer<T>, _ n0: Int, _ n1: Int, _ c0: Int, _ c1: Int,
  _ dx: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    var s = g.c
    soma_col2im_f32(&s, cast(cols, Float.self), n0, n1, c0, c1, cast(dx, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_col2im_f64(&s, cast(cols, Double.self), n0, n1, c0, c1, cast(dx, Double.self))
  }
}

@usableFromInline
func _convScatter<T: TensorScalar>(
  _ buf: UnsafePointer<T>, channels: Int, pixels: Int, _ n0: Int, _ n1: Int,
  bias: UnsafePointer<T>?, _ out: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_conv_scatter_f32(
      cast(buf, Float.self), channels, pixels, n0, n1, bias.map { cast($0, Float.self) },
      cast(out, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_conv_scatter_f64(
      cast(buf, Double.self), channels, pixels, n0, n1, bias.map { cast($0, Double.self) },
      cast(out, Double.self))
  }
}

@usableFromInline
func _convGather<T: TensorScalar>(
  _ g: UnsafePointer<T>, channels: Int, pixels: Int, _ n0: Int, _ n1: Int,
  _ buf: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_conv_gather_f32(cast(g, Float.self), channels, pixels, n0, n1, cast(buf, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_conv_gather_f64(cast(g, Double.self), channels, pixels, n0, n1, cast(buf, Double.self))
  }
}

@usableFromInline
func _convEvents<T: TensorScalar>(
  _ x: UnsafePointer<T>, _ r0: Int, _ r1: Int, cols: Int, _ list: UnsafeMutablePointer<Int32>,
  _ k0: Int, _ begin: UnsafeMutablePointer<Int64>, _ end: UnsafeMutablePointer<Int64>,
  _ binary: UnsafeMutablePointer<Int32>
) -> Int {
  if T.self == Float.self {
    return soma_conv_events_f32(cast(x, Float.self), r0, r1, cols, list, k0, begin, end, binary)
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    return soma_conv_events_f64(cast(x, Double.self), r0, r1, cols, list, k0, begin, end, binary)
  }
}

@usableFromInline
func _convEventsForward<T: TensorScalar>(
  _ g: ConvGeometry, groups: Int, outChannels: Int, _ list: UnsafePointer<Int32>,
  _ begin: UnsafePointer<Int64>, _ end: UnsafePointer<Int64>, _ n0: Int, _ n1: Int,
  _ wt: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    var s = g.c
    soma_conv_events_forward_f32(
      &s, groups, outChannels, list, begin, end, n0, n1, cast(wt, Float.self), cast(out, Float.self)
    )
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_conv_events_forward_f64(
      &s, groups, outChannels, list, begin, end, n0, n1, cast(wt, Double.self),
      cast(out, Double.self))
  }
}

@usableFromInline
func _convEventsWeightGrad<T: TensorScalar>(
  _ g: ConvGeometry, groups: Int, outChannels: Int, _ list: UnsafePointer<Int32>,
  _ begin: UnsafePointer<Int64>, _ end: UnsafePointer<Int64>, images: Int, _ c0: Int, _ c1: Int,
  _ grad: UnsafePointer<T>, _ dwt: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    var s = g.c
    soma_conv_events_weight_grad_f32(
      &s, groups, outChannels, list, begin, end, images, c0, c1, cast(grad, Float.self),
      cast(dwt, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_conv_events_weight_grad_f64(
      &s, groups, outChannels, list, begin, end, images, c0, c1, cast(grad, Double.self),
      cast(dwt, Double.self))
  }
}

@usableFromInline
func _nhwcToNCHW<T: TensorScalar>(
  _ x: UnsafePointer<T>, channels: Int, pixels: Int, _ n0: Int, _ n1: Int, bias: UnsafePointer<T>?,
  _ out: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_nhwc_to_nchw_f32(
      cast(x, Float.self), channels, pixels, n0, n1, bias.map { cast($0, Float.self) },
      cast(out, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_nhwc_to_nchw_f64(
      cast(x, Double.self), channels, pixels, n0, n1, bias.map { cast($0, Double.self) },
      cast(out, Double.self))
  }
}

@usableFromInline
func _nchwToNHWC<T: TensorScalar>(
  _ x: UnsafePointer<T>, channels: Int, pixels: Int, _ n0: Int, _ n1: Int,
  _ out: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_nchw_to_nhwc_f32(cast(x, Float.self), channels, pixels, n0, n1, cast(out, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_nchw_to_nhwc_f64(cast(x, Double.self), channels, pixels, n0, n1, cast(out, Double.self))
  }
}

@usableFromInline
func _maxPool2d<T: TensorScalar>(
  _ g: ConvGeometry, _ x: UnsafePointer<T>, _ q0: Int, _ q1: Int, _ out: UnsafeMutablePointer<T>,
  _ argmax: UnsafeMutablePointer<Int32>
) {
  if T.self == Float.self {
    var s = g.c
    soma_maxpool2d_f32(&s, cast(x, Float.self), q0, q1, cast(out, Float.self), argmax)
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_maxpool2d_f64(&s, cast(x, Double.self), q0, q1, cast(out, Double.self), argmax)
  }
}

@usableFromInline
func _maxPool2dBackward<T: TensorScalar>(
  _ g: ConvGeometry, _ grad: UnsafePointer<T>, _ argmax: UnsafePointer<Int32>, _ q0: Int, _ q1: Int,
  _ dx: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    var s = g.c
    soma_maxpool2d_backward_f32(&s, cast(grad, Float.self), argmax, q0, q1, cast(dx, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_maxpool2d_backward_f64(&s, cast(grad, Double.self), argmax, q0, q1, cast(dx, Double.self))
  }
}

@usableFromInline
func _avgPool2d<T: TensorScalar>(
  _ g: ConvGeometry, _ x: UnsafePointer<T>, _ q0: Int, _ q1: Int, countPadding: Bool,
  _ out: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    var s = g.c
    soma_avgpool2d_f32(&s, cast(x, Float.self), q0, q1, countPadding ? 1 : 0, cast(out, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_avgpool2d_f64(
      &s, cast(x, Double.self), q0, q1, countPadding ? 1 : 0, cast(out, Double.self))
  }
}

@usableFromInline
func _avgPool2dBackward<T: TensorScalar>(
  _ g: ConvGeometry, _ grad: UnsafePointer<T>, _ q0: Int, _ q1: Int, countPadding: Bool,
  _ dx: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    var s = g.c
    soma_avgpool2d_backward_f32(
      &s, cast(grad, Float.self), q0, q1, countPadding ? 1 : 0, cast(dx, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    var s = g.c
    soma_avgpool2d_backward_f64(
      &s, cast(grad, Double.self), q0, q1, countPadding ? 1 : 0, cast(dx, Double.self))
  }
}

@usableFromInline
func _bnStats<T: TensorScalar>(
  _ x: UnsafePointer<T>, rows: Int, channels: Int, inner: Int, _ c0: Int, _ c1: Int,
  mean: UnsafeMutablePointer<Double>, variance: UnsafeMutablePointer<Double>
) {
  if T.self == Float.self {
    soma_bn_stats_f32(cast(x, Float.self), rows, channels, inner, c0, c1, mean, variance)
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_bn_stats_f64(cast(x, Double.self), rows, channels, inner, c0, c1, mean, variance)
  }
}

@usableFromInline
func _bnApply<T: TensorScalar>(
  _ x: UnsafePointer<T>, rows: Int, channels: Int, inner: Int, _ c0: Int, _ c1: Int,
  scale: UnsafePointer<T>, shift: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_bn_apply_f32(
      cast(x, Float.self), rows, channels, inner, c0, c1, cast(scale, Float.self),
      cast(shift, Float.self), cast(y, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_bn_apply_f64(
      cast(x, Double.self), rows, channels, inner, c0, c1, cast(scale, Double.self),
      cast(shift, Double.self), cast(y, Double.self))
  }
}

@usableFromInline
func _bnBackward<T: TensorScalar>(
  _ x: UnsafePointer<T>, xRows: Int, _ grad: UnsafePointer<T>, gradRows: Int, channels: Int,
  inner: Int, _ c0: Int, _ c1: Int, mean: UnsafePointer<Double>, invStd: UnsafePointer<Double>,
  gamma: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?, dGamma: UnsafeMutablePointer<Double>,
  dBeta: UnsafeMutablePointer<Double>
) {
  if T.self == Float.self {
    soma_bn_backward_f32(
      cast(x, Float.self), xRows, cast(grad, Float.self), gradRows, channels, inner, c0, c1, mean,
      invStd, cast(gamma, Float.self), dx.map { cast($0, Float.self) }, dGamma, dBeta)
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_bn_backward_f64(
      cast(x, Double.self), xRows, cast(grad, Double.self), gradRows, channels, inner, c0, c1, mean,
      invStd, cast(gamma, Double.self), dx.map { cast($0, Double.self) }, dGamma, dBeta)
  }
}

/// dx of training-mode batch norm from the means `mg` of g and `mgx` of g·x̂ over the batch.
@usableFromInline
func _bnBackwardDx<T: TensorScalar>(
  _ x: UnsafePointer<T>, xRows: Int, _ grad: UnsafePointer<T>, gradRows: Int, channels: Int,
  inner: Int, _ c0: Int, _ c1: Int, mean: UnsafePointer<Double>, invStd: UnsafePointer<Double>,
  gamma: UnsafePointer<T>, meanGrad: UnsafePointer<Double>, meanGradXHat: UnsafePointer<Double>,
  dx: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_bn_backward_dx_f32(
      cast(x, Float.self), xRows, cast(grad, Float.self), gradRows, channels, inner, c0, c1, mean,
      invStd, cast(gamma, Float.self), meanGrad, meanGradXHat, cast(dx, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_bn_backward_dx_f64(
      cast(x, Double.self), xRows, cast(grad, Double.self), gradRows, channels, inner, c0, c1,
      mean, invStd, cast(gamma, Double.self), meanGrad, meanGradXHat, cast(dx, Double.self))
  }
}

@usableFromInline
func _countSpikes<T: TensorScalar>(
  _ x: UnsafePointer<T>, count n: Int, _ binary: UnsafeMutablePointer<Int32>
) -> Int {
  if T.self == Float.self {
    return soma_conv_count_active_f32(cast(x, Float.self), n, binary)
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    return soma_conv_count_active_f64(cast(x, Double.self), n, binary)
  }
}

@usableFromInline
func _winoWeight<T: TensorScalar>(
  _ w: UnsafePointer<T>, outChannels: Int, inChannels: Int, _ u: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_wino_weight_f32(cast(w, Float.self), outChannels, inChannels, cast(u, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_wino_weight_f64(cast(w, Double.self), outChannels, inChannels, cast(u, Double.self))
  }
}

@usableFromInline
func _winoInput<T: TensorScalar>(
  _ g: ConvGeometry, _ x: UnsafePointer<T>, _ n0: Int, _ n1: Int, _ v: UnsafeMutablePointer<T>
) {
  var s = g.c
  if T.self == Float.self {
    soma_wino_input_f32(&s, cast(x, Float.self), n0, n1, cast(v, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_wino_input_f64(&s, cast(x, Double.self), n0, n1, cast(v, Double.self))
  }
}

@usableFromInline
func _winoOutput<T: TensorScalar>(
  _ g: ConvGeometry, outChannels: Int, _ m: UnsafePointer<T>, _ n0: Int, _ n1: Int,
  bias: UnsafePointer<T>?, _ out: UnsafeMutablePointer<T>
) {
  var s = g.c
  if T.self == Float.self {
    soma_wino_output_f32(
      &s, outChannels, cast(m, Float.self), n0, n1, bias.map { cast($0, Float.self) },
      cast(out, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_wino_output_f64(
      &s, outChannels, cast(m, Double.self), n0, n1, bias.map { cast($0, Double.self) },
      cast(out, Double.self))
  }
}

@usableFromInline
func _winoGradTiles<T: TensorScalar>(
  _ g: ConvGeometry, outChannels: Int, _ grad: UnsafePointer<T>, _ n0: Int, _ n1: Int,
  _ z: UnsafeMutablePointer<T>
) {
  var s = g.c
  if T.self == Float.self {
    soma_wino_grad_tiles_f32(&s, outChannels, cast(grad, Float.self), n0, n1, cast(z, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_wino_grad_tiles_f64(
      &s, outChannels, cast(grad, Double.self), n0, n1, cast(z, Double.self))
  }
}

@usableFromInline
func _winoWeightGrad<T: TensorScalar>(
  _ du: UnsafePointer<T>, outChannels: Int, inChannels: Int, _ dw: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_wino_weight_grad_f32(cast(du, Float.self), outChannels, inChannels, cast(dw, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_wino_weight_grad_f64(
      cast(du, Double.self), outChannels, inChannels, cast(dw, Double.self))
  }
}

@usableFromInline
func _winoMWeight<T: TensorScalar>(
  tile m: Int, _ w: UnsafePointer<T>, outChannels: Int, inChannels: Int,
  _ u: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_winom_weight_f32(m, cast(w, Float.self), outChannels, inChannels, cast(u, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_winom_weight_f64(m, cast(w, Double.self), outChannels, inChannels, cast(u, Double.self))
  }
}

/// The elements of the scratch plane the F(m×m) transforms of geometry `g` need.
@usableFromInline
func _winoMScratch<T: TensorScalar>(_ g: ConvGeometry, tile m: Int, _: T.Type) -> Int {
  var s = g.c
  return T.self == Float.self ? soma_winom_scratch_f32(&s, m) : soma_winom_scratch_f64(&s, m)
}

@usableFromInline
func _winoMInput<T: TensorScalar>(
  _ g: ConvGeometry, tile m: Int, _ x: UnsafePointer<T>, _ n0: Int, _ n1: Int,
  _ v: UnsafeMutablePointer<T>, stride: Int, scratch: UnsafeMutablePointer<T>
) {
  var s = g.c
  if T.self == Float.self {
    soma_winom_input_f32(
      &s, m, cast(x, Float.self), n0, n1, cast(v, Float.self), stride, cast(scratch, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_winom_input_f64(
      &s, m, cast(x, Double.self), n0, n1, cast(v, Double.self), stride,
      cast(scratch, Double.self))
  }
}

@usableFromInline
func _winoMOutput<T: TensorScalar>(
  _ g: ConvGeometry, tile m: Int, outChannels: Int, _ mt: UnsafePointer<T>, stride: Int,
  _ n0: Int, _ n1: Int, bias: UnsafePointer<T>?, _ out: UnsafeMutablePointer<T>,
  scratch: UnsafeMutablePointer<T>
) {
  var s = g.c
  if T.self == Float.self {
    soma_winom_output_f32(
      &s, m, outChannels, cast(mt, Float.self), stride, n0, n1, bias.map { cast($0, Float.self) },
      cast(out, Float.self), cast(scratch, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_winom_output_f64(
      &s, m, outChannels, cast(mt, Double.self), stride, n0, n1,
      bias.map { cast($0, Double.self) }, cast(out, Double.self), cast(scratch, Double.self))
  }
}

@usableFromInline
func _winoMGradTiles<T: TensorScalar>(
  _ g: ConvGeometry, tile m: Int, outChannels: Int, _ grad: UnsafePointer<T>, _ n0: Int,
  _ n1: Int, _ z: UnsafeMutablePointer<T>, stride: Int, scratch: UnsafeMutablePointer<T>
) {
  var s = g.c
  if T.self == Float.self {
    soma_winom_grad_tiles_f32(
      &s, m, outChannels, cast(grad, Float.self), n0, n1, cast(z, Float.self), stride,
      cast(scratch, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_winom_grad_tiles_f64(
      &s, m, outChannels, cast(grad, Double.self), n0, n1, cast(z, Double.self), stride,
      cast(scratch, Double.self))
  }
}

@usableFromInline
func _winoMWeightGrad<T: TensorScalar>(
  tile m: Int, _ du: UnsafePointer<T>, outChannels: Int, inChannels: Int,
  _ dw: UnsafeMutablePointer<T>
) {
  if T.self == Float.self {
    soma_winom_weight_grad_f32(
      m, cast(du, Float.self), outChannels, inChannels, cast(dw, Float.self))
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_winom_weight_grad_f64(
      m, cast(du, Double.self), outChannels, inChannels, cast(dw, Double.self))
  }
}

/// c[i, j] = Σ_p a[i·rowStride + p·depthStride]·b[p·ldb + j] for i < m, j < n (added to c
/// when `accumulate`): the Winograd tile GEMMs, without packing either operand.
@usableFromInline
func _tileGemm<T: TensorScalar>(
  m: Int, n: Int, k: Int, a: UnsafePointer<T>, rowStride: Int, depthStride: Int,
  b: UnsafePointer<T>, ldb: Int, c: UnsafeMutablePointer<T>, ldc: Int, accumulate: Bool
) {
  if T.self == Float.self {
    soma_tile_gemm_f32(
      m, n, k, cast(a, Float.self), rowStride, depthStride, cast(b, Float.self), ldb,
      cast(c, Float.self), ldc, accumulate ? 1 : 0)
  } else {
    precondition(T.self == Double.self, "SomaConv kernels exist for Float and Double only")
    soma_tile_gemm_f64(
      m, n, k, cast(a, Double.self), rowStride, depthStride, cast(b, Double.self), ldb,
      cast(c, Double.self), ldc, accumulate ? 1 : 0)
  }
}
