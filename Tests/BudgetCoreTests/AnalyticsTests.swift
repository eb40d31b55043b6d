import BudgetCore
import Testing

// CONTRACT §6 `analytics`: amounts over budgets without a (selected) parent so nothing counts
// twice, one currency, a date range that selects overlapping budgets and restricts the rollup's
// days; UNLIMITED spend counts in totalSpent, platforms and months (and so in budgetUtilization's
// numerator) but not in totals or the budgets' percentages.

private func instant(_ text: String) -> Timestamp {
    try! Timestamp(rfc3339: text)
}

private func amount(_ text: String) -> Money {
    try! Money(parsing: text)
}

private func day(_ text: String) -> CivilDate {
    try! CivilDate(parsing: text)
}

/// The books of the tests, with the rollup rows the store would hold for them.
///
/// | budget | type | period | total | parent | spend |
/// | org | YEARLY | 2026 | 12000 | — | its children's: 1950 |
/// | mar | MONTHLY | 2026-03 | 1000 | org | OpenAI 850 on 03-10 (85 %: near the limit) |
/// | apr | MONTHLY | 2026-04 | 1000 | org | Apify 600 on 04-02, "apify" 500 on 04-20 (110 %: EXCEEDED) |
/// | solo | PROJECT | 2026-02-15 … 03-20 | 500 | — | OpenAI 40 on 02-20, "openai" 60 on 03-05 (20 %) |
/// | unl | UNLIMITED | from 2026-01-01 | — | — | AWS 100 on 01-15, 200 on 03-15 |
/// | eur | MONTHLY, EUR | 2026-03 | 800 | — | OpenAI 700 on 03-10 (87.5 %) |
private struct Books {
    var ledger = Ledger()
    var rows: [DaySpend] = []

    init() throws {
        let at = instant("2026-01-01T00:00:00Z")
        for args: JSONObject in [
            ["id": "org", "name": "Org", "budgetType": "YEARLY", "totalAmount": 12000, "startDate": "2026-01-01"],
            ["id": "mar", "name": "March", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01", "parentId": "org"],
            ["id": "apr", "name": "April", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-04-01", "parentId": "org"],
            ["id": "solo", "name": "Solo", "budgetType": "PROJECT", "totalAmount": 500, "startDate": "2026-02-15", "endDate": "2026-03-20"],
            ["id": "unl", "name": "Research", "budgetType": "UNLIMITED", "startDate": "2026-01-01"],
            ["id": "eur", "name": "Euro", "budgetType": "MONTHLY", "totalAmount": 800, "currency": "EUR", "startDate": "2026-03-01"],
        ] {
            _ = try ledger.createBudget(Args(args), id: "unused", at: at)
        }
        spend("850", "mar", "OpenAI", "2026-03-10")
        spend("600", "apr", "Apify", "2026-04-02")
        spend("500", "apr", "apify", "2026-04-20")
        spend("40", "solo", "OpenAI", "2026-02-20")
        spend("60", "solo", "openai", "2026-03-05")
        spend("100", "unl", "AWS", "2026-01-15")
        spend("200", "unl", "AWS", "2026-03-15")
        spend("700", "eur", "OpenAI", "2026-03-10")
        // The store returns rows by day, then budget.
        rows.sort { ($0.day, $0.budgetId) < ($1.day, $1.budgetId) }
    }

    /// Books a cost and adds its rollup rows: one for the budget and one for each ancestor.
    mutating func spend(_ value: String, _ budgetId: String, _ platform: String, _ date: String) {
        let booking = ledger.book(amount: amount(value), budgetId: budgetId, platform: platform, serviceType: .api, eventId: nil, at: instant(date + "T12:00:00Z"))
        for id in booking.touchedBudgets {
            rows.append(DaySpend(budgetId: id, day: day(date), platform: platform, serviceType: .api, amount: amount(value)))
        }
    }

    /// What the engine does: scope, then the rollup rows of the tops within the range's days.
    func report(_ args: JSONObject = [:]) throws -> AnalyticsReport {
        let query = try AnalyticsQuery(Args(args))
        let scope = Analytics.scope(ledger.budgetsInOrder, query)
        let ids = Set(scope.topIds)
        let daily = rows.filter { row in
            ids.contains(row.budgetId) && (query.fromDay.map { row.day >= $0 } ?? true) && (query.toDay.map { row.day <= $0 } ?? true)
        }
        return Analytics.report(scope, daily: daily, query: query)
    }
}

struct Expected: Sendable, CustomTestStringConvertible {
    var name: String
    var args: JSONObject
    var totalBudgets: Int
    var activeBudgets: Int
    var totalAllocated: String
    var totalSpent: String
    var totalRemaining: String
    var averageSpentPercentage: String
    var budgetsExceeded: Int
    var budgetsNearLimit: Int
    /// "platform=amount"
    var platforms: [String]
    /// "month=spent@utilization"
    var months: [String]

    var testDescription: String { name }
}

private let expectations: [Expected] = [
    Expected(
        // Tops: org (1950), solo (100), unl (300). Mean of 16.25, 85, 110, 20 % = 57.8125 → 57.81.
        // Months: utilization = the month's spend (UNLIMITED's included) ÷ the totals of the
        // limited tops that overlap it: org 12000 alone in January and April, + solo 500 in Feb and Mar.
        name: "everything in USD: children counted once through their parent; EUR left out",
        args: [:], totalBudgets: 5, activeBudgets: 4, totalAllocated: "12500", totalSpent: "2350",
        totalRemaining: "10450", averageSpentPercentage: "57.81", budgetsExceeded: 1, budgetsNearLimit: 1,
        platforms: ["Apify=1100", "OpenAI=950", "AWS=300"],
        months: ["2026-01=100@0.83", "2026-02=40@0.32", "2026-03=1110@8.88", "2026-04=1100@9.17"]
    ),
    Expected(
        name: "March: April's budget is out; platforms and months are March's days only; totals stay whole-period",
        args: ["startDate": "2026-03-01", "endDate": "2026-03-31"], totalBudgets: 4, activeBudgets: 4,
        totalAllocated: "12500", totalSpent: "2350", totalRemaining: "10450", averageSpentPercentage: "40.42",
        budgetsExceeded: 0, budgetsNearLimit: 1,
        platforms: ["OpenAI=910", "AWS=200"], months: ["2026-03=1110@8.88"]
    ),
    Expected(
        // Mean of 16.25 and 110 = 63.125 → 63.12 (half-even).
        name: "late April: org, apr and unl overlap; one spelling per platform (the one with the most spend)",
        args: ["startDate": "2026-04-15", "endDate": "2026-04-30"], totalBudgets: 3, activeBudgets: 2,
        totalAllocated: "12000", totalSpent: "2250", totalRemaining: "10050", averageSpentPercentage: "63.12",
        budgetsExceeded: 1, budgetsNearLimit: 0, platforms: ["apify=500"], months: ["2026-04=500@4.17"]
    ),
    Expected(
        name: "EUR: only the EUR budget",
        args: ["currency": "eur"], totalBudgets: 1, activeBudgets: 1, totalAllocated: "800", totalSpent: "700",
        totalRemaining: "100", averageSpentPercentage: "87.5", budgetsExceeded: 0, budgetsNearLimit: 1,
        platforms: ["OpenAI=700"], months: ["2026-03=700@87.5"]
    ),
    Expected(
        name: "a currency without budgets: zeros and empty lists",
        args: ["currency": "GBP"], totalBudgets: 0, activeBudgets: 0, totalAllocated: "0", totalSpent: "0",
        totalRemaining: "0", averageSpentPercentage: "0", budgetsExceeded: 0, budgetsNearLimit: 0, platforms: [], months: []
    ),
    Expected(
        // An instant range takes whole rollup days: 2026-01-15 only. solo starts later.
        name: "an RFC 3339 range selects overlapping budgets and whole rollup days",
        args: ["startDate": "2026-01-15T10:00:00Z", "endDate": "2026-01-15T11:00:00Z"], totalBudgets: 2, activeBudgets: 2,
        totalAllocated: "12000", totalSpent: "2250", totalRemaining: "10050", averageSpentPercentage: "16.25",
        budgetsExceeded: 0, budgetsNearLimit: 0, platforms: ["AWS=100"], months: ["2026-01=100@0.83"]
    ),
]

struct AnalyticsTests {
    @Test("analytics against hand-computed figures", arguments: expectations)
    func figures(_ e: Expected) throws {
        let r = try Books().report(e.args)
        #expect(r.totalBudgets == e.totalBudgets)
        #expect(r.activeBudgets == e.activeBudgets)
        #expect(r.totalAllocated == amount(e.totalAllocated))
        #expect(r.totalSpent == amount(e.totalSpent))
        #expect(r.totalRemaining == amount(e.totalRemaining))
        #expect(r.averageSpentPercentage == e.averageSpentPercentage)
        #expect(r.budgetsExceeded == e.budgetsExceeded)
        #expect(r.budgetsNearLimit == e.budgetsNearLimit)
        #expect(r.topSpendingPlatforms.map { "\($0.platform)=\($0.totalSpent)" } == e.platforms)
        #expect(r.monthlyTrend.map { "\($0.month)=\($0.totalSpent)@\($0.budgetUtilization)" } == e.months)
    }

    @Test("without a range, the months' spend adds up to totalSpent")
    func monthsAddUp() throws {
        let r = try Books().report()
        #expect(r.monthlyTrend.reduce(Money.zero) { $0 + $1.totalSpent } == r.totalSpent)
    }

    @Test("the JSON has the contract's fields, amounts and percentages as numbers")
    func json() throws {
        let j = try Books().report(["currency": "EUR"]).json
        #expect(j == [
            "currency": "EUR", "totalBudgets": 1, "activeBudgets": 1, "totalAllocated": .number("800"),
            "totalSpent": .number("700"), "totalRemaining": .number("100"), "averageSpentPercentage": .number("87.5"),
            "budgetsExceeded": 0, "budgetsNearLimit": 1,
            "topSpendingPlatforms": [["platform": "OpenAI", "totalSpent": .number("700")]],
            "monthlyTrend": [["month": "2026-03", "totalSpent": .number("700"), "budgetUtilization": .number("87.5")]],
        ])
    }

    @Test("near the limit is 80 % through exactly 100 %; over is exceeded, not near", arguments: [
        ("79.99", 0, 0), ("80", 1, 0), ("100", 1, 0), ("100.000000001", 0, 1),
    ])
    func nearLimit(_ spent: String, _ near: Int, _ exceeded: Int) throws {
        var ledger = Ledger()
        _ = try ledger.createBudget(Args(["name": "B", "budgetType": "MONTHLY", "totalAmount": 100, "startDate": "2026-03-01"]), id: "b", at: instant("2026-03-01T00:00:00Z"))
        _ = ledger.book(amount: amount(spent), budgetId: "b", platform: "X", serviceType: .api, eventId: nil, at: instant("2026-03-02T00:00:00Z"))
        let query = AnalyticsQuery()
        let r = Analytics.report(Analytics.scope(ledger.budgetsInOrder, query), daily: [], query: query)
        #expect(r.budgetsNearLimit == near)
        #expect(r.budgetsExceeded == exceeded)
    }

    @Test("a selected child whose parent is outside the range is a top: its spend is not lost")
    func childWithoutSelectedParent() throws {
        var ledger = Ledger()
        let at = instant("2026-01-01T00:00:00Z")
        _ = try ledger.createBudget(Args(["name": "Q1", "budgetType": "QUARTERLY", "totalAmount": 3000, "startDate": "2026-01-01"]), id: "q1", at: at)
        // A child whose period runs past its parent's (nothing forbids it).
        _ = try ledger.createBudget(Args(["name": "Late", "budgetType": "PROJECT", "totalAmount": 400, "startDate": "2026-03-15", "endDate": "2026-04-30", "parentId": "q1"]), id: "late", at: at)
        _ = ledger.book(amount: amount("100"), budgetId: "late", platform: "X", serviceType: .api, eventId: nil, at: instant("2026-04-10T00:00:00Z"))
        let april = try AnalyticsQuery(Args(["startDate": "2026-04-01", "endDate": "2026-04-30"]))
        let scope = Analytics.scope(ledger.budgetsInOrder, april)
        #expect(scope.selected.map(\.id) == ["late"])
        #expect(scope.topIds == ["late"])
        let march = Analytics.scope(ledger.budgetsInOrder, try AnalyticsQuery(Args(["startDate": "2026-03-01", "endDate": "2026-03-31"])))
        #expect(march.topIds == ["q1"])
        let r = Analytics.report(scope, daily: [
            DaySpend(budgetId: "late", day: day("2026-04-10"), platform: "X", serviceType: .api, amount: amount("100")),
            DaySpend(budgetId: "q1", day: day("2026-04-10"), platform: "X", serviceType: .api, amount: amount("100")),
        ], query: april)
        #expect(r.totalSpent == amount("100"))
        #expect(r.topSpendingPlatforms.map(\.totalSpent) == [amount("100")])
        #expect(r.monthlyTrend.map(\.budgetUtilization) == ["25"])
    }

    @Test("months without spend between two with spend are listed with zero")
    func gapMonths() throws {
        var ledger = Ledger()
        _ = try ledger.createBudget(Args(["name": "Y", "budgetType": "YEARLY", "totalAmount": 1200, "startDate": "2026-01-01"]), id: "y", at: instant("2026-01-01T00:00:00Z"))
        let query = AnalyticsQuery()
        let r = Analytics.report(Analytics.scope(ledger.budgetsInOrder, query), daily: [
            DaySpend(budgetId: "y", day: day("2026-01-31"), platform: "X", serviceType: .api, amount: amount("12")),
            DaySpend(budgetId: "y", day: day("2026-04-01"), platform: "X", serviceType: .api, amount: amount("1")),
        ], query: query)
        #expect(r.monthlyTrend.map { "\($0.month)=\($0.totalSpent)@\($0.budgetUtilization)" } == [
            "2026-01=12@1", "2026-02=0@0", "2026-03=0@0", "2026-04=1@0.08",
        ])
    }

    static let queryFailures: [(JSONObject, String)] = [
        (["startDate": "2026-03-02", "endDate": "2026-03-01"], "endDate must not be before startDate"),
        (["startDate": "March"], "startDate must be YYYY-MM-DD or RFC 3339"),
        (["currency": "DOLLARS"], "currency must be a 3-letter code"),
    ]

    @Test("query validation", arguments: queryFailures)
    func validation(_ args: JSONObject, _ message: String) {
        do {
            _ = try AnalyticsQuery(Args(args))
            Issue.record("expected VALIDATION_FAILED")
        } catch {
            #expect(error.code == .validationFailed)
            #expect(error.message.hasPrefix(message), "\(error.message)")
        }
    }

    @Test("a one-day range is valid: endDate equal to startDate")
    func oneDay() throws {
        let q = try AnalyticsQuery(Args(["startDate": "2026-03-05", "endDate": "2026-03-05"]))
        #expect(q.fromDay == day("2026-03-05"))
        #expect(q.toDay == day("2026-03-05"))
    }
}

/// `averageSpentPercentage` is the mean of the exact ratios rounded once (§6: at most two
/// decimals, half-even): a ratio rounded to 1e-9 first turned 12.3749999999999…% into 12.38.
struct AnalyticsAverageTests {
    @Test(arguments: [
        // (budgets as (total, spent), expected mean)
        ([("3000000", "371249.999999999")], "12.37"),
        ([("3000000", "371250")], "12.38"),                    // exactly 12.375: half-even up to 8
        ([("400", "1"), ("100", "0")], "0.12"),                // exactly 0.125: half-even down to 2
        ([("400", "1"), ("1000", "0.1")], "0.13"),             // (0.25 + 0.01) ÷ 2
        ([("3", "1"), ("3", "2")], "50"),                      // 1/3 and 2/3, neither exact
        ([("3", "1")], "33.33"),
        // Ratios of ~10²¹ (a total of a few nano-units): past Int128 once scaled, where the sum
        // saturated at 17014118346046923173168.73 (the seventeenth session's audit).
        ([("0.000000001", "1000000000000")], "100000000000000000000000"),
        ([("0.000000001", "1000000000000"), ("0.000000001", "2000000000000")], "150000000000000000000000"),
        ([("0.000000003", "1000000000000")], "33333333333333333333333.33"),
        ([("0.000000003", "2000000000000"), ("3", "1")], "33333333333333333333350"),
        // Below zero (credits): half-even on the magnitude, a truncated ratio nearer zero.
        ([("3", "-1")], "-33.33"),
        ([("400", "-1"), ("100", "0")], "-0.12"),              // exactly −0.125: half-even to −0.12
        ([("400", "-3"), ("100", "0")], "-0.38"),              // exactly −0.375: half-even to −0.38
        ([("3", "-1"), ("3", "-2")], "-50"),
        ([("0.000000001", "-1000000000000"), ("1", "0")], "-50000000000000000000000"),
    ] as [([(String, String)], String)])
    func meanOfExactRatios(budgets: [(String, String)], expected: String) throws {
        var ledger = Ledger(budgets: [], lastSeq: 0)
        let at = try Timestamp(rfc3339: "2026-03-10T12:00:00Z")
        for (i, (total, spent)) in budgets.enumerated() {
            _ = try ledger.createBudget(Args([
                "name": "b", "budgetType": "MONTHLY", "totalAmount": .number(total), "startDate": "2026-03-01",
            ]), id: "b\(i)", at: at)
            // Booked in costs of at most 1e12 each; "-" books credits.
            let negative = spent.hasPrefix("-")
            var rest = Money(nanos: try #require(ExactDecimal(parsing: negative ? String(spent.dropFirst()) : spent).roundedUnits(scale: 9)))
            let most = try Money.parseAmount("1000000000000")
            while rest > .zero {
                let part = min(rest, most)
                _ = ledger.book(amount: negative ? -part : part, budgetId: "b\(i)", platform: "P", serviceType: .api, eventId: nil, at: at)
                rest -= part
            }
        }
        let query = try AnalyticsQuery(Args([:]))
        let report = Analytics.report(Analytics.scope(ledger.budgetsInOrder, query), daily: [], query: query)
        #expect(report.averageSpentPercentage == expected)
    }
}

extension AnalyticsAverageTests {
    /// `budgetUtilization` divides a month's spend by the totals of the budgets overlapping it,
    /// each counted once: a child whose period runs past its parent's counts in the months the
    /// parent does not overlap (it was left out, and a month with spend showed 0 %).
    @Test func aChildOutlivingItsParentCountsInItsOwnMonths() throws {
        var ledger = Ledger(budgets: [], lastSeq: 0)
        let at = try Timestamp(rfc3339: "2026-10-01T00:00:00Z")
        _ = try ledger.createBudget(Args([
            "name": "P", "budgetType": "PROJECT", "totalAmount": 100, "startDate": "2026-10-01", "endDate": "2026-10-31",
        ]), id: "cp", at: at)
        _ = try ledger.createBudget(Args([
            "name": "C", "budgetType": "PROJECT", "totalAmount": 50, "startDate": "2026-10-15", "endDate": "2026-11-15", "parentId": "cp",
        ]), id: "cc", at: at)
        var rows: [DaySpend] = []
        for (budget, amount, day) in [("cp", "30", "2026-10-10"), ("cc", "20", "2026-11-10")] {
            let when = try Timestamp(rfc3339: day + "T12:00:00Z")
            let booking = ledger.book(amount: try Money.parseAmount(amount), budgetId: budget, platform: "P", serviceType: .api, eventId: nil, at: when)
            for id in booking.touchedBudgets {
                rows.append(DaySpend(budgetId: id, day: when.civilDate, platform: "P", serviceType: .api, amount: try Money.parseAmount(amount)))
            }
        }
        let query = try AnalyticsQuery(Args([:]))
        let scope = Analytics.scope(ledger.budgetsInOrder, query)
        let report = Analytics.report(scope, daily: rows.filter { scope.topIds.contains($0.budgetId) }, query: query)
        // October: 30 of the parent's 100 (the child, inside it, is not counted twice);
        // November: 20 of the child's 50.
        #expect(report.monthlyTrend.map { "\($0.month)=\($0.totalSpent)@\($0.budgetUtilization)" } == ["2026-10=30@30", "2026-11=20@40"])
    }

    /// The ancestor walk stopped at the first parent outside the range, so a grandchild's total
    /// was added to its selected grandparent's (an audit: 10 ÷ 1050 instead of 10 ÷ 1000).
    @Test("budgetUtilization: a budget inside a selected grandparent is not counted again when the range leaves out its parent")
    func grandparentCoversPastAParentOutsideTheRange() throws {
        var ledger = Ledger(budgets: [], lastSeq: 0)
        let at = try Timestamp(rfc3339: "2026-03-01T00:00:00Z")
        _ = try ledger.createBudget(Args(["name": "G", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01"]), id: "g", at: at)
        _ = try ledger.createBudget(Args(["name": "P", "budgetType": "PROJECT", "totalAmount": 100, "startDate": "2026-03-01", "endDate": "2026-03-10", "parentId": "g"]), id: "p", at: at)
        _ = try ledger.createBudget(Args(["name": "C", "budgetType": "MONTHLY", "totalAmount": 50, "startDate": "2026-03-01", "parentId": "p"]), id: "c", at: at)
        let when = try Timestamp(rfc3339: "2026-03-20T12:00:00Z")
        var rows: [DaySpend] = []
        for id in ledger.book(amount: amount("10"), budgetId: "c", platform: "X", serviceType: .api, eventId: nil, at: when).touchedBudgets {
            rows.append(DaySpend(budgetId: id, day: when.civilDate, platform: "X", serviceType: .api, amount: amount("10")))
        }
        for query in [try AnalyticsQuery(Args(["startDate": "2026-03-15", "endDate": "2026-03-25"])), AnalyticsQuery()] {
            let scope = Analytics.scope(ledger.budgetsInOrder, query)
            let report = Analytics.report(scope, daily: rows.filter { scope.topIds.contains($0.budgetId) }, query: query)
            #expect(report.monthlyTrend.map(\.budgetUtilization) == ["1"], "\(scope.selected.map(\.id))")
        }
    }

    @Test("topSpendingPlatforms names a platform whose credits outweigh its spend (it was \"\")")
    func platformWithNegativeSpend() throws {
        var ledger = Ledger()
        _ = try ledger.createBudget(Args(["name": "Y", "budgetType": "YEARLY", "totalAmount": 1200, "startDate": "2026-01-01"]), id: "y", at: instant("2026-01-01T00:00:00Z"))
        let query = AnalyticsQuery()
        let r = Analytics.report(Analytics.scope(ledger.budgetsInOrder, query), daily: [
            DaySpend(budgetId: "y", day: day("2026-01-31"), platform: "OpenAI", serviceType: .api, amount: amount("10")),
            DaySpend(budgetId: "y", day: day("2026-01-31"), platform: "GCP", serviceType: .processing, amount: -amount("2")),
        ], query: query)
        #expect(r.topSpendingPlatforms.map { "\($0.platform)=\($0.totalSpent)" } == ["OpenAI=10", "GCP=-2"])
    }
}
