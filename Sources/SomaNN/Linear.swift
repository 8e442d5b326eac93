/// How a `Linear` layer's weight is drawn.
public enum LinearInitialization: Sendable {
  /// PyTorch's default: weight and bias uniform in ±1/√in.
  case pytorchDefault
  /// A (semi-)orthogonal weight from the QR factorisation of a Gaussian matrix (LAPACK
  /// geqrf/orgqr), times `gain`; bias as in PyTorch's default.
  case orthogonal(gain: Double)
  /// Weight normal with mean 0 and standard deviation `std`; bias zero.
  case normal(std: Double)
}

/// A fully connected layer, y = x·Wᵀ + b, with the weight stored [out, in] as PyTorch and MLX
/// store it.
///
/// Any leading axes of the input are a batch: a [T, batch, in] spike train runs as ONE GEMM of
/// [T·batch, in] by [in, out], and the backward pass is two more GEMMs (dX = dY·W,
/// dW = dYᵀ·X on transposed views, no copies). When the input is 0/1 spikes sparser than
/// `eventPolicy` allows, the forward pass and dW are event passes instead (each spike adds a
/// row of Wᵀ to its output row, and a row of dY to dW's column); dX stays a GEMM.
///
/// ```swift
/// let fc = Linear<Float>(784, 256, seed: 1)
/// let currents = fc(Variable(spikes))   // [T, batch, 256]
/// ```
public struct Linear<Scalar: TensorScalar>: Layer {
  /// The weight, [outFeatures, inFeatures].
  public let weight: Variable<Scalar>
  /// The bias, [outFeatures], if any.
  public let bias: Variable<Scalar>?
  /// When the tape's forward pass and weight gradient read a 0/1 input as events
  /// (`.auto(threshold:)` compares the measured density with the threshold; input with other
  /// values always runs dense). A compiled network has its own `eventPolicy`.
  public var eventPolicy = EventPolicy.automatic

  @inlinable public var inFeatures: Int { weight.shape[1] }
  @inlinable public var outFeatures: Int { weight.shape[0] }

  /// A layer with the given weight [out, in] and optional bias [out].
  public init(weight: Tensor<Scalar>, bias: Tensor<Scalar>? = nil) {
    precondition(weight.rank == 2, "Linear: weight must be 2-D [out, in], got \(weight.shape)")
    if let bias {
      precondition(
        bias.shape == [weight.shape[0]],
        "Linear: bias shape \(bias.shape) does not match weight shape \(weight.shape)")
    }
    self.weight = Variable(weight.copiedContiguous(), requiresGrad: true, name: "weight")
    self.bias = bias.map { Variable($0.copiedContiguous(), requiresGrad: true, name: "bias") }
  }

  /// A freshly initialised layer drawing from `generator`.
  public init<G: RandomNumberGenerator>(
    _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true,
    initialization: LinearInitialization = .pytorchDefault, using generator: inout G
  ) {
    precondition(
      inFeatures > 0 && outFeatures > 0,
      "Linear: sizes must be positive, got in \(inFeatures), out \(outFeatures)")
    let bound = Scalar(1 / Double(inFeatures).squareRoot())
    let w: Tensor<Scalar>
    var b: Tensor<Scalar>? =
      bias ? Tensor.uniform([outFeatures], low: -bound, high: bound, using: &generator) : nil
    switch initialization {
    case .pytorchDefault:
      w = Tensor.uniform([outFeatures, inFeatures], low: -bound, high: bound, using: &generator)
    case .orthogonal(let gain):
      var rng = SomaRandom(seed: generator.next())
      w = Linear.orthogonal(rows: outFeatures, cols: inFeatures, gain: gain, using: &rng)
    case .normal(let std):
      var rng = SomaRandom(seed: generator.next())
      w = Tensor.normal([outFeatures, inFeatures], std: Scalar(std), using: &rng)
      if bias { b = Tensor.zeros([outFeatures]) }
    }
    self.init(weight: w, bias: b)
  }

  /// A freshly initialised layer; `seed` makes it reproducible (nil draws from the system's
  /// generator).
  public init(
    _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true,
    initialization: LinearInitialization = .pytorchDefault, seed: UInt64? = nil
  ) {
    var rng = SomaRandom(seed: seed ?? UInt64.random(in: 0...UInt64.max))
    self.init(
      inFeatures, outFeatures, bias: bias, initialization: initialization, using: &rng)
  }

  /// A [rows, cols] matrix with orthonormal rows (rows ≤ cols) or columns (rows ≥ cols), times
  /// `gain`: Q of the QR factorisation of a Gaussian matrix, with R's diagonal made positive so
  /// the draw is uniform over orthogonal matrices.
  public static func orthogonal(rows: Int, cols: Int, gain: Double = 1, using rng: inout SomaRandom)
    -> Tensor<Scalar>
  {
    let m = Swift.max(rows, cols)
    let n = Swift.min(rows, cols)
    var a = Tensor<Scalar>.normal([m, n], using: &rng)
    var tau = Tensor<Scalar>(repeating: 0, shape: [n])
    var signs = [Scalar](repeating: 1, count: n)
    a.withUnsafeMutableBufferPointer { pa in
      tau.withUnsafeMutableBufferPointer { pt in
        let info = Scalar._geqrf(m: m, n: n, a: pa.baseAddress!, lda: n, tau: pt.baseAddress!)
        precondition(info == 0, "Linear.orthogonal: geqrf failed (info \(info))")
        for j in 0..<n { signs[j] = pa[j * n + j] < 0 ? -1 : 1 }
        let info2 = Scalar._orgqr(
          m: m, n: n, k: n, a: pa.baseAddress!, lda: n, tau: UnsafePointer(pt.baseAddress!))
        precondition(info2 == 0, "Linear.orthogonal: orgqr failed (info \(info2))")
        let g = Scalar(gain)
        for i in 0..<m { for j in 0..<n { pa[i * n + j] *= signs[j] * g } }
      }
    }
    return rows >= cols ? a : a.transposed().copiedContiguous()
  }

  /// One GEMM or event pass in a compiled network.
  @inlinable
  public var lowering: LayerLowering<Scalar>? {
    LayerLowering([.linear(weight: weight, bias: bias)])
  }

  public var parameters: [(name: String, variable: Variable<Scalar>)] {
    var p: [(name: String, variable: Variable<Scalar>)] = [("weight", weight)]
    if let bias { p.append(("bias", bias)) }
    return p
  }

  /// y = x·Wᵀ + b over the last axis of `input`; the leading axes are folded into one GEMM.
  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    linear(input, weight: weight, bias: bias, eventPolicy: eventPolicy)
  }
}

/// y = x·Wᵀ + b as one autodiff node (`weight` [out, in], `bias` [out]), folding every
/// leading axis of `x` into the GEMM's rows; a 0/1 `x` sparse enough for `eventPolicy` runs the
/// forward pass and dW as event passes (see `Linear`).
@inlinable
public func linear<Scalar>(
  _ x: Variable<Scalar>, weight: Variable<Scalar>, bias: Variable<Scalar>?,
  eventPolicy: EventPolicy = .automatic
) -> Variable<Scalar> {
  let inF = weight.shape[1]
  let outF = weight.shape[0]
  precondition(
    x.rank >= 1 && x.shape[x.rank - 1] == inF,
    "Linear: input of shape \(x.shape) does not match weight of shape \(weight.shape) "
      + "(the last axis must be \(inF))")
  let rows = x.value.count / inF
  let x2 = x.value.reshaped([rows, inF])
  let w = weight.value
  let needW = weight.requiresGrad && GradientMode.isEnabled
  let spikes = x2.withUnsafeBufferPointer { px in
    LinearSpikes(
      px.baseAddress!, rows: rows, width: inF, outputs: outF, policy: eventPolicy,
      needWeight: needW)
  }
  var y = Tensor<Scalar>(uninitializedShape: [rows, outF])
  y.withUnsafeMutableBufferPointer { py in
    if let spikes, spikes.forward {
      let b = bias?.value.contiguous()
      w.withUnsafeBufferPointer { pw in
        if let b {
          b.withUnsafeBufferPointer { pb in
            spikes.forward(
              weight: pw.baseAddress!, outputs: outF, bias: pb.baseAddress!, into: py.baseAddress!)
          }
        } else {
          spikes.forward(weight: pw.baseAddress!, outputs: outF, bias: nil, into: py.baseAddress!)
        }
      }
      return
    }
    if let b = bias?.value {
      b.withUnsafeBufferPointer { pb in
        for r in 0..<rows {
          (py.baseAddress! + r * outF).update(from: pb.baseAddress!, count: outF)
        }
      }
    }
    Tensor.gemm(
      x2, w.transposed(), into: py.baseAddress!, ldc: outF, beta: bias == nil ? 0 : 1)
  }
  let outShape = Array(x.shape.dropLast()) + [outF]
  var parents = [x, weight]
  if let bias { parents.append(bias) }
  let inShape = x.shape
  let needX = x.requiresGrad
  let needB = bias?.requiresGrad ?? false
  // The events stay with the node only for the weight gradient.
  let weightSpikes = spikes?.weight == true ? spikes : nil
  return .record(y.reshaped(outShape), parents: parents) { g in
    let g2 = g.reshaped([rows, outF])
    var dW: Tensor<Scalar>? = nil
    if needW {
      dW =
        weightSpikes.map { s in
          g2.withUnsafeBufferPointer { s.weightGradient($0.baseAddress!, outputs: outF) }
        } ?? g2.transposed().matmul(x2)
    }
    var grads: [Tensor<Scalar>?] = [needX ? g2.matmul(w).reshaped(inShape) : nil, dW]
    if bias != nil { grads.append(needB ? g2.sum(axes: [0]) : nil) }
    return grads
  }
}
