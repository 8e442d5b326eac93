import SomaTensor

/// Reads and writes NumPy `.npy` files holding one `float32` or `float64` array in C order.
///
/// Writes version 1.0 (2.0 only if the header would not fit), with descr `'<f4'` or `'<f8'`
/// and the header padded to a multiple of 64 bytes as NumPy does. Reads versions 1.0–3.0;
/// Fortran-order arrays and other dtypes are rejected with an error that says so.
///
/// ```swift
/// try NPY.write(Tensor<Float>.eye(3), to: "eye.npy")   // np.load("eye.npy") in Python
/// let back: Tensor<Float> = try NPY.read("eye.npy", as: Float.self)
/// ```
public enum NPY {
  static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

  // MARK: Writing

  /// The `.npy` bytes of `tensor`.
  public static func encode(_ tensor: AnyTensor) -> [UInt8] {
    let descr = tensor.dtype == .float32 ? "<f4" : "<f8"
    let shape = tensor.shape
    let shapeText =
      shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    let dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    var version: UInt8 = 1
    var prefix = 10
    var total = prefix + dict.utf8.count + 1
    if (total + 63) / 64 * 64 - prefix > 65535 {
      version = 2
      prefix = 12
      total = prefix + dict.utf8.count + 1
    }
    let padded = (total + 63) / 64 * 64
    let headerLength = padded - prefix
    var out = magic + [version, 0]
    if version == 1 {
      out += [UInt8(headerLength & 0xff), UInt8(headerLength >> 8)]
    } else {
      out += (0..<4).map { UInt8(truncatingIfNeeded: headerLength >> (8 * $0)) }
    }
    out += Array(dict.utf8)
    out += repeatElement(UInt8(ascii: " "), count: padded - total)
    out.append(UInt8(ascii: "\n"))
    out += tensor.littleEndianBytes()
    return out
  }

  /// Writes `tensor` to `path` atomically.
  public static func write(_ tensor: AnyTensor, to path: String) throws {
    try AtomicFile.write(encode(tensor), to: path)
  }

  /// Writes `tensor` to `path` atomically.
  public static func write<S: TensorScalar>(_ tensor: Tensor<S>, to path: String) throws {
    try write(AnyTensor(tensor), to: path)
  }

  // MARK: Reading

  /// Reads the array in the file at `path`, keeping its dtype.
  public static func read(_ path: String) throws(SomaDataError) -> AnyTensor {
    let file = try ReadableFile(path: path)
    return try decode(try file.readAll(), path: path)
  }

  /// Reads the array in the file at `path` as a `Tensor<S>`; throws if it holds the other dtype.
  public static func read<S: TensorScalar>(_ path: String, as: S.Type = S.self)
    throws(SomaDataError) -> Tensor<S>
  {
    let t = try read(path)
    guard let typed = t.as(S.self) else {
      throw SomaDataError(
        .unsupported, path: path,
        "\(path) holds \(t.dtype == .float32 ? "float32" : "float64"), not \(S.dtypeName).")
    }
    return typed
  }

  /// Decodes `.npy` bytes; `path` only names the source in errors.
  public static func decode(_ bytes: [UInt8], path: String = "the .npy data")
    throws(SomaDataError) -> AnyTensor
  {
    func bad(_ what: String) -> SomaDataError { SomaDataError.malformed(path, what) }
    guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
      throw bad("it does not start with the .npy magic string \\x93NUMPY")
    }
    let major = bytes[6]
    let headerStart: Int
    let headerLength: Int
    switch major {
    case 1:
      headerStart = 10
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
    case 2, 3:
      guard bytes.count >= 12 else { throw bad("it ends inside its header") }
      headerStart = 12
      headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
    default:
      throw SomaDataError(
        .unsupported, path: path, "\(path) is .npy version \(major).\(bytes[7]); Soma reads 1.0–3.0.")
    }
    guard headerLength <= bytes.count - headerStart else {
      throw bad("its header claims \(headerLength) bytes but the file is shorter (truncated?)")
    }
    let headerBytes = bytes[headerStart..<(headerStart + headerLength)]
    guard let text = String(validating: headerBytes, as: UTF8.self) else {
      throw bad("its header is not valid text")
    }
    var parser = PyLiteralParser(Array(text.unicodeScalars))
    guard let dict = parser.parseDict() else {
      throw bad("its header is not a Python dict literal")
    }
    guard case .string(let descr)? = dict["descr"], case .bool(let fortran)? = dict["fortran_order"],
      case .tuple(let dims)? = dict["shape"]
    else {
      throw bad("its header lacks descr, fortran_order or shape")
    }
    let dtype: AnyTensor.DType
    switch descr {
    case "<f4", "=f4": dtype = .float32
    case "<f8", "=f8": dtype = .float64
    default:
      throw SomaDataError(
        .unsupported, path: path,
        "\(path) holds dtype '\(descr)'; Soma reads only little-endian float32 ('<f4') and"
          + " float64 ('<f8').")
    }
    if fortran {
      throw SomaDataError(
        .unsupported, path: path,
        "\(path) is stored in Fortran order; save it in C order (np.ascontiguousarray).")
    }
    let dataStart = headerStart + headerLength
    let available = bytes.count - dataStart
    guard dims.allSatisfy({ $0 >= 0 }) else {
      throw bad("its shape \(dims) has a negative dimension")
    }
    guard let needed = checkedElementCount(dims, elementSize: dtype.size) else {
      throw bad(
        "its shape \(dims) needs more bytes than can be addressed, expected one that fits the"
          + " \(available) data bytes it holds")
    }
    guard needed <= available else {
      throw bad(
        "shape \(dims) needs \(needed) data bytes but it holds only \(available) (truncated?)")
    }
    guard needed == available else {
      throw bad("shape \(dims) needs \(needed) data bytes but it holds \(available)")
    }
    return AnyTensor.fromLittleEndian(bytes[dataStart...], dtype: dtype, shape: dims)
  }
}

/// Just enough of Python's literal syntax for `.npy` headers: dicts, tuples, lists, strings,
/// integers, True/False/None.
struct PyLiteralParser {
  enum Value {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([Int])
  }

  let s: [Unicode.Scalar]
  var i = 0

  init(_ s: [Unicode.Scalar]) { self.s = s }

  mutating func space() { while i < s.count, s[i] == " " || s[i] == "\n" || s[i] == "\t" { i += 1 } }

  mutating func eat(_ c: Unicode.Scalar) -> Bool {
    space()
    if i < s.count, s[i] == c {
      i += 1
      return true
    }
    return false
  }

  mutating func parseDict() -> [String: Value]? {
    guard eat("{") else { return nil }
    var out: [String: Value] = [:]
    while true {
      if eat("}") { break }
      guard case .string(let key)? = value(), eat(":"), let v = value() else { return nil }
      out[key] = v
      if eat(",") { continue }
      guard eat("}") else { return nil }
      break
    }
    space()
    return i == s.count ? out : nil
  }

  mutating func value() -> Value? {
    space()
    guard i < s.count else { return nil }
    let c = s[i]
    if c == "'" || c == "\"" {
      i += 1
      var text = ""
      while i < s.count, s[i] != c {
        text.unicodeScalars.append(s[i])
        i += 1
      }
      guard i < s.count else { return nil }
      i += 1
      return .string(text)
    }
    if c == "(" || c == "[" {
      let close: Unicode.Scalar = c == "(" ? ")" : "]"
      i += 1
      var items: [Int] = []
      while true {
        if eat(close) { return .tuple(items) }
        guard case .int(let n)? = value() else { return nil }
        items.append(n)
        if eat(",") { continue }
        guard eat(close) else { return nil }
        return .tuple(items)
      }
    }
    var word = ""
    while i < s.count, s[i].properties.isAlphabetic || ("0"..."9").contains(s[i]) || s[i] == "-"
      || s[i] == "_"
    {
      word.unicodeScalars.append(s[i])
      i += 1
    }
    switch word {
    case "True": return .bool(true)
    case "False": return .bool(false)
    case "None": return Value.none  // (a bare `.none` would be Optional's: a parse failure)
    default:
      // Python 2 headers may write 3L.
      let digits = word.hasSuffix("L") ? String(word.dropLast()) : word
      return Int(digits).map { .int($0) }
    }
  }
}
