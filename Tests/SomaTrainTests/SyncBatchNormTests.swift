import Foundation
import Soma
import Testing

@testable import SomaTrain

/// A `BatchNormSynchronizer` over a thread "process" of a `ThreadGroup`.
final class MemberBatchNormSync: BatchNormSynchronizer, @unchecked Sendable {
  let member: ThreadGroup.Member
  let lossShare: Double
  let wholeBatch: Bool
  var rank: Int { member.rank }
  var size: Int { member.size }
  init(_ member: ThreadGroup.Member, lossShare: Double, wholeBatch: Bool = false) {
    (self.member, self.lossShare, self.wholeBatch) = (member, lossShare, wholeBatch)
  }
  func sum(_ values: UnsafeMutableBufferPointer<Double>) {
    try! member.allReduceSumInPass(values)
  }
}

/// One training-mode BatchNorm pass, forward and backward: the output, the input's gradient
/// (nil when it needs none), γ's and β's, and the running statistics after it.
struct BatchNormPass: Sendable {
  var y: [Float]
  var dx: [Float]?
  var dGamma: [Float]
  var dBeta: [Float]
  var runningMean: [Float]
  var runningVar: [Float]
}

/// SyncBatchNorm against one process, layer by layer: each "process" (a thread) holds a slice
/// of the batch, gives the backward pass its slice of the output gradient in its own loss's
/// units (divided by its share of the batch), and must get its slice of the one-process output,
/// its share of the input gradient, and running statistics equal to one process's; γ's and β's
/// gradients, weighted by the shares and summed, are one process's.
@Suite struct SyncBatchNormTests {
  /// Values of `shape`, reproducible.
  static func values(_ shape: [Int], seed: UInt64, scale: Float = 1, offset: Float = 0) -> [Float] {
    var g = SomaRandom(seed: seed)
    return (0..<shape.reduce(1, *)).map { _ in
      offset + scale * (2 * g.unitInterval(Float.self) - 1)
    }
  }

  /// Items [lo, hi) of axis `axis` of `x` (shape `shape`).
  static func slice(_ x: [Float], _ shape: [Int], axis: Int, _ lo: Int, _ hi: Int) -> [Float] {
    let outer = shape.prefix(axis).reduce(1, *)
    let inner = shape.dropFirst(axis + 1).reduce(1, *)
    var out: [Float] = []
    for o in 0..<outer {
      let base = o * shape[axis] * inner
      out += x[(base + lo * inner)..<(base + hi * inner)]
    }
    return out
  }

  /// Runs a BatchNorm layer (`make`) on x with output gradient `seed`, synchronised when `sync`.
  static func pass(
    make: () throws -> (any Layer<Float>, BatchNormState<Float>, Variable<Float>, Variable<Float>),
    x: [Float], shape: [Int], seed: [Float], needX: Bool, sync: (any BatchNormSynchronizer)?
  ) throws -> BatchNormPass {
    let (layer, state, weight, bias) = try make()
    state.synchronizer = sync
    let xv = Variable(Tensor(x, shape: shape), requiresGrad: needX)
    let y = layer(xv)
    y.backward(seed: Tensor(seed, shape: shape))
    return BatchNormPass(
      y: y.value.scalars, dx: needX ? xv.grad!.scalars : nil, dGamma: weight.grad!.scalars,
      dBeta: bias.grad!.scalars, runningMean: state.runningMean.scalars,
      runningVar: state.runningVar.scalars)
  }

  static func close(_ a: [Float], _ b: [Float], _ what: String, tolerance: Float = 2e-6) {
    #expect(a.count == b.count)
    let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    #expect(worst < tolerance, "\(what): differs by \(worst)")
  }

  /// Compares `size` synchronised processes, each with its slice of axis `batchAxis` of the
  /// batch, with one process.
  static func compare(
    shape: [Int], batchAxis: Int, size: Int, repeated: Bool, needX: Bool,
    make: @escaping @Sendable () throws -> (
      any Layer<Float>, BatchNormState<Float>, Variable<Float>, Variable<Float>
    )
  ) throws {
    var x = values(shape, seed: 1, scale: 2, offset: 3)  // a mean far from 0
    if repeated {
      let n = x.count / shape[0]
      for i in n..<x.count { x[i] = x[i % n] }
    }
    let seed = values(shape, seed: 2)
    let one = try pass(make: make, x: x, shape: shape, seed: seed, needX: needX, sync: nil)
    let batch = shape[batchAxis]
    let group = ThreadGroup(size: size)
    let (xs, seeds) = (x, seed)
    let runs = try onThreads(size) { rank in
      let r = DataParallel.slice(batch, rank: rank, of: size)
      let share = Double(r.count) / Double(batch)
      var local = shape
      local[batchAxis] = r.count
      let xr = slice(xs, shape, axis: batchAxis, r.lowerBound, r.upperBound)
      let gr = slice(seeds, shape, axis: batchAxis, r.lowerBound, r.upperBound).map {
        Float(Double($0) / share)
      }
      let sync = MemberBatchNormSync(group.member(rank), lossShare: share)
      return (r, try pass(make: make, x: xr, shape: local, seed: gr, needX: needX, sync: sync))
    }
    var dGamma = [Double](repeating: 0, count: one.dGamma.count)
    var dBeta = dGamma
    for (r, run) in runs {
      let share = Float(r.count) / Float(batch)
      close(run.y, slice(one.y, shape, axis: batchAxis, r.lowerBound, r.upperBound), "y")
      if let dx = run.dx {
        close(
          dx.map { $0 * share }, slice(one.dx!, shape, axis: batchAxis, r.lowerBound, r.upperBound),
          "dx")
      }
      for c in dGamma.indices {
        dGamma[c] += Double(share) * Double(run.dGamma[c])
        dBeta[c] += Double(share) * Double(run.dBeta[c])
      }
      #expect(run.runningMean == runs[0].1.runningMean && run.runningVar == runs[0].1.runningVar)
      close(run.runningMean, one.runningMean, "running mean")
      close(run.runningVar, one.runningVar, "running variance")
    }
    close(dGamma.map { Float($0) }, one.dGamma, "dγ", tolerance: 1e-5)
    close(dBeta.map { Float($0) }, one.dBeta, "dβ", tolerance: 1e-5)
  }

  static func batchNorm2d() throws -> (
    any Layer<Float>, BatchNormState<Float>, Variable<Float>, Variable<Float>
  ) {
    let bn = try BatchNorm2d<Float>(4)
    bn.weight!.value = Tensor([0.5, 1.5, -1, 2])
    bn.bias!.value = Tensor([0.1, -0.2, 0.3, 0])
    return (bn, bn.state, bn.weight!, bn.bias!)
  }

  static func batchNorm1d() throws -> (
    any Layer<Float>, BatchNormState<Float>, Variable<Float>, Variable<Float>
  ) {
    let bn = try BatchNorm1d<Float>(5, momentum: nil)
    bn.weight!.value = Tensor([0.5, 1.5, -1, 2, 1])
    return (bn, bn.state, bn.weight!, bn.bias!)
  }

  /// [T, batch, C, H, W], 7 images over 2 and 3 processes (3 + 4, 2 + 2 + 3): every step, a
  /// repeated input normalised once (its gradient per step), and one whose gradient is summed
  /// over time (no input gradient).
  @Test(
    arguments: [2, 3],
    [(repeated: false, needX: true), (repeated: true, needX: true), (repeated: true, needX: false)])
  func batchNorm2dMatchesOneProcess(size: Int, input: (repeated: Bool, needX: Bool)) throws {
    try Self.compare(
      shape: [3, 7, 4, 2, 3], batchAxis: 1, size: size, repeated: input.repeated,
      needX: input.needX, make: Self.batchNorm2d)
  }

  /// [batch, C] with one sample per process (a slice alone would have no variance), and
  /// [T, batch, C], every step or repeated (normalised once), 6 samples over 3 processes or 2
  /// over 2.
  @Test(arguments: [
    (shape: [3, 5], repeated: false), (shape: [4, 6, 5], repeated: false),
    (shape: [4, 6, 5], repeated: true), (shape: [4, 2, 5], repeated: true),
  ])
  func batchNorm1dMatchesOneProcess(input: (shape: [Int], repeated: Bool)) throws {
    try Self.compare(
      shape: input.shape, batchAxis: input.shape.count - 2, size: min(3, input.shape[1]),
      repeated: input.repeated, needX: true, make: Self.batchNorm1d)
  }

  /// Every process holding the whole batch (share 1/N) is one process: its output and running
  /// statistics bit for bit, its gradients (of 3 × the loss) within rounding.
  @Test func aBatchHeldByEveryProcessIsNormalisedOnce() throws {
    let shape = [2, 5, 4, 2, 2]
    let x = Self.values(shape, seed: 3, offset: 1)
    let seed = Self.values(shape, seed: 4)
    let one = try Self.pass(
      make: Self.batchNorm2d, x: x, shape: shape, seed: seed, needX: true, sync: nil)
    let group = ThreadGroup(size: 3)
    let runs = try onThreads(3) { rank in
      let sync = MemberBatchNormSync(group.member(rank), lossShare: 1.0 / 3, wholeBatch: true)
      return try Self.pass(
        make: Self.batchNorm2d, x: x, shape: shape, seed: seed.map { $0 * 3 }, needX: true,
        sync: sync)
    }
    for run in runs {
      #expect(run.y == one.y)
      Self.close(run.dx!.map { $0 / 3 }, one.dx!, "dx")
      Self.close(run.dGamma.map { $0 / 3 }, one.dGamma, "dγ")
      Self.close(run.dBeta.map { $0 / 3 }, one.dBeta, "dβ")
      #expect(run.runningMean == one.runningMean && run.runningVar == one.runningVar)
    }
  }

  /// Evaluation (inside `noGrad`) is never synchronised, nor is a layer without a synchroniser.
  @Test func evaluationDoesNotSynchronise() throws {
    let group = ThreadGroup(size: 2)
    let member = group.member(0)
    let (layer, state, _, _) = try Self.batchNorm2d()
    state.synchronizer = MemberBatchNormSync(member, lossShare: 0.5)
    let x = Variable(Tensor(Self.values([2, 3, 4, 2, 2], seed: 5), shape: [2, 3, 4, 2, 2]))
    _ = noGrad { layer(x) }
    state.mode = .training
    _ = noGrad { layer(x) }
    #expect(member.inPass == 0)
  }
}
