public import BudgetCore
import Foundation
import GRDB

/// Read queries, inside `Store.read` or a write transaction.
public struct StoreReader {
    let db: Database
    /// Where events are found by key: the keys in memory (`Store.recentKeys`), and, inside a
    /// write transaction, also the keys it inserted (`hot`, on the same connection).
    var keys: RecentKeys?
    var hot: HotStatements?
    /// The daily rollup's logged sums (DailyLog.swift), added to what `daily_spend` holds.
    var loggedDaily: DailySums = [:]

    /// The last `seq` ever published (0 before the first), so numbering resumes after a restart.
    ///
    /// Retention keeps the newest outbound message (`prune`); alerts, which are never pruned,
    /// are read too, for a database pruned whole before that rule (the seventeenth session's
    /// audit: a start after such a pruning numbered from 0 again, and the first alert after it
    /// could not be committed, its `seq` taken).
    public func lastSeq() throws -> Int64 {
        try Int64.fetchOne(db, sql: """
            SELECT max(coalesce((SELECT max(seq) FROM outbound), 0), coalesce((SELECT max(seq) FROM alerts), 0))
            """) ?? 0
    }

    /// Every budget with its allocations, oldest first.
    public func budgets() throws -> [Budget] {
        var allocations: [String: [Allocation]] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM allocations ORDER BY budget_id, position") {
            let budgetId: String = row["budget_id"]
            allocations[budgetId, default: []].append(Allocation(
                id: row["id"], budgetId: budgetId, platform: row["platform"],
                serviceType: ServiceType(rawValue: row["service_type"]) ?? .other,
                allocatedAmount: try money(row["allocated_amount"]), spentAmount: try money(row["spent_amount"]),
                priority: AllocationPriority(rawValue: row["priority"]) ?? .medium,
                isActive: row["is_active"], depletedFired: row["depleted_fired"]
            ))
        }
        return try Row.fetchAll(db, sql: "SELECT * FROM budgets ORDER BY ordinal").map { row in
            let id: String = row["id"]
            let type = BudgetType(rawValue: row["budget_type"]) ?? .project
            let start = try DateSpec(parsing: row["start_date"] as String)
            let explicitEnd = try (row["explicit_end"] as String?).map { try DateSpec(parsing: $0) }
            let selectorText: String? = row["selector"]
            let firedText: String = row["fired"]
            return Budget(
                id: id, name: row["name"], description: row["description"], budgetType: type,
                totalAmount: try money(row["total_amount"]), spentAmount: try money(row["spent_amount"]),
                currency: row["currency"], period: try Period.make(type: type, start: start, end: explicitEnd),
                explicitEnd: explicitEnd, status: BudgetStatus(rawValue: row["status"]) ?? .active,
                alertThreshold80: row["alert80"], alertThreshold90: row["alert90"], alertThreshold100: row["alert100"],
                autoRenewal: row["auto_renewal"], parentId: row["parent_id"],
                selector: try selectorText.flatMap { try JSON.parse($0).objectValue },
                createdBy: row["created_by"], createdAt: Timestamp(nanosecondsSinceEpoch: row["created_at"]),
                ordinal: row["ordinal"],
                fired: Set(firedText.split(separator: ",").compactMap { AlertType(rawValue: String($0)) }),
                allocations: allocations[id] ?? [], successorId: row["successor_id"], predecessorId: row["predecessor_id"], costCount: row["cost_count"]
            )
        }
    }

    func money(_ text: String) throws -> Money {
        do { return try Money(parsing: text) } catch { throw StoreError("corrupt amount in database: \(text)") }
    }

    func costRecord(_ row: Row) throws -> CostRecord {
        let metadataText: String? = row["metadata"]
        return CostRecord(
            id: row["id"], budgetId: row["budget_id"], allocationId: row["allocation_id"], platform: row["platform"],
            serviceType: ServiceType(rawValue: row["service_type"]) ?? .other, costAmount: try money(row["cost_amount"]),
            currency: row["currency"], description: row["description"],
            costDate: Timestamp(nanosecondsSinceEpoch: row["cost_date"]), apiUsageId: row["api_usage_id"],
            apifyRunId: row["apify_run_id"], eventId: row["event_id"], eventSource: row["event_source"],
            metadata: try metadataText.flatMap { try JSON.parse($0).objectValue },
            kind: CostKind(rawValue: row["kind"] as String? ?? "COST") ?? .cost,
            corrects: (row["corrects_event_id"] as String?).map { EventRef(source: row["corrects_source"] as String? ?? "", id: $0) },
            catalogFrom: row["catalog_from"], catalogTo: row["catalog_to"]
        )
    }

    /// The cost allocation booked in an event row (`booked`), as its cost row would have been:
    /// the event's cost in the budget's currency, its allocation, its time, and from its body
    /// the description, `apiUsageId`, `apifyRunId` and metadata. Only plain COST bookings are
    /// kept this way (credits and corrections have cost rows).
    func bookedCost(_ row: Row) throws -> CostRecord {
        let body: String = row["body"]
        let event = try? UsageEventDecoder.decode(JSON.parse(body))
        let cost: String? = row["cost"]
        guard let cost, let currency: String = row["currency"], let budgetId: String = row["budget_id"] else {
            throw StoreError("corrupt booked event row \(row["rowid"] as Int64? ?? 0)")
        }
        return CostRecord(
            id: EventCostID.make(rowid: row["rowid"]), budgetId: budgetId, allocationId: row["allocation_id"],
            platform: row["platform"], serviceType: ServiceType(rawValue: row["service_type"]) ?? .other,
            costAmount: try money(cost), currency: currency, description: event?.description,
            costDate: Timestamp(nanosecondsSinceEpoch: row["event_time"]), apiUsageId: event?.apiUsageId,
            apifyRunId: event?.apifyRunId, eventId: row["event_id"], eventSource: row["source"], metadata: event?.metadata
        )
    }

    public func cost(id: String) throws -> CostRecord? {
        if let row = try Row.fetchOne(db, sql: "SELECT \(StoredColumns.costAllocations) FROM cost_allocations WHERE id = ?", arguments: [id]) {
            return try costRecord(row)
        }
        guard let rowid = EventCostID.rowid(of: id) else { return nil }
        return try Row.fetchOne(db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE rowid = ? AND booked IS NOT NULL", arguments: [rowid])
            .map(bookedCost)
    }

    /// Costs of a budget, newest first, optionally within [from, to].
    public func costs(budgetId: String, from: Timestamp?, to: Timestamp?, limit: Int) throws -> [CostRecord] {
        try costRows(budgetId: budgetId, from: from, to: to, limit: limit, after: nil).map(\.cost)
    }

    /// Up to `limit` costs of a budget within [from, to] after `cursor`, newest first, from the
    /// cost rows and the event rows that are bookings, merged.
    ///
    /// A cost's place is (cost date, group, number), descending: an event's booking (group 1)
    /// is numbered by its event row, wherever it is stored: in the event row, or, once
    /// retention has copied it (`prune`), in a cost row whose id (`e_` and the row number in 16
    /// hex digits) still says which; any other cost row (group 0) by its own row number. So
    /// at an equal date bookings of events come first (a credit, dated as the event it
    /// corrects, follows it), and no cost changes place when retention moves it: cursors stay
    /// valid across retention, as across inserts.
    func costRows(budgetId: String, from: Timestamp?, to: Timestamp?, limit: Int, after cursor: PageCursor?) throws -> [(position: PageCursor, cost: CostRecord)] {
        let lo = from?.nanosecondsSinceEpoch ?? Int64.min, hi = to?.nanosecondsSinceEpoch ?? Int64.max
        // A booking copied from an event row: its id names the row.
        let moved = EventCostID.matches("id")
        var costSQL = "SELECT rowid AS rid, \(StoredColumns.costAllocations) FROM cost_allocations WHERE budget_id = ? AND cost_date >= ? AND cost_date <= ?"
        var costArgs: [(any DatabaseValueConvertible)?] = [budgetId, lo, hi]
        // Bookings in event rows (Bookings.swift): through `booking_index` up to its `through`,
        // and in the rows after it, read directly (by row number: `+` keeps SQLite from taking
        // the time index for them, which would read every row of the time range; 38 ms a page
        // at 10⁶ events, against 1.5).
        let through = try Int64.fetchOne(db, sql: "SELECT through FROM booking_state") ?? 0
        // Joined with the rows: an entry whose row is gone (retention) does not count against the limit.
        var indexSQL = """
            SELECT k.event_rowid FROM booking_index AS k CROSS JOIN usage_events AS e ON e.rowid = k.event_rowid
            WHERE k.budget_id = ? AND k.event_time >= ? AND k.event_time <= ? AND k.event_rowid <= ? AND e.booked IS NOT NULL
            """
        var indexArgs: [(any DatabaseValueConvertible)?] = [budgetId, lo, hi, through]
        var recentSQL = """
            SELECT \(StoredColumns.usageEvents) FROM usage_events
            WHERE rowid > ? AND booked IS NOT NULL AND +budget_id = ? AND +event_time >= ? AND +event_time <= ?
            """
        var recentArgs: [(any DatabaseValueConvertible)?] = [through, budgetId, lo, hi]
        switch cursor {
        case .costs(let d, let r, eventRow: true):
            indexSQL += " AND (k.event_time < ? OR (k.event_time = ? AND k.event_rowid < ?))"
            indexArgs += [d, d, r]
            recentSQL += " AND (+event_time < ? OR (+event_time = ? AND rowid < ?))"
            recentArgs += [d, d, r]
            costSQL += " AND (cost_date < ? OR (cost_date = ? AND (NOT \(moved) OR id < ?)))"
            costArgs += [d, d, EventCostID.make(rowid: r)]
        case .costs(let d, let r, eventRow: false):
            indexSQL += " AND k.event_time < ?"
            indexArgs += [d]
            recentSQL += " AND +event_time < ?"
            recentArgs += [d]
            costSQL += " AND (cost_date < ? OR (cost_date = ? AND NOT \(moved) AND rowid < ?))"
            costArgs += [d, d, r]
        default: break
        }
        costSQL += " ORDER BY cost_date DESC, \(moved) DESC, CASE WHEN \(moved) THEN id END DESC, rowid DESC LIMIT ?"
        costArgs.append(limit)
        indexSQL += " ORDER BY k.event_time DESC, k.event_rowid DESC LIMIT ?"
        indexArgs.append(limit)
        // `+` here too: ordered by the time index, the scan would read every row of the table.
        recentSQL += " ORDER BY +event_time DESC, rowid DESC LIMIT ?"
        recentArgs.append(limit)
        let indexed = try Int64.fetchAll(db, sql: indexSQL, arguments: StatementArguments(indexArgs))
        var eventRows = try Row.fetchAll(db, sql: recentSQL, arguments: StatementArguments(recentArgs))
        if !indexed.isEmpty {
            // A row that is gone (retention moved its booking into a cost row) is not found.
            eventRows += try Row.fetchAll(
                db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE rowid IN (\(indexed.map { String($0) }.joined(separator: ","))) AND booked IS NOT NULL")
        }
        typealias Place = (date: Int64, booking: Bool, number: Int64)
        let costs = try Row.fetchAll(db, sql: costSQL, arguments: StatementArguments(costArgs)).map { row in
            let cost = try costRecord(row)
            let eventRow = EventCostID.rowid(of: cost.id)
            let place: Place = (row["cost_date"], eventRow != nil, eventRow ?? row["rid"])
            return (place: place, cost: cost)
        }
        let booked = try eventRows.map { row in
            (place: (row["event_time"], true, row["rowid"]) as Place, cost: try bookedCost(row))
        }.sorted { a, b in a.place.date != b.place.date ? a.place.date > b.place.date : a.place.number > b.place.number }
        /// Whether `a` comes before `b` (descending).
        func precedes(_ a: Place, _ b: Place) -> Bool {
            if a.date != b.date { return a.date > b.date }
            if a.booking != b.booking { return a.booking }
            return a.number > b.number
        }
        var merged: [(position: PageCursor, cost: CostRecord)] = []
        merged.reserveCapacity(min(limit, costs.count + booked.count))
        var i = 0, j = 0
        while merged.count < limit && (i < costs.count || j < booked.count) {
            let next: (place: Place, cost: CostRecord)
            if i >= costs.count || (j < booked.count && precedes(booked[j].place, costs[i].place)) {
                next = booked[j]
                j += 1
            } else {
                next = costs[i]
                i += 1
            }
            merged.append((.costs(costDate: next.place.date, rowid: next.place.number, eventRow: next.place.booking), next.cost))
        }
        return merged
    }

    func alertJSON(_ row: Row) throws -> JSONValue {
        guard var o = try JSON.parse(row["payload"] as String).objectValue else { throw StoreError("corrupt alert payload") }
        let resolvedAt: Int64? = row["resolved_at"]
        o["resolved"] = .bool(row["resolved"])
        o["resolvedAt"] = resolvedAt.map { .string(Timestamp(nanosecondsSinceEpoch: $0).rfc3339) } ?? .null
        return .object(o)
    }

    public func alert(id: String) throws -> JSONValue? {
        try Row.fetchOne(db, sql: "SELECT * FROM alerts WHERE id = ?", arguments: [id]).map(alertJSON)
    }

    /// Alerts in `seq` order after `sinceSeq`.
    public func alerts(budgetId: String?, unresolvedOnly: Bool, sinceSeq: Int64, limit: Int) throws -> [JSONValue] {
        var sql = "SELECT * FROM alerts WHERE seq > ?"
        var args: [(any DatabaseValueConvertible)?] = [sinceSeq]
        if let budgetId {
            sql += " AND budget_id = ?"
            args.append(budgetId)
        }
        if unresolvedOnly { sql += " AND resolved = 0" }
        sql += " ORDER BY seq LIMIT ?"
        args.append(limit)
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(alertJSON)
    }

    /// (platform, model, month) of every UNPRICED_USAGE alert raised, so the once-a-month rule
    /// holds across restarts: the usage's month (`usageMonth`), or for an alert raised before it
    /// was kept (before the ninth session), the month of `triggeredAt`, which it was then.
    public func unpricedAlerts() throws -> [(platform: String, model: String?, month: String)] {
        try String.fetchAll(db, sql: "SELECT payload FROM alerts WHERE type = 'UNPRICED_USAGE'").compactMap { text in
            guard let o = try? JSON.parse(text).objectValue, let platform = o["platform"]?.stringValue else { return nil }
            if let month = o["usageMonth"]?.stringValue { return (platform, o["model"]?.stringValue, month) }
            guard let at = o["triggeredAt"]?.stringValue, let t = try? Timestamp(rfc3339: at) else { return nil }
            return (platform, o["model"]?.stringValue, t.civilDate.monthString)
        }
    }

    /// Daily rollup rows, for some budgets (nil: all) and an inclusive day range, by day.
    public func dailySpend(budgetIds: [String]?, fromDay: String?, toDay: String?) throws -> [DailySpend] {
        var sql = "SELECT budget_id, day, platform, service_type, amount, count FROM daily_spend WHERE day >= ? AND day <= ?"
        var args: [(any DatabaseValueConvertible)?] = [fromDay ?? "", toDay ?? "~"]
        if let budgetIds {
            if budgetIds.isEmpty { return [] }
            sql += " AND budget_id IN (" + budgetIds.map { _ in "?" }.joined(separator: ",") + ")"
            args += budgetIds.map { $0 }
        }
        sql += " ORDER BY day, budget_id, platform, service_type"
        let rows = try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { row in
            DailySpend(
                key: DailyKey(budgetId: row[0], day: row[1], platform: row[2], serviceType: ServiceType(rawValue: row[3]) ?? .other),
                amount: try money(row[4]), count: row[5]
            )
        }
        return Self.addingLogged(loggedDaily, to: rows, budgetIds: budgetIds.map(Set.init), fromDay: fromDay, toDay: toDay)
    }

    /// The saved spike history from `hour` on.
    public func history(since hour: Int64) throws -> [(bucket: HistoryBucket, amount: Money)] {
        try Row.fetchAll(db, sql: "SELECT key, hour, amount FROM spend_history WHERE hour >= ?", arguments: [hour]).map { row in
            (HistoryBucket(key: row[0], hour: row[1]), try money(row[2]))
        }
    }

    /// The costs since `time`, summed per budget, platform, service and clock hour: what the
    /// spike windows need, in as many rows as there are such hours (not one per cost). SQLite
    /// groups; the sums are made here, exactly (its own `sum` of decimal text is floating point).
    /// Both kinds of cost: cost rows, and event rows that are bookings (a real database from
    /// before v8 has none, but one whose history table was lost has: `HistoryPersistenceTests`).
    public func hourlyCosts(since time: Timestamp) throws -> [(budgetId: String, platform: String, serviceType: ServiceType, amount: Money, at: Timestamp)] {
        let nanosPerHour: Int64 = 3_600_000_000_000
        return try Row.fetchAll(db, sql: """
            SELECT budget_id, platform, service_type, hour, group_concat(amount, ' ') FROM (
              SELECT budget_id, platform, service_type, cost_date / ?1 AS hour, cost_amount AS amount
              FROM cost_allocations WHERE cost_date >= ?2
              UNION ALL
              SELECT budget_id, platform, service_type, event_time / ?1, cost
              FROM usage_events WHERE booked IS NOT NULL AND event_time >= ?2
            ) GROUP BY budget_id, platform, service_type, hour
            """, arguments: [nanosPerHour, max(0, time.nanosecondsSinceEpoch)]).map { row in
            var total = Money.zero
            let amounts: String = row[4]
            for text in amounts.split(separator: " ") { total += try money(String(text)) }
            let hour: Int64 = row[3]
            return (row[0], row[1], ServiceType(rawValue: row[2]) ?? .other, total, Timestamp(nanosecondsSinceEpoch: hour * nanosPerHour))
        }
    }

    /// SPENDING_SPIKE alerts since `time`: (budgetId, platform, serviceType, triggeredAt).
    public func spikeAlerts(since time: Timestamp) throws -> [(budgetId: String, platform: String?, serviceType: ServiceType?, at: Timestamp)] {
        try String.fetchAll(db, sql: "SELECT payload FROM alerts WHERE type = 'SPENDING_SPIKE' AND seq > 0").compactMap { text in
            guard let o = try? JSON.parse(text).objectValue, let id = o["budgetId"]?.stringValue,
                  let at = o["triggeredAt"]?.stringValue, let t = try? Timestamp(rfc3339: at), t >= time else { return nil }
            return (id, o["platform"]?.stringValue, o["serviceType"]?.stringValue.flatMap(ServiceType.init(rawValue:)), t)
        }
    }

    /// Audit entries, newest first, optionally for one target (a budget id, an alert id …) and
    /// before a row id (cursor).
    public func audit(target: String?, beforeID: Int64?, limit: Int) throws -> [JSONValue] {
        var sql = "SELECT rowid, at, actor, op, target, args, before, after FROM audit_log WHERE rowid < ?"
        var args: [(any DatabaseValueConvertible)?] = [beforeID ?? Int64.max]
        if let target {
            sql += " AND target = ?"
            args.append(target)
        }
        sql += " ORDER BY rowid DESC LIMIT ?"
        args.append(limit)
        return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { row in
            func json(_ i: Int) -> JSONValue {
                guard let text = row[i] as String? else { return .null }
                return (try? JSON.parse(text)) ?? .string(text)
            }
            return .object(JSONObject([
                ("id", .number(String(row[0] as Int64))),
                ("at", .string(Timestamp(nanosecondsSinceEpoch: row[1]).rfc3339)),
                ("actor", .string(row[2])), ("op", .string(row[3])),
                ("target", (row[4] as String?).map(JSONValue.string) ?? .null),
                ("args", json(5)), ("before", json(6)), ("after", json(7)),
            ]))
        }
    }

    /// Every alert and status event after `sinceSeq`, in order.
    public func outbound(sinceSeq: Int64, limit: Int) throws -> [(seq: Int64, topic: String, payload: String)] {
        try Row.fetchAll(db, sql: "SELECT seq, topic, payload FROM outbound WHERE seq > ? ORDER BY seq LIMIT ?",
                         arguments: [sinceSeq, limit]).map { ($0[0], $0[1], $0[2]) }
    }

    func storedEvent(_ row: Row) throws -> StoredEvent {
        let cost: String? = row["cost"]
        var e = StoredEvent(
            source: row["source"], id: row["event_id"], body: row["body"],
            state: EventState(rawValue: row["state"]) ?? .unpriced, reason: row["reason"], platform: row["platform"],
            serviceType: ServiceType(rawValue: row["service_type"]) ?? .other, model: row["model"],
            time: Timestamp(nanosecondsSinceEpoch: row["event_time"]),
            receivedAt: Timestamp(nanosecondsSinceEpoch: row["received_at"]), cost: try cost.map(money),
            currency: row["currency"], budgetId: row["budget_id"], costAllocationId: row["cost_allocation_id"]
        )
        if (row["booked"] as Int64?) != nil {
            e.booked = true
            e.allocationId = row["allocation_id"]
            e.costAllocationId = EventCostID.make(rowid: row["rowid"])
        }
        // Rows before migration v11 hold the text; later ones name a `catalog_versions` row.
        if let text: String = row["catalog_version"] {
            e.catalogVersion = text
        } else if let id: Int64 = row["catalog_id"] {
            e.catalogVersion = try String.fetchOne(
                db.cachedStatement(sql: "SELECT version FROM catalog_versions WHERE id = ?"), arguments: [id])
        }
        return e
    }

    /// Stored events and dead letters, newest first; `state` REJECTED lists dead letters only.
    public func events(state: EventState?, limit: Int) throws -> [JSONValue] {
        var accepted: [(Int64, JSONValue)] = []
        var rejected: [(Int64, JSONValue)] = []
        if state != .rejected {
            let rows = if let state {
                try Row.fetchAll(db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE state = ? ORDER BY rowid DESC LIMIT ?", arguments: [state.rawValue, limit])
            } else {
                try Row.fetchAll(db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events ORDER BY rowid DESC LIMIT ?", arguments: [limit])
            }
            accepted = try rows.map { row in let e = try storedEvent(row); return (e.receivedAt.nanosecondsSinceEpoch, e.json) }
        }
        if state == nil || state == .rejected {
            rejected = try Row.fetchAll(db, sql: "SELECT \(StoredColumns.rejectedMessages) FROM rejected_messages ORDER BY rowid DESC LIMIT ?", arguments: [limit]).map { row in
                let m = RejectedMessage(
                    receivedAt: Timestamp(nanosecondsSinceEpoch: row["received_at"]), socket: row["socket"], topic: row["topic"],
                    source: row["source"], id: row["event_id"], reason: row["reason"], body: [UInt8]((row["body"] as Data?) ?? Data())
                )
                var r = m
                r.bodySize = row["body_size"]
                return (m.receivedAt.nanosecondsSinceEpoch, r.json)
            }
        }
        // Merge newest first; a stable merge keeps each table's own order on equal times.
        var result: [JSONValue] = []
        var i = 0, j = 0
        while result.count < limit && (i < accepted.count || j < rejected.count) {
            if j >= rejected.count || (i < accepted.count && accepted[i].0 >= rejected[j].0) {
                result.append(accepted[i].1); i += 1
            } else {
                result.append(rejected[j].1); j += 1
            }
        }
        return result
    }

    /// Events in a state, oldest first, for re-processing.
    public func events(inState state: EventState, limit: Int) throws -> [StoredEvent] {
        try Row.fetchAll(db, sql: "SELECT \(StoredColumns.usageEvents) FROM usage_events WHERE state = ? ORDER BY rowid LIMIT ?", arguments: [state.rawValue, limit])
            .map(storedEvent)
    }

    /// How many stored events are in each state.
    public func eventCounts() throws -> [EventState: Int64] {
        var result: [EventState: Int64] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT state, count(*) FROM usage_events GROUP BY state") {
            if let s = EventState(rawValue: row[0]) { result[s] = row[1] }
        }
        result[.rejected] = try Int64.fetchOne(db, sql: "SELECT count(*) FROM rejected_messages") ?? 0
        return result
    }
}

/// What rows of `usage_events`, `cost_allocations` and `rejected_messages` are read with:
/// every column, the texts that carry a client's strings cast to BLOB. SQLite keeps a text
/// with a NUL character (U+0000, valid in JSON strings) whole, but GRDB reads a TEXT value
/// only up to its first NUL; a BLOB it reads whole, and decodes as UTF-8 for a `String`.
///
/// GRDB also binds a `String` argument only up to its first NUL: a client's string compared
/// with a column is bound as its bytes (`exact`) and cast to TEXT in the SQL (`CAST(? AS TEXT)`,
/// which keeps every byte).
enum StoredColumns {
    static func exact(_ text: String) -> Data { Data(text.utf8) }

    /// A select list: the `plain` columns, and the `texts` cast to BLOB under their own names.
    static func select(_ plain: [String], texts: [String]) -> String {
        (plain + texts.map { "CAST(\($0) AS BLOB) AS \($0)" }).joined(separator: ", ")
    }
    static let usageEvents = select(
        ["rowid", "body", "state", "service_type", "event_time", "received_at", "cost", "currency", "cost_allocation_id",
         "catalog_version", "catalog_id", "booked"],
        texts: ["source", "event_id", "reason", "platform", "model", "budget_id", "allocation_id"])
    static let costAllocations = select(
        ["service_type", "cost_amount", "currency", "cost_date", "metadata", "created_at", "kind", "catalog_from", "catalog_to"],
        texts: ["id", "budget_id", "allocation_id", "platform", "description", "api_usage_id", "apify_run_id", "event_source",
                "event_id", "corrects_source", "corrects_event_id"])
    static let rejectedMessages = select(
        ["rowid", "received_at", "socket", "body", "body_size"], texts: ["topic", "source", "event_id", "reason"])
}
