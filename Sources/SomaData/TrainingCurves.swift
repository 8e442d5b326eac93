/// Draws a run's learning curves as a standalone SVG: training loss per epoch on the left,
/// training and test accuracy (%) per epoch on the right.
///
/// ```swift
/// let svg = TrainingCurves.svg(log.rows, title: "fmnist-spytorch, S2NN")
/// try AtomicFile.write(Array(svg.utf8), to: "runs/x/curves.svg")
/// ```
public enum TrainingCurves {
  static let lossColor = "#1f77b4"
  static let trainColor = "#ff7f0e"
  static let testColor = "#2ca02c"

  /// The SVG text for `rows` (any number, including none: then the axes are empty).
  public static func svg(_ rows: [EpochMetrics], title: String = "Training curves") -> String {
    let width = 960.0, height = 400.0
    var doc = SVGDocument(width: width, height: height)
    doc.text(width / 2, 26, title, size: 16, weight: "bold")

    let epochs = rows.map { Double($0.epoch) }
    let (xTicks, xRange) = epochTicks(epochs)
    let xDecimals = 0

    // Loss panel.
    let losses = rows.map(\.trainLoss).filter(\.isFinite)
    let (lossTicks, lossRange) = niceTicks(
      min(0, losses.min() ?? 0), losses.max() ?? 1, count: 5)
    let lossArea = PlotArea(
      x: 80, y: 60, width: 360, height: 270, xRange: xRange, yRange: lossRange)
    doc.text(lossArea.x + lossArea.width / 2, 50, "Loss", size: 13, weight: "bold")
    let lossStep = lossTicks.count > 1 ? lossTicks[1] - lossTicks[0] : 1
    lossArea.drawAxes(
      into: &doc, xTicks: xTicks, yTicks: lossTicks, xLabel: "epoch", yLabel: "training loss",
      xFormat: { fixed($0, xDecimals) }, yFormat: { fixed($0, decimals(forStep: lossStep)) })
    doc.polyline(
      rows.map { (lossArea.px(Double($0.epoch)), lossArea.py($0.trainLoss)) }, stroke: lossColor)
    markers(&doc, rows.map { (lossArea.px(Double($0.epoch)), lossArea.py($0.trainLoss)) }, lossColor)
    lossArea.drawLegend(into: &doc, entries: [("train loss", lossColor, nil)])

    // Accuracy panel, in percent.
    let accs = (rows.map(\.trainAccuracy) + rows.map(\.testAccuracy)).filter(\.isFinite)
      .map { $0 * 100 }
    let lowAcc = accs.min() ?? 0
    let (accTicks, accRange) = niceTicks(
      max(0, lowAcc - 5), min(100, max((accs.max() ?? 100) + 2, lowAcc + 1)), count: 5)
    let accArea = PlotArea(
      x: 560, y: 60, width: 360, height: 270, xRange: xRange, yRange: accRange)
    doc.text(accArea.x + accArea.width / 2, 50, "Accuracy", size: 13, weight: "bold")
    let accStep = accTicks.count > 1 ? accTicks[1] - accTicks[0] : 1
    accArea.drawAxes(
      into: &doc, xTicks: xTicks, yTicks: accTicks, xLabel: "epoch", yLabel: "accuracy (%)",
      xFormat: { fixed($0, xDecimals) }, yFormat: { fixed($0, decimals(forStep: accStep)) })
    let trainPts = rows.map { (accArea.px(Double($0.epoch)), accArea.py($0.trainAccuracy * 100)) }
    let testPts = rows.map { (accArea.px(Double($0.epoch)), accArea.py($0.testAccuracy * 100)) }
    doc.polyline(trainPts, stroke: trainColor, dash: "6 3")
    doc.polyline(testPts, stroke: testColor)
    markers(&doc, trainPts, trainColor)
    markers(&doc, testPts, testColor)
    var legend: [(label: String, color: String, dash: String?)] = [
      ("train accuracy", trainColor, "6 3"), ("test accuracy", testColor, nil),
    ]
    if let best = rows.filter({ $0.testAccuracy.isFinite }).max(by: {
      $0.testAccuracy < $1.testAccuracy
    }) {
      legend.append(("best test \(fixed(best.testAccuracy * 100, 2)) % (epoch \(best.epoch))",
        "none", nil))
    }
    accArea.drawLegend(into: &doc, entries: legend, bottom: true)
    return doc.rendered()
  }

  /// Integer epoch ticks (at most ~10) and the x range.
  static func epochTicks(_ epochs: [Double]) -> ([Double], ClosedRange<Double>) {
    let lo = epochs.min() ?? 1, hi = epochs.max() ?? 1
    if hi <= lo { return ([lo], (lo - 1)...(lo + 1)) }
    let span = hi - lo
    var step = 1.0
    for s in [1.0, 2, 5, 10, 20, 50, 100, 200, 500, 1000] where span / s <= 10 {
      step = s
      break
    }
    if span / step > 10 { step = (span / 10).rounded(.up) }
    var ticks: [Double] = []
    var t = (lo / step).rounded(.up) * step
    while t <= hi {
      ticks.append(t)
      t += step
    }
    return (ticks, lo...hi)
  }

  static func markers(_ doc: inout SVGDocument, _ points: [(Double, Double)], _ color: String) {
    guard points.count <= 60 else { return }
    for (x, y) in points where x.isFinite && y.isFinite {
      doc.add("<circle cx=\"\(fmt(x))\" cy=\"\(fmt(y))\" r=\"3\" fill=\"\(color)\"/>")
    }
  }
}
