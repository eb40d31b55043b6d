public import BudgetCore
import GRDB

/// What one retention run deleted.
public struct PruneCounts: Sendable, Equatable {
    public var usageEvents: Int
    public var deadLetters: Int
    public var outbound: Int
}

extension StoreWriter {
    /// Retention (docs/ledger.md): deletes usage events received before `eventsBefore` (only
    /// ALLOCATED ones: UNPRICED and UNALLOCATED events still wait to be booked), dead letters
    /// received and outbound messages written before `othersBefore`. Cost rows, budgets, alerts,
    /// the daily rollup and the audit log are kept; cost rows name their event by text, so they
    /// stay valid.
    ///
    /// Events are found without an index on `received_at` (every event paid for one): rows are
    /// numbered in the order they were received, so those received before the cutoff are the
    /// ones below the first row received at or after it, found by reading rows in order from
    /// the oldest kept. Should the clock have stepped back, an event received after that row
    /// but stamped earlier is kept until a later run: never deleted early.
    public func prune(eventsBefore: Timestamp, othersBefore: Timestamp) throws -> PruneCounts {
        try db.execute(
            sql: """
                DELETE FROM usage_events
                WHERE rowid < coalesce(
                    (SELECT rowid FROM usage_events WHERE received_at >= ?1 ORDER BY rowid LIMIT 1), 9223372036854775807)
                  AND received_at < ?1 AND state = 'ALLOCATED'
                """,
            arguments: [eventsBefore.nanosecondsSinceEpoch]
        )
        let events = db.changesCount
        try db.execute(sql: "DELETE FROM rejected_messages WHERE received_at < ?", arguments: [othersBefore.nanosecondsSinceEpoch])
        let dead = db.changesCount
        try db.execute(sql: "DELETE FROM outbound WHERE created_at < ?", arguments: [othersBefore.nanosecondsSinceEpoch])
        let outbound = db.changesCount
        return PruneCounts(usageEvents: events, deadLetters: dead, outbound: outbound)
    }
}
