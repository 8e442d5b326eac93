import Foundation
import Synchronization

/// A request to stop training cleanly (finish the step, write a checkpoint), checked by the
/// training loop after each step.
package final class StopFlag: Sendable {
  let requested = Atomic<Bool>(false)
  package init() {}
  package func request() { requested.store(true, ordering: .relaxed) }
  package var isRequested: Bool { requested.load(ordering: .relaxed) }
  package func clear() { requested.store(false, ordering: .relaxed) }
}

/// Set by the first Ctrl-C; a `Trainer` checks it unless given a flag of its own.
package let interruptRequested = StopFlag()

/// Makes Ctrl-C request a clean stop (finish the step, write a checkpoint). A second Ctrl-C
/// kills the process as usual.
package func installInterruptHandler() {
  _ = interruptRequested  // initialised here, never first inside the handler
  signal(SIGINT) { _ in
    interruptRequested.request()
    signal(SIGINT, SIG_DFL)
  }
}
