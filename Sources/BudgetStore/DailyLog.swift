import BudgetCore
import GRDB
import GRDBSQLite

// The daily rollup's additions of a staged commit, logged in one row instead of updated in
// place (issue 8).
//
// `daily_spend` holds a row per budget, day, platform and service. A commit of a windowed
// client's batch (~100 events over 20 budgets) added to ~60 such rows, an UPDATE each: 0.2 ms
// of the commit's ~1 ms, and the pages of the table written to the log at every commit.
// Instead the commit thread writes the additions as one row of `daily_log` (JSON), in the
// same transaction as the events they come from, and keeps their sums in memory
// (`HotStatements.loggedDaily`); every `foldEvery` logged commits (or when one commit adds
// many rows, 10⁴ budgets say) the sums go into `daily_spend` and the log is emptied, again in
// one transaction. So at every commit `daily_spend` plus the rows of `daily_log` is the
// rollup, exactly; whoever reads the rollup (`StoreReader.dailySpend`) adds the logged sums;
// a start, and a clean close, fold what is left.

/// A day's additions, by key.
typealias DailySums = [DailyKey: (amount: Money, count: Int64)]

extension Store {
    /// Logged commits between two folds of the daily rollup's log.
    public static let dailyLogFoldEvery = 64
    /// A commit adding more rollup rows than this folds at once instead of logging them.
    public static let dailyLogMaxRows = 256
}

extension HotStatements {
    /// Logged commits between two folds.
    static let foldEvery = Store.dailyLogFoldEvery
    /// A commit adding more rows than this folds at once (logging them would save nothing).
    static let maxLoggedRows = Store.dailyLogMaxRows

    /// Adds a commit's rollup rows: logged in one row of `daily_log`, or, every `foldEvery`
    /// commits, folded into `daily_spend` with everything logged before.
    func logDaily(_ rows: [(key: DailyKey, amount: Money, count: Int64)]) throws {
        if rows.isEmpty { return }
        if dailyBefore == nil { dailyBefore = (loggedDaily, loggedCommits) }
        if loggedCommits == 0 && rows.count > Self.maxLoggedRows {
            // Folded at once with nothing logged before: the rows go into `daily_spend` as they
            // come, without first summing them into the logged sums (issue 8: with 10⁴ budgets,
            // building that dictionary for thousands of rows every commit was ~4 % of the commit
            // thread's samples, and without it 11.1 → 10.3 µs per event on that thread). The same
            // writes: one row per key either way.
            for row in rows { try addDaily(row.key, amount: row.amount, count: row.count) }
            return
        }
        for row in rows { Self.add(row.amount, row.count, to: &loggedDaily, row.key) }
        if loggedCommits + 1 >= Self.foldEvery || rows.count > Self.maxLoggedRows {
            try foldDaily(emptyingLog: loggedCommits > 0)
            return
        }
        binder.begin(insertDailyLog)
        binder.text(Self.loggedRowsText(rows))
        try binder.run(step)
        loggedCommits += 1
    }

    /// Writes the logged sums into `daily_spend` (an UPDATE or INSERT per key) and empties the log.
    func foldDaily(emptyingLog: Bool = true) throws {
        if dailyBefore == nil { dailyBefore = (loggedDaily, loggedCommits) }
        // In the dictionary's order: the rows written are the same in any order (one UPDATE or
        // INSERT per key of a table without row numbers), and sorting the keys first was 7 % of
        // the commit thread with 10⁴ budgets, where every commit folds thousands of them (issue 8:
        // without it 10.4 → 10.0 µs per event on that thread, 76,544 → 80,351 events/s).
        for (key, sum) in loggedDaily {
            try addDaily(key, amount: sum.amount, count: sum.count)
        }
        // No WHERE: SQLite empties the table without reading its rows.
        if emptyingLog { try execute("DELETE FROM daily_log") }
        loggedDaily = [:]
        loggedCommits = 0
    }

    /// Reads what `daily_log` holds (left by a process that stopped without folding) into the
    /// logged sums, then folds them. Once, when the store opens.
    func foldDailyLogLeftOver(_ db: Database) throws {
        for text in try String.fetchAll(db, sql: "SELECT rows FROM daily_log ORDER BY id") {
            for row in try Self.parseLoggedRows(text) { Self.add(row.amount, row.count, to: &loggedDaily, row.key) }
            loggedCommits += 1
        }
        if loggedCommits > 0 { try foldDaily() }
    }

    /// A commit's rows as `daily_log` holds them: a JSON array of
    /// `[budgetId, day, platform, serviceType, "amount", count]`, written straight into bytes
    /// (a `JSONValue` tree of them was half of `logDaily`'s time; the same text).
    static func loggedRowsText(_ rows: [(key: DailyKey, amount: Money, count: Int64)]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(rows.count * 96)
        out.append(UInt8(ascii: "["))
        for (i, row) in rows.enumerated() {
            out.append(contentsOf: i == 0 ? "[".utf8 : ",[".utf8)
            func field(_ s: String) {
                JSONValue.writeString(s, into: &out)
                out.append(UInt8(ascii: ","))
            }
            field(row.key.budgetId)
            field(row.key.day)
            field(row.key.platform)
            field(row.key.serviceType.rawValue)
            field(row.amount.description)
            out.append(contentsOf: String(row.count).utf8)
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "]"))
        return String(decoding: out, as: UTF8.self)
    }

    static func parseLoggedRows(_ text: String) throws -> [(key: DailyKey, amount: Money, count: Int64)] {
        guard case .array(let rows) = try? JSON.parse(text) else { throw StoreError("corrupt daily_log row: \(text.prefix(200))") }
        return try rows.map { row in
            guard case .array(let f) = row, f.count == 6,
                  let budgetId = f[0].stringValue, let day = f[1].stringValue, let platform = f[2].stringValue,
                  let service = f[3].stringValue.flatMap(ServiceType.init(rawValue:)),
                  let amount = f[4].stringValue.flatMap({ try? Money(parsing: $0) }),
                  let count = f[5].numberText.flatMap({ Int64($0) }) else {
                throw StoreError("corrupt daily_log row: \(row.serialized().prefix(200))")
            }
            return (DailyKey(budgetId: budgetId, day: day, platform: platform, serviceType: service), amount, count)
        }
    }

    static func add(_ amount: Money, _ count: Int64, to sums: inout DailySums, _ key: DailyKey) {
        if let index = sums.index(forKey: key) {
            sums.values[index].amount += amount
            sums.values[index].count += count
        } else {
            sums[key] = (amount, count)
        }
    }

    /// `daily_spend`'s primary-key order (SQLite compares text as bytes).
    static func precedes(_ a: DailyKey, _ b: DailyKey) -> Bool {
        if a.budgetId != b.budgetId { return a.budgetId.utf8.lexicographicallyPrecedes(b.budgetId.utf8) }
        if a.day != b.day { return a.day.utf8.lexicographicallyPrecedes(b.day.utf8) }
        if a.platform != b.platform { return a.platform.utf8.lexicographicallyPrecedes(b.platform.utf8) }
        return a.serviceType.rawValue.utf8.lexicographicallyPrecedes(b.serviceType.rawValue.utf8)
    }
}

extension StoreReader {
    /// `rows` (read from `daily_spend`, in its order) with the logged sums added: those of keys
    /// with a row added to it, the others as rows of their own, in the same order (by day,
    /// budget, platform, service).
    static func addingLogged(_ logged: DailySums, to rows: [DailySpend], budgetIds: Set<String>?, fromDay: String?, toDay: String?) -> [DailySpend] {
        let wanted = logged.filter { key, _ in
            (budgetIds?.contains(key.budgetId) ?? true) && (fromDay.map { key.day >= $0 } ?? true) && (toDay.map { key.day <= $0 } ?? true)
        }
        if wanted.isEmpty { return rows }
        var merged = rows
        var index: [DailyKey: Int] = [:]
        for (i, row) in merged.enumerated() { index[row.key] = i }
        for (key, sum) in wanted {
            if let i = index[key] {
                merged[i].amount += sum.amount
                merged[i].count += sum.count
            } else {
                merged.append(DailySpend(key: key, amount: sum.amount, count: sum.count))
            }
        }
        return merged.sorted { a, b in
            a.key.day != b.key.day ? a.key.day.utf8.lexicographicallyPrecedes(b.key.day.utf8)
                : HotStatements.precedes(a.key, b.key)
        }
    }
}
