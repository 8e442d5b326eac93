/// Running statistics and the mode of a batch-norm layer, shared by its copies.
public final class BatchNormState<Scalar: TensorScalar> {
  /// The running mean per channel (PyTorch's `running_mean`).
  public var runningMean: Tensor<Scalar>
  /// The running unbiased variance per channel (`running_var`).
  public var runningVar: Tensor<Scalar>
  /// Training-mode batches seen (`num_batches_tracked`).
  public var batchesTracked = 0
  public var mode = LayerMode.automatic
  /// Makes training-mode statistics those of the whole batch over the processes of a
  /// data-parallel run (PyTorch's SyncBatchNorm), in the forward pass and in the backward pass
  /// through them. SomaTrain's `Trainer` sets it on every BatchNorm layer while it trains on
  /// several processes, and clears it after. nil (the default): the layer normalises by its own
  /// batch, exactly as without it.
  public var synchronizer: (any BatchNormSynchronizer)?

  init(features: Int) {
    runningMean = Tensor.zeros([features])
    runningVar = Tensor.ones([features])
  }
}

/// Sums a BatchNorm layer's per-channel statistics over the processes of a data-parallel run,
/// so that processes each holding a part of a batch normalise it by the whole batch's mean and
/// variance, and back-propagate through them, as one process holding the whole batch does
/// (PyTorch's SyncBatchNorm). Set on `BatchNormState.synchronizer`; it acts in training mode
/// while the autodiff tape records (a training step), never in evaluation.
///
/// Each synchronised layer calls `sum` once in its forward pass (the processes' sample counts,
/// means and variances, each process in its own slots) and once in its backward pass (Σg and
/// Σg·x̂ per channel), so every process must run the same forward and backward passes, with at
/// least one sample (see `wholeBatch`), and its calls come in the same order everywhere.
public protocol BatchNormSynchronizer: AnyObject {
  /// This process's index, 0..<size.
  var rank: Int { get }
  /// The number of processes.
  var size: Int { get }
  /// The weight of this process's loss in the batch's loss, by which the training loop
  /// multiplies its gradients before summing them over the processes: its part's samples over
  /// the batch's (each loss being a mean over its samples).
  var lossShare: Double { get }
  /// True when every process holds the whole batch (one of fewer samples than processes, each
  /// process with `lossShare` 1/size): the layers then take process 0's statistics and sums as
  /// they are, the same bits on every process and those of one process.
  var wholeBatch: Bool { get }
  /// Replaces `values` by their element-wise sum over the processes (the same count on each).
  /// Called inside the forward and backward passes, while reductions of gradients the training
  /// loop started may be under way: it must not pair with those.
  func sum(_ values: UnsafeMutableBufferPointer<Double>)
}

/// Batch normalisation per channel, the shared implementation of `BatchNorm2d` and
/// `BatchNorm1d`: in training, y = (x − mean) / √(var + ε) · γ + β with the batch's mean and
/// biased variance over every axis but the channel (time folded into the batch), and the
/// running statistics move by `momentum` toward the batch's mean and unbiased variance; in
/// evaluation, the running statistics normalise.
@usableFromInline
struct BatchNormCore<Scalar: TensorScalar> {
  @usableFromInline let layer: String
  @usableFromInline let features: Int
  @usableFromInline let epsilon: Double
  /// nil: a cumulative average (PyTorch's momentum=None).
  @usableFromInline let momentum: Double?
  @usableFromInline let trackRunningStats: Bool
  @usableFromInline let weight: Variable<Scalar>?
  @usableFromInline let bias: Variable<Scalar>?
  @usableFromInline let state: BatchNormState<Scalar>

  init(
    layer: String, features: Int, epsilon: Double, momentum: Double?, affine: Bool,
    trackRunningStats: Bool
  ) throws(SomaNNError) {
    if features < 1 {
      throw .invalidHyperparameter(
        layer: layer, name: "numFeatures", value: Double(features), allowed: "≥ 1")
    }
    try SomaNNError.checkPositive(epsilon, "epsilon", layer: layer)
    if let momentum { try SomaNNError.checkUnitInterval(momentum, "momentum", layer: layer) }
    (self.layer, self.features, self.epsilon, self.momentum) = (layer, features, epsilon, momentum)
    self.trackRunningStats = trackRunningStats
    weight = affine ? Variable(Tensor.ones([features]), requiresGrad: true, name: "weight") : nil
    bias = affine ? Variable(Tensor.zeros([features]), requiresGrad: true, name: "bias") : nil
    state = BatchNormState(features: features)
  }

  var parameters: [(name: String, variable: Variable<Scalar>)] {
    guard let weight, let bias else { return [] }
    return [("weight", weight), ("bias", bias)]
  }

  /// Normalises `x` read as [rows, features, inner], where `lead` axes make the rows (the
  /// first of two being time, whose repeats are normalised once).
  @inlinable
  func forward(_ x: Variable<Scalar>, leadAxes: Int) -> Variable<Scalar> {
    let shape = x.shape
    let rows = shape.prefix(leadAxes).reduce(1, *)
    let inner = shape.dropFirst(leadAxes + 1).reduce(1, *)
    precondition(
      shape[leadAxes] == features,
      "\(layer): input of shape \(shape) has \(shape[leadAxes]) channels on axis \(leadAxes), "
        + "the layer \(features)")
    let C = features
    let training = state.mode.isTraining
    let batchStats = training || !trackRunningStats
    // Time steps that repeat (a direct-coded input after its first convolution) run once.
    let once = leadAxes == 2 && repeatsOverTime(x.value)
    let xs = once ? firstSlice(x.value) : x.value.contiguous()
    let xRows = once ? shape[1] : rows
    let parts = spatialParts(rows * inner >= 1 << 15 ? C : 1, usesBLAS: false)
    let gamma = weight?.value.contiguous() ?? Tensor.ones([C])
    let beta = bias?.value.contiguous() ?? Tensor.zeros([C])

    var mean = [Double](repeating: 0, count: C)
    var invStd = [Double](repeating: 0, count: C)
    // Synchronised over the processes: only in a training step (in evaluation each process
    // normalises its own part, as does one with trackRunningStats false).
    let sync = state.synchronizer.flatMap { training && GradientMode.isEnabled ? $0 : nil }
    // The values per channel over all processes (this process's without `sync`).
    var total = Double(rows * inner)
    if batchStats {
      var count = rows * inner
      precondition(
        count > 1 || !training || sync != nil,
        "\(layer): training needs more than one value per channel, got input shape \(shape)")
      var variance = [Double](repeating: 0, count: C)
      xs.withUnsafeBufferPointer { px in
        mean.withUnsafeMutableBufferPointer { pm in
          variance.withUnsafeMutableBufferPointer { pv in
            let (xp, mp, vp) = (px.baseAddress!, pm.baseAddress!, pv.baseAddress!)
            parallel(parts) { part in
              let (c0, c1) = partRange(part, of: parts, count: C)
              if c0 < c1 {
                _bnStats(xp, rows: xRows, channels: C, inner: inner, c0, c1, mean: mp, variance: vp)
              }
            }
          }
        }
      }
      if let sync {
        count = synchronizedStatistics(sync, mean: &mean, variance: &variance, count: count)
        total = Double(count)
        precondition(
          count > 1,
          "\(layer): training needs more than one value per channel, got \(count) over the "
            + "processes")
      }
      for c in 0..<C { invStd[c] = 1 / (variance[c] + epsilon).squareRoot() }
      if training && trackRunningStats {
        state.batchesTracked += 1
        let m = momentum ?? 1 / Double(state.batchesTracked)
        let unbias = Double(count) / Double(Swift.max(count - 1, 1))
        var rm = state.runningMean.contiguous()
        var rv = state.runningVar.contiguous()
        rm.withUnsafeMutableBufferPointer { pm in
          rv.withUnsafeMutableBufferPointer { pv in
            for c in 0..<C {
              pm[c] = Scalar((1 - m) * Double(pm[c]) + m * mean[c])
              pv[c] = Scalar((1 - m) * Double(pv[c]) + m * variance[c] * unbias)
            }
          }
        }
        (state.runningMean, state.runningVar) = (rm, rv)
      }
    } else {
      let rm = state.runningMean.scalars
      let rv = state.runningVar.scalars
      for c in 0..<C {
        mean[c] = Double(rm[c])
        invStd[c] = 1 / (Double(rv[c]) + epsilon).squareRoot()
      }
    }
    let g = gamma.scalars
    let b = beta.scalars
    let scale = Tensor<Scalar>((0..<C).map { Scalar(Double(g[$0]) * invStd[$0]) })
    let shift = Tensor<Scalar>(
      (0..<C).map { Scalar(Double(b[$0]) - mean[$0] * Double(g[$0]) * invStd[$0]) })
    var y = Tensor<Scalar>(uninitializedShape: once ? Array(shape.dropFirst()) : shape)
    applyAffine(xs, rows: xRows, inner: inner, scale: scale, shift: shift, into: &y, parts: parts)
    if once { y = repeated(y, steps: shape[0]) }

    var parents = [x]
    if let weight, let bias { parents += [weight, bias] }
    let needX = x.requiresGrad
    // A repeated input's statistics and γ, β see only the gradient summed over time; so does
    // its producer when it is tied (see `isTiedOverTime`), which then gets a tied gradient.
    let summed = once && (!needX || isTiedOverTime(x))
    let gRows = summed ? xRows : rows
    let syncTotal = total
    return .record(y, parents: parents) { grad in
      // A tied gradient is read as its one slice; the results are scaled by T (`timeSum`).
      // Synchronised, every process sums as before.
      let (gc, gFactor): (Tensor<Scalar>, Scalar) =
        !summed ? (grad.contiguous(), 1) : sync != nil ? (sumOverTime(grad), 1) : timeSum(grad)
      var dx =
        needX ? Tensor<Scalar>(uninitializedShape: summed ? Array(shape.dropFirst()) : shape) : nil
      var dGamma = [Double](repeating: 0, count: C)
      var dBeta = [Double](repeating: 0, count: C)
      if let sync {
        synchronizedBackward(
          sync, x: xs, xRows: xRows, grad: gc, gradRows: gRows, timesSummed: rows / gRows,
          inner: inner, total: syncTotal, mean: mean, invStd: invStd, gamma: gamma, dx: &dx,
          dGamma: &dGamma, dBeta: &dBeta, parts: parts)
      } else if batchStats {
        // Training: the gradient runs through the batch statistics too.
        xs.withUnsafeBufferPointer { px in
          gc.withUnsafeBufferPointer { pg in
            gamma.withUnsafeBufferPointer { pgam in
              withOptionalMutablePointer(&dx) { pdx in
                let (xp, gp, gam) = (px.baseAddress!, pg.baseAddress!, pgam.baseAddress!)
                mean.withUnsafeBufferPointer { pm in
                  invStd.withUnsafeBufferPointer { pis in
                    dGamma.withUnsafeMutableBufferPointer { pdg in
                      dBeta.withUnsafeMutableBufferPointer { pdb in
                        let (mp, isp, dgp, dbp) = (
                          pm.baseAddress!, pis.baseAddress!, pdg.baseAddress!, pdb.baseAddress!
                        )
                        parallel(parts) { part in
                          let (c0, c1) = partRange(part, of: parts, count: C)
                          if c0 == c1 { return }
                          _bnBackward(
                            xp, xRows: xRows, gp, gradRows: gRows, channels: C, inner: inner, c0,
                            c1, mean: mp, invStd: isp, gamma: gam, dx: pdx, dGamma: dgp,
                            dBeta: dbp)
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      } else {
        // Evaluation: a fixed affine map per channel; the kernel's sums give dγ and dβ.
        xs.withUnsafeBufferPointer { px in
          gc.withUnsafeBufferPointer { pg in
            gamma.withUnsafeBufferPointer { pgam in
              mean.withUnsafeBufferPointer { pm in
                invStd.withUnsafeBufferPointer { pis in
                  dGamma.withUnsafeMutableBufferPointer { pdg in
                    dBeta.withUnsafeMutableBufferPointer { pdb in
                      _bnBackward(
                        px.baseAddress!, xRows: xRows, pg.baseAddress!, gradRows: gRows,
                        channels: C, inner: inner, 0, C, mean: pm.baseAddress!,
                        invStd: pis.baseAddress!, gamma: pgam.baseAddress!, dx: nil,
                        dGamma: pdg.baseAddress!, dBeta: pdb.baseAddress!)
                    }
                  }
                }
              }
            }
          }
        }
        if needX {
          applyAffine(
            gc, rows: gRows, inner: inner, scale: scale, shift: Tensor.zeros([C]), into: &dx!,
            parts: parts)
        }
      }
      var grads: [Tensor<Scalar>?] = [
        summed ? dx.map { tiedGradient($0, factor: gFactor, steps: shape[0]) } : dx
      ]
      if weight != nil {
        let f = Double(gFactor)
        grads.append(Tensor(dGamma.map { Scalar($0 * f) }))
        grads.append(Tensor(dBeta.map { Scalar($0 * f) }))
      }
      return grads
    }
  }

  /// Replaces this process's per-channel `mean` and biased `variance` of `count` values by those
  /// of every process's values, and returns their number. One `sum` gathers each process's
  /// count, means and variances into its own slots (the others add zeros, so every process
  /// receives them exactly), and every process combines them in rank order, so all get the same
  /// bits: mean = Σ nᵣ·meanᵣ / n and variance = Σ nᵣ·(varᵣ + (meanᵣ − mean)²) / n, Chan et
  /// al.'s pairwise update summed, free of the cancellation of Σx² − n·mean² (PyTorch's
  /// SyncBatchNorm too gathers the means and variances). With the `wholeBatch` on every
  /// process, process 0's statistics as they are.
  @usableFromInline
  func synchronizedStatistics(
    _ sync: any BatchNormSynchronizer, mean: inout [Double], variance: inout [Double], count: Int
  ) -> Int {
    let C = features
    let slot = 2 * C + 1
    var gathered = [Double](repeating: 0, count: sync.size * slot)
    let at = sync.rank * slot
    gathered[at] = Double(count)
    for c in 0..<C {
      gathered[at + 1 + c] = mean[c]
      gathered[at + 1 + C + c] = variance[c]
    }
    gathered.withUnsafeMutableBufferPointer { sync.sum($0) }
    if sync.wholeBatch {
      for c in 0..<C { (mean[c], variance[c]) = (gathered[1 + c], gathered[1 + C + c]) }
      return Int(gathered[0])
    }
    var n = 0.0
    for r in 0..<sync.size { n += gathered[r * slot] }
    precondition(n > 0, "\(layer): no values over all processes")
    for c in 0..<C {
      var s = 0.0
      for r in 0..<sync.size { s += gathered[r * slot] * gathered[r * slot + 1 + c] }
      let m = s / n
      var m2 = 0.0
      for r in 0..<sync.size {
        let d = gathered[r * slot + 1 + c] - m
        m2 += gathered[r * slot] * (gathered[r * slot + 1 + C + c] + d * d)
      }
      (mean[c], variance[c]) = (m, m2 / n)
    }
    return Int(n)
  }

  /// The backward pass through statistics synchronised over the processes: this process's Σg
  /// (dβ) and Σg·x̂ (dγ) per channel, then their sums over the processes, each weighted by its
  /// `lossShare` (its gradients are of its own mean loss), and dx from their means over the
  /// `total` values, in this process's units again (with the `wholeBatch` everywhere, process
  /// 0's sums alone, in one process's units). dγ and dβ stay this process's sums: the training
  /// loop sums them with the other gradients. `timesSummed` is T when the gradient was summed
  /// over T repeated time steps (its means then count T times).
  @usableFromInline
  func synchronizedBackward(
    _ sync: any BatchNormSynchronizer, x: Tensor<Scalar>, xRows: Int, grad: Tensor<Scalar>,
    gradRows: Int, timesSummed: Int, inner: Int, total: Double, mean: [Double],
    invStd: [Double], gamma: Tensor<Scalar>, dx: inout Tensor<Scalar>?, dGamma: inout [Double],
    dBeta: inout [Double], parts: Int
  ) {
    let C = features
    x.withUnsafeBufferPointer { px in
      grad.withUnsafeBufferPointer { pg in
        gamma.withUnsafeBufferPointer { pgam in
          mean.withUnsafeBufferPointer { pm in
            invStd.withUnsafeBufferPointer { pis in
              dGamma.withUnsafeMutableBufferPointer { pdg in
                dBeta.withUnsafeMutableBufferPointer { pdb in
                  let (xp, gp, gam, mp, isp, dgp, dbp) = (
                    px.baseAddress!, pg.baseAddress!, pgam.baseAddress!, pm.baseAddress!,
                    pis.baseAddress!, pdg.baseAddress!, pdb.baseAddress!
                  )
                  parallel(parts) { part in
                    let (c0, c1) = partRange(part, of: parts, count: C)
                    if c0 == c1 { return }
                    _bnBackward(
                      xp, xRows: xRows, gp, gradRows: gradRows, channels: C, inner: inner, c0, c1,
                      mean: mp, invStd: isp, gamma: gam, dx: nil, dGamma: dgp, dBeta: dbp)
                  }
                }
              }
            }
          }
        }
      }
    }
    let share = sync.wholeBatch ? 1 : sync.lossShare
    let weight = sync.wholeBatch ? (sync.rank == 0 ? 1 : 0) : share
    var sums = [Double](repeating: 0, count: 2 * C)
    for c in 0..<C { (sums[c], sums[C + c]) = (weight * dBeta[c], weight * dGamma[c]) }
    sums.withUnsafeMutableBufferPointer { sync.sum($0) }
    guard dx != nil else { return }
    let scale = Double(timesSummed) / (share * total)
    let meanGrad = (0..<C).map { sums[$0] * scale }
    let meanGradXHat = (0..<C).map { sums[C + $0] * scale }
    x.withUnsafeBufferPointer { px in
      grad.withUnsafeBufferPointer { pg in
        gamma.withUnsafeBufferPointer { pgam in
          mean.withUnsafeBufferPointer { pm in
            invStd.withUnsafeBufferPointer { pis in
              meanGrad.withUnsafeBufferPointer { pmg in
                meanGradXHat.withUnsafeBufferPointer { pmgx in
                  dx!.withUnsafeMutableBufferPointer { pdx in
                    let (xp, gp, gam, mp, isp, mgp, mgxp, dxp) = (
                      px.baseAddress!, pg.baseAddress!, pgam.baseAddress!, pm.baseAddress!,
                      pis.baseAddress!, pmg.baseAddress!, pmgx.baseAddress!, pdx.baseAddress!
                    )
                    parallel(parts) { part in
                      let (c0, c1) = partRange(part, of: parts, count: C)
                      if c0 == c1 { return }
                      _bnBackwardDx(
                        xp, xRows: xRows, gp, gradRows: gradRows, channels: C, inner: inner, c0,
                        c1, mean: mp, invStd: isp, gamma: gam, meanGrad: mgp,
                        meanGradXHat: mgxp, dx: dxp)
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// out[r, c, i] = x[r, c, i]·scale[c] + shift[c].
  @inlinable
  func applyAffine(
    _ x: Tensor<Scalar>, rows: Int, inner: Int, scale: Tensor<Scalar>, shift: Tensor<Scalar>,
    into out: inout Tensor<Scalar>, parts: Int
  ) {
    let C = features
    x.withUnsafeBufferPointer { px in
      scale.withUnsafeBufferPointer { ps in
        shift.withUnsafeBufferPointer { pt in
          out.withUnsafeMutableBufferPointer { po in
            let (xp, sp, tp, op) = (
              px.baseAddress!, ps.baseAddress!, pt.baseAddress!, po.baseAddress!
            )
            parallel(parts) { part in
              let (c0, c1) = partRange(part, of: parts, count: C)
              if c0 < c1 {
                _bnApply(
                  xp, rows: rows, channels: C, inner: inner, c0, c1, scale: sp, shift: tp, op)
              }
            }
          }
        }
      }
    }
  }
}

/// Batch normalisation over the channels of images: multi-step [T, batch, C, H, W] (the
/// statistics over all T·batch images, as SpikingJelly's multi-step BatchNorm2d) or
/// [batch, C, H, W]. In training (`mode`, `.automatic` by default: training while the tape
/// records) it normalises with the batch's statistics and updates `runningMean` and
/// `runningVar` as PyTorch does; in evaluation it normalises with them. A direct-coded input
/// (the same maps at every time step) is normalised once and repeated.
///
/// ```swift
/// let bn = try BatchNorm2d<Float>(128)
/// let y = bn(conv(x))
/// bn.mode = .evaluation
/// ```
public struct BatchNorm2d<Scalar: TensorScalar>: Layer, ModalLayer {
  @usableFromInline let core: BatchNormCore<Scalar>

  /// `numFeatures` channels; `momentum` nil keeps a cumulative average. Throws for fewer than
  /// one channel, ε ≤ 0 or momentum outside [0, 1].
  public init(
    _ numFeatures: Int, epsilon: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
    trackRunningStats: Bool = true
  ) throws(SomaNNError) {
    core = try BatchNormCore(
      layer: "BatchNorm2d", features: numFeatures, epsilon: epsilon, momentum: momentum,
      affine: affine, trackRunningStats: trackRunningStats)
  }

  /// The channels (features) normalised.
  public var numFeatures: Int { core.features }
  /// ε added to the variance.
  public var epsilon: Double { core.epsilon }
  /// How far the running statistics move per training batch (nil: a cumulative average).
  public var momentum: Double? { core.momentum }
  /// True when the layer has γ and β.
  public var affine: Bool { core.weight != nil }
  /// True when evaluation normalises with the running statistics.
  public var trackRunningStats: Bool { core.trackRunningStats }
  /// γ [C] (nil without `affine`).
  public var weight: Variable<Scalar>? { core.weight }
  /// β [C] (nil without `affine`).
  public var bias: Variable<Scalar>? { core.bias }
  /// The running statistics and mode.
  public var state: BatchNormState<Scalar> { core.state }
  public var mode: LayerMode {
    get { core.state.mode }
    nonmutating set { core.state.mode = newValue }
  }
  public var parameters: [(name: String, variable: Variable<Scalar>)] { core.parameters }

  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    precondition(
      input.rank == 4 || input.rank == 5,
      "BatchNorm2d: input must be [T, batch, C, H, W] or [batch, C, H, W], got shape "
        + "\(input.shape)")
    return core.forward(input, leadAxes: input.rank - 3)
  }
}

/// Batch normalisation over features: multi-step [T, batch, C] or [T, batch, C, L] (statistics
/// over T·batch samples), [batch, C] in either mode, and single-step [batch, C, L] (`step`).
/// Training, evaluation and the running statistics as `BatchNorm2d`.
///
/// ```swift
/// let bn = try BatchNorm1d<Float>(2048)
/// ```
public struct BatchNorm1d<Scalar: TensorScalar>: Layer, ModalLayer {
  @usableFromInline let core: BatchNormCore<Scalar>

  public init(
    _ numFeatures: Int, epsilon: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
    trackRunningStats: Bool = true
  ) throws(SomaNNError) {
    core = try BatchNormCore(
      layer: "BatchNorm1d", features: numFeatures, epsilon: epsilon, momentum: momentum,
      affine: affine, trackRunningStats: trackRunningStats)
  }

  /// The channels (features) normalised.
  public var numFeatures: Int { core.features }
  /// ε added to the variance.
  public var epsilon: Double { core.epsilon }
  /// How far the running statistics move per training batch (nil: a cumulative average).
  public var momentum: Double? { core.momentum }
  /// True when the layer has γ and β.
  public var affine: Bool { core.weight != nil }
  /// True when evaluation normalises with the running statistics.
  public var trackRunningStats: Bool { core.trackRunningStats }
  public var weight: Variable<Scalar>? { core.weight }
  public var bias: Variable<Scalar>? { core.bias }
  public var state: BatchNormState<Scalar> { core.state }
  public var mode: LayerMode {
    get { core.state.mode }
    nonmutating set { core.state.mode = newValue }
  }
  public var parameters: [(name: String, variable: Variable<Scalar>)] { core.parameters }

  /// [batch, C], [T, batch, C] or [T, batch, C, L].
  @inlinable
  public func callAsFunction(_ input: Variable<Scalar>) -> Variable<Scalar> {
    switch input.rank {
    case 2: return core.forward(input, leadAxes: 1)
    case 3, 4: return core.forward(input, leadAxes: 2)
    default:
      preconditionFailure(
        "BatchNorm1d: multi-step input must be [T, batch, C], [T, batch, C, L] or [batch, C], "
          + "got shape \(input.shape)")
    }
  }

  /// One step: [batch, C] or [batch, C, L].
  @inlinable
  public func step(_ input: Variable<Scalar>, state: inout LayerState<Scalar>) -> Variable<Scalar> {
    precondition(
      input.rank == 2 || input.rank == 3,
      "BatchNorm1d: single-step input must be [batch, C] or [batch, C, L], got shape "
        + "\(input.shape)")
    return core.forward(input, leadAxes: 1)
  }
}
