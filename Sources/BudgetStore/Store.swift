import BudgetCore
import GRDB
import GRDBSQLite
import Foundation

/// A failure of the database: it could not be opened, read or written.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// SQLite's primary result code when there is one (SQLITE_FULL = 13, SQLITE_IOERR = 10, …).
    public var sqliteCode: Int32?
    public init(_ message: String, sqliteCode: Int32? = nil) {
        self.message = message
        self.sqliteCode = sqliteCode
    }
    public var description: String { message }
}

/// How hard SQLite syncs on commit.
public enum SynchronousMode: String, Sendable {
    case full = "FULL", normal = "NORMAL", off = "OFF"

    /// The number `PRAGMA synchronous` reads back for this mode.
    public var level: Int {
        switch self {
        case .off: 0
        case .normal: 1
        case .full: 2
        }
    }
}

/// budgetd's SQLite database. Money is stored as exact decimal TEXT (the full 1e-9 × 1e12 range
/// needs 70 bits, more than SQLite's 64-bit INTEGER), instants as INTEGER nanoseconds since 1970.
///
/// One writer at a time by contract: the daemon's engine thread, or its commit thread for a
/// batch the engine handed over (the engine touches the store again only after that commit is
/// done). GRDB's queue serializes anyway. `EventLookup` and `forEachEventKeyHash` use connections
/// of their own, on any thread. `@unchecked Sendable` so the store can be handed over.
public final class Store: @unchecked Sendable {
    let queue: DatabaseQueue
    public let path: String
    /// The writer connection's `synchronous` mode: the one asked for, read back from SQLite
    /// when the store opened (the open fails otherwise: `setSynchronous`).
    public let synchronousMode: SynchronousMode
    /// The copy made before this open applied pending migrations to an existing database
    /// (`<path>.pre-<first pending migration>.bak`), for the caller to log; nil when none ran.
    public private(set) var backupPath: String?
    /// The ingest path's prepared statements, made on the first write.
    var hot: HotStatements?
    /// The keys of the events not yet in `event_keys`, and how many generations it has
    /// (EventKeys.swift): loaded at open, added to after each commit.
    public let recentKeys = RecentKeys()
    /// The recent-keys table new keys go to, and a copy to resume, as read at open (for the
    /// writer's statements, made at the first write).
    private var keyTables: (active: Int, copy: KeyCopy?) = (0, nil)
    /// The bookings not yet in `booking_index` and its `through`, as read at open (Bookings.swift).
    var bookingState: (through: Int64, pending: [Booking], lastRowid: Int64) = (0, [], 0)
    let bookingsPerSet: Int
    let keysPerGeneration: Int
    let keysPerStep: Int
    let backgroundSortKeys: Int
    /// Files up to this size get `PRAGMA quick_check` before the start; bigger ones after it.
    public static let synchronousCheckBytes: Int64 = 256 << 20

    /// The page size of a database this store creates (an existing file keeps its own: SQLite
    /// cannot change it in WAL mode). 8 KiB rather than SQLite's 4 KiB: ~5 % of the daemon's
    /// CPU per event on the PUB path and a third of the checkpoint thread's saved (measured;
    /// presumably fewer, larger log frames, each written with its own calls); the acknowledged
    /// path's small commits write more bytes per event (issue 8, docs/benchmarks.md
    /// "Fourteenth session").
    public static let newDatabasePageSize = 8192
    /// The database was too big to check before the start: `checkIntegrityInBackground` should run.
    public private(set) var deferredIntegrityCheck = false
    /// This open added `spend_history` to a database that has costs: the caller rebuilds the
    /// spike history from the costs once and saves it (`saveHistory`).
    public private(set) var historyBackfillNeeded = false
    /// Checkpoints off the writer's thread (when opened with `backgroundCheckpoints`).
    let checkpointer: Checkpointer?
    /// What `whileStatementsRun` calls; held here for as long as SQLite may call it.
    private var progressTick: ProgressTick?

    /// Opens (creating if needed) and migrates the database at `path`. WAL journal.
    ///
    /// With `backgroundCheckpoints`, this connection never checkpoints the write-ahead log
    /// itself; a thread of the store's does (`Checkpointer`), so commits do not wait for it.
    /// `keysPerGeneration` and `keysPerStep`: when the recent event keys are sealed, and how many
    /// a write transaction copies into their generation at least (twice the events of the
    /// transaction before, when that is more: EventKeys.swift). A sealed set of
    /// `backgroundSortKeys` keys or more is sorted on a thread of its own (`SortedKeys`), the
    /// copy starting with the first transaction after it is done; so is a set of bookings,
    /// sealed every `bookingsPerSet` (Bookings.swift).
    public init(
        path: String, synchronous: SynchronousMode = .full, backgroundCheckpoints: Bool = false,
        keysPerGeneration: Int = RecentKeys.defaultKeysPerGeneration, keysPerStep: Int = 512,
        backgroundSortKeys: Int = 4_096, bookingsPerSet: Int = Store.defaultBookingsPerSet
    ) throws(StoreError) {
        self.bookingsPerSet = max(1, bookingsPerSet)
        self.path = path
        self.keysPerGeneration = max(1, keysPerGeneration)
        self.keysPerStep = max(1, keysPerStep)
        self.backgroundSortKeys = backgroundSortKeys
        synchronousMode = synchronous
        checkpointer = backgroundCheckpoints ? Checkpointer(path: path) : nil
        var config = Configuration()
        config.journalMode = .wal
        config.label = "budgetd"
        // Waits up to 5 s for a lock held by another connection (the checkpoint thread's
        // TRUNCATE), in 100 µs steps: SQLite's own timeout sleeps in steps of up to 100 ms,
        // which held commits (and alerts) for a quarter of a second behind a checkpoint that
        // took a few milliseconds.
        config.busyMode = .callback { tries in
            usleep(100)
            return tries < 50_000
        }
        config.prepareDatabase { db in
            // (`synchronous` is set after the queue opens: see `setSynchronous`.)
            // Only a database not created yet takes this (it precedes WAL mode, set after it).
            try db.execute(sql: "PRAGMA page_size = \(Self.newDatabasePageSize)")
            // A 64 MiB page cache keeps the (source, id) index of recent events in memory, so
            // deduplication does not read pages from the file for every event.
            try db.execute(sql: "PRAGMA cache_size = -65536")
            // Debian builds SQLite with SECURE_DELETE, which zeroes every page a DELETE frees and
            // writes it: emptying a table of 2¹⁸ recent keys (once per generation) wrote every page
            // of it, zeroed, to the log in one commit, ~7 ms of the commit thread's CPU and part
            // of the alert latency's tail (issue 8). FAST still zeroes deleted content in the pages a
            // transaction writes anyway, never a freed page (docs/operations.md).
            try db.execute(sql: "PRAGMA secure_delete = FAST")
            // For the migration that computes the hashes of the keys already stored.
            db.add(function: Self.keyHashFunction)
            if backgroundCheckpoints {
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            }
        }
        do {
            // A corrupt file that still opens must not start as if empty, and must not be written
            // to first (opening in WAL mode writes, and so do migrations): an existing file is
            // checked on a read-only connection before anything else.
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                if isDirectory.boolValue { throw StoreError("cannot open database \(path): it is a directory") }
                var readOnly = Configuration()
                readOnly.readonly = true
                readOnly.label = "budgetd-check"
                let checker = try DatabaseQueue(path: path, configuration: readOnly)
                let size = Checkpointer.fileSize(path)
                let check: String?
                if size <= Self.synchronousCheckBytes {
                    check = try checker.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
                } else {
                    // A full check reads every page (seconds for a few GB): it runs after the
                    // start instead (`checkIntegrityInBackground`). Here only what is cheap: the
                    // schema reads, and a cleanly closed file is as long as its header says.
                    let (pages, pageSize) = try checker.read { db in
                        _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master")
                        return (try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0, try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0)
                    }
                    let clean = Checkpointer.fileSize(path + "-wal") == 0
                    check = clean && size < pages * pageSize ? "file shorter than its \(pages) pages (truncated)" : "ok"
                    deferredIntegrityCheck = true
                }
                try checker.close()
                if check != "ok" { throw StoreError("database \(path) failed its integrity check: \(check ?? "no answer")") }
            }
            queue = try DatabaseQueue(path: path, configuration: config)
            try Self.setSynchronous(synchronous, on: queue, path: path)
            // An upgrade: back the database up (a consistent, compacted copy) before changing its
            // schema, so a failed or regretted upgrade can be undone. A new database needs none.
            let migrator = Self.migrator
            let applied = try queue.read { db in try migrator.appliedIdentifiers(db) }
            // A database a newer budgetd migrated: this one would not see what is kept in the
            // newer schema (since v12, costs booked in event rows), so it refuses to start.
            let unknown = applied.subtracting(migrator.migrations).sorted()
            if !unknown.isEmpty {
                throw StoreError(
                    "database \(path) was migrated by a newer budgetd (\(unknown.joined(separator: ", "))): run that version, "
                        + "or restore the backup made before its migration (docs/operations.md, Upgrade)")
            }
            if !applied.isEmpty, let next = migrator.migrations.first(where: { !applied.contains($0) }) {
                let backup = "\(path).pre-\(next).bak"
                try? FileManager.default.removeItem(atPath: backup)  // VACUUM INTO refuses an existing file
                try queue.writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [backup]) }
                try Self.syncToDisk(backup)
                backupPath = backup
            }
            try migrator.migrate(queue)
            historyBackfillNeeded = !applied.isEmpty && !applied.contains("v8-spend-history")
            // SQLite silently opens a file it cannot write (read-only file, directory or file
            // system) for reading only; every commit would then fail. Write once, in a
            // transaction rolled back (nothing reaches the file), so such a database stops the
            // start instead. (BEGIN IMMEDIATE alone succeeds on a read-only WAL database.)
            do {
                try queue.inDatabase { db in
                    try db.execute(sql: "BEGIN IMMEDIATE")
                    defer { try? db.execute(sql: "ROLLBACK") }
                    try db.execute(sql: "CREATE TABLE main.budgetd_write_check (x)")
                }
            } catch let error as DatabaseError where error.resultCode.primaryResultCode == .SQLITE_READONLY {
                throw StoreError("database \(path) is read-only: budgetd must be able to write it (\(error.message ?? "\(error)"))", sqliteCode: error.resultCode.primaryResultCode.rawValue)
            }
            try loadRecentKeys()
            try loadBookings()
            // The rollup a process that stopped without folding left logged (DailyLog.swift).
            if try queue.read({ db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM daily_log)") ?? false }) {
                try write { w in try w.hot.foldDailyLogLeftOver(w.db) }
            }
            checkpointer?.start()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot open database \(path): \(error)", sqliteCode: (error as? DatabaseError)?.resultCode.primaryResultCode.rawValue)
        }
    }

    /// Runs `PRAGMA quick_check` on its own read-only connection and thread, then calls `done`
    /// with nil when the database is sound, or what is wrong with it.
    public func checkIntegrityInBackground(_ done: @escaping @Sendable (String?) -> Void) {
        let path = self.path
        let thread = Thread {
            do {
                var readOnly = Configuration()
                readOnly.readonly = true
                readOnly.label = "budgetd-background-check"
                let checker = try DatabaseQueue(path: path, configuration: readOnly)
                let check = try checker.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
                try checker.close()
                done(check == "ok" ? nil : (check ?? "no answer"))
            } catch {
                done("\(error)")
            }
        }
        thread.name = "budgetd-integrity-check"
        thread.start()
    }

    /// The bytes of the database file and of its write-ahead log, as they are now.
    public var fileSizes: (database: Int64, wal: Int64) {
        (Checkpointer.fileSize(path), Checkpointer.fileSize(path + "-wal"))
    }

    /// Closes the database; idempotent.
    public func close() {
        if progressTick != nil {
            queue.inDatabase { db in sqlite3_progress_handler(db.sqliteConnection, 0, nil, nil) }
            progressTick = nil
        }
        checkpointer?.stop()
        // The logged rollup into `daily_spend` (a start would do it otherwise).
        if let hot, hot.loggedCommits > 0 { try? write { _ in try hot.foldDaily() } }
        hot?.finalize()
        hot = nil
        try? queue.close()
    }

    /// Calls `tick` from inside the writer connection's statements, every 100,000 steps of
    /// SQLite's virtual machine (a millisecond or so of work), on whichever thread runs them.
    /// For a watchdog: the engine thread can be inside one transaction for long (`retention.run`
    /// of 10⁶ events: 31–37 s, 52–64 s before its rows were found as a range; past systemd's
    /// `WatchdogSec=30`), and a statement that steps is making progress; one stuck on I/O makes
    /// no steps and does not call it.
    public func whileStatementsRun(_ tick: @escaping @Sendable () -> Void) {
        let box = ProgressTick(tick)
        queue.inDatabase { db in
            sqlite3_progress_handler(db.sqliteConnection, 100_000, { context in
                guard let context else { return 0 }
                Unmanaged<ProgressTick>.fromOpaque(context).takeUnretainedValue().tick()
                return 0  // go on
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        progressTick = box
    }

    /// Syncs a file `VACUUM INTO` wrote, and its directory (so the new name survives a power
    /// cut too). SQLite syncs such a copy only as the writing connection's `synchronous` says:
    /// the pre-migration backup, written by the writer's connection, was not synced at all
    /// with `synchronous=OFF`, and no directory was.
    static func syncToDisk(_ path: String) throws {
        for (target, flags) in [(path, O_RDONLY), ((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)] {
            let fd = open(target.isEmpty ? "." : target, flags)
            guard fd >= 0 else { throw StoreError("cannot open \(target) to sync it: \(String(cString: strerror(errno)))") }
            defer { Glibc.close(fd) }
            guard fsync(fd) == 0 else { throw StoreError("cannot sync \(target): \(String(cString: strerror(errno)))") }
        }
    }

    /// Sets `PRAGMA synchronous` on the writer's connection and reads it back.
    ///
    /// Not in `prepareDatabase`: GRDB's WAL set-up (`journalMode = .wal`) runs after it, when
    /// the queue opens, and sets `synchronous = NORMAL` (GRDB's `Database.setUpWALMode`), so
    /// a mode set there never took effect: until this was found, every commit ran at NORMAL,
    /// whatever was configured (the log was synced only by checkpoints, not at each commit).
    /// The value read back is checked, so a later change of that kind stops the start
    /// instead of weakening durability silently (StoreTests).
    static func setSynchronous(_ mode: SynchronousMode, on queue: DatabaseQueue, path: String) throws {
        let level = try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(mode.rawValue)")
            return try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        guard level == mode.level else {
            throw StoreError("database \(path): PRAGMA synchronous reads \(level.map(String.init) ?? "nothing") after setting \(mode.rawValue) (\(mode.level))")
        }
    }

    /// The writer connection's `PRAGMA synchronous` as SQLite reports it (0 OFF, 1 NORMAL, 2 FULL).
    public func synchronousLevel() throws -> Int { try integerPragma("synchronous") }

    /// The database's page size in bytes.
    public func pageSize() throws -> Int { try integerPragma("page_size") }

    /// The writer connection's `PRAGMA secure_delete` as SQLite reports it (0 OFF, 1 ON, 2 FAST).
    public func secureDeleteLevel() throws -> Int { try integerPragma("secure_delete") }

    /// A pragma's integer value on the writer's connection (-1 when it reads nothing).
    private func integerPragma(_ name: String) throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "PRAGMA \(name)") ?? -1 }
    }

    /// Runs `body` in one write transaction: everything it writes commits together (one fsync),
    /// or nothing does if it throws.
    public func write<T>(_ body: (StoreWriter) throws -> T) throws -> T {
        do {
            let result = try queue.write { db in
                let statements: HotStatements
                if let hot {
                    statements = hot
                } else {
                    statements = try HotStatements(
                        db, keys: recentKeys, activeTable: keyTables.active, copy: keyTables.copy,
                        keysPerGeneration: keysPerGeneration, keysPerStep: keysPerStep, backgroundSortKeys: backgroundSortKeys,
                        bookingsThrough: bookingState.through, pendingBookings: bookingState.pending,
                        lastRowid: bookingState.lastRowid, bookingsPerSet: bookingsPerSet
                    )
                    hot = statements
                    bookingState.pending = []  // the statements hold them now
                }
                try statements.stepKeys()
                try statements.stepBookings()
                return try body(StoreWriter(db: db, hot: statements, progress: progressTick?.tick))
            }
            // Committed: its events' keys are found from memory from now on.
            hot?.committed()
            return result
        } catch {
            // What the transaction wrote rolled back with it (an interned catalog version, a
            // day's total).
            hot?.forgetUncommitted()
            if let error = error as? DatabaseError {
                throw StoreError("database write failed: \(error.message ?? "\(error)")", sqliteCode: error.resultCode.primaryResultCode.rawValue)
            }
            throw error
        }
    }

    /// Runs read-only queries.
    public func read<T>(_ body: (StoreReader) throws -> T) throws -> T {
        do {
            return try queue.read { db in try body(StoreReader(db: db, keys: recentKeys, loggedDaily: hot?.loggedDaily ?? [:])) }
        } catch let error as DatabaseError {
            throw StoreError("database read failed: \(error.message ?? "\(error)")", sqliteCode: error.resultCode.primaryResultCode.rawValue)
        }
    }

    /// `budgetd_key_hash(CAST(source AS BLOB), CAST(id AS BLOB))`: `EventKeyHash` in SQL (the
    /// migration to `event_keys`). Blobs, not texts: GRDB reads a text argument up to its first
    /// NUL, and ids may hold one (`"a\u0000b"`), which the ingest path hashes whole.
    static let keyHashFunction = DatabaseFunction("budgetd_key_hash", argumentCount: 2, pure: true) { values in
        // An empty text is an empty blob (which SQLite may hand over as no bytes at all).
        EventKeyHash.of(sourceBytes: Data.fromDatabaseValue(values[0]) ?? Data(), idBytes: Data.fromDatabaseValue(values[1]) ?? Data())
    }

    /// Reads the recent keys into `recentKeys` (the active table's, and a sealed one's whose
    /// copy did not finish: it starts over, its partial generation deleted), and how many
    /// complete generations `event_keys` has.
    func loadRecentKeys() throws {
        let (state, active, sealed) = try queue.write { db in
            guard let state = try Row.fetchOne(db, sql: "SELECT active, generations FROM key_state") else {
                throw StoreError("database \(path): no key_state row")
            }
            let active: Int = state[0]
            let generations: Int64 = state[1]
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM event_keys WHERE gen >= ?)", arguments: [generations]) == true {
                try db.execute(sql: "DELETE FROM event_keys WHERE gen >= ?", arguments: [generations])
            }
            func keys(_ table: Int) throws -> [(hash: Int64, rowid: Int64)] {
                var keys: [(hash: Int64, rowid: Int64)] = []
                let rows = try Row.fetchCursor(db, sql: "SELECT h, event_rowid FROM recent_keys_\(table)")
                while let row = try rows.next() { keys.append((row[0], row[1])) }
                return keys
            }
            return ((active, generations), try keys(active), try keys(1 - active))
        }
        recentKeys.reset(generations: state.1, active: active, sealed: sealed.isEmpty ? nil : sealed, reserving: keysPerGeneration)
        let copy = sealed.isEmpty ? nil : KeyCopy(
            generation: state.1, table: 1 - state.0,
            keys: SortedKeys(RecentKeys.sorted(sealed)), next: 0
        )
        keyTables = (state.0, copy)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE budgets (
                    id TEXT PRIMARY KEY NOT NULL,
                    ordinal INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    description TEXT,
                    budget_type TEXT NOT NULL,
                    total_amount TEXT NOT NULL,
                    spent_amount TEXT NOT NULL,
                    currency TEXT NOT NULL,
                    start_date TEXT NOT NULL,
                    explicit_end TEXT,
                    start_ns INTEGER NOT NULL,
                    end_ns INTEGER,
                    status TEXT NOT NULL,
                    alert80 INTEGER NOT NULL, alert90 INTEGER NOT NULL, alert100 INTEGER NOT NULL,
                    auto_renewal INTEGER NOT NULL,
                    parent_id TEXT,
                    selector TEXT,
                    created_by TEXT,
                    created_at INTEGER NOT NULL,
                    fired TEXT NOT NULL DEFAULT '',
                    successor_id TEXT,
                    cost_count INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE allocations (
                    id TEXT PRIMARY KEY NOT NULL,
                    budget_id TEXT NOT NULL REFERENCES budgets(id),
                    position INTEGER NOT NULL,
                    platform TEXT NOT NULL,
                    service_type TEXT NOT NULL,
                    allocated_amount TEXT NOT NULL,
                    spent_amount TEXT NOT NULL,
                    priority TEXT NOT NULL,
                    is_active INTEGER NOT NULL,
                    depleted_fired INTEGER NOT NULL
                );
                CREATE INDEX allocations_budget ON allocations(budget_id);
                CREATE TABLE cost_allocations (
                    id TEXT PRIMARY KEY NOT NULL,
                    budget_id TEXT NOT NULL,
                    allocation_id TEXT,
                    platform TEXT NOT NULL,
                    service_type TEXT NOT NULL,
                    cost_amount TEXT NOT NULL,
                    currency TEXT NOT NULL,
                    description TEXT,
                    cost_date INTEGER NOT NULL,
                    api_usage_id TEXT,
                    apify_run_id TEXT,
                    event_source TEXT,
                    event_id TEXT,
                    metadata TEXT,
                    created_at INTEGER NOT NULL
                );
                CREATE INDEX cost_allocations_budget_date ON cost_allocations(budget_id, cost_date);
                CREATE TABLE usage_events (
                    rowid INTEGER PRIMARY KEY,
                    source TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    body TEXT NOT NULL,
                    state TEXT NOT NULL,
                    reason TEXT,
                    platform TEXT NOT NULL,
                    service_type TEXT NOT NULL,
                    model TEXT,
                    event_time INTEGER NOT NULL,
                    received_at INTEGER NOT NULL,
                    cost TEXT,
                    currency TEXT,
                    budget_id TEXT,
                    cost_allocation_id TEXT,
                    UNIQUE (source, event_id)
                );
                CREATE INDEX usage_events_state ON usage_events(state) WHERE state <> 'ALLOCATED';
                CREATE TABLE rejected_messages (
                    rowid INTEGER PRIMARY KEY,
                    received_at INTEGER NOT NULL,
                    socket TEXT NOT NULL,
                    topic TEXT,
                    source TEXT,
                    event_id TEXT,
                    reason TEXT NOT NULL,
                    body BLOB,
                    body_size INTEGER NOT NULL
                );
                CREATE TABLE alerts (
                    id TEXT PRIMARY KEY NOT NULL,
                    seq INTEGER NOT NULL UNIQUE,
                    type TEXT NOT NULL,
                    budget_id TEXT,
                    payload TEXT NOT NULL,
                    resolved INTEGER NOT NULL DEFAULT 0,
                    resolved_at INTEGER
                );
                CREATE INDEX alerts_budget ON alerts(budget_id, seq);
                CREATE TABLE outbound (
                    seq INTEGER PRIMARY KEY,
                    topic TEXT NOT NULL,
                    payload TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2-daily-spend") { db in
            // Running totals per budget, UTC day, platform and service: what analytics, forecasts
            // and sparklines read instead of scanning every cost. A cost counts in its budget and in
            // each ancestor (as in the budgets' own totals); roots hold each cost once.
            try db.execute(sql: """
                CREATE TABLE daily_spend (
                    budget_id TEXT NOT NULL,
                    day TEXT NOT NULL,
                    platform TEXT NOT NULL,
                    service_type TEXT NOT NULL,
                    amount TEXT NOT NULL,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (budget_id, day, platform, service_type)
                ) WITHOUT ROWID;
                CREATE INDEX daily_spend_day ON daily_spend(day);
                """)
        }
        migrator.registerMigration("v3-periods") { db in
            try db.execute(sql: "ALTER TABLE budgets ADD COLUMN predecessor_id TEXT")
            try db.execute(sql: "CREATE INDEX cost_allocations_date ON cost_allocations(cost_date)")
        }
        migrator.registerMigration("v4-optimizations") { db in
            // The workflow status of each recommendation (recomputed on every list, so only
            // the status and the last computed figures are kept), and the event-time index
            // that recommendations scan their window of usage by.
            try db.execute(sql: """
                CREATE TABLE optimizations (
                    id TEXT PRIMARY KEY NOT NULL,
                    status TEXT NOT NULL,
                    snapshot TEXT NOT NULL,
                    computed_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE INDEX usage_events_time ON usage_events(event_time);
                """)
        }
        migrator.registerMigration("v5-audit") { db in
            // Every control change: who (the CURVE key, or "local"), when, what, before and after.
            try db.execute(sql: """
                CREATE TABLE audit_log (
                    rowid INTEGER PRIMARY KEY,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    op TEXT NOT NULL,
                    target TEXT,
                    args TEXT NOT NULL,
                    before TEXT,
                    after TEXT
                );
                CREATE INDEX audit_log_target ON audit_log(target, rowid);
                """)
        }
        migrator.registerMigration("v6-ledger") { db in
            // Adjustments (docs/ledger.md): a cost row's kind (COST, CREDIT, REPRICE), the event
            // it corrects and, for re-pricing, the catalog versions; the catalog version an
            // event was priced with.
            try db.execute(sql: """
                ALTER TABLE cost_allocations ADD COLUMN kind TEXT NOT NULL DEFAULT 'COST';
                ALTER TABLE cost_allocations ADD COLUMN corrects_source TEXT;
                ALTER TABLE cost_allocations ADD COLUMN corrects_event_id TEXT;
                ALTER TABLE cost_allocations ADD COLUMN catalog_from TEXT;
                ALTER TABLE cost_allocations ADD COLUMN catalog_to TEXT;
                CREATE INDEX cost_allocations_corrects ON cost_allocations(corrects_event_id, corrects_source)
                  WHERE corrects_event_id IS NOT NULL;
                CREATE INDEX cost_allocations_event ON cost_allocations(event_id) WHERE event_id IS NOT NULL;
                ALTER TABLE usage_events ADD COLUMN catalog_version TEXT;
                """)
        }
        migrator.registerMigration("v7-retention") { db in
            // Retention (docs/ledger.md) deletes by receipt time.
            try db.execute(sql: """
                CREATE INDEX usage_events_received ON usage_events(received_at);
                CREATE INDEX rejected_messages_received ON rejected_messages(received_at);
                CREATE INDEX outbound_created ON outbound(created_at);
                """)
        }
        migrator.registerMigration("v8-spend-history") { db in
            // The spike windows' hourly history (budget id or "budget/allocation" → hour →
            // spend), written at each commit from the ledger, so a start reads a few rows per
            // budget instead of every cost of the last days (issue 8: startup under 1 s).
            try db.execute(sql: """
                CREATE TABLE spend_history (
                    key TEXT NOT NULL,
                    hour INTEGER NOT NULL,
                    amount TEXT NOT NULL,
                    PRIMARY KEY (key, hour)
                ) WITHOUT ROWID;
                CREATE INDEX spend_history_hour ON spend_history(hour);
                """)
            // Only the start's history rebuild read costs by date alone; with the table above
            // it no longer does (the one-time rebuild scans), and every cost paid for the index.
            try db.execute(sql: "DROP INDEX IF EXISTS cost_allocations_date")
        }
        migrator.registerMigration("v9-received-order") { db in
            // Retention finds old events by row order (`prune`); the index on receipt time
            // cost every ingested event a B-tree insert on the commit path (issue 8).
            try db.execute(sql: "DROP INDEX IF EXISTS usage_events_received")
        }
        migrator.registerMigration("v10-event-cost-by-event-row") { db in
            // An event's booking is found through its row's `cost_allocation_id` (`costs(ofEvent:)`);
            // the index of costs by event id was another B-tree insert per ingested event.
            try db.execute(sql: "DROP INDEX IF EXISTS cost_allocations_event")
        }
        migrator.registerMigration("v11-catalog-versions") { db in
            // The catalog version an event was priced with, once per version instead of once per
            // event: the example catalog's version is a 200-byte sentence, a quarter of each
            // stored event (issue 8). Rows written before keep their text in `catalog_version`;
            // new ones name a row of `catalog_versions` in `catalog_id`.
            try db.execute(sql: """
                CREATE TABLE catalog_versions (
                    id INTEGER PRIMARY KEY,
                    version TEXT NOT NULL UNIQUE
                );
                ALTER TABLE usage_events ADD COLUMN catalog_id INTEGER;
                """)
        }
        migrator.registerMigration("v12-bookings-in-event-rows") { db in
            // An ingested event's plain cost is booked in the event's own row (`booked` = 1, with
            // the allocation it counts against) instead of a cost row that repeated the event:
            // the cost row and its two indexes were half of the commit thread's work and 40 % of
            // the bytes written per event (issue 8). Its cost id is `e_` and the row number in 16
            // hex digits. Costs listed by budget read this index beside the cost rows'. Rows
            // written before keep their cost rows. docs/ledger.md, "Where costs are stored".
            try db.execute(sql: """
                ALTER TABLE usage_events ADD COLUMN allocation_id TEXT;
                ALTER TABLE usage_events ADD COLUMN booked INTEGER;
                CREATE INDEX usage_events_booked ON usage_events(budget_id, event_time) WHERE booked IS NOT NULL;
                """)
        }
        migrator.registerMigration("v13-event-keys") { db in
            // Events are found by the hash of their key (EventKeys.swift), not by an index of
            // the key texts, whose random inserts (UUIDs) cost a page per event (issue 8). The
            // table is rebuilt without its UNIQUE (source, event_id) (SQLite cannot drop a
            // constraint), row numbers kept (cost ids `e_…` are made of them); the keys stored
            // so far become generation 0.
            try db.execute(sql: """
                CREATE TABLE usage_events_new (
                    rowid INTEGER PRIMARY KEY,
                    source TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    body TEXT NOT NULL,
                    state TEXT NOT NULL,
                    reason TEXT,
                    platform TEXT NOT NULL,
                    service_type TEXT NOT NULL,
                    model TEXT,
                    event_time INTEGER NOT NULL,
                    received_at INTEGER NOT NULL,
                    cost TEXT,
                    currency TEXT,
                    budget_id TEXT,
                    cost_allocation_id TEXT,
                    catalog_version TEXT,
                    catalog_id INTEGER,
                    allocation_id TEXT,
                    booked INTEGER
                );
                INSERT INTO usage_events_new (rowid, source, event_id, body, state, reason, platform, service_type, model,
                    event_time, received_at, cost, currency, budget_id, cost_allocation_id, catalog_version, catalog_id,
                    allocation_id, booked)
                  SELECT rowid, source, event_id, body, state, reason, platform, service_type, model,
                    event_time, received_at, cost, currency, budget_id, cost_allocation_id, catalog_version, catalog_id,
                    allocation_id, booked FROM usage_events;
                DROP TABLE usage_events;
                ALTER TABLE usage_events_new RENAME TO usage_events;
                CREATE INDEX usage_events_state ON usage_events(state) WHERE state <> 'ALLOCATED';
                CREATE INDEX usage_events_time ON usage_events(event_time);
                CREATE INDEX usage_events_booked ON usage_events(budget_id, event_time) WHERE booked IS NOT NULL;
                CREATE TABLE event_keys (
                    gen INTEGER NOT NULL,
                    h INTEGER NOT NULL,
                    event_rowid INTEGER NOT NULL,
                    PRIMARY KEY (gen, h, event_rowid)
                ) WITHOUT ROWID;
                CREATE TABLE recent_keys_0 (event_rowid INTEGER PRIMARY KEY, h INTEGER NOT NULL);
                CREATE TABLE recent_keys_1 (event_rowid INTEGER PRIMARY KEY, h INTEGER NOT NULL);
                CREATE TABLE key_state (active INTEGER NOT NULL, generations INTEGER NOT NULL);
                INSERT INTO event_keys (gen, h, event_rowid)
                  SELECT 0, budgetd_key_hash(CAST(source AS BLOB), CAST(event_id AS BLOB)) AS h, rowid
                  FROM usage_events ORDER BY h, rowid;
                INSERT INTO key_state (active, generations) SELECT 0, EXISTS (SELECT 1 FROM event_keys);
                """)
        }
        migrator.registerMigration("v14-booking-index") { db in
            // A budget's bookings are found through `booking_index`, written a sealed set at a
            // time in key order (Bookings.swift), not through an index of the event rows whose
            // every insert lands in its budget's part of the tree (issue 8: a page per budget
            // per commit, 2 µs of CPU and 340 bytes written per event at 20 budgets). The
            // bookings stored so far are all in it.
            try db.execute(sql: """
                CREATE TABLE booking_index (
                    budget_id TEXT NOT NULL,
                    event_time INTEGER NOT NULL,
                    event_rowid INTEGER NOT NULL,
                    PRIMARY KEY (budget_id, event_time, event_rowid)
                ) WITHOUT ROWID;
                INSERT INTO booking_index (budget_id, event_time, event_rowid)
                  SELECT budget_id, event_time, rowid FROM usage_events
                  WHERE booked IS NOT NULL AND budget_id IS NOT NULL ORDER BY budget_id, event_time, rowid;
                CREATE TABLE booking_state (through INTEGER NOT NULL);
                INSERT INTO booking_state (through) SELECT coalesce(max(rowid), 0) FROM usage_events;
                DROP INDEX usage_events_booked;
                """)
        }
        migrator.registerMigration("v15-daily-log") { db in
            // The daily rollup's additions of a commit, logged in one row and folded into
            // `daily_spend` every so many commits (DailyLog.swift).
            try db.execute(sql: "CREATE TABLE daily_log (id INTEGER PRIMARY KEY, rows TEXT NOT NULL)")
        }
        return migrator
    }
}

/// The closure of `Store.whileStatementsRun`, boxed for SQLite's C callback.
private final class ProgressTick: Sendable {
    let tick: @Sendable () -> Void
    init(_ tick: @escaping @Sendable () -> Void) { self.tick = tick }
}
