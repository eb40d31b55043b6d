// swift-tools-version:6.1
import PackageDescription

/// Upcoming features applied to every target of ours (swift-log's habit).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "budgetd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "budgetd", targets: ["budgetd"]),
        .executable(name: "budgetctl", targets: ["budgetctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // libzmq's C API as a system library (apt: libzmq3-dev). No pkgConfig: Debian's libzmq.pc
        // drags in krb5's -isystem flag, which SwiftPM refuses with a warning on every build; the
        // header and library are in the default search paths.
        .systemLibrary(
            name: "CZMQ",
            providers: [.apt(["libzmq3-dev"])]
        ),
        // A thin, owned wrapper over libzmq: no domain types.
        .target(name: "ZMQ", dependencies: ["CZMQ"], swiftSettings: swiftSettings),
        // The pure domain core: no I/O, value types, injected clock.
        .target(name: "BudgetCore", swiftSettings: swiftSettings),
        // SQLite persistence through GRDB.
        .target(
            name: "BudgetStore",
            dependencies: [
                "BudgetCore", .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API for the few statements of the ingest path (HotStatements.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // A prefetch hint (C's __builtin_prefetch), for the engine's key filter reads.
        .target(name: "CPrefetch"),
        // SIGTERM and SIGINT remembered from before main until the service group handles them.
        .target(name: "CEarlySignal"),
        // The daemon's services: ingest, control, outbound, engine.
        .target(
            name: "BudgetDaemon",
            dependencies: [
                "BudgetCore", "BudgetStore", "ZMQ", "CPrefetch",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "budgetd",
            dependencies: [
                "BudgetDaemon", "BudgetCore", "CEarlySignal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            // jemalloc as the daemon's malloc (apt: libjemalloc-dev): its threads free what other
            // threads allocated (the decode thread's strings, on the engine thread) thousands of
            // times a second, which glibc's malloc does under its arena lock with consolidation
            // passes. docs/benchmarks.md, "Twelfth session".
            linkerSettings: [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]
        ),
        .executableTarget(
            name: "budgetctl",
            dependencies: [
                "ZMQ", "BudgetCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ZMQTests", dependencies: ["ZMQ"], swiftSettings: swiftSettings),
        .testTarget(name: "BudgetCoreTests", dependencies: ["BudgetCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BudgetStoreTests",
            dependencies: ["BudgetStore", "BudgetCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ZMQ", "BudgetCore", "budgetd", "budgetctl"],
            swiftSettings: swiftSettings
        ),
    ]
)
