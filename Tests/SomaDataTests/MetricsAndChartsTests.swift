import Foundation
#if canImport(FoundationXML)
  import FoundationXML
#endif
import SomaData
import SomaTensor
import Testing

/// Counts the elements of an XML document by name; `parse` is false if it is not well formed.
final class ElementCounter: NSObject, XMLParserDelegate {
  var counts: [String: Int] = [:]
  var root: String?
  var texts: [String] = []

  func parser(
    _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
    qualifiedName: String?, attributes: [String: String] = [:]
  ) {
    if root == nil { root = name }
    counts[name, default: 0] += 1
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }

  static func parse(_ svg: String) -> (ok: Bool, counter: ElementCounter) {
    let counter = ElementCounter()
    let parser = XMLParser(data: Data(svg.utf8))
    parser.delegate = counter
    let ok = parser.parse()
    return (ok, counter)
  }
}

let sampleRows = (1...12).map { e in
  EpochMetrics(
    epoch: e, trainLoss: 1.5 / Double(e), trainAccuracy: 0.6 + 0.02 * Double(e),
    testAccuracy: 0.58 + 0.021 * Double(e), seconds: 24.5 + Double(e) / 10)
}

@Suite struct MetricsAndChartsTests {
  @Test func metricsLogRewritesTheWholeFileEachEpoch() throws {
    let dir = try TemporaryDirectory()
    var log = MetricsLog(path: dir.file("metrics.csv"))
    try log.append(sampleRows[0])
    let first = String(decoding: try dir.read("metrics.csv"), as: UTF8.self)
    #expect(first == "epoch,train_loss,train_acc,test_acc,seconds\n1,1.5,0.62,0.601,24.6\n")
    try log.append(sampleRows[1])
    let lines = String(decoding: try dir.read("metrics.csv"), as: UTF8.self)
      .split(separator: "\n")
    #expect(lines.count == 3)
    #expect(try MetricsLog.read(dir.file("metrics.csv")) == Array(sampleRows[0..<2]))
    #expect(try dir.contents() == ["metrics.csv"])
    #expect(throws: SomaDataError.self) { try MetricsLog.parse("epoch,loss\n1,2\n") }
    #expect(throws: SomaDataError.self) { try MetricsLog.parse(MetricsLog.header + "\n1,2,x,4,5\n") }
  }

  @Test func curvesAreWellFormedSVG() {
    for rows in [sampleRows, Array(sampleRows.prefix(1)), []] {
      let svg = TrainingCurves.svg(rows, title: "run <a & b>")
      let (ok, c) = ElementCounter.parse(svg)
      #expect(ok, "the SVG does not parse as XML")
      #expect(c.root == "svg")
      #expect(c.texts.joined().contains("run <a & b>"))  // escaped in the file, intact when parsed
      if rows.count > 1 {
        // Loss, train accuracy, test accuracy.
        #expect(c.counts["polyline"] == 3)
        #expect(c.counts["circle"] == 3 * rows.count)
      }
    }
    let svg = TrainingCurves.svg(sampleRows)
    #expect(svg.contains("test accuracy") && svg.contains("train loss") && svg.contains("epoch"))
  }

  @Test func curvesSurviveNonFiniteValues() {
    var rows = sampleRows
    rows[3].trainLoss = .nan
    rows[4].testAccuracy = .infinity
    let (ok, c) = ElementCounter.parse(TrainingCurves.svg(rows))
    #expect(ok)
    #expect(!TrainingCurves.svg(rows).contains("nan"))
    #expect((c.counts["polyline"] ?? 0) >= 3)
  }

  @Test func rasterDrawsOneDotPerSpikeAndOneTracePerOutput() {
    var g = SomaRandom(seed: 2)
    let spikes = Tensor<Float>.bernoulli([40, 30], p: 0.05, using: &g)
    let membranes = Tensor<Float>.normal([40, 10], using: &g)
    let svg = SpikeRaster.svg(
      hiddenSpikes: spikes, outputMembranes: membranes, classNames: FashionMNIST.classNames,
      label: 9, prediction: 7, title: "test sample 0")
    let (ok, c) = ElementCounter.parse(svg)
    #expect(ok)
    #expect(c.root == "svg")
    let spikeCount = spikes.scalars.filter { $0 != 0 }.count
    #expect(spikeCount > 0)
    #expect(c.counts["circle"] == spikeCount)
    #expect(c.counts["polyline"] == 10)
    #expect(c.texts.joined().contains("9 Ankle boot"))
  }
}
