import BudgetCore
import Foundation
import Testing
import ZMQ

/// Periods, renewal, LOW_BUDGET and SPENDING_SPIKE in the running daemon (issue 5).
@Suite(.timeLimit(.minutes(3)))
struct TimeTests {
    var now: Timestamp { Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)) }

    @Test func anEndedPeriodIsCompletedAndRenewedUpToNow() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let today = now.civilDate
        // A monthly budget that started five months ago renews month by month up to this one.
        let start = CivilDate(year: today.year, month: today.month, day: 1)!.addingMonths(-5)
        let first = try client.call("budget.create", [
            "id": "b_first", "name": "Rolling", "budgetType": "MONTHLY", "totalAmount": .number("100"),
            "startDate": .string(start.description), "autoRenewal": true,
        ])
        #expect(first["id"]?.stringValue == "b_first")
        try waitFor { try client.call("budget.list", ["status": "COMPLETED"]).arrayValue?.count == 5 }
        let all = try #require(try client.call("budget.list").arrayValue)
        #expect(all.count == 6)
        #expect(all.filter { $0["status"]?.stringValue == "COMPLETED" }.count == 5)
        let current = try #require(all.first { $0["status"]?.stringValue == "ACTIVE" })
        #expect(current["startDate"]?.stringValue == CivilDate(year: today.year, month: today.month, day: 1)!.description)
        #expect(current["predecessorId"]?.stringValue != nil)
        let statuses = try #require(try client.call("outbound.list", ["sinceSeq": .number("0")]).arrayValue)
        #expect(statuses.compactMap { $0["topic"]?.stringValue } == Array(repeating: "status.COMPLETED", count: 5))
        #expect(statuses.first?["payload"]?["budgetId"]?.stringValue == "b_first")
        // Publishers keep the first id: an event now follows the chain to this month's budget.
        let ack = try client.sendAck(costEvent("roll-1", cost: "5", budgetId: "b_first"))
        #expect(ack.string("state") == "ALLOCATED")
        #expect(try client.call("budget.get", ["id": current["id"] ?? .null])["totalSpent"]?.numberText == "5")
        // The head CANCELLED: cost.allocate still follows its chain to this month's budget, as
        // ingest does (it refused "budget b_first is CANCELLED").
        _ = try client.call("budget.update", ["id": "b_first", "status": "CANCELLED"])
        let cost = try client.call("cost.allocate", ["budgetId": "b_first", "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 2])
        #expect(cost["budgetId"] == current["id"])
        #expect(try client.call("budget.get", ["id": current["id"] ?? .null])["totalSpent"]?.numberText == "7")

        // autoRenewal turned on after a budget completed: it renews within a tick (it said
        // autoRenewal true and never renewed).
        _ = try client.call("budget.create", [
            "id": "b_late", "name": "Late", "budgetType": "MONTHLY", "totalAmount": .number("100"),
            "startDate": .string(CivilDate(year: today.year, month: today.month, day: 1)!.addingMonths(-1).description),
        ])
        try waitFor { try client.call("budget.get", ["id": "b_late"])["budget"]?["status"]?.stringValue == "COMPLETED" }
        let renewed = try client.call("budget.update", ["id": "b_late", "autoRenewal": true])
        #expect(renewed["autoRenewal"]?.boolValue == true)
        try waitFor { try client.call("budget.get", ["id": "b_late"])["budget"]?["successorId"]?.stringValue != nil }
        let successor = try client.call("budget.get", ["id": try client.call("budget.get", ["id": "b_late"])["budget"]?["successorId"] ?? .null])
        #expect(successor["budget"]?["status"]?.stringValue == "ACTIVE")
        #expect(successor["budget"]?["startDate"]?.stringValue == CivilDate(year: today.year, month: today.month, day: 1)!.description)
    }

    /// An audit: a child renewed while its parent had no renewal stayed under the parent's
    /// completed period, and its costs counted there, not in the parent's current one.
    @Test("a parent given autoRenewal after its child renewed takes the child's renewals and their spend, kept across a restart")
    func aParentRenewedLaterTakesItsRenewedChildAndItsSpend() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let today = now.civilDate
        // Twenty-day projects that ended three weeks ago: the child renews twice, up to now.
        for (id, total, renew, parent) in [("P", "100", false, nil), ("C", "1000", true, "P")] as [(String, String, Bool, String?)] {
            var args: JSONObject = [
                "id": .string(id), "name": .string(id), "budgetType": "PROJECT", "totalAmount": .number(total),
                "startDate": .string(today.addingDays(-40).description), "endDate": .string(today.addingDays(-21).description),
                "autoRenewal": .bool(renew),
            ]
            if let parent {
                args["parentId"] = .string(parent)
            } else {
                args["allocations"] = [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": .number("50")]]
            }
            _ = try client.call("budget.create", .object(args))
        }
        try waitFor { try client.call("budget.list", ["status": "ACTIVE"]).arrayValue?.count == 1 }
        let child = try #require(try client.call("budget.list", ["status": "ACTIVE"]).arrayValue?.first)
        #expect(child["parentId"]?.stringValue == "P")
        #expect(try client.sendAck(costEvent("late-1", cost: "85", budgetId: "C")).string("state") == "ALLOCATED")
        #expect(try client.call("budget.get", ["id": "P"])["totalSpent"]?.numberText == "85")

        _ = try client.call("budget.update", ["id": "P", "autoRenewal": true])
        try waitFor { try client.call("budget.list", ["status": "ACTIVE"]).arrayValue?.count == 2 }
        // The parent's current period has the child's current one, and its 85; the first period
        // is back to nothing.
        func check(_ client: Client) throws {
            let active = try #require(try client.call("budget.list", ["status": "ACTIVE"]).arrayValue)
            let parent = try #require(active.first { $0["name"]?.stringValue == "P" })
            let renewedChild = try #require(active.first { $0["name"]?.stringValue == "C" })
            #expect(renewedChild["parentId"] == parent["id"])
            #expect(parent["spentAmount"]?.numberText == "85")
            #expect(parent["allocations"]?.arrayValue?.first?["spentAmount"]?.numberText == "85")
            let first = try client.call("budget.get", ["id": "P"])
            #expect(first["totalSpent"]?.numberText == "0")
            #expect(first["budget"]?["allocations"]?.arrayValue?.first?["spentAmount"]?.numberText == "0")
            // Its day of spend left with the child (a day listed at 0 before).
            #expect(first["dailySpend"]?.arrayValue?.isEmpty == true)
            #expect(try client.call("budget.get", ["id": parent["id"] ?? .null])["dailySpend"]?.arrayValue?.count == 1)
            // Every renewed child hangs under the parent's period that covers its start.
            for b in try #require(try client.call("budget.list").arrayValue) where b["name"]?.stringValue == "C" && b["id"]?.stringValue != "C" {
                let p = try client.call("budget.get", ["id": b["parentId"] ?? .null])["budget"]
                #expect(p?["startDate"] == b["startDate"], "\(b["id"]?.stringValue ?? "") under \(b["parentId"]?.stringValue ?? "")")
            }
        }
        try check(client)
        // The renewal's alerts: 85 of 100 (THRESHOLD_80) and its allocation (85 of 50).
        let active = try #require(try client.call("budget.list", ["status": "ACTIVE"]).arrayValue)
        let renewal = try #require(active.first { $0["name"]?.stringValue == "P" }?["id"])
        let alerts = try #require(try client.call("alert.list", ["budgetId": renewal]).arrayValue)
        let types = Set(alerts.compactMap { $0["type"]?.stringValue })
        #expect(types.isSuperset(of: ["THRESHOLD_80", "ALLOCATION_DEPLETED"]))
        #expect(daemon.stop() == 0)
        daemon = try Daemon(dir: dir)
        client = try Client(daemon)
        try check(client)
        #expect(daemon.stop() == 0)
    }

    @Test func aPeriodThatEndedWhileTheDaemonWasDownIsCompletedAtStart() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let end = now.adding(seconds: 2)
        _ = try client.call("budget.create", [
            "id": "b_short", "name": "Short", "budgetType": "PROJECT", "totalAmount": .number("10"),
            "startDate": .string(now.civilDate.description), "endDate": .string(end.rfc3339),
        ])
        #expect(daemon.stop() == 0)
        Thread.sleep(forTimeInterval: 3)
        daemon = try Daemon(dir: dir)
        client = try Client(daemon)
        try waitFor { try client.call("budget.get", ["id": "b_short"])["budget"]?["status"]?.stringValue == "COMPLETED" }
        let outbound = try #require(try client.call("outbound.list", ["sinceSeq": .number("0")]).arrayValue)
        #expect(outbound.compactMap { $0["topic"]?.stringValue } == ["status.COMPLETED"])
        #expect(outbound.first?["payload"]?["previousStatus"]?.stringValue == "ACTIVE")
        #expect(daemon.stop() == 0)
    }

    @Test func aPausedBudgetStaysPausedPastItsEndUntilResumedThenCompletes() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let end = now.adding(seconds: 3)
        _ = try client.call("budget.create", [
            "id": "b_paused", "name": "Paused", "budgetType": "PROJECT", "totalAmount": .number("10"),
            "startDate": .string(now.civilDate.description), "endDate": .string(end.rfc3339),
        ])
        _ = try client.call("budget.update", ["id": "b_paused", "status": "PAUSED"])
        // Past its end (the scheduler ticks every second), an operator's PAUSED stays (CONTRACT §6).
        Thread.sleep(forTimeInterval: 5)
        #expect(try client.call("budget.get", ["id": "b_paused"])["budget"]?["status"]?.stringValue == "PAUSED")
        _ = try client.call("budget.update", ["id": "b_paused", "status": "ACTIVE"])
        try waitFor { try client.call("budget.get", ["id": "b_paused"])["budget"]?["status"]?.stringValue == "COMPLETED" }
        let outbound = try #require(try client.call("outbound.list", ["sinceSeq": .number("0")]).arrayValue)
        #expect(outbound.compactMap { $0["topic"]?.stringValue } == ["status.PAUSED", "status.ACTIVE", "status.COMPLETED"])
        #expect(outbound.last?["payload"]?["previousStatus"]?.stringValue == "ACTIVE")
    }

    @Test func lowBudgetFiresOnceWithTheProjectedExhaustion() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir, config: ["lowBudgetMinElapsedHours": "24"])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        // Ten days in, twenty to go; 50 of 100 spent: 5 a day runs out in ten days, before the end.
        let start = now.adding(seconds: -10 * 86_400)
        let end = now.adding(seconds: 20 * 86_400)
        _ = try client.call("budget.create", [
            "id": "b_low", "name": "Low", "budgetType": "PROJECT", "totalAmount": .number("100"),
            "startDate": .string(start.rfc3339), "endDate": .string(end.rfc3339),
        ])
        let sub = try client.subscriber()
        _ = try client.sendAck(costEvent("low-1", cost: "50", budgetId: "b_low"))
        let alert = try #require(try client.next(sub))
        #expect(alert.topic == "alert.LOW_BUDGET")
        #expect(alert.payload.string("severity") == "WARNING")
        let exhaustion = try Timestamp(rfc3339: try #require(alert.payload.string("projectedExhaustion")))
        let expected = now.adding(seconds: 10 * 86_400)
        #expect(abs(exhaustion - expected) < 120 * 1_000_000_000)
        #expect(alert.payload.string("message")?.contains("will run out around") == true)
        _ = try client.sendAck(costEvent("low-2", cost: "1", budgetId: "b_low"))
        #expect(try client.quiet(sub, ms: 300))
    }

    @Test func aSpendingSpikeAgainstYesterdaysSameHourFiresOnce() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir, config: ["spikeBaselineDays": "1", "spikeMinAmount": "\"10\""])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        _ = try client.call("budget.create", [
            "id": "b_spike", "name": "Spiky", "budgetType": "UNLIMITED", "startDate": "2026-01-01",
        ])
        let sub = try client.subscriber()
        let yesterday = now.adding(seconds: -86_400)
        _ = try client.sendAck(costEvent("sp-0", cost: "5", budgetId: "b_spike", extra: [("time", .string(yesterday.rfc3339))]))
        _ = try client.sendAck(costEvent("sp-1", cost: "50", budgetId: "b_spike"))
        let spike = try #require(try client.next(sub))
        #expect(spike.topic == "alert.SPENDING_SPIKE")
        #expect(spike.payload.number("windowAmount") == "50")
        #expect(spike.payload.number("baselineAmount") == "5")
        #expect(spike.payload.string("eventId") == "sp-1")
        _ = try client.sendAck(costEvent("sp-2", cost: "80", budgetId: "b_spike"))
        #expect(try client.quiet(sub, ms: 300))
        // Restarting does not forget that this window already fired.
        #expect(daemon.stop() == 0)
        let again = try Daemon(dir: dir, config: ["spikeBaselineDays": "1", "spikeMinAmount": "\"10\""])
        let c2 = try Client(again)
        _ = try c2.sendAck(costEvent("sp-3", cost: "80", budgetId: "b_spike"))
        let alerts = try #require(try c2.call("alert.list", ["budgetId": "b_spike"]).arrayValue)
        #expect(alerts.count == 1)
        #expect(again.stop() == 0)
    }
}
