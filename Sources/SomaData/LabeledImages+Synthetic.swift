import SomaTensor

extension LabeledImages {
  /// A small, seeded, learnable stand-in for an image dataset, for tests and smoke runs.
  ///
  /// Each class has a prototype: a random quarter of the pixels bright (160–255), the rest
  /// dark. A sample is its class's prototype with every pixel jittered by up to ±`noise` and
  /// 5 % of the pixels replaced by random values. Labels cycle through the classes, so every
  /// class has `count / classes` samples or one more. The same arguments always give the same
  /// bytes; `prototypeSeed` fixes the classes, so a test split made with another `seed` and the
  /// same `prototypeSeed` is drawn from the same classes.
  ///
  /// ```swift
  /// let train = LabeledImages.synthetic(count: 2000, seed: 1)
  /// let test = LabeledImages.synthetic(count: 500, seed: 2)   // same classes, new samples
  /// ```
  public static func synthetic(
    count: Int, classes: Int = 10, rows: Int = 28, columns: Int = 28, noise: Int = 40,
    seed: UInt64, prototypeSeed: UInt64 = 0
  ) -> LabeledImages {
    precondition(count >= 0 && classes > 0 && rows > 0 && columns > 0 && noise >= 0,
      "LabeledImages.synthetic: count \(count), classes \(classes), \(rows)×\(columns),"
        + " noise \(noise) must be non-negative (classes and sizes positive)")
    let f = rows * columns
    var pg = SomaRandom(seed: prototypeSeed ^ 0x5EED_0F_C1A55E5)
    let prototypes: [[Int]] = (0..<classes).map { _ in
      (0..<f).map { _ in
        boundedRandom(4, &pg) == 0 ? 160 + Int(boundedRandom(96, &pg)) : 0
      }
    }
    var g = SomaRandom(seed: seed)
    var pixels = [UInt8](repeating: 0, count: count * f)
    var labels = [Int](repeating: 0, count: count)
    for i in 0..<count {
      let c = i % classes
      labels[i] = c
      for j in 0..<f {
        var v: Int
        if boundedRandom(20, &g) == 0 {
          v = Int(boundedRandom(256, &g))
        } else {
          v = prototypes[c][j] + Int(boundedRandom(UInt64(2 * noise + 1), &g)) - noise
        }
        pixels[i * f + j] = UInt8(Swift.max(0, Swift.min(255, v)))
      }
    }
    return LabeledImages(pixels: pixels, labels: labels, rows: rows, columns: columns)
  }
}
