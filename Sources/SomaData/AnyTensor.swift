import SomaTensor

/// A tensor of either scalar type, for files that hold both (checkpoints, `.npy`): the dtype
/// travels with the values instead of being converted away.
///
/// ```swift
/// let w = AnyTensor(Tensor<Float>.zeros([100, 784]))
/// w.dtype                       // .float32
/// let back: Tensor<Float>? = w.as(Float.self)
/// ```
public enum AnyTensor: Sendable {
  case float(Tensor<Float>)
  case double(Tensor<Double>)

  /// The element type of a stored tensor.
  public enum DType: String, Sendable, Hashable {
    case float32 = "F32"
    case float64 = "F64"
    /// Bytes per element.
    public var size: Int { self == .float32 ? 4 : 8 }
  }

  /// Wraps `tensor`, keeping its scalar type.
  public init<S: TensorScalar>(_ tensor: Tensor<S>) {
    if let t = tensor as? Tensor<Float> {
      self = .float(t)
    } else if let t = tensor as? Tensor<Double> {
      self = .double(t)
    } else {
      preconditionFailure("AnyTensor: unsupported scalar type \(S.self)")
    }
  }

  public var dtype: DType {
    switch self {
    case .float: .float32
    case .double: .float64
    }
  }

  public var shape: [Int] {
    switch self {
    case .float(let t): t.shape
    case .double(let t): t.shape
    }
  }

  /// The tensor if its scalar type is `S`, else nil (no conversion).
  public func `as`<S: TensorScalar>(_: S.Type = S.self) -> Tensor<S>? {
    switch self {
    case .float(let t): t as? Tensor<S>
    case .double(let t): t as? Tensor<S>
    }
  }

  /// The elements' bytes, little-endian, row-major.
  func littleEndianBytes() -> [UInt8] {
    switch self {
    case .float(let t): return Self.bytes(t.scalars.map { $0.bitPattern.littleEndian })
    case .double(let t): return Self.bytes(t.scalars.map { $0.bitPattern.littleEndian })
    }
  }

  private static func bytes<U: FixedWidthInteger>(_ words: [U]) -> [UInt8] {
    words.withUnsafeBytes { Array($0) }
  }

  /// A tensor of `dtype` and `shape` from little-endian `bytes` (count already checked).
  static func fromLittleEndian(_ bytes: ArraySlice<UInt8>, dtype: DType, shape: [Int]) -> AnyTensor
  {
    switch dtype {
    case .float32:
      var t = Tensor<Float>(uninitializedShape: shape)
      t.withUnsafeMutableBufferPointer { dst in
        bytes.withUnsafeBytes { src in
          for i in 0..<dst.count {
            dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
          }
        }
      }
      return .float(t)
    case .float64:
      var t = Tensor<Double>(uninitializedShape: shape)
      t.withUnsafeMutableBufferPointer { dst in
        bytes.withUnsafeBytes { src in
          for i in 0..<dst.count {
            dst[i] = Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
          }
        }
      }
      return .double(t)
    }
  }
}

extension AnyTensor: Equatable {
  /// Same dtype, same shape and bit-identical elements (so NaNs with equal payloads are equal
  /// and −0 differs from +0): the equality a file round trip must preserve.
  public static func == (a: AnyTensor, b: AnyTensor) -> Bool {
    a.dtype == b.dtype && a.shape == b.shape && a.littleEndianBytes() == b.littleEndianBytes()
  }
}
