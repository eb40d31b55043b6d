import BudgetCore
import CoreMetrics

/// The daemon's metrics, made through whatever `MetricsSystem` `main` bootstrapped (Prometheus in
/// budgetd; the no-op factory anywhere else, so tests never bootstrap).
///
/// Names (see docs/operations.md):
/// - `budgetd_ingest_events_total{outcome}`: received, accepted, duplicate, rejected, unpriced,
///   unallocated (unpriced and unallocated are accepted events that were not booked).
/// - `budgetd_ingest_rejected_total{reason}`: rejections by reason (the part before the first colon).
/// - `budgetd_commit_batch_size`: histogram of items per committed transaction.
/// - `budgetd_commit_duration_seconds`: histogram of the time one batch takes to process and commit.
/// - `budgetd_commit_transaction_seconds`: histogram of the commit thread's transactions alone
///   (staged batches' rows written, then COMMIT with the log's fsync).
/// - `budgetd_commit_queue_seconds`: histogram of how long each staged batch waited for its
///   transaction to start (behind the commit in progress).
/// - `budgetd_alerts_total{type}`: alerts published, by type.
/// - `budgetd_budget_spent{budget}`, `budgetd_budget_total{budget}`, `budgetd_budget_spent_percent{budget}`.
/// - `budgetd_sequence_gaps_total{source}`: forward jumps of a source's `seq`.
/// - `budgetd_healthy`: 1 when commits succeed, 0 while DEGRADED.
///
/// Counters are fed from the `Stats` difference of a batch after it commits: a batch that rolls
/// back restores its `Stats`, and a counter cannot be rolled back, so counting next to the `Stats`
/// increments would count a retried batch twice.
///
/// Engine-thread only (like `Stats`); the handles it caches are thread-safe themselves.
///
/// It holds the factory's handlers, not swift-metrics' `Counter`/`Gauge` wrappers: their
/// `increment(by:)` and `record(_:)` are generic and not inlinable, so each call converted its
/// argument through the unspecialised generic path (issue 8: the budget gauges alone were 4–5 %
/// of the engine thread on the acknowledged path, whose small commits update every budget they
/// book to). The handlers are what the wrappers call; the values are the same.
final class EngineMetrics {
    /// More distinct reasons or sources than this share the label value `other`, so a hostile
    /// publisher cannot grow the scrape without bound.
    static let maxLabelValues = 1000

    private let factory = MetricsSystem.factory
    private let outcomes: [String: any CounterHandler]
    private var rejected: [CodePointKey: any CounterHandler] = [:]
    private var alerts: [CodePointKey: any CounterHandler] = [:]
    private var gaps: [CodePointKey: any CounterHandler] = [:]
    private var budgets: [String: (spent: any RecorderHandler, total: any RecorderHandler, percent: any RecorderHandler)] = [:]
    private let batchSize: any RecorderHandler
    private let commitDuration: any TimerHandler
    private let transaction: any TimerHandler
    private let queue: any TimerHandler
    private let healthy: any RecorderHandler

    init() {
        var outcomes: [String: any CounterHandler] = [:]
        for o in ["received", "accepted", "duplicate", "rejected", "unpriced", "unallocated"] {
            outcomes[o] = factory.makeCounter(label: "budgetd_ingest_events_total", dimensions: [("outcome", o)])
        }
        self.outcomes = outcomes
        batchSize = factory.makeRecorder(label: "budgetd_commit_batch_size", dimensions: [], aggregate: true)
        commitDuration = factory.makeTimer(label: "budgetd_commit_duration_seconds", dimensions: [])
        transaction = factory.makeTimer(label: "budgetd_commit_transaction_seconds", dimensions: [])
        queue = factory.makeTimer(label: "budgetd_commit_queue_seconds", dimensions: [])
        healthy = factory.makeRecorder(label: "budgetd_healthy", dimensions: [], aggregate: false)
        healthy.record(Int64(1))
    }

    /// After a batch commits: what it changed in `Stats`, its size and how long it took.
    func committed(before: Stats, after: Stats, items: Int, nanoseconds: Int64) {
        batchSize.record(Int64(items))
        commitDuration.recordNanoseconds(nanoseconds)
        add("received", after.received - before.received)
        add("accepted", after.accepted - before.accepted)
        add("duplicate", after.duplicates - before.duplicates)
        add("rejected", after.rejected - before.rejected)
        add("unpriced", after.unpriced - before.unpriced)
        add("unallocated", after.unallocated - before.unallocated)
        if after.rejected != before.rejected {
            for (reason, n) in after.rejectedByReason where n != before.rejectedByReason[reason] {
                counter(&rejected, "budgetd_ingest_rejected_total", "reason", reason)
                    .increment(by: n - (before.rejectedByReason[reason] ?? 0))
            }
        }
        if after.gaps != before.gaps {
            for (source, n) in after.gaps where n != before.gaps[source] {
                counter(&gaps, "budgetd_sequence_gaps_total", "source", source.string)
                    .increment(by: n - (before.gaps[source] ?? 0))
            }
        }
    }

    /// A transaction of the commit thread, once committed.
    func transaction(nanoseconds: Int64) {
        transaction.recordNanoseconds(nanoseconds)
    }

    /// A staged batch's wait, from the end of its staging to the start of its transaction.
    func queued(nanoseconds: Int64) {
        queue.recordNanoseconds(nanoseconds)
    }

    func alert(type: String) {
        counter(&alerts, "budgetd_alerts_total", "type", type).increment(by: 1)
    }

    func health(ok: Bool) {
        healthy.record(Int64(ok ? 1 : 0))
    }

    /// Sets the spent / total / percentage gauges of a budget (in its own currency's units).
    func update(_ budget: Budget) {
        let g: (spent: any RecorderHandler, total: any RecorderHandler, percent: any RecorderHandler)
        if let existing = budgets[budget.id] {
            g = existing
        } else {
            let d = [("budget", budget.id)]
            g = (factory.makeRecorder(label: "budgetd_budget_spent", dimensions: d, aggregate: false),
                 factory.makeRecorder(label: "budgetd_budget_total", dimensions: d, aggregate: false),
                 factory.makeRecorder(label: "budgetd_budget_spent_percent", dimensions: d, aggregate: false))
            budgets[budget.id] = g
        }
        let spent = Self.units(budget.spentAmount), total = Self.units(budget.totalAmount)
        g.spent.record(spent)
        g.total.record(total)
        g.percent.record(total > 0 ? spent / total * 100 : 0)
    }

    private func add(_ outcome: String, _ n: Int64) {
        if n > 0 { outcomes[outcome]?.increment(by: n) }
    }

    /// Label values told apart by code point, as sources are (`Stats.gaps`).
    private func counter(_ cache: inout [CodePointKey: any CounterHandler], _ label: String, _ key: String, _ value: String) -> any CounterHandler {
        if let c = cache[CodePointKey(value)] { return c }
        let bounded = cache.count < Self.maxLabelValues ? value : "other"
        if let c = cache[CodePointKey(bounded)] { return c }
        let c = factory.makeCounter(label: label, dimensions: [(key, bounded)])
        cache[CodePointKey(bounded)] = c
        return c
    }

    /// `Money.nanosPerUnit` as a `Double`, converted once.
    private static let nanosPerUnit = Double(Int64(Money.nanosPerUnit))

    static func units(_ m: Money) -> Double {
        // Through Int64 when it fits: the same value (both round to nearest), converted by the
        // concrete `Double(Int64)`. The generic conversion from Int128 (and `.map(Double.init)`,
        // which picked the generic initializer too) ran unspecialised: 4–5 % of the engine
        // thread on the acknowledged path, whose small batches update the gauges of every
        // budget they book to (issue 8).
        if let nanos = Int64(exactly: m.nanos) { return Double(nanos) / nanosPerUnit }
        return Double(m.nanos) / nanosPerUnit
    }
}
