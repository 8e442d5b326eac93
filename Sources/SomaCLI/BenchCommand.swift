import SomaTrain
import SomaNN
import ArgumentParser
import Foundation

/// `soma bench WORKLOAD`: times a workload in this process (build with `-c release`).
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Time a workload: tensor, surrogate, or a training step of a benchmark network.",
    discussion: "Workloads are defined in docs/Benchmarks.md. Build with -c release.")

  @Argument(help: "One of: \(BenchCommand.workloads.joined(separator: ", ")).")
  var workload: String

  @Flag(help: "Print one JSON object per result.")
  var json = false

  @Option(help: "Threads for Soma's parallel loops (OpenBLAS runs single-threaded inside them).")
  var threads: Int = 2

  @Option(help: "Seconds to time each measurement (after warm-up).")
  var seconds: Double = 5

  @Option(
    help: ArgumentHelp(
      "For fmnist-spytorch: the surrogate as NAME[:key=value,...] (default: the benchmark's own, InvSquareGrad:alpha=100), to time the same step with another one. For fmnist-train-loop: the surrogate of both sides of the loop comparison (default: soma train's, S2NN); its defaults comparison always runs soma train's defaults against the benchmark's own network.",
      valueName: "spec"))
  var surrogate: String?

  @Option(
    help: ArgumentHelp(
      "For the mlp-* workloads: when Linear layers read spike input as events — auto (the CPU's measured crossover), always, never (dense GEMMs).",
      valueName: "policy"))
  var events: String = "auto"

  static var workloads: [String] { ["tensor", "surrogate"] + NetworkBench.workloads }

  func validate() throws {
    guard BenchCommand.workloads.contains(workload) else {
      throw ValidationError(
        "unknown workload '\(workload)'; expected one of \(BenchCommand.workloads.joined(separator: ", "))"
      )
    }
    guard threads >= 1 && threads <= 64 else {
      throw ValidationError("--threads must be in 1...64, got \(threads)")
    }
    guard seconds > 0 && seconds.isFinite else {
      throw ValidationError("--seconds must be a positive number, got \(seconds)")
    }
    guard ["auto", "always", "never"].contains(events) else {
      throw ValidationError("--events must be auto, always or never, got '\(events)'")
    }
    if events != "auto" && !workload.hasPrefix("mlp-") {
      throw ValidationError("--events applies to the mlp-* workloads only, not \(workload)")
    }
    if surrogate != nil && !workload.hasPrefix("fmnist-") {
      throw ValidationError(
        "--surrogate applies to fmnist-spytorch and fmnist-train-loop only, not \(workload)")
    }
  }

  func run() throws {
    BLASInfo.setThreads(threads)
    let results: [BenchResult]
    switch workload {
    case "tensor": results = TensorBench.run(seconds: seconds)
    case "surrogate": results = SurrogateBench.run(seconds: seconds)
    default:
      let s = try surrogate.map { try SurrogateSpec(parsing: $0).make() }
      let policy: EventPolicy =
        events == "always" ? .always : events == "never" ? .never : .automatic
      results = try NetworkBench.run(
        workload, seconds: seconds, threads: threads, surrogate: s, events: policy)
    }
    for r in results { print(json ? jsonLine(r) : textLine(r)) }
  }

  func textLine(_ r: BenchResult) -> String {
    var line = "\(r.name): \(String(format: "%.4f", r.msPerCall)) ms (median of \(r.calls))"
    if let t = r.throughput { line += ", \(String(format: "%.3f", t.value)) \(t.unit)" }
    if !r.note.isEmpty { line += "  \(r.note)" }
    return line
  }

  func jsonLine(_ r: BenchResult) -> String {
    var fields = [
      "\"workload\": \"\(r.name)\"", "\"ms_per_step\": \(r.msPerCall)", "\"steps\": \(r.calls)",
      "\"threads\": \(threads)",
    ]
    if let t = r.throughput {
      fields.append("\"throughput\": \(t.value)")
      fields.append("\"unit\": \"\(t.unit)\"")
    }
    if !r.note.isEmpty { fields.append("\"note\": \"\(r.note)\"") }
    return "{" + fields.joined(separator: ", ") + "}"
  }
}
