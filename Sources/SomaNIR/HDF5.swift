internal import CHDF5
import SomaData

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// The few HDF5 operations NIR files need, over the C library: groups, named datasets of
/// numbers or UTF-8 strings, gzip-compressed arrays, and whole files as in-memory images (so
/// a file is read from bytes and written through `AtomicFile`). Internal: no C type leaves
/// this file.
///
/// Every failure throws `NIRError` with a sentence built by the caller's `describe` closure,
/// so messages name the NIR node or field rather than an HDF5 call.
enum HDF5 {
  /// The largest dataset Soma reads (elements), so a hostile header cannot make it allocate
  /// more than a real network needs.
  static let maximumElements = 1 << 28
  /// The deepest array Soma reads.
  static let maximumRank = 8

  /// The kind of values a dataset holds.
  enum Kind: Equatable {
    case integer
    case float(bytes: Int)
    case string
    case other
  }

  /// An open HDF5 object (file, group, dataset, dataspace, datatype or property list) that
  /// closes itself.
  final class Handle {
    let id: hid_t
    private let close: (hid_t) -> herr_t
    init?(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
      guard id >= 0 else { return nil }
      self.id = id
      self.close = close
    }
    deinit { _ = close(id) }
  }

  /// An HDF5 file held in memory (HDF5's core driver, no backing file).
  final class File {
    let handle: Handle
    let root: Group

    private init(_ handle: Handle) throws(NIRError) {
      self.handle = handle
      guard let g = Handle(H5Gopen2(handle.id, "/", soma_h5p_default()), close: H5Gclose) else {
        throw NIRError(.malformed, "the file's root group cannot be opened")
      }
      root = Group(g, path: "")
    }

    /// Opens the HDF5 file image `bytes` read-only; nil if HDF5 cannot parse it.
    static func open(image bytes: [UInt8]) -> File? {
      soma_h5_quiet()
      guard !bytes.isEmpty,
        let fapl = Handle(H5Pcreate(soma_h5p_file_access()), close: H5Pclose),
        H5Pset_fapl_core(fapl.id, 1 << 16, false) >= 0
      else { return nil }
      let ok = bytes.withUnsafeBytes { b in
        H5Pset_file_image(fapl.id, UnsafeMutableRawPointer(mutating: b.baseAddress), b.count)
      }
      guard ok >= 0,
        let f = Handle(
          H5Fopen("soma-nir-image", soma_h5f_acc_rdonly(), fapl.id), close: H5Fclose)
      else { return nil }
      return try? File(f)
    }

    /// A new, empty file in memory, for writing.
    static func create() throws(NIRError) -> File {
      soma_h5_quiet()
      guard let fapl = Handle(H5Pcreate(soma_h5p_file_access()), close: H5Pclose),
        H5Pset_fapl_core(fapl.id, 1 << 16, false) >= 0,
        let f = Handle(
          H5Fcreate("soma-nir-image", soma_h5f_acc_trunc(), soma_h5p_default(), fapl.id),
          close: H5Fclose)
      else { throw NIRError(.file, "the HDF5 library could not create a file in memory") }
      return try File(f)
    }

    /// The file's bytes, as HDF5 would write them to disk.
    func image() throws(NIRError) -> [UInt8] {
      guard H5Fflush(handle.id, H5F_SCOPE_GLOBAL) >= 0 else {
        throw NIRError(.file, "the HDF5 library could not flush the file")
      }
      let size = H5Fget_file_image(handle.id, nil, 0)
      guard size > 0 else { throw NIRError(.file, "the HDF5 library returned no file image") }
      var bytes = [UInt8](repeating: 0, count: size)
      let got = bytes.withUnsafeMutableBytes { H5Fget_file_image(handle.id, $0.baseAddress, size) }
      guard got == size else { throw NIRError(.file, "the HDF5 library returned a short image") }
      return bytes
    }
  }

  /// A group: named links to groups and datasets.
  struct Group {
    let handle: Handle
    /// The group's path in the file (`/node/nodes/lif`), for messages.
    let path: String

    init(_ handle: Handle, path: String) {
      self.handle = handle
      self.path = path
    }

    /// The names of the group's members, in HDF5's name order.
    func memberNames() throws(NIRError) -> [String] {
      var info = H5G_info_t()
      guard H5Gget_info(handle.id, &info) >= 0 else {
        throw NIRError(.malformed, "group \(path.isEmpty ? "/" : path) cannot be listed")
      }
      guard info.nlinks <= 1 << 20 else {
        throw NIRError(.malformed, "group \(path) has \(info.nlinks) members; Soma reads 2^20")
      }
      var names: [String] = []
      for i in 0..<info.nlinks {
        let n = H5Lget_name_by_idx(
          handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, soma_h5p_default())
        guard n >= 0, n < 4096 else {
          throw NIRError(.malformed, "group \(path) has a member whose name cannot be read")
        }
        var buffer = [CChar](repeating: 0, count: n + 1)
        _ = H5Lget_name_by_idx(
          handle.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, n + 1, soma_h5p_default())
        names.append(
          String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self))
      }
      return names
    }

    /// What `name` is in this group: nil if absent.
    func member(_ name: String) -> MemberType? {
      guard H5Lexists(handle.id, name, soma_h5p_default()) > 0,
        let o = Handle(H5Oopen(handle.id, name, soma_h5p_default()), close: H5Oclose)
      else { return nil }
      switch H5Iget_type(o.id) {
      case H5I_GROUP: return .group
      case H5I_DATASET: return .dataset
      default: return .other
      }
    }

    enum MemberType { case group, dataset, other }

    func group(_ name: String) -> Group? {
      guard member(name) == .group,
        let g = Handle(H5Gopen2(handle.id, name, soma_h5p_default()), close: H5Gclose)
      else { return nil }
      return Group(g, path: path + "/" + name)
    }

    func dataset(_ name: String) -> Dataset? {
      guard member(name) == .dataset,
        let d = Handle(H5Dopen2(handle.id, name, soma_h5p_default()), close: H5Dclose)
      else { return nil }
      return Dataset(handle: d, path: path + "/" + name)
    }

    // MARK: Writing

    func createGroup(_ name: String) throws(NIRError) -> Group {
      guard
        let g = Handle(
          H5Gcreate2(
            handle.id, name, soma_h5p_default(), soma_h5p_default(), soma_h5p_default()),
          close: H5Gclose)
      else { throw NIRError(.file, "group \(path)/\(name) cannot be created") }
      return Group(g, path: path + "/" + name)
    }

    /// Writes numbers as a dataset of `type`; arrays of rank ≥ 1 are gzip-compressed (level
    /// 4, h5py's default), as `nir.write` stores them.
    func write(
      _ name: String, values: [Double], shape: [Int], type: NIRArray.ElementType
    ) throws(NIRError) {
      let fileType: hid_t
      switch type {
      case .float32: fileType = soma_h5t_ieee_f32le()
      case .float64: fileType = soma_h5t_ieee_f64le()
      case .int64: fileType = soma_h5t_std_i64le()
      }
      let dims = shape.map { hsize_t($0) }
      guard
        let space = Handle(
          shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil),
          close: H5Sclose),
        let dcpl = Handle(H5Pcreate(soma_h5p_dataset_create()), close: H5Pclose)
      else { throw NIRError(.file, "dataset \(path)/\(name) cannot be described to HDF5") }
      if !shape.isEmpty && !shape.contains(0) {
        guard H5Pset_chunk(dcpl.id, Int32(dims.count), dims) >= 0, H5Pset_deflate(dcpl.id, 4) >= 0
        else { throw NIRError(.file, "dataset \(path)/\(name) cannot be compressed") }
      }
      guard
        let ds = Handle(
          H5Dcreate2(
            handle.id, name, fileType, space.id, soma_h5p_default(), dcpl.id, soma_h5p_default()),
          close: H5Dclose)
      else { throw NIRError(.file, "dataset \(path)/\(name) cannot be created") }
      let status = values.withUnsafeBufferPointer {
        H5Dwrite(
          ds.id, soma_h5t_native_double(), soma_h5s_all(), soma_h5s_all(), soma_h5p_default(),
          $0.baseAddress)
      }
      guard status >= 0 else { throw NIRError(.file, "dataset \(path)/\(name) cannot be written") }
    }

    /// Writes variable-length UTF-8 strings (h5py's `string_dtype()`), scalar when `shape` is
    /// empty.
    func write(_ name: String, strings: [String], shape: [Int]) throws(NIRError) {
      let dims = shape.map { hsize_t($0) }
      guard
        let type = Handle(H5Tcopy(soma_h5t_c_s1()), close: H5Tclose),
        H5Tset_size(type.id, soma_h5t_variable()) >= 0,
        H5Tset_cset(type.id, H5T_CSET_UTF8) >= 0,
        let space = Handle(
          shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil),
          close: H5Sclose),
        let ds = Handle(
          H5Dcreate2(
            handle.id, name, type.id, space.id, soma_h5p_default(), soma_h5p_default(),
            soma_h5p_default()),
          close: H5Dclose)
      else { throw NIRError(.file, "dataset \(path)/\(name) cannot be created") }
      var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
      defer { for p in pointers { free(p) } }
      let status = pointers.withUnsafeMutableBufferPointer {
        H5Dwrite(
          ds.id, type.id, soma_h5s_all(), soma_h5s_all(), soma_h5p_default(), $0.baseAddress)
      }
      guard status >= 0 else { throw NIRError(.file, "dataset \(path)/\(name) cannot be written") }
    }
  }

  /// A dataset, read whole.
  struct Dataset {
    let handle: Handle
    let path: String

    /// The dataset's shape ([] for a scalar); nil for a shape Soma does not read.
    func shape() -> [Int]? {
      guard let space = Handle(H5Dget_space(handle.id), close: H5Sclose) else { return nil }
      let rank = H5Sget_simple_extent_ndims(space.id)
      guard rank >= 0, rank <= HDF5.maximumRank else { return nil }
      if H5Sget_simple_extent_type(space.id) == H5S_NULL { return nil }
      var dims = [hsize_t](repeating: 0, count: Int(rank))
      guard H5Sget_simple_extent_dims(space.id, &dims, nil) == rank else { return nil }
      var count = 1
      for d in dims {
        guard d <= hsize_t(HDF5.maximumElements) else { return nil }
        count *= Int(d)
        guard count <= HDF5.maximumElements else { return nil }
      }
      return dims.map { Int($0) }
    }

    func kind() -> Kind {
      guard let type = Handle(H5Dget_type(handle.id), close: H5Tclose) else { return .other }
      switch H5Tget_class(type.id) {
      case H5T_INTEGER: return .integer
      case H5T_FLOAT: return .float(bytes: H5Tget_size(type.id))
      case H5T_STRING: return .string
      default: return .other
      }
    }

    /// True when the dataset's type and stored bytes can hold its whole extent. HDF5 1.10 copies
    /// a dataset's extent out of its stored bytes without checking their length, so a damaged
    /// number type (an 8-byte integer said to be 91 bytes wide, found by Fuzz/FuzzNIR) or a
    /// compact or contiguous dataset shorter than its shape overflows a heap buffer; every read
    /// asks this first. Data in external files or virtual datasets, which would make HDF5 open
    /// other files, is refused too; chunked data (NIR's gzip arrays) reads unwritten chunks as
    /// fill values.
    func storageHolds() -> Bool {
      guard let plist = Handle(H5Dget_create_plist(handle.id), close: H5Pclose),
        let type = Handle(H5Dget_type(handle.id), close: H5Tclose),
        let space = Handle(H5Dget_space(handle.id), close: H5Sclose),
        H5Pget_external_count(plist.id) == 0
      else { return false }
      let points = H5Sget_simple_extent_npoints(space.id)
      let size = H5Tget_size(type.id)
      guard points >= 0, size > 0, size <= 1 << 16 else { return false }
      switch H5Tget_class(type.id) {
      case H5T_INTEGER, H5T_FLOAT:
        let precision = H5Tget_precision(type.id)
        guard [1, 2, 4, 8].contains(size), precision > 0, precision <= 8 * size else {
          return false
        }
      default: break
      }
      let needed = UInt64(points) * UInt64(size)
      switch H5Pget_layout(plist.id) {
      case H5D_COMPACT, H5D_CONTIGUOUS: return H5Dget_storage_size(handle.id) >= needed
      case H5D_CHUNKED: return chunksHold(plist.id, space.id, typeSize: Int(size))
      default: return false
      }
    }

    /// True when every stored chunk holds a whole chunk of values: HDF5 1.10 copies a chunk's
    /// full size out of what it stored or inflated (a heap overflow on a damaged file, found
    /// by Fuzz/FuzzNIR). Each chunk is read raw and, under gzip (deflate, the only filter NIR
    /// files use and the only one Soma accepts), inflated here first to check its length.
    func chunksHold(_ plist: hid_t, _ space: hid_t, typeSize: Int) -> Bool {
      let filters = H5Pget_nfilters(plist)
      guard filters == 0 || filters == 1 else { return false }
      if filters == 1 {
        var flags: UInt32 = 0
        var count = 0
        var config: UInt32 = 0
        let id = H5Pget_filter2(plist, 0, &flags, &count, nil, 0, nil, &config)
        guard id == H5Z_FILTER_DEFLATE else { return false }
      }
      let rank = Int(H5Sget_simple_extent_ndims(space))
      guard rank >= 1, rank <= HDF5.maximumRank else { return false }
      var dims = [hsize_t](repeating: 0, count: rank)
      guard H5Pget_chunk(plist, Int32(rank), &dims) == rank else { return false }
      var chunkBytes = typeSize
      for d in dims {
        guard d >= 1, d <= hsize_t(HDF5.maximumElements) else { return false }
        let (product, overflow) = chunkBytes.multipliedReportingOverflow(by: Int(d))
        guard !overflow, product <= 8 * HDF5.maximumElements else { return false }
        chunkBytes = product
      }
      guard let file = Handle(H5Iget_file_id(handle.id), close: H5Fclose) else { return false }
      var fileSize: hsize_t = 0
      var chunks: hsize_t = 0
      guard H5Fget_filesize(file.id, &fileSize) >= 0,
        H5Dget_num_chunks(handle.id, space, &chunks) >= 0, chunks <= fileSize
      else { return false }
      for i in 0..<chunks {
        var offset = [hsize_t](repeating: 0, count: rank)
        var mask: UInt32 = 0
        var address: haddr_t = 0
        var stored: hsize_t = 0
        guard
          H5Dget_chunk_info(handle.id, space, i, &offset, &mask, &address, &stored)
            >= 0, stored >= 1, stored <= fileSize
        else { return false }
        var raw = [UInt8](repeating: 0, count: Int(stored))
        var applied: UInt32 = 0
        guard H5Dread_chunk(handle.id, soma_h5p_default(), offset, &applied, &raw) >= 0 else {
          return false
        }
        if filters == 0 || applied & 1 != 0 {
          guard raw.count == chunkBytes else { return false }
        } else {
          guard let out = try? Gzip.decompress(raw, sizeHint: chunkBytes, limit: chunkBytes),
            out.count == chunkBytes
          else { return false }
        }
      }
      return true
    }

    /// The values converted to Double (integers and floats), in row-major order.
    func doubles(count: Int) -> [Double]? {
      guard storageHolds() else { return nil }
      var values = [Double](repeating: 0, count: count)
      let status = values.withUnsafeMutableBufferPointer {
        H5Dread(
          handle.id, soma_h5t_native_double(), soma_h5s_all(), soma_h5s_all(), soma_h5p_default(),
          $0.baseAddress)
      }
      return status >= 0 ? values : nil
    }

    /// The strings of a string dataset (variable or fixed length), in row-major order.
    func strings(count: Int) -> [String]? {
      guard storageHolds(), let fileType = Handle(H5Dget_type(handle.id), close: H5Tclose),
        H5Tget_class(fileType.id) == H5T_STRING
      else { return nil }
      if H5Tis_variable_str(fileType.id) > 0 {
        guard let memType = Handle(H5Tcopy(soma_h5t_c_s1()), close: H5Tclose),
          H5Tset_size(memType.id, soma_h5t_variable()) >= 0,
          H5Tset_cset(memType.id, H5Tget_cset(fileType.id)) >= 0,
          let space = Handle(H5Dget_space(handle.id), close: H5Sclose)
        else { return nil }
        var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        let status = pointers.withUnsafeMutableBufferPointer {
          H5Dread(
            handle.id, memType.id, soma_h5s_all(), soma_h5s_all(), soma_h5p_default(),
            $0.baseAddress)
        }
        guard status >= 0 else { return nil }
        let out = pointers.map { $0.map { String(cString: $0) } ?? "" }
        _ = pointers.withUnsafeMutableBufferPointer {
          H5Dvlen_reclaim(memType.id, space.id, soma_h5p_default(), $0.baseAddress)
        }
        return out
      }
      let size = H5Tget_size(fileType.id)
      guard size > 0, size <= 1 << 16, count * size <= HDF5.maximumElements,
        let memType = Handle(H5Tcopy(fileType.id), close: H5Tclose)
      else { return nil }
      var buffer = [UInt8](repeating: 0, count: count * size)
      let status = buffer.withUnsafeMutableBytes {
        H5Dread(
          handle.id, memType.id, soma_h5s_all(), soma_h5s_all(), soma_h5p_default(),
          $0.baseAddress)
      }
      guard status >= 0 else { return nil }
      return (0..<count).map { i in
        let bytes = buffer[(i * size)..<((i + 1) * size)]
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
      }
    }
  }
}
