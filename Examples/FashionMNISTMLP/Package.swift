// swift-tools-version: 6.2
// A spiking network of your own, trained on Fashion-MNIST with Soma's training loop.
import PackageDescription

let package = Package(
  name: "FashionMNISTMLP",
  dependencies: [.package(name: "Soma", path: "../..")],  // Soma itself; use its Git URL in your project
  targets: [.executableTarget(name: "FashionMNISTMLP", dependencies: [.product(name: "Soma", package: "Soma")])]
)
