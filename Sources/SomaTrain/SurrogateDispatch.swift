import SomaSurrogate

/// Generic work to run with a concrete surrogate type.
package protocol SurrogateVisitor {
  associatedtype Result
  func visit<S: SurrogateGradient>(_ surrogate: S) throws -> Result
}

/// Calls `visitor.visit` with the concrete type behind `surrogate`, so generic code
/// (the fused kernels of `CUBALIF<S>`, `LIF<S>`) is specialised for every built-in surrogate instead of running
/// through runtime generics (~20× slower in the fused loops). Other conformers still work,
/// unspecialised.
package func withConcreteSurrogate<V: SurrogateVisitor>(
  _ surrogate: any SurrogateGradient, _ visitor: V
) throws -> V.Result {
  switch surrogate {
  case let s as S2NN: return try visitor.visit(s)
  case let s as InvSquareGrad: return try visitor.visit(s)
  case let s as Sigmoid: return try visitor.visit(s)
  case let s as PiecewiseQuadratic: return try visitor.visit(s)
  case let s as PiecewiseExp: return try visitor.visit(s)
  case let s as SoftSign: return try visitor.visit(s)
  case let s as Arctan: return try visitor.visit(s)
  case let s as NonzeroSignLog: return try visitor.visit(s)
  case let s as ERF: return try visitor.visit(s)
  case let s as PiecewiseLeakyRelu: return try visitor.visit(s)
  case let s as SquarewaveFourierSeries: return try visitor.visit(s)
  case let s as QPseudoSpike: return try visitor.visit(s)
  case let s as LeakyRelu: return try visitor.visit(s)
  case let s as LogTailedRelu: return try visitor.visit(s)
  case let s as ReluGrad: return try visitor.visit(s)
  case let s as GaussianGrad: return try visitor.visit(s)
  case let s as MultiGaussianGrad: return try visitor.visit(s)
  case let s as SlayerGrad: return try visitor.visit(s)
  default: return try visitor.visit(surrogate)
  }
}
