// Matrix products of variables.

extension Variable {
  /// The matrix product of two operands of rank ≥ 2 (batch axes broadcast, as in
  /// `Tensor.matmul`). Gradients: dA = dC·Bᵀ, dB = Aᵀ·dC, summed over broadcast batch axes.
  @inlinable
  public func matmul(_ other: Variable) -> Variable {
    precondition(
      rank >= 2 && other.rank >= 2,
      "matmul: variables of shapes \(shape) and \(other.shape) need rank ≥ 2 each")
    let a = value
    let b = other.value
    return .record(a.matmul(b), parents: [self, other]) { g in
      [
        self.requiresGrad
          ? unbroadcast(g.matmul(Variable.swapLast(b)), to: a.shape) : nil,
        other.requiresGrad
          ? unbroadcast(Variable.swapLast(a).matmul(g), to: b.shape) : nil,
      ]
    }
  }

  @inlinable
  static func swapLast(_ t: Tensor<Scalar>) -> Tensor<Scalar> {
    if t.rank == 2 { return t.transposed() }
    var axes = Array(0..<t.rank)
    axes.swapAt(t.rank - 1, t.rank - 2)
    return t.permuted(axes)
  }
}
