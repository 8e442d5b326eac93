import Foundation
import SomaData
import SomaTensor
import Testing

struct InjectedFailure: Error {}

@Suite struct AtomicFileTests {
  @Test func failedWriteLeavesTheOldFileIntact() throws {
    let dir = try TemporaryDirectory()
    let path = dir.file("final.safetensors")
    let old = ["w": Tensor<Float>([1, 2, 3], shape: [3])]
    try SafeTensors.write(old, metadata: ["epoch": "1"], to: path)
    let before = try dir.read("final.safetensors")

    // The producer dies half-way through writing the replacement.
    #expect(throws: InjectedFailure.self) {
      try AtomicFile.write(to: path) { sink in
        try sink.write([UInt8](repeating: 0xAB, count: 100_000))
        throw InjectedFailure()
      }
    }
    #expect(try dir.read("final.safetensors") == before)
    #expect(try dir.contents() == ["final.safetensors"])  // no temporary file left behind
    #expect(try SafeTensors.read(path).metadata == ["epoch": "1"])
  }

  @Test func successfulWriteReplacesTheFile() throws {
    let dir = try TemporaryDirectory()
    let path = dir.file("metrics.csv")
    try AtomicFile.write(Array("old".utf8), to: path)
    try AtomicFile.write(Array("new contents".utf8), to: path)
    #expect(try dir.read("metrics.csv") == Array("new contents".utf8))
    #expect(try dir.contents() == ["metrics.csv"])
  }

  @Test func missingDirectoryIsAnError() throws {
    let error = #expect(throws: SomaDataError.self) {
      try AtomicFile.write([1, 2, 3], to: "/nonexistent-soma-dir/x.bin")
    }
    #expect(error?.kind == .missing)
    #expect(error?.description.contains("/nonexistent-soma-dir") == true)
  }
}
