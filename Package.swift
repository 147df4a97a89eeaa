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
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
    ],
    targets: [
        // Entry point only: everything lives in the libraries below.
        .executableTarget(name: "wanlora", dependencies: ["WanLoRACLI"]),
        // One ParsableCommand per subcommand; turns options into library calls.
        .target(name: "WanLoRACLI", dependencies: [
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            "Support", "Manifest", "Statistics", "Reports", "DemoData", "Config", "Planner", "Launch",
        ]),
        // Errors, progress, processes, small shared helpers.
        .target(name: "Support"),
        // Manifest model, byte-level CSV / JSON Lines readers, validation.
        .target(name: "Manifest", dependencies: ["Support"]),
        // Pure functions from manifests to typed results.
        .target(name: "Statistics", dependencies: ["Manifest", "Support"]),
        // Markdown, HTML and JSON renderers of the typed results.
        .target(name: "Reports", dependencies: ["Statistics", "Manifest", "Support"]),
        // Demo datasets shaped like the MBC archive.
        .target(name: "DemoData", dependencies: ["Manifest", "Support"]),
        // The one TOML configuration format, presets, defaults, resolved JSON for the engine.
        .target(name: "Config", dependencies: [
            "Support",
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        // Architecture and GPU catalogs; LoRA, memory, FLOP and time model; plan checks.
        .target(name: "Planner", dependencies: ["Support", "Config"]),
        // The engine's launch: torchrun command, Slurm script, environment policy, dry-run text.
        .target(name: "Launch", dependencies: ["Support", "Planner"]),

        .testTarget(name: "SupportTests", dependencies: ["Support"]),
        .testTarget(name: "ManifestTests", dependencies: ["Manifest"]),
        .testTarget(name: "StatisticsTests", dependencies: ["Statistics", "Manifest"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Statistics", "Manifest"]),
        .testTarget(name: "DemoDataTests", dependencies: ["DemoData", "Manifest", "Statistics"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "Support"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Config", "Support"]),
        .testTarget(name: "LaunchTests", dependencies: ["Launch", "Planner", "Config"]),
        .testTarget(name: "WanLoRACLITests", dependencies: ["WanLoRACLI"]),
    ],
    swiftLanguageModes: [.v6]
)
