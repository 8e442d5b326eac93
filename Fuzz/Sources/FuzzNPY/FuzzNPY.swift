import FuzzDriver
import SomaData

/// SwiftPM links `main` to this symbol; it hands the command line to libFuzzer.
@_cdecl("FuzzNPY_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> CInt
{
  soma_fuzz_run(argc, argv) { data, size in fuzzNPY(data, size) }
}

/// .npy files: anything that decodes encodes to bytes that decode to the same array.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let t = try? NPY.decode(bytes, path: "fuzz") else { return 0 }
  guard let back = try? NPY.decode(NPY.encode(t), path: "fuzz"), back == t else {
    fatalError("npy: a decoded array of shape \(t.shape) does not round-trip")
  }
  return 0
}
