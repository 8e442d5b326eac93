import SomaKernels
import Synchronization

/// A 2-D convolution over images, with the weight stored [out, in / groups, kh, kw] as PyTorch
/// stores it.
///
/// Input is multi-step [T, batch, C, H, W] (time folded into the batch) or [batch, C, H, W];
/// the output keeps the leading axes. The ways to compute it, chosen per call:
/// - Winograd for a 3 × 3, stride-1, undilated, one-group kernel with ≥ 16 channels in and out
///   (forward, input and weight gradients) with the output tile whose tiles need the fewest
///   multiplications: F(2×2, 3×3), 16 GEMMs over 4 × 4 tiles (2.25× fewer than im2col on
///   whole tiles), F(4×4, 3×3), 36 GEMMs over 6 × 6 tiles (4× fewer), or F(5×5, 3×3), 49 GEMMs
///   over 7 × 7 tiles (4.6× fewer; 4× on 14 × 14 maps, where F(4×4) gains 3.1×);
///   `SOMA_CONV_WINOGRAD=2` keeps F(2×2), `=4` allows up to F(4×4), `=0` turns Winograd off;
/// - dense: im2col and one GEMM per block of images (OpenBLAS), backward as two more GEMMs;
/// - events: when the input is 0/1 spikes sparser than `eventPolicy` allows, each active input
///   pixel adds its kernel slice to the outputs it reaches, and the weight gradient gathers the
///   output gradient at the same events;
/// - once per image: when a multi-step input is the same at every time step (a direct-coded
///   image, e.g. `image.expanded(to: [T] + image.shape)`, or equal slices), the convolution
///   runs on one slice and the output is that result repeated over time (a stride-0 view),
///   whose gradient the layers after it may send back tied over time (summed once, not T
///   times).
///
/// ```swift
/// let conv = try Conv2d<Float>(1, 128, kernelSize: 3, padding: 1, bias: false, seed: 1)
/// let y = conv(Variable(images))    // [T, B, 1, 28, 28] → [T, B, 128, 28, 28]
/// ```
public struct Conv2d<Scalar: TensorScalar>: Layer {
  /// The weight, [outChannels, inChannels / groups, kernel height, kernel width].
  public let weight: Variable<Scalar>
  /// The bias, [outChannels], if any.
  public let bias: Variable<Scalar>?
  public let stride: Size2D
  public let padding: Size2D
  public let dilation: Size2D
  public let groups: Int
  /// When the convolution reads its input as events (`.auto(threshold:)` compares the measured
  /// density of 0/1 input with the threshold; non-binary input always runs dense).
  public var eventPolicy: EventPolicy = Conv2d.automaticEvents

  /// The crossover measured on a 2-core AVX2 machine (AMD EPYC, OpenBLAS sgemm) for a 128 → 128
  /// 3 × 3 layer on 14 × 14 spike maps, T·batch = 256: the event forward pass wins below about
  /// 20 % input density, the event weight gradient below about 7 %.
  public static var automaticEvents: EventPolicy { .auto(threshold: 0.2) }
  /// Under `.auto(threshold:)`, the weight gradient reads events below this share of the
  /// threshold.
  public static var weightGradientShare: Double { 0.35 }
  /// Whether 3 × 3 stride-1 convolutions with ≥ 16 channels in and out run by Winograd
  /// (forward, input and weight gradients); `SOMA_CONV_WINOGRAD=0` turns it off (im2col).
  public static var winogradEnabled: Bool { _winogradMode != 0 }

  @inlinable public var outChannels: Int { weight.shape[0] }
  @inlinable public var inChannels: Int { weight.shape[1] * groups }
  @inlinable public var kernelSize: Size2D { Size2D(weight.shape[2], weight.shape[3]) }

  /// A layer with the given weight [out, in / groups, kh, kw] and optional bias [out]. Throws
  /// for a stride or dilation below 1, padding below 0, or groups that do not divide the
  /// channels.
  public init(
    weight: Tensor<Scalar>, bias: Tensor<Scalar>? = nil, stride: Size2D = 1,
    padding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1
  ) throws(SomaNNError) {
    precondition(
      weight.rank == 4 && !weight.shape.contains(0),
      "Conv2d: weight must be 4-D [out, in / groups, kh, kw] with no empty axis, got "
        + "\(weight.shape)")
    if let bias {
      precondition(
        bias.shape == [weight.shape[0]],
        "Conv2d: bias shape \(bias.shape) does not match weight shape \(weight.shape)")
    }
    try Conv2d.check(stride: stride, padding: padding, dilation: dilation)
    guard groups >= 1 && weight.shape[0] % groups == 0 else {
      throw .invalidHyperparameter(
        layer: "Conv2d", name: "groups", value: Double(groups),
        allowed: "≥ 1 and a divisor of the \(weight.shape[0]) output channels")
    }
    self.weight = Variable(weight.copiedContiguous(), requiresGrad: true, name: "weight")
    self.bias = bias.map { Variable($0.copiedContiguous(), requiresGrad: true, name: "bias") }
    (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
  }

  /// A freshly initialised layer (PyTorch's default: weight and bias uniform in ±1/√fan_in,
  /// fan_in = in / groups · kh · kw) drawing from `generator`. Throws for channel counts or a
  /// kernel below 1, and as `init(weight:…)`.
  public init<G: RandomNumberGenerator>(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1,
    padding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1, bias: Bool = true,
    using generator: inout G
  ) throws(SomaNNError) {
    for (name, v) in [("inChannels", inChannels), ("outChannels", outChannels)] where v < 1 {
      throw .invalidHyperparameter(layer: "Conv2d", name: name, value: Double(v), allowed: "≥ 1")
    }
    try kernelSize.check("kernelSize", layer: "Conv2d", minimum: 1)
    guard groups >= 1 && inChannels % groups == 0 && outChannels % groups == 0 else {
      throw .invalidHyperparameter(
        layer: "Conv2d", name: "groups", value: Double(groups),
        allowed: "≥ 1 and a divisor of \(inChannels) in and \(outChannels) out channels")
    }
    let fanIn = inChannels / groups * kernelSize.height * kernelSize.width
    let bound = Scalar(1 / Double(fanIn).squareRoot())
    let w = Tensor<Scalar>.uniform(
      [outChannels, inChannels / groups, kernelSize.height, kernelSize.width], low: -bound,
      high: bound, using: &generator)
    let b =
      bias
      ? Tensor<Scalar>.uniform([outChannels], low: -bound, high: bound, using: &generator) : nil
    try self.init(
      weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
  }

  /// A freshly initialised layer; `seed` makes it reproducible (nil draws from the system's
  /// generator).
  public init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Size2D, stride: Size2D = 1,
    padding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1, bias: Bool = true,
    seed: UInt64? = nil
  ) throws(SomaNNError) {
    var rng = SomaRandom(seed: seed ?? UInt64.random(in: 0...UInt64.max))
    try self.init(
      inChannels, outChannels, kernelSize: kernelSize, stride: stride, padding: padding,
      dilation: dilation, groups: groups, bias: bias, using: &rng)
  }

  static func check(stride: Size2D, padding: Size2D, dilation: Size2D) throws(SomaNNError) {
    try stride.check("stride", layer: "Conv2d", minimum: 1)
    try padding.check("padding", layer: "Conv2d", minimum: 0)
    try dilation.check("dilation", layer: "Conv2d", minimum: 1)
  }

  public var parameters: [(name: String, variable: Variable<Scalar>)] {
    var p: [(name: String, variable: Variable<Scalar>)] = [("weight", weight)]
    if let bias { p.append(("bias", bias)) }
    return p
  }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    conv2d(
      input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
      groups: groups, eventPolicy: eventPolicy)
  }
}

/// The convolution of `x` ([T, B, C, H, W] or [N, C, H, W]) with `weight` [out, C / groups, kh,
/// kw] and optional `bias` [out], as one autodiff node (see `Conv2d` for the three ways it
/// runs).
@inlinable
public func conv2d<Scalar>(
  _ x: Variable<Scalar>, weight: Variable<Scalar>, bias: Variable<Scalar>?, stride: Size2D = 1,
  padding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1,
  eventPolicy: EventPolicy = Conv2d<Scalar>.automaticEvents
) -> Variable<Scalar> {
  let input = ImageBatch(x.shape, layer: "Conv2d")
  let w = weight.value
  precondition(
    w.rank == 4 && groups >= 1 && w.shape[0] % groups == 0
      && input.channels == w.shape[1] * groups,
    "Conv2d: input of shape \(x.shape) does not match weight of shape \(w.shape) with \(groups) "
      + "group(s) (the channel axis must be \(w.shape[1] * groups))")
  let geo = ConvGeometry(
    channels: input.channels, height: input.height, width: input.width,
    kernel: (w.shape[2], w.shape[3]), stride: stride.pair, padding: padding.pair,
    dilation: dilation.pair)
  precondition(
    geo.outHeight >= 1 && geo.outWidth >= 1,
    "Conv2d: input of shape \(x.shape) is smaller than the kernel \(w.shape[2])×\(w.shape[3]) "
      + "(dilation \(dilation), padding \(padding))")
  let plan = ConvPlan<Scalar>(
    geometry: geo, outChannels: w.shape[0], groups: groups, weight: w.contiguous())
  let outLead = input.lead
  let outShape = outLead + [plan.outChannels, geo.outHeight, geo.outWidth]

  // A direct-coded multi-step input runs once, on its first time step.
  let once = outLead.count == 2 && repeatsOverTime(x.value)
  let xs = once ? firstSlice(x.value) : x.value.contiguous()
  let images = once ? outLead[1] : input.images
  let b = bias?.value.contiguous()
  let use = plan.eventUse(xs, images: images, policy: eventPolicy)
  let needW = weight.requiresGrad && GradientMode.isEnabled
  let events = use.forward || (use.weight && needW) ? plan.events(xs, images: images) : nil
  var y =
    use.forward
    ? plan.forwardEvents(events!, images: images, bias: b)
    : plan.winograd
      ? plan.forwardWinograd(xs, images: images, bias: b)
      : plan.forwardDense(xs, images: images, bias: b)
  if once { y = repeated(y, steps: outLead[0]) }
  y = y.reshaped(outShape)

  var parents = [x, weight]
  if let bias { parents.append(bias) }
  let weightEvents = use.weight ? events : nil
  let needX = x.requiresGrad
  let needB = bias?.requiresGrad ?? false
  let inShape = x.shape
  // An input tied over time (see `isTiedOverTime`) gets a tied gradient from the summed one.
  let tiedInput = once && isTiedOverTime(x)
  return .record(y, parents: parents) { g in
    // Weight and bias see the gradient summed over time when the input repeated.
    // A tied gradient is read as its one slice, the (small) results scaled by T (`timeSum`).
    let (gw, gFactor): (Tensor<Scalar>, Scalar) = once ? timeSum(g) : (g.contiguous(), 1)
    var dW: Tensor<Scalar>? = nil
    if needW {
      dW =
        weightEvents.map { plan.weightGradientEvents($0, grad: gw, images: images) }
        ?? (plan.winograd
          ? plan.weightGradientWinograd(grad: gw, input: xs, images: images)
          : plan.backwardDense(grad: gw, input: xs, images: images, needInput: false).dW)
      if gFactor != 1 { dW = dW! * gFactor }
    }
    var dX: Tensor<Scalar>? = nil
    if needX && tiedInput {
      dX = tiedGradient(
        plan.inputGradient(gw, images: images), factor: gFactor, steps: outLead[0])
    } else if needX {
      dX = plan.inputGradient(g.contiguous(), images: input.images).reshaped(inShape)
    }
    var grads: [Tensor<Scalar>?] = [dX, dW]
    if bias != nil {
      grads.append(
        needB
          ? gw.reshaped([-1, plan.outChannels, geo.pixels]).sum(axes: [0, 2]) * gFactor : nil)
    }
    return grads
  }
}

/// The active pixels of a batch of 0/1 images: row (image, channel) lists its pixels.
@usableFromInline
struct ConvEvents {
  @usableFromInline var list: [Int32]
  @usableFromInline var begin: [Int64]
  @usableFromInline var end: [Int64]

  @inlinable
  init(list: [Int32], begin: [Int64], end: [Int64]) {
    (self.list, self.begin, self.end) = (list, begin, end)
  }
}

/// One convolution's sizes and weight, and the passes that run it.
@usableFromInline
struct ConvPlan<T: TensorScalar> {
  @usableFromInline let geo: ConvGeometry
  @usableFromInline let outChannels: Int
  @usableFromInline let groups: Int
  /// [out, in / groups · kh · kw], contiguous.
  @usableFromInline let weight: Tensor<T>

  @inlinable
  init(geometry: ConvGeometry, outChannels: Int, groups: Int, weight: Tensor<T>) {
    (geo, self.outChannels, self.groups, self.weight) = (geometry, outChannels, groups, weight)
  }

  /// Rows of the unfolded input (C · kh · kw) and per group.
  @inlinable var rows: Int { geo.channels * geo.kernel.h * geo.kernel.w }
  @inlinable var rowsPerGroup: Int { rows / groups }
  @inlinable var outPerGroup: Int { outChannels / groups }

  /// Images per im2col block: the unfolded block stays near 4 MB.
  @inlinable
  func block(_ images: Int) -> Int {
    Swift.max(1, Swift.min(images, (1 << 20) / Swift.max(1, rows * geo.pixels)))
  }

  /// Whether the dense passes take one image at a time, whose [out, oh, ow] planes are then
  /// the GEMM's own output (and gradient) layout, instead of a block of images gathered
  /// image-minor (a copy of the output and of its gradient): when an image alone is wide
  /// enough for the GEMM.
  @inlinable var directProducts: Bool { geo.pixels >= 256 }

  /// Dense forward of `images` contiguous images: im2col and GEMM per block.
  @inlinable
  func forwardDense(_ x: Tensor<T>, images: Int, bias: Tensor<T>?) -> Tensor<T> {
    var out = Tensor<T>(uninitializedShape: [images, outChannels, geo.outHeight, geo.outWidth])
    let parts = spatialParts(images, usesBLAS: true)
    let (K, Kg, Og, P) = (rows, rowsPerGroup, outPerGroup, geo.pixels)
    let direct = directProducts
    x.withUnsafeBufferPointer { px in
      weight.withUnsafeBufferPointer { pw in
        withOptionalPointer(bias) { pb in
          out.withUnsafeMutableBufferPointer { po in
            let (xp, wp, op) = (px.baseAddress!, pw.baseAddress!, po.baseAddress!)
            let chunk = direct ? 1 : block((images + parts - 1) / parts)
            parallel(parts) { part in
              let (a, b) = partRange(part, of: parts, count: images)
              if a == b { return }
              let cols = UnsafeMutablePointer<T>.allocate(capacity: K * chunk * P)
              let ybuf = UnsafeMutablePointer<T>.allocate(
                capacity: direct ? 1 : outChannels * chunk * P)
              defer {
                cols.deallocate()
                ybuf.deallocate()
              }
              var n0 = a
              while n0 < b {
                let n1 = Swift.min(b, n0 + chunk)
                let ld = (n1 - n0) * P
                // One image's block [out, P] is its own output plane.
                let y = direct ? op + n0 * outChannels * P : ybuf
                _im2col(geo, xp, n0, n1, 0, K, cols)
                for g in 0..<groups {
                  T._gemm(
                    transA: false, transB: false, m: Og, n: ld, k: Kg, alpha: 1,
                    a: wp + g * Og * Kg, lda: Kg, b: cols + g * Kg * ld, ldb: ld, beta: 0,
                    c: y + g * Og * ld, ldc: ld)
                }
                if !direct {
                  _convScatter(ybuf, channels: outChannels, pixels: P, n0, n1, bias: pb, op)
                } else if let pb {
                  for o in 0..<outChannels {
                    let (row, bo) = (y + o * P, pb[o])
                    for p in 0..<P { row[p] += bo }
                  }
                }
                n0 = n1
              }
            }
          }
        }
      }
    }
    return out
  }

  /// Dense backward from `grad` [images, out, oh, ow] (contiguous): the weight gradient (with
  /// `input`) and, with `needInput`, the input gradient.
  @inlinable
  func backwardDense(grad: Tensor<T>, input: Tensor<T>?, images: Int, needInput: Bool)
    -> (dW: Tensor<T>?, dX: Tensor<T>?)
  {
    let needW = input != nil
    // The partition into parts does not follow OpenBLAS's thread count (a global another
    // caller may change), so the weight gradient's sum over parts is the same either way.
    let parts = spatialParts(images, usesBLAS: false)
    let (K, Kg, Og, P) = (rows, rowsPerGroup, outPerGroup, geo.pixels)
    let direct = directProducts
    var dX = needInput ? Tensor<T>.zeros([images, geo.channels, geo.height, geo.width]) : nil
    // One weight-gradient buffer per part, summed at the end.
    let dWParts = UnsafeMutablePointer<T>.allocate(capacity: needW ? parts * outChannels * Kg : 1)
    defer { dWParts.deallocate() }
    if needW { dWParts.initialize(repeating: 0, count: parts * outChannels * Kg) }
    grad.withUnsafeBufferPointer { pg in
      weight.withUnsafeBufferPointer { pw in
        withOptionalPointer(input) { px in
          withOptionalMutablePointer(&dX) { pdx in
            let (gp, wp) = (pg.baseAddress!, pw.baseAddress!)
            let chunk = direct ? 1 : block((images + parts - 1) / parts)
            parallelAroundBLAS(parts) { part in
              let (a, b) = partRange(part, of: parts, count: images)
              if a == b { return }
              let gbuf = UnsafeMutablePointer<T>.allocate(
                capacity: direct ? 1 : outChannels * chunk * P)
              let cols = UnsafeMutablePointer<T>.allocate(capacity: K * chunk * P)
              defer {
                gbuf.deallocate()
                cols.deallocate()
              }
              let dw = dWParts + part * outChannels * Kg
              var n0 = a
              while n0 < b {
                let n1 = Swift.min(b, n0 + chunk)
                let ld = (n1 - n0) * P
                // One image's gradient [out, P] is read where it is.
                let gy = direct ? gp + n0 * outChannels * P : UnsafePointer(gbuf)
                if !direct { _convGather(gp, channels: outChannels, pixels: P, n0, n1, gbuf) }
                if let px {
                  _im2col(geo, px, n0, n1, 0, K, cols)
                  for g in 0..<groups {
                    T._gemm(
                      transA: false, transB: true, m: Og, n: Kg, k: ld, alpha: 1,
                      a: gy + g * Og * ld, lda: ld, b: cols + g * Kg * ld, ldb: ld, beta: 1,
                      c: dw + g * Og * Kg, ldc: Kg)
                  }
                }
                if let pdx {
                  for g in 0..<groups {
                    T._gemm(
                      transA: true, transB: false, m: Kg, n: ld, k: Og, alpha: 1,
                      a: wp + g * Og * Kg, lda: Kg, b: gy + g * Og * ld, ldb: ld, beta: 0,
                      c: cols + g * Kg * ld, ldc: ld)
                  }
                  _col2im(geo, cols, n0, n1, 0, geo.channels, pdx)
                }
                n0 = n1
              }
            }
          }
        }
      }
    }
    var dW: Tensor<T>? = nil
    if needW {
      var sum = Tensor<T>(uninitializedShape: weight.shape)
      sum.withUnsafeMutableBufferPointer { ps in
        let n = outChannels * Kg
        ps.baseAddress!.update(from: dWParts, count: n)
        for part in 1..<parts {
          let src = dWParts + part * n
          for i in 0..<n { ps[i] += src[i] }
        }
      }
      dW = sum
    }
    return (dW, dX)
  }

  // MARK: Winograd

  /// Whether Winograd computes this convolution (and, with padding ≤ 2, its input gradient, a
  /// convolution of the same kind): a 3 × 3 kernel, stride 1, no dilation, one group, and
  /// enough channels on both sides (≥ 16) that the GEMMs dominate the tile transforms.
  @inlinable
  var winograd: Bool {
    geo.kernel == (3, 3) && geo.stride == (1, 1) && geo.dilation == (1, 1) && groups == 1
      && geo.channels >= 16 && outChannels >= 16 && geo.padding.h <= 2 && geo.padding.w <= 2
      && Conv2d<T>.winogradEnabled
  }

  /// The Winograd output tile, 2, 4 or 5: the one whose tiles need the fewest multiplications
  /// per channel pair, the smaller tile on a tie (on 14 × 14, F(5×5, 3×3) takes 9 tiles × 49 =
  /// 441 against F(4×4)'s 16 × 36 = 576 and F(2×2)'s 49 × 16 = 784). Larger tiles' transform
  /// constants cost accuracy: in Float the results (forward and both gradients) differ from
  /// the exact ones by about 2e-7 of the largest entry for F(2×2), 2–6e-6 for F(4×4) and up to
  /// twice that for F(5×5). `SOMA_CONV_WINOGRAD=2` keeps F(2×2), `=4` allows up to F(4×4).
  @inlinable
  var winogradTile: Int {
    let (oh, ow) = (geo.outHeight, geo.outWidth)
    func products(_ m: Int) -> Int { ((oh + m - 1) / m) * ((ow + m - 1) / m) * (m + 2) * (m + 2) }
    var best = 2
    for m in [4, 5] where m <= _winogradLargestTile && products(m) < products(best) { best = m }
    return best
  }

  /// The input gradient's convolution: the output gradient [out, oh, ow] convolved with the
  /// kernel turned by 180° and its channel axes swapped, padding 2 − p (stride 1).
  @inlinable
  func inputGradientPlan() -> ConvPlan<T> {
    let (C, K) = (geo.channels, outChannels)
    var flipped = Tensor<T>(uninitializedShape: [C, K, 3, 3])
    weight.withUnsafeBufferPointer { pw in
      flipped.withUnsafeMutableBufferPointer { pf in
        for k in 0..<K {
          for c in 0..<C {
            for i in 0..<9 { pf[(c * K + k) * 9 + 8 - i] = pw[(k * C + c) * 9 + i] }
          }
        }
      }
    }
    let g = ConvGeometry(
      channels: K, height: geo.outHeight, width: geo.outWidth, kernel: (3, 3), stride: (1, 1),
      padding: (2 - geo.padding.h, 2 - geo.padding.w), dilation: (1, 1))
    return ConvPlan(geometry: g, outChannels: C, groups: 1, weight: flipped)
  }

  /// Runs `body(part, n0, n1, ld, inTiles, outTiles)` for blocks [n0, n1) of `images` images
  /// split over the cores, with each part's two tile buffers: 16·C and 16·out rows of ld =
  /// (n1 − n0)·tiles columns. Blocks keep both near 4 MB.
  @inlinable
  func winogradBlocks(
    images: Int, parts: Int,
    _ body: (Int, Int, Int, Int, UnsafeMutablePointer<T>, UnsafeMutablePointer<T>) -> Void
  ) {
    let (C, K) = (geo.channels, outChannels)
    let tiles = ((geo.outHeight + 1) / 2) * ((geo.outWidth + 1) / 2)
    let chunk = Swift.max(1, Swift.min(images, (1 << 20) / Swift.max(1, 16 * (C + K) * tiles)))
    parallelAroundBLAS(parts) { part in
      let (a, b) = partRange(part, of: parts, count: images)
      if a == b { return }
      let n = Swift.min(chunk, b - a) * tiles
      let inTiles = UnsafeMutablePointer<T>.allocate(capacity: 16 * C * n)
      let outTiles = UnsafeMutablePointer<T>.allocate(capacity: 16 * K * n)
      defer {
        inTiles.deallocate()
        outTiles.deallocate()
      }
      var n0 = a
      while n0 < b {
        let n1 = Swift.min(b, n0 + chunk)
        body(part, n0, n1, (n1 - n0) * tiles, inTiles, outTiles)
        n0 = n1
      }
    }
  }

  /// Forward of `images` contiguous images by Winograd (see `winograd`) with output tiles of
  /// `tile` (default `winogradTile`).
  @inlinable
  func forwardWinograd(_ x: Tensor<T>, images: Int, bias: Tensor<T>?, tile: Int? = nil)
    -> Tensor<T>
  {
    let m = tile ?? winogradTile
    return m == 2
      ? forwardWinograd2(x, images: images, bias: bias)
      : forwardWinogradM(x, tile: m, images: images, bias: bias)
  }

  /// Forward by Winograd F(2×2, 3×3).
  @inlinable
  func forwardWinograd2(_ x: Tensor<T>, images: Int, bias: Tensor<T>?) -> Tensor<T> {
    let (C, K) = (geo.channels, outChannels)
    var u = Tensor<T>(uninitializedShape: [16, K, C])
    weight.withUnsafeBufferPointer { pw in
      u.withUnsafeMutableBufferPointer { pu in
        _winoWeight(pw.baseAddress!, outChannels: K, inChannels: C, pu.baseAddress!)
      }
    }
    var out = Tensor<T>(uninitializedShape: [images, K, geo.outHeight, geo.outWidth])
    x.withUnsafeBufferPointer { px in
      u.withUnsafeBufferPointer { pu in
        withOptionalPointer(bias) { pb in
          out.withUnsafeMutableBufferPointer { po in
            let (xp, up, op) = (px.baseAddress!, pu.baseAddress!, po.baseAddress!)
            winogradBlocks(images: images, parts: spatialParts(images, usesBLAS: true)) {
              _, n0, n1, ld, v, m in
              _winoInput(geo, xp, n0, n1, v)
              for xi in 0..<16 {
                T._gemm(
                  transA: false, transB: false, m: K, n: ld, k: C, alpha: 1, a: up + xi * K * C,
                  lda: C, b: v + xi * C * ld, ldb: ld, beta: 0, c: m + xi * K * ld, ldc: ld)
              }
              _winoOutput(geo, outChannels: K, m, n0, n1, bias: pb, op)
            }
          }
        }
      }
    }
    return out
  }

  /// The weight gradient [out, C, 3, 3] from `grad` [images, out, oh, ow] and the input
  /// `x` [images, C, H, W] (both contiguous) by Winograd (see `winograd`) with output tiles of
  /// `tile` (default `winogradTile`).
  @inlinable
  func weightGradientWinograd(grad: Tensor<T>, input x: Tensor<T>, images: Int, tile: Int? = nil)
    -> Tensor<T>
  {
    let m = tile ?? winogradTile
    return m == 2
      ? weightGradientWinograd2(grad: grad, input: x, images: images)
      : weightGradientWinogradM(grad: grad, input: x, tile: m, images: images)
  }

  /// The weight gradient by F(2×2, 3×3): per block of images, the 16 products of the
  /// transformed output gradient with the transformed input.
  @inlinable
  func weightGradientWinograd2(grad: Tensor<T>, input x: Tensor<T>, images: Int) -> Tensor<T> {
    let (C, K) = (geo.channels, outChannels)
    let parts = spatialParts(images, usesBLAS: false)  // as in backwardDense
    let du = UnsafeMutablePointer<T>.allocate(capacity: parts * 16 * K * C)
    _zero(du, parts * 16 * K * C)
    defer { du.deallocate() }
    grad.withUnsafeBufferPointer { pg in
      x.withUnsafeBufferPointer { px in
        let (gp, xp) = (pg.baseAddress!, px.baseAddress!)
        winogradBlocks(images: images, parts: parts) { part, n0, n1, ld, v, z in
          _winoInput(geo, xp, n0, n1, v)
          _winoGradTiles(geo, outChannels: K, gp, n0, n1, z)
          let acc = du + part * 16 * K * C
          for xi in 0..<16 {
            T._gemm(
              transA: false, transB: true, m: K, n: C, k: ld, alpha: 1, a: z + xi * K * ld,
              lda: ld, b: v + xi * C * ld, ldb: ld, beta: 1, c: acc + xi * K * C, ldc: C)
          }
        }
      }
    }
    let size = 16 * K * C
    for part in 1..<Swift.max(parts, 1) { _vecAdd(du, du + part * size, size) }
    var dW = Tensor<T>(uninitializedShape: weight.shape)
    dW.withUnsafeMutableBufferPointer { pd in
      _winoWeightGrad(du, outChannels: K, inChannels: C, pd.baseAddress!)
    }
    return dW
  }

  /// The input gradient [images, C, H, W] from `grad` [images, out, oh, ow] (contiguous), by
  /// Winograd when `winograd` holds (with output tiles of `tile`, default the gradient
  /// convolution's `winogradTile`), else by the dense GEMM and col2im.
  @inlinable
  func inputGradient(_ grad: Tensor<T>, images: Int, tile: Int? = nil) -> Tensor<T> {
    if winograd {
      return inputGradientPlan().forwardWinograd(grad, images: images, bias: nil, tile: tile)
    }
    return backwardDense(grad: grad, input: nil, images: images, needInput: true).dX!
  }

  // MARK: Winograd F(4×4, 3×3) and F(5×5, 3×3)

  /// Runs `body(part, n0, n1, ld, v, vs, m, ms, scratch)` for blocks [n0, n1) of `images`
  /// images split over the cores, with each part's buffers for F(tile×tile): v and m hold
  /// (tile + 2)² tile matrices of ld = (n1 − n0)·tiles rows, C and K rounded up to 8 wide, vs
  /// and ms elements apart (see `winogradStride`); scratch holds the transforms' plane.
  /// Blocks keep v and m near 4 MB. With `claimed`, the parts take the blocks in turn as each
  /// finishes one (for bodies whose results do not depend on which part ran a block): a core
  /// slowed by other work then does fewer blocks instead of holding up the other.
  @inlinable
  func winogradMBlocks(
    tile t: Int, images: Int, parts: Int, claimed: Bool = false,
    _ body: (
      Int, Int, Int, Int, UnsafeMutablePointer<T>, Int, UnsafeMutablePointer<T>, Int,
      UnsafeMutablePointer<T>
    ) -> Void
  ) {
    let (cs, ks) = ((geo.channels + 7) / 8 * 8, (outChannels + 7) / 8 * 8)
    let points = (t + 2) * (t + 2)
    let tiles = ((geo.outHeight + t - 1) / t) * ((geo.outWidth + t - 1) / t)
    let chunk = Swift.max(
      1, Swift.min(images, (1 << 20) / Swift.max(1, points * (cs + ks) * tiles)))
    let plane = _winoMScratch(geo, tile: t, T.self)
    let blocks = (images + chunk - 1) / chunk
    let next = Atomic<Int>(0)
    parallelAroundBLAS(parts) { part in
      let (a, b) = claimed ? (0, images) : partRange(part, of: parts, count: images)
      if a == b { return }
      let n = Swift.min(chunk, b - a) * tiles
      let (vs, ms) = (winogradStride(n * cs), winogradStride(n * ks))
      let v = UnsafeMutablePointer<T>.allocate(capacity: points * vs)
      let m = UnsafeMutablePointer<T>.allocate(capacity: points * ms)
      let scratch = UnsafeMutablePointer<T>.allocate(capacity: plane)
      defer {
        v.deallocate()
        m.deallocate()
        scratch.deallocate()
      }
      if claimed {
        while true {
          let block = next.add(1, ordering: .relaxed).oldValue
          if block >= blocks { break }
          let n0 = block * chunk
          let n1 = Swift.min(images, n0 + chunk)
          body(part, n0, n1, (n1 - n0) * tiles, v, vs, m, ms, scratch)
        }
        return
      }
      var n0 = a
      while n0 < b {
        let n1 = Swift.min(b, n0 + chunk)
        body(part, n0, n1, (n1 - n0) * tiles, v, vs, m, ms, scratch)
        n0 = n1
      }
    }
  }

  /// Elements between consecutive tile matrices of a buffer whose matrices hold `count`: an
  /// odd number of 64-byte lines. A transform writes (or reads) all of them at once; at a
  /// multiple of 4 KB apart (128 channels × 7·16 tiles) every stream fell in one set of the
  /// 8-way L1 and the transforms took 1.6–1.9× as long.
  @inlinable
  func winogradStride(_ count: Int) -> Int {
    let line = Swift.max(1, 64 / MemoryLayout<T>.stride)
    let lines = (count + line - 1) / line
    return (lines | 1) * line
  }

  /// Forward by Winograd F(tile×tile, 3×3), tile 4 or 5: per block of images, the input
  /// transform, (tile + 2)² GEMMs [tiles, C]·[C, K] (`_tileGemm`, u[ξ] stored [C, K] and read
  /// in place) and the output transform.
  @inlinable
  func forwardWinogradM(_ x: Tensor<T>, tile t: Int, images: Int, bias: Tensor<T>?) -> Tensor<T> {
    precondition(t == 4 || t == 5, "Winograd F(m×m, 3×3) exists for m = 4 and 5, not \(t)")
    let (C, K) = (geo.channels, outChannels)
    let (cs, ks) = ((C + 7) / 8 * 8, (K + 7) / 8 * 8)
    let points = (t + 2) * (t + 2)
    var u = Tensor<T>(uninitializedShape: [points, C, K])
    weight.withUnsafeBufferPointer { pw in
      u.withUnsafeMutableBufferPointer { pu in
        _winoMWeight(tile: t, pw.baseAddress!, outChannels: K, inChannels: C, pu.baseAddress!)
      }
    }
    var out = Tensor<T>(uninitializedShape: [images, K, geo.outHeight, geo.outWidth])
    x.withUnsafeBufferPointer { px in
      u.withUnsafeBufferPointer { pu in
        withOptionalPointer(bias) { pb in
          out.withUnsafeMutableBufferPointer { po in
            let (xp, up, op) = (px.baseAddress!, pu.baseAddress!, po.baseAddress!)
            winogradMBlocks(
              tile: t, images: images, parts: spatialParts(images, usesBLAS: true), claimed: true
            ) {
              _, n0, n1, ld, v, vs, m, ms, scratch in
              _winoMInput(geo, tile: t, xp, n0, n1, v, stride: vs, scratch: scratch)
              for xi in 0..<points {
                // The output transform reads (and drops) the channels past K: keep them zero.
                if ks != K { _zero(m + xi * ms, ld * ks) }
                _tileGemm(
                  m: ld, n: K, k: C, a: v + xi * vs, rowStride: cs, depthStride: 1,
                  b: up + xi * C * K, ldb: K, c: m + xi * ms, ldc: ks, accumulate: false)
              }
              _winoMOutput(
                geo, tile: t, outChannels: K, m, stride: ms, n0, n1, bias: pb, op,
                scratch: scratch)
            }
          }
        }
      }
    }
    return out
  }

  /// The weight gradient by F(tile×tile, 3×3), tile 4 or 5: per block of images, the
  /// (tile + 2)² products of the transformed output gradient with the transformed input,
  /// [K, tiles]·[tiles, C] (by OpenBLAS: `_tileGemm` reading z transposed ran 50–60 GFLOP/s a
  /// core here, OpenBLAS 70–80).
  @inlinable
  func weightGradientWinogradM(grad: Tensor<T>, input x: Tensor<T>, tile t: Int, images: Int)
    -> Tensor<T>
  {
    precondition(t == 4 || t == 5, "Winograd F(m×m, 3×3) exists for m = 4 and 5, not \(t)")
    let (C, K) = (geo.channels, outChannels)
    let (cs, ks) = ((C + 7) / 8 * 8, (K + 7) / 8 * 8)
    let points = (t + 2) * (t + 2)
    let parts = spatialParts(images, usesBLAS: false)  // as in backwardDense
    let size = points * K * C
    let du = UnsafeMutablePointer<T>.allocate(capacity: parts * size)
    _zero(du, parts * size)
    defer { du.deallocate() }
    grad.withUnsafeBufferPointer { pg in
      x.withUnsafeBufferPointer { px in
        let (gp, xp) = (pg.baseAddress!, px.baseAddress!)
        winogradMBlocks(tile: t, images: images, parts: parts) {
          part, n0, n1, ld, v, vs, z, zs, scratch in
          _winoMInput(geo, tile: t, xp, n0, n1, v, stride: vs, scratch: scratch)
          _winoMGradTiles(geo, tile: t, outChannels: K, gp, n0, n1, z, stride: zs, scratch: scratch)
          let acc = du + part * size
          for xi in 0..<points {
            T._gemm(
              transA: true, transB: false, m: K, n: C, k: ld, alpha: 1, a: z + xi * zs, lda: ks,
              b: v + xi * vs, ldb: cs, beta: 1, c: acc + xi * K * C, ldc: C)
          }
        }
      }
    }
    for part in 1..<Swift.max(parts, 1) { _vecAdd(du, du + part * size, size) }
    var dW = Tensor<T>(uninitializedShape: weight.shape)
    dW.withUnsafeMutableBufferPointer { pd in
      _winoMWeightGrad(tile: t, du, outChannels: K, inChannels: C, pd.baseAddress!)
    }
    return dW
  }

  // MARK: Events

  /// The fraction of non-zero entries of `x`, or nil when an entry is neither 0 nor 1 or
  /// when the density is known to be at least `stopAbove` (counting then stops early: a dense
  /// spike map is read in part).
  @inlinable
  func spikeDensity(_ x: Tensor<T>, images: Int, stopAbove: Double = 1) -> Double? {
    let total = images * geo.channels * geo.plane
    if total == 0 { return nil }
    let limit = stopAbove >= 1 ? total : Int((stopAbove * Double(total)).rounded(.up))
    var binary: Int32 = 1
    var (active, done) = (0, 0)
    x.withUnsafeBufferPointer { p in
      while done < total && active <= limit {
        let n = Swift.min(1 << 16, total - done)
        active += _countSpikes(p.baseAddress! + done, count: n, &binary)
        done += n
      }
    }
    if done < total { return nil }
    return binary == 0 ? nil : Double(active) / Double(total)
  }

  /// Which passes read `x` as events under `policy`: the forward pass below the threshold, the
  /// weight gradient (which pays an extra layout pass over the output gradient) below
  /// `weightGradientShare` of it.
  @inlinable
  func eventUse(_ x: Tensor<T>, images: Int, policy: EventPolicy) -> (forward: Bool, weight: Bool) {
    if policy == .never { return (false, false) }
    var stop = 1.0
    if case .auto(let threshold) = policy { stop = threshold }
    guard let density = spikeDensity(x, images: images, stopAbove: stop) else {
      return (false, false)
    }
    switch policy {
    case .auto(let threshold):
      return (density < threshold, density < threshold * Conv2d<T>.weightGradientShare)
    default: return (true, true)
    }
  }

  /// The active pixels of 0/1 images `x`, row (image, channel) by row.
  @inlinable
  func events(_ x: Tensor<T>, images: Int) -> ConvEvents {
    let rows = images * geo.channels
    let plane = geo.plane
    var ev = ConvEvents(
      list: [Int32](repeating: 0, count: rows * plane + 1),
      begin: [Int64](repeating: 0, count: rows), end: [Int64](repeating: 0, count: rows))
    let parts = spatialParts(images, usesBLAS: false)
    x.withUnsafeBufferPointer { px in
      ev.list.withUnsafeMutableBufferPointer { pl in
        ev.begin.withUnsafeMutableBufferPointer { pb in
          ev.end.withUnsafeMutableBufferPointer { pe in
            let (xp, lp, bp, ep) = (
              px.baseAddress!, pl.baseAddress!, pb.baseAddress!, pe.baseAddress!
            )
            parallel(parts) { part in
              let (a, b) = partRange(part, of: parts, count: images)
              var bin: Int32 = 1
              let r0 = a * geo.channels
              _ = _convEvents(xp, r0, b * geo.channels, cols: plane, lp, r0 * plane, bp, ep, &bin)
            }
          }
        }
      }
    }
    return ev
  }

  /// The weight as [C, kh, kw, out / groups]: an event's kernel slice is one contiguous row.
  @inlinable
  func weightByInput() -> Tensor<T> {
    let (Og, cg, kk) = (outPerGroup, geo.channels / groups, geo.kernel.h * geo.kernel.w)
    var wt = Tensor<T>(uninitializedShape: [geo.channels, kk, Og])
    weight.withUnsafeBufferPointer { pw in
      wt.withUnsafeMutableBufferPointer { pt in
        for c in 0..<geo.channels {
          let (g, ci) = (c / cg, c % cg)
          for k in 0..<kk {
            for j in 0..<Og { pt[(c * kk + k) * Og + j] = pw[((g * Og + j) * cg + ci) * kk + k] }
          }
        }
      }
    }
    return wt
  }

  @inlinable
  func forwardEvents(_ ev: ConvEvents, images: Int, bias: Tensor<T>?) -> Tensor<T> {
    let wt = weightByInput()
    let P = geo.pixels
    let nhwc = UnsafeMutablePointer<T>.allocate(capacity: Swift.max(1, images * P * outChannels))
    defer { nhwc.deallocate() }
    var out = Tensor<T>(uninitializedShape: [images, outChannels, geo.outHeight, geo.outWidth])
    let parts = spatialParts(images, usesBLAS: false)
    ev.list.withUnsafeBufferPointer { pl in
      ev.begin.withUnsafeBufferPointer { pb in
        ev.end.withUnsafeBufferPointer { pe in
          wt.withUnsafeBufferPointer { pw in
            withOptionalPointer(bias) { pbias in
              out.withUnsafeMutableBufferPointer { po in
                let (lp, bp, ep, wp, op) = (
                  pl.baseAddress!, pb.baseAddress!, pe.baseAddress!, pw.baseAddress!,
                  po.baseAddress!
                )
                parallel(parts) { part in
                  let (a, b) = partRange(part, of: parts, count: images)
                  if a == b { return }
                  _convEventsForward(
                    geo, groups: groups, outChannels: outChannels, lp, bp, ep, a, b, wp, nhwc)
                  _nhwcToNCHW(nhwc, channels: outChannels, pixels: P, a, b, bias: pbias, op)
                }
              }
            }
          }
        }
      }
    }
    return out
  }

  /// The weight gradient from the events and `grad` [images, out, oh, ow] (contiguous).
  @inlinable
  func weightGradientEvents(_ ev: ConvEvents, grad: Tensor<T>, images: Int) -> Tensor<T> {
    let (Og, cg, kk, P) = (
      outPerGroup, geo.channels / groups, geo.kernel.h * geo.kernel.w, geo.pixels
    )
    let nhwc = UnsafeMutablePointer<T>.allocate(capacity: Swift.max(1, images * P * outChannels))
    let dwt = UnsafeMutablePointer<T>.allocate(capacity: geo.channels * kk * Og)
    defer {
      nhwc.deallocate()
      dwt.deallocate()
    }
    grad.withUnsafeBufferPointer { pg in
      let parts = spatialParts(images, usesBLAS: false)
      parallel(parts) { part in
        let (a, b) = partRange(part, of: parts, count: images)
        if a < b { _nchwToNHWC(pg.baseAddress!, channels: outChannels, pixels: P, a, b, nhwc) }
      }
    }
    ev.list.withUnsafeBufferPointer { pl in
      ev.begin.withUnsafeBufferPointer { pb in
        ev.end.withUnsafeBufferPointer { pe in
          let (lp, bp, ep) = (pl.baseAddress!, pb.baseAddress!, pe.baseAddress!)
          let parts = spatialParts(geo.channels, usesBLAS: false)
          parallel(parts) { part in
            let (c0, c1) = partRange(part, of: parts, count: geo.channels)
            if c0 == c1 { return }
            _convEventsWeightGrad(
              geo, groups: groups, outChannels: outChannels, lp, bp, ep, images: images, c0, c1,
              nhwc, dwt)
          }
        }
      }
    }
    var dW = Tensor<T>(uninitializedShape: weight.shape)
    dW.withUnsafeMutableBufferPointer { pd in
      for c in 0..<geo.channels {
        let (g, ci) = (c / cg, c % cg)
        for k in 0..<kk {
          for j in 0..<Og { pd[((g * Og + j) * cg + ci) * kk + k] = dwt[(c * kk + k) * Og + j] }
        }
      }
    }
    return dW
  }
}

/// `SOMA_CONV_WINOGRAD`: 0 off, 2 F(2×2, 3×3) only, 4 up to F(4×4, 3×3), else 1.
@usableFromInline
let _winogradMode: Int32 = soma_conv_winograd_enabled()

/// The largest Winograd output tile `SOMA_CONV_WINOGRAD` allows: 2 or 4 when it names one,
/// else 5.
@usableFromInline
let _winogradLargestTile: Int = _winogradMode == 2 || _winogradMode == 4 ? Int(_winogradMode) : 5

/// `body` with a pointer to `t`'s contiguous elements, or nil.
@inlinable
func withOptionalPointer<T: TensorScalar, R>(
  _ t: Tensor<T>?, _ body: (UnsafePointer<T>?) -> R
) -> R {
  guard let t else { return body(nil) }
  return t.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// `body` with a mutable pointer to `t`'s elements (contiguous, made unique), or nil.
@inlinable
func withOptionalMutablePointer<T: TensorScalar, R>(
  _ t: inout Tensor<T>?, _ body: (UnsafeMutablePointer<T>?) -> R
) -> R {
  guard t != nil else { return body(nil) }
  return t!.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}
