import SomaTensor

/// Draws one sample's network activity as a standalone SVG: the hidden layer's spike raster
/// (a dot per spike, neuron against time step) above the output neurons' membrane traces.
///
/// ```swift
/// // hidden: [T, N] spikes (0/1); membranes: [T, 10] readout potentials
/// let svg = SpikeRaster.svg(
///   hiddenSpikes: hidden, outputMembranes: membranes,
///   classNames: FashionMNIST.classNames, label: 9, prediction: 9, title: "test sample 0")
/// try AtomicFile.write(Array(svg.utf8), to: "raster.svg")
/// ```
public enum SpikeRaster {
  /// Ten distinguishable colours (Tableau 10), repeated beyond ten outputs.
  static let palette = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
  ]

  /// The SVG text. `hiddenSpikes` is [T, N] (a non-zero entry is a spike), `outputMembranes`
  /// is [T, K]; `label` and `prediction`, when given, are named in the subtitle and the
  /// predicted class's trace is drawn thicker.
  public static func svg<S: TensorScalar>(
    hiddenSpikes: Tensor<S>, outputMembranes: Tensor<S>, classNames: [String] = [],
    label: Int? = nil, prediction: Int? = nil, title: String = "Spike raster"
  ) -> String {
    precondition(
      hiddenSpikes.rank == 2 && outputMembranes.rank == 2
        && hiddenSpikes.shape[0] == outputMembranes.shape[0],
      "SpikeRaster.svg: need hidden spikes [T, N] and membranes [T, K] with the same T, got"
        + " \(hiddenSpikes.shape) and \(outputMembranes.shape)")
    let steps = hiddenSpikes.shape[0], neurons = hiddenSpikes.shape[1]
    let outputs = outputMembranes.shape[1]
    let spikes = hiddenSpikes.scalars
    let mem = outputMembranes.scalars.map { Double($0) }

    let width = 900.0, height = 720.0
    var doc = SVGDocument(width: width, height: height)
    doc.text(width / 2, 26, title, size: 16, weight: "bold")
    var subtitle: [String] = []
    func name(_ k: Int) -> String { k < classNames.count ? "\(k) (\(classNames[k]))" : "\(k)" }
    if let label { subtitle.append("label \(name(label))") }
    if let prediction { subtitle.append("prediction \(name(prediction))") }
    let total = spikes.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
    subtitle.append("\(total) hidden spikes")
    doc.text(width / 2, 46, subtitle.joined(separator: " · "), size: 12, fill: "#555")

    let (xTicks, _) = niceTicks(0, Double(max(steps - 1, 1)), count: 8)
    let xRange = -0.5...(Double(steps) - 0.5)

    // Raster.
    let (nTicks, _) = niceTicks(0, Double(max(neurons - 1, 1)), count: 6)
    let raster = PlotArea(
      x: 80, y: 84, width: 640, height: 316, xRange: xRange,
      yRange: -0.5...(Double(neurons) - 0.5))
    doc.text(raster.x + raster.width / 2, 76, "Hidden layer spikes", size: 13, weight: "bold")
    raster.drawAxes(
      into: &doc, xTicks: xTicks.filter { $0 < Double(steps) }, yTicks: nTicks.filter {
        $0 < Double(neurons)
      }, xLabel: "time step", yLabel: "hidden neuron", xFormat: { fixed($0, 0) },
      yFormat: { fixed($0, 0) })
    let r = max(1.4, min(2.5, min(raster.width / Double(max(steps, 1)),
      raster.height / Double(max(neurons, 1))) * 0.45))
    var dots = "<g fill=\"#222\">"
    for t in 0..<steps {
      for n in 0..<neurons where spikes[t * neurons + n] != 0 {
        dots += "<circle cx=\"\(fmt(raster.px(Double(t))))\" cy=\"\(fmt(raster.py(Double(n))))\""
        dots += " r=\"\(fmt(r))\"/>"
      }
    }
    doc.add(dots + "</g>")

    // Output membranes.
    let finite = mem.filter(\.isFinite)
    let (vTicks, vRange) = niceTicks(finite.min() ?? 0, finite.max() ?? 1, count: 5)
    let traces = PlotArea(
      x: 80, y: 470, width: 640, height: 190, xRange: xRange, yRange: vRange)
    doc.text(traces.x + traces.width / 2, 462, "Output membrane potentials", size: 13,
      weight: "bold")
    let vStep = vTicks.count > 1 ? vTicks[1] - vTicks[0] : 1
    traces.drawAxes(
      into: &doc, xTicks: xTicks.filter { $0 < Double(steps) }, yTicks: vTicks,
      xLabel: "time step", yLabel: "membrane", xFormat: { fixed($0, 0) },
      yFormat: { fixed($0, decimals(forStep: vStep)) })
    for k in 0..<outputs {
      let pts = (0..<steps).map { t in
        (traces.px(Double(t)), traces.py(mem[t * outputs + k]))
      }
      doc.polyline(pts, stroke: palette[k % palette.count], width: k == prediction ? 3 : 1.3)
    }
    // Legend to the right of the plots.
    for k in 0..<outputs {
      let y = 480 + Double(k) * 17
      doc.line(735, y, 755, y, stroke: palette[k % palette.count], width: k == prediction ? 3 : 2)
      let text = k < classNames.count ? "\(k) \(classNames[k])" : "output \(k)"
      doc.text(760, y + 4, text, size: 11, anchor: "start",
        weight: k == prediction ? "bold" : nil)
    }
    return doc.rendered()
  }

  /// One sample's convolutional spikes as a picture: a tile per channel (at most
  /// `maximumChannels`, row-major), each pixel shaded by how many of the `steps` time steps it
  /// spiked at. `counts` is [C, H, W] spike counts (Σ over time of a spiking conv layer's maps).
  public static func featureMapSVG<S: TensorScalar>(
    counts: Tensor<S>, steps: Int, title: String = "Spike counts per channel",
    subtitle: String = "", maximumChannels: Int = 64
  ) -> String {
    precondition(
      counts.rank == 3 && steps >= 1,
      "SpikeRaster.featureMapSVG: need counts [C, H, W] and steps ≥ 1, got \(counts.shape)")
    let (channels, h, w) = (min(counts.shape[0], maximumChannels), counts.shape[1], counts.shape[2])
    let values = counts.scalars.map { Double($0) }
    let columns = Int(Double(channels).squareRoot().rounded(.up))
    let rows = (channels + columns - 1) / columns
    let cell = max(1.0, min(8.0, 760.0 / Double(columns * (w + 2))))
    let tileW = Double(w) * cell, tileH = Double(h) * cell, gap = 2 * cell
    let width = max(420, Double(columns) * (tileW + gap) + 40)
    let height = Double(rows) * (tileH + gap) + 100
    var doc = SVGDocument(width: width, height: height)
    doc.text(width / 2, 26, title, size: 16, weight: "bold")
    let total = values.reduce(0, +)
    let line = (subtitle.isEmpty ? "" : subtitle + " · ")
      + "\(Int(total)) spikes in \(counts.shape[0]) channels, \(steps) steps"
      + (counts.shape[0] > channels ? " (first \(channels) channels drawn)" : "")
    doc.text(width / 2, 46, line, size: 12, fill: "#555")
    var body = ""
    for c in 0..<channels {
      let x0 = 20 + Double(c % columns) * (tileW + gap)
      let y0 = 70 + Double(c / columns) * (tileH + gap)
      body += "<rect x=\"\(fmt(x0))\" y=\"\(fmt(y0))\" width=\"\(fmt(tileW))\""
      body += " height=\"\(fmt(tileH))\" fill=\"#f4f4f4\" stroke=\"#ccc\" stroke-width=\"0.5\"/>"
      for y in 0..<h {
        for x in 0..<w {
          let v = values[(c * h + y) * w + x]
          if v <= 0 { continue }
          body += "<rect x=\"\(fmt(x0 + Double(x) * cell))\" y=\"\(fmt(y0 + Double(y) * cell))\""
          body += " width=\"\(fmt(cell))\" height=\"\(fmt(cell))\""
          body += " fill-opacity=\"\(fmt(min(1, v / Double(steps))))\"/>"
        }
      }
    }
    doc.add("<g fill=\"#222\">" + body + "</g>")
    return doc.rendered()
  }
}
