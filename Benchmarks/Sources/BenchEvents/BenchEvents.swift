// The events of the micro-benchmarks, shared by DecodeBench and LedgerBench: budgetctl bench's
// own, from its BenchWorkload (BenchWorkload.swift is a symlink to
// Sources/budgetctl/BenchWorkload.swift).

/// Message `i`'s JSON frame, as `budgetctl bench` sends it (runId "b8", 10 budgets).
public func message(_ i: Int, runId: String = "b8", budgets: Int = 10, time: String = "2025-11-29T12:10:00Z") -> [UInt8] {
    BenchWorkload(runId: runId, count: i + 1, budgets: budgets).message(i, time: time)[1]
}
