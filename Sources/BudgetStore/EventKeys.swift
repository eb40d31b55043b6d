import BudgetCore
import GRDBSQLite
import Synchronization

// How a stored event is found by its key (source, id), without an index ordered by the key.
//
// An index of the key texts (the old `UNIQUE(source, event_id)`) puts every new key at a
// random place when ids are random (UUIDs): once the index is larger than a batch, each event
// dirties an index page of its own, written to the log at the commit and to the database at
// the checkpoint (9 KB per event at 10⁶ events, half the ingest rate: docs/benchmarks.md,
// "Tenth session"). Instead, each event's `EventKeyHash` goes with its row number into
// `recent_keys` (in row order: appended), and is kept in memory (`RecentKeys`); every
// `RecentKeys.flushAt` keys, `Store.flushRecentKeys` copies them, sorted, into `event_keys` as
// one more generation (appended: its primary key starts with the generation) and empties
// `recent_keys`. A lookup hashes the key, checks the rows the memory names, then seeks the
// hash in each generation, and compares every candidate row's texts: a hash only finds rows.
// docs/ledger.md, "How duplicates are found".

/// The keys of committed events not yet copied into `event_keys` (as `recent_keys` holds them),
/// by hash, and how many generations `event_keys` holds. Shared by the writer's connection and
/// the lookup's; changed by the writer after its commits (`add`) and by `Store.flushRecentKeys`.
public final class RecentKeys: Sendable {
    struct State {
        /// hash → the row of the first key with it; `more` has the others (rare: two keys, one hash).
        var rows: [Int64: Int64] = [:]
        var more: [Int64: [Int64]] = [:]
        var count = 0
        var generations: Int64 = 0
    }

    private let state = Mutex(State())

    /// How many keys `recent_keys` holds before they are copied into a generation, by default
    /// (the daemon's `keysPerGeneration`): 2¹⁸, about 12 MB in memory, read at start in tens of
    /// milliseconds; a generation of 262,144 keys is about 6 MB, written in one transaction.
    public static let flushAt = 1 << 18

    init() {}

    /// Keys in memory (and in `recent_keys`).
    public var count: Int { state.withLock { $0.count } }

    /// Generations in `event_keys`.
    public var generations: Int64 { state.withLock { $0.generations } }

    func add(_ keys: [(hash: Int64, rowid: Int64)]) {
        guard !keys.isEmpty else { return }
        state.withLock { s in
            for (hash, rowid) in keys {
                if s.rows[hash] == nil { s.rows[hash] = rowid } else { s.more[hash, default: []].append(rowid) }
            }
            s.count += keys.count
        }
    }

    /// Appends the rows of keys with `hash` to `candidates`; returns the generations to search.
    func candidates(_ hash: Int64, into candidates: inout [Int64]) -> Int64 {
        state.withLock { s in
            if let row = s.rows[hash] {
                candidates.append(row)
                if let more = s.more[hash] { candidates += more }
            }
            return s.generations
        }
    }

    /// Everything in memory went into generation `generations` (now one more), or, at start,
    /// what the database holds: `keys` and `generations`.
    func reset(generations: Int64, keys: [(hash: Int64, rowid: Int64)] = []) {
        state.withLock { s in
            s = State()
            s.generations = generations
        }
        add(keys)
    }
}

/// Finds (source, id) among the committed rows: `byRow` checks one candidate row, `byGenerations`
/// seeks the hash in every generation of `event_keys`. Both select `body, state, reason, rowid`.
let findByRowSQL = "SELECT body, state, reason, rowid FROM usage_events WHERE rowid = ?1 AND source = ?2 AND event_id = ?3"
let findByGenerationsSQL = """
    WITH RECURSIVE g(n) AS (SELECT 0 WHERE ?4 > 0 UNION ALL SELECT n + 1 FROM g WHERE n + 1 < ?4)
    SELECT e.body, e.state, e.reason, e.rowid FROM g
      CROSS JOIN event_keys k ON k.gen = g.n AND k.h = ?3
      CROSS JOIN usage_events e ON e.rowid = k.event_rowid
    WHERE e.source = ?1 AND e.event_id = ?2
    LIMIT 1
    """

extension Binder {
    /// The stored event with key (source, id), looking at the `rows` first (from memory), then
    /// in every one of `generations`; nil when none. `failure` makes the error of a result code.
    mutating func findEvent(
        byRow: OpaquePointer, byGenerations: OpaquePointer, source: String, id: String, hash: Int64,
        rows: [Int64], generations: Int64, failure: (Int32) -> any Error
    ) throws -> (key: EventKey, rowid: Int64)? {
        func step(_ statement: OpaquePointer) throws -> (key: EventKey, rowid: Int64)? {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return nil }
            guard rc == SQLITE_ROW else { throw failure(rc) }
            return (eventKey(statement), sqlite3_column_int64(statement, 3))
        }
        for row in rows {
            begin(byRow)
            int(row)
            text(source)
            text(id)
            if let found = try run(step) { return found }
        }
        guard generations > 0 else { return nil }
        begin(byGenerations)
        text(source)
        text(id)
        int(hash)
        int(generations)
        return try run(step)
    }
}
