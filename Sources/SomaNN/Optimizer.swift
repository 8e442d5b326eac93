/// Updates parameters from their accumulated gradients.
///
/// ```swift
/// var opt = Adam(parameters: net.parameterVariables, learningRate: 1e-3)
/// for (x, y) in batches {
///   opt.zeroGrad()
///   spikeCountCrossEntropy(net(Variable(x)), labels: y).backward()
///   opt.step()
/// }
/// ```
public protocol Optimizer {
  associatedtype Scalar: TensorScalar
  /// The parameters updated by `step()`, in a fixed order.
  var parameters: [Variable<Scalar>] { get }
  /// The current learning rate (set it from a schedule between steps).
  var learningRate: Double { get set }
  /// Applies one update from the parameters' `grad` (a parameter without one is skipped).
  mutating func step()
}

extension Optimizer {
  /// Clears every parameter's gradient.
  public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// A zero-filled tensor shaped like each parameter, allocated once and reused.
@inlinable
func stateBuffers<T: TensorScalar>(_ params: [Variable<T>]) -> [Tensor<T>] {
  params.map { Tensor<T>.zeros($0.value.shape) }
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum, dampening and L2
/// weight decay, as PyTorch's `SGD` defines them.
///
/// ```swift
/// var sgd = SGD(parameters: net.parameterVariables, learningRate: 0.1, momentum: 0.9)
/// ```
public struct SGD<Scalar: TensorScalar>: Optimizer {
  public let parameters: [Variable<Scalar>]
  public var learningRate: Double
  public var momentum: Double
  public var dampening: Double
  public var nesterov: Bool
  public var weightDecay: Double
  @usableFromInline var velocity: [Tensor<Scalar>]
  @usableFromInline var started: [Bool]

  public init(
    parameters: [Variable<Scalar>], learningRate: Double, momentum: Double = 0,
    dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0
  ) {
    precondition(
      !nesterov || (momentum > 0 && dampening == 0),
      "SGD: Nesterov momentum needs momentum > 0 and dampening 0")
    self.parameters = parameters
    self.learningRate = learningRate
    self.momentum = momentum
    self.dampening = dampening
    self.nesterov = nesterov
    self.weightDecay = weightDecay
    velocity = momentum == 0 ? [] : stateBuffers(parameters)
    started = [Bool](repeating: false, count: parameters.count)
  }

  @inlinable
  public mutating func step() {
    let lr = Scalar(learningRate)
    let mu = Scalar(momentum)
    let damp = 1 - Scalar(dampening)
    let wd = Scalar(weightDecay)
    for (k, p) in parameters.enumerated() {
      guard let grad = p.grad else { continue }
      let first = !started[k]
      started[k] = true
      grad.withUnsafeBufferPointer { g in
        p.value.withUnsafeMutableBufferPointer { w in
          if momentum == 0 {
            for i in 0..<w.count { w[i] -= lr * (g[i] + wd * w[i]) }
            return
          }
          velocity[k].withUnsafeMutableBufferPointer { b in
            for i in 0..<w.count {
              let d = g[i] + wd * w[i]
              b[i] = first ? d : mu * b[i] + damp * d
              w[i] -= lr * (nesterov ? d + mu * b[i] : b[i])
            }
          }
        }
      }
    }
  }
}

/// Adam (Kingma & Ba), as PyTorch's `Adam`: bias-corrected first and second moments; an
/// optional L2 `weightDecay` is added to the gradient. `decoupled: true` is AdamW (the decay
/// multiplies the weight by 1 − lr·weightDecay instead); see `AdamW`.
public struct Adam<Scalar: TensorScalar>: Optimizer {
  public let parameters: [Variable<Scalar>]
  public var learningRate: Double
  public var beta1: Double
  public var beta2: Double
  public var epsilon: Double
  public var weightDecay: Double
  public var decoupled: Bool
  /// The number of steps taken (for the bias correction).
  @inlinable public var stepCount: Int { _stepCount }
  @usableFromInline var _stepCount = 0
  @usableFromInline var m: [Tensor<Scalar>]
  @usableFromInline var v: [Tensor<Scalar>]

  public init(
    parameters: [Variable<Scalar>], learningRate: Double = 1e-3, beta1: Double = 0.9,
    beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0,
    decoupled: Bool = false
  ) {
    self.parameters = parameters
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
    self.decoupled = decoupled
    m = stateBuffers(parameters)
    v = stateBuffers(parameters)
  }

  @inlinable
  public mutating func step() {
    _stepCount += 1
    let t = Double(_stepCount)
    let bias1 = 1 - Double.pow(beta1, t)
    let bias2 = 1 - Double.pow(beta2, t)
    let stepSize = Scalar(learningRate / bias1)
    let invSqrtBias2 = Scalar(1 / bias2.squareRoot())
    let b1 = Scalar(beta1)
    let b2 = Scalar(beta2)
    let eps = Scalar(epsilon)
    let l2 = decoupled ? 0 : Scalar(weightDecay)
    let shrink = decoupled ? Scalar(1 - learningRate * weightDecay) : 1
    if weightDecay == 0 || decoupled {
      // The update the compiled networks fuse into their backward pass (vectorised for Float).
      for (k, p) in parameters.enumerated() {
        guard let grad = p.grad else { continue }
        let g = grad.contiguous()
        let mp = m[k].withUnsafeMutableBufferPointer { $0.baseAddress! }
        let vp = v[k].withUnsafeMutableBufferPointer { $0.baseAddress! }
        let update = AdamStep(
          lrC1: stepSize, b1: b1, b2: b2, ic2: Scalar(1 / bias2), eps: eps, shrink: shrink,
          m: [mp], v: [vp])
        p.value.withUnsafeMutableBufferPointer { w in
          g.withUnsafeBufferPointer { gp in
            let (wp, gq, n) = (w.baseAddress!, gp.baseAddress!, w.count)
            // A large parameter (a convolutional network's wide Linear) is split over the
            // cores at multiples of 64, so each part's vector loop runs as the whole one would.
            let parts = spatialParts(n >= 1 << 20 ? n >> 18 : 1, usesBLAS: false)
            parallel(parts) { part in
              let lo = part == 0 ? 0 : n * part / parts / 64 * 64
              let hi = part == parts - 1 ? n : n * (part + 1) / parts / 64 * 64
              update.apply(index: 0, param: wp, grad: gq, from: lo, to: hi)
            }
          }
        }
      }
      return
    }
    for (k, p) in parameters.enumerated() {
      guard let grad = p.grad else { continue }
      grad.withUnsafeBufferPointer { g in
        p.value.withUnsafeMutableBufferPointer { w in
          m[k].withUnsafeMutableBufferPointer { pm in
            v[k].withUnsafeMutableBufferPointer { pv in
              for i in 0..<w.count {
                let d = g[i] + l2 * w[i]
                pm[i] = b1 * pm[i] + (1 - b1) * d
                pv[i] = b2 * pv[i] + (1 - b2) * d * d
                let denom = pv[i].squareRoot() * invSqrtBias2 + eps
                w[i] = w[i] * shrink - stepSize * pm[i] / denom
              }
            }
          }
        }
      }
    }
  }
}

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (PyTorch's default decay
/// 0.01).
public func AdamW<Scalar: TensorScalar>(
  parameters: [Variable<Scalar>], learningRate: Double = 1e-3, beta1: Double = 0.9,
  beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01
) -> Adam<Scalar> {
  Adam(
    parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2,
    epsilon: epsilon, weightDecay: weightDecay, decoupled: true)
}

/// Scales all gradients together so their global L2 norm is at most `maxNorm` (as PyTorch's
/// `clip_grad_norm_`); returns the norm before clipping.
///
/// ```swift
/// let norm = clipGradientNorm(net.parameterVariables, maxNorm: 1)
/// ```
@discardableResult @inlinable
public func clipGradientNorm<T: TensorScalar>(_ parameters: [Variable<T>], maxNorm: Double)
  -> Double
{
  var total = 0.0
  for p in parameters {
    guard let g = p.grad else { continue }
    g.withUnsafeBufferPointer { b in for x in b { total += Double(x) * Double(x) } }
  }
  let norm = total.squareRoot()
  let scale = maxNorm / (norm + 1e-6)
  if scale < 1 {
    for p in parameters where p.grad != nil {
      p.grad!.withUnsafeMutableBufferPointer { b in
        for i in 0..<b.count { b[i] *= T(scale) }
      }
    }
  }
  return norm
}

/// A learning rate as a function of the step (or epoch) index.
public protocol LearningRateSchedule: Sendable {
  func learningRate(at step: Int) -> Double
}

/// Multiplies the initial rate by `gamma` every `stepSize` steps (PyTorch's `StepLR`).
public struct StepDecay: LearningRateSchedule {
  public var initial: Double
  public var stepSize: Int
  public var gamma: Double
  public init(initial: Double, stepSize: Int, gamma: Double = 0.1) {
    precondition(stepSize > 0, "StepDecay: stepSize must be > 0, got \(stepSize)")
    self.initial = initial
    self.stepSize = stepSize
    self.gamma = gamma
  }
  public func learningRate(at step: Int) -> Double {
    initial * Double.pow(gamma, Double(step / stepSize))
  }
}

/// Cosine annealing from `initial` to `minimum` over `totalSteps` (PyTorch's
/// `CosineAnnealingLR` without restarts); stays at `minimum` afterwards.
public struct CosineAnnealing: LearningRateSchedule {
  public var initial: Double
  public var minimum: Double
  public var totalSteps: Int
  public init(initial: Double, totalSteps: Int, minimum: Double = 0) {
    precondition(totalSteps > 0, "CosineAnnealing: totalSteps must be > 0, got \(totalSteps)")
    self.initial = initial
    self.totalSteps = totalSteps
    self.minimum = minimum
  }
  public func learningRate(at step: Int) -> Double {
    let s = Double(Swift.min(step, totalSteps))
    return minimum + (initial - minimum) * (1 + Double.cos(Double.pi * s / Double(totalSteps))) / 2
  }
}
