@testable import BudgetCore
import Testing

// Issue 8: what `Ledger.book` does for every cost without copying a budget, hashing a history
// key twice or building strings: the in-place "nothing is due" check of `evaluate`, the changed
// history kept with the spend, allocations' history keys made once, the catalog's lookup by the
// spelling it was given, the multiplication of LOW_BUDGET's check. Each against the plain way.

private func t(_ text: String) -> Timestamp {
    try! Timestamp(rfc3339: text)
}

private func money(_ text: String) -> Money {
    try! Money(parsing: text)
}

/// Two small budgets with allocations and a parent (one without threshold alerts), settings
/// under which every alert type fires within a few weeks of costs.
private func makeLedger(inPlace: Bool) throws -> Ledger {
    var ledger = Ledger()
    ledger.evaluatesInPlace = inPlace
    ledger.settings.spikeMinAmount = money("1")
    ledger.settings.spikeBaselineDays = 3
    ledger.settings.spikeFactorPercent = 200
    // The allocations' spike check is the in-place path's too: on, so it is compared.
    ledger.settings.allocationSpikes = true
    let created = t("2026-03-01T00:00:00Z")
    for (id, total, parent) in [("p", 2000, nil), ("a", 300, "p"), ("b", 500, "p")] as [(String, Int, String?)] {
        let allocations: JSONValue = [
            ["id": .string("\(id)_openai"), "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 60],
            ["id": .string("\(id)_apify"), "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 40],
        ]
        var args: JSONObject = [
            "name": .string(id), "budgetType": "MONTHLY", "totalAmount": .number("\(total)"), "startDate": "2026-03-01",
            "allocations": allocations,
        ]
        if let parent { args["parentId"] = .string(parent) }
        if id == "b" {
            // No threshold alerts: BUDGET_EXCEEDED then comes alone, not with THRESHOLD_100.
            for key in ["alertThreshold80", "alertThreshold90", "alertThreshold100"] { args[key] = false }
        }
        _ = try ledger.createBudget(Args(args), id: id, at: created)
    }
    return ledger
}

/// SplitMix64: a fixed stream, so a failure is reproducible.
private struct Stream {
    var state: UInt64
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}

struct LedgerInPlaceTests {
    @Test("evaluate's in-place check changes nothing: 3,000 random costs and credits give the same messages and budgets as the full rules, and every alert type fires", arguments: [1, 2, 3] as [UInt64])
    func inPlaceCheckAgrees(seed: UInt64) throws {
        var fast = try makeLedger(inPlace: true)
        var full = try makeLedger(inPlace: false)
        var stream = Stream(state: seed)
        var fired: Set<String> = []
        let platforms: [(String, ServiceType)] = [("OpenAI", .api), ("Apify", .scraping), ("AWS", .storage)]
        let start = t("2026-03-01T00:00:00Z")
        for i in 0..<3_000 {
            // Costs spread over March's hours (quiet days, then busy hours: spikes), a few credits.
            let hour = Int64(i / 3 * 744 / 1_000)
            let now = start.adding(nanoseconds: hour * 3_600_000_000_000 + Int64(stream.next(3_600)) * 1_000_000_000)
            let busy = hour % 24 == 13 && hour > 72
            let cents = busy ? 300 + stream.next(2_000) : 1 + stream.next(40)
            let amount = stream.next(25) == 0 ? -Money(nanos: Int128(cents) * 10_000_000) : Money(nanos: Int128(cents) * 10_000_000)
            let budget = ["a", "b", "p"][stream.next(3)]
            let (platform, service) = platforms[stream.next(3)]
            let a = fast.adjust(amount: amount, budgetId: budget, platform: platform, serviceType: service, eventId: "e\(i)", costTime: now, at: now)
            let b = full.adjust(amount: amount, budgetId: budget, platform: platform, serviceType: service, eventId: "e\(i)", costTime: now, at: now)
            #expect(a == b, "cost \(i)")
            try #require(a.messages == b.messages, "cost \(i): \(a.messages.map(\.topic)) against \(b.messages.map(\.topic))")
            for m in a.messages { fired.insert(m.topic) }
            if i % 100 == 99 {
                for id in ["a", "b", "p"] { try #require(fast[id] == full[id], "budget \(id) after cost \(i)") }
                #expect(fast.takeChangedHistory().count == full.takeChangedHistory().count)
            }
        }
        for id in ["a", "b", "p"] { #expect(fast[id] == full[id]) }
        // The comparison means something only if every rule had its turn.
        for topic in ["alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED",
                      "alert.ALLOCATION_DEPLETED", "alert.SPENDING_SPIKE", "alert.LOW_BUDGET"] {
            #expect(fired.contains(topic), "\(topic) never fired: \(fired.sorted())")
        }
    }

    @Test("booking from routing's place (the budget's slot and its history places kept by position) agrees with booking by id, while budgets and allocations come and go", arguments: [4, 5, 6] as [UInt64])
    func routedBookingAgrees(seed: UInt64) throws {
        var routed = try makeLedger(inPlace: true)
        var plain = try makeLedger(inPlace: true)
        var stream = Stream(state: seed)
        let start = t("2026-03-01T00:00:00Z")
        let platforms: [(String, ServiceType)] = [("OpenAI", .api), ("Apify", .scraping), ("AWS", .storage), ("GCP", .processing)]
        var budgets = ["a", "b", "p"]
        var kept = 0
        func both(_ change: (inout Ledger) throws -> Void) throws {
            try change(&routed)
            try change(&plain)
        }
        for i in 0..<3_000 {
            let now = start.adding(nanoseconds: Int64(i / 3 * 744 / 1_000) * 3_600_000_000_000 + Int64(stream.next(3_600)) * 1_000_000_000)
            switch i % 500 {
            case 100:
                // A new budget: every kept slot is taken again.
                let id = "n\(i)"
                try both { _ = try $0.createBudget(Args([
                    "name": .string(id), "budgetType": "MONTHLY", "totalAmount": 400, "startDate": "2026-03-01", "parentId": "p",
                ]), id: id, at: now) }
                budgets.append(id)
            case 200:
                // An allocation no cost uses before the others, then (case 300) removed: the
                // allocations after it change places, so a kept place must not be used for another
                // key. The first time, also one the costs use (GCP), at the end.
                for id in budgets {
                    if i == 200 {
                        let gcp: JSONObject = ["budgetId": .string(id), "id": .string("\(id)_gcp"), "platform": "GCP", "serviceType": "PROCESSING", "allocatedAmount": 30]
                        try both { _ = try $0.addAllocation(Args(gcp), at: now) }
                    }
                    let args: JSONObject = ["budgetId": .string(id), "id": .string("\(id)_x\(i)"), "platform": .string("X\(i)"), "serviceType": "OTHER", "allocatedAmount": 1]
                    try both { _ = try $0.addAllocation(Args(args), at: now) }
                    try both { ledger in
                        var b = ledger.budgets[id]!
                        b.allocations.insert(b.allocations.removeLast(), at: 0)
                        ledger.budgets[id] = b
                    }
                }
            case 300:
                for id in budgets {
                    let x = "\(id)_x\(i - 100)"
                    try both { _ = try $0.removeAllocation(Args(["budgetId": .string(id), "id": .string(x)]), at: now) }
                }
            default: break
            }
            let budget = budgets[stream.next(budgets.count)]
            let (platform, service) = platforms[stream.next(platforms.count)]
            let amount = Money(nanos: Int128(1 + stream.next(4_000)) * 10_000_000)
            let target = try #require(routed.routeTarget(budgetId: budget, metadata: nil, time: now))
            #expect(target.budgetId == budget && target.currency == routed[budget]?.currency)
            let a = routed.adjust(amount: amount, budgetId: budget, platform: platform, serviceType: service, eventId: "e\(i)", costTime: now, at: now, routed: target)
            let b = plain.adjust(amount: amount, budgetId: budget, platform: platform, serviceType: service, eventId: "e\(i)", costTime: now, at: now)
            try #require(a == b, "cost \(i) to \(budget) on \(platform)")
            if i % 97 == 96 {
                let x = routed.takeChangedHistory(), y = plain.takeChangedHistory()
                #expect(Dictionary(x.map { ($0.bucket, $0.amount) }, uniquingKeysWith: +) == Dictionary(y.map { ($0.bucket, $0.amount) }, uniquingKeysWith: +), "history after cost \(i)")
            }
            if routed.historyPlaceCache.indices.contains(target.position), routed.historyPlaceCache[target.position] != nil { kept += 1 }
        }
        for id in budgets { #expect(routed[id] == plain[id], "budget \(id)") }
        #expect(Dictionary(routed.historyBuckets.map { ($0.bucket, $0.amount) }, uniquingKeysWith: +)
            == Dictionary(plain.historyBuckets.map { ($0.bucket, $0.amount) }, uniquingKeysWith: +))
        // The comparison means something only if places were kept for the budgets booked to (and
        // so used by their next costs: the test fails when their key check is removed).
        #expect(kept > 2_500)
        #expect(plain.historyPlaceCache.isEmpty)
    }

    @Test("the changed history is each (key, hour) a cost touched since the last take, with its amount now, once; then nothing")
    func changedHistory() throws {
        var ledger = try makeLedger(inPlace: true)
        var stream = Stream(state: 7)
        var expected: [HistoryBucket: Money] = [:]
        var totals: [HistoryBucket: Money] = [:]
        let start = t("2026-03-02T00:00:00Z")
        for round in 0..<4 {
            expected = [:]
            for i in 0..<500 {
                let now = start.adding(nanoseconds: Int64(stream.next(72)) * 3_600_000_000_000 + Int64(i))
                let budget = ["a", "b"][stream.next(2)]
                let (platform, service): (String, ServiceType) = stream.next(2) == 0 ? ("OpenAI", .api) : ("AWS", .storage)
                let amount = money("0.01")
                _ = ledger.book(amount: amount, budgetId: budget, platform: platform, serviceType: service, eventId: "r\(round)e\(i)", costTime: now, at: now)
                let hour = HourlySpend.hour(now)
                var keys = [budget, "p"]
                if platform == "OpenAI" { keys += ["\(budget)/\(budget)_openai", "p/p_openai"] }
                for key in keys {
                    let bucket = HistoryBucket(key: key, hour: hour)
                    totals[bucket, default: .zero] += amount
                    expected[bucket] = totals[bucket]
                }
            }
            let taken = ledger.takeChangedHistory()
            #expect(taken.count == expected.count, "round \(round)")
            #expect(Dictionary(taken.map { ($0.bucket, $0.amount) }, uniquingKeysWith: { _, _ in Money(nanos: -1) }) == expected, "round \(round)")
            #expect(ledger.takeChangedHistory().isEmpty)
        }
    }

    @Test("an allocation's history key follows its id and budget id")
    func allocationHistoryKey() {
        var a = Allocation(id: "al_1", budgetId: "b1", platform: "OpenAI", serviceType: .api, allocatedAmount: money("10"))
        #expect(a.historyKey == "b1/al_1")
        a.id = "al_2"
        #expect(a.historyKey == "b1/al_2")
        a.budgetId = "b2"
        #expect(a.historyKey == "b2/al_2")
        #expect(a.historyKey == Ledger.allocationKey(a.budgetId, a.id))
    }

    @Test("a catalog finds entries by the spelling it was given and by any other case alike, also after a later entry in another case")
    func catalogSpellings() throws {
        func entry(_ platform: String, _ model: String, _ from: String, _ price: String) throws -> PriceEntry {
            PriceEntry(platform: platform, model: model, effectiveFrom: t(from), unitPrices: ["inputTokens": try ExactDecimal(parsing: price)])
        }
        var catalog = Catalog(version: "test", entries: [
            try entry("OpenAI", "gpt-4o", "2026-01-01T00:00:00Z", "0.0000025"),
            try entry("Anthropic", "claude", "2026-01-01T00:00:00Z", "0.000003"),
        ])
        catalog.add(try entry("openai", "GPT-4o", "2026-06-01T00:00:00Z", "0.000002"))
        for (platform, model) in [("OpenAI", "gpt-4o"), ("openai", "GPT-4o"), ("OPENAI", "Gpt-4O")] {
            #expect(catalog.entry(platform: platform, model: model, at: t("2026-03-01T00:00:00Z"))?.unitPrices["inputTokens"] == (try ExactDecimal(parsing: "0.0000025")), "\(platform)/\(model)")
            #expect(catalog.entry(platform: platform, model: model, at: t("2026-07-01T00:00:00Z"))?.unitPrices["inputTokens"] == (try ExactDecimal(parsing: "0.000002")), "\(platform)/\(model)")
            #expect(catalog.entry(platform: platform, model: model, at: t("2025-12-31T00:00:00Z")) == nil)
        }
        #expect(catalog.entry(platform: "anthropic", model: "CLAUDE", at: t("2026-03-01T00:00:00Z"))?.model == "claude")
        #expect(catalog.entry(platform: "OpenAI", model: "claude", at: t("2026-03-01T00:00:00Z")) == nil)
    }

    @Test("LOW_BUDGET's multiplication agrees with the checked one, also at and past 2⁶³ and at Int128's ends")
    func multiplication() {
        let edges: [Int128] = [
            0, 1, -1, 3, -7, Int128(Int64.max), Int128(Int64.min), Int128(Int64.max) + 1, -(Int128(Int64.max) + 1),
            Int128(1) << 64, Int128(1) << 100, -(Int128(1) << 100), .max, .min, .max - 1, .min + 1,
        ]
        for a in edges {
            for b in edges {
                let (product, overflow) = Budget.multiplied(a, b)
                let checked = a.multipliedReportingOverflow(by: b)
                #expect(overflow == checked.overflow, "\(a) × \(b)")
                if !overflow { #expect(product == checked.partialValue, "\(a) × \(b)") }
            }
        }
    }
}
