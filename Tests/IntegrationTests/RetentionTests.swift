import BudgetCore
import Foundation
import Testing

// Retention (docs/ledger.md): `retention.run` prunes raw events, dead letters and the outbound
// log; costs, budgets, the daily rollup and analytics stay as they were; the dedup window keeps
// resends DUPLICATE.

/// Runs budgetctl to the end: (exit status, standard output, standard error).
private func budgetctl(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try runProcess(Products.budgetctl, args)
}

private func errorCode(_ reply: JSONValue) -> String? { reply["error"]?["code"]?.stringValue }

/// An instant an hour from now, RFC 3339: "everything received so far".
private func anHourFromNow() -> String {
    Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970) + 3600).rfc3339
}

@Suite(.timeLimit(.minutes(3)))
struct RetentionTests {
    /// The daily pruning was one transaction on the engine thread: 10⁶ events stopped the
    /// daemon for a minute. It now goes in chunks between batches.
    @Test("the daily pruning goes in short transactions, answering between them; totals stay")
    func theDailyPruningGoesInChunks() throws {
        let dir = try TempDir()
        let db = dir.file("budgetd.db")
        var budget = ""
        do {
            let daemon = try Daemon(dir: dir, dbPath: db)
            let client = try Client(daemon)
            budget = try makeBudget(client, total: "1000000")
            #expect(try client.sendAck(costEvent("seed", cost: "0.01", budgetId: budget)).string("state") == "ALLOCATED")
            #expect(daemon.stop() == 0)
        }
        // 20,000 copies of that event (booked in their rows, not counted in the budget's
        // totals: those come from the ledger), all received ten days ago.
        try SQLiteShell.copyEvent(db, id: "seed", copies: 20_000)
        let tenDaysAgo = (Int64(Date().timeIntervalSince1970) - 10 * 86_400) * 1_000_000_000
        try SQLiteShell.write(db, "UPDATE usage_events SET received_at = \(tenDaysAgo)")
        let daemon = try Daemon(dir: dir, dbPath: db, config: ["retentionDays": "1"])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        // Answered while the pruning, begun at start, is still under way.
        #expect(try client.sendAck(costEvent("during", cost: "1", budgetId: budget)).string("status") == "ACCEPTED")
        #expect(!daemon.stderr.contains("retention: pruned"), "the pruning was done before an event sent at start was answered")
        let deadline = Date().addingTimeInterval(60)
        while !daemon.stderr.contains("retention: pruned") && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let line = try #require(daemon.stderr.split(separator: "\n").first { $0.contains("retention: pruned") })
        // The seed and every copy but the last: the newest row when the pruning began stays (row
        // numbers are never reused); the pruning begins at start, before anything is read.
        #expect(line.contains("usageEvents=20000"), "\(line)")
        let transactions = line.split(separator: " ").first { $0.hasPrefix("transactions=") }.flatMap { Int($0.dropFirst("transactions=".count)) }
        #expect((transactions ?? 0) >= 10, "\(line)")
        #expect(try client.call("budget.get", ["id": .string(budget)])["budget"]?["spentAmount"]?.numberText == "1.01")
        #expect(try client.call("stats")["accepted"]?.numberText == "1")
    }

    @Test func pruningKeepsTotalsAndAnalytics() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100", extra: [
            ("allocations", [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 100]]),
        ])
        #expect(try client.sendAck(costEvent("e1", cost: "12.5", budgetId: b)).string("state") == "ALLOCATED")
        #expect(try client.sendAck(costEvent("e2", cost: "70.125", budgetId: b)).string("state") == "ALLOCATED")  // 82.625: THRESHOLD_80
        _ = try client.call("cost.credit", ["correctsEvent": ["source": "test", "id": "e1"], "amount": "2.5"])
        // No prices: a usage event waits UNPRICED, and is kept (it is not booked yet).
        let unpriced = JSONValue.object(JSONObject([
            ("id", "u1"), ("source", "test"), ("platform", "OpenAI"), ("serviceType", "API"), ("model", "m1"),
            ("usage", .object(JSONObject([("inputTokens", .number("10"))]))),
        ]))
        #expect(try client.sendAck(unpriced).string("state") == "UNPRICED")
        #expect(try client.sendAck(.object(JSONObject([("id", "bad"), ("source", "test")]))).string("status") == "REJECTED")

        let budgetBefore = try client.call("budget.get", ["id": .string(b)])
        let analyticsBefore = try client.call("analytics")
        let costsBefore = try client.call("cost.list", ["budgetId": .string(b)])
        #expect(budgetBefore["budget"]?["spentAmount"]?.numberText == "80.125")
        #expect(try client.call("event.list", ["state": "REJECTED"]).arrayValue?.count == 1)
        #expect(try client.call("outbound.list").arrayValue?.isEmpty == false)

        // Not a time: refused. Retention off (retentionDays 0) and no olderThan: nothing happens.
        #expect(errorCode(try client.request("retention.run", ["olderThan": "yesterday"])) == "VALIDATION_FAILED")
        let off = try client.call("retention.run")
        #expect(off["enabled"]?.boolValue == false)
        #expect(off["usageEvents"]?.numberText == "0")

        let run = try client.call("retention.run", ["olderThan": .string(anHourFromNow())])
        #expect(run["usageEvents"]?.numberText == "2", "\(run.serialized())")
        #expect(run["deadLetters"]?.numberText == "1")
        #expect(run["outbound"]?.numberText != "0")

        // Totals, allocations, the daily rollup, costs and analytics are what they were.
        let budgetAfter = try client.call("budget.get", ["id": .string(b)])
        // (The rest of budget.get is time-based: burn rate, projected exhaustion.)
        for key in ["budget", "allocations", "dailySpend"] {
            #expect(budgetAfter[key] == budgetBefore[key], "\(key): \(budgetAfter[key]?.serialized() ?? "-") vs \(budgetBefore[key]?.serialized() ?? "-")")
        }
        #expect(try client.call("analytics") == analyticsBefore)
        let costsAfter = try client.call("cost.list", ["budgetId": .string(b)])
        #expect(costsAfter == costsBefore, "\(costsAfter.serialized()) vs \(costsBefore.serialized())")
        #expect(try client.call("alert.list", ["budgetId": .string(b)]).arrayValue?.isEmpty == false)
        // The raw events are gone; the UNPRICED one stays.
        let events = try client.call("event.list").arrayValue ?? []
        #expect(events.map { $0["id"]?.stringValue } == ["u1"])
        #expect(errorCode(try client.request("event.get", ["source": "test", "id": "e2"])) == "NOT_FOUND")
        #expect(try client.call("event.list", ["state": "REJECTED"]).arrayValue?.isEmpty == true)
        // All but the newest outbound message, kept so that seq numbering resumes after it.
        let kept = try client.call("outbound.list", ["sinceSeq": 0]).arrayValue ?? []
        #expect(kept.compactMap { $0["seq"]?.numberText } == [try client.call("stats")["lastSeq"]?.numberText ?? "?"])
        // A second run has nothing left.
        #expect(try client.call("retention.run", ["olderThan": .string(anHourFromNow())])["usageEvents"]?.numberText == "0")
        // A change: operators only, and audited.
        let audit = try client.call("audit.list").arrayValue ?? []
        #expect(audit.contains { $0["op"]?.stringValue == "retention.run" })
    }

    /// The audit of the seventeenth session: once retention had pruned the whole outbound log,
    /// a restart numbered from 0 again; the next alert's seq was taken (alerts are kept) and
    /// its batch could not be committed (DEGRADED, no acknowledgement).
    @Test func seqResumesAfterARestartOncePrunedWhole() throws {
        let dir = try TempDir()
        var lastSeq = ""
        do {
            let daemon = try Daemon(dir: dir)
            defer { #expect(daemon.stop() == 0) }
            let client = try Client(daemon)
            let b = try makeBudget(client, name: "T", total: "100")
            #expect(try client.sendAck(costEvent("t1", cost: "85", budgetId: b)).string("state") == "ALLOCATED")
            _ = try client.call("budget.update", ["id": .string(b), "status": "PAUSED"])  // status.PAUSED last
            lastSeq = try client.call("stats")["lastSeq"]?.numberText ?? "?"
            #expect(Int(lastSeq) ?? 0 >= 2)
            #expect(try client.call("retention.run", ["olderThan": .string(anHourFromNow())])["outbound"]?.numberText == String((Int(lastSeq) ?? 0) - 1))
        }
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        #expect(try client.call("stats")["lastSeq"]?.numberText == lastSeq)
        let u = try makeBudget(client, name: "U", total: "100")
        let ack = try client.sendAck(costEvent("u1", cost: "85", budgetId: u))
        #expect(ack.string("status") == "ACCEPTED")
        #expect(try client.call("health")["status"]?.stringValue == "OK")
        let next = try client.call("outbound.list", ["sinceSeq": .number(lastSeq)]).arrayValue ?? []
        #expect(next.first?["seq"]?.numberText == String((Int(lastSeq) ?? 0) + 1))
        #expect(next.first?["topic"]?.stringValue == "alert.THRESHOLD_80")
    }

    @Test func theDedupWindowKeepsResendsDuplicate() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir, config: ["retentionDays": "30", "dedupWindowDays": "7"])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100")
        #expect(try client.sendAck(costEvent("e1", cost: "5", budgetId: b)).string("state") == "ALLOCATED")
        #expect(try client.sendAck(.object(JSONObject([("id", "bad"), ("source", "test")]))).string("status") == "REJECTED")

        // Configured retention (30 days): nothing is that old.
        let daily = try client.call("retention.run")
        #expect(daily["enabled"]?.boolValue == true)
        #expect(daily["usageEvents"]?.numberText == "0")
        #expect(daily["deadLetters"]?.numberText == "0")

        // Asked to prune everything: dead letters go, events inside the 7-day window stay.
        let cli = try budgetctl(["retention", "run", "--older-than", anHourFromNow(), "--control", daemon.control])
        #expect(cli.status == 0, "\(cli.err)")
        #expect(cli.out.hasPrefix("pruned 0 usage events (received before "), "\(cli.out)")
        #expect(cli.out.contains("1 dead letters and "), "\(cli.out)")
        let resend = try client.sendAck(costEvent("e1", cost: "5", budgetId: b))
        #expect(resend.string("status") == "DUPLICATE")
        #expect(try client.call("budget.get", ["id": .string(b)])["budget"]?["spentAmount"]?.numberText == "5")
    }

    @Test func aDedupWindowLongerThanRetentionIsRefused() throws {
        let dir = try TempDir()
        try Data("{\"retentionDays\": 7, \"dedupWindowDays\": 30}".utf8).write(to: URL(fileURLWithPath: dir.file("bad.json")))
        let check = try runProcess(Products.budgetd, ["--check-config", "--config", dir.file("bad.json")])
        #expect(check.status == 1)
        #expect(check.err.contains("dedupWindowDays"), "\(check.err)")
    }
}
