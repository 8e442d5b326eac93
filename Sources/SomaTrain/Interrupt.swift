import Foundation
import Synchronization

/// Set by the first Ctrl-C; the training loop checks it after each step.
package let interruptRequested = Atomic<Bool>(false)

/// Makes Ctrl-C request a clean stop (finish the step, write a checkpoint). A second Ctrl-C
/// kills the process as usual.
package func installInterruptHandler() {
  signal(SIGINT) { _ in
    interruptRequested.store(true, ordering: .relaxed)
    signal(SIGINT, SIG_DFL)
  }
}
