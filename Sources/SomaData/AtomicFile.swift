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
/// temporary file is removed and the destination is untouched. A process killed outright
/// (`kill -9`) cannot remove its temporary file; the next write into that directory does, once
/// no process with the writer's PID is left. A destination that cannot be a file (a directory,
/// a device, a path whose directory is missing or read-only) throws `SomaDataError`.
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
  /// `SomaDataError`, and so does a `path` that cannot name a writable file (see
  /// `checkDestination(_:)`). Temporary files that earlier, dead processes left in the same
  /// directory are removed first (see `removeStaleTemporaries(in:)`).
  public static func write(to path: String, _ body: (inout Sink) throws -> Void) throws {
    let (directory, name) = try checkDestination(path)
    removeStaleTemporaries(in: directory)
    var g = SystemRandomNumberGenerator()
    let temp =
      directory + "/" + temporaryName(for: name, pid: getpid(), tag: g.next() & 0xffff_ffff)
    let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      let e = errno
      throw SomaDataError(
        .io, path: path, "\(path) cannot be written: \(creationFailure(e, in: directory)).")
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

extension AtomicFile {
  /// Checks, before anything is written, that `path` can name a regular file that `write`
  /// creates or replaces, and returns its directory and file name. (A directory on a special
  /// file system such as `/proc` passes; `write` then fails creating its temporary file, with
  /// a sentence that says so.)
  ///
  /// - Throws: `SomaDataError` with one sentence naming `path` and the reason: it is empty or
  ///   ends in `/`, it is a directory or a device, pipe or socket, or its directory is missing,
  ///   not a directory or not writable.
  public static func checkDestination(_ path: String) throws(SomaDataError)
    -> (directory: String, name: String)
  {
    guard !path.isEmpty else {
      throw SomaDataError(.io, path: path, "The output file name is empty.")
    }
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    if name.isEmpty || name == "." || name == ".." {
      throw SomaDataError(
        .io, path: path, "\(path) names a directory, not a file (give a file name).")
    }
    var st = stat()
    if stat(path, &st) == 0 {
      switch st.st_mode & S_IFMT {
      case S_IFREG: break
      case S_IFDIR:
        throw SomaDataError(.io, path: path, "\(path) is a directory, not a file.")
      default:
        throw SomaDataError(
          .io, path: path,
          "\(path) is not a regular file (a device, pipe or socket); Soma only writes regular"
            + " files.")
      }
    }
    var dst = stat()
    guard stat(directory, &dst) == 0 else {
      let e = errno
      if e == ENOENT || e == ENOTDIR {
        throw SomaDataError(
          .missing, path: path,
          "\(path) cannot be written: the directory \(directory) does not exist.")
      }
      throw SomaDataError(
        .io, path: path,
        "\(path) cannot be written: the directory \(directory) cannot be examined"
          + " (\(errnoText(e))).")
    }
    guard (dst.st_mode & S_IFMT) == S_IFDIR else {
      throw SomaDataError(
        .io, path: path, "\(path) cannot be written: \(directory) is not a directory.")
    }
    if access(directory, W_OK | X_OK) != 0 {
      let e = errno
      throw SomaDataError(
        .io, path: path, "\(path) cannot be written: \(creationFailure(e, in: directory)).")
    }
    return (directory, name)
  }

  /// Removes the temporary files that `write` calls of processes no longer running left in
  /// `directory` (a process killed with `kill -9` mid-write cannot remove its own). Only names
  /// of `write`'s own pattern, `.NAME.tmp-PID-TAG`, are touched, and only when no process with
  /// that PID exists; other files and directories are left alone. Failures are ignored.
  ///
  /// - Returns: the names removed.
  @discardableResult
  public static func removeStaleTemporaries(in directory: String) -> [String] {
    guard let dir = opendir(directory) else { return [] }
    defer { closedir(dir) }
    var stale: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafePointer(to: &entry.pointee.d_name) {
        String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
      }
      guard let pid = temporaryOwner(name), pid != getpid() else { continue }
      if kill(pid, 0) == 0 || errno != ESRCH { continue }  // alive, or not ours to judge
      stale.append(name)
    }
    var removed: [String] = []
    for name in stale {
      let path = directory + "/" + name
      var st = stat()
      guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
      if unlink(path) == 0 { removed.append(name) }
    }
    return removed
  }

  /// The temporary file name `write` uses for `name`: `.NAME.tmp-PID-TAG`, TAG in base 36.
  static func temporaryName(for name: String, pid: Int32, tag: UInt64) -> String {
    "." + name + ".tmp-\(pid)-" + String(tag, radix: 36)
  }

  /// The PID in a name of the form `temporaryName(for:pid:tag:)` makes, or nil for any other
  /// name.
  static func temporaryOwner(_ name: String) -> Int32? {
    let chars = Array(name.utf8)
    let marker = Array(".tmp-".utf8)
    guard chars.first == UInt8(ascii: "."), chars.count > marker.count + 4 else { return nil }
    // The last ".tmp-" after at least one character of NAME.
    var at = chars.count - marker.count
    while at > 1 && !chars[at..<(at + marker.count)].elementsEqual(marker) { at -= 1 }
    guard at > 1 else { return nil }
    let parts = chars[(at + marker.count)...].split(
      separator: UInt8(ascii: "-"), omittingEmptySubsequences: false)
    guard parts.count == 2, (1...10).contains(parts[0].count),
      parts[0].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
      let pid = Int32(String(decoding: parts[0], as: UTF8.self)), pid > 0,
      (1...7).contains(parts[1].count),
      parts[1].allSatisfy({
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
          || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0)
      })
    else { return nil }
    return pid
  }

  /// Why a file cannot be created in `directory`, from the `errno` of the failed call.
  static func creationFailure(_ e: Int32, in directory: String) -> String {
    switch e {
    case EACCES, EPERM: return "the directory \(directory) is not writable (\(errnoText(e)))"
    case EROFS: return "the directory \(directory) is on a read-only file system"
    case ENOENT:
      return
        "the directory \(directory) does not accept new files (is it on a special file system"
        + " such as /proc?)"
    case ENOSPC, EDQUOT: return "no space is left in \(directory) (\(errnoText(e)))"
    default: return "creating a temporary file in \(directory) failed (\(errnoText(e)))"
    }
  }
}

/// The C `write`, which the `Sink.write` methods shadow.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
