// The spike: Heaviside forward, surrogate derivative backward.

extension Variable {
  /// Spikes where `self ≥ 0` (1, else 0); the backward pass multiplies the incoming gradient
  /// by `surrogate.derivative(x)`. Works for any conformer, including your own:
  ///
  /// ```swift
  /// let s = (membrane - 1).spike(surrogate: S2NN())
  /// ```
  @inlinable
  public func spike<S: SurrogateGradient>(surrogate: S) -> Variable {
    let x = value
    return .record(x.heaviside(), parents: [self]) { g in
      let xc = x.contiguous()
      var d = Tensor<Scalar>(uninitializedShape: xc.shape)
      xc.withUnsafeBufferPointer { px in
        d.withUnsafeMutableBufferPointer { pd in
          surrogate.derivative(px.baseAddress!, into: pd.baseAddress!, count: px.count)
        }
      }
      return [g * d]
    }
  }
}
