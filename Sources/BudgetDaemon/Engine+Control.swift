import BudgetCore
import BudgetStore
import Logging

/// Control error codes (CONTRACT §6).
enum ControlErrorCode: String {
    case badRequest = "BAD_REQUEST", unknownOp = "UNKNOWN_OP", notFound = "NOT_FOUND"
    case validationFailed = "VALIDATION_FAILED", conflict = "CONFLICT", unauthorized = "UNAUTHORIZED"
    case internalError = "INTERNAL"
}

/// A control request that fails with a code and a message a person can act on.
struct ControlFailure: Error {
    var code: ControlErrorCode
    var message: String
    init(_ code: ControlErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension Engine {
    static func errorReply(_ code: ControlErrorCode, _ message: String) -> JSONValue {
        .object(JSONObject([
            ("ok", false), ("error", .object(JSONObject([("code", .string(code.rawValue)), ("message", .string(message))]))),
        ]))
    }

    static func okReply(_ result: JSONValue) -> JSONValue {
        .object(JSONObject([("ok", true), ("result", result)]))
    }


    /// A control request's op and args, or the error reply it gets: checks its shape and the
    /// caller's role.
    func parseControl(frames: [[UInt8]], userID: String?) -> Result<(op: String, args: JSONObject), ControlFailure> {
        guard frames.count == 1 else {
            return .failure(ControlFailure(.badRequest, "a control request is one JSON frame, got \(frames.count)"))
        }
        if frames[0].count > config.maxMessageBytes {
            return .failure(ControlFailure(.badRequest, "request is larger than \(config.maxMessageBytes) bytes"))
        }
        let request: JSONObject
        do {
            guard let o = try JSON.parse(frames[0], maxDepth: EventLimits.maxDepth).objectValue else {
                return .failure(ControlFailure(.badRequest, "a request is a JSON object {\"op\": …, \"args\": {…}}"))
            }
            request = o
        } catch {
            return .failure(ControlFailure(.badRequest, "request is not valid JSON: \(error.message)"))
        }
        guard let op = request["op"]?.stringValue else {
            return .failure(ControlFailure(.badRequest, "request needs \"op\", a string"))
        }
        // CURVE guards TCP only: an ipc or inproc control endpoint is guarded by the file system
        // (or the process), and its clients are operators, as with CURVE off (docs/security.md;
        // an audit's ipc control answered UNAUTHORIZED to every op, `health` too).
        if let keys = securityKeys, config.controlEndpoint.hasPrefix("tcp://") {
            switch keys.role(of: userID) {
            case .operator: break
            case .viewer where Self.readOnlyOps.contains(op): break
            case .viewer where !Self.stateChangingOps.contains(op):
                return .failure(ControlFailure(.unknownOp, "unknown op \(op)"))
            case .viewer:
                return .failure(ControlFailure(.unauthorized, "op \(op) changes state: key \(userID ?? "?") is a viewer; operators may"))
            case .none:
                return .failure(ControlFailure(.unauthorized, "key \(userID ?? "(none)") is not an operator or viewer"))
            }
        }
        var args = JSONObject()
        if let a = request["args"], !a.isNull {
            guard let o = a.objectValue else { return .failure(ControlFailure(.badRequest, "\"args\" must be an object")) }
            args = o
        }
        return .success((op, args))
    }

    /// Answers one control request. Domain failures become error replies; only a database failure throws.
    /// Returns the reply, or nil for a request answered later (`backup.create`: once its batch
    /// has committed and the copy, on a thread of its own, is done).
    func handleControl(frames: [[UInt8]], envelope: [[UInt8]], userID: String?, _ w: StoreWriter, _ out: inout BatchOutput) throws -> JSONValue? {
        let op: String, args: JSONObject
        switch parseControl(frames: frames, userID: userID) {
        case .failure(let failure): return Self.errorReply(failure.code, failure.message)
        case .success(let request): (op, args) = request
        }
        if op == "backup.create" {
            do {
                out.backup = try backupRequest(Args(args), envelope: envelope, actor: userID ?? "local", out)
                return nil
            } catch {
                guard let reply = Self.refusalReply(error) else { throw error }
                return reply
            }
        }
        // A refused request leaves nothing behind: the ledger and the batch's output are put back
        // as they were (copy-on-write makes the snapshot free unless the op changed something).
        let ledgerBefore = ledger
        let outBefore = out
        do {
            let result = try perform(op: op, Args(args), w, &out)
            if !Self.readOnlyOps.contains(op) {
                try audit(op: op, args: args, actor: userID ?? "local", before: ledgerBefore, result: result, w)
            }
            return Self.okReply(result)
        } catch {
            // A database failure fails the batch; a refused request is answered.
            guard let reply = Self.refusalReply(error) else { throw error }
            (ledger, out) = (ledgerBefore, outBefore)
            return reply
        }
    }

    /// The error reply to a refused request (a `ControlFailure` or a `LedgerError`); nil for any
    /// other error.
    static func refusalReply(_ error: any Error) -> JSONValue? {
        switch error {
        case let failure as ControlFailure: errorReply(failure.code, failure.message)
        case let error as LedgerError: errorReply(ControlErrorCode(rawValue: error.code.rawValue) ?? .validationFailed, error.message)
        default: nil
        }
    }

    /// Records a successful change in the audit log: who, when, the op and its args, and the
    /// target budget as it was before and is after (or the op's result for other targets).
    func audit(op: String, args: JSONObject, actor: String, before: Ledger, result: JSONValue, _ w: StoreWriter) throws {
        let budgetId = args["budgetId"]?.stringValue ?? (op.hasPrefix("budget.") ? (args["id"]?.stringValue ?? result["id"]?.stringValue) : nil)
        let target = budgetId ?? args["id"]?.stringValue
        let beforeJSON = budgetId.flatMap { before[$0]?.json }
        let afterJSON = budgetId.flatMap { ledger[$0]?.json } ?? result
        try w.insertAudit(at: SystemClock.now(), actor: actor, op: op, target: target, args: .object(args), before: beforeJSON, after: afterJSON)
    }

    /// Budgets and allocations are written through GRDB, which binds a text only up to its first
    /// NUL character (U+0000): an id, a name or a platform holding one would be stored cut short
    /// (two ids differing after it would even share a row). Such a request is refused; events and
    /// costs, written and read byte for byte, keep theirs (docs/ledger.md).
    static func refuseNUL(in value: JSONValue, op: String) throws {
        switch value {
        case .string(let s) where s.utf8.contains(0):
            throw ControlFailure(.validationFailed, "\(op): texts must not contain a NUL character (U+0000)")
        case .array(let items):
            for item in items { try refuseNUL(in: item, op: op) }
        case .object(let o):
            for (key, value) in o.pairs {
                try refuseNUL(in: .string(key), op: op)
                try refuseNUL(in: value, op: op)
            }
        default:
            break
        }
    }

    func perform(op: String, _ args: Args, _ w: StoreWriter, _ out: inout BatchOutput) throws -> JSONValue {
        let now = SystemClock.now()
        if ["budget.create", "budget.update", "allocation.add", "allocation.update"].contains(op) {
            try Self.refuseNUL(in: .object(args.object), op: op)
        }
        switch op {
        case "budget.create":
            let b = try ledger.createBudget(args, id: IDs.make("b"), at: now)
            out.touchedBudgets.insert(b.id)
            out.budgetsChanged = true
            out.repliedBudget = b.id
            logger.info("budget created", metadata: ["id": "\(b.id)", "name": "\(b.name)"])
            return b.json
        case "budget.update":
            let (b, messages) = try ledger.updateBudget(args, at: now)
            out.touchedBudgets.insert(b.id)
            out.outbound += messages
            out.budgetsChanged = true
            out.repliedBudget = b.id
            return b.json
        case "budget.get":
            let b = try budget(args)
            guard case .object(var summary) = b.summary(at: now) else { return b.summary(at: now) }
            summary["dailySpend"] = .array(try dailySpend(of: b, w))
            return .object(summary)
        case "budget.list":
            return .array(try listBudgets(args).map(\.json))
        case "cost.allocate":
            return try allocateCost(args, w, &out, now: now)
        case "cost.list":
            let b = try budget(args, key: "budgetId")
            let from = try args.instant("from")
            let to = try inclusiveEnd(args, "to")
            if let from, let to, to < from { throw ControlFailure(.validationFailed, "to must not be before from") }
            let (paged, cursor) = try pageRequest(args)
            if paged {
                if let cursor, case .costs = cursor {} else if cursor != nil { throw ControlFailure(.validationFailed, "cursor is not a cost.list cursor") }
                return pageJSON(try w.reader.costsPage(budgetId: b.id, from: from, to: to, limit: try limit(args, default: 100), after: cursor))
            }
            return .array(try w.reader.costs(budgetId: b.id, from: from, to: to, limit: try limit(args, default: 100)).map(\.json))
        case "cost.credit":
            return try creditOp(args, w, &out, now: now)
        case "alert.list":
            // A budget named that does not exist is NOT_FOUND, as for cost.list (not an empty list).
            // The query takes the budget's id as stored: the database compares bytes, the ledger
            // canonically equivalent strings (an audit's "café" spelled with a combining accent
            // found the budget and listed none of its alerts).
            let budgetId = try args.string("budgetId").map { id in
                guard let b = ledger[id] else { throw ControlFailure(.notFound, "no budget \(id)") }
                return b.id
            }
            let (paged, cursor) = try pageRequest(args)
            if paged {
                if let cursor, case .alerts = cursor {} else if cursor != nil { throw ControlFailure(.validationFailed, "cursor is not an alert.list cursor") }
                return pageJSON(try w.reader.alertsPage(
                    budgetId: budgetId, unresolvedOnly: try args.bool("unresolved") ?? false,
                    sinceSeq: try args.int("sinceSeq") ?? 0, limit: try limit(args, default: 1000), after: cursor
                ))
            }
            return .array(try w.reader.alerts(
                budgetId: budgetId, unresolvedOnly: try args.bool("unresolved") ?? false,
                sinceSeq: try args.int("sinceSeq") ?? 0, limit: try limit(args, default: 1000)
            ))
        case "alert.resolve":
            let id = try args.requiredString("id")
            guard let alert = try w.resolveAlert(id: id, at: now) else { throw ControlFailure(.notFound, "no alert \(id)") }
            return alert
        case "outbound.list":
            let rows = try w.reader.outbound(sinceSeq: try args.int("sinceSeq") ?? 0, limit: try limit(args, default: 1000))
            return .array(rows.map { row in
                .object(JSONObject([
                    ("seq", .number(row.seq)), ("topic", .string(row.topic)),
                    ("payload", (try? JSON.parse(row.payload)) ?? .string(row.payload)),
                ]))
            })
        case "event.list":
            let (paged, cursor) = try pageRequest(args)
            if paged {
                if let cursor, case .events = cursor {} else if cursor != nil { throw ControlFailure(.validationFailed, "cursor is not an event.list cursor") }
                let from = try args.instant("from")
                let to = try inclusiveEnd(args, "to")
                if let from, let to, to < from { throw ControlFailure(.validationFailed, "to must not be before from") }
                return pageJSON(try w.reader.eventsPage(
                    state: try args.enumValue("state", EventState.self), budgetId: try args.string("budgetId").map { ledger[$0]?.id ?? $0 },
                    from: from, to: to, limit: try limit(args, default: 100), after: cursor
                ))
            }
            return .array(try w.reader.events(state: try args.enumValue("state", EventState.self), limit: try limit(args, default: 100)))
        case "event.get":
            return try eventGetOp(args, w)
        case "event.reprice":
            return try repriceOp(args, w, &out, now: now)
        case "retention.run":
            return try retentionOp(args, w, now: now)
        case "event.reprocess":
            let states: [EventState] = if let s = try args.enumValue("state", EventState.self) { [s] } else { [.unpriced, .unallocated] }
            if states.contains(where: { $0 != .unpriced && $0 != .unallocated }) {
                throw ControlFailure(.validationFailed, "event.reprocess takes state UNPRICED or UNALLOCATED (ALLOCATED events are booked; REJECTED ones are dead letters)")
            }
            let r = try reprocess(states, w, &out)
            return .object(JSONObject([("priced", .number(r.priced)), ("allocated", .number(r.allocated)), ("remaining", .number(r.remaining))]))
        case "prices.reload":
            return try reloadCatalog(w, &out)
        case "price.quote":
            return try quote(args)
        case "analytics":
            return try analytics(args, w)
        case "spend.check", "health", "stats":
            return try answerFromMemory(op: op, args, stats: stats, lastSeq: ledger.lastSeq, at: now)
        case "allocation.add", "allocation.update", "allocation.remove":
            let (b, messages) = switch op {
            case "allocation.add": try ledger.addAllocation(args, at: now)
            case "allocation.update": try ledger.updateAllocation(args, at: now)
            default: try ledger.removeAllocation(args, at: now)
            }
            out.touchedBudgets.insert(b.id)
            out.outbound += messages
            return b.json
        case "audit.list":
            return .array(try w.reader.audit(
                target: try args.string("target"), beforeID: try args.int("before"), limit: try limit(args, default: 100)
            ))
        case "forecast": return try forecastOp(args, w, now: now)
        case "optimization.list": return try optimizationListOp(args, w, now: now)
        case "optimization.update": return try optimizationUpdateOp(args, w, now: now)
        default:
            throw ControlFailure(.unknownOp, "unknown op \(op)")
        }
    }

    /// Ops answered from memory alone (`memoryOps`): under load they wait for the commit in
    /// progress without holding the pipeline (`Engine+Commit`). `stats` and `lastSeq` are
    /// passed in: as of the last released commit when answered there.
    static let memoryOps: Set<String> = ["spend.check", "health", "stats"]

    func answerFromMemory(op: String, _ args: Args, stats: Stats, lastSeq: Int64, at now: Timestamp) throws -> JSONValue {
        switch op {
        case "spend.check":
            return try ledger.checkSpend(SpendRequest(args), at: now).json
        case "health":
            return .object(JSONObject([
                ("status", .string(health.ok ? "OK" : "DEGRADED")), ("reason", health.reason.map(JSONValue.string) ?? .null),
                ("version", .string(budgetdVersion)), ("uptimeSeconds", .number((now - startedAt) / 1_000_000_000)),
            ]))
        case "stats":
            return stats.json(lastSeq: lastSeq, process: ProcessFigures.read(store: store))
        default:
            throw ControlFailure(.unknownOp, "op \(op) is not answered from memory")
        }
    }

    /// Loads the catalog file again (`prices.reload`, SIGHUP); a bad one is refused and the old
    /// one kept. Then UNPRICED events are priced again, in the same transaction.
    func reloadCatalog(_ w: StoreWriter, _ out: inout BatchOutput) throws -> JSONValue {
        guard let path = pricesPath else {
            throw ControlFailure(.validationFailed, "no price catalog is configured (--prices)")
        }
        let started = SystemClock.now()
        do { pricer = Pricer(catalog: try Self.loadCatalog(path: path)) } catch {
            throw ControlFailure(.validationFailed, "catalog refused, the old one stays: \(error)")
        }
        let r = try reprocess([.unpriced], w, &out)
        logger.info("price catalog reloaded", metadata: [
            "version": "\(pricer.catalog.version)", "entries": "\(pricer.catalog.entryCount)",
            "ms": "\((SystemClock.now() - started) / 1_000_000)", "priced": "\(r.priced)", "allocated": "\(r.allocated)",
        ])
        return .object(JSONObject([
            ("version", .string(pricer.catalog.version)), ("entries", .number(pricer.catalog.entryCount)),
            ("priced", .number(r.priced)), ("allocated", .number(r.allocated)),
        ]))
    }

    /// The budget's spend per UTC day of its period (days with spend only), ascending, from the rollup.
    func dailySpend(of b: Budget, _ w: StoreWriter) throws -> [JSONValue] {
        var byDay: [(String, Money)] = []
        for row in try w.reader.dailySpend(budgetIds: [b.id], fromDay: nil, toDay: nil) {
            if let last = byDay.last, last.0 == row.key.day {
                byDay[byDay.count - 1].1 = last.1 + row.amount
            } else {
                byDay.append((row.key.day, row.amount))
            }
        }
        // A day whose spend nets to nothing (credited, or moved with a renewed child) is left out.
        return byDay.filter { $0.1 != .zero }.map { .object(JSONObject([("date", .string($0.0)), ("amount", .number($0.1.description))])) }
    }

    func budget(_ args: Args, key: String = "id") throws -> Budget {
        let id = try args.requiredString(key, max: EventLimits.maxIdLength)
        guard let b = ledger[id] else { throw ControlFailure(.notFound, "no budget \(id)") }
        return b
    }

    /// The last instant an end bound covers: an end day includes its whole day (CONTRACT §4).
    func inclusiveEnd(_ args: Args, _ key: String) throws -> Timestamp? {
        try args.dateSpec(key).map { $0.endExclusive.adding(nanoseconds: -1) }
    }

    func limit(_ args: Args, default value: Int) throws -> Int {
        guard let n = try args.int("limit") else { return value }
        guard n >= 1 && n <= 100_000 else { throw ControlFailure(.validationFailed, "limit must be 1...100000") }
        return Int(n)
    }

    /// Budgets filtered by status, type, and a date range their periods overlap.
    func listBudgets(_ args: Args) throws -> [Budget] {
        let status = try args.enumValue("status", BudgetStatus.self)
        let type = try args.enumValue("budgetType", BudgetType.self)
        let from = try args.dateSpec("startDate")?.startInstant
        let to = try inclusiveEnd(args, "endDate")
        if let from, let to, to < from { throw ControlFailure(.validationFailed, "endDate must not be before startDate") }
        return ledger.budgetsInOrder.filter { b in
            if let status, b.status != status { return false }
            if let type, b.budgetType != type { return false }
            if let from, let end = b.period.endExclusive, end <= from { return false }
            if let to, b.period.start > to { return false }
            return true
        }
    }

    /// The `id?` of `cost.allocate` and `cost.credit`: 1..128 characters, as an event's id (§2).
    /// "" is refused, not taken as a key that every later "" would repeat (booking nothing,
    /// with ok: true).
    func idempotencyKey(_ args: Args) throws -> String? {
        let key = try args.string("id", max: EventLimits.maxIdLength)
        if key?.isEmpty == true { throw ControlFailure(.validationFailed, "id must not be empty") }
        return key
    }

    /// A manual cost: same booking and alert checks as an ingested event; `id` makes it idempotent.
    ///
    /// The budget must cover `costDate`, as an event's explicit `budgetId` must cover its time
    /// (CONTRACT §4), following a renewed budget's successors; otherwise `VALIDATION_FAILED`.
    /// A repeated `id` returns the first cost, or is a `CONFLICT` when the request differs from
    /// it (budget, platform, serviceType, costAmount, a given costDate), as a resent event with
    /// another body is (§2).
    func allocateCost(_ args: Args, _ w: StoreWriter, _ out: inout BatchOutput, now: Timestamp) throws -> JSONValue {
        let key = try idempotencyKey(args)
        let requested = try budget(args, key: "budgetId")
        let platform = try args.requiredString("platform")
        guard let serviceType = try args.enumValue("serviceType", ServiceType.self) else {
            throw ControlFailure(.validationFailed, "serviceType is required")
        }
        guard let amount = try args.amount("costAmount") else { throw ControlFailure(.validationFailed, "costAmount is required") }
        let givenDate = try args.instant("costDate")
        if let key, let existing = try w.cost(id: key) {
            // A credit's (or re-pricing's) id is not a cost's: refused, as cost.credit refuses a cost's id.
            if existing.kind != .cost { throw ControlFailure(.conflict, "id \(key) is a \(existing.kind.rawValue) entry, not a cost") }
            let sameBudget = existing.budgetId == requested.id
                || ledger.route(budgetId: requested.id, metadata: nil, time: existing.costDate) == existing.budgetId
            guard sameBudget, existing.platform == platform, existing.serviceType == serviceType, existing.costAmount == amount,
                  givenDate.map({ $0 == existing.costDate }) ?? true else {
                throw ControlFailure(.conflict, "id \(key) was used for another cost: \(existing.costAmount) \(existing.currency) to budget \(existing.budgetId), \(existing.platform)/\(existing.serviceType.rawValue), \(existing.costDate.rfc3339)")
            }
            return existing.json
        }
        try refuseEventCostID(key)
        let costDate = givenDate ?? now
        // Routed as an event's explicit budgetId (§4), also a CANCELLED head of a renewed chain
        // whose successor covers the date (as ingest and spend.check do).
        guard let routed = ledger.route(budgetId: requested.id, metadata: nil, time: costDate), let b = ledger[routed] else {
            throw ControlFailure(.validationFailed, ledger.unroutedReason(budgetId: requested.id, time: costDate, timeName: "costDate"))
        }
        var metadata: JSONObject?
        if let m = args.object["metadata"], !m.isNull {
            guard let o = m.objectValue else { throw ControlFailure(.validationFailed, "metadata must be an object") }
            // The limit of an event's metadata (CONTRACT §2), measured the same way (an audit's
            // 60 KB of it was accepted here and refused on an event).
            if m.serializedByteCount(limit: EventLimits.maxMetadataBytes, asStored: true) > EventLimits.maxMetadataBytes {
                throw ControlFailure(.validationFailed, "metadata is larger than \(EventLimits.maxMetadataBytes) bytes")
            }
            metadata = o
        }
        // Every argument is read and checked before the ledger changes: a bad one must not leave
        // a booking in memory that the database never saw.
        let description = try args.string("description", max: EventLimits.maxDescriptionLength)
        let apiUsageId = try args.string("apiUsageId")
        let apifyRunId = try args.string("apifyRunId")
        let booking = ledger.book(
            amount: amount, budgetId: b.id, platform: platform, serviceType: serviceType, eventId: nil,
            costTime: costDate, at: now
        )
        let cost = CostRecord(
            id: key ?? costIDs.next("c", at: now), budgetId: b.id, allocationId: booking.allocationId, platform: platform,
            serviceType: serviceType, costAmount: amount, currency: b.currency, description: description,
            costDate: costDate, apiUsageId: apiUsageId, apifyRunId: apifyRunId, eventId: nil, eventSource: nil,
            metadata: metadata
        )
        try w.insertCost(cost, createdAt: now)
        out.add(booking, amount: amount, day: cost.costDate.civilDate, platform: platform, serviceType: serviceType)
        return cost.json
    }

    /// What an event would cost, without recording anything.
    func quote(_ args: Args) throws -> JSONValue {
        var object = args.object
        if object["id"] == nil { object["id"] = "quote" }
        let event: UsageEvent
        do { event = try UsageEventDecoder.decode(.object(object)) } catch {
            throw ControlFailure(.validationFailed, error.reason)
        }
        let time = event.time ?? SystemClock.now()
        switch pricer.price(event, at: time) {
        case .unpriced(let reason):
            return .object(JSONObject([("cost", .null), ("currency", .null), ("state", "UNPRICED"), ("reason", .string(reason)), ("price", .null)]))
        case .priced(let amount, let currency, let entry):
            var state = EventState.allocated
            var cost: Money? = amount.roundedUnits(scale: 9).map { Money(nanos: $0) }
            var costCurrency: String? = currency
            var reason: String?
            if let budgetId = ledger.route(budgetId: event.budgetId, metadata: event.metadata, time: time), let b = ledger[budgetId] {
                switch pricer.money(amount, from: currency, to: b.currency, at: time) {
                case .success(let m): cost = m; costCurrency = b.currency
                // UNPRICED, as the event would be: no cost (not the unconverted figure).
                case .failure(let f): state = .unpriced; reason = f.reason; cost = nil; costCurrency = nil
                }
            } else {
                switch pricer.money(amount, from: currency, to: currency, at: time) {
                case .success(let m):
                    cost = m
                    state = .unallocated
                    reason = unallocatedReason(event, time: time)
                // Over 1e12: UNPRICED, as the event would be without a budget too.
                case .failure(let f): state = .unpriced; reason = f.reason; cost = nil; costCurrency = nil
                }
            }
            // A CREDIT is booked as a negative cost (docs/ledger.md): the quote says so.
            if event.kind == .credit, let c = cost { cost = Money(nanos: -c.nanos) }
            return .object(JSONObject([
                ("cost", cost.map { .number($0.description) } ?? .null), ("currency", costCurrency.map(JSONValue.string) ?? .null),
                ("state", .string(state.rawValue)), ("reason", reason.map(JSONValue.string) ?? .null),
                ("price", entry?.json ?? .null),
            ]))
        }
    }
}
