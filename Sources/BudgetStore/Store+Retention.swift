public import BudgetCore
import GRDB

/// What one retention run deleted.
public struct PruneCounts: Sendable, Equatable {
    public var usageEvents: Int
    public var deadLetters: Int
    public var outbound: Int
    /// With `maxEvents`: events old enough to go are left for another call.
    public var more = false
}

extension StoreWriter {
    /// Retention (docs/ledger.md): deletes usage events received before `eventsBefore` (only
    /// ALLOCATED ones: UNPRICED and UNALLOCATED events still wait to be booked), dead letters
    /// received and outbound messages written before `othersBefore`. Cost rows, budgets, alerts,
    /// the daily rollup and the audit log are kept; cost rows name their event by text, so they
    /// stay valid. An event row that is its own booking (`booked`) has its cost moved into a cost
    /// row first, under the same id: the cost outlives the event, as a cost row always has.
    ///
    /// Events are found without an index on `received_at` (every event paid for one): rows are
    /// numbered in the order they were received, so those received before the cutoff are the
    /// ones below the first row received at or after it, found by reading rows in order from
    /// the oldest kept. Should the clock have stepped back, an event received after that row
    /// but stamped earlier is kept until a later run: never deleted early. The newest row is
    /// always kept, so row numbers, and the ids of costs booked in event rows, are never reused.
    ///
    /// `maxEvents` bounds the events this call deletes (the oldest first), so that a large
    /// pruning can go in many short transactions (`more` says whether any is left).
    public func prune(eventsBefore: Timestamp, othersBefore: Timestamp, maxEvents: Int? = nil) throws -> PruneCounts {
        let old = """
            rowid < coalesce(
                (SELECT rowid FROM usage_events WHERE received_at >= ?1 ORDER BY rowid LIMIT 1), 9223372036854775807)
              AND rowid < (SELECT max(rowid) FROM usage_events)
              AND received_at < ?1 AND state = 'ALLOCATED'
            """
        let cutoff = eventsBefore.nanosecondsSinceEpoch
        var bounded = old
        if let maxEvents, maxEvents > 0,
           let upper = try Int64.fetchOne(
               db, sql: "SELECT rowid FROM usage_events WHERE \(old) ORDER BY rowid LIMIT 1 OFFSET ?2", arguments: [cutoff, maxEvents - 1]) {
            bounded += " AND rowid <= \(upper)"
        }
        var after = Int64.min
        while true {
            let rows = try Row.fetchAll(
                db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE booked IS NOT NULL AND rowid > ?2 AND \(bounded) ORDER BY rowid LIMIT 10000",
                arguments: [cutoff, after])
            guard let last = rows.last else { break }
            for row in rows {
                try insertCost(try reader.bookedCost(row), createdAt: Timestamp(nanosecondsSinceEpoch: row["received_at"]))
            }
            after = last["rowid"]
        }
        try db.execute(sql: "DELETE FROM usage_events WHERE \(bounded)", arguments: [cutoff])
        let events = db.changesCount
        var more = false
        if maxEvents != nil {
            more = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM usage_events WHERE \(old))", arguments: [cutoff]) ?? false
        }
        try db.execute(sql: "DELETE FROM rejected_messages WHERE received_at < ?", arguments: [othersBefore.nanosecondsSinceEpoch])
        let dead = db.changesCount
        try db.execute(sql: "DELETE FROM outbound WHERE created_at < ?", arguments: [othersBefore.nanosecondsSinceEpoch])
        let outbound = db.changesCount
        return PruneCounts(usageEvents: events, deadLetters: dead, outbound: outbound, more: more)
    }
}
