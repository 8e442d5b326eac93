import SomaNN
import SomaTensor

// Export of Soma's image layers: Conv2d → Conv2d, AvgPool2d → AvgPool2d, Flatten → Flatten,
// and a BatchNorm2d (BatchNorm1d) folded into the Conv2d (Linear) before it.

extension NIRNode {
  /// The node with each per-neuron vector of `shape.reduce(1, *)` values given `shape`, as
  /// NIR's type check wants for neurons after a convolution.
  func reshapingNeuronArrays(to shape: [Int]) -> NIRNode {
    let n = shape.reduce(1, *)
    func r(_ a: NIRArray) -> NIRArray {
      a.count == n && a.shape.count == 1
        ? NIRArray(a.values, shape: shape, elementType: a.elementType) : a
    }
    var node = self
    switch kind {
    case .lif(let tau, let rr, let vLeak, let vThreshold, let vReset):
      node.kind = .lif(
        tau: r(tau), r: r(rr), vLeak: r(vLeak), vThreshold: r(vThreshold), vReset: r(vReset))
    case .integrateAndFire(let rr, let vThreshold, let vReset):
      node.kind = .integrateAndFire(r: r(rr), vThreshold: r(vThreshold), vReset: r(vReset))
    case .integrator(let rr): node.kind = .integrator(r: r(rr))
    case .leakyIntegrator(let tau, let rr, let vLeak):
      node.kind = .leakyIntegrator(tau: r(tau), r: r(rr), vLeak: r(vLeak))
    case .cubaLIF(let ts, let tm, let rr, let vLeak, let vThreshold, let vReset, let wIn):
      node.kind = .cubaLIF(
        tauSyn: r(ts), tauMem: r(tm), r: r(rr), vLeak: r(vLeak), vThreshold: r(vThreshold),
        vReset: r(vReset), wIn: r(wIn))
    case .cubaLI(let ts, let tm, let rr, let vLeak, let wIn):
      node.kind = .cubaLI(tauSyn: r(ts), tauMem: r(tm), r: r(rr), vLeak: r(vLeak), wIn: r(wIn))
    default: break
    }
    return node
  }
}

/// One output size of a window sliding over `size` values (PyTorch's formula).
func slidingOutput(_ size: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) -> Int {
  let span = size + 2 * padding - dilation * (kernel - 1) - 1
  return span < 0 ? 0 : span / stride + 1
}

/// [C, H, W] or a one-line error.
func imageShape(_ shape: [Int], _ label: String) throws(NIRError) -> (Int, Int, Int) {
  guard shape.count == 3 else {
    throw NIRError(
      .unsupported,
      "\(label) receives samples of shape \(shape); it needs [C, H, W] maps (start the network"
        + " with an Unflatten or pass the input shape).")
  }
  return (shape[0], shape[1], shape[2])
}

func floats(_ t: Tensor<Float>) -> [Double] { t.contiguous().scalars.map(Double.init) }

extension Conv2d: NIRExportable where Scalar == Float {
  var nirInputWidth: Int? { nil }

  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
  {
    let (c, h, w) = try imageShape(shape, label)
    guard c == inChannels else {
      throw NIRError(.unsupported, "\(label) takes \(inChannels) channels but receives \(c).")
    }
    let k = kernelSize
    let oh = slidingOutput(
      h, kernel: k.height, stride: stride.height, padding: padding.height,
      dilation: dilation.height)
    let ow = slidingOutput(
      w, kernel: k.width, stride: stride.width, padding: padding.width, dilation: dilation.width)
    guard oh >= 1, ow >= 1 else {
      throw NIRError(.unsupported, "\(label) has a window larger than its \(h)×\(w) input.")
    }
    let weight = NIRArray(
      floats(self.weight.value), shape: self.weight.shape, elementType: .float32)
    let b = bias.map { floats($0.value) } ?? Array(repeating: 0, count: outChannels)
    let node = NIRConv2d(
      weight: weight, bias: NIRArray(b, shape: [outChannels], elementType: .float32),
      stride: [stride.height, stride.width], padding: .sizes([padding.height, padding.width]),
      dilation: [dilation.height, dilation.width], groups: groups, inputShape: [h, w])
    let meta = bias == nil ? [SomaMetadata.bias: "none"] : [:]
    return (NIRNode(.conv2d(node), metadata: meta), [outChannels, oh, ow])
  }
}

extension AvgPool2d: NIRExportable where Scalar == Float {
  var nirInputWidth: Int? { nil }

  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
  {
    let (c, h, w) = try imageShape(shape, label)
    guard countIncludePad || padding == Size2D(0) else {
      throw NIRError(
        .unsupported,
        "\(label) leaves padding out of its averages (countIncludePad false); NIR's AvgPool2d"
          + " counts it, as PyTorch does by default.")
    }
    let oh = slidingOutput(
      h, kernel: kernelSize.height, stride: stride.height, padding: padding.height, dilation: 1)
    let ow = slidingOutput(
      w, kernel: kernelSize.width, stride: stride.width, padding: padding.width, dilation: 1)
    guard oh >= 1, ow >= 1 else {
      throw NIRError(.unsupported, "\(label) has a window larger than its \(h)×\(w) input.")
    }
    let pool = NIRPool2d(
      kernelSize: [kernelSize.height, kernelSize.width], stride: [stride.height, stride.width],
      padding: [padding.height, padding.width])
    return (NIRNode(.avgPool2d(pool)), [c, oh, ow])
  }
}

extension Flatten: NIRExportable where Scalar == Float {
  var nirInputWidth: Int? { nil }

  /// NIR's axes leave out the batch: 0 … −1 flattens each sample whole, as Soma's layer does.
  func nirNode(shape: [Int], context: inout ExportContext, label: String, path: String)
    throws(NIRError) -> (NIRNode, [Int])
  {
    (NIRNode(.flatten(startDim: 0, endDim: -1, inputShape: shape)), [shape.reduce(1, *)])
  }
}

/// y = (x − mean)/√(var + ε)·γ + β per channel, with the running statistics, is an affine map
/// per channel; export folds it into the weights and bias of the Conv2d or Linear before it.
func foldBatchNorm(
  into node: inout NIRNode?, label: String, layer: String, features: Int,
  trackRunningStats: Bool, epsilon: Double, gamma: [Double]?, beta: [Double]?,
  mean: [Double], variance: [Double], context: inout ExportContext
) throws(NIRError) {
  guard trackRunningStats else {
    throw NIRError(
      .unsupported,
      "\(label) keeps no running statistics, so it normalises with each batch's and has no fixed"
        + " NIR form.")
  }
  let scale = (0..<features).map { c in (gamma?[c] ?? 1) / (variance[c] + epsilon).squareRoot() }
  let shift = (0..<features).map { c in (beta?[c] ?? 0) - mean[c] * scale[c] }
  func scaledRows(_ w: NIRArray) -> NIRArray {
    let per = w.count / features
    var v = w.values
    for c in 0..<features { for j in 0..<per { v[c * per + j] *= scale[c] } }
    return NIRArray(v, shape: w.shape, elementType: w.elementType)
  }
  func bias(_ b: [Double]?) -> NIRArray {
    NIRArray(
      (0..<features).map { c in (b?[c] ?? 0) * scale[c] + shift[c] }, shape: [features],
      elementType: .float32)
  }
  switch node?.kind {
  case .conv2d(var c)? where c.weight.shape.first == features && layer == "BatchNorm2d":
    (c.weight, c.bias) = (scaledRows(c.weight), bias(c.bias.values))
    node!.kind = .conv2d(c)
    node!.metadata[SomaMetadata.bias] = nil
  case .affine(let w, let b)? where w.shape.first == features && layer == "BatchNorm1d":
    node!.kind = .affine(weight: scaledRows(w), bias: bias(b.values))
  case .linear(let w)? where w.shape.first == features && layer == "BatchNorm1d":
    node!.kind = .affine(weight: scaledRows(w), bias: bias(nil))
  default:
    let before = layer == "BatchNorm2d" ? "Conv2d" : "Linear"
    throw NIRError(
      .unsupported,
      "\(label) does not follow a \(before) with \(features) outputs, which export folds it"
        + " into; NIR has no batch-norm node.")
  }
  context.notes.append(
    "\(label) is folded into the weights and bias of the layer before it, with its running"
      + " statistics (the network as in evaluation mode).")
}

extension BatchNorm2d: NIRFoldable where Scalar == Float {
  func fold(into node: inout NIRNode?, label: String, context: inout ExportContext)
    throws(NIRError)
  {
    try foldBatchNorm(
      into: &node, label: label, layer: "BatchNorm2d", features: numFeatures,
      trackRunningStats: trackRunningStats, epsilon: epsilon,
      gamma: weight.map { floats($0.value) }, beta: bias.map { floats($0.value) },
      mean: floats(state.runningMean), variance: floats(state.runningVar), context: &context)
  }
}

extension BatchNorm1d: NIRFoldable where Scalar == Float {
  func fold(into node: inout NIRNode?, label: String, context: inout ExportContext)
    throws(NIRError)
  {
    try foldBatchNorm(
      into: &node, label: label, layer: "BatchNorm1d", features: numFeatures,
      trackRunningStats: trackRunningStats, epsilon: epsilon,
      gamma: weight.map { floats($0.value) }, beta: bias.map { floats($0.value) },
      mean: floats(state.runningMean), variance: floats(state.runningVar), context: &context)
  }
}
