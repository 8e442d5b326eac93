/// One epoch's numbers, as `metrics.csv` records them.
public struct EpochMetrics: Sendable, Equatable {
  public var epoch: Int
  public var trainLoss: Double
  /// Training accuracy in [0, 1].
  public var trainAccuracy: Double
  /// Test accuracy in [0, 1].
  public var testAccuracy: Double
  /// Wall-clock seconds the epoch took.
  public var seconds: Double

  public init(
    epoch: Int, trainLoss: Double, trainAccuracy: Double, testAccuracy: Double, seconds: Double
  ) {
    self.epoch = epoch
    self.trainLoss = trainLoss
    self.trainAccuracy = trainAccuracy
    self.testAccuracy = testAccuracy
    self.seconds = seconds
  }
}

/// The per-epoch metrics of a training run, kept in a CSV file that is rewritten whole (and
/// atomically) after every epoch, so it is always complete and readable.
///
/// ```swift
/// var log = MetricsLog(path: "runs/x/metrics.csv")
/// try log.append(EpochMetrics(epoch: 1, trainLoss: 0.61, trainAccuracy: 0.78,
///                             testAccuracy: 0.81, seconds: 24.9))
/// // epoch,train_loss,train_acc,test_acc,seconds
/// // 1,0.61,0.78,0.81,24.9
/// ```
public struct MetricsLog: Sendable {
  /// The CSV header line.
  public static let header = "epoch,train_loss,train_acc,test_acc,seconds"

  /// Where the CSV is written.
  public let path: String
  /// The epochs logged so far.
  public private(set) var rows: [EpochMetrics]

  /// A log writing to `path`, starting from `rows` (e.g. read back when resuming).
  public init(path: String, rows: [EpochMetrics] = []) {
    self.path = path
    self.rows = rows
  }

  /// Adds one epoch and rewrites the file.
  public mutating func append(_ metrics: EpochMetrics) throws {
    rows.append(metrics)
    try AtomicFile.write(Array(MetricsLog.csv(rows).utf8), to: path)
  }

  /// The CSV text for `rows`: the header, then one line per epoch; numbers in Swift's shortest
  /// round-trip form.
  public static func csv(_ rows: [EpochMetrics]) -> String {
    var out = header + "\n"
    for r in rows {
      out += "\(r.epoch),\(r.trainLoss),\(r.trainAccuracy),\(r.testAccuracy),\(r.seconds)\n"
    }
    return out
  }

  /// Parses CSV text written by `csv(_:)`; `path` only names the source in errors.
  public static func parse(_ text: String, path: String = "metrics.csv")
    throws(SomaDataError) -> [EpochMetrics]
  {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
    guard let first = lines.first, first.trimmingSuffix("\r") == header else {
      throw SomaDataError.malformed(path, "its first line is not \"\(header)\"")
    }
    lines.removeFirst()
    var rows: [EpochMetrics] = []
    for (i, line) in lines.enumerated() {
      let f = line.trimmingSuffix("\r").split(separator: ",", omittingEmptySubsequences: false)
      guard f.count == 5, let e = Int(f[0]), let a = Double(f[1]), let b = Double(f[2]),
        let c = Double(f[3]), let d = Double(f[4])
      else {
        throw SomaDataError.malformed(path, "line \(i + 2) is not five numbers")
      }
      rows.append(EpochMetrics(epoch: e, trainLoss: a, trainAccuracy: b, testAccuracy: c, seconds: d))
    }
    return rows
  }

  /// Reads a `metrics.csv` file.
  public static func read(_ path: String) throws(SomaDataError) -> [EpochMetrics] {
    let bytes = try ReadableFile(path: path).readAll()
    return try parse(String(decoding: bytes, as: UTF8.self), path: path)
  }
}

extension Substring {
  func trimmingSuffix(_ s: String) -> Substring { hasSuffix(s) ? dropLast(s.count) : self }
}
