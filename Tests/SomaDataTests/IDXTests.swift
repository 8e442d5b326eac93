import Foundation
import SomaData
import Testing

/// Hand-built IDX bytes: magic 00 00 08 rank, big-endian dimensions, data.
func idxBytes(_ dims: [Int], _ data: [UInt8], magicType: UInt8 = 0x08) -> [UInt8] {
  var out: [UInt8] = [0, 0, magicType, UInt8(dims.count)]
  for d in dims { out += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
  return out + data
}

/// A tiny MNIST-style dataset: `n` images of 2×3 pixels with pixel values 10·i + j and
/// labels i % 10, written as the four files (gzipped or not).
func writeTinyDataset(
  in dir: TemporaryDirectory, train: Int = 5, test: Int = 3, gzip: Bool
) throws {
  for (prefix, n) in [("train", train), ("t10k", test)] {
    let pixels = (0..<n).flatMap { i in (0..<6).map { j in UInt8((10 * i + j) % 256) } }
    let labels = (0..<n).map { UInt8($0 % 10) }
    var images = idxBytes([n, 2, 3], pixels)
    var labelBytes = idxBytes([n], labels)
    var suffix = ""
    if gzip {
      images = try Gzip.compress(images)
      labelBytes = try Gzip.compress(labelBytes)
      suffix = ".gz"
    }
    try dir.write(images, to: "\(prefix)-images-idx3-ubyte" + suffix)
    try dir.write(labelBytes, to: "\(prefix)-labels-idx1-ubyte" + suffix)
  }
}

@Suite struct IDXTests {
  @Test(arguments: [false, true])
  func readsTinyDataset(gzip: Bool) throws {
    let dir = try TemporaryDirectory()
    try writeTinyDataset(in: dir, gzip: gzip)
    let data = try FashionMNIST(directory: dir.path)
    #expect(data.train.count == 5)
    #expect(data.test.count == 3)
    #expect(data.train.rows == 2 && data.train.columns == 3)
    #expect(data.train.labels == [0, 1, 2, 3, 4])
    #expect(data.test.pixels == [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25])
    let images = data.train.images
    #expect(images.shape == [5, 6])
    #expect(images[scalarAt: 1, 2] == Float(12) / 255)
    #expect(images[scalarAt: 4, 5] == Float(45) / 255)
    let batch = data.train.images(at: [3, 0])
    #expect(batch.shape == [2, 6])
    #expect(batch.scalars == Array(images.scalars[18..<24]) + Array(images.scalars[0..<6]))
    #expect(data.train.labels(at: [3, 0]) == [3, 0])
  }

  @Test func idxArrayRoundTrip() throws {
    let a = IDXArray(dimensions: [2, 2, 2], bytes: [1, 2, 3, 4, 5, 6, 7, 8])
    #expect(try IDXArray.parse(a.encoded(), path: "x") == a)
    #expect(a.encoded() == idxBytes([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]))
  }

  @Test func gzipRoundTripAndConcatenatedMembers() throws {
    let a = Array("hello, ".utf8), b = Array((0..<5000).map { UInt8($0 % 251) })
    #expect(try Gzip.decompress(Gzip.compress(a)) == a)
    #expect(try Gzip.decompress(Gzip.compress(a) + Gzip.compress(b)) == a + b)
    let packed = try Gzip.compress(b)
    #expect(throws: Gzip.Failure.self) { try Gzip.decompress(Array(packed.dropLast(20))) }
  }

  /// Writes one bad file in an otherwise good dataset; the error must name that file.
  func expectRejected(
    _ name: String, _ bytes: [UInt8], mentioning phrase: String, gzip: Bool = false
  ) throws {
    let dir = try TemporaryDirectory()
    try writeTinyDataset(in: dir, gzip: false)
    let target = name + (gzip ? ".gz" : "")
    if gzip { try FileManager.default.removeItem(atPath: dir.file(name)) }
    try dir.write(bytes, to: target)
    let error = #expect(throws: SomaDataError.self) { try FashionMNIST(directory: dir.path) }
    #expect(error?.kind == .malformed)
    #expect(error?.description.contains(dir.file(target)) == true, "\(String(describing: error))")
    #expect(error?.description.contains(phrase) == true, "\(String(describing: error))")
    #expect(error?.description.hasSuffix(".") == true)
  }

  @Test func rejectsBadMagic() throws {
    // Labels magic (rank 1) where images (rank 3) are expected.
    try expectRejected(
      "train-images-idx3-ubyte", idxBytes([30], [UInt8](repeating: 0, count: 30)),
      mentioning: "0x00000801")
    // Not unsigned bytes (0x0D is float32 in IDX).
    try expectRejected(
      "t10k-labels-idx1-ubyte", idxBytes([3], [UInt8](repeating: 0, count: 12), magicType: 0x0d),
      mentioning: "magic number")
    try expectRejected("t10k-labels-idx1-ubyte", [0x50, 0x4b, 0x03, 0x04, 0, 0], mentioning: "magic")
  }

  @Test func rejectsTruncatedAndOverlongFiles() throws {
    let full = idxBytes([5, 2, 3], [UInt8](repeating: 7, count: 30))
    try expectRejected("train-images-idx3-ubyte", Array(full.dropLast(1)), mentioning: "truncated")
    try expectRejected("train-images-idx3-ubyte", full + [0], mentioning: "trailing")
    try expectRejected("train-images-idx3-ubyte", Array(full.prefix(10)), mentioning: "header")
    try expectRejected("train-images-idx3-ubyte", [0, 0], mentioning: "fewer than")
    // A gzip stream cut short.
    let gz = try Gzip.compress(full)
    try expectRejected(
      "train-images-idx3-ubyte", Array(gz.prefix(gz.count / 2)), mentioning: "gzip", gzip: true)
  }

  @Test func rejectsHugeDimensionsWithoutAllocating() throws {
    // Claims 2^32−1 × 2^32−1 × 255 bytes (more than Int.max); the file holds 30.
    let bytes: [UInt8] = [0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 255]
      + [UInt8](repeating: 0, count: 30)
    try expectRejected("train-images-idx3-ubyte", bytes, mentioning: "multiply to more than")
    // Claims 2^24 × 2^16 × 256 bytes (2^48: addressable, but not there).
    let big: [UInt8] = [0, 0, 8, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
      + [UInt8](repeating: 0, count: 30)
    try expectRejected("train-images-idx3-ubyte", big, mentioning: "truncated")
    let gz = try Gzip.compress(big)
    try expectRejected("train-images-idx3-ubyte", gz, mentioning: "truncated", gzip: true)
  }

  @Test func rejectsCountMismatch() throws {
    let dir = try TemporaryDirectory()
    try writeTinyDataset(in: dir, gzip: false)
    try dir.write(idxBytes([4], [0, 1, 2, 3]), to: "train-labels-idx1-ubyte")
    let error = #expect(throws: SomaDataError.self) { try FashionMNIST(directory: dir.path) }
    #expect(error?.description.contains(dir.file("train-labels-idx1-ubyte")) == true)
    #expect(error?.description.contains("4 labels") == true)
    #expect(error?.description.contains("5 images") == true)
  }

  @Test func rejectsTestImagesOfAnotherSize() throws {
    let dir = try TemporaryDirectory()
    try writeTinyDataset(in: dir, gzip: false)
    try dir.write(idxBytes([3, 3, 2], [UInt8](repeating: 1, count: 18)), to: "t10k-images-idx3-ubyte")
    let error = #expect(throws: SomaDataError.self) { try FashionMNIST(directory: dir.path) }
    #expect(error?.description.contains(dir.file("t10k-images-idx3-ubyte")) == true)
    #expect(error?.description.contains("3×2") == true)
    #expect(error?.description.contains("2×3") == true)
  }

  @Test func missingDirectoryNamesTheInstallCommand() throws {
    let path = "/nonexistent/soma-fashion-mnist"
    let error = #expect(throws: SomaDataError.self) { try FashionMNIST(directory: path) }
    #expect(error?.kind == .missing)
    #expect(error?.description.contains(path) == true)
    #expect(error?.description.contains("apt-get install -y dataset-fashion-mnist") == true)
  }

  @Test func missingFileIsNamed() throws {
    let dir = try TemporaryDirectory()
    try writeTinyDataset(in: dir, gzip: true)
    try FileManager.default.removeItem(atPath: dir.file("t10k-labels-idx1-ubyte.gz"))
    let error = #expect(throws: SomaDataError.self) { try FashionMNIST(directory: dir.path) }
    #expect(error?.kind == .missing)
    #expect(error?.description.contains(dir.file("t10k-labels-idx1-ubyte")) == true)
  }

  @Test(.enabled(if: FileManager.default.fileExists(atPath: FashionMNIST.defaultDirectory)))
  func realFashionMNISTIsBalanced() throws {
    let data = try FashionMNIST()
    #expect(data.train.count == 60_000 && data.test.count == 10_000)
    #expect(data.train.featureCount == 784)
    // Fashion-MNIST has exactly 6000 training and 1000 test images per class.
    var trainCounts = [Int](repeating: 0, count: 10), testCounts = trainCounts
    for l in data.train.labels { trainCounts[l] += 1 }
    for l in data.test.labels { testCounts[l] += 1 }
    #expect(trainCounts == [Int](repeating: 6000, count: 10))
    #expect(testCounts == [Int](repeating: 1000, count: 10))
    // BENCHMARKS.md: about 0.42 % of latency-coded inputs are spikes (T = 100).
    let x = data.train.images(at: 0..<500)
    let density = LatencyEncoder(timeSteps: 100).encode(x).density
    #expect(density > 0.0035 && density < 0.0050, "density \(density)")
  }
}
