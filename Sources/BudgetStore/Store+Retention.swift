import Foundation
public import BudgetCore
import GRDB

/// What one retention run deleted.
public struct PruneCounts: Sendable, Equatable {
    public var usageEvents: Int
    public var deadLetters: Int
    public var outbound: Int
    /// With `maxEvents`: where the events old enough to go that are left lie, for the next
    /// call; nil when none is left.
    public var rest: PruneRange?

    public init(usageEvents: Int = 0, deadLetters: Int = 0, outbound: Int = 0, rest: PruneRange? = nil) {
        (self.usageEvents, self.deadLetters, self.outbound, self.rest) = (usageEvents, deadLetters, outbound, rest)
    }

    /// Adds another call's deletions (a pruning in chunks); `rest` stays this one's.
    public mutating func add(_ other: PruneCounts) {
        usageEvents += other.usageEvents
        deadLetters += other.deadLetters
        outbound += other.outbound
    }
}

/// The rows a pruning looks at: row numbers above `after` and below `below` (the first row
/// received at or after the cutoff, or the newest row, which stays), found once per pruning.
public struct PruneRange: Sendable, Equatable {
    public var after: Int64
    public var below: Int64
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
    /// always kept, so row numbers, and the ids of costs booked in event rows, are never reused;
    /// so is the newest outbound message, so `seq` is never reused either.
    ///
    /// `maxEvents` bounds the events this call deletes (the oldest first), so that a large
    /// pruning can go in many short transactions: `rest` says where the next call goes on
    /// (`range`), and is nil when nothing is left. The range is found once (a read of the rows
    /// from the oldest up to the first young one): reading it in every statement, as the first
    /// version did, read the whole table once per 10,000 bookings copied (52 s for 10⁶ events).
    public func prune(eventsBefore: Timestamp, othersBefore: Timestamp, maxEvents: Int? = nil, range: PruneRange? = nil) throws -> PruneCounts {
        let cutoff = eventsBefore.nanosecondsSinceEpoch
        let range = try range ?? PruneRange(after: Int64.min, below: Int64.fetchOne(db, sql: """
            SELECT min(
                coalesce((SELECT rowid FROM usage_events WHERE received_at >= ?1 ORDER BY rowid LIMIT 1), 9223372036854775807),
                coalesce((SELECT max(rowid) FROM usage_events), 0))
            """, arguments: [cutoff]) ?? 0)
        let old = "rowid > ?2 AND rowid < ?3 AND received_at < ?1 AND state = 'ALLOCATED'"
        var upper = range.below - 1
        if let maxEvents, maxEvents > 0,
           let last = try Int64.fetchOne(
               db, sql: "SELECT rowid FROM usage_events WHERE \(old) ORDER BY rowid LIMIT 1 OFFSET ?4",
               arguments: [cutoff, range.after, range.below, maxEvents - 1]) {
            upper = last
        }
        // This call's rows: below `upper` + 1, as the one bound of the row-number range (a
        // second bound, `rowid <= upper`, would be a filter on a scan up to `below`: the whole
        // table for each chunk).
        let stop = upper + 1
        var page = range.after
        while true {
            let rows = try Row.fetchAll(
                db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE booked IS NOT NULL AND \(old) ORDER BY rowid LIMIT 10000",
                arguments: [cutoff, page, stop])
            guard let last = rows.last else { break }
            var pruned: Set<Int64> = []
            for (index, row) in rows.enumerated() {
                // This loop's statements are short, and SQLite's progress handler counts each
                // statement's own steps: the watchdog is fed from here too, every 256 rows (a few
                // milliseconds; ~0.35 s went without a ping per 10,000 rows before).
                if index & 255 == 0 { progress?() }
                pruned.insert(row["rowid"])
                try insertCost(try reader.bookedCost(row), createdAt: Timestamp(nanosecondsSinceEpoch: row["received_at"]))
                // Its entry in booking_index goes with it (Bookings.swift); the cost row lists it now.
                // (A cached statement: compiling it for each of 10⁶ rows would take longer than the delete.)
                try db.cachedStatement(sql: "DELETE FROM booking_index WHERE budget_id = CAST(? AS TEXT) AND event_time = ? AND event_rowid = ?")
                    .execute(arguments: [row["budget_id"] as Data?, row["event_time"] as Int64, row["rowid"] as Int64])
            }
            // And those still waiting in memory to be copied into it never are.
            hot.forgetBookings(ofRows: pruned)
            page = last["rowid"]
        }
        try db.execute(sql: "DELETE FROM usage_events WHERE \(old)", arguments: [cutoff, range.after, stop])
        let events = db.changesCount
        var rest: PruneRange?
        if maxEvents != nil, upper < range.below - 1,
           try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM usage_events WHERE \(old))", arguments: [cutoff, upper, range.below]) == true {
            rest = PruneRange(after: upper, below: range.below)
        }
        try db.execute(sql: "DELETE FROM rejected_messages WHERE received_at < ?", arguments: [othersBefore.nanosecondsSinceEpoch])
        let dead = db.changesCount
        // The newest message is kept, whatever its age: the next start numbers on from its
        // `seq` (`lastSeq`; CONTRACT §5: seq is monotonic and persisted).
        try db.execute(sql: """
            DELETE FROM outbound WHERE created_at < ? AND seq < (SELECT max(seq) FROM outbound)
            """, arguments: [othersBefore.nanosecondsSinceEpoch])
        let outbound = db.changesCount
        return PruneCounts(usageEvents: events, deadLetters: dead, outbound: outbound, rest: rest)
    }
}
