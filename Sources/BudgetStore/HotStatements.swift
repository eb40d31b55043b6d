import BudgetCore
import GRDB
import GRDBSQLite

/// The copy of a sealed recent-keys table into generation `generation` of `event_keys`: its
/// keys sorted, and how many are copied (EventKeys.swift).
struct KeyCopy {
    let generation: Int64
    let table: Int
    let keys: SortedKeys
    var next: Int
}

/// The statements every ingested event runs (the dedup lookup, the event insert; the cost
/// insert for the few events whose cost is not booked in their own row: credits, corrections),
/// prepared once per connection and bound through SQLite's C API.
///
/// GRDB's general binding boxes every argument in an existential and builds an argument array
/// per call; on the ingest path that was a tenth of the daemon's CPU per event. These
/// statements are owned by the store's single writer and used only inside `Store.write`.
final class HotStatements {
    let connection: OpaquePointer
    /// The dedup lookup (`findByRowSQL`, `findByGenerationsSQL`) and the key of each inserted
    /// event (the active recent-keys table), and the copy into generations: EventKeys.swift.
    let findByRow: OpaquePointer
    let findByGenerations: OpaquePointer
    /// Into `recent_keys_0` and `recent_keys_1`.
    let insertRecentKey: [OpaquePointer]
    /// The same for a multi-row statement's events: by table, then by size (`rowsPerInsert`).
    let insertRecentKeys: [[OpaquePointer]]
    let insertGenerationKey: OpaquePointer
    /// The same for `keysPerCopyInsert` keys at once.
    let insertGenerationKeys: OpaquePointer
    static let keysPerCopyInsert = 32
    let keys: RecentKeys
    /// The recent-keys table new keys go to (0 or 1), and the copy of the sealed one under way.
    private(set) var activeTable: Int
    private(set) var copy: KeyCopy?
    /// The keys sealed once the active set holds this many, and copied this many per transaction.
    let keysPerGeneration: Int
    let keysPerStep: Int
    /// Sealed sets of at least this many keys are sorted on a thread of their own
    /// (`SortedKeys`); smaller ones (tests) at once.
    let backgroundSortKeys: Int
    /// `activeTable` and `copy` as the transaction found them (restored if it fails), whether it
    /// sealed the active set, and whether it completes the copy.
    private var before: (activeTable: Int, copy: KeyCopy?, sealed: Bool)?
    private var completing = false
    /// Events inserted by this transaction and by the last committed one: a step of the copy
    /// takes at least twice the last one's, so the copy outpaces the keys that come in (and the
    /// sets sealed stay near `keysPerGeneration`), while commits of small batches copy little.
    private var transactionEvents = 0
    private(set) var lastTransactionEvents = 0
    /// Keys of the events this transaction inserted: found by `find` before the commit, and
    /// handed to `keys` after it (`committed`), or dropped (`forgetUncommitted`). By hash only
    /// once `find` asks (the staged path never does; a map of every key cost each event a
    /// dictionary insert on the commit thread), kept up to date after.
    private var uncommittedKeys: [(hash: Int64, rowid: Int64)] = []
    private var uncommittedRows: [Int64: [Int64]]?
    /// Into `booking_index`, one and `keysPerCopyInsert` at a time, and its `through`.
    let insertBooking: OpaquePointer
    let insertBookings: OpaquePointer
    let updateBookingsThrough: OpaquePointer
    /// Bookings.swift: the bookings of committed rows not yet sealed, in row order; the set
    /// being copied; this transaction's bookings; every row up to `bookingsThrough` has its
    /// booking in `booking_index` (as committed).
    var pendingBookings: [Booking]
    var bookingCopy: BookingCopy?
    var uncommittedBookings: [Booking] = []
    var bookingsThrough: Int64
    let bookingsPerSet: Int
    /// The largest row number committed (or inserted by this transaction): where a set sealed
    /// now ends.
    var lastRowid: Int64 = 0
    /// The booking state as the transaction found it (restored if it fails), and whether it
    /// completes the copy.
    var bookingsBefore: (pending: [Booking], copy: BookingCopy?, through: Int64, lastRowid: Int64, skipped: Set<Int64>)?
    /// Rows retention deleted while their bookings were in the set being copied: not copied.
    var skippedBookingRows: Set<Int64> = []
    var completingBookings = false
    let insertEvent: OpaquePointer
    let insertCost: OpaquePointer
    /// `insertEvent` and `insertCost` for several rows at once (a committed batch's rows), one
    /// statement for each size of `rowsPerInsert` and `costRowsPerInsert`.
    let insertEvents: [OpaquePointer]
    let insertCosts: [OpaquePointer]
    /// Rows per multi-row INSERT of a committed batch's events, largest first: each
    /// statement takes the largest size that the rows left fill, and the last few go one by one.
    /// One statement step for several rows instead of one each. In a C benchmark of the event
    /// table, 16 rows a statement took 4.8 µs per row against 6.7 one at a time. When the rows of
    /// a statement touched several pages (a cost landed in its budget's leaf of a by-budget
    /// index, since replaced by `booking_index`), SQLite's statement journal
    /// for them spilled past 64 KiB to a temporary file: with 16 rows, 38 % of the commit
    /// thread's samples were in `pwrite`, hence 8. Without that index a statement's rows append
    /// to the ends of the table and of the time index, and 32 rows cost the commit thread less
    /// (fifteenth session, `scripts/bench-cpu.sh 1000000 20`, alternately: 2.6–2.7 → 2.4–2.5 µs
    /// per event); 8 stays for the rest of a small commit (an acknowledged client's ~95 events).
    static let rowsPerInsert = [32, 8]
    /// The same for cost rows, which still land in their budget's part of the cost table's
    /// indexes (by budget and date, by date): 8, as measured then.
    static let costRowsPerInsert = [8]
    let findDaily: OpaquePointer
    let updateDaily: OpaquePointer
    let insertDaily: OpaquePointer
    let updateTotals: OpaquePointer
    let updateAllocationTotals: OpaquePointer
    let upsertHistory: OpaquePointer
    let insertCatalog: OpaquePointer
    let findCatalog: OpaquePointer
    /// `catalog_versions` ids by version, as this connection has written or read them; emptied
    /// when a transaction fails (`forgetUncommitted`), since one made in it is gone.
    private var catalogIDs: [String: Int64] = [:]
    /// `daily_spend` rows as this connection last wrote or read them (only it writes the table),
    /// so adding to a day's total needs no read first; emptied when a transaction fails, and
    /// when it holds `maxDailyRows` (days go by: old keys are not touched again).
    private var dailyRows: [DailyKey: (amount: Money, count: Int64)] = [:]
    static let maxDailyRows = 50_000
    /// DailyLog.swift: the sums of what `daily_log` holds (as committed, or as this
    /// transaction wrote), the commits logged since the last fold, and both as the transaction
    /// found them (restored if it fails).
    var loggedDaily: DailySums = [:]
    var loggedCommits = 0
    var dailyBefore: (sums: DailySums, commits: Int)?
    let insertDailyLog: OpaquePointer
    /// Its buffers are reused from one statement to the next (no allocation per event).
    var binder = Binder()

    init(
        _ db: Database, keys: RecentKeys, activeTable: Int, copy: KeyCopy?, keysPerGeneration: Int, keysPerStep: Int,
        backgroundSortKeys: Int, bookingsThrough: Int64 = 0, pendingBookings: [Booking] = [], lastRowid: Int64 = 0,
        bookingsPerSet: Int = Store.defaultBookingsPerSet
    ) throws {
        self.lastRowid = lastRowid
        self.keys = keys
        self.backgroundSortKeys = backgroundSortKeys
        self.bookingsThrough = bookingsThrough
        self.pendingBookings = pendingBookings
        self.bookingsPerSet = bookingsPerSet
        self.activeTable = activeTable
        self.copy = copy
        self.keysPerGeneration = keysPerGeneration
        self.keysPerStep = keysPerStep
        guard let connection = db.sqliteConnection else {
            throw DatabaseError(resultCode: .SQLITE_MISUSE, message: "the database is closed")
        }
        self.connection = connection
        func prepare(_ sql: String) throws -> OpaquePointer {
            var statement: OpaquePointer?
            let rc = sqlite3_prepare_v3(connection, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
            guard rc == SQLITE_OK, let statement else {
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(connection)), sql: sql)
            }
            return statement
        }
        /// An INSERT of `rows` rows of `columns` parameters each.
        func insert(_ head: String, columns: Int, rows: Int, verb: String = "INSERT INTO") -> String {
            let row = "(" + Array(repeating: "?", count: columns).joined(separator: ",") + ")"
            return verb + " " + head + " VALUES " + Array(repeating: row, count: rows).joined(separator: ",")
        }
        let eventHead = """
            usage_events (source, event_id, body, state, reason, platform, service_type, model,
              event_time, received_at, cost, currency, budget_id, cost_allocation_id, catalog_id, allocation_id, booked)
            """
        let costHead = """
            cost_allocations (id, budget_id, allocation_id, platform, service_type, cost_amount, currency,
              description, cost_date, api_usage_id, apify_run_id, event_source, event_id, metadata, created_at,
              kind, corrects_source, corrects_event_id, catalog_from, catalog_to)
            """
        findByRow = try prepare(findByRowSQL)
        findByGenerations = try prepare(findByGenerationsSQL)
        // OR REPLACE: a row number can come back if the newest event rows are deleted (retention
        // keeps the newest row; by hand, say), and then the key of the row that had it is stale.
        insertRecentKey = try (0..<2).map { try prepare("INSERT OR REPLACE INTO recent_keys_\($0) (event_rowid, h) VALUES (?, ?)") }
        insertRecentKeys = try (0..<2).map { table in
            try Self.rowsPerInsert.map {
                try prepare(insert("recent_keys_\(table) (event_rowid, h)", columns: 2, rows: $0, verb: "INSERT OR REPLACE INTO"))
            }
        }
        insertGenerationKey = try prepare("INSERT OR IGNORE INTO event_keys (gen, h, event_rowid) VALUES (?, ?, ?)")
        insertGenerationKeys = try prepare(insert("event_keys (gen, h, event_rowid)", columns: 3, rows: Self.keysPerCopyInsert, verb: "INSERT OR IGNORE INTO"))
        insertEvent = try prepare(insert(eventHead, columns: 17, rows: 1))
        insertCost = try prepare(insert(costHead, columns: 20, rows: 1))
        // OR FAIL: a statement of several rows that fails part way need not undo the rows before
        // it (any failure rolls the whole transaction back anyway: `Store.write`). SQLite still
        // keeps a statement journal for them (see `rowsPerInsert`).
        insertEvents = try Self.rowsPerInsert.map { try prepare(insert(eventHead, columns: 17, rows: $0, verb: "INSERT OR FAIL INTO")) }
        insertCosts = try Self.costRowsPerInsert.map { try prepare(insert(costHead, columns: 20, rows: $0, verb: "INSERT OR FAIL INTO")) }
        findDaily = try prepare("SELECT amount, count FROM daily_spend WHERE budget_id = ? AND day = ? AND platform = ? AND service_type = ?")
        updateDaily = try prepare("UPDATE daily_spend SET amount = ?, count = ? WHERE budget_id = ? AND day = ? AND platform = ? AND service_type = ?")
        insertDaily = try prepare("INSERT INTO daily_spend (amount, count, budget_id, day, platform, service_type) VALUES (?,?,?,?,?,?)")
        insertDailyLog = try prepare("INSERT INTO daily_log (rows) VALUES (?)")
        updateTotals = try prepare("UPDATE budgets SET spent_amount = ?, cost_count = ?, status = ?, fired = ?, successor_id = ? WHERE id = ?")
        updateAllocationTotals = try prepare("UPDATE allocations SET spent_amount = ?, is_active = ?, depleted_fired = ? WHERE id = ? AND budget_id = ?")
        upsertHistory = try prepare("""
            INSERT INTO spend_history (key, hour, amount) VALUES (?,?,?)
            ON CONFLICT (key, hour) DO UPDATE SET amount = excluded.amount
            """)
        // OR IGNORE: a copy interrupted by a stop starts over, and finds its first rows there.
        insertBooking = try prepare("INSERT OR IGNORE INTO booking_index (budget_id, event_time, event_rowid) VALUES (?, ?, ?)")
        insertBookings = try prepare(insert("booking_index (budget_id, event_time, event_rowid)", columns: 3, rows: Self.keysPerCopyInsert, verb: "INSERT OR IGNORE INTO"))
        updateBookingsThrough = try prepare("UPDATE booking_state SET through = ?")
        insertCatalog = try prepare("INSERT INTO catalog_versions (version) VALUES (?) ON CONFLICT (version) DO NOTHING")
        findCatalog = try prepare("SELECT id FROM catalog_versions WHERE version = ?")
    }

    /// Must run before the connection closes (an unfinalized statement keeps it open).
    func finalize() {
        for statement in [
            findByRow, findByGenerations, insertRecentKey[0], insertRecentKey[1], insertGenerationKey, insertGenerationKeys, insertEvent, insertCost, findDaily, updateDaily, insertDaily, insertDailyLog, updateTotals, updateAllocationTotals, upsertHistory,
            insertCatalog, findCatalog, insertBooking, insertBookings, updateBookingsThrough,
        ] + insertRecentKeys.joined() + insertEvents + insertCosts { sqlite3_finalize(statement) }
    }

    func find(source: String, id: String) throws -> EventKey? {
        try findRow(source: source, id: id)?.key
    }

    /// The committed (or this transaction's) event with key (source, id), and its row number.
    func findRow(source: String, id: String) throws -> (key: EventKey, rowid: Int64)? {
        let hash = EventKeyHash.of(source: source, id: id)
        if uncommittedRows == nil {
            var made: [Int64: [Int64]] = [:]
            for (hash, rowid) in uncommittedKeys { made[hash, default: []].append(rowid) }
            uncommittedRows = made
        }
        var rows = uncommittedRows?[hash] ?? []
        let generations = keys.candidates(hash, into: &rows)
        return try binder.findEvent(
            byRow: findByRow, byGenerations: findByGenerations, source: source, id: id, hash: hash,
            rows: rows, generations: generations, failure: error
        )
    }

    func insert(_ e: StoredEvent) throws {
        try insert(events: [e])
    }

    func insert(_ c: CostRecord, createdAt: Timestamp) throws {
        try insertRows(1, single: insertCost, multi: insertCosts, rowsPerStatement: Self.costRowsPerInsert) { _ in bind(c, createdAt: createdAt) }
    }

    /// Inserts `events` in order (as one statement each would), `rowsPerInsert` at a time.
    func insert(events: [StoredEvent]) throws {
        // Before any binding starts: a new version is written through the binder too. Events
        // priced from the catalog share its version string (one storage, so `==` is quick):
        // looked up once, not hashed (~100 bytes) per event; and no closure over each whole
        // event, which the lookup's writes made the compiler copy (issue 8).
        var catalogs: [Int64?] = []
        catalogs.reserveCapacity(events.count)
        var last: (version: String, id: Int64)?
        for i in events.indices {
            guard let version = events[i].catalogVersion else {
                catalogs.append(nil)
                continue
            }
            if let last, last.version == version {
                catalogs.append(last.id)
            } else {
                let id = try catalogID(version)
                last = (version, id)
                catalogs.append(id)
            }
        }
        transactionEvents += events.count
        // Read in place through the buffer: `events[i]` (or `let e = events[i]`) copied each
        // event, a retain and a release per string (issue 8: 3 % of the commit thread).
        try events.withUnsafeBufferPointer { events in
            try insertRows(events.count, single: insertEvent, multi: insertEvents, rowsPerStatement: Self.rowsPerInsert, bind: { Self.bind(events.baseAddress! + $0, catalog: catalogs[$0], into: &binder) }) { first, rows, size in
                // A statement's rows take the row numbers after the largest, one by one (SQLite's
                // rule for a table without AUTOINCREMENT), so they end at the last one inserted.
                let last = sqlite3_last_insert_rowid(connection)
                binder.begin(size.map { insertRecentKeys[activeTable][$0] } ?? insertRecentKey[activeTable])
                for k in 0..<rows {
                    let rowid = last - Int64(rows - 1 - k)
                    let hash = events[first + k].keyHash ?? EventKeyHash.of(source: events[first + k].source, id: events[first + k].id)
                    if events[first + k].booked, let budgetId = events[first + k].budgetId {
                        uncommittedBookings.append(Booking(budgetId: budgetId, time: events[first + k].time.nanosecondsSinceEpoch, rowid: rowid))
                    }
                    lastRowid = max(lastRowid, rowid)
                    binder.int(rowid)
                    binder.int(hash)
                    uncommittedKeys.append((hash, rowid))
                    if uncommittedRows != nil { uncommittedRows?[hash, default: []].append(rowid) }
                }
                try binder.run(step)
            }
        }
    }

    /// At the start of each write transaction: seals the active keys once there are
    /// `keysPerGeneration` of them (new keys go to the other table from now on), then copies
    /// the next `keysPerStep` sealed keys into their generation; the last step empties the
    /// sealed table and counts the generation (EventKeys.swift).
    func stepKeys() throws {
        before = (activeTable, copy, false)
        if copy == nil && !keys.hasSealed && keys.activeCount >= keysPerGeneration {
            let sealedTable = activeTable
            let generation = keys.generations
            let sealed = keys.seal(reserving: keysPerGeneration)
            before?.sealed = true
            activeTable = 1 - sealedTable
            try execute("UPDATE key_state SET active = \(activeTable)")
            let sorted = sealed.count < backgroundSortKeys ? SortedKeys(sealed.sorted()) : SortedKeys(sortingInBackground: { sealed.sorted() })
            copy = KeyCopy(generation: generation, table: sealedTable, keys: sorted, next: 0)
        }
        // Until the keys are sorted, transactions copy nothing (the sealed set is still found in
        // memory meanwhile).
        guard var c = copy, let sorted = c.keys.result else { return }
        let end = min(c.next + max(keysPerStep, 2 * lastTransactionEvents), sorted.count)
        try insertRows(end - c.next, single: insertGenerationKey, multi: [insertGenerationKeys], rowsPerStatement: [Self.keysPerCopyInsert]) {
            let key = sorted[c.next + $0]
            binder.int(c.generation)
            binder.int(key.hash)
            binder.int(key.rowid)
        }
        c.next = end
        if end == sorted.count {
            // No WHERE: SQLite empties the table without reading its rows.
            try execute("DELETE FROM recent_keys_\(c.table)")
            try execute("UPDATE key_state SET generations = \(c.generation + 1)")
            completing = true
        }
        copy = c
    }

    func execute(_ sql: String) throws {
        let rc = sqlite3_exec(connection, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    /// The transaction committed: its events' keys are found from memory from now on, and a
    /// generation it completed in `event_keys`.
    func committed() {
        keys.add(uncommittedKeys)
        uncommittedKeys.removeAll(keepingCapacity: true)
        uncommittedRows = nil
        if completing {
            keys.completeGeneration()
            copy = nil
            completing = false
        }
        before = nil
        dailyBefore = nil
        committedBookings()
        lastTransactionEvents = transactionEvents
        transactionEvents = 0
    }

    /// Inserts `costs` in order (as one statement each would), `costRowsPerInsert` at a time.
    func insert(costs: [(cost: CostRecord, createdAt: Timestamp)]) throws {
        try insertRows(costs.count, single: insertCost, multi: insertCosts, rowsPerStatement: Self.costRowsPerInsert) {
            bind(costs[$0].cost, createdAt: costs[$0].createdAt)
        }
    }

    /// Runs, while rows are left, the largest statement of `multi` whose size (the same index of
    /// `rowsPerStatement`, largest first) they fill, else `single`; `bind(i)` binds row i's
    /// parameters; `after(first, rows, size)` runs after each statement (`size`: the index of the
    /// multi-row statement, nil for `single`).
    func insertRows(
        _ count: Int, single: OpaquePointer, multi: [OpaquePointer], rowsPerStatement: [Int],
        bind: (Int) -> Void, after: (_ first: Int, _ rows: Int, _ size: Int?) throws -> Void = { _, _, _ in }
    ) throws {
        var i = 0
        while i < count {
            // The largest statement the rows left fill (its index in `rowsPerStatement`), or one row.
            let size = rowsPerStatement.firstIndex { count - i >= $0 }
            let rows = size.map { rowsPerStatement[$0] } ?? 1
            binder.begin(size.map { multi[$0] } ?? single)
            for row in i..<(i + rows) { bind(row) }
            try binder.run(step)
            try after(i, rows, size)
            i += rows
        }
    }

    /// The 17 parameters of an event row.
    /// Through a pointer, field by field: a `StoredEvent` argument read from the array was
    /// copied whole (a retain and a release of each of its strings) because the binder is
    /// written while it is read (issue 8: 4 % of the commit thread).
    private static func bind(_ e: UnsafePointer<StoredEvent>, catalog: Int64?, into binder: inout Binder) {
        binder.text(e.pointee.source)
        binder.text(e.pointee.id)
        binder.text(e.pointee.body)
        binder.text(e.pointee.state.rawValue)
        binder.text(e.pointee.reason)
        binder.text(e.pointee.platform)
        binder.text(e.pointee.serviceType.rawValue)
        binder.text(e.pointee.model)
        binder.int(e.pointee.time.nanosecondsSinceEpoch)
        binder.int(e.pointee.receivedAt.nanosecondsSinceEpoch)
        binder.text(e.pointee.cost?.description)
        binder.text(e.pointee.currency)
        binder.text(e.pointee.budgetId)
        binder.text(e.pointee.costAllocationId)
        if let catalog { binder.int(catalog) } else { binder.text(nil) }
        binder.text(e.pointee.allocationId)
        if e.pointee.booked { binder.int(1) } else { binder.text(nil) }
    }

    /// The 20 parameters of a cost row.
    private func bind(_ c: CostRecord, createdAt: Timestamp) {
        binder.text(c.id)
        binder.text(c.budgetId)
        binder.text(c.allocationId)
        binder.text(c.platform)
        binder.text(c.serviceType.rawValue)
        binder.text(c.costAmount.description)
        binder.text(c.currency)
        binder.text(c.description)
        binder.int(c.costDate.nanosecondsSinceEpoch)
        binder.text(c.apiUsageId)
        binder.text(c.apifyRunId)
        binder.text(c.eventSource)
        binder.text(c.eventId)
        binder.text(c.metadata.map { JSONValue.object($0).serialized() })
        binder.int(createdAt.nanosecondsSinceEpoch)
        binder.text(c.kind.rawValue)
        binder.text(c.corrects?.source)
        binder.text(c.corrects?.id)
        binder.text(c.catalogFrom)
        binder.text(c.catalogTo)
    }

    /// The `catalog_versions` row of `version`, made if there is none.
    func catalogID(_ version: String) throws -> Int64 {
        if let id = catalogIDs[version] { return id }
        binder.begin(insertCatalog)
        binder.text(version)
        try binder.run(step)
        binder.begin(findCatalog)
        binder.text(version)
        let id: Int64 = try binder.run { statement in
            let rc = sqlite3_step(statement)
            guard rc == SQLITE_ROW else { throw error(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc) }
            return sqlite3_column_int64(statement, 0)
        }
        catalogIDs[version] = id
        return id
    }

    /// What a failed transaction may have written is gone: forget what was learnt in it.
    func forgetUncommitted() {
        catalogIDs.removeAll()
        dailyRows.removeAll()
        if let dailyBefore { (loggedDaily, loggedCommits) = dailyBefore }
        dailyBefore = nil
        uncommittedKeys.removeAll()
        uncommittedRows = nil
        if let before {
            activeTable = before.activeTable
            copy = before.copy
            if before.sealed { keys.unseal() }
        }
        before = nil
        completing = false
        forgetUncommittedBookings()
        transactionEvents = 0
    }

    /// Adds to a day's running total: read (unless `dailyRows` knows it), add exactly, then
    /// update the row in place (or insert it). With 10⁴ budgets a batch does this for thousands
    /// of keys: through GRDB's general binding and INSERT OR REPLACE (a delete and an insert) it
    /// was a third of the commit thread's time, and the read half of what was left.
    func addDaily(_ key: DailyKey, amount: Money, count: Int64) throws {
        let existing: (amount: Money, count: Int64)?
        if let known = dailyRows[key] {
            existing = known
        } else {
            binder.begin(findDaily)
            bindKey(key)
            let stored: (amount: String, count: Int64)? = try binder.run { statement in
                let rc = sqlite3_step(statement)
                if rc == SQLITE_DONE { return nil }
                guard rc == SQLITE_ROW else { throw error(rc) }
                return (columnText(statement, 0) ?? "", sqlite3_column_int64(statement, 1))
            }
            existing = try stored.map { stored in
                do { return (try Money(parsing: stored.amount), stored.count) } catch {
                    throw StoreError("corrupt amount in database: \(stored.amount)")
                }
            }
        }
        let total = amount + (existing?.amount ?? .zero)
        let n = count + (existing?.count ?? 0)
        binder.begin(existing == nil ? insertDaily : updateDaily)
        binder.text(total.description)
        binder.int(n)
        bindKey(key)
        try binder.run(step)
        if dailyRows.count >= Self.maxDailyRows { dailyRows.removeAll(keepingCapacity: true) }
        dailyRows[key] = (total, n)
    }

    /// `StoreWriter.saveTotals`'s updates; false when a row was not there (the caller then
    /// saves the whole budget).
    func updateTotals(_ b: Budget) throws -> Bool {
        binder.begin(updateTotals)
        binder.text(b.spentAmount.description)
        binder.int(b.costCount)
        binder.text(b.status.rawValue)
        binder.text(b.fired.map(\.rawValue).sorted().joined(separator: ","))
        binder.text(b.successorId)
        binder.text(b.id)
        try binder.run(step)
        guard sqlite3_changes(connection) == 1 else { return false }
        for a in b.allocations {
            binder.begin(updateAllocationTotals)
            binder.text(a.spentAmount.description)
            binder.int(a.isActive ? 1 : 0)
            binder.int(a.depletedFired ? 1 : 0)
            binder.text(a.id)
            binder.text(b.id)
            try binder.run(step)
            if sqlite3_changes(connection) != 1 { return false }
        }
        return true
    }

    /// A spike-history bucket, updated in place (INSERT OR REPLACE deleted and inserted it).
    func saveHistory(key: String, hour: Int64, amount: Money) throws {
        binder.begin(upsertHistory)
        binder.text(key)
        binder.int(hour)
        binder.text(amount.description)
        try binder.run(step)
    }

    private func bindKey(_ key: DailyKey) {
        binder.text(key.budgetId)
        binder.text(key.day)
        binder.text(key.platform)
        binder.text(key.serviceType.rawValue)
    }

    func step(_ statement: OpaquePointer) throws {
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE else { throw error(rc) }
    }

    private func error(_ rc: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(connection)))
    }
}

/// A text column of the current row (nil for NULL).
func columnText(_ statement: OpaquePointer, _ i: Int32) -> String? {
    guard let text = sqlite3_column_text(statement, i) else { return nil }
    let count = Int(sqlite3_column_bytes(statement, i))
    return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
}

/// The dedup key of the current row of `findByRowSQL` or `findByGenerationsSQL`.
func eventKey(_ statement: OpaquePointer) -> EventKey {
    EventKey(
        body: columnText(statement, 0) ?? "",
        state: EventState(rawValue: columnText(statement, 1) ?? "") ?? .unpriced,
        reason: columnText(statement, 2)
    )
}

/// SQLite's SQLITE_STATIC: the text stays where it is until the statement is reset.
private let staticText = unsafeBitCast(0, to: sqlite3_destructor_type.self)

/// Collects one statement's parameters, left to right, then binds and steps them in one go:
/// texts are copied once into one buffer and bound in place (SQLITE_STATIC) while the
/// statement runs, instead of SQLite copying each into its own allocation (SQLITE_TRANSIENT).
struct Binder {
    enum Value {
        case null
        case text(offset: Int, count: Int)
        case int(Int64)
    }

    private var statement: OpaquePointer?
    private var values: [Value] = []
    private var bytes: [UInt8] = []

    /// Starts the parameters of `statement`, keeping the buffers' capacity.
    mutating func begin(_ statement: OpaquePointer) {
        self.statement = statement
        values.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    mutating func text(_ value: String?) {
        guard let value else {
            values.append(.null)
            return
        }
        let offset = bytes.count
        bytes.append(contentsOf: value.utf8)
        values.append(.text(offset: offset, count: bytes.count - offset))
    }

    mutating func int(_ value: Int64) {
        values.append(.int(value))
    }

    /// Binds everything and runs `body` (which steps the statement) while the texts are valid.
    /// The statement is reset and its bindings cleared before the buffer goes away.
    mutating func run<T>(_ body: (OpaquePointer) throws -> T) rethrows -> T {
        let statement = self.statement!
        // One byte more, so an empty text has an address (a nil one would bind NULL).
        bytes.append(0)
        return try bytes.withUnsafeBufferPointer { base in
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            for (i, value) in values.enumerated() {
                let index = Int32(i + 1)
                switch value {
                case .null: sqlite3_bind_null(statement, index)
                case .int(let n): sqlite3_bind_int64(statement, index, n)
                case .text(let offset, let count):
                    base.baseAddress!.advanced(by: offset).withMemoryRebound(to: CChar.self, capacity: max(count, 1)) {
                        _ = sqlite3_bind_text(statement, index, $0, Int32(count), staticText)
                    }
                }
            }
            return try body(statement)
        }
    }
}
