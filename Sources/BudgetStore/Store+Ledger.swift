public import BudgetCore
import Foundation
import GRDB

// Ledger operations' queries: event lookup, adjustments of an event, re-pricing candidates,
// cursor pages, and the online backup (docs/ledger.md).

/// A cursor position in a listing; encoded as an opaque string for clients.
public enum PageCursor: Sendable, Hashable {
    /// `cost.list`: newest first by (cost_date, bookings of events before other costs, row
    /// number); the last cost returned: an event's booking, numbered by its event row
    /// (`eventRow`), or another cost, by its cost row (`StoreReader.costRows`).
    case costs(costDate: Int64, rowid: Int64, eventRow: Bool)
    /// `event.list`: the last rowid taken from each table (`Int64.max` when none yet).
    case events(eventRowid: Int64, rejectedRowid: Int64)
    /// `alert.list`: the last seq returned.
    case alerts(seq: Int64)

    public var text: String {
        switch self {
        case .costs(let d, let r, let eventRow): "\(eventRow ? "b" : "c").\(d).\(r)"
        case .events(let e, let r): "e.\(e).\(r)"
        case .alerts(let s): "a.\(s)"
        }
    }

    /// Reads a cursor from its text; nil when it is not one.
    public init?(text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let numbers = parts.dropFirst().compactMap { Int64($0) }
        guard numbers.count == parts.count - 1 else { return nil }
        switch (parts.first, numbers.count) {
        case ("c", 2): self = .costs(costDate: numbers[0], rowid: numbers[1], eventRow: false)
        case ("b", 2): self = .costs(costDate: numbers[0], rowid: numbers[1], eventRow: true)
        case ("e", 2): self = .events(eventRowid: numbers[0], rejectedRowid: numbers[1])
        case ("a", 1): self = .alerts(seq: numbers[0])
        default: return nil
        }
    }
}

/// One page of a listing: the items and where the next page starts (nil at the end).
public struct Page: Sendable {
    public var items: [JSONValue]
    public var nextCursor: PageCursor?
}

extension StoreReader {
    /// A stored (accepted) event by (source, id).
    public func event(source: String, id: String) throws -> StoredEvent? {
        try eventRow(source: source, id: id).map(storedEvent)
    }

    /// The `usage_events` row of (source, id), its key bound byte for byte (`StoredColumns`),
    /// found by the key's hash (EventKeys.swift).
    func eventRow(source: String, id: String) throws -> Row? {
        var rows: [Int64] = []
        if let hot {
            // In a write transaction: the same lookup as the ingest path's, this transaction's rows included.
            guard let found = try hot.findRow(source: source, id: id) else { return nil }
            rows = [found.rowid]
        } else if let keys {
            let hash = EventKeyHash.of(source: source, id: id)
            let generations = keys.candidates(hash, into: &rows)
            if generations > 0 {
                rows += try Int64.fetchAll(db, sql: """
                    WITH RECURSIVE g(n) AS (SELECT ?1 - 1 UNION ALL SELECT n - 1 FROM g WHERE n > 0)
                    SELECT k.event_rowid FROM g CROSS JOIN event_keys k ON k.gen = g.n AND k.h = ?2
                    """, arguments: [generations, hash])
            }
        } else {
            // A copy of the database (a backup's check): no keys in memory; a scan.
            return try Row.fetchOne(db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE source = CAST(? AS TEXT) AND event_id = CAST(? AS TEXT)",
                                    arguments: [StoredColumns.exact(source), StoredColumns.exact(id)])
        }
        for rowid in rows {
            if let row = try Row.fetchOne(db, sql: """
                SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE rowid = ? AND source = CAST(? AS TEXT) AND event_id = CAST(? AS TEXT)
                """, arguments: [rowid, StoredColumns.exact(source), StoredColumns.exact(id)]) {
                return row
            }
        }
        return nil
    }

    /// A dead letter by (source, id), the newest one.
    public func rejected(source: String, id: String) throws -> JSONValue? {
        try Row.fetchOne(db, sql: """
            SELECT \(StoredColumns.rejectedMessages) FROM rejected_messages
            WHERE coalesce(source, '') = CAST(? AS TEXT) AND event_id = CAST(? AS TEXT) ORDER BY rowid DESC LIMIT 1
            """, arguments: [StoredColumns.exact(source), StoredColumns.exact(id)]).map { rejectedJSON($0).json }
    }

    /// Every cost of a stored event: its booking, then the adjustments that correct it, in
    /// order. The booking is the event row itself (`booked`) or the cost row it names
    /// (`cost_allocation_id`: an event is booked once); the corrections are found through their
    /// own index.
    public func costs(ofEvent source: String, id: String) throws -> [CostRecord] {
        let event = try eventRow(source: source, id: id)
        var result: [CostRecord] = []
        if let event, (event["booked"] as Int64?) != nil { result.append(try bookedCost(event)) }
        let costID: String? = event?["cost_allocation_id"]
        result += try Row.fetchAll(db, sql: """
            SELECT \(StoredColumns.costAllocations) FROM cost_allocations
            WHERE id = ? OR (corrects_event_id = CAST(? AS TEXT) AND corrects_source = CAST(? AS TEXT)) ORDER BY rowid
            """, arguments: [costID, StoredColumns.exact(id), StoredColumns.exact(source)]).map(costRecord)
        return result
    }

    /// ALLOCATED events in a time range (event time, inclusive), optionally of one platform and
    /// model (case-insensitive), oldest first: what `event.reprice` looks at.
    public func allocatedEvents(platform: String?, model: String?, from: Timestamp?, to: Timestamp?) throws -> [StoredEvent] {
        var sql = "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE state = 'ALLOCATED' AND event_time >= ? AND event_time <= ?"
        var args: [(any DatabaseValueConvertible)?] = [from?.nanosecondsSinceEpoch ?? Int64.min, to?.nanosecondsSinceEpoch ?? Int64.max]
        if let platform {
            sql += " AND lower(platform) = lower(?)"
            args.append(platform)
        }
        if let model {
            sql += " AND lower(model) = lower(?)"
            args.append(model)
        }
        sql += " ORDER BY rowid"
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(storedEvent)
    }

    /// One page of a budget's costs, newest first, within [from, to]; stable under inserts (a
    /// cursor names the last row returned by (cost date, rowid), so no row repeats or is skipped).
    public func costsPage(budgetId: String, from: Timestamp?, to: Timestamp?, limit: Int, after cursor: PageCursor?) throws -> Page {
        let rows = try costRows(budgetId: budgetId, from: from, to: to, limit: limit + 1, after: cursor)
        let kept = rows.prefix(limit)
        return Page(items: kept.map(\.cost.json), nextCursor: rows.count > limit ? kept.last?.position : nil)
    }

    /// One page of `event.list`: accepted events and dead letters merged newest first, as the
    /// array form does. With `budgetId`, accepted events of that budget only (no dead letters);
    /// `from`/`to` bound the event time (a dead letter's time is when it was received).
    public func eventsPage(state: EventState?, budgetId: String?, from: Timestamp?, to: Timestamp?, limit: Int, after cursor: PageCursor?) throws -> Page {
        var eventBound = Int64.max, rejectedBound = Int64.max
        if case .events(let e, let r) = cursor { (eventBound, rejectedBound) = (e, r) }
        let lo = from?.nanosecondsSinceEpoch ?? Int64.min, hi = to?.nanosecondsSinceEpoch ?? Int64.max
        var accepted: [(rowid: Int64, at: Int64, json: JSONValue)] = []
        var rejected: [(rowid: Int64, at: Int64, json: JSONValue)] = []
        if state != .rejected {
            var sql = "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE rowid < ? AND event_time >= ? AND event_time <= ?"
            var args: [(any DatabaseValueConvertible)?] = [eventBound, lo, hi]
            if let state {
                sql += " AND state = ?"
                args.append(state.rawValue)
            }
            if let budgetId {
                sql += " AND budget_id = ?"
                args.append(budgetId)
            }
            sql += " ORDER BY rowid DESC LIMIT ?"
            args.append(limit + 1)
            accepted = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { row in
                let e = try storedEvent(row)
                return (row["rowid"], e.receivedAt.nanosecondsSinceEpoch, e.json)
            }
        }
        if (state == nil || state == .rejected) && budgetId == nil {
            rejected = try Row.fetchAll(db, sql: """
                SELECT \(StoredColumns.rejectedMessages) FROM rejected_messages WHERE rowid < ? AND received_at >= ? AND received_at <= ?
                ORDER BY rowid DESC LIMIT ?
                """, arguments: [rejectedBound, lo, hi, limit + 1]).map(rejectedJSON)
        }
        var items: [JSONValue] = []
        var i = 0, j = 0
        var lastEvent = eventBound, lastRejected = rejectedBound
        var more = false
        while i < accepted.count || j < rejected.count {
            if items.count == limit {
                more = true
                break
            }
            if j >= rejected.count || (i < accepted.count && accepted[i].at >= rejected[j].at) {
                items.append(accepted[i].json)
                lastEvent = accepted[i].rowid
                i += 1
            } else {
                items.append(rejected[j].json)
                lastRejected = rejected[j].rowid
                j += 1
            }
        }
        return Page(items: items, nextCursor: more ? .events(eventRowid: lastEvent, rejectedRowid: lastRejected) : nil)
    }

    func rejectedJSON(_ row: Row) -> (rowid: Int64, at: Int64, json: JSONValue) {
        var m = RejectedMessage(
            receivedAt: Timestamp(nanosecondsSinceEpoch: row["received_at"]), socket: row["socket"], topic: row["topic"],
            source: row["source"], id: row["event_id"], reason: row["reason"], body: [UInt8]((row["body"] as Data?) ?? Data())
        )
        m.bodySize = row["body_size"]
        return (row["rowid"], m.receivedAt.nanosecondsSinceEpoch, m.json)
    }

    /// One page of alerts in `seq` order after `sinceSeq` (or the cursor's seq).
    public func alertsPage(budgetId: String?, unresolvedOnly: Bool, sinceSeq: Int64, limit: Int, after cursor: PageCursor?) throws -> Page {
        var since = sinceSeq
        if case .alerts(let s) = cursor { since = max(since, s) }
        let rows = try alerts(budgetId: budgetId, unresolvedOnly: unresolvedOnly, sinceSeq: since, limit: limit + 1)
        let kept = Array(rows.prefix(limit))
        var next: PageCursor?
        if rows.count > limit, let seqText = kept.last?["seq"]?.numberText, let seq = Int64(seqText) {
            next = .alerts(seq: seq)
        }
        return Page(items: kept, nextCursor: next)
    }

    /// Re-pricing adjustments recorded so far, per event: their sum and the catalog version of
    /// the last one (what the event is now priced at).
    public func repriceAdjustments() throws -> [EventRef: (sum: Money, catalogTo: String?)] {
        var result: [EventRef: (sum: Money, catalogTo: String?)] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT corrects_source, corrects_event_id, cost_amount, catalog_to FROM cost_allocations
            WHERE kind = 'REPRICE' AND corrects_event_id IS NOT NULL ORDER BY rowid
            """) {
            let key = EventRef(source: row[0] as String? ?? "", id: row[1])
            let old = result[key]?.sum ?? .zero
            result[key] = (old + (try money(row[2])), row[3])
        }
        return result
    }

    /// Per budget: its spent amount as stored, oldest budget first.
    public func budgetTotals() throws -> [(id: String, spent: Money)] {
        try Row.fetchAll(db, sql: "SELECT id, spent_amount FROM budgets ORDER BY ordinal").map { ($0[0], try money($0[1])) }
    }
}

/// What a backup holds, read back from the new file.
public struct BackupSummary: Sendable {
    public var bytes: Int64
    public var events: Int64
    public var costs: Int64
    public var budgets: [(id: String, spent: Money)]
}

extension Store {
    /// Writes a consistent copy of the database to `path` with `VACUUM INTO` (docs/ledger.md).
    ///
    /// It runs on a connection of its own, so it copies the last committed state (WAL: a reader
    /// never blocks the writer's commits, and the writer's open transaction is not in the copy).
    /// Refuses a path that exists.
    ///
    /// The copy is written to `<path>.budgetd-partial`, synced, and only then given its name
    /// (a hard link, which refuses an existing name, then the partial name removed): a copy cut
    /// short (a crash, a kill, a full disk) never stands at `path` looking like a backup. (It
    /// did: a partial file with its rollback journal, which a first `sqlite3` look rolled back
    /// to an empty database, restorable as one.) A leftover partial file of an earlier attempt
    /// is removed first; a failed copy removes its own.
    public func backup(to path: String) throws(StoreError) -> BackupSummary {
        if FileManager.default.fileExists(atPath: path) { throw StoreError("\(path) exists: a backup never overwrites a file") }
        let partial = path + ".budgetd-partial"
        func removePartial() {
            for file in [partial, partial + "-journal"] { try? FileManager.default.removeItem(atPath: file) }
        }
        removePartial()
        var config = Configuration()
        config.readonly = true
        config.label = "budgetd-backup"
        config.busyMode = .timeout(5)
        do {
            let reader = try DatabaseQueue(path: self.path, configuration: config)
            defer { try? reader.close() }
            do {
                try reader.inDatabase { db in try db.execute(sql: "VACUUM INTO ?", arguments: [partial]) }
                try Self.syncToDisk(partial)
                guard link(partial, path) == 0 else {
                    throw StoreError(errno == EEXIST ? "\(path) exists: a backup never overwrites a file" : "cannot name the backup \(path): \(String(cString: strerror(errno)))")
                }
            } catch {
                removePartial()
                throw error
            }
            removePartial()
            try Self.syncToDisk(path)
            let copy = try DatabaseQueue(path: path, configuration: config)
            defer { try? copy.close() }
            return try copy.read { db in
                let r = StoreReader(db: db)
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? nil
                return BackupSummary(
                    bytes: size ?? 0,
                    events: try Int64.fetchOne(db, sql: "SELECT count(*) FROM usage_events") ?? 0,
                    costs: try Int64.fetchOne(db, sql: """
                        SELECT (SELECT count(*) FROM cost_allocations)
                          + (SELECT count(*) FROM booking_index WHERE event_rowid <= (SELECT through FROM booking_state))
                          + (SELECT count(*) FROM usage_events WHERE rowid > (SELECT through FROM booking_state) AND booked IS NOT NULL)
                        """) ?? 0,
                    budgets: try r.budgetTotals()
                )
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("backup to \(path) failed: \(error)", sqliteCode: (error as? DatabaseError)?.resultCode.primaryResultCode.rawValue)
        }
    }
}
