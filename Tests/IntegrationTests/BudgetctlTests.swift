import BudgetCore
import Foundation
import Testing

/// Runs `budgetctl` as an operator would, against a real daemon.
@Suite(.timeLimit(.minutes(3)))
struct BudgetctlTests {
    /// Runs budgetctl with arguments; returns (status, stdout, stderr).
    func budgetctl(_ args: [String]) throws -> (Int32, String, String) {
        try runProcess(Products.budgetctl, args)
    }

    @Test func createShowListAndErrorsThroughTheCommandLine() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let control = ["--control", daemon.control]

        let (status, out, _) = try budgetctl(["budget", "create", "--name", "CLI Ops", "--type", "MONTHLY", "--total", "5000",
                                              "--start", "2026-03-01", "--id", "b_cli", "--allocation", "OpenAI:API:3000:CRITICAL", "--json"] + control)
        #expect(status == 0)
        let created = try JSON.parse(out.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(created["id"]?.stringValue == "b_cli")
        #expect(created["endDate"]?.stringValue == "2026-03-31")
        #expect(created["allocations"]?.arrayValue?.first?["priority"]?.stringValue == "CRITICAL")

        let client = try Client(daemon)
        _ = try client.sendAck(costEvent("cli-1", cost: "4065", budgetId: "b_cli", extra: [("time", "2026-03-10T00:00:00Z")]))

        let (showStatus, show, _) = try budgetctl(["budget", "show", "b_cli"] + control)
        #expect(showStatus == 0)
        #expect(show.contains("CLI Ops"))
        #expect(show.contains("81.3"))

        let (listStatus, list, _) = try budgetctl(["budget", "list", "--json"] + control)
        #expect(listStatus == 0)
        #expect(try JSON.parse(list.trimmingCharacters(in: .whitespacesAndNewlines)).arrayValue?.count == 1)

        let (alertsStatus, alerts, _) = try budgetctl(["alerts", "list", "--json"] + control)
        #expect(alertsStatus == 0)
        #expect(try JSON.parse(alerts.trimmingCharacters(in: .whitespacesAndNewlines)).arrayValue?.first?["type"]?.stringValue == "THRESHOLD_80")

        // A daemon error: non-zero exit and the message.
        let (missingStatus, _, missingErr) = try budgetctl(["budget", "show", "b_nope"] + control)
        #expect(missingStatus == 1)
        #expect(missingErr.contains("NOT_FOUND"))
        let (badStatus, _, badErr) = try budgetctl(["budget", "create", "--name", "Bad", "--type", "MONTHLY", "--total", "1000", "--start", "2026-03-01",
                                                    "--allocation", "OpenAI:API:800", "--allocation", "Apify:SCRAPING:500"] + control)
        #expect(badStatus == 1)
        #expect(badErr.contains("Total allocation (1300) exceeds budget total (1000)"))
    }

    @Test("--control, --json and the other connection options work before the subcommand as after it")
    func optionsBeforeTheSubcommand() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let (healthStatus, health, healthErr) = try budgetctl(["--control", daemon.control, "health"])
        #expect(healthStatus == 0, "\(healthErr)")
        #expect(health.contains("OK"), "\(health)")
        let (statsStatus, stats, _) = try budgetctl(["--json", "--control=\(daemon.control)", "--timeout", "5", "stats"])
        #expect(statsStatus == 0)
        #expect(try JSON.parse(stats.trimmingCharacters(in: .whitespacesAndNewlines))["received"]?.numberText == "0")
        let (createStatus, created, createErr) = try budgetctl([
            "--control", daemon.control, "--json", "budget", "create", "--name", "Front", "--type", "MONTHLY",
            "--total", "100", "--start", "2026-03-01", "--id", "b_front",
        ])
        #expect(createStatus == 0, "\(createErr)")
        #expect(try JSON.parse(created.trimmingCharacters(in: .whitespacesAndNewlines))["id"]?.stringValue == "b_front")
        let (showStatus, show, _) = try budgetctl(["--control", daemon.control, "budget", "show", "b_front"])
        #expect(showStatus == 0)
        #expect(show.contains("Front"))
        // Before a subcommand that does not take it, an option is refused as it is after it.
        let (keygenStatus, _, keygenErr) = try budgetctl(["--control", daemon.control, "keygen", dir.file("k")])
        #expect(keygenStatus == 64, "\(keygenErr)")
    }

    @Test func alertsTailPrintsAlertsAndRecoversFromSeq() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "100")
        // Two alerts before the tail starts: --since-seq 0 must replay them from outbound.list.
        _ = try client.sendAck(costEvent("tail-1", cost: "95", budgetId: budgetId))
        let (status, out, err) = try budgetctl(["alerts", "tail", "--since-seq", "0", "--count", "2", "--json",
                                                "--control", daemon.control, "--publish", daemon.publish])
        #expect(status == 0, "\(err)")
        let lines = out.split(separator: "\n").map { try? JSON.parse(String($0)) }
        #expect(lines.map { $0?["type"]?.stringValue } == ["THRESHOLD_80", "THRESHOLD_90"])
        #expect(lines.map { $0?["seq"]?.numberText } == ["1", "2"])
    }

    @Test func aPortInUseIsAClearErrorAndExitOne() throws {
        let dir = try TempDir()
        let first = try Daemon(dir: dir)
        defer { #expect(first.stop() == 0) }
        let second = Process()
        second.executableURL = URL(fileURLWithPath: Products.budgetd)
        second.arguments = ["--db", dir.file("other.db"), "--ingest", "tcp://127.0.0.1:*", "--ingest-ack", "tcp://127.0.0.1:*",
                            "--publish", "tcp://127.0.0.1:*", "--control", first.control]
        let err = Pipe()
        second.standardError = err
        try second.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        second.waitUntilExit()
        #expect(second.terminationReason == .exit)
        #expect(second.terminationStatus == 1)
        #expect(message.lowercased().contains("address"))
    }

    @Test func daemonVersionAndConfigCheck() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Products.budgetd)
        p.arguments = ["--version"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let version = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(version.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)

        let dir = try TempDir()
        try Data("{\"prices\": 5}".utf8).write(to: URL(fileURLWithPath: dir.file("bad.json")))
        let check = try runProcess(Products.budgetd, ["--check-config", "--config", dir.file("bad.json")])
        #expect(check.status == 1)
        #expect(check.err.contains("prices"))
    }
}
