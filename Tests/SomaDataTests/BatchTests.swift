import SomaData
import Testing

@Suite struct BatchTests {
  @Test func shuffleIsASeededPermutation() {
    let a = shuffledIndices(count: 1000, seed: 9)
    #expect(a == shuffledIndices(count: 1000, seed: 9))
    #expect(a != shuffledIndices(count: 1000, seed: 10))
    #expect(a.sorted() == Array(0..<1000))
    #expect(a != Array(0..<1000))
    #expect(shuffledIndices(count: 0, seed: 1).isEmpty)
    #expect(shuffledIndices(count: 1, seed: 1) == [0])
  }

  @Test func shuffleIsRoughlyUniform() {
    // Where does element 0 land, over 4000 seeds, among 4 positions? Each ≈ 1000 (σ ≈ 27).
    var counts = [0, 0, 0, 0]
    for s in 0..<4000 { counts[shuffledIndices(count: 4, seed: UInt64(s)).firstIndex(of: 0)!] += 1 }
    #expect(counts.allSatisfy { abs($0 - 1000) < 150 }, "\(counts)")
  }

  @Test func batchesCoverEverySampleOnceAndKeepTheLastByDefault() {
    let it = BatchIterator(count: 10, batchSize: 4, seed: 5, epoch: 0)
    #expect(it.batchCount == 3)
    let batches = Array(it)
    #expect(batches.map(\.count) == [4, 4, 2])
    #expect(batches.flatMap { $0 }.sorted() == Array(0..<10))
    #expect(batches.flatMap { $0 } == it.order)
  }

  @Test func dropPolicyDropsTheShortBatch() {
    let it = BatchIterator(count: 10, batchSize: 4, seed: 5, partialBatch: .drop)
    #expect(it.batchCount == 2)
    #expect(Array(it).map(\.count) == [4, 4])
    #expect(Array(BatchIterator(count: 8, batchSize: 4, partialBatch: .drop)).count == 2)
    #expect(Array(BatchIterator(count: 3, batchSize: 4, partialBatch: .drop)).isEmpty)
  }

  @Test func fashionMNISTEpochIs235Steps() {
    #expect(BatchIterator(count: 60_000, batchSize: 256, seed: 1).batchCount == 235)
    #expect(BatchIterator(count: 60_000, batchSize: 256, seed: 1, partialBatch: .drop).batchCount
      == 234)
  }

  @Test func sameSeedAndEpochGiveTheSameOrder() {
    let a = Array(BatchIterator(count: 100, batchSize: 7, seed: 3, epoch: 2)).map(Array.init)
    let b = Array(BatchIterator(count: 100, batchSize: 7, seed: 3, epoch: 2)).map(Array.init)
    let c = Array(BatchIterator(count: 100, batchSize: 7, seed: 3, epoch: 3)).map(Array.init)
    #expect(a == b)
    #expect(a != c)
    // Without a seed: in order.
    #expect(Array(BatchIterator(count: 5, batchSize: 2)).map(Array.init) == [[0, 1], [2, 3], [4]])
  }
}
