import BudgetCore
import BudgetStore
import Foundation
import Logging
import Synchronization

// Ledger operations (docs/ledger.md): credits, re-pricing, backup, event.get and cursor pages.
// The history is append-only: a correction is a new cost row that names what it corrects.

extension Engine {
    /// A new manual cost's `id` must not have the form of the id of a cost booked in an event
    /// row (`e_` and 16 hex digits): that event's row may not exist yet, and the two would share
    /// an id. One that names an existing such cost was found before this is asked.
    func refuseEventCostID(_ key: String?) throws {
        guard let key, EventCostID.rowid(of: key) != nil else { return }
        throw ControlFailure(.validationFailed, "id \(key) has the form of a cost booked from an event (e_ and 16 hex digits): choose another")
    }

    /// `cost.credit`: a refund or credit note, booked as a negative cost that names the event
    /// (`correctsEvent`) or simply the budget (and its period, by `costDate`) it corrects.
    func creditOp(_ args: Args, _ w: StoreWriter, _ out: inout BatchOutput, now: Timestamp) throws -> JSONValue {
        let key = try idempotencyKey(args)
        let corrects: EventRef?
        do { corrects = try EventRef.parse(args.object["correctsEvent"]) } catch {
            throw ControlFailure(.validationFailed, error.reason)
        }
        if let key, let existing = try w.cost(id: key) {
            guard existing.kind == .credit else { throw ControlFailure(.conflict, "id \(key) is a \(existing.kind.rawValue) entry, not a credit") }
            // A repeat returns the first credit; another credit under the same id is a CONFLICT,
            // as for cost.allocate (what a repeat names is compared; what it leaves out is not).
            let amount = try args.amount("amount"), budgetId = try args.string("budgetId"), platform = try args.string("platform")
            let serviceType = try args.enumValue("serviceType", ServiceType.self), costDate = try args.instant("costDate")
            let same = amount.map { -$0 == existing.costAmount } ?? true
                && corrects.map { $0 == existing.corrects } ?? true
                && budgetId.map { $0 == existing.budgetId } ?? true
                && platform.map { $0 == existing.platform } ?? true
                && serviceType.map { $0 == existing.serviceType } ?? true
                && costDate.map { $0 == existing.costDate } ?? true
            if !same {
                throw ControlFailure(.conflict, "id \(key) was used for another credit: \(-existing.costAmount) \(existing.currency) to budget \(existing.budgetId), \(existing.platform)/\(existing.serviceType.rawValue), \(existing.costDate.rfc3339)")
            }
            return existing.json
        }
        try refuseEventCostID(key)
        var event: StoredEvent?
        if let corrects {
            guard let e = try w.reader.event(source: corrects.source, id: corrects.id) else {
                throw ControlFailure(.notFound, "no event (\(corrects.source), \(corrects.id))")
            }
            guard e.state == .allocated, e.budgetId != nil else {
                throw ControlFailure(.validationFailed, "event \(corrects.id) is \(e.state.rawValue): only a booked (ALLOCATED) event can be credited")
            }
            event = e
        }
        let budgetId = try args.string("budgetId", max: EventLimits.maxIdLength) ?? event?.budgetId
        guard let budgetId else { throw ControlFailure(.validationFailed, "budgetId is required (or correctsEvent)") }
        guard let b = ledger[budgetId] else { throw ControlFailure(.notFound, "no budget \(budgetId)") }
        if let event, event.budgetId != b.id {
            throw ControlFailure(.validationFailed, "event \(event.id) is booked to budget \(event.budgetId ?? "-"), not \(b.id)")
        }
        if b.status == .cancelled { throw ControlFailure(.validationFailed, "budget \(b.id) is CANCELLED") }
        guard let platform = try args.string("platform") ?? event?.platform, !platform.isEmpty else {
            throw ControlFailure(.validationFailed, "platform is required")
        }
        guard let serviceType = try args.enumValue("serviceType", ServiceType.self) ?? event?.serviceType else {
            throw ControlFailure(.validationFailed, "serviceType is required")
        }
        guard let amount = try args.amount("amount") else { throw ControlFailure(.validationFailed, "amount is required (a positive number)") }
        if amount <= .zero { throw ControlFailure(.validationFailed, "amount must be greater than 0 (a credit is recorded as a negative cost)") }
        if let event {
            let rows = try w.reader.costs(ofEvent: event.source, id: event.id)
            // An event that corrects another counts in that one's cost (its row names it): it is
            // credited there, or its cost would be refunded twice (an audit's 16 refunded of 13).
            if let own = rows.first(where: { $0.id == event.costAllocationId }), let target = own.corrects {
                throw ControlFailure(.validationFailed, "event \(event.id) corrects event (\(target.source), \(target.id)), whose cost it counts in: credit that one")
            }
            // A refund of an event cannot exceed what it still costs (its booking, re-pricing
            // differences and earlier credits).
            let left = rows.reduce(Money.zero) { $0 + $1.costAmount }
            if amount > left {
                throw ControlFailure(.validationFailed, "credit \(amount) exceeds what event \(event.id) still costs (\(left))")
            }
        }
        let reason = try args.string("reason", max: EventLimits.maxDescriptionLength)
        let givenDate = try args.instant("costDate")
        // In the budget's period, as every cost of it (cost.allocate's rule): a credit dated
        // elsewhere left the daily rollup and analytics at odds with spent.
        if let givenDate, !b.period.covers(givenDate) {
            throw ControlFailure(.validationFailed, "budget \(b.id) does not cover costDate \(givenDate.rfc3339)")
        }
        let costDate = givenDate ?? event?.time ?? Self.clamp(now, into: b.period)
        let booking = ledger.adjust(
            amount: -amount, budgetId: b.id, platform: platform, serviceType: serviceType,
            eventId: corrects?.id, costTime: costDate, at: now
        )
        let cost = CostRecord(
            id: key ?? IDs.make("cr"), budgetId: b.id, allocationId: booking.allocationId, platform: platform,
            serviceType: serviceType, costAmount: -amount, currency: b.currency, description: reason,
            costDate: costDate, apiUsageId: nil, apifyRunId: nil, eventId: nil, eventSource: nil, metadata: nil,
            kind: .credit, corrects: corrects
        )
        try w.insertCost(cost, createdAt: now)
        out.add(booking, amount: -amount, day: costDate.civilDate, platform: platform, serviceType: serviceType)
        logger.info("credit recorded", metadata: ["budget": "\(b.id)", "amount": "\(amount)", "corrects": "\(corrects?.id ?? "-")"])
        return cost.json
    }

    /// `now`, or the nearest instant of the period when now is outside it (a credit for a past
    /// period counts in that period's days).
    static func clamp(_ now: Timestamp, into period: Period) -> Timestamp {
        if now < period.start { return period.start }
        if let end = period.endExclusive, now >= end { return end.adding(nanoseconds: -1) }
        return now
    }

    /// `event.reprice`: prices ALLOCATED catalog-priced events again with the catalog in force (or
    /// one given in the request) and records each difference against the event's current total
    /// (its booking and earlier re-pricing differences) as a REPRICE adjustment. Idempotent: a
    /// second run finds no difference. `dryRun` or a request `catalog` records nothing.
    func repriceOp(_ args: Args, _ w: StoreWriter, _ out: inout BatchOutput, now: Timestamp) throws -> JSONValue {
        let platform = try args.string("platform")
        let model = try args.string("model")
        let from = try args.instant("from")
        let to = try inclusiveEnd(args, "to")
        if let from, let to, to < from { throw ControlFailure(.validationFailed, "to must not be before from") }
        var dryRun = try args.bool("dryRun") ?? false
        let limit = try limit(args, default: 100)
        var using = pricer
        var requestCatalog = false
        if let c = args.object["catalog"], !c.isNull {
            guard c.objectValue != nil else { throw ControlFailure(.validationFailed, "catalog must be a catalog JSON object") }
            do { using = Pricer(catalog: try Catalog.load(json: c.serializedBytes())) } catch {
                throw ControlFailure(.validationFailed, "catalog: \(error.message)")
            }
            requestCatalog = true
            dryRun = true  // "what would it have cost": never recorded
        }
        let toVersion = using.catalog.version
        let earlier = try w.reader.repriceAdjustments()
        var changed = 0, unchanged = 0, unpriced = 0, explicit = 0
        var total = Money.zero
        var currentTotal = Money.zero, newTotal = Money.zero
        var rows: [JSONValue] = []
        for stored in try w.reader.allocatedEvents(platform: platform, model: model, from: from, to: to) {
            guard let booked = stored.cost, let budgetId = stored.budgetId,
                  let event = try? UsageEventDecoder.decode(JSON.parse(stored.body)) else { continue }
            if event.cost != nil {
                explicit += 1  // an explicit cost (or a credit) is what the publisher said: not re-priced
                continue
            }
            let currency = ledger[budgetId]?.currency ?? stored.currency ?? "USD"
            guard case .priced(let amount, let c, _) = using.price(event, at: stored.time),
                  case .success(let newCost) = using.money(amount, from: c, to: currency, at: stored.time) else {
                unpriced += 1
                continue
            }
            let ref = EventRef(source: stored.source, id: stored.id)
            let current = booked + (earlier[ref]?.sum ?? .zero)
            currentTotal += current
            newTotal += newCost
            let difference = newCost - current
            if difference == .zero {
                unchanged += 1
                continue
            }
            changed += 1
            total += difference
            let fromVersion = earlier[ref]?.catalogTo ?? stored.catalogVersion ?? "unknown"
            if rows.count < limit {
                rows.append(.object(JSONObject([
                    ("source", .string(stored.source)), ("id", .string(stored.id)), ("budgetId", .string(budgetId)),
                    ("platform", .string(stored.platform)), ("model", stored.model.map(JSONValue.string) ?? .null),
                    ("time", .string(stored.time.rfc3339)), ("currentCost", .number(current.description)),
                    ("newCost", .number(newCost.description)), ("difference", .number(difference.description)),
                    ("currency", .string(currency)), ("catalogFrom", .string(fromVersion)), ("catalogTo", .string(toVersion)),
                ])))
            }
            guard !dryRun, ledger[budgetId] != nil else { continue }
            let booking = ledger.adjust(
                amount: difference, budgetId: budgetId, platform: stored.platform, serviceType: stored.serviceType,
                eventId: stored.id, costTime: stored.time, at: now
            )
            let cost = CostRecord(
                id: IDs.make("rp"), budgetId: budgetId, allocationId: booking.allocationId, platform: stored.platform,
                serviceType: stored.serviceType, costAmount: difference, currency: currency,
                description: "re-priced: catalog \(fromVersion) → \(toVersion)", costDate: stored.time,
                apiUsageId: nil, apifyRunId: nil, eventId: nil, eventSource: nil, metadata: nil,
                kind: .reprice, corrects: ref, catalogFrom: fromVersion, catalogTo: toVersion
            )
            try w.insertCost(cost, createdAt: now)
            out.add(booking, amount: difference, day: stored.time.civilDate, platform: stored.platform, serviceType: stored.serviceType)
        }
        if !dryRun && changed > 0 {
            logger.info("events re-priced", metadata: ["count": "\(changed)", "difference": "\(total)", "catalog": "\(toVersion)"])
        }
        return .object(JSONObject([
            ("dryRun", .bool(dryRun)), ("recorded", .bool(!dryRun && changed > 0)),
            ("requestCatalog", .bool(requestCatalog)), ("catalogVersion", .string(toVersion)),
            ("count", .number(changed)), ("totalDifference", .number(total.description)),
            ("currentTotal", .number(currentTotal.description)), ("newTotal", .number(newTotal.description)),
            ("unchanged", .number(unchanged)), ("unpriced", .number(unpriced)), ("explicitCost", .number(explicit)),
            ("events", .array(rows)), ("truncated", .bool(changed > rows.count)),
        ]))
    }

    /// `backup.create`, checked: the path, and that no other backup runs or is about to. The
    /// copy itself starts once the request's batch has committed (`startBackup`).
    func backupRequest(_ args: Args, envelope: [[UInt8]], actor: String, _ out: BatchOutput) throws -> BackupJob {
        let path = try args.requiredString("path", max: 4096)
        guard path.hasPrefix("/") else { throw ControlFailure(.validationFailed, "path must be absolute (it is written by budgetd)") }
        if let running = backupJob ?? out.backup {
            throw ControlFailure(.conflict, "a backup is in progress (\(running.path)): one at a time")
        }
        if FileManager.default.fileExists(atPath: path) { throw ControlFailure(.conflict, "\(path) exists: a backup never overwrites a file") }
        // The folder is the operator's to make (budgetd does not create directories): a missing
        // one is the request's mistake, not a failure of the daemon (INTERNAL).
        let folder = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ControlFailure(.validationFailed, "no directory \(folder) for the backup: create it first")
        }
        return BackupJob(envelope: envelope, path: path, args: args.object, actor: actor)
    }

    /// Starts the backup a committed batch asked for, on a thread of its own.
    func startBackup(_ job: BackupJob) {
        backupJob = job
        let store = self.store!
        let thread = Thread { [logger] in
            nameCurrentThread("budgetd-backup")
            job.run(store: store, logger: logger)
        }
        thread.start()
    }

    /// The backup's thread is done: the request is recorded in the audit log (when it
    /// succeeded) and answered. Called with nothing in the pipeline (the store is this thread's).
    func finishBackup(_ job: BackupJob) {
        backupJob = nil
        let reply = job.waitForReply()
        if reply["ok"]?.boolValue == true, let result = reply["result"] {
            do {
                try store.write { w in try audit(op: "backup.create", args: job.args, actor: job.actor, before: ledger, result: result, w) }
            } catch {
                logger.error("backup written, but not recorded in the audit log", metadata: ["path": "\(job.path)", "error": "\(error)"])
            }
        }
        send(.control(Self.replyFrames(job.envelope, reply.serializedBytes())))
    }

    /// `event.get`: a stored event by (source, id) with its cost rows (booking and adjustments)
    /// and their total; or its dead letter; else NOT_FOUND.
    func eventGetOp(_ args: Args, _ w: StoreWriter) throws -> JSONValue {
        let id = try args.requiredString("id", max: EventLimits.maxIdLength)
        let source = try args.string("source") ?? ""
        if let e = try w.reader.event(source: source, id: id), case .object(var o) = e.json {
            let costs = try w.reader.costs(ofEvent: source, id: id)
            o["costs"] = .array(costs.map(\.json))
            o["totalCost"] = costs.isEmpty ? .null : .number(costs.reduce(Money.zero) { $0 + $1.costAmount }.description)
            return .object(o)
        }
        if let dead = try w.reader.rejected(source: source, id: id) { return dead }
        throw ControlFailure(.notFound, "no event (\(source), \(id))")
    }

    /// Whether a list op asked for a page (`page: true` or a `cursor`), and the cursor it gave.
    func pageRequest(_ args: Args) throws -> (paged: Bool, cursor: PageCursor?) {
        let text = try args.string("cursor", max: 200)
        let paged = try args.bool("page") ?? false || text != nil
        guard let text, !text.isEmpty else { return (paged, nil) }
        guard let cursor = PageCursor(text: text) else { throw ControlFailure(.validationFailed, "cursor is not one this op returned") }
        return (paged, cursor)
    }

    func pageJSON(_ page: Page) -> JSONValue {
        .object(JSONObject([
            ("items", .array(page.items)), ("nextCursor", page.nextCursor.map { .string($0.text) } ?? .null),
        ]))
    }
}

/// A `backup.create` under way: `VACUUM INTO` on a read-only connection of its own (see
/// Store.backup), on a thread of its own, so the engine goes on committing events, answering
/// requests and feeding the systemd watchdog while it copies (it used to run on the engine
/// thread: a copy of a few million events outlasted `WatchdogSec`, and ingest stopped for as long).
///
/// `@unchecked Sendable`: `reply` is written by the backup thread before `done` is signalled,
/// and read by the engine only after it (`waitForReply`) or once `isFinished` says so.
final class BackupJob: @unchecked Sendable {
    let envelope: [[UInt8]]
    let path: String
    let args: JSONObject
    let actor: String
    private var reply: JSONValue = .null
    private let finished = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(envelope: [[UInt8]], path: String, args: JSONObject, actor: String) {
        self.envelope = envelope
        self.path = path
        self.args = args
        self.actor = actor
    }

    /// Whether the copy is done (then `waitForReply` does not wait).
    var isFinished: Bool { finished.load(ordering: .acquiring) }

    func run(store: Store, logger: Logger) {
        defer {
            finished.store(true, ordering: .releasing)
            done.signal()
        }
        let started = SystemClock.now()
        do {
            let summary = try store.backup(to: path)
            let ms = (SystemClock.now() - started) / 1_000_000
            logger.notice("backup written", metadata: ["path": "\(path)", "bytes": "\(summary.bytes)", "ms": "\(ms)"])
            reply = Engine.okReply(.object(JSONObject([
                ("path", .string(path)), ("bytes", .number(summary.bytes)), ("ms", .number(ms)),
                ("events", .number(summary.events)), ("costs", .number(summary.costs)),
                ("budgets", .array(summary.budgets.map { b in
                    .object(JSONObject([("id", .string(b.id)), ("spentAmount", .number(b.spent.description))]))
                })),
            ])))
        } catch {
            logger.error("backup failed", metadata: ["path": "\(path)", "error": "\(error.message)"])
            reply = Engine.errorReply(.internalError, error.message)
        }
    }

    /// The reply, once the copy is done (waits for it).
    func waitForReply() -> JSONValue {
        done.wait()
        done.signal()
        return reply
    }
}
