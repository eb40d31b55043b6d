// swift-tools-version:6.1
// A libFuzzer target for budgetd's message decoder and validator (docs/reliability.md).
// Build and run it with ../scripts/fuzz.sh; it is not part of the root package's build.
//
// BudgetCore is compiled here from the root package's sources (Sources/BudgetCore is a symlink
// to ../../Sources/BudgetCore) rather than through a path dependency: the root package exports
// no library product, and the sanitizer flags must instrument BudgetCore itself anyway.
import PackageDescription

let package = Package(
    name: "BudgetdFuzz",
    targets: [
        .target(name: "BudgetCore"),
        .executableTarget(
            name: "EventFuzzer",
            dependencies: ["BudgetCore"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
