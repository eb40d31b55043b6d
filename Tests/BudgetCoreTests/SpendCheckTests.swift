import BudgetCore
import Testing

// CONTRACT §6 `spend.check`: routes like an event, books nothing, refuses what would take the
// budget, its allocation or an ancestor over, anything on a PAUSED/CANCELLED/COMPLETED budget, and
// lower priorities first as a budget nears its total (SpendPolicy: LOW ≥ 90 %, MEDIUM ≥ 95 %,
// HIGH ≥ 98 %, CRITICAL only over 100 %).

private func instant(_ text: String) -> Timestamp {
    try! Timestamp(rfc3339: text)
}

private func amount(_ text: String) -> Money {
    try! Money(parsing: text)
}

/// Org (YEARLY 2026, 2000) with two March children: Ops (1000; OpenAI/API 400 CRITICAL,
/// Apify/SCRAPING 200 LOW, AWS/STORAGE 100 HIGH) and Data (1500, no allocations); Research,
/// UNLIMITED for metadata team=r, with OpenAI/API 50.
private func fixture() throws -> Ledger {
    var ledger = Ledger()
    let at = instant("2026-01-01T00:00:00Z")
    _ = try ledger.createBudget(Args([
        "id": "org", "name": "Org", "budgetType": "YEARLY", "totalAmount": 2000, "startDate": "2026-01-01",
    ]), id: "org", at: at)
    _ = try ledger.createBudget(Args([
        "name": "Ops", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01", "parentId": "org",
        "allocations": [
            ["id": "al_openai", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 400, "priority": "CRITICAL"],
            ["id": "al_apify", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 200, "priority": "LOW"],
            ["id": "al_aws", "platform": "AWS", "serviceType": "STORAGE", "allocatedAmount": 100, "priority": "HIGH"],
        ],
    ]), id: "ops", at: at)
    _ = try ledger.createBudget(Args([
        "name": "Data", "budgetType": "MONTHLY", "totalAmount": 1500, "startDate": "2026-03-01", "parentId": "org",
    ]), id: "data", at: at)
    _ = try ledger.createBudget(Args([
        "name": "Research", "budgetType": "UNLIMITED", "startDate": "2026-01-01", "selector": ["team": "r"],
        "allocations": [["id": "al_r_openai", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 50]],
    ]), id: "research", at: at)
    return ledger
}

/// A cost booked before the check: amount, budget, platform, service.
struct Spent: Sendable {
    var amount: String
    var budget: String
    var platform: String
    var serviceType: ServiceType

    init(_ amount: String, _ budget: String, _ platform: String = "GCP", _ serviceType: ServiceType = .processing) {
        self.amount = amount
        self.budget = budget
        self.platform = platform
        self.serviceType = serviceType
    }
}

struct SpendCase: Sendable, CustomTestStringConvertible {
    var name: String
    var spent: [Spent] = []
    /// `budget.update` args applied before the check (status changes).
    var updates: [JSONObject] = []
    var request: SpendRequest
    var at = "2026-03-15T12:00:00Z"
    var allowed: Bool
    var budgetId: String?
    /// The whole reason, or (with `contains`) a part of it.
    var reason: String
    var exactReason = true
    var priority: AllocationPriority?
    var remaining: String?
    var remainingAfter: String?
    var spentPercentageAfter: String?
    /// UNLIMITED: `remaining` and `remainingAfter` must be null.
    var nullRemaining = false

    var testDescription: String { name }
}

private func ask(_ platform: String, _ serviceType: ServiceType, _ value: String, budgetId: String? = nil, metadata: JSONObject? = nil) -> SpendRequest {
    SpendRequest(budgetId: budgetId, platform: platform, serviceType: serviceType, amount: amount(value), metadata: metadata)
}

private let spendCases: [SpendCase] = [
    SpendCase(
        name: "within everything: allowed, with what remains before and after",
        spent: [Spent("100", "ops", "OpenAI", .api)], request: ask("openai", .api, "50"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 150 of 1000 USD spent after this (15%)",
        priority: .critical, remaining: "900", remainingAfter: "850", spentPercentageAfter: "15"
    ),
    SpendCase(
        name: "no budget covers the time: allowed with budgetId null",
        request: ask("OpenAI", .api, "5"), at: "2027-06-01T00:00:00Z",
        allowed: true, budgetId: nil,
        reason: "no budget covers OpenAI/API at 2027-06-01T00:00:00Z: the spend would be stored UNALLOCATED"
    ),
    SpendCase(
        name: "an allocation may be spent exactly to its amount",
        spent: [Spent("390", "ops", "OpenAI", .api)], request: ask("OpenAI", .api, "10"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 400 of 1000 USD spent after this (40%)",
        priority: .critical, remaining: "610", remainingAfter: "600"
    ),
    SpendCase(
        name: "one nano over the allocation is refused, saying which allocation and how much it has",
        spent: [Spent("390", "ops", "OpenAI", .api)], request: ask("OpenAI", .api, "10.000000001"),
        allowed: false, budgetId: "ops",
        reason: "10.000000001 USD would take allocation OpenAI/API over its 400 USD (390 spent)",
        priority: .critical, remaining: "610", remainingAfter: "599.999999999"
    ),
    SpendCase(
        name: "over the budget's total is refused",
        spent: [Spent("990", "ops")], request: ask("GCP", .processing, "10.5"),
        allowed: false, budgetId: "ops", reason: "10.5 USD would take budget Ops over its 1000 USD (990 spent)",
        priority: .medium, remaining: "10", remainingAfter: "-0.5"
    ),
    SpendCase(
        name: "CRITICAL may take the budget to exactly 100 %",
        spent: [Spent("880", "ops")], request: ask("OpenAI", .api, "120"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 1000 of 1000 USD spent after this (100%)",
        priority: .critical, remainingAfter: "0", spentPercentageAfter: "100"
    ),
    SpendCase(
        name: "HIGH is refused from 98 %",
        spent: [Spent("880", "ops")], request: ask("AWS", .storage, "100"),
        allowed: false, budgetId: "ops",
        reason: "budget Ops would be at 98% of its 1000 USD after 100 USD; HIGH spend is refused from 98% (allocation AWS/STORAGE is HIGH)",
        priority: .high, spentPercentageAfter: "98"
    ),
    SpendCase(
        name: "HIGH just below 98 % is allowed",
        spent: [Spent("880", "ops")], request: ask("AWS", .storage, "99.99"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 979.99 of 1000 USD spent after this (98%)",
        priority: .high, spentPercentageAfter: "98"
    ),
    SpendCase(
        name: "spend without an allocation counts as MEDIUM: refused from 95 %",
        spent: [Spent("880", "ops")], request: ask("GCP", .processing, "70"),
        allowed: false, budgetId: "ops",
        reason: "budget Ops would be at 95% of its 1000 USD after 70 USD; MEDIUM spend is refused from 95% (no allocation matches GCP/PROCESSING, so it counts as MEDIUM)",
        priority: .medium
    ),
    SpendCase(
        name: "MEDIUM just below 95 % is allowed",
        spent: [Spent("880", "ops")], request: ask("GCP", .processing, "69.999999999"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 949.999999999 of 1000 USD spent after this (95%)",
        priority: .medium
    ),
    SpendCase(
        name: "LOW is refused from 90 %",
        spent: [Spent("880", "ops")], request: ask("Apify", .scraping, "20"),
        allowed: false, budgetId: "ops",
        reason: "budget Ops would be at 90% of its 1000 USD after 20 USD; LOW spend is refused from 90% (allocation Apify/SCRAPING is LOW)",
        priority: .low
    ),
    SpendCase(
        name: "LOW just below 90 % is allowed",
        spent: [Spent("880", "ops")], request: ask("Apify", .scraping, "19.99"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 899.99 of 1000 USD spent after this (90%)",
        priority: .low
    ),
    SpendCase(
        name: "an ancestor's total counts: Org would go over while Ops has room",
        spent: [Spent("1500", "data"), Spent("400", "ops")], request: ask("OpenAI", .api, "100.000000001"),
        allowed: false, budgetId: "ops",
        reason: "100.000000001 USD would take parent budget Org (org) over its 2000 USD (1900 spent)",
        priority: .critical, remaining: "600"
    ),
    SpendCase(
        name: "CRITICAL may take an ancestor to exactly 100 %",
        spent: [Spent("1500", "data"), Spent("400", "ops")], request: ask("OpenAI", .api, "100"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 500 of 1000 USD spent after this (50%)",
        priority: .critical
    ),
    SpendCase(
        name: "the priority thresholds apply to ancestors too",
        spent: [Spent("1500", "data"), Spent("300", "ops")], request: ask("Apify", .scraping, "1"),
        allowed: false, budgetId: "ops",
        reason: "parent budget Org (org) would be at 90.05% of its 2000 USD after 1 USD; LOW spend is refused from 90% (allocation Apify/SCRAPING is LOW)",
        priority: .low
    ),
    SpendCase(
        name: "a PAUSED budget refuses everything, even zero",
        updates: [["id": "ops", "status": "PAUSED"]], request: ask("OpenAI", .api, "0"),
        allowed: false, budgetId: "ops",
        reason: "budget Ops is PAUSED: no spend until an operator sets it ACTIVE again", priority: .critical
    ),
    SpendCase(
        name: "a PAUSED ancestor refuses its children's spend",
        updates: [["id": "org", "status": "PAUSED"]], request: ask("OpenAI", .api, "1"),
        allowed: false, budgetId: "ops",
        reason: "parent budget Org (org) is PAUSED: no spend until an operator sets it ACTIVE again", priority: .critical
    ),
    SpendCase(
        name: "an explicit CANCELLED budget routes nowhere: allowed with budgetId null (spend sent to it would be UNALLOCATED)",
        updates: [["id": "data", "status": "CANCELLED"]], request: ask("OpenAI", .api, "1", budgetId: "data"),
        allowed: true, budgetId: nil,
        reason: "budget Data (data) is CANCELLED; spend sent to it would be stored UNALLOCATED"
    ),
    SpendCase(
        name: "an explicit budget whose period does not cover now routes nowhere: allowed with budgetId null",
        request: ask("OpenAI", .api, "1", budgetId: "ops"), at: "2026-04-15T00:00:00Z",
        allowed: true, budgetId: nil,
        reason: "budget Ops (ops) does not cover 2026-04-15T00:00:00Z: its period is 2026-03-01 … 2026-03-31 and no renewal covers now; spend sent to it would be stored UNALLOCATED"
    ),
    SpendCase(
        name: "an EXCEEDED budget refuses even CRITICAL spend",
        spent: [Spent("1000.5", "ops")], request: ask("OpenAI", .api, "1"),
        allowed: false, budgetId: "ops", reason: "budget Ops is over its 1000 USD already (1000.5 spent)",
        priority: .critical, remaining: "-0.5", remainingAfter: "-1.5"
    ),
    SpendCase(
        // 0 takes nothing over: the reason says the budget is over already (it said "0 USD would take …").
        name: "an amount of 0 on an EXCEEDED budget is refused, saying it is over already",
        spent: [Spent("1000.5", "ops")], request: ask("OpenAI", .api, "0"),
        allowed: false, budgetId: "ops", reason: "budget Ops is over its 1000 USD already (1000.5 spent)",
        priority: .critical, remaining: "-0.5", remainingAfter: "-0.5"
    ),
    SpendCase(
        name: "an UNLIMITED budget is never over: remaining null, 0 %",
        spent: [Spent("900000", "research")], request: ask("GCP", .processing, "1000000", metadata: ["team": "r"]),
        allowed: true, budgetId: "research", reason: "budget Research is UNLIMITED; 1900000 USD spent after this",
        priority: .medium, spentPercentageAfter: "0", nullRemaining: true
    ),
    SpendCase(
        name: "but an UNLIMITED budget's allocations are",
        spent: [Spent("45", "research", "OpenAI", .api)], request: ask("OpenAI", .api, "5.5", metadata: ["team": "r"]),
        allowed: false, budgetId: "research", reason: "5.5 USD would take allocation OpenAI/API over its 50 USD (45 spent)",
        priority: .medium
    ),
    SpendCase(
        name: "an explicit id routes to that budget, not by the rules (Data, not Ops)",
        spent: [Spent("1400", "data")], request: ask("OpenAI", .api, "50", budgetId: "data"),
        allowed: false, budgetId: "data",
        reason: "budget Data would be at 96.67% of its 1500 USD after 50 USD; MEDIUM spend is refused from 95% (no allocation matches OpenAI/API, so it counts as MEDIUM)",
        exactReason: true, priority: .medium, remaining: "100", remainingAfter: "50"
    ),
    SpendCase(
        name: "an inactive allocation neither limits nor lends its priority",
        updates: [["id": "ops", "allocations": [
            ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 400, "priority": "CRITICAL", "isActive": false],
        ]]],
        request: ask("OpenAI", .api, "500"),
        allowed: true, budgetId: "ops", reason: "within budget Ops: 500 of 1000 USD spent after this (50%)",
        priority: .medium
    ),
]

struct SpendCheckTests {
    @Test("spend.check decisions", arguments: spendCases)
    func decisions(_ c: SpendCase) throws {
        var ledger = try fixture()
        for u in c.updates { _ = try ledger.updateBudget(Args(u), at: instant("2026-03-01T00:00:00Z")) }
        for s in c.spent {
            _ = ledger.book(amount: amount(s.amount), budgetId: s.budget, platform: s.platform, serviceType: s.serviceType, eventId: nil, at: instant("2026-03-10T00:00:00Z"))
        }
        let before = ledger.budgetsInOrder
        let d = try ledger.checkSpend(c.request, at: instant(c.at))
        #expect(d.allowed == c.allowed)
        #expect(d.budgetId == c.budgetId)
        if c.exactReason {
            #expect(d.reason == c.reason)
        } else {
            #expect(d.reason.contains(c.reason), "\(d.reason)")
        }
        if let p = c.priority { #expect(d.priority == p) }
        if let r = c.remaining { #expect(d.remaining == amount(r)) }
        if let r = c.remainingAfter { #expect(d.remainingAfter == amount(r)) }
        if let p = c.spentPercentageAfter { #expect(d.spentPercentageAfter == p) }
        if c.nullRemaining {
            #expect(d.remaining == nil)
            #expect(d.remainingAfter == nil)
            #expect(d.spentPercentage == "0")
        }
        // Nothing is booked.
        #expect(ledger.budgetsInOrder == before)
    }

    @Test("the reply carries the budget's and the allocation's figures before and after")
    func replyShape() throws {
        var ledger = try fixture()
        _ = ledger.book(amount: amount("250"), budgetId: "ops", platform: "OpenAI", serviceType: .api, eventId: nil, at: instant("2026-03-10T00:00:00Z"))
        let d = try ledger.checkSpend(ask("OPENAI", .api, "40"), at: instant("2026-03-15T00:00:00Z"))
        #expect(d.json == [
            "allowed": true, "budgetId": "ops", "budgetName": "Ops", "currency": "USD", "status": "ACTIVE",
            "priority": "CRITICAL", "spentPercentage": .number("25"), "spentPercentageAfter": .number("29"),
            "remaining": .number("750"), "remainingAfter": .number("710"),
            "allocation": [
                "id": "al_openai", "platform": "OpenAI", "serviceType": "API", "priority": "CRITICAL",
                "remaining": .number("150"), "remainingAfter": .number("110"),
            ],
            "reason": "within budget Ops: 290 of 1000 USD spent after this (29%)",
        ])
        let none = try ledger.checkSpend(ask("OpenAI", .api, "1"), at: instant("2030-01-01T00:00:00Z"))
        #expect(none.json["budgetId"] == .null)
        #expect(none.json["spentPercentage"] == .null)
        #expect(none.json["remaining"] == .null)
        #expect(none.json["allocation"] == .null)
    }

    @Test("an explicit unknown budgetId is NOT_FOUND")
    func unknownBudget() throws {
        let ledger = try fixture()
        do {
            _ = try ledger.checkSpend(ask("OpenAI", .api, "1", budgetId: "nope"), at: instant("2026-03-15T00:00:00Z"))
            Issue.record("expected NOT_FOUND")
        } catch {
            #expect(error == LedgerError(.notFound, "no budget nope"))
        }
    }

    static let requestFailures: [(JSONObject, String)] = [
        (["serviceType": "API", "amount": 1], "platform is required"),
        (["platform": "OpenAI", "amount": 1], "serviceType is required (API SCRAPING STORAGE PROCESSING MONITORING OTHER)"),
        (["platform": "OpenAI", "serviceType": "GPU", "amount": 1], "serviceType must be one of API SCRAPING STORAGE PROCESSING MONITORING OTHER"),
        (["platform": "OpenAI", "serviceType": "API"], "amount is required"),
        (["platform": "OpenAI", "serviceType": "API", "amount": -1], "amount: negative amount"),
        (["platform": "OpenAI", "serviceType": "API", "amount": "lots"], "amount: "),
        (["platform": "OpenAI", "serviceType": "API", "amount": 1, "metadata": "x"], "metadata must be an object"),
        (["platform": "OpenAI", "serviceType": "API", "amount": 1, "budgetId": 7], "budgetId must be a string"),
    ]

    @Test("request validation", arguments: requestFailures)
    func validation(_ args: JSONObject, _ message: String) {
        do {
            _ = try SpendRequest(Args(args))
            Issue.record("expected VALIDATION_FAILED: \(message)")
        } catch {
            #expect(error.code == .validationFailed)
            #expect(error.message.hasPrefix(message), "\(error.message)")
        }
    }

    @Test("amounts are exact: 0.1 + 0.2 on a 0.3 allocation is not over")
    func exactAmounts() throws {
        var ledger = Ledger()
        _ = try ledger.createBudget(Args([
            "name": "Tiny", "budgetType": "MONTHLY", "totalAmount": "0.3", "startDate": "2026-03-01",
            "allocations": [["platform": "X", "serviceType": "API", "allocatedAmount": "0.3", "priority": "CRITICAL"]],
        ]), id: "tiny", at: instant("2026-03-01T00:00:00Z"))
        _ = ledger.book(amount: amount("0.1"), budgetId: "tiny", platform: "X", serviceType: .api, eventId: nil, at: instant("2026-03-02T00:00:00Z"))
        #expect(try ledger.checkSpend(ask("X", .api, "0.2"), at: instant("2026-03-03T00:00:00Z")).allowed)
        #expect(try !ledger.checkSpend(ask("X", .api, "0.200000001"), at: instant("2026-03-03T00:00:00Z")).allowed)
    }
}
