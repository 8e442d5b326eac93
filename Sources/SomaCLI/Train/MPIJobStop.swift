#if MPI
  import Foundation

  /// The line process 0 prints when mpirun stops the job under it (SIGTERM), which Open MPI
  /// does when another process dies or mpirun itself is interrupted. Set before training; read
  /// by the signal handler, which may only write it and exit.
  nonisolated(unsafe) private var jobStopLine: UnsafeMutableBufferPointer<CChar>? = nil

  /// Makes SIGTERM print one sentence naming the run's checkpoint and how to resume, then exit
  /// with status 1 (files are written atomically, so the last complete checkpoint stays whole).
  func reportJobStop(outDir: String) {
    let text =
      "Error: the MPI job was stopped (another of its processes failed, or mpirun was"
      + " interrupted); \(outDir)/final.safetensors holds the last finished epoch: continue with"
      + " soma train --resume --out \(outDir) and the same flags\n"
    let bytes = Array(text.utf8CString)
    let buffer = UnsafeMutableBufferPointer<CChar>.allocate(capacity: bytes.count)
    _ = buffer.initialize(from: bytes)
    jobStopLine = buffer
    signal(SIGTERM) { _ in
      if let line = jobStopLine, let base = line.baseAddress {
        _ = write(2, base, line.count - 1)
      }
      _exit(1)
    }
  }
#endif
