import Dispatch
import Synchronization
import Testing

@testable import SomaTensor

/// `parallel` runs on Soma's spinning pool when it is free and on Dispatch otherwise; either
/// way every part must run exactly once before it returns.
@Suite struct ParallelTests {
  /// Runs `parallel(parts)` and returns how often each part ran.
  static func counts(_ parts: Int) -> [Int] {
    let hits = UnsafeMutablePointer<Int>.allocate(capacity: parts)
    hits.initialize(repeating: 0, count: parts)
    defer { hits.deallocate() }
    parallel(parts) { part in hits[part] += 1 }
    return Array(UnsafeBufferPointer(start: hits, count: parts))
  }

  @Test(arguments: [2, 3, 7, 64, 1000])
  func everyPartRunsOnce(_ parts: Int) {
    for _ in 0..<200 {
      #expect(Self.counts(parts) == Array(repeating: 1, count: parts))
    }
  }

  @Test func backToBackJobsSeeTheirOwnWork() {
    // Each job writes its generation; a part run for the wrong job would leave a stale value.
    let slots = UnsafeMutablePointer<Int>.allocate(capacity: 4)
    defer { slots.deallocate() }
    for job in 0..<5_000 {
      slots.initialize(repeating: -1, count: 4)
      parallel(4) { part in slots[part] = job }
      #expect((0..<4).allSatisfy { slots[$0] == job }, "job \(job)")
    }
  }

  @Test func nestedAndConcurrentCallersAllFinish() {
    // Eight threads each run nested parallel loops at once: one holds the pool, the others
    // (and every inner call) fall back to Dispatch. All parts must still run exactly once.
    let total = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: 8) { _ in
      for _ in 0..<50 {
        parallel(3) { _ in
          parallel(2) { _ in total.add(1, ordering: .relaxed) }
        }
      }
    }
    #expect(total.load(ordering: .relaxed) == 8 * 50 * 3 * 2)
  }

  @Test func poolWakesAfterItsWorkersSleep() async throws {
    #expect(Self.counts(2) == [1, 1])
    try await Task.sleep(for: .milliseconds(5))  // longer than the workers spin
    #expect(Self.counts(2) == [1, 1])
  }
}
