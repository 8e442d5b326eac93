import Dispatch


/// Runs `body(part)` for `parts` parts on Dispatch's pool and waits for all of them. The
/// fused kernels call it between BLAS calls, never alongside them, so Soma's threads and
/// OpenBLAS's threads do not oversubscribe the cores.
@inlinable
public func parallel(_ parts: Int, _ body: (Int) -> Void) {
  if parts <= 1 {
    body(0)
    return
  }
  withoutActuallyEscaping(body) { b in
    // Each part touches disjoint memory; the closure is only called while we wait here.
    let shared = unsafeBitCast(b, to: (@Sendable (Int) -> Void).self)
    DispatchQueue.concurrentPerform(iterations: parts, execute: shared)
  }
}
