import BudgetCore
import Foundation
import Testing

// Issue 8: the spike windows' hourly history is saved at each commit (`spend_history`), so a
// start reads it instead of every cost of the last days; a database from before that table
// gets it rebuilt from its costs once.

@Suite struct HistoryPersistenceTests {
    @Test func spikeHistoryIsSavedAtCommitAndRebuiltFromCostsAfterTheMigration() throws {
        let dir = try TempDir()
        let db = dir.file("budgetd.db")
        var daemon = try Daemon(dir: dir)
        let budget: String
        do {
            let client = try Client(daemon)
            budget = try makeBudget(client, total: "1000")
            for i in 0..<5 {
                #expect(try client.sendAck(costEvent("h\(i)", cost: "1.25", budgetId: budget)).string("status") == "ACCEPTED")
            }
        }
        #expect(daemon.stop() == 0)

        let query = "SELECT key, hour, amount FROM spend_history ORDER BY key, hour"
        let saved = try SQLiteShell.query(db, query)
        // One bucket: this budget, this hour, the five costs together.
        let hour = HourlySpend.hour(Timestamp(nanosecondsSinceEpoch: Int64(Date().timeIntervalSince1970) * 1_000_000_000))
        #expect(saved.trimmingCharacters(in: .whitespacesAndNewlines) == "\(budget)|\(hour)|6.25" || saved.contains("|\(hour - 1)|6.25"), "\(saved)")

        // Back to the schema before the table: the next start rebuilds the same buckets from the costs.
        guard let sqlite = SQLiteShell.path else { throw HarnessError("sqlite3 is not installed") }
        let downgrade = try runProcess(sqlite, [db, "DROP TABLE spend_history; DELETE FROM grdb_migrations WHERE identifier = 'v8-spend-history'"])
        #expect(downgrade.status == 0, "\(downgrade.err)")
        #expect(try SQLiteShell.query(db, "SELECT count(*) FROM sqlite_master WHERE name = 'spend_history'").hasPrefix("0"))
        daemon = try Daemon(dir: dir)
        try waitFor { daemon.stderr.contains("spike history rebuilt from costs and saved") }
        #expect(daemon.stop() == 0)
        #expect(try SQLiteShell.query(db, query) == saved)
    }
}
