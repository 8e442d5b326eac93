import SomaTensor
import Testing

// Programmer errors trap with a message naming both shapes. Each runs in a child process.

@Test func broadcastMismatchTrapsNamingBothShapes() async {
  let result = await #expect(
    processExitsWith: .failure, observing: [\.standardErrorContent]
  ) {
    _ = Tensor<Float>.zeros([2, 3]) + Tensor<Float>.zeros([4])
  }
  let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
  #expect(stderr.contains("[2, 3]") && stderr.contains("[4]"), "stderr: \(stderr)")
}

@Test func matmulMismatchTrapsNamingBothShapes() async {
  let result = await #expect(
    processExitsWith: .failure, observing: [\.standardErrorContent]
  ) {
    _ = Tensor<Double>.zeros([5, 7]).matmul(Tensor<Double>.zeros([6, 3]))
  }
  let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
  #expect(stderr.contains("[5, 7]") && stderr.contains("[6, 3]"), "stderr: \(stderr)")
}

@Test func inPlaceAndSolveMismatchesTrap() async {
  await #expect(processExitsWith: .failure) {
    var a = Tensor<Float>.zeros([3])
    a += Tensor<Float>.zeros([2, 3])  // the result would not fit in a
  }
  let result = await #expect(
    processExitsWith: .failure, observing: [\.standardErrorContent]
  ) {
    _ = try? Tensor.solve(Tensor<Float>.eye(3), Tensor<Float>.zeros([4]))
  }
  let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
  #expect(stderr.contains("[3, 3]") && stderr.contains("[4]"), "stderr: \(stderr)")
  await #expect(processExitsWith: .failure) {
    _ = Tensor<Float>.zeros([2, 3]).reshaped([4, 2])
  }
}
