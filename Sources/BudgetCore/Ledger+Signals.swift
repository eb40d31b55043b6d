/// Settings of the time-based alerts (CONTRACT §5: "documented, configurable").
public struct AlertSettings: Sendable, Hashable {
    /// SPENDING_SPIKE: the recent window, in whole clock hours (the current hour so far and the
    /// hours before it).
    public var spikeWindowHours: Int = 1
    /// SPENDING_SPIKE: how many previous days' same window make the baseline (their mean).
    public var spikeBaselineDays: Int = 7
    /// SPENDING_SPIKE: the recent window must exceed the baseline by this factor, in percent (300 = 3×).
    public var spikeFactorPercent: Int = 300
    /// SPENDING_SPIKE: and be at least this amount (in the budget's currency), so small budgets are not noisy.
    public var spikeMinAmount: Money = Money(nanos: 10 * Money.nanosPerUnit)
    /// LOW_BUDGET: how long a period must have run before its burn rate is trusted, in hours.
    /// 0 by default: §5 and §6 define the burn rate from the period's first day (spent ÷
    /// max(1, days)), so a budget can run low on its first day; 24 waits a day.
    public var lowBudgetMinElapsedHours: Int = 0

    public init() {}

    static let nanosPerHour: Int64 = 3_600 * 1_000_000_000
}

/// One hour of one history key: a budget id, or "budget/allocation".
public struct HistoryBucket: Sendable, Hashable {
    public var key: String
    public var hour: Int64
    public init(key: String, hour: Int64) {
        self.key = key
        self.hour = hour
    }
}

/// Spend per clock hour (by the cost's time), sparse, for spike windows. Pure value type.
public struct HourlySpend: Sendable, Hashable {
    var buckets: [Int64: Money] = [:]

    public init() {}

    /// The clock hour of an instant, counted from 1970.
    public static func hour(_ t: Timestamp) -> Int64 {
        // Floor division without `n − nanosPerHour + 1`, which overflowed for instants within an
        // hour of Timestamp.min (a cost dated 1677-09-21 stopped the daemon).
        Timestamp.floorDivide(t.nanosecondsSinceEpoch, AlertSettings.nanosPerHour).quotient
    }

    public mutating func add(_ amount: Money, at t: Timestamp) {
        buckets[Self.hour(t), default: .zero] += amount
    }

    /// Spend in the `hours` clock hours ending with hour `last` (inclusive).
    public func sum(endingAt last: Int64, hours: Int) -> Money {
        var total = Money.zero
        for h in (last - Int64(hours) + 1)...last { total += buckets[h] ?? .zero }
        return total
    }

    /// The spend of one clock hour.
    public func amount(hour: Int64) -> Money { buckets[hour] ?? .zero }

    /// Forgets hours before `hour`.
    public mutating func prune(before hour: Int64) {
        buckets = buckets.filter { $0.key >= hour }
    }
}

extension Ledger {
    /// Records a cost's time in the spend history of a budget and its ancestors (and their
    /// matching allocations), as booking counts it. Also used to rebuild history at start.
    public mutating func recordHistory(amount: Money, budgetId: String, platform: String, serviceType: ServiceType, at time: Timestamp) {
        let ids = chain(from: budgetId)
        let allocations = ids.map { id in
            budgets[id].flatMap { b in b.allocationIndex(platform: platform, serviceType: serviceType).map { b.allocations[$0].id } }
        }
        recordHistory(amount: amount, chain: ids, allocations: allocations, at: time)
    }

    /// The same for a chain whose matching allocations are known (`book` found them).
    mutating func recordHistory(amount: Money, chain ids: [String], allocations: [String?], at time: Timestamp) {
        let hour = HourlySpend.hour(time)
        for (id, allocationId) in zip(ids, allocations) {
            history[id, default: HourlySpend()].add(amount, at: time)
            changedHistory.insert(HistoryBucket(key: id, hour: hour))
            if let allocationId {
                let key = Self.allocationKey(id, allocationId)
                history[key, default: HourlySpend()].add(amount, at: time)
                changedHistory.insert(HistoryBucket(key: key, hour: hour))
            }
        }
    }

    /// The history buckets changed since the last call, with their amounts now: what the
    /// caller persists (`spend_history`) so a restart restores the spike windows without
    /// reading every recent cost.
    public mutating func takeChangedHistory() -> [(bucket: HistoryBucket, amount: Money)] {
        defer { changedHistory = [] }
        return changedHistory.map { ($0, history[$0.key]?.amount(hour: $0.hour) ?? .zero) }
    }

    /// Sets one bucket of the history, as persisted (at start).
    public mutating func restoreHistory(_ bucket: HistoryBucket, amount: Money) {
        history[bucket.key, default: HourlySpend()].buckets[bucket.hour] = amount
    }

    /// Every bucket of the history (to persist it once, after rebuilding it from costs).
    public var historyBuckets: [(bucket: HistoryBucket, amount: Money)] {
        history.flatMap { key, spend in spend.buckets.map { (HistoryBucket(key: key, hour: $0.key), $0.value) } }
    }

    /// The first hour the spike windows need at `now`; older history is dropped.
    public func historyKeptFrom(_ now: Timestamp) -> Int64 {
        HourlySpend.hour(now) - Int64(settings.spikeBaselineDays + 1) * 24 - Int64(settings.spikeWindowHours)
    }

    static func allocationKey(_ budgetId: String, _ allocationId: String) -> String { budgetId + "/" + allocationId }

    /// Remembers a spike alert raised before a restart, so it is not raised again in the same window.
    public mutating func rememberSpike(budgetId: String, allocationId: String?, at time: Timestamp) {
        let key = allocationId.map { Self.allocationKey(budgetId, $0) } ?? budgetId
        lastSpikeHour[key] = max(lastSpikeHour[key] ?? .min, HourlySpend.hour(time))
    }

    /// Drops history older than the baseline needs.
    public mutating func pruneHistory(at now: Timestamp) {
        let keep = historyKeptFrom(now)
        for key in history.keys { history[key]!.prune(before: keep) }
    }

    /// SPENDING_SPIKE for a budget (allocation nil) or one of its allocations: spend in the recent
    /// window against the mean of the same window on the previous days of the period.
    mutating func spike(_ b: Budget, allocation: Allocation?, eventId: String?, at now: Timestamp) -> OutboundMessage? {
        let key = allocation.map { Self.allocationKey(b.id, $0.id) } ?? b.id
        guard let spend = history[key] else { return nil }
        let s = settings
        let current = HourlySpend.hour(now)
        if let last = lastSpikeHour[key], current < last + Int64(s.spikeWindowHours) { return nil }
        let recent = spend.sum(endingAt: current, hours: s.spikeWindowHours)
        guard recent >= s.spikeMinAmount, recent > .zero else { return nil }
        // Only days whose window lies inside the period count: a new budget has no baseline yet.
        let firstHour = HourlySpend.hour(b.period.start)
        var days = 0
        var baselineTotal = Money.zero
        for k in 1...max(1, s.spikeBaselineDays) {
            let end = current - Int64(k) * 24
            if end - Int64(s.spikeWindowHours) + 1 < firstHour { break }
            baselineTotal += spend.sum(endingAt: end, hours: s.spikeWindowHours)
            days += 1
        }
        guard days > 0 else { return nil }
        // No spend at all before the window (a budget's first use) is not a spike: there is no
        // baseline to be far above.
        let windowStart = current - Int64(s.spikeWindowHours) + 1
        let horizon = windowStart - Int64(days) * 24
        guard spend.buckets.keys.contains(where: { $0 < windowStart && $0 >= horizon }) else { return nil }
        // recent > factor × (baselineTotal ÷ days)  ⇔  recent × days × 100 > factor × baselineTotal
        let lhs = recent.nanos * Int128(days) * 100
        let rhs = Int128(s.spikeFactorPercent) * baselineTotal.nanos
        guard lhs > rhs else { return nil }
        lastSpikeHour[key] = current
        let baseline = Money(nanos: baselineTotal.nanos / Int128(days))
        let seq = nextSeq()
        let what = allocation.map { "\(b.name): allocation \($0.platform)/\($0.serviceType.rawValue)" } ?? b.name
        let window = s.spikeWindowHours == 1 ? "the last hour" : "the last \(s.spikeWindowHours) hours"
        var record = AlertRecord(
            id: "a_\(seq)", seq: seq, type: .spendingSpike, budgetId: b.id, budgetName: b.name,
            platform: allocation?.platform, serviceType: allocation?.serviceType, threshold: nil,
            spentPercentage: b.spentPercentage, spentAmount: b.spentAmount, totalAmount: b.totalAmount,
            currency: b.currency, triggeredAt: now, eventId: eventId,
            message: "\(what): spending spike, \(recent.displayString) \(b.currency) in \(window) against a baseline of \(baseline.displayString) \(b.currency) (mean of the previous \(days) day\(days == 1 ? "" : "s"))"
        )
        if let a = allocation {
            record.spentAmount = a.spentAmount
            record.totalAmount = a.allocatedAmount
            record.spentPercentage = a.allocatedAmount > .zero ? a.spentAmount.percentage(of: a.allocatedAmount) : "0"
        }
        record.windowAmount = recent
        record.baselineAmount = baseline
        return .alert(record)
    }

    /// LOW_BUDGET: at the current burn rate the budget runs out before its end; once per period.
    mutating func lowBudget(_ b: inout Budget, eventId: String?, at now: Timestamp) -> OutboundMessage? {
        guard !b.isUnlimited, !b.fired.contains(.lowBudget), let end = b.period.endExclusive, end > now,
              b.spentAmount > .zero, b.spentAmount < b.totalAmount,
              now - b.period.start >= Int64(settings.lowBudgetMinElapsedHours) * AlertSettings.nanosPerHour
        else { return nil }
        let remaining = b.totalAmount - b.spentAmount
        let (product, overflow) = remaining.nanos.multipliedReportingOverflow(by: b.burnElapsed(at: now))
        guard !overflow else { return nil }
        // ⌊product ÷ spent⌋ < end − now  ⇔  product < (end − now) × spent (spent > 0): the
        // common case, a budget that lasts, without a 128-bit division for every booking (a
        // product past Int128 is past any product too).
        let (limit, limitOverflow) = Int128(end - now).multipliedReportingOverflow(by: b.spentAmount.nanos)
        guard limitOverflow || product < limit else { return nil }
        let untilEmpty = product / b.spentAmount.nanos
        let exhaustion = now.adding(nanoseconds: Int64(untilEmpty))
        b.fired.insert(.lowBudget)
        let seq = nextSeq()
        let rate = b.burnRate(at: now)
        return .alert(AlertRecord(
            id: "a_\(seq)", seq: seq, type: .lowBudget, budgetId: b.id, budgetName: b.name, threshold: nil,
            spentPercentage: b.spentPercentage, spentAmount: b.spentAmount, totalAmount: b.totalAmount,
            currency: b.currency, triggeredAt: now, eventId: eventId,
            message: "\(b.name) will run out around \(exhaustion.rfc3339) at its burn rate of \(rate.displayString) \(b.currency)/day, before its period ends on \(b.period.endSpec?.description ?? end.rfc3339)",
            projectedExhaustion: exhaustion
        ))
    }
}
