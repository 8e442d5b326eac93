/// 2-D max pooling over images [T, batch, C, H, W] or [batch, C, H, W] (each plane on its own;
/// padding counts as −∞). The gradient goes to each window's maximum (the first one on ties, in
/// row-major order, as in PyTorch).
///
/// ```swift
/// let pool = try MaxPool2d<Float>(kernelSize: 2)     // stride defaults to the kernel size
/// let y = pool(spikes)                                // [T, B, C, 28, 28] → [T, B, C, 14, 14]
/// ```
public struct MaxPool2d<Scalar: TensorScalar>: Layer {
  public let kernelSize: Size2D
  public let stride: Size2D
  public let padding: Size2D
  public let dilation: Size2D

  /// Throws for a kernel, stride or dilation below 1, or padding below 0 or above half the
  /// (dilated) kernel. `stride` nil means the kernel size.
  public init(
    kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0, dilation: Size2D = 1
  ) throws(SomaNNError) {
    let stride = stride ?? kernelSize
    try checkPool(
      "MaxPool2d", kernel: kernelSize, stride: stride, padding: padding, dilation: dilation)
    (self.kernelSize, self.stride, self.padding, self.dilation) =
      (kernelSize, stride, padding, dilation)
  }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    let (batch, geo) = poolGeometry(
      input.shape, "MaxPool2d", kernelSize, stride, padding, dilation)
    let planes = batch.images * batch.channels
    let x = input.value.contiguous()
    let outShape = batch.lead + [batch.channels, geo.outHeight, geo.outWidth]
    var y = Tensor<Scalar>(uninitializedShape: outShape)
    let parts = spatialParts(planes * geo.plane >= 1 << 15 ? planes : 1, usesBLAS: false)
    // Every output writes its window's choice, so the indices start uninitialised.
    let argmax = [Int32](unsafeUninitializedCapacity: planes * geo.pixels) { pa, count in
      guard planes * geo.pixels > 0 else { return }
      x.withUnsafeBufferPointer { px in
        y.withUnsafeMutableBufferPointer { py in
          let (xp, yp, ap) = (px.baseAddress!, py.baseAddress!, pa.baseAddress!)
          parallel(parts) { part in
            let (a, b) = partRange(part, of: parts, count: planes)
            if a < b { _maxPool2d(geo, xp, a, b, yp, ap) }
          }
        }
      }
      count = planes * geo.pixels
    }
    let inShape = input.shape
    return .record(y, parents: [input]) { g in
      var dx = Tensor<Scalar>(uninitializedShape: inShape)
      g.withUnsafeBufferPointer { pg in
        argmax.withUnsafeBufferPointer { pa in
          dx.withUnsafeMutableBufferPointer { pd in
            let (gp, ap, dp) = (pg.baseAddress!, pa.baseAddress!, pd.baseAddress!)
            parallel(parts) { part in
              let (a, b) = partRange(part, of: parts, count: planes)
              if a < b { _maxPool2dBackward(geo, gp, ap, a, b, dp) }
            }
          }
        }
      }
      return [dx]
    }
  }
}

/// 2-D average pooling over images [T, batch, C, H, W] or [batch, C, H, W]. With
/// `countIncludePad` (the default, as in PyTorch) a window's divisor counts its padding.
///
/// ```swift
/// let pool = try AvgPool2d<Float>(kernelSize: 2)
/// ```
public struct AvgPool2d<Scalar: TensorScalar>: Layer {
  public let kernelSize: Size2D
  public let stride: Size2D
  public let padding: Size2D
  public let countIncludePad: Bool

  /// Throws for a kernel or stride below 1, or padding below 0 or above half the kernel.
  /// `stride` nil means the kernel size.
  public init(
    kernelSize: Size2D, stride: Size2D? = nil, padding: Size2D = 0, countIncludePad: Bool = true
  ) throws(SomaNNError) {
    let stride = stride ?? kernelSize
    try checkPool("AvgPool2d", kernel: kernelSize, stride: stride, padding: padding, dilation: 1)
    (self.kernelSize, self.stride, self.padding, self.countIncludePad) =
      (kernelSize, stride, padding, countIncludePad)
  }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    let (batch, geo) = poolGeometry(input.shape, "AvgPool2d", kernelSize, stride, padding, 1)
    let planes = batch.images * batch.channels
    let x = input.value.contiguous()
    var y = Tensor<Scalar>(
      uninitializedShape: batch.lead + [batch.channels, geo.outHeight, geo.outWidth])
    let parts = spatialParts(planes * geo.plane >= 1 << 15 ? planes : 1, usesBLAS: false)
    let countPad = countIncludePad
    x.withUnsafeBufferPointer { px in
      y.withUnsafeMutableBufferPointer { py in
        let (xp, yp) = (px.baseAddress!, py.baseAddress!)
        parallel(parts) { part in
          let (a, b) = partRange(part, of: parts, count: planes)
          if a < b { _avgPool2d(geo, xp, a, b, countPadding: countPad, yp) }
        }
      }
    }
    let inShape = input.shape
    return .record(y, parents: [input]) { g in
      var dx = Tensor<Scalar>(uninitializedShape: inShape)
      g.withUnsafeBufferPointer { pg in
        dx.withUnsafeMutableBufferPointer { pd in
          let (gp, dp) = (pg.baseAddress!, pd.baseAddress!)
          parallel(parts) { part in
            let (a, b) = partRange(part, of: parts, count: planes)
            if a < b { _avgPool2dBackward(geo, gp, a, b, countPadding: countPad, dp) }
          }
        }
      }
      return [dx]
    }
  }
}

func checkPool(
  _ layer: String, kernel: Size2D, stride: Size2D, padding: Size2D, dilation: Size2D
) throws(SomaNNError) {
  try kernel.check("kernelSize", layer: layer, minimum: 1)
  try stride.check("stride", layer: layer, minimum: 1)
  try dilation.check("dilation", layer: layer, minimum: 1)
  try padding.check("padding", layer: layer, minimum: 0)
  // PyTorch's rule: a window must always see at least one real pixel.
  for (p, k, d) in [
    (padding.height, kernel.height, dilation.height), (padding.width, kernel.width, dilation.width),
  ] where 2 * p > d * (k - 1) + 1 {
    throw .invalidHyperparameter(
      layer: layer, name: "padding", value: Double(p),
      allowed: "at most half the effective kernel size (\((d * (k - 1) + 1) / 2))")
  }
}

/// The batch and window geometry of a pooling layer's input; traps when the window does not
/// fit.
@inlinable
func poolGeometry(
  _ shape: [Int], _ layer: String, _ kernel: Size2D, _ stride: Size2D, _ padding: Size2D,
  _ dilation: Size2D
) -> (ImageBatch, ConvGeometry) {
  let batch = ImageBatch(shape, layer: layer)
  let geo = ConvGeometry(
    channels: batch.channels, height: batch.height, width: batch.width, kernel: kernel.pair,
    stride: stride.pair, padding: padding.pair, dilation: dilation.pair)
  precondition(
    geo.outHeight >= 1 && geo.outWidth >= 1,
    "\(layer): input of shape \(shape) is smaller than the window \(kernel) "
      + "(padding \(padding), dilation \(dilation))")
  return (batch, geo)
}

/// Flattens each sample's features into one axis: [T, batch, …] → [T, batch, n] in multi-step
/// mode, [batch, …] → [batch, n] in single-step mode (`step`). A view, no copy when the input is
/// contiguous.
///
/// ```swift
/// let flat = Flatten<Float>()
/// let y = flat(maps)   // [T, B, 128, 7, 7] → [T, B, 6272]
/// ```
public struct Flatten<Scalar: TensorScalar>: Layer {
  public init() {}

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    precondition(
      input.rank >= 2,
      "Flatten: multi-step input must be [T, batch, features…], got shape \(input.shape)")
    return input.reshaped([input.shape[0], input.shape[1], -1])
  }

  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    precondition(
      input.rank >= 1, "Flatten: single-step input must be [batch, features…], got \(input.shape)")
    return input.reshaped([input.shape[0], -1])
  }
}

/// Unflattens each sample's features into a shape: [T, batch, n] → [T, batch] + `shape` in
/// multi-step mode, [batch, n] → [batch] + `shape` in single-step mode (PyTorch's
/// `nn.Unflatten(-1, shape)`). A flat image batch, as the dense encoders write it, becomes
/// images for a convolution. A view, no copy when the input is contiguous.
///
/// ```swift
/// let images = Unflatten<Float>([1, 28, 28])
/// let y = images(pixels)   // [T, B, 784] → [T, B, 1, 28, 28]
/// ```
public struct Unflatten<Scalar: TensorScalar>: Layer {
  /// The shape of one sample.
  public let shape: [Int]

  /// Throws for an empty shape or an axis below 1.
  public init(_ shape: [Int]) throws(SomaNNError) {
    guard !shape.isEmpty, let bad = shape.min(), bad >= 1 else {
      throw .invalidHyperparameter(
        layer: "Unflatten", name: "shape", value: Double(shape.min() ?? 0),
        allowed: "one or more axes, each ≥ 1")
    }
    self.shape = shape
  }

  /// The features of one sample (the product of `shape`).
  @inlinable public var features: Int { shape.reduce(1, *) }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    precondition(
      input.rank >= 2 && input.shape[2...].reduce(1, *) == features,
      "Unflatten: multi-step input must be [T, batch, \(features)] to become [T, batch] + "
        + "\(shape), got shape \(input.shape)")
    return input.reshaped([input.shape[0], input.shape[1]] + shape)
  }

  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    precondition(
      input.rank >= 1 && input.shape[1...].reduce(1, *) == features,
      "Unflatten: single-step input must be [batch, \(features)], got shape \(input.shape)")
    return input.reshaped([input.shape[0]] + shape)
  }
}
