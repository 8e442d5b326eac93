import Foundation
import SomaData
import Testing
import _TestSupport

/// AtomicFile's checks on where it writes, its clean-up after killed writers, and the label
/// check of MNIST-style splits.
@Suite struct OutputSafetyTests {
  @Test func pathsThatCannotBeFilesThrowInsteadOfTrapping() throws {
    let dir = try TemporaryDirectory()
    func failure(_ path: String) -> SomaDataError? {
      #expect(throws: SomaDataError.self) { try AtomicFile.write([1, 2, 3], to: path) }
    }
    let named = "names a directory, not a file (give a file name)."
    #expect(failure(dir.path + "/")?.description == "\(dir.path)/ \(named)")
    #expect(failure(dir.path)?.description == "\(dir.path) is a directory, not a file.")
    #expect(failure(dir.path + "/.")?.description == "\(dir.path)/. \(named)")
    #expect(failure("")?.description == "The output file name is empty.")
    try dir.write([0], to: "plain")
    #expect(
      failure(dir.file("plain") + "/x")?.description
        == "\(dir.file("plain"))/x cannot be written: \(dir.file("plain")) is not a directory.")
    #if os(Linux)
      #expect(
        failure("/proc/soma-x")?.description
          == "/proc/soma-x cannot be written: the directory /proc does not accept new files (is it"
          + " on a special file system such as /proc?).")
      #expect(
        failure("/dev/null")?.description
          == "/dev/null is not a regular file (a device, pipe or socket); Soma only writes"
          + " regular files.")
    #endif
    #expect(try dir.contents() == ["plain"])
  }

  @Test func staleTemporariesOfDeadWritersAreRemoved() throws {
    let dir = try TemporaryDirectory()
    let dead = try reapedChildPID()
    let stale = [".final.safetensors.tmp-\(dead)-abc12", ".metrics.csv.tmp-\(dead)-0"]
    // Not removed: a live writer (this process, PID 1), names of another pattern, a directory.
    let kept = [
      ".best.safetensors.tmp-\(getpid())-zz", ".curves.svg.tmp-1-k3",
      "final.safetensors.tmp-\(dead)-a",
      ".x.tmp-\(dead)-ABC", ".x.tmp-\(dead)-abcdefgh", ".tmp-\(dead)-a", "notes.txt",
    ]
    for name in stale + kept { try dir.write([1, 2, 3], to: name) }
    try FileManager.default.createDirectory(
      atPath: dir.file(".d.tmp-\(dead)-a"), withIntermediateDirectories: false)
    try AtomicFile.write(Array("epoch\n".utf8), to: dir.file("metrics.csv"))
    #expect(try dir.contents() == (kept + [".d.tmp-\(dead)-a", "metrics.csv"]).sorted())
    #expect(AtomicFile.removeStaleTemporaries(in: dir.path) == [])
  }

  @Test func aPipeAsADataFileIsRefusedWithoutWaiting() throws {
    let dir = try TemporaryDirectory()
    let path = dir.file("t10k-labels-idx1-ubyte")
    #expect(mkfifo(path, 0o644) == 0)
    // Opening a FIFO for reading used to block until some writer came along.
    let error = #expect(throws: SomaDataError.self) { try IDXArray(contentsOf: path) }
    #expect(
      error?.description
        == "\(path) is not a regular file (a device, pipe or socket); Soma reads only regular"
        + " files.")
  }

  @Test func labelsOutsideTheClassesAreRefused() throws {
    let dir = try TemporaryDirectory()
    for (prefix, labels) in [("train", [0, 9, 3]), ("t10k", [1, 2, 200, 10])] {
      let n = labels.count
      let images = IDXArray(dimensions: [n, 2, 2], bytes: [UInt8](repeating: 5, count: n * 4))
      try dir.write(images.encoded(), to: "\(prefix)-images-idx3-ubyte")
      let bytes = IDXArray(dimensions: [n], bytes: labels.map { UInt8($0) }).encoded()
      try dir.write(bytes, to: "\(prefix)-labels-idx1-ubyte")
    }
    #expect(try FashionMNIST.readSplit("train", in: dir.path).labels == [0, 9, 3])
    let error = #expect(throws: SomaDataError.self) { try FashionMNIST(directory: dir.path) }
    #expect(error?.kind == .malformed)
    #expect(error?.path == dir.file("t10k-labels-idx1-ubyte"))
    #expect(
      error?.description
        == "\(dir.file("t10k-labels-idx1-ubyte")) holds label 200 at index 2; labels must be in"
        + " 0..<10, one per class.")
  }
}
