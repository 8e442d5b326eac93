import Foundation
import SomaData
import SomaTensor
import Testing

/// A file written by Python: safetensors 0.8.0, numpy 2.4.6,
/// `safetensors.numpy.save({"b": np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5,
///   "a": np.array([1.0, -0.0, np.inf]), "c": np.zeros((0, 4), np.float32)},
///   metadata={"format": "np", "note": "ünï\"q"})`, base64-encoded.
let pythonSafetensors = """
  4AAAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmb3JtYXQiOiJucCIsIm5vdGUiOiLDvG7Dr1wicSJ9LCJhIjp7ImR0eXBl\
  IjoiRjY0Iiwic2hhcGUiOlszXSwiZGF0YV9vZmZzZXRzIjpbMCwyNF19LCJiIjp7ImR0eXBlIjoiRjMyIiwic2hhcGUi\
  OlsyLDNdLCJkYXRhX29mZnNldHMiOlsyNCw0OF19LCJjIjp7ImR0eXBlIjoiRjMyIiwic2hhcGUiOlswLDRdLCJkYXRh\
  X29mZnNldHMiOls0OCw0OF19fSAgICAgIAAAAAAAAPA/AAAAAAAAAIAAAAAAAADwfwAAIMAAAMC/AAAAvwAAAD8AAMA/\
  AAAgQA==
  """

/// A safetensors file from a header given as JSON text and a data section.
func safetensorsBytes(header: String, data: [UInt8]) -> [UInt8] {
  let h = Array(header.utf8)
  return (0..<8).map { UInt8(truncatingIfNeeded: h.count >> (8 * $0)) } + h + data
}

@Suite struct SafeTensorsTests {
  /// Float values whose bits must survive: NaN payloads, −0, subnormals, infinities.
  static let awkwardFloats: [Float] = [
    Float(bitPattern: 0x7fc0_1234), Float(bitPattern: 0xffa0_0001), -0.0, 0,
    .leastNonzeroMagnitude, -.greatestFiniteMagnitude, .infinity, -.infinity, 1.0 / 3,
  ]
  static let awkwardDoubles: [Double] = [
    Double(bitPattern: 0x7ff8_0000_dead_beef), -0.0, .leastNonzeroMagnitude, .pi, -.infinity,
    1e308,
  ]

  @Test func roundTripIsBitExact() throws {
    let dir = try TemporaryDirectory()
    let tensors: [String: AnyTensor] = [
      "layer1.weight": AnyTensor(Tensor<Float>(Self.awkwardFloats + [7, 8, 9], shape: [3, 4])),
      "layer1.bias": AnyTensor(Tensor<Double>(Self.awkwardDoubles, shape: [6])),
      "scalar": AnyTensor(Tensor<Float>(2.5)),
      "empty": AnyTensor(Tensor<Float>.zeros([0, 3])),
      "ünïcödé \"name\"\n": AnyTensor(Tensor<Float>([1, 2], shape: [1, 2])),
    ]
    let metadata = ["model": "mlp", "hidden": "100", "quote\"key": "line\nbreak\\"]
    let path = dir.file("model.safetensors")
    try SafeTensors.write(tensors, metadata: metadata, to: path)
    let file = try SafeTensors.read(path)
    #expect(file.metadata == metadata)
    #expect(Set(file.tensors.keys) == Set(tensors.keys))
    for (name, t) in tensors {
      // AnyTensor's == compares dtype, shape and bit patterns.
      #expect(file.tensors[name] == t, "\(name)")
    }
    let w: Tensor<Float> = try file.tensor("layer1.weight")
    #expect(w.scalars.map(\.bitPattern) == (Self.awkwardFloats + [7, 8, 9]).map(\.bitPattern))
    #expect(throws: SomaDataError.self) { try file.tensor("layer1.bias", as: Float.self) }
    #expect(throws: SomaDataError.self) { try file.tensor("missing", as: Float.self) }
    // Deterministic bytes; the header is padded to a multiple of 8.
    let bytes = try dir.read("model.safetensors")
    #expect(bytes == SafeTensors.encode(tensors, metadata: metadata))
    let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    #expect(n % 8 == 0)
    #expect(try SafeTensors.decode(bytes) == file)
  }

  @Test func genericWriteKeepsTheScalarType() throws {
    let dir = try TemporaryDirectory()
    let t = Tensor<Double>([1, 2, 3, 4], shape: [2, 2])
    try SafeTensors.write(["w": t], to: dir.file("d.safetensors"))
    let file = try SafeTensors.read(dir.file("d.safetensors"))
    #expect(file.tensors["w"]?.dtype == .float64)
    #expect(try file.tensor("w", as: Double.self) == t)
    #expect(file.metadata.isEmpty)
  }

  @Test func readsPythonWrittenFileAndWritesTheSameBytes() throws {
    let bytes = [UInt8](Data(base64Encoded: pythonSafetensors)!)
    let file = try SafeTensors.decode(bytes, path: "python.safetensors")
    #expect(file.metadata == ["format": "np", "note": "ünï\"q"])
    #expect(try file.tensor("b", as: Float.self) == Tensor<Float>([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], shape: [2, 3]))
    let a = try file.tensor("a", as: Double.self)
    #expect(a.scalars.map(\.bitPattern) == [1.0, -0.0, Double.infinity].map(\.bitPattern))
    #expect(try file.tensor("c", as: Float.self).shape == [0, 4])
    // Soma orders and pads the header as the reference implementation does: same bytes.
    #expect(SafeTensors.encode(file.tensors, metadata: file.metadata) == bytes)
  }

  func expectMalformed(_ bytes: [UInt8], _ phrase: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let dir = try TemporaryDirectory()
    try dir.write(bytes, to: "bad.safetensors")
    let error = #expect(throws: SomaDataError.self, sourceLocation: sourceLocation) {
      try SafeTensors.read(dir.file("bad.safetensors"))
    }
    #expect(error?.description.contains(dir.file("bad.safetensors")) == true, sourceLocation: sourceLocation)
    #expect(error?.description.contains(phrase) == true, "\(String(describing: error))", sourceLocation: sourceLocation)
  }

  @Test func truncatedFilesAreRejected() throws {
    let good = SafeTensors.encode(
      ["w": AnyTensor(Tensor<Float>([1, 2, 3, 4], shape: [2, 2]))], metadata: ["k": "v"])
    #expect(throws: Never.self) { try SafeTensors.decode(good) }
    try expectMalformed(Array(good.prefix(5)), "fewer than the 8-byte")
    try expectMalformed(Array(good.prefix(20)), "truncated")       // inside the header
    try expectMalformed(Array(good.dropLast(1)), "truncated")      // inside the data
    try expectMalformed(good + [0, 0, 0, 0], "cover 16 data bytes but the file holds 20")
    // Every cut point is rejected cleanly, never a crash.
    for cut in 0..<good.count {
      #expect(throws: SomaDataError.self) { try SafeTensors.decode(Array(good.prefix(cut))) }
    }
  }

  @Test func hugeHeaderLengthIsRejectedBeforeAllocating() throws {
    // Claims a 2^62-byte header (and, next, 99 MB) in a 24-byte file.
    var bytes: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0x40] + Array("{}".utf8) + [UInt8](repeating: 32, count: 14)
    try expectMalformed(bytes, "limit")
    bytes.replaceSubrange(0..<8, with: [0x80, 0x96, 0xe6, 0x05, 0, 0, 0, 0])
    try expectMalformed(bytes, "truncated")
    // A header that claims a huge tensor: [2^31−1, 2^31−1] F64 with offsets to match.
    let huge = safetensorsBytes(
      header: #"{"w":{"dtype":"F64","shape":[2147483647,2147483647],"data_offsets":[0,36893488112696328200]}}"#,
      data: [0, 0, 0, 0, 0, 0, 0, 0])
    try expectMalformed(huge, "malformed")
    let huge2 = safetensorsBytes(
      header: #"{"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}"#,
      data: [0, 0, 0, 0])
    try expectMalformed(huge2, "beyond the 4 data bytes")
  }

  @Test func inconsistentHeadersAreRejected() throws {
    let eight = [UInt8](repeating: 0, count: 8)
    func header(_ json: String) -> [UInt8] { safetensorsBytes(header: json, data: eight) }
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#), "not valid JSON")
    try expectMalformed(header(#"[1,2]"#), "not a JSON object")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#), "needs 12 bytes")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#), "data_offsets [8, 0]")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#), "beyond")
    try expectMalformed(
      header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#),
      "overlaps")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#), "gap")
    try expectMalformed(header(#"{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#), "unknown dtype")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#), "invalid dimension")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#), "invalid dimension")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[2]}}"#), "lacks")
    try expectMalformed(header(#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#), "duplicate")
    try expectMalformed(header(#"{"__metadata__":{"k":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#), "not a string")
    try expectMalformed(header(String(repeating: "[", count: 10_000)), "nesting")
    // A dtype Soma knows of but does not read.
    let dir = try TemporaryDirectory()
    try dir.write(header(#"{"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}"#), to: "h.safetensors")
    let error = #expect(throws: SomaDataError.self) { try SafeTensors.read(dir.file("h.safetensors")) }
    #expect(error?.kind == .unsupported)
    #expect(error?.description.contains("F16") == true)
  }

  @Test func missingFileIsNamed() throws {
    let error = #expect(throws: SomaDataError.self) { try SafeTensors.read("/nonexistent/x.safetensors") }
    #expect(error?.kind == .missing)
    #expect(error?.description.contains("/nonexistent/x.safetensors") == true)
  }
}
