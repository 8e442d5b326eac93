import Foundation

/// A one-line progress bar redrawn in place on a terminal; silent otherwise.
struct ProgressBar {
  let total: Int
  let label: String
  let enabled: Bool
  let start = Date()

  init(total: Int, label: String, enabled: Bool = true) {
    self.total = total
    self.label = label
    self.enabled = enabled && isatty(STDOUT_FILENO) != 0
  }

  func update(step: Int, loss: Double, accuracy: Double) {
    guard enabled else { return }
    let elapsed = Date().timeIntervalSince(start)
    let rate = elapsed > 0 ? Double(step) / elapsed : 0
    let eta = rate > 0 ? Double(total - step) / rate : 0
    let width = 24
    let filled = total > 0 ? width * step / total : width
    let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
    let line = String(
      format: "\r%@ %@ %d/%d loss %.4f acc %.1f%% %.1f steps/s ETA %.0fs ", label, bar, step,
      total, loss, accuracy * 100, rate, eta)
    FileHandle.standardOutput.write(line.data(using: .utf8)!)
  }

  func finish() {
    guard enabled else { return }
    FileHandle.standardOutput.write("\r\u{1B}[2K".data(using: .utf8)!)
  }
}
