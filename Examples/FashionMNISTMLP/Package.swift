// swift-tools-version: 6.2
// A spiking network of your own, trained on Fashion-MNIST with Soma's training loop.
import PackageDescription

let package = Package(
  name: "FashionMNISTMLP",
  dependencies: [
    // Soma itself, two directories up (named, because a path dependency is otherwise known by
    // its directory's name, which differs between checkouts). In your own project:
    // .package(url: "<Soma's Git URL>", branch: "main")
    .package(name: "Soma", path: "../..")
  ],
  targets: [
    .executableTarget(
      name: "FashionMNISTMLP", dependencies: [.product(name: "Soma", package: "Soma")])
  ]
)
