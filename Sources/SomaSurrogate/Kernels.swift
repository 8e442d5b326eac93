internal import SomaKernels

/// Runs a C kernel for Float or Double element types, rebinding the pointers; other element
/// types take the scalar loop.
func withKernel<S: SurrogateGradient, T: TensorScalar>(
  _ s: S, _ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ count: Int,
  float: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
  double: (UnsafePointer<Double>, UnsafeMutablePointer<Double>) -> Void
) {
  if T.self == Float.self {
    float(
      UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
      UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self))
  } else if T.self == Double.self {
    double(
      UnsafeRawPointer(x).assumingMemoryBound(to: Double.self),
      UnsafeMutableRawPointer(out).assumingMemoryBound(to: Double.self))
  } else {
    bulkDerivative(s, x, out, count)
  }
}

// The vectorised bulk derivatives of the built-in types (see SomaKernels.h).

extension S2NN {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    withKernel(
      self, x, out, count,
      float: { soma_surrogate_s2nn_f32($0, $1, count, Float(alpha), Float(beta)) },
      double: { soma_surrogate_s2nn_f64($0, $1, count, alpha, beta) })
  }
}

extension Sigmoid {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    withKernel(
      self, x, out, count,
      float: { soma_surrogate_sigmoid_f32($0, $1, count, Float(alpha)) },
      double: { soma_surrogate_sigmoid_f64($0, $1, count, alpha) })
  }
}

extension PiecewiseExp {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    withKernel(
      self, x, out, count,
      float: { soma_surrogate_exp_abs_f32($0, $1, count, Float(alpha), Float(alpha / 2)) },
      double: { soma_surrogate_exp_abs_f64($0, $1, count, alpha, alpha / 2) })
  }
}

extension SlayerGrad {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    withKernel(
      self, x, out, count,
      float: { soma_surrogate_exp_abs_f32($0, $1, count, Float(alpha), 1) },
      double: { soma_surrogate_exp_abs_f64($0, $1, count, alpha, 1) })
  }
}

extension ERF {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    let scale = alpha / Double.pi.squareRoot()
    withKernel(
      self, x, out, count,
      float: { soma_surrogate_gaussian_f32($0, $1, count, Float(alpha), Float(scale)) },
      double: { soma_surrogate_gaussian_f64($0, $1, count, alpha, scale) })
  }
}

extension GaussianGrad {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    let k = 1 / (2.0.squareRoot() * sigma)
    let scale = alpha / ((2 * Double.pi).squareRoot() * sigma)
    withKernel(
      self, x, out, count,
      float: { soma_surrogate_gaussian_f32($0, $1, count, Float(k), Float(scale)) },
      double: { soma_surrogate_gaussian_f64($0, $1, count, k, scale) })
  }
}

extension MultiGaussianGrad {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    let root2pi = (2 * Double.pi).squareRoot()
    let center = scale * (1 + h) / (root2pi * sigma)
    let side = scale * h / (root2pi * s * sigma)
    let k0 = 1 / (2.0.squareRoot() * sigma)
    let k1 = 1 / (2.0.squareRoot() * s * sigma)
    withKernel(
      self, x, out, count,
      float: {
        soma_surrogate_multi_gaussian_f32(
          $0, $1, count, Float(center), Float(side), Float(k0), Float(k1), Float(sigma))
      },
      double: {
        soma_surrogate_multi_gaussian_f64($0, $1, count, center, side, k0, k1, sigma)
      })
  }
}

extension QPseudoSpike {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    let c = 2 / (alpha + 1)
    withKernel(
      self, x, out, count,
      float: { soma_surrogate_q_pseudo_spike_f32($0, $1, count, Float(c), Float(alpha)) },
      double: { soma_surrogate_q_pseudo_spike_f64($0, $1, count, c, alpha) })
  }
}

extension SquarewaveFourierSeries {
  public func derivative<T: TensorScalar>(
    _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
  ) {
    let harmonics = Int32(clamping: n)
    let scale = 4 / tPeriod
    withKernel(
      self, x, out, count,
      float: {
        soma_surrogate_squarewave_f32($0, $1, count, Float(tPeriod), harmonics, Float(scale))
      },
      double: { soma_surrogate_squarewave_f64($0, $1, count, tPeriod, harmonics, scale) })
  }
}
