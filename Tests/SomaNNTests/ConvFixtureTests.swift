import Foundation
import Testing

@testable import SomaNN

// conv_layers.json: forward values and gradients computed in float64 by PyTorch (generator:
// scripts/fixtures/make_conv_fixtures.py; see Fixtures/SOURCE.txt). Read at test time, never
// pasted. Each case's gradients are those of L = Σ output ⊙ upstream.

struct ConvFixture: Decodable {
  struct Values: Decodable {
    var shape: [Int]
    var data: [Double]
    func tensor<T: TensorScalar>(_: T.Type = T.self) -> Tensor<T> {
      Tensor(data.map { T($0) }, shape: shape)
    }
  }
  struct Case: Decodable, CustomStringConvertible {
    var layer: String
    var name: String
    var stride: [Int]?
    var padding: [Int]?
    var dilation: [Int]?
    var groups: Int?
    var kernel: [Int]?
    var countIncludePad: Bool?
    var lead: Int?
    var momentum: Double?
    var eps: Double?
    var affine: Bool?
    var mode: String?
    var calls: Int?
    var steps: Int?
    var labels: [Int]?
    var gain: Double?
    var loss: Double?
    var tensors: [String: Values]
    var description: String { "\(layer) \(name)" }

    func size(_ v: [Int]?) -> Size2D { Size2D(v![0], v![1]) }
    subscript<T: TensorScalar>(_ name: String, _: T.Type = T.self) -> Tensor<T> {
      tensors[name]!.tensor()
    }
    func want(_ name: String) -> [Double] { tensors[name]!.data }
  }
  var cases: [Case]

  static let shared: ConvFixture = {
    let url = Bundle.module.url(
      forResource: "conv_layers", withExtension: "json", subdirectory: "Fixtures")!
    return try! JSONDecoder().decode(ConvFixture.self, from: Data(contentsOf: url))
  }()

  static func cases(_ layer: String) -> [Case] { shared.cases.filter { $0.layer == layer } }
}

/// The tolerance on a scaled error (max |got − want| / max |want|) for a scalar type.
func fixtureTolerance<T: TensorScalar>(_: T.Type) -> Double {
  T.self == Float.self ? 2e-5 : 1e-9
}

/// Runs `body` for Float and for Double.
func bothScalars(_ body: (any TensorScalar.Type) throws -> Void) rethrows {
  try body(Float.self)
  try body(Double.self)
}

/// Runs a layer's single-step `step` as its forward pass.
struct StepOnly<L: Layer>: Layer {
  var base: L
  func callAsFunction(_ input: Variable<L.Scalar>) -> Variable<L.Scalar> {
    var state = LayerState<L.Scalar>()
    return base.step(input, state: &state)
  }
}

@Suite("Image layers against PyTorch")
struct ConvFixtureTests {
  @Test("the fixture file holds every layer")
  func coverage() {
    let layers = Set(ConvFixture.shared.cases.map(\.layer))
    #expect(layers == ["conv2d", "maxpool2d", "avgpool2d", "batchnorm2d", "batchnorm1d", "csnn"])
  }

  func checkConv<T: TensorScalar>(_ c: ConvFixture.Case, _: T.Type, events: EventPolicy) throws {
    let conv = try Conv2d<T>(
      weight: c["weight"], bias: c.tensors["bias"].map { $0.tensor() }, stride: c.size(c.stride),
      padding: c.size(c.padding), dilation: c.size(c.dilation), groups: c.groups!)
    var layer = conv
    layer.eventPolicy = events
    let x = Variable<T>(c["input"], requiresGrad: true)
    let y = layer(x)
    let tol = fixtureTolerance(T.self)
    #expect(y.shape == c.tensors["output"]!.shape)
    #expect(scaledError(y.value, c.want("output")) < tol, "\(c) \(T.self) forward")
    y.backward(seed: c["upstream"])
    #expect(scaledError(x.grad!, c.want("grad_input")) < tol, "\(c) \(T.self) dX")
    #expect(scaledError(conv.weight.grad!, c.want("grad_weight")) < tol, "\(c) \(T.self) dW")
    if let b = conv.bias {
      #expect(scaledError(b.grad!, c.want("grad_bias")) < tol, "\(c) \(T.self) db")
    }
  }

  @Test("Conv2d forward and gradients", arguments: ConvFixture.cases("conv2d"))
  func conv(_ c: ConvFixture.Case) throws {
    for events in [EventPolicy.never, .always] {
      try checkConv(c, Float.self, events: events)
      try checkConv(c, Double.self, events: events)
    }
  }

  func checkPool<T: TensorScalar>(_ c: ConvFixture.Case, _: T.Type) throws {
    let layer: AnyLayer<T>
    if c.layer == "maxpool2d" {
      layer = AnyLayer(
        try MaxPool2d<T>(
          kernelSize: c.size(c.kernel), stride: c.size(c.stride), padding: c.size(c.padding),
          dilation: c.size(c.dilation)))
    } else {
      layer = AnyLayer(
        try AvgPool2d<T>(
          kernelSize: c.size(c.kernel), stride: c.size(c.stride), padding: c.size(c.padding),
          countIncludePad: c.countIncludePad!))
    }
    let x = Variable<T>(c["input"], requiresGrad: true)
    let y = layer(x)
    let tol = fixtureTolerance(T.self)
    #expect(y.shape == c.tensors["output"]!.shape)
    #expect(scaledError(y.value, c.want("output")) < tol, "\(c) \(T.self) forward")
    y.backward(seed: c["upstream"])
    #expect(scaledError(x.grad!, c.want("grad_input")) < tol, "\(c) \(T.self) dX")
  }

  @Test(
    "MaxPool2d and AvgPool2d forward and gradients",
    arguments: ConvFixture.cases("maxpool2d") + ConvFixture.cases("avgpool2d"))
  func pool(_ c: ConvFixture.Case) throws {
    try checkPool(c, Float.self)
    try checkPool(c, Double.self)
  }

  func checkBatchNorm<T: TensorScalar>(_ c: ConvFixture.Case, _: T.Type) throws {
    let features = c.tensors["running_mean"]!.shape[0]
    var layer: AnyLayer<T>
    let state: BatchNormState<T>
    let params: (Variable<T>, Variable<T>)?
    if c.layer == "batchnorm2d" {
      let bn = try BatchNorm2d<T>(
        features, epsilon: c.eps!, momentum: c.momentum, affine: c.affine!)
      (layer, state) = (AnyLayer(bn), bn.state)
      params = bn.weight.map { ($0, bn.bias!) }
    } else {
      let bn = try BatchNorm1d<T>(
        features, epsilon: c.eps!, momentum: c.momentum, affine: c.affine!)
      (layer, state) = (AnyLayer(bn), bn.state)
      params = bn.weight.map { ($0, bn.bias!) }
      if c.lead == 1 && c.tensors["input"]!.shape.count == 3 {
        // [batch, C, L] is single-step input.
        layer = AnyLayer(StepOnly(base: bn))
      }
    }
    state.runningMean = c["running_mean_before"]
    state.runningVar = c["running_var_before"]
    if let (w, b) = params {
      w.value = c["weight"]
      b.value = c["bias"]
    }
    state.mode = c.mode == "train" ? .training : .evaluation
    let x = Variable<T>(c["input"], requiresGrad: true)
    for _ in 1..<c.calls! {
      _ = noGrad { layer(Variable(x.value * T(1.5) + T(0.25))) }
    }
    let y = layer(x)
    let tol = fixtureTolerance(T.self)
    #expect(scaledError(y.value, c.want("output")) < tol, "\(c) \(T.self) forward")
    #expect(scaledError(state.runningMean, c.want("running_mean")) < tol, "\(c) running mean")
    #expect(scaledError(state.runningVar, c.want("running_var")) < tol, "\(c) running var")
    y.backward(seed: c["upstream"])
    #expect(scaledError(x.grad!, c.want("grad_input")) < tol * 10, "\(c) \(T.self) dX")
    if let (w, b) = params {
      #expect(scaledError(w.grad!, c.want("grad_weight")) < tol, "\(c) \(T.self) dγ")
      #expect(scaledError(b.grad!, c.want("grad_bias")) < tol, "\(c) \(T.self) dβ")
    }
  }

  @Test(
    "BatchNorm2d and BatchNorm1d: train and eval, running statistics, gradients",
    arguments: ConvFixture.cases("batchnorm2d") + ConvFixture.cases("batchnorm1d"))
  func batchNorm(_ c: ConvFixture.Case) throws {
    try checkBatchNorm(c, Float.self)
    try checkBatchNorm(c, Double.self)
  }

  /// The fixture's CSNN: {Conv → BN → ×gain → IF → MaxPool} × 2 → Flatten → Linear → ×gain →
  /// IF, on a direct-coded image; loss MSE of the mean rate against one-hot labels.
  func checkCSNN<T: TensorScalar>(_ c: ConvFixture.Case, _: T.Type) throws {
    let steps = c.steps!
    let gain = T(c.gain!)
    let conv1 = try Conv2d<T>(weight: c["conv1"], padding: 1)
    let conv2 = try Conv2d<T>(weight: c["conv2"], padding: 1)
    let fc = Linear<T>(weight: c["fc"])
    let bn1 = try BatchNorm2d<T>(conv1.outChannels)
    let bn2 = try BatchNorm2d<T>(conv2.outChannels)
    let neuron = try IF(threshold: 1, reset: .zero, detachReset: true, surrogate: Arctan(alpha: 2))
    let pool = try MaxPool2d<T>(kernelSize: 2)
    let image: Tensor<T> = c["image"]
    let x = Variable(image.unsqueezed(axis: 0).expanded(to: [steps] + image.shape))
    var h = neuron(bn1(conv1(x)) * gain)
    h = neuron(bn2(conv2(pool(h))) * gain)
    let out = neuron(fc(Flatten<T>()(pool(h))) * gain)
    let rate = out.mean(axis: 0)
    let labels = c.labels!
    var onehot = Tensor<T>.zeros(rate.shape)
    for (b, l) in labels.enumerated() { onehot[scalarAt: b, l] = 1 }
    let loss = (rate - onehot).square().mean()
    let tol = T.self == Float.self ? 1e-4 : 1e-9
    #expect(Swift.abs(Double(loss.value.scalar) - c.loss!) < tol, "\(T.self) loss")
    #expect(scaledError(rate.value, c.want("rate")) < tol)
    loss.backward()
    #expect(scaledError(conv1.weight.grad!, c.want("grad_conv1")) < tol, "\(T.self) conv1")
    #expect(scaledError(conv2.weight.grad!, c.want("grad_conv2")) < tol, "\(T.self) conv2")
    #expect(scaledError(fc.weight.grad!, c.want("grad_fc")) < tol, "\(T.self) fc")
    #expect(scaledError(bn1.weight!.grad!, c.want("bn1_weight_grad")) < tol, "\(T.self) bn1 γ")
    #expect(scaledError(bn2.bias!.grad!, c.want("bn2_bias_grad")) < tol, "\(T.self) bn2 β")
    #expect(scaledError(bn1.state.runningMean, c.want("bn1_running_mean")) < tol)
    #expect(scaledError(bn2.state.runningVar, c.want("bn2_running_var")) < tol)
    #expect(conv1.weight.grad!.abs().max().scalar > 0)
  }

  @Test("a small CSNN's loss and gradients", arguments: ConvFixture.cases("csnn"))
  func csnn(_ c: ConvFixture.Case) throws {
    try checkCSNN(c, Double.self)
    try checkCSNN(c, Float.self)
  }
}
