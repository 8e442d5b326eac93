import SomaNN

/// Adam over a fixed list of Float tensors (β₁ 0.9, β₂ 0.999, ε 1e-8, bias-corrected), with
/// its moment buffers allocated once.
struct FlatAdam {
  var m: [[Float]]
  var v: [[Float]]
  var t = 0
  var lr: Float

  init(shapes: [[Int]], lr: Float) {
    m = shapes.map { Array(repeating: 0, count: $0.reduce(1, *)) }
    v = m
    self.lr = lr
  }

  mutating func step(_ params: inout [Tensor<Float>], grads: [Tensor<Float>]) {
    t += 1
    let c1 = 1 - Float.pow(0.9, Float(t))
    let c2 = 1 - Float.pow(0.999, Float(t))
    let lr = self.lr
    for i in 0..<params.count {
      params[i].withUnsafeMutableBufferPointer { p in
        grads[i].withUnsafeBufferPointer { g in
          m[i].withUnsafeMutableBufferPointer { mm in
            v[i].withUnsafeMutableBufferPointer { vv in
              for k in 0..<p.count {
                mm[k] = 0.9 * mm[k] + 0.1 * g[k]
                vv[k] = 0.999 * vv[k] + 0.001 * g[k] * g[k]
                p[k] -= lr * (mm[k] / c1) / ((vv[k] / c2).squareRoot() + 1e-8)
              }
            }
          }
        }
      }
    }
  }
}
