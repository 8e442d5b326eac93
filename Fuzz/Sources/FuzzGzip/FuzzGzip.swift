import FuzzDriver
import SomaData

/// SwiftPM links `main` to this symbol; it hands the command line to libFuzzer.
@_cdecl("FuzzGzip_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> CInt
{
  soma_fuzz_run(argc, argv) { data, size in fuzzGzip(data, size) }
}

/// The gzip reader under an output limit: output never exceeds the limit, a prefix agrees with
/// the whole, and what comes out compresses and inflates back unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGzip(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  let limit = 1 << 20
  let prefix = try? Gzip.decompressPrefix(bytes, count: 64)
  if let prefix, prefix.count > 64 { fatalError("gzip: a 64-byte prefix of \(prefix.count)") }
  let out: [UInt8]
  do {
    out = try Gzip.decompress(bytes, limit: limit)
  } catch {
    if let l = error.limit, l != limit { fatalError("gzip: limit \(l) reported, \(limit) set") }
    return 0
  }
  if out.count > limit { fatalError("gzip: \(out.count) bytes out under a limit of \(limit)") }
  guard let prefix, prefix == Array(out.prefix(64)) else {
    fatalError("gzip: the prefix disagrees with the whole output")
  }
  guard let packed = try? Gzip.compress(out, level: 1),
    (try? Gzip.decompress(packed, limit: out.count)) == out
  else { fatalError("gzip: \(out.count) inflated bytes do not round-trip") }
  return 0
}
