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
    public var description: String { message }
  }

  /// The decompressed contents of a gzip stream (several concatenated members are joined,
  /// as `gunzip` does).
  ///
  /// `sizeHint` is the expected output size, if known (the gzip trailer's ISIZE is used
  /// otherwise), so the output buffer is allocated once.
  public static func decompress(_ input: [UInt8], sizeHint: Int? = nil) throws(Failure) -> [UInt8]
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
    capacity = max(capacity, 64)
    var output = [UInt8](repeating: 0, count: capacity)
    var produced = 0

    var stream = z_stream()
    // 15 + 32: a zlib or gzip header, detected automatically.
    var status = inflateInit2_(
      &stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
    guard status == Z_OK else { throw Failure(message: "zlib could not start (code \(status))") }
    defer { inflateEnd(&stream) }

    var consumed = 0
    try input.withUnsafeBufferPointer { (src: UnsafeBufferPointer<UInt8>) throws(Failure) in
      while true {
        if produced == output.count { output.append(contentsOf: repeatElement(0, count: output.count)) }
        let avail_in = min(src.count - consumed, Int(UInt32.max))
        let avail_out = min(output.count - produced, Int(UInt32.max))
        stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress! + consumed)
        stream.avail_in = UInt32(avail_in)
        status = output.withUnsafeMutableBufferPointer { dst in
          stream.next_out = dst.baseAddress! + produced
          stream.avail_out = UInt32(avail_out)
          return inflate(&stream, Z_NO_FLUSH)
        }
        consumed += avail_in - Int(stream.avail_in)
        produced += avail_out - Int(stream.avail_out)
        switch status {
        case Z_STREAM_END:
          // Another gzip member may follow; skip zero padding.
          while consumed < src.count && src[consumed] == 0 { consumed += 1 }
          if consumed == src.count { return }
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
    return output
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
