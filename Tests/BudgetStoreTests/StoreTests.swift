import BudgetCore
import BudgetStore
import Foundation
import GRDB
import Synchronization
import Testing

// BudgetStore: migrations, exact round trips, the event and outbound logs, dead letters,
// atomic writes. Every test gets a database in a fresh temporary directory.

private func t(_ text: String) -> Timestamp {
    // Test literals only: a typo should stop the run loudly.
    try! Timestamp(rfc3339: text)
}

private func money(_ text: String) -> Money {
    try! Money(parsing: text)
}

/// Runs `body` with a database path in a new temporary directory, removed afterwards.
private func withDatabasePath<T>(_ body: (String) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("budgetd-store-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    return try body(dir.appendingPathComponent("budgetd.sqlite").path)
}

/// Opens a store at a fresh path, hands it to `body`, and closes it.
private func withStore<T>(_ body: (Store, String) throws -> T) throws -> T {
    try withDatabasePath { path throws in
        let store = try Store(path: path)
        defer { store.close() }
        return try body(store, path)
    }
}

private struct Boom: Error {}

/// The string or number text of `key` in each object (nil where it is absent or null).
private func texts(_ objects: [JSONValue], _ key: String) -> [String?] {
    objects.map { $0[key]?.stringValue ?? $0[key]?.numberText }
}

private func storedEvent(
    _ id: String, source: String = "scraper-1", state: EventState = .allocated, reason: String? = nil,
    receivedAt: String = "2026-03-05T12:00:01Z", cost: String? = "0.006"
) -> StoredEvent {
    StoredEvent(
        source: source, id: id, body: #"{"id":"\#(id)","platform":"OpenAI","serviceType":"API","source":"\#(source)"}"#,
        state: state, reason: reason, platform: "OpenAI", serviceType: .api, model: "gpt-4o",
        time: t("2026-03-05T12:00:00Z"), receivedAt: t(receivedAt), cost: cost.map(money),
        currency: "USD", budgetId: state == .allocated ? "b" : nil, costAllocationId: state == .allocated ? "c_\(id)" : nil
    )
}

/// An event whose plain cost is booked in its own row (Bookings.swift), to budget `budget`, at
/// `seconds` after 2026-03-05T12:00:00Z.
private final class TickCount: Sendable {
    let value = Atomic<Int>(0)
}

private func bookedEvent(_ id: String, budget: String = "b", seconds: Int64 = 0, receivedAt: String = "2026-03-05T12:00:01Z") -> StoredEvent {
    var e = storedEvent(id, receivedAt: receivedAt)
    e.budgetId = budget
    e.time = Timestamp(nanosecondsSinceEpoch: t("2026-03-05T12:00:00Z").nanosecondsSinceEpoch + seconds * 1_000_000_000)
    e.booked = true
    e.costAllocationId = nil
    return e
}

/// Makes a database at `path` holding one event, and closes it (twice: closing is idempotent).
private func storeOneEvent(at path: String) throws {
    let store = try Store(path: path)
    try store.write { w throws in try w.insertEvent(storedEvent("e1")) }
    store.close()
    store.close()
}

/// Budgets at the edges of what a budget can hold: extreme amounts, instant periods, selectors,
/// fired alerts, an open-ended UNLIMITED.
private func edgeBudgets() throws -> [Budget] {
    var ledger = Ledger()
    ledger.settings.lowBudgetMinElapsedHours = 1_000_000  // these bookings would legitimately run low
    var parent = try ledger.createBudget(Args([
        "name": "Parent \"quoted\" ünïcode", "description": "line 1\nline 2", "budgetType": "MONTHLY",
        "totalAmount": "999999999999.999999999", "startDate": "2026-03-01", "currency": "EUR", "createdBy": "ops",
        "alertThreshold90": false, "autoRenewal": true,
    ]), id: "p", at: t("2026-02-28T09:00:00.5Z"))
    parent.spentAmount = money("9999999999999.5")
    parent.status = .exceeded
    parent.fired = [.threshold80, .threshold100, .budgetExceeded]
    parent.successorId = "p-next"
    parent.costCount = 123_456_789_012
    parent.allocations = [
        Allocation(
            id: "al_tiny", budgetId: "p", platform: "OpenAI", serviceType: .api, allocatedAmount: money("0.000000001"),
            spentAmount: money("9999999999999.5"), priority: .critical, isActive: false, depletedFired: true
        ),
        Allocation(
            id: "al_max", budgetId: "p", platform: "Apify", serviceType: .scraping, allocatedAmount: money("999999999999.999999999"),
            spentAmount: money("0.000000001"), priority: .low
        ),
        Allocation(id: "al_zero", budgetId: "p", platform: "Azure", serviceType: .storage, allocatedAmount: .zero),
    ]
    let child = try ledger.createBudget(Args([
        "name": "Child", "budgetType": "PROJECT", "totalAmount": "0.000000001",
        "startDate": "2026-03-05T10:30:00.123456789+02:00", "endDate": "2026-03-20T23:59:59.999999999Z",
        "currency": "EUR", "parentId": "p", "selector": ["projectId": "proj-123", "n": .number("1.50"), "nested": ["a": [1, true, .null]]],
    ]), id: "c", at: t("2026-03-01T00:00:00Z"))
    let unlimited = try ledger.createBudget(Args([
        "name": "Open", "budgetType": "UNLIMITED", "startDate": "2026-01-01",
    ]), id: "u", at: t("2026-03-01T00:00:00Z"))
    let quarter = try ledger.createBudget(Args([
        "name": "Q", "budgetType": "QUARTERLY", "totalAmount": 10, "startDate": "2026-01-31", "endDate": .null,
    ]), id: "q", at: t("2026-03-01T00:00:00Z"))
    return [parent, child, unlimited, quarter]
}

struct StoreTests {
    @Test("a new database is created, migrated and empty")
    func freshDatabase() throws {
        try withStore { store, path throws in
            let header = try #require(FileManager.default.contents(atPath: path)?.prefix(16))
            #expect(Array(header) == Array("SQLite format 3\0".utf8))
            try store.read { r throws in
                #expect(try r.budgets().isEmpty)
                #expect(try r.lastSeq() == 0)
                #expect(try r.events(state: nil, limit: 100).isEmpty)
                #expect(try r.events(inState: .unpriced, limit: 100).isEmpty)
                #expect(try r.eventCounts() == [.rejected: 0])
                #expect(try r.alerts(budgetId: nil, unresolvedOnly: false, sinceSeq: 0, limit: 1000).isEmpty)
                #expect(try r.outbound(sinceSeq: 0, limit: 1000).isEmpty)
                #expect(try r.costs(budgetId: "b", from: nil, to: nil, limit: 100).isEmpty)
            }
        }
    }

    /// GRDB's WAL set-up sets `synchronous = NORMAL` after the connection's own set-up ran: a
    /// mode set there was silently lost (every commit ran at NORMAL, its log not synced).
    @Test("the writer's connection commits at the synchronous mode asked for (FULL by default), new or reopened",
          arguments: [SynchronousMode.full, .normal, .off])
    func synchronousModeIsTheOneAskedFor(mode: SynchronousMode) throws {
        try withDatabasePath { path throws in
            let fresh = try Store(path: path, synchronous: mode, backgroundCheckpoints: true)
            #expect(try fresh.synchronousLevel() == mode.level)
            fresh.close()
            let reopened = try Store(path: path, synchronous: mode, backgroundCheckpoints: true)
            defer { reopened.close() }
            #expect(try reopened.synchronousLevel() == mode.level)
            let byDefault = try Store(path: path + ".default")
            defer { byDefault.close() }
            #expect(try byDefault.synchronousLevel() == 2)
        }
    }

    @Test("reopening a database migrates nothing twice and keeps its data")
    func reopen() throws {
        try withDatabasePath { path throws in
            try storeOneEvent(at: path)
            let second = try Store(path: path)
            defer { second.close() }
            #expect(try second.read { try $0.eventCounts() } == [.allocated: 1, .rejected: 0])
        }
    }

    @Test("a database migrated by a newer budgetd (a migration this one does not know) stops the start, untouched")
    func aNewerSchemaIsRefused() throws {
        try withDatabasePath { path throws in
            try storeOneEvent(at: path)
            func migrations(_ sql: String) throws {
                let queue = try DatabaseQueue(path: path)
                try queue.write { db in try db.execute(sql: sql) }
                try queue.close()
            }
            try migrations("INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
            do {
                let refused = try Store(path: path)
                refused.close()
                Issue.record("a database with an unknown migration was opened")
            } catch let error as StoreError {
                #expect(error.message.contains("migrated by a newer budgetd (v99-from-the-future)"), "\(error.message)")
            }
            #expect(!FileManager.default.fileExists(atPath: path + ".pre-v99-from-the-future.bak"))
            // Without the newer migration it opens again, with its data.
            try migrations("DELETE FROM grdb_migrations WHERE identifier = 'v99-from-the-future'")
            let again = try Store(path: path)
            defer { again.close() }
            #expect(try again.read { try $0.eventCounts() } == [.allocated: 1, .rejected: 0])
        }
    }

    @Test("budgets, allocations and amounts at the extremes round-trip exactly")
    func budgetRoundTrip() throws {
        let budgets = try edgeBudgets()
        // The fixture really is at the edges: beyond Int64 nano-units and down to one nano-unit.
        #expect(budgets[0].spentAmount.nanos > Int128(Int64.max))
        #expect(budgets[0].allocations[0].allocatedAmount.nanos == 1)
        #expect(budgets[0].totalAmount.nanos == 999_999_999_999_999_999_999)
        try withDatabasePath { path throws in
            let store = try Store(path: path)
            // Saved newest first: the store returns them by ordinal.
            try store.write { w throws in for b in budgets.reversed() { try w.saveBudget(b) } }
            #expect(try store.read { try $0.budgets() } == budgets)
            store.close()

            let reopened = try Store(path: path)
            defer { reopened.close() }
            let loaded = try reopened.read { try $0.budgets() }
            #expect(loaded == budgets)
            #expect(loaded.map(\.id) == ["p", "c", "u", "q"])
            let p = try #require(loaded.first)
            #expect(p.spentAmount.description == "9999999999999.5")
            #expect(p.totalAmount.description == "999999999999.999999999")
            #expect(p.allocations.map(\.id) == ["al_tiny", "al_max", "al_zero"])
            #expect(p.allocations[0].allocatedAmount.description == "0.000000001")
            #expect(p.allocations[0].spentAmount.description == "9999999999999.5")
            #expect(p.fired == [.threshold80, .threshold100, .budgetExceeded])
            #expect(loaded[1].period.start == t("2026-03-05T08:30:00.123456789Z"))
            #expect(loaded[1].selector?["n"] == .number("1.50"))
            #expect(loaded[2].period.endExclusive == nil)
            #expect(loaded[3].period.endExclusive == t("2026-05-01T00:00:00Z"))
        }
    }

    @Test("saving a budget again replaces it and its allocations")
    func budgetReplace() throws {
        try withStore { store, _ throws in
            var b = try edgeBudgets()[0]
            try store.write { w throws in try w.saveBudget(b) }
            b.allocations.removeFirst()
            b.allocations[0].spentAmount = money("42.000000001")
            b.name = "Renamed"
            b.status = .active
            b.fired = []
            try store.write { w throws in try w.saveBudget(b) }
            let loaded = try store.read { try $0.budgets() }
            #expect(loaded == [b])
            #expect(loaded.first?.allocations.map(\.id) == ["al_max", "al_zero"])
        }
    }

    @Test("usage events: insert, find by (source, id), update")
    func events() throws {
        try withStore { store, _ throws in
            let e = storedEvent("e1", state: .unpriced, reason: "no price for OpenAI/gpt-5", cost: nil)
            try store.write { w throws in
                #expect(try w.findEvent(source: "scraper-1", id: "e1") == nil)
                try w.insertEvent(e)
                // The same id from another source is another event.
                try w.insertEvent(storedEvent("e1", source: "scraper-2"))
            }
            try store.write { w throws in
                let key = try #require(try w.findEvent(source: "scraper-1", id: "e1"))
                #expect(key.body == e.body)
                #expect(key.state == .unpriced)
                #expect(key.reason == "no price for OpenAI/gpt-5")
                #expect(try w.findEvent(source: "", id: "e1") == nil)
                #expect(try w.findEvent(source: "scraper-1", id: "E1") == nil)
            }
            #expect(try store.read { try $0.events(inState: .unpriced, limit: 10) } == [e])

            var priced = e
            priced.state = .allocated
            priced.reason = nil
            priced.cost = money("999999999999.999999999")
            priced.currency = "EUR"
            priced.budgetId = "b"
            priced.costAllocationId = "c_1"
            try store.write { w throws in try w.updateEvent(priced) }
            try store.read { r throws in
                #expect(try r.events(inState: .unpriced, limit: 10).isEmpty)
                let allocated = try r.events(inState: .allocated, limit: 10)
                #expect(allocated == [priced, storedEvent("e1", source: "scraper-2")])
                #expect(try r.eventCounts() == [.allocated: 2, .rejected: 0])
                let listed = try r.events(state: .allocated, limit: 1)
                #expect(listed.count == 1)
                // Newest first: scraper-2's was inserted last.
                #expect(listed.first?["source"] == .string("scraper-2"))
            }
            try store.read { r throws in
                let json = try #require(try r.events(state: nil, limit: 10).last)
                #expect(json["id"] == .string("e1"))
                #expect(json["source"] == .string("scraper-1"))
                #expect(json["state"] == .string("ALLOCATED"))
                #expect(json["reason"] == .null)
                #expect(json["cost"] == .number("999999999999.999999999"))
                #expect(json["body"]?["platform"] == .string("OpenAI"))
            }
        }
    }

    @Test("an event's catalog version is stored once per version and read back; rows from before v11 keep their text; a version made in a failed write is not reused")
    func catalogVersions() throws {
        try withDatabasePath { path throws in
            func event(_ id: String, _ version: String?) -> StoredEvent {
                var e = storedEvent(id)
                e.catalogVersion = version
                return e
            }
            let long = String(repeating: "2026-11-29: list prices from litellm ", count: 5)
            let store = try Store(path: path)
            // A version interned in a transaction that fails goes with it: "a" must not keep the
            // id that "b" gets next.
            #expect(throws: Boom.self) {
                try store.write { w throws in
                    try w.insertEvent(event("e0", "a"))
                    throw Boom()
                }
            }
            try store.write { w throws in
                try w.insertEvent(event("e1", "b"))
                try w.insertEvent(event("e2", long))
                try w.insertEvent(event("e3", nil))
            }
            try store.write { w throws in
                try w.insertEvent(event("e4", "a"))
                try w.insertEvent(event("e5", long))
            }
            var repriced = event("e3", "b")
            repriced.cost = money("0.01")
            try store.write { w throws in try w.updateEvent(repriced) }
            let read = try store.read { r throws in
                try ["e1", "e2", "e3", "e4", "e5"].map { try r.event(source: "scraper-1", id: $0)?.catalogVersion }
            }
            #expect(read == ["b", long, "b", "a", long])
            store.close()

            // Each version once; no event row holds the text. Then a row as v10 wrote it.
            let raw = try DatabaseQueue(path: path)
            try raw.write { db throws in
                #expect(try String.fetchAll(db, sql: "SELECT version FROM catalog_versions ORDER BY version") == ["a", "b", long].sorted())
                #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM usage_events WHERE catalog_version IS NOT NULL") == 0)
                try db.execute(sql: "UPDATE usage_events SET catalog_version = 'v10 text', catalog_id = NULL WHERE event_id = 'e1'")
            }
            try raw.close()
            let reopened = try Store(path: path)
            defer { reopened.close() }
            let old = try reopened.read { r throws in try r.event(source: "scraper-1", id: "e1") }
            #expect(old?.catalogVersion == "v10 text")
            #expect(old?.json["catalogVersion"] == .string("v10 text"))
        }
    }

    @Test("a day's running total adds exactly across transactions, and a failed one leaves nothing behind, not even in what the writer remembers")
    func dailyTotalsAcrossFailedWrites() throws {
        try withStore { store, _ throws in
            let k = DailyKey(budgetId: "b", day: "2026-03-05", platform: "OpenAI", serviceType: .api)
            let fresh = DailyKey(budgetId: "b", day: "2026-03-06", platform: "Apify", serviceType: .scraping)
            try store.write { w throws in try w.addDailySpend(k, amount: money("1.5"), count: 1) }
            #expect(throws: Boom.self) {
                try store.write { w throws in
                    try w.addDailySpend(k, amount: money("2"), count: 1)
                    // A key first written in the failed transaction: its row goes with it.
                    try w.addDailySpend(fresh, amount: money("7"), count: 1)
                    throw Boom()
                }
            }
            try store.write { w throws in
                try w.addDailySpend(k, amount: money("0.250000001"), count: 2)
                try w.addDailySpend(fresh, amount: money("0.000000001"), count: 1)
            }
            try store.write { w throws in try w.addDailySpend(k, amount: money("999999999999.999999999"), count: 1) }
            let rows = try store.read { r throws in try r.dailySpend(budgetIds: ["b"], fromDay: nil, toDay: nil) }
            #expect(rows.map(\.key) == [k, fresh])
            #expect(rows.map(\.amount) == [money("1000000000001.750000000"), money("0.000000001")])
            #expect(rows.map(\.count) == [4, 1])
        }
    }

    @Test("the writer deletes with secure_delete FAST: a freed page is not zeroed and written (Debian's SQLite zeroes them by default)")
    func secureDeleteIsFast() throws {
        try withStore { store, _ throws in
            // 0 OFF, 1 ON, 2 FAST.
            #expect(try store.secureDeleteLevel() == 2)
        }
    }

    @Test("the daily rollup through the log: readers see the logged sums at once, a fold writes them, a failed transaction logs nothing, a start folds what a crash left, a clean close folds the rest")
    func dailyRollupThroughTheLog() throws {
        try withDatabasePath { path throws in
            let a = DailyKey(budgetId: "b", day: "2026-03-05", platform: "OpenAI", serviceType: .api)
            let c = DailyKey(budgetId: "b", day: "2026-03-04", platform: "Apify", serviceType: .scraping)
            let other = DailyKey(budgetId: "z", day: "2026-03-05", platform: "OpenAI", serviceType: .api)
            // What the file holds, read on a connection of its own.
            func query<T>(_ read: (Database) throws -> T) throws -> T {
                let reader = try DatabaseQueue(path: path)
                defer { try? reader.close() }
                return try reader.read(read)
            }
            func table(_: Store) throws -> [String] {
                try query { db throws in
                    try String.fetchAll(db, sql: "SELECT budget_id || ' ' || day || ' ' || amount || ' ' || count FROM daily_spend ORDER BY 1")
                }
            }
            func logRows(_: Store) throws -> Int {
                try query { db throws in try Int.fetchOne(db, sql: "SELECT count(*) FROM daily_log") ?? -1 }
            }
            var store = try Store(path: path)
            // A direct addition, then logged ones on top of it.
            try store.write { w throws in try w.addDailySpend(a, amount: money("1"), count: 1) }
            try store.write { w throws in try w.logDailySpend([(a, money("0.5"), 2), (c, money("0.000000001"), 1)]) }
            #expect(throws: Boom.self) {
                try store.write { w throws in
                    try w.logDailySpend([(a, money("100"), 1), (other, money("7"), 1)])
                    throw Boom()
                }
            }
            try store.write { w throws in try w.logDailySpend([(other, money("2"), 1)]) }
            // Logged, not folded: the table has the direct row only; readers see the sums,
            // in the table's order (day, then budget), filtered as asked.
            #expect(try table(store) == ["b 2026-03-05 1 1"])
            #expect(try logRows(store) == 2)
            let all = try store.read { r throws in try r.dailySpend(budgetIds: nil, fromDay: nil, toDay: nil) }
            #expect(all.map(\.key) == [c, a, other])
            #expect(all.map(\.amount) == [money("0.000000001"), money("1.5"), money("2")])
            #expect(all.map(\.count) == [1, 3, 1])
            let some = try store.write { w throws in try w.reader.dailySpend(budgetIds: ["b"], fromDay: "2026-03-05", toDay: nil) }
            #expect(some.map(\.key) == [a] && some.map(\.amount) == [money("1.5")])

            // The 64th logged commit folds everything into the table and empties the log.
            for _ in 0..<(Store.dailyLogFoldEvery - 3) {
                try store.write { w throws in try w.logDailySpend([(a, money("0.000000002"), 1)]) }
            }
            #expect(try logRows(store) == Store.dailyLogFoldEvery - 1)
            try store.write { w throws in try w.logDailySpend([(c, money("1"), 1)]) }
            #expect(try logRows(store) == 0)
            let folded = ["b 2026-03-04 1.000000001 2", "b 2026-03-05 1.500000122 64", "z 2026-03-05 2 1"]
            #expect(try table(store) == folded)
            #expect(try store.read { r throws in try r.dailySpend(budgetIds: nil, fromDay: nil, toDay: nil) }.map(\.amount)
                == [money("1.000000001"), money("1.500000122"), money("2")])

            // A crash leaves rows in the log (written here as a crashed process left them):
            // the next start folds them.
            try store.write { w throws in try w.logDailySpend([(other, money("0.25"), 1)]) }
            store.close()  // a clean close folds
            #expect(try logRows(store) == 0)
            #expect(try table(store) == ["b 2026-03-04 1.000000001 2", "b 2026-03-05 1.500000122 64", "z 2026-03-05 2.25 2"])
            let raw = try DatabaseQueue(path: path)
            try raw.write { db throws in
                try db.execute(sql: #"INSERT INTO daily_log (rows) VALUES ('[["z","2026-03-05","OpenAI","API","0.5",3]]')"#)
            }
            try raw.close()
            store = try Store(path: path)
            defer { store.close() }
            #expect(try logRows(store) == 0)
            #expect(try table(store) == ["b 2026-03-04 1.000000001 2", "b 2026-03-05 1.500000122 64", "z 2026-03-05 2.75 5"])
        }
    }

    @Test("a commit with more rollup rows than are logged writes them into the table at once, with whatever was logged before; a failed one writes nothing")
    func dailyRollupLargeCommits() throws {
        try withDatabasePath { path throws in
            let n = Store.dailyLogMaxRows + 1
            func key(_ i: Int) -> DailyKey { DailyKey(budgetId: "b\(i)", day: "2026-03-05", platform: "OpenAI", serviceType: .api) }
            func table() throws -> [String: String] {
                let reader = try DatabaseQueue(path: path)
                defer { try? reader.close() }
                let rows = try reader.read { db throws in
                    try Row.fetchAll(db, sql: "SELECT budget_id, amount, count FROM daily_spend")
                }
                return Dictionary(uniqueKeysWithValues: rows.map { row in
                    (row["budget_id"] as String, "\(row["amount"] as String) \(row["count"] as Int64)")
                })
            }
            let store = try Store(path: path)
            defer { store.close() }
            // Nothing logged before: straight into the table.
            try store.write { w throws in try w.logDailySpend((0..<n).map { (key($0), money("1.5"), 2) }) }
            var expected = Dictionary(uniqueKeysWithValues: (0..<n).map { ("b\($0)", "1.5 2") })
            #expect(try table() == expected)
            // A failed one: nothing of it, in the table or in what readers see.
            #expect(throws: Boom.self) {
                try store.write { w throws in
                    try w.logDailySpend((0..<n).map { (key($0), money("100"), 1) })
                    throw Boom()
                }
            }
            #expect(try table() == expected)
            // Logged first (one row), then a large commit: both in the table, the log empty.
            try store.write { w throws in try w.logDailySpend([(key(0), money("0.25"), 1)]) }
            #expect(try table() == expected)
            try store.write { w throws in try w.logDailySpend((0..<n).map { (key($0), money("1"), 1) }) }
            expected = Dictionary(uniqueKeysWithValues: (0..<n).map { ("b\($0)", "2.5 3") })
            expected["b0"] = "2.75 4"
            #expect(try table() == expected)
            let read = try store.read { r throws in try r.dailySpend(budgetIds: ["b0", "b1"], fromDay: nil, toDay: nil) }
            #expect(read.map(\.amount) == [money("2.75"), money("2.5")] && read.map(\.count) == [4, 3])
        }
    }

    @Test("a new database has 8 KiB pages; an existing one keeps its own and works on")
    func pageSizeOfNewAndExistingDatabases() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path)
            #expect(try store.pageSize() == Store.newDatabasePageSize)
            #expect(Store.newDatabasePageSize == 8192)
            store.close()
        }
        try withDatabasePath { path throws in
            // A file made with SQLite's default pages, as every database before this change was.
            let old = try DatabaseQueue(path: path)
            try old.write { db throws in
                #expect(try Int.fetchOne(db, sql: "PRAGMA page_size") == 4096)
                try db.execute(sql: "CREATE TABLE t (x)")
            }
            try old.close()
            let store = try Store(path: path)
            defer { store.close() }
            #expect(try store.pageSize() == 4096)
            let a = DailyKey(budgetId: "b", day: "2026-03-05", platform: "OpenAI", serviceType: .api)
            try store.write { w throws in try w.addDailySpend(a, amount: money("1.5"), count: 1) }
            #expect(try store.read { r throws in try r.dailySpend(budgetIds: nil, fromDay: nil, toDay: nil) }.map(\.amount) == [money("1.5")])
        }
    }

    @Test("a daily_log row is the JSON a JSONValue tree of its rows serializes to, escapes and all, and reads back as the same sums")
    func dailyLogRowText() throws {
        try withDatabasePath { path throws in
            let odd = DailyKey(budgetId: "b\"1\\", day: "2026-03-05", platform: "Plat\u{0001}ée \u{1F600}", serviceType: .scraping)
            let plain = DailyKey(budgetId: "b", day: "2026-03-04", platform: "OpenAI", serviceType: .api)
            let store = try Store(path: path)
            try store.write { w throws in try w.logDailySpend([(odd, money("-0.000000001"), 3), (plain, money("12345678901.5"), 1)]) }
            let reader = try DatabaseQueue(path: path)
            let text = try reader.read { db throws in try String.fetchOne(db, sql: "SELECT rows FROM daily_log") }
            try reader.close()
            let expected = JSONValue.array([
                .array([.string(odd.budgetId), .string(odd.day), .string(odd.platform), .string("SCRAPING"), .string("-0.000000001"), .number("3")]),
                .array([.string("b"), .string("2026-03-04"), .string("OpenAI"), .string("API"), .string("12345678901.5"), .number("1")]),
            ]).serialized()
            #expect(text == expected)
            let sums = try store.read { r throws in try r.dailySpend(budgetIds: nil, fromDay: nil, toDay: nil) }
            #expect(sums.map(\.key) == [plain, odd])
            store.close()
            // Folded at the close: the table has what the log held.
            let after = try DatabaseQueue(path: path)
            defer { try? after.close() }
            let rows = try after.read { db throws in try Row.fetchAll(db, sql: "SELECT budget_id, platform, amount, count FROM daily_spend ORDER BY day") }
            #expect(rows.map { $0[0] as String } == ["b", odd.budgetId])
            #expect(rows.map { $0[1] as String } == ["OpenAI", odd.platform])
            #expect(rows.map { $0[2] as String } == ["12345678901.5", "-0.000000001"])
            #expect(rows.map { $0[3] as Int64 } == [1, 3])
        }
    }

    @Test("rows inserted several per statement are the rows one insert each makes, in the same order; a write that fails after them keeps none, nor their keys")
    func multiRowInserts() throws {
        // 45 events (a statement of 32, one of 8, then 5 one by one: `rowsPerInsert`) and 42
        // costs (five statements of 8, then 2: `costRowsPerInsert`), every optional field both
        // set and nil, catalog versions new in the middle of a statement.
        let events: [StoredEvent] = (0..<45).map { i in
            var e = storedEvent("m\(i)", source: i % 3 == 0 ? "s-\(i % 5)" : "scraper-1",
                                state: [.allocated, .unpriced, .unallocated][i % 3], reason: i % 3 == 0 ? nil : "reason \(i) \"quoted\" ü",
                                receivedAt: "2026-03-05T12:00:\(String(format: "%02d", i))Z", cost: i % 4 == 0 ? nil : "0.00000000\(i % 10)")
            e.model = i % 5 == 0 ? nil : "gpt-\(i)"
            e.catalogVersion = i % 7 == 0 ? nil : "v\(i / 6)"
            return e
        }
        let costs: [(cost: CostRecord, createdAt: Timestamp)] = (0..<42).map { i in
            let c = CostRecord(
                id: "c_\(i)", budgetId: "b\(i % 3)", allocationId: i % 2 == 0 ? nil : "al_\(i)", platform: "OpenAI", serviceType: .api,
                costAmount: money(i % 6 == 0 ? "999999999999.999999999" : "1.\(i)"), currency: "USD",
                description: i % 4 == 0 ? "manual \(i)" : nil, costDate: t("2026-03-0\(1 + i % 9)T00:00:00Z"),
                apiUsageId: i % 3 == 0 ? "u-\(i)" : nil, apifyRunId: i % 5 == 0 ? "run-\(i)" : nil,
                eventId: i % 8 == 0 ? nil : "m\(i)", eventSource: i % 8 == 0 ? nil : "scraper-1",
                metadata: i % 2 == 0 ? ["projectId": .string("p\(i)"), "n": .number("1.50")] : nil,
                kind: i % 9 == 0 ? .credit : .cost, corrects: i % 9 == 0 ? EventRef(source: "scraper-1", id: "m\(i + 1)") : nil,
                catalogFrom: i % 10 == 0 ? "v1" : nil, catalogTo: i % 10 == 0 ? "v2" : nil
            )
            return (c, t("2026-03-10T00:00:\(String(format: "%02d", i))Z"))
        }
        func dump(_ path: String) throws -> [[String]] {
            let queue = try DatabaseQueue(path: path)
            defer { try? queue.close() }
            return try queue.read { db in
                try ["usage_events ORDER BY rowid", "cost_allocations ORDER BY rowid", "catalog_versions ORDER BY id"].flatMap { table in
                    try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map { row in row.databaseValues.map(\.description) }
                }
            }
        }
        let (one, several) = try withDatabasePath { path1 throws in
            try withDatabasePath { path2 throws in
                let single = try Store(path: path1)
                try single.write { w throws in
                    for (c, at) in costs { try w.insertCost(c, createdAt: at) }
                    for e in events { try w.insertEvent(e) }
                }
                single.close()
                let multi = try Store(path: path2)
                try multi.write { w throws in
                    try w.insertCosts(costs)
                    try w.insertEvents(events)
                }
                #expect(try multi.read { r throws in try events.map { try r.event(source: $0.source, id: $0.id) } } == events.map { Optional($0) })
                #expect(try multi.read { r throws in try costs.map { try r.cost(id: $0.cost.id) } } == costs.map { Optional($0.cost) })
                // A write that fails after two full statements and four single rows: nothing of it
                // is kept, and its keys are not found (in memory, they went with it).
                let keysBefore = multi.recentKeys.count
                #expect(throws: Boom.self) {
                    try multi.write { w throws in
                        try w.insertEvents((0..<20).map { storedEvent("d\($0)") })
                        #expect(try w.findEvent(source: "scraper-1", id: "d19") != nil)
                        throw Boom()
                    }
                }
                #expect(multi.recentKeys.count == keysBefore)
                #expect(try multi.read { r throws in try r.event(source: "scraper-1", id: "d0") } == nil)
                #expect(try multi.write { w throws in try w.findEvent(source: "scraper-1", id: "d19") } == nil)
                multi.close()
                return (try dump(path1), try dump(path2))
            }
        }
        #expect(one.count == events.count + costs.count + Set(events.compactMap(\.catalogVersion)).count)
        #expect(one == several)
    }

    /// EventKeys.swift: keys in memory (and the active recent-keys table), sealed once there are
    /// `keysPerGeneration`, copied into a generation of `event_keys` a step per transaction.
    @Test("events are found by key in memory, while their set is sealed and copied, in each generation, in this transaction, and after a reopen (also mid-copy); a key whose row is gone finds nothing, nor does a row that took its number")
    func keysAcrossGenerations() throws {
        try withDatabasePath { path throws in
            var store = try Store(path: path, keysPerGeneration: 5, keysPerStep: 2)
            /// One transaction per event (a step copies twice the events of the transaction before).
            func insert(_ range: Range<Int>) throws {
                for i in range { try store.write { w throws in try w.insertEvent(storedEvent("g\(i)")) } }
            }
            /// A transaction that writes nothing of its own: one step of the copy.
            func step() throws { try store.write { _ throws in } }
            func found(_ s: Store, upTo n: Int = 12) throws -> [String?] {
                let lookup = try s.makeEventLookup()
                defer { lookup.close() }
                let byLookup = try (0..<n).map { try lookup.find(source: "scraper-1", id: "g\($0)")?.body }
                let byReader = try s.read { r throws in try (0..<n).map { try r.event(source: "scraper-1", id: "g\($0)")?.body } }
                let byWriter = try s.write { w throws in try (0..<n).map { try w.findEvent(source: "scraper-1", id: "g\($0)")?.body } }
                #expect(byLookup == byReader)
                #expect(byWriter == byReader)
                #expect(try lookup.find(source: "scraper-2", id: "g1") == nil)
                return byLookup
            }
            func bodies(_ range: Range<Int>, upTo n: Int = 12) -> [String?] {
                (0..<n).map { range.contains($0) ? storedEvent("g\($0)").body : nil }
            }
            try insert(0..<5)
            #expect(store.recentKeys.activeCount == 5)
            // The next transaction seals the five keys and copies two (then `found`, which writes,
            // two more, and a step the last one); they are found throughout.
            try insert(5..<6)
            #expect(store.recentKeys.activeCount == 1)
            #expect(store.recentKeys.count == 6)
            #expect(try found(store) == bodies(0..<6))
            #expect(store.recentKeys.generations == 0)
            try step()
            #expect(store.recentKeys.generations == 1)
            #expect(try found(store) == bodies(0..<6))
            #expect(store.recentKeys.count == 6)
            store.recentKeys.dropRetired()
            #expect(store.recentKeys.count == 1)
            #expect(try found(store) == bodies(0..<6))
            // A second generation; then a copy interrupted by a reopen (it starts over).
            try insert(6..<10)
            for _ in 0..<3 { try step() }  // seals g5…g9 and copies 2, 2, 1
            #expect(store.recentKeys.generations == 2)
            store.recentKeys.dropRetired()
            try insert(10..<15)
            try step()  // seals g10…g14, copies two of them
            // This transaction's own rows, before it commits (and two more copied).
            try store.write { w throws in
                try w.insertEvent(storedEvent("g15"))
                #expect(try w.findEvent(source: "scraper-1", id: "g15")?.body == storedEvent("g15").body)
            }
            #expect(store.recentKeys.generations == 2)
            store.close()
            store = try Store(path: path, keysPerGeneration: 5, keysPerStep: 2)
            #expect(store.recentKeys.generations == 2)
            #expect(store.recentKeys.count == 6)
            #expect(store.recentKeys.activeCount == 1)
            #expect(try found(store, upTo: 17) == bodies(0..<16, upTo: 17))  // copies 2 (of 5, from the start)
            for _ in 0..<2 { try step() }
            #expect(store.recentKeys.generations == 3)
            store.recentKeys.dropRetired()
            #expect(try found(store, upTo: 17) == bodies(0..<16, upTo: 17))
            store.close()
            let raw = try DatabaseQueue(path: path)
            let (counts, newest) = try raw.write { db throws -> ([Int], Int64) in
                let counts = try (0..<3).map { try Int.fetchOne(db, sql: "SELECT count(*) FROM event_keys WHERE gen = ?", arguments: [$0]) ?? -1 }
                // Rows deleted (one of generation 0, the newest one in memory): their keys find
                // nothing; a new row that takes the largest number again is found by its own key only.
                try db.execute(sql: "DELETE FROM usage_events WHERE event_id IN ('g2', 'g15')")
                return (counts, try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM usage_events") ?? 0)
            }
            try raw.close()
            #expect(counts == [5, 5, 5])
            store = try Store(path: path, keysPerGeneration: 5, keysPerStep: 2)
            defer { store.close() }
            try insert(16..<17)
            let check = try DatabaseQueue(path: path)
            let rowOfG16 = try check.read { db in try Int64.fetchOne(db, sql: "SELECT rowid FROM usage_events WHERE event_id = 'g16'") }
            try check.close()
            #expect(rowOfG16 == newest + 1)
            var expected = bodies(0..<17, upTo: 17)
            expected[2] = nil
            expected[15] = nil
            #expect(try found(store, upTo: 17) == expected)
        }
    }

    @Test("a step of the copy takes twice the events of the transaction before, so the copy keeps up with what comes in")
    func stepsFollowTheLoad() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path, keysPerGeneration: 10, keysPerStep: 1)
            defer { store.close() }
            for i in 0..<10 { try store.write { w throws in try w.insertEvent(storedEvent("s\(i)")) } }
            // Sealed; the transaction before had one event: two copied. This one has six.
            try store.write { w throws in for i in 10..<16 { try w.insertEvent(storedEvent("s\(i)")) } }
            #expect(store.recentKeys.generations == 0)
            let partial = try store.read { r throws in try r.event(source: "scraper-1", id: "s0") }
            #expect(partial != nil)
            try store.write { _ throws in }  // twelve at most: the eight left
            #expect(store.recentKeys.generations == 1)
            store.recentKeys.dropRetired()
            #expect(store.recentKeys.count == 6)
        }
    }

    @Test("a large sealed set is sorted on a thread of its own: transactions copy nothing until it is sorted, its keys are found meanwhile, and the generation it makes is complete and sorted")
    func sealedKeysSortedInBackground() throws {
        try withDatabasePath { path throws in
            // Every sealed set is sorted in the background (backgroundSortKeys: 0).
            let store = try Store(path: path, keysPerGeneration: 300, keysPerStep: 64, backgroundSortKeys: 0)
            defer { store.close() }
            try store.write { w throws in for i in 0..<300 { try w.insertEvent(storedEvent("b\(i)")) } }
            try store.write { w throws in try w.insertEvent(storedEvent("b300")) }  // seals
            #expect(store.recentKeys.activeCount == 1)
            #expect(store.recentKeys.count == 301)
            // Steps until the generation is complete (the sort may finish at once or not).
            var steps = 0
            while store.recentKeys.generations == 0 && steps < 10_000 {
                try store.write { _ throws in }
                steps += 1
                if steps % 100 == 0 { Thread.sleep(forTimeInterval: 0.001) }
            }
            #expect(store.recentKeys.generations == 1)
            store.recentKeys.dropRetired()
            #expect(store.recentKeys.count == 1)
            let lookup = try store.makeEventLookup()
            defer { lookup.close() }
            for i in 0...300 { #expect(try lookup.find(source: "scraper-1", id: "b\(i)")?.body == storedEvent("b\(i)").body) }
            #expect(try lookup.find(source: "scraper-1", id: "b301") == nil)
            let check = try DatabaseQueue(path: path)
            defer { try? check.close() }
            // The generation holds each of the 300 sealed keys once, under its event's hash and row.
            let (copied, expected) = try check.read { db throws in
                let copied = try Row.fetchAll(db, sql: "SELECT h, event_rowid FROM event_keys WHERE gen = 0").map { "\($0[0] as Int64)/\($0[1] as Int64)" }
                let expected = try Row.fetchAll(db, sql: "SELECT rowid, source, event_id FROM usage_events WHERE event_id <> 'b300'").map {
                    "\(EventKeyHash.of(source: $0[1], id: $0[2]))/\($0[0] as Int64)"
                }
                return (copied, expected)
            }
            #expect(copied.count == 300)
            #expect(Set(copied) == Set(expected))
        }
    }

    /// Bookings.swift: a budget's bookings pending in memory, sealed every `bookingsPerSet`,
    /// copied into `booking_index` a step per transaction; listed from the index up to its
    /// `through` and from the rows after it.
    @Test("a budget's costs booked in event rows are listed alike while pending, sealed, half copied and copied into booking_index, after a failed transaction and a reopen, by page and by time range")
    func bookingsAcrossSets() throws {
        try withDatabasePath { path throws in
            var store = try Store(path: path, keysPerStep: 2, bookingsPerSet: 5)
            let budgets = ["b1", "b2", "b3"]
            let start = t("2026-03-05T12:00:00Z").nanosecondsSinceEpoch
            // Times out of row order, some equal: the listing orders by time, then row.
            func booked(_ i: Int) -> StoredEvent { bookedEvent("k\(i)", budget: budgets[i % 3], seconds: Int64((i * 7) % 11) * 60) }
            var rows: [(row: Int64, event: StoredEvent)] = []
            func insert(_ range: Range<Int>) throws {
                for i in range {
                    try store.write { w throws in try w.insertEvent(booked(i)) }
                    rows.append((Int64(rows.count + 1), booked(i)))
                }
            }
            /// Event ids of a budget's costs, newest first, as the store lists them and as they must be.
            func check(_ label: String, from: Timestamp? = nil, to: Timestamp? = nil) throws {
                for b in budgets {
                    let listed = try store.read { r throws in try r.costs(budgetId: b, from: from, to: to, limit: 1_000) }.map { $0.eventId ?? "?" }
                    let lo = from ?? Timestamp(nanosecondsSinceEpoch: .min), hi = to ?? Timestamp(nanosecondsSinceEpoch: .max)
                    let mine = rows.filter { r in r.event.budgetId == b && r.event.time >= lo && r.event.time <= hi }
                    let ordered = mine.sorted { x, y in
                        x.event.time != y.event.time ? x.event.time > y.event.time : x.row > y.row
                    }
                    let expected = ordered.map { r in r.event.id }
                    #expect(listed == expected, "\(label), budget \(b)")
                    // Page by page (two at a time), the same list.
                    var paged: [String] = []
                    var cursor: PageCursor?
                    repeat {
                        let page = try store.read { r throws in try r.costsPage(budgetId: b, from: from, to: to, limit: 2, after: cursor) }
                        paged += page.items.map { $0["eventId"]?.stringValue ?? "?" }
                        cursor = page.nextCursor
                    } while cursor != nil && paged.count <= rows.count
                    #expect(paged == expected, "\(label), budget \(b), by page")
                }
            }
            func through(_ s: Store) throws -> Int64 {
                let check = try DatabaseQueue(path: path)
                defer { try? check.close() }
                return try check.read { db in try Int64.fetchOne(db, sql: "SELECT through FROM booking_state") ?? -1 }
            }
            try insert(0..<4)
            try check("pending")
            #expect(try through(store) == 0)
            for n in 4..<12 {
                try insert(n..<(n + 1))
                try check("after k\(n)")
            }
            // Sets of five, copied two a transaction: the first set is in the index by now.
            #expect(try through(store) >= 5)
            // A failed transaction (it would have copied a step) changes nothing.
            #expect(throws: Boom.self) { try store.write { w throws in try w.insertEvent(booked(99)); throw Boom() } }
            try check("after a failed transaction")
            try insert(12..<14)
            // Mid-copy: closed and opened again, the bookings after `through` are read back.
            store.close()
            store = try Store(path: path, keysPerStep: 2, bookingsPerSet: 5)
            try check("reopened")
            try insert(14..<31)
            try check("after 31 events")
            try check("a time range", from: Timestamp(nanosecondsSinceEpoch: start + 3 * 60_000_000_000), to: Timestamp(nanosecondsSinceEpoch: start + 7 * 60_000_000_000))
            let last = try through(store)
            #expect(last >= 25 && last <= 31)
            let check = try DatabaseQueue(path: path)
            defer { try? check.close() }
            let (entries, bookedRows) = try check.read { db throws in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM booking_index WHERE event_rowid <= ?", arguments: [last]) ?? -1,
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM usage_events WHERE rowid <= ? AND booked IS NOT NULL", arguments: [last]) ?? -2)
            }
            #expect(entries == bookedRows)
            store.close()
        }
    }

    @Test("rows deleted while their bookings wait to be copied (retention, by hand) leave entries that find nothing: pages stay full and follow each other; a run of rows without bookings seals a set too")
    func bookingsOfDeletedRows() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path, keysPerStep: 100, bookingsPerSet: 6)
            defer { store.close() }
            func booked(_ i: Int) -> StoredEvent { bookedEvent("d\(i)", seconds: Int64(i)) }
            for i in 0..<4 { try store.write { w throws in try w.insertEvent(booked(i)) } }
            // Rows 1 and 3 go while their bookings are pending in memory.
            let raw = try DatabaseQueue(path: path)
            try raw.write { db in try db.execute(sql: "DELETE FROM usage_events WHERE rowid IN (1, 3)") }
            for i in 4..<12 { try store.write { w throws in try w.insertEvent(booked(i)) } }
            let (entries, through) = try raw.read { db throws in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM booking_index") ?? -1,
                 try Int64.fetchOne(db, sql: "SELECT through FROM booking_state") ?? -1)
            }
            #expect(through >= 6)
            #expect(entries >= 6)  // stale ones included
            let expected = (0..<12).filter { $0 != 0 && $0 != 2 }.reversed().map { "d\($0)" }
            #expect(try store.read { r throws in try r.costs(budgetId: "b", from: nil, to: nil, limit: 100) }.map { $0.eventId ?? "?" } == expected)
            var paged: [String] = []
            var cursor: PageCursor?
            repeat {
                let page = try store.read { r throws in try r.costsPage(budgetId: "b", from: nil, to: nil, limit: 3, after: cursor) }
                #expect(page.items.count == 3 || page.nextCursor == nil)
                paged += page.items.map { $0["eventId"]?.stringValue ?? "?" }
                cursor = page.nextCursor
            } while cursor != nil && paged.count < 100
            #expect(paged == expected)
            // Unbooked rows (unpriced events) count towards a set: `through` moves on without bookings.
            for i in 0..<13 { try store.write { w throws in try w.insertEvent(storedEvent("u\(i)", state: .unpriced)) } }
            let after = try raw.read { db in try Int64.fetchOne(db, sql: "SELECT through FROM booking_state") ?? -1 }
            #expect(after >= 18)
            try raw.close()
        }
    }

    /// The watchdog's tick reaches retention's row-copying loop: its statements are short, and
    /// SQLite's progress handler counts each statement's own steps, so without a tick from the
    /// loop itself the daemon went ~0.35 s without a ping per 10,000 rows here (0.7 s on CI,
    /// past a 1 s watchdog's limit with the interval's 0.5 s).
    @Test("retention's row-copying loop calls the store's statement tick every 256 rows")
    func retentionTicksWhileCopyingRows() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path)
            defer { store.close() }
            let rows = 3_000
            try store.write { w throws in
                for i in 0..<rows { try w.insertEvent(bookedEvent("w\(i)", receivedAt: "2026-01-01T00:00:00Z")) }
                try w.insertEvent(bookedEvent("young", receivedAt: "2026-03-05T12:00:01Z"))
            }
            let ticks = TickCount()
            store.whileStatementsRun { ticks.value.add(1, ordering: .relaxed) }
            let cutoff = t("2026-02-01T00:00:00Z")
            #expect(try store.write { w throws in try w.prune(eventsBefore: cutoff, othersBefore: cutoff) }.usageEvents == rows)
            // Rows 0, 256, …, 2,816 of the one page: 12 from the loop, any more from SQLite's handler.
            #expect(ticks.value.load(ordering: .relaxed) >= rows / 256 + 1)
        }
    }

    @Test("retention forgets the bookings of the rows it prunes that are not in booking_index yet, pending or in the set being copied: no entry is left for them")
    func retentionForgetsPendingBookings() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path, keysPerStep: 1, bookingsPerSet: 6)
            defer { store.close() }
            func booked(_ i: Int) -> StoredEvent { bookedEvent("r\(i)", receivedAt: i < 6 ? "2026-01-01T00:00:00Z" : "2026-03-05T12:00:01Z") }
            for i in 0..<6 { try store.write { w throws in try w.insertEvent(booked(i)) } }
            // This transaction seals rows 1…6 and copies two of them (rows 1 and 2); then retention
            // prunes rows 1…5 (the newest row stays): the entries of 1 and 2 are deleted, 3…5 skipped.
            let cutoff = t("2026-02-01T00:00:00Z")
            let counts = try store.write { w throws in try w.prune(eventsBefore: cutoff, othersBefore: cutoff) }
            #expect(counts.usageEvents == 5)
            for i in 6..<12 { try store.write { w throws in try w.insertEvent(booked(i)) } }
            let raw = try DatabaseQueue(path: path)
            defer { try? raw.close() }
            let (entries, through) = try raw.read { db throws in
                (try Int64.fetchAll(db, sql: "SELECT event_rowid FROM booking_index ORDER BY event_rowid"),
                 try Int64.fetchOne(db, sql: "SELECT through FROM booking_state") ?? -1)
            }
            #expect(through == 6)
            #expect(entries == [6])
            // Every cost listed once: r0…r4 moved into cost rows, r5…r11 booked in their rows.
            let listed = try store.read { r throws in try r.costs(budgetId: "b", from: nil, to: nil, limit: 100) }
            #expect(listed.compactMap(\.eventId).sorted() == (0..<12).map { "r\($0)" }.sorted())
        }
        // Rows pruned while their bookings are pending (no set sealed yet) are forgotten too.
        try withDatabasePath { path throws in
            let store = try Store(path: path, keysPerStep: 1, bookingsPerSet: 6)
            defer { store.close() }
            func booked(_ i: Int, old: Bool) -> StoredEvent { bookedEvent("p\(i)", receivedAt: old ? "2026-01-01T00:00:00Z" : "2026-03-05T12:00:01Z") }
            for i in 0..<4 { try store.write { w throws in try w.insertEvent(booked(i, old: true)) } }
            let cutoff = t("2026-02-01T00:00:00Z")
            #expect(try store.write { w throws in try w.prune(eventsBefore: cutoff, othersBefore: cutoff) }.usageEvents == 3)
            for i in 4..<14 { try store.write { w throws in try w.insertEvent(booked(i, old: false)) } }
            let raw = try DatabaseQueue(path: path)
            defer { try? raw.close() }
            let entries = try raw.read { db in try Int64.fetchAll(db, sql: "SELECT event_rowid FROM booking_index ORDER BY event_rowid") }
            #expect(!entries.isEmpty)
            #expect(entries.allSatisfy { $0 >= 4 }, "\(entries)")
        }
    }

    @Test("the migration to booking_index puts every booking stored before into it, drops the index of event rows by budget, and lists a budget's costs as before")
    func migrationToBookingIndex() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path)
            let start = t("2026-03-05T12:00:00Z").nanosecondsSinceEpoch
            try store.write { w throws in
                for i in 0..<40 {
                    var e = storedEvent("m\(i)")
                    e.budgetId = i % 4 == 3 ? nil : "b\(i % 2)"
                    e.state = e.budgetId == nil ? .unallocated : .allocated
                    e.time = Timestamp(nanosecondsSinceEpoch: start + Int64(i % 7) * 1_000_000_000)
                    e.booked = e.budgetId != nil
                    e.costAllocationId = nil
                    try w.insertEvent(e)
                }
            }
            let listed = try ["b0", "b1"].map { b in try store.read { r throws in try r.costs(budgetId: b, from: nil, to: nil, limit: 100) }.map(\.id) }
            store.close()
            // The schema before v14: the partial index of event rows by budget and time.
            let raw = try DatabaseQueue(path: path)
            try raw.write { db throws in
                try db.execute(sql: """
                    DROP TABLE booking_index;
                    DROP TABLE booking_state;
                    CREATE INDEX usage_events_booked ON usage_events(budget_id, event_time) WHERE booked IS NOT NULL;
                    DELETE FROM grdb_migrations WHERE identifier = 'v14-booking-index';
                    """)
            }
            try raw.close()
            let migrated = try Store(path: path, bookingsPerSet: 1_000)
            defer { migrated.close() }
            #expect(migrated.backupPath == path + ".pre-v14-booking-index.bak")
            let check = try DatabaseQueue(path: path)
            defer { try? check.close() }
            let (entries, through, oldIndex) = try check.read { db throws in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM booking_index") ?? -1,
                 try Int64.fetchOne(db, sql: "SELECT through FROM booking_state") ?? -1,
                 try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE name = 'usage_events_booked'") ?? -1)
            }
            #expect(entries == 30)
            #expect(through == 40)
            #expect(oldIndex == 0)
            let after = try ["b0", "b1"].map { b in try migrated.read { r throws in try r.costs(budgetId: b, from: nil, to: nil, limit: 100) }.map(\.id) }
            #expect(after == listed)
            #expect(after.map(\.count) == [20, 10])
        }
    }

    @Test("a failed transaction undoes its seal and its step of the copy")
    func failedStepsOfTheCopy() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path, keysPerGeneration: 3, keysPerStep: 2)
            defer { store.close() }
            for i in 0..<3 { try store.write { w throws in try w.insertEvent(storedEvent("f\(i)")) } }
            #expect(throws: Boom.self) { try store.write { _ throws in throw Boom() } }  // sealed, then undone
            #expect(store.recentKeys.activeCount == 3)
            try store.write { _ throws in }  // sealed, two copied
            #expect(throws: Boom.self) { try store.write { _ throws in throw Boom() } }  // the last one, undone
            #expect(store.recentKeys.generations == 0)
            try store.write { _ throws in }
            #expect(store.recentKeys.generations == 1)
            store.recentKeys.dropRetired()
            #expect(store.recentKeys.count == 0)
            let lookup = try store.makeEventLookup()
            defer { lookup.close() }
            for i in 0..<3 { #expect(try lookup.find(source: "scraper-1", id: "f\(i)")?.body == storedEvent("f\(i)").body) }
        }
    }

    @Test("the migration to event keys keeps every row, its number and its cost id, and finds each event by its key")
    func migrationToEventKeys() throws {
        try withDatabasePath { path throws in
            let store = try Store(path: path)
            try store.write { w throws in for i in 0..<30 { try w.insertEvent(storedEvent("k\(i)", source: "s\(i % 3)")) } }
            // Keys the migration must hash byte for byte: a NUL inside, an empty source.
            let odd = [storedEvent("a\u{0}b", source: "s0"), storedEvent("z", source: ""), storedEvent("a", source: "s0")]
            try store.write { w throws in for e in odd { try w.insertEvent(e) } }
            store.close()
            // The schema before v13: the key index of texts, no key tables.
            let raw = try DatabaseQueue(path: path)
            let before = try raw.write { db throws -> [Row] in
                try db.execute(sql: """
                    DROP TABLE event_keys;
                    DROP TABLE recent_keys_0;
                    DROP TABLE recent_keys_1;
                    DROP TABLE key_state;
                    CREATE TABLE old_events AS SELECT * FROM usage_events;
                    DELETE FROM usage_events WHERE event_id = 'k7';
                    CREATE UNIQUE INDEX old_unique ON usage_events(source, event_id);
                    DELETE FROM grdb_migrations WHERE identifier = 'v13-event-keys';
                    DROP TABLE old_events;
                    """)
                return try Row.fetchAll(db, sql: "SELECT * FROM usage_events ORDER BY rowid")
            }
            try raw.close()
            let migrated = try Store(path: path)
            defer { migrated.close() }
            #expect(migrated.backupPath == path + ".pre-v13-event-keys.bak")
            #expect(migrated.recentKeys.generations == 1)
            #expect(migrated.recentKeys.count == 0)
            let check = try DatabaseQueue(path: path)
            let after = try check.read { db in try Row.fetchAll(db, sql: "SELECT * FROM usage_events ORDER BY rowid") }
            let keys = try check.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM event_keys WHERE gen = 0") }
            let unique = try check.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'usage_events' AND sql LIKE '%UNIQUE%'") }
            try check.close()
            #expect(keys == 32)
            #expect(unique == 0)
            #expect(after == before)
            #expect(after.count == 32)
            let lookup = try migrated.makeEventLookup()
            defer { lookup.close() }
            for i in 0..<30 {
                let body = try lookup.find(source: "s\(i % 3)", id: "k\(i)")?.body
                #expect(body == (i == 7 ? nil : storedEvent("k\(i)", source: "s\(i % 3)").body), "k\(i)")
                #expect(try lookup.find(source: "s\((i + 1) % 3)", id: "k\(i)") == nil)
            }
            for e in odd { #expect(try lookup.find(source: e.source, id: e.id)?.body == e.body, "\(e.source)/\(e.id)") }
            #expect(try lookup.find(source: "s0", id: "a\u{0}c") == nil)
        }
    }

    @Test("a write that throws midway commits nothing")
    func atomicWrite() throws {
        try withStore { store, _ throws in
            var ledger = Ledger()
            ledger.settings.lowBudgetMinElapsedHours = 1_000_000  // these bookings would legitimately run low
            _ = try ledger.createBudget(Args(["name": "B", "budgetType": "MONTHLY", "totalAmount": 100, "startDate": "2026-03-01"]), id: "b", at: t("2026-03-01T00:00:00Z"))
            let messages = ledger.book(amount: money("90"), budgetId: "b", platform: "OpenAI", serviceType: .api, eventId: "e1", at: t("2026-03-05T00:00:00Z")).messages
            #expect(messages.count == 2)
            #expect(throws: Boom.self) {
                try store.write { w throws in
                    try w.saveBudget(ledger["b"]!)
                    try w.insertEvent(storedEvent("e1"))
                    for m in messages { try w.insertOutbound(m, at: t("2026-03-05T00:00:00Z")) }
                    try w.insertRejected(RejectedMessage(receivedAt: t("2026-03-05T00:00:00Z"), socket: "ingest", topic: "usage", source: nil, id: nil, reason: "x", body: [1, 2]))
                    throw Boom()
                }
            }
            try store.read { r throws in
                #expect(try r.budgets().isEmpty)
                #expect(try r.lastSeq() == 0)
                #expect(try r.eventCounts() == [.rejected: 0])
                #expect(try r.alerts(budgetId: nil, unresolvedOnly: false, sinceSeq: 0, limit: 10).isEmpty)
            }
            // The same write without the throw commits all of it.
            try store.write { w throws in
                try w.saveBudget(ledger["b"]!)
                for m in messages { try w.insertOutbound(m, at: t("2026-03-05T00:00:00Z")) }
            }
            #expect(try store.read { try $0.lastSeq() } == 2)
        }
    }

    @Test("outbound messages are kept in seq order and lastSeq survives reopening the file")
    func outboundAndLastSeq() throws {
        try withDatabasePath { path throws in
            var ledger = Ledger(lastSeq: 0)
            ledger.settings.lowBudgetMinElapsedHours = 1_000_000  // these bookings would legitimately run low
            _ = try ledger.createBudget(Args(["name": "B", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01"]), id: "b", at: t("2026-03-01T00:00:00Z"))
            let messages = ledger.book(amount: money("1200"), budgetId: "b", platform: "OpenAI", serviceType: .api, eventId: "e1", at: t("2026-03-05T00:00:00Z")).messages
            #expect(messages.map(\.seq) == [1, 2, 3, 4, 5])
            let store = try Store(path: path)
            try store.write { w throws in for m in messages { try w.insertOutbound(m, at: t("2026-03-05T00:00:00Z")) } }
            store.close()

            let reopened = try Store(path: path)
            defer { reopened.close() }
            try reopened.read { r throws in
                #expect(try r.lastSeq() == 5)
                let after3 = try r.outbound(sinceSeq: 3, limit: 100)
                #expect(after3.map(\.seq) == [4, 5])
                #expect(after3.map(\.topic) == ["alert.BUDGET_EXCEEDED", "status.EXCEEDED"])
                #expect(try JSON.parse(after3[1].payload) == messages[4].payload)
                #expect(try r.outbound(sinceSeq: 0, limit: 2).map(\.seq) == [1, 2])
                #expect(try r.outbound(sinceSeq: 5, limit: 100).isEmpty)
            }
            // Numbering resumes after the stored seq.
            var resumed = Ledger(budgets: try reopened.read { try $0.budgets() }, lastSeq: try reopened.read { try $0.lastSeq() })
            resumed.settings.lowBudgetMinElapsedHours = 1_000_000  // these bookings would legitimately run low
            _ = try resumed.createBudget(Args(["name": "C", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-03-01"]), id: "c", at: t("2026-03-01T00:00:00Z"))
            let next = resumed.book(amount: money("8"), budgetId: "c", platform: "OpenAI", serviceType: .api, eventId: nil, at: t("2026-03-05T00:00:00Z")).messages
            #expect(next.map(\.seq) == [6])
            try reopened.write { w throws in for m in next { try w.insertOutbound(m, at: t("2026-03-05T00:00:00Z")) } }
            #expect(try reopened.read { try $0.lastSeq() } == 6)
        }
    }

    @Test("retention keeps the newest outbound message, so lastSeq survives a pruning of them all; a database pruned whole before that rule resumes after its alerts")
    func lastSeqSurvivesRetention() throws {
        try withDatabasePath { path throws in
            var ledger = Ledger(lastSeq: 0)
            ledger.settings.lowBudgetMinElapsedHours = 1_000_000
            _ = try ledger.createBudget(Args(["name": "B", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01"]), id: "b", at: t("2026-03-01T00:00:00Z"))
            // Seq 1–5: THRESHOLD_80, _90, _100, BUDGET_EXCEEDED, status.EXCEEDED (the last not an alert).
            let messages = ledger.book(amount: money("1200"), budgetId: "b", platform: "OpenAI", serviceType: .api, eventId: "e1", at: t("2026-03-05T00:00:00Z")).messages
            #expect(messages.map(\.topic).last == "status.EXCEEDED")
            let store = try Store(path: path)
            try store.write { w throws in for m in messages { try w.insertOutbound(m, at: t("2026-03-05T00:00:00Z")) } }
            let cutoff = t("2026-04-01T00:00:00Z")
            #expect(try store.write { w throws in try w.prune(eventsBefore: cutoff, othersBefore: cutoff) }.outbound == 4)
            #expect(try store.write { w throws in try w.prune(eventsBefore: cutoff, othersBefore: cutoff) }.outbound == 0)
            store.close()
            let reopened = try Store(path: path)
            try reopened.read { r throws in
                #expect(try r.outbound(sinceSeq: 0, limit: 100).map(\.seq) == [5])
                #expect(try r.lastSeq() == 5)
            }
            reopened.close()
            // Every outbound row gone (as retention did until the seventeenth session): the
            // alerts, never pruned, still hold seq 1–4.
            let raw = try DatabaseQueue(path: path)
            try raw.write { db in try db.execute(sql: "DELETE FROM outbound") }
            try raw.close()
            let legacy = try Store(path: path)
            defer { legacy.close() }
            #expect(try legacy.read { try $0.lastSeq() } == 4)
        }
    }
    @Test("alerts are listed by sinceSeq, budget and unresolved, and resolved once")
    func alerts() throws {
        try withStore { store, _ throws in
            var ledger = Ledger()
            ledger.settings.lowBudgetMinElapsedHours = 1_000_000  // these bookings would legitimately run low
            _ = try ledger.createBudget(Args(["name": "B", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2026-03-01"]), id: "b", at: t("2026-03-01T00:00:00Z"))
            _ = try ledger.createBudget(Args(["name": "O", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-03-01"]), id: "o", at: t("2026-03-01T00:00:00Z"))
            var messages = ledger.book(amount: money("1200"), budgetId: "b", platform: "OpenAI", serviceType: .api, eventId: "e1", at: t("2026-03-05T00:00:00Z")).messages
            messages += ledger.book(amount: money("8"), budgetId: "o", platform: "OpenAI", serviceType: .api, eventId: "e2", at: t("2026-03-05T00:00:00Z")).messages
            try store.write { w throws in for m in messages { try w.insertOutbound(m, at: t("2026-03-05T00:00:00Z")) } }
            let alertIds = messages.compactMap { if case .alert(let a) = $0 { a.id } else { nil } }
            #expect(alertIds.count == 5)

            try store.read { r throws in
                let all = try r.alerts(budgetId: nil, unresolvedOnly: false, sinceSeq: 0, limit: 1000)
                // The status event (seq 5) is not an alert.
                #expect(texts(all, "seq") == ["1", "2", "3", "4", "6"])
                #expect(texts(all, "type") == ["THRESHOLD_80", "THRESHOLD_90", "THRESHOLD_100", "BUDGET_EXCEEDED", "THRESHOLD_80"])
                #expect(all.allSatisfy { $0["resolved"] == .bool(false) && $0["resolvedAt"] == .null })
                #expect(all.first?["spentAmount"] == .number("1200"))
                #expect(texts(try r.alerts(budgetId: nil, unresolvedOnly: false, sinceSeq: 2, limit: 1000), "seq") == ["3", "4", "6"])
                #expect(try r.alerts(budgetId: nil, unresolvedOnly: false, sinceSeq: 0, limit: 2).count == 2)
                #expect(texts(try r.alerts(budgetId: "o", unresolvedOnly: false, sinceSeq: 0, limit: 1000), "budgetId") == ["o"])
                #expect(try r.alerts(budgetId: "nobody", unresolvedOnly: false, sinceSeq: 0, limit: 1000).isEmpty)
            }

            let resolved = try store.write { w throws in try w.resolveAlert(id: alertIds[1], at: t("2026-03-06T00:00:00Z")) }
            #expect(resolved?["resolved"] == .bool(true))
            #expect(resolved?["resolvedAt"] == .string("2026-03-06T00:00:00Z"))
            #expect(resolved?["type"] == .string("THRESHOLD_90"))
            // Resolving again keeps the first time.
            let again = try store.write { w throws in try w.resolveAlert(id: alertIds[1], at: t("2026-03-07T00:00:00Z")) }
            #expect(again?["resolvedAt"] == .string("2026-03-06T00:00:00Z"))
            #expect(try store.write { w throws in try w.resolveAlert(id: "a_nope", at: t("2026-03-07T00:00:00Z")) } == nil)

            try store.read { r throws in
                let unresolved = try r.alerts(budgetId: nil, unresolvedOnly: true, sinceSeq: 0, limit: 1000)
                #expect(texts(unresolved, "seq") == ["1", "3", "4", "6"])
                #expect(try r.alert(id: alertIds[1])?["resolved"] == .bool(true))
            }
        }
    }

    @Test("rejected messages are listed newest first with their reason, the body cut to 4096 bytes")
    func rejectedMessages() throws {
        try withStore { store, _ throws in
            let big = [UInt8](repeating: UInt8(ascii: "x"), count: 5000)
            let first = RejectedMessage(
                receivedAt: t("2026-03-05T12:00:00Z"), socket: "ingest-ack", topic: "usage", source: "s1", id: "e1",
                reason: "missing field: platform", body: Array(#"{"id":"e1"}"#.utf8)
            )
            let second = RejectedMessage(
                receivedAt: t("2026-03-05T12:00:02Z"), socket: "ingest", topic: "usage.openai", source: nil, id: nil,
                reason: "oversized", body: big
            )
            try store.write { w throws in
                try w.insertRejected(first)
                try w.insertEvent(storedEvent("ok", receivedAt: "2026-03-05T12:00:01Z"))
                try w.insertRejected(second)
            }
            try store.read { r throws in
                let rejected = try r.events(state: .rejected, limit: 100)
                #expect(texts(rejected, "reason") == ["oversized", "missing field: platform"])
                #expect(rejected.allSatisfy { $0["state"] == .string("REJECTED") })
                #expect(rejected[0]["body"]?.stringValue?.utf8.count == 4096)
                #expect(rejected[0]["bodySize"] == .number("5000"))
                #expect(rejected[0]["id"] == .null)
                #expect(rejected[0]["socket"] == .string("ingest"))
                #expect(rejected[0]["topic"] == .string("usage.openai"))
                #expect(rejected[1]["body"] == .string(#"{"id":"e1"}"#))
                #expect(rejected[1]["bodySize"] == .number("11"))
                #expect(rejected[1]["id"] == .string("e1"))
                #expect(rejected[1]["source"] == .string("s1"))
                #expect(rejected[1]["receivedAt"] == .string("2026-03-05T12:00:00Z"))
                #expect(texts(try r.events(state: .rejected, limit: 1), "reason") == ["oversized"])
                // All states together, newest first by the time received.
                let all = try r.events(state: nil, limit: 100)
                #expect(texts(all, "state") == ["REJECTED", "ALLOCATED", "REJECTED"])
                #expect(try r.eventCounts() == [.allocated: 1, .rejected: 2])
                // A state filter other than REJECTED lists no dead letters.
                #expect(try r.events(state: .allocated, limit: 100).count == 1)
            }
        }
        // The cut happens where the message is made, so nothing over 4096 bytes is ever kept.
        #expect(RejectedMessage.keptBodyBytes == 4096)
    }

    @Test("cost allocations round-trip and are listed newest first within [from, to]")
    func costs() throws {
        try withStore { store, _ throws in
            func cost(_ id: String, _ date: String, _ amount: String, metadata: JSONObject? = nil) -> CostRecord {
                CostRecord(
                    id: id, budgetId: "b", allocationId: id == "c1" ? "al_1" : nil, platform: "OpenAI", serviceType: .api,
                    costAmount: money(amount), currency: "USD", description: id == "c2" ? "manual" : nil, costDate: t(date),
                    apiUsageId: "u-\(id)", apifyRunId: nil, eventId: id == "c3" ? nil : "e-\(id)", eventSource: "s", metadata: metadata
                )
            }
            let c1 = cost("c1", "2026-03-01T00:00:00Z", "1000000000000", metadata: ["projectId": "p", "n": .number("1.50")])
            let c2 = cost("c2", "2026-03-02T00:00:00Z", "0.000000001")
            let c3 = cost("c3", "2026-03-03T00:00:00Z", "123.456789012")
            try store.write { w throws in for c in [c2, c3, c1] { try w.insertCost(c, createdAt: t("2026-03-04T00:00:00Z")) } }
            try store.read { r throws in
                #expect(try r.costs(budgetId: "b", from: nil, to: nil, limit: 100) == [c3, c2, c1])
                #expect(try r.costs(budgetId: "b", from: t("2026-03-02T00:00:00Z"), to: nil, limit: 100) == [c3, c2])
                #expect(try r.costs(budgetId: "b", from: nil, to: t("2026-03-02T00:00:00Z"), limit: 100) == [c2, c1])
                #expect(try r.costs(budgetId: "b", from: nil, to: nil, limit: 1) == [c3])
                #expect(try r.costs(budgetId: "other", from: nil, to: nil, limit: 100).isEmpty)
                #expect(try r.cost(id: "c1") == c1)
                #expect(try r.cost(id: "c9") == nil)
            }
        }
    }

    @Test("a file that is not a database fails to open with a StoreError")
    func notADatabase() throws {
        try withDatabasePath { path throws in
            let junk = Data(String(repeating: "this is not an SQLite database. ", count: 200).utf8)
            #expect(FileManager.default.createFile(atPath: path, contents: junk))
            do {
                let store = try Store(path: path)
                store.close()
                Issue.record("opened a file that is not a database")
            } catch let error as StoreError {
                #expect(error.message.contains(path), "\(error.message)")
                #expect(error.sqliteCode == 26) // SQLITE_NOTADB
            }
            // The file is left as it was.
            #expect(FileManager.default.contents(atPath: path) == junk)
        }
    }

    @Test("a database in a directory that does not exist fails with a StoreError")
    func missingDirectory() {
        #expect(throws: StoreError.self) {
            let store = try Store(path: "/nonexistent-\(UUID().uuidString)/budgetd.sqlite")
            store.close()
        }
    }

    @Test("the journal is WAL: a -wal file appears after a write")
    func walMode() throws {
        try withStore { store, path throws in
            try store.write { w throws in try w.insertEvent(storedEvent("e1")) }
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
            #expect((FileManager.default.contents(atPath: path + "-wal")?.count ?? 0) > 0)
        }
    }

    @Test("retention deletes ALLOCATED events received before the cutoff, found in row order; a clock that stepped back keeps, never deletes early")
    func retentionByRowOrder() throws {
        try withStore { store, _ throws in
            try store.write { w throws in
                try w.insertEvent(storedEvent("old-1", receivedAt: "2026-03-01T00:00:00Z"))
                try w.insertEvent(storedEvent("old-unpriced", state: .unpriced, reason: "no price", receivedAt: "2026-03-01T00:00:01Z", cost: nil))
                try w.insertEvent(storedEvent("old-2", receivedAt: "2026-03-02T00:00:00Z"))
                try w.insertEvent(storedEvent("new-1", receivedAt: "2026-03-05T00:00:00Z"))
                // The clock stepped back: received after new-1, stamped before the cutoff.
                try w.insertEvent(storedEvent("stepped-back", receivedAt: "2026-03-02T12:00:00Z"))
                try w.insertEvent(storedEvent("new-2", receivedAt: "2026-03-06T00:00:00Z"))
            }
            let counts = try store.write { w throws in
                try w.prune(eventsBefore: t("2026-03-04T00:00:00Z"), othersBefore: t("2026-03-04T00:00:00Z"))
            }
            #expect(counts.usageEvents == 2)
            func kept() throws -> [String] {
                try store.write { w throws in
                    try ["old-1", "old-unpriced", "old-2", "new-1", "stepped-back", "new-2"].filter { try w.findEvent(source: "scraper-1", id: $0) != nil }
                }
            }
            #expect(try kept() == ["old-unpriced", "new-1", "stepped-back", "new-2"])
            // Everything before a later cutoff: the stepped-back one goes too; UNPRICED stays, and
            // so does the newest row (row numbers, and so ids of costs booked in rows, are never reused).
            let later = try store.write { w throws in
                try w.prune(eventsBefore: t("2026-03-07T00:00:00Z"), othersBefore: t("2026-03-07T00:00:00Z"))
            }
            #expect(later.usageEvents == 2)
            #expect(try kept() == ["old-unpriced", "new-2"])
            try store.write { w throws in try w.insertEvent(storedEvent("newer", receivedAt: "2026-03-06T00:00:01Z")) }
            #expect(try store.read { r throws in try r.event(source: "scraper-1", id: "newer") }.map { _ in true } == true)
            #expect(try store.write { w throws in try w.prune(eventsBefore: t("2026-03-07T00:00:00Z"), othersBefore: t("2026-03-07T00:00:00Z")) }.usageEvents == 1)
            #expect(try kept() == ["old-unpriced"])
        }
    }

    @Test("an event row that is its own booking reads as a cost allocation: by id, of its event, listed by budget among cost rows (event rows first at a date), page by page; retention moves it into a cost row under the same id, and neither the list nor a cursor taken before changes")
    func bookingsInEventRows() throws {
        try withStore { store, _ throws in
            func booked(_ id: String, at time: String, cost: String, allocation: String?) -> StoredEvent {
                var e = storedEvent(id, receivedAt: "2026-03-01T00:00:00Z", cost: cost)
                e.body = #"{"id":"\#(id)","source":"scraper-1","platform":"OpenAI","serviceType":"API","cost":\#(cost),"time":"\#(time)","description":"d-\#(id)","apiUsageId":"u-\#(id)","metadata":{"n":1.50,"k":"v"}}"#
                e.time = t(time)
                e.costAllocationId = nil
                e.booked = true
                e.allocationId = allocation
                return e
            }
            func costRow(_ id: String, at time: String, amount: String, corrects: String? = nil) -> CostRecord {
                CostRecord(
                    id: id, budgetId: "b", allocationId: nil, platform: "Apify", serviceType: .scraping, costAmount: money(amount),
                    currency: "USD", description: nil, costDate: t(time), apiUsageId: nil, apifyRunId: nil, eventId: nil, eventSource: nil,
                    metadata: nil, kind: corrects == nil ? .cost : .credit, corrects: corrects.map { EventRef(source: "scraper-1", id: $0) }
                )
            }
            try store.write { w throws in
                try w.insertEvents([
                    booked("e1", at: "2026-03-02T00:00:00Z", cost: "1.25", allocation: "al_1"),
                    booked("e2", at: "2026-03-03T00:00:00Z", cost: "2.5", allocation: nil),
                    booked("e3", at: "2026-03-03T00:00:00Z", cost: "0.000000001", allocation: "al_1"),
                ])
                try w.insertCost(costRow("m1", at: "2026-03-03T00:00:00Z", amount: "7"), createdAt: t("2026-03-01T00:00:00Z"))
                try w.insertCost(costRow("cr1", at: "2026-03-02T00:00:00Z", amount: "-0.25", corrects: "e1"), createdAt: t("2026-03-01T00:00:00Z"))
                try w.insertCost(costRow("m0", at: "2026-03-01T00:00:00Z", amount: "3"), createdAt: t("2026-03-01T00:00:00Z"))
                // The newest row, which retention keeps.
                try w.insertEvent(storedEvent("last", receivedAt: "2026-03-09T00:00:00Z"))
            }
            #expect(EventCostID.make(rowid: 1) == "e_0000000000000001")
            #expect(EventCostID.rowid(of: "e_00000000000000ff") == 255)
            #expect(EventCostID.rowid(of: "e_00000000000000FF") == nil)
            #expect(EventCostID.rowid(of: "e_0000000000000001x") == nil)
            #expect(EventCostID.rowid(of: "c_0000000000000001") == nil)
            let e1 = try #require(try store.read { r throws in try r.cost(id: "e_0000000000000001") })
            #expect(e1.costAmount == money("1.25") && e1.allocationId == "al_1" && e1.budgetId == "b" && e1.currency == "USD")
            #expect(e1.description == "d-e1" && e1.apiUsageId == "u-e1" && e1.eventId == "e1" && e1.eventSource == "scraper-1")
            #expect(e1.metadata == ["n": .number("1.50"), "k": "v"] && e1.kind == .cost && e1.costDate == t("2026-03-02T00:00:00Z"))
            #expect(try store.read { r throws in try r.cost(id: "e_0000000000000004") } == nil)  // "last" is a cost row's event
            #expect(try store.read { r throws in try r.event(source: "scraper-1", id: "e2") }?.costAllocationId == "e_0000000000000002")
            #expect(try store.read { r throws in try r.costs(ofEvent: "scraper-1", id: "e1") }.map(\.id) == ["e_0000000000000001", "cr1"])
            let expected = ["e_0000000000000003", "e_0000000000000002", "m1", "e_0000000000000001", "cr1", "m0"]
            func listed() throws -> (all: [String], paged: [String]) {
                try store.read { r throws in
                    let all = try r.costs(budgetId: "b", from: nil, to: nil, limit: 100).map(\.id)
                    var paged: [String] = []
                    var cursor: PageCursor?
                    repeat {
                        let page = try r.costsPage(budgetId: "b", from: nil, to: nil, limit: 1, after: cursor)
                        paged += page.items.compactMap { $0["id"]?.stringValue }
                        cursor = try page.nextCursor.map { c in try #require(PageCursor(text: c.text)) }
                    } while cursor != nil && paged.count < 20
                    return (all, paged)
                }
            }
            #expect(try listed().all == expected)
            #expect(try listed().paged == expected)
            #expect(try store.read { r throws in try r.costs(budgetId: "b", from: t("2026-03-02T00:00:00Z"), to: t("2026-03-02T23:00:00Z"), limit: 100) }.map(\.id) == ["e_0000000000000001", "cr1"])
            let before = try store.read { r throws in try r.costs(budgetId: "b", from: nil, to: nil, limit: 100) }
            // Cursors taken before retention moves the bookings (one after a booking, one after a
            // cost row), to be followed after it.
            let firstPages = try [2, 3].map { limit in
                try store.read { r throws in try r.costsPage(budgetId: "b", from: nil, to: nil, limit: limit, after: nil) }
            }

            let pruned = try store.write { w throws in try w.prune(eventsBefore: t("2026-03-05T00:00:00Z"), othersBefore: t("2026-03-05T00:00:00Z")) }
            #expect(pruned.usageEvents == 3)
            #expect(try store.read { r throws in try r.costs(budgetId: "b", from: nil, to: nil, limit: 100) } == before)
            #expect(try listed().paged == expected)
            for page in firstPages {
                var ids = page.items.compactMap { $0["id"]?.stringValue }
                var cursor = try PageCursor(text: #require(page.nextCursor).text)
                while let c = cursor, ids.count < 20 {
                    let next = try store.read { r throws in try r.costsPage(budgetId: "b", from: nil, to: nil, limit: 1, after: c) }
                    ids += next.items.compactMap { $0["id"]?.stringValue }
                    cursor = next.nextCursor
                }
                #expect(ids == expected, "a page of \(page.items.count), then after retention")
            }
            #expect(try store.read { r throws in try r.cost(id: "e_0000000000000001") } == e1)
            #expect(try store.read { r throws in try r.event(source: "scraper-1", id: "e1") } == nil)
        }
    }

    @Test("the event lookup sees what was committed, not what a transaction in progress wrote, and one snapshot per batch")
    func eventLookup() throws {
        try withStore { store, _ throws in
            let lookup = try store.makeEventLookup()
            defer { lookup.close() }
            #expect(try lookup.find(source: "scraper-1", id: "e1") == nil)
            try store.write { w throws in
                try w.insertEvent(storedEvent("e1", state: .unallocated, reason: "no budget covers it", cost: nil))
                // Not committed yet: another connection does not see it.
                #expect(try lookup.find(source: "scraper-1", id: "e1") == nil)
            }
            let key = try #require(try lookup.find(source: "scraper-1", id: "e1"))
            #expect(key.state == .unallocated)
            #expect(key.reason == "no budget covers it")
            #expect(key.body == storedEvent("e1").body)
            #expect(try lookup.find(source: "scraper-2", id: "e1") == nil)
            // A batch's snapshot, taken by its first lookup: a commit after it is seen only
            // after endBatch.
            try lookup.beginBatch()
            #expect(try lookup.find(source: "scraper-1", id: "e2") == nil)
            try store.write { w throws in try w.insertEvent(storedEvent("e2")) }
            #expect(try lookup.find(source: "scraper-1", id: "e2") == nil)
            lookup.endBatch()
            #expect(try lookup.find(source: "scraper-1", id: "e2")?.state == .allocated)
            lookup.close()
            #expect(throws: StoreError.self) { try lookup.find(source: "scraper-1", id: "e1") }
        }
    }
}
