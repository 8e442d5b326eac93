import Foundation
import Soma
import SomaCLI
import SomaNIR
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `soma import` run as the built `soma` binary, which reads the NIR file in a child process:
/// files that crash or hang libhdf5 1.10 (made by scripts/fixtures/make_hostile_nir.py) end in
/// one line and leave no file; ordinary bad files give their own line once; good files import
/// as they do in-process. These files are never read in the test process itself.
#if os(Linux)
  @Suite struct IsolatedImportTests {
    /// How a run of the binary ended and what it printed.
    struct Run {
      var status: Int32  // the exit status, or 128 + the signal
      var signaled: Bool
      var stdout: String
      var stderr: String
      var seconds: Double
      /// stderr's lines (without the final newline's empty one).
      var errorLines: [Substring] {
        stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
      }
    }

    /// The `soma` executable of this build, next to the test bundle.
    static func somaPath() throws -> String {
      let dir = Bundle.module.bundleURL.deletingLastPathComponent()
      let path = dir.appendingPathComponent("soma").path
      try #require(
        FileManager.default.isExecutableFile(atPath: path),
        "no soma executable at \(path): build it (swift build) before running the tests")
      return path
    }

    /// Starts `soma ARGS` in a process group of its own (as a shell starts a job), with
    /// stdin from /dev/null and SIGINT at its default action; returns its PID, which is also
    /// the group's ID.
    static func start(_ args: [String], stdout: String, stderr: String) throws -> pid_t {
      let soma = try somaPath()
      var actions = posix_spawn_file_actions_t()
      posix_spawn_file_actions_init(&actions)
      defer { posix_spawn_file_actions_destroy(&actions) }
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
      posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      var attributes = posix_spawnattr_t()
      posix_spawnattr_init(&attributes)
      defer { posix_spawnattr_destroy(&attributes) }
      posix_spawnattr_setpgroup(&attributes, 0)
      var defaults = sigset_t()
      sigemptyset(&defaults)
      sigaddset(&defaults, SIGINT)
      posix_spawnattr_setsigdefault(&attributes, &defaults)
      var none = sigset_t()
      sigemptyset(&none)
      posix_spawnattr_setsigmask(&attributes, &none)
      posix_spawnattr_setflags(
        &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
      let argv = (["soma"] + args).map { strdup($0) }
      defer { argv.forEach { free($0) } }
      var pid: pid_t = 0
      let rc = posix_spawn(&pid, soma, &actions, &attributes, argv + [nil], environ)
      try #require(rc == 0, "posix_spawn failed: \(rc)")
      return pid
    }

    /// Waits for `pid`; after `limit` seconds kills its whole group and records an issue (a
    /// hang that the tool's own time limit should have ended).
    static func finish(_ pid: pid_t, limit: Double) -> (status: Int32, signaled: Bool) {
      let clock = ContinuousClock()
      let deadline = clock.now + .seconds(limit)
      var status: Int32 = 0
      while waitpid(pid, &status, WNOHANG) == 0 {
        if clock.now >= deadline {
          Issue.record("soma was still running after \(limit) s; killed")
          kill(-pid, SIGKILL)
          waitpid(pid, &status, 0)
          break
        }
        usleep(10_000)
      }
      let low = status & 0x7f
      return low == 0 ? ((status >> 8) & 0xff, false) : (128 + low, true)
    }

    /// Runs `soma ARGS` to its end (at most `limit` seconds).
    static func soma(_ args: [String], limit: Double = 120) throws -> Run {
      let logs = try TemporaryDirectory()
      let (out, err) = (logs.file("stdout"), logs.file("stderr"))
      let began = ContinuousClock.now
      let pid = try start(args, stdout: out, stderr: err)
      let (status, signaled) = finish(pid, limit: limit)
      let took = ContinuousClock.now - began
      let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) * 1e-18
      return Run(
        status: status, signaled: signaled,
        stdout: text(out), stderr: text(err), seconds: seconds)
    }

    /// The file's contents as UTF-8 ("" if it cannot be read). Plain POSIX reads:
    /// `String(contentsOfFile:)` leaks its buffer on an empty file (LeakSanitizer, Swift 6.3.1).
    static func text(_ path: String) -> String {
      let fd = open(path, O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { return "" }
      defer { close(fd) }
      var bytes: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 4096)
      while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes += chunk[..<n]
      }
      return String(decoding: bytes, as: UTF8.self)
    }

    /// Checks that a failed run printed one error line naming `file` and nothing else, and
    /// that the directory still holds exactly the old output.
    func expectOneLineFailure(_ run: Run, _ file: String) {
      #expect(run.status == 1 && !run.signaled, "status \(run.status): \(run.stderr)")
      #expect(run.stdout.isEmpty, "\(run.stdout)")
      #expect(run.errorLines.count == 1, "\(run.stderr)")
      #expect(run.stderr.hasPrefix("Error: \(file)"), "\(run.stderr)")
    }

    @Test func fileThatCrashesHDF5EndsInOneLineAndKeepsTheOldOutput() throws {
      let dir = try TemporaryDirectory()
      let out = dir.file("out.safetensors")
      let old = Array("the previous checkpoint".utf8)
      try Data(old).write(to: URL(fileURLWithPath: out))
      let file = try fixturePath("bad/heap_overflow.nir")
      let run = try Self.soma(["import", file, "-o", out])
      expectOneLineFailure(run, file)
      // SIGSEGV in a plain build; a sanitizer build's child reports the bad access and exits
      // with the sanitizer's status instead (1 for AddressSanitizer, 66 for ThreadSanitizer).
      #expect(
        run.stderr.contains("the HDF5 library crashed while reading it (signal 11, SIGSEGV)")
          || run.stderr.contains("the process reading it failed (exit status "),
        "\(run.stderr)")
      #expect(run.stderr.contains("the file is damaged or not a NIR file"), "\(run.stderr)")
      #expect(try dir.contents() == ["out.safetensors"])
      #expect(Array(try Data(contentsOf: URL(fileURLWithPath: out))) == old)
    }

    @Test func fileThatHangsHDF5IsStoppedAtTheTimeLimit() throws {
      let dir = try TemporaryDirectory()
      let file = try fixturePath("bad/heap_loop.nir")
      let run = try Self.soma(
        ["import", file, "-o", dir.file("out.safetensors"), "--read-timeout", "2"], limit: 90)
      expectOneLineFailure(run, file)
      #expect(
        run.stderr.contains("reading it took more than 2 s, so soma stopped it"), "\(run.stderr)")
      #expect(run.seconds >= 2, "stopped after \(run.seconds) s")
      #expect(try dir.contents() == [])
    }

    @Test func ordinaryBadFilesGiveTheirOwnLineOnce() throws {
      let dir = try TemporaryDirectory()
      let out = dir.file("out.safetensors")
      let cases: [[String]] = [
        ["import", try fixturePath("bad/truncated.nir"), "-o", out],
        ["import", try fixturePath("bad/conv_negative_stride.nir"), "-o", out],
        ["import", try fixturePath("bad/wide_integer.nir"), "-o", out],
        ["import", try fixturePath("norse_lifbox.nir"), "-o", out],
        ["import", dir.file("missing.nir"), "-o", out],
        ["import", try fixturePath("snntorch_leaky.nir"), "-o", dir.file("no/such/x.safetensors")],
      ]
      for args in cases {
        let inProcess = try #require(SomaCommand.failureLine(args), "\(args) succeeded in-process")
        let run = try Self.soma(args)
        #expect(run.status == 1 && !run.signaled, "\(args): status \(run.status)")
        #expect(run.stderr == "Error: \(inProcess)\n", "\(args)")
        #expect(run.stdout.isEmpty, "\(run.stdout)")
      }
      #expect(try dir.contents() == [])
    }

    @Test func goodFileImportsAsInProcess() throws {
      let dir = try TemporaryDirectory()
      let file = try fixturePath("snntorch_rleaky.nir")
      let args = ["import", file, "--dt", "1e-4", "--time-steps", "40", "-o"]
      let run = try Self.soma(args + [dir.file("child.safetensors")])
      #expect(run.status == 0 && !run.signaled, "status \(run.status): \(run.stderr)")
      #expect(run.stderr.isEmpty, "\(run.stderr)")
      // The checkpoint `soma import` wrote before reading moved to a child: the network
      // Sequential(nirFile:) builds, written by Checkpoint.write.
      let net = try Sequential<Float>(nirFile: file, options: NIROptions(dt: 1e-4))
      try Checkpoint.write(
        net, loss: .spikeCountCrossEntropy, timeSteps: 40, model: "nir",
        extra: ["nir_source": "snntorch_rleaky.nir", "nir_dt": "0.0001"],
        to: dir.file("direct.safetensors"))
      #expect(SomaCommand.failureLine(args + [dir.file("in-process.safetensors")]) == nil)
      let child = try Data(contentsOf: URL(fileURLWithPath: dir.file("child.safetensors")))
      let direct = try Data(contentsOf: URL(fileURLWithPath: dir.file("direct.safetensors")))
      let inProcess = try Data(contentsOf: URL(fileURLWithPath: dir.file("in-process.safetensors")))
      #expect(child == direct)
      #expect(child == inProcess)
      let types = layerTypes(net).joined(separator: " → ")
      #expect(run.stdout == "wrote \(dir.file("child.safetensors")): \(types), dt 0.0001 s\n")
      #expect(
        try dir.contents() == ["child.safetensors", "direct.safetensors", "in-process.safetensors"])
    }

    /// The members of process group `group` that have not ended (zombies excluded).
    static func liveMembers(of group: pid_t) -> [pid_t] {
      let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
      return procs.compactMap { name -> pid_t? in
        guard let pid = pid_t(name),
          case let stat = text("/proc/\(name)/stat"),
          let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "(comm)": state, ppid, pgrp.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 2, fields[0] != "Z", pid_t(fields[2]) == group else { return nil }
        return pid
      }
    }

    @Test func ctrlCStopsTheToolAndItsChild() throws {
      let logs = try TemporaryDirectory()
      let file = try fixturePath("bad/heap_loop.nir")
      let pid = try Self.start(
        ["import", file, "-o", logs.file("out.safetensors"), "--read-timeout", "300"],
        stdout: logs.file("stdout"), stderr: logs.file("stderr"))
      // Wait for the child (looping in libhdf5) to join the tool's group.
      let clock = ContinuousClock()
      let deadline = clock.now + .seconds(60)
      while Self.liveMembers(of: pid).count < 2 && clock.now < deadline { usleep(10_000) }
      #expect(Self.liveMembers(of: pid).count == 2, "the child never started")
      kill(-pid, SIGINT)  // what Ctrl-C at a terminal does to the foreground job
      let (status, signaled) = Self.finish(pid, limit: 60)
      #expect(signaled && status == 128 + SIGINT, "status \(status)")
      let gone = clock.now + .seconds(30)
      while !Self.liveMembers(of: pid).isEmpty && clock.now < gone { usleep(10_000) }
      let left = Self.liveMembers(of: pid)
      #expect(left.isEmpty, "still running after Ctrl-C: \(left)")
      for p in left { kill(p, SIGKILL) }
      #expect(try logs.contents() == ["stderr", "stdout"])
    }
  }
#endif
