import SomaTensor

/// Reads and writes the safetensors format, so checkpoints move between Soma and Python's
/// `safetensors` (PyTorch, JAX, MLX) in both directions.
///
/// A file is an 8-byte little-endian header length N, N bytes of JSON header, then the raw
/// little-endian tensor data. The header maps each tensor name to its `dtype` (`"F32"`,
/// `"F64"`), `shape` and `data_offsets` [begin, end) within the data, plus an optional
/// `"__metadata__"` object of string → string.
///
/// Writing is deterministic (the same tensors give the same bytes): metadata first, then the
/// tensors ordered by element size (largest first, so every tensor starts aligned) and name,
/// the header padded with spaces to a multiple of 8 bytes as the reference implementation does.
/// Writes are atomic (`AtomicFile`). Reading validates everything before trusting it: the
/// header length against the file size, the JSON, every dtype, shape and offset, and that the
/// tensors tile the data exactly; a file that claims huge sizes is rejected before anything
/// large is allocated.
///
/// ```swift
/// try SafeTensors.write(
///   ["w1": AnyTensor(w1), "w2": AnyTensor(w2)], metadata: ["hidden": "100"],
///   to: "run/final.safetensors")
/// let file = try SafeTensors.read("run/final.safetensors")
/// let w1: Tensor<Float> = try file.tensor("w1")
/// print(file.metadata["hidden"] ?? "?")
/// ```
public enum SafeTensors {
  /// The largest header accepted, as in the reference implementation (100 MB).
  public static let maximumHeaderSize = 100_000_000

  /// The tensors and metadata of one file.
  public struct File: Sendable, Equatable {
    public var tensors: [String: AnyTensor]
    public var metadata: [String: String]
    /// Where the file was read from, for error messages (empty for files built in memory).
    public var source: String

    public init(tensors: [String: AnyTensor], metadata: [String: String] = [:], source: String = "") {
      self.tensors = tensors
      self.metadata = metadata
      self.source = source
    }

    /// The tensor called `name` as a `Tensor<S>`.
    /// - Parameter path: names the file in errors instead of `source`, if given.
    /// - Throws: `SomaDataError` naming the file when there is no such tensor or it is stored
    ///   with another dtype.
    public func tensor<S: TensorScalar>(_ name: String, as: S.Type = S.self, path: String = "")
      throws(SomaDataError) -> Tensor<S>
    {
      let source = path.isEmpty ? self.source : path
      let what = source.isEmpty ? "The checkpoint" : source
      guard let t = tensors[name] else {
        throw SomaDataError(.malformed, path: source, "\(what) has no tensor named \"\(name)\".")
      }
      guard let typed = t.as(S.self) else {
        throw SomaDataError(
          .unsupported, path: source,
          "\(what) stores \"\(name)\" as \(t.dtype.rawValue), not \(S.safetensorsDType).")
      }
      return typed
    }

    /// Same tensors (bit for bit) and metadata; `source` is not compared.
    public static func == (a: File, b: File) -> Bool {
      a.tensors == b.tensors && a.metadata == b.metadata
    }
  }

  // MARK: Writing

  /// The file's bytes for `tensors` and `metadata`.
  public static func encode(_ tensors: [String: AnyTensor], metadata: [String: String] = [:])
    -> [UInt8]
  {
    let (header, order) = makeHeader(tensors, metadata: metadata)
    var out = headerPrefix(header)
    for name in order { out += tensors[name]!.littleEndianBytes() }
    return out
  }

  /// Writes `tensors` and `metadata` to `path` atomically.
  public static func write(
    _ tensors: [String: AnyTensor], metadata: [String: String] = [:], to path: String
  ) throws {
    let (header, order) = makeHeader(tensors, metadata: metadata)
    try AtomicFile.write(to: path) { sink in
      try sink.write(headerPrefix(header))
      for name in order { try sink.write(tensors[name]!.littleEndianBytes()) }
    }
  }

  /// Writes tensors of one scalar type to `path` atomically.
  public static func write<S: TensorScalar>(
    _ tensors: [String: Tensor<S>], metadata: [String: String] = [:], to path: String
  ) throws {
    try write(tensors.mapValues { AnyTensor($0) }, metadata: metadata, to: path)
  }

  static func headerPrefix(_ header: [UInt8]) -> [UInt8] {
    var n = UInt64(header.count).littleEndian
    var out = withUnsafeBytes(of: &n) { Array($0) }
    out += header
    return out
  }

  /// The padded JSON header and the order of the tensors in the data section.
  static func makeHeader(_ tensors: [String: AnyTensor], metadata: [String: String])
    -> (header: [UInt8], order: [String])
  {
    precondition(
      tensors["__metadata__"] == nil, "SafeTensors: \"__metadata__\" is reserved, not a tensor name")
    let order = tensors.keys.sorted { a, b in
      let (sa, sb) = (tensors[a]!.dtype.size, tensors[b]!.dtype.size)
      return sa != sb ? sa > sb : a.utf8.lexicographicallyPrecedes(b.utf8)
    }
    var parts: [String] = []
    if !metadata.isEmpty {
      let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
      let members = keys.map { JSONValue.quoted($0) + ":" + JSONValue.quoted(metadata[$0]!) }
      parts.append("\"__metadata__\":{" + members.joined(separator: ",") + "}")
    }
    var offset = 0
    for name in order {
      let t = tensors[name]!
      let bytes = t.shape.reduce(1, *) * t.dtype.size
      parts.append(
        JSONValue.quoted(name) + ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":["
          + t.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),"
          + "\(offset + bytes)]}")
      offset += bytes
    }
    var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
    header += repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
    return (header, order)
  }

  // MARK: Reading

  /// Reads the file at `path`.
  ///
  /// - Throws: `SomaDataError` with one sentence naming the file when it is missing,
  ///   truncated, inconsistent, or holds a dtype other than F32/F64.
  public static func read(_ path: String) throws(SomaDataError) -> File {
    let file = try ReadableFile(path: path)
    guard file.size >= 8 else {
      throw SomaDataError.malformed(
        path, "it holds \(file.size) bytes, fewer than the 8-byte safetensors header length")
    }
    let n = headerLength(try file.bytes(at: 0, count: 8))
    try checkHeaderLength(n, fileSize: file.size, path: path)
    let header = try file.bytes(at: 8, count: Int(n))
    let entries = try parseHeader(header, dataSize: file.size - 8 - Int(n), path: path)
    // Every length is now checked against the file size: reading the data is safe.
    let data = try file.bytes(at: 8 + Int(n), count: file.size - 8 - Int(n))
    return makeFile(entries, data: data[...], source: path)
  }

  /// Decodes the bytes of a whole file; `path` only names it in errors.
  public static func decode(_ bytes: [UInt8], path: String = "the safetensors data")
    throws(SomaDataError) -> File
  {
    guard bytes.count >= 8 else {
      throw SomaDataError.malformed(
        path, "it holds \(bytes.count) bytes, fewer than the 8-byte safetensors header length")
    }
    let n = headerLength(Array(bytes[0..<8]))
    try checkHeaderLength(n, fileSize: bytes.count, path: path)
    let h = Int(n)
    let entries = try parseHeader(
      Array(bytes[8..<(8 + h)]), dataSize: bytes.count - 8 - h, path: path)
    return makeFile(entries, data: bytes[(8 + h)...], source: path)
  }

  struct Entry {
    var name: String
    var dtype: AnyTensor.DType
    var shape: [Int]
    var begin: Int, end: Int
  }

  struct Parsed {
    var entries: [Entry]
    var metadata: [String: String]
  }

  static func headerLength(_ b: [UInt8]) -> UInt64 {
    var n: UInt64 = 0
    for i in 0..<8 { n |= UInt64(b[i]) << (8 * UInt64(i)) }
    return n
  }

  static func checkHeaderLength(_ n: UInt64, fileSize: Int, path: String) throws(SomaDataError) {
    if n > UInt64(maximumHeaderSize) {
      throw SomaDataError.malformed(
        path, "its header claims \(n) bytes, more than the \(maximumHeaderSize)-byte limit")
    }
    if n > UInt64(fileSize - 8) {
      throw SomaDataError.malformed(
        path, "its header claims \(n) bytes but the file holds only \(fileSize - 8) after the"
          + " length (truncated?)")
    }
    if n < 2 {
      throw SomaDataError.malformed(path, "its header is \(n) bytes, too short for JSON")
    }
  }

  static let knownDTypes: Set<String> = [
    "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
    "F64", "I64", "U64", "C64",
  ]

  static func parseHeader(_ header: [UInt8], dataSize: Int, path: String)
    throws(SomaDataError) -> Parsed
  {
    func bad(_ what: String) -> SomaDataError { SomaDataError.malformed(path, what) }
    let json: JSONValue
    do {
      json = try JSONValue.parse(header)
    } catch {
      throw bad("its header is not valid JSON (\(error.message) at byte \(error.offset))")
    }
    guard case .object(let members) = json else { throw bad("its header is not a JSON object") }
    var entries: [Entry] = []
    var metadata: [String: String] = [:]
    for (name, value) in members {
      if name == "__metadata__" {
        guard case .object(let m) = value else { throw bad("its __metadata__ is not an object") }
        for (k, v) in m {
          guard case .string(let s) = v else {
            throw bad("its __metadata__ entry \"\(k)\" is not a string")
          }
          metadata[k] = s
        }
        continue
      }
      guard case .object(let fields) = value else {
        throw bad("its entry for tensor \"\(name)\" is not an object")
      }
      var dtypeText: String?
      var shape: [Int]?
      var offsets: [Int]?
      for (key, field) in fields {
        switch key {
        case "dtype":
          guard case .string(let s) = field else { throw bad("tensor \"\(name)\" has a non-string dtype") }
          dtypeText = s
        case "shape":
          guard case .array(let a) = field else { throw bad("tensor \"\(name)\" has a non-array shape") }
          shape = try a.map { (v: JSONValue) throws(SomaDataError) -> Int in
            guard case .integer(let d) = v, d >= 0, d <= Int64(Int32.max) else {
              throw bad("tensor \"\(name)\" has an invalid dimension in its shape")
            }
            return Int(d)
          }
        case "data_offsets":
          guard case .array(let a) = field, a.count == 2 else {
            throw bad("tensor \"\(name)\" needs data_offsets [begin, end]")
          }
          offsets = try a.map { (v: JSONValue) throws(SomaDataError) -> Int in
            guard case .integer(let d) = v, d >= 0 else {
              throw bad("tensor \"\(name)\" has a data offset that is not a non-negative integer")
            }
            guard d <= Int64(dataSize) else {
              throw bad(
                "tensor \"\(name)\" has data offset \(d), beyond the \(dataSize) data bytes"
                  + " (truncated?)")
            }
            return Int(d)
          }
        default:
          throw bad("tensor \"\(name)\" has an unknown field \"\(key)\"")
        }
      }
      guard let dtypeText, let shape, let offsets else {
        throw bad("tensor \"\(name)\" lacks one of dtype, shape, data_offsets")
      }
      guard let dtype = AnyTensor.DType(rawValue: dtypeText) else {
        if knownDTypes.contains(dtypeText) {
          throw SomaDataError(
            .unsupported, path: path,
            "\(path) stores tensor \"\(name)\" as \(dtypeText); Soma reads only F32 and F64.")
        }
        throw bad("tensor \"\(name)\" has unknown dtype \"\(dtypeText)\"")
      }
      // Zeros left out: a shape whose other dimensions overflow is rejected even when empty.
      guard let bytes = checkedElementCount(shape, elementSize: dtype.size) else {
        throw bad("tensor \"\(name)\" has a shape \(shape) too large to address")
      }
      let (begin, end) = (offsets[0], offsets[1])
      guard begin <= end, end - begin == bytes else {
        throw bad(
          "tensor \"\(name)\" has data_offsets [\(begin), \(end)] but \(dtype.rawValue) \(shape)"
            + " needs \(bytes) bytes")
      }
      entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
    }
    // The tensors must tile the data exactly: no overlap, no gap, nothing left over.
    let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
    var position = 0
    for e in sorted {
      if e.begin < position {
        throw bad("tensor \"\(e.name)\" overlaps the data of another tensor")
      }
      if e.begin > position {
        throw bad("its data has a gap of \(e.begin - position) bytes before tensor \"\(e.name)\"")
      }
      position = e.end
    }
    if position != dataSize {
      throw bad("its tensors cover \(position) data bytes but the file holds \(dataSize)")
    }
    return Parsed(entries: entries, metadata: metadata)
  }

  static func makeFile(_ parsed: Parsed, data: ArraySlice<UInt8>, source: String) -> File {
    var tensors: [String: AnyTensor] = [:]
    let base = data.startIndex
    for e in parsed.entries {
      tensors[e.name] = AnyTensor.fromLittleEndian(
        data[(base + e.begin)..<(base + e.end)], dtype: e.dtype, shape: e.shape)
    }
    return File(tensors: tensors, metadata: parsed.metadata, source: source)
  }
}

extension SafeTensors {
  /// Parses `bytes` with the strict JSON reader behind safetensors headers and returns the
  /// value as compact JSON text; for tools and fuzzing, which reach the reader through it.
  ///
  /// - Throws: `SomaDataError` naming `path` when `bytes` are not one valid JSON value
  ///   (duplicate keys, nesting deeper than 64 levels and non-finite numbers included).
  public static func normalizedJSON(_ bytes: [UInt8], path: String = "the JSON data")
    throws(SomaDataError) -> String
  {
    do {
      return try JSONValue.parse(bytes).encoded
    } catch {
      throw SomaDataError.malformed(
        path, "it is not valid JSON (\(error.message) at byte \(error.offset))")
    }
  }
}
