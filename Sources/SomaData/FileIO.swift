#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file opened for reading, with its size known up front so that readers can check every
/// length a header claims against what the file really holds before allocating anything.
struct ReadableFile: ~Copyable {
  let path: String
  let fd: Int32
  /// The file's size in bytes.
  let size: Int

  init(path: String) throws(SomaDataError) {
    self.path = path
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    if fd < 0 {
      let e = errno
      if e == ENOENT || e == ENOTDIR {
        throw SomaDataError(.missing, path: path, "\(path) does not exist.")
      }
      throw SomaDataError(.io, path: path, "\(path) cannot be opened: \(errnoText(e)).")
    }
    var st = stat()
    if fstat(fd, &st) != 0 {
      let e = errno
      close(fd)
      throw SomaDataError(.io, path: path, "\(path) cannot be examined: \(errnoText(e)).")
    }
    if (st.st_mode & S_IFMT) == S_IFDIR {
      close(fd)
      throw SomaDataError(.io, path: path, "\(path) is a directory, not a file.")
    }
    // A pipe, socket or device has no size to check lengths against.
    if (st.st_mode & S_IFMT) != S_IFREG {
      close(fd)
      throw SomaDataError(
        .io, path: path,
        "\(path) is not a regular file (a device, pipe or socket); Soma reads only regular files.")
    }
    self.fd = fd
    self.size = Int(st.st_size)
  }

  deinit { close(fd) }

  /// Reads exactly `count` bytes starting at byte `offset` into `buffer`.
  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(SomaDataError) {
    var done = 0
    while done < buffer.count {
      let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
      if n < 0 {
        if errno == EINTR { continue }
        throw SomaDataError(.io, path: path, "\(path) cannot be read: \(errnoText(errno)).")
      }
      if n == 0 {
        throw SomaDataError.malformed(path, "it ended after \(offset + done) bytes")
      }
      done += n
    }
  }

  /// `count` bytes starting at `offset`; the caller has checked the range against `size`.
  func bytes(at offset: Int, count: Int) throws(SomaDataError) -> [UInt8] {
    precondition(offset >= 0 && count >= 0 && offset + count <= size)
    var out = [UInt8](repeating: 0, count: count)
    var failure: SomaDataError?
    out.withUnsafeMutableBytes { b in
      do throws(SomaDataError) { try read(into: b, at: offset) } catch { failure = error }
    }
    if let failure { throw failure }
    return out
  }

  /// The whole file.
  func readAll() throws(SomaDataError) -> [UInt8] { try bytes(at: 0, count: size) }
}

func errnoText(_ e: Int32) -> String {
  guard let s = strerror(e) else { return "error \(e)" }
  return String(cString: s).lowercased()
}

/// True when `path` names an existing directory.
func isDirectory(_ path: String) -> Bool {
  var st = stat()
  return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// True when `path` names an existing file system entry.
func fileExists(_ path: String) -> Bool {
  var st = stat()
  return stat(path, &st) == 0
}
