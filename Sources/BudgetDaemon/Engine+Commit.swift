import BudgetCore
import BudgetStore
import Dispatch

/// Where the ingest path records what it decided: straight into the transaction (`StoreWriter`,
/// for batches processed in one go), or into rows the commit thread writes (`StagedRows`).
protocol IngestRecorder {
    func findEvent(source: String, id: String) throws -> EventKey?
    func insertEvent(_ e: StoredEvent) throws
    func insertCost(_ c: CostRecord, createdAt: Timestamp) throws
    func insertRejected(_ r: RejectedMessage) throws
}

extension StoreWriter: IngestRecorder {}

/// Events accepted by batches that have not committed yet (staged, or on the commit thread),
/// and the lookup of those that have: together, everything a new event can duplicate.
final class InFlightEvents {
    var keys: [EventRef: EventKey] = [:]
    let lookup: EventLookup

    init(lookup: EventLookup) { self.lookup = lookup }
}

/// An ingest batch's rows, decided on the engine thread and written by the commit thread.
final class StagedRows: IngestRecorder {
    let inFlight: InFlightEvents
    private(set) var events: [StoredEvent] = []
    private(set) var costs: [(cost: CostRecord, createdAt: Timestamp)] = []
    private(set) var rejected: [RejectedMessage] = []

    init(_ inFlight: InFlightEvents) { self.inFlight = inFlight }

    func findEvent(source: String, id: String) throws -> EventKey? {
        if let key = inFlight.keys[EventRef(source: source, id: id)] { return key }
        return try inFlight.lookup.find(source: source, id: id)
    }

    func insertEvent(_ e: StoredEvent) throws {
        events.append(e)
        inFlight.keys[EventRef(source: e.source, id: e.id)] = EventKey(body: e.body, state: e.state, reason: e.reason)
    }

    func insertCost(_ c: CostRecord, createdAt: Timestamp) throws {
        costs.append((c, createdAt))
    }

    func insertRejected(_ r: RejectedMessage) throws {
        rejected.append(r)
    }
}

/// A staged ingest batch on the commit thread: its rows, the budgets' new totals, the spike
/// history and daily rollup it changed, its outbound messages; and what to release once it
/// has committed.
///
/// `@unchecked Sendable`: built by the engine thread, then only read by the commit thread
/// until `done` is signalled (which writes `error`); the engine reads `error` after `wait()`.
final class CommitJob: @unchecked Sendable {
    let items: [WorkItem]
    let rows: StagedRows
    let budgets: [Budget]
    let history: [(bucket: HistoryBucket, amount: Money)]
    let out: BatchOutput
    let now: Timestamp
    let started: Int64
    let statsBefore: Stats
    let statsAfter: Stats
    private(set) var error: (any Error)?
    private let done = DispatchSemaphore(value: 0)

    init(
        items: [WorkItem], rows: StagedRows, budgets: [Budget], history: [(bucket: HistoryBucket, amount: Money)],
        out: BatchOutput, now: Timestamp, started: Int64, statsBefore: Stats, statsAfter: Stats
    ) {
        self.items = items
        self.rows = rows
        self.budgets = budgets
        self.history = history
        self.out = out
        self.now = now
        self.started = started
        self.statsBefore = statsBefore
        self.statsAfter = statsAfter
    }

    /// Writes everything in one transaction (the same writes, in the same order per table, as
    /// `Engine.process` makes for an ingest batch) and commits.
    func run(_ store: Store) {
        do {
            try store.write { w in
                for r in rows.rejected { try w.insertRejected(r) }
                for (cost, createdAt) in rows.costs { try w.insertCost(cost, createdAt: createdAt) }
                for e in rows.events { try w.insertEvent(e) }
                for b in budgets { try w.saveTotals(b) }
                try w.saveHistory(history)
                for (key, delta) in out.daily { try w.addDailySpend(key, amount: delta.amount, count: delta.count) }
                for m in out.outbound { try w.insertOutbound(m, at: now) }
            }
        } catch {
            self.error = error
        }
        done.signal()
    }

    func wait() { done.wait() }
}

extension Engine {
    /// Whether a decoded batch can be staged: ingest only, and nothing waiting for a retry.
    func canStage(_ batch: [WorkItem]) -> Bool {
        inFlight != nil && !ledgerStale && pending.isEmpty && batch.allSatisfy(\.isIngest)
    }

    /// Decides an ingest batch on this thread (dedup, price, route, book, alerts) while the
    /// batch before it commits on the commit thread, then hands it over (issue 8: SQLite's
    /// inserts and commit were half of the engine thread's time, and the second core idle).
    ///
    /// Nothing is released before its commit: acknowledgements and alerts go out in
    /// `completeCommit`, in batch order. When the batch before fails to commit, the ledger is
    /// rebuilt from the database and both batches wait for a retry, as one failed batch does.
    func stage(_ batch: [WorkItem], decoded: [DecodeOutcome?]) {
        guard let inFlight else { return process(batch, decoded: decoded) }
        let statsBefore = stats
        let now = SystemClock.now()
        let started = SystemdNotifier.monotonicNow()
        var out = BatchOutput()
        let rows = StagedRows(inFlight)
        do {
            // One snapshot for the batch's lookups: it may predate the commit of the batch
            // before, whose events stay in `inFlight.keys` until `completeCommit` below.
            try inFlight.lookup.beginBatch()
            defer { inFlight.lookup.endBatch() }
            for (index, item) in batch.enumerated() {
                switch item {
                case .publish(let frames, let receivedAt):
                    try handleIngest(frames: frames, envelope: nil, receivedAt: receivedAt, decoded: decoded[index], rows, &out)
                case .ack(let envelope, let frames, let receivedAt):
                    try handleIngest(frames: frames, envelope: envelope, receivedAt: receivedAt, decoded: decoded[index], rows, &out)
                case .control, .reload, .tick:
                    preconditionFailure("only ingest batches are staged")
                }
            }
        } catch {
            // A lookup failed: this batch's bookings are undone and it waits for a retry.
            if completeCommit() {
                stats.rollBack(to: statsBefore)
                inFlight.keys = [:]
                rebuildLedger()
            }
            fail(batch, retrying: false, error: error, at: now)
            return
        }
        let budgets = out.bookedBudgets.union(out.touchedBudgets).sorted().compactMap { ledger[$0] }
        let job = CommitJob(
            items: batch, rows: rows, budgets: budgets, history: ledger.takeChangedHistory(), out: out,
            now: now, started: started, statsBefore: statsBefore, statsAfter: stats
        )
        guard completeCommit() else {
            // The batch before did not commit: the ledger was rebuilt without this one's
            // bookings too, and its items wait behind the failed batch's.
            fail(batch, retrying: false, error: StoreError("the batch before this one did not commit"), at: now)
            return
        }
        committing = job
        let store = self.store!
        commitQueue.async { job.run(store) }
    }

    /// Waits for the batch on the commit thread, if any, and releases what it produced; on a
    /// failed commit, undoes it (and whatever was decided on top of it). Returns false then.
    @discardableResult
    func completeCommit() -> Bool {
        guard let job = committing else { return true }
        committing = nil
        job.wait()
        if let error = job.error {
            stats.rollBack(to: job.statsBefore)
            inFlight?.keys = [:]
            rebuildLedger()
            fail(job.items, retrying: false, error: error, at: job.now)
            return false
        }
        if let inFlight {
            for e in job.rows.events { inFlight.keys[EventRef(source: e.source, id: e.id)] = nil }
        }
        stats.stagedBatches += 1
        committed(job.out, items: job.items.count, statsBefore: job.statsBefore, statsAfter: job.statsAfter, started: job.started, at: job.now)
        if pending.isEmpty && integrityFailure == nil { setHealth(ok: true, reason: nil, at: job.now) }
        return true
    }
}
