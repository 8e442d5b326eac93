// swift-tools-version: 6.2
// libFuzzer targets for Soma's file parsers. A separate package so the root manifest stays
// as it is; build and run them with ../scripts/fuzz.sh.
import PackageDescription

let targets = [
  "FuzzIDX", "FuzzGzip", "FuzzSafeTensors", "FuzzNPY", "FuzzJSON", "FuzzCheckpoint", "FuzzNIR",
]

let package = Package(
  name: "SomaFuzz",
  products: targets.map { .executable(name: $0, targets: [$0]) },
  dependencies: [.package(name: "Soma", path: "..")],
  targets: targets.map {
    .executableTarget(
      name: $0,
      dependencies: [
        "FuzzDriver", .product(name: "SomaData", package: "Soma"),
        .product(name: "SomaNN", package: "Soma"), .product(name: "SomaTrain", package: "Soma"),
      ] + ($0 == "FuzzNIR" ? [.product(name: "SomaNIR", package: "Soma")] : []))
  } + [.target(name: "FuzzDriver")]
)
