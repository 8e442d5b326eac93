/// A minimal, strict JSON reader and writer for file headers (safetensors).
///
/// Strict where headers need it: duplicate object keys, nesting deeper than 64 levels, invalid
/// UTF-8, trailing characters and lone surrogates are rejected rather than guessed at.
enum JSONValue: Equatable {
  case null
  case bool(Bool)
  /// An integer literal that fits `Int64` exactly.
  case integer(Int64)
  /// Any other number.
  case number(Double)
  case string(String)
  case array([JSONValue])
  /// Members in file order.
  case object([(String, JSONValue)])

  static func == (a: JSONValue, b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case let (.bool(x), .bool(y)): return x == y
    case let (.integer(x), .integer(y)): return x == y
    case let (.number(x), .number(y)): return x == y
    case let (.string(x), .string(y)): return x == y
    case let (.array(x), .array(y)): return x == y
    case let (.object(x), .object(y)):
      return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    default: return false
    }
  }

  struct ParseError: Error {
    var message: String
    var offset: Int
  }

  /// Parses one JSON value that fills `bytes` (surrounding whitespace allowed).
  static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
    var p = Parser(bytes: bytes)
    p.skipSpace()
    let v = try p.value(depth: 0)
    p.skipSpace()
    if p.i != bytes.count { throw p.fail("unexpected characters after the JSON value") }
    return v
  }

  private struct Parser {
    let bytes: [UInt8]
    var i = 0

    func fail(_ message: String) -> ParseError { ParseError(message: message, offset: i) }

    mutating func skipSpace() {
      while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d
        || bytes[i] == 0x09
      {
        i += 1
      }
    }

    mutating func expect(_ literal: String) throws(ParseError) {
      for b in literal.utf8 {
        guard i < bytes.count, bytes[i] == b else { throw fail("invalid literal") }
        i += 1
      }
    }

    mutating func value(depth: Int) throws(ParseError) -> JSONValue {
      guard depth < 64 else { throw fail("nesting deeper than 64 levels") }
      guard i < bytes.count else { throw fail("unexpected end of JSON") }
      switch bytes[i] {
      case UInt8(ascii: "{"):
        i += 1
        var members: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
          i += 1
          return .object(members)
        }
        while true {
          skipSpace()
          guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else {
            throw fail("expected a string key")
          }
          let key = try string()
          guard seen.insert(key).inserted else { throw fail("duplicate key \"\(key)\"") }
          skipSpace()
          guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
          i += 1
          skipSpace()
          members.append((key, try value(depth: depth + 1)))
          skipSpace()
          guard i < bytes.count else { throw fail("unexpected end of JSON") }
          if bytes[i] == UInt8(ascii: ",") {
            i += 1
          } else if bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
          } else {
            throw fail("expected ',' or '}'")
          }
        }
      case UInt8(ascii: "["):
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
          i += 1
          return .array(items)
        }
        while true {
          skipSpace()
          items.append(try value(depth: depth + 1))
          skipSpace()
          guard i < bytes.count else { throw fail("unexpected end of JSON") }
          if bytes[i] == UInt8(ascii: ",") {
            i += 1
          } else if bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(items)
          } else {
            throw fail("expected ',' or ']'")
          }
        }
      case UInt8(ascii: "\""):
        return .string(try string())
      case UInt8(ascii: "t"):
        try expect("true")
        return .bool(true)
      case UInt8(ascii: "f"):
        try expect("false")
        return .bool(false)
      case UInt8(ascii: "n"):
        try expect("null")
        return .null
      default:
        return try number()
      }
    }

    mutating func number() throws(ParseError) -> JSONValue {
      let start = i
      var isInteger = true
      if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
      let digitsStart = i
      while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
      guard i > digitsStart else { throw fail("invalid value") }
      if bytes[digitsStart] == 0x30 && i - digitsStart > 1 { throw fail("leading zero in number") }
      if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
        isInteger = false
        i += 1
        let f = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        guard i > f else { throw fail("invalid number") }
      }
      if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
        isInteger = false
        i += 1
        if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
          i += 1
        }
        let e = i
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        guard i > e else { throw fail("invalid number") }
      }
      let text = String(decoding: bytes[start..<i], as: UTF8.self)
      if isInteger, let v = Int64(text) { return .integer(v) }
      guard let d = Double(text) else { throw fail("invalid number") }
      // 1e999 would read as infinity, which JSON cannot write back.
      guard d.isFinite else { throw fail("number out of range") }
      return .number(d)
    }

    mutating func hex4() throws(ParseError) -> UInt32 {
      guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
      var v: UInt32 = 0
      for _ in 0..<4 {
        let c = bytes[i]
        let d: UInt32
        switch c {
        case 0x30...0x39: d = UInt32(c - 0x30)
        case 0x41...0x46: d = UInt32(c - 0x41 + 10)
        case 0x61...0x66: d = UInt32(c - 0x61 + 10)
        default: throw fail("invalid \\u escape")
        }
        v = v << 4 | d
        i += 1
      }
      return v
    }

    mutating func string() throws(ParseError) -> String {
      i += 1  // opening quote
      var out: [UInt8] = []
      while true {
        guard i < bytes.count else { throw fail("unterminated string") }
        let c = bytes[i]
        if c == UInt8(ascii: "\"") {
          i += 1
          break
        }
        if c < 0x20 { throw fail("control character in string") }
        if c != UInt8(ascii: "\\") {
          out.append(c)
          i += 1
          continue
        }
        i += 1
        guard i < bytes.count else { throw fail("unterminated string") }
        let e = bytes[i]
        i += 1
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5c)
        case UInt8(ascii: "/"): out.append(0x2f)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0c)
        case UInt8(ascii: "n"): out.append(0x0a)
        case UInt8(ascii: "r"): out.append(0x0d)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var code = try hex4()
          if code >= 0xD800 && code < 0xDC00 {
            guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
              bytes[i + 1] == UInt8(ascii: "u")
            else { throw fail("lone surrogate in \\u escape") }
            i += 2
            let low = try hex4()
            guard low >= 0xDC00 && low < 0xE000 else { throw fail("lone surrogate in \\u escape") }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          } else if code >= 0xDC00 && code < 0xE000 {
            throw fail("lone surrogate in \\u escape")
          }
          out.append(contentsOf: String(Character(Unicode.Scalar(code)!)).utf8)
        default:
          throw fail("invalid escape in string")
        }
      }
      guard let s = String(validating: out, as: UTF8.self) else {
        throw fail("invalid UTF-8 in string")
      }
      return s
    }
  }

  /// The value as compact JSON text (no spaces; members in order). Parsing it again gives
  /// back an equal value, and encoding that gives the same text.
  var encoded: String {
    switch self {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .integer(let n): return String(n)
    case .number(let d): return "\(d)"  // finite (the parser rejects the rest): valid JSON
    case .string(let s): return JSONValue.quoted(s)
    case .array(let items): return "[" + items.map(\.encoded).joined(separator: ",") + "]"
    case .object(let members):
      return "{" + members.map { JSONValue.quoted($0.0) + ":" + $0.1.encoded }
        .joined(separator: ",") + "}"
    }
  }

  /// `s` as a JSON string literal (quotes included); non-ASCII characters stay UTF-8.
  static func quoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if u.value < 0x20 {
          out += "\\u" + String(u.value, radix: 16).leftPadded(to: 4)
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    return out + "\""
  }
}
