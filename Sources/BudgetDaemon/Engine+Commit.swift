import BudgetCore
import BudgetStore
import CPrefetch
import Dispatch
import Foundation
import Logging
import Synchronization
import ZMQ

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

/// What `stage` decided for one batch: its rows, the budgets' new totals, the spike history
/// and daily rollup it changed, its outbound messages; and what to release once it has
/// committed.
struct StagedBatch {
    let items: [WorkItem]
    let rows: StagedRows
    let budgets: [Budget]
    let history: [(bucket: HistoryBucket, amount: Money)]
    let out: BatchOutput
    let now: Timestamp
    let started: Int64
    /// When its staging ended (monotonic ns): from then it waits for its transaction
    /// (`budgetd_commit_queue_seconds`).
    let stagedAt: Int64
    let statsBefore: Stats
    let statsAfter: Stats
    /// The last outbound seq once this batch's messages are out (what `stats` says then).
    let lastSeq: Int64
    /// Control requests answered from memory (`Engine.memoryOps`) once this batch is released.
    let answers: [WorkItem]

    /// Only requests answered from memory: nothing to write.
    var writesNothing: Bool {
        rows.events.isEmpty && rows.costs.isEmpty && rows.rejected.isEmpty && out.daily.isEmpty && budgets.isEmpty
            && history.isEmpty && out.outbound.isEmpty
    }
}

/// Staged batches committed in one transaction on the commit thread: the batches staged while
/// the commit before was in progress join one job (`Engine.waiting`), handed over when that
/// commit is done (issue 8: a batch staged behind a commit waited for it on the engine thread,
/// ~0.8 ms of each ~1.2 ms commit on the acknowledged path, so the batches read meanwhile were
/// not decided until then, and each small batch paid a commit of its own).
///
/// `@unchecked Sendable`: built by the engine thread (`append` only before it is handed over),
/// then only read by the commit thread until `done` is signalled (which writes `error`); the
/// engine reads `error` after `wait()`.
final class CommitJob: @unchecked Sendable {
    /// In the order they were staged.
    private(set) var batches: [StagedBatch]
    /// The items of every batch.
    private(set) var itemCount: Int
    private(set) var error: (any Error)?
    /// How long its transaction took on the commit thread, from BEGIN to the end of COMMIT
    /// (`budgetd_commit_transaction_seconds`); 0 when it wrote nothing.
    private(set) var transactionNanoseconds: Int64 = 0
    /// When its transaction began (monotonic ns; 0 when it wrote nothing).
    private(set) var transactionStarted: Int64 = 0
    private let done = DispatchSemaphore(value: 0)
    /// Set (after `error`) when the commit thread is done with it.
    private let finished = Atomic<Bool>(false)

    /// Done, committed or not: `completeCommit` would not wait.
    var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Done and committed: `completeCommit` would not wait, and would release it.
    var committedWithoutWaiting: Bool { isFinished && error == nil }

    /// Only requests answered from memory: no transaction.
    var writesNothing: Bool { batches.allSatisfy(\.writesNothing) }

    init(_ first: StagedBatch) {
        batches = [first]
        itemCount = first.items.count
    }

    /// Another batch for the same transaction (before the job is handed over).
    func append(_ batch: StagedBatch) {
        batches.append(batch)
        itemCount += batch.items.count
    }

    /// Writes everything in one transaction and commits: the rows in the order, per table, that
    /// `Engine.process` would write them batch after batch; each budget's totals and each
    /// spike bucket once, as the last batch left them; the daily rollup's additions summed,
    /// through the log (DailyLog.swift).
    ///
    /// `signal`: signalled once it is finished (after `isFinished` turns true), for the serve
    /// loop's poll.
    func run(_ store: Store, signal: PollSignal?) {
        defer {
            finished.store(true, ordering: .releasing)
            signal?.signal()
            done.signal()
        }
        // Only requests answered from memory: no transaction to commit.
        if writesNothing { return }
        let started = SystemdNotifier.monotonicNow()
        transactionStarted = started
        defer { transactionNanoseconds = SystemdNotifier.monotonicNow() - started }
        do {
            try store.write { w in
                for b in batches {
                    for r in b.rows.rejected { try w.insertRejected(r) }
                    try w.insertCosts(b.rows.costs)
                    try w.insertEvents(b.rows.events)
                }
                for budget in Self.latestBudgets(batches) { try w.saveTotals(budget) }
                try w.saveHistory(Self.latestHistory(batches))
                try w.logDailySpend(Self.dailyRows(batches))
                for b in batches {
                    for m in b.out.outbound { try w.insertOutbound(m, at: b.now) }
                }
            }
        } catch {
            self.error = error
        }
    }

    /// Each budget as the last batch that changed it left it, by id (a lone batch's are).
    static func latestBudgets(_ batches: [StagedBatch]) -> [Budget] {
        guard batches.count > 1 else { return batches.first?.budgets ?? [] }
        var latest: [String: Budget] = [:]
        for b in batches {
            for budget in b.budgets { latest[budget.id] = budget }
        }
        return latest.keys.sorted().map { latest[$0]! }
    }

    /// Each spike bucket's amount as the last batch that changed it left it, in the order the
    /// buckets were first changed.
    static func latestHistory(_ batches: [StagedBatch]) -> [(bucket: HistoryBucket, amount: Money)] {
        guard batches.count > 1 else { return batches.first?.history ?? [] }
        var merged: [(bucket: HistoryBucket, amount: Money)] = []
        var position: [HistoryBucket: Int] = [:]
        for b in batches {
            for entry in b.history {
                if let i = position[entry.bucket] {
                    merged[i].amount = entry.amount
                } else {
                    position[entry.bucket] = merged.count
                    merged.append(entry)
                }
            }
        }
        return merged
    }

    /// The batches' daily rollup rows, one per key, summed.
    static func dailyRows(_ batches: [StagedBatch]) -> [(key: DailyKey, amount: Money, count: Int64)] {
        guard batches.count > 1 else { return batches.first?.out.daily.rows ?? [] }
        var daily = DailyTotals()
        for b in batches { daily.merge(b.out.daily) }
        return daily.rows
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
                    advanceCommit(forgetting: false)
                    releasedMeanwhile += job.batches.map(\.rows)
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
        let staged = StagedBatch(
            items: batch, rows: rows, budgets: budgets, history: ledger.takeChangedHistory(), out: out,
            now: now, started: started, stagedAt: SystemdNotifier.monotonicNow(), statsBefore: statsBefore, statsAfter: stats,
            lastSeq: ledger.lastSeq, answers: answers
        )
        if let waiting { waiting.append(staged) } else { waiting = CommitJob(staged) }
        // Handed over at once when the commit thread is free; otherwise it waits for the commit
        // in progress (the serve loop goes on reading and staging meanwhile), unless enough
        // has gathered: then this thread waits, as it would for a full batch.
        if committing.map({ $0.isFinished }) ?? true || waiting!.itemCount >= config.maxBatch {
            advanceCommit()
        }
    }

    /// Releases the batches on the commit thread once committed (waiting for them), then hands
    /// over the batches staged meanwhile (`waiting`) without waiting for those. Returns false when
    /// the commit failed: then every batch decided on top of it is undone too, and waits for a
    /// retry behind it.
    ///
    /// `forgetting`: the released batches' events leave `inFlight` (false while a batch is
    /// staged: `stage` makes them leave when its lookups are done).
    @discardableResult
    func advanceCommit(forgetting: Bool = true) -> Bool {
        if let job = committing {
            committing = nil
            job.wait()
            // Its signal was sent before `done`: taken back, so that the next poll waits for the
            // next job's.
            commitDone?.clear()
            if let error = job.error {
                stats.rollBack(to: job.batches[0].statsBefore)
                inFlight?.forgetAll()
                rebuildLedger()
                for b in job.batches { fail(b.items, retrying: false, error: error, at: b.now) }
                if let undone = waiting {
                    waiting = nil
                    // Decided on the ledger the failure rebuilt: its bookings are gone, its items
                    // wait for the retry too.
                    logger.warning("the batches decided after a failed commit are undone and wait for the retry too", metadata: ["items": "\(undone.itemCount)"])
                    for b in undone.batches { fail(b.items, retrying: false, error: StoreError("the batch before this one did not commit"), at: b.now) }
                }
                return false
            }
            // The batches staged meanwhile go to the commit thread before this one's
            // acknowledgements and alerts go out (sending those takes a while; the commit
            // thread would be idle meanwhile). Their own go out after these, at their release.
            handOverWaiting()
            if !job.writesNothing {
                stats.stagedCommits += 1
                metrics.transaction(nanoseconds: job.transactionNanoseconds)
                for b in job.batches { metrics.queued(nanoseconds: job.transactionStarted - b.stagedAt) }
            }
            for b in job.batches { release(b, forgetting: forgetting) }
            return true
        }
        handOverWaiting()
        return true
    }

    /// The batches staged while the commit thread was busy go to it, in one job.
    private func handOverWaiting() {
        guard let job = waiting else { return }
        waiting = nil
        committing = job
        let store = self.store!
        let signal = commitDone
        commitQueue.async { job.run(store, signal: signal) }
    }

    /// Commits and releases every staged batch (waiting for them): on return nothing is staged
    /// or on the commit thread. Returns false when a commit failed (everything after it undone).
    @discardableResult
    func completeCommit(forgetting: Bool = true) -> Bool {
        guard advanceCommit(forgetting: forgetting) else { return false }
        // What was waiting is on the commit thread now.
        return advanceCommit(forgetting: forgetting)
    }

    /// What a committed batch produced goes out: acknowledgements, alerts, answers.
    private func release(_ b: StagedBatch, forgetting: Bool) {
        if forgetting { inFlight?.forget(b.rows) }
        stats.stagedBatches += 1
        committed(b.out, items: b.items.count, statsBefore: b.statsBefore, statsAfter: b.statsAfter, started: b.started, at: b.now)
        if pending.isEmpty && integrityFailure == nil { setHealth(ok: true, reason: nil, at: b.now) }
        if !b.answers.isEmpty {
            // As of this release: its input counters, every output counter so far.
            var view = stats
            view.rollBack(to: b.statsAfter)
            for case .control(let envelope, let frames, let userID) in b.answers {
                send(.control(Self.replyFrames(envelope, answerFromMemory(frames: frames, userID: userID, stats: view, lastSeq: b.lastSeq).serializedBytes())))
            }
        }
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

