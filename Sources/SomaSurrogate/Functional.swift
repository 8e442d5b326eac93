// Functional spellings of the surrogates, as braintools has them (`braintools.surrogate.s2nn`
// and so on), camel-cased. On plain scalars and tensors there is no backward pass, so each
// returns the spike — Heaviside, 1 where x ≥ 0 — after validating its parameters, exactly what
// braintools' functional form returns in the forward pass; SomaNN's spike op attaches the
// surrogate derivative. `sigmoid` and `erf` take `alpha:` without a default so that a bare
// `sigmoid(x)` or `erf(x)` never silently means a spike.

/// The Sigmoid spike of `x` (see ``Sigmoid``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try sigmoid(Float(0.3), alpha: 4)   // 1
/// ```
@inlinable
public func sigmoid<T: TensorScalar>(_ x: T, alpha: Double) throws(SurrogateError) -> T {
  try Sigmoid(alpha: alpha).spike(x)
}

/// The Sigmoid spike of every element of `x`.
@inlinable
public func sigmoid<T: TensorScalar>(_ x: Tensor<T>, alpha: Double) throws(SurrogateError)
  -> Tensor<T>
{
  try Sigmoid(alpha: alpha).spike(x)
}

/// The PiecewiseQuadratic spike of `x` (see ``PiecewiseQuadratic``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try piecewiseQuadratic(Float(0.3), alpha: 1)   // 1
/// ```
@inlinable
public func piecewiseQuadratic<T: TensorScalar>(_ x: T, alpha: Double = 1) throws(SurrogateError)
  -> T
{
  try PiecewiseQuadratic(alpha: alpha).spike(x)
}

/// The PiecewiseQuadratic spike of every element of `x`.
@inlinable
public func piecewiseQuadratic<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 1)
  throws(SurrogateError) -> Tensor<T>
{
  try PiecewiseQuadratic(alpha: alpha).spike(x)
}

/// The PiecewiseExp spike of `x` (see ``PiecewiseExp``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try piecewiseExp(Float(0.3), alpha: 1)   // 1
/// ```
@inlinable
public func piecewiseExp<T: TensorScalar>(_ x: T, alpha: Double = 1) throws(SurrogateError) -> T {
  try PiecewiseExp(alpha: alpha).spike(x)
}

/// The PiecewiseExp spike of every element of `x`.
@inlinable
public func piecewiseExp<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 1) throws(SurrogateError)
  -> Tensor<T>
{
  try PiecewiseExp(alpha: alpha).spike(x)
}

/// The SoftSign spike of `x` (see ``SoftSign``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try softSign(Float(0.3), alpha: 1)   // 1
/// ```
@inlinable
public func softSign<T: TensorScalar>(_ x: T, alpha: Double = 1) throws(SurrogateError) -> T {
  try SoftSign(alpha: alpha).spike(x)
}

/// The SoftSign spike of every element of `x`.
@inlinable
public func softSign<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 1) throws(SurrogateError)
  -> Tensor<T>
{
  try SoftSign(alpha: alpha).spike(x)
}

/// The Arctan spike of `x` (see ``Arctan``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try arctan(Float(0.3), alpha: 1)   // 1
/// ```
@inlinable
public func arctan<T: TensorScalar>(_ x: T, alpha: Double = 1) throws(SurrogateError) -> T {
  try Arctan(alpha: alpha).spike(x)
}

/// The Arctan spike of every element of `x`.
@inlinable
public func arctan<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 1) throws(SurrogateError)
  -> Tensor<T>
{
  try Arctan(alpha: alpha).spike(x)
}

/// The NonzeroSignLog spike of `x` (see ``NonzeroSignLog``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try nonzeroSignLog(Float(0.3), alpha: 1)   // 1
/// ```
@inlinable
public func nonzeroSignLog<T: TensorScalar>(_ x: T, alpha: Double = 1) throws(SurrogateError) -> T {
  try NonzeroSignLog(alpha: alpha).spike(x)
}

/// The NonzeroSignLog spike of every element of `x`.
@inlinable
public func nonzeroSignLog<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 1)
  throws(SurrogateError) -> Tensor<T>
{
  try NonzeroSignLog(alpha: alpha).spike(x)
}

/// The ERF spike of `x` (see ``ERF``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try erf(Float(0.3), alpha: 1)   // 1
/// ```
@inlinable
public func erf<T: TensorScalar>(_ x: T, alpha: Double) throws(SurrogateError) -> T {
  try ERF(alpha: alpha).spike(x)
}

/// The ERF spike of every element of `x`.
@inlinable
public func erf<T: TensorScalar>(_ x: Tensor<T>, alpha: Double) throws(SurrogateError) -> Tensor<T>
{
  try ERF(alpha: alpha).spike(x)
}

/// The PiecewiseLeakyRelu spike of `x` (see ``PiecewiseLeakyRelu``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try piecewiseLeakyRelu(Float(0.3), c: 0.01)   // 1
/// ```
@inlinable
public func piecewiseLeakyRelu<T: TensorScalar>(_ x: T, c: Double = 0.01, w: Double = 1)
  throws(SurrogateError) -> T
{
  try PiecewiseLeakyRelu(c: c, w: w).spike(x)
}

/// The PiecewiseLeakyRelu spike of every element of `x`.
@inlinable
public func piecewiseLeakyRelu<T: TensorScalar>(_ x: Tensor<T>, c: Double = 0.01, w: Double = 1)
  throws(SurrogateError) -> Tensor<T>
{
  try PiecewiseLeakyRelu(c: c, w: w).spike(x)
}

/// The SquarewaveFourierSeries spike of `x` (see ``SquarewaveFourierSeries``): 1 where
/// x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try squarewaveFourierSeries(Float(0.3), n: 2)   // 1
/// ```
@inlinable
public func squarewaveFourierSeries<T: TensorScalar>(_ x: T, n: Int = 2, tPeriod: Double = 8)
  throws(SurrogateError) -> T
{
  try SquarewaveFourierSeries(n: n, tPeriod: tPeriod).spike(x)
}

/// The SquarewaveFourierSeries spike of every element of `x`.
@inlinable
public func squarewaveFourierSeries<T: TensorScalar>(
  _ x: Tensor<T>, n: Int = 2, tPeriod: Double = 8
) throws(SurrogateError) -> Tensor<T> {
  try SquarewaveFourierSeries(n: n, tPeriod: tPeriod).spike(x)
}

/// The S2NN spike of `x` (see ``S2NN``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try s2nn(Float(0.3), alpha: 4)   // 1
/// ```
@inlinable
public func s2nn<T: TensorScalar>(
  _ x: T, alpha: Double = 4, beta: Double = 1, epsilon: Double = 1e-8
) throws(SurrogateError) -> T {
  try S2NN(alpha: alpha, beta: beta, epsilon: epsilon).spike(x)
}

/// The S2NN spike of every element of `x`.
@inlinable
public func s2nn<T: TensorScalar>(
  _ x: Tensor<T>, alpha: Double = 4, beta: Double = 1, epsilon: Double = 1e-8
) throws(SurrogateError) -> Tensor<T> {
  try S2NN(alpha: alpha, beta: beta, epsilon: epsilon).spike(x)
}

/// The QPseudoSpike spike of `x` (see ``QPseudoSpike``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try qPseudoSpike(Float(0.3), alpha: 2)   // 1
/// ```
@inlinable
public func qPseudoSpike<T: TensorScalar>(_ x: T, alpha: Double = 2) throws(SurrogateError) -> T {
  try QPseudoSpike(alpha: alpha).spike(x)
}

/// The QPseudoSpike spike of every element of `x`.
@inlinable
public func qPseudoSpike<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 2) throws(SurrogateError)
  -> Tensor<T>
{
  try QPseudoSpike(alpha: alpha).spike(x)
}

/// The LeakyRelu spike of `x` (see ``LeakyRelu``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try leakyRelu(Float(0.3), alpha: 0.1)   // 1
/// ```
@inlinable
public func leakyRelu<T: TensorScalar>(_ x: T, alpha: Double = 0.1, beta: Double = 1)
  throws(SurrogateError) -> T
{
  try LeakyRelu(alpha: alpha, beta: beta).spike(x)
}

/// The LeakyRelu spike of every element of `x`.
@inlinable
public func leakyRelu<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 0.1, beta: Double = 1)
  throws(SurrogateError) -> Tensor<T>
{
  try LeakyRelu(alpha: alpha, beta: beta).spike(x)
}

/// The LogTailedRelu spike of `x` (see ``LogTailedRelu``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try logTailedRelu(Float(0.3), alpha: 0)   // 1
/// ```
@inlinable
public func logTailedRelu<T: TensorScalar>(_ x: T, alpha: Double = 0) throws(SurrogateError) -> T {
  try LogTailedRelu(alpha: alpha).spike(x)
}

/// The LogTailedRelu spike of every element of `x`.
@inlinable
public func logTailedRelu<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 0) throws(SurrogateError)
  -> Tensor<T>
{
  try LogTailedRelu(alpha: alpha).spike(x)
}

/// The ReluGrad spike of `x` (see ``ReluGrad``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try reluGrad(Float(0.3), alpha: 0.3)   // 1
/// ```
@inlinable
public func reluGrad<T: TensorScalar>(_ x: T, alpha: Double = 0.3, width: Double = 1)
  throws(SurrogateError) -> T
{
  try ReluGrad(alpha: alpha, width: width).spike(x)
}

/// The ReluGrad spike of every element of `x`.
@inlinable
public func reluGrad<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 0.3, width: Double = 1)
  throws(SurrogateError) -> Tensor<T>
{
  try ReluGrad(alpha: alpha, width: width).spike(x)
}

/// The GaussianGrad spike of `x` (see ``GaussianGrad``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try gaussianGrad(Float(0.3), sigma: 0.5)   // 1
/// ```
@inlinable
public func gaussianGrad<T: TensorScalar>(_ x: T, sigma: Double = 0.5, alpha: Double = 0.5)
  throws(SurrogateError) -> T
{
  try GaussianGrad(sigma: sigma, alpha: alpha).spike(x)
}

/// The GaussianGrad spike of every element of `x`.
@inlinable
public func gaussianGrad<T: TensorScalar>(_ x: Tensor<T>, sigma: Double = 0.5, alpha: Double = 0.5)
  throws(SurrogateError) -> Tensor<T>
{
  try GaussianGrad(sigma: sigma, alpha: alpha).spike(x)
}

/// The MultiGaussianGrad spike of `x` (see ``MultiGaussianGrad``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try multiGaussianGrad(Float(0.3), h: 0.15)   // 1
/// ```
@inlinable
public func multiGaussianGrad<T: TensorScalar>(
  _ x: T, h: Double = 0.15, s: Double = 6, sigma: Double = 0.5, scale: Double = 0.5
) throws(SurrogateError) -> T {
  try MultiGaussianGrad(h: h, s: s, sigma: sigma, scale: scale).spike(x)
}

/// The MultiGaussianGrad spike of every element of `x`.
@inlinable
public func multiGaussianGrad<T: TensorScalar>(
  _ x: Tensor<T>, h: Double = 0.15, s: Double = 6, sigma: Double = 0.5, scale: Double = 0.5
) throws(SurrogateError) -> Tensor<T> {
  try MultiGaussianGrad(h: h, s: s, sigma: sigma, scale: scale).spike(x)
}

/// The InvSquareGrad spike of `x` (see ``InvSquareGrad``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try invSquareGrad(Float(0.3), alpha: 100)   // 1
/// ```
@inlinable
public func invSquareGrad<T: TensorScalar>(_ x: T, alpha: Double = 100) throws(SurrogateError) -> T
{
  try InvSquareGrad(alpha: alpha).spike(x)
}

/// The InvSquareGrad spike of every element of `x`.
@inlinable
public func invSquareGrad<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 100)
  throws(SurrogateError) -> Tensor<T>
{
  try InvSquareGrad(alpha: alpha).spike(x)
}

/// The SlayerGrad spike of `x` (see ``SlayerGrad``): 1 where x ≥ 0, else 0.
/// Throws for parameters out of range.
///
/// ```swift
/// let s = try slayerGrad(Float(0.3), alpha: 1)   // 1
/// ```
@inlinable
public func slayerGrad<T: TensorScalar>(_ x: T, alpha: Double = 1) throws(SurrogateError) -> T {
  try SlayerGrad(alpha: alpha).spike(x)
}

/// The SlayerGrad spike of every element of `x`.
@inlinable
public func slayerGrad<T: TensorScalar>(_ x: Tensor<T>, alpha: Double = 1) throws(SurrogateError)
  -> Tensor<T>
{
  try SlayerGrad(alpha: alpha).spike(x)
}
