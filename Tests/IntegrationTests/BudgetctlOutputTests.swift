import BudgetCore
import Foundation
import Testing

/// `budgetctl`'s output against the real daemon: golden text tables, `--json`
/// equal to the daemon's own result, `events send`, `alerts tail`, and the
/// exit status of failures.
///
/// The golden budgets live in March 2026 with explicit event times and costs,
/// so every figure is fixed: the period is over, burn rate = spent ÷ 31 days,
/// and `budget show` says the projection in words. Only `createdAt` and the
/// alerts' `triggeredAt` are read back from the daemon.
@Suite(.timeLimit(.minutes(3)))
struct BudgetctlOutputTests {
    // MARK: golden tables

    @Test func budgetListIsAGoldenTable() throws {
        let fixture = try MarchBudgets()
        let (daemon, client) = (fixture.daemon, fixture.client)
        defer { #expect(daemon.stop() == 0) }

        let list = try budgetctl(["budget", "list", "--control", daemon.control])
        #expect(list.status == 0, "\(list.err)")
        let expected = """
            ID      NAME                   TYPE       STATUS            SPENT        TOTAL  USED              %  PERIOD
            b_ops   March 2026 Operations  MONTHLY    COMPLETED  4065.125 USD  5000.00 USD  ████████░░   81.3 %  2026-03-01..2026-03-31
            b_unl   Research               UNLIMITED  ACTIVE        12.50 USD    unlimited                    -  2026-03-01..
            b_over  Launch                 PROJECT    COMPLETED    150.50 USD   100.00 USD  ██████████  150.5 %  2026-03-01..2026-03-15
            b_idle  Idle                   MONTHLY    COMPLETED      0.00 USD   999.99 USD  ░░░░░░░░░░      0 %  2026-03-01..2026-03-31

            """
        #expect(list.out == expected)
        #expect(!list.out.contains("\u{1B}"), "no colour on a pipe")

        // The filters reach the daemon; an empty result says so.
        let unlimited = try budgetctl(["budget", "list", "--type", "unlimited", "--control", daemon.control])
        #expect(unlimited.out.split(separator: "\n").count == 2)
        #expect(unlimited.out.contains("b_unl"))
        let none = try budgetctl(["budget", "list", "--status", "PAUSED", "--control", daemon.control])
        #expect(none.out == "no budgets\n")
        #expect(try client.call("budget.list", ["status": "PAUSED"]).arrayValue?.isEmpty == true)
    }

    @Test func budgetShowIsAGoldenSummary() throws {
        let fixture = try MarchBudgets()
        let (daemon, client) = (fixture.daemon, fixture.client)
        defer { #expect(daemon.stop() == 0) }
        // A resolved alert is not open any more: only THRESHOLD_80 is listed.
        let depleted = try #require(try client.call("alert.list", ["budgetId": "b_ops"]).arrayValue?
            .first { $0["type"]?.stringValue == "ALLOCATION_DEPLETED" })
        _ = try client.call("alert.resolve", ["id": try #require(depleted["id"])])

        let summary = try client.call("budget.get", ["id": "b_ops"])
        let createdAt = try #require(summary["budget"]?["createdAt"]?.stringValue)
        let open = try #require(try client.call("alert.list", ["budgetId": "b_ops", "unresolved": true]).arrayValue)
        #expect(open.map { $0["type"]?.stringValue } == ["THRESHOLD_80"])
        let triggered = Self.toTheSecond(try #require(open.first?["triggeredAt"]?.stringValue))

        let show = try budgetctl(["budget", "show", "b_ops", "--control", daemon.control])
        #expect(show.status == 0, "\(show.err)")
        var expected = """
            name           March 2026 Operations
            id             b_ops
            type           MONTHLY
            status         COMPLETED
            period         2026-03-01..2026-03-31
            spent          4065.125 USD of 5000.00 USD  ████████░░  81.3 %
            remaining      934.875 USD
            burn rate      131.133064516 USD/day
            projected end  - (the period is over)
            alerts at      80% 90% 100%
            description    Operations, all platforms
            created by     golden
            created at     \(createdAt)

            allocations
            PLATFORM  SERVICE   PRIORITY    ALLOCATED        SPENT     REMAINING  USED               %  ACTIVE
            OpenAI    API       CRITICAL  3000.00 USD  4000.00 USD  -1000.00 USD  ██████████  133.33 %  yes
            Apify     SCRAPING  LOW       1000.00 USD   65.125 USD   934.875 USD  ░░░░░░░░░░    6.51 %  yes


            """
        // The daemon adds `dailySpend` to the summary; without it there is no sparkline.
        if summary["dailySpend"] != nil {
            expected += """
                daily spend 2026-03-01..2026-03-31
                ▁█▁▁▁▁▁▁▁▅▁▁▁▁▁▁▁▁▁▂▁▁▁▁▁▁▁▁▁▁▁
                highest 2026-03-02 2500.00 USD, lowest 2026-03-20 0.125 USD, 28 of 31 days without spend


                """
        } else {
            Issue.record("budget.get has no dailySpend: the sparkline was not checked")
        }
        expected += """
            open alerts
            SEQ  ID   TYPE          SEVERITY  TRIGGERED             MESSAGE
              4  a_4  THRESHOLD_80  WARNING   \(triggered)  March 2026 Operations has spent 80% of 5000.00 USD

            """
        #expect(show.out == expected)

        // Over its total, no allocations, no open alert left after resolving them all.
        for alert in try #require(try client.call("alert.list", ["budgetId": "b_over"]).arrayValue) {
            _ = try client.call("alert.resolve", ["id": try #require(alert["id"])])
        }
        let over = try budgetctl(["budget", "show", "b_over", "--control", daemon.control])
        #expect(over.status == 0, "\(over.err)")
        let overLines = over.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(overLines.contains("spent          150.50 USD of 100.00 USD  ██████████  150.5 %"))
        #expect(overLines.contains("remaining      -50.50 USD"))
        #expect(overLines.contains("burn rate      10.033333333 USD/day"))
        #expect(overLines.contains("projected end  - (the period is over)"))
        #expect(!overLines.contains("allocations"))
        #expect(over.out.hasSuffix("\nopen alerts: none\n"))
    }

    @Test(.enabled(if: canFakeATerminal, "util-linux `script` gives budgetctl a terminal"))
    func tablesAreColouredOnATerminalOnly() throws {
        let fixture = try MarchBudgets()
        let daemon = fixture.daemon
        defer { #expect(daemon.stop() == 0) }
        let command = "\(Products.budgetctl) budget list --control \(daemon.control)"

        let coloured = try Self.runOnATerminal(command, environment: [:])
        #expect(coloured.contains("\u{1B}[33m████████░░\u{1B}[0m"), "81.3 % is yellow")
        #expect(coloured.contains("\u{1B}[33m81.3 %\u{1B}[0m"))
        #expect(coloured.contains("\u{1B}[31m██████████\u{1B}[0m"), "150.5 % is red")
        #expect(coloured.contains("\u{1B}[32m░░░░░░░░░░\u{1B}[0m"), "0 % is green")
        // Colour does not upset the columns: the percentages still line up.
        let plain = coloured.replacingOccurrences(of: "\u{1B}[33m", with: "")
            .replacingOccurrences(of: "\u{1B}[31m", with: "").replacingOccurrences(of: "\u{1B}[32m", with: "")
            .replacingOccurrences(of: "\u{1B}[0m", with: "").replacingOccurrences(of: "\r", with: "")
        let piped = try budgetctl(["budget", "list", "--control", daemon.control])
        #expect(plain == piped.out)

        let noColour = try Self.runOnATerminal(command, environment: ["NO_COLOR": "1"])
        #expect(!noColour.contains("\u{1B}["))
        #expect(noColour.contains("████████░░   81.3 %"))
    }

    // MARK: --json

    @Test func jsonOutputIsTheDaemonsResult() throws {
        let fixture = try MarchBudgets()
        let (daemon, client) = (fixture.daemon, fixture.client)
        defer { #expect(daemon.stop() == 0) }
        let control = ["--control", daemon.control]

        func cli(_ args: [String]) throws -> JSONValue {
            let run = try budgetctl(args + ["--json"] + control)
            #expect(run.status == 0, "\(args): \(run.err)")
            // One line of JSON, nothing else.
            #expect(run.out.hasSuffix("\n") && run.out.dropLast().firstIndex(of: "\n") == nil, "\(args)")
            return try JSON.parse(run.out, maxDepth: 512)
        }

        #expect(try cli(["budget", "list"]) == (try client.call("budget.list")))
        #expect(try cli(["budget", "list", "--status", "COMPLETED", "--type", "MONTHLY"])
            == (try client.call("budget.list", ["status": "COMPLETED", "budgetType": "MONTHLY"])))
        #expect(try cli(["alerts", "list", "--budget", "b_over"]) == (try client.call("alert.list", ["budgetId": "b_over"])))
        #expect(try cli(["cost", "list", "b_ops"]) == (try client.call("cost.list", ["budgetId": "b_ops"])))
        #expect(try cli(["events", "list"]) == (try client.call("event.list")))
        func without(_ key: String, _ value: JSONValue) -> JSONValue {
            guard var object = value.objectValue else { return value }
            _ = object.removeValue(forKey: key)
            return .object(object)
        }
        // stats: `batches` counts every control request, this one included; `process` is
        // measured at each call (resident memory, file sizes).
        #expect(without("process", without("batches", try cli(["stats"]))) == without("process", without("batches", try client.call("stats"))))

        // budget.get: projectedEndDate is counted from "now", to the nanosecond.
        func withoutProjection(_ value: JSONValue) -> JSONValue {
            without("projectedEndDate", value)
        }
        let shown = try cli(["budget", "show", "b_ops"])
        #expect(shown["projectedEndDate"]?.stringValue != nil)
        #expect(withoutProjection(shown) == withoutProjection(try client.call("budget.get", ["id": "b_ops"])))
        // Without spend there is no projection, and the whole result is fixed.
        #expect(try cli(["budget", "show", "b_idle"]) == (try client.call("budget.get", ["id": "b_idle"])))
    }

    @Test("text from publishers reaches the terminal with its control characters escaped (an audit's escape sequences cleared the screen and forged a line); --json stays the daemon's result")
    func controlCharactersAreEscaped() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let evil = "x\u{1B}[2J\u{1B}]0;owned\u{07}\u{9B}31m\nFAKE\u{7F}"
        let ack = try client.sendAck(.object(JSONObject([
            ("id", .string(evil)), ("source", .string(evil)), ("platform", "OpenAI"), ("serviceType", "API"),
            ("model", .string(evil)), ("usage", .object(JSONObject([("inputTokens", .number("1"))]))),
        ])))
        #expect(ack.string("state") == "UNPRICED")
        let list = try budgetctl(["events", "list", "--control", daemon.control])
        #expect(list.status == 0)
        let escaped = #"x\u001B[2J\u001B]0;owned\u0007\u009B31m\u000AFAKE\u007F"#
        #expect(!list.out.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) }, "\(list.out)")
        #expect(list.out.contains(escaped), "\(list.out)")
        // Two lines: the header and the event (the newline in it did not make a third).
        #expect(list.out.split(separator: "\n").count == 2, "\(list.out)")
        let json = try budgetctl(["events", "list", "--json", "--control", daemon.control])
        #expect(try JSON.parse(json.out) == (try client.call("event.list")))
        // Lines built outside tables too, an SGR that would hide the rest of the line and a bidi
        // override among them (an audit: `budget show` printed a description's ESC[8m as is).
        _ = try client.call("budget.create", [
            "id": "b_esc", "name": "Esc", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-01-01",
            "description": .string("a\u{1B}[8mhidden\u{202E}x"), "createdBy": .string("me\u{1B}[31m"),
        ])
        let show = try budgetctl(["budget", "show", "b_esc", "--control", daemon.control])
        #expect(show.status == 0)
        #expect(!show.out.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{202E}" }, "\(show.out)")
        #expect(show.out.contains(#"a\u001B[8mhidden\u202Ex"#) && show.out.contains(#"me\u001B[31m"#), "\(show.out)")
        // Without a terminal budgetctl colours nothing, so even its own five colours are data:
        // an error message quoting an id carries one escaped.
        let missing = try budgetctl(["budget", "show", "x\u{1B}[31m", "--control", daemon.control])
        #expect(missing.status == 1)
        #expect(missing.err.contains(#"no budget x\u001B[31m"#) && !missing.err.unicodeScalars.contains("\u{1B}"), "\(missing.err)")
    }

    // MARK: events send

    @Test func eventsSendLandsFireAndForgetAndReliably() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, name: "Send", total: "1000")
        let ingest = ["--ingest", daemon.ingest]
        let ingestAck = ["--ingest-ack", daemon.ingestAck]
        func spent() throws -> String? {
            try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText
        }

        // Fire-and-forget: the XPUB waits for the daemon's subscription, so the event is not lost.
        let fire = try budgetctl(["events", "send", "--id", "ff-1", "--source", "cli", "--platform", "OpenAI",
                                  "--service", "api", "--cost", "10.25", "--budget", budgetId, "--topic", "usage.openai"] + ingest)
        #expect(fire.status == 0, "\(fire.err)")
        #expect(fire.out.hasPrefix("sent ff-1 on usage.openai to \(daemon.ingest)"))
        try eventually { try spent() == "10.25" }
        let stored = try #require(try client.call("event.list").arrayValue?.first { $0["id"]?.stringValue == "ff-1" })
        #expect(stored["state"]?.stringValue == "ALLOCATED")
        #expect(stored["source"]?.stringValue == "cli")

        // Reliable: the acknowledgement is printed; the same id and body again is a DUPLICATE.
        let reliable = ["events", "send", "--reliable", "--id", "rel-1", "--source", "cli", "--platform", "Apify",
                        "--service", "SCRAPING", "--cost", "4.75", "--budget", budgetId, "--time", Self.nowText(),
                        "--metadata", "projectId=p-1", "--usage", "computeUnits=3"] + ingestAck
        let first = try budgetctl(reliable)
        #expect(first.status == 0, "\(first.err)")
        #expect(first.out == "ACCEPTED rel-1, state ALLOCATED\n")
        #expect(try spent() == "15")
        let again = try budgetctl(reliable)
        #expect(again.status == 0, "\(again.err)")
        #expect(again.out == "DUPLICATE rel-1, state ALLOCATED\n")
        #expect(try spent() == "15")

        // The same id with another body is REJECTED (conflict): exit status 1 with the reason.
        let conflict = try budgetctl(["events", "send", "--reliable", "--id", "rel-1", "--source", "cli", "--platform", "Apify",
                                      "--service", "SCRAPING", "--cost", "5", "--budget", budgetId] + ingestAck)
        #expect(conflict.status == 1)
        #expect(conflict.out == "REJECTED rel-1, state REJECTED, reason: conflict\n")
        #expect(conflict.err.contains("conflict"))
        #expect(try spent() == "15")

        // From a file and from standard input, bytes as they are; --json prints the acknowledgement.
        let event = #"{"id": "file-1", "source": "cli", "platform": "OpenAI", "serviceType": "API", "cost": "0.000000001", "budgetId": "\#(budgetId)"}"#
        try Data(event.utf8).write(to: URL(fileURLWithPath: dir.file("event.json")))
        let fromFile = try budgetctl(["events", "send", "--reliable", "--json", "--file", dir.file("event.json")] + ingestAck)
        #expect(fromFile.status == 0, "\(fromFile.err)")
        let ack = try JSON.parse(fromFile.out)
        #expect(ack["status"]?.stringValue == "ACCEPTED")
        #expect(ack["id"]?.stringValue == "file-1")
        let fromStdin = try budgetctl(["events", "send", "--reliable", "--file", "-"] + ingestAck, stdin: Data(event.utf8))
        #expect(fromStdin.out == "DUPLICATE file-1, state ALLOCATED\n")
        #expect(try spent() == "15.000000001")

        // Without --id, a random UUID; fire-and-forget --json says what was sent.
        let random = try budgetctl(["events", "send", "--json", "--platform", "OpenAI", "--service", "API", "--cost", "1",
                                    "--budget", budgetId] + ingest)
        #expect(random.status == 0, "\(random.err)")
        let sent = try JSON.parse(random.out)
        #expect(sent["status"]?.stringValue == "SENT")
        let randomId = try #require(sent["id"]?.stringValue)
        #expect(UUID(uuidString: randomId) != nil)
        try eventually { try spent() == "16.000000001" }

        // What the daemon cannot take is refused before sending.
        let badTopic = try budgetctl(["events", "send", "--topic", "alerts", "--platform", "OpenAI", "--service", "API"] + ingest)
        #expect(badTopic.status == 64)
        let both = try budgetctl(["events", "send", "--file", "-", "--platform", "OpenAI"] + ingest)
        #expect(both.status == 64)
        #expect(both.err.contains("--platform"))
        let notJSON = try budgetctl(["events", "send", "--file", "-"] + ingest, stdin: Data("nope".utf8))
        #expect(notJSON.status == 64)
        #expect(notJSON.err.contains("not a JSON object"))
    }

    // MARK: alerts tail

    @Test func alertsTailRecoversWhatWasPublishedBeforeItRan() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, name: "Tail", total: "100")
        // THRESHOLD_80, _90, _100, BUDGET_EXCEEDED and status.EXCEEDED: seq 1...5, nobody listening.
        #expect(try client.sendAck(costEvent("t-1", cost: "150", budgetId: budgetId)).string("status") == "ACCEPTED")
        let tailArgs = ["alerts", "tail", "--control", daemon.control, "--publish", daemon.publish]

        let all = try budgetctl(tailArgs + ["--since-seq", "0", "--count", "5", "--json"])
        #expect(all.status == 0, "\(all.err)")
        let payloads = try all.out.split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(payloads.map { $0["seq"]?.numberText } == ["1", "2", "3", "4", "5"])
        #expect(payloads.map { $0["type"]?.stringValue ?? $0["status"]?.stringValue }
            == ["THRESHOLD_80", "THRESHOLD_90", "THRESHOLD_100", "BUDGET_EXCEEDED", "EXCEEDED"])
        // The same messages outbound.list has, unchanged.
        let outbound = try #require(try client.call("outbound.list", ["sinceSeq": 0]).arrayValue)
        #expect(payloads == outbound.compactMap { $0["payload"] })

        // From the middle, as text.
        let rest = try budgetctl(tailArgs + ["--since-seq", "3", "--count", "2"])
        #expect(rest.status == 0, "\(rest.err)")
        #expect(rest.out == """
            4 BUDGET_EXCEEDED CRITICAL Tail 150% Tail is over budget: spent 150.00 of 100.00 USD (150%)
            5 status.EXCEEDED Tail ACTIVE -> EXCEEDED (spent 150.00 of 100.00)

            """)

        // Past the daemon's end: the heartbeat says so, and tail follows from there instead of
        // dropping the next messages as already seen (it printed nothing, without a word).
        let ahead = try RunningBudgetctl(tailArgs + ["--since-seq", "999", "--count", "1", "--json"])
        defer { ahead.stop() }
        #expect(ahead.waitForError(containing: "is at seq 5, before seq 999 seen"), "\(ahead.errorText)")
        let second = try makeBudget(client, name: "Tail2", total: "100")
        _ = try client.sendAck(costEvent("t-2", cost: "85", budgetId: second))
        #expect(ahead.wait(seconds: 10) == 0)
        #expect(try JSON.parse(ahead.outputText.trimmingCharacters(in: .newlines))["seq"]?.numberText == "6", "\(ahead.outputText)")
    }

    /// A tail started while budgetd was down took its starting point from its first `stats`
    /// reply, after the daemon had started: the `status.COMPLETED` published at the start (a
    /// period that ended while it was down) counted as the past, and was never printed (an audit).
    @Test("alerts tail started before the daemon prints what the daemon publishes as it starts")
    func alertsTailStartedBeforeTheDaemon() throws {
        let dir = try TempDir()
        let endpoints = ["--control", "ipc://\(dir.file("control"))", "--publish", "ipc://\(dir.file("publish"))"]
        var daemon = try Daemon(dir: dir, extraArgs: endpoints)
        let client = try Client(daemon)
        let now = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let end = Timestamp(nanosecondsSinceEpoch: now.nanosecondsSinceEpoch + 2_000_000_000)
        _ = try client.call("budget.create", ["id": "short", "name": "Short", "budgetType": "PROJECT", "totalAmount": 10,
                                              "startDate": .string(now.civilDate.description), "endDate": .string(end.rfc3339)])
        #expect(daemon.stop() == 0)
        Thread.sleep(forTimeInterval: 2.5)
        // The period has ended; budgetd is down. The tail starts now and waits for its stats.
        let tail = try RunningBudgetctl(["alerts", "tail", "--count", "1", "--json", "--timeout", "20"] + endpoints)
        defer { tail.stop() }
        Thread.sleep(forTimeInterval: 0.5)
        daemon = try Daemon(dir: dir, extraArgs: endpoints)
        defer { #expect(daemon.stop() == 0) }
        let status = try #require(tail.wait(seconds: 20), "tail printed nothing: \(tail.errorText)")
        #expect(status == 0, "\(tail.errorText)")
        let payload = try JSON.parse(tail.outputText.trimmingCharacters(in: .newlines))
        #expect(payload["seq"]?.numberText == "1")
        #expect(payload["status"]?.stringValue == "COMPLETED" && payload["budgetId"]?.stringValue == "short")

        // SIGTERM stops a tail (exit 0), though the test process starts it with the signal
        // blocked, as Foundation's Process does: it stayed pending, and the tail ran on.
        let running = try RunningBudgetctl(["alerts", "tail"] + endpoints)
        defer { running.stop() }
        #expect(running.waitForError(containing: "following \(endpoints[3]) after seq 1"), "\(running.errorText)")
        running.terminate()
        #expect(running.wait(seconds: 10) == 0, "\(running.errorText)")
    }

    @Test func alertsTailPrintsAlertsAsTheyHappen() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let first = try makeBudget(client, name: "Before", total: "100")
        // An alert from before the tail starts is not printed: it starts after the current lastSeq.
        _ = try client.sendAck(costEvent("b-1", cost: "85", budgetId: first))
        let budgetId = try makeBudget(client, name: "Live", total: "200")

        let tail = try RunningBudgetctl(["alerts", "tail", "--count", "3", "--json",
                                         "--control", daemon.control, "--publish", daemon.publish])
        defer { tail.stop() }
        #expect(tail.waitForError(containing: "following \(daemon.publish) after seq 1"), "\(tail.errorText)")

        _ = try client.sendAck(costEvent("l-1", cost: "170", budgetId: budgetId))  // THRESHOLD_80
        _ = try client.sendAck(costEvent("l-2", cost: "10", budgetId: budgetId))   // THRESHOLD_90
        _ = try client.sendAck(costEvent("l-3", cost: "20", budgetId: budgetId))   // THRESHOLD_100

        let status = try #require(tail.wait(seconds: 20), "tail did not stop after --count 3: \(tail.outputText)")
        #expect(status == 0, "\(tail.errorText)")
        let payloads = try tail.outputText.split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(payloads.map { $0["seq"]?.numberText } == ["2", "3", "4"])
        #expect(payloads.map { $0["type"]?.stringValue } == ["THRESHOLD_80", "THRESHOLD_90", "THRESHOLD_100"])
        #expect(payloads.allSatisfy { $0["budgetId"]?.stringValue == budgetId })
        #expect(payloads.map { $0["eventId"]?.stringValue } == ["l-1", "l-2", "l-3"])
    }

    // MARK: failures

    @Test func failuresExitNonZeroWithTheMessage() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let control = ["--control", daemon.control]
        // Nothing listens on port 1: every request times out.
        let nobody = ["--control", "tcp://127.0.0.1:1", "--timeout", "0.3"]

        // The daemon says no: exit 1 and `error CODE: message` on standard error.
        let refused: [[String]] = [
            ["budget", "show", "b_nope"],
            ["budget", "update", "b_nope", "--name", "x"],
            ["cost", "list", "b_nope"],
            ["cost", "allocate", "--budget", "b_nope", "--platform", "OpenAI", "--service", "API", "--amount", "1"],
            ["alerts", "resolve", "a_nope"],
            ["call", "budget.get", #"{"id": "b_nope"}"#],
        ]
        for args in refused {
            let run = try budgetctl(args + control)
            #expect(run.status == 1, "\(args)")
            #expect(run.err.contains("error NOT_FOUND: "), "\(args): \(run.err)")
            #expect(run.out.isEmpty, "\(args)")
        }
        let invalid = try budgetctl(["prices", "reload"] + control)
        #expect(invalid.status == 1)
        #expect(invalid.err.contains("error VALIDATION_FAILED: "))
        let unknownOp = try budgetctl(["call", "no.such.op"] + control)
        #expect(unknownOp.status == 1)
        #expect(unknownOp.err.contains("error UNKNOWN_OP: "))

        // Nobody answers: exit 2, saying where and how long.
        let unanswered: [[String]] = [
            ["budget", "list"], ["budget", "show", "b_x"], ["cost", "list", "b_x"], ["alerts", "list"],
            ["events", "list"], ["health"], ["stats"], ["prices", "reload"], ["call", "stats"],
        ]
        for args in unanswered {
            let run = try budgetctl(args + nobody)
            #expect(run.status == 2, "\(args)")
            #expect(run.err.contains("no reply from tcp://127.0.0.1:1 within 0.3s"), "\(args): \(run.err)")
        }
        let noIngest = try budgetctl(["events", "send", "--platform", "OpenAI", "--service", "API",
                                      "--ingest", "tcp://127.0.0.1:1", "--timeout", "0.3"])
        #expect(noIngest.status == 2)
        #expect(noIngest.err.contains("no subscriber on tcp://127.0.0.1:1"))
        let noAck = try budgetctl(["events", "send", "--reliable", "--retries", "1", "--platform", "OpenAI", "--service", "API",
                                   "--ingest-ack", "tcp://127.0.0.1:1", "--timeout", "0.3"])
        #expect(noAck.status == 2)
        #expect(noAck.err.contains("no acknowledgement from tcp://127.0.0.1:1 after 2 attempts of 0.3s each"))

        // Command-line mistakes: 64, before anything is sent.
        let mistake = try budgetctl(["budget", "create", "--type", "MONTHLY", "--total", "5", "--start", "2026-03-01"] + control)
        #expect(mistake.status == 64)
        #expect(mistake.err.contains("--name"))
        #expect(try Client(daemon).call("budget.list").arrayValue?.isEmpty == true)
    }

    // MARK: fixtures

    /// `2026-11-29T10:11:12.5Z` → `2026-11-29T10:11:12Z`, as `budget show` prints instants.
    static func toTheSecond(_ instant: String) -> String {
        guard let dot = instant.firstIndex(of: ".") else { return instant }
        return String(instant[..<dot]) + "Z"
    }

    /// `budget update` reaches every field of budget.update, `createdBy` too (the audit found
    /// it reachable only through `budgetctl call`).
    @Test func budgetUpdateSetsCreatedBy() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client)
        let run = try budgetctl(["budget", "update", b, "--created-by", "ops-2", "--json", "--control", daemon.control])
        #expect(run.status == 0, "\(run.err)")
        #expect(try JSON.parse(Array(run.out.utf8))["createdBy"]?.stringValue == "ops-2", "\(run.out)")
        #expect(try client.call("budget.get", ["id": .string(b)])["budget"]?["createdBy"]?.stringValue == "ops-2")
    }

    static func nowText() -> String {
        Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).rfc3339
    }

    // MARK: running budgetctl

    /// Runs budgetctl to the end: (exit status, standard output, standard error).
    func budgetctl(_ args: [String], stdin: Data? = nil) throws -> (status: Int32, out: String, err: String) {
        let run = try RunningBudgetctl(args, stdin: stdin)
        guard let status = run.wait(seconds: 60) else {
            run.stop()
            throw HarnessError("budgetctl \(args) did not finish: \(run.errorText)")
        }
        return (status, run.outputText, run.errorText)
    }

    /// Polls `condition` for up to 10 s.
    static func eventually(_ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("condition not met within 10 s")
    }

    func eventually(_ condition: () throws -> Bool) throws {
        try Self.eventually(condition)
    }

    /// Whether `script` can give a command a pseudo-terminal here.
    static let canFakeATerminal: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { return false }
        return (try? runOnATerminal("true", environment: [:])) != nil
    }()

    /// Runs a shell command with a pseudo-terminal as its standard output
    /// (util-linux `script`) and returns what it wrote.
    static func runOnATerminal(_ command: String, environment: [String: String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", command, "/dev/null"]
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NO_COLOR")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw HarnessError("script \(command) exited \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A daemon with four March 2026 budgets, their costs sent with explicit times:
/// - `b_ops`: MONTHLY 5000, OpenAI/API 3000 CRITICAL and Apify/SCRAPING 1000 LOW;
///   2500 on the 2nd, 1500 + 65 on the 10th, 0.125 on the 20th: 4065.125 (81.3 %).
/// - `b_unl`: UNLIMITED, 12.5 on the 3rd.
/// - `b_over`: PROJECT 100 through the 15th, 150.5 on the 3rd.
/// - `b_idle`: MONTHLY 999.99, nothing spent.
///
/// The budgets are COMPLETED (their periods are over) before the costs arrive, so
/// the alert seqs are fixed: 1...3 are the status events, THRESHOLD_80 is 4.
private struct MarchBudgets {
    let dir: TempDir
    let daemon: Daemon
    let client: Client

    init() throws {
        dir = try TempDir()
        daemon = try Daemon(dir: dir)
        let client = try Client(daemon)
        self.client = client
        func create(_ args: JSONObject) throws {
            var args = args
            args["startDate"] = "2026-03-01"
            _ = try client.call("budget.create", .object(args))
        }
        try create([
            "id": "b_ops", "name": "March 2026 Operations", "budgetType": "MONTHLY", "totalAmount": .number("5000"),
            "description": "Operations, all platforms", "createdBy": "golden",
            "allocations": [
                ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": .number("3000"), "priority": "CRITICAL"],
                ["platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": .number("1000"), "priority": "LOW"],
            ],
        ])
        try create(["id": "b_unl", "name": "Research", "budgetType": "UNLIMITED"])
        try create(["id": "b_over", "name": "Launch", "budgetType": "PROJECT", "totalAmount": .number("100"), "endDate": "2026-03-15"])
        try create(["id": "b_idle", "name": "Idle", "budgetType": "MONTHLY", "totalAmount": .number("999.99")])

        let pastBudgets: Set<String> = ["b_ops", "b_over", "b_idle"]
        try BudgetctlOutputTests.eventually {
            try client.call("budget.list").arrayValue?.filter { budget in
                pastBudgets.contains(budget["id"]?.stringValue ?? "") && budget["status"]?.stringValue == "COMPLETED"
            }.count == pastBudgets.count
        }

        let costs: [(id: String, budget: String, platform: String, service: String, cost: String, time: String)] = [
            ("g-1", "b_ops", "OpenAI", "API", "2500", "2026-03-02T09:00:00Z"),
            ("g-2", "b_ops", "OpenAI", "API", "1500", "2026-03-10T09:00:00Z"),
            ("g-3", "b_ops", "Apify", "SCRAPING", "65", "2026-03-10T18:30:00Z"),
            ("g-4", "b_ops", "Apify", "SCRAPING", "0.125", "2026-03-20T23:59:59Z"),
            ("g-5", "b_unl", "OpenAI", "API", "12.5", "2026-03-03T12:00:00Z"),
            ("g-6", "b_over", "OpenAI", "API", "150.5", "2026-03-03T12:00:00Z"),
        ]
        for cost in costs {
            let ack = try client.sendAck(costEvent(
                cost.id, cost: cost.cost, source: "golden", budgetId: cost.budget, platform: cost.platform,
                extra: [("serviceType", .string(cost.service)), ("time", .string(cost.time))]
            ))
            guard ack.string("state") == "ALLOCATED" else { throw HarnessError("\(cost.id) not allocated: \(ack)") }
        }
    }
}

/// A budgetctl process whose output is collected while it runs.
///
/// `@unchecked Sendable`: the buffers are guarded by a lock; the process is
/// only started and waited for by the test that owns it.
private final class RunningBudgetctl: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var output = Data()
    private var error = Data()
    private let finishedReading = DispatchGroup()

    init(_ args: [String], stdin: Data? = nil) throws {
        process.executableURL = URL(fileURLWithPath: Products.budgetctl)
        process.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NO_COLOR")
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try input.fileHandleForWriting.close()
        }
        read(out.fileHandleForReading, toOutput: true)
        read(err.fileHandleForReading, toOutput: false)
    }

    /// Drains `handle` on a thread of its own until end of file.
    private func read(_ handle: FileHandle, toOutput: Bool) {
        finishedReading.enter()
        Thread.detachNewThread { [self] in
            defer { finishedReading.leave() }
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return }
                lock.lock()
                if toOutput { output.append(chunk) } else { error.append(chunk) }
                lock.unlock()
            }
        }
    }

    var outputText: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: output, as: UTF8.self)
    }

    var errorText: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: error, as: UTF8.self)
    }

    /// Waits up to 10 s for standard error to contain `text`.
    func waitForError(containing text: String) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if errorText.contains(text) { return true }
            if !process.isRunning { return errorText.contains(text) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// The exit status once the process has ended and its output is read;
    /// nil if it is still running after `seconds`.
    func wait(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            if Date() >= deadline { return nil }
            Thread.sleep(forTimeInterval: 0.02)
        }
        _ = finishedReading.wait(timeout: .now() + 5)
        return process.terminationStatus
    }

    /// SIGTERM if still running, then waits for the end.
    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// SIGTERM, without waiting.
    func terminate() {
        if process.isRunning { process.terminate() }
    }
}
