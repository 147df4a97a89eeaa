// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "wanlora",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "wanlora", targets: ["wanlora"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Entry point only: everything lives in the libraries below.
        .executableTarget(name: "wanlora", dependencies: ["WanLoRACLI"]),
        // One ParsableCommand per subcommand; turns options into library calls.
        .target(name: "WanLoRACLI", dependencies: [
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            "Support",
        ]),
        // Errors, progress, processes, small shared helpers.
        .target(name: "Support"),

        .testTarget(name: "SupportTests", dependencies: ["Support"]),
    ],
    swiftLanguageModes: [.v6]
)
