import BudgetCore
import BudgetStore
import Foundation
import Testing

// BudgetStore, migration v4: recommendation statuses and the event-time window scan.

private func t(_ text: String) -> Timestamp {
    try! Timestamp(rfc3339: text)
}

private func withStorePath<T>(_ body: (String) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("budgetd-opt-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    return try body(dir.appendingPathComponent("budgetd.sqlite").path)
}

private func storedEvent(_ id: String, time: String, cost: String?) -> StoredEvent {
    StoredEvent(
        source: "s", id: id, body: #"{"id":"\#(id)"}"#, state: cost == nil ? .unpriced : .allocated, reason: nil,
        platform: "OpenAI", serviceType: .api, model: nil, time: t(time), receivedAt: t("2026-03-31T00:00:00Z"),
        cost: cost.map { try! Money(parsing: $0) }, currency: cost == nil ? nil : "USD", budgetId: nil, costAllocationId: nil
    )
}

@Suite struct OptimizationStoreTests {
    @Test func statusesPersistAndSnapshotsDoNotResetThem() throws {
        try withStorePath { path in
            let snapshot: JSONValue = ["id": "o_1", "potentialSavings": .number("5")]
            do {
                let store = try Store(path: path)
                defer { store.close() }
                try store.write { w in
                    try w.saveOptimizationSnapshot(id: "o_1", snapshot: snapshot, at: t("2026-03-01T00:00:00Z"))
                    #expect(try w.reader.optimization(id: "o_1")?.status == .pending)
                    try w.setOptimizationStatus(id: "o_1", status: .approved, at: t("2026-03-02T00:00:00Z"))
                    // A later computation updates the figures and keeps the decision.
                    try w.saveOptimizationSnapshot(id: "o_1", snapshot: ["id": "o_1", "potentialSavings": .number("7")], at: t("2026-03-03T00:00:00Z"))
                }
            }
            let store = try Store(path: path)
            defer { store.close() }
            let stored = try store.read { r in try r.optimizations() }
            #expect(stored.count == 1)
            let o = try #require(stored["o_1"])
            #expect(o.status == .approved)
            #expect(o.snapshot["potentialSavings"]?.numberText == "7")
            #expect(o.updatedAt == t("2026-03-02T00:00:00Z"))
            #expect(o.computedAt == t("2026-03-03T00:00:00Z"))
            #expect(try store.read { r in try r.optimization(id: "o_2") } == nil)
        }
    }

    @Test func theWindowScanIsInEventTimeOrderAndInclusive() throws {
        try withStorePath { path in
            let store = try Store(path: path)
            defer { store.close() }
            try store.write { w in
                // Arrival order differs from event-time order.
                try w.insertEvent(storedEvent("late", time: "2026-03-20T00:00:00Z", cost: "1"))
                try w.insertEvent(storedEvent("before", time: "2026-02-28T23:59:59Z", cost: "1"))
                try w.insertEvent(storedEvent("first", time: "2026-03-01T00:00:00Z", cost: nil))
                try w.insertEvent(storedEvent("tie", time: "2026-03-20T00:00:00Z", cost: "2"))
                try w.insertEvent(storedEvent("after", time: "2026-03-31T00:00:01Z", cost: "1"))
            }
            var seen: [String] = []
            try store.read { r in
                try r.forEachUsageEvent(from: t("2026-03-01T00:00:00Z"), to: t("2026-03-31T00:00:00Z")) { seen.append($0.id) }
            }
            #expect(seen == ["first", "late", "tie"])
        }
    }
}
