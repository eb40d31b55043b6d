import BudgetCore
import BudgetStore
import Foundation
public import Logging
import Synchronization
import ZMQ

/// One unit of input taken off a socket, processed in order by the writer.
enum WorkItem: Sendable {
    /// [topic, json] from the SUB socket.
    case publish(frames: [[UInt8]], receivedAt: Timestamp)
    /// From the acknowledged ROUTER: the envelope to reply on, then [topic, json].
    case ack(envelope: [[UInt8]], frames: [[UInt8]], receivedAt: Timestamp)
    /// From the control ROUTER: the envelope, the request frames, and the client's CURVE key (Z85)
    /// when CURVE is on.
    case control(envelope: [[UInt8]], frames: [[UInt8]], userID: String?)
    /// SIGHUP: reload the price catalog and price UNPRICED events again.
    case reload
    /// The scheduler: complete ended periods and renew budgets.
    case tick

    var isIngest: Bool {
        switch self {
        case .publish, .ack: true
        case .control, .reload, .tick: false
        }
    }
}

/// A reply to send after the batch commits.
enum Reply {
    case ack([[UInt8]])
    case control([[UInt8]])
}

/// Runs `body` on `value` where it lives.
///
/// Calling a non-mutating method of a struct kept in a class property (`ledger.route(…)`,
/// `pricer.price(…)`) copies the whole struct first: every table of the ledger retained, then
/// released. Through an inout access the method reads it in place. The hot path reads the
/// ledger and the pricer this way (issue 8: the copies were a few per cent of the engine thread).
@inline(__always)
func inPlace<T, R>(_ value: inout T, _ body: (inout T) throws -> R) rethrows -> R {
    try body(&value)
}

/// The daemon's single writer: it owns every socket and the ledger, and decides everything, on
/// one thread; the database is written by its commit thread, one handed-over batch at a time.
///
/// Its loop: poll → take what is waiting (up to `maxBatch`) → decode, dedup, price, route, book,
/// evaluate alerts → commit the batch in one transaction (one fsync) → only then acknowledge,
/// reply and publish. A single writer keeps the accounting deterministic and needs no locks on
/// money.
///
/// Ingest goes through three threads, each batch in order: the decode thread decodes batch n+2
/// while this thread decides batch n+1 and the commit thread writes and commits batch n
/// (`Engine+Decode`, `Engine+Commit`); `stats`, `health` and `spend.check` follow it. Everything
/// else (other control requests, ticks, reloads, retries after a failed commit, the stop's
/// drain) waits for the commit in progress and is decided and committed here, in one
/// transaction.
///
/// `@unchecked Sendable`: after `init`, only the engine thread touches its state; the one thing
/// other threads use is `stopRequested`, an atomic.
public final class Engine: @unchecked Sendable {
    let config: DaemonConfiguration
    let logger: Logger
    let stopRequested = Atomic<Bool>(false)
    let reloadRequested = Atomic<Bool>(false)

    var store: Store!
    /// Held from before the database opens until after it is closed (`DatabaseLock`).
    var databaseLock: DatabaseLock?
    var warnedSeqFloor = false
    var ledger = Ledger()
    /// Set when a batch failed and the ledger could not be rebuilt from the database yet:
    /// nothing is booked until `loadLedger` succeeds.
    var ledgerStale = false
    /// The one-time rebuild of `spend_history` from costs (after the migration that adds it) is done.
    var historyBackfilled = false
    var pricer = Pricer(catalog: Catalog())
    var stats: Stats
    var health: (ok: Bool, reason: String?) = (true, nil)

    // Sockets, created and used on the engine thread only.
    var context: ZMQContext!
    var ingest: ZMQSocket!
    var ingestAck: ZMQSocket!
    var publisher: ZMQSocket!
    var control: ZMQSocket!
    /// CURVE keys and the ZAP handler, when CURVE is configured. The handler is bound before any
    /// socket: without one, libzmq admits every CURVE client.
    var securityKeys: SecurityKeys?
    var authenticator: ZAPAuthenticator?

    /// Ingest items of a batch that failed to commit, retried before anything new is read.
    var pending: [WorkItem] = []
    var nextRetry = Timestamp(nanosecondsSinceEpoch: 0)
    /// The key generations last logged (`dropRetiredKeys`); -1 before the first look.
    var loggedKeyGenerations: Int64 = -1
    var nextHeartbeat = Timestamp(nanosecondsSinceEpoch: 0)
    let startedAt: Timestamp
    /// Called once the sockets are bound, with the `ready` line's endpoints.
    let onReady: @Sendable (String) -> Void
    /// systemd's READY=1 / STOPPING=1 / WATCHDOG=1 (a no-op outside systemd).
    let notifier: SystemdNotifier
    /// The background integrity check's outcome (nil inside: sound), once it has one.
    let integrityProblem = Mutex<String??>(nil)
    /// A failed integrity check keeps health DEGRADED for the rest of the run.
    var integrityFailure: String?
    /// Alert settings from a SIGHUP's re-read config file, applied by the engine thread.
    let pendingAlertSettings = Mutex<AlertSettings?>(nil)
    /// The daily pruning going on in chunks between batches, if any (engine thread only).
    var retentionRun: RetentionRun?
    /// The `backup.create` copying on its own thread, if any (engine thread only).
    var backupJob: BackupJob?
    /// The catalog path a SIGHUP's re-read configuration names, applied by the engine thread.
    let pendingPricesPath = Mutex<String?>(nil)
    /// The price catalog's path: `config.pricesPath`, or what a SIGHUP's configuration named
    /// since (engine thread only).
    var pricesPath: String?
    /// Engine-thread only.
    let metrics = EngineMetrics()
    /// Decodes ingest messages of the next batch while this thread commits the current one.
    let decodeQueue = WorkerThread(name: "budgetd-decode")
    /// Batches on the decode thread, oldest first (at most two between turns of the loop).
    var decoding: [DecodeJob] = []
    /// Budgets whose gauges wait for `flushBudgetMetrics`, and when it is next due.
    var metricsDirty: Set<String> = []
    var nextMetricsFlush = Timestamp(nanosecondsSinceEpoch: 0)
    /// Ids of cost rows: time-ordered, so the cost table's primary key grows at its end.
    var costIDs = SortableIDs(seed: UInt64.random(in: .min ... .max))
    /// Writes and commits staged ingest batches while this thread decides the next one.
    let commitQueue = WorkerThread(name: "budgetd-commit")
    /// The staged batches on the commit thread, released by `advanceCommit`.
    var committing: CommitJob?
    /// Batches staged while `committing` commits: handed over together when it is done (so
    /// never set while `committing` is nil: `stage` hands a first batch over at once).
    var waiting: CommitJob?
    /// Signalled by the commit thread when `committing` is finished: the serve loop's poll
    /// waits for it beside the sockets, so that what arrives meanwhile is staged at once.
    var commitDone: PollSignal?
    /// Dedup for staged batches: their uncommitted events, and a lookup of the committed ones.
    var inFlight: InFlightEvents?
    /// How many events ahead of its lookup a key's filter block is read (`stage`).
    static let filterLead = 8
    /// The key filter of the stored events, from `loadKeyFilter`'s thread, until `stage` takes it.
    let loadedKeyFilter = Mutex<KeyFilter?>(nil)

    /// Whether a stop was signalled before the service group handled the signals (budgetd's
    /// early handler): read at each turn of the loop, so such a stop is as clean as a later one.
    let stopSignalled: @Sendable () -> Bool

    public init(
        configuration: DaemonConfiguration, logger: Logger, notifier: SystemdNotifier = SystemdNotifier(environment: [:]),
        stopSignalled: @escaping @Sendable () -> Bool = { false }, onReady: @escaping @Sendable (String) -> Void
    ) {
        config = configuration
        self.logger = logger
        self.notifier = notifier
        self.stopSignalled = stopSignalled
        startedAt = SystemClock.now()
        stats = Stats(startedAt: startedAt)
        self.onReady = onReady
    }

    /// Asks the loop to drain and stop; safe from any thread.
    public func requestStop() {
        stopRequested.store(true, ordering: .releasing)
    }

    /// Asks the loop to reload the price catalog (SIGHUP), between two batches; safe from any thread.
    public func requestReload() {
        reloadRequested.store(true, ordering: .releasing)
    }

    // MARK: The loop

    /// Opens everything, serves until asked to stop, drains, and closes. Runs on its own thread.
    public func run() throws {
        // Close whatever was opened even when opening fails halfway (a port in use, say).
        defer { closeAll() }
        try open()
        try serve()
        try drain()
    }

    func open() throws {
        databaseLock = try DatabaseLock(databasePath: config.databasePath)
        if let line = databaseLock?.unreadableRecord {
            logger.warning("\(databaseLock?.path ?? "lock file"): cannot read the last seq published from \"\(line)\": seq goes on from the database's own (after a restore from a backup it may repeat one)")
        }
        store = try Store(
            path: config.databasePath, synchronous: config.synchronous, backgroundCheckpoints: true,
            keysPerGeneration: config.keysPerGeneration
        )
        // A long transaction (`retention.run` of 10⁶ events: half a minute) must not look like a
        // hung loop to systemd: its statements ping while they step. The serve loop pings the rest of the time.
        store.whileStatementsRun { [notifier] in notifier.watchdogIfDue() }
        commitDone = try PollSignal()
        let events = InFlightEvents(lookup: try store.makeEventLookup())
        let (advised, total) = events.filter.withUnsafeMutableBytes { (HugePages.advise($0), $0.count) }
        logger.info("dedup key filter: \(advised.bytes >> 20) of \(total >> 20) MiB advised to huge pages", metadata: ["collapsed": "\(advised.collapsed)"])
        inFlight = events
        loadKeyFilter()
        if store.deferredIntegrityCheck {
            logger.notice("database over \(Store.synchronousCheckBytes >> 20) MiB: its integrity check runs in the background")
            store.checkIntegrityInBackground { [self] problem in
                integrityProblem.withLock { $0 = .some(problem.map { "integrity check failed: \($0)" }) }
            }
        }
        try loadLedger(settings: config.alerts)
        let budgets = ledger.budgetsInOrder, lastSeq = ledger.lastSeq
        stats.startSeq = lastSeq
        defer { stats.readyAt = SystemClock.now() }
        pricesPath = config.pricesPath
        if let path = pricesPath {
            let started = SystemClock.now()
            pricer = Pricer(catalog: try Self.loadCatalog(path: path))
            logger.info("price catalog loaded", metadata: [
                "version": "\(pricer.catalog.version)", "entries": "\(pricer.catalog.entryCount)",
                "ms": "\((SystemClock.now() - started) / 1_000_000)",
            ])
        }
        context = try ZMQContext()
        if config.security.isEnabled {
            let keys = try SecurityKeys.load(config.security)
            securityKeys = keys
            authenticator = try ZAPAuthenticator(context: context, policy: keys.policy)
            logger.info("CURVE on", metadata: [
                "publicKey": "\(keys.server.publicKey)", "publishers": "\(keys.publishers.count)",
                "operators": "\(keys.operators.count)", "viewers": "\(keys.viewers.count)", "subscribers": "\(keys.subscribers.count)",
            ])
        }
        ingest = try context.makeSocket(.sub)
        try secure(ingest, endpoint: config.ingestEndpoint, domain: SecurityKeys.ingestDomain)
        try ingest.setReceiveHighWaterMark(config.receiveHighWaterMark)
        try ingest.setMaxMessageSize(config.socketMaxMessageBytes)
        try ingest.subscribe("usage")
        try ingest.bind(config.ingestEndpoint)

        ingestAck = try context.makeSocket(.router)
        try secure(ingestAck, endpoint: config.ingestAckEndpoint, domain: SecurityKeys.ingestDomain)
        try ingestAck.setReceiveHighWaterMark(config.receiveHighWaterMark)
        try ingestAck.setSendHighWaterMark(config.sendHighWaterMark)
        try ingestAck.setMaxMessageSize(config.socketMaxMessageBytes)
        try ingestAck.bind(config.ingestAckEndpoint)

        publisher = try context.makeSocket(.pub)
        try secure(publisher, endpoint: config.publishEndpoint, domain: SecurityKeys.publishDomain)
        try publisher.setSendHighWaterMark(config.sendHighWaterMark)
        try publisher.bind(config.publishEndpoint)

        control = try context.makeSocket(.router)
        try secure(control, endpoint: config.controlEndpoint, domain: SecurityKeys.controlDomain)
        try control.setSendHighWaterMark(config.sendHighWaterMark)
        try control.setMaxMessageSize(config.socketMaxMessageBytes)
        try control.bind(config.controlEndpoint)

        let directory = FileManager.default.currentDirectoryPath
        let bound = try [ingest, ingestAck, publisher, control].map { Self.readyEndpoint(try $0.lastEndpoint, directory: directory) }
        let line = "ready ingest=\(bound[0]) ingest-ack=\(bound[1]) publish=\(bound[2]) control=\(bound[3])"
        logger.info("budgetd started", metadata: ["db": "\(config.databasePath)", "budgets": "\(budgets.count)", "lastSeq": "\(lastSeq)"])
        for b in budgets { metrics.update(b) }
        if let backup = store.backupPath {
            logger.notice("database backed up before its schema migration", metadata: ["backup": "\(backup)"])
        }
        onReady(line)
        notifier.notify("READY=1")
    }

    /// An endpoint as the `ready` line shows it: an ipc path relative to the daemon's working
    /// directory (as `ipc://*` binds, in a `tmpXXXXXX` directory there) made absolute, so a
    /// client started elsewhere reaches it (an audit's `budgetctl` got no reply).
    static func readyEndpoint(_ endpoint: String, directory: String) -> String {
        let scheme = "ipc://"
        guard endpoint.hasPrefix(scheme) else { return endpoint }
        let path = endpoint.dropFirst(scheme.count)
        guard !path.hasPrefix("/"), !path.hasPrefix("@"), !path.isEmpty else { return endpoint }
        let absolute = scheme + (directory.hasSuffix("/") ? directory : directory + "/") + path
        // The line is space-separated `key=value`: a directory with white space would split it.
        return absolute.contains(where: \.isWhitespace) ? endpoint : absolute
    }

    /// Builds the ledger from what the database holds: budgets with their totals and alert
    /// state, the last seq, the UNPRICED_USAGE alerts raised, the spike history. At start, and
    /// after a batch failed to commit (the ledger then holds bookings the database never saw;
    /// rebuilding it is cheaper than copying a snapshot of every budget before every batch).
    func loadLedger(settings: AlertSettings) throws {
        let (budgets, lastSeq, unpriced) = try store.read { r in (try r.budgets(), try r.lastSeq(), try r.unpricedAlerts()) }
        // Not below what the previous daemon on this database published (`DatabaseLock`): a
        // database restored from a backup goes on after it, leaving a gap, instead of reusing seqs.
        let floor = databaseLock?.previousLastSeq ?? 0
        if floor > lastSeq && !warnedSeqFloor {
            logger.warning("database \(config.databasePath) ends at seq \(lastSeq), but seq \(floor) was published from it before (restored from a backup?): seq goes on from \(floor), and \(lastSeq + 1)…\(floor) are not in outbound.list")
            warnedSeqFloor = true
        }
        var fresh = Ledger(budgets: budgets, lastSeq: max(lastSeq, floor))
        for u in unpriced { fresh.rememberUnpricedAlert(platform: u.platform, model: u.model, month: u.month) }
        fresh.settings = settings
        ledger = fresh
        try restoreHistory()
        ledgerStale = false
    }

    /// Restores the spend history the spike windows need, and when spikes last fired, from the
    /// database, so a restart neither misses a spike nor repeats one. The history is saved
    /// hour by hour at each commit (`spend_history`); a database from before that table is
    /// rebuilt once from its costs and saved.
    func restoreHistory() throws {
        let now = SystemClock.now()
        let keep = ledger.historyKeptFrom(now)
        let since = Timestamp(nanosecondsSinceEpoch: keep * 3_600_000_000_000)
        if store.historyBackfillNeeded && !historyBackfilled {
            for c in try store.read({ r in try r.hourlyCosts(since: since) }) {
                ledger.recordHistory(amount: c.amount, budgetId: c.budgetId, platform: c.platform, serviceType: c.serviceType, at: c.at)
            }
            let buckets = ledger.historyBuckets
            try store.write { w in try w.saveHistory(buckets) }
            historyBackfilled = true
            logger.notice("spike history rebuilt from costs and saved", metadata: ["buckets": "\(buckets.count)"])
        } else {
            for (bucket, amount) in try store.read({ r in try r.history(since: keep) }) {
                ledger.restoreHistory(bucket, amount: amount)
            }
        }
        _ = ledger.takeChangedHistory()
        for s in try store.read({ r in try r.spikeAlerts(since: since) }) {
            var allocation: String?
            if let p = s.platform, let t = s.serviceType {
                allocation = ledger[s.budgetId]?.allocations.first { $0.hasKey(platform: p, serviceType: t) }?.id
            }
            ledger.rememberSpike(budgetId: s.budgetId, allocationId: allocation, at: s.at)
        }
    }

    static func loadCatalog(path: String) throws -> Catalog {
        let data: [UInt8]
        do { data = try readWholeFile(atPath: path) } catch { throw ConfigurationError(error.message("price catalog", path)) }
        do { return try Catalog.load(json: data) } catch {
            throw ConfigurationError("price catalog \(path): \(error.message)")
        }
    }

    func closeAll() {
        // A batch still on the commit thread is released before the sockets close.
        if ingest != nil { completeCommit() } else { committing?.wait() }
        inFlight?.lookup.close()
        for socket in [ingest, ingestAck, publisher, control] {
            try? socket?.setLinger(milliseconds: 1000)
            socket?.close()
        }
        // Sockets first, then the ZAP handler, then the context: a CURVE socket must never be
        // left without its handler.
        authenticator?.stop()
        context?.terminate()
        store?.close()
        databaseLock?.release()
    }

    func serve() throws {
        // Periods that ended while the daemon was down are completed (and renewed) first.
        process([.tick])
        defer { finishDecoding() }
        var nextTick = SystemClock.now()
        // Retention runs at start, then once a day (when `retentionDays` is set).
        var nextRetention = nextTick
        while !stopRequested.load(ordering: .acquiring) && !stopSignalled() {
            // From this loop itself: if it hangs, the pings stop and systemd restarts the daemon.
            notifier.watchdogIfDue()
            if let job = backupJob, job.isFinished {
                // Its audit record is written here, with the pipeline empty.
                finishDecoding()
                finishBackup(job)
            }
            if retentionRun != nil {
                // One chunk of the pruning under way between two batches.
                finishDecoding()
                continueRetention()
            }
            let now = SystemClock.now()
            if now >= nextHeartbeat {
                // lastSeq as published: the batch on the commit thread first.
                completeCommit()
                heartbeat(now)
            }
            if now >= nextTick {
                if let outcome = integrityProblem.withLock({ $0.take() }) {
                    if let problem = outcome {
                        // Commits go on (a bad page fails the batch that touches it, unacknowledged);
                        // operators are told at once.
                        logger.critical("database \(config.databasePath): \(problem)")
                        integrityFailure = problem
                        setHealth(ok: false, reason: problem, at: now)
                    } else {
                        logger.notice("database integrity check: ok")
                    }
                }
                // Cheap checks first: a transaction only when some period has ended, the hour
                // turned or retention is due. Only then is everything read before committed first,
                // so batches stay in order; otherwise the pipeline goes on (draining it every
                // second decided its batches here, on this thread: 28 % of the engine thread's
                // samples with 10⁴ budgets, whose batches are large, and a stall each second).
                let periodEnded = ledger.nextPeriodEnd.map { $0 <= now } ?? false
                let hourTurned = HourlySpend.hour(now) != HourlySpend.hour(nextTick)
                if periodEnded || hourTurned || now >= nextRetention { finishDecoding() }
                if periodEnded { process([.tick]) }
                if hourTurned {
                    ledger.pruneHistory(at: now)
                    let keep = ledger.historyKeptFrom(now)
                    do { try store.write { w in try w.pruneHistory(before: keep) } } catch {
                        logger.warning("cannot prune spike history", metadata: ["error": "\(error)"])
                    }
                }
                if now >= nextRetention {
                    runRetention(at: now)
                    nextRetention = now.adding(seconds: Self.secondsPerDay)
                }
                if !metricsDirty.isEmpty {
                    // The gauges show committed totals: the batch on the commit thread first.
                    completeCommit()
                    flushBudgetMetrics(now: now)
                }
                nextTick = now.adding(seconds: 1)
            }
            if (!pending.isEmpty || ledgerStale) && now >= nextRetry {
                finishDecoding()
                if !pending.isEmpty { process(pending, retrying: true) } else if ledgerStale { retryLoadLedger(at: now) }
            }
            if reloadRequested.exchange(false, ordering: .acquiringAndReleasing) {
                finishDecoding()
                if let settings = pendingAlertSettings.withLock({ $0.take() }), settings != ledger.settings {
                    ledger.settings = settings
                    logger.notice("alert settings reloaded", metadata: [
                        "spikeWindowHours": "\(settings.spikeWindowHours)", "spikeBaselineDays": "\(settings.spikeBaselineDays)",
                        "spikeFactorPercent": "\(settings.spikeFactorPercent)", "spikeMinAmount": "\(settings.spikeMinAmount)",
                        "lowBudgetMinElapsedHours": "\(settings.lowBudgetMinElapsedHours)", "allocationSpikes": "\(settings.allocationSpikes)",
                    ])
                }
                if let path = pendingPricesPath.withLock({ $0.take() }), path != pricesPath {
                    logger.notice("price catalog path changed", metadata: ["from": "\(pricesPath ?? "-")", "to": "\(path)"])
                    pricesPath = path
                }
                process([.reload])
            }
            // With a batch on the decode or commit thread, only look for more work without waiting.
            // A pruning under way goes on at once too (waiting here slept between its chunks).
            // A commit in progress does not keep it from waiting: the poll also wakes when that
            // commit finishes (`commitDone`), and what arrives meanwhile is staged at once (it
            // commits right after: issue 8, the acknowledged path's latency).
            let commitInProgress = committing.map { !$0.isFinished } ?? false
            let waitMs = !decoding.isEmpty || (committing != nil && !commitInProgress) || retentionRun != nil
                ? 0 : max(0, min(Int((nextHeartbeat - SystemClock.now()) / 1_000_000) + 1, 100))
            // While a failed batch waits for its retry, new ingest stays queued in ZeroMQ (back-pressure).
            let items: [(socket: ZMQSocket, events: PollEvents)] = pending.isEmpty
                ? [(ingest, .readable), (ingestAck, .readable), (control, .readable)]
                : [(control, .readable)]
            if !pending.isEmpty {
                // Unread meanwhile, the ingest sockets still take new peers: a publisher that
                // connected while the database failed got no subscription, and all it sent was
                // dropped by its PUB (an audit's 0 of 50 stored after the recovery).
                try? ingest.processCommands()
                try? ingestAck.processCommands()
            }
            let ready = try poll(items, signal: commitInProgress ? commitDone : nil, timeoutMilliseconds: waitMs).events
            let batch = ready.contains(where: { $0.contains(.readable) }) ? try take(includeIngest: pending.isEmpty) : []
            // Pipeline: hand the new batch to the decode thread, then stage the one decoded
            // before it (the one before that commits meanwhile). Requests answered from memory
            // follow the batches in the pipeline instead of stopping it.
            let busy = !decoding.isEmpty || committing != nil
            if !batch.isEmpty && pending.isEmpty
                && (batch.contains(where: \.isIngest) || busy && batch.allSatisfy(isMemoryControl)) {
                decoding.append(startDecoding(batch))
                advancePipeline()
                continue
            }
            // Nothing new: what was decoded is staged now (next turn, with still nothing new, it
            // is released once committed), so the pipeline works at moderate load too.
            if batch.isEmpty && !decoding.isEmpty && canStage {
                advancePipeline(keepingNewest: false)
                continue
            }
            // Nothing new and nothing decoding: the batches on the commit thread are released
            // once committed, and those staged meanwhile handed over (not waited for: what is
            // read next is staged while they commit).
            if batch.isEmpty && decoding.isEmpty, let job = committing {
                if job.isFinished { advanceCommit() }
                continue
            }
            // No ingest: everything before is committed and released first.
            finishDecoding()
            if !batch.isEmpty { process(batch) }
        }
    }

    /// Most messages one reading of the drain takes: the ingest sockets' queues, and at least
    /// 16 batches.
    /// (A high-water mark of 0 is no bound in ZeroMQ: then until the sockets are empty.)
    var drainReadLimit: Int {
        config.receiveHighWaterMark == 0 ? .max : max(config.maxBatch * 16, 2 * Int(config.receiveHighWaterMark))
    }

    /// On stop: take what has been received for up to `drainTimeoutMs`, commit it, acknowledge it.
    ///
    /// What the sockets hold is taken until they are empty, before anything is acknowledged: an
    /// acknowledgement invites a windowed client's next event, and a drain that kept reading
    /// would take new work for as long as clients keep sending. Messages that arrive later stay
    /// unread and unacknowledged (their clients resend them to the next start). One reading
    /// takes at most `drainReadLimit` messages (what the two ingest queues can hold); should the
    /// sockets hold more, they are read again once those are committed, until the deadline. (It
    /// was 16 batches, once: with a small `maxBatch` most of a full queue was dropped, the
    /// seventeenth session's audit found.) A batch that cannot commit is retried until the
    /// deadline, as in `serve`.
    func drain() throws {
        notifier.notify("STOPPING=1")
        let deadline = SystemClock.now().adding(nanoseconds: Int64(config.drainTimeoutMs) * 1_000_000)
        var queued: [WorkItem] = []
        var next = 0
        var emptied = false
        while SystemClock.now() < deadline {
            notifier.watchdogIfDue()
            if !pending.isEmpty {
                process(pending, retrying: true)
                if !pending.isEmpty {
                    // Still failing: wait a little (not the serve loop's full second) and retry.
                    Thread.sleep(forTimeInterval: 0.1)
                    continue
                }
            }
            if next == queued.count && !emptied {
                // Everything taken is committed: read what the sockets hold (again, when the last
                // reading stopped at its limit rather than at an empty socket).
                queued = []
                next = 0
                while queued.count < drainReadLimit && SystemClock.now() < deadline {
                    let batch = try take(includeIngest: true)
                    if batch.isEmpty {
                        emptied = true
                        break
                    }
                    queued += batch
                }
            }
            guard next < queued.count else { break }
            let end = min(next + config.maxBatch, queued.count)
            process(Array(queued[next..<end]))
            next = end
        }
        // A backup under way, started before the stop or by a request the drain read: its client
        // waits for the reply, and the copy must not be cut short.
        if let job = backupJob {
            logger.notice("stopping: waiting for the backup in progress", metadata: ["path": "\(job.path)"])
            finishBackup(job)
        }
        if !pending.isEmpty || next < queued.count {
            logger.error("stopping with uncommitted events (not acknowledged: their clients resend them)", metadata: [
                "count": "\(pending.count + queued[next...].filter(\.isIngest).count)",
            ])
        }
        logger.info("budgetd stopped", metadata: ["accepted": "\(stats.accepted)", "lastSeq": "\(ledger.lastSeq)"])
    }

    /// Rebuilds the ledger after a failed batch; on failure, tries again in a second.
    func retryLoadLedger(at now: Timestamp) {
        do { try loadLedger(settings: ledger.settings) } catch {
            nextRetry = now.adding(seconds: 1)
            logger.error("cannot reload the ledger from the database", metadata: ["error": "\(error)"])
        }
    }

    /// Reads what is waiting, fairly across the sockets, up to `maxBatch` items, without blocking.
    func take(includeIngest: Bool) throws -> [WorkItem] {
        var batch: [WorkItem] = []
        var open = includeIngest ? [true, true, true] : [false, false, true]
        // One message from each socket in turn, each only while the batch has room: a pass over
        // all three could take up to two more than `maxBatch`.
        while batch.count < config.maxBatch && open.contains(true) {
            let now = SystemClock.now()
            if open[0] {
                if let frames = try ingest.receive(dontWait: true) {
                    batch.append(.publish(frames: frames, receivedAt: now))
                } else { open[0] = false }
            }
            if open[1] && batch.count < config.maxBatch {
                if let frames = try ingestAck.receive(dontWait: true) {
                    let (envelope, body) = Self.splitEnvelope(frames)
                    batch.append(.ack(envelope: envelope, frames: body, receivedAt: now))
                } else { open[1] = false }
            }
            if open[2] && batch.count < config.maxBatch {
                if let (frames, userID) = try control.receiveWithUserID(dontWait: true) {
                    let (envelope, body) = Self.splitEnvelope(frames)
                    batch.append(.control(envelope: envelope, frames: body, userID: userID))
                } else { open[2] = false }
            }
        }
        return batch
    }

    /// A ROUTER message's envelope is every frame up to and including the first empty delimiter;
    /// with no delimiter (a DEALER without one), the identity frame alone (CONTRACT §1).
    ///
    /// A closure, not the key path `\.isEmpty`: the key path was looked up at run time for each
    /// message (issue 8: 4 % of the engine thread on the acknowledged path). The body is what is
    /// left of the received array once the envelope is taken out (in place: one allocation per
    /// message, not two).
    static func splitEnvelope(_ frames: consuming [[UInt8]]) -> (envelope: [[UInt8]], body: [[UInt8]]) {
        var body = frames
        let split = body.firstIndex(where: { $0.isEmpty }).map { $0 + 1 } ?? min(1, body.count)
        let envelope = Array(body[..<split])
        body.removeFirst(split)
        return (envelope, body)
    }

    // MARK: Outbound

    func heartbeat(_ now: Timestamp) {
        let payload = JSONValue.object(JSONObject([
            ("at", .string(now.rfc3339)), ("lastSeq", .number(ledger.lastSeq)),
            ("intervalMs", .number(config.heartbeatIntervalMs)),
        ]))
        publish(topic: "heartbeat", payload: payload.serializedBytes())
        nextHeartbeat = now.adding(nanoseconds: Int64(config.heartbeatIntervalMs) * 1_000_000)
    }

    func publish(topic: String, payload: [UInt8]) {
        do {
            // PUB never blocks: a slow subscriber loses messages at its high-water mark and
            // recovers them by seq with outbound.list.
            try publisher.send([Array(topic.utf8), payload], dontWait: true)
        } catch {
            logger.error("publish failed", metadata: ["topic": "\(topic)", "error": "\(error)"])
        }
    }

    func setHealth(ok: Bool, reason: String?, at now: Timestamp) {
        guard health.ok != ok else { return }
        health = (ok, reason)
        metrics.health(ok: ok)
        let payload = JSONValue.object(JSONObject([
            ("at", .string(now.rfc3339)), ("status", .string(ok ? "OK" : "DEGRADED")),
            ("reason", reason.map(JSONValue.string) ?? .null),
        ]))
        // Logged first: by the time a subscriber hears of it, the journal says it too.
        if ok {
            logger.notice("health OK: commits resumed")
        } else {
            logger.error("health DEGRADED", metadata: ["reason": "\(reason ?? "")"])
        }
        publish(topic: "health", payload: payload.serializedBytes())
    }
}

/// The wall clock, as a `Timestamp`.
enum SystemClock {
    static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(nanosecondsSinceEpoch: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
}
