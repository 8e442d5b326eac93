import SomaData
import SomaNN

/// What one training step adds to its epoch's numbers, over the whole global batch.
struct StepTotals {
  /// The loss summed over the batch's samples (mean loss × samples).
  var lossSum: Double
  var correct: Int
  var count: Int
  /// Ctrl-C was pressed (on any process): stop after this step.
  var stop: Bool
}

extension Trainer {
  /// One step on this process's part of a global batch of `globalCount` samples: the gradients
  /// of the local mean loss, each weighted by localCount / globalCount, are summed over the
  /// processes in one flat buffer (with the loss, the correct count and the Ctrl-C flag behind
  /// them), so every process holds the gradient of the global batch's mean loss, as one
  /// process would compute it, and applies the same Adam update. Returns nil, with the
  /// parameters as before the step, when the loss or a parameter became NaN or infinite (the
  /// same decision on every process, since they hold the same sums and weights).
  func dataParallelStep(
    _ group: any ProcessGroup, localCount: Int, globalCount: Int,
    gradients: () -> CompiledNetwork<Float>.Step
  ) throws -> StepTotals? {
    let params = optimizer.parameters
    for p in params { p.zeroGrad() }
    var local: CompiledNetwork<Float>.Step? = nil
    if localCount > 0 { local = gradients() }
    let total = params.reduce(0) { $0 + $1.value.count }
    if reduceBuffer.count != total + 3 { reduceBuffer = [Float](repeating: 0, count: total + 3) }
    let weight = Float(localCount) / Float(globalCount)
    try reduceBuffer.withUnsafeMutableBufferPointer { flat in
      var at = 0
      for p in params {
        let n = p.value.count
        if let g = p.grad, localCount > 0 {
          g.contiguous().withUnsafeBufferPointer { src in
            for i in 0..<n { flat[at + i] = src[i] * weight }
          }
        } else {
          for i in 0..<n { flat[at + i] = 0 }
        }
        at += n
      }
      flat[at] = local.map { $0.loss * Float(localCount) } ?? 0
      flat[at + 1] = Float(local?.correct ?? 0)
      flat[at + 2] = stopFlag.isRequested ? 1 : 0
      let start = monotonicSeconds()
      try group.allReduceSum(flat)
      reduceSeconds += monotonicSeconds() - start
      at = 0
      for p in params {
        let n = p.value.count
        var g = Tensor<Float>.zeros(p.value.shape)
        g.withUnsafeMutableBufferPointer { dst in
          for i in 0..<n { dst[i] = flat[at + i] }
        }
        p.grad = g
        at += n
      }
    }
    let lossSum = reduceBuffer[total]
    optimizer.step()
    guard lossSum.isFinite, params.allSatisfy({ Self.allFinite($0.value) }) else {
      for (p, good) in zip(params, lastGood) { p.value = good.copiedContiguous() }
      return nil
    }
    rememberGoodParameters()
    return StepTotals(
      lossSum: Double(lossSum), correct: Int(reduceBuffer[total + 1].rounded()),
      count: globalCount, stop: reduceBuffer[total + 2] > 0)
  }

  /// The step on `local`'s samples of a global batch, data-parallel when `group` is set, else
  /// exactly as one process trains (Adam fused into the backward pass).
  func step(
    events: SpikeEvents?, local: ArraySlice<Int>, globalCount: Int, split: LabeledImages,
    group: (any ProcessGroup)?
  ) throws -> StepTotals? {
    let labels = local.map { split.labels[$0] }
    let steps = encoding.timeSteps
    guard let group else {
      let r =
        if let events {
          trainStep(events: events, steps: steps, labels: labels)
        } else {
          trainStep(input: denseBatch(split, local), labels: labels)
        }
      return r.map {
        StepTotals(
          lossSum: Double($0.loss) * Double(local.count), correct: $0.correct, count: local.count,
          stop: stopFlag.isRequested)
      }
    }
    return try dataParallelStep(group, localCount: local.count, globalCount: globalCount) {
      if let events {
        return model.lossAndGradients(events: events, steps: steps, labels: labels)
      }
      return model.lossAndGradients(input: denseBatch(split, local), labels: labels)
    }
  }

  /// The confusion matrix summed over the processes, each having evaluated its slice of a
  /// split of `count` samples (whose labels `checkSizes` found in range, so the diagonal counts
  /// the correct predictions).
  func reduced(_ e: Evaluation, count: Int, group: any ProcessGroup) throws -> Evaluation {
    let classes = e.confusion.count
    let correct = e.confusion.indices.reduce(0) { $0 + e.confusion[$1][$1] }
    var flat = e.confusion.flatMap { $0.map(Double.init) }
    flat.append(Double(correct))
    let sums = try group.sum(flat)
    var confusion = e.confusion
    for y in 0..<classes {
      for p in 0..<classes { confusion[y][p] = Int(sums[y * classes + p]) }
    }
    let total = Int(sums[classes * classes])
    return Evaluation(
      accuracy: count == 0 ? 0 : Double(total) / Double(count), confusion: confusion)
  }
}
