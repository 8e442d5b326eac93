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

  @Test func backToBackJobsOfChangingSizeRunEachPartOnce() {
    // A worker late from a 2-part job must not take the next (larger) job's part count for its
    // own and claim part 2 under the old generation (the race ThreadSanitizer found: the count
    // was a plain field). Any part run twice, or run for the wrong job, shows in the counts;
    // under TSan the unsynchronised read itself is reported.
    let hits = UnsafeMutablePointer<Int>.allocate(capacity: 64)
    defer { hits.deallocate() }
    for job in 0..<4_000 {
      let parts = job % 2 == 0 ? 2 : 64
      hits.initialize(repeating: 0, count: 64)
      parallel(parts) { part in hits[part] += 1 }
      let counts = Array(UnsafeBufferPointer(start: hits, count: 64))
      #expect(
        counts == Array(repeating: 1, count: parts) + Array(repeating: 0, count: 64 - parts),
        "job \(job)")
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

  @Test func backgroundTaskRunsOnceAndIsDoneAfterWait() {
    for _ in 0..<500 {
      let ran = Atomic<Int>(0)
      let task = PoolBackgroundTask { ran.add(1, ordering: .relaxed) }
      task.wait()
      #expect(ran.load(ordering: .relaxed) == 1)
      task.wait()  // a second wait returns at once and runs nothing
      #expect(ran.load(ordering: .relaxed) == 1)
    }
  }

  @Test func regionsRunWhileABackgroundTaskYields() {
    // A long background task that yields often; parallel regions started meanwhile must all
    // complete with every part run once, and the task must finish its own work too.
    _ = Self.counts(2)  // make sure the pool has its worker
    for _ in 0..<20 {
      let chunks = Atomic<Int>(0)
      let task = PoolBackgroundTask {
        for _ in 0..<200 {
          var x = 0.0
          for i in 0..<2_000 { x += Double(i).squareRoot() }
          if x > 0 { chunks.add(1, ordering: .relaxed) }
          PoolBackgroundTask.yield()
        }
      }
      for _ in 0..<50 { #expect(Self.counts(2) == [1, 1]) }
      task.wait()
      #expect(chunks.load(ordering: .relaxed) == 200)
    }
  }

  @Test func aSecondBackgroundTaskRunsInItsWait() {
    let order = Mutex<[Int]>([])
    let first = PoolBackgroundTask {
      for _ in 0..<100 { PoolBackgroundTask.yield() }
      order.withLock { $0.append(1) }
    }
    // Only one task can be posted at a time: the second one runs when it is waited for.
    let second = PoolBackgroundTask { order.withLock { $0.append(2) } }
    second.wait()
    first.wait()
    let seen = order.withLock { $0 }
    #expect(seen.sorted() == [1, 2])
    // And the pool takes background tasks again afterwards.
    let ran = Atomic<Bool>(false)
    let third = PoolBackgroundTask { ran.store(true, ordering: .relaxed) }
    third.wait()
    let thirdRan = ran.load(ordering: .relaxed)
    #expect(thirdRan)
  }
}
