// swift-tools-version:6.1
// Decode benchmark for budgetd's ingest hot path (issue 8): see README.md.
// Not part of the root package's build or CI.
//
// BudgetCore is compiled here from the root package's sources (Sources/BudgetCore is a
// symlink to ../../Sources/BudgetCore), as in Fuzz/: the root package exports no library.
import PackageDescription

let package = Package(
    name: "BudgetdBenchmarks",
    targets: [
        .target(name: "BudgetCore"),
        // Counts malloc/calloc/realloc/memalign calls by interposing them (glibc only).
        .target(name: "MallocCounter"),
        // The benchmark events (budgetctl bench's shapes), for DecodeBench and LedgerBench.
        .target(name: "BenchEvents"),
        .executableTarget(name: "DecodeBench", dependencies: ["BudgetCore", "MallocCounter", "BenchEvents"]),
        // The dedup key filter: ns per new event (a lookup and an insert).
        .executableTarget(name: "KeyFilterBench", dependencies: ["BudgetCore"]),
        // The ledger's part of the engine thread: route, price and book, ns per event.
        .executableTarget(name: "LedgerBench", dependencies: ["BudgetCore", "MallocCounter", "BenchEvents"]),
    ]
)
