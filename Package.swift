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
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // Entry point only: everything lives in the libraries below.
        .executableTarget(name: "wanlora", dependencies: ["WanLoRACLI"]),
        // One ParsableCommand per subcommand; turns options into library calls.
        .target(name: "WanLoRACLI", dependencies: [
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            "Support", "Manifest", "Statistics", "Reports", "DemoData",
            "Curation",
        ]),
        // Errors, progress, processes, small shared helpers.
        .target(name: "Support"),
        // Manifest model, byte-level CSV / JSON Lines readers, validation.
        .target(name: "Manifest", dependencies: ["Support"]),
        // Pure functions from manifests to typed results.
        .target(name: "Statistics", dependencies: ["Manifest", "Support"]),
        // Markdown, HTML and JSON renderers of the typed results.
        .target(name: "Reports", dependencies: ["Statistics", "Manifest", "Support", "Curation"]),
        // Demo datasets shaped like the MBC archive.
        .target(name: "DemoData", dependencies: ["Manifest", "Support"]),
        // Duplicates, quality, outliers, sampling, leak-free split, class weights (`curate`).
        .target(name: "Curation", dependencies: [
            "Manifest", "Statistics", "Support",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        .testTarget(name: "SupportTests", dependencies: ["Support"]),
        .testTarget(name: "ManifestTests", dependencies: ["Manifest"]),
        .testTarget(name: "StatisticsTests", dependencies: ["Statistics", "Manifest"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Statistics", "Manifest", "Curation"]),
        .testTarget(name: "DemoDataTests", dependencies: ["DemoData", "Manifest", "Statistics"]),
        .testTarget(name: "WanLoRACLITests", dependencies: ["WanLoRACLI", "Curation", "Manifest", "DemoData"]),
        .testTarget(name: "CurationTests", dependencies: ["Curation", "Manifest", "Statistics", "DemoData", "Support"]),
    ],
    swiftLanguageModes: [.v6]
)
