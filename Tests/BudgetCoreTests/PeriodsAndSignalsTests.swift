import BudgetCore
import Testing

// Issue 5 on a mock clock: every instant is passed in. Period rollover and renewal,
// restart after a period ended, SPENDING_SPIKE windows, LOW_BUDGET timing.

private func at(_ text: String) -> Timestamp { try! Timestamp(rfc3339: text) }
private func money(_ text: String) -> Money { try! Money(parsing: text) }

private func alertTypes(_ messages: [OutboundMessage]) -> [String] { messages.map(\.topic) }

/// A counter for successor ids, so tests know them in advance.
private final class IDCounter {
    var n = 0
    func next() -> String { n += 1; return "r\(n)" }
}

private func ledger(_ budgets: [(String, JSONObject)], at now: Timestamp = at("2026-01-01T00:00:00Z")) throws -> Ledger {
    var l = Ledger()
    for (id, args) in budgets { _ = try l.createBudget(Args(args), id: id, at: now) }
    return l
}

/// No daily rollup (for calls that move no spend).
func noSpend(_ id: String) -> [RollupRow] { [] }

/// A ledger with the daily rollup a store would keep of it: each booking counts in every budget
/// of its chain, as the daemon's rollup does; moved spend is added as `rollOver` returns it.
private struct Books {
    var ledger: Ledger
    var rollup: [String: [RollupRow]] = [:]

    mutating func book(_ amount: String, to id: String, platform: String = "OpenAI", serviceType: ServiceType = .api, on time: String) {
        let t = at(time)
        let booking = ledger.book(amount: money(amount), budgetId: id, platform: platform, serviceType: serviceType, eventId: nil, costTime: t, at: t)
        for touched in booking.touchedBudgets {
            rollup[touched, default: []].append(RollupRow(day: t.civilDate.description, platform: platform, serviceType: serviceType, amount: money(amount), count: 1))
        }
    }

    mutating func rollOver(at time: String, ids: IDCounter) -> RollOverResult {
        let rollup = self.rollup
        let r = ledger.rollOver(at: at(time), spendOf: { rollup[$0] ?? [] }, makeID: ids.next)
        for moved in r.daily { self.rollup[moved.budgetId, default: []].append(moved.spend) }
        return r
    }

    /// A budget's rollup summed, by platform.
    func rolledUp(_ id: String) -> [String: Money] {
        var sums: [String: Money] = [:]
        for row in rollup[id] ?? [] { sums[row.platform, default: .zero] += row.amount }
        return sums.filter { $0.value != .zero }
    }
}

private func monthly(_ start: String, total: Int = 1000, renew: Bool = true, extra: JSONObject = [:]) -> JSONObject {
    var o: JSONObject = ["name": "Ops", "budgetType": "MONTHLY", "totalAmount": .number(String(total)), "startDate": .string(start), "autoRenewal": .bool(renew)]
    for (k, v) in extra { o[k] = v }
    return o
}

@Suite struct RolloverTests {
    @Test func aMonthEndsCompletedAndRenewsWithTheSameTotalAllocationsAndThresholds() throws {
        var l = try ledger([("m", monthly("2026-03-01", extra: [
            "alertThreshold90": false,
            "allocations": [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 600, "priority": "HIGH"]],
        ]))])
        _ = l.book(amount: money("850"), budgetId: "m", platform: "OpenAI", serviceType: .api, eventId: "e", costTime: at("2026-03-20T00:00:00Z"), at: at("2026-03-20T00:00:00Z"))
        let ids = IDCounter()
        #expect(l.rollOver(at: at("2026-03-31T23:59:59Z"), spendOf: noSpend, makeID: ids.next).messages.isEmpty)
        let r = l.rollOver(at: at("2026-04-01T00:00:30Z"), spendOf: noSpend, makeID: ids.next)
        #expect(r.changed == ["m", "r1"])
        guard case .status(let s)? = r.messages.first else { Issue.record("no status event"); return }
        #expect(r.messages.count == 1)
        #expect(s.topic == "status.COMPLETED")
        #expect(s.previousStatus == .active)
        let old = try #require(l["m"]), new = try #require(l["r1"])
        #expect(old.status == .completed)
        #expect(old.successorId == "r1")
        #expect(new.predecessorId == "m")
        #expect(new.status == .active)
        #expect(new.period.startSpec.description == "2026-04-01")
        #expect(new.period.endSpec?.description == "2026-04-30")
        #expect(new.totalAmount == money("1000"))
        #expect(new.spentAmount == .zero)
        #expect(new.alertThreshold90 == false)
        #expect(new.fired.isEmpty)
        #expect(new.allocations.map { "\($0.platform)/\($0.allocatedAmount)/\($0.priority.rawValue)/\($0.spentAmount)" } == ["OpenAI/600/HIGH/0"])
        #expect(new.allocations.first?.id != old.allocations.first?.id)
        // Nothing more to do until April ends.
        #expect(l.rollOver(at: at("2026-04-15T00:00:00Z"), spendOf: noSpend, makeID: ids.next).changed.isEmpty)
        #expect(l.nextPeriodEnd == at("2026-05-01T00:00:00Z"))
    }

    @Test func thresholdsFireAgainInTheNextPeriod() throws {
        var l = try ledger([("m", monthly("2026-03-01"))])
        l.settings.lowBudgetMinElapsedHours = 1_000_000
        let first = l.book(amount: money("850"), budgetId: "m", platform: "OpenAI", serviceType: .api, eventId: "a", costTime: at("2026-03-05T00:00:00Z"), at: at("2026-03-05T00:00:00Z"))
        #expect(alertTypes(first.messages) == ["alert.THRESHOLD_80"])
        _ = l.rollOver(at: at("2026-04-01T00:00:00Z"), spendOf: noSpend, makeID: { "next" })
        let second = l.book(amount: money("850"), budgetId: "next", platform: "OpenAI", serviceType: .api, eventId: "b", costTime: at("2026-04-01T00:00:00Z"), at: at("2026-04-01T00:00:00Z"))
        #expect(alertTypes(second.messages) == ["alert.THRESHOLD_80"])
        // A late March event still lands in March and does not re-fire its threshold.
        #expect(l.route(budgetId: nil, metadata: nil, time: at("2026-03-30T00:00:00Z")) == "m")
        let late = l.book(amount: money("10"), budgetId: "m", platform: "OpenAI", serviceType: .api, eventId: "c", costTime: at("2026-03-30T00:00:00Z"), at: at("2026-04-02T00:00:00Z"))
        #expect(late.messages.isEmpty)
    }

    @Test func afterARestartEveryEndedPeriodIsCompletedAndTheChainReachesNow() throws {
        // The daemon was down from January to mid-April: one call brings the chain up to date.
        var l = try ledger([("jan", monthly("2026-01-01")), ("once", monthly("2026-01-01", renew: false))])
        let ids = IDCounter()
        let r = l.rollOver(at: at("2026-04-15T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        let completed = r.messages.compactMap { if case .status(let s) = $0 { s.budgetId } else { nil } }
        #expect(completed == ["jan", "once", "r1", "r2"])
        #expect(l["r3"]?.status == .active)
        #expect(l["r3"]?.period.startSpec.description == "2026-04-01")
        #expect(l["once"]?.successorId == nil)
        // An explicit id follows the chain to the period of the event's time.
        #expect(l.route(budgetId: "jan", metadata: nil, time: at("2026-02-10T00:00:00Z")) == "r1")
        #expect(l.route(budgetId: "jan", metadata: nil, time: at("2026-04-10T00:00:00Z")) == "r3")
        #expect(l.route(budgetId: "jan", metadata: nil, time: at("2026-07-10T00:00:00Z")) == nil)
    }

    @Test("autoRenewal turned on after a budget completed renews it at the next call (an audit's budget that said autoRenewal true and never renewed), and the chain reaches now")
    func autoRenewalTurnedOnAfterCompletion() throws {
        var l = try ledger([("late", monthly("2026-01-01", renew: false))])
        let ids = IDCounter()
        _ = l.rollOver(at: at("2026-02-10T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        #expect(l["late"]?.status == .completed)
        #expect(l["late"]?.successorId == nil)
        #expect(l.nextPeriodEnd == nil)
        _ = try l.updateBudget(Args(["id": "late", "autoRenewal": true]), at: at("2026-03-10T00:00:00Z"))
        // The scheduler looks now: the ended period awaits its renewal.
        #expect(l.nextPeriodEnd == at("2026-02-01T00:00:00Z"))
        let r = l.rollOver(at: at("2026-03-10T00:00:01Z"), spendOf: noSpend, makeID: ids.next)
        // No second status.COMPLETED for "late"; its February successor completes, March's is current.
        let statuses = r.messages.compactMap { if case .status(let s) = $0 { "\(s.budgetId) \(s.status.rawValue)" } else { nil } }
        #expect(statuses == ["r1 COMPLETED"])
        #expect(l["late"]?.successorId == "r1")
        #expect(l["r2"]?.status == .active)
        #expect(l["r2"]?.period.startSpec.description == "2026-03-01")
        #expect(l.nextPeriodEnd == at("2026-04-01T00:00:00Z"))
        #expect(l.rollOver(at: at("2026-03-10T00:00:02Z"), spendOf: noSpend, makeID: ids.next).changed.isEmpty)
    }

    @Test("an explicit id that routes nowhere says why, naming the CANCELLED budget of its chain that covers the time")
    func unroutedReasons() throws {
        var l = try ledger([("jan", monthly("2026-01-01")), ("x", monthly("2026-01-01", renew: false))])
        let ids = IDCounter()
        _ = l.rollOver(at: at("2026-03-15T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        _ = try l.updateBudget(Args(["id": "r1", "status": "CANCELLED"]), at: at("2026-03-15T00:00:00Z"))
        #expect(l.unroutedReason(budgetId: "jan", time: at("2026-02-10T00:00:00Z")) == "budget r1 (renewing jan) is CANCELLED")
        #expect(l.route(budgetId: "jan", metadata: nil, time: at("2026-02-10T00:00:00Z")) == nil)
        // The head CANCELLED: its successors still take what they cover (§4's chain).
        _ = try l.updateBudget(Args(["id": "jan", "status": "CANCELLED"]), at: at("2026-03-15T00:00:00Z"))
        #expect(l.route(budgetId: "jan", metadata: nil, time: at("2026-03-10T00:00:00Z")) == "r2")
        #expect(l.unroutedReason(budgetId: "jan", time: at("2026-01-10T00:00:00Z")) == "budget jan is CANCELLED")
        #expect(l.unroutedReason(budgetId: "x", time: at("2026-03-10T00:00:00Z"), timeName: "costDate") == "budget x does not cover costDate 2026-03-10T00:00:00Z")
        #expect(l.unroutedReason(budgetId: "nope", time: at("2026-03-10T00:00:00Z")) == "unknown budget nope")
    }

    @Test func pausedAndCancelledBudgetsStayPastTheirEndUntilAnOperatorChangesThem() throws {
        var l = try ledger([
            ("p", monthly("2026-01-01", renew: true)), ("c", monthly("2026-01-01", renew: true)),
            ("a", monthly("2026-01-01", renew: false)),
        ])
        _ = try l.updateBudget(Args(["id": "p", "status": "PAUSED"]), at: at("2026-01-10T00:00:00Z"))
        _ = try l.updateBudget(Args(["id": "c", "status": "CANCELLED"]), at: at("2026-01-10T00:00:00Z"))
        let ids = IDCounter()
        let r = l.rollOver(at: at("2026-02-01T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        // Only the ACTIVE one completes; the operators' statuses stay, and nothing renews them.
        #expect(r.changed == ["a"])
        #expect(l["p"]?.status == .paused)
        #expect(l["c"]?.status == .cancelled)
        #expect(l["p"]?.successorId == nil)
        #expect(l.nextPeriodEnd == nil)
        #expect(l.rollOver(at: at("2026-02-01T00:00:05Z"), spendOf: noSpend, makeID: ids.next).changed.isEmpty)
        // Set ACTIVE again, the paused one's period is over: the next tick completes and renews it.
        _ = try l.updateBudget(Args(["id": "p", "status": "ACTIVE"]), at: at("2026-02-03T00:00:00Z"))
        #expect(l.nextPeriodEnd == at("2026-02-01T00:00:00Z"))
        let resumed = l.rollOver(at: at("2026-02-03T00:00:01Z"), spendOf: noSpend, makeID: ids.next)
        #expect(resumed.changed == ["p", "r1"])
        let change = resumed.messages.compactMap { if case .status(let s) = $0 { s } else { nil } }
        #expect(change.map(\.budgetId) == ["p"])
        #expect(change.first?.previousStatus == .active)
        #expect(change.first?.status == .completed)
        #expect(l["p"]?.status == .completed)
        #expect(l["r1"]?.status == .active)
        #expect(l["r1"]?.period.startSpec.description == "2026-02-01")
    }

    @Test func aRenewedChildHangsUnderItsParentsRenewal() throws {
        var l = try ledger([
            ("parent", monthly("2026-01-01", total: 5000)),
            ("child", monthly("2026-01-01", total: 1000, extra: ["parentId": "parent"])),
        ])
        let ids = IDCounter()
        _ = l.rollOver(at: at("2026-02-01T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        #expect(l["parent"]?.successorId == "r1")
        #expect(l["r2"]?.predecessorId == "child")
        #expect(l["r2"]?.parentId == "r1")
    }

    @Test("a child older than its parent (re-parented to a younger budget) hangs under the parent's renewal too (it was left under the completed period)")
    func aChildOlderThanItsParentHangsUnderTheRenewal() throws {
        var l = try ledger([
            ("child", monthly("2026-01-01", total: 1000)),
            ("parent", monthly("2026-01-01", total: 5000)),
        ])
        _ = try l.updateBudget(Args(["id": "child", "parentId": "parent"]), at: at("2026-01-02T00:00:00Z"))
        let ids = IDCounter()
        _ = l.rollOver(at: at("2026-03-01T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        // child → r1 (Feb) → r3 (Mar); parent → r2 (Feb) → r4 (Mar): each under its month's parent.
        for id in ["r1", "r3"] {
            let s = try #require(l[id])
            let p = try #require(l[s.parentId ?? ""], "\(id) has parent \(s.parentId ?? "none")")
            #expect(p.period.covers(s.period.start), "\(id) under \(p.id)")
            #expect(p.predecessorId != nil)
        }
    }

    /// An audit: a child renewed while its parent had no renewal stayed under the parent's
    /// completed period for good, and its costs counted there, not in the parent's renewal.
    @Test("a parent given autoRenewal after its child renewed takes the child at its renewal, with the child's spend and allocations")
    func aParentRenewedLaterTakesItsRenewedChildWithItsSpend() throws {
        var books = Books(ledger: try ledger([
            ("top", ["name": "Top", "budgetType": "UNLIMITED", "totalAmount": 0, "startDate": "2026-01-01"]),
            ("parent", monthly("2026-01-01", total: 100, renew: false, extra: [
                "parentId": "top",
                "allocations": [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 50]],
            ])),
            ("child", monthly("2026-01-01", total: 1000, extra: ["parentId": "parent"])),
        ]))
        books.book("5", to: "child", on: "2026-01-20T00:00:00Z")
        let ids = IDCounter()
        _ = books.rollOver(at: "2026-02-01T00:00:00Z", ids: ids)
        // The child renewed (r1), its parent did not: r1 hangs under the completed January.
        #expect(books.ledger["r1"]?.parentId == "parent")
        books.book("60", to: "r1", on: "2026-02-02T00:00:00Z")
        books.book("25", to: "r1", platform: "Apify", serviceType: .scraping, on: "2026-02-03T00:00:00Z")
        #expect(books.ledger["parent"]?.spentAmount == money("90"))
        _ = try books.ledger.updateBudget(Args(["id": "parent", "autoRenewal": true]), at: at("2026-02-04T00:00:00Z"))
        let r = books.rollOver(at: "2026-02-04T00:00:01Z", ids: ids)
        // The parent's February (r2) takes the child's February, and the 85 it spent.
        let l = books.ledger
        #expect(l["parent"]?.successorId == "r2")
        #expect(l["r1"]?.parentId == "r2")
        #expect(l["parent"]?.spentAmount == money("5"))
        #expect(l["parent"]?.costCount == 1)
        #expect(l["parent"]?.allocations.first?.spentAmount == money("5"))
        #expect(l["r2"]?.spentAmount == money("85"))
        #expect(l["r2"]?.costCount == 2)
        #expect(l["r2"]?.allocations.first?.spentAmount == money("60"))
        // The common ancestor keeps its total; the rollup moved with the spend.
        #expect(l["top"]?.spentAmount == money("90"))
        #expect(books.rolledUp("parent") == ["OpenAI": money("5")])
        #expect(books.rolledUp("r2") == ["OpenAI": money("60"), "Apify": money("25")])
        #expect(!r.daily.contains { $0.budgetId == "top" })
        #expect(Set(r.changed).isSuperset(of: ["parent", "r1", "r2"]))
        // 85 of 100 crosses 80 % in the renewal, its allocation (60 of 50) is depleted, and 85
        // in four days of February runs out before its end; the completed January no longer
        // crosses anything.
        let fired = r.messages.compactMap { if case .alert(let a) = $0 { "\(a.budgetId ?? "") \(a.type.rawValue)" } else { nil } }
        #expect(fired == ["r2 THRESHOLD_80", "r2 ALLOCATION_DEPLETED", "r2 LOW_BUDGET"])
        #expect(l["parent"]?.fired.isEmpty == true)
    }

    @Test("a parent PAUSED at its end takes its renewed child when it is resumed and renews")
    func aPausedParentTakesItsRenewedChildWhenItRenews() throws {
        var books = Books(ledger: try ledger([
            ("parent", monthly("2026-01-01", total: 100)),
            ("child", monthly("2026-01-01", total: 1000, extra: ["parentId": "parent"])),
        ]))
        _ = try books.ledger.updateBudget(Args(["id": "parent", "status": "PAUSED"]), at: at("2026-01-20T00:00:00Z"))
        let ids = IDCounter()
        _ = books.rollOver(at: "2026-02-01T00:00:00Z", ids: ids)
        #expect(books.ledger["r1"]?.parentId == "parent")
        books.book("7", to: "r1", on: "2026-02-02T00:00:00Z")
        _ = try books.ledger.updateBudget(Args(["id": "parent", "status": "ACTIVE"]), at: at("2026-02-05T00:00:00Z"))
        _ = books.rollOver(at: "2026-02-05T00:00:01Z", ids: ids)
        let l = books.ledger
        #expect(l["parent"]?.status == .completed)
        #expect(l["r1"]?.parentId == "r2")
        #expect(l["parent"]?.spentAmount == .zero)
        #expect(l["r2"]?.spentAmount == money("7"))
        #expect(books.rolledUp("r2") == ["OpenAI": money("7")])
        #expect(books.rolledUp("parent").isEmpty)
    }

    @Test("a child renewed under a parent that never renews stays there; a child the operator hung under a completed period is not moved")
    func onlyRenewedChildrenMoveAndOnlyToACoveringRenewal() throws {
        var l = try ledger([
            ("parent", monthly("2026-01-01", total: 100, renew: false)),
            ("child", monthly("2026-01-01", total: 1000, extra: ["parentId": "parent"])),
            ("other", monthly("2026-01-01", total: 100)),
        ])
        let ids = IDCounter()
        _ = l.rollOver(at: at("2026-02-01T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        // other → r2 (Feb); the child's r1 stays under January, which has no renewal.
        #expect(l["r1"]?.predecessorId == "child")
        #expect(l["r1"]?.parentId == "parent")
        // A February budget the operator puts under the completed January of `other`: kept there.
        _ = try l.createBudget(Args(["name": "Feb", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-02-01", "parentId": "other"]), id: "feb", at: at("2026-02-02T00:00:00Z"))
        _ = l.rollOver(at: at("2026-03-01T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        #expect(l["feb"]?.parentId == "other")
        #expect(l["r1"]?.successorId != nil)
        #expect(l["parent"]?.successorId == nil)
    }

    /// An audit: a child whose periods began before its parent's was hung under the parent's last
    /// renewal (December) for periods of October and November, or under the parent, depending on
    /// whether the two renewed in the same tick; a November cost then counted in December.
    @Test("a renewed child starting before its parent's renewal stays under the parent, whichever renews first", arguments: [true, false])
    func aChildRenewedBeforeItsParentsPeriodEndsStaysUnderIt(sameTick: Bool) throws {
        var l = try ledger([
            ("P", monthly("2026-11-01", total: 400, renew: false)),
            ("C", ["name": "C", "budgetType": "PROJECT", "totalAmount": 40, "startDate": "2026-09-13", "endDate": "2026-10-02", "parentId": "P"]),
        ], at: at("2026-09-13T00:00:00Z"))
        let ids = IDCounter()
        _ = l.rollOver(at: at("2026-12-05T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        _ = try l.updateBudget(Args(["id": "C", "autoRenewal": true]), at: at("2026-12-05T00:00:01Z"))
        if !sameTick { _ = l.rollOver(at: at("2026-12-05T00:00:02Z"), spendOf: noSpend, makeID: ids.next) }
        _ = try l.updateBudget(Args(["id": "P", "autoRenewal": true]), at: at("2026-12-05T00:00:03Z"))
        _ = l.rollOver(at: at("2026-12-05T00:00:04Z"), spendOf: noSpend, makeID: ids.next)
        let december = try #require(l["P"]?.successorId)
        var children: [(String, String?)] = []
        var next = l["C"]?.successorId
        while let id = next, let c = l[id] {
            children.append((c.period.startSpec.description, c.parentId))
            next = c.successorId
        }
        #expect(children.map(\.0) == ["2026-10-03", "2026-10-23", "2026-11-12", "2026-12-02"])
        #expect(children.map(\.1) == ["P", "P", "P", december])
    }

    @Test("a renewed child an operator moved under another budget stays there when that one renews")
    func aParentChosenByAnOperatorIsKept() throws {
        var l = try ledger([
            ("P", monthly("2026-01-01", total: 100, renew: false)),
            ("X", monthly("2026-01-01", total: 100, renew: false)),
            ("C", monthly("2026-01-01", total: 10, extra: ["parentId": "P"])),
        ])
        let ids = IDCounter()
        _ = l.rollOver(at: at("2026-02-01T00:00:00Z"), spendOf: noSpend, makeID: ids.next)
        #expect(l["r1"]?.parentId == "P")
        _ = try l.updateBudget(Args(["id": "r1", "parentId": "X"]), at: at("2026-02-02T00:00:00Z"))
        for id in ["P", "X"] { _ = try l.updateBudget(Args(["id": .string(id), "autoRenewal": true]), at: at("2026-02-02T00:00:00Z")) }
        _ = l.rollOver(at: at("2026-02-02T00:00:01Z"), spendOf: noSpend, makeID: ids.next)
        #expect(l["X"]?.successorId != nil)
        #expect(l["r1"]?.parentId == "X")
    }

    /// An audit: a COMPLETED head reopened with an end past its renewal's start overlapped it,
    /// and an event naming the chain's id then went to the head.
    @Test("periods of one renewal chain cannot be made to overlap")
    func aRenewalChainsPeriodsCannotOverlap() throws {
        var l = try ledger([("jan", monthly("2026-01-01"))])
        _ = l.rollOver(at: at("2026-02-01T00:00:00Z"), spendOf: noSpend, makeID: { "feb" })
        let now = at("2026-02-02T00:00:00Z")
        for (id, field, value) in [("jan", "endDate", "2026-02-10"), ("jan", "budgetType", "UNLIMITED"), ("feb", "startDate", "2026-01-25")] {
            do {
                _ = try l.updateBudget(Args(["id": .string(id), .init(field): .string(value)]), at: now)
                Issue.record("\(id) \(field) \(value) accepted")
            } catch {
                #expect(error.code == .validationFailed, "\(id) \(field)")
            }
        }
        #expect(l["jan"]?.explicitEnd == nil)
        #expect(l["jan"]?.budgetType == .monthly)
        // Up to the renewal's start, or shorter, is fine.
        _ = try l.updateBudget(Args(["id": "jan", "endDate": "2026-01-31"]), at: now)
        _ = try l.updateBudget(Args(["id": "jan", "endDate": "2026-01-20"]), at: now)
        #expect(l.route(budgetId: "jan", metadata: nil, time: at("2026-02-05T00:00:00Z")) == "feb")
    }

    @Test func projectAndExplicitEndsRenewWithTheSameLength() throws {
        var l = try ledger([("p", ["name": "P", "budgetType": "PROJECT", "totalAmount": 10, "startDate": "2026-01-01", "endDate": "2026-01-10", "autoRenewal": true])])
        _ = l.rollOver(at: at("2026-01-11T00:00:00Z"), spendOf: noSpend, makeID: { "p2" })
        #expect(l["p2"]?.period.startSpec.description == "2026-01-11")
        #expect(l["p2"]?.period.endSpec?.description == "2026-01-20")
    }

    /// A PROJECT of one nanosecond with autoRenewal made the next tick create ~10⁹ successors in
    /// one transaction; the daemon died of it at every start (an audit).
    @Test("autoRenewal needs a period of at least an hour; one call renews at most maxRenewals periods, the next goes on")
    func renewalsAreBounded() throws {
        var l = try ledger([])
        let created = at("2026-01-01T00:00:00Z")
        // An RFC 3339 end is the period's last instant: …59.999999999 makes exactly an hour.
        for (end, renew) in [("2026-01-01T00:00:00.000000001Z", true), ("2026-01-01T00:59:59.999999998Z", true)] {
            do {
                _ = try l.createBudget(Args(["name": "Tiny", "budgetType": "PROJECT", "totalAmount": 1, "startDate": "2026-01-01T00:00:00Z", "endDate": .string(end), "autoRenewal": .bool(renew)]), id: "t", at: created)
                Issue.record("accepted \(end)")
            } catch {
                #expect(error.message == "autoRenewal needs a period of at least an hour")
            }
        }
        // An hour is enough; without autoRenewal any period is.
        _ = try l.createBudget(Args(["name": "Short", "budgetType": "PROJECT", "totalAmount": 1, "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-01-01T00:59:59.999999998Z"]), id: "short", at: created)
        _ = try l.createBudget(Args(["name": "Hourly", "budgetType": "PROJECT", "totalAmount": 1, "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-01-01T00:59:59.999999999Z", "autoRenewal": true]), id: "h", at: created)
        // Turning autoRenewal on for the short one is refused too.
        #expect(throws: LedgerError.self) { try l.updateBudget(Args(["id": "short", "autoRenewal": true]), at: created) }
        // 100 hours behind: 40 renewals a call, three calls to catch up.
        let ids = IDCounter()
        let now = at("2026-01-05T04:30:00Z")
        var made: [Int] = []
        for _ in 0..<4 {
            let before = l.budgetsInOrder.count
            _ = l.rollOver(at: now, maxRenewals: 40, spendOf: noSpend, makeID: ids.next)
            made.append(l.budgetsInOrder.count - before)
        }
        #expect(made == [40, 40, 20, 0])
        #expect(l.nextPeriodEnd.map { $0 > now } == true)
    }
}

@Suite struct SpikeAndLowBudgetTests {
    /// A yearly budget (no low-budget noise) with a baseline of 5 per day at 10:30 over 7 days.
    func withBaseline(allocation: Bool = false) throws -> Ledger {
        var extra: JSONObject = [:]
        if allocation { extra["allocations"] = [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 100000]] }
        var args: JSONObject = ["name": "Y", "budgetType": "YEARLY", "totalAmount": 1000000, "startDate": "2026-03-01"]
        for (k, v) in extra { args[k] = v }
        var l = try ledger([("y", args)])
        for day in 1...7 {
            let t = at("2026-03-0\(day)T10:30:00Z")
            let r = l.book(amount: money("5"), budgetId: "y", platform: "OpenAI", serviceType: .api, eventId: "b\(day)", costTime: t, at: t)
            #expect(r.messages.isEmpty)
        }
        return l
    }

    @Test("a cost's hour at the ends of the representable range: floor division without overflow")
    func hoursAtTheEdges() throws {
        let hour: Int64 = 3_600_000_000_000
        // Int64.min = −2562047 h − 2,854,775,808 ns: its hour is the one before, −2562048.
        #expect(HourlySpend.hour(Timestamp.min) == -2_562_048)
        #expect(HourlySpend.hour(Timestamp(nanosecondsSinceEpoch: -1)) == -1)
        #expect(HourlySpend.hour(Timestamp(nanosecondsSinceEpoch: 0)) == 0)
        #expect(HourlySpend.hour(Timestamp(nanosecondsSinceEpoch: -hour)) == -1)
        #expect(HourlySpend.hour(Timestamp.max) == Int64.max / hour)
        // Booked at those instants, a cost lands in the history (it stopped the daemon before).
        var l = try ledger([("u", ["name": "U", "budgetType": "UNLIMITED", "startDate": "2026-01-01"])])
        for t in [Timestamp.min, Timestamp.max] {
            let booking = l.book(amount: money("1"), budgetId: "u", platform: "X", serviceType: .api, eventId: nil, costTime: t, at: at("2026-03-01T00:00:00Z"))
            #expect(booking.touchedBudgets == ["u"])
        }
        #expect(l["u"]?.spentAmount == money("2"))
    }

    @Test func aWindowFarAboveItsBaselineFiresOncePerWindow() throws {
        var l = try withBaseline()
        // 14 in the 10:00 hour of day 8: 14 > 3 × 5 is false → nothing.
        let t1 = at("2026-03-08T10:05:00Z")
        #expect(l.book(amount: money("14"), budgetId: "y", platform: "OpenAI", serviceType: .api, eventId: "s1", costTime: t1, at: t1).messages.isEmpty)
        // +6 → 20 > 15 and ≥ 10: spike.
        let t2 = at("2026-03-08T10:20:00Z")
        let spike = l.book(amount: money("6"), budgetId: "y", platform: "OpenAI", serviceType: .api, eventId: "s2", costTime: t2, at: t2).messages
        #expect(alertTypes(spike) == ["alert.SPENDING_SPIKE"])
        guard case .alert(let a)? = spike.first else { return }
        #expect(a.severity == .warning)
        #expect(a.windowAmount == money("20"))
        #expect(a.baselineAmount == money("5"))
        #expect(a.eventId == "s2")
        #expect(a.message.contains("20.00 USD in the last hour against a baseline of 5.00 USD"))
        // Once per window: more spend in the same hour does not repeat it.
        let t3 = at("2026-03-08T10:50:00Z")
        #expect(l.book(amount: money("50"), budgetId: "y", platform: "OpenAI", serviceType: .api, eventId: "s3", costTime: t3, at: t3).messages.isEmpty)
        // The next hour is a new window; its baseline (the 11:00 hours) is 0, and 12 ≥ 10.
        let t4 = at("2026-03-08T11:01:00Z")
        #expect(alertTypes(l.book(amount: money("12"), budgetId: "y", platform: "OpenAI", serviceType: .api, eventId: "s4", costTime: t4, at: t4).messages) == ["alert.SPENDING_SPIKE"])
    }

    @Test func smallAmountsAndNewBudgetsAreNotNoisy() throws {
        var l = try withBaseline()
        // Below the minimum amount (10), however far above the baseline (0 at 15:00).
        let t = at("2026-03-08T15:00:00Z")
        #expect(l.book(amount: money("9.99"), budgetId: "y", platform: "OpenAI", serviceType: .api, eventId: "x", costTime: t, at: t).messages.isEmpty)
        // A budget younger than a day has no baseline yet.
        var fresh = try ledger([("n", ["name": "N", "budgetType": "YEARLY", "totalAmount": 1000000, "startDate": "2026-03-01"])])
        let t0 = at("2026-03-01T12:00:00Z")
        #expect(fresh.book(amount: money("500"), budgetId: "n", platform: "OpenAI", serviceType: .api, eventId: "y", costTime: t0, at: t0).messages.isEmpty)
    }

    @Test("by default only the budget spikes (platform null, CONTRACT §5): its allocation's spike is not a second SPENDING_SPIKE")
    func onlyTheBudgetSpikesByDefault() throws {
        var l = try withBaseline(allocation: true)
        let t = at("2026-03-08T10:20:00Z")
        let messages = l.book(amount: money("20"), budgetId: "y", platform: "openai", serviceType: .api, eventId: "s", costTime: t, at: t).messages
        #expect(alertTypes(messages) == ["alert.SPENDING_SPIKE"])
        guard case .alert(let spike)? = messages.first else { return }
        #expect(spike.platform == nil && spike.serviceType == nil)
        #expect(spike.totalAmount == money("1000000"))
    }

    @Test("with allocationSpikes, an allocation spikes on its own after the budget")
    func anAllocationSpikesOnItsOwnAfterTheBudget() throws {
        var l = try withBaseline(allocation: true)
        l.settings.allocationSpikes = true
        let t = at("2026-03-08T10:20:00Z")
        let messages = l.book(amount: money("20"), budgetId: "y", platform: "openai", serviceType: .api, eventId: "s", costTime: t, at: t).messages
        #expect(alertTypes(messages) == ["alert.SPENDING_SPIKE", "alert.SPENDING_SPIKE"])
        guard case .alert(let budgetSpike)? = messages.first, case .alert(let allocationSpike)? = messages.last else { return }
        #expect(budgetSpike.platform == nil)
        #expect(allocationSpike.platform == "OpenAI")
        #expect(allocationSpike.serviceType == .api)
    }

    @Test func aRestoredSpikeIsNotRepeatedInItsWindow() throws {
        var l = try withBaseline()
        l.rememberSpike(budgetId: "y", allocationId: nil, at: at("2026-03-08T10:01:00Z"))
        let t = at("2026-03-08T10:20:00Z")
        #expect(l.book(amount: money("20"), budgetId: "y", platform: "OpenAI", serviceType: .api, eventId: "s", costTime: t, at: t).messages.isEmpty)
    }

    @Test(arguments: [
        // (when, amount, lowBudgetMinElapsedHours, projected exhaustion or nil): March, total 1000.
        // By default the rate counts from the first day (spent ÷ max(1 day, elapsed), §6):
        // 600 in the first 12 hours is 600/day, out 16 hours later.
        ("2026-03-01T12:00:00Z", "600", 0, "2026-03-02T04:00:00Z"),
        ("2026-03-01T12:00:00Z", "600", 24, nil),                      // set to wait a day: too early
        ("2026-03-03T00:00:00Z", "500", 0, "2026-03-05T00:00:00Z"),    // 250/day: out around March 5
        ("2026-03-03T00:00:00Z", "500", 24, "2026-03-05T00:00:00Z"),
        ("2026-03-16T00:00:00Z", "400", 0, nil),                       // 26.67/day: lasts past the end
        // At the edge: 15.5 days in, 500 spent lasts exactly to the end (not before it: no
        // alert); 501 spent runs out 1 h 29 min before it.
        ("2026-03-16T12:00:00Z", "500", 0, nil),
        ("2026-03-16T12:00:00Z", "501", 0, "2026-03-31T22:30:53.892215568Z"),
    ] as [(String, String, Int, String?)])
    func lowBudgetTiming(when: String, amount: String, minHours: Int, exhaustion: String?) throws {
        var l = try ledger([("m", monthly("2026-03-01", renew: false))])
        #expect(AlertSettings().lowBudgetMinElapsedHours == 0)
        l.settings.lowBudgetMinElapsedHours = minHours
        let t = at(when)
        let messages = l.book(amount: money(amount), budgetId: "m", platform: "OpenAI", serviceType: .api, eventId: "e", costTime: t, at: t).messages
        #expect(messages.contains { $0.topic == "alert.LOW_BUDGET" } == (exhaustion != nil))
        if let exhaustion {
            guard case .alert(let a)? = messages.last else { return }
            #expect(a.projectedExhaustion == at(exhaustion))
            #expect(a.message.contains(exhaustion))
            // Once per period.
            let again = l.book(amount: money("1"), budgetId: "m", platform: "OpenAI", serviceType: .api, eventId: "f", costTime: t, at: t)
            #expect(!again.messages.contains { $0.topic == "alert.LOW_BUDGET" })
        }
    }

    /// A cost dated in a period that has not started yet (booked before it starts) makes no
    /// burn rate: LOW_BUDGET is not judged then. The first cost booked once the period has
    /// started judges it with everything spent so far, the early cost included.
    @Test func lowBudgetIsNotJudgedBeforeThePeriodStarts() throws {
        var l = try ledger([("m", monthly("2026-03-01", renew: false))])
        let early = l.book(amount: money("600"), budgetId: "m", platform: "OpenAI", serviceType: .api, eventId: "e",
                           costTime: at("2026-03-01T12:00:00Z"), at: at("2026-02-20T00:00:00Z")).messages
        #expect(!early.contains { $0.topic == "alert.LOW_BUDGET" })
        let t = at("2026-03-01T12:00:00Z")
        let started = l.book(amount: money("1"), budgetId: "m", platform: "OpenAI", serviceType: .api, eventId: "f", costTime: t, at: t).messages
        guard case .alert(let a)? = started.first(where: { $0.topic == "alert.LOW_BUDGET" }) else {
            Issue.record("no LOW_BUDGET once the period started: \(started.map(\.topic))")
            return
        }
        // 601 spent over max(1 day, 12 h): 601/day; 399 left runs out 399/601 of a day later.
        #expect(a.projectedExhaustion == at("2026-03-02T03:56:00.399334442Z"))
        #expect(a.eventId == "f")
    }
}
