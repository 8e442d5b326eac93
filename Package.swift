// swift-tools-version: 6.2
import PackageDescription

let package = Package(
  name: "Soma",
  products: [
    .library(name: "Soma", targets: ["Soma"]),
    .library(name: "SomaTensor", targets: ["SomaTensor"]),
    .library(name: "SomaSurrogate", targets: ["SomaSurrogate"]),
    .library(name: "SomaNN", targets: ["SomaNN"]),
    .library(name: "SomaData", targets: ["SomaData"]),
    .library(name: "SomaTrain", targets: ["SomaTrain"]),
    // Not in the `Soma` umbrella: NIR needs the HDF5 C library, which the rest of Soma does not.
    .library(name: "SomaNIR", targets: ["SomaNIR"]),
    // Not in the `Soma` umbrella either: data-parallel training over Open MPI.
    .library(name: "SomaMPI", targets: ["SomaMPI"]),
    .executable(name: "soma", targets: ["soma"]),
  ],
  // `MPI` (on by default) links the `soma` tool with Open MPI so that `mpirun -np N soma train`
  // trains data-parallel; `swift build --disable-default-traits` builds the tool without it.
  // The libraries never need it: only the `SomaMPI` product links Open MPI.
  traits: [
    .trait(name: "MPI", description: "soma train runs data-parallel under mpirun (Open MPI)"),
    .default(enabledTraits: ["MPI"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
  ],
  targets: [
    .systemLibrary(
      name: "COpenBLAS",
      path: "Modules/COpenBLAS",
      pkgConfig: "openblas",
      providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
    ),
    // HDF5 for NIR files. Debian's libhdf5-dev installs hdf5.pc (through the alternatives
    // system, pointing at the serial build's hdf5-serial.pc), as other distributions and
    // Homebrew do under the same name.
    .systemLibrary(
      name: "CHDF5", path: "Modules/CHDF5", pkgConfig: "hdf5",
      providers: [.apt(["libhdf5-dev"]), .brew(["hdf5"])]),
    // Open MPI for data-parallel training. Debian's libopenmpi-dev installs ompi-c.pc (as
    // Homebrew's open-mpi does); the shim wraps what mpi.h defines as macros.
    .systemLibrary(
      name: "CMPI", path: "Modules/CMPI", pkgConfig: "ompi-c",
      providers: [.apt(["libopenmpi-dev"]), .brew(["open-mpi"])]),
    .systemLibrary(
      name: "CZlib", path: "Modules/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    // Small C kernels compiled with target_clones so hot loops get AVX2/AVX-512 code paths
    // without any unsafe compiler flags.
    .target(name: "SomaKernels", path: "Sources/SomaKernels"),
    .target(
      name: "SomaTensor",
      dependencies: [
        "COpenBLAS", "SomaKernels",
        .product(name: "RealModule", package: "swift-numerics"),
      ],
      linkerSettings: [.linkedLibrary("m")]
    ),
    .target(
      name: "SomaSurrogate",
      dependencies: ["SomaTensor", "SomaKernels", .product(name: "RealModule", package: "swift-numerics")]
    ),
    .target(
      name: "SomaNN",
      dependencies: ["SomaTensor", "SomaSurrogate", "SomaKernels", "COpenBLAS"]
    ),
    .target(name: "SomaData", dependencies: ["SomaTensor", "CZlib"]),
    // The training loop of `soma train` as a library: a user's own `Sequential` trains with it.
    .target(name: "SomaTrain", dependencies: ["SomaTensor", "SomaSurrogate", "SomaNN", "SomaData", "SomaKernels"]),
    .target(
      name: "Soma", dependencies: ["SomaTensor", "SomaSurrogate", "SomaNN", "SomaData", "SomaTrain"]),
    // NIR (Neuromorphic Intermediate Representation) graphs: HDF5 files, Soma's layers to and
    // from NIR's continuous-time nodes.
    .target(
      name: "SomaNIR", dependencies: ["CHDF5", "SomaTensor", "SomaSurrogate", "SomaNN", "SomaData", "SomaTrain"]),
    // SomaTrain's `ProcessGroup` over MPI_COMM_WORLD (`mpirun -np N`); empty without the MPI
    // trait, so that a build without Open MPI installed still builds every target.
    .target(
      name: "SomaMPI",
      dependencies: [.target(name: "CMPI", condition: .when(traits: ["MPI"])), "SomaTrain"]),
    // The command-line tool's logic lives in a library so tests can drive it in-process.
    .target(
      name: "SomaCLI",
      dependencies: [
        "Soma", "SomaTrain", "SomaNIR", "COpenBLAS", "SomaKernels",
        .target(name: "SomaMPI", condition: .when(traits: ["MPI"])),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(name: "soma", dependencies: ["SomaCLI"]),
    .target(
      name: "_TestSupport",
      dependencies: ["SomaTensor"],
      path: "Tests/_TestSupport"
    ),
    .testTarget(name: "SomaTensorTests", dependencies: ["SomaTensor", "_TestSupport"]),
    .testTarget(
      name: "SomaSurrogateTests",
      dependencies: ["SomaSurrogate", "_TestSupport"],
      resources: [.copy("Fixtures")]
    ),
    .testTarget(
      name: "SomaNNTests",
      dependencies: ["SomaNN", "_TestSupport"],
      resources: [.copy("Fixtures")]
    ),
    .testTarget(name: "SomaDataTests", dependencies: ["SomaData", "_TestSupport"]),
    .testTarget(name: "SomaTrainTests", dependencies: ["SomaTrain", "Soma", "SomaCLI", "_TestSupport"]),
    .testTarget(
      name: "SomaNIRTests",
      dependencies: ["SomaNIR", "Soma", "SomaCLI", "_TestSupport"],
      resources: [.copy("Fixtures")]
    ),
    .testTarget(name: "SomaCLITests", dependencies: ["SomaCLI", "Soma", "_TestSupport"]),
  ]
)
