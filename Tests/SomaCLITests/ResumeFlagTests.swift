import Testing

@testable import SomaCLI

/// `--resume` continues the run in `--out`, so it needs one and cannot also overwrite it.
@Test func resumeNeedsAnOutputDirectoryAndNoOverwrite() throws {
  #expect(throws: (any Error).self) { _ = try SomaCommand.parseAsRoot(["train", "--resume"]) }
  #expect(throws: (any Error).self) {
    _ = try SomaCommand.parseAsRoot(["train", "--resume", "--out", "runs/x", "--overwrite"])
  }
  let command = try #require(
    try SomaCommand.parseAsRoot(["train", "--resume", "--out", "runs/x"]) as? TrainCommand)
  #expect(command.resume)
}
