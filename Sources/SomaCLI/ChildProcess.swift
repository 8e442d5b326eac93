import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A process that runs this same executable (re-executed, never forked without exec) with its
/// output going to files, and how it ended.
///
/// The child reads /dev/null as stdin, so it can never wait on the user's terminal; its stdout
/// and the descriptors in `files` go to unlinked temporary files that the parent reads once it
/// has ended; its stderr goes to /dev/null, so that whatever a crashing library or runtime
/// prints never reaches the user (the parent speaks for it in one sentence). It stays in the
/// parent's process group, so Ctrl-C at a terminal stops both.
struct ChildProcess {
  /// How the child ended.
  enum Ending: Equatable {
    case exited(Int32)
    case signaled(Int32)
    /// Still running at the time limit, and then killed (SIGKILL).
    case timedOut
  }

  /// What the child left: how it ended, its stdout and the contents of each extra descriptor.
  struct Result {
    var ending: Ending
    var stdout: [UInt8]
    var files: [Int32: [UInt8]]
  }

  /// The executable that `run` starts: this process's own binary.
  static var selfExecutable: String {
    #if os(Linux)
      "/proc/self/exe"  // the running binary even if its file has been replaced since
    #else
      Bundle.main.executablePath ?? CommandLine.arguments[0]
    #endif
  }

  /// Runs `executable` with `arguments` (argv[0] is `name`), waits at most `timeLimit`
  /// seconds and returns what it left. `outputs` lists descriptor numbers (3 to 9) that the
  /// child finds open for writing, each on its own temporary file.
  ///
  /// - Throws: `CLIError` when the temporary files cannot be made or the process cannot be
  ///   started.
  static func run(
    _ executable: String, name: String, arguments: [String], outputs: [Int32] = [],
    timeLimit: Double
  ) throws -> Result {
    precondition(outputs.allSatisfy { (3...9).contains($0) }, "child descriptors are 3 to 9")
    var temporaries: [Int32: Int32] = [:]  // child's descriptor → parent's
    defer { for fd in temporaries.values { close(fd) } }
    for target in [1] + outputs {
      temporaries[target] = try unlinkedTemporaryFile()
    }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    for (target, fd) in temporaries { posix_spawn_file_actions_adddup2(&actions, fd, target) }

    // No signal blocked, and SIGALRM (the child's own backstop against outliving its parent)
    // at its default action even if this process ignores it. Other dispositions are
    // inherited: a signal the user's shell made this process ignore stays ignored.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGALRM)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv = ([name] + arguments).map { strdup($0) }
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let started = posix_spawn(&pid, executable, &actions, &attributes, argv + [nil], environ)
    guard started == 0 else {
      let reason = String(cString: strerror(started))
      throw CLIError("cannot start a process to read the file (\(executable): \(reason))")
    }

    let ending = waitForExit(pid, timeLimit: timeLimit)
    var files: [Int32: [UInt8]] = [:]
    for target in outputs { files[target] = readAll(temporaries[target]!) }
    return Result(ending: ending, stdout: readAll(temporaries[1]!), files: files)
  }

  /// Waits for `pid` to end; kills it (SIGKILL) once `timeLimit` seconds have passed.
  static func waitForExit(_ pid: pid_t, timeLimit: Double) -> Ending {
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int64((timeLimit * 1000).rounded(.up)))
    var pause: UInt32 = 1000  // µs, doubling to 20 ms: quick for short reads, cheap for long
    while true {
      if let ending = reap(pid, block: false) { return ending }
      if clock.now >= deadline {
        kill(pid, SIGKILL)
        // It may have ended on its own since it was last asked; then that is the ending.
        let ending = reap(pid, block: true) ?? .signaled(SIGKILL)
        return ending == .signaled(SIGKILL) ? .timedOut : ending
      }
      usleep(pause)
      pause = min(pause * 2, 20_000)
    }
  }

  /// How `pid` ended, nil if it is still running (only when not `block`).
  static func reap(_ pid: pid_t, block: Bool) -> Ending? {
    var status: Int32 = 0
    while true {
      let r = waitpid(pid, &status, block ? 0 : WNOHANG)
      if r == pid { break }
      if r == 0 { return nil }
      if errno == EINTR { continue }
      return .exited(-1)  // not our child any more (cannot happen): report it as a failure
    }
    let low = status & 0x7f  // WIFEXITED, WTERMSIG, WEXITSTATUS, spelled out
    if low == 0 { return .exited((status >> 8) & 0xff) }
    if low != 0x7f { return .signaled(low) }
    return block ? reap(pid, block: true) : nil  // stopped, not ended
  }

  /// A new temporary file, already unlinked (nothing is left behind whatever happens to either
  /// process), closed on exec in this process.
  static func unlinkedTemporaryFile() throws -> Int32 {
    var template = Array((NSTemporaryDirectory() + "soma-child.XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else {
      throw CLIError(
        "cannot create a temporary file in \(NSTemporaryDirectory()):"
          + " \(String(cString: strerror(errno)))")
    }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    // Above every descriptor the child is given (0 to 9), so that one dup2 of the spawn's file
    // actions never replaces a descriptor a later one copies from.
    let high = fcntl(fd, F_DUPFD_CLOEXEC, 10)
    let e = errno
    close(fd)
    guard high >= 0 else {
      throw CLIError("cannot create a temporary file: \(String(cString: strerror(e)))")
    }
    return high
  }

  /// The whole contents of the file open at `fd`.
  static func readAll(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var st = stat()
    if fstat(fd, &st) == 0 { out.reserveCapacity(Int(st.st_size)) }
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    var offset: off_t = 0
    while true {
      let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { return out }
      out += chunk[..<n]
      offset += off_t(n)
    }
  }

  /// Writes all of `bytes` to `fd`; false on an error.
  static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { b in
      var done = 0
      while done < b.count {
        let n = write(fd, b.baseAddress! + done, b.count - done)
        if n < 0 {
          if errno == EINTR { continue }
          return false
        }
        done += n
      }
      return true
    }
  }

  /// The name of signal `number` (SIGSEGV, …), or "signal N".
  static func signalName(_ number: Int32) -> String {
    let names: [Int32: String] = [
      SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS", SIGABRT: "SIGABRT", SIGILL: "SIGILL",
      SIGFPE: "SIGFPE", SIGTRAP: "SIGTRAP", SIGSYS: "SIGSYS", SIGKILL: "SIGKILL",
      SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGHUP: "SIGHUP", SIGQUIT: "SIGQUIT",
      SIGALRM: "SIGALRM", SIGXCPU: "SIGXCPU", SIGPIPE: "SIGPIPE",
    ]
    return names[number] ?? "signal \(number)"
  }

  /// Signals that say the process itself failed (a bad memory access, an abort, a trap)
  /// rather than that someone stopped it.
  static let crashSignals: Set<Int32> = [SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGTRAP, SIGSYS]
}
