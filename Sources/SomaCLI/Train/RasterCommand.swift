import ArgumentParser
import Foundation
import SomaData
import SomaNN
import SomaTrain

/// `soma raster`: the hidden layer's spikes and the output membranes for one test image.
struct RasterCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "raster",
    abstract: "Draw the hidden spike raster and output membranes of one test image as SVG.")

  @Option(help: "A .safetensors checkpoint written by soma train.") var checkpoint: String
  @Option(help: "Index of the test image.") var sample = 0
  @Option(name: .shortAndLong, help: "Output SVG file.") var output: String
  @Option(help: "Directory with the IDX files.") var data = FashionMNIST.defaultDirectory

  func validate() throws {
    guard !checkpoint.isEmpty else { throw ValidationError("--checkpoint needs a file name") }
    guard !data.isEmpty else { throw ValidationError("--data needs a directory name") }
    guard sample >= 0 else { throw ValidationError("--sample must be ≥ 0, got \(sample)") }
    guard !output.isEmpty else { throw ValidationError("-o/--output needs a file name") }
  }

  /// The SVG of test image `sample`: the first spiking layer's raster above the scores the
  /// loss reads, over time (the readout membrane; the running spike count for a count loss).
  static func draw(_ model: LoadedModel, test: LabeledImages, sample: Int) -> String {
    let steps = model.timeSteps
    let x: Tensor<Float>
    if case .dense(var encoder) = model.encoding {
      var out = Tensor<Float>.zeros([0])
      _ = encoder.encode(test.images(at: [sample][...]), into: &out)
      x = out
    } else {
      let coder = LatencyEventCoder(timeSteps: steps, encoder: LatencyEncoder(timeSteps: steps))
      let events = coder.events(test, indices: [sample][...])
      x = events.dense(Float.self).reshaped([steps, 1, events.columns])
    }
    let network = model.checkpoint.network
    let (hidden, output) = noGrad { () -> (Tensor<Float>?, Tensor<Float>) in
      var h = Variable(x)
      var first: Tensor<Float>? = nil
      for layer in network.layers {
        h = layer(h)
        if first == nil, !(layer.base is Linear<Float>), Self.isSpikes(h.value) { first = h.value }
      }
      return (first, h.value)
    }
    let outputs = output.shape[2]
    var trace = output.reshaped([steps, outputs])
    switch model.checkpoint.loss {
    case .spikeCountCrossEntropy, .mseCount:
      var v = trace.scalars
      for i in outputs..<v.count { v[i] += v[i - outputs] }
      trace = Tensor(v, shape: [steps, outputs])
    default: break
    }
    let spikes = hidden ?? Tensor<Float>.zeros([steps, 1, 1])
    let prediction = model.checkpoint.loss.logits(output).argmaxIndices(axis: -1)[0]
    if spikes.rank == 5 {
      // A convolutional layer's spikes [T, 1, C, H, W]: each channel's map of spike counts.
      func name(_ k: Int) -> String {
        k < FashionMNIST.classNames.count ? "\(k) (\(FashionMNIST.classNames[k]))" : "\(k)"
      }
      return SpikeRaster.featureMapSVG(
        counts: spikes.sum(axes: [0]).reshaped(Array(spikes.shape.suffix(3))), steps: steps,
        title: "Test image \(sample): the first convolution's spikes per channel",
        subtitle: "label \(name(test.labels[sample])) · prediction \(name(prediction))")
    }
    return SpikeRaster.svg(
      hiddenSpikes: spikes.reshaped([steps, spikes.shape[2]]),
      outputMembranes: trace,
      classNames: FashionMNIST.classNames, label: test.labels[sample], prediction: prediction,
      title: "Test image \(sample): hidden spikes and output membranes")
  }

  /// True when every value is 0 or 1.
  static func isSpikes(_ t: Tensor<Float>) -> Bool { t.scalars.allSatisfy { $0 == 0 || $0 == 1 } }

  func run() throws {
    // A path that cannot be written fails before any work.
    do { _ = try AtomicFile.checkDestination(output) } catch { throw CLIError("\(error)") }
    let model = try LoadedModel(path: checkpoint, threads: 1)
    let test: LabeledImages
    do { test = try FashionMNIST.readSplit("t10k", in: data) } catch { throw CLIError("\(error)") }
    try model.check(against: test, data: data)
    guard sample < test.count else {
      throw CLIError(
        "--sample \(sample) is out of range: the test set in \(data) has \(test.count) images"
          + " (0...\(test.count - 1))")
    }
    let svg = Self.draw(model, test: test, sample: sample)
    do { try AtomicFile.write(Array(svg.utf8), to: output) } catch { throw CLIError("\(error)") }
    print("wrote \(output)")
  }
}
