import BudgetCore
import Foundation
import Testing

/// `budgetctl bench` against a real daemon, with small counts: the modes
/// work and report what they should. (Figures are not asserted: see
/// docs/benchmarks.md and scripts/bench-suite.sh.)
@Suite struct BenchTests {
    /// Runs `budgetctl bench --json` against `daemon` and returns its report.
    func bench(_ daemon: Daemon, _ args: [String]) throws -> JSONObject {
        let endpoints = [
            "--control", daemon.control, "--ingest", daemon.ingest, "--ingest-ack", daemon.ingestAck,
            "--publish", daemon.publish, "--timeout", "10",
        ]
        let result = try runProcess(Products.budgetctl, ["bench", "--json"] + endpoints + args)
        guard result.status == 0, let report = try? JSON.parse(Array(result.out.utf8)).objectValue else {
            throw HarnessError("budgetctl bench \(args) exited \(result.status): \(result.out)\n\(result.err)\ndaemon:\n\(daemon.stderr)")
        }
        return report
    }

    func integer(_ report: JSONObject, _ key: String) -> Int? {
        report.number(key).flatMap { Int($0) }
    }

    func positive(_ report: JSONObject, _ key: String) -> Bool {
        report.number(key).flatMap(Double.init).map { $0 > 0 } ?? false
    }

    @Test func pubWithNodropLosesNothingAndReportsResources() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { daemon.stop() }
        // A send queue of 50 against 2000 events: the publisher may have to wait, never drop.
        let report = try bench(daemon, [
            "--mode", "pub", "--nodrop", "--send-hwm", "50", "--with-raw", "--count", "2000", "--budgets", "4",
            "--setup", "--sample-ms", "20",
        ])
        #expect(integer(report, "sent") == 2000)
        #expect(integer(report, "committed") == 2000)
        #expect(integer(report, "lost") == 0)
        #expect(report["nodrop"]?.boolValue == true)
        #expect(integer(report, "sendHwm") == 50)
        #expect(positive(report, "eventsPerSecond"))
        #expect(positive(report, "rawMessagesPerSecond"))
        #expect(positive(report, "ratioToRaw"))
        for key in ["peakRssBytes", "rssStartBytes", "rssEndBytes", "databaseBytesPerMillionEvents"] {
            #expect(positive(report, key), "\(key) in \(JSONValue.object(report).serialized())")
        }
        #expect(integer(report, "peakRssBytes")! >= integer(report, "rssEndBytes")!)
    }

    @Test func ackReportsResourcesAndRaw() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { daemon.stop() }
        let report = try bench(daemon, [
            "--mode", "ack", "--window", "64", "--with-raw", "--count", "1000", "--budgets", "3", "--setup", "--sample-ms", "20",
        ])
        #expect(integer(report, "accepted") == 1000)
        #expect(integer(report, "missingReplies") == 0)
        #expect(positive(report, "ratioToRaw"))
        #expect(positive(report, "peakRssBytes"))
        #expect(positive(report, "databaseBytesPerMillionEvents"))
    }

    /// `--ids random`: ids with eight hex digits of a hash first, every reply still matched to
    /// its event (a reply the bench could not map back would count as missing).
    @Test func ackWithRandomIds() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { daemon.stop() }
        let report = try bench(daemon, [
            "--mode", "ack", "--window", "32", "--count", "300", "--budgets", "2", "--setup", "--ids", "random", "--run-id", "rnd",
        ])
        #expect(report.string("ids") == "random")
        #expect(integer(report, "accepted") == 300)
        #expect(integer(report, "missingReplies") == 0)
        let client = try Client(daemon)
        let events = try client.call("event.list", ["limit": 300]).arrayValue ?? []
        let ids = events.compactMap { $0.objectValue?["id"]?.stringValue }
        #expect(ids.count == 300)
        #expect(Set(ids).count == 300)
        // Not in sending order: the first eight characters are hex digits of a hash.
        let prefixes = ids.map { String($0.prefix(8)) }
        #expect(prefixes.allSatisfy { $0.allSatisfy(\.isHexDigit) })
        #expect(ids.allSatisfy { $0.dropFirst(8).hasPrefix("-rnd-") })
        #expect(prefixes != prefixes.sorted() && prefixes != prefixes.sorted().reversed())
    }

    @Test func alertsModeHearsEveryProbe() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { daemon.stop() }
        let report = try bench(daemon, [
            "--mode", "alerts", "--nodrop", "--probes", "6", "--count", "600", "--rate", "1000", "--budgets", "3", "--setup",
        ])
        #expect(integer(report, "probes") == 6)
        #expect(integer(report, "alertsReceived") == 6)
        #expect(integer(report, "missingAlerts") == 0)
        #expect(integer(report, "duplicateAlerts") == 0)
        #expect(integer(report, "committed") == 606)
        #expect(integer(report, "lost") == 0)
        #expect(positive(report, "p50LatencyMs"))
        #expect(positive(report, "p99LatencyMs"))
        #expect(positive(report, "maxLatencyMs"))
        // Each probe's budget really is at 85 %.
        let client = try Client(daemon)
        let runId = try #require(report.string("runId"))
        let summary = try client.call("budget.get", .object(["id": .string("probe-\(runId)-0")]))
        #expect(summary["spentPercentage"]?.numberText.flatMap(Double.init) == 85)
    }

    @Test func controlModeTimesBothOps() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { daemon.stop() }
        let report = try bench(daemon, [
            "--mode", "control", "--requests", "300", "--warmup", "20", "--budgets", "2", "--setup",
            "--rate", "500", "--count", "100000",
        ])
        #expect(integer(report, "requests") == 300)
        #expect(integer(report, "budgetGetRequests") == 150)
        #expect(integer(report, "spendCheckRequests") == 150)
        #expect(integer(report, "spendCheckDenied") == 0)
        for op in ["budgetGet", "spendCheck"] {
            for q in ["P50", "P90", "P99", "Max"] {
                #expect(positive(report, "\(op)\(q)LatencyMs"), "\(op)\(q)LatencyMs")
            }
        }
        #expect(positive(report, "backgroundSent"))
        #expect(report["daemonAccepted"] != nil)
    }

    @Test func controlModeNeedsABudget() throws {
        let result = try runProcess(Products.budgetctl, ["bench", "--mode", "control"])
        #expect(result.status == 64)
        #expect(result.err.contains("--budget-id"))
    }
}
