import Foundation
// Shared helpers for Soma's test targets: tolerance checks and naive reference loops.
import SomaTensor
import Testing

/// Test helpers shared by every Soma test target.
public enum TestSupport {
  /// The default tolerances for a scalar type: Float atol 1e-6, rtol 1e-5; Double atol 1e-12,
  /// rtol 1e-10.
  public static func defaultTolerance<S: TensorScalar>(_: S.Type) -> (atol: S, rtol: S) {
    S.significandBitCount <= 23 ? (1e-6, 1e-5) : (1e-12, 1e-10)
  }

  /// Every multi-index of `shape` in row-major order (none when an axis is empty; one, `[]`,
  /// for a 0-D shape).
  public static func indices(_ shape: [Int]) -> [[Int]] {
    if shape.contains(0) { return [] }
    var out: [[Int]] = [[]]
    for d in shape { out = out.flatMap { prefix in (0..<d).map { prefix + [$0] } } }
    return out
  }
}

/// True when |a − b| ≤ atol + rtol·|b| (NaN matches NaN, infinities of one sign match).
public func isClose<S: TensorScalar>(_ a: S, _ b: S, atol: S, rtol: S) -> Bool {
  if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
  if a.isInfinite || b.isInfinite { return a == b }
  return Swift.abs(a - b) <= atol + rtol * Swift.abs(b)
}

/// Expects `|a − b| ≤ atol + rtol·|b|` for two scalars. Tolerances default per type
/// (`TestSupport.defaultTolerance`).
///
/// ```swift
/// expectClose(Float(0.1) * 3, 0.3)
/// ```
public func expectClose<S: TensorScalar>(
  _ a: S, _ b: S, atol: S? = nil, rtol: S? = nil, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let d = TestSupport.defaultTolerance(S.self)
  let at = atol ?? d.atol
  let rt = rtol ?? d.rtol
  #expect(
    isClose(a, b, atol: at, rtol: rt),
    "\(a) is not within atol \(at) + rtol \(rt) of \(b)\(comment.map { ": \($0)" } ?? "")",
    sourceLocation: sourceLocation)
}

/// Expects two arrays of equal length to agree elementwise within `atol + rtol·|b|`; on failure
/// reports the count of mismatches and the worst one.
public func expectClose<S: TensorScalar>(
  _ a: [S], _ b: [S], atol: S? = nil, rtol: S? = nil, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let d = TestSupport.defaultTolerance(S.self)
  let at = atol ?? d.atol
  let rt = rtol ?? d.rtol
  let note = comment.map { ": \($0)" } ?? ""
  guard a.count == b.count else {
    Issue.record(
      "lengths differ: \(a.count) vs \(b.count)\(note)", sourceLocation: sourceLocation)
    return
  }
  var bad = 0
  var worst = -1
  var worstExcess = S(0)
  for i in 0..<a.count where !isClose(a[i], b[i], atol: at, rtol: rt) {
    bad += 1
    let excess = Swift.abs(a[i] - b[i]) - (at + rt * Swift.abs(b[i]))
    if worst < 0 || !(excess <= worstExcess) {
      worst = i
      worstExcess = excess
    }
  }
  if bad > 0 {
    let message =
      "\(bad) of \(a.count) elements differ beyond atol \(at) + rtol \(rt); worst at [\(worst)]: "
      + "\(a[worst]) vs \(b[worst])\(note)"
    Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
  }
}

/// Expects two tensors of the same shape to agree elementwise within `atol + rtol·|b|`.
///
/// ```swift
/// expectClose(q.matmul(r), a, atol: 1e-5)
/// ```
public func expectClose<S: TensorScalar>(
  _ a: Tensor<S>, _ b: Tensor<S>, atol: S? = nil, rtol: S? = nil, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  guard a.shape == b.shape else {
    Issue.record(
      "shapes differ: \(a.shape) vs \(b.shape)\(comment.map { ": \($0)" } ?? "")",
      sourceLocation: sourceLocation)
    return
  }
  expectClose(a.scalars, b.scalars, atol: atol, rtol: rtol, comment, sourceLocation: sourceLocation)
}

/// The PID of a child process that has exited and been reaped: no process has it now. Spawned
/// with posix_spawn and reaped with waitpid (Foundation's Process leaks a small weak-reference
/// table per run, which LeakSanitizer reports).
public func reapedChildPID() throws -> Int32 {
  var pid: pid_t = 0
  let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
  defer { free(argv[0]) }
  let rc = posix_spawn(&pid, "/bin/true", nil, nil, argv, nil)
  guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
  var status: Int32 = 0
  _ = waitpid(pid, &status, 0)
  return pid
}
