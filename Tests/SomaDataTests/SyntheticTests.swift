import SomaData
import SomaTensor
import Testing

@Suite struct SyntheticTests {
  @Test func syntheticDataIsSeededAndBalanced() {
    let a = LabeledImages.synthetic(count: 105, rows: 8, columns: 8, seed: 1)
    #expect(a.count == 105 && a.featureCount == 64)
    #expect(a.pixels == LabeledImages.synthetic(count: 105, rows: 8, columns: 8, seed: 1).pixels)
    #expect(a.pixels != LabeledImages.synthetic(count: 105, rows: 8, columns: 8, seed: 2).pixels)
    var counts = [Int](repeating: 0, count: 10)
    for l in a.labels { counts[l] += 1 }
    #expect(counts == [11, 11, 11, 11, 11, 10, 10, 10, 10, 10])
  }

  @Test func syntheticDataIsLearnable() {
    // Nearest class mean, fitted on one split and scored on another with the same classes,
    // should be nearly perfect; chance is 10 %.
    let train = LabeledImages.synthetic(count: 500, rows: 10, columns: 10, seed: 1)
    let test = LabeledImages.synthetic(count: 200, rows: 10, columns: 10, seed: 2)
    let f = train.featureCount
    var means = [[Double]](repeating: [Double](repeating: 0, count: f), count: 10)
    for i in 0..<train.count {
      for j in 0..<f { means[train.labels[i]][j] += Double(train.pixels[i * f + j]) / 50 }
    }
    var correct = 0
    for i in 0..<test.count {
      let distances = means.map { m in
        (0..<f).reduce(0.0) { d, j in
          let e = Double(test.pixels[i * f + j]) - m[j]
          return d + e * e
        }
      }
      if distances.firstIndex(of: distances.min()!) == test.labels[i] { correct += 1 }
    }
    #expect(correct >= 190, "\(correct) of 200")
  }
}
