import SomaKernels

/// One step of a lowered network.
@usableFromInline
enum PlanOp<T: TensorScalar> {
  /// A fully connected layer (its weight [out, in] and optional bias).
  case linear(weight: Variable<T>, bias: Variable<T>?)
  /// A neuron layer's fused kernel.
  case neuron(NeuronKernel<T>)
  /// A recurrent LIF layer (its recurrent weight [n, n]).
  case recurrent(weight: Variable<T>, kernel: RecurrentStageKernel<T>)
  /// A layer with no fused form (its type, for the plan's description).
  case tape(String)
}

extension Sequential {
  /// The network lowered onto fused kernels for training with `loss`.
  ///
  /// Each `Linear` becomes one GEMM over all T steps, or an event-driven pass (each input spike
  /// adds a weight row) when its input is 0/1 spikes and sparse enough, measured at every step;
  /// each neuron layer runs the fused kernel it provides (`NeuronLayer.neuronKernel(_:)`, one
  /// forward pass and one reverse-time pass, specialised for its surrogate), lanes split over
  /// `threads`; the loss and its gradient are one pass; `trainStep` fuses Adam into the
  /// backward pass. Buffers are reused while T and the batch size stay the same.
  ///
  /// The compiled network shares the layers' parameters: it trains them in its kernels' layout
  /// and a parameter's `value` reads as the latest trained one. A network with a layer that has
  /// no fused form (a user's own layer, `RecurrentLIF`) still compiles and trains, through the
  /// autodiff tape (`isFused` is false; `plan` says which layer).
  ///
  /// ```swift
  /// let net = try Sequential<Float> {
  ///   Linear(784, 256, seed: 1)
  ///   try LIF(beta: 0.9, surrogate: S2NN())
  ///   Linear(256, 10, seed: 2)
  ///   try LIF(beta: 0.9, surrogate: S2NN())
  /// }
  /// let model = try net.compiled(loss: .spikeCountCrossEntropy)
  /// var adam = Adam(parameters: net.parameterVariables, learningRate: 1e-3)
  /// let step = model.trainStep(input: spikes, labels: labels, optimizer: &adam)
  /// ```
  ///
  /// Throws `SomaNNError.invalidSizes` when consecutive `Linear` layers' widths do not chain.
  public func compiled(loss: SpikingLoss) throws(SomaNNError) -> CompiledNetwork<Scalar> {
    try CompiledNetwork(self, loss: loss)
  }
}

/// A `Sequential` lowered onto fused kernels with a loss (see `Sequential.compiled(loss:)`).
public final class CompiledNetwork<Scalar: TensorScalar> {
  /// The network whose parameters this trains.
  public let network: Sequential<Scalar>
  public let loss: SpikingLoss
  /// True when every layer runs on a fused kernel; false when the network trains on the tape.
  public let isFused: Bool
  /// One line per stage: what runs for each layer.
  public let plan: [String]
  /// Parallel parts for the GEMM, event and neuron loops. Run OpenBLAS at one thread beside
  /// this (`BLASInfo.setThreads(1)`) so the two never oversubscribe the cores.
  public var threads = 2
  /// When a `Linear` layer reads spike input as events.
  public var eventPolicy = EventPolicy.automatic
  /// Event layers at least this dense (and at least 128 outputs wide) read events from bit
  /// masks (`soma_sparse_scatter_shared_f32`); sparser ones gather by row lists. Both give the
  /// same sums; tests move this to run one path or the other.
  @usableFromInline var maskScatterDensity = MLPKernels.maskScatterDensity
  /// Whether the mask passes that read packed slabs run output row first
  /// (`soma_sparse_gather_tiles_f32`: the same sums, bit for bit, with one L1 store per row
  /// and block instead of one per event); on by default where the AVX2 kernels run. Tests turn
  /// it off to compare.
  @usableFromInline var gatherTiles = soma_sparse_gather_tiles_available() != 0

  @usableFromInline let stages: [Stage]
  @usableFromInline let linears: [LinearStage]
  @usableFromInline let recurrents: [RecurrentStage]
  /// Weights in the kernels' layout, [in, out] (an event row is a contiguous weight row).
  @usableFromInline var weights: [Tensor<Scalar>]
  /// The layer's weight `version` last imported (nil: never).
  @usableFromInline var importedVersion: [Int?]
  @usableFromInline var workspace: PlanWorkspace<Scalar>?
  /// The whole-network plan for SpyTorch's block on event input, when the layers form one.
  @usableFromInline let cubaBlock: CUBABlock<Scalar>?

  @usableFromInline
  enum Stage {
    case linear(Int)
    case neuron(NeuronKernel<Scalar>)
    case recurrent(Int)
  }

  @usableFromInline
  struct RecurrentStage {
    @usableFromInline let weight: Variable<Scalar>
    @usableFromInline let kernel: RecurrentStageKernel<Scalar>
    @usableFromInline let n: Int
  }

  @usableFromInline
  struct LinearStage {
    @usableFromInline let weight: Variable<Scalar>
    @usableFromInline let bias: Variable<Scalar>?
    @usableFromInline let nIn: Int
    @usableFromInline let nOut: Int
  }

  init(_ network: Sequential<Scalar>, loss: SpikingLoss) throws(SomaNNError) {
    self.network = network
    self.loss = loss
    let ops = network.layers.flatMap(\._ops)
    var stages: [Stage] = []
    var linears: [LinearStage] = []
    var recurrents: [RecurrentStage] = []
    var plan: [String] = []
    var fused = !ops.isEmpty
    var width: Int? = nil
    var sizes: [Int] = []
    // A layer reading `n` inputs must follow a layer of `n` outputs (neurons keep the width).
    func chain(_ n: Int, _ what: String) throws(SomaNNError) {
      sizes.append(n)
      if let width, width != n {
        throw .invalidSizes(
          model: "Sequential", sizes: sizes,
          allowed: "\(what) equal to the width before it (\(width))")
      }
    }
    for op in ops {
      switch op {
      case .linear(let w, let b):
        let (nOut, nIn) = (w.shape[0], w.shape[1])
        try chain(nIn, "each Linear layer's input width")
        width = nOut
        stages.append(.linear(linears.count))
        linears.append(LinearStage(weight: w, bias: b, nIn: nIn, nOut: nOut))
        plan.append("Linear(\(nIn) → \(nOut)\(b == nil ? ", no bias" : "")): GEMM or events")
      case .neuron(let k):
        stages.append(.neuron(k))
        plan.append("\(k.name): fused forward and reverse pass")
      case .recurrent(let v, let k):
        let n = v.shape[0]
        try chain(n, "a RecurrentLIF layer's size")
        width = n
        stages.append(.recurrent(recurrents.count))
        recurrents.append(RecurrentStage(weight: v, kernel: k, n: n))
        plan.append("\(k.name): per-step recurrent GEMM, samples split over threads")
      case .tape(let name):
        fused = false
        // Its output width is unknown here (a convolution, a reshape): the next layer's input
        // is checked when it runs.
        width = nil
        plan.append("\(name): no fused kernel, autodiff tape")
      }
    }
    if ops.isEmpty { plan.append("(empty network): autodiff tape") }
    if !fused { plan.insert("the whole network trains on the autodiff tape", at: 0) }
    self.stages = fused ? stages : []
    self.linears = fused ? linears : []
    self.recurrents = fused ? recurrents : []
    self.isFused = fused
    // Linear (no bias) → CUBA-LIF (zero reset) → Linear (no bias) → leaky readout with the
    // same α and β, max-membrane loss: on event input the whole block runs as one plan.
    var block: CUBABlock<Scalar>? = nil
    // (Its kernels run Float, with hidden spike lists of 16-bit indices.)
    if fused, Scalar.self == Float.self, stages.count == 4, loss == .maxMembraneNLL,
      linears.count == 2, linears[0].nOut <= 1 << 16,
      linears.allSatisfy({ $0.bias == nil }), linears[1].nOut >= 2,
      case .linear = stages[0], case .neuron(let hidden) = stages[1],
      case .cuba(let a, let b, _, .zero) = hidden.kind, let make = hidden.makeCUBABlock,
      case .linear = stages[2], case .neuron(let readout) = stages[3],
      readout.kind == .leaky(beta: b, alpha: a)
    {
      block = make(linears[0].nIn, linears[0].nOut, linears[1].nOut)
      plan.append(
        "on event input (trainStep(events:…)): the four layers and the loss run as one "
          + "event-driven CUBA plan")
    }
    cubaBlock = block
    self.plan = plan + ["loss: \(loss)"]
    weights = Array(repeating: Tensor<Scalar>.zeros([0]), count: self.linears.count)
    importedVersion = Array(repeating: nil, count: self.linears.count)
  }

  deinit {
    // Trained weights not yet read into the layers go there now (a weak reference to self is
    // already nil here, so the pending writes could not run later).
    for (l, layer) in linears.enumerated() where layer.weight.pendingValue != nil {
      layer.weight.pendingValue = nil
      layer.weight._value = weights[l].transposedCopy()
    }
  }

  /// The result of one forward and backward pass.
  public struct Step {
    /// The mean loss over the batch.
    public var loss: Scalar
    /// The scores [batch, classes] the loss reads (spike counts, mean or maximal membrane).
    public var logits: Tensor<Scalar>
    /// Samples whose largest logit is the label (ties go to the lowest class index).
    public var correct: Int
    /// Spikes emitted by each spiking layer (all steps, all samples), in layer order; empty on
    /// the tape path.
    public var spikeCounts: [Int]

    @inlinable
    init(loss: Scalar, logits: Tensor<Scalar>, correct: Int, spikeCounts: [Int]) {
      (self.loss, self.logits, self.correct, self.spikeCounts) = (loss, logits, correct, spikeCounts)
    }
  }

  /// Forward over all steps, the loss, and BPTT: each parameter's gradient is added to its
  /// `grad` (as `backward()` does), for any `Optimizer`. `input` is [T, batch, features].
  @inlinable
  public func lossAndGradients(input: Tensor<Scalar>, labels: [Int]) -> Step {
    lossAndGradients(input: input, labels: labels, gradientReady: nil)
  }

  /// `lossAndGradients(input:labels:)`, calling `gradientReady` with each parameter as soon as
  /// the backward pass has added its whole gradient to its `grad`, the last layers' first: on
  /// the tape each parameter's own, on the fused kernels each layer's (SpyTorch's event block
  /// finishes all at once). Data-parallel training starts reducing gradients there while the
  /// pass goes on.
  @inlinable
  public func lossAndGradients(
    input: Tensor<Scalar>, labels: [Int], gradientReady: ((Variable<Scalar>) -> Void)?
  ) -> Step {
    if !isFused { return tapeStep(input: input, labels: labels, gradientReady: gradientReady) }
    importParameters()
    guard let gradientReady else {
      let step = run(input: input, labels: labels, backward: true, adam: nil)
      addGradients()
      return step
    }
    return run(
      input: input, labels: labels, backward: true, adam: nil,
      stageGradients: { self.addGradients(stage: $0, gradientReady) })
  }

  /// Adds the workspace's gradients of stage `i` (a Linear or recurrent layer) to its
  /// parameters' `grad` and hands each to `ready`.
  @inlinable
  func addGradients(stage i: Int, _ ready: (Variable<Scalar>) -> Void) {
    let ws = workspace!
    switch stages[i] {
    case .linear(let l):
      let layer = linears[l]
      layer.weight.accumulate(ws.gradW[l].transposedCopy())
      ready(layer.weight)
      if let b = layer.bias {
        b.accumulate(ws.gradB[l].copiedContiguous())
        ready(b)
      }
    case .recurrent(let r):
      recurrents[r].weight.accumulate(ws.gradV[r].copiedContiguous())
      ready(recurrents[r].weight)
    case .neuron: break
    }
  }

  /// Adds the workspace's gradients to the parameters' `grad`.
  @inlinable
  func addGradients() {
    let ws = workspace!
    for (l, layer) in linears.enumerated() {
      layer.weight.accumulate(ws.gradW[l].transposedCopy())
      if let b = layer.bias { b.accumulate(ws.gradB[l].copiedContiguous()) }
    }
    for (r, layer) in recurrents.enumerated() {
      layer.weight.accumulate(ws.gradV[r].copiedContiguous())
    }
  }

  /// One training step: forward, loss, BPTT and an update by `optimizer` of the parameters it
  /// holds, which must be the network's (`network.parameterVariables`). Adam without weight
  /// decay is fused into the backward pass; otherwise the gradients are handed to
  /// `optimizer.step()`. Its moments then belong to this compiled network: do not also step the
  /// same `Adam` with gradients from the tape.
  @inlinable
  public func trainStep(input: Tensor<Scalar>, labels: [Int], optimizer: inout Adam<Scalar>)
    -> Step
  {
    guard isFused, optimizer.weightDecay == 0 || optimizer.decoupled else {
      for p in network.parameterVariables { p.zeroGrad() }
      let step = lossAndGradients(input: input, labels: labels)
      optimizer.step()
      return step
    }
    importParameters()
    let adam = beginAdam(&optimizer)
    let step = withExtendedLifetime(optimizer) {
      run(input: input, labels: labels, backward: true, adam: adam)
    }
    exportParameters()
    return step
  }

  /// One training step with any optimizer: the gradients are computed (fused where the network
  /// allows) and `optimizer.step()` applies them.
  @inlinable
  public func trainStep<O: Optimizer>(input: Tensor<Scalar>, labels: [Int], optimizer: inout O)
    -> Step where O.Scalar == Scalar
  {
    for p in network.parameterVariables { p.zeroGrad() }
    let step = lossAndGradients(input: input, labels: labels)
    optimizer.step()
    return step
  }

  /// The loss, logits and correct count without gradients (evaluation).
  @inlinable
  public func evaluate(input: Tensor<Scalar>, labels: [Int]) -> Step {
    if !isFused {
      return noGrad { tapeStep(input: input, labels: labels, backward: false) }
    }
    importParameters()
    return run(input: input, labels: labels, backward: false, adam: nil)
  }

  /// The scores [batch, classes] for `input` [T, batch, features] (no labels needed).
  @inlinable
  public func logits(_ input: Tensor<Scalar>) -> Tensor<Scalar> {
    if !isFused {
      return noGrad { loss.logits(network(Variable(input)).value) }
    }
    importParameters()
    return run(input: input, labels: nil, backward: false, adam: nil).logits
  }

  // MARK: Event input

  /// The events [steps · batch rows, features] as a dense [steps, batch, features] input.
  @usableFromInline
  func denseInput(_ events: SpikeEvents, steps: Int) -> Tensor<Scalar> {
    precondition(
      steps >= 1 && events.rows % steps == 0,
      "CompiledNetwork: \(events.rows) event rows do not split into \(steps) steps")
    return events.dense(Scalar.self).reshaped([steps, events.rows / steps, events.columns])
  }

  @usableFromInline
  func blockBatch(_ events: SpikeEvents, steps: Int) -> Int {
    precondition(
      steps >= 1 && events.rows % steps == 0 && events.rows > 0,
      "CompiledNetwork: \(events.rows) event rows do not split into \(steps) steps")
    precondition(
      events.columns == linears[0].nIn,
      "CompiledNetwork: events of \(events.columns) columns for a first layer of "
        + "\(linears[0].nIn) inputs")
    return events.rows / steps
  }

  /// `trainStep(input:labels:optimizer:)` for spike input given as events (rows ordered step by
  /// step, then sample: row t·batch + b). SpyTorch's block runs its event plan here; other
  /// networks read the events as a dense input.
  @inlinable
  public func trainStep(
    events: SpikeEvents, steps: Int, labels: [Int], optimizer: inout Adam<Scalar>
  ) -> Step {
    if optimizer.weightDecay != 0 && !optimizer.decoupled {
      // L2 decay changes the gradient itself: the gradients first, then Adam's own step.
      for p in network.parameterVariables { p.zeroGrad() }
      let step = lossAndGradients(events: events, steps: steps, labels: labels)
      optimizer.step()
      return step
    }
    guard let block = cubaBlock else {
      guard readsEventsDirectly(events, steps: steps) else {
        return trainStep(
          input: denseInput(events, steps: steps), labels: labels, optimizer: &optimizer)
      }
      importParameters()
      let adam = beginAdam(&optimizer)
      let step = withExtendedLifetime(optimizer) {
        runEvents(events, steps: steps, labels: labels, backward: true, adam: adam)
      }
      exportParameters()
      return step
    }
    let (r, w1, w2) = blockStep(block, events: events, steps: steps, labels: labels)
    let adam = beginAdam(&optimizer)
    for (slot, (v, g)) in [(w1, r.gradW1), (w2, r.gradW2)].enumerated() {
      v.materialize()
      v.version &+= 1
      let n = g.count
      let parts = n >= 65_536 ? Swift.max(1, threads) : 1
      let p = v._value.withUnsafeMutableBufferPointer { $0.baseAddress! }
      g.withUnsafeBufferPointer { gp in
        let gq = gp.baseAddress!
        parallel(parts) { part in
          adam.apply(index: slot, param: p, grad: gq, from: part * n / parts, to: (part + 1) * n / parts)
        }
      }
    }
    return Step(loss: r.loss, logits: r.logits, correct: r.correct, spikeCounts: [r.hiddenSpikes])
  }

  /// The loss, logits and correct count for event input, without gradients.
  @inlinable
  public func evaluate(events: SpikeEvents, steps: Int, labels: [Int]) -> Step {
    if cubaBlock != nil {
      // The block's forward gives the max-membrane logits; its loss is their cross-entropy.
      let lg = logits(events: events, steps: steps)
      return noGrad {
        let l = crossEntropy(logits: Variable(lg), labels: labels)
        return Step(
          loss: l.value.scalar, logits: lg, correct: countCorrect(lg, labels), spikeCounts: [])
      }
    }
    guard readsEventsDirectly(events, steps: steps) else {
      return evaluate(input: denseInput(events, steps: steps), labels: labels)
    }
    importParameters()
    return runEvents(events, steps: steps, labels: labels, backward: false, adam: nil)
  }

  /// The fused step on event input fed to the first Linear layer.
  @inlinable
  func runEvents(
    _ events: SpikeEvents, steps: Int, labels: [Int]?, backward: Bool, adam: AdamStep<Scalar>?,
    stageGradients: ((Int) -> Void)? = nil
  ) -> Step {
    run(
      input: Tensor.zeros([0]), labels: labels, backward: backward, adam: adam, events: events,
      eventSteps: steps, stageGradients: stageGradients)
  }

  /// SpyTorch's block plan on `events`: its result and the two weights it read.
  @inlinable
  func blockStep(_ block: CUBABlock<Scalar>, events: SpikeEvents, steps: Int, labels: [Int])
    -> (CUBABlock<Scalar>.Result, Variable<Scalar>, Variable<Scalar>)
  {
    let batch = blockBatch(events, steps: steps)
    let (w1, w2) = (linears[0].weight, linears[1].weight)
    return (
      block.step(events, steps, batch, labels, w1.value, w2.value, Swift.max(1, threads)), w1, w2
    )
  }

  /// True when the first Linear layer reads `events` as they are (else they are made dense).
  @inlinable
  func readsEventsDirectly(_ events: SpikeEvents, steps: Int) -> Bool {
    guard isFused, eventPolicy != .never, case .linear(let l) = stages.first else { return false }
    precondition(
      steps >= 1 && events.rows % steps == 0 && events.rows > 0,
      "CompiledNetwork: \(events.rows) event rows do not split into \(steps) steps")
    precondition(
      events.columns == linears[l].nIn,
      "CompiledNetwork: events of \(events.columns) columns for a first layer of "
        + "\(linears[l].nIn) inputs")
    return true
  }

  /// `lossAndGradients(input:labels:)` for event input (see `trainStep(events:…)`).
  @inlinable
  public func lossAndGradients(events: SpikeEvents, steps: Int, labels: [Int]) -> Step {
    lossAndGradients(events: events, steps: steps, labels: labels, gradientReady: nil)
  }

  /// `lossAndGradients(events:steps:labels:)` with `gradientReady` as in
  /// `lossAndGradients(input:labels:gradientReady:)`.
  @inlinable
  public func lossAndGradients(
    events: SpikeEvents, steps: Int, labels: [Int],
    gradientReady: ((Variable<Scalar>) -> Void)?
  ) -> Step {
    guard let block = cubaBlock else {
      guard readsEventsDirectly(events, steps: steps) else {
        return lossAndGradients(
          input: denseInput(events, steps: steps), labels: labels, gradientReady: gradientReady)
      }
      importParameters()
      guard let gradientReady else {
        let step = runEvents(events, steps: steps, labels: labels, backward: true, adam: nil)
        addGradients()
        return step
      }
      return runEvents(
        events, steps: steps, labels: labels, backward: true, adam: nil,
        stageGradients: { self.addGradients(stage: $0, gradientReady) })
    }
    let (r, w1, w2) = blockStep(block, events: events, steps: steps, labels: labels)
    w1.accumulate(r.gradW1)
    w2.accumulate(r.gradW2)
    gradientReady?(w2)
    gradientReady?(w1)
    return Step(loss: r.loss, logits: r.logits, correct: r.correct, spikeCounts: [r.hiddenSpikes])
  }

  /// The scores [batch, classes] for event input.
  @inlinable
  public func logits(events: SpikeEvents, steps: Int) -> Tensor<Scalar> {
    guard let block = cubaBlock else {
      guard readsEventsDirectly(events, steps: steps) else {
        return logits(denseInput(events, steps: steps))
      }
      importParameters()
      return runEvents(events, steps: steps, labels: nil, backward: false, adam: nil).logits
    }
    let batch = blockBatch(events, steps: steps)
    return block.logits(
      events, steps, batch, linears[0].weight.value, linears[1].weight.value, Swift.max(1, threads))
  }

  // MARK: Parameters

  /// Brings the kernels' weights up to date with the layers (after a checkpoint load, an
  /// optimizer step outside, or the first use).
  @inlinable
  func importParameters() {
    for (l, layer) in linears.enumerated() where importedVersion[l] != layer.weight.version {
      weights[l] = layer.weight.value.transposedCopy().withLargePageStorage()
      importedVersion[l] = layer.weight.version
    }
  }

  /// Leaves a pending write in each trained weight: its next read transposes the kernels'
  /// copy into it.
  @inlinable
  func exportParameters() {
    for (l, layer) in linears.enumerated() {
      layer.weight.pendingValue = { [weak self] in self?.weights[l].transposedCopy() }
    }
  }

  @inlinable
  func beginAdam(_ adam: inout Adam<Scalar>) -> AdamStep<Scalar> {
    // Moment slots by parameter identity: the plan's weights, then its biases.
    func slot(_ v: Variable<Scalar>) -> Int {
      guard let k = adam.parameters.firstIndex(where: { $0 === v }) else {
        preconditionFailure(
          "CompiledNetwork.trainStep: the optimizer does not hold the parameter of shape "
            + "\(v.shape); build it with network.parameterVariables")
      }
      return k
    }
    let order =
      linears.map { slot($0.weight) } + linears.compactMap { $0.bias.map(slot) }
      + recurrents.map { slot($0.weight) }
    for k in order where !adam.m[k].hasLargePageStorage {
      adam.m[k] = adam.m[k].withLargePageStorage()
      adam.v[k] = adam.v[k].withLargePageStorage()
    }
    adam._stepCount += 1
    let t = Double(adam._stepCount)
    let c1 = 1 - Double.pow(adam.beta1, t)
    let c2 = 1 - Double.pow(adam.beta2, t)
    let mp = order.map { k in adam.m[k].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    let vp = order.map { k in adam.v[k].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    let shrink = adam.decoupled ? Scalar(1 - adam.learningRate * adam.weightDecay) : 1
    return AdamStep(
      lrC1: Scalar(adam.learningRate / c1), b1: Scalar(adam.beta1), b2: Scalar(adam.beta2),
      ic2: Scalar(1 / c2), eps: Scalar(adam.epsilon), shrink: shrink, m: mp, v: vp)
  }

  // MARK: The tape path

  @usableFromInline
  func tapeStep(
    input: Tensor<Scalar>, labels: [Int], backward: Bool = true,
    gradientReady: ((Variable<Scalar>) -> Void)? = nil
  ) -> Step {
    let out = network(Variable(input))
    precondition(
      out.rank == 3,
      "CompiledNetwork: the network's output must be [T, batch, classes], got \(out.shape)")
    let l = loss(out, labels: labels)
    if backward && l.requiresGrad { l.backward(seed: nil, gradientReady: gradientReady) }
    let logits = loss.logits(out.value)
    return Step(
      loss: l.value.scalar, logits: logits, correct: countCorrect(logits, labels), spikeCounts: [])
  }

  @usableFromInline
  func countCorrect(_ logits: Tensor<Scalar>, _ labels: [Int]) -> Int {
    let c = logits.shape[1]
    let lg = logits.contiguous()
    return lg.withUnsafeBufferPointer { p in
      var correct = 0
      for (b, y) in labels.enumerated() {
        var best = 0
        for j in 1..<Swift.max(c, 1) where p[b * c + j] > p[b * c + best] { best = j }
        if best == y { correct += 1 }
      }
      return correct
    }
  }
}

// MARK: The fused step

extension CompiledNetwork {
  /// Forward, loss (when `labels` are given) and, with `backward`, BPTT into the workspace's
  /// gradients, or straight into the parameters through `adam`. `stageGradients(i)` is called
  /// as soon as stage i's parameter gradients are complete in the workspace.
  @inlinable
  func run(
    input: Tensor<Scalar>, labels: [Int]?, backward: Bool, adam: AdamStep<Scalar>?,
    events: SpikeEvents? = nil, eventSteps: Int = 0, stageGradients: ((Int) -> Void)? = nil
  ) -> Step {
    typealias T = Scalar
    // Event input feeds the first Linear layer's event pass directly (`input` is unused).
    let steps: Int
    let batch: Int
    let inWidth: Int
    if let events {
      (steps, batch, inWidth) = (eventSteps, events.rows / eventSteps, events.columns)
    } else {
      precondition(
        input.rank == 3, "CompiledNetwork: input must be [T, batch, features], got \(input.shape)")
      (steps, batch, inWidth) = (input.shape[0], input.shape[1], input.shape[2])
    }
    precondition(
      steps >= 1 && batch >= 1, "CompiledNetwork: T and the batch must be ≥ 1, got \(input.shape)")
    if case .linear(let l) = stages.first {
      precondition(
        inWidth == linears[l].nIn,
        "CompiledNetwork: input shape \(input.shape) does not match the first Linear layer's "
          + "\(linears[l].nIn) inputs")
    }
    if let labels {
      precondition(
        labels.count == batch, "CompiledNetwork: \(labels.count) labels for a batch of \(batch)")
    }
    let parts = Swift.max(1, threads)
    if workspace == nil
      || !workspace!.fits(steps: steps, batch: batch, inWidth: inWidth, parts: parts)
    {
      workspace = PlanWorkspace(
        steps: steps, batch: batch, inWidth: inWidth, parts: parts, stages: stages,
        linears: linears, recurrents: recurrents)
    }
    let ws = workspace!
    let rows = steps * batch
    let classes = ws.widths.last!
    if let labels {
      for y in labels {
        precondition(y >= 0 && y < classes, "CompiledNetwork: label \(y) outside 0..<\(classes)")
      }
    }
    if adam != nil {
      // Unique, contiguous parameters: the update writes through their pointers.
      for l in weights.indices { weights[l].withUnsafeMutableBufferPointer { _ in } }
      for l in linears { l.bias?._value.withUnsafeMutableBufferPointer { _ in } }
    }
    let vs = adam == nil ? recurrents.map { $0.weight.value.contiguous() } : []
    let vP = recurrents.indices.map { r in
      adam != nil
        ? recurrents[r].weight._value.withUnsafeMutableBufferPointer { $0.baseAddress! }
        : UnsafeMutablePointer(mutating: vs[r].withUnsafeBufferPointer { $0.baseAddress! })
    }
    let recurrentSlot0 = linears.count + linears.filter { $0.bias != nil }.count
    let x0 = events == nil ? input.contiguous() : Tensor<Scalar>.zeros([1])
    // Read-only biases for the passes without an update (with one, they are written in place).
    let bs = adam == nil ? linears.map { $0.bias?._value.contiguous() } : []
    return withExtendedLifetime((x0, bs, vs)) {
      let xP = UnsafeMutablePointer(mutating: x0.withUnsafeBufferPointer { $0.baseAddress! })
      let wP = weights.indices.map { l in
        UnsafeMutablePointer(mutating: weights[l].withUnsafeBufferPointer { $0.baseAddress! })
      }
      let bP: [UnsafeMutablePointer<T>?] = linears.indices.map { l in
        guard let b = linears[l].bias else { return nil }
        return adam != nil
          ? b._value.withUnsafeMutableBufferPointer { $0.baseAddress! }
          : UnsafeMutablePointer(mutating: bs[l]!.withUnsafeBufferPointer { $0.baseAddress! })
      }
      var spikeCounts: [Int] = []

      // Forward.
      for (i, stage) in stages.enumerated() {
        let x = i == 0 ? xP : ws.out[i - 1]
        let inputIsSpikes = i == 0 || ws.emitsSpikes[i - 1]
        switch stage {
        case .linear(let l):
          if i == 0, let events { loadEvents(events, ws: ws) }
          linearForward(
            l, x: x, inputMayBeSpikes: inputIsSpikes, weight: wP[l], bias: bP[l], out: ws.out[i],
            ws: ws, given: i == 0 && events != nil)
        case .neuron(let k):
          let lanes = batch * ws.widths[i]
          let lp = Swift.max(1, Swift.min(parts, lanes / 16))
          let (out, s0, scratch, counts) = (
            ws.out[i], ws.saved0[i], ws.scratch, ws.partCounts
          )
          let spikes = k.emitsSpikes
          parallel(lp) { part in
            let k0 = part * lanes / lp
            let k1 = (part + 1) * lanes / lp
            k.forward(
              NeuronPass(
                steps: steps, lanes: lanes, k0: k0, k1: k1, input: x, output: out, saved0: s0,
                scratch: scratch))
            var c = 0
            if spikes {
              for t in 0..<steps { c += MLPKernels.countNonzero(out + t * lanes + k0, k1 - k0) }
            }
            counts[part] = c
          }
          if spikes { spikeCounts.append((0..<lp).reduce(0) { $0 + counts[$1] }) }
        case .recurrent(let r):
          let n = recurrents[r].n
          let k = recurrents[r].kernel
          let bp = Swift.max(1, Swift.min(parts, batch / 4))
          let (out, h, scratch, counts, v) = (ws.out[i], ws.saved0[i], ws.scratch, ws.partCounts, vP[r])
          parallel(bp) { part in
            let b0 = part * batch / bp
            let b1 = (part + 1) * batch / bp
            k.forward(steps, batch, n, b0, b1, x, v, h, out, scratch)
            var c = 0
            for t in 0..<steps {
              c += MLPKernels.countNonzero(out + (t * batch + b0) * n, (b1 - b0) * n)
            }
            counts[part] = c
          }
          spikeCounts.append((0..<bp).reduce(0) { $0 + counts[$1] })
        }
      }

      // Logits and loss.
      let (lossValue, correct) = lossPass(
        output: ws.out[stages.count - 1], labels: labels, ws: ws, steps: steps, batch: batch,
        classes: classes)
      let step = Step(
        loss: lossValue, logits: ws.logits, correct: correct, spikeCounts: spikeCounts)
      guard backward, labels != nil else { return step }

      // Backward: g holds dL/d(output of stage i) on entering stage i.
      var g = ws.gradOutA
      var gs = ws.gradOutB
      var i = stages.count - 1
      while i >= 0 {
        switch stages[i] {
        case .neuron(let k):
          let lanes = batch * ws.widths[i]
          let lp = Swift.max(1, Swift.min(parts, lanes / 16))
          let (s0, scratch, grad) = (ws.saved0[i], ws.scratch, g)
          parallel(lp) { part in
            k.backward(
              NeuronPass(
                steps: steps, lanes: lanes, k0: part * lanes / lp, k1: (part + 1) * lanes / lp,
                input: grad, output: grad, saved0: s0, scratch: scratch))
          }
        case .linear(let l):
          let x = i == 0 ? xP : ws.out[i - 1]
          linearBackward(
            l, stage: i, x: x, gradOut: g, gradIn: i > 0 ? gs : nil, weight: wP[l], bias: bP[l],
            adam: adam, ws: ws, rows: rows)
          stageGradients?(i)
          if i > 0 { swap(&g, &gs) }
        case .recurrent(let r):
          let n = recurrents[r].n
          let k = recurrents[r].kernel
          let bp = Swift.max(1, Swift.min(parts, batch / 4))
          let (h, scratch, grad, v, out, dV) = (
            ws.saved0[i]!, ws.scratch, g, vP[r], ws.out[i], ws.gradVPointer[r]
          )
          parallel(bp) { part in
            k.backward(steps, batch, n, part * batch / bp, (part + 1) * batch / bp, h, v, grad, scratch)
          }
          let ip = Swift.max(1, Swift.min(parts, n / 16))
          parallel(ip) { part in
            RecurrentLIFKernel.weightGradient(
              steps: steps, batch: batch, n: n, i0: part * n / ip, i1: (part + 1) * n / ip,
              gradH: grad, spikes: out, into: dV)
          }
          adam?.apply(index: recurrentSlot0 + r, param: v, grad: dV, from: 0, to: n * n)
          stageGradients?(i)
        }
        i -= 1
      }
      return step
    }
  }

  /// out = x · W (+ b) for all rows: events (mask scatter or row-list gather) or GEMM.
  @inlinable
  func linearForward(
    _ l: Int, x: UnsafeMutablePointer<Scalar>, inputMayBeSpikes: Bool,
    weight w: UnsafeMutablePointer<Scalar>, bias: UnsafeMutablePointer<Scalar>?,
    out cur: UnsafeMutablePointer<Scalar>, ws: PlanWorkspace<Scalar>, given: Bool = false
  ) {
    let (nIn, nOut) = (linears[l].nIn, linears[l].nOut)
    let rows = ws.rows
    let parts = ws.parts
    if given {
      (ws.usesEvents[l], ws.usesMasks[l]) = (true, false)
    } else {
      ws.usesEvents[l] = inputMayBeSpikes && extractEvents(x, linear: l, rows: rows, ws: ws)
    }
    let rowParts = Swift.max(1, Swift.min(parts, rows / 8))
    if ws.usesMasks[l] {
      let (bits, words) = (ws.colBits, ws.rowsPadded / 16)
      let initial = bias.map { cast(UnsafePointer($0), Float.self) }
      let wf = cast(UnsafePointer(w), Float.self)
      let out = cast(cur, Float.self)
      let packed = ws.packForScatter(wf, rows: nIn, width: nOut, outputRows: rows)
      if let packed, gatherTiles {
        let (mask, padded) = (ws.rowMask[l], ws.rowsPadded)
        parallel(parts) { part in
          soma_sparse_gather_tiles_f32(
            mask, 1, padded, nIn, 0, rows, part, parts, packed, nOut, initial, out, nil, nil,
            nil, nil)
        }
      } else {
        parallel(parts) { part in
          soma_sparse_scatter_shared_f32(
            bits, 1, words, nIn, 0, rows, part, parts, nil, wf, packed, nOut, initial, out, 0,
            nil, nil, nil, nil)
        }
      }
    } else if ws.usesEvents[l] {
      let (b, e, list) = (ws.begin[l], ws.end[l], ws.list[l])
      parallel(rowParts) { part in
        MLPKernels.gather(
          begin: b, end: e, list: list, from: part * rows / rowParts,
          to: (part + 1) * rows / rowParts, source: UnsafePointer(w), width: nOut,
          initial: bias.map { UnsafePointer($0) }, into: cur)
      }
    } else {
      parallel(rowParts) { part in
        let r0 = part * rows / rowParts
        let r1 = (part + 1) * rows / rowParts
        guard r1 > r0 else { return }
        Scalar._gemm(
          transA: false, transB: false, m: r1 - r0, n: nOut, k: nIn, alpha: 1, a: x + r0 * nIn,
          lda: nIn, b: w, ldb: nOut, beta: 0, c: cur + r0 * nOut, ldc: nOut)
        if let bias {
          for r in r0..<r1 {
            let row = cur + r * nOut
            for j in 0..<nOut { row[j] += bias[j] }
          }
        }
      }
    }
  }

  /// dW, db and (when `gradIn` is given) dL/dx = dI · Wᵀ for Linear stage `l`; with `adam`,
  /// the parameters are updated (after dL/dx used the old weight).
  @inlinable
  func linearBackward(
    _ l: Int, stage: Int, x: UnsafeMutablePointer<Scalar>, gradOut: UnsafeMutablePointer<Scalar>,
    gradIn: UnsafeMutablePointer<Scalar>?, weight w: UnsafeMutablePointer<Scalar>,
    bias: UnsafeMutablePointer<Scalar>?, adam: AdamStep<Scalar>?, ws: PlanWorkspace<Scalar>,
    rows: Int
  ) {
    typealias T = Scalar
    let (nIn, nOut) = (linears[l].nIn, linears[l].nOut)
    let parts = ws.parts
    let dW = ws.gradWPointer[l]
    let gradOutC = UnsafePointer(gradOut)
    // Adam slots: weights first, then the biases in layer order.
    let weightSlot = l
    let biasSlot = linears.count + linears[0..<l].filter { $0.bias != nil }.count
    // Adam fuses into the weight-gradient gather when nothing later needs the old weight (no
    // dL/dx to form).
    let fusedEvents = adam != nil && T.self == Float.self && gradIn == nil
    if fusedEvents, let adam, adam.shrink != 1, ws.usesEvents[l] {
      // AdamW's decay first; the gather then applies the Adam step itself.
      let n = nIn * nOut
      let p = Swift.max(1, Swift.min(parts, n / 16_384))
      parallel(p) { part in adam.decay(w, from: part * n / p, to: (part + 1) * n / p) }
    }
    if ws.usesMasks[l] {
      let (mask, padded) = (ws.rowMask[l], ws.rowsPadded)
      let adamConstants = adam?.constants
      let (mW, vW) = (adam?.m[weightSlot], adam?.v[weightSlot])
      let src = cast(gradOutC, Float.self)
      let packed = ws.packForScatter(src, rows: rows, width: nOut, outputRows: nIn)
      if let packed, gatherTiles {
        // Output row i (an input feature) reads the batch rows where input i spiked: the
        // forward's row masks, transposed.
        let bits = ws.colBits
        let words = padded / 16
        let blocks = (nIn + 15) / 16
        let blockParts = Swift.max(1, Swift.min(parts, blocks / 4))
        parallel(blockParts) { part in
          soma_sparse_transpose_masks(
            mask, nIn, padded, part * blocks / blockParts, (part + 1) * blocks / blockParts, 0,
            words, bits)
        }
        parallel(parts) { part in
          if fusedEvents, var c = adamConstants, let mW, let vW {
            soma_sparse_gather_tiles_f32(
              bits, words, 1, rows, 0, nIn, part, parts, packed, nOut, nil, nil, &c,
              cast(w, Float.self), cast(mW, Float.self), cast(vW, Float.self))
          } else {
            soma_sparse_gather_tiles_f32(
              bits, words, 1, rows, 0, nIn, part, parts, packed, nOut, nil, cast(dW, Float.self),
              nil, nil, nil, nil)
          }
        }
      } else {
        parallel(parts) { part in
          if fusedEvents, var c = adamConstants, let mW, let vW {
            soma_sparse_scatter_shared_f32(
              mask, padded, 1, rows, 0, nIn, part, parts, nil, src, packed, nOut, nil, nil, 0, &c,
              cast(w, Float.self), cast(mW, Float.self), cast(vW, Float.self))
          } else {
            soma_sparse_scatter_shared_f32(
              mask, padded, 1, rows, 0, nIn, part, parts, nil, src, packed, nOut, nil,
              cast(dW, Float.self), 0, nil, nil, nil, nil)
          }
        }
      }
    } else if ws.usesEvents[l] {
      let (mask, bits, padded) = (ws.rowMask[l], ws.colBits, ws.rowsPadded)
      let blocks = (nIn + 15) / 16
      let blockParts = Swift.max(1, Swift.min(parts, blocks / 4))
      parallel(blockParts) { part in
        soma_sparse_transpose_masks(
          mask, nIn, padded, part * blocks / blockParts, (part + 1) * blocks / blockParts, 0,
          padded / 16, bits)
      }
      let colParts = Swift.max(1, Swift.min(parts, nIn / 8))
      // Each part's columns hold at most all the events: a region of that size per part.
      let region = ws.eventCount[l] + 16
      ws.reserveColList(colParts * region)
      let (cl, cb, ce) = (ws.colList, ws.colBegin, ws.colEnd)
      let adamConstants = adam?.constants
      let (mW, vW) = (adam?.m[weightSlot], adam?.v[weightSlot])
      parallel(colParts) { part in
        let c0 = part * nIn / colParts
        let c1 = (part + 1) * nIn / colParts
        soma_sparse_bits_to_lists(bits, padded, c0, c1, cl, part * region, cb, ce)
        if fusedEvents, var c = adamConstants, let mW, let vW {
          soma_sparse_gather_adam_f32(
            cb, ce, cl, c0, c1, cast(gradOutC, Float.self), nOut, nil, &c, cast(w, Float.self),
            cast(mW, Float.self), cast(vW, Float.self))
        } else {
          MLPKernels.gather(
            begin: cb, end: ce, list: cl, from: c0, to: c1, source: gradOutC, width: nOut,
            initial: nil, into: dW)
        }
      }
    } else {
      let inParts = Swift.max(1, Swift.min(parts, nIn / 16))
      parallel(inParts) { part in
        let i0 = part * nIn / inParts
        let i1 = (part + 1) * nIn / inParts
        guard i1 > i0 else { return }
        T._gemm(
          transA: true, transB: false, m: i1 - i0, n: nOut, k: rows, alpha: 1, a: x + i0,
          lda: nIn, b: gradOutC, ldb: nOut, beta: 0, c: dW + i0 * nOut, ldc: nOut)
      }
    }
    if let bias {
      let db = ws.gradBPointer[l]
      let jParts = Swift.max(1, Swift.min(parts, nOut / 64))
      parallel(jParts) { part in
        MLPKernels.columnSums(
          gradOutC, rows: rows, width: nOut, from: part * nOut / jParts,
          to: (part + 1) * nOut / jParts, into: db)
      }
      adam?.apply(index: biasSlot, param: bias, grad: db, from: 0, to: nOut)
    }
    if let gradIn {
      let rowParts = Swift.max(1, Swift.min(parts, rows / 32))
      if T.self == Float.self && nOut <= MLPKernels.narrowProductWidth {
        // A GEMM this thin (k = nOut) runs far below BLAS's peak: Wᵀ rows as axpys.
        let wt = ws.narrowTransposed
        for i in 0..<nIn {
          for j in 0..<nOut { wt[j * nIn + i] = w[i * nOut + j] }
        }
        parallel(rowParts) { part in
          soma_narrow_product_f32(
            cast(gradOutC, Float.self), part * rows / rowParts, (part + 1) * rows / rowParts,
            nOut, cast(UnsafePointer(wt), Float.self), nIn, cast(gradIn, Float.self))
        }
      } else {
        parallel(rowParts) { part in
          let r0 = part * rows / rowParts
          let r1 = (part + 1) * rows / rowParts
          guard r1 > r0 else { return }
          T._gemm(
            transA: false, transB: true, m: r1 - r0, n: nIn, k: nOut, alpha: 1,
            a: gradOutC + r0 * nOut, lda: nOut, b: w, ldb: nOut, beta: 0, c: gradIn + r0 * nIn,
            ldc: nIn)
        }
      }
    }
    if let adam, !(ws.usesEvents[l] && fusedEvents) {
      let n = nIn * nOut
      let p = Swift.max(1, Swift.min(parts, n / 16_384))
      parallel(p) { part in
        adam.apply(
          index: weightSlot, param: w, grad: dW, from: part * n / p, to: (part + 1) * n / p)
      }
    }
  }

  /// The first Linear layer's row lists and row masks straight from event input.
  @inlinable
  func loadEvents(_ events: SpikeEvents, ws: PlanWorkspace<Scalar>) {
    ws.reserveList(0, events.count + 16)
    ws.eventCount[0] = events.count
    let (list, begin, end, mask) = (ws.list[0], ws.begin[0], ws.end[0], ws.rowMask[0])
    let padded = ws.rowsPadded
    let blocks = (events.columns + 15) / 16
    mask.update(repeating: 0, count: blocks * padded)
    events.rowStart.withUnsafeBufferPointer { rs in
      events.indices.withUnsafeBufferPointer { ix in
        for r in 0..<events.rows {
          let (a, b) = (Int(rs[r]), Int(rs[r + 1]))
          (begin[r], end[r]) = (Int32(a), Int32(b))
          for e in a..<b {
            let i = Int(ix[e])
            list[e] = Int32(i)
            mask[(i >> 4) * padded + r] |= UInt16(1) << UInt16(i & 15)
          }
        }
      }
    }
  }

  /// Builds Linear stage `l`'s input events from `x` [rows, nIn] when the policy allows, and
  /// says whether the layer should use them (only 0/1 input can: events carry no values).
  @inlinable
  func extractEvents(
    _ x: UnsafePointer<Scalar>, linear l: Int, rows: Int, ws: PlanWorkspace<Scalar>
  ) -> Bool {
    ws.usesMasks[l] = false
    if eventPolicy == .never { return false }
    let n = linears[l].nIn
    let nOut = linears[l].nOut
    let parts = Swift.max(1, Swift.min(ws.parts, rows / 8))
    let isFloat = Scalar.self == Float.self
    // Without C kernels the lists are written in the same pass as the count: room for all.
    if !isFloat { ws.reserveList(l, rows * n + 16 * parts) }
    let (list, b, e, counts, flags) = (ws.list[l], ws.begin[l], ws.end[l], ws.partCounts, ws.partFlags)
    let (mask, padded) = (ws.rowMask[l], ws.rowsPadded)
    let bits = isFloat && nOut >= 128 ? ws.colBits : nil
    parallel(parts) { part in
      let r0 = MLPKernels.split16(part, of: parts, count: rows)
      let r1 = MLPKernels.split16(part + 1, of: parts, count: rows)
      flags[part] = 1
      if isFloat {
        counts[part] = soma_sparse_masks_f32(
          cast(x, Float.self), r0, r1, n, flags + part, mask, padded)
        if let bits, r1 > r0 {
          soma_sparse_transpose_masks(
            mask, n, padded, 0, (n + 15) / 16, r0 / 16, (r1 + 15) / 16, bits)
        }
      } else {
        counts[part] = MLPKernels.events(
          x, rows: r0, r1, width: n, list: list, offset: r0 * n + part * 16, begin: b, end: e,
          binary: flags + part, rowMask: mask, rowsPadded: padded)
      }
    }
    var total = 0
    for part in 0..<parts {
      total += counts[part]
      if flags[part] == 0 { return false }
    }
    ws.eventCount[l] = total
    let density = Double(total) / Double(Swift.max(1, rows * n))
    guard eventPolicy.useEvents(density: density, outputs: nOut) else { return false }
    guard isFloat else { return true }
    if nOut >= 128 && density >= maskScatterDensity {
      ws.usesMasks[l] = true
      return true
    }
    // Each part writes its rows' lists into its own region: its events plus 16 spare slots.
    let offsets = ws.partOffsets
    offsets[0] = 0
    for part in 0..<parts { offsets[part + 1] = offsets[part] + counts[part] + 16 }
    ws.reserveList(l, offsets[parts])
    let rowList = ws.list[l]
    parallel(parts) { part in
      let r0 = MLPKernels.split16(part, of: parts, count: rows)
      let r1 = MLPKernels.split16(part + 1, of: parts, count: rows)
      _ = soma_sparse_lists_from_masks(mask, padded, n, r0, r1, rowList, offsets[part], b, e)
    }
    return true
  }

  /// The logits of the final output [steps, batch, classes], the loss and dL/d(output) into
  /// `ws.gradOutA` (when labels are given); returns the loss and the correct count.
  @inlinable
  func lossPass(
    output o: UnsafeMutablePointer<Scalar>, labels: [Int]?, ws: PlanWorkspace<Scalar>, steps: Int,
    batch: Int, classes c: Int
  ) -> (Scalar, Int) {
    typealias T = Scalar
    let lg = ws.logitsPointer
    let dl = ws.dlogits
    let arg = ws.argmaxStep
    let g = ws.gradOutA
    let loss = self.loss
    let lanes = batch * c
    // Logits.
    switch loss {
    case .spikeCountCrossEntropy, .mseCount, .meanMembraneCrossEntropy:
      for k in 0..<lanes { lg[k] = 0 }
      for t in 0..<steps {
        let ot = o + t * lanes
        for k in 0..<lanes { lg[k] += ot[k] }
      }
      if loss == .meanMembraneCrossEntropy {
        let inv = 1 / T(steps)
        for k in 0..<lanes { lg[k] *= inv }
      }
    case .maxMembraneNLL:
      for k in 0..<lanes {
        lg[k] = o[k]
        arg[k] = 0
      }
      for t in 1..<Swift.max(steps, 1) {
        let ot = o + t * lanes
        for k in 0..<lanes where ot[k] > lg[k] {
          lg[k] = ot[k]
          arg[k] = Int32(t)
        }
      }
    }
    guard let labels else { return (0, 0) }
    var total: T = 0
    var correct = 0
    for b in 0..<batch {
      let y = labels[b]
      let row = lg + b * c
      var best = 0
      for j in 1..<Swift.max(c, 1) where row[j] > row[best] { best = j }
      if best == y { correct += 1 }
      let d = dl + b * c
      switch loss {
      case .mseCount(let on, let off):
        let onT = T((Double(steps) * on).rounded(.towardZero))
        let offT = T((Double(steps) * off).rounded(.towardZero))
        let scale = 2 / (T(batch * c) * T(steps))
        for j in 0..<c {
          let diff = row[j] - (j == y ? onT : offT)
          total += diff * diff
          d[j] = diff * scale
        }
      default:
        let m = row[best]
        var z: T = 0
        for j in 0..<c {
          let e = T.exp(row[j] - m)
          d[j] = e
          z += e
        }
        total -= row[y] - (m + T.log(z))
        let scale = 1 / (z * T(batch))
        for j in 0..<c { d[j] *= scale }
        d[y] -= 1 / T(batch)
      }
    }
    let lossValue: T
    if case .mseCount = loss {
      lossValue = total / (T(batch * c) * T(steps))
    } else {
      lossValue = total / T(batch)
    }
    // dL/d(output) for every step.
    switch loss {
    case .spikeCountCrossEntropy, .mseCount:
      for t in 0..<steps { (g + t * lanes).update(from: dl, count: lanes) }
    case .meanMembraneCrossEntropy:
      let inv = 1 / T(steps)
      for t in 0..<steps {
        let gt = g + t * lanes
        for k in 0..<lanes { gt[k] = dl[k] * inv }
      }
    case .maxMembraneNLL:
      for t in 0..<steps {
        let gt = g + t * lanes
        for k in 0..<lanes { gt[k] = Int(arg[k]) == t ? dl[k] : 0 }
      }
    }
    return (lossValue, correct)
  }
}

/// Buffers of one compiled network's step, kept while T, the batch size, the input width and
/// the thread count stay the same.
@usableFromInline
final class PlanWorkspace<T: TensorScalar> {
  @usableFromInline let steps: Int
  @usableFromInline let batch: Int
  @usableFromInline let inWidth: Int
  @usableFromInline let parts: Int
  @usableFromInline let rows: Int
  /// Output width of each stage.
  @usableFromInline let widths: [Int]
  @usableFromInline let emitsSpikes: [Bool]
  /// Output of each stage, [rows, width] (a Linear stage feeding a neuron writes a shared
  /// buffer: the neuron's backward pass never reads its input).
  @usableFromInline let out: [UnsafeMutablePointer<T>]
  @usableFromInline let saved0: [UnsafeMutablePointer<T>?]
  @usableFromInline let scratch: UnsafeMutablePointer<T>
  /// Two [rows, widest] gradient buffers, swapped at each Linear stage.
  @usableFromInline let gradOutA: UnsafeMutablePointer<T>
  @usableFromInline let gradOutB: UnsafeMutablePointer<T>
  @usableFromInline let dlogits: UnsafeMutablePointer<T>
  @usableFromInline let argmaxStep: UnsafeMutablePointer<Int32>
  // Events, per Linear stage. Row lists grow to the events measured (`reserveList`).
  @usableFromInline var list: [UnsafeMutablePointer<Int32>]
  @usableFromInline var listCapacity: [Int]
  /// Events in each Linear stage's input at the last forward pass.
  @usableFromInline var eventCount: [Int]
  @usableFromInline let partOffsets: UnsafeMutablePointer<Int>
  @usableFromInline let begin: [UnsafeMutablePointer<Int32>]
  @usableFromInline let end: [UnsafeMutablePointer<Int32>]
  @usableFromInline var usesEvents: [Bool]
  @usableFromInline var usesMasks: [Bool]
  @usableFromInline let rowMask: [UnsafeMutablePointer<UInt16>]
  @usableFromInline let rowsPadded: Int
  @usableFromInline let colBits: UnsafeMutablePointer<UInt16>
  @usableFromInline var colList: UnsafeMutablePointer<Int32>
  @usableFromInline var colListCapacity: Int
  /// A Linear source (weight or output gradient) in 64-column slabs, for the AVX2 scatter.
  @usableFromInline var packed: UnsafeMutablePointer<Float>?
  @usableFromInline var packedCapacity = 0
  @usableFromInline let colBegin: UnsafeMutablePointer<Int32>
  @usableFromInline let colEnd: UnsafeMutablePointer<Int32>
  @usableFromInline let partCounts: UnsafeMutablePointer<Int>
  @usableFromInline let partFlags: UnsafeMutablePointer<Int32>
  @usableFromInline let narrowTransposed: UnsafeMutablePointer<T>
  @usableFromInline var logits: Tensor<T>
  @usableFromInline var gradW: [Tensor<T>]
  @usableFromInline var gradB: [Tensor<T>]
  @usableFromInline let gradWPointer: [UnsafeMutablePointer<T>]
  @usableFromInline let gradBPointer: [UnsafeMutablePointer<T>]
  @usableFromInline var gradV: [Tensor<T>]
  @usableFromInline let gradVPointer: [UnsafeMutablePointer<T>]
  @usableFromInline var allocations: [UnsafeMutableRawPointer] = []

  @usableFromInline
  init(
    steps: Int, batch: Int, inWidth: Int, parts: Int, stages: [CompiledNetwork<T>.Stage],
    linears: [CompiledNetwork<T>.LinearStage], recurrents: [CompiledNetwork<T>.RecurrentStage]
  ) {
    (self.steps, self.batch, self.inWidth, self.parts) = (steps, batch, inWidth, parts)
    let rows = steps * batch
    self.rows = rows
    var owned: [UnsafeMutableRawPointer] = []
    func make<E>(_ n: Int, _ zero: E) -> UnsafeMutablePointer<E> {
      let raw = soma_buffer_alloc(Swift.max(n, 1) * MemoryLayout<E>.stride)!
      let p = raw.bindMemory(to: E.self, capacity: Swift.max(n, 1))
      p.initialize(repeating: zero, count: Swift.max(n, 1))
      owned.append(raw)
      return p
    }
    var widths: [Int] = []
    var spikes: [Bool] = []
    var width = inWidth
    var scratchPerLane = 0
    for stage in stages {
      switch stage {
      case .linear(let l):
        width = linears[l].nOut
        spikes.append(false)
      case .neuron(let k):
        spikes.append(k.emitsSpikes)
        scratchPerLane = Swift.max(scratchPerLane, k.scratchPerLane)
      case .recurrent:
        spikes.append(true)
        scratchPerLane = Swift.max(scratchPerLane, 4)
      }
      widths.append(width)
    }
    self.widths = widths
    self.emitsSpikes = spikes
    // Stage outputs only: no buffer ever holds a gradient of the network's input.
    let widest = widths.max() ?? 1
    let current = make(rows * widest, T.zero)
    var out: [UnsafeMutablePointer<T>] = []
    var s0: [UnsafeMutablePointer<T>?] = []
    for (i, stage) in stages.enumerated() {
      let n = rows * widths[i]
      switch stage {
      case .linear:
        let feedsNeuron: Bool
        if i + 1 < stages.count, case .neuron = stages[i + 1] { feedsNeuron = true } else {
          feedsNeuron = false
        }
        out.append(feedsNeuron ? current : make(n, T.zero))
        s0.append(nil)
      case .neuron(let k):
        out.append(make(n, T.zero))
        s0.append(k.saved >= 1 ? make(n, T.zero) : nil)
      case .recurrent:
        out.append(make(n, T.zero))
        s0.append(make(n, T.zero))
      }
    }
    (self.out, saved0) = (out, s0)
    scratch = make(scratchPerLane * batch * widest, T.zero)
    gradOutA = make(rows * widest, T.zero)
    gradOutB = make(rows * widest, T.zero)
    let classes = widths.last ?? 1
    dlogits = make(batch * classes, T.zero)
    argmaxStep = make(batch * classes, Int32(0))
    let initialList = 16 * parts + 4096
    list = linears.map { _ in
      soma_buffer_alloc(initialList * 4)!.bindMemory(to: Int32.self, capacity: initialList)
    }
    listCapacity = linears.map { _ in initialList }
    eventCount = linears.map { _ in 0 }
    partOffsets = make(parts + 1, 0)
    begin = linears.map { _ in make(rows, Int32(0)) }
    end = linears.map { _ in make(rows, Int32(0)) }
    usesEvents = Array(repeating: false, count: linears.count)
    usesMasks = Array(repeating: false, count: linears.count)
    let padded = (rows + 15) / 16 * 16
    rowsPadded = padded
    rowMask = linears.map { make(($0.nIn + 15) / 16 * padded, UInt16(0)) }
    let widestIn = linears.map(\.nIn).max() ?? 1
    colBits = make(widestIn * padded / 16, UInt16(0))
    colList = soma_buffer_alloc(initialList * 4)!.bindMemory(to: Int32.self, capacity: initialList)
    colListCapacity = initialList
    colBegin = make(widestIn, Int32(0))
    colEnd = make(widestIn, Int32(0))
    partCounts = make(parts, 0)
    partFlags = make(parts, Int32(1))
    narrowTransposed = make(widestIn * MLPKernels.narrowProductWidth, T.zero)
    logits = Tensor.zeros([batch, classes])
    var gw = linears.map { Tensor<T>.zeros([$0.nIn, $0.nOut]).withLargePageStorage() }
    var gb = linears.map { Tensor<T>.zeros([$0.nOut]) }
    gradWPointer = gw.indices.map { l in gw[l].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    gradBPointer = gb.indices.map { l in gb[l].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    (gradW, gradB) = (gw, gb)
    var gv = recurrents.map { Tensor<T>.zeros([$0.n, $0.n]) }
    gradVPointer = gv.indices.map { r in gv[r].withUnsafeMutableBufferPointer { $0.baseAddress! } }
    gradV = gv
    allocations = owned
  }

  @inlinable
  func fits(steps: Int, batch: Int, inWidth: Int, parts: Int) -> Bool {
    self.steps == steps && self.batch == batch && self.inWidth == inWidth && self.parts == parts
  }

  /// The logits buffer, made unique first (the caller may still hold the last step's).
  @inlinable
  var logitsPointer: UnsafeMutablePointer<T> {
    logits.withUnsafeMutableBufferPointer { $0.baseAddress! }
  }

  /// Makes Linear stage `l`'s row list hold at least `count` entries (contents not kept).
  @inlinable
  func reserveList(_ l: Int, _ count: Int) {
    guard count > listCapacity[l] else { return }
    soma_buffer_free(UnsafeMutableRawPointer(list[l]))
    let n = Swift.max(count, listCapacity[l] * 3 / 2)
    list[l] = soma_buffer_alloc(n * 4)!.bindMemory(to: Int32.self, capacity: n)
    listCapacity[l] = n
  }

  /// Makes the column list hold at least `count` entries (contents not kept).
  @inlinable
  func reserveColList(_ count: Int) {
    guard count > colListCapacity else { return }
    soma_buffer_free(UnsafeMutableRawPointer(colList))
    let n = Swift.max(count, colListCapacity * 3 / 2)
    colList = soma_buffer_alloc(n * 4)!.bindMemory(to: Int32.self, capacity: n)
    colListCapacity = n
  }

  /// `src` [kc, n] packed into 64-column slabs (`soma_sparse_pack_f32`) when this CPU's
  /// scatter reads them and `outputRows` rows (in blocks of 64, each reading every slab once)
  /// make the copy pay, split over `parts` threads; nil otherwise. Copy and scatter against the
  /// scatter in place, 784 × 512 source at 20 %, one thread (ms): 64 rows 0.29 vs 0.26, 128
  /// rows 0.53 vs 0.52, 256 rows 0.99 vs 1.05, 1024 rows 3.7 vs 4.3.
  @inlinable
  func packForScatter(_ src: UnsafePointer<Float>, rows kc: Int, width n: Int, outputRows: Int)
    -> UnsafePointer<Float>?
  {
    guard soma_sparse_scatter_wants_packed() != 0, outputRows >= 192 else { return nil }
    let count = soma_sparse_packed_count(kc, n)
    if count > packedCapacity {
      if let p = packed { soma_buffer_free(UnsafeMutableRawPointer(p)) }
      packed = soma_buffer_alloc(count * 4)!.bindMemory(to: Float.self, capacity: count)
      packedCapacity = count
    }
    let dst = packed!
    let p = Swift.max(1, Swift.min(parts, kc / 64))
    parallel(p) { part in
      soma_sparse_pack_f32(src, kc, n, part * kc / p, (part + 1) * kc / p, dst)
    }
    return UnsafePointer(dst)
  }

  deinit {
    if let p = packed { soma_buffer_free(UnsafeMutableRawPointer(p)) }
    for p in allocations { soma_buffer_free(p) }
    for p in list { soma_buffer_free(UnsafeMutableRawPointer(p)) }
    soma_buffer_free(UnsafeMutableRawPointer(colList))
  }
}
