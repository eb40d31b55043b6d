import BudgetCore
import Dispatch
import GRDBSQLite
import Synchronization

// How a stored event is found by its key (source, id), without an index ordered by the key.
//
// An index of the key texts (the old `UNIQUE(source, event_id)`) puts every new key at a
// random place when ids are random (UUIDs): once the index is larger than a batch, each event
// dirties an index page of its own, written to the log at the commit and to the database at
// the checkpoint (9 KB per event at 10⁶ events, half the ingest rate: docs/benchmarks.md,
// "Tenth session"). Instead each event's `EventKeyHash` goes with its row number into the
// active one of two tables `recent_keys_0` / `recent_keys_1` (in row order: appended), and
// into memory (`RecentKeys`). Once the active table holds `keysPerGeneration` keys, it is
// sealed (new keys go to the other one) and its keys, sorted, are copied into `event_keys` as
// one more generation (appended: its primary key starts with the generation), a few thousand
// per write transaction, so no commit waits long; the last step empties the sealed table and
// counts the generation in `key_state`. A lookup hashes the key, checks the rows the memory
// names, then seeks the hash in each complete generation, and compares every candidate row's
// texts: a hash only finds rows. docs/ledger.md, "How duplicates are found".

/// The keys of committed events not yet in a complete generation of `event_keys`, by hash: the
/// active set (its table receives new keys) and the sealed one (being copied), and how many
/// complete generations there are. Shared by the writer's connection and the lookup's.
public final class RecentKeys: Sendable {
    struct Keys {
        /// hash → the row of the first key with it; `more` has the others (rare: two keys, one hash).
        var rows: [Int64: Int64] = [:]
        var more: [Int64: [Int64]] = [:]
        var count = 0

        init(reserving capacity: Int = 0) {
            rows.reserveCapacity(capacity)
        }

        mutating func add(_ hash: Int64, _ rowid: Int64) {
            // One lookup for the common case, a new hash (a test then a set hashed it twice).
            if let first = rows.updateValue(rowid, forKey: hash) {
                rows[hash] = first
                more[hash, default: []].append(rowid)
            }
            count += 1
        }

        func candidates(_ hash: Int64, into candidates: inout [Int64]) {
            guard let row = rows[hash] else { return }
            candidates.append(row)
            if let more = more[hash] { candidates += more }
        }

        /// Every key, sorted by hash then row (the order of `event_keys`).
        func sorted() -> [(hash: Int64, rowid: Int64)] {
            var all: [(hash: Int64, rowid: Int64)] = []
            all.reserveCapacity(count)
            for (hash, rowid) in rows { all.append((hash, rowid)) }
            for (hash, rowids) in more { for rowid in rowids { all.append((hash, rowid)) } }
            return RecentKeys.sorted(all)
        }
    }

    /// `keys` in the order of `event_keys`: by hash, then row.
    static func sorted(_ keys: [(hash: Int64, rowid: Int64)]) -> [(hash: Int64, rowid: Int64)] {
        keys.sorted { $0.hash != $1.hash ? $0.hash < $1.hash : $0.rowid < $1.rowid }
    }

    struct State {
        var active = Keys()
        /// Sealed: being copied into generation `generations`; or copied (`retired`), kept
        /// until no lookup can still use a snapshot from before that copy (`dropRetired`).
        var sealed: Keys?
        var retired = false
        var generations: Int64 = 0
    }

    private let state = Mutex(State())

    /// How many keys the active table holds before it is sealed and copied into a generation,
    /// by default (the daemon's `keysPerGeneration`): 2¹⁸, about 12 MB in memory, read at start
    /// in tens of milliseconds.
    public static let defaultKeysPerGeneration = 1 << 18

    init() {}

    /// Keys in the active set.
    public var activeCount: Int { state.withLock { $0.active.count } }

    /// Keys in memory, active and sealed.
    public var count: Int { state.withLock { $0.active.count + ($0.sealed?.count ?? 0) } }

    /// Complete generations in `event_keys`.
    public var generations: Int64 { state.withLock { $0.generations } }

    /// Whether a sealed set is still held (being copied, or copied and not yet dropped).
    var hasSealed: Bool { state.withLock { $0.sealed != nil } }

    func add(_ keys: [(hash: Int64, rowid: Int64)]) {
        guard !keys.isEmpty else { return }
        state.withLock { s in for (hash, rowid) in keys { s.active.add(hash, rowid) } }
    }

    /// Appends the rows of keys with `hash` to `candidates`; returns the generations to search.
    func candidates(_ hash: Int64, into candidates: inout [Int64]) -> Int64 {
        state.withLock { s in
            s.active.candidates(hash, into: &candidates)
            s.sealed?.candidates(hash, into: &candidates)
            return s.generations
        }
    }

    /// The active set becomes the sealed one, which is returned (to be sorted outside the lock:
    /// lookups go on meanwhile, the sealed set is only read). The new active set has room for
    /// `reserving` keys from the start: grown as keys come, its last growth rehashed 2¹⁷ keys
    /// on the commit thread, a few milliseconds every commit behind it waited.
    func seal(reserving: Int = 0) -> Keys {
        state.withLock { s in
            precondition(s.sealed == nil, "a sealed set is still held")
            s.sealed = s.active
            s.active = Keys(reserving: reserving)
            s.retired = false
            return s.sealed!
        }
    }

    /// Undoes `seal` (its transaction failed): the sealed keys are active again.
    func unseal() {
        state.withLock { s in
            guard let sealed = s.sealed, !s.retired else { return }
            for (hash, rowid) in sealed.rows { s.active.add(hash, rowid) }
            for (hash, rowids) in sealed.more { for rowid in rowids { s.active.add(hash, rowid) } }
            s.sealed = nil
        }
    }

    /// The sealed set's generation committed: it is searched from now on; the set stays in
    /// memory until `dropRetired`.
    func completeGeneration() {
        state.withLock { s in
            s.generations += 1
            s.retired = true
        }
    }

    /// Drops a sealed set whose generation is complete. Call it where no lookup is under way
    /// on a snapshot older than that generation's commit (before a batch's first lookup).
    public func dropRetired() {
        state.withLock { s in
            if s.retired {
                s.sealed = nil
                s.retired = false
            }
        }
    }

    /// At start: what the database holds.
    func reset(generations: Int64, active: [(hash: Int64, rowid: Int64)], sealed: [(hash: Int64, rowid: Int64)]?, reserving: Int = 0) {
        state.withLock { s in
            s = State()
            s.active = Keys(reserving: max(reserving, active.count))
            s.generations = generations
            for (hash, rowid) in active { s.active.add(hash, rowid) }
            if let sealed {
                var keys = Keys()
                for (hash, rowid) in sealed { keys.add(hash, rowid) }
                s.sealed = keys
            }
        }
    }
}

/// A sealed set (of event keys, or of bookings: Bookings.swift) in the order its table keeps,
/// sorted on a thread of its own when it is large: 2¹⁸ keys took 20–33 ms, and sorted on the
/// commit thread that was a stall of every commit behind it, alerts and acknowledgements
/// included (the tail of the alert latency: docs/benchmarks.md, "Eleventh session"). `result`
/// is nil until then; the copy waits for it.
final class SortedInBackground<Element: Sendable>: Sendable {
    private let sorted: Mutex<[Element]?>

    /// Elements already sorted.
    init(_ elements: [Element]) { sorted = Mutex(elements) }

    init(sortingInBackground elements: @escaping @Sendable () -> [Element]) {
        sorted = Mutex(nil)
        DispatchQueue.global(qos: .utility).async { [self] in
            let result = elements()
            sorted.withLock { $0 = result }
        }
    }

    var result: [Element]? { sorted.withLock { $0 } }
}

typealias SortedKeys = SortedInBackground<(hash: Int64, rowid: Int64)>

/// Finds (source, id) among the committed rows: `byRow` checks one candidate row, `byGenerations`
/// seeks the hash in every generation of `event_keys`, newest first (a resend is most often of a
/// recent event). Both select `body, state, reason, rowid`.
let findByRowSQL = "SELECT body, state, reason, rowid FROM usage_events WHERE rowid = ?1 AND source = ?2 AND event_id = ?3"
let findByGenerationsSQL = """
    WITH RECURSIVE g(n) AS (SELECT ?4 - 1 WHERE ?4 > 0 UNION ALL SELECT n - 1 FROM g WHERE n > 0)
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
