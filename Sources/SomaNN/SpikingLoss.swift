/// The classification losses over a network's output sequence [T, batch, classes], as one value
/// that a compiled network can fuse (`Sequential.compiled(loss:)`) and that also evaluates on
/// the tape.
///
/// ```swift
/// let loss = SpikingLoss.spikeCountCrossEntropy(net(Variable(x)), labels: y)
/// ```
public enum SpikingLoss: Sendable, Equatable, CustomStringConvertible {
  /// `spikeCountCrossEntropy`: cross-entropy of Σ_t s_t.
  case spikeCountCrossEntropy
  /// `meanMembraneCrossEntropy`: cross-entropy of (1/T) Σ_t v_t.
  case meanMembraneCrossEntropy
  /// `maxMembraneNLL`: NLL of log-softmax of max_t v_t (SpyTorch's loss).
  case maxMembraneNLL
  /// `mseCountLoss`: squared error of the spike counts against ⌊rate·T⌋ targets, divided by T.
  case mseCount(correctRate: Double = 0.8, incorrectRate: Double = 0.2)

  /// The loss of `output` [T, batch, classes] on the tape (a scalar variable).
  @inlinable
  public func callAsFunction<T: TensorScalar>(_ output: Variable<T>, labels: [Int]) -> Variable<T>
  {
    switch self {
    case .spikeCountCrossEntropy: return SomaNN.spikeCountCrossEntropy(output, labels: labels)
    case .meanMembraneCrossEntropy: return SomaNN.meanMembraneCrossEntropy(output, labels: labels)
    case .maxMembraneNLL: return SomaNN.maxMembraneNLL(output, labels: labels)
    case .mseCount(let on, let off):
      return SomaNN.mseCountLoss(output, labels: labels, correctRate: on, incorrectRate: off)
    }
  }

  /// The per-sample scores [batch, classes] whose largest entry is the prediction: spike counts,
  /// mean or maximal membrane.
  @inlinable
  public func logits<T: TensorScalar>(_ output: Tensor<T>) -> Tensor<T> {
    precondition(
      output.rank == 3, "SpikingLoss.logits: output must be [T, batch, classes], got \(output.shape)")
    switch self {
    case .spikeCountCrossEntropy, .mseCount: return output.sum(axes: [0])
    case .meanMembraneCrossEntropy: return output.mean(axes: [0])
    case .maxMembraneNLL: return output.max(axes: [0])
    }
  }

  public var description: String {
    switch self {
    case .spikeCountCrossEntropy: return "spikeCountCrossEntropy"
    case .meanMembraneCrossEntropy: return "meanMembraneCrossEntropy"
    case .maxMembraneNLL: return "maxMembraneNLL"
    case .mseCount(let on, let off): return "mseCount(correctRate: \(on), incorrectRate: \(off))"
    }
  }
}
