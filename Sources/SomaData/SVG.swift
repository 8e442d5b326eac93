/// Small helpers for writing standalone SVG charts as text.
struct SVGDocument {
  let width: Double
  let height: Double
  private(set) var body: [String] = []

  init(width: Double, height: Double) {
    self.width = width
    self.height = height
  }

  mutating func add(_ element: String) { body.append(element) }

  mutating func line(
    _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
    dash: String? = nil
  ) {
    let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
    add(
      "<line x1=\"\(fmt(x1))\" y1=\"\(fmt(y1))\" x2=\"\(fmt(x2))\" y2=\"\(fmt(y2))\""
        + " stroke=\"\(stroke)\" stroke-width=\"\(fmt(width))\"\(d)/>")
  }

  mutating func text(
    _ x: Double, _ y: Double, _ s: String, size: Double = 12, anchor: String = "middle",
    weight: String? = nil, rotate: Double? = nil, fill: String = "#222"
  ) {
    let w = weight.map { " font-weight=\"\($0)\"" } ?? ""
    let r = rotate.map { " transform=\"rotate(\(fmt($0)) \(fmt(x)) \(fmt(y)))\"" } ?? ""
    add(
      "<text x=\"\(fmt(x))\" y=\"\(fmt(y))\" font-size=\"\(fmt(size))\""
        + " text-anchor=\"\(anchor)\" fill=\"\(fill)\"\(w)\(r)>\(xmlEscaped(s))</text>")
  }

  mutating func rect(
    _ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil
  ) {
    let s = stroke.map { " stroke=\"\($0)\"" } ?? ""
    add(
      "<rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(w))\" height=\"\(fmt(h))\""
        + " fill=\"\(fill)\"\(s)/>")
  }

  /// A polyline through `points`; non-finite points break the line into pieces.
  mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2,
    dash: String? = nil)
  {
    var runs: [[(Double, Double)]] = [[]]
    for p in points {
      if p.0.isFinite && p.1.isFinite { runs[runs.count - 1].append(p) } else { runs.append([]) }
    }
    let d = dash.map { " stroke-dasharray=\"\($0)\"" } ?? ""
    for run in runs where !run.isEmpty {
      let pts = run.map { "\(fmt($0.0)),\(fmt($0.1))" }.joined(separator: " ")
      add(
        "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(stroke)\""
          + " stroke-width=\"\(fmt(width))\" stroke-linejoin=\"round\"\(d)/>")
    }
  }

  func rendered() -> String {
    var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(fmt(width))\""
    out += " height=\"\(fmt(height))\" viewBox=\"0 0 \(fmt(width)) \(fmt(height))\""
    out += " font-family=\"Helvetica, Arial, sans-serif\">\n"
    out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    for e in body { out += e + "\n" }
    out += "</svg>\n"
    return out
  }
}

/// A rectangle of the document with a data range mapped onto it, drawn with grid and axes.
struct PlotArea {
  var x: Double, y: Double, width: Double, height: Double
  var xRange: ClosedRange<Double>
  var yRange: ClosedRange<Double>

  func px(_ v: Double) -> Double {
    let span = xRange.upperBound - xRange.lowerBound
    return x + (span == 0 ? 0.5 : (v - xRange.lowerBound) / span) * width
  }

  func py(_ v: Double) -> Double {
    let span = yRange.upperBound - yRange.lowerBound
    return y + height - (span == 0 ? 0.5 : (v - yRange.lowerBound) / span) * height
  }

  /// Grid lines, axes, tick labels and axis titles.
  func drawAxes(
    into doc: inout SVGDocument, xTicks: [Double], yTicks: [Double], xLabel: String,
    yLabel: String, xFormat: (Double) -> String, yFormat: (Double) -> String
  ) {
    for t in yTicks {
      doc.line(x, py(t), x + width, py(t), stroke: "#e4e4e4")
      doc.line(x - 4, py(t), x, py(t), stroke: "#444")
      doc.text(x - 7, py(t) + 4, yFormat(t), size: 11, anchor: "end")
    }
    for t in xTicks {
      doc.line(px(t), y, px(t), y + height, stroke: "#e4e4e4")
      doc.line(px(t), y + height, px(t), y + height + 4, stroke: "#444")
      doc.text(px(t), y + height + 17, xFormat(t), size: 11)
    }
    doc.line(x, y + height, x + width, y + height, stroke: "#444")
    doc.line(x, y, x, y + height, stroke: "#444")
    doc.text(x + width / 2, y + height + 36, xLabel, size: 12)
    doc.text(x - 46, y + height / 2, yLabel, size: 12, rotate: -90)
  }

  /// A legend box in the top-right corner (or bottom-right) of the area.
  func drawLegend(
    into doc: inout SVGDocument, entries: [(label: String, color: String, dash: String?)],
    bottom: Bool = false
  ) {
    guard !entries.isEmpty else { return }
    let longest = entries.map { $0.label.count }.max() ?? 0
    let w = 36 + Double(longest) * 6.6
    let h = Double(entries.count) * 17 + 8
    let left = x + width - w - 8
    let top = bottom ? y + height - h - 8 : y + 8
    doc.add(
      "<rect x=\"\(fmt(left))\" y=\"\(fmt(top))\" width=\"\(fmt(w))\" height=\"\(fmt(h))\""
        + " fill=\"white\" fill-opacity=\"0.9\" stroke=\"#bbb\"/>")
    for (i, e) in entries.enumerated() {
      let cy = top + 12 + Double(i) * 17
      if e.color != "none" {
        doc.line(left + 6, cy, left + 26, cy, stroke: e.color, width: 2.5, dash: e.dash)
      }
      doc.text(left + 31, cy + 4, e.label, size: 11, anchor: "start")
    }
  }
}

/// About `count` round tick values covering `lo...hi` (steps of 1, 2 or 5 × 10ᵏ), and the
/// range they span.
func niceTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> (ticks: [Double], range: ClosedRange<Double>) {
  var lo = lo, hi = hi
  if !lo.isFinite || !hi.isFinite { (lo, hi) = (0, 1) }
  if hi < lo { swap(&lo, &hi) }
  if hi == lo {
    let pad = lo == 0 ? 1 : abs(lo) * 0.1
    (lo, hi) = (lo - pad, hi + pad)
  }
  let raw = (hi - lo) / Double(max(count, 1))
  let mag = pow10(Int((log10(raw)).rounded(.down)))
  let f = raw / mag
  let step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag
  let first = (lo / step).rounded(.down) * step
  let last = (hi / step).rounded(.up) * step
  var ticks: [Double] = []
  var k = 0
  while true {
    let t = first + Double(k) * step
    if t > last + step * 1e-9 { break }
    ticks.append(abs(t) < step * 1e-9 ? 0 : t)
    k += 1
  }
  return (ticks, first...last)
}

/// The number of decimals that show ticks `step` apart distinctly.
func decimals(forStep step: Double) -> Int {
  guard step > 0, step.isFinite else { return 0 }
  return max(0, -Int(log10(step).rounded(.down)))
}

func pow10(_ k: Int) -> Double {
  var r = 1.0
  if k >= 0 { for _ in 0..<k { r *= 10 } } else { for _ in 0..<(-k) { r /= 10 } }
  return r
}

func log10(_ x: Double) -> Double { Double.log10(x) }

/// `v` with a fixed number of decimals, without Foundation.
func fixed(_ v: Double, _ decimals: Int) -> String {
  guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "∞" : "-∞") }
  let scale = pow10(decimals)
  let r = (abs(v) * scale).rounded()
  let negative = v < 0 && r != 0
  guard r < 9.0e15 else { return String(v) }
  let n = Int64(r)
  var digits = String(n)
  if decimals > 0 {
    if digits.count <= decimals {
      digits = String(repeating: "0", count: decimals - digits.count + 1) + digits
    }
    digits.insert(".", at: digits.index(digits.endIndex, offsetBy: -decimals))
  }
  return (negative ? "-" : "") + digits
}

/// A coordinate with at most two decimals.
func fmt(_ v: Double) -> String {
  let s = fixed(v, 2)
  guard s.contains(".") else { return s }
  var t = Substring(s)
  while t.hasSuffix("0") { t = t.dropLast() }
  if t.hasSuffix(".") { t = t.dropLast() }
  return String(t)
}

func xmlEscaped(_ s: String) -> String {
  var out = ""
  for c in s {
    switch c {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    case "'": out += "&apos;"
    default: out.append(c)
    }
  }
  return out
}
