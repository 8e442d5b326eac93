import Foundation
import SomaData
import SomaTensor
import Testing

/// The reliability issue's IDX reproducer: rank 3, dimensions 2^32−1, 2^32−1, 0, no data. Its
/// nonzero dimensions overflow a 64-bit product, and the reader used to trap on it.
let idxOverflowReproducer: [UInt8] = [
  0x00, 0x00, 0x08, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
]

/// Inputs built to make a reader trap or allocate without bound; each must throw one exact,
/// named error instead.
@Suite struct HostileInputTests {
  static let overflowMessage =
    "x is malformed: its dimensions [4294967295, 4294967295, 0] multiply to more than"
    + " 9223372036854775807 bytes (leaving out zeros), expected a product that matches the data"
    + " it holds."

  @Test func idxOverflowReproducerThrowsInsteadOfTrapping() throws {
    for rank in [nil, 3] {
      let error = #expect(throws: SomaDataError.self) {
        try IDXArray.parse(idxOverflowReproducer, path: "x", expectedRank: rank)
      }
      #expect(error?.kind == .malformed)
      #expect(error?.path == "x")
      #expect(error?.description == Self.overflowMessage)
    }
    // The same header gzipped: the error comes from the header, before anything is inflated.
    let gz = try Gzip.compress(idxOverflowReproducer)
    let error = #expect(throws: SomaDataError.self) { try IDXArray.decode(gz, path: "x") }
    #expect(error?.description == Self.overflowMessage)
  }

  @Test(arguments: [false, true])
  func idxOverflowReproducerAsDatasetFileNamesTheFile(gzip: Bool) throws {
    let dir = try TemporaryDirectory()
    try writeTinyDataset(in: dir, gzip: gzip)
    let name = "train-images-idx3-ubyte" + (gzip ? ".gz" : "")
    try dir.write(
      gzip ? try Gzip.compress(idxOverflowReproducer) : idxOverflowReproducer, to: name)
    let error = #expect(throws: SomaDataError.self) { try FashionMNIST(directory: dir.path) }
    #expect(error?.kind == .malformed)
    #expect(error?.path == dir.file(name))
    let expected = Self.overflowMessage.replacingOccurrences(of: "x ", with: dir.file(name) + " ")
    #expect(error?.description == expected)
  }

  @Test func idxZeroDimensionIsAnEmptyArray() throws {
    // A zero dimension beside small ones is a valid, empty array (not an overflow).
    let a = try IDXArray.parse([0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 1, 0], path: "x")
    #expect(a.dimensions == [0, 256])
    #expect(a.bytes.isEmpty)
  }

  @Test func gzipInflationIsCappedAtTheIDXHeaderClaim() throws {
    // Labels for 10 samples (a 18-byte file), followed by 8 MB of zeros: the stream inflates
    // to far more than its header can need.
    let honest = [0, 0, 8, 1, 0, 0, 0, 10] + [UInt8](repeating: 3, count: 10)
    let bomb = try Gzip.compress(honest + [UInt8](repeating: 0, count: 8 << 20), level: 9)
    #expect(bomb.count < 16 << 10)
    let error = #expect(throws: SomaDataError.self) { try IDXArray.decode(bomb, path: "x") }
    #expect(error?.kind == .malformed)
    #expect(
      error?.description
        == "x is malformed: it inflates to more than the 18 bytes its IDX header promises"
        + " (trailing bytes).")
    // The honest file still reads, gzipped or not.
    let a = try IDXArray.decode(try Gzip.compress(honest), path: "x", expectedRank: 1)
    #expect(a.dimensions == [10] && a.bytes == [UInt8](repeating: 3, count: 10))
  }

  @Test func gzipLimitAndPrefix() throws {
    let data = (0..<5000).map { UInt8($0 % 251) }
    let packed = try Gzip.compress(data)
    #expect(try Gzip.decompress(packed, limit: 5000) == data)
    let failure = #expect(throws: Gzip.Failure.self) { try Gzip.decompress(packed, limit: 4999) }
    #expect(failure?.limit == 4999)
    #expect(failure?.message == "the gzip stream inflates to more than 4999 bytes")
    // A lying size hint changes nothing but the first allocation.
    #expect(try Gzip.decompress(packed, sizeHint: 1 << 40, limit: 5000) == data)
    #expect(try Gzip.decompressPrefix(packed, count: 7) == Array(data.prefix(7)))
    #expect(try Gzip.decompressPrefix(packed, count: 1 << 20) == data)
    // Two members: the limit counts both.
    #expect(throws: Gzip.Failure.self) { try Gzip.decompress(packed + packed, limit: 9999) }
    #expect(try Gzip.decompress(packed + packed, limit: 10000) == data + data)
  }

  @Test func npyShapeThatOverflowsBesideAZeroIsRejected() throws {
    let bytes = npyBytes(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4611686018427387904, 4), }",
      data: [])
    let error = #expect(throws: SomaDataError.self) { try NPY.decode(bytes, path: "a.npy") }
    #expect(error?.kind == .malformed)
    #expect(
      error?.description
        == "a.npy is malformed: its shape [0, 4611686018427387904, 4] needs more bytes than can"
        + " be addressed, expected one that fits the 0 data bytes it holds.")
  }

  @Test func safetensorsShapeThatOverflowsBesideAZeroIsRejected() throws {
    let bytes = safetensorsBytes(
      header: #"{"w":{"dtype":"F32","shape":[0,2147483647,2147483647,2147483647],"#
        + #""data_offsets":[0,0]}}"#,
      data: [])
    let error = #expect(throws: SomaDataError.self) {
      try SafeTensors.decode(bytes, path: "w.safetensors")
    }
    #expect(error?.kind == .malformed)
    #expect(
      error?.description
        == "w.safetensors is malformed: tensor \"w\" has a shape [0, 2147483647, 2147483647,"
        + " 2147483647] too large to address.")
  }

  @Test func normalizedJSONRoundTripsAndRejectsWhatItCannotWriteBack() throws {
    let text = #"{ "a" : [1, -0, 2.5e0, "\u00e9\n", true, null], "b": {} }"#
    let once = try SafeTensors.normalizedJSON(Array(text.utf8))
    #expect(once == "{\"a\":[1,0,2.5,\"é\\n\",true,null],\"b\":{}}")
    #expect(try SafeTensors.normalizedJSON(Array(once.utf8)) == once)
    let error = #expect(throws: SomaDataError.self) {
      try SafeTensors.normalizedJSON(Array("[1e999]".utf8), path: "h.json")
    }
    #expect(
      error?.description
        == "h.json is malformed: it is not valid JSON (number out of range at byte 6).")
  }
}
