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
    private var find: OpaquePointer?
    /// Binds the key from one reused buffer (no allocation or copy per lookup).
    private var binder = Binder()

    init(path: String) throws(StoreError) {
        let connection = try openReadOnly(path, for: "event lookups")
        self.connection = connection
        // The index of (source, id) pages it reads stay in memory between batches.
        sqlite3_exec(connection, "PRAGMA cache_size = -32768", nil, nil, nil)
        guard sqlite3_prepare_v3(connection, findEventSQL, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &find, nil) == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(connection))
            sqlite3_close(connection)
            self.connection = nil
            throw StoreError("cannot prepare the event lookup: \(message)")
        }
    }

    deinit { close() }

    /// Finalizes the statement and closes the connection; idempotent.
    public func close() {
        sqlite3_finalize(find)
        find = nil
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
    }

    /// Ends the batch's read transaction (a reader that stays open would keep the write-ahead
    /// log from starting over).
    public func endBatch() {
        guard let connection, sqlite3_get_autocommit(connection) == 0 else { return }
        sqlite3_exec(connection, "COMMIT", nil, nil, nil)
    }

    /// What the database holds for (source, id), or nil when no committed event has that key.
    /// Throws a `StoreError`.
    public func find(source: String, id: String) throws -> EventKey? {
        guard let find, let connection else { throw StoreError("the event lookup is closed") }
        return try binder.findEvent(find, source: source, id: id) { rc in
            StoreError("event lookup failed: \(String(cString: sqlite3_errmsg(connection)))", sqliteCode: rc & 0xff)
        }
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
        try EventLookup(path: path)
    }

    /// Calls `body` with the (source, id) of every stored event, on a read-only connection of
    /// its own (any thread): one read transaction, so it sees what was committed when it began.
    /// Returns how many. Reads the `(source, event_id)` index only.
    public func forEachEventKey(_ body: (String, String) -> Void) throws(StoreError) -> Int {
        let connection = try openReadOnly(path, for: "reading event keys")
        defer { sqlite3_close(connection) }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(connection, "SELECT source, event_id FROM usage_events", -1, &statement, nil) == SQLITE_OK,
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
            body(columnText(statement, 0) ?? "", columnText(statement, 1) ?? "")
            count += 1
        }
    }
}
