internal import CZlib

/// Gzip (RFC 1952) compression and decompression through zlib.
///
/// ```swift
/// let packed = try Gzip.compress(Array("hello".utf8))
/// let bytes = try Gzip.decompress(packed)   // the five bytes of "hello"
/// ```
public enum Gzip {
  /// True when `bytes` begin with the gzip magic number `1f 8b`.
  public static func isGzip<C: Collection<UInt8>>(_ bytes: C) -> Bool {
    var it = bytes.makeIterator()
    return it.next() == 0x1f && it.next() == 0x8b
  }

  /// An error from zlib; `message` says what went wrong.
  public struct Failure: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The output limit the stream exceeded, when that is what went wrong.
    public var limit: Int?
    public var description: String { message }

    init(message: String, limit: Int? = nil) {
      self.message = message
      self.limit = limit
    }
  }

  /// The decompressed contents of a gzip stream (several concatenated members are joined,
  /// as `gunzip` does).
  ///
  /// - Parameters:
  ///   - sizeHint: the expected output size, if known (the gzip trailer's ISIZE is used
  ///     otherwise), so the output buffer is allocated once.
  ///   - limit: the most bytes the caller can use. A stream that inflates to more throws a
  ///     `Failure` whose `limit` is set, after at most `limit + 1` bytes were produced, so a
  ///     small hostile stream cannot exhaust memory. No limit by default.
  public static func decompress(_ input: [UInt8], sizeHint: Int? = nil, limit: Int? = nil)
    throws(Failure) -> [UInt8]
  {
    precondition(limit.map { $0 >= 0 } ?? true, "Gzip.decompress: negative limit \(limit ?? 0)")
    // One byte past the limit tells a stream that exceeds it from one that fills it exactly.
    let ceiling = limit.map { $0 == Int.max ? $0 : $0 + 1 } ?? Int.max
    let (output, complete) = try inflate(input, sizeHint: sizeHint, ceiling: ceiling)
    if let limit, !complete || output.count > limit {
      throw Failure(message: "the gzip stream inflates to more than \(limit) bytes", limit: limit)
    }
    return output
  }

  /// The first `count` decompressed bytes of a gzip stream (all of them when it is shorter);
  /// what follows is neither inflated nor checked.
  public static func decompressPrefix(_ input: [UInt8], count: Int) throws(Failure) -> [UInt8] {
    precondition(count >= 0, "Gzip.decompressPrefix: negative count \(count)")
    return try inflate(input, sizeHint: count, ceiling: count).bytes
  }

  /// Inflates `input` until the stream ends (`complete`) or `ceiling` bytes are out.
  private static func inflate(_ input: [UInt8], sizeHint: Int?, ceiling: Int)
    throws(Failure) -> (bytes: [UInt8], complete: Bool)
  {
    if input.isEmpty { throw Failure(message: "the gzip stream is empty") }
    // ISIZE (the last four bytes) is the uncompressed size mod 2^32 of the last member: a good
    // first guess, never trusted beyond that.
    var capacity = sizeHint ?? 0
    if capacity == 0, input.count >= 18 {
      let n = input.count
      capacity = Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16
        | Int(input[n - 1]) << 24
      // A hostile trailer cannot make us allocate more than zlib's maximum ratio allows.
      capacity = min(capacity, input.count &* 1032)
    }
    // Nor can a hint or the caller's limit: the buffer grows only as output arrives.
    capacity = min(max(capacity, 64), ceiling, input.count &* 1032 &+ 64)
    var output = [UInt8](repeating: 0, count: capacity)
    var produced = 0
    if ceiling == 0 { return ([], false) }

    var stream = z_stream()
    // 15 + 32: a zlib or gzip header, detected automatically.
    var status = inflateInit2_(
      &stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else { throw Failure(message: "zlib could not start (code \(status))") }
    defer { inflateEnd(&stream) }

    var consumed = 0
    let complete = try input.withUnsafeBufferPointer {
      (src: UnsafeBufferPointer<UInt8>) throws(Failure) -> Bool in
      while true {
        if produced == output.count {
          if produced >= ceiling { return false }
          let grown = min(output.count &* 2, ceiling)
          output.append(contentsOf: repeatElement(0, count: grown - output.count))
        }
        let avail_in = min(src.count - consumed, Int(UInt32.max))
        let avail_out = min(output.count - produced, Int(UInt32.max))
        stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress! + consumed)
        stream.avail_in = UInt32(avail_in)
        status = output.withUnsafeMutableBufferPointer { dst in
          stream.next_out = dst.baseAddress! + produced
          stream.avail_out = UInt32(avail_out)
          return CZlib.inflate(&stream, Z_NO_FLUSH)
        }
        consumed += avail_in - Int(stream.avail_in)
        produced += avail_out - Int(stream.avail_out)
        switch status {
        case Z_STREAM_END:
          // Another gzip member may follow; skip zero padding.
          while consumed < src.count && src[consumed] == 0 { consumed += 1 }
          if consumed == src.count { return true }
          guard inflateReset(&stream) == Z_OK else {
            throw Failure(message: "zlib could not restart for the next gzip member")
          }
        case Z_OK:
          continue
        case Z_BUF_ERROR:
          // No progress possible: either the output is full (grow it) or the input ran out.
          if produced < output.count {
            throw Failure(message: "the gzip stream is truncated")
          }
        case Z_DATA_ERROR:
          let text = stream.msg.map { String(cString: $0) } ?? "invalid data"
          throw Failure(message: "the gzip stream is corrupt (\(text))")
        case Z_MEM_ERROR:
          throw Failure(message: "zlib ran out of memory")
        default:
          throw Failure(message: "zlib failed (code \(status))")
        }
      }
    }
    output.removeSubrange(produced...)
    return (output, complete)
  }

  /// `input` compressed as one gzip member at `level` (0 = store, 1 = fastest … 9 = smallest).
  public static func compress(_ input: [UInt8], level: Int = 6)
    throws(Failure) -> [UInt8]
  {
    var stream = z_stream()
    // 15 + 16: write a gzip (not zlib) header.
    var status = deflateInit2_(
      &stream, Int32(max(0, min(9, level))), Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
      Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else { throw Failure(message: "zlib could not start (code \(status))") }
    defer { deflateEnd(&stream) }
    let bound = Int(deflateBound(&stream, UInt(input.count))) + 32
    var output = [UInt8](repeating: 0, count: bound)
    var src = input
    status = src.withUnsafeMutableBufferPointer { s in
      output.withUnsafeMutableBufferPointer { d in
        stream.next_in = s.baseAddress
        stream.avail_in = UInt32(s.count)
        stream.next_out = d.baseAddress
        stream.avail_out = UInt32(d.count)
        return deflate(&stream, Z_FINISH)
      }
    }
    guard status == Z_STREAM_END else { throw Failure(message: "zlib failed (code \(status))") }
    output.removeSubrange(Int(stream.total_out)...)
    return output
  }
}
