#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Writes a file so that readers see either the old contents or the complete new ones, never a
/// mixture, even if the process dies or the machine loses power mid-write.
///
/// The contents go to a temporary file in the same directory, which is flushed to disk
/// (`fsync`) and then renamed over the destination; finally the directory is flushed so that
/// the rename itself is durable. If anything fails, including `body` throwing part-way, the
/// temporary file is removed and the destination is untouched.
///
/// ```swift
/// try AtomicFile.write(to: "run/final.safetensors") { sink in
///   try sink.write(header)
///   try sink.write(payload)
/// }
/// try AtomicFile.write(Array("epoch,loss\n".utf8), to: "run/metrics.csv")
/// ```
public enum AtomicFile {
  /// Where `AtomicFile.write(to:_:)` sends the bytes.
  public struct Sink: ~Copyable {
    let fd: Int32
    let path: String
    /// Bytes written so far.
    public private(set) var count = 0

    /// Appends `bytes` to the file.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws(SomaDataError) {
      var done = 0
      while done < bytes.count {
        let n = posixWrite(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
          if errno == EINTR { continue }
          throw SomaDataError(.io, path: path, "\(path) cannot be written: \(errnoText(errno)).")
        }
        done += n
      }
      count += done
    }

    /// Appends `bytes` to the file.
    public mutating func write(_ bytes: [UInt8]) throws(SomaDataError) {
      var failure: SomaDataError?
      bytes.withUnsafeBytes { b in
        do throws(SomaDataError) { try write(b) } catch { failure = error }
      }
      if let failure { throw failure }
    }
  }

  /// Writes `bytes` to `path` atomically.
  public static func write(_ bytes: [UInt8], to path: String) throws {
    try write(to: path) { sink in try sink.write(bytes) }
  }

  /// Writes the file at `path` atomically with what `body` sends to the sink. Errors thrown by
  /// `body` are rethrown unchanged after the temporary file is removed; I/O failures throw
  /// `SomaDataError`.
  public static func write(to path: String, _ body: (inout Sink) throws -> Void) throws {
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    precondition(!name.isEmpty, "AtomicFile.write: \(path) names a directory, not a file")
    guard isDirectory(directory) else {
      throw SomaDataError(
        .missing, path: path, "\(path) cannot be written: the directory \(directory) does not exist.")
    }
    var g = SystemRandomNumberGenerator()
    let temp = directory + "/." + name + ".tmp-\(getpid())-\(String(g.next() & 0xffff_ffff, radix: 36))"
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw SomaDataError(
        .io, path: path,
        "\(path) cannot be written: creating a temporary file in \(directory) failed"
          + " (\(errnoText(errno))).")
    }
    var closed = false
    var renamed = false
    defer {
      if !closed { close(fd) }
      if !renamed { unlink(temp) }
    }
    var sink = Sink(fd: fd, path: path)
    try body(&sink)
    if fsync(fd) != 0 {
      throw SomaDataError(.io, path: path, "\(path) cannot be flushed to disk: \(errnoText(errno)).")
    }
    closed = true
    if close(fd) != 0 {
      throw SomaDataError(.io, path: path, "\(path) cannot be written: \(errnoText(errno)).")
    }
    if rename(temp, path) != 0 {
      throw SomaDataError(
        .io, path: path, "\(path) cannot be replaced: \(errnoText(errno)).")
    }
    renamed = true
    // Make the rename durable. Some file systems refuse fsync on a directory; the data is
    // already safe then, so that is not an error.
    let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
      _ = fsync(dfd)
      close(dfd)
    }
  }
}

/// The C `write`, which the `Sink.write` methods shadow.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
