import Foundation
import SomaSurrogate

/// Draws a surrogate's derivative (left panel) and primitive (right panel) for one or more
/// parameter sets as a standalone SVG document: axes with ticks and labels, a grid, a legend.
struct SurrogatePlot {
  var name: String
  var surrogates: [any SurrogateGradient]
  var from: Double
  var to: Double
  var samples = 601

  static let palette = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  ]

  // Layout, in SVG user units.
  let width = 1000.0
  let panelWidth = 400.0
  let panelHeight = 300.0
  let top = 60.0
  let lefts = [80.0, 570.0]

  func svg() -> String {
    let xs = (0..<samples).map { from + (to - from) * Double($0) / Double(samples - 1) }
    let derivatives = surrogates.map { s in xs.map { s.derivative($0) } }
    let primitives: [[Double]?] = surrogates.map { s in
      s.hasPrimitive ? xs.map { s.primitive($0)! } : nil
    }
    let spike = xs.map { $0 >= 0 ? 1.0 : 0.0 }
    let hasPrimitive = primitives.allSatisfy { $0 != nil }

    let legendRows = (surrogates.count + 1 + 2) / 3
    let height = top + panelHeight + 70 + Double(legendRows) * 22 + 10
    var out = """
      <?xml version="1.0" encoding="UTF-8"?>
      <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" \
      viewBox="0 0 \(f(width)) \(f(height))" font-family="Helvetica, Arial, sans-serif" \
      font-size="12">
      <title>\(escape(name)) surrogate gradient</title>
      <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="white"/>
      <text x="\(f(width / 2))" y="24" text-anchor="middle" font-size="16" \
      font-weight="bold">\(escape(name))</text>

      """

    // Left panel: the derivative of every set.
    let left = Panel(
      left: lefts[0], top: top, width: panelWidth, height: panelHeight, x: (from, to),
      y: Self.range(derivatives, including: [0]))
    out += left.frame(
      id: "derivative", title: "derivative (backward pass)", yLabel: "surrogate derivative")
    for (i, ys) in derivatives.enumerated() {
      out += left.polyline(xs, ys, color: Self.palette[i % Self.palette.count], clip: "derivative")
    }
    out += "</g>\n"

    // Right panel: the primitive of every set, and the Heaviside spike for reference.
    let rightData = primitives.compactMap { $0 } + [spike]
    let right = Panel(
      left: lefts[1], top: top, width: panelWidth, height: panelHeight, x: (from, to),
      y: Self.range(rightData, including: [0, 1]))
    out += right.frame(
      id: "primitive", title: hasPrimitive ? "primitive (smooth spike)" : "spike (no primitive)",
      yLabel: hasPrimitive ? "primitive" : "spike")
    out += right.polyline(xs, spike, color: "#7f7f7f", clip: "primitive", dashed: true)
    for (i, ys) in primitives.enumerated() {
      guard let ys else { continue }
      out += right.polyline(xs, ys, color: Self.palette[i % Self.palette.count], clip: "primitive")
    }
    if !hasPrimitive {
      out += """
        <text x="\(f(right.left + 15))" y="\(f(right.top + right.height / 2))" \
        text-anchor="start" fill="#555">\(escape(name)) has no smooth primitive</text>

        """
    }
    out += "</g>\n"

    // Legend below the panels, three entries a row.
    var entries = surrogates.enumerated().map { i, s in
      (
        Self.palette[i % Self.palette.count], false,
        s.parameters.map { "\($0.name)=\(SurrogateText.number($0.value))" }
          .joined(separator: ", ")
      )
    }
    entries.append(("#7f7f7f", true, "spike (Heaviside)"))
    out += "<g id=\"legend\">\n"
    let legendTop = top + panelHeight + 62
    for (k, entry) in entries.enumerated() {
      let x = lefts[0] + Double(k % 3) * 300
      let y = legendTop + Double(k / 3) * 22
      let dash = entry.1 ? " stroke-dasharray=\"6 4\"" : ""
      out += """
        <line x1="\(f(x))" y1="\(f(y))" x2="\(f(x + 28))" y2="\(f(y))" stroke="\(entry.0)" \
        stroke-width="2"\(dash)/>
        <text x="\(f(x + 36))" y="\(f(y + 4))">\(escape(entry.2.isEmpty ? "defaults" : entry.2))</text>

        """
    }
    out += "</g>\n</svg>\n"
    return out
  }

  /// The y range covering every finite value of `series` and `including`, padded by 5 %.
  static func range(_ series: [[Double]], including: [Double]) -> (Double, Double) {
    var lo = including.min() ?? 0
    var hi = including.max() ?? 0
    for ys in series {
      for y in ys where y.isFinite {
        lo = Swift.min(lo, y)
        hi = Swift.max(hi, y)
      }
    }
    if hi - lo < 1e-12 { (lo, hi) = (lo - 0.5, hi + 0.5) }
    let pad = (hi - lo) * 0.05
    return (lo - pad, hi + pad)
  }

  /// One plotting area: maps data to SVG coordinates and draws its frame.
  struct Panel {
    var left, top, width, height: Double
    var x: (Double, Double)
    var y: (Double, Double)

    func px(_ v: Double) -> Double { left + (v - x.0) / (x.1 - x.0) * width }
    func py(_ v: Double) -> Double { top + height - (v - y.0) / (y.1 - y.0) * height }

    /// Grid, axes, ticks, labels and title; opens a `<g>` that the caller closes.
    func frame(id: String, title: String, yLabel: String) -> String {
      var s = "<g id=\"\(id)-panel\">\n"
      s += """
        <clipPath id="clip-\(id)"><rect x="\(f(left))" y="\(f(top))" width="\(f(width))" \
        height="\(f(height))"/></clipPath>
        <text x="\(f(left + width / 2))" y="\(f(top - 10))" text-anchor="middle" \
        font-size="14">\(escape(title))</text>

        """
      for t in ticks(x.0, x.1) {
        let X = px(t)
        s += """
          <line x1="\(f(X))" y1="\(f(top))" x2="\(f(X))" y2="\(f(top + height))" \
          stroke="#e0e0e0" stroke-width="1"/>
          <line x1="\(f(X))" y1="\(f(top + height))" x2="\(f(X))" y2="\(f(top + height + 5))" \
          stroke="black"/>
          <text x="\(f(X))" y="\(f(top + height + 18))" text-anchor="middle">\(tickLabel(t, x))</text>

          """
      }
      for t in ticks(y.0, y.1) {
        let Y = py(t)
        s += """
          <line x1="\(f(left))" y1="\(f(Y))" x2="\(f(left + width))" y2="\(f(Y))" \
          stroke="#e0e0e0" stroke-width="1"/>
          <line x1="\(f(left - 5))" y1="\(f(Y))" x2="\(f(left))" y2="\(f(Y))" stroke="black"/>
          <text x="\(f(left - 8))" y="\(f(Y + 4))" text-anchor="end">\(tickLabel(t, y))</text>

          """
      }
      s += """
        <rect x="\(f(left))" y="\(f(top))" width="\(f(width))" height="\(f(height))" \
        fill="none" stroke="black"/>
        <text x="\(f(left + width / 2))" y="\(f(top + height + 38))" text-anchor="middle">x</text>
        <text x="\(f(left - 55))" y="\(f(top + height / 2))" text-anchor="middle" \
        transform="rotate(-90 \(f(left - 55)) \(f(top + height / 2)))">\(escape(yLabel))</text>

        """
      return s
    }

    func polyline(_ xs: [Double], _ ys: [Double], color: String, clip: String, dashed: Bool = false)
      -> String
    {
      let points = zip(xs, ys).map { "\(f(px($0))),\(f(py($1)))" }.joined(separator: " ")
      let dash = dashed ? " stroke-dasharray=\"6 4\"" : ""
      return """
        <polyline fill="none" stroke="\(color)" stroke-width="2"\(dash) \
        clip-path="url(#clip-\(clip))" points="\(points)"/>

        """
    }

    /// About six round tick values (steps of 1, 2 or 5 times a power of ten) within [lo, hi].
    func ticks(_ lo: Double, _ hi: Double) -> [Double] {
      let step = tickStep(lo, hi)
      var t = (lo / step).rounded(.up) * step
      var out: [Double] = []
      while t <= hi + step * 1e-9 {
        out.append(Swift.abs(t) < step * 1e-9 ? 0 : t)
        t += step
      }
      return out
    }

    func tickStep(_ lo: Double, _ hi: Double) -> Double {
      let raw = (hi - lo) / 6
      let p = Foundation.pow(10, (Foundation.log10(raw)).rounded(.down))
      for m in [1.0, 2, 5, 10] where m * p >= raw { return m * p }
      return 10 * p
    }

    func tickLabel(_ t: Double, _ range: (Double, Double)) -> String {
      let step = tickStep(range.0, range.1)
      let decimals = Swift.max(0, Int(-(Foundation.log10(step)).rounded(.down)))
      return String(format: "%.\(decimals)f", t)
    }
  }
}

/// A coordinate with two decimals.
private func f(_ v: Double) -> String { String(format: "%.2f", v) }

/// Text escaped for XML content and attributes.
private func escape(_ s: String) -> String {
  s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
