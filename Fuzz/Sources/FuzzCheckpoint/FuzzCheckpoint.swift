import FuzzDriver
import SomaNN
import SomaTrain

/// SwiftPM links `main` to this symbol; it hands the command line to libFuzzer.
@_cdecl("FuzzCheckpoint_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?)
  -> CInt
{
  soma_fuzz_run(argc, argv) { data, size in fuzzCheckpoint(data, size) }
}

/// Checkpoints (safetensors with soma's metadata): anything that loads must compile and run
/// one forward step, and must not ask for more than its own weights (the loader's limits).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let c = try? Checkpoint.decode(bytes, path: "fuzz") else { return 0 }
  guard let model = try? c.compiled(threads: 1) else { return 0 }
  // One sample, two steps of silent input: the shapes must hold end to end.
  let logits = model.logits(Tensor<Float>.zeros([2, 1, c.inputs]))
  guard logits.shape == [1, c.outputs] else {
    fatalError("checkpoint: logits of shape \(logits.shape) for \(c.outputs) outputs")
  }
  return 0
}
