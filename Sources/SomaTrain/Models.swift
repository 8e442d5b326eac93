import Foundation
import SomaData
import SomaNN
import SomaSurrogate

/// The networks `soma train --model NAME` trains, built with the layer API. Each is an ordinary
/// `Sequential`: compile it with `loss` and train it with `Trainer` like any network of yours.
///
/// ```swift
/// let net = try Models.spytorch(surrogate: S2NN())
/// let model = try net.compiled(loss: Models.spytorchLoss)
/// ```
public enum Models {
  /// The names `soma train --model` accepts.
  public static let names = ["spytorch", "mlp", "csnn"]

  /// SpyTorch's loss: NLL of the log-softmax of the readout membrane's maximum over time.
  public static let spytorchLoss = SpikingLoss.maxMembraneNLL
  /// The mlp's loss: cross-entropy of the output spike counts.
  public static let mlpLoss = SpikingLoss.spikeCountCrossEntropy

  /// The csnn's loss: the squared error between each output's spike count and T for the label, 0
  /// otherwise, over T. That is T × SpikingJelly's MSE between the mean spike rate and the
  /// one-hot label: the same gradients up to the factor T, which Adam's update does not see.
  public static let csnnLoss = SpikingLoss.mseCount(correctRate: 1, incorrectRate: 0)

  /// SpikingJelly's convolutional Fashion-MNIST network (its `conv_fashion_mnist` tutorial,
  /// docs/Benchmarks.md `csnn-fmnist` with `channels` = 128): the flat input [T, B, 784] becomes
  /// images [T, B, 1, 28, 28], then {Conv 3×3 (padding 1, no bias) → BatchNorm2d → IF →
  /// MaxPool 2×2} × 2 → Flatten → Linear(channels·7·7 → 16·channels, no bias) → IF →
  /// Linear(16·channels → `classes`, no bias) → IF. Every IF has threshold 1, a hard reset to 0
  /// and a detached reset. Train it with `csnnLoss` on direct-coded input (the same image at each
  /// of `timeSteps` steps, `DirectCurrentEncoder`); the first convolution and BatchNorm then run
  /// once per image. Weights take PyTorch's default init from one generator seeded with `seed`.
  /// `timeSteps` is only checked (≥ 1): the network runs any T.
  public static func csnn<S: SurrogateGradient>(
    channels: Int = 32, timeSteps: Int = 4, imageShape: [Int] = [1, 28, 28], classes: Int = 10,
    surrogate: S, seed: UInt64 = 0
  ) throws -> Sequential<Float> {
    guard channels >= 1, timeSteps >= 1, classes >= 1, imageShape.count == 3,
      imageShape[1] % 4 == 0, imageShape[2] % 4 == 0, imageShape.allSatisfy({ $0 >= 1 })
    else {
      throw TrainError(
        "Models.csnn: channels, timeSteps and classes must be ≥ 1 and the image [C, H, W] with H"
          + " and W multiples of 4, got channels \(channels), timeSteps \(timeSteps), classes"
          + " \(classes), image \(imageShape)")
    }
    var g = SomaRandom(seed: seed)
    let flat = channels * (imageShape[1] / 4) * (imageShape[2] / 4)
    let hidden = 16 * channels
    func neuron() throws -> IF<S> {
      try IF(threshold: 1, reset: .zero, detachReset: true, surrogate: surrogate)
    }
    return try Sequential<Float> {
      try Unflatten<Float>(imageShape)
      try Conv2d<Float>(
        imageShape[0], channels, kernelSize: 3, padding: 1, bias: false, using: &g)
      try BatchNorm2d<Float>(channels)
      try neuron()
      try MaxPool2d<Float>(kernelSize: 2)
      try Conv2d<Float>(channels, channels, kernelSize: 3, padding: 1, bias: false, using: &g)
      try BatchNorm2d<Float>(channels)
      try neuron()
      try MaxPool2d<Float>(kernelSize: 2)
      Flatten<Float>()
      Linear<Float>(flat, hidden, bias: false, using: &g)
      try neuron()
      Linear<Float>(hidden, classes, bias: false, using: &g)
      try neuron()
    }
  }

  /// SpyTorch's Fashion-MNIST network (docs/Benchmarks.md `fmnist-spytorch`, the default of
  /// `soma train`): Linear (no bias) → current-based LIF (α = exp(−dt/τ_syn),
  /// β = exp(−dt/τ_mem), zero reset) → Linear (no bias) → leaky readout with the same α and β;
  /// train it with `spytorchLoss`. Weights are drawn N(0, (0.2/√fan_in)²) from one generator
  /// seeded with `seed`, the hidden layer's first (SpyTorch's init, and the same weights as
  /// `soma train` drew for the same seed before the layer API). On latency events a compiled copy runs as one
  /// event-driven plan.
  @inlinable
  public static func spytorch<S: SurrogateGradient>(
    inputs: Int = 784, hidden: Int = 100, outputs: Int = 10, tauSyn: Double = 5e-3,
    tauMem: Double = 10e-3, dt: Double = 1e-3, surrogate: S, seed: UInt64 = 0
  ) throws -> Sequential<Float> {
    var g = SomaRandom(seed: seed)
    let w1 = Tensor<Float>.normal(
      [hidden, inputs], std: Float(0.2) / Float(inputs).squareRoot(), using: &g)
    let w2 = Tensor<Float>.normal(
      [outputs, hidden], std: Float(0.2) / Float(hidden).squareRoot(), using: &g)
    return try spytorch(w1: w1, w2: w2, tauSyn: tauSyn, tauMem: tauMem, dt: dt, surrogate: surrogate)
  }

  /// SpyTorch's network with given weights, [hidden, inputs] and [outputs, hidden].
  @inlinable
  public static func spytorch<S: SurrogateGradient>(
    w1: Tensor<Float>, w2: Tensor<Float>, tauSyn: Double = 5e-3, tauMem: Double = 10e-3,
    dt: Double = 1e-3, surrogate: S
  ) throws -> Sequential<Float> {
    for (tau, name) in [(tauSyn, "tauSyn"), (tauMem, "tauMem"), (dt, "dt")]
    where !(tau > 0 && tau.isFinite) {
      throw TrainError("Models.spytorch: \(name) must be positive and finite, got \(tau)")
    }
    let alpha = Foundation.exp(-dt / tauSyn)
    let beta = Foundation.exp(-dt / tauMem)
    return try Sequential<Float> {
      Linear<Float>(weight: w1)
      try CUBALIF(alpha: alpha, beta: beta, threshold: 1, reset: .zero, surrogate: surrogate)
      Linear<Float>(weight: w2)
      try LeakyIntegrator(beta: beta, alpha: alpha)
    }
  }

  /// A multilayer spiking perceptron: for each width in `hidden` and then for the outputs, a
  /// Linear layer (with bias, PyTorch's default init) followed by LIF neurons (β, threshold 1,
  /// subtractive reset). Train it with `mlpLoss` (spike counts).
  @inlinable
  public static func mlp<S: SurrogateGradient>(
    inputs: Int = 784, hidden: [Int] = [256], outputs: Int = 10, beta: Double = 0.9,
    surrogate: S, seed: UInt64 = 0
  ) throws -> Sequential<Float> {
    var g = SomaRandom(seed: seed)
    let sizes = [inputs] + hidden + [outputs]
    guard sizes.allSatisfy({ $0 >= 1 }) else {
      throw TrainError("Models.mlp: every layer size must be ≥ 1, got \(sizes)")
    }
    return try Sequential<Float> {
      for l in 0..<(sizes.count - 1) {
        Linear<Float>(sizes[l], sizes[l + 1], using: &g)
        try LIF(beta: beta, threshold: 1, reset: .subtract, surrogate: surrogate)
      }
    }
  }
}

extension Sequential {
  /// The features of one input sample: an `Unflatten` first layer's size, or the first
  /// `Linear` layer's inputs when only width-keeping layers (neurons, Dropout, BatchNorm1d)
  /// come before it; nil when a convolution, pooling or reshape reads the input.
  public var inputFeatures: Int? {
    for layer in layers {
      switch layer.base {
      case let u as Unflatten<Scalar>: return u.features
      case let l as Linear<Scalar>: return l.inFeatures
      case is Conv2d<Scalar>, is MaxPool2d<Scalar>, is AvgPool2d<Scalar>, is Flatten<Scalar>,
        is BatchNorm2d<Scalar>, is Sequential<Scalar>:
        return nil
      default: continue
      }
    }
    return nil
  }

  /// The widths through the network: the first Linear layer's inputs, then each Linear
  /// layer's outputs (empty without Linear layers).
  public var linearWidths: [Int] {
    var widths: [Int] = []
    for layer in layers {
      guard let linear = layer.base as? Linear<Scalar> else { continue }
      if widths.isEmpty { widths.append(linear.inFeatures) }
      widths.append(linear.outFeatures)
    }
    return widths
  }
}
