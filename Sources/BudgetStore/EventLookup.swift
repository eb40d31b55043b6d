import BudgetCore
import GRDBSQLite

/// The dedup lookup of committed events, on a read-only connection of its own, so it can run
/// on one thread while the writer's connection commits on another (issue 8: the engine prices
/// and books the next batch while the commit thread writes the one before).
///
/// A lookup sees every transaction committed before it (or before the first lookup after
/// `beginBatch`), nothing uncommitted: events of batches not yet committed are the caller's to
/// track. One thread at a time.
public final class EventLookup: @unchecked Sendable {
    private var connection: OpaquePointer?
    private var byRow: OpaquePointer?
    private var byGenerations: OpaquePointer?
    private let keys: RecentKeys
    /// Binds the key from one reused buffer (no allocation or copy per lookup).
    private var binder = Binder()
    private var rows: [Int64] = []
    /// Inside `beginBatch`…`endBatch`, whether the batch's snapshot has been taken: by its first
    /// lookup, before that lookup reads the keys in memory (a key committed after the snapshot
    /// may be in memory; its row is then not seen, as before: its batch is still in flight).
    private var snapshotPending = false

    init(path: String, keys: RecentKeys) throws(StoreError) {
        let connection = try openReadOnly(path, for: "event lookups")
        self.connection = connection
        self.keys = keys
        // The pages of `event_keys` it reads stay in memory between batches.
        sqlite3_exec(connection, "PRAGMA cache_size = -32768", nil, nil, nil)
        for (sql, statement) in [(findByRowSQL, \EventLookup.byRow), (findByGenerationsSQL, \EventLookup.byGenerations)] {
            var prepared: OpaquePointer?
            guard sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil) == SQLITE_OK else {
                let message = String(cString: sqlite3_errmsg(connection))
                close()
                throw StoreError("cannot prepare the event lookup: \(message)")
            }
            self[keyPath: statement] = prepared
        }
    }

    deinit { close() }

    /// Finalizes the statement and closes the connection; idempotent.
    public func close() {
        sqlite3_finalize(byRow)
        sqlite3_finalize(byGenerations)
        byRow = nil
        byGenerations = nil
        sqlite3_close(connection)
        connection = nil
    }

    /// Starts one read transaction for the lookups of a batch (each lookup would otherwise be
    /// its own, with the locking that costs): they all see what was committed before the first
    /// of them, and nothing committed after it, until `endBatch`.
    public func beginBatch() throws(StoreError) {
        guard let connection else { throw StoreError("the event lookup is closed") }
        let rc = sqlite3_exec(connection, "BEGIN", nil, nil, nil)
        guard rc == SQLITE_OK else {
            throw StoreError("event lookup failed: \(String(cString: sqlite3_errmsg(connection)))", sqliteCode: rc & 0xff)
        }
        snapshotPending = true
    }

    /// Ends the batch's read transaction (a reader that stays open would keep the write-ahead
    /// log from starting over).
    public func endBatch() {
        snapshotPending = false
        guard let connection, sqlite3_get_autocommit(connection) == 0 else { return }
        sqlite3_exec(connection, "COMMIT", nil, nil, nil)
    }

    /// What the database holds for (source, id), or nil when no committed event has that key.
    /// Throws a `StoreError`.
    public func find(source: String, id: String) throws -> EventKey? {
        guard let byRow, let byGenerations, let connection else { throw StoreError("the event lookup is closed") }
        if snapshotPending {
            // A read starts the batch's read transaction (BEGIN alone does not).
            let rc = sqlite3_exec(connection, "SELECT 1 FROM key_state LIMIT 1", nil, nil, nil)
            guard rc == SQLITE_OK else {
                throw StoreError("event lookup failed: \(String(cString: sqlite3_errmsg(connection)))", sqliteCode: rc & 0xff)
            }
            snapshotPending = false
        }
        let hash = EventKeyHash.of(source: source, id: id)
        rows.removeAll(keepingCapacity: true)
        let generations = keys.candidates(hash, into: &rows)
        return try binder.findEvent(
            byRow: byRow, byGenerations: byGenerations, source: source, id: id, hash: hash, rows: rows, generations: generations
        ) { rc in
            StoreError("event lookup failed: \(String(cString: sqlite3_errmsg(connection)))", sqliteCode: rc & 0xff)
        }?.key
    }
}

/// A read-only connection of its own to the database at `path`, for `purpose` (in the error).
/// A reader of a WAL database waits only in rare moments (another connection recovering the
/// log): up to 5 s, then its caller fails (a lookup fails its batch, which is retried).
private func openReadOnly(_ path: String, for purpose: String) throws(StoreError) -> OpaquePointer {
    var connection: OpaquePointer?
    guard sqlite3_open_v2(path, &connection, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let connection else {
        let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
        sqlite3_close(connection)
        throw StoreError("cannot open \(path) for \(purpose): \(message)")
    }
    sqlite3_busy_timeout(connection, 5000)
    return connection
}

extension Store {
    /// A read-only connection for dedup lookups on another thread than the writer's.
    public func makeEventLookup() throws(StoreError) -> EventLookup {
        try EventLookup(path: path, keys: recentKeys)
    }

    /// Calls `body` with the `EventKeyHash` of every stored event, on a read-only connection of
    /// its own (any thread): one read transaction, so it sees what was committed when it began.
    /// Returns how many. Reads `event_keys` and the two recent-keys tables (about 21 bytes a key;
    /// a key of a generation being copied is read twice, which a filter does not mind).
    public func forEachEventKeyHash(_ body: (Int64) -> Void) throws(StoreError) -> Int {
        let connection = try openReadOnly(path, for: "reading event keys")
        defer { sqlite3_close(connection) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(connection, "SELECT h FROM event_keys UNION ALL SELECT h FROM recent_keys_0 UNION ALL SELECT h FROM recent_keys_1", -1, &statement, nil) == SQLITE_OK,
              let statement else {
            throw StoreError("cannot read event keys: \(String(cString: sqlite3_errmsg(connection)))")
        }
        defer { sqlite3_finalize(statement) }
        var count = 0
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return count }
            guard rc == SQLITE_ROW else {
                throw StoreError("reading event keys failed: \(String(cString: sqlite3_errmsg(connection)))", sqliteCode: rc & 0xff)
            }
            body(sqlite3_column_int64(statement, 0))
            count += 1
        }
    }
}
