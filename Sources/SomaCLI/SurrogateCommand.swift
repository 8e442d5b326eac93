import ArgumentParser
import Foundation
import SomaData
import SomaSurrogate

/// `soma surrogate list|table|plot`: inspect the surrogate gradients.
struct SurrogateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "surrogate",
    abstract: "List, tabulate and plot the surrogate gradients (the 18 braintools types).",
    discussion: """
      NAME is a braintools class name in any case (S2NN, PiecewiseQuadratic) or its functional \
      name (s2nn, piecewise_quadratic). Parameters not given keep their braintools defaults. \
      Bad input prints one line on stderr and exits with code 2.
      """,
    subcommands: [SurrogateListCommand.self, SurrogateTableCommand.self, SurrogatePlotCommand.self]
  )
}

/// A user-input error of `soma surrogate`: one sentence, exit code 2.
struct SurrogateInputError: Error, CustomStringConvertible, Equatable {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Prints `error` as one line on stderr and exits with code 2.
func failWithInputError(_ error: SurrogateInputError) -> ExitCode {
  FileHandle.standardError.write(Data("soma surrogate: \(error.description)\n".utf8))
  return ExitCode(2)
}

// MARK: list

struct SurrogateListCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "list", abstract: "Names, parameters and defaults, one surrogate a line.")

  func render() -> String { SurrogateText.list() }

  func run() { print(render(), terminator: "") }
}

// MARK: table

struct SurrogateTableCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "table",
    abstract: "Print x, spike, derivative and primitive at chosen points.",
    discussion: """
      Give the points either as --x V1,V2,... or as --from A --to B --count N (N evenly spaced \
      points including both ends). Negative numbers work: --x -1,0,1 --from -3. CSV has the \
      columns x,spike,derivative,primitive (no primitive column for the five surrogates without \
      one); JSON is one object with "primitive": null for those. Every number is printed as the \
      shortest decimal that reads back to the same Float or Double.
      """)

  @Argument(help: "The surrogate's class or functional name.")
  var name: String

  @Option(
    name: .customLong("param"), parsing: .unconditionalSingleValue,
    help: ArgumentHelp("A parameter, KEY=VALUE (repeatable).", valueName: "key=value"))
  var params: [String] = []

  @Option(
    name: .customLong("x"), parsing: .unconditional,
    help: ArgumentHelp("Comma-separated points.", valueName: "v1,v2,..."))
  var points: String?

  @Option(parsing: .unconditional, help: "First point of an evenly spaced range.")
  var from: String?

  @Option(parsing: .unconditional, help: "Last point of the range.")
  var to: String?

  @Option(parsing: .unconditional, help: "Number of points in the range (≥ 2).")
  var count: String?

  @Option(help: "float or double.")
  var precision: String = "double"

  @Option(help: "csv or json.")
  var format: String = "csv"

  /// The table as text, or an input error.
  func render() throws(SurrogateInputError) -> String {
    let surrogate = try SurrogateText.surrogate(
      name, SurrogateText.pairs(params, option: "--param"))
    guard format == "csv" || format == "json" else {
      throw SurrogateInputError("--format must be csv or json, got '\(format)'")
    }
    let points = try SurrogateText.points(x: self.points, from: from, to: to, count: count)
    switch precision {
    case "double":
      return SurrogateText.table(surrogate, points.map { $0.double }, json: format == "json")
    case "float":
      return SurrogateText.table(surrogate, points.map { $0.float }, json: format == "json")
    default:
      throw SurrogateInputError("--precision must be float or double, got '\(precision)'")
    }
  }

  func run() throws {
    do {
      print(try render(), terminator: "")
    } catch {
      throw failWithInputError(error)
    }
  }
}

// MARK: plot

struct SurrogatePlotCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plot",
    abstract: "Draw the derivative (left) and primitive (right) as a standalone SVG.",
    discussion: """
      Each --set is one parameter set, KEY=VALUE pairs separated by commas; with none, the \
      defaults are drawn. Example: soma surrogate plot s2nn --set alpha=4 --set alpha=8,beta=2 \
      -o s2nn.svg
      """)

  @Argument(help: "The surrogate's class or functional name.")
  var name: String

  @Option(
    name: .customLong("set"), parsing: .unconditionalSingleValue,
    help: ArgumentHelp("A parameter set, KEY=VALUE,KEY=VALUE (repeatable).", valueName: "set"))
  var sets: [String] = []

  @Option(parsing: .unconditional, help: "Left end of the x axis.")
  var from: String = "-3"

  @Option(parsing: .unconditional, help: "Right end of the x axis.")
  var to: String = "3"

  @Option(name: [.short, .customLong("output")], help: "The SVG file to write.")
  var output: String

  /// The SVG document, or an input error.
  func render() throws(SurrogateInputError) -> String {
    guard let entry = SurrogateRegistry.entry(named: name) else {
      throw SurrogateText.unknownName(name)
    }
    let lo = try SurrogateText.number(from, option: "--from")
    let hi = try SurrogateText.number(to, option: "--to")
    guard lo < hi else {
      throw SurrogateInputError(
        "empty range: --to (\(to)) must be greater than --from (\(from))")
    }
    var curves: [any SurrogateGradient] = []
    for set in sets.isEmpty ? [""] : sets {
      curves.append(
        try SurrogateText.surrogate(entry.name, SurrogateText.pairs([set], option: "--set")))
    }
    return SurrogatePlot(name: entry.name, surrogates: curves, from: lo, to: hi).svg()
  }

  func run() throws {
    let svg: String
    do {
      svg = try render()
    } catch {
      throw failWithInputError(error)
    }
    do {
      try save(svg)
    } catch {
      FileHandle.standardError.write(Data("soma surrogate: \(error.description)\n".utf8))
      throw ExitCode(1)
    }
  }

  /// Writes `svg` to --output atomically; a path that cannot be written throws one sentence
  /// naming it and the reason (a directory, a missing or read-only directory, /proc, ...).
  func save(_ svg: String) throws(SurrogateInputError) {
    do {
      try AtomicFile.write(Array(svg.utf8), to: output)
    } catch {
      throw SurrogateInputError("\(error)")
    }
  }
}

// MARK: Parsing and formatting

/// The text side of `soma surrogate`: parsing user input and printing tables.
enum SurrogateText {
  /// One line per surrogate: `S2NN (s2nn): alpha=4 beta=1 epsilon=1e-08`.
  static func list() -> String {
    var out = ""
    for e in SurrogateRegistry.all {
      let params = e.defaults.map { "\($0.name)=\(number($0.value))" }.joined(separator: " ")
      out += "\(e.name) (\(e.functionalName)): \(params)"
      if !e.hasPrimitive { out += "  [no primitive]" }
      out += "\n"
    }
    return out
  }

  static func unknownName(_ name: String) -> SurrogateInputError {
    SurrogateInputError(
      "unknown surrogate '\(name)'; known: "
        + SurrogateRegistry.all.map(\.name).joined(separator: ", "))
  }

  /// Builds the surrogate, turning registry errors into input errors.
  static func surrogate(_ name: String, _ parameters: [String: Double])
    throws(SurrogateInputError) -> any SurrogateGradient
  {
    guard SurrogateRegistry.entry(named: name) != nil else { throw unknownName(name) }
    do {
      return try SurrogateRegistry.make(name, parameters: parameters)
    } catch {
      throw SurrogateInputError(error.description)
    }
  }

  /// `["alpha=4", "beta=1,epsilon=1e-6"]` → a dictionary; empty items are skipped.
  static func pairs(_ items: [String], option: String) throws(SurrogateInputError)
    -> [String: Double]
  {
    var result: [String: Double] = [:]
    for item in items {
      for pair in item.split(separator: ",", omittingEmptySubsequences: true) {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let key = parts[0].trimmingCharacters(in: .whitespaces)
        guard parts.count == 2, !key.isEmpty else {
          throw SurrogateInputError("malformed \(option) '\(pair)': expected KEY=VALUE")
        }
        guard result[key] == nil else {
          throw SurrogateInputError("\(option): parameter '\(key)' given twice")
        }
        result[key] = try number(String(parts[1]), option: "\(option) \(key)")
      }
    }
    return result
  }

  /// A finite number, or an input error naming the option.
  static func number(_ text: String, option: String) throws(SurrogateInputError) -> Double {
    let t = text.trimmingCharacters(in: .whitespaces)
    guard let v = Double(t), v.isFinite else {
      throw SurrogateInputError("\(option): '\(text)' is not a finite number")
    }
    return v
  }

  /// A point parsed once per precision, so Float points are rounded once from the text.
  struct Point {
    var double: Double
    var float: Float
  }

  static func points(x: String?, from: String?, to: String?, count: String?)
    throws(SurrogateInputError) -> [Point]
  {
    let range = from != nil || to != nil || count != nil
    if let x {
      guard !range else {
        throw SurrogateInputError("give either --x or --from/--to/--count, not both")
      }
      let items = x.split(separator: ",", omittingEmptySubsequences: false)
      guard !x.trimmingCharacters(in: .whitespaces).isEmpty else {
        throw SurrogateInputError("--x is empty; give comma-separated numbers like -1,0,1")
      }
      var out: [Point] = []
      for item in items {
        let text = item.trimmingCharacters(in: .whitespaces)
        let d = try number(text, option: "--x")
        guard let f = Float(text), f.isFinite else {
          throw SurrogateInputError("--x: '\(text)' is out of Float range")
        }
        out.append(Point(double: d, float: f))
      }
      return out
    }
    guard let from, let to else {
      throw SurrogateInputError("give the points as --x V1,V2,... or --from A --to B --count N")
    }
    let lo = try number(from, option: "--from")
    let hi = try number(to, option: "--to")
    let countText = count ?? "101"
    guard let n = Int(countText.trimmingCharacters(in: .whitespaces)) else {
      throw SurrogateInputError("--count: '\(countText)' is not an integer")
    }
    guard n >= 2, n <= 10_000_000 else {
      throw SurrogateInputError("--count must be in 2...10000000, got \(n)")
    }
    guard lo < hi else {
      throw SurrogateInputError("empty range: --to (\(to)) must be greater than --from (\(from))")
    }
    return (0..<n).map { i in
      let v = i == n - 1 ? hi : lo + (hi - lo) * Double(i) / Double(n - 1)
      return Point(double: v, float: Float(v))
    }
  }

  /// Shortest round-trip decimal of `v`; integers without ".0" (JSON-friendly).
  static func number<T: BinaryFloatingPoint & LosslessStringConvertible>(_ v: T) -> String {
    if v.isFinite, v == v.rounded(.towardZero), Swift.abs(v) < 1e15 {
      return String(Int64(v))
    }
    return v.description
  }

  /// The CSV or JSON table of `surrogate` at `xs`.
  static func table<T: TensorScalar>(_ surrogate: any SurrogateGradient, _ xs: [T], json: Bool)
    -> String
  {
    func columns<S: SurrogateGradient>(_ s: S) -> ([T], [T], [T]?) {
      let x = Tensor<T>(xs)
      return (s.spike(x).scalars, s.derivative(x).scalars, s.primitive(x)?.scalars)
    }
    let (spike, derivative, primitive) = columns(surrogate)
    if json {
      func array(_ values: [T]) -> String {
        "[" + values.map { number($0) }.joined(separator: ", ") + "]"
      }
      let params = surrogate.parameters.map { "\"\($0.name)\": \(number($0.value))" }
        .joined(separator: ", ")
      let precision = T.self == Float.self ? "float" : "double"
      return "{\"name\": \"\(type(of: surrogate).name)\", \"params\": {\(params)}, "
        + "\"precision\": \"\(precision)\", \"x\": \(array(xs)), \"spike\": \(array(spike)), "
        + "\"derivative\": \(array(derivative)), "
        + "\"primitive\": \(primitive.map(array) ?? "null")}\n"
    }
    var out = primitive == nil ? "x,spike,derivative\n" : "x,spike,derivative,primitive\n"
    for i in xs.indices {
      out += "\(number(xs[i])),\(number(spike[i])),\(number(derivative[i]))"
      if let primitive { out += ",\(number(primitive[i]))" }
      out += "\n"
    }
    return out
  }
}
