import Foundation

/// One benchmark figure.
public struct BenchResult: Sendable {
  public var name: String
  /// Median milliseconds per call.
  public var msPerCall: Double
  /// Calls timed (after warm-up).
  public var calls: Int
  /// An optional throughput figure and its unit, e.g. (1.2, "G elem/s").
  public var throughput: (value: Double, unit: String)?
  /// Free-form note, e.g. a ratio against a reference.
  public var note: String

  public init(
    name: String, msPerCall: Double, calls: Int, throughput: (value: Double, unit: String)? = nil,
    note: String = ""
  ) {
    self.name = name
    self.msPerCall = msPerCall
    self.calls = calls
    self.throughput = throughput
    self.note = note
  }
}

/// Times closures the way BENCHMARKS.md asks: warm-up calls, then calls until at least
/// `seconds` have passed (and at least `minCalls`), reporting the median.
public enum BenchTimer {
  /// Monotonic time in seconds.
  @inline(__always)
  public static func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }

  /// The median of `samples`.
  public static func median(_ samples: [Double]) -> Double {
    precondition(!samples.isEmpty, "median of no samples")
    let s = samples.sorted()
    let n = s.count
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  }

  /// Runs `body` `warmup` times, then times it repeatedly; returns (median ms, calls).
  public static func measure(
    seconds: Double, warmup: Int = 3, minCalls: Int = 5, _ body: () -> Void
  ) -> (ms: Double, calls: Int) {
    for _ in 0..<warmup { body() }
    var samples: [Double] = []
    let end = now() + seconds
    while now() < end || samples.count < minCalls {
      let t0 = now()
      body()
      samples.append((now() - t0) * 1e3)
    }
    return (median(samples), samples.count)
  }
}
