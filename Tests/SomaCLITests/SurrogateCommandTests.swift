import ArgumentParser
import Foundation
#if canImport(FoundationXML)
  import FoundationXML
#endif
import Soma
import Testing

@testable import SomaCLI

/// Parses `soma surrogate ...` as the executable would.
func parseSurrogate<C: ParsableCommand>(_ args: [String], as _: C.Type) throws -> C {
  let parsed = try SomaCommand.parseAsRoot(["surrogate"] + args)
  return try #require(parsed as? C, "parsed \(type(of: parsed))")
}

/// The JSON object printed by `table --format json`.
func tableJSON(_ args: [String]) throws -> [String: Any] {
  let c = try parseSurrogate(args + ["--format", "json"], as: SurrogateTableCommand.self)
  let text = try c.render()
  #expect(text.hasSuffix("}\n"))
  #expect(text.filter { $0 == "\n" }.count == 1, "one line")
  return try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

func numbers(_ any: Any?) -> [Double]? { (any as? [NSNumber])?.map(\.doubleValue) }

/// The array `key` of a one-line JSON table, each number read back with `Double(_:)` (correctly
/// rounded, unlike some JSONSerialization builds).
func exactArray(_ text: String, _ key: String) -> [Double]? {
  guard let start = text.range(of: "\"\(key)\": [") else { return nil }
  let rest = text[start.upperBound...]
  guard let end = rest.firstIndex(of: "]") else { return nil }
  return rest[..<end].split(separator: ", ").map { Double(String($0))! }
}

@Suite("soma surrogate")
struct SurrogateCommandTests {
  @Test func listHasOneLinePerSurrogateWithDefaults() throws {
    let c = try parseSurrogate(["list"], as: SurrogateListCommand.self)
    let lines = c.render().split(separator: "\n")
    #expect(lines.count == 18)
    #expect(lines.contains("S2NN (s2nn): alpha=4 beta=1 epsilon=1e-08"))
    #expect(lines.contains { $0.hasPrefix("SquarewaveFourierSeries (squarewave_fourier_series): n=2 t_period=8") })
    #expect(lines.filter { $0.hasSuffix("[no primitive]") }.count == 5)
  }

  @Test func jsonHasTheExactShape() throws {
    let c = try parseSurrogate(
      ["table", "S2NN", "--x", "-1,0,1", "--format", "json"], as: SurrogateTableCommand.self)
    let text = try c.render()
    // Key order and separators as the issue specifies.
    #expect(text.hasPrefix(
      #"{"name": "S2NN", "params": {"alpha": 4, "beta": 1, "epsilon": 1e-08}, "precision": "double", "x": [-1, 0, 1], "spike": [0, 1, 1], "derivative": ["#))
    let keys = ["\"name\"", "\"params\"", "\"precision\"", "\"x\"", "\"spike\"", "\"derivative\"", "\"primitive\""]
    let positions = keys.map { text.range(of: $0)!.lowerBound }
    #expect(positions == positions.sorted())
  }

  @Test func jsonNumbersRoundTripInDouble() throws {
    let args = ["table", "s2nn", "--from", "-3", "--to", "3", "--count", "61", "--format", "json"]
    let text = try parseSurrogate(args, as: SurrogateTableCommand.self).render()
    let obj = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    let x = try #require(exactArray(text, "x"))
    let d = try #require(exactArray(text, "derivative"))
    let p = try #require(exactArray(text, "primitive"))
    #expect(x.count == 61 && x.first == -3 && x.last == 3)
    let s = S2NN()
    // The shortest round-trip text reads back to exactly the same Double.
    for i in x.indices {
      #expect(d[i] == s.derivative(x[i]))
      #expect(p[i] == s.primitive(x[i])!)
    }
    #expect(obj["precision"] as? String == "double")
  }

  @Test func floatPrecisionPrintsShortestFloatText() throws {
    let c = try parseSurrogate(
      ["table", "sigmoid", "--x", "-0.1,0.3", "--precision", "float"], as: SurrogateTableCommand.self)
    let rows = try c.render().split(separator: "\n")
    #expect(rows[0] == "x,spike,derivative,primitive")
    let s = Sigmoid()
    for (row, x) in zip(rows.dropFirst(), [Float(-0.1), Float(0.3)]) {
      let cols = row.split(separator: ",").map(String.init)
      #expect(cols.count == 4)
      #expect(Float(cols[0]) == x)
      #expect(cols[0] == x.description)
      #expect(Float(cols[2]) == s.derivative(Tensor<Float>([x])).scalars[0])
      #expect(Float(cols[3]) == s.primitive(x))
    }
  }

  @Test func noPrimitiveGivesNullAndThreeCSVColumns() throws {
    let obj = try tableJSON(["table", "InvSquareGrad", "--x", "-0.01,0,0.01"])
    #expect(obj["primitive"] is NSNull)
    #expect(numbers(obj["derivative"]) == [0.25, 1, 0.25])
    let c = try parseSurrogate(["table", "inv_square_grad", "--x", "0"], as: SurrogateTableCommand.self)
    #expect(try c.render() == "x,spike,derivative\n0,1,1\n")
  }

  @Test func negativeNumbersWorkInEveryNumericOption() throws {
    let a = try tableJSON(["table", "arctan", "--x", "-1,0,1"])
    #expect(numbers(a["x"]) == [-1, 0, 1])
    let b = try tableJSON(["table", "arctan", "--from", "-3", "--to", "-1", "--count", "3"])
    #expect(numbers(b["x"]) == [-3, -2, -1])
    let c = try tableJSON(["table", "leaky_relu", "--param", "alpha=0.2", "--x", "-2.5"])
    #expect(numbers(c["derivative"]) == [0.2])
    let plot = try parseSurrogate(
      ["plot", "s2nn", "--from", "-5", "--to", "-1", "-o", "/dev/null"],
      as: SurrogatePlotCommand.self)
    #expect(plot.from == "-5" && plot.to == "-1")
  }

  @Test func parametersAreApplied() throws {
    let obj = try tableJSON(
      ["table", "SquarewaveFourierSeries", "--param", "n=4", "--param", "t_period=6", "--x", "0"])
    let params = try #require(obj["params"] as? [String: NSNumber])
    #expect(params["n"] == 4 && params["t_period"] == 6)
    #expect(numbers(obj["derivative"]) == [4 * 4.0 / 6])
  }

  @Test(
    "bad input is one sentence and exit code 2",
    arguments: [
      (["table", "nope", "--x", "1"], "unknown surrogate 'nope'"),
      (["table", "s2nn", "--param", "gamma=1", "--x", "1"], "accepted: alpha, beta, epsilon"),
      (["table", "s2nn", "--param", "alpha", "--x", "1"], "expected KEY=VALUE"),
      (["table", "s2nn", "--param", "alpha=x", "--x", "1"], "not a finite number"),
      (["table", "s2nn", "--param", "alpha=-1", "--x", "1"], "alpha must be > 0, got -1"),
      (["table", "s2nn", "--from", "3", "--to", "-3"], "empty range"),
      (["table", "s2nn", "--from", "0", "--to", "1", "--count", "1"], "--count"),
      (["table", "s2nn", "--x", ""], "--x is empty"),
      (["table", "s2nn", "--x", "1,,2"], "--x"),
      (["table", "s2nn"], "--x"),
      (["table", "s2nn", "--x", "1", "--format", "xml"], "--format"),
      (["table", "s2nn", "--x", "1", "--precision", "half"], "--precision"),
    ])
  func badTableInput(_ args: [String], _ message: String) throws {
    let c = try parseSurrogate(args, as: SurrogateTableCommand.self)
    #expect {
      _ = try c.render()
    } throws: { error in
      let e = error as? SurrogateInputError
      return e != nil && e!.description.contains(message) && !e!.description.contains("\n")
    }
    var runnable = c
    #expect(throws: ExitCode(2)) { try runnable.run() }
  }

  @Test func plotWritesAStandaloneSVG() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "soma-surrogate-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("s2nn.svg").path
    var c = try parseSurrogate(
      ["plot", "s2nn", "--set", "alpha=4", "--set", "alpha=8,beta=2", "--from", "-3", "--to", "3",
       "-o", path], as: SurrogatePlotCommand.self)
    try c.run()
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let svg = SVGSummary(data)
    #expect(svg.parsed, "XMLParser: \(svg.error ?? "")")
    #expect(svg.root == "svg")
    #expect(svg.namespace == "http://www.w3.org/2000/svg")
    // Two derivative curves, two primitive curves, the dashed Heaviside.
    #expect(svg.polylines == 5)
    #expect(svg.texts.contains("alpha=4, beta=1, epsilon=1e-08"))
    #expect(svg.texts.contains("alpha=8, beta=2, epsilon=1e-08"))
    #expect(svg.texts.contains("x"))
    #expect(svg.texts.contains("-3") && svg.texts.contains("3"))
    #expect(svg.texts.contains { $0.contains("derivative") })
    #expect(svg.texts.contains { $0.contains("primitive") })
    #expect(svg.lines > 20, "grid lines and ticks")
  }

  @Test func plotWithoutPrimitiveStillDrawsTheSpike() throws {
    let c = try parseSurrogate(["plot", "GaussianGrad", "-o", "/dev/null"], as: SurrogatePlotCommand.self)
    let svg = SVGSummary(Data(try c.render().utf8))
    #expect(svg.parsed)
    #expect(svg.polylines == 2)
    #expect(svg.texts.contains { $0.contains("no smooth primitive") })
  }

  @Test(
    "bad plot input writes nothing",
    arguments: [
      ["--set", "alpha=-4"], ["--set", "gamma=1"], ["--from", "2", "--to", "-2"], ["--to", "abc"],
    ])
  func badPlotInputWritesNothing(_ extra: [String]) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent(
      "soma-bad-\(UUID().uuidString).svg").path
    var c = try parseSurrogate(["plot", "s2nn"] + extra + ["-o", path], as: SurrogatePlotCommand.self)
    #expect(throws: ExitCode(2)) { try c.run() }
    #expect(!FileManager.default.fileExists(atPath: path))
  }
}

/// What XMLParser saw in an SVG document.
final class SVGSummary: NSObject, XMLParserDelegate {
  var parsed = false
  var error: String?
  var root: String?
  var namespace: String?
  var polylines = 0
  var lines = 0
  var texts: [String] = []
  private var inText = false
  private var current = ""

  init(_ data: Data) {
    super.init()
    let parser = XMLParser(data: data)
    parser.delegate = self
    parsed = parser.parse()
    error = parser.parserError.map { "\($0)" }
  }

  func parser(
    _ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
    qualifiedName: String?, attributes: [String: String]
  ) {
    if root == nil {
      root = name
      namespace = attributes["xmlns"]
    }
    if name == "polyline" {
      polylines += 1
      // Every point is a finite pair.
      let ok = (attributes["points"] ?? "").split(separator: " ").allSatisfy { p in
        let xy = p.split(separator: ",").compactMap { Double($0) }
        return xy.count == 2 && xy.allSatisfy(\.isFinite)
      }
      if !ok { error = "bad polyline points" ; parsed = false }
    }
    if name == "line" { lines += 1 }
    if name == "text" {
      inText = true
      current = ""
    }
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) {
    if inText { current += string }
  }

  func parser(
    _ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?
  ) {
    if name == "text" {
      texts.append(current)
      inText = false
    }
  }
}
