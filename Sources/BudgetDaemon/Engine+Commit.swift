import BudgetCore
import BudgetStore
import CPrefetch
import Dispatch
import Foundation
import Logging
import Synchronization

/// Where the ingest path records what it decided: straight into the transaction (`StoreWriter`,
/// for batches processed in one go), or into rows the commit thread writes (`StagedRows`).
protocol IngestRecorder {
    func findEvent(source: String, id: String) throws -> EventKey?
    /// Takes the event (a staged batch keeps it: copying it cost a retain and a release per
    /// string of every event).
    func insertEvent(_ e: consuming StoredEvent) throws
    func insertCost(_ c: CostRecord, createdAt: Timestamp) throws
    func insertRejected(_ r: RejectedMessage) throws
}

extension StoreWriter: IngestRecorder {}

/// Events accepted by batches that have not committed yet (staged, or on the commit thread),
/// and the lookup of those that have: together, everything a new event can duplicate.
final class InFlightEvents {
    /// The batches whose events the lookup may not see yet, oldest first: the one being
    /// decided and those on the commit thread until they are released (`forget`).
    private(set) var batches: [StagedRows] = []
    let lookup: EventLookup
    /// Every key accepted by this process (`Engine.handleIngest`), and, once `filterComplete`,
    /// every key the database held at start (`Engine.loadKeyFilter`): a key it has never seen
    /// needs no lookup.
    var filter = KeyFilter()
    var filterComplete = false

    init(lookup: EventLookup) { self.lookup = lookup }

    /// A batch starts being decided: its events are in flight from now on.
    func begin(_ rows: StagedRows) { batches.append(rows) }

    /// A batch committed: the lookup finds its events from now on.
    func forget(_ rows: StagedRows) { batches.removeAll { $0 === rows } }

    /// A commit failed: every batch in flight is undone (and waits for a retry).
    func forgetAll() { batches.removeAll() }

    /// What a batch in flight decided for this key, if one did (a key is decided once).
    func find(source: String, id: String) -> EventKey? {
        guard !batches.isEmpty else { return nil }
        let ref = EventRef(source: source, id: id)
        for rows in batches.reversed() {
            if let key = rows.decided(ref) { return key }
        }
        return nil
    }
}

/// An ingest batch's rows, decided on the engine thread and written by the commit thread.
final class StagedRows: IngestRecorder {
    let inFlight: InFlightEvents
    private(set) var events: [StoredEvent] = []
    private(set) var costs: [(cost: CostRecord, createdAt: Timestamp)] = []
    private(set) var rejected: [RejectedMessage] = []
    /// `events` by key, made when a key is first asked for (`decided`) and kept up to date
    /// after. Almost every new event is known new from the key filter alone, so most batches
    /// never make it: a map of every key in flight cost each event two hashes of its key and
    /// an insert and a delete (issue 8).
    private var index: [EventRef: Int]?

    init(_ inFlight: InFlightEvents) {
        self.inFlight = inFlight
        inFlight.begin(self)
    }

    /// (`handleIngest` asks the key filter first.)
    func findEvent(source: String, id: String) throws -> EventKey? {
        if let key = inFlight.find(source: source, id: id) { return key }
        return try inFlight.lookup.find(source: source, id: id)
    }

    /// What this batch decided for `ref`, if it holds it.
    func decided(_ ref: EventRef) -> EventKey? {
        if index == nil {
            var made: [EventRef: Int] = [:]
            made.reserveCapacity(events.count)
            for (i, e) in events.enumerated() { made[EventRef(source: e.source, id: e.id)] = i }
            index = made
        }
        guard let i = index?[ref] else { return nil }
        let e = events[i]
        return EventKey(body: e.body, state: e.state, reason: e.reason)
    }

    func insertEvent(_ e: consuming StoredEvent) throws {
        if index != nil { index?[EventRef(source: e.source, id: e.id)] = events.count }
        events.append(e)
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
    /// The last outbound seq once this batch's messages are out (what `stats` says then).
    let lastSeq: Int64
    /// Control requests answered from memory (`Engine.memoryOps`) once this batch is released.
    let answers: [WorkItem]
    private(set) var error: (any Error)?
    private let done = DispatchSemaphore(value: 0)
    /// Set (after `error`) when the commit thread is done with it.
    private let finished = Atomic<Bool>(false)

    /// Done and committed: `completeCommit` would not wait, and would release it.
    var committedWithoutWaiting: Bool { finished.load(ordering: .acquiring) && error == nil }

    init(
        items: [WorkItem], rows: StagedRows, budgets: [Budget], history: [(bucket: HistoryBucket, amount: Money)],
        out: BatchOutput, now: Timestamp, started: Int64, statsBefore: Stats, statsAfter: Stats, lastSeq: Int64, answers: [WorkItem]
    ) {
        self.lastSeq = lastSeq
        self.answers = answers
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
        defer {
            finished.store(true, ordering: .releasing)
            done.signal()
        }
        // Only requests answered from memory: no transaction to commit.
        if rows.events.isEmpty && rows.costs.isEmpty && rows.rejected.isEmpty && out.daily.isEmpty && budgets.isEmpty && history.isEmpty && out.outbound.isEmpty { return }
        do {
            try store.write { w in
                for r in rows.rejected { try w.insertRejected(r) }
                try w.insertCosts(rows.costs)
                try w.insertEvents(rows.events)
                for b in budgets { try w.saveTotals(b) }
                try w.saveHistory(history)
                for row in out.daily.rows { try w.addDailySpend(row.key, amount: row.amount, count: row.count) }
                for m in out.outbound { try w.insertOutbound(m, at: now) }
            }
        } catch {
            self.error = error
        }
    }

    func wait() { done.wait() }
}

extension Engine {
    /// Reads the key of every stored event into a filter on a thread of its own, for `stage` to
    /// merge into `inFlight.filter` (until then every new key is looked up in the database).
    /// About a second per 10⁶ events, after `ready`; the daemon serves meanwhile.
    func loadKeyFilter() {
        let store = self.store!
        let thread = Thread { [self] in
            nameCurrentThread("budgetd-keys")
            let started = SystemdNotifier.monotonicNow()
            var filter = KeyFilter()
            do {
                let count = try store.forEachEventKeyHash { filter.insert(hash: $0) }
                loadedKeyFilter.withLock { $0 = filter }
                logger.info("dedup key filter loaded", metadata: [
                    "keys": "\(count)", "ms": "\((SystemdNotifier.monotonicNow() - started) / 1_000_000)",
                ])
            } catch {
                // Lookups stay on for every event: slower, never wrong.
                logger.warning("cannot load the dedup key filter; every event is looked up", metadata: ["error": "\(error)"])
            }
        }
        thread.start()
    }

    /// Drops the sealed recent keys whose generation has committed (`RecentKeys.dropRetired`),
    /// and logs each generation once. Only where no lookup snapshot is open.
    func dropRetiredKeys() {
        guard let store else { return }
        store.recentKeys.dropRetired()
        let generations = store.recentKeys.generations
        if generations != loggedKeyGenerations {
            if loggedKeyGenerations >= 0 {
                logger.info("event keys copied into a generation", metadata: ["generations": "\(generations)"])
            }
            loggedKeyGenerations = generations
        }
    }

    /// Whether batches can be staged now: nothing waits for a retry, the ledger is sound.
    var canStage: Bool { inFlight != nil && !ledgerStale && pending.isEmpty }

    /// A control request answered from memory alone, once the batch before it is released.
    func isMemoryControl(_ item: WorkItem) -> Bool {
        guard case .control(_, let frames, let userID) = item,
              case .success(let request) = parseControl(frames: frames, userID: userID) else { return false }
        return Self.memoryOps.contains(request.op)
    }

    /// Decides an ingest batch on this thread (dedup, price, route, book, alerts) while the
    /// batch before it commits on the commit thread, then hands it over (issue 8: SQLite's
    /// inserts and commit were half of the engine thread's time, and the second core idle).
    ///
    /// Nothing is released before its commit: acknowledgements and alerts go out in
    /// `completeCommit`, in batch order. When the batch before fails to commit, the ledger is
    /// rebuilt from the database and both batches wait for a retry, as one failed batch does.
    ///
    /// `batch` holds ingest items and control requests of `memoryOps` (answered at release).
    func stage(_ batch: [WorkItem], decoded: consuming [DecodeOutcome?]) {
        guard let inFlight else { return process(batch, decoded: decoded) }
        if !inFlight.filterComplete, let loaded = loadedKeyFilter.withLock({ $0.take() }) {
            inFlight.filter.formUnion(loaded)
            inFlight.filterComplete = true
        }
        // Each message's key hash (0 without an event), for the prefetch below: read here through
        // a borrowed element, as `decoded[i]?.keyHash` in the loop copied the whole outcome, its
        // event's strings and all (issue 8: 6 % of the engine thread).
        let keyHashes = decoded.map { $0?.keyHash ?? 0 }
        var answers: [WorkItem] = []
        let statsBefore = stats
        let now = SystemClock.now()
        let started = SystemdNotifier.monotonicNow()
        var out = BatchOutput()
        let rows = StagedRows(inFlight)
        // Batches released while this one is decided, forgotten by `inFlight` after it.
        var releasedMeanwhile: [StagedRows] = []
        do {
            // One snapshot for the batch's lookups: it may predate the commit of the batch
            // before, whose events therefore stay in flight (`inFlight.batches`) until the lookups are done
            // (the defer), even when that batch is released meanwhile.
            // A sealed set of recent keys whose generation has committed is dropped here, before
            // the batch's first lookup takes its snapshot (which therefore has that generation).
            dropRetiredKeys()
            try inFlight.lookup.beginBatch()
            defer {
                inFlight.lookup.endBatch()
                for rows in releasedMeanwhile { inFlight.forget(rows) }
            }
            for (index, item) in batch.enumerated() {
                // The key filter's block of the event `filterLead` ahead, fetched now (a hint,
                // no wait) so that it is in the cache when that event's lookup comes. A message
                // without an event has hash 0: one block fetched for nothing.
                if inFlight.filterComplete, index + Self.filterLead < keyHashes.count {
                    inFlight.filter.withBlock(hash: keyHashes[index + Self.filterLead]) { first, last in
                        budgetd_prefetch(first)
                        budgetd_prefetch(last)
                    }
                }
                // The batch before committed meanwhile: its acknowledgements and alerts go out
                // now rather than after this whole batch (its events stay in flight
                // until this batch's lookups are done: their snapshot may predate its commit).
                if index & 63 == 63, let job = committing, job.committedWithoutWaiting {
                    completeCommit(forgetting: false)
                    releasedMeanwhile.append(job.rows)
                }
                switch item {
                case .publish(let frames, let receivedAt):
                    try handleIngest(frames: frames, envelope: nil, receivedAt: receivedAt, decoded: decoded[index].take(), rows, &out)
                case .ack(let envelope, let frames, let receivedAt):
                    try handleIngest(frames: frames, envelope: envelope, receivedAt: receivedAt, decoded: decoded[index].take(), rows, &out)
                case .control:
                    answers.append(item)
                case .reload, .tick:
                    preconditionFailure("only ingest and memoryOps requests are staged")
                }
            }
        } catch {
            // A lookup failed: this batch's bookings are undone and it waits for a retry.
            if completeCommit() {
                stats.rollBack(to: statsBefore)
                inFlight.forgetAll()
                rebuildLedger()
            }
            fail(batch, retrying: false, error: error, at: now)
            return
        }
        let budgets = inPlace(&ledger) { ledger in out.bookedBudgets.union(out.touchedBudgets).sorted().compactMap { ledger[$0] } }
        let job = CommitJob(
            items: batch, rows: rows, budgets: budgets, history: ledger.takeChangedHistory(), out: out,
            now: now, started: started, statsBefore: statsBefore, statsAfter: stats, lastSeq: ledger.lastSeq, answers: answers
        )
        guard completeCommit() else {
            // The batch before did not commit: the ledger was rebuilt without this one's
            // bookings too, and its items wait behind the failed batch's.
            logger.warning("the batch decided after a failed commit is undone and waits for the retry too", metadata: ["items": "\(batch.count)"])
            fail(batch, retrying: false, error: StoreError("the batch before this one did not commit"), at: now)
            return
        }
        committing = job
        let store = self.store!
        commitQueue.async { job.run(store) }
    }

    /// Waits for the batch on the commit thread, if any, and releases what it produced; on a
    /// failed commit, undoes it (and whatever was decided on top of it). Returns false then.
    ///
    /// `forgetting`: the batch's events leave `inFlight` (false while a batch is staged:
    /// `stage` makes them leave when its lookups are done).
    @discardableResult
    func completeCommit(forgetting: Bool = true) -> Bool {
        guard let job = committing else { return true }
        committing = nil
        job.wait()
        if let error = job.error {
            stats.rollBack(to: job.statsBefore)
            inFlight?.forgetAll()
            rebuildLedger()
            fail(job.items, retrying: false, error: error, at: job.now)
            return false
        }
        if forgetting { inFlight?.forget(job.rows) }
        stats.stagedBatches += 1
        committed(job.out, items: job.items.count, statsBefore: job.statsBefore, statsAfter: job.statsAfter, started: job.started, at: job.now)
        if pending.isEmpty && integrityFailure == nil { setHealth(ok: true, reason: nil, at: job.now) }
        if !job.answers.isEmpty {
            // As of this release: its input counters, every output counter so far.
            var view = stats
            view.rollBack(to: job.statsAfter)
            for case .control(let envelope, let frames, let userID) in job.answers {
                send(.control(envelope + [answerFromMemory(frames: frames, userID: userID, stats: view, lastSeq: job.lastSeq).serializedBytes()]))
            }
        }
        return true
    }

    /// The reply to a `memoryOps` request, with `stats` and `lastSeq` as of a release.
    func answerFromMemory(frames: [[UInt8]], userID: String?, stats: Stats, lastSeq: Int64) -> JSONValue {
        switch parseControl(frames: frames, userID: userID) {
        case .failure(let failure):
            return Self.errorReply(failure.code, failure.message)
        case .success(let request):
            do {
                return Self.okReply(try answerFromMemory(op: request.op, Args(request.args), stats: stats, lastSeq: lastSeq, at: SystemClock.now()))
            } catch {
                return Self.refusalReply(error) ?? Self.errorReply(.internalError, "\(error)")
            }
        }
    }
}
