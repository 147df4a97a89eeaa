// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "wanlora",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "wanlora", targets: ["wanlora"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", exact: "0.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // Entry point only: everything lives in the libraries below.
        .executableTarget(name: "wanlora", dependencies: ["WanLoRACLI"]),
        // One ParsableCommand per subcommand; turns options into library calls.
        .target(
            name: "WanLoRACLI",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "Support", "Manifest", "Statistics", "Reports", "DemoData", "Config", "Planner", "Runs", "Media",
                "Sampling",
                "Curation", "Evaluation", "Launch",
            ]),
        // Errors, progress, child processes (swift-subprocess), paths, small shared helpers.
        .target(
            name: "Support",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess")
            ]),
        // Manifest model, byte-level CSV / JSON Lines readers, validation.
        .target(name: "Manifest", dependencies: ["Support"]),
        // Pure functions from manifests to typed results.
        .target(name: "Statistics", dependencies: ["Manifest", "Support", "CPUHints"]),
        // C: the CPU's cache prefetch, which Swift does not expose (the word table of `analyze`).
        .target(name: "CPUHints"),
        // Markdown, HTML and JSON renderers of the typed results.
        .target(name: "Reports", dependencies: ["Statistics", "Manifest", "Support", "Curation"]),
        // Demo datasets shaped like the MBC archive.
        .target(name: "DemoData", dependencies: ["Manifest", "Support", "Media"]),
        // ffprobe/ffmpeg: probing, clip planning, filter graphs, the resumable parallel job runner.
        .target(
            name: "Media",
            dependencies: [
                "Manifest", "Support",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        // The one TOML configuration format, presets, defaults, resolved JSON for the engine.
        .target(
            name: "Config",
            dependencies: [
                "Support",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]),
        // Architecture and GPU catalogs; LoRA, memory, FLOP and time model; plan checks.
        .target(name: "Planner", dependencies: ["Support", "Config"]),
        // The engine's launch: torchrun command, Slurm script, environment policy, dry-run text.
        .target(name: "Launch", dependencies: ["Support", "Planner"]),
        // Run folders; EngineStage, the one engine stage of cache, train, sample and evaluate: the launch
        // (python or torchrun via Launch), the event stream of every stage, teardown and outcome.
        .target(name: "Runs", dependencies: ["Support", "Config", "Planner", "Launch"]),
        // wanlora sample: prompt sources, the engine's sample job, the HTML gallery.
        .target(name: "Sampling", dependencies: ["Support", "Manifest", "Config", "Planner"]),
        // Duplicates, quality, outliers, sampling, leak-free split, class weights (`curate`).
        .target(
            name: "Curation",
            dependencies: [
                "Manifest", "Statistics", "Support",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // wanlora evaluate: the engine's evaluate.json, metrics.json and its HTML page.
        .target(name: "Evaluation", dependencies: ["Support", "Config"]),

        .testTarget(name: "SupportTests", dependencies: ["Support"]),
        .testTarget(name: "ManifestTests", dependencies: ["Manifest"]),
        .testTarget(name: "StatisticsTests", dependencies: ["Statistics", "Manifest", "Support"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Statistics", "Manifest", "Curation"]),
        .testTarget(name: "DemoDataTests", dependencies: ["DemoData", "Manifest", "Statistics"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "Support"]),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Config", "Support"]),
        .testTarget(name: "LaunchTests", dependencies: ["Launch", "Planner", "Config"]),
        .testTarget(name: "RunsTests", dependencies: ["Runs", "Config", "Planner", "Support", "Launch"]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling", "Planner", "Config", "Manifest"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "Manifest", "Support", "DemoData"]),
        .testTarget(name: "WanLoRACLITests", dependencies: ["WanLoRACLI", "Curation", "Manifest", "DemoData"]),
        .testTarget(
            name: "CurationTests", dependencies: ["Curation", "Manifest", "Statistics", "DemoData", "Support"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Config", "Support"]),
        // The four HTML pages in headless Chromium: Korean glyphs, phone widths, code spans; screenshots.
        .testTarget(
            name: "PagesTests",
            dependencies: ["Reports", "Statistics", "Manifest", "Sampling", "Evaluation", "Runs", "Support"]),
    ],
    swiftLanguageModes: [.v6]
)
