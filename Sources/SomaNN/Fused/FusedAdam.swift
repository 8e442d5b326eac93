import SomaKernels

/// Adam (bias-corrected, as `torch.optim.Adam` without weight decay) for the fused networks'
/// `trainStep`, which applies it inside the backward pass: an event-driven layer's weight
/// gradient is never written to memory, each block goes from registers straight into the update.
///
/// ```swift
/// var adam = try FusedAdam<Float>(learningRate: 1e-3)
/// for (x, y) in batches { _ = net.trainStep(input: x, labels: y, optimizer: &adam) }
/// ```
/// The moments are allocated on the first step for the network's parameter shapes; one
/// optimizer belongs to one network.
///
/// Models that hand out their gradients instead, such as `CurrentBasedSNN`, use ``step(_:gradients:threads:)``:
/// ```swift
/// let g = net.lossAndGradients(events: events, steps: 100, batch: 256, labels: labels)
/// net.withParameters { adam.step(&$0, gradients: [g.gradW1, g.gradW2], threads: net.threads) }
/// ```
public struct FusedAdam<T: TensorScalar> {
  public let learningRate: Double
  public let beta1: Double
  public let beta2: Double
  public let epsilon: Double
  /// Steps taken so far (the t of the bias corrections).
  @inlinable public var stepCount: Int { _stepCount }
  /// First and second moments per parameter, in the order the network lists its parameters
  /// (empty before the first step).
  @inlinable public var moments: (m: [Tensor<T>], v: [Tensor<T>]) { (m, v) }
  @usableFromInline var _stepCount = 0
  @usableFromInline var m: [Tensor<T>] = []
  @usableFromInline var v: [Tensor<T>] = []

  public init(
    learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8
  ) throws(SomaNNError) {
    try SomaNNError.checkPositive(learningRate, "learning rate", layer: "Adam")
    try SomaNNError.checkUnitIntervalOpen(beta1, "beta1", layer: "Adam")
    try SomaNNError.checkUnitIntervalOpen(beta2, "beta2", layer: "Adam")
    try SomaNNError.checkPositive(epsilon, "epsilon", layer: "Adam")
    (self.learningRate, self.beta1, self.beta2, self.epsilon) = (learningRate, beta1, beta2, epsilon)
  }

  /// Starts a step for parameters of `shapes`: allocates the moments on the first call, checks
  /// the shapes afterwards, and returns the step's constants and moment pointers (valid while
  /// `self` is not mutated again).
  @inlinable
  mutating func begin(shapes: [[Int]]) -> AdamStep<T> {
    if m.isEmpty {
      // Kept for the whole run and read in the weight-gradient gather's row order.
      m = shapes.map { Tensor.zeros($0).withLargePageStorage() }
      v = shapes.map { Tensor.zeros($0).withLargePageStorage() }
    }
    precondition(
      m.map(\.shape) == shapes,
      "FusedAdam: moments for shapes \(m.map(\.shape)), parameters are \(shapes) (one optimizer per network)")
    _stepCount += 1
    let t = Double(_stepCount)
    let c1 = 1 - Double.pow(beta1, t)
    let c2 = 1 - Double.pow(beta2, t)
    let mp = (0..<m.count).map { i in m[i].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    let vp = (0..<v.count).map { i in v[i].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    return AdamStep(
      lrC1: T(learningRate / c1), b1: T(beta1), b2: T(beta2), ic2: T(1 / c2), eps: T(epsilon),
      m: mp, v: vp)
  }
}

extension FusedAdam {
  /// One update of `parameters` from `gradients` (the same shapes, in the same order at every
  /// step), the vectorised update split over `threads` for tensors of 65 536 elements or more.
  @inlinable
  public mutating func step(
    _ parameters: inout [Tensor<T>], gradients: [Tensor<T>], threads: Int = 1
  ) {
    precondition(
      parameters.count == gradients.count,
      "FusedAdam.step: \(parameters.count) parameters but \(gradients.count) gradients")
    for i in 0..<parameters.count {
      precondition(
        parameters[i].shape == gradients[i].shape,
        "FusedAdam.step: parameter \(i) has shape \(parameters[i].shape), its gradient \(gradients[i].shape)")
    }
    let update = begin(shapes: parameters.map(\.shape))
    for i in 0..<parameters.count {
      parameters[i].withUnsafeMutableBufferPointer { p in
        gradients[i].withUnsafeBufferPointer { g in
          let n = p.count
          let parts = n >= 65_536 ? Swift.max(1, threads) : 1
          let (pP, gP) = (p.baseAddress!, g.baseAddress!)
          parallel(parts) { part in
            update.apply(index: i, param: pP, grad: gP, from: part * n / parts, to: (part + 1) * n / parts)
          }
        }
      }
    }
  }
}

