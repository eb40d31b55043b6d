import BudgetCore
import Testing

// allocation.add / allocation.update / allocation.remove on an existing budget: the validation of
// budget.create (sum ≤ total unless UNLIMITED, unique (platform, serviceType), no removal with
// spend), and ALLOCATION_DEPLETED re-armed or fired when the amount moves past the spend.

private func instant(_ text: String) -> Timestamp {
    try! Timestamp(rfc3339: text)
}

private func amount(_ text: String) -> Money {
    try! Money(parsing: text)
}

private let now = instant("2026-03-12T00:00:00Z")

/// Ops: MONTHLY March 2026, 1000 USD, OpenAI/API 400 (id al_openai) with 300 spent.
private func fixture() throws -> Ledger {
    var ledger = Ledger()
    _ = try ledger.createBudget(Args([
        "name": "Ops", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01",
        "allocations": [["id": "al_openai", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 400, "priority": "HIGH"]],
    ]), id: "ops", at: instant("2026-03-01T00:00:00Z"))
    _ = try ledger.createBudget(Args([
        "name": "Other", "budgetType": "UNLIMITED", "startDate": "2026-03-01",
        "allocations": [["id": "al_other", "platform": "AWS", "serviceType": "STORAGE", "allocatedAmount": 10]],
    ]), id: "other", at: instant("2026-03-01T00:00:00Z"))
    _ = ledger.book(amount: amount("300"), budgetId: "ops", platform: "OpenAI", serviceType: .api, eventId: "e1", at: instant("2026-03-10T00:00:00Z"))
    return ledger
}

private func alerts(_ messages: [OutboundMessage]) -> [AlertRecord] {
    messages.compactMap { if case .alert(let a) = $0 { a } else { nil } }
}

struct AllocationFailure: Sendable, CustomTestStringConvertible {
    var name: String
    var op: String
    var args: JSONObject
    var code: LedgerError.Code
    var message: String

    init(_ name: String, _ op: String, _ args: JSONObject, _ code: LedgerError.Code, _ message: String) {
        self.name = name
        self.op = op
        self.args = args
        self.code = code
        self.message = message
    }

    var testDescription: String { name }
}

private let failures: [AllocationFailure] = [
    AllocationFailure("add: unknown budget", "add", ["budgetId": "nope", "platform": "X", "serviceType": "API", "allocatedAmount": 1],
                      .notFound, "no budget nope"),
    AllocationFailure("add: budgetId missing", "add", ["platform": "X", "serviceType": "API", "allocatedAmount": 1],
                      .validationFailed, "budgetId is required"),
    AllocationFailure("add: over the total", "add", ["budgetId": "ops", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": "600.000000001"],
                      .validationFailed, "Total allocation (1000.000000001) exceeds budget total (1000)"),
    AllocationFailure("add: the same platform (any case) and service again", "add",
                      ["budgetId": "ops", "platform": "openai", "serviceType": "API", "allocatedAmount": 1],
                      .conflict, "budget ops already has allocation OpenAI/API (al_openai): change it with allocation.update"),
    AllocationFailure("add: an id another budget uses", "add",
                      ["budgetId": "ops", "id": "al_other", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 1],
                      .conflict, "allocation id al_other is already used by budget other"),
    AllocationFailure("add: an id this budget uses", "add",
                      ["budgetId": "ops", "id": "al_openai", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 1],
                      .conflict, "allocation id al_openai is already used by OpenAI/API of budget ops"),
    AllocationFailure("add: serviceType missing", "add", ["budgetId": "ops", "platform": "Apify", "allocatedAmount": 1],
                      .validationFailed, "serviceType is required (API SCRAPING STORAGE PROCESSING MONITORING OTHER)"),
    AllocationFailure("add: amount missing", "add", ["budgetId": "ops", "platform": "Apify", "serviceType": "SCRAPING"],
                      .validationFailed, "allocatedAmount is required"),
    AllocationFailure("add: negative amount", "add", ["budgetId": "ops", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": -5],
                      .validationFailed, "allocatedAmount: negative amount"),
    AllocationFailure("add: bad priority", "add", ["budgetId": "ops", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 5, "priority": "URGENT"],
                      .validationFailed, "priority must be one of CRITICAL HIGH MEDIUM LOW"),
    AllocationFailure("update: unknown id", "update", ["budgetId": "ops", "id": "al_x", "allocatedAmount": 1],
                      .notFound, "budget ops has no allocation al_x"),
    AllocationFailure("update: unknown platform", "update", ["budgetId": "ops", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 1],
                      .notFound, "budget ops has no allocation Apify/SCRAPING"),
    AllocationFailure("update: no way to name the allocation", "update", ["budgetId": "ops", "allocatedAmount": 1],
                      .validationFailed, "name the allocation by id, or by platform and serviceType"),
    AllocationFailure("update: over the total", "update", ["budgetId": "ops", "id": "al_openai", "allocatedAmount": 1001],
                      .validationFailed, "Total allocation (1001) exceeds budget total (1000)"),
    AllocationFailure("update: isActive not a boolean", "update", ["budgetId": "ops", "id": "al_openai", "isActive": "no"],
                      .validationFailed, "isActive must be true or false"),
    AllocationFailure("remove: with spend", "remove", ["budgetId": "ops", "platform": "OPENAI", "serviceType": "API"],
                      .conflict, "allocation OpenAI/API (al_openai) has spent 300 USD and cannot be removed; set isActive false with allocation.update instead"),
    AllocationFailure("remove: unknown", "remove", ["budgetId": "ops", "id": "al_x"], .notFound, "budget ops has no allocation al_x"),
]

struct AllocationOpsTests {
    @Test("failures leave the budget as it was", arguments: failures)
    func failure(_ f: AllocationFailure) throws {
        var ledger = try fixture()
        let before = ledger.budgetsInOrder
        do {
            switch f.op {
            case "add": _ = try ledger.addAllocation(Args(f.args), at: now)
            case "update": _ = try ledger.updateAllocation(Args(f.args), at: now)
            default: _ = try ledger.removeAllocation(Args(f.args), at: now)
            }
            Issue.record("expected \(f.code.rawValue)")
        } catch {
            #expect(error.code == f.code)
            #expect(error.message == f.message)
        }
        #expect(ledger.budgetsInOrder == before)
    }

    @Test("add: a new allocation counts costs from then on, with its priority and a generated id")
    func add() throws {
        var ledger = try fixture()
        let (b, messages) = try ledger.addAllocation(Args([
            "budgetId": "ops", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 600, "priority": "LOW",
        ]), at: now)
        #expect(messages.isEmpty)
        #expect(b.allocations.count == 2)
        let a = try #require(b.allocations.last)
        #expect(a.id.hasPrefix("al_") && a.id.count == 19)
        #expect((a.platform, a.serviceType, a.allocatedAmount, a.spentAmount, a.priority, a.isActive) == ("Apify", .scraping, amount("600"), .zero, .low, true))
        #expect(ledger["ops"] == b)
        let booking = ledger.book(amount: amount("5"), budgetId: "ops", platform: "apify", serviceType: .scraping, eventId: nil, at: now)
        #expect(booking.allocationId == a.id)
        #expect(ledger["ops"]?.allocations.last?.spentAmount == amount("5"))
    }

    @Test("add: an UNLIMITED budget's allocations may add up to anything")
    func addUnlimited() throws {
        var ledger = try fixture()
        let (b, _) = try ledger.addAllocation(Args([
            "budgetId": "other", "id": "al_big", "platform": "GCP", "serviceType": "PROCESSING", "allocatedAmount": "1000000000000",
        ]), at: now)
        #expect(b.allocations.map(\.id) == ["al_other", "al_big"])
    }

    @Test("update: lowering to the spend fires ALLOCATION_DEPLETED once; raising re-arms it")
    func depletion() throws {
        var ledger = try fixture()
        let (lowered, fired) = try ledger.updateAllocation(Args(["budgetId": "ops", "id": "al_openai", "allocatedAmount": 300]), at: now)
        let alert = try #require(alerts(fired).first)
        #expect(fired.count == 1)
        #expect(alert.type == .allocationDepleted)
        #expect(alert.platform == "OpenAI")
        #expect(alert.serviceType == .api)
        #expect(alert.spentAmount == amount("300"))
        #expect(alert.totalAmount == amount("300"))
        #expect(alert.spentPercentage == "100")
        #expect(alert.eventId == nil)
        #expect(alert.triggeredAt == now)
        #expect(lowered.allocations[0].depletedFired)

        // Lower again: already fired, nothing new.
        #expect(try ledger.updateAllocation(Args(["budgetId": "ops", "id": "al_openai", "allocatedAmount": 250]), at: now).1.isEmpty)

        // Raise above the spend: re-armed, nothing published.
        let (raised, none) = try ledger.updateAllocation(Args(["budgetId": "ops", "platform": "openai", "serviceType": "API", "allocatedAmount": "300.5"]), at: now)
        #expect(none.isEmpty)
        #expect(!raised.allocations[0].depletedFired)
        #expect(raised.allocations[0].remainingAmount == amount("0.5"))

        // The next cost that reaches it fires again.
        let again = alerts(ledger.book(amount: amount("0.5"), budgetId: "ops", platform: "OpenAI", serviceType: .api, eventId: "e2", at: now).messages)
        #expect(again.map(\.type) == [.allocationDepleted])
        #expect(again.first?.eventId == "e2")
    }

    @Test("update: lowering below the spend fires with the allocation's own percentage")
    func lowerBelow() throws {
        var ledger = try fixture()
        let (_, messages) = try ledger.updateAllocation(Args(["budgetId": "ops", "id": "al_openai", "allocatedAmount": 200]), at: now)
        let alert = try #require(alerts(messages).first)
        #expect(alert.spentPercentage == "150")
        #expect(alert.totalAmount == amount("200"))
        #expect(alert.message == "Ops: allocation OpenAI/API has spent 300.00 of 200.00 USD")
    }

    @Test("update: priority and isActive change; an inactive allocation stops counting")
    func priorityAndActive() throws {
        var ledger = try fixture()
        let (b, messages) = try ledger.updateAllocation(Args(["budgetId": "ops", "id": "al_openai", "priority": "CRITICAL", "isActive": false]), at: now)
        #expect(messages.isEmpty)
        #expect(b.allocations[0].priority == .critical)
        #expect(!b.allocations[0].isActive)
        #expect(b.allocations[0].allocatedAmount == amount("400"))
        #expect(ledger.book(amount: amount("1"), budgetId: "ops", platform: "OpenAI", serviceType: .api, eventId: nil, at: now).allocationId == nil)
        #expect(ledger["ops"]?.allocations[0].spentAmount == amount("300"))
    }

    @Test("remove: an allocation without spend goes; its platform then counts on the budget alone")
    func remove() throws {
        var ledger = try fixture()
        _ = try ledger.addAllocation(Args(["budgetId": "ops", "id": "al_apify", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 100]), at: now)
        let (b, messages) = try ledger.removeAllocation(Args(["budgetId": "ops", "id": "al_apify"]), at: now)
        #expect(messages.isEmpty)
        #expect(b.allocations.map(\.id) == ["al_openai"])
        #expect(ledger.book(amount: amount("1"), budgetId: "ops", platform: "Apify", serviceType: .scraping, eventId: nil, at: now).allocationId == nil)
        // And it can be added again, under the same id.
        #expect(try ledger.addAllocation(Args(["budgetId": "ops", "id": "al_apify", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 100]), at: now).0.allocations.count == 2)
    }

    @Test("budget.create refuses an allocation id another budget uses (CONFLICT), and one given twice")
    func createIds() throws {
        var ledger = try fixture()
        do {
            _ = try ledger.createBudget(Args([
                "name": "X", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-03-01",
                "allocations": [["id": "al_openai", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 1]],
            ]), id: "x", at: now)
            Issue.record("expected CONFLICT")
        } catch {
            #expect(error == LedgerError(.conflict, "allocation id al_openai is already used by budget ops"))
        }
        do {
            _ = try ledger.createBudget(Args([
                "name": "X", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-03-01",
                "allocations": [
                    ["id": "al_same", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 1],
                    ["id": "al_same", "platform": "Apify", "serviceType": "API", "allocatedAmount": 1],
                ],
            ]), id: "x", at: now)
            Issue.record("expected VALIDATION_FAILED")
        } catch {
            #expect(error == LedgerError(.validationFailed, "allocation id al_same appears twice"))
        }
        #expect(ledger["x"] == nil)
    }

    /// A cost's platform matches an allocation's as `lowercased()` compares them, also where the
    /// ASCII shortcut must not decide: letters against the characters 32 apart that are not
    /// letters (`@` and a backquote), other lengths, and non-ASCII text that lowercases to ASCII
    /// (the Kelvin sign) or to other non-ASCII (Greek).
    @Test("platforms match case-insensitively exactly as lowercased() compares them")
    func platformsMatchAsLowercased() throws {
        var ledger = Ledger()
        let platforms = ["Kafka", "a@b", "x[y", "Ωmega", "OpenAI"]
        _ = try ledger.createBudget(Args([
            "name": "P", "budgetType": "UNLIMITED", "startDate": "2026-03-01",
            "allocations": .array(platforms.map { .object(["platform": .string($0), "serviceType": "API", "allocatedAmount": 1]) }),
        ]), id: "p", at: now)
        let candidates = [
            "kafka", "KAFKA", "Kafka", "\u{212A}afka", "kafk", "kafkas", "Kafk\u{0430}",
            "a@b", "A@B", "a`b", "A`B", "x[y", "x{y", "X{Y",
            "ωmega", "ΩMEGA", "omega", "openai", "OPENAİ", "openai ", "",
        ]
        let allocations = try #require(ledger["p"]).allocations
        #expect(allocations.map(\.platform) == platforms)
        var matches = 0
        for allocation in allocations {
            for candidate in candidates {
                let expected = allocation.platform.lowercased() == candidate.lowercased()
                #expect(allocation.hasKey(platform: candidate, serviceType: .api) == expected, "\(allocation.platform) / \(candidate)")
                #expect(!allocation.hasKey(platform: candidate, serviceType: .storage))
                matches += expected ? 1 : 0
            }
        }
        // kafka ×4 (with the Kelvin sign), a@b ×2, x[y, ωmega ×2, openai (not OPENAİ, whose İ
        // lowercases to i and a combining dot): the list holds both kinds.
        #expect(matches == 10)
    }

    @Test("budget.update's allocations keep one with spend by platform and serviceType, not by id: giving its id to another platform is refused, its spend kept (an audit's OpenAI/API spend lost to a 'Renamed' allocation)")
    func updateCannotDropSpentAllocationByReusingItsId() throws {
        var ledger = try fixture()
        let before = ledger["ops"]
        #expect(throws: LedgerError(.conflict, "allocation OpenAI/API has spend and cannot be removed")) {
            try ledger.updateBudget(Args(["id": "ops", "allocations": [
                ["id": "al_openai", "platform": "Renamed", "serviceType": "API", "allocatedAmount": 400],
            ]]), at: now)
        }
        #expect(ledger["ops"] == before)
        // Matched by platform and serviceType (any case), the allocation and its spend stay.
        let (b, _) = try ledger.updateBudget(Args(["id": "ops", "allocations": [
            ["platform": "openai", "serviceType": "API", "allocatedAmount": 500],
            ["id": "al_new", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 100],
        ]]), at: now)
        #expect(b.allocations.map { "\($0.id) \($0.platform) \($0.spentAmount) \($0.allocatedAmount)" } == ["al_openai OpenAI 300 500", "al_new Apify 0 100"])
        // Two allocations given one id: refused.
        #expect(throws: LedgerError(.validationFailed, "allocation id al_x appears twice")) {
            try ledger.updateBudget(Args(["id": "ops", "allocations": [
                ["platform": "openai", "serviceType": "API", "allocatedAmount": 500],
                ["id": "al_x", "platform": "GCP", "serviceType": "PROCESSING", "allocatedAmount": 10],
                ["id": "al_x", "platform": "AWS", "serviceType": "STORAGE", "allocatedAmount": 10],
            ]]), at: now)
        }
    }

}
