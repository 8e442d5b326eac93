import FuzzDriver
import SomaData

/// SwiftPM links `main` to this symbol; it hands the command line to libFuzzer.
@_cdecl("FuzzSafeTensors_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> CInt
{
  soma_fuzz_run(argc, argv) { data, size in fuzzSafeTensors(data, size) }
}

/// safetensors files: anything that decodes encodes to bytes that decode to the same file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let file = try? SafeTensors.decode(bytes, path: "fuzz") else { return 0 }
  let again = SafeTensors.encode(file.tensors, metadata: file.metadata)
  guard let back = try? SafeTensors.decode(again, path: "fuzz"), back == file else {
    fatalError("safetensors: a decoded file does not round-trip")
  }
  return 0
}
