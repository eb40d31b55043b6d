import BudgetCore
import Foundation
import Testing
import ZMQ

// Ledger operations (docs/ledger.md): credits and refunds, re-pricing, backup and restore,
// export with cursor pages, event.get — through the real daemon.

private func errorCode(_ reply: JSONValue) -> String? { reply["error"]?["code"]?.stringValue }

private func spent(_ client: Client, _ id: String) throws -> String? {
    try client.call("budget.get", ["id": .string(id)])["budget"]?["spentAmount"]?.numberText
}

/// The sum of a budget's daily rollup (what analytics and budget.get's dailySpend read).
private func rollupTotal(_ client: Client, _ id: String) throws -> Money {
    let days = try client.call("budget.get", ["id": .string(id)])["dailySpend"]?.arrayValue ?? []
    return try days.reduce(Money.zero) { $0 + (try Money(parsing: $1["amount"]?.numberText ?? "0")) }
}

/// Messages on the subscriber until it is quiet, as topics ("alert.THRESHOLD_80", "status.ACTIVE").
private func drain(_ client: Client, _ sub: ZMQSocket, quietMs: Int = 700) throws -> [String] {
    var topics: [String] = []
    while let m = try client.next(sub, timeoutMs: quietMs) { topics.append(m.topic) }
    return topics
}

private func catalog(version: String, inputPrice: String) -> String {
    """
    {"version": "\(version)", "prices": [{"platform": "OpenAI", "model": "m1", "currency": "USD",
      "unitPrices": {"inputTokens": "\(inputPrice)"}, "perRequest": "0"}]}
    """
}

private func usageEvent(_ id: String, tokens: Int, model: String = "m1") -> JSONValue {
    .object(JSONObject([
        ("id", .string(id)), ("source", "test"), ("platform", "OpenAI"), ("serviceType", "API"),
        ("model", .string(model)), ("usage", .object(JSONObject([("inputTokens", .number(String(tokens)))]))),
    ]))
}

/// Runs budgetctl to the end: (exit status, standard output, standard error).
private func budgetctl(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try runProcess(Products.budgetctl, args)
}

/// A flag shared with a publishing thread.
private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var count = 0
    var isStopped: Bool { lock.withLock { stopped } }
    func stop() { lock.withLock { stopped = true } }
    func sent() { lock.withLock { count += 1 } }
    var sentCount: Int { lock.withLock { count } }
}

@Suite(.timeLimit(.minutes(5)))
struct LedgerOpsTests {
    /// docs/ledger.md, "Where costs are stored": an ingested event's plain cost is booked in its
    /// own row; a credit, a manual cost and a re-processed event get cost rows. Clients see one
    /// kind of cost allocation either way.
    @Test func costsBookedInEventRowsReadAsCostAllocations() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100", extra: [
            ("allocations", [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 60]]),
        ])
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        #expect(try client.sendAck(costEvent("u1", cost: "1.000000001", budgetId: b, extra: [
            ("description", "first"), ("apiUsageId", "api-1"), ("metadata", ["projectId": "p1", "n": .number("1.50")]),
        ])).string("state") == "ALLOCATED")
        #expect(try client.sendAck(costEvent("u2", cost: "2", budgetId: b, platform: "Apify")).string("state") == "ALLOCATED")
        #expect(try client.sendAck(costEvent("cr", cost: "0.5", budgetId: b, extra: [
            ("kind", "CREDIT"), ("correctsEvent", ["source": "test", "id": "u1"]),
        ])).string("state") == "ALLOCATED")
        let manual = try client.call("cost.allocate", [
            "budgetId": .string(b), "platform": "Apify", "serviceType": "SCRAPING", "costAmount": 3, "costDate": .string(now.rfc3339),
        ])

        let u1 = try client.call("event.get", ["source": "test", "id": "u1"])
        let u1Cost = try #require(u1["costs"]?.arrayValue?.first)
        let u1Id = try #require(u1Cost["id"]?.stringValue)
        #expect(u1Id.hasPrefix("e_") && u1Id.count == 18)
        #expect(u1["costAllocationId"]?.stringValue == u1Id)
        #expect(u1Cost["costAmount"]?.numberText == "1.000000001")
        #expect(u1Cost["description"]?.stringValue == "first" && u1Cost["apiUsageId"]?.stringValue == "api-1")
        // Read from the event's canonical body: the same values, numbers spelled canonically, keys in order.
        #expect(u1Cost["metadata"] == ["n": .number("1.5"), "projectId": "p1"])
        #expect(u1Cost["eventId"]?.stringValue == "u1" && u1Cost["platform"]?.stringValue == "OpenAI")
        #expect(u1Cost["allocationId"]?.stringValue != nil)
        // The credit that corrects it has a cost row, listed with the event's costs.
        let credit = try #require(u1["costs"]?.arrayValue?.last)
        #expect(u1["costs"]?.arrayValue?.count == 2 && credit["kind"]?.stringValue == "CREDIT" && credit["costAmount"]?.numberText == "-0.5")
        #expect(credit["id"]?.stringValue?.hasPrefix("e_") == false)

        // cost.list: all four, newest first; their sum is the budget's spend.
        let listed = try client.call("cost.list", ["budgetId": .string(b)]).arrayValue ?? []
        #expect(Set(listed.compactMap { $0["id"]?.stringValue }).count == 4)
        #expect(listed.contains { $0["id"]?.stringValue == u1Id })
        #expect(listed.contains { $0["id"] == manual["id"] })
        let dates = listed.compactMap { $0["costDate"]?.stringValue }.map { try? Timestamp(rfc3339: $0) }
        #expect(dates.count == 4 && zip(dates, dates.dropFirst()).allSatisfy { ($0 ?? .min) >= ($1 ?? .min) })
        let sum = try listed.reduce(Money.zero) { $0 + (try Money(parsing: $1["costAmount"]?.numberText ?? "x")) }
        #expect(sum.description == "5.500000001")
        #expect(try spent(client, b) == "5.500000001")

        // cost.allocate with an event's cost id is idempotent (it is that cost), a CONFLICT when
        // it asks for another cost; an unused id of that form is refused rather than shared with
        // an event row to come.
        #expect(try client.call("cost.allocate", [
            "id": .string(u1Id), "budgetId": .string(b), "platform": "OpenAI", "serviceType": "API", "costAmount": "1.000000001",
        ]) == u1Cost)
        #expect(errorCode(try client.request("cost.allocate", [
            "id": .string(u1Id), "budgetId": .string(b), "platform": "Apify", "serviceType": "SCRAPING", "costAmount": 9,
        ])) == "CONFLICT")
        #expect(errorCode(try client.request("cost.allocate", [
            "id": "e_00000000000fffff", "budgetId": .string(b), "platform": "Apify", "serviceType": "SCRAPING", "costAmount": 9,
        ])) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("cost.credit", ["id": .string(u1Id), "budgetId": .string(b), "amount": 1])) == "CONFLICT")
        #expect(try spent(client, b) == "5.500000001")

        // After a restart the same costs are read back from the same rows.
        #expect(daemon.stop() == 0)
        let again = try Daemon(dir: dir)
        defer { _ = again.stop() }
        let client2 = try Client(again)
        #expect(try client2.call("cost.list", ["budgetId": .string(b)]).arrayValue ?? [] == listed)

        // Texts with a NUL character (valid in JSON strings) are read back whole, from event rows
        // and cost rows, before and after retention copies a booking into a cost row.
        let nul = "a\u{0}b"
        #expect(try client2.sendAck(costEvent("n\u{0}1", cost: "0.5", budgetId: b, extra: [
            ("description", .string(nul)), ("apiUsageId", .string(nul)), ("model", .string(nul)),
        ])).string("state") == "ALLOCATED")
        let manualNul = try client2.call("cost.allocate", [
            "budgetId": .string(b), "platform": .string(nul), "serviceType": "SCRAPING", "costAmount": 1, "description": .string(nul),
            "apifyRunId": .string(nul),
        ])
        func nulTexts() throws -> [String?] {
            let event = try client2.call("event.get", ["source": "test", "id": .string("n\u{0}1")])
            let costs = try client2.call("cost.list", ["budgetId": .string(b)]).arrayValue ?? []
            let booking = costs.first { $0["eventId"]?.stringValue == "n\u{0}1" }
            let manual = costs.first { $0["id"] == manualNul["id"] }
            return [
                event["id"]?.stringValue, event["model"]?.stringValue, booking?["description"]?.stringValue, booking?["apiUsageId"]?.stringValue,
                manual?["platform"]?.stringValue, manual?["description"]?.stringValue, manual?["apifyRunId"]?.stringValue,
            ]
        }
        #expect(try nulTexts() == ["n\u{0}1", nul, nul, nul, nul, nul, nul])
        // The newest event row stays after retention (row numbers are never reused): not this one.
        #expect(try client2.sendAck(costEvent("last", cost: "0.25", budgetId: b)).string("state") == "ALLOCATED")
        let costsBefore = try client2.call("cost.list", ["budgetId": .string(b)])
        let horizon = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970) + 3600).rfc3339
        #expect(try client2.call("retention.run", ["olderThan": .string(horizon)])["usageEvents"]?.numberText == "4")
        let costsAfter = try client2.call("cost.list", ["budgetId": .string(b)])
        #expect(costsAfter == costsBefore)
        // The booking now in a cost row: same id, its texts whole.
        let before = try #require(costsBefore.arrayValue?.first { $0["eventId"]?.stringValue == "n\u{0}1" })
        let moved = try #require(costsAfter.arrayValue?.first { $0["eventId"]?.stringValue == "n\u{0}1" })
        #expect(moved["id"] == before["id"])
        #expect(moved["description"]?.stringValue == nul && moved["apiUsageId"]?.stringValue == nul)
    }

    @Test func aRefundRearmsThresholdsAndEndsExceeded() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100", extra: [
            ("allocations", [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 100]]),
        ])
        let sub = try client.subscriber()

        #expect(try client.sendAck(costEvent("e1", cost: "85", budgetId: b)).string("state") == "ALLOCATED")
        #expect(try drain(client, sub) == ["alert.THRESHOLD_80"])
        #expect(try client.sendAck(costEvent("e2", cost: "20", budgetId: b)).string("state") == "ALLOCATED")
        #expect(try drain(client, sub) == [
            "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED", "alert.ALLOCATION_DEPLETED",
        ])

        // A refund of more than the event cost is refused; negative amounts too.
        let tooMuch = try client.request("cost.credit", ["correctsEvent": ["source": "test", "id": "e2"], "amount": 21])
        #expect(errorCode(tooMuch) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("cost.credit", ["budgetId": .string(b), "platform": "OpenAI", "serviceType": "API", "amount": -1])) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("cost.credit", ["correctsEvent": ["source": "test", "id": "nope"], "amount": 1])) == "NOT_FOUND")
        // A credit dated outside the budget's period (this month's) is refused, as a cost is.
        let misdated = try client.request("cost.credit", ["budgetId": .string(b), "platform": "OpenAI", "serviceType": "API", "amount": 1, "costDate": "2020-01-01"])
        #expect(errorCode(misdated) == "VALIDATION_FAILED")
        #expect(misdated["error"]?["message"]?.stringValue == "budget \(b) does not cover costDate 2020-01-01T00:00:00Z")
        #expect(try spent(client, b) == "105")

        // Refund e2 through the control socket: 85 spent, back under 90 and 100 and not over.
        let credit = try client.call("cost.credit", [
            "id": "refund-1", "correctsEvent": ["source": "test", "id": "e2"], "amount": 20, "reason": "provider refund",
        ])
        #expect(credit["costAmount"]?.numberText == "-20")
        #expect(credit["kind"]?.stringValue == "CREDIT")
        #expect(credit["correctsEvent"]?["id"]?.stringValue == "e2")
        #expect(credit["budgetId"]?.stringValue == b)
        #expect(try drain(client, sub) == ["status.ACTIVE"])
        // Idempotent by id.
        #expect(try client.call("cost.credit", ["id": "refund-1", "correctsEvent": ["source": "test", "id": "e2"], "amount": 20])["id"] == credit["id"])
        #expect(try client.call("cost.credit", ["id": "refund-1", "amount": 20])["id"] == credit["id"])
        // Another credit under that id is a CONFLICT, as for cost.allocate.
        for (key, value) in [("amount", JSONValue.number("7")), ("correctsEvent", ["source": "test", "id": "e1"]), ("platform", "Apify")] {
            var args: JSONObject = ["id": "refund-1", "correctsEvent": ["source": "test", "id": "e2"], "amount": 20]
            args[key] = value
            let other = try client.request("cost.credit", .object(args))
            #expect(errorCode(other) == "CONFLICT", "\(key)")
            #expect(other["error"]?["message"]?.stringValue?.hasPrefix("id refund-1 was used for another credit: 20 USD to budget \(b)") == true, "\(other.serialized())")
        }
        #expect(try spent(client, b) == "85")
        // A credit's id is not a cost's idempotency key (nor "" a key at all): cost.allocate
        // with it is a CONFLICT and books nothing, as cost.credit with a cost's id is.
        let reused = try client.request("cost.allocate", ["id": "refund-1", "budgetId": .string(b), "platform": "OpenAI", "serviceType": "API", "costAmount": 5])
        #expect(errorCode(reused) == "CONFLICT")
        #expect(reused["error"]?["message"]?.stringValue == "id refund-1 is a CREDIT entry, not a cost")
        #expect(errorCode(try client.request("cost.credit", ["id": "", "budgetId": .string(b), "platform": "OpenAI", "serviceType": "API", "amount": 1])) == "VALIDATION_FAILED")
        #expect(try spent(client, b) == "85")
        let summary = try client.call("budget.get", ["id": .string(b)])
        #expect(summary["budget"]?["status"]?.stringValue == "ACTIVE")
        #expect(summary["allocations"]?.arrayValue?.first?["spentAmount"]?.numberText == "85")

        // A CREDIT event on the ingest socket: positive cost, kind CREDIT; 75 spent re-arms 80.
        #expect(try client.sendAck(costEvent("cr1", cost: "-10", budgetId: b, extra: [("kind", "CREDIT")])).string("status") == "REJECTED")
        #expect(try client.sendAck(.object(JSONObject([("id", "cr0"), ("platform", "OpenAI"), ("serviceType", "API"), ("kind", "CREDIT")]))).string("status") == "REJECTED")
        #expect(try client.sendAck(costEvent("cr1", cost: "10", budgetId: b, extra: [("kind", "CREDIT")])).string("state") == "ALLOCATED")
        #expect(try client.sendAck(costEvent("cr1", cost: "10", budgetId: b, extra: [("kind", "CREDIT")])).string("status") == "DUPLICATE")
        #expect(try drain(client, sub) == [])
        #expect(try spent(client, b) == "75")

        // The next crossing fires every threshold again, in order.
        #expect(try client.sendAck(costEvent("e3", cost: "30", budgetId: b)).string("state") == "ALLOCATED")
        #expect(try drain(client, sub) == [
            "alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED",
            "alert.ALLOCATION_DEPLETED",
        ])
        #expect(try spent(client, b) == "105")
        // The daily rollup (analytics) and the cost rows agree with the running total.
        #expect(try rollupTotal(client, b) == Money(nanos: 105 * Money.nanosPerUnit))
        let costs = try client.call("cost.list", ["budgetId": .string(b)]).arrayValue ?? []
        let sum = try costs.reduce(Money.zero) { $0 + (try Money(parsing: $1["costAmount"]?.numberText ?? "0")) }
        #expect(sum == Money(nanos: 105 * Money.nanosPerUnit))
        #expect(costs.filter { $0["kind"]?.stringValue == "CREDIT" }.count == 2)
        let analytics = try client.call("analytics")
        #expect(analytics["totalSpent"]?.numberText == "105")
        // event.get shows the event with its booking and the refund that corrects it.
        let e2 = try client.call("event.get", ["source": "test", "id": "e2"])
        #expect(e2["totalCost"]?.numberText == "0")
        #expect(e2["costs"]?.arrayValue?.count == 2)
        let cr1 = try client.call("event.get", ["source": "test", "id": "cr1"])
        #expect(cr1["kind"]?.stringValue == "CREDIT")
        #expect(cr1["totalCost"]?.numberText == "-10")
    }

    /// The seventeenth session's audit: a usage event that corrects another counted in both
    /// credit limits (10 + 3 booked, 16 refundable); event.reprocess counted an UNPRICED event
    /// that its first pass left UNALLOCATED again in its second (`remaining` 2 of one event).
    @Test func aCorrectionIsCreditedThroughTheEventItCorrectsAndReprocessCountsOnce() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100")
        #expect(try client.sendAck(costEvent("x", cost: "10", budgetId: b)).string("state") == "ALLOCATED")
        #expect(try client.sendAck(costEvent("y", cost: "3", budgetId: b, extra: [("correctsEvent", ["source": "test", "id": "x"])])).string("state") == "ALLOCATED")
        let ofY = try client.request("cost.credit", ["correctsEvent": ["source": "test", "id": "y"], "amount": 3])
        #expect(errorCode(ofY) == "VALIDATION_FAILED")
        #expect(ofY["error"]?["message"]?.stringValue == "event y corrects event (test, x), whose cost it counts in: credit that one")
        #expect(errorCode(try client.request("cost.credit", ["correctsEvent": ["source": "test", "id": "x"], "amount": "13.000000001"])) == "VALIDATION_FAILED")
        _ = try client.call("cost.credit", ["correctsEvent": ["source": "test", "id": "x"], "amount": 13])
        #expect(try spent(client, b) == "0")

        // No rate GBP→USD: UNPRICED, routed to b; b cancelled, a reprocess of both states
        // prices it (explicit cost), finds no budget, and counts it once.
        #expect(try client.sendAck(costEvent("g", cost: "5", budgetId: b, extra: [("currency", "GBP")])).string("state") == "UNPRICED")
        _ = try client.call("budget.update", ["id": .string(b), "status": "CANCELLED"])
        let r = try client.call("event.reprocess")
        #expect(r["priced"]?.numberText == "1" && r["allocated"]?.numberText == "0" && r["remaining"]?.numberText == "1", "\(r.serialized())")
        #expect(try client.call("event.reprocess")["remaining"]?.numberText == "1")

        // An UNPRICED event that no budget covered keeps waiting, but a reprocess records the
        // budget it now routes to (it kept budgetId null while its state and reason stayed).
        let model = JSONValue.object(JSONObject([
            ("id", "m1"), ("source", "test"), ("platform", "OpenAI"), ("serviceType", "API"), ("model", "no-such-model"),
            ("usage", .object(JSONObject([("inputTokens", .number("10"))]))),
        ]))
        #expect(try client.sendAck(model).string("state") == "UNPRICED")
        #expect(try client.call("event.get", ["source": "test", "id": "m1"])["budgetId"]?.isNull == true)
        let c = try makeBudget(client, name: "Covers", total: "100")
        _ = try client.call("event.reprocess", ["state": "UNPRICED"])
        let again = try client.call("event.get", ["source": "test", "id": "m1"])
        #expect(again["state"]?.stringValue == "UNPRICED" && again["budgetId"]?.stringValue == c, "\(again.serialized())")
    }

    @Test func repricingRecordsTheDifferenceOnceAndDryRunsRecordNothing() throws {
        let dir = try TempDir()
        let prices = dir.file("prices.json")
        try Data(catalog(version: "v1", inputPrice: "0.01").utf8).write(to: URL(fileURLWithPath: prices))
        let daemon = try Daemon(dir: dir, extraArgs: ["--prices", prices])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "1000")
        for i in 1...3 {
            #expect(try client.sendAck(usageEvent("u\(i)", tokens: 100)).string("state") == "ALLOCATED")  // 1 each
        }
        #expect(try client.sendAck(costEvent("x1", cost: "5", budgetId: b)).string("state") == "ALLOCATED")
        #expect(try spent(client, b) == "8")

        // Nothing to do with the catalog in force.
        let none = try client.call("event.reprice")
        #expect(none["count"]?.numberText == "0")
        #expect(none["unchanged"]?.numberText == "3")
        #expect(none["explicitCost"]?.numberText == "1")

        // The catalog is fixed: 0.015 a token.
        try Data(catalog(version: "v2", inputPrice: "0.015").utf8).write(to: URL(fileURLWithPath: prices))
        #expect(try client.call("prices.reload")["version"]?.stringValue == "v2")
        let dry = try client.call("event.reprice", ["dryRun": true])
        #expect(dry["count"]?.numberText == "3")
        #expect(dry["totalDifference"]?.numberText == "1.5")
        #expect(dry["recorded"]?.boolValue == false)
        #expect(dry["events"]?.arrayValue?.first?["catalogFrom"]?.stringValue == "v1")
        #expect(dry["events"]?.arrayValue?.first?["catalogTo"]?.stringValue == "v2")
        #expect(try spent(client, b) == "8")
        #expect((try client.call("cost.list", ["budgetId": .string(b)]).arrayValue ?? []).count == 4)

        // Bounded rows, full figures.
        let limited = try client.call("event.reprice", ["dryRun": true, "limit": 1])
        #expect(limited["events"]?.arrayValue?.count == 1)
        #expect(limited["truncated"]?.boolValue == true)
        #expect(limited["totalDifference"]?.numberText == "1.5")

        // The real run changes the totals by exactly the difference; a second one changes nothing.
        let run = try client.call("event.reprice", ["platform": "openai", "model": "M1"])
        #expect(run["count"]?.numberText == "3")
        #expect(run["totalDifference"]?.numberText == "1.5")
        #expect(run["recorded"]?.boolValue == true)
        #expect(try spent(client, b) == "9.5")
        let again = try client.call("event.reprice")
        #expect(again["count"]?.numberText == "0")
        #expect(again["totalDifference"]?.numberText == "0")
        #expect(try spent(client, b) == "9.5")
        #expect(try rollupTotal(client, b) == (try Money(parsing: "9.5")))

        let u1 = try client.call("event.get", ["source": "test", "id": "u1"])
        #expect(u1["totalCost"]?.numberText == "1.5")
        let adjustment = u1["costs"]?.arrayValue?.dropFirst().first
        #expect(adjustment?["kind"]?.stringValue == "REPRICE")
        #expect(adjustment?["costAmount"]?.numberText == "0.5")
        #expect(adjustment?["catalogFrom"]?.stringValue == "v1")
        #expect(adjustment?["catalogTo"]?.stringValue == "v2")

        // "What would it have cost" with a catalog in the request: 0.02 a token → 2 each, +1.5
        // over the 4.5 now; nothing recorded, even without dryRun.
        let whatIf = try client.call("event.reprice", ["catalog": try JSON.parse(catalog(version: "proposal", inputPrice: "0.02"))])
        #expect(whatIf["count"]?.numberText == "3")
        #expect(whatIf["currentTotal"]?.numberText == "4.5")
        #expect(whatIf["newTotal"]?.numberText == "6")
        #expect(whatIf["totalDifference"]?.numberText == "1.5")
        #expect(whatIf["recorded"]?.boolValue == false)
        #expect(try spent(client, b) == "9.5")
        #expect(try client.call("event.reprice")["count"]?.numberText == "0")
        #expect(errorCode(try client.request("event.reprice", ["catalog": "nope"])) == "VALIDATION_FAILED")

        // A cheaper catalog records negative differences.
        try Data(catalog(version: "v3", inputPrice: "0.005").utf8).write(to: URL(fileURLWithPath: prices))
        _ = try client.call("prices.reload")
        let down = try client.call("event.reprice")
        #expect(down["totalDifference"]?.numberText == "-3")
        #expect(down["events"]?.arrayValue?.first?["catalogFrom"]?.stringValue == "v2")
        #expect(try spent(client, b) == "6.5")
    }

    /// The copy ran on the engine thread: nothing was read, committed or answered (and the
    /// systemd watchdog not fed) until it was done: a few million events outlasted WatchdogSec.
    @Test("while a backup copies, the daemon answers and commits; a second backup meanwhile is CONFLICT; the backup is audited")
    func theDaemonServesWhileABackupCopies() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100000000")
        // ~40 MB of events, so the copy takes a while (~0.3 s).
        let n = 2_600
        try bigDatabase(client, budget: b, events: n)
        let backupPath = dir.file("serving.db")
        let requester = try client.socket(.dealer)
        try requester.connect(daemon.control)
        try requester.send([[], Array(#"{"op":"backup.create","args":{"path":"\#(backupPath)"}}"#.utf8)])
        Thread.sleep(forTimeInterval: 0.02)
        // Answered, and an event committed, while the copy runs.
        #expect(try client.call("health")["status"]?.stringValue == "OK")
        #expect(try client.sendAck(costEvent("during", cost: "2", budgetId: b)).string("status") == "ACCEPTED")
        let second = try client.request("backup.create", ["path": .string(dir.file("second.db"))])
        #expect(second["error"]?["code"]?.stringValue == "CONFLICT", "\(second)")
        #expect(second["error"]?["message"]?.stringValue?.contains("in progress") == true)
        #expect(try poll([(requester, .readable)], timeoutMilliseconds: 0)[0].contains(.readable) == false,
                "the backup replied before the requests sent after it: it still blocks the daemon")
        guard try poll([(requester, .readable)], timeoutMilliseconds: 30_000)[0].contains(.readable),
              let frames = try requester.receive(), let last = frames.last else {
            Issue.record("no reply to backup.create")
            return
        }
        let reply = try JSON.parse(last)
        #expect(reply["ok"]?.boolValue == true, "\(reply)")
        // A snapshot of what was committed when the copy began (the event sent meanwhile may be in it).
        #expect(["\(n)", "\(n + 1)"].contains(reply["result"]?["events"]?.numberText ?? "-"), "\(reply)")
        #expect(FileManager.default.fileExists(atPath: backupPath))
        #expect(!FileManager.default.fileExists(atPath: dir.file("second.db")))
        let audit = try client.call("audit.list").arrayValue ?? []
        #expect(audit.filter { $0["op"]?.stringValue == "backup.create" }.count == 1, "\(audit)")
        // Another backup once this one is done.
        let third = try client.call("backup.create", ["path": .string(dir.file("third.db"))])
        #expect(third["events"]?.numberText == "\(n + 1)")
        // Every event's cost is booked in its row: counted through booking_index and the rows after it.
        #expect(third["costs"]?.numberText == "\(n + 1)", "\(third)")
        // Into a folder that does not exist: the request's mistake (VALIDATION_FAILED), not the
        // daemon's (INTERNAL), and health stays OK.
        let nowhere = try client.request("backup.create", ["path": .string(dir.file("no-such-dir/b.db"))])
        #expect(nowhere["error"]?["code"]?.stringValue == "VALIDATION_FAILED")
        #expect(nowhere["error"]?["message"]?.stringValue == "no directory \(dir.file("no-such-dir")) for the backup: create it first")
        #expect(try client.call("health")["status"]?.stringValue == "OK")
    }

    @Test("a database restored from a backup goes on numbering seq after what was published from it, not from the backup's last seq (an audit's restore reused seq 4–6 and alert ids, and alerts tail dropped them)")
    func aRestoredDatabaseDoesNotReuseSeq() throws {
        let dir = try TempDir()
        // Heartbeats 3 s apart, so none records the last seq between the alerts and the kill:
        // it is recorded as alerts are published.
        var daemon = try Daemon(dir: dir, heartbeatMs: 3_000)
        var client = try Client(daemon)
        let budgets = try (0..<3).map { try makeBudget(client, name: "B\($0)", total: "10") }
        // seq 1, 2: THRESHOLD_80 and _90 of the first budget; then the backup.
        #expect(try client.sendAck(costEvent("a", cost: "9", budgetId: budgets[0])).string("status") == "ACCEPTED")
        let backup = dir.file("backup.db")
        _ = try client.call("backup.create", ["path": .string(backup)])
        // seq 3, 4 after it, seen by a subscriber, then kill -9 (a heartbeat or a clean stop
        // recorded the last seq; alerts published before a crash were reused, an audit found).
        let seen = try client.subscriber(topics: ["alert."])
        #expect(try client.sendAck(costEvent("b", cost: "9", budgetId: budgets[1])).string("status") == "ACCEPTED")
        for expected in ["3", "4"] { #expect(try client.next(seen, timeoutMs: 5_000)?.payload["seq"]?.numberText == expected) }
        daemon.kill9()
        // The restore (docs/ledger.md): the backup copied over the database, its log removed.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("budgetd.db") + suffix) }
        try FileManager.default.copyItem(atPath: backup, toPath: dir.file("budgetd.db"))
        daemon = try Daemon(dir: dir)
        client = try Client(daemon)
        #expect(try client.call("stats")["lastSeq"]?.numberText == "4")
        #expect(try client.call("outbound.list", ["sinceSeq": 0]).arrayValue?.count == 2)
        let sub = try client.subscriber(topics: ["alert."])
        #expect(try client.sendAck(costEvent("c", cost: "9", budgetId: budgets[2])).string("status") == "ACCEPTED")
        let first = try #require(try client.next(sub, timeoutMs: 5_000))
        #expect(first.payload["seq"]?.numberText == "5")
        #expect(first.payload["id"]?.stringValue == "a_5")
        #expect(try client.call("outbound.list", ["sinceSeq": 2]).arrayValue?.compactMap { $0["seq"]?.numberText } == ["5", "6"])
        try waitFor { daemon.stderr.contains("but seq 4 was published from it before") }
        #expect(daemon.stop() == 0)
    }

    /// A database of ~40 MB (15 KB of metadata per event), so a copy takes a while.
    private func bigDatabase(_ client: Client, budget: String, events n: Int) throws {
        let filler = String(repeating: "x", count: 15_000)
        for i in 0..<n {
            try client.publish(costEvent("big-\(i)", cost: "1", budgetId: budget, extra: [("metadata", ["note": .string(filler)])]))
        }
        try waitFor { try client.call("stats")["accepted"]?.numberText == "\(n)" }
    }

    /// The stop waited only for a copy already running: a request read by the stop's drain
    /// started a copy nobody waited for (no reply, a partial file left).
    @Test("SIGTERM right after backup.create, with events queued: the backup is answered and whole")
    func aStopRightAfterABackupRequestAnswersIt() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100000000")
        try bigDatabase(client, budget: b, events: 1_000)
        // Queued work ahead of the request, so the stop finds it unread.
        for i in 0..<3_000 { try client.publish(costEvent("queued-\(i)", cost: "1", budgetId: b)) }
        let path = dir.file("at-stop.db")
        let requester = try client.socket(.dealer)
        try requester.connect(daemon.control)
        try requester.send([[], Array(#"{"op":"backup.create","args":{"path":"\#(path)"}}"#.utf8)])
        daemon.process.terminate()
        let replied = try poll([(requester, .readable)], timeoutMilliseconds: 30_000)[0].contains(.readable)
        #expect(replied, "no reply to a backup requested just before the stop:\n\(daemon.stderr)")
        if replied, let last = try requester.receive()?.last {
            #expect(try JSON.parse(last)["ok"]?.boolValue == true)
        }
        #expect(daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: path + ".budgetd-partial"))
        if replied {
            #expect(try SQLiteShell.integrityCheck(path) == "ok")
            #expect(try SQLiteShell.query(path, "SELECT count(*) FROM budgets").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        }
    }

    /// The copy was written at its final path: one cut short by a kill stood there with its
    /// rollback journal, and a first look with sqlite3 rolled it back to an empty database.
    @Test("a backup cut short by kill -9 never stands at its path; the next backup to it works")
    func aBackupCutShortLeavesNothingAtItsPath() throws {
        let dir = try TempDir()
        let db = dir.file("budgetd.db")
        var daemon = try Daemon(dir: dir, dbPath: db)
        var client = try Client(daemon)
        let b = try makeBudget(client, total: "100000000")
        try bigDatabase(client, budget: b, events: 2_600)
        let path = dir.file("cut.db")
        let requester = try client.socket(.dealer)
        try requester.connect(daemon.control)
        try requester.send([[], Array(#"{"op":"backup.create","args":{"path":"\#(path)"}}"#.utf8)])
        Thread.sleep(forTimeInterval: 0.05)
        daemon.kill9()
        if FileManager.default.fileExists(atPath: path) {
            // The kill came after the copy was done: then it is whole.
            #expect(try SQLiteShell.integrityCheck(path) == "ok")
            #expect(try SQLiteShell.query(path, "SELECT count(*) FROM budgets").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        } else {
            daemon = try Daemon(dir: dir, dbPath: db)
            client = try Client(daemon)
            #expect(try client.call("backup.create", ["path": .string(path)])["events"]?.numberText == "2600")
            #expect(!FileManager.default.fileExists(atPath: path + ".budgetd-partial"))
            #expect(daemon.stop() == 0)
        }
    }

    @Test func aBackupUnderIngestRestoresWithEqualTotals() throws {
        let dir = try TempDir()
        let db = dir.file("budgetd.db")
        var daemon: Daemon? = try Daemon(dir: dir, dbPath: db)
        let client = try Client(daemon!)
        let b = try makeBudget(client, total: "100000000")
        let flag = StopFlag()
        let running = daemon!
        let finished = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            defer { finished.signal() }
            guard let publisher = try? Client(running) else { return }
            var i = 0
            while !flag.isStopped {
                i += 1
                if (try? publisher.sendAck(costEvent("load-\(i)", cost: "0.5", budgetId: b))) != nil { flag.sent() }
            }
        }
        while flag.sentCount < 200 { Thread.sleep(forTimeInterval: 0.02) }
        let backupPath = dir.file("backup.db")
        let backup = try client.call("backup.create", ["path": .string(backupPath)])
        while flag.sentCount < 400 { Thread.sleep(forTimeInterval: 0.02) }
        flag.stop()
        finished.wait()
        #expect(errorCode(try client.request("backup.create", ["path": .string(backupPath)])) == "CONFLICT")
        #expect(errorCode(try client.request("backup.create", ["path": "relative.db"])) == "VALIDATION_FAILED")

        let atBackup = backup["budgets"]?.arrayValue?.first { $0["id"]?.stringValue == b }?["spentAmount"]?.numberText
        let events = Int(backup["events"]?.numberText ?? "0") ?? 0
        #expect(events >= 200)
        #expect(try Money(parsing: atBackup ?? "x") == Money(nanos: Int128(events) * Money.nanosPerUnit / 2))
        let later = try spent(client, b)
        #expect(later != atBackup)
        #expect(daemon?.stop() == 0)
        daemon = nil

        // Restore: stop, remove the WAL files, copy the backup over the database, start.
        let fm = FileManager.default
        for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: db + suffix) { try fm.removeItem(atPath: db + suffix) }
        try fm.copyItem(atPath: backupPath, toPath: db)
        let restored = try Daemon(dir: dir, dbPath: db)
        defer { #expect(restored.stop() == 0) }
        let client2 = try Client(restored)
        #expect(try spent(client2, b) == atBackup)
        let costs = try client2.call("cost.list", ["budgetId": .string(b), "limit": 100_000]).arrayValue ?? []
        #expect(costs.count == events)
        #expect(try rollupTotal(client2, b) == (try Money(parsing: atBackup ?? "x")))
        if fm.isExecutableFile(atPath: "/usr/bin/sqlite3") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            p.arguments = [backupPath, "PRAGMA integrity_check"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
        }
    }

    @Test func exportAndCursorPagesEqualTheListsAndEventGetFindsEvents() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100000")
        for i in 1...23 {
            #expect(try client.sendAck(costEvent("e\(i)", cost: "1.\(i)", budgetId: b, extra: [("description", .string("item, \"\(i)\""))])).string("state") == "ALLOCATED")
        }
        _ = try client.call("cost.credit", ["budgetId": .string(b), "platform": "OpenAI", "serviceType": "API", "amount": "0.000000001"])
        let all = try client.call("cost.list", ["budgetId": .string(b), "limit": 1000]).arrayValue ?? []
        #expect(all.count == 24)

        // Pages are stable under concurrent inserts: no row repeats or goes missing.
        var seen: [JSONValue] = []
        var page = try client.call("cost.list", ["budgetId": .string(b), "page": true, "limit": 10])
        seen += page["items"]?.arrayValue ?? []
        for i in 1...5 { _ = try client.sendAck(costEvent("late\(i)", cost: "2", budgetId: b)) }
        while let next = page["nextCursor"]?.stringValue {
            page = try client.call("cost.list", ["budgetId": .string(b), "page": true, "limit": 10, "cursor": .string(next)])
            seen += page["items"]?.arrayValue ?? []
        }
        #expect(seen.compactMap { $0["id"]?.stringValue } == all.compactMap { $0["id"]?.stringValue })
        #expect(errorCode(try client.request("cost.list", ["budgetId": .string(b), "cursor": "e.1.2"])) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("cost.list", ["budgetId": .string(b), "cursor": "garbage"])) == "VALIDATION_FAILED")
        let everything = try client.call("cost.list", ["budgetId": .string(b), "limit": 1000]).arrayValue ?? []
        #expect(everything.count == 29)

        // budgetctl export: JSON lines over several pages equal cost.list; CSV has a header and exact amounts.
        let jsonl = try budgetctl(["export", "costs", "--control", daemon.control, "--budget", b, "--format", "jsonl", "--page-size", "7"])
        #expect(jsonl.status == 0, "\(jsonl.err)")
        let exported = try jsonl.out.split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(exported == everything)
        let csv = try budgetctl(["export", "costs", "--control", daemon.control, "--budget", b, "--page-size", "4"])
        #expect(csv.status == 0, "\(csv.err)")
        let rows = csv.out.split(separator: "\n").map(String.init)
        #expect(rows.first?.hasPrefix("id,budgetId,allocationId,kind,platform,serviceType,costAmount,") == true)
        #expect(rows.count == 30)
        #expect(rows.contains { $0.contains(",CREDIT,OpenAI,API,-0.000000001,USD,") })
        #expect(rows.contains { $0.contains("\"item, \"\"23\"\"\"") })
        // Data as it is: a newline and a tab in a description are quoted, not escaped (the
        // terminal escaping of every printed line once reached exports, a review found).
        let other = try makeBudget(client, name: "Text", total: "100")
        _ = try client.call("cost.allocate", ["budgetId": .string(other), "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 1, "description": "line one\nline two\tend"])
        let text = try budgetctl(["export", "costs", "--control", daemon.control, "--budget", other])
        #expect(text.out.contains("\"line one\nline two\tend\""), "\(text.out)")

        // Events: pages of event.list equal the array form; export by budget.
        let events = try client.call("event.list", ["limit": 1000]).arrayValue ?? []
        var pagedEvents: [JSONValue] = []
        var cursor: JSONValue = .null
        repeat {
            let p = try client.call("event.list", ["page": true, "limit": 6, "cursor": cursor])
            pagedEvents += p["items"]?.arrayValue ?? []
            cursor = p["nextCursor"] ?? .null
        } while !cursor.isNull
        #expect(pagedEvents == events)
        let eventExport = try budgetctl(["export", "events", "--control", daemon.control, "--budget", b, "--format", "jsonl", "--page-size", "5"])
        #expect(eventExport.status == 0, "\(eventExport.err)")
        #expect(eventExport.out.split(separator: "\n").count == 28)

        let got = try client.call("event.get", ["source": "test", "id": "e7"])
        #expect(got["id"]?.stringValue == "e7")
        #expect(got["cost"]?.numberText == "1.7")
        #expect(got["totalCost"]?.numberText == "1.7")
        #expect(errorCode(try client.request("event.get", ["source": "test", "id": "missing"])) == "NOT_FOUND")

        // alert.list pages.
        let alerts = try client.call("alert.list", ["page": true, "limit": 2])
        #expect(alerts["items"]?.arrayValue != nil)
    }
}
