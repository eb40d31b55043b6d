import BudgetCore
import Testing

// The routing index (issue 8) must give exactly what a scan of every budget gives.

@Suite struct RouteIndexTests {
    /// Random budgets (selectors on a few keys, string and number values, no selector, several
    /// periods and statuses) and random events: the indexed route equals the scanning route.
    @Test func indexedRoutingEqualsScanning() throws {
        var rng = SplitMix64(state: 0x5EED)
        // Keys of equal lengths ("team", "tier") and one past 63 bytes: the index skips metadata
        // keys by length before it hashes them.
        let keys = ["team", "tier", "project", "env", "n", String(repeating: "k", count: 70), String(repeating: "k", count: 64)]
        let values = ["a", "b", "c"]
        func pair(_ key: String) -> String {
            key == "n" ? "\"n\": \(rng.below(3))" : "\"\(key)\": \"\(values[rng.below(values.count)])\""
        }
        var routed = 0, total = 0
        for round in 0..<40 {
            var fixtures: [RouteBudget] = []
            for i in 0..<(5 + rng.below(40)) {
                var selector: String?
                switch rng.below(4) {
                case 0: selector = nil
                default:
                    let chosen = Array(Set((0..<(1 + rng.below(3))).map { _ in keys[rng.below(keys.count)] })).sorted()
                    selector = "{" + chosen.map(pair).joined(separator: ", ") + "}"
                }
                let starts = ["2026-03-01", "2026-01-01", "2026-03-15"]
                let types: [BudgetType] = [.monthly, .quarterly, .yearly]
                fixtures.append(RouteBudget(
                    id: "b\(round)-\(i)", type: types[rng.below(types.count)], start: starts[rng.below(starts.count)],
                    selector: selector, status: rng.below(6) == 0 ? .cancelled : .active, ordinal: Int64(i + 1)
                ))
            }
            let budgets = try fixtures.map { try $0.make() }
            let ledger = Ledger(budgets: budgets)
            for _ in 0..<50 {
                let chosen = keys.filter { _ in rng.below(2) == 0 }
                let metadata = try #require(JSON.parse("{" + chosen.map(pair).joined(separator: ", ") + "}").objectValue)
                let time = try Timestamp(rfc3339: ["2026-03-10T00:00:00Z", "2026-03-20T00:00:00Z", "2026-05-01T00:00:00Z"][rng.below(3)])
                let scanned = Router.route(budgetId: nil, metadata: metadata, time: time, budgets: budgets) { id in
                    budgets.first { $0.id == id }
                }
                #expect(ledger.route(budgetId: nil, metadata: metadata, time: time) == scanned, "metadata \(metadata)")
                total += 1
                if scanned != nil { routed += 1 }
            }
        }
        // The cases are not all UNALLOCATED (nor all routed): the comparison means something.
        #expect(routed > total / 4 && routed < total)
    }

    /// A budget whose selector changes is filed again: the old pair no longer routes to it.
    @Test func refiledWhenSelectorChanges() throws {
        var ledger = Ledger()
        let t = try Timestamp(rfc3339: "2026-03-10T00:00:00Z")
        let created = try ledger.createBudget(Args([
            "name": "a", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-03-01", "selector": ["team": "x"],
        ]), id: "b1", at: t)
        #expect(created.id == "b1")
        #expect(ledger.route(budgetId: nil, metadata: ["team": "x"], time: t) == "b1")
        _ = try ledger.updateBudget(Args(["id": "b1", "selector": ["team": "y"]]), at: t)
        #expect(ledger.route(budgetId: nil, metadata: ["team": "x"], time: t) == nil)
        #expect(ledger.route(budgetId: nil, metadata: ["team": "y"], time: t) == "b1")
        // Another key (another length): the old one no longer routes, the new one does.
        _ = try ledger.updateBudget(Args(["id": "b1", "selector": ["project": "y"]]), at: t)
        #expect(ledger.route(budgetId: nil, metadata: ["team": "y"], time: t) == nil)
        #expect(ledger.route(budgetId: nil, metadata: ["team": "y", "project": "y"], time: t) == "b1")
    }
}
