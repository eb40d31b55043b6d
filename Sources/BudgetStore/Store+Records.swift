public import BudgetCore
import Foundation
import GRDB

/// An accepted usage event as stored, with its state.
public struct StoredEvent: Sendable, Hashable {
    public var source: String
    public var id: String
    public var body: String
    public var state: EventState
    public var reason: String?
    public var platform: String
    public var serviceType: ServiceType
    public var model: String?
    public var time: Timestamp
    public var receivedAt: Timestamp
    public var cost: Money?
    public var currency: String?
    public var budgetId: String?
    public var costAllocationId: String?
    /// The catalog version a catalog-priced event was priced with (nil for an explicit cost).
    public var catalogVersion: String? = nil
    /// Whether this row is the event's cost allocation (an ALLOCATED event's plain cost, booked
    /// without a cost row; its id is `EventCostID.make(rowid)`), and the allocation it counts
    /// against. docs/ledger.md, "Where costs are stored".
    public var booked = false
    public var allocationId: String? = nil
    /// `EventKeyHash.of(source:id:)`, when the caller has it already (the ingest path: computed
    /// once per event); made at the insert otherwise. Not stored as a column.
    public var keyHash: Int64? = nil

    public init(
        source: String, id: String, body: String, state: EventState, reason: String?, platform: String,
        serviceType: ServiceType, model: String?, time: Timestamp, receivedAt: Timestamp, cost: Money?,
        currency: String?, budgetId: String?, costAllocationId: String?
    ) {
        self.source = source
        self.id = id
        self.body = body
        self.state = state
        self.reason = reason
        self.platform = platform
        self.serviceType = serviceType
        self.model = model
        self.time = time
        self.receivedAt = receivedAt
        self.cost = cost
        self.currency = currency
        self.budgetId = budgetId
        self.costAllocationId = costAllocationId
    }

    public var json: JSONValue {
        let parsedBody = (try? JSON.parse(body)) ?? .string(body)
        return .object(JSONObject([
            ("id", .string(id)), ("source", .string(source)), ("state", .string(state.rawValue)),
            ("reason", reason.map(JSONValue.string) ?? .null), ("platform", .string(platform)),
            ("serviceType", .string(serviceType.rawValue)), ("model", model.map(JSONValue.string) ?? .null),
            ("time", .string(time.rfc3339)), ("receivedAt", .string(receivedAt.rfc3339)),
            ("cost", cost.map { .number($0.description) } ?? .null), ("currency", currency.map(JSONValue.string) ?? .null),
            ("budgetId", budgetId.map(JSONValue.string) ?? .null),
            ("costAllocationId", costAllocationId.map(JSONValue.string) ?? .null),
            ("kind", .string(parsedBody["kind"]?.stringValue ?? EventKind.usage.rawValue)),
            ("catalogVersion", catalogVersion.map(JSONValue.string) ?? .null),
            ("body", parsedBody),
        ]))
    }
}

/// A message that was rejected, kept as a dead letter with its reason.
public struct RejectedMessage: Sendable, Hashable {
    public var receivedAt: Timestamp
    /// "ingest" or "ingest-ack".
    public var socket: String
    public var topic: String?
    public var source: String?
    public var id: String?
    public var reason: String
    /// The body, cut to a bounded prefix (the whole size is kept in `bodySize`).
    public var body: [UInt8]
    public var bodySize: Int

    /// How much of a rejected body is kept.
    public static let keptBodyBytes = 4096
    /// How much of a rejected message's topic is kept (a longer one is `oversized`).
    public static let keptTopicBytes = 256

    /// At most `keptTopicBytes` of a topic, cut between characters (a character cut in two, or
    /// bytes that were not UTF-8, became a 3-byte U+FFFD past the limit: an audit's 258 bytes).
    static func kept(_ topic: String) -> String {
        guard topic.utf8.count > keptTopicBytes else { return topic }
        // The first bytes, then whole characters off the end until it fits (a short loop: the
        // prefix is at most 3 × 256 bytes once invalid bytes are replaced).
        var kept = String(decoding: topic.utf8.prefix(keptTopicBytes), as: UTF8.self)
        while kept.utf8.count > keptTopicBytes { kept.removeLast() }
        return kept
    }

    public init(receivedAt: Timestamp, socket: String, topic: String?, source: String?, id: String?, reason: String, body: some Collection<UInt8>) {
        self.receivedAt = receivedAt
        self.socket = socket
        self.topic = topic.map(Self.kept)
        self.source = source
        self.id = id
        self.reason = reason
        self.body = Array(body.prefix(Self.keptBodyBytes))
        self.bodySize = body.count
    }

    public var json: JSONValue {
        .object(JSONObject([
            ("id", id.map(JSONValue.string) ?? .null), ("source", source.map(JSONValue.string) ?? .null),
            ("state", .string(EventState.rejected.rawValue)), ("reason", .string(reason)),
            ("receivedAt", .string(receivedAt.rfc3339)), ("socket", .string(socket)),
            ("topic", topic.map(JSONValue.string) ?? .null), ("bodySize", .number(String(bodySize))),
            ("body", .string(String(decoding: body, as: UTF8.self))),
        ]))
    }
}

/// One row of the daily rollup.
public struct DailyKey: Sendable, Hashable {
    public var budgetId: String
    /// UTC day, `YYYY-MM-DD`.
    public var day: String
    public var platform: String
    public var serviceType: ServiceType

    public init(budgetId: String, day: String, platform: String, serviceType: ServiceType) {
        self.budgetId = budgetId
        self.day = day
        self.platform = platform
        self.serviceType = serviceType
    }
}

/// A day's spend of one budget on one platform and service.
public struct DailySpend: Sendable, Hashable {
    public var key: DailyKey
    public var amount: Money
    public var count: Int64
}

/// What is known of a stored (source, id) for deduplication.
public struct EventKey: Sendable, Hashable {
    public var body: String
    public var state: EventState
    public var reason: String?

    public init(body: String, state: EventState, reason: String?) {
        self.body = body
        self.state = state
        self.reason = reason
    }
}

/// Writes of one transaction. Only valid inside `Store.write`.
public struct StoreWriter {
    let db: Database
    /// Prepared statements of the ingest and commit paths, bound through SQLite's C API.
    let hot: HotStatements
    /// The tick `Store.whileStatementsRun` set (nil without one), for Swift loops that run many
    /// short statements: the progress handler counts each statement's own steps, so a loop of
    /// small ones never reaches its count.
    let progress: (@Sendable () -> Void)?

    public func findEvent(source: String, id: String) throws -> EventKey? {
        try hot.find(source: source, id: id)
    }

    public func insertEvent(_ e: consuming StoredEvent) throws {
        try hot.insert(e)
    }

    /// Records a re-processed event's new outcome.
    public func updateEvent(_ e: StoredEvent) throws {
        guard let rowid = try hot.findRow(source: e.source, id: e.id)?.rowid else { return }
        let stmt = try db.cachedStatement(sql: """
            UPDATE usage_events SET state = ?, reason = ?, cost = ?, currency = ?, budget_id = ?, cost_allocation_id = ?,
              catalog_version = NULL, catalog_id = ?
            WHERE rowid = ?
            """)
        try stmt.execute(arguments: [
            e.state.rawValue, e.reason, e.cost?.description, e.currency, e.budgetId, e.costAllocationId,
            try e.catalogVersion.map(hot.catalogID), rowid,
        ])
    }

    public func insertCost(_ c: CostRecord, createdAt: Timestamp) throws {
        try hot.insert(c, createdAt: createdAt)
    }

    /// Inserts events in order, as `insertEvent` for each would, several rows per statement.
    public func insertEvents(_ events: [StoredEvent]) throws {
        try hot.insert(events: events)
    }

    /// Inserts costs in order, as `insertCost` for each would, several rows per statement.
    public func insertCosts(_ costs: [(cost: CostRecord, createdAt: Timestamp)]) throws {
        try hot.insert(costs: costs)
    }

    public func insertRejected(_ r: RejectedMessage) throws {
        let stmt = try db.cachedStatement(sql: """
            INSERT INTO rejected_messages (received_at, socket, topic, source, event_id, reason, body, body_size)
            VALUES (?,?,?,?,?,?,?,?)
            """)
        try stmt.execute(arguments: [
            r.receivedAt.nanosecondsSinceEpoch, r.socket, r.topic, r.source, r.id, r.reason, Data(r.body), r.bodySize,
        ])
    }

    /// Appends an alert or status event to the outbound log (and the alerts table), in the same
    /// transaction as the change that caused it.
    public func insertOutbound(_ m: OutboundMessage, at now: Timestamp) throws {
        let payload = m.payload.serialized()
        let stmt = try db.cachedStatement(sql: "INSERT INTO outbound (seq, topic, payload, created_at) VALUES (?,?,?,?)")
        try stmt.execute(arguments: [m.seq, m.topic, payload, now.nanosecondsSinceEpoch])
        if case .alert(let a) = m {
            let s = try db.cachedStatement(sql: "INSERT INTO alerts (id, seq, type, budget_id, payload) VALUES (?,?,?,?,?)")
            try s.execute(arguments: [a.id, a.seq, a.type.rawValue, a.budgetId, payload])
        }
    }

    /// Inserts or replaces a budget with its allocations and running totals.
    public func saveBudget(_ b: Budget) throws {
        let stmt = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO budgets (id, ordinal, name, description, budget_type, total_amount, spent_amount, currency,
              start_date, explicit_end, start_ns, end_ns, status, alert80, alert90, alert100, auto_renewal, parent_id,
              selector, created_by, created_at, fired, successor_id, cost_count, predecessor_id)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
            """)
        try stmt.execute(arguments: [
            b.id, b.ordinal, b.name, b.description, b.budgetType.rawValue, b.totalAmount.description,
            b.spentAmount.description, b.currency, b.period.startSpec.description, b.explicitEnd?.description,
            b.period.start.nanosecondsSinceEpoch, b.period.endExclusive?.nanosecondsSinceEpoch, b.status.rawValue,
            b.alertThreshold80, b.alertThreshold90, b.alertThreshold100, b.autoRenewal, b.parentId,
            b.selector.map { JSONValue.object($0).serialized() }, b.createdBy, b.createdAt.nanosecondsSinceEpoch,
            b.fired.map(\.rawValue).sorted().joined(separator: ","), b.successorId, b.costCount, b.predecessorId,
        ])
        let delete = try db.cachedStatement(sql: "DELETE FROM allocations WHERE budget_id = ?")
        try delete.execute(arguments: [b.id])
        let insert = try db.cachedStatement(sql: """
            INSERT INTO allocations (id, budget_id, position, platform, service_type, allocated_amount, spent_amount,
              priority, is_active, depleted_fired) VALUES (?,?,?,?,?,?,?,?,?,?)
            """)
        for (i, a) in b.allocations.enumerated() {
            try insert.execute(arguments: [
                a.id, b.id, i, a.platform, a.serviceType.rawValue, a.allocatedAmount.description,
                a.spentAmount.description, a.priority.rawValue, a.isActive, a.depletedFired,
            ])
        }
    }

    /// Writes what booking a cost changes in a saved budget: its running totals, status and
    /// alert state, and each allocation's. (A full `saveBudget` rewrites the row and every
    /// allocation row; with 10⁴ budgets in a batch that was most of the commit's work.)
    public func saveTotals(_ b: Budget) throws {
        if try !hot.updateTotals(b) { try saveBudget(b) }
    }

    /// Saves buckets of the spike history (`Ledger.takeChangedHistory`).
    public func saveHistory(_ buckets: [(bucket: HistoryBucket, amount: Money)]) throws {
        for (bucket, amount) in buckets { try hot.saveHistory(key: bucket.key, hour: bucket.hour, amount: amount) }
    }

    /// Drops spike history before `hour`.
    public func pruneHistory(before hour: Int64) throws {
        try db.execute(sql: "DELETE FROM spend_history WHERE hour < ?", arguments: [hour])
    }

    /// Marks an alert resolved (acknowledged); returns it, or nil if unknown.
    public func resolveAlert(id: String, at now: Timestamp) throws -> JSONValue? {
        try db.execute(sql: "UPDATE alerts SET resolved = 1, resolved_at = coalesce(resolved_at, ?) WHERE id = ?",
                       arguments: [now.nanosecondsSinceEpoch, id])
        return try reader.alert(id: id)
    }

    /// A manual cost by its idempotency key.
    public func cost(id: String) throws -> CostRecord? {
        try reader.cost(id: id)
    }

    public var reader: StoreReader { StoreReader(db: db, keys: hot.keys, hot: hot, loggedDaily: hot.loggedDaily) }

    /// Records a control change in the audit log.
    public func insertAudit(at: Timestamp, actor: String, op: String, target: String?, args: JSONValue, before: JSONValue?, after: JSONValue?) throws {
        let stmt = try db.cachedStatement(sql: "INSERT INTO audit_log (at, actor, op, target, args, before, after) VALUES (?,?,?,?,?,?,?)")
        try stmt.execute(arguments: [
            at.nanosecondsSinceEpoch, actor, op, target, args.serialized(), before?.serialized(), after?.serialized(),
        ])
    }

    /// Adds to a day's running total (exact: read, add, write, inside the batch's transaction).
    public func addDailySpend(_ key: DailyKey, amount: Money, count: Int64) throws {
        try hot.addDaily(key, amount: amount, count: count)
    }

    /// Adds a commit's rows to the daily rollup through the log (DailyLog.swift): one row
    /// written, folded into `daily_spend` every so many commits. Readers see the same sums
    /// as with `addDailySpend` for each.
    public func logDailySpend(_ rows: [(key: DailyKey, amount: Money, count: Int64)]) throws {
        try hot.logDaily(rows)
    }
}

/// The id of a cost booked in its event's row (`StoredEvent.booked`): `e_` and the row number
/// in 16 lowercase hex digits, the same form as the daemon's other ids. Row numbers are never
/// reused while the table has rows (retention keeps the newest: `StoreWriter.prune`), so
/// neither are these ids; retention moves such a cost into a cost row under the same id.
public enum EventCostID {
    public static func make(rowid: Int64) -> String {
        SortableIDs.format("e", UInt64(bitPattern: rowid))
    }

    /// An SQL condition true for a text `column` of exactly this form (whose text order is then
    /// its row number's order: fixed width, lowercase hex).
    static func matches(_ column: String) -> String {
        "(\(column) GLOB 'e_" + String(repeating: "[0-9a-f]", count: 16) + "')"
    }

    /// The row number an id of this form names; nil for any other id.
    public static func rowid(of id: String) -> Int64? {
        let u = id.utf8
        guard u.count == 18, id.hasPrefix("e_") else { return nil }
        let hex = id.dropFirst(2)
        guard hex.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }),
              let n = UInt64(hex, radix: 16) else { return nil }
        return Int64(bitPattern: n)
    }
}
