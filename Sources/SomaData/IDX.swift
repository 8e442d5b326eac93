/// An array of unsigned bytes in the IDX format that MNIST and Fashion-MNIST use, read from a
/// plain or gzipped file.
///
/// An IDX file is a 4-byte big-endian magic number `00 00 08 d` (`08`: unsigned bytes, `d`:
/// the number of dimensions), `d` big-endian 32-bit dimensions, then the bytes in row-major
/// order. The reader checks all of it, including that the file holds exactly the bytes the
/// dimensions promise.
///
/// ```swift
/// let labels = try IDXArray(contentsOf: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
/// print(labels.dimensions)  // [10000]
/// ```
public struct IDXArray: Sendable, Equatable {
  /// The extent of each axis.
  public var dimensions: [Int]
  /// The elements in row-major order.
  public var bytes: [UInt8]

  /// An array of `dimensions` holding `bytes` (their counts must agree).
  public init(dimensions: [Int], bytes: [UInt8]) {
    let count = checkedElementCount(dimensions)
    precondition(
      count != nil, "IDXArray: dimensions \(dimensions) are negative or overflow Int")
    precondition(
      count == bytes.count, "IDXArray: \(bytes.count) bytes cannot fill dimensions \(dimensions)")
    self.dimensions = dimensions
    self.bytes = bytes
  }

  /// The largest IDX header: the magic number and 255 dimensions.
  static let maximumHeaderSize = 4 + 4 * 255

  /// Reads an IDX file of unsigned bytes; gzip compression is detected from the content.
  ///
  /// - Parameter expectedRank: when given, the number of dimensions the file must have
  ///   (3 for MNIST images, magic `0x00000803`; 1 for labels, `0x00000801`).
  /// - Throws: `SomaDataError` naming the file when it is missing, unreadable, not gzip it
  ///   claims to be, or not a consistent IDX file.
  public init(contentsOf path: String, expectedRank: Int? = nil) throws(SomaDataError) {
    let file = try ReadableFile(path: path)
    var raw = try file.readAll()
    if Gzip.isGzip(raw) {
      self = try IDXArray.decode(raw, path: path, expectedRank: expectedRank)
    } else {
      self = try IDXArray.parseInPlace(&raw, path: path, expectedRank: expectedRank)
    }
  }

  /// Decodes the bytes of an IDX file, plain or gzipped (detected from the content); `path`
  /// only names it in errors.
  ///
  /// A gzipped file is inflated only as far as its IDX header says the file can reach, so a
  /// small hostile `.gz` cannot make the reader allocate more than the header's own claim,
  /// and a claim is believed only after the header has been checked.
  public static func decode(_ raw: [UInt8], path: String, expectedRank: Int? = nil)
    throws(SomaDataError) -> IDXArray
  {
    guard Gzip.isGzip(raw) else { return try parse(raw, path: path, expectedRank: expectedRank) }
    let head: [UInt8]
    do throws(Gzip.Failure) {
      head = try Gzip.decompressPrefix(raw, count: maximumHeaderSize)
    } catch {
      throw SomaDataError.malformed(path, error.message)
    }
    let layout = try header(head, path: path, expectedRank: expectedRank)
    // count fits Int, but adding the header (at most 1024 bytes) to a hostile one may not.
    let (size, overflow) = layout.count.addingReportingOverflow(layout.headerSize)
    guard !overflow else {
      throw SomaDataError.malformed(
        path, "its dimensions \(layout.dimensions) need more bytes than a file can hold")
    }
    var plain: [UInt8]
    do throws(Gzip.Failure) {
      plain = try Gzip.decompress(raw, sizeHint: size, limit: size)
    } catch {
      if error.limit != nil {
        throw SomaDataError.malformed(
          path, "it inflates to more than the \(size) bytes its IDX header promises"
            + " (trailing bytes)")
      }
      throw SomaDataError.malformed(path, error.message)
    }
    return try parseInPlace(&plain, path: path, expectedRank: expectedRank)
  }

  /// Parses the bytes of an (uncompressed) IDX file; `path` only names it in errors.
  public static func parse(_ raw: [UInt8], path: String, expectedRank: Int? = nil)
    throws(SomaDataError) -> IDXArray
  {
    var copy = raw
    return try parseInPlace(&copy, path: path, expectedRank: expectedRank)
  }

  /// `parse`, taking the data bytes out of `raw` itself (the header is removed in place), so a
  /// 47 MB image file is held once, not twice, while it loads.
  static func parseInPlace(_ raw: inout [UInt8], path: String, expectedRank: Int?)
    throws(SomaDataError) -> IDXArray
  {
    let layout = try header(raw, path: path, expectedRank: expectedRank)
    let have = raw.count - layout.headerSize
    guard have == layout.count else {
      let why = have < layout.count ? "truncated" : "trailing bytes"
      throw SomaDataError.malformed(
        path,
        "its dimensions \(layout.dimensions) need \(layout.count) data bytes but it holds"
          + " \(have) (\(why))")
    }
    raw.removeSubrange(0..<layout.headerSize)
    let bytes = raw
    raw = []
    return IDXArray(dimensions: layout.dimensions, bytes: bytes)
  }

  /// The dimensions in the header at the start of `raw`, the header's size and the number of
  /// data bytes the dimensions need, all checked (`raw` may be just a prefix of the file).
  static func header(_ raw: [UInt8], path: String, expectedRank: Int?)
    throws(SomaDataError) -> (dimensions: [Int], headerSize: Int, count: Int)
  {
    guard raw.count >= 4 else {
      throw SomaDataError.malformed(
        path, "it holds \(raw.count) bytes, fewer than the 4-byte IDX magic number")
    }
    let magic = UInt32(raw[0]) << 24 | UInt32(raw[1]) << 16 | UInt32(raw[2]) << 8 | UInt32(raw[3])
    let rank = Int(raw[3])
    let magicText = "0x" + String(magic, radix: 16).leftPadded(to: 8)
    if raw[0] != 0 || raw[1] != 0 || raw[2] != 0x08 || rank == 0 {
      let want = expectedRank.map { "0x0000080\($0)" } ?? "0x000008XX (unsigned bytes)"
      throw SomaDataError.malformed(
        path, "its magic number is \(magicText), expected \(want) for an IDX file of bytes")
    }
    if let expectedRank, rank != expectedRank {
      throw SomaDataError.malformed(
        path, "its magic number is \(magicText), expected 0x0000080\(expectedRank)"
          + " (\(expectedRank) dimension\(expectedRank == 1 ? "" : "s"))")
    }
    let headerSize = 4 + 4 * rank
    guard raw.count >= headerSize else {
      throw SomaDataError.malformed(
        path, "it ends inside its header (\(raw.count) bytes, the header needs \(headerSize))")
    }
    let dims = (0..<rank).map { i in
      let o = 4 + 4 * i
      return Int(raw[o]) << 24 | Int(raw[o + 1]) << 16 | Int(raw[o + 2]) << 8 | Int(raw[o + 3])
    }
    guard let count = checkedElementCount(dims) else {
      throw SomaDataError.malformed(
        path,
        "its dimensions \(dims) multiply to more than \(Int.max) bytes (leaving out zeros),"
          + " expected a product that matches the data it holds")
    }
    return (dims, headerSize, count)
  }

  /// The IDX encoding of this array (uncompressed); gzip it with `Gzip.compress` if wanted.
  public func encoded() -> [UInt8] {
    precondition(
      !dimensions.isEmpty && dimensions.count < 256
        && dimensions.allSatisfy { $0 >= 0 && $0 <= Int(UInt32.max) },
      "IDXArray.encoded: dimensions \(dimensions) do not fit the IDX header")
    var out: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
    for d in dimensions {
      out += [UInt8(truncatingIfNeeded: d >> 24), UInt8(truncatingIfNeeded: d >> 16),
              UInt8(truncatingIfNeeded: d >> 8), UInt8(truncatingIfNeeded: d)]
    }
    out += bytes
    return out
  }
}

extension String {
  func leftPadded(to width: Int, with pad: Character = "0") -> String {
    count >= width ? self : String(repeating: pad, count: width - count) + self
  }
}
