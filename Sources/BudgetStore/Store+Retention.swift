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
    public func prune(eventsBefore: Timestamp, othersBefore: Timestamp) throws -> PruneCounts {
        try db.execute(
            sql: "DELETE FROM usage_events WHERE received_at < ? AND state = 'ALLOCATED'",
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
