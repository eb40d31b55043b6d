import BudgetCore
import BudgetStore
import Logging

extension Engine {
    static let secondsPerDay: Int64 = 86_400

    /// The retention horizons at `now`: events received before `events` and dead letters and
    /// outbound messages before `others` go. `olderThan` (from `retention.run`) replaces the
    /// configured `retentionDays`; events younger than `dedupWindowDays` are kept either way.
    /// Nil when nothing is to be pruned (retention off and no `olderThan`).
    func retentionHorizons(olderThan: Timestamp?, now: Timestamp) -> (events: Timestamp, others: Timestamp)? {
        let others: Timestamp
        if let olderThan {
            others = olderThan
        } else if config.retentionDays > 0 {
            others = now.adding(seconds: -Int64(config.retentionDays) * Self.secondsPerDay)
        } else {
            return nil
        }
        let dedupStart = now.adding(seconds: -Int64(config.dedupWindowDays) * Self.secondsPerDay)
        return (min(others, dedupStart), others)
    }

    /// Prunes in `w`; the result of `retention.run`.
    func prune(olderThan: Timestamp?, now: Timestamp, _ w: StoreWriter) throws -> JSONValue {
        guard let horizons = retentionHorizons(olderThan: olderThan, now: now) else {
            return .object(JSONObject([
                ("enabled", .bool(false)), ("usageEvents", .number(0)), ("deadLetters", .number(0)), ("outbound", .number(0)),
            ]))
        }
        let counts = try w.prune(eventsBefore: horizons.events, othersBefore: horizons.others)
        logPruned(counts, eventsBefore: horizons.events, othersBefore: horizons.others)
        return .object(JSONObject([
            ("enabled", .bool(true)),
            ("usageEvents", .number(counts.usageEvents)), ("deadLetters", .number(counts.deadLetters)),
            ("outbound", .number(counts.outbound)),
            ("eventsBefore", .string(horizons.events.rfc3339)), ("othersBefore", .string(horizons.others.rfc3339)),
        ]))
    }

    /// `retention.run`: `olderThan?` (RFC 3339 or YYYY-MM-DD; default now − `retentionDays`).
    func retentionOp(_ args: Args, _ w: StoreWriter, now: Timestamp) throws -> JSONValue {
        try prune(olderThan: try args.instant("olderThan"), now: now, w)
    }

    /// Events the daily run prunes per transaction: ~70 ms of work (33 s per 10⁶ events here,
    /// docs/ledger.md), after which the serve loop takes a batch before the next chunk.
    static let retentionChunk = 2_000

    /// The daily run (at start, then from the scheduler tick): starts a pruning that goes on in
    /// chunks of `retentionChunk` events, one transaction each, between the serve loop's
    /// batches (`continueRetention`), so events are committed and requests answered meanwhile
    /// (in one transaction, pruning 10⁶ events stopped the daemon for a minute). A failure is
    /// logged and the rest waits for the next day; a stop leaves the rest to the next start.
    func runRetention(at now: Timestamp) {
        guard config.retentionDays > 0, retentionRun == nil,
              let horizons = retentionHorizons(olderThan: nil, now: now) else { return }
        retentionRun = RetentionRun(events: horizons.events, others: horizons.others, started: SystemdNotifier.monotonicNow())
        continueRetention()
    }

    /// Prunes the next chunk of the run under way, in a transaction of its own.
    func continueRetention() {
        guard var run = retentionRun else { return }
        do {
            let counts = try store.write { w in
                try w.prune(eventsBefore: run.events, othersBefore: run.others, maxEvents: Self.retentionChunk, range: run.range)
            }
            run.pruned.add(counts)
            run.transactions += 1
            if let rest = counts.rest {
                run.range = rest
                retentionRun = run
                return
            }
            retentionRun = nil
            logPruned(run.pruned, eventsBefore: run.events, othersBefore: run.others, more: [
                "transactions": "\(run.transactions)", "ms": "\((SystemdNotifier.monotonicNow() - run.started) / 1_000_000)",
            ])
        } catch {
            retentionRun = nil
            logger.error("retention: cannot prune: \(error)")
        }
    }
}

extension Engine {
    /// The log line of a pruning that deleted anything (`retention.run`, or a daily run's end).
    func logPruned(_ counts: PruneCounts, eventsBefore: Timestamp, othersBefore: Timestamp, more: Logger.Metadata = [:]) {
        guard counts.usageEvents + counts.deadLetters + counts.outbound > 0 else { return }
        logger.notice("retention: pruned", metadata: more.merging([
            "usageEvents": "\(counts.usageEvents)", "deadLetters": "\(counts.deadLetters)", "outbound": "\(counts.outbound)",
            "eventsBefore": "\(eventsBefore.rfc3339)", "othersBefore": "\(othersBefore.rfc3339)",
        ]) { $1 })
    }
}

/// A daily pruning under way: its horizons and what it deleted so far.
struct RetentionRun {
    let events: Timestamp
    let others: Timestamp
    let started: Int64
    var pruned = PruneCounts()
    var transactions = 0
    /// Where the next chunk goes on; nil before the first (it finds the range).
    var range: PruneRange?
}
