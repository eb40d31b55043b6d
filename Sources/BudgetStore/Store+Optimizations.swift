public import BudgetCore
import GRDB

/// A recommendation as last stored: its workflow status and the figures of its last computation.
public struct StoredOptimization: Sendable, Hashable {
    public var id: String
    public var status: OptimizationStatus
    /// The recommendation's JSON when it was last computed (its `status` field is not kept up to date: use `status`).
    public var snapshot: JSONValue
    public var computedAt: Timestamp
    public var updatedAt: Timestamp
}

extension StoreReader {
    /// Calls `body` with every stored usage event whose effective time is in [from, to],
    /// oldest first (ties in arrival order), one row at a time so a long window is not held
    /// in memory. Uses the `event_time` index of migration v4.
    public func forEachUsageEvent(from: Timestamp, to: Timestamp, _ body: (StoredEvent) throws -> Void) throws {
        let cursor = try Row.fetchCursor(db, sql: """
            SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE event_time >= ? AND event_time <= ? ORDER BY event_time, rowid
            """, arguments: [from.nanosecondsSinceEpoch, to.nanosecondsSinceEpoch])
        while let row = try cursor.next() {
            try body(try storedEvent(row))
        }
    }

    /// Every stored recommendation, by id.
    public func optimizations() throws -> [String: StoredOptimization] {
        var result: [String: StoredOptimization] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM optimizations") {
            let o = try optimization(row)
            result[o.id] = o
        }
        return result
    }

    /// One stored recommendation, or nil.
    public func optimization(id: String) throws -> StoredOptimization? {
        try Row.fetchOne(db, sql: "SELECT * FROM optimizations WHERE id = ?", arguments: [id]).map(optimization)
    }

    func optimization(_ row: Row) throws -> StoredOptimization {
        let id: String = row["id"]
        guard let status = OptimizationStatus(rawValue: row["status"]),
              let snapshot = try? JSON.parse(row["snapshot"] as String) else {
            throw StoreError("corrupt recommendation \(id) in database")
        }
        return StoredOptimization(
            id: id, status: status, snapshot: snapshot,
            computedAt: Timestamp(nanosecondsSinceEpoch: row["computed_at"]),
            updatedAt: Timestamp(nanosecondsSinceEpoch: row["updated_at"])
        )
    }
}

extension StoreWriter {
    /// Records the figures of a computed recommendation; a new one starts PENDING, a known
    /// one keeps its status.
    public func saveOptimizationSnapshot(id: String, snapshot: JSONValue, at now: Timestamp) throws {
        let stmt = try db.cachedStatement(sql: """
            INSERT INTO optimizations (id, status, snapshot, computed_at, updated_at) VALUES (?, 'PENDING', ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET snapshot = excluded.snapshot, computed_at = excluded.computed_at
            """)
        try stmt.execute(arguments: [id, snapshot.serialized(), now.nanosecondsSinceEpoch, now.nanosecondsSinceEpoch])
    }

    /// Sets a stored recommendation's status (the caller checked the workflow).
    public func setOptimizationStatus(id: String, status: OptimizationStatus, at now: Timestamp) throws {
        try db.execute(sql: "UPDATE optimizations SET status = ?, updated_at = ? WHERE id = ?",
                       arguments: [status.rawValue, now.nanosecondsSinceEpoch, id])
    }
}
