import SomaKernels
import SomaNN

/// Adam over a fixed list of Float tensors (β₁ 0.9, β₂ 0.999, ε 1e-8, bias-corrected), with
/// its moment buffers allocated once; the update is a vectorised kernel split over `threads`.
struct FlatAdam {
  var m: [[Float]]
  var v: [[Float]]
  var t = 0
  var lr: Float
  var threads = 2

  init(shapes: [[Int]], lr: Float) {
    m = shapes.map { Array(repeating: 0, count: $0.reduce(1, *)) }
    v = m
    self.lr = lr
  }

  mutating func step(_ params: inout [Tensor<Float>], grads: [Tensor<Float>]) {
    t += 1
    let c1 = 1 - Float.pow(0.9, Float(t))
    let c2 = 1 - Float.pow(0.999, Float(t))
    let step = soma_adam_step(lr_c1: lr / c1, b1: 0.9, b2: 0.999, ic2: 1 / c2, eps: 1e-8)
    let threads = self.threads
    for i in 0..<params.count {
      precondition(
        params[i].shape == grads[i].shape,
        "FlatAdam: parameter \(params[i].shape) and gradient \(grads[i].shape) differ")
      params[i].withUnsafeMutableBufferPointer { p in
        grads[i].withUnsafeBufferPointer { g in
          m[i].withUnsafeMutableBufferPointer { mm in
            v[i].withUnsafeMutableBufferPointer { vv in
              let n = p.count
              let parts = n >= 65_536 ? threads : 1
              let (pP, gP, mP, vP) = (p.baseAddress!, g.baseAddress!, mm.baseAddress!, vv.baseAddress!)
              parallel(parts) { part in
                let lo = part * n / parts
                let hi = (part + 1) * n / parts
                var c = step
                soma_sparse_adam_f32(pP + lo, gP + lo, mP + lo, vP + lo, hi - lo, &c)
              }
            }
          }
        }
      }
    }
  }
}
