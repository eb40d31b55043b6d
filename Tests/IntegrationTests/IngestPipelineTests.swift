import BudgetCore
import Foundation
import Testing
import ZMQ

/// The staged ingest path (issue 8): under load the engine decides a batch while the one before
/// it commits on another thread, so a resend or a conflicting body can arrive while the event it
/// repeats is decided but not yet committed, in the same batch or in the one committing.
@Suite(.timeLimit(.minutes(5)))
struct IngestPipelineTests {
    @Test func resendsAndConflictsOfEventsNotYetCommittedCountOnce() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000000")
        let publisher = try client.publisher()
        // Wait at the high-water mark instead of dropping: every message counts below.
        try publisher.setXPubNoDrop(true)

        // Event i costs (i+1) millionths, so the total proves each counted exactly once.
        let n = 6000
        func event(_ i: Int, cost: String? = nil) -> JSONValue {
            costEvent("p-\(i)", cost: cost ?? String(format: "0.%06d", i + 1), budgetId: budgetId)
        }
        var duplicates = 0, conflicts = 0
        var lastAccepted = 0
        for i in 0..<n {
            try client.publish(event(i))
            if i % 1500 == 1499 {
                // Asked while batches are in the pipeline, stats answers as of the last commit
                // released: never more than was sent, never less than it said before.
                let accepted = try #require(try client.call("stats")["accepted"]?.numberText.flatMap { Int($0) })
                #expect(accepted <= i + 1 && accepted >= lastAccepted)
                lastAccepted = accepted
            }
            // Resends from just now (same batch), a few hundred back (the batch before, likely
            // on the commit thread) and far back (committed).
            for back in [0, 40, 700, 1500] where i >= back && (i + back) % 9 == 0 {
                try client.publish(event(i - back))
                duplicates += 1
            }
            // The same (source, id) with another body: a conflict, the first body stands.
            for back in [0, 300, 2500] where i >= back && (i + back) % 13 == 0 {
                try client.publish(event(i - back, cost: "9"))
                conflicts += 1
            }
        }
        let sent = n + duplicates + conflicts
        try waitFor { try client.call("stats")["received"]?.numberText == "\(sent)" }

        let stats = try client.call("stats")
        #expect(stats["accepted"]?.numberText == "\(n)")
        #expect(stats["duplicates"]?.numberText == "\(duplicates)")
        #expect(stats["rejectedByReason"]?["conflict"]?.numberText == "\(conflicts)")
        #expect(stats["rejected"]?.numberText == "\(conflicts)")
        // The load went through the pipeline (not only one batch at a time).
        let staged = try #require(stats["stagedBatches"]?.numberText.flatMap { Int($0) })
        #expect(staged > 1)
        // No batch failed to commit (a retry would have counted correctly too, one at a time).
        #expect(!daemon.stderr.contains("health DEGRADED"))
        let expected = Money(nanos: Int128(n * (n + 1) / 2) * 1000)
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        #expect(summary["totalSpent"]?.numberText == expected.description)
        // Each conflict was recorded with its reason, the first body kept.
        let rejected = try #require(try client.call("event.list", ["state": "REJECTED", "limit": .number("100000")]).arrayValue)
        #expect(rejected.count == conflicts)
        #expect(rejected.allSatisfy { $0["reason"]?.stringValue == "conflict" })
        let first = try client.call("event.get", ["source": "test", "id": "p-0"])
        #expect(first["cost"]?.numberText == "0.000001")
    }
}

extension IngestPipelineTests {
    /// Bodies and keys compare code point by code point, as JSON strings do (RFC 8259 §8.3):
    /// "é" precomposed and "e" with a combining accent are different text, so a resend that
    /// changed one into the other is a conflict, and two ids that differ so are two events,
    /// also within one batch (the events in flight are found by their key's code points).
    /// Each batch adds to the daily rollup once per (budget, day, platform, service): a burst
    /// whose events share batches must still give each row its own sum (`DailyTotals`).
    @Test("a burst over budgets, days, platforms and services gives each daily rollup row its own sum")
    func dailyRollupOfABurst() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let today = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).civilDate
        let start = CivilDate(year: today.year, month: today.month, day: 1)!
        let budgets = ["roll-a", "roll-b"]
        for id in budgets {
            _ = try client.call("budget.create", [
                "id": .string(id), "name": .string(id), "budgetType": "MONTHLY", "totalAmount": 1000000,
                "startDate": .string(start.description),
            ])
        }
        // Days 1 and 2 of this month (both in the budget's period), three platforms, two services
        // for one of them: 16 rows, each its own sum.
        let kinds: [(platform: String, service: String)] = [("OpenAI", "API"), ("Apify", "SCRAPING"), ("AWS", "STORAGE"), ("AWS", "PROCESSING")]
        var perRow: [String: Int] = [:]  // "budget day platform service" → cost in millionths
        var perDay: [String: [String: Int]] = [:]  // budget → day → millionths
        var perPlatform: [String: Int] = [:]
        let n = 3000
        for i in 0..<n {
            let budget = budgets[i % 2]
            let kind = kinds[(i / 2) % kinds.count]
            let day = CivilDate(year: start.year, month: start.month, day: 1 + (i / 7) % 2)!
            let millionths = 1 + (i * 37) % 1000
            let event = costEvent("roll-\(i)", cost: String(format: "0.%06d", millionths), budgetId: budget, platform: kind.platform, extra: [
                ("serviceType", .string(kind.service)), ("time", .string("\(day)T12:00:00Z")),
            ])
            try client.publish(event)
            perRow["\(budget) \(day) \(kind.platform) \(kind.service)", default: 0] += millionths
            perDay[budget, default: [:]]["\(day)", default: 0] += millionths
            perPlatform[kind.platform, default: 0] += millionths
        }
        try waitFor(seconds: 60) { try client.call("stats")["accepted"]?.numberText == "\(n)" }
        func text(_ millionths: Int) -> String { Money(nanos: Int128(millionths) * 1000).description }
        func money(_ millionths: Int) -> JSONValue { .number(text(millionths)) }
        for budget in budgets {
            let got = try client.call("budget.get", ["id": .string(budget)])["dailySpend"]
            let want: JSONValue = .array(perDay[budget, default: [:]].sorted { $0.key < $1.key }.map { ["date": .string($0.key), "amount": money($0.value)] })
            #expect(got == want, "\(budget): \(got?.serialized() ?? "-")")
        }
        let report = try client.call("analytics")
        let platforms = report["topSpendingPlatforms"]?.arrayValue ?? []
        #expect(platforms.count == 3)
        for entry in platforms {
            guard let name = entry["platform"]?.stringValue else { continue }
            #expect(entry["totalSpent"] == money(perPlatform[name] ?? -1), "\(name)")
        }
        // The load went through the pipeline, several events to a batch.
        let stats = try client.call("stats")
        let batches = try #require(stats["batches"]?.numberText.flatMap { Int($0) })
        #expect(batches < n)
        // The rollup's rows themselves: one per (budget, day, platform, service), each its sum
        // (AWS's two services differ only there: neither day nor platform totals would show a
        // merge of them). In the file once the daemon has stopped: commits log the rollup's
        // additions, and fold them into its rows every 64 commits and at the stop.
        #expect(daemon.stop() == 0)
        let stored = try SQLiteShell.query(dir.file("budgetd.db"), """
            SELECT budget_id || ' ' || day || ' ' || platform || ' ' || service_type || '=' || amount
            FROM daily_spend WHERE budget_id LIKE 'roll-%' ORDER BY 1
            """).split(separator: "\n").map(String.init)
        #expect(stored == perRow.map { "\($0.key)=\(text($0.value))" }.sorted(), "\(stored)")
        #expect(try SQLiteShell.query(dir.file("budgetd.db"), "SELECT count(*) FROM daily_log").trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }

    /// Batches staged while the one before commits are committed together (`CommitJob`): their
    /// rows in order, each budget's totals, spike bucket and daily rollup row written once as
    /// the last of them left it, their acknowledgements and alerts released in order.
    @Test(.enabled(if: SQLiteShell.path != nil, "needs the sqlite3 shell"))
    func batchesStagedDuringACommitCommitTogetherExactly() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let alerts = try client.subscriber()
        // Totals from 0.1 to 0.8: thresholds, BUDGET_EXCEEDED and status.EXCEEDED fire during the load.
        let budgets = try CrashTests.makeBudgets(client)
        let model = EventModel(source: "merge", budgetIds: budgets, count: 6_000)
        // Four windowed clients: replies released together invite many small batches at once.
        let load = LoadDriver(model: model, clients: 4, window: 64, publishEvery: 0)
        try load.run(daemon: daemon, client: client, sendNew: true, publish: false, stop: { false })
        #expect(model.rejected.isEmpty, "rejections: \(model.rejected.prefix(5))")
        #expect(model.accepted.count == model.events.count && model.acceptedTwice.isEmpty && model.duplicateReplies == 0)

        let stats = try client.call("stats")
        let staged = try #require(stats["stagedBatches"]?.numberText.flatMap { Int($0) })
        let commits = try #require(stats["stagedCommits"]?.numberText.flatMap { Int($0) })
        // Several batches to a commit: what this test is about (each commit syncs the log, so
        // the next windowed burst is staged while it does).
        #expect(commits > 0 && commits < staged, "\(commits) commits of \(staged) staged batches")

        // Totals, and the daily rollup (one day: every event is today's).
        let expected = model.expectedSpent(stored: model.acceptedIds)
        let priced = Dictionary(grouping: model.events.filter { $0.cost != nil }, by: \.budget).mapValues(\.count)
        for (b, id) in budgets.enumerated() {
            let summary = try client.call("budget.get", ["id": .string(id)])
            #expect(summary["totalSpent"]?.numberText == expected[b].description, "budget \(b)")
            #expect(summary["dailySpend"]?.arrayValue?.compactMap { $0["amount"]?.numberText } == [expected[b].description], "budget \(b) rollup")
        }

        // The alerts, as published: seq 1…N in order, as the outbound log has them; each
        // budget over its total announced EXCEEDED once, each threshold once.
        let outbound = try outboundLog(client)
        var received: [Int] = []
        while received.count < outbound.count, let m = try client.next(alerts, timeoutMs: 5_000) {
            received.append(Int(m.payload.number("seq") ?? "") ?? -1)
        }
        #expect(isGapFree(outbound.map(\.seq)) && received == outbound.map(\.seq), "published \(received.prefix(10))…")
        let overTotal = budgets.indices.filter { expected[$0] > Money(nanos: Int128($0 + 1) * 100_000_000) }
        #expect(outbound.filter { $0.topic == "status.EXCEEDED" }.count == overTotal.count)
        #expect(outbound.filter { $0.topic == "alert.BUDGET_EXCEEDED" }.count == overTotal.count)
        let past80 = budgets.indices.filter { expected[$0] * 10 >= Money(nanos: Int128($0 + 1) * 800_000_000) }
        #expect(outbound.filter { $0.topic == "alert.THRESHOLD_80" }.count == past80.count)

        // What the commits wrote, as a restart reads it back: each budget's totals and status,
        // its spike history (the ledger above answered from memory), its rollup row (one per
        // budget: every event is OpenAI API, today).
        #expect(daemon.stop() == 0)
        for (b, id) in budgets.enumerated() {
            let row = try SQLiteShell.query(dir.file("budgetd.db"), "SELECT amount || ' ' || count FROM daily_spend WHERE budget_id = '\(id)'")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(row == "\(expected[b]) \(priced[b] ?? 0)", "budget \(b) rollup")
            let history = try SQLiteShell.query(dir.file("budgetd.db"), "SELECT amount FROM spend_history WHERE key = '\(id)'")
                .split(separator: "\n").map { try Money(parsing: String($0)) }
            #expect(history.reduce(Money.zero, +) == expected[b], "budget \(b) history")
        }
        daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        client = try Client(daemon)
        for (b, id) in budgets.enumerated() {
            let summary = try client.call("budget.get", ["id": .string(id)])
            #expect(summary["totalSpent"]?.numberText == expected[b].description, "budget \(b) after a restart")
            #expect(summary["budget"]?["status"]?.stringValue == (overTotal.contains(b) ? "EXCEEDED" : "ACTIVE"), "budget \(b)")
        }
    }

    @Test("rejections are counted by the stable part of their reason, not by the client's value in it, and the map is bounded (an audit's 1,105 keys of `invalid serviceType \"BADn\"`)")
    func rejectionReasonsAreBounded() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let n = 300
        for i in 0..<n {
            try client.publish(.object(JSONObject([("id", .string("r\(i)")), ("platform", "P"), ("serviceType", .string("BAD\(i)"))])))
        }
        // Reasons that name a field of the client's ("field x7 is longer than 256 characters",
        // "field usage.u7 is negative"): one key each, with the name as `*`.
        let long = String(repeating: "y", count: 300)
        for i in 0..<n {
            try client.publish(.object(JSONObject([
                ("id", .string("k\(i)")), ("platform", "P"), ("serviceType", "API"), ("cost", "1"), ("x is \(i)", .string(long)),
            ])))
            try client.publish(.object(JSONObject([
                ("id", .string("u\(i)")), ("platform", "P"), ("serviceType", "API"), ("usage", .object(JSONObject([("u w\(i)", .number("-1"))]))),
            ])))
        }
        try waitFor { try client.call("stats")["rejected"]?.numberText == "\(3 * n)" }
        let byReason = try #require(try client.call("stats")["rejectedByReason"]?.objectValue)
        #expect(byReason["invalid serviceType"]?.numberText == "\(n)", "\(byReason)")
        #expect(byReason["field * is longer than 256 characters"]?.numberText == "\(n)", "\(byReason)")
        #expect(byReason["field usage.* is negative"]?.numberText == "\(n)", "\(byReason)")
        #expect(byReason.count == 3, "\(byReason.count) keys")
    }

    @Test("a body stored in an earlier version's canonical spelling (1e50 written out in 51 digits) still makes a resend DUPLICATE; another body is still a conflict", .enabled(if: SQLiteShell.path != nil, "needs the sqlite3 shell"))
    func bodiesStoredByAnEarlierVersionCompareByValue() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let event = costEvent("old", cost: "1", extra: [("metadata", ["n": .number("1e50")])])
        #expect(try client.sendAck(event).string("status") == "ACCEPTED")
        #expect(daemon.stop() == 0)
        // As the seventeenth session stored it: every digit written out.
        let db = dir.file("budgetd.db")
        let stored = try SQLiteShell.query(db, "SELECT body FROM usage_events WHERE event_id = 'old'").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(stored.contains(#""n":1e50"#), "\(stored)")
        try SQLiteShell.write(db, "UPDATE usage_events SET body = replace(body, '\"n\":1e50', '\"n\":1\(String(repeating: "0", count: 50))') WHERE event_id = 'old'")
        daemon = try Daemon(dir: dir)
        client = try Client(daemon)
        defer { #expect(daemon.stop() == 0) }
        #expect(try client.sendAck(event).string("status") == "DUPLICATE")
        let other = costEvent("old", cost: "1", extra: [("metadata", ["n": .number("1e51")])])
        let conflict = try client.sendAck(other)
        #expect(conflict.string("status") == "REJECTED" && conflict.string("reason") == "conflict")
    }

    @Test func bodiesAndKeysCompareByCodePoint() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000")
        func event(_ id: String, _ project: String) -> JSONValue {
            costEvent(id, cost: "1", budgetId: budgetId, extra: [("metadata", ["p": .string(project)])])
        }
        #expect(try client.sendAck(event("u-1", "caf\u{E9}"))["status"]?.stringValue == "ACCEPTED")
        let changed = try client.sendAck(event("u-1", "cafe\u{301}"))
        #expect(changed["status"]?.stringValue == "REJECTED")
        #expect(changed["reason"]?.stringValue == "conflict")
        #expect(try client.sendAck(event("u-1", "caf\u{E9}"))["status"]?.stringValue == "DUPLICATE")

        // Two ids Swift's `==` calls equal, sent at once (one batch, or two in flight).
        let dealer = try client.ackSocket()
        for id in ["\u{C5}-2", "A\u{30A}-2", "\u{212B}-2"] {
            try dealer.send([Array("usage".utf8), event(id, "x").serializedBytes()])
        }
        var statuses: [String] = []
        for _ in 0..<3 {
            guard try poll([(dealer, .readable)], timeoutMilliseconds: 10_000)[0].contains(.readable),
                  let reply = try dealer.receive()?.last, let ack = try JSON.parse(reply).objectValue else { break }
            statuses.append(ack["status"]?.stringValue ?? "?")
        }
        #expect(statuses == ["ACCEPTED", "ACCEPTED", "ACCEPTED"])
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        #expect(summary["totalSpent"]?.numberText == "4")

        // Two publishers whose names differ so have sequences of their own: no gap here.
        for (i, (source, seq)) in [("\u{E9}", 1), ("e\u{301}", 10), ("\u{E9}", 2), ("e\u{301}", 11)].enumerated() {
            let e = costEvent("s-\(i)", cost: "1", source: source, budgetId: budgetId, extra: [("seq", .number(seq))])
            #expect(try client.sendAck(e)["status"]?.stringValue == "ACCEPTED")
        }
        #expect(try client.call("stats")["gaps"]?.objectValue?.count == 0)
    }

    /// Events one at a time (each acknowledged before the next is sent): each batch is still
    /// decided on the engine thread and committed on the commit thread, not both on the engine
    /// thread, so at moderate load the next batch can be decided while one commits.
    @Test func eventsOneAtATimeGoThroughTheCommitThreadAndAreAcknowledgedOnce() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "100")
        for i in 0..<5 {
            let ack = try client.sendAck(costEvent("one-\(i)", cost: "1.25", budgetId: budgetId))
            #expect(ack["status"]?.stringValue == "ACCEPTED")
            #expect(ack["state"]?.stringValue == "ALLOCATED")
        }
        // A resend after its commit: DUPLICATE, counted once.
        #expect(try client.sendAck(costEvent("one-0", cost: "1.25", budgetId: budgetId))["status"]?.stringValue == "DUPLICATE")
        let stats = try client.call("stats")
        #expect(stats["accepted"]?.numberText == "5")
        #expect(stats["duplicates"]?.numberText == "1")
        // Every ingest batch went through the commit thread (before, a batch that arrived
        // alone was decided and committed on the engine thread: 0 here).
        #expect(stats["stagedBatches"]?.numberText == "6")
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        #expect(summary["totalSpent"]?.numberText == "6.25")
    }

    /// A commit that fails while the next batch is decided on top of it: both are undone (the
    /// ledger rebuilt from the database), nothing of either is acknowledged or counted, ingest
    /// stops; once the fault is gone both commit, once, in order, and the rest follows.
    ///
    /// The fault is real: a trigger put into the database file (by the sqlite3 shell, while the
    /// daemon runs) that aborts the insert of one event.
    @Test(.enabled(if: SQLiteShell.path != nil, "needs the sqlite3 shell"))
    func aFailedCommitUndoesTheBatchDecidedOnTopOfItAndBothCommitLater() throws {
        let dir = try TempDir()
        // Heartbeats (which release a finished commit first) rarely: the failed commit is then
        // usually found while the next batch is being decided on top of it.
        let daemon = try Daemon(dir: dir, heartbeatMs: 10_000)
        defer { #expect(daemon.stop() == 0) }
        let db = dir.file("budgetd.db")
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000000")
        func sql(_ statement: String) throws {
            let (status, output) = try runCommand([SQLiteShell.path!, db, ".timeout 10000", statement])
            #expect(status == 0, "sqlite3: \(output)")
        }
        try sql("""
            CREATE TRIGGER injected_fault BEFORE INSERT ON usage_events WHEN NEW.event_id = 'q-3000'
            BEGIN SELECT RAISE(ABORT, 'injected fault'); END
            """)
        let publisher = try client.publisher()
        try publisher.setXPubNoDrop(true)
        // Made first and sent at once: the daemon reads them in full batches, so the one after
        // the failing batch is decided while the failing one commits.
        let n = 8000
        let messages = (0..<n).map { i in
            [Array("usage".utf8), costEvent("q-\(i)", cost: String(format: "0.%06d", i + 1), budgetId: budgetId).serializedBytes()]
        }
        for m in messages { try publisher.send(m) }
        try waitFor { try client.call("health")["status"]?.stringValue == "DEGRADED" }
        #expect(try client.call("health")["reason"]?.stringValue?.contains("injected fault") == true)
        // Nothing from the failed batch on is counted, and nothing moves while the fault stays.
        let stuck = try #require(try client.call("stats")["accepted"]?.numberText.flatMap { Int($0) })
        #expect(stuck <= 3000)
        // The ledger holds exactly what was committed: events q-0 ..< q-stuck, in order.
        let committedSpend = Money(nanos: Int128(stuck * (stuck + 1) / 2) * 1000)
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == committedSpend.description)
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try client.call("stats")["accepted"]?.numberText == "\(stuck)")
        #expect(try client.request("event.get", ["source": "test", "id": "q-3000"])["error"]?["code"]?.stringValue == "NOT_FOUND")
        // Whether the failure was found with the next batch decided on top of it (and undone
        // with it) or before (the loop's once-a-second tick can release it first): the same
        // outcome either way, asserted below; which one it was is reported.
        let undoneOnTop = daemon.stderr.contains("the batch decided after a failed commit is undone")

        try sql("DROP TRIGGER injected_fault")
        try waitFor { try client.call("stats")["accepted"]?.numberText == "\(n)" }
        try waitFor { try client.call("health")["status"]?.stringValue == "OK" }
        let stats = try client.call("stats")
        #expect(stats["duplicates"]?.numberText == "0")
        #expect(stats["rejected"]?.numberText == "0")
        let expected = Money(nanos: Int128(n * (n + 1) / 2) * 1000)
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == expected.description)
        #expect(try client.call("event.get", ["source": "test", "id": "q-3000"])["cost"]?.numberText == "0.003001")
        reportFigures("pipeline: failedCommit acceptedBeforeFault=\(stuck) batchUndoneOnTopOfIt=\(undoneOnTop) committedOnce=\(n)")
    }
}

extension IngestPipelineTests {
    /// After a restart, the dedup key filter (which lets new events skip the database lookup)
    /// is loaded from the stored events: every resend of a stored event is still a DUPLICATE
    /// and every changed body a conflict, and new events are accepted.
    @Test func afterARestartTheLoadedKeyFilterStillFindsEveryStoredEvent() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000000")
        let n = 3000
        func event(_ i: Int, cost: String? = nil) -> JSONValue {
            costEvent("r-\(i)", cost: cost ?? String(format: "0.%06d", i + 1), budgetId: budgetId)
        }
        let publisher = try client.publisher()
        try publisher.setXPubNoDrop(true)
        for i in 0..<n { try client.publish(event(i)) }
        try waitFor { try client.call("stats")["accepted"]?.numberText == "\(n)" }
        #expect(daemon.stop() == 0)

        daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        client = try Client(daemon)
        try waitFor { daemon.stderr.contains("dedup key filter loaded") }
        #expect(daemon.stderr.contains("keys=\(n)"))
        let restarted = try client.publisher()
        try restarted.setXPubNoDrop(true)
        for i in 0..<n { try client.publish(event(i)) }
        for i in stride(from: 0, to: n, by: 100) { try client.publish(event(i, cost: "5")) }
        for i in n..<(n + 500) { try client.publish(event(i)) }
        try waitFor { try client.call("stats")["received"]?.numberText == "\(n + n / 100 + 500)" }
        let stats = try client.call("stats")
        #expect(stats["duplicates"]?.numberText == "\(n)")
        #expect(stats["rejectedByReason"]?["conflict"]?.numberText == "\(n / 100)")
        #expect(stats["accepted"]?.numberText == "500")
        #expect(!daemon.stderr.contains("health DEGRADED"))
        let total = n + 500
        let expected = Money(nanos: Int128(total * (total + 1) / 2) * 1000)
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == expected.description)
        // And over the acknowledged socket, one at a time.
        #expect(try client.sendAck(event(7)).string("status") == "DUPLICATE")
        #expect(try client.sendAck(event(7, cost: "9")).string("reason") == "conflict")
    }
    /// docs/ledger.md, "How duplicates are found": keys in memory, then copied into generations
    /// (once 400 are held, batches of at most 64: here instead of 262,144), while batches flow. Ids that start with a hash,
    /// as UUIDs do. Resends of every event find it in memory, in each generation, across a
    /// restart (the keys in memory read back from `recent_keys`), over both sockets.
    @Test func duplicatesAreFoundInEveryGenerationOfKeys() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir, config: ["keysPerGeneration": "400", "maxBatch": "64"])
        var client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "1000000")
        let n = 2500
        func event(_ i: Int, cost: String? = nil) -> JSONValue {
            let hash = String((UInt32(truncatingIfNeeded: i &* 2_654_435_761)), radix: 16)
            return costEvent("\(hash)-g-\(i)", cost: cost ?? String(format: "0.%06d", i + 1), budgetId: budgetId)
        }
        let publisher = try client.publisher()
        try publisher.setXPubNoDrop(true)
        for i in 0..<n { try client.publish(event(i)) }
        try waitFor { try client.call("stats")["accepted"]?.numberText == "\(n)" }
        // Every event again, every 50th with another cost, and 300 new ones, in one stream.
        for i in 0..<n { try client.publish(event(i)) }
        for i in stride(from: 0, to: n, by: 50) { try client.publish(event(i, cost: "5")) }
        for i in n..<(n + 300) { try client.publish(event(i)) }
        try waitFor { try client.call("stats")["received"]?.numberText == "\(2 * n + n / 50 + 300)" }
        var stats = try client.call("stats")
        #expect(stats["duplicates"]?.numberText == "\(n)")
        #expect(stats["rejectedByReason"]?["conflict"]?.numberText == "\(n / 50)")
        #expect(stats["accepted"]?.numberText == "\(n + 300)")
        let copies = daemon.stderr.components(separatedBy: "event keys copied into a generation").count - 1
        #expect(copies >= 5, "\(daemon.stderr)")
        #expect(daemon.stop() == 0)

        daemon = try Daemon(dir: dir, config: ["keysPerGeneration": "400", "maxBatch": "64"])
        defer { #expect(daemon.stop() == 0) }
        client = try Client(daemon)
        let total = n + 300
        let restarted = try client.publisher()
        try restarted.setXPubNoDrop(true)
        for i in 0..<total { try client.publish(event(i)) }
        try waitFor { try client.call("stats")["received"]?.numberText == "\(total)" }
        stats = try client.call("stats")
        #expect(stats["duplicates"]?.numberText == "\(total)")
        #expect(stats["accepted"]?.numberText == "0")
        // Over the acknowledged socket: one from the first generation, one from the last, one
        // from memory, a conflict, and a new one.
        #expect(try client.sendAck(event(3)).string("status") == "DUPLICATE")
        #expect(try client.sendAck(event(2400)).string("status") == "DUPLICATE")
        #expect(try client.sendAck(event(total - 1)).string("status") == "DUPLICATE")
        #expect(try client.sendAck(event(1999, cost: "9")).string("reason") == "conflict")
        #expect(try client.sendAck(event(total)).string("status") == "ACCEPTED")
        let expected = Money(nanos: Int128((total + 1) * (total + 2) / 2) * 1000)
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == expected.description)
    }
}
