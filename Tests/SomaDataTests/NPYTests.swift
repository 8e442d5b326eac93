import Foundation
import SomaData
import SomaTensor
import Testing

/// A `.npy` file from a header dict literal and data bytes (version 1.0, padded to 64).
func npyBytes(_ dict: String, data: [UInt8], version: UInt8 = 1) -> [UInt8] {
  let prefix = version == 1 ? 10 : 12
  var header = Array(dict.utf8)
  let total = (prefix + header.count + 1 + 63) / 64 * 64
  header += [UInt8](repeating: 32, count: total - prefix - header.count - 1) + [10]
  let n = header.count
  let lengthBytes: [UInt8] = version == 1
    ? [UInt8(n & 0xff), UInt8(n >> 8)] : (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
  return [0x93] + Array("NUMPY".utf8) + [version, 0] + lengthBytes + header + data
}

@Suite struct NPYTests {
  @Test func roundTripFloatAndDouble() throws {
    let dir = try TemporaryDirectory()
    let f = Tensor<Float>([1, -0.0, .nan, 3.5, Float(bitPattern: 0x0001_16c2), -7], shape: [2, 3])
    try NPY.write(f, to: dir.file("f.npy"))
    let back = try NPY.read(dir.file("f.npy"), as: Float.self)
    #expect(back.shape == [2, 3])
    #expect(back.scalars.map(\.bitPattern) == f.scalars.map(\.bitPattern))

    let d = Tensor<Double>([.pi, -.infinity, 0], shape: [3])
    try NPY.write(d, to: dir.file("d.npy"))
    #expect(try NPY.read(dir.file("d.npy")) == AnyTensor(d))
    #expect(throws: SomaDataError.self) { try NPY.read(dir.file("d.npy"), as: Float.self) }

    let s = Tensor<Float>(4.25)
    try NPY.write(s, to: dir.file("s.npy"))
    #expect(try NPY.read(dir.file("s.npy"), as: Float.self) == s)
  }

  @Test func headerIsNumPyStyle() throws {
    let bytes = NPY.encode(AnyTensor(Tensor<Float>.zeros([2, 3])))
    #expect(Array(bytes[0..<8]) == [0x93] + Array("NUMPY".utf8) + [1, 0])
    let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
    #expect((10 + headerLength) % 64 == 0)
    let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
    #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"))
    #expect(header.hasSuffix("\n"))
    #expect(bytes.count == 10 + headerLength + 24)
    let one = NPY.encode(AnyTensor(Tensor<Double>([1, 2])))
    #expect(String(decoding: one[10..<74], as: UTF8.self).contains("'shape': (2,)"))
  }

  @Test func readsHandWrittenHeaders() throws {
    // Key order, quoting and spacing as other writers produce them; version 2.0.
    let data: [UInt8] = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]  // 1.0, 2.0 as <f4
    let a = try NPY.decode(npyBytes("{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}", data: data))
    #expect(a.as(Float.self) == Tensor<Float>([1, 2]))
    let b = try NPY.decode(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2)}", data: data, version: 2))
    #expect(b.as(Float.self) == Tensor<Float>([1, 2], shape: [1, 2]))
    // Extra keys may hold None.
    let c = try NPY.decode(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': None}", data: data))
    #expect(c.as(Float.self) == Tensor<Float>([1, 2]))
  }

  @Test func rejectsWhatItCannotRead() throws {
    let dir = try TemporaryDirectory()
    func check(_ bytes: [UInt8], _ kind: SomaDataError.Kind, _ phrase: String) throws {
      try dir.write(bytes, to: "x.npy")
      let error = #expect(throws: SomaDataError.self) { try NPY.read(dir.file("x.npy")) }
      #expect(error?.kind == kind)
      #expect(error?.description.contains(dir.file("x.npy")) == true)
      #expect(error?.description.contains(phrase) == true, "\(String(describing: error))")
    }
    let eight = [UInt8](repeating: 0, count: 8)
    try check(npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data: eight), .unsupported, "Fortran order")
    try check(npyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", data: eight), .unsupported, "'<i4'")
    try check(npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data: eight), .unsupported, "'>f4'")
    try check(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data: eight), .malformed, "truncated")
    try check(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", data: eight), .malformed, "needs 4 data bytes")
    try check(npyBytes("{'descr': '<f4', 'shape': (2,), }", data: eight), .malformed, "lacks")
    try check(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", data: eight), .malformed, "dict")
    try check(Array("PK\u{3}\u{4}nonsense".utf8), .malformed, "magic")
    let good = NPY.encode(AnyTensor(Tensor<Float>([1, 2])))
    try check(Array(good.prefix(30)), .malformed, "truncated")
    for cut in 0..<good.count {
      #expect(throws: SomaDataError.self) { try NPY.decode(Array(good.prefix(cut))) }
    }
  }
}
