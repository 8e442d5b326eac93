import SomaData

/// metrics.csv and curves.svg, rewritten atomically after each epoch.
enum TrainingReport {
  static func csv(_ metrics: [EpochMetrics]) -> String {
    var s = "epoch,train_loss,train_acc,test_acc,seconds\n"
    for m in metrics {
      s += "\(m.epoch),\(m.trainLoss),\(m.trainAccuracy),\(m.testAccuracy),\(m.seconds)\n"
    }
    return s
  }

  static func writeMetrics(_ metrics: [EpochMetrics], to path: String) throws {
    try AtomicFile.write(Array(csv(metrics).utf8), to: path)
  }

  static func writeCurves(_ metrics: [EpochMetrics], to path: String) throws {
    try AtomicFile.write(Array(curvesSVG(metrics).utf8), to: path)
  }

  static func curvesSVG(_ metrics: [EpochMetrics]) -> String {
    // Replaced by SomaData's chart writer when it lands.
    ""
  }
}
