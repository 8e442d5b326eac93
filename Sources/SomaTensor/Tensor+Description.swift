import RealModule

// Printing in the style of NumPy/PyTorch: nested brackets, values aligned to a common width,
// and `...` in place of the middle of every axis once the tensor has more than 1000 elements.

extension Tensor: CustomStringConvertible, CustomDebugStringConvertible {
  /// The values, shape and dtype, like NumPy/PyTorch print arrays:
  ///
  /// ```swift
  /// print(Tensor<Float>([1, 2, 3, 4], shape: [2, 2]))
  /// // tensor([[1., 2.],
  /// //         [3., 4.]], shape=[2, 2], dtype=float32)
  /// ```
  ///
  /// Integral values print as `1.`, others with four decimals (`0.1250`), and values of very
  /// different magnitudes in scientific notation (`1.0000e+10`). Tensors with more than 1000
  /// elements show the first and last three entries of each axis around `...`.
  public var description: String {
    TensorFormatter(self).render(prefix: "tensor(")
      + (rank == 0 ? "" : ", shape=\(_shape)") + ", dtype=\(Scalar.dtypeName))"
  }

  /// `description` plus the layout: strides, offset and whether the tensor is contiguous.
  public var debugDescription: String {
    "Tensor<\(Scalar.self)>(shape: \(_shape), strides: \(_strides), offset: \(_offset), "
      + "contiguous: \(isContiguous), values: " + TensorFormatter(self).render(prefix: "") + ")"
  }
}

/// Renders a tensor's values; used by `description`.
@usableFromInline
struct TensorFormatter<Scalar: TensorScalar> {
  /// Axes longer than this are abbreviated to `edgeItems` at each end when summarising.
  static var edgeItems: Int { 3 }
  static var threshold: Int { 1000 }
  static var lineWidth: Int { 100 }

  enum Style {
    case integral, fixed, scientific
  }

  let tensor: Tensor<Scalar>
  let summarise: Bool
  var style: Style = .fixed
  var width = 1

  init(_ tensor: Tensor<Scalar>) {
    self.tensor = tensor
    summarise = tensor.count > Self.threshold
    var values: [Scalar] = []
    collect(axis: 0, offset: tensor._offset, into: &values)
    chooseStyle(values)
  }

  /// The indices of `axis` to show; -1 marks the `...`.
  func shownIndices(_ axis: Int) -> [Int] {
    let n = tensor._shape[axis]
    let e = Self.edgeItems
    if summarise && n > 2 * e { return Array(0..<e) + [-1] + Array((n - e)..<n) }
    return Array(0..<n)
  }

  func collect(axis: Int, offset: Int, into values: inout [Scalar]) {
    if axis == tensor.rank {
      values.append(tensor.storage.base[offset])
      return
    }
    for i in shownIndices(axis) where i >= 0 {
      collect(axis: axis + 1, offset: offset + i * tensor._strides[axis], into: &values)
    }
  }

  mutating func chooseStyle(_ values: [Scalar]) {
    let finite = values.filter { $0.isFinite }.map { Swift.abs(Double($0)) }
    let maxAbs = finite.max() ?? 0
    let minAbs = finite.filter { $0 > 0 }.min() ?? 0
    if finite.allSatisfy({ $0 == $0.rounded(.towardZero) }) && maxAbs < 1e16 {
      style = .integral
    } else if maxAbs < 1e8 && (minAbs >= 1e-4 || minAbs == 0)
      && maxAbs / Swift.max(minAbs, 1e-300) < 1e8
    {
      style = .fixed
    } else {
      style = .scientific
    }
    width = values.map { format($0).count }.max() ?? 1
  }

  func format(_ x: Scalar) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    let sign = x.sign == .minus ? "-" : ""
    let a = Swift.abs(Double(x))
    switch style {
    case .integral:
      return sign + String(UInt64(a)) + "."
    case .fixed:
      return sign + Self.fixed(a, decimals: 4)
    case .scientific:
      if a == 0 { return sign + "0.0000e+00" }
      var e = Int(Double.log10(a).rounded(.down))
      var m = a / Double.pow(10, e)
      if (m * 1e4).rounded() >= 1e5 {
        m /= 10
        e += 1
      } else if m < 1 {
        m *= 10
        e -= 1
      }
      let digits = String(Swift.abs(e))
      return sign + Self.fixed(m, decimals: 4) + (e < 0 ? "e-" : "e+")
        + (digits.count < 2 ? "0" : "") + digits
    }
  }

  /// `a` ≥ 0 rounded to `decimals` places, e.g. "3.1416".
  static func fixed(_ a: Double, decimals: Int) -> String {
    var scale: UInt64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let n = UInt64((a * Double(scale)).rounded())
    var frac = String(n % scale)
    while frac.count < decimals { frac = "0" + frac }
    return String(n / scale) + "." + frac
  }

  func padded(_ x: Scalar) -> String {
    let s = format(x)
    return String(repeating: " ", count: Swift.max(0, width - s.count)) + s
  }

  /// The values after `prefix` (whose length sets the indentation of continuation lines).
  func render(prefix: String) -> String {
    if tensor.rank == 0 { return prefix + format(tensor.storage.base[tensor._offset]) }
    if tensor.count == 0 { return prefix + "[]" }
    return prefix + block(axis: 0, offset: tensor._offset, indent: prefix.count)
  }

  func block(axis: Int, offset: Int, indent: Int) -> String {
    let stride = tensor._strides[axis]
    let shown = shownIndices(axis)
    if axis == tensor.rank - 1 {
      // Innermost axis: items on one line, wrapped at the line width.
      let pad = String(repeating: " ", count: indent + 1)
      var out = "["
      var lineLength = indent + 1
      for (k, i) in shown.enumerated() {
        let item = i < 0 ? "..." : padded(tensor.storage.base[offset + i * stride])
        if k > 0 {
          if lineLength + 2 + item.count > Self.lineWidth {
            out += ",\n" + pad
            lineLength = indent + 1
          } else {
            out += ", "
            lineLength += 2
          }
        }
        out += item
        lineLength += item.count
      }
      return out + "]"
    }
    // Outer axes: one child per line; a blank line between blocks of rank ≥ 2.
    let blank = String(repeating: "\n", count: tensor.rank - axis - 1)
    let pad = String(repeating: " ", count: indent + 1)
    var parts: [String] = []
    for i in shown {
      parts.append(
        i < 0 ? "..." : block(axis: axis + 1, offset: offset + i * stride, indent: indent + 1))
    }
    return "[" + parts.joined(separator: "," + blank + pad) + "]"
  }
}
