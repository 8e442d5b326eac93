// Losses for classification with spiking outputs. Each returns a scalar variable (mean over
// the batch) ready for `backward()`.

@inlinable
func checkLabels(_ labels: [Int], batch: Int, classes: Int, loss: String) {
  precondition(
    labels.count == batch,
    "\(loss): \(labels.count) labels for a batch of \(batch)")
  for l in labels {
    precondition(l >= 0 && l < classes, "\(loss): label \(l) is outside 0..<\(classes)")
  }
}

/// Mean over the batch of −log softmax(logits)[label]: `logits` [batch, classes]. One
/// autodiff node; its gradient is (softmax − one-hot) / batch.
///
/// ```swift
/// let loss = crossEntropy(logits: net(x).sum(axis: 0), labels: [3, 1, 4])
/// ```
@inlinable
public func crossEntropy<T: TensorScalar>(logits: Variable<T>, labels: [Int]) -> Variable<T> {
  precondition(
    logits.rank == 2, "crossEntropy: logits must be [batch, classes], got \(logits.shape)")
  let batch = logits.shape[0]
  let classes = logits.shape[1]
  checkLabels(labels, batch: batch, classes: classes, loss: "crossEntropy")
  let lsm = logits.value.logSoftmax(axis: 1).contiguous()
  var total: T = 0
  lsm.withUnsafeBufferPointer { p in
    for b in 0..<batch { total -= p[b * classes + labels[b]] }
  }
  let loss = Tensor<T>(total / T(batch))
  return .record(loss, parents: [logits]) { g in
    var grad = lsm.exp()
    let scale = g.scalar / T(batch)
    grad.withUnsafeMutableBufferPointer { p in
      for b in 0..<batch { p[b * classes + labels[b]] -= 1 }
      for i in 0..<p.count { p[i] *= scale }
    }
    return [grad]
  }
}

/// Negative log-likelihood of log-probabilities `logProbabilities` [batch, classes].
@inlinable
public func nllLoss<T: TensorScalar>(logProbabilities: Variable<T>, labels: [Int]) -> Variable<T> {
  precondition(
    logProbabilities.rank == 2,
    "nllLoss: log-probabilities must be [batch, classes], got \(logProbabilities.shape)")
  let batch = logProbabilities.shape[0]
  let classes = logProbabilities.shape[1]
  checkLabels(labels, batch: batch, classes: classes, loss: "nllLoss")
  var mask = Tensor<T>.zeros([batch, classes])
  for b in 0..<batch { mask[scalarAt: b, labels[b]] = -1 / T(batch) }
  return (logProbabilities * mask).sum()
}

/// Cross-entropy of the spike counts Σ_t s_t of output spikes [T, batch, classes].
@inlinable
public func spikeCountCrossEntropy<T: TensorScalar>(_ spikes: Variable<T>, labels: [Int])
  -> Variable<T>
{
  precondition(
    spikes.rank == 3,
    "spikeCountCrossEntropy: spikes must be [T, batch, classes], got \(spikes.shape)")
  return crossEntropy(logits: spikes.sum(axis: 0), labels: labels)
}

/// Cross-entropy of the mean membrane (1/T) Σ_t v_t of a readout [T, batch, classes].
@inlinable
public func meanMembraneCrossEntropy<T: TensorScalar>(_ membrane: Variable<T>, labels: [Int])
  -> Variable<T>
{
  precondition(
    membrane.rank == 3,
    "meanMembraneCrossEntropy: membrane must be [T, batch, classes], got \(membrane.shape)")
  return crossEntropy(logits: membrane.mean(axis: 0), labels: labels)
}

/// NLL of log-softmax of the maximum over time of a readout membrane [T, batch, classes]
/// (SpyTorch's loss).
@inlinable
public func maxMembraneNLL<T: TensorScalar>(_ membrane: Variable<T>, labels: [Int]) -> Variable<T> {
  precondition(
    membrane.rank == 3,
    "maxMembraneNLL: membrane must be [T, batch, classes], got \(membrane.shape)")
  return nllLoss(logProbabilities: membrane.max(axis: 0).logSoftmax(axis: 1), labels: labels)
}

/// snnTorch's `mse_count_loss`: the spike counts [batch, classes] of spikes [T, batch, classes]
/// are pulled towards ⌊correctRate·T⌋ for the label and ⌊incorrectRate·T⌋ for the others; the
/// loss is the mean squared error divided by T.
@inlinable
public func mseCountLoss<T: TensorScalar>(
  _ spikes: Variable<T>, labels: [Int], correctRate: Double = 0.8, incorrectRate: Double = 0.2
) -> Variable<T> {
  precondition(
    spikes.rank == 3, "mseCountLoss: spikes must be [T, batch, classes], got \(spikes.shape)")
  let steps = spikes.shape[0]
  let batch = spikes.shape[1]
  let classes = spikes.shape[2]
  checkLabels(labels, batch: batch, classes: classes, loss: "mseCountLoss")
  let on = T((Double(steps) * correctRate).rounded(.towardZero))
  let off = T((Double(steps) * incorrectRate).rounded(.towardZero))
  var target = Tensor<T>(repeating: off, shape: [batch, classes])
  for b in 0..<batch { target[scalarAt: b, labels[b]] = on }
  return (spikes.sum(axis: 0) - target).square().mean() / T(steps)
}

/// A firing-rate regulariser for spikes [T, batch, neurons…]: the mean over neurons of
/// (rate − targetRate)², where a neuron's rate is its mean spike count per step and sample.
/// With `targetRate` 0 it penalises activity; add it, scaled, to the task loss.
@inlinable
public func firingRateRegularizer<T: TensorScalar>(_ spikes: Variable<T>, targetRate: T = 0)
  -> Variable<T>
{
  precondition(
    spikes.rank >= 2, "firingRateRegularizer: spikes must be [T, batch, …], got \(spikes.shape)")
  return (spikes.mean(axes: [0, 1]) - targetRate).square().mean()
}
