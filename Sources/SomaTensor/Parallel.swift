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

/// Work handed to an idle worker of the pool behind `parallel`, to run in time the worker
/// would otherwise spend waiting between parallel regions: a training loop prepares the next
/// batch this way during the current step without a third runnable thread competing for the
/// cores. `wait()` returns once the work has finished; if no worker has started it by then
/// (or none could take it), `wait()` runs it on the calling thread.
///
/// `body` should call `PoolBackgroundTask.yield()` every few tens of microseconds, which lets
/// a region started meanwhile have its worker back, and should not call `parallel` itself (on
/// the worker its parts would run one after another). Call `wait()` on every task: until then
/// the pool takes no other background task, and later ones run in their own `wait()`.
///
/// ```swift
/// let next = PoolBackgroundTask { encode(batch2, into: slot) }   // starts on an idle worker
/// trainStep(batch1)                                              // regions run as usual
/// next.wait()                                                    // slot is ready
/// ```
public final class PoolBackgroundTask: @unchecked Sendable {
  private let body: () -> Void
  private var posted = false
  private var finished = false

  public init(_ body: @escaping () -> Void) {
    self.body = body
    // Retained until `wait()`: a worker may call back into this object until then.
    let ctx = Unmanaged.passRetained(self).toOpaque()
    posted = soma_pool_background({ ctx in
      Unmanaged<PoolBackgroundTask>.fromOpaque(ctx!).takeUnretainedValue().body()
    }, ctx) != 0
    if !posted { Unmanaged<PoolBackgroundTask>.fromOpaque(ctx).release() }
  }

  /// Blocks until `body` has run (on a worker or, if none started it, here).
  public func wait() {
    if finished { return }
    finished = true
    if posted {
      soma_pool_background_wait()
      Unmanaged.passUnretained(self).release()
    } else {
      body()
    }
  }

  /// From inside a background task: runs the worker's parts of any parallel region that has
  /// started since the last call. Does nothing on other threads.
  public static func yield() { soma_pool_yield() }
}
