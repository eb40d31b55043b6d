import BudgetCore
import Testing

// CONTRACT §4–§6: booking costs, the alert rules of §5 in order, re-arming, budget validation
// and the summary of `budget.get`. Every instant is explicit: no wall clock.

private func t(_ text: String) -> Timestamp {
    // Test literals only: a typo should stop the run loudly.
    try! Timestamp(rfc3339: text)
}

private func money(_ text: String) -> Money {
    try! Money(parsing: text)
}

private let created = t("2026-03-01T00:00:00Z")

/// A MONTHLY March 2026 budget of 1000 USD named "Ops".
private let monthlyArgs: JSONObject = [
    "name": "Ops", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01",
]

private func merged(_ base: JSONObject, _ extra: JSONObject) -> JSONObject {
    var result = base
    for (key, value) in extra { result[key] = value }
    return result
}

/// "alert.THRESHOLD_80" / "status.EXCEEDED", with the budget id when `withBudget`.
private func topics(_ messages: [OutboundMessage], withBudget: Bool = false) -> [String] {
    messages.map { m in
        guard withBudget else { return m.topic }
        switch m {
        case .alert(let a): return "\(a.budgetId ?? "-"):\(m.topic)"
        case .status(let s): return "\(s.budgetId):\(m.topic)"
        }
    }
}

private func alerts(_ messages: [OutboundMessage]) -> [AlertRecord] {
    messages.compactMap { if case .alert(let a) = $0 { a } else { nil } }
}

private func statuses(_ messages: [OutboundMessage]) -> [StatusChange] {
    messages.compactMap { if case .status(let s) = $0 { s } else { nil } }
}

/// A ledger with helpers that keep the tests short.
private struct Books {
    var ledger: Ledger

    /// LOW_BUDGET is off unless asked for (its timing has its own tests in PeriodsAndSignalsTests):
    /// these tests book large amounts mid-period, which would legitimately run a budget low.
    init(lastSeq: Int64 = 0, lowBudget: Bool = false) {
        ledger = Ledger(budgets: [], lastSeq: lastSeq)
        if !lowBudget { ledger.settings.lowBudgetMinElapsedHours = 1_000_000 }
    }

    @discardableResult
    mutating func create(_ id: String, _ extra: JSONObject = [:], base: JSONObject = monthlyArgs, at now: Timestamp = created) throws -> Budget {
        try ledger.createBudget(Args(merged(base, extra)), id: id, at: now)
    }

    mutating func book(
        _ amount: String, to id: String, platform: String = "OpenAI", serviceType: ServiceType = .api,
        event: String? = "e1", at now: String = "2026-03-10T12:00:00Z"
    ) -> [OutboundMessage] {
        ledger.book(amount: money(amount), budgetId: id, platform: platform, serviceType: serviceType, eventId: event, at: t(now)).messages
    }

    mutating func update(_ args: JSONObject, at now: String = "2026-03-12T00:00:00Z") throws -> [OutboundMessage] {
        try ledger.updateBudget(Args(args), at: t(now)).1
    }

    subscript(id: String) -> Budget {
        ledger[id]!
    }
}

/// Runs `body` and checks it fails with `code` and a message containing (or equal to) `message`.
private func expectFailure(
    _ code: LedgerError.Code, _ message: String, exactly: Bool = false,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(LedgerError) -> Void
) {
    do {
        try body()
        Issue.record("expected \(code.rawValue): \(message)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if exactly {
            #expect(error.message == message, sourceLocation: sourceLocation)
        } else {
            #expect(error.message.contains(message), "\(error.message)", sourceLocation: sourceLocation)
        }
    }
}

/// A row of a validation table: args added to a valid request, and the error expected.
struct ArgsCase: Sendable, CustomTestStringConvertible {
    var name: String
    var args: JSONObject
    var code: LedgerError.Code = .validationFailed
    var message: String

    init(_ name: String, _ args: JSONObject, _ code: LedgerError.Code = .validationFailed, _ message: String) {
        self.name = name
        self.args = args
        self.code = code
        self.message = message
    }

    var testDescription: String { name }
}

private let openAIAllocation: JSONValue = ["id": "al_openai", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 500]
private let apifyAllocation: JSONValue = ["id": "al_apify", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 300]

struct LedgerBookingTests {
    @Test("a cost counts in the budget and in the allocation with its platform (any case) and serviceType")
    func booking() throws {
        var books = Books()
        try books.create("b", ["allocations": [openAIAllocation, apifyAllocation]])
        let booking = books.ledger.book(amount: money("100.5"), budgetId: "b", platform: "openai", serviceType: .api, eventId: "e1", at: t("2026-03-10T12:00:00Z"))
        #expect(booking.allocationId == "al_openai")
        #expect(booking.touchedBudgets == ["b"])
        #expect(booking.messages.isEmpty)
        #expect(books["b"].spentAmount == money("100.5"))
        #expect(books["b"].remainingAmount == money("899.5"))
        #expect(books["b"].costCount == 1)
        #expect(books["b"].allocations.map(\.spentAmount) == [money("100.5"), .zero])

        // Same platform, another serviceType: the budget only.
        let other = books.ledger.book(amount: money("10"), budgetId: "b", platform: "Apify", serviceType: .api, eventId: "e2", at: t("2026-03-10T12:00:00Z"))
        #expect(other.allocationId == nil)
        #expect(books["b"].spentAmount == money("110.5"))
        #expect(books["b"].allocations.map(\.spentAmount) == [money("100.5"), .zero])
        #expect(books["b"].costCount == 2)

        let apify = books.ledger.book(amount: money("0.000000001"), budgetId: "b", platform: "APIFY", serviceType: .scraping, eventId: "e3", at: t("2026-03-10T12:00:00Z"))
        #expect(apify.allocationId == "al_apify")
        #expect(books["b"].allocations.map(\.spentAmount) == [money("100.5"), money("0.000000001")])
        #expect(books["b"].spentAmount.description == "110.500000001")
    }

    @Test("a budget chain holds its first id inline and compares, counts and indexes as the array of its ids")
    func budgetChainIsItsIds() {
        let empty = BudgetChain([])
        #expect(empty.isEmpty && empty.count == 0 && Array(empty) == [])
        let one: BudgetChain = ["b"]
        #expect(one.count == 1 && one[0] == "b" && Array(one) == ["b"])
        let three = BudgetChain(["c", "p", "g"])
        #expect(three.count == 3 && Array(three) == ["c", "p", "g"] && three[2] == "g")
        #expect(three == ["c", "p", "g"] && three != ["c", "p"] && one != ["c"] && empty == [])
        #expect(Set([one, BudgetChain(["b"]), three]).count == 2)
    }

    @Test("booking to an unknown budget changes nothing")
    func unknownBudget() {
        var books = Books()
        let booking = books.ledger.book(amount: money("1"), budgetId: "ghost", platform: "OpenAI", serviceType: .api, eventId: nil, at: created)
        #expect(booking.touchedBudgets.isEmpty)
        #expect(booking.messages.isEmpty)
        #expect(books.ledger.lastSeq == 0)
    }

    @Test("one event crossing 80, 90, 100 and the total: thresholds, BUDGET_EXCEEDED, status.EXCEEDED, ALLOCATION_DEPLETED, consecutive seqs")
    func alertOrder() throws {
        var books = Books(lastSeq: 41)
        try books.create("b", ["allocations": [openAIAllocation]])
        let messages = books.book("1200", to: "b", event: "e-big")
        #expect(topics(messages) == [
            "alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED",
            "status.EXCEEDED", "alert.ALLOCATION_DEPLETED",
        ])
        #expect(messages.map(\.seq) == [42, 43, 44, 45, 46, 47])
        #expect(books.ledger.lastSeq == 47)
        #expect(books["b"].status == .exceeded)

        let a = alerts(messages)
        #expect(a.map(\.threshold) == [80, 90, 100, nil, nil])
        #expect(a.map(\.severity) == [.warning, .critical, .critical, .critical, .warning])
        #expect(a.allSatisfy { $0.eventId == "e-big" && $0.budgetId == "b" && $0.budgetName == "Ops" && $0.currency == "USD" })
        #expect(a.allSatisfy { $0.triggeredAt == t("2026-03-10T12:00:00Z") })
        #expect(a[0].spentPercentage == "120")
        #expect(a[0].spentAmount == money("1200"))
        #expect(a[0].totalAmount == money("1000"))
        #expect(a[0].platform == nil && a[0].serviceType == nil)
        #expect(a[0].message == "Ops has spent 120% of 1000.00 USD")

        let depleted = a[4]
        #expect(depleted.type == .allocationDepleted)
        #expect(depleted.platform == "OpenAI")
        #expect(depleted.serviceType == .api)
        #expect(depleted.spentAmount == money("1200"))
        #expect(depleted.totalAmount == money("500"))
        #expect(depleted.spentPercentage == "240")

        let status = try #require(statuses(messages).first)
        #expect(status.status == .exceeded)
        #expect(status.previousStatus == .active)
        #expect(status.spentAmount == money("1200"))
        #expect(status.totalAmount == money("1000"))
        #expect(status.at == t("2026-03-10T12:00:00Z"))
    }

    @Test("each threshold fires once per period")
    func oncePerPeriod() throws {
        var books = Books()
        try books.create("b")
        #expect(topics(books.book("850", to: "b")) == ["alert.THRESHOLD_80"])
        #expect(topics(books.book("10", to: "b")).isEmpty)
        #expect(topics(books.book("50", to: "b")) == ["alert.THRESHOLD_90"])
        #expect(topics(books.book("50", to: "b")).isEmpty)
        #expect(topics(books.book("40", to: "b")) == ["alert.THRESHOLD_100"])
        #expect(topics(books.book("0.000000001", to: "b")) == ["alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
        #expect(topics(books.book("100", to: "b")).isEmpty)
        #expect(books.ledger.lastSeq == 5)
        #expect(books["b"].spentAmount.description == "1100.000000001")
    }

    static let boundaries: [(String, [String])] = [
        ("799.999999999", []),
        ("800", ["alert.THRESHOLD_80"]),
        ("899.999999999", ["alert.THRESHOLD_80"]),
        ("900", ["alert.THRESHOLD_80", "alert.THRESHOLD_90"]),
        ("999.999999999", ["alert.THRESHOLD_80", "alert.THRESHOLD_90"]),
        ("1000", ["alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100"]),
        ("1000.000000001", ["alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED"]),
    ]

    @Test("thresholds fire at spent ≥ t %; exactly 100 % is THRESHOLD_100 but not exceeded", arguments: boundaries)
    func thresholdBoundaries(spent: String, expected: [String]) throws {
        var books = Books()
        try books.create("b")
        #expect(topics(books.book(spent, to: "b")) == expected)
        #expect(books["b"].status == (expected.contains("status.EXCEEDED") ? .exceeded : .active))
    }

    @Test("a disabled threshold does not fire; BUDGET_EXCEEDED fires even with alertThreshold100 off")
    func disabledThresholds() throws {
        var books = Books()
        try books.create("b", ["alertThreshold80": false, "alertThreshold100": false])
        #expect(topics(books.book("1100", to: "b")) == ["alert.THRESHOLD_90", "alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
        #expect(books["b"].status == .exceeded)
    }

    @Test("only an ACTIVE budget becomes EXCEEDED: a PAUSED one gets the alert but keeps its status")
    func pausedStaysPaused() throws {
        var books = Books()
        try books.create("b")
        let paused = try books.update(["id": "b", "status": "PAUSED"])
        #expect(topics(paused) == ["status.PAUSED"])
        #expect(statuses(paused).first?.previousStatus == .active)
        #expect(topics(books.book("1100", to: "b")) == ["alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED"])
        #expect(books["b"].status == .paused)
        #expect(books["b"].spentAmount == money("1100"))
    }

    @Test("UNLIMITED: no threshold or exceeded alerts, but its allocations deplete")
    func unlimited() throws {
        var books = Books()
        try books.create("u", ["budgetType": "UNLIMITED", "totalAmount": .null, "allocations": [openAIAllocation]])
        #expect(topics(books.book("499", to: "u")).isEmpty)
        let messages = books.book("100000", to: "u")
        #expect(topics(messages) == ["alert.ALLOCATION_DEPLETED"])
        #expect(alerts(messages).first?.totalAmount == money("500"))
        #expect(books["u"].status == .active)
        #expect(books["u"].spentPercentage == "0")
        #expect(books["u"].remainingAmount == nil)

        // A total given to an UNLIMITED budget does not make it fire either.
        try books.create("u2", ["budgetType": "UNLIMITED", "totalAmount": 10])
        #expect(topics(books.book("100", to: "u2")).isEmpty)
        #expect(books["u2"].status == .active)
    }

    @Test("ALLOCATION_DEPLETED fires once when the allocation's spent reaches its amount (platform any case)")
    func allocationDepleted() throws {
        var books = Books()
        try books.create("b", ["totalAmount": 10000, "allocations": [openAIAllocation]])
        #expect(topics(books.book("300", to: "b", platform: "openai")).isEmpty)
        // Another serviceType does not count against it.
        #expect(topics(books.book("300", to: "b", platform: "OpenAI", serviceType: .storage)).isEmpty)
        let messages = books.book("200", to: "b", platform: "OPENAI")
        #expect(topics(messages) == ["alert.ALLOCATION_DEPLETED"])
        let alert = try #require(alerts(messages).first)
        #expect(alert.platform == "OpenAI")
        #expect(alert.serviceType == .api)
        #expect(alert.spentAmount == money("500"))
        #expect(alert.totalAmount == money("500"))
        #expect(alert.spentPercentage == "100")
        #expect(alert.severity == .warning)
        #expect(alert.eventId == "e1")
        #expect(topics(books.book("1", to: "b", platform: "OpenAI")).isEmpty)
        #expect(books["b"].allocations.first?.spentAmount == money("501"))
        #expect(books["b"].spentAmount == money("801"))
    }

    @Test("a cost rolls up through three levels; each level's alerts, nearest first")
    func rollUp() throws {
        var books = Books()
        try books.create("g", ["name": "Group", "totalAmount": 2300])
        try books.create("p", ["name": "Parent", "totalAmount": 2000, "parentId": "g", "allocations": [openAIAllocation]])
        try books.create("c", ["name": "Child", "parentId": "p"])
        let booking = books.ledger.book(amount: money("1900"), budgetId: "c", platform: "openai", serviceType: .api, eventId: "e1", at: t("2026-03-10T12:00:00Z"))
        #expect(booking.touchedBudgets == ["c", "p", "g"])
        #expect(booking.allocationId == nil) // the child has no allocation of its own
        #expect(topics(booking.messages, withBudget: true) == [
            "c:alert.THRESHOLD_80", "c:alert.THRESHOLD_90", "c:alert.THRESHOLD_100", "c:alert.BUDGET_EXCEEDED", "c:status.EXCEEDED",
            "p:alert.THRESHOLD_80", "p:alert.THRESHOLD_90", "p:alert.ALLOCATION_DEPLETED",
            "g:alert.THRESHOLD_80",
        ])
        #expect(booking.messages.map(\.seq) == Array(1...9))
        for id in ["c", "p", "g"] {
            #expect(books[id].spentAmount == money("1900"), "\(id)")
            #expect(books[id].costCount == 1, "\(id)")
        }
        #expect(books["p"].allocations.first?.spentAmount == money("1900"))
        #expect(books["c"].status == .exceeded)
        #expect(books["p"].status == .active)
        #expect(alerts(booking.messages).last?.spentPercentage == "82.61")
        #expect(books.ledger.chain(from: "c") == ["c", "p", "g"])
    }

    @Test("a budget moved to another parent before it has costs books to its new chain, and the spend history follows it")
    func reparentedChain() throws {
        var books = Books()
        try books.create("old", ["name": "Old parent", "totalAmount": 5000])
        try books.create("new", ["name": "New parent", "totalAmount": 5000, "allocations": [openAIAllocation]])
        try books.create("c", ["name": "Child", "parentId": "old", "allocations": [apifyAllocation]])
        #expect(books.ledger.chain(from: "c") == ["c", "old"])
        _ = try books.update(["id": "c", "parentId": "new"])
        #expect(books.ledger.chain(from: "c") == ["c", "new"])
        _ = books.ledger.takeChangedHistory()
        let booking = books.ledger.book(
            amount: money("12.5"), budgetId: "c", platform: "OpenAI", serviceType: .api, eventId: "e1", at: t("2026-03-10T12:00:00Z")
        )
        #expect(booking.touchedBudgets == ["c", "new"])
        #expect(booking.allocationId == nil) // the child's allocation is Apify's
        #expect(books["c"].spentAmount == money("12.5"))
        #expect(books["new"].spentAmount == money("12.5"))
        #expect(books["new"].allocations.first?.spentAmount == money("12.5"))
        #expect(books["old"].spentAmount == .zero)
        #expect(books["c"].allocations.first?.spentAmount == .zero)
        // The history: each budget of the chain, and the matching allocation of the one that has it.
        let keys = Set(books.ledger.takeChangedHistory().map(\.bucket.key))
        #expect(keys == ["c", "new", "new/al_openai"])
        // With a cost booked, the parent is locked: the chain stays.
        expectFailure(.conflict, "parentId") { () throws(LedgerError) in _ = try books.ledger.updateBudget(Args(["id": "c", "parentId": "old"]), at: t("2026-03-12T00:00:00Z")) }
        #expect(books.ledger.chain(from: "c") == ["c", "new"])
    }

    @Test("alerts say the spent percentage with at most two decimals, half-even")
    func percentageInAlerts() throws {
        var books = Books()
        try books.create("b", ["totalAmount": 3])
        let messages = books.book("2.5", to: "b")
        #expect(alerts(messages).first?.spentPercentage == "83.33")
        #expect(alerts(messages).first?.message == "Ops has spent 83.33% of 3.00 USD")
    }

    @Test("LOW_BUDGET fires when the burn rate runs the budget out before its end")
    func lowBudget() throws {
        var books = Books(lowBudget: true)
        try books.create("b")
        // 500 in the first two days of March: 250 a day runs out on March 5, long before March 31.
        let messages = books.book("500", to: "b", at: "2026-03-03T00:00:00Z")
        #expect(topics(messages) == ["alert.LOW_BUDGET"])
        #expect(alerts(messages).first?.severity == .warning)
    }
}

struct LedgerUpdateTests {
    @Test("raising the total above spent re-arms the thresholds and returns the budget to ACTIVE")
    func raiseTotal() throws {
        var books = Books()
        try books.create("b")
        _ = books.book("1200", to: "b")
        #expect(books["b"].status == .exceeded)
        let raised = try books.update(["id": "b", "totalAmount": 2000])
        #expect(topics(raised) == ["status.ACTIVE"])
        let status = try #require(statuses(raised).first)
        #expect(status.previousStatus == .exceeded)
        #expect(status.totalAmount == money("2000"))
        #expect(status.seq == 6)
        #expect(books["b"].status == .active)
        #expect(books["b"].fired.isEmpty)
        // Re-armed: crossing them again fires them again.
        #expect(topics(books.book("500", to: "b")) == ["alert.THRESHOLD_80"])
        #expect(topics(books.book("400", to: "b")) == ["alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
    }

    @Test("raising the total only re-arms what spent no longer reaches")
    func partialRearm() throws {
        var books = Books()
        try books.create("b")
        _ = books.book("1100", to: "b")
        // 1100 of 1150 is 95.65 %: 80 and 90 stay fired, 100 and exceeded re-arm.
        #expect(topics(try books.update(["id": "b", "totalAmount": 1150])) == ["status.ACTIVE"])
        #expect(books["b"].fired == [.threshold80, .threshold90])
        #expect(topics(books.book("50", to: "b")) == ["alert.THRESHOLD_100"])
    }

    @Test("lowering the total fires what spent now crosses")
    func lowerTotal() throws {
        var books = Books()
        try books.create("b")
        #expect(books.book("700", to: "b").isEmpty)
        let first = try books.update(["id": "b", "totalAmount": 800])
        #expect(topics(first) == ["alert.THRESHOLD_80"])
        #expect(alerts(first).first?.eventId == nil)
        #expect(alerts(first).first?.spentPercentage == "87.5")
        #expect(alerts(first).first?.triggeredAt == t("2026-03-12T00:00:00Z"))
        let second = try books.update(["id": "b", "totalAmount": 600])
        #expect(topics(second) == ["alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
        #expect(books["b"].status == .exceeded)
    }

    @Test("a PAUSED budget that went over its total becomes EXCEEDED when set ACTIVE again")
    func resumeOverBudget() throws {
        var books = Books()
        try books.create("b")
        _ = try books.update(["id": "b", "status": "PAUSED"])
        #expect(topics(books.book("1100", to: "b")).contains("alert.BUDGET_EXCEEDED"))
        let resumed = try books.update(["id": "b", "status": "ACTIVE"])
        // §5: spent over total makes the budget EXCEEDED; an ACTIVE budget must not stay ACTIVE
        // while over, or it never becomes EXCEEDED in this period (BUDGET_EXCEEDED already fired).
        #expect(topics(resumed) == ["status.ACTIVE", "status.EXCEEDED"])
        #expect(books["b"].status == .exceeded)
    }

    @Test("a CANCELLED ancestor counts its children's spend but fires nothing; set ACTIVE again, it fires what is due then, in §5's order")
    func cancelledAncestorPagesNobody() throws {
        var books = Books()
        try books.create("p")
        try books.create("c", ["parentId": "p", "totalAmount": 1300])
        _ = try books.update(["id": "p", "status": "CANCELLED"])
        let booked = books.book("1100", to: "c")
        #expect(topics(booked) == ["alert.THRESHOLD_80"], "only the child's")
        #expect(booked.allSatisfy { if case .alert(let a) = $0 { a.budgetId == "c" } else { false } })
        #expect(books["p"].spentAmount == (try Money(parsing: "1100")))
        #expect(books["p"].fired.isEmpty)
        let resumed = try books.update(["id": "p", "status": "ACTIVE"])
        #expect(topics(resumed) == ["status.ACTIVE", "alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
        #expect(books["p"].status == .exceeded)
    }

    @Test("a budget over its total resumed from CANCELLED with a threshold switched on meanwhile: the threshold before status.EXCEEDED (§5's order; it came after)")
    func resumedOverBudgetFiresThresholdsFirst() throws {
        var books = Books()
        try books.create("p", ["alertThreshold90": false])
        #expect(topics(books.book("1500", to: "p")) == ["alert.THRESHOLD_80", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
        _ = try books.update(["id": "p", "status": "CANCELLED"])
        #expect(try books.update(["id": "p", "alertThreshold90": true]).isEmpty)
        let resumed = try books.update(["id": "p", "status": "ACTIVE"])
        #expect(topics(resumed) == ["status.ACTIVE", "alert.THRESHOLD_90", "status.EXCEEDED"])
        #expect(books["p"].status == .exceeded)
    }

    @Test("resumed with a new total that spent is still over, a budget is EXCEEDED, not ACTIVE",
          arguments: ["PAUSED"], [1050, 900])
    func resumeOverBudgetWithNewTotal(from paused: String, total: Int) throws {
        var books = Books()
        try books.create("b")
        _ = try books.update(["id": "b", "status": .string(paused)])
        #expect(topics(books.book("1100", to: "b")).contains("alert.BUDGET_EXCEEDED"))
        let resumed = try books.update(["id": "b", "status": "ACTIVE", "totalAmount": .number(total)])
        #expect(topics(resumed) == ["status.ACTIVE", "status.EXCEEDED"])
        #expect(books["b"].status == .exceeded)
        // Over its total, it stays EXCEEDED as more is spent; raising the total above spent
        // makes it ACTIVE again.
        #expect(books.book("1", to: "b").isEmpty)
        #expect(books["b"].status == .exceeded)
        #expect(topics(try books.update(["id": "b", "totalAmount": 2000])) == ["status.ACTIVE"])
    }

    @Test("an EXCEEDED budget set ACTIVE stays EXCEEDED while over, and turns ACTIVE when the same update raises the total")
    func activeAskedOfExceeded() throws {
        var books = Books()
        try books.create("b")
        #expect(topics(books.book("1500", to: "b")).contains("status.EXCEEDED"))
        #expect(try books.update(["id": "b", "status": "ACTIVE"]).isEmpty)
        #expect(books["b"].status == .exceeded)
        #expect(try books.update(["id": "b", "status": "ACTIVE", "totalAmount": 1200]).isEmpty)
        #expect(books["b"].status == .exceeded)
        let raised = try books.update(["id": "b", "status": "ACTIVE", "totalAmount": 3000])
        #expect(topics(raised) == ["status.ACTIVE"])
        #expect(statuses(raised).first?.previousStatus == .exceeded)
        #expect(books["b"].status == .active)
    }

    @Test("a credit that brings an EXCEEDED budget back under its total announces ACTIVE before what it fires (LOW_BUDGET)")
    func creditReArmsBeforeItFires() throws {
        var books = Books(lowBudget: true)
        try books.create("p")
        try books.create("c", ["parentId": "p", "totalAmount": 500])
        #expect(topics(books.book("1500", to: "c")).contains("status.EXCEEDED"))
        // 1100 taken back: 400 spent, under both totals (500, 1000), and at 40 a day over ten
        // days both run out before the month ends; each level re-arms before it fires,
        // nearest first.
        let credit = books.ledger.adjust(
            amount: money("-1100"), budgetId: "c", platform: "OpenAI", serviceType: .api,
            eventId: nil, costTime: t("2026-03-11T00:00:00Z"), at: t("2026-03-11T00:00:00Z")
        ).messages
        #expect(topics(credit) == ["status.ACTIVE", "alert.LOW_BUDGET", "status.ACTIVE", "alert.LOW_BUDGET"])
        #expect(statuses(credit).map(\.budgetId) == ["c", "p"])
    }

    @Test("a COMPLETED budget is ACTIVE again only with a period that is not over")
    func reopenACompletedBudget() throws {
        var books = Books()
        try books.create("p", ["budgetType": "PROJECT", "endDate": "2026-03-31"])
        let april = t("2026-04-02T00:00:00Z")
        var n = 0
        #expect(statuses(books.ledger.rollOver(at: april, spendOf: noSpend, makeID: { n += 1; return "r\(n)" }).messages).map(\.status) == [.completed])
        expectFailure(.validationFailed, "budget p is COMPLETED: its period ended at 2026-04-01T00:00:00Z; give a later endDate to make it ACTIVE again", exactly: true) { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(["id": "p", "status": "ACTIVE"]), at: april)
        }
        #expect(books["p"].status == .completed)
        // Nor PAUSED (then ACTIVE: the same churn in two steps); CANCELLED it may be.
        expectFailure(.validationFailed, "budget p is COMPLETED: its period ended at 2026-04-01T00:00:00Z; give a later endDate to make it PAUSED again", exactly: true) { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(["id": "p", "status": "PAUSED"]), at: april)
        }
        #expect(books["p"].status == .completed)
        var cancelled = books
        _ = try cancelled.ledger.updateBudget(Args(["id": "p", "status": "CANCELLED"]), at: april)
        #expect(cancelled["p"].status == .cancelled)
        let reopened = try books.ledger.updateBudget(Args(["id": "p", "status": "ACTIVE", "endDate": "2026-04-30"]), at: april).1
        #expect(statuses(reopened).map(\.status) == [.active])
        #expect(books["p"].status == .active)
    }

    @Test("enabling a threshold that spent already crosses fires it")
    func enableThreshold() throws {
        var books = Books()
        try books.create("b", ["alertThreshold80": false])
        #expect(books.book("850", to: "b").isEmpty)
        #expect(topics(try books.update(["id": "b", "alertThreshold80": true])) == ["alert.THRESHOLD_80"])
        #expect(try books.update(["id": "b", "name": "Ops 2"]).isEmpty)
    }

    @Test("a failed update leaves the budget as it was")
    func failedUpdateChangesNothing() throws {
        var books = Books()
        try books.create("b", ["allocations": [openAIAllocation]])
        let before = books["b"]
        expectFailure(.validationFailed, "exceeds budget total") { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(["id": "b", "name": "Renamed", "totalAmount": 400]), at: created)
        }
        #expect(books["b"] == before)
    }

    @Test("an allocation with spend cannot be removed; one without can")
    func removeAllocation() throws {
        var books = Books()
        try books.create("b", ["allocations": [openAIAllocation, apifyAllocation]])
        _ = books.book("10", to: "b")
        expectFailure(.conflict, "cannot be removed") { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(["id": "b", "allocations": [apifyAllocation]]), at: created)
        }
        _ = try books.update(["id": "b", "allocations": [openAIAllocation]])
        #expect(books["b"].allocations.map(\.id) == ["al_openai"])
        #expect(books["b"].allocations.first?.spentAmount == money("10"))
    }

    @Test("an allocation resent with another amount keeps its id and spend")
    func resendAllocation() throws {
        var books = Books()
        try books.create("b", ["allocations": [openAIAllocation]])
        _ = books.book("10", to: "b")
        _ = try books.update(["id": "b", "allocations": [["platform": "openai", "serviceType": "API", "allocatedAmount": 700]]])
        let allocation = try #require(books["b"].allocations.first)
        #expect(allocation.id == "al_openai")
        #expect(allocation.allocatedAmount == money("700"))
        #expect(allocation.spentAmount == money("10"))
    }

    @Test("a deactivated allocation with spend can be sent again and reactivated")
    func reactivateAllocation() throws {
        var books = Books()
        try books.create("b", ["allocations": [openAIAllocation]])
        _ = books.book("10", to: "b")
        let off: JSONValue = ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 500, "isActive": false]
        _ = try books.update(["id": "b", "allocations": [off]])
        #expect(books["b"].allocations.first?.isActive == false)
        #expect(books["b"].allocations.first?.id == "al_openai")
        // Resending the same list (e.g. to change the total) must not drop the spent allocation.
        let on: JSONValue = ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 500, "isActive": true]
        let messages = try books.update(["id": "b", "allocations": [on]])
        #expect(messages.isEmpty)
        #expect(books["b"].allocations.map(\.id) == ["al_openai"])
        #expect(books["b"].allocations.first?.spentAmount == money("10"))
        #expect(books["b"].allocations.first?.isActive == true)
    }
}

struct LedgerValidationTests {
    static let createFailures: [ArgsCase] = [
        ArgsCase("allocations over the total",
         ["allocations": [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 800],
                          ["platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 500]]],
         .validationFailed, "Total allocation (1300) exceeds budget total (1000)"),
        ArgsCase("totalAmount 0 for MONTHLY", ["totalAmount": 0], .validationFailed, "totalAmount must be greater than 0"),
        ArgsCase("no totalAmount for MONTHLY", ["totalAmount": .null], .validationFailed, "totalAmount is required"),
        ArgsCase("negative totalAmount", ["totalAmount": -5], .validationFailed, "negative"),
        ArgsCase("PROJECT without endDate", ["budgetType": "PROJECT"], .validationFailed, "PROJECT budgets need an endDate"),
        ArgsCase("endDate before startDate", ["endDate": "2026-02-28"], .validationFailed, "endDate must not be before startDate"),
        ArgsCase("RFC 3339 endDate before startDate", ["endDate": "2026-02-28T23:59:59Z"], .validationFailed, "endDate must not be before startDate"),
        ArgsCase("bad startDate", ["startDate": "March"], .validationFailed, "startDate"),
        ArgsCase("no startDate", ["startDate": .null], .validationFailed, "startDate is required"),
        ArgsCase("unknown budgetType", ["budgetType": "WEEKLY"], .validationFailed, "budgetType"),
        ArgsCase("no name", ["name": .null], .validationFailed, "name is required"),
        ArgsCase("empty name", ["name": ""], .validationFailed, "name is required"),
        ArgsCase("bad currency", ["currency": "DOLLAR"], .validationFailed, "currency"),
        ArgsCase("the same allocation twice (platform any case)",
         ["allocations": [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 100],
                          ["platform": "openai", "serviceType": "API", "allocatedAmount": 100]]],
         .validationFailed, "unique"),
        ArgsCase("an allocation without serviceType", ["allocations": [["platform": "OpenAI", "allocatedAmount": 100]]], .validationFailed, "allocations[0].serviceType"),
        ArgsCase("an unknown parent", ["parentId": "nobody"], .notFound, "parent budget nobody not found"),
        ArgsCase("its own parent (a cycle, though it does not exist yet)", ["id": "self", "parentId": "self"], .validationFailed, "cycle of parents"),
        ArgsCase("a parent in another currency", ["parentId": "eur-parent", "currency": "USD"], .validationFailed, "parent's currency (EUR)"),
        ArgsCase("an existing id", ["id": "eur-parent"], .conflict, "already exists"),
        ArgsCase("an id of 129 characters", ["id": .string(String(repeating: "i", count: 129))], .validationFailed, "id"),
    ]

    @Test("budget.create validation", arguments: createFailures)
    func createFails(c: ArgsCase) throws {
        var books = Books()
        try books.create("eur-parent", ["currency": "EUR"])
        expectFailure(c.code, c.message, exactly: c.name == "allocations over the total") { () throws(LedgerError) in
            _ = try books.ledger.createBudget(Args(merged(monthlyArgs, c.args)), id: "new", at: created)
        }
        #expect(books.ledger["new"] == nil)
        #expect(books.ledger.order == ["eur-parent"])
    }

    @Test("a child budget without a currency of its own takes its parent's, when created or moved under it")
    func childTakesItsParentsCurrency() throws {
        var books = Books()
        try books.create("eur-parent", ["currency": "EUR"])
        #expect(try books.create("child", ["parentId": "eur-parent"]).currency == "EUR")
        #expect(try books.create("usd", [:]).currency == "USD")
        _ = try books.update(["id": "usd", "parentId": "eur-parent"])
        #expect(books["usd"].currency == "EUR")
        #expect(books["usd"].parentId == "eur-parent")
        // Moved back to the top level it keeps its currency; one with costs cannot take another.
        _ = try books.update(["id": "usd", "parentId": .null])
        #expect(books["usd"].currency == "EUR")
        try books.create("gbp-parent", ["currency": "GBP"])
        _ = books.book("1", to: "child")
        expectFailure(.conflict, "currency of budget child cannot change") { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(["id": "child", "parentId": "gbp-parent"]), at: created)
        }
        #expect(books["child"].currency == "EUR")
    }

    @Test("allocations are unique by (platform, serviceType) even when the first one is inactive")
    func duplicateInactiveAllocation() throws {
        var books = Books()
        expectFailure(.validationFailed, "unique") { () throws(LedgerError) in
            _ = try books.ledger.createBudget(Args(merged(monthlyArgs, [
                "allocations": [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 100, "isActive": false],
                                ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 100]],
            ])), id: "new", at: created)
        }
        #expect(books.ledger["new"] == nil)
    }

    @Test("valid budgets: defaults and derived periods")
    func createSucceeds() throws {
        var books = Books()
        let b = try books.create("b", ["currency": "eur", "selector": ["projectId": "p"]])
        #expect(b.currency == "EUR")
        #expect(b.status == .active)
        #expect(b.alertThreshold80 && b.alertThreshold90 && b.alertThreshold100)
        #expect(!b.autoRenewal)
        #expect(b.period.start == t("2026-03-01T00:00:00Z"))
        #expect(b.period.endExclusive == t("2026-04-01T00:00:00Z"))
        #expect(b.createdAt == created)
        #expect(b.selector?["projectId"] == .string("p"))
        let project = try books.create("p", ["budgetType": "PROJECT", "endDate": "2026-03-01"])
        #expect(project.period.endExclusive == t("2026-03-02T00:00:00Z"))
        let unlimited = try books.create("u", ["budgetType": "UNLIMITED", "totalAmount": .null])
        #expect(unlimited.period.endExclusive == nil)
        #expect(unlimited.totalAmount == .zero)
        // Creation order is kept for routing's tie-break.
        #expect(books.ledger.order == ["b", "p", "u"])
        #expect(books["b"].ordinal < books["p"].ordinal && books["p"].ordinal < books["u"].ordinal)
        // An empty selector is no selector.
        #expect(try books.create("s", ["selector": [:]]).selector == nil)
        // UNLIMITED allocations are not limited by a total.
        let big = try books.create("u-alloc", ["budgetType": "UNLIMITED", "totalAmount": .null, "allocations": [openAIAllocation]])
        #expect(big.allocations.count == 1)
    }

    static let updateFailures: [ArgsCase] = [
        ArgsCase("status EXCEEDED", ["status": "EXCEEDED"], .validationFailed, "EXCEEDED"),
        ArgsCase("status COMPLETED", ["status": "COMPLETED"], .validationFailed, "COMPLETED"),
        ArgsCase("unknown status", ["status": "DONE"], .validationFailed, "status"),
        ArgsCase("a parent that is its own descendant", ["parentId": "grandchild"], .validationFailed, "cycle"),
        ArgsCase("a parent that is itself", ["parentId": "root"], .validationFailed, "cycle"),
        ArgsCase("total below the allocations", ["totalAmount": 400], .validationFailed, "Total allocation (500) exceeds budget total (400)"),
        ArgsCase("total 0", ["totalAmount": 0], .validationFailed, "totalAmount must be greater than 0"),
        ArgsCase("endDate before startDate", ["endDate": "2026-01-01"], .validationFailed, "endDate must not be before startDate"),
        ArgsCase("PROJECT without endDate", ["budgetType": "PROJECT"], .validationFailed, "PROJECT budgets need an endDate"),
        ArgsCase("a currency its children do not have", ["currency": "EUR"], .validationFailed, "children"),
        ArgsCase("an empty name", ["name": ""], .validationFailed, "name"),
    ]

    @Test("budget.update validation", arguments: updateFailures)
    func updateFails(c: ArgsCase) throws {
        var books = Books()
        try books.create("root", ["allocations": [openAIAllocation]])
        try books.create("child", ["parentId": "root"])
        try books.create("grandchild", ["parentId": "child"])
        let before = books["root"]
        expectFailure(c.code, c.message) { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(merged(["id": "root"], c.args)), at: created)
        }
        #expect(books["root"] == before)
    }

    @Test("budget.update of an unknown id is NOT_FOUND")
    func updateUnknown() {
        var books = Books()
        expectFailure(.notFound, "ghost") { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(["id": "ghost", "name": "x"]), at: created)
        }
    }

    static let lockedFields: [ArgsCase] = [
        ArgsCase("currency", ["currency": "EUR"], .conflict, "currency"),
        ArgsCase("startDate", ["startDate": "2026-03-02"], .conflict, "startDate"),
        ArgsCase("budgetType", ["budgetType": "QUARTERLY"], .conflict, "budgetType"),
        ArgsCase("parentId", ["parentId": "other"], .conflict, "parentId"),
    ]

    @Test("once a budget or a descendant has costs, currency, startDate, budgetType and parentId are locked (CONFLICT)", arguments: lockedFields)
    func lockedAfterCosts(c: ArgsCase) throws {
        let change = c.args
        var books = Books()
        try books.create("other")
        try books.create("b")
        try books.create("parent-of-c")
        try books.create("c", ["parentId": "parent-of-c"])
        // Before any cost the change is allowed (tried on a copy).
        var copy = books
        _ = try copy.update(merged(["id": "b"], change))
        #expect(copy["b"] != books["b"])
        _ = books.book("1", to: "b")
        expectFailure(c.code, c.message) { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(merged(["id": "b"], change)), at: created)
        }
        // A descendant's cost locks the ancestor as well.
        _ = books.book("1", to: "c")
        expectFailure(c.code, c.message) { () throws(LedgerError) in
            _ = try books.ledger.updateBudget(Args(merged(["id": "parent-of-c"], change)), at: created)
        }
        // Other fields can still change.
        _ = try books.update(["id": "b", "name": "Renamed", "totalAmount": 5000, "endDate": "2026-04-15"])
        #expect(books["b"].name == "Renamed")
        #expect(books["b"].period.endExclusive == t("2026-04-16T00:00:00Z"))
    }

    @Test("a changed spelling of the same start instant is not a change of startDate")
    func sameStartInstant() throws {
        var books = Books()
        try books.create("b")
        _ = books.book("1", to: "b")
        _ = try books.update(["id": "b", "startDate": "2026-03-01T00:00:00Z"])
        #expect(books["b"].period.start == t("2026-03-01T00:00:00Z"))
    }
}

struct LedgerSummaryTests {
    private func summary(_ budget: Budget, at now: String) throws -> JSONObject {
        try #require(budget.summary(at: t(now)).objectValue)
    }

    static let rates: [(String, String, String, String, JSONValue)] = [
        // (spent, now, burnRate, spentPercentage, projectedEndDate)
        ("100", "2026-03-11T00:00:00Z", "10", "10", "2026-06-09T00:00:00Z"),
        // After the end the rate divides by the whole period (31 days) and projects from now.
        ("310", "2026-04-10T00:00:00Z", "10", "31", "2026-06-18T00:00:00Z"),
        // Less than one day counts as one day.
        ("50", "2026-03-01T06:00:00Z", "50", "5", "2026-03-20T06:00:00Z"),
        ("0", "2026-03-11T00:00:00Z", "0", "0", .null),
        // Over the total: the money has run out now.
        ("1200", "2026-03-11T00:00:00Z", "120", "120", "2026-03-11T00:00:00Z"),
        // Past ~1.97e15 spent, spent × 86,400 × 10⁹ overflowed Int128 and budget.get trapped
        // (an audit killed the daemon): 2e15 over 31 days.
        ("2000000000000000", "2026-04-10T00:00:00Z", "64516129032258.064516129", "200000000000000", "2026-04-10T00:00:00Z"),
        // A credit larger than the spend: the rate rounds on its magnitude, like a positive one
        // (−2 over 3 days was −0.666666666, truncated).
        ("-2", "2026-03-04T00:00:00Z", "-0.666666667", "-0.2", .null),
    ]

    @Test("burnRate = spent ÷ max(1, days so far); projectedEndDate = when the rest runs out", arguments: rates)
    func burnRate(spent: String, now: String, rate: String, percentage: String, projected: JSONValue) throws {
        var books = Books()
        try books.create("b")
        if spent != "0" { _ = books.book(spent, to: "b") }
        let s = try summary(books["b"], at: now)
        #expect(s["burnRate"] == .number(rate))
        #expect(s["spentPercentage"] == .number(percentage))
        #expect(s["projectedEndDate"] == projected)
        #expect(s["totalSpent"] == .number(money(spent).description))
        #expect(s["totalRemaining"] == .number((money("1000") - money(spent)).description))
        #expect(s["budget"]?["id"] == .string("b"))
    }

    static let inexactRates: [(String, String, String, String)] = [
        // (total, spent, burnRate shown, projectedEndDate)
        // 100 in 3 days leaves 900 for exactly 27 more days; the rate shown is rounded to 1e-9.
        ("1000", "100", "33.333333333", "2026-03-31T00:00:00Z"),
        // One nano-unit in 3 days leaves 9 for 27 days, although the rate shown rounds to 0.
        ("0.00000001", "0.000000001", "0", "2026-03-31T00:00:00Z"),
        // Past Timestamp's range (2262): 4999.994 left at 0.002 a day is 2,499,997 days (it was
        // null, which means "no spend"); past RFC 3339's last year, that year's last instant.
        ("5000", "0.006", "0.002", "8870-12-06T00:00:00Z"),
        ("1000000000000", "0.000000001", "0", "9999-12-31T23:59:59.999999999Z"),
    ]

    @Test("projectedEndDate runs out the remainder at the exact rate, not at the rounded burnRate", arguments: inexactRates)
    func projectedAtExactRate(total: String, spent: String, rate: String, projected: String) throws {
        var books = Books()
        try books.create("b", ["totalAmount": .number(total)])
        _ = books.book(spent, to: "b")
        let s = try summary(books["b"], at: "2026-03-04T00:00:00Z")
        #expect(s["burnRate"] == .number(rate))
        #expect(s["projectedEndDate"] == .string(projected))
    }

    @Test("an UNLIMITED budget: totalRemaining null, spentPercentage 0, no projected end")
    func unlimitedSummary() throws {
        var books = Books()
        try books.create("u", ["budgetType": "UNLIMITED", "totalAmount": .null])
        _ = books.book("100", to: "u")
        let s = try summary(books["u"], at: "2026-03-11T00:00:00Z")
        #expect(s["totalRemaining"] == .null)
        #expect(s["spentPercentage"] == .number("0"))
        #expect(s["projectedEndDate"] == .null)
        #expect(s["burnRate"] == .number("10"))
        #expect(s["totalSpent"] == .number("100"))
        #expect(s["budget"]?["remainingAmount"] == .null)
    }

    @Test("the summary lists allocations with spent and remaining")
    func allocationsInSummary() throws {
        var books = Books()
        try books.create("b", ["allocations": [openAIAllocation]])
        _ = books.book("120.5", to: "b")
        let s = try summary(books["b"], at: "2026-03-11T00:00:00Z")
        let allocation = try #require(s["allocations"]?.arrayValue?.first)
        #expect(allocation["spentAmount"] == .number("120.5"))
        #expect(allocation["remainingAmount"] == .number("379.5"))
        #expect(allocation["allocatedAmount"] == .number("500"))
        #expect(allocation["platform"] == .string("OpenAI"))
    }
}
