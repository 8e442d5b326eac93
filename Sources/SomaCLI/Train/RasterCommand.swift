import ArgumentParser
import Foundation
import SomaData
import SomaNN

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

  struct Draw: SurrogateVisitor {
    let model: LoadedModel
    let test: LabeledImages
    let sample: Int
    func visit<S: SurrogateGradient>(_ s: S) throws -> String {
      let net = try model.network(s)
      let steps = model.config.timeSteps
      let coder = LatencyEventCoder(timeSteps: steps, encoder: LatencyEncoder(timeSteps: steps))
      let events = coder.events(test, indices: [sample][...])
      let out = net.forward(events: events, steps: steps, batch: 1)
      let prediction = out.logits.argmaxIndices(axis: -1)[0]
      return SpikeRaster.svg(
        hiddenSpikes: out.hiddenSpikes.reshaped([steps, model.config.hidden]),
        outputMembranes: out.readout.reshaped([steps, model.config.outputs]),
        classNames: FashionMNIST.classNames, label: test.labels[sample], prediction: prediction,
        title: "Test image \(sample): hidden spikes and output membranes")
    }
  }

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
    let svg = try withConcreteSurrogate(
      model.surrogate, Draw(model: model, test: test, sample: sample))
    do { try AtomicFile.write(Array(svg.utf8), to: output) } catch { throw CLIError("\(error)") }
    print("wrote \(output)")
  }
}
