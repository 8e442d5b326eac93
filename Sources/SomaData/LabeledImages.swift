import SomaTensor
import Synchronization
import Dispatch

/// Grey-scale images with one class label each, as bytes: one split of an MNIST-style dataset.
///
/// The images are kept as the dataset's bytes (`pixels`); `images` converts them all to a
/// `Float` tensor ([count, rows · cols], pixel / 255) on first use and keeps it (188 MB for
/// Fashion-MNIST's training split), while `images(at:)` gathers one mini-batch straight from
/// the bytes.
///
/// ```swift
/// let data = try FashionMNIST()
/// let batch = data.test.images(at: [0, 1, 2])   // [3, 784], values in [0, 1]
/// print(data.test.labels[0..<3])
/// ```
public struct LabeledImages: Sendable {
  /// The pixel bytes, image after image, each row-major.
  public let pixels: [UInt8]
  /// All images as [count, rows · cols] `Float`, pixel / 255; converted on first use, then
  /// cached (copies of this value share the cache).
  public var images: Tensor<Float> {
    cache.tensor.withLock { cached in
      if let cached { return cached }
      let t = LabeledImages.floats(pixels, shape: [count, featureCount])
      cached = t
      return t
    }
  }
  private let cache = FloatCache()
  /// One class label per image.
  public let labels: [Int]
  /// Image height and width.
  public let rows: Int, columns: Int

  /// Images from `pixels` (count · rows · columns bytes) and their `labels`.
  public init(pixels: [UInt8], labels: [Int], rows: Int, columns: Int) {
    precondition(
      rows > 0 && columns > 0 && pixels.count == labels.count * rows * columns,
      "LabeledImages: \(pixels.count) pixel bytes do not make \(labels.count) images of"
        + " \(rows)×\(columns)")
    self.pixels = pixels
    self.labels = labels
    self.rows = rows
    self.columns = columns
  }

  /// The number of images.
  public var count: Int { labels.count }
  /// Pixels per image (rows · columns).
  public var featureCount: Int { rows * columns }

  /// The images at `indices` as a [indices.count, rows · columns] tensor, pixel / 255.
  public func images<C: Collection<Int>>(at indices: C) -> Tensor<Float> {
    let f = featureCount
    var out = Tensor<Float>(uninitializedShape: [indices.count, f])
    let table = LabeledImages.byteToUnit
    out.withUnsafeMutableBufferPointer { dst in
      pixels.withUnsafeBufferPointer { src in
        table.withUnsafeBufferPointer { t in
          var row = 0
          for i in indices {
            precondition(i >= 0 && i < count, "LabeledImages: index \(i) out of 0..<\(count)")
            let s = src.baseAddress! + i * f
            let d = dst.baseAddress! + row * f
            for j in 0..<f { d[j] = t[Int(s[j])] }
            row += 1
          }
        }
      }
    }
    return out
  }

  /// The labels at `indices`.
  public func labels<C: Collection<Int>>(at indices: C) -> [Int] { indices.map { labels[$0] } }

  /// The first `n` images (or all, if fewer): a quick subset for smoke runs and tests.
  public func prefix(_ n: Int) -> LabeledImages {
    let k = min(max(n, 0), count)
    return LabeledImages(
      pixels: Array(pixels[0..<(k * featureCount)]), labels: Array(labels[0..<k]), rows: rows,
      columns: columns)
  }

  /// `Float(b) / 255` for every byte b, by a table: the correctly rounded quotient (a multiply
  /// by 1/255 is off by an ulp for some bytes), and cheap.
  static let byteToUnit: [Float] = (0..<256).map { Float($0) / 255 }

  static func floats(_ bytes: [UInt8], shape: [Int]) -> Tensor<Float> {
    var out = Tensor<Float>(uninitializedShape: shape)
    let table = byteToUnit
    out.withUnsafeMutableBufferPointer { dst in
      bytes.withUnsafeBufferPointer { src in
        table.withUnsafeBufferPointer { t in
          for i in 0..<src.count { dst[i] = t[Int(src[i])] }
        }
      }
    }
    return out
  }
}

final class FloatCache: Sendable {
  let tensor = Mutex<Tensor<Float>?>(nil)
}

/// Fashion-MNIST (or MNIST: same file names and format) read from a directory of IDX files.
///
/// The directory holds `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or with a `.gz`
/// suffix (the plain file wins when both exist). Debian's `dataset-fashion-mnist` package
/// installs them gzipped in `/usr/share/datasets/fashion-mnist`.
///
/// ```swift
/// let data = try FashionMNIST()   // or FashionMNIST(directory: "/data/mnist")
/// print(data.train.count, data.test.count)  // 60000 10000
/// let x = data.train.images        // [60000, 784] Float in [0, 1]
/// ```
public struct FashionMNIST: Sendable {
  /// Where Debian's `dataset-fashion-mnist` package puts the files.
  public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
  /// The command that installs the dataset on Debian.
  public static let installCommand = "apt-get install -y dataset-fashion-mnist"
  /// The class names of Fashion-MNIST, by label.
  public static let classNames = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot",
  ]
  /// The number of classes; every label is in `0..<classCount`.
  public static let classCount = 10

  /// The directory the files were read from.
  public let directory: String
  /// The 60 000 training images (for Fashion-MNIST and MNIST).
  public let train: LabeledImages
  /// The 10 000 test images.
  public let test: LabeledImages

  /// Reads both splits from `directory`.
  ///
  /// - Throws: `SomaDataError` with one sentence naming the missing or malformed file; when
  ///   the directory itself is missing, the sentence gives the `apt-get` command.
  public init(directory: String = FashionMNIST.defaultDirectory) throws(SomaDataError) {
    guard isDirectory(directory) else {
      let what = fileExists(directory) ? "is not a directory" : "does not exist"
      throw SomaDataError(
        .missing, path: directory,
        "The dataset directory \(directory) \(what); install Fashion-MNIST with"
          + " `\(FashionMNIST.installCommand)` or pass the directory of an MNIST-style dataset"
          + " with --data DIR.")
    }
    self.directory = directory
    // The two splits decompress in parallel, each into its own slot, so they share nothing
    // and need no lock (concurrentPerform returns after both). A Mutex here drew a false
    // ThreadSanitizer report: under contention its lock and unlock take slow paths inside the
    // uninstrumented Synchronization library, so TSan cannot see them order the two writes.
    let slots = UnsafeMutablePointer<Result<LabeledImages, SomaDataError>?>.allocate(capacity: 2)
    slots.initialize(repeating: nil, count: 2)
    defer {
      slots.deinitialize(count: 2)
      slots.deallocate()
    }
    nonisolated(unsafe) let out = slots
    DispatchQueue.concurrentPerform(iterations: 2) { i in
      do throws(SomaDataError) {
        out[i] = .success(try FashionMNIST.readSplit(i == 0 ? "train" : "t10k", in: directory))
      } catch {
        out[i] = .failure(error)
      }
    }
    self.train = try slots[0]!.get()
    self.test = try slots[1]!.get()
    guard test.rows == train.rows && test.columns == train.columns else {
      let path = (try? FashionMNIST.locate("t10k-images-idx3-ubyte", in: directory)) ?? directory
      throw SomaDataError(
        .malformed, path: path,
        "\(path) holds \(test.rows)×\(test.columns) images but the training images are"
          + " \(train.rows)×\(train.columns).")
    }
  }

  /// Reads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]`.
  ///
  /// - Throws: `SomaDataError` naming the file when one is missing or malformed, when the two
  ///   hold different numbers of images and labels, or when a label is outside
  ///   `0..<classCount` (the sentence gives the first bad index and value).
  public static func readSplit(_ prefix: String, in directory: String) throws(SomaDataError)
    -> LabeledImages
  {
    let imagePath = try locate("\(prefix)-images-idx3-ubyte", in: directory)
    let labelPath = try locate("\(prefix)-labels-idx1-ubyte", in: directory)
    let images = try IDXArray(contentsOf: imagePath, expectedRank: 3)
    let labels = try IDXArray(contentsOf: labelPath, expectedRank: 1)
    let (n, rows, cols) = (images.dimensions[0], images.dimensions[1], images.dimensions[2])
    guard rows > 0, cols > 0 else {
      throw SomaDataError.malformed(imagePath, "its images are \(rows)×\(cols) pixels")
    }
    guard labels.dimensions[0] == n else {
      throw SomaDataError(
        .malformed, path: labelPath,
        "\(labelPath) holds \(labels.dimensions[0]) labels but \(imagePath) holds \(n) images.")
    }
    if let bad = labels.bytes.firstIndex(where: { Int($0) >= classCount }) {
      throw SomaDataError(
        .malformed, path: labelPath,
        "\(labelPath) holds label \(labels.bytes[bad]) at index \(bad); labels must be in"
          + " 0..<\(classCount), one per class.")
    }
    return LabeledImages(
      pixels: images.bytes, labels: labels.bytes.map { Int($0) }, rows: rows, columns: cols)
  }

  static func locate(_ name: String, in directory: String) throws(SomaDataError) -> String {
    let base = directory.hasSuffix("/") ? directory + name : directory + "/" + name
    if fileExists(base) { return base }
    if fileExists(base + ".gz") { return base + ".gz" }
    throw SomaDataError(
      .missing, path: base,
      "\(base)[.gz] is missing: \(directory) does not hold a complete MNIST-style dataset (for"
        + " Fashion-MNIST, run `\(FashionMNIST.installCommand)`).")
  }
}
