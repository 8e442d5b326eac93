// Without the package trait `MPI` (`swift build --disable-default-traits`) this module is empty
// and needs no MPI installed.
#if MPI
  internal import CMPI
  import Foundation
  import SomaTrain

  /// The processes of an MPI job (`mpirun -np N …`) as a `ProcessGroup` for the training loop:
  /// `MPI_COMM_WORLD`, its rank and size, and `MPI_Allreduce` with `MPI_SUM` (`MPI_Iallreduce`
  /// for the buckets started during the backward pass; synchronised BatchNorm's reductions
  /// inside the passes on a duplicate of the communicator, so they never pair with a bucket's).
  ///
  /// ```swift
  /// import SomaMPI
  /// let group = try MPIProcessGroup.launched()       // nil when not started by mpirun
  /// trainer.processGroup = group
  /// defer { group?.finalize() }
  /// try trainer.fit(train: data.train, test: data.test)
  /// ```
  ///
  /// MPI is initialised once per process (`MPI_THREAD_FUNNELED`: only the thread that runs the
  /// training loop calls MPI). Errors on the communicator are returned, not fatal, so a failed
  /// reduction throws `TrainError` with MPI's own words.
  public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int

    /// True when an MPI launcher started this process: Open MPI's `mpirun`
    /// (`OMPI_COMM_WORLD_SIZE`), a PMIx launcher (`PMIX_RANK`) or MPICH's Hydra (`PMI_RANK`).
    public static var isLaunched: Bool {
      let env = ProcessInfo.processInfo.environment
      return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"].contains { env[$0] != nil }
    }

    /// The job's processes when `mpirun` started this one (MPI is then initialised), else nil, so
    /// a program run on its own never touches MPI.
    public static func launched() throws -> MPIProcessGroup? {
      isLaunched ? try MPIProcessGroup() : nil
    }

    /// Initialises MPI (once per process) and joins `MPI_COMM_WORLD`.
    public init() throws {
      var initialized: Int32 = 0
      MPI_Initialized(&initialized)
      if initialized == 0 {
        var provided: Int32 = 0
        try Self.check(
          MPI_Init_thread(nil, nil, soma_mpi_thread_funneled(), &provided), "MPI_Init_thread")
      }
      soma_mpi_errors_return()
      var r: Int32 = 0
      var n: Int32 = 0
      try Self.check(MPI_Comm_rank(soma_mpi_comm_world(), &r), "MPI_Comm_rank")
      try Self.check(MPI_Comm_size(soma_mpi_comm_world(), &n), "MPI_Comm_size")
      (rank, size) = (Int(r), Int(n))
      // Collective: every process constructs its group once, at the start.
      var comm: MPI_Comm? = nil
      try Self.check(MPI_Comm_dup(soma_mpi_comm_world(), &comm), "MPI_Comm_dup")
      inPass = comm!
    }

    /// The communicator of `allReduceSumInPass`: `MPI_COMM_WORLD` duplicated (its error
    /// handler too), a context of its own. MPI matches collectives on a communicator by their
    /// order alone; BatchNorm's blocking reductions in the backward pass run while the buckets'
    /// `MPI_Iallreduce`s on `MPI_COMM_WORLD` are in flight, and on this communicator the two
    /// kinds cannot be matched with each other, whatever order a process issues them in.
    let inPass: MPI_Comm

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
      try reduce(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, soma_mpi_float())
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
      try reduce(UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, soma_mpi_double())
    }

    /// `MPI_Allreduce` on `inPass`.
    public func allReduceSumInPass(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
      try reduce(
        UnsafeMutableRawPointer(buffer.baseAddress), buffer.count, soma_mpi_double(), on: inPass)
    }

    func reduce(
      _ p: UnsafeMutableRawPointer?, _ count: Int, _ type: MPI_Datatype,
      on comm: MPI_Comm = soma_mpi_comm_world()
    ) throws {
      guard count > 0, let p else { return }
      precondition(count <= Int(Int32.max), "MPIProcessGroup: \(count) values in one reduction")
      try Self.check(
        MPI_Allreduce(soma_mpi_in_place(), p, Int32(count), type, soma_mpi_sum(), comm),
        "MPI_Allreduce")
    }

    /// The non-blocking reductions started and not yet waited for.
    var requests: [MPI_Request?] = []

    /// `MPI_Iallreduce` (sum, in place): returns at once; `progressReductions()` (`MPI_Testall`)
    /// moves it on, since Open MPI 4.1 advances non-blocking collectives only inside MPI calls
    /// (its `ompi_info` says "OMPI progress: no"), and `waitForReductions()` (`MPI_Waitall`)
    /// ends it. For a given count and number of processes the sums are added in a fixed order,
    /// whenever the messages arrive.
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
      guard buffer.count > 0, let p = buffer.baseAddress else { return }
      precondition(
        buffer.count <= Int(Int32.max), "MPIProcessGroup: \(buffer.count) values in one reduction")
      var request = soma_mpi_request_null()
      try Self.check(
        MPI_Iallreduce(
          soma_mpi_in_place(), UnsafeMutableRawPointer(p), Int32(buffer.count), soma_mpi_float(),
          soma_mpi_sum(), soma_mpi_comm_world(), &request),
        "MPI_Iallreduce")
      requests.append(request)
    }

    public func progressReductions() throws {
      guard !requests.isEmpty else { return }
      var done: Int32 = 0
      try Self.check(soma_mpi_testall(Int32(requests.count), &requests, &done), "MPI_Testall")
    }

    public func waitForReductions() throws {
      guard !requests.isEmpty else { return }
      defer { requests.removeAll(keepingCapacity: true) }
      try Self.check(soma_mpi_waitall(Int32(requests.count), &requests), "MPI_Waitall")
    }

    /// Waits until every process gets here.
    public func barrier() throws {
      try Self.check(MPI_Barrier(soma_mpi_comm_world()), "MPI_Barrier")
    }

    /// Ends MPI in this process (call once, on every process, when done; nothing MPI afterwards).
    public func finalize() {
      var finalized: Int32 = 0
      MPI_Finalized(&finalized)
      guard finalized == 0 else { return }
      var comm: MPI_Comm? = inPass
      MPI_Comm_free(&comm)
      MPI_Finalize()
    }

    /// Stops every process of the job with exit status `code` (after an error on one of them,
    /// which the others cannot know about).
    public func abort(code: Int32) -> Never {
      MPI_Abort(soma_mpi_comm_world(), code)
      exit(code)
    }

    static func check(_ code: Int32, _ call: String) throws {
      guard code != soma_mpi_success() else { return }
      var text = [CChar](repeating: 0, count: Int(soma_mpi_max_error_string()) + 1)
      var length: Int32 = 0
      MPI_Error_string(code, &text, &length)
      let bytes = text.prefix(Int(length)).map { UInt8(bitPattern: $0) }
      let why = String(decoding: bytes, as: UTF8.self)
      throw TrainError(
        "\(call) failed: \(why.isEmpty ? "error \(code)" : why) (has another process of the job"
          + " stopped?)")
    }
  }
#endif
