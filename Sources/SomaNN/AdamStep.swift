import SomaKernels

/// One Adam step's constants (lrC1 = lr / (1 − β1^t), ic2 = 1 / (1 − β2^t)) and moments.
@usableFromInline
struct AdamStep<T: TensorScalar> {
  @usableFromInline let lrC1: T, b1: T, b2: T, ic2: T, eps: T
  /// 1 − lr·weightDecay for AdamW's decoupled decay (applied to the parameter first, as
  /// PyTorch's AdamW does), else 1.
  @usableFromInline let shrink: T
  @usableFromInline let m: [UnsafeMutablePointer<T>]
  @usableFromInline let v: [UnsafeMutablePointer<T>]

  @inlinable
  init(
    lrC1: T, b1: T, b2: T, ic2: T, eps: T, shrink: T = 1, m: [UnsafeMutablePointer<T>],
    v: [UnsafeMutablePointer<T>]
  ) {
    (self.lrC1, self.b1, self.b2, self.ic2, self.eps, self.m, self.v) = (lrC1, b1, b2, ic2, eps, m, v)
    self.shrink = shrink
  }

  /// AdamW's decay of param[lo ..< hi] (nothing without one).
  @inlinable
  func decay(_ param: UnsafeMutablePointer<T>, from lo: Int, to hi: Int) {
    guard shrink != 1 else { return }
    for i in lo..<hi { param[i] *= shrink }
  }

  @inlinable
  var constants: soma_adam_step {
    soma_adam_step(
      lr_c1: Float(lrC1), b1: Float(b1), b2: Float(b2), ic2: Float(ic2), eps: Float(eps))
  }

  /// Updates param[lo ..< hi] of parameter `index` from its gradient `grad`.
  @inlinable
  func apply(
    index: Int, param: UnsafeMutablePointer<T>, grad: UnsafePointer<T>, from lo: Int, to hi: Int
  ) {
    guard hi > lo else { return }
    decay(param, from: lo, to: hi)
    let (mp, vp) = (m[index], v[index])
    if T.self == Float.self {
      var c = constants
      soma_sparse_adam_f32(
        UnsafeMutableRawPointer(param + lo).assumingMemoryBound(to: Float.self),
        UnsafeRawPointer(grad + lo).assumingMemoryBound(to: Float.self),
        UnsafeMutableRawPointer(mp + lo).assumingMemoryBound(to: Float.self),
        UnsafeMutableRawPointer(vp + lo).assumingMemoryBound(to: Float.self), hi - lo, &c)
      return
    }
    for i in lo..<hi {
      let g = grad[i]
      let mi = b1 * mp[i] + (1 - b1) * g
      let vi = b2 * vp[i] + (1 - b2) * g * g
      mp[i] = mi
      vp[i] = vi
      param[i] -= lrC1 * mi / ((vi * ic2).squareRoot() + eps)
    }
  }
}
