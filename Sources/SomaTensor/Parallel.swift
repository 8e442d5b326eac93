import Dispatch
import SomaKernels


/// Runs `body(part)` for `parts` parts and waits for all of them: on Soma's spinning worker
/// pool (one worker per extra CPU, so a step's many short regions start without a thread
/// wake-up each), or on Dispatch's pool when Soma's is busy with another caller's job. The
/// fused kernels call it between BLAS calls, never alongside them, so Soma's threads and
/// OpenBLAS's threads do not oversubscribe the cores.
@inlinable
public func parallel(_ parts: Int, _ body: (Int) -> Void) {
  if parts <= 1 {
    body(0)
    return
  }
  withoutActuallyEscaping(body) { b in
    // The pool calls the closure only while soma_pool_run waits here.
    var task = b
    let ran = withUnsafeMutablePointer(to: &task) { ctx in
      soma_pool_run(parts, { ctx, part in
        ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(part)
      }, ctx)
    }
    if ran != 0 { return }
    // Each part touches disjoint memory; the closure is only called while we wait here.
    let shared = unsafeBitCast(b, to: (@Sendable (Int) -> Void).self)
    DispatchQueue.concurrentPerform(iterations: parts, execute: shared)
  }
}
