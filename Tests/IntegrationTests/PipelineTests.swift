import BudgetCore
import Foundation
import Testing
import ZMQ

/// End to end against the real `budgetd` binary on loopback: ZeroMQ in, SQLite file, ZeroMQ out.
@Suite(.timeLimit(.minutes(5)))
struct PipelineTests {
    @Test func publishedEventRaisesAnAlertWithTheContractFields() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, name: "March Ops", total: "5000")
        let sub = try client.subscriber()

        try client.publish(costEvent("e-1", cost: "4065", budgetId: budgetId), topic: "usage.openai")

        let alert = try #require(try client.next(sub))
        #expect(alert.topic == "alert.THRESHOLD_80")
        let p = alert.payload
        #expect(p.number("seq") == "1")
        #expect(p.string("type") == "THRESHOLD_80")
        #expect(p.string("severity") == "WARNING")
        #expect(p.string("budgetId") == budgetId)
        #expect(p.string("budgetName") == "March Ops")
        #expect(p.number("threshold") == "80")
        #expect(p.number("spentPercentage") == "81.3")
        #expect(p.number("spentAmount") == "4065")
        #expect(p.number("totalAmount") == "5000")
        #expect(p.string("currency") == "USD")
        #expect(p.string("eventId") == "e-1")
        #expect(p["platform"]?.isNull == true)
        #expect(p.string("message") == "March Ops has spent 81.3% of 5000.00 USD")
        #expect(try Timestamp(rfc3339: p.string("triggeredAt") ?? "") > Timestamp(secondsSinceEpoch: 0))
        #expect(try client.quiet(sub, ms: 300))
    }

    @Test func oneEventCrossingEverythingFiresFourAlertsInOrderAndOneStatusEvent() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "100")
        let sub = try client.subscriber()

        let ack = try client.sendAck(costEvent("big", cost: "150.5", budgetId: budgetId))
        #expect(ack.string("status") == "ACCEPTED")
        #expect(ack.string("state") == "ALLOCATED")

        var received: [(String, JSONObject)] = []
        for _ in 0..<5 { received.append(try #require(try client.next(sub))) }
        #expect(received.map(\.0) == ["alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
        #expect(received.map { $0.1.number("seq") } == ["1", "2", "3", "4", "5"])
        #expect(received.map { $0.1.string("severity") } == ["WARNING", "CRITICAL", "CRITICAL", "CRITICAL", nil])
        let status = received[4].1
        #expect(status.string("status") == "EXCEEDED")
        #expect(status.string("previousStatus") == "ACTIVE")
        #expect(status.number("spentAmount") == "150.5")

        // Nothing fires twice in the same period.
        #expect(try client.sendAck(costEvent("more", cost: "1", budgetId: budgetId)).string("status") == "ACCEPTED")
        #expect(try client.quiet(sub, ms: 400))

        // outbound.list recovers the same sequence, and the budget says EXCEEDED.
        let outbound = try #require(try client.call("outbound.list", ["sinceSeq": .number("0")]).arrayValue)
        #expect(outbound.compactMap { $0["topic"]?.stringValue } == received.map(\.0))
        #expect(try client.call("outbound.list", ["sinceSeq": .number("3")]).arrayValue?.count == 2)
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        #expect(summary["budget"]?["status"]?.stringValue == "EXCEEDED")
        #expect(summary["totalSpent"]?.numberText == "151.5")
        #expect(summary["totalRemaining"]?.numberText == "-51.5")
        #expect(summary["spentPercentage"]?.numberText == "151.5")
        let today = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).civilDate.description
        #expect(summary["dailySpend"]?.arrayValue?.map { $0["date"]?.stringValue } == [today])
        #expect(summary["dailySpend"]?.arrayValue?.first?["amount"]?.numberText == "151.5")
        let stats = try client.call("stats")
        #expect(stats["alertsPublished"]?.numberText == "4")
        #expect(stats["statusEventsPublished"]?.numberText == "1")
        #expect(stats["lastSeq"]?.numberText == "5")
        // The process's own figures (benchmarks read them): a live daemon has resident memory,
        // at most its peak, and a database file with these events in it.
        let rss = try #require(stats["process"]?["rssBytes"]?.numberText.flatMap { Int64($0) })
        let peak = try #require(stats["process"]?["peakRssBytes"]?.numberText.flatMap { Int64($0) })
        #expect(rss > 1 << 20 && rss <= peak)
        let databaseBytes = try #require(stats["process"]?["databaseBytes"]?.numberText.flatMap { Int64($0) })
        let walBytes = try #require(stats["process"]?["walBytes"]?.numberText.flatMap { Int64($0) })
        #expect(databaseBytes + walBytes > 4096)
    }

    @Test func duplicatesCountOnceOverBothSocketsAndAcrossARestart() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000")
        let event = costEvent("dup-1", cost: "0.5", budgetId: budgetId, extra: [("metadata", ["a": 1, "b": "x"])])

        #expect(try client.sendAck(event).string("status") == "ACCEPTED")
        let again = try client.sendAck(event)
        #expect(again.string("status") == "DUPLICATE")
        #expect(again.string("state") == "ALLOCATED")
        // The same body spelled differently (key order, decimals, a string amount) is still the same.
        let respelled = JSONValue.object(JSONObject([
            ("metadata", ["b": "x", "a": .number("1.0")]), ("cost", "0.50"), ("budgetId", .string(budgetId)),
            ("serviceType", "API"), ("platform", "OpenAI"), ("source", "test"), ("id", "dup-1"),
        ]))
        #expect(try client.sendAck(respelled).string("status") == "DUPLICATE")
        // Over the fire-and-forget socket too: wait until the daemon has counted it.
        try client.publish(event)
        try waitFor { try client.call("stats")["duplicates"]?.numberText == "3" }

        // A different body under the same (source, id) is a conflict; the first body stands.
        let conflict = try client.sendAck(costEvent("dup-1", cost: "7", budgetId: budgetId))
        #expect(conflict.string("status") == "REJECTED")
        #expect(conflict.string("reason") == "conflict")
        // The same id from another source is another event.
        #expect(try client.sendAck(costEvent("dup-1", cost: "0.25", source: "other", budgetId: budgetId)).string("status") == "ACCEPTED")

        #expect(daemon.stop() == 0)
        daemon = try Daemon(dir: dir)
        client = try Client(daemon)
        #expect(try client.sendAck(event).string("status") == "DUPLICATE")
        #expect(try client.sendAck(costEvent("dup-1", cost: "7", budgetId: budgetId)).string("reason") == "conflict")
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        #expect(summary["totalSpent"]?.numberText == "0.75")
        #expect(try client.call("cost.list", ["budgetId": .string(budgetId)]).arrayValue?.count == 2)
        #expect(daemon.stop() == 0)
    }

    /// CONTRACT §2: an explicit cost with more decimals is rounded; 40 significant digits (more
    /// than 128 bits hold) were REJECTED "too many digits" (an audit). Booked rounded, its body
    /// kept whole: a respelling is a DUPLICATE, a change in the 40th digit a conflict, across a
    /// restart (the stored body decodes again).
    @Test func aCostOfFortyDigitsIsRoundedAndItsBodyKeptWhole() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000")
        let ones = String(repeating: "1", count: 40)
        let ack = try client.sendAck(costEvent("long", cost: "0." + ones, budgetId: budgetId))
        #expect(ack.string("status") == "ACCEPTED", "\(ack)")
        #expect(ack.string("state") == "ALLOCATED", "\(ack)")
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == "0.111111111")
        #expect(try client.sendAck(costEvent("long", cost: "1.\(ones.dropLast())e-1", budgetId: budgetId)).string("status") == "DUPLICATE")
        #expect(daemon.stop() == 0)
        daemon = try Daemon(dir: dir)
        client = try Client(daemon)
        #expect(try client.sendAck(costEvent("long", cost: "0." + ones + "000", budgetId: budgetId)).string("status") == "DUPLICATE")
        #expect(try client.sendAck(costEvent("long", cost: "0." + ones.dropLast() + "2", budgetId: budgetId)).string("reason") == "conflict")
        let stored = try #require(try client.call("event.list", ["state": "ALLOCATED"]).arrayValue?.first)
        #expect(stored["cost"]?.numberText == "0.111111111")
        #expect(stored["body"]?["cost"]?.numberText == "0." + ones, "\(stored)")
        #expect(daemon.stop() == 0)
    }

    @Test func killNineDuringAcknowledgedLoadLosesNothingAcknowledged() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000000")
        let count = 3000
        // Each event costs a distinct amount so the total proves each counted exactly once.
        func event(_ i: Int) -> JSONValue { costEvent("k-\(i)", cost: "0.\(String(format: "%06d", i + 1))", budgetId: budgetId) }
        var accepted = Set<Int>()

        // Window of outstanding requests; kill -9 once about a third are acknowledged.
        let dealer = try client.ackSocket()
        var next = 0, outstanding = 0
        var killed = false
        while !killed {
            while outstanding < 200 && next < count {
                try dealer.send([Array("usage".utf8), event(next).serializedBytes()])
                next += 1
                outstanding += 1
            }
            guard try poll([(dealer, .readable)], timeoutMilliseconds: 5000)[0].contains(.readable) else { break }
            while let reply = try dealer.receive(dontWait: true) {
                outstanding -= 1
                let o = try #require(try JSON.parse(reply.last ?? []).objectValue)
                if o.string("status") == "ACCEPTED", let id = o.string("id"), let i = Int(id.dropFirst(2)) { accepted.insert(i) }
            }
            if accepted.count >= count / 3 {
                daemon.kill9()
                killed = true
            }
        }
        #expect(killed)
        #expect(!accepted.isEmpty)

        // Restart on the same file; the client resends everything it has no ACCEPTED for, and more.
        daemon = try Daemon(dir: dir)
        client = try Client(daemon)
        var duplicates = 0
        for i in 0..<count {
            let status = try client.sendAck(event(i)).string("status")
            if status == "DUPLICATE" { duplicates += 1 }
            #expect(status == "ACCEPTED" || status == "DUPLICATE")
            if accepted.contains(i) { #expect(status == "DUPLICATE") }
        }
        #expect(duplicates >= accepted.count)
        // Σ over i of 0.(i+1) in millionths, exactly.
        let expectedMicros = (1...count).reduce(0, +)
        let expected = try Money(parsing: "0.\(String(format: "%06d", 0))") + Money(nanos: Int128(expectedMicros) * 1000)
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        #expect(summary["totalSpent"]?.numberText == expected.description)
        #expect(try client.call("event.list", ["state": "ALLOCATED", "limit": .number(String(count + 10))]).arrayValue?.count == count)
        #expect(daemon.stop() == 0)
    }

    @Test func malformedInputIsRejectedWithAReasonAndTheDaemonKeepsServing() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000")
        let usage = Array("usage".utf8)
        var deep = "1"
        for _ in 0..<40 { deep = "[" + deep + "]" }
        // The id the REJECTED acknowledgement names: null only when none can be read (CONTRACT §2).
        let cases: [(String, [[UInt8]], String, String?)] = [
            ("not JSON", [usage, Array("{not json".utf8)], "invalid JSON", nil),
            ("one frame", [Array("{}".utf8)], "expected 2 frames", nil),
            ("one frame with an id", [Array(#"{"id":"m10","source":"s","platform":"OpenAI","serviceType":"API","cost":1}"#.utf8)], "expected 2 frames", "m10"),
            ("three frames", [usage, Array(#"{"id":"m9","platform":"OpenAI","serviceType":"API","cost":1}"#.utf8), Array("{}".utf8)], "expected 2 frames", "m9"),
            ("missing platform", [usage, Array(#"{"id":"m1","serviceType":"API","cost":1}"#.utf8)], "missing field: platform", "m1"),
            ("missing id", [usage, Array(#"{"platform":"OpenAI","serviceType":"API","cost":1}"#.utf8)], "missing field: id", nil),
            ("negative", [usage, Array(#"{"id":"m2","platform":"OpenAI","serviceType":"API","cost":-1}"#.utf8)], "negative", "m2"),
            ("NaN", [usage, Array(#"{"id":"m3","platform":"OpenAI","serviceType":"API","cost":"NaN"}"#.utf8)], "cost", "m3"),
            ("over 1e12", [usage, Array(#"{"id":"m4","platform":"OpenAI","serviceType":"API","cost":1000000000000.5}"#.utf8)], "1e12", "m4"),
            ("bad service", [usage, Array(#"{"id":"m5","platform":"OpenAI","serviceType":"LLM","cost":1}"#.utf8)], "serviceType", "m5"),
            ("oversized", [usage, Array(("{\"id\":\"m6\",\"pad\":\"" + String(repeating: "x", count: 70_000) + "\"}").utf8)], "oversized", "m6"),
            ("binary", [usage, [0xff, 0x00, 0xfe, 0x80, 0x01]], "invalid JSON", nil),
            ("too deep", [usage, Array(("{\"id\":\"m7\",\"metadata\":{\"x\":" + deep + "}}").utf8)], "too deep", nil),
            ("bad topic", [Array("metrics".utf8), Array(#"{"id":"m8","platform":"OpenAI","serviceType":"API","cost":1}"#.utf8)], "topic", "m8"),
            // The topic counts too: over 256 bytes the message is oversized (1 MiB was accepted).
            ("long usage topic", [Array(("usage." + String(repeating: "t", count: 251)).utf8), Array(#"{"id":"m11","platform":"OpenAI","serviceType":"API","cost":1}"#.utf8)], "oversized", "m11"),
            ("long other topic", [Array(String(repeating: "q", count: 100_000).utf8), Array(#"{"id":"m12","platform":"OpenAI","serviceType":"API","cost":1}"#.utf8)], "oversized", "m12"),
            // Cut between characters: "é" (2 bytes) across byte 256 is left out whole.
            ("long topic, a character across the cut", [Array(("usage." + String(repeating: "t", count: 249) + "é" + String(repeating: "t", count: 10)).utf8), Array(#"{"id":"m14","platform":"OpenAI","serviceType":"API","cost":1}"#.utf8)], "oversized", "m14"),
        ]
        for (name, frames, reason, id) in cases {
            let reply = try client.sendAckRaw(frames)
            #expect(reply.string("status") == "REJECTED", "\(name)")
            #expect(reply.string("reason")?.contains(reason) == true, "\(name): \(reply.string("reason") ?? "nil")")
            #expect(reply.string("id") == id, "\(name)")
        }
        // A long id is rejected; the acknowledgement names it as sent.
        let longId = String(repeating: "i", count: 129)
        let long = try client.sendAckRaw([usage, Array(("{\"id\":\"" + longId + "\",\"platform\":\"OpenAI\",\"serviceType\":\"API\",\"cost\":1}").utf8)])
        #expect(long.string("status") == "REJECTED")
        #expect(long.string("reason")?.contains("id") == true)
        // The same garbage over the fire-and-forget socket is recorded too.
        try client.publish(.string("just a string"))
        try waitFor { try client.call("stats")["rejected"]?.numberText == String(cases.count + 2) }

        let rejected = try #require(try client.call("event.list", ["state": "REJECTED", "limit": .number("100")]).arrayValue)
        #expect(rejected.count == cases.count + 2)
        // The dead letters name their events as the acknowledgements did.
        #expect(rejected.first { $0["reason"]?.stringValue == "oversized" && $0["id"]?.stringValue == "m6" } != nil)
        // A dead letter keeps 256 bytes of its topic (it kept all 100,000).
        #expect(rejected.first { $0["id"]?.stringValue == "m12" }?["topic"]?.stringValue == String(repeating: "q", count: 256))
        #expect(rejected.first { $0["id"]?.stringValue == "m14" }?["topic"]?.stringValue == "usage." + String(repeating: "t", count: 249))
        // A topic of 256 bytes is no more than the limit.
        let longest = "usage." + String(repeating: "t", count: 250)
        #expect(try client.sendAckRaw([Array(longest.utf8), Array(#"{"id":"m13","platform":"OpenAI","serviceType":"API","cost":1}"#.utf8)]).string("status") == "ACCEPTED")
        #expect(rejected.allSatisfy { $0["state"]?.stringValue == "REJECTED" && $0["reason"]?.stringValue != nil })
        // A rejected id is not used up: the corrected resend is accepted.
        let fixed = try client.sendAck(costEvent("m2", cost: "1", budgetId: budgetId))
        #expect(fixed.string("status") == "ACCEPTED")
        let stats = try client.call("stats")
        #expect(stats["received"]?.numberText == String(cases.count + 4))
        #expect(stats["accepted"]?.numberText == "2")
        #expect(try client.call("health")["status"]?.stringValue == "OK")
    }

    @Test func unpricedAndUnallocatedEventsAreStoredAndRoutedOnceABudgetExists() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let unpriced = try client.sendAck(.object(JSONObject([
            ("id", "u1"), ("platform", "OpenAI"), ("serviceType", "API"), ("model", "gpt-unknown"),
            ("usage", ["inputTokens": 10]),
        ])))
        #expect(unpriced.string("status") == "ACCEPTED")
        #expect(unpriced.string("state") == "UNPRICED")
        let unallocated = try client.sendAck(costEvent("u2", cost: "3"))
        #expect(unallocated.string("state") == "UNALLOCATED")

        let today = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).civilDate
        let created = try client.call("budget.create", [
            "name": "Ops", "budgetType": "MONTHLY", "totalAmount": 10,
            "startDate": .string(CivilDate(year: today.year, month: today.month, day: 1)!.description),
        ])
        // The reply shows the budget as its batch commits it: with the waiting event routed to it.
        #expect(created["spentAmount"]?.numberText == "3", "\(created)")
        let budgetId = try #require(created["id"]?.stringValue)
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        #expect(summary["totalSpent"]?.numberText == "3")
        #expect(try client.call("event.list", ["state": "UNALLOCATED"]).arrayValue?.count == 0)
        #expect(try client.call("event.list", ["state": "UNPRICED"]).arrayValue?.count == 1)
    }

    @Test func controlErrorsHaveCodesAndMessages() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        func error(_ reply: JSONValue) -> (String?, String?) {
            (reply["error"]?["code"]?.stringValue, reply["error"]?["message"]?.stringValue)
        }
        #expect(error(try client.request("no.such.op")).0 == "UNKNOWN_OP")
        #expect(error(try client.requestRaw([Array("{oops".utf8)])).0 == "BAD_REQUEST")
        #expect(error(try client.requestRaw([[0xff, 0xfe]])).0 == "BAD_REQUEST")
        #expect(error(try client.request("budget.get", ["id": "b_missing"])).0 == "NOT_FOUND")
        let tooMuch = try client.request("budget.create", [
            "name": "Invalid Budget", "budgetType": "MONTHLY", "totalAmount": .number("1000"), "startDate": "2026-03-01",
            "allocations": [
                ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": .number("800")],
                ["platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": .number("500")],
            ],
        ])
        #expect(error(tooMuch).0 == "VALIDATION_FAILED")
        #expect(error(tooMuch).1 == "Total allocation (1300) exceeds budget total (1000)")
        #expect(error(try client.request("budget.create", ["name": "x", "budgetType": "PROJECT", "totalAmount": .number("5"), "startDate": "2026-03-01"])).0 == "VALIDATION_FAILED")
        #expect(error(try client.request("budget.create", ["name": "x", "budgetType": "MONTHLY", "totalAmount": .number("5"), "startDate": "2026-03-01", "endDate": "2026-02-01"])).0 == "VALIDATION_FAILED")
        let created = try client.call("budget.create", ["id": "b_fixed", "name": "Fixed", "budgetType": "MONTHLY", "totalAmount": .number("5"), "startDate": "2026-03-01"])
        #expect(created["endDate"]?.stringValue == "2026-03-31")
        #expect(error(try client.request("budget.create", ["id": "b_fixed", "name": "Again", "budgetType": "MONTHLY", "totalAmount": .number("5"), "startDate": "2026-03-01"])).0 == "CONFLICT")
        #expect(error(try client.request("budget.update", ["id": "b_fixed", "status": "COMPLETED"])).0 == "VALIDATION_FAILED")
        #expect(try client.call("health")["version"]?.stringValue != nil)
    }

    @Test func raisingTheTotalReArmsAndReturnsToActive() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "100")
        let sub = try client.subscriber()
        _ = try client.sendAck(costEvent("r1", cost: "120", budgetId: budgetId))
        for _ in 0..<5 { _ = try #require(try client.next(sub)) }

        let updated = try client.call("budget.update", ["id": .string(budgetId), "totalAmount": .number("200")])
        #expect(updated["status"]?.stringValue == "ACTIVE")
        let active = try #require(try client.next(sub))
        #expect(active.topic == "status.ACTIVE")
        #expect(active.payload.number("seq") == "6")
        // 120 of 200 is 60%: everything re-armed, so crossing 80% again fires again.
        _ = try client.sendAck(costEvent("r2", cost: "45", budgetId: budgetId))
        let again = try #require(try client.next(sub))
        #expect(again.topic == "alert.THRESHOLD_80")
        #expect(again.payload.number("seq") == "7")
        #expect(again.payload.number("spentPercentage") == "82.5")
    }

    @Test func sigtermDrainsAndExitsZero() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000000")
        for i in 0..<500 { try client.publish(costEvent("t-\(i)", cost: "1", budgetId: budgetId)) }
        #expect(daemon.stop() == 0)
        let again = try Daemon(dir: dir)
        let c2 = try Client(again)
        // Everything that reached the daemon before SIGTERM was committed.
        let spent = try c2.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText
        #expect(Int(spent ?? "") ?? -1 > 0)
        #expect(try c2.call("event.list", ["limit": .number("1000")]).arrayValue?.count == Int(spent ?? "") ?? -1)
        #expect(again.stop() == 0)
    }
}

/// Polls a condition for up to `seconds` (10 s).
func waitFor(seconds: Double = 10, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    Issue.record("condition not met within \(seconds) s")
}
