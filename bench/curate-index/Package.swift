// swift-tools-version: 6.0
// A benchmark of curate's near-duplicate index at archive scale, kept apart from the product:
// it compiles the product's libraries (symlinked from ../../Sources) into one release executable.
// Run: bench/curate_index.sh
import PackageDescription

let package = Package(
    name: "curate-index-bench",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: "https://github.com/apple/swift-crypto", from: "3.12.3")],
    targets: [
        .target(name: "Support"),
        .target(name: "Manifest", dependencies: ["Support"]),
        .target(name: "Statistics", dependencies: ["Manifest", "Support"]),
        .target(name: "Curation", dependencies: ["Manifest", "Statistics", "Support", .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(name: "IndexBench", dependencies: ["Curation", "Support"]),
    ],
    swiftLanguageModes: [.v6]
)
