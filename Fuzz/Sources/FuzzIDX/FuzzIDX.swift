import FuzzDriver
import SomaData

/// SwiftPM links `main` to this symbol; it hands the command line to libFuzzer.
@_cdecl("FuzzIDX_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> CInt
{
  soma_fuzz_run(argc, argv) { data, size in fuzzIDX(data, size) }
}

/// IDX files, plain or gzipped: any input either decodes to an array that encodes back to the
/// same plain bytes, or throws a SomaDataError; a trap or a sanitizer report is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let a = try? IDXArray.decode(bytes, path: "fuzz") else { return 0 }
  let plain = a.encoded()
  if !Gzip.isGzip(bytes), plain != bytes { fatalError("IDX: decode then encode changed the bytes") }
  guard (try? IDXArray.parse(plain, path: "fuzz")) == a else {
    fatalError("IDX: the encoding of \(a.dimensions) does not parse back")
  }
  // The expected rank only accepts or rejects; it never changes what is read.
  let rank = a.dimensions.count
  guard (try? IDXArray.decode(bytes, path: "fuzz", expectedRank: rank)) == a,
    (try? IDXArray.decode(bytes, path: "fuzz", expectedRank: rank % 3 + 1)) == nil
  else { fatalError("IDX: expectedRank changed the outcome for rank \(rank)") }
  return 0
}
