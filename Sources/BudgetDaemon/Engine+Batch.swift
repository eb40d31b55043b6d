import BudgetCore
import BudgetStore
import Logging
import ZMQ

/// A batch's additions to the daily rollup, grouped by budget: one lookup of the budget's id
/// per booking, then a scan of that budget's few (day, platform, service) rows, instead of a
/// table keyed by all four, which hashed three strings per booking (issue 8). The budgets it
/// holds are the batch's booked budgets.
struct DailyTotals {
    /// A (day, platform, service) row of one budget: the ledger's own row type, so that spend
    /// moved with a renewed child (`Ledger.rollOver`) goes in and out as it is.
    typealias Row = RollupRow

    private(set) var byBudget: [String: [Row]] = [:]

    var isEmpty: Bool { byBudget.isEmpty }

    /// The budgets with a booking in the batch.
    var budgetIds: Set<String> { Set(byBudget.keys) }

    mutating func add(_ amount: Money, budgetId: String, day: String, platform: String, serviceType: ServiceType) {
        Self.add(amount, count: 1, day: day, platform: platform, serviceType: serviceType, to: &byBudget[budgetId, default: []])
    }

    /// Adds a row with its own count (another batch's, or spend moved by `Ledger.rollOver`).
    mutating func add(_ row: Row, budgetId: String) {
        Self.add(row.amount, count: row.count, day: row.day, platform: row.platform, serviceType: row.serviceType, to: &byBudget[budgetId, default: []])
    }

    /// Adds another batch's rows (batches committed together write each day's row once).
    mutating func merge(_ other: DailyTotals) {
        for (budgetId, rows) in other.byBudget {
            for row in rows { add(row, budgetId: budgetId) }
        }
    }

    private static func add(_ amount: Money, count: Int64, day: String, platform: String, serviceType: ServiceType, to rows: inout [Row]) {
        for i in rows.indices where rows[i].serviceType == serviceType && rows[i].platform == platform && rows[i].day == day {
            rows[i].amount += amount
            rows[i].count += count
            return
        }
        rows.append(Row(day: day, platform: platform, serviceType: serviceType, amount: amount, count: count))
    }

    /// Every row with its key, for writing.
    var rows: [(key: DailyKey, amount: Money, count: Int64)] {
        byBudget.flatMap { id, rows in
            rows.map { (DailyKey(budgetId: id, day: $0.day, platform: $0.platform, serviceType: $0.serviceType), $0.amount, $0.count) }
        }
    }
}

/// What one batch produced, released only after it commits.
struct BatchOutput {
    var replies: [Reply] = []
    var outbound: [OutboundMessage] = []
    var touchedBudgets: Set<String> = []
    /// Budgets whose running totals (and alert state) changed by booking a cost (those of
    /// `daily`): only those columns are written at commit (`saveTotals`), unless the budget is
    /// also in `touchedBudgets`.
    var bookedBudgets: Set<String> { daily.budgetIds }
    /// Budgets created or changed in this batch: UNALLOCATED events are routed again.
    var budgetsChanged = false
    /// The budget the control request just performed created or changed (`budget.create`,
    /// `budget.update`), taken by `process` into `budgetReplies`.
    var repliedBudget: String?
    /// The replies of `budget.create` and `budget.update` (index in `replies`, the budget): sent
    /// with the budget as the batch commits it, after the waiting events routed to it.
    var budgetReplies: [(reply: Int, envelope: [[UInt8]], budgetId: String)] = []
    /// A `backup.create` request (one at a time), started once the batch has committed and
    /// answered when its copy is done.
    var backup: BackupJob?
    /// The batch's additions to the daily rollup, written once per row at commit.
    var daily = DailyTotals()
    /// The last day's text (a batch's costs are mostly of one day: one string, not one per cost).
    private var dayText: (day: CivilDate, text: String)?

    /// Records a booked cost: its budgets, its messages, and its day in each budget of the chain.
    mutating func add(_ booking: Booking, amount: Money, day: CivilDate, platform: String, serviceType: ServiceType) {
        if !booking.messages.isEmpty { outbound += booking.messages }
        let dayText: String
        if let last = self.dayText, last.day == day {
            dayText = last.text
        } else {
            dayText = day.description
            self.dayText = (day, dayText)
        }
        for id in booking.touchedBudgets {
            daily.add(amount, budgetId: id, day: dayText, platform: platform, serviceType: serviceType)
        }
    }
}

extension Engine {
    /// Processes a batch in one transaction. On success, acknowledges, replies and publishes; on a
    /// database failure, rolls the ledger back, keeps the ingest items for a retry (nothing is
    /// acknowledged that was not committed) and reports DEGRADED health.
    ///
    /// `decoded`, when given, holds the decode thread's outcome for each ingest item of `batch`.
    ///
    /// `retrying`: `batch` is `pending` itself (kept as it is on failure, emptied on success);
    /// any other batch's ingest items join `pending` when it fails.
    func process(_ batch: [WorkItem], decoded: consuming [DecodeOutcome?]? = nil, retrying: Bool = false) {
        // The batch on the commit thread first: this one reads and writes what it leaves. While
        // a failed batch waits for its retry (that one, or one before), this batch's ingest
        // waits behind it (commits stay in the order events were read); its other items run now.
        let committedBefore = completeCommit()
        // No lookup snapshot is open here: a sealed set of keys whose generation committed goes.
        dropRetiredKeys()
        if !retrying && (!committedBefore || !pending.isEmpty) && batch.contains(where: \.isIngest) {
            pending += batch.filter(\.isIngest)
            let rest = batch.filter { !$0.isIngest }
            if !rest.isEmpty { process(rest) }
            return
        }
        let statsBefore = stats
        let now = SystemClock.now()
        let started = SystemdNotifier.monotonicNow()
        var out = BatchOutput()
        if ledgerStale {
            // The last failure could not rebuild the ledger: nothing is booked on it.
            retryLoadLedger(at: now)
            if ledgerStale {
                fail(batch, retrying: retrying, error: StoreError("the ledger could not be reloaded from the database"), at: now)
                return
            }
        }
        do {
            try store.write { w in
                for (index, item) in batch.enumerated() {
                    switch item {
                    case .publish(let frames, let receivedAt):
                        try handleIngest(frames: frames, envelope: nil, receivedAt: receivedAt, decoded: decoded?[index].take(), w, &out)
                    case .ack(let envelope, let frames, let receivedAt):
                        try handleIngest(frames: frames, envelope: envelope, receivedAt: receivedAt, decoded: decoded?[index].take(), w, &out)
                    case .control(let envelope, let frames, let userID):
                        // nil: answered later (a backup, once copied).
                        guard let reply = try handleControl(frames: frames, envelope: envelope, userID: userID, w, &out) else { continue }
                        if let id = out.repliedBudget.take() { out.budgetReplies.append((out.replies.count, envelope, id)) }
                        out.replies.append(.control(Self.replyFrames(envelope, reply.serializedBytes())))
                    case .tick:
                        // A renewed child moved to its parent's renewal takes its spend along:
                        // its rollup as committed, plus what this batch booked to it before.
                        let rolled = try ledger.rollOver(at: now, spendOf: { id in
                            try w.reader.dailySpend(budgetIds: [id], fromDay: nil, toDay: nil).map {
                                RollupRow(day: $0.key.day, platform: $0.key.platform, serviceType: $0.key.serviceType, amount: $0.amount, count: $0.count)
                            } + (out.daily.byBudget[id] ?? [])
                        }, makeID: { IDs.make("b") })
                        out.touchedBudgets.formUnion(rolled.changed)
                        out.outbound += rolled.messages
                        for moved in rolled.daily { out.daily.add(moved.spend, budgetId: moved.budgetId) }
                        if !rolled.changed.isEmpty { out.budgetsChanged = true }
                    case .reload:
                        do { _ = try reloadCatalog(w, &out) } catch let failure as ControlFailure {
                            logger.error("SIGHUP: \(failure.message)")
                        }
                    }
                }
                if out.budgetsChanged, try reprocess([.unallocated], w, &out).allocated > 0 {
                    // The waiting events routed to a budget just created or changed count in the
                    // reply: it shows the budget as this batch commits it.
                    for entry in out.budgetReplies {
                        if let b = ledger[entry.budgetId] {
                            out.replies[entry.reply] = .control(Self.replyFrames(entry.envelope, Self.okReply(b.json).serializedBytes()))
                        }
                    }
                }
                try inPlace(&ledger) { ledger in
                    for id in out.touchedBudgets.sorted() {
                        if let b = ledger[id] { try w.saveBudget(b) }
                    }
                    for id in out.bookedBudgets.subtracting(out.touchedBudgets).sorted() {
                        if let b = ledger[id] { try w.saveTotals(b) }
                    }
                }
                try w.saveHistory(ledger.takeChangedHistory())
                for row in out.daily.rows { try w.addDailySpend(row.key, amount: row.amount, count: row.count) }
                for m in out.outbound { try w.insertOutbound(m, at: now) }
            }
        } catch {
            stats.rollBack(to: statsBefore)
            rebuildLedger()
            fail(batch, retrying: retrying, error: error, at: now)
            return
        }
        committed(out, items: batch.count, statsBefore: statsBefore, statsAfter: stats, started: started, at: now)
        if retrying { pending = [] }
        if pending.isEmpty && integrityFailure == nil { setHealth(ok: true, reason: nil, at: now) }
    }

    /// The ledger holds bookings that never reached the database (a batch failed to commit):
    /// it is rebuilt from the database; if that fails too, nothing is booked until it works.
    func rebuildLedger() {
        do { try loadLedger(settings: ledger.settings) } catch {
            ledgerStale = true
            logger.error("cannot reload the ledger from the database", metadata: ["error": "\(error)"])
        }
    }

    /// A batch committed: count it, then acknowledge, reply and publish what it produced.
    func committed(_ out: BatchOutput, items: Int, statsBefore: Stats, statsAfter: Stats, started: Int64, at now: Timestamp) {
        stats.batches += 1
        if let job = out.backup { startBackup(job) }
        metrics.committed(before: statsBefore, after: statsAfter, items: items, nanoseconds: SystemdNotifier.monotonicNow() - started)
        updateBudgetMetrics(out.touchedBudgets.union(out.bookedBudgets), now: now)
        for reply in out.replies { send(reply) }
        // The last seq of what is about to be published, recorded first (`DatabaseLock`).
        if let last = out.outbound.lazy.map(\.seq).max() { databaseLock?.record(lastSeq: last) }
        for m in out.outbound {
            publish(topic: m.topic, payload: m.payload.serializedBytes())
            switch m {
            case .alert(let a):
                stats.alertsPublished += 1
                metrics.alert(type: a.type.rawValue)
                logger.notice("alert \(a.type.rawValue) seq=\(a.seq) budget=\(a.budgetId ?? "-"): \(a.message)")
            case .status(let s):
                stats.statusEventsPublished += 1
                logger.notice("status \(s.previousStatus.rawValue)→\(s.status.rawValue) seq=\(s.seq) budget=\(s.budgetId)")
            }
        }
    }

    /// A batch that did not commit: its ingest items wait in `pending` for a retry (nothing is
    /// acknowledged that was not committed), its control requests get an error (those answered
    /// from memory get their answer), health is DEGRADED.
    func fail(_ batch: [WorkItem], retrying: Bool, error: any Error, at now: Timestamp) {
        if !retrying { pending += batch.filter(\.isIngest) }
        nextRetry = now.adding(seconds: 1)
        setHealth(ok: false, reason: "cannot commit: \(error)", at: now)
        if batch.contains(where: { if case .reload = $0 { true } else { false } }) { requestReload() }
        for case .control(let envelope, let frames, let userID) in batch {
            // `health`, `stats` and `spend.check` need no database: they are answered (health
            // says DEGRADED now); anything else gets INTERNAL.
            let reply = isMemoryControl(.control(envelope: envelope, frames: frames, userID: userID))
                ? answerFromMemory(frames: frames, userID: userID, stats: stats, lastSeq: ledger.lastSeq)
                : Self.errorReply(.internalError, "database unavailable: \(error)")
            send(.control(Self.replyFrames(envelope, reply.serializedBytes())))
        }
    }

    /// Per-budget gauges: at once for a batch that touched a few budgets; when a batch touched
    /// many (10⁴ budgets under load), at most once a second (and on the scheduler's tick), so
    /// the gauges cost per second what they cost per batch before (every 250 ms, they were a
    /// sixth of the engine thread's time with 10⁴ budgets: three gauges of each, ~3 µs a budget).
    func updateBudgetMetrics(_ ids: Set<String>, now: Timestamp) {
        if ids.count <= 64 {
            inPlace(&ledger) { ledger in for id in ids { if let b = ledger[id] { metrics.update(b) } } }
        } else {
            metricsDirty.formUnion(ids)
        }
        if !metricsDirty.isEmpty && now >= nextMetricsFlush { flushBudgetMetrics(now: now) }
    }

    func flushBudgetMetrics(now: Timestamp) {
        inPlace(&ledger) { ledger in for id in metricsDirty { if let b = ledger[id] { metrics.update(b) } } }
        metricsDirty = []
        nextMetricsFlush = now.adding(seconds: 1)
    }

    func send(_ reply: Reply) {
        do {
            switch reply {
            case .ack(let frames): try ingestAck.send(frames, dontWait: true)
            case .control(let frames): try control.send(frames, dontWait: true)
            }
        } catch {
            // The peer went away or its queue is full: it will resend, which is safe (DUPLICATE).
            logger.debug("reply not delivered", metadata: ["error": "\(error)"])
        }
    }

    /// A reply's frames: the request's envelope, then `body`. One allocation; `envelope + [body]`
    /// made two (the literal and the sum), per acknowledged event (issue 8). Every reply to a
    /// ROUTER request is made so.
    static func replyFrames(_ envelope: [[UInt8]], _ body: [UInt8]) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        frames.reserveCapacity(envelope.count + 1)
        frames.append(contentsOf: envelope)
        frames.append(body)
        return frames
    }

    /// One usage message from either ingest socket: validate, dedup, apply, record, reply.
    func handleIngest<Recorder: IngestRecorder>(
        frames: [[UInt8]], envelope: [[UInt8]]?, receivedAt: Timestamp, decoded: consuming DecodeOutcome? = nil, _ w: Recorder, _ out: inout BatchOutput
    ) throws {
        stats.received += 1
        let socketName = envelope == nil ? "ingest" : "ingest-ack"
        func reject(_ reason: String, id: String? = nil, source: String? = nil) throws {
            stats.countRejection(reason)
            try w.insertRejected(RejectedMessage(
                receivedAt: receivedAt, socket: socketName, topic: frames.first.map { String(decoding: $0, as: UTF8.self) },
                source: source, id: id, reason: reason,
                body: frames.last ?? []
            ))
            if let envelope {
                out.replies.append(.ack(Self.replyFrames(envelope, IngestAck.bytes(id: id, source: source, status: "REJECTED", state: "REJECTED", reason: reason))))
            }
        }
        // Moved, not copied, out of the decode thread's outcome (one retain per string otherwise).
        var outcome = decoded.take() ?? Self.decodeIngest(frames, maxBytes: config.maxMessageBytes)
        if let r = outcome.rejection { return try reject(r.reason, id: r.id, source: r.source) }
        guard let event = outcome.event.take() else { return try reject("internal: no event decoded") }
        // The complete filter holds every stored key and every key decided since (inserted
        // below): a key it has never seen is new, without a lookup, staged or processed in one go
        // (a retry, the drain, ingest beside control requests).
        // The key's hash, made once when the event was decoded, serves the filter's lookup and
        // insert and the commit thread (which stores it with the row: EventKeys.swift).
        let keyHash = outcome.keyHash
        let surelyNew = inFlight.map { $0.filterComplete && !$0.filter.mayContain(hash: keyHash) } ?? false
        if !surelyNew, let existing = try w.findEvent(source: event.source, id: event.id) {
            // Code point by code point: canonical JSON keeps strings as they are, and two
            // strings Swift's `==` calls equivalent ("é", "e\u{301}") are different bodies.
            guard existing.body.hasSameCodePoints(as: event.canonicalBody) || Self.sameUnderCurrentRules(existing.body, event.canonicalBody) else {
                return try reject(EventRejection.conflictReason, id: event.id, source: event.source)
            }
            stats.duplicates += 1
            if let envelope {
                out.replies.append(.ack(Self.replyFrames(envelope, IngestAck.bytes(id: event.id, source: event.source, status: "DUPLICATE", state: existing.state.rawValue, reason: existing.reason))))
            }
            return
        }
        stats.accepted += 1
        if let seq = event.seq {
            if let last = stats.observe(source: event.source, seq: seq) {
                // The publisher lost messages (a PUB at its high-water mark drops them).
                logger.warning("sequence gap from \(event.source): \(last) then \(seq), \(seq - last - 1) missing")
            }
        }
        var stored = try apply(event, time: event.time ?? receivedAt, receivedAt: receivedAt, bookInRow: true, w, &out)
        stored.keyHash = keyHash
        let state = stored.state
        let reason = envelope == nil ? nil : stored.reason
        try w.insertEvent(consume stored)
        inFlight?.filter.insert(hash: keyHash)
        switch state {
        case .unpriced: stats.unpriced += 1
        case .unallocated: stats.unallocated += 1
        default: break
        }
        if let envelope {
            out.replies.append(.ack(Self.replyFrames(envelope, IngestAck.bytes(id: event.id, source: event.source, status: "ACCEPTED", state: state.rawValue, reason: reason))))
        }
    }

    /// Whether a stored body that differs from `canonical` is the same event once written again
    /// by the current rules: bodies stored by an earlier version keep its canonical spelling (a
    /// number with more than 40 zeros was written out in full until the eighteenth session),
    /// and a resend of such an event is a DUPLICATE, not a conflict. Only for bodies that differ,
    /// so never on the hot path.
    static func sameUnderCurrentRules(_ stored: String, _ canonical: String) -> Bool {
        guard let again = try? UsageEventDecoder.decode(JSON.parse(stored)) else { return false }
        return again.canonicalBody.hasSameCodePoints(as: canonical)
    }

    /// Prices, routes and books an event; returns it as it is to be stored. With `bookInRow` (a
    /// new event, whose row is yet to be inserted) a plain cost is booked in the event's row
    /// instead of a cost row (`StoredEvent.booked`; docs/ledger.md, "Where costs are stored");
    /// a credit or a correction, or an event stored before (re-processed: its row is updated,
    /// not inserted), gets a cost row.
    func apply<Recorder: IngestRecorder>(
        _ event: UsageEvent, time: Timestamp, receivedAt: Timestamp, bookInRow: Bool, _ w: Recorder, _ out: inout BatchOutput
    ) throws -> StoredEvent {
        var stored = StoredEvent(
            source: event.source, id: event.id, body: event.canonicalBody, state: .unpriced, reason: nil,
            platform: event.platform, serviceType: event.serviceType, model: event.model, time: time,
            receivedAt: receivedAt, cost: nil, currency: nil, budgetId: nil, costAllocationId: nil
        )
        let routed = inPlace(&ledger) { $0.routeTarget(budgetId: event.budgetId, metadata: event.metadata, time: time) }
        // (Not a nested function: one capturing `stored` kept it in a heap box, and every
        // return copied it out, a retain and a release per string: issue 8.)
        let amount: CostAmount, currency: String
        switch inPlace(&pricer, { $0.price(event, at: time) }) {
        case .unpriced(let reason):
            markUnpriced(&stored, event, reason: reason, routed: routed?.budgetId, time: time, &out)
            return stored
        case .priced(let a, let c, let entry):
            (amount, currency) = (a, c)
            if entry != nil { stored.catalogVersion = pricer.catalog.version }
        }
        // The budget's currency from routing (`RouteTarget`), not a lookup of its id.
        guard let routed else {
            // Rounded and range-checked as a routed cost is, in its own currency: a cost over
            // 1e12 is UNPRICED whether or not a budget takes it (CONTRACT §2; it was stored
            // UNALLOCATED with the cost, an audit).
            switch inPlace(&pricer, { $0.money(amount, from: currency, to: currency, at: time) }) {
            case .failure(let failure):
                markUnpriced(&stored, event, reason: failure.reason, routed: nil, time: time, &out)
            case .success(let m):
                stored.state = .unallocated
                stored.reason = unallocatedReason(event, time: time)
                // The cost it would have had, in its own currency, for people reading event.list.
                stored.cost = m
                stored.currency = currency
            }
            return stored
        }
        let budgetId = routed.budgetId, budgetCurrency = routed.currency
        let money: Money
        switch inPlace(&pricer, { $0.money(amount, from: currency, to: budgetCurrency, at: time) }) {
        case .failure(let failure):
            markUnpriced(&stored, event, reason: failure.reason, routed: budgetId, time: time, &out)
            return stored
        case .success(let m):
            money = event.kind == .credit ? -m : m  // a CREDIT books a negative cost (docs/ledger.md)
        }
        let now = SystemClock.now()
        let booking = ledger.adjust(
            amount: money, budgetId: budgetId, platform: event.platform, serviceType: event.serviceType,
            eventId: event.id, costTime: time, at: now, routed: routed
        )
        if bookInRow && event.kind != .credit && event.correctsEvent == nil {
            stored.booked = true
            stored.allocationId = booking.allocationId
        } else {
            let cost = CostRecord(
                id: costIDs.next("c", at: now), budgetId: budgetId, allocationId: booking.allocationId, platform: event.platform,
                serviceType: event.serviceType, costAmount: money, currency: budgetCurrency,
                description: event.description, costDate: time, apiUsageId: event.apiUsageId,
                apifyRunId: event.apifyRunId, eventId: event.id, eventSource: event.source, metadata: event.metadata,
                kind: event.kind == .credit ? .credit : .cost, corrects: event.correctsEvent
            )
            try w.insertCost(cost, createdAt: now)
            stored.costAllocationId = cost.id
        }
        out.add(booking, amount: money, day: time.civilDate, platform: event.platform, serviceType: event.serviceType)
        stored.state = .allocated
        stored.cost = money
        stored.currency = budgetCurrency
        stored.budgetId = budgetId
        return stored
    }

    /// An event that cannot be priced: UNPRICED with its reason, in the budget it routes to (if
    /// any), and the UNPRICED_USAGE alert when it is the first of its kind this month.
    func markUnpriced(_ stored: inout StoredEvent, _ event: UsageEvent, reason: String, routed: String?, time: Timestamp, _ out: inout BatchOutput) {
        stored.reason = reason
        stored.budgetId = routed
        out.outbound += ledger.unpricedUsage(
            platform: event.platform, serviceType: event.serviceType, model: event.model, reason: reason,
            budgetId: routed, currency: event.currency, eventId: event.id, usageTime: time, at: SystemClock.now()
        )
    }

    func unallocatedReason(_ event: UsageEvent, time: Timestamp) -> String {
        guard let id = event.budgetId else { return "no budget covers \(time.rfc3339)" }
        return ledger.unroutedReason(budgetId: id, time: time)
    }

    /// Prices and routes stored events of these states again, a pass per state; returns
    /// (priced, allocated, remaining), each event counted once: one the UNPRICED pass leaves
    /// UNALLOCATED is not taken again by the UNALLOCATED pass (an audit's `remaining` 2 of one
    /// event).
    func reprocess(_ states: [EventState], _ w: StoreWriter, _ out: inout BatchOutput) throws -> (priced: Int, allocated: Int, remaining: Int) {
        var priced = 0, allocated = 0, remaining = 0
        var seen = Set<String>()  // source, NUL, id
        for state in states {
            for old in try w.reader.events(inState: state, limit: 100_000) {
                guard states.count == 1 || seen.insert(old.source + "\u{0}" + old.id).inserted else { continue }
                let event: UsageEvent
                do { event = try UsageEventDecoder.decode(JSON.parse(old.body)) } catch {
                    // Stored by an older version under rules it no longer passes: it stays as it
                    // is, said once per re-processing, not silently.
                    logger.warning("event \(old.source)/\(old.id) cannot be re-processed: its stored body no longer decodes (\(error))")
                    remaining += 1
                    continue
                }
                let new = try apply(event, time: old.time, receivedAt: old.receivedAt, bookInRow: false, w, &out)
                // The cost too: an UNALLOCATED event's would-be cost follows a reloaded catalog
                // (it kept the first catalog's figure, an audit).
                if new.state != old.state || new.reason != old.reason || new.budgetId != old.budgetId
                    || new.cost != old.cost || new.currency != old.currency {
                    try w.updateEvent(new)
                }
                if old.state == .unpriced && new.state != .unpriced { priced += 1 }
                if new.state == .allocated { allocated += 1 } else { remaining += 1 }
            }
        }
        return (priced, allocated, remaining)
    }
}
