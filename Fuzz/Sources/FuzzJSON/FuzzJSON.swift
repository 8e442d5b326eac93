import FuzzDriver
import SomaData

/// SwiftPM links `main` to this symbol; it hands the command line to libFuzzer.
@_cdecl("FuzzJSON_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> CInt
{
  soma_fuzz_run(argc, argv) { data, size in fuzzJSON(data, size) }
}

/// The strict JSON reader behind safetensors headers: its normalized text reads back to the
/// same text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let text = try? SafeTensors.normalizedJSON(bytes) else { return 0 }
  guard (try? SafeTensors.normalizedJSON(Array(text.utf8))) == text else {
    fatalError("json: normalized text \(text.prefix(200)) does not read back to itself")
  }
  return 0
}
