import Foundation
import SomaNN
import Testing

@testable import SomaTrain

/// `Checkpoint.decode` (the bytes entry point the checkpoint fuzz target drives) on the fuzz
/// seeds: both formats soma reads load, compile and run; a cut file is one sentence.
@Suite struct CheckpointBytesTests {
  static func seed(_ name: String) throws -> [UInt8] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("../../Fuzz/Corpus/FuzzCheckpoint/\(name).safetensors")
    return [UInt8](try Data(contentsOf: url))
  }

  @Test(arguments: ["format1", "format2"])
  func fuzzSeedsLoadCompileAndRun(_ name: String) throws {
    let c = try Checkpoint.decode(try Self.seed(name), path: name)
    #expect(c.inputs == 6 && c.outputs == 10)
    #expect(c.formatVersion == (name == "format1" ? 1 : 2))
    let model = try c.compiled(threads: 1)
    #expect(model.logits(Tensor<Float>.zeros([2, 1, 6])).shape == [1, 10])
  }

  @Test func aCutCheckpointIsOneSentence() throws {
    let bytes = try Self.seed("format2")
    #expect(throws: TrainError.self) { _ = try Checkpoint.decode(Array(bytes.prefix(300)), path: "cut") }
    do {
      _ = try Checkpoint.decode(Array(bytes.prefix(300)), path: "cut")
    } catch {
      #expect("\(error)".contains("cut"))
      #expect(!"\(error)".contains("\n"))
    }
  }
}
