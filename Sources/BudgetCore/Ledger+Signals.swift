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
    /// SPENDING_SPIKE for an allocation too (with its platform and serviceType), not only for the
    /// budget. Off by default: CONTRACT §5 sets `platform`/`serviceType` only for
    /// ALLOCATION_DEPLETED and UNPRICED_USAGE, and a subscriber counting spikes would see two for
    /// one cost (the budget's and its allocation's).
    public var allocationSpikes = false

    public init() {}

    static let nanosPerHour: Int64 = 3_600 * 1_000_000_000
}

/// The spike check's baseline for one history key in hour `current` (`HourlySpend.baseline`).
struct SpikeBaseline: Sendable, Equatable {
    var current: Int64
    var firstHour: Int64
    var windowHours: Int
    var baselineDays: Int
    var total: Money
    var days: Int
    /// Some hour between the baseline's first and the recent window has spend.
    var spendBefore: Bool
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
public struct HourlySpend: Sendable {
    var buckets: [Int64: Money] = [:]
    /// Hours changed since the ledger last took them (`Ledger.takeChangedHistory`): kept here,
    /// with the spend, rather than in a set of (key, hour) that hashed the key again for every
    /// cost (issue 8).
    var changedHours: [Int64] = []
    /// The spike check's baseline as last computed (`spikeFigures`), for the next cost in the
    /// same hour: it reads only hours before the current one, so a cost in the current hour
    /// keeps it; any change to an earlier hour, a prune or a restore drops it (issue 8: a
    /// budget spending over `spikeMinAmount` an hour read the baseline days' hours again for
    /// every cost, eight lookups for the budget and eight for its allocation).
    var baseline: SpikeBaseline?

    public init() {}

    /// The clock hour of an instant, counted from 1970.
    public static func hour(_ t: Timestamp) -> Int64 {
        // Floor division without `n − nanosPerHour + 1`, which overflowed for instants within an
        // hour of Timestamp.min (a cost dated 1677-09-21 stopped the daemon).
        Timestamp.floorDivide(t.nanosecondsSinceEpoch, AlertSettings.nanosPerHour).quotient
    }

    /// Adds `amount` to `hour` and marks the hour changed; returns whether this key had no
    /// changed hour before (its key is then to be listed as changed).
    mutating func add(_ amount: Money, hour: Int64) -> Bool {
        buckets[hour, default: .zero] += amount
        if let b = baseline, hour < b.current { baseline = nil }
        if changedHours.contains(hour) { return false }
        changedHours.append(hour)
        return changedHours.count == 1
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
        baseline = nil
    }

    /// Sets one hour's spend, as persisted (at start).
    mutating func restore(hour: Int64, amount: Money) {
        buckets[hour] = amount
        baseline = nil
    }

    /// Whether this key is in a spike in hour `current` (SPENDING_SPIKE's rules but the
    /// once-per-window one): the recent window's spend, the baseline days' total and their
    /// number, counting only days whose window lies after `firstHour` (the period's start).
    mutating func spikeFigures(current: Int64, firstHour: Int64, settings s: AlertSettings) -> (recent: Money, baselineTotal: Money, days: Int)? {
        let recent = sum(endingAt: current, hours: s.spikeWindowHours)
        guard recent >= s.spikeMinAmount, recent > .zero else { return nil }
        let b: SpikeBaseline
        if let cached = baseline, cached.current == current, cached.firstHour == firstHour,
           cached.windowHours == s.spikeWindowHours, cached.baselineDays == s.spikeBaselineDays {
            b = cached
        } else {
            b = computeBaseline(current: current, firstHour: firstHour, settings: s)
            baseline = b
        }
        // No day in the period yet; or no spend at all before the window (a budget's first use)
        // is not a spike: there is no baseline to be far above.
        guard b.days > 0, b.spendBefore else { return nil }
        // recent > factor × (baselineTotal ÷ days)  ⇔  recent × days × 100 > factor × baselineTotal
        let lhs = recent.nanos * Int128(b.days) * 100
        let rhs = Int128(s.spikeFactorPercent) * b.total.nanos
        guard lhs > rhs else { return nil }
        return (recent, b.total, b.days)
    }

    /// The baseline days' total and number, and whether any hour of them has spend.
    func computeBaseline(current: Int64, firstHour: Int64, settings s: AlertSettings) -> SpikeBaseline {
        var days = 0
        var total = Money.zero
        for k in 1...max(1, s.spikeBaselineDays) {
            let end = current - Int64(k) * 24
            if end - Int64(s.spikeWindowHours) + 1 < firstHour { break }
            total += sum(endingAt: end, hours: s.spikeWindowHours)
            days += 1
        }
        let windowStart = current - Int64(s.spikeWindowHours) + 1
        let horizon = windowStart - Int64(days) * 24
        let spendBefore = days > 0 && buckets.keys.contains { $0 < windowStart && $0 >= horizon }
        return SpikeBaseline(
            current: current, firstHour: firstHour, windowHours: s.spikeWindowHours, baselineDays: s.spikeBaselineDays,
            total: total, days: days, spendBefore: spendBefore
        )
    }
}

/// A budget's history place and its allocations' (by allocation index), kept by routing
/// position while `insertions` is `Ledger.historyInsertions` (`Ledger.recordHistory`).
struct HistoryPlaceCache {
    var insertions: Int
    var budget: Dictionary<String, HourlySpend>.Index
    var allocations: [Dictionary<String, HourlySpend>.Index?] = []
}

/// A budget's and its matching allocation's places in `Ledger.history` after a cost was
/// recorded, for the spike check of the same booking.
struct HistoryPlaces {
    var budget: Dictionary<String, HourlySpend>.Index
    var allocation: Dictionary<String, HourlySpend>.Index?
}

extension Ledger {
    /// Records a cost's time in the spend history of a budget and its ancestors (and their
    /// matching allocations), as booking counts it. Also used to rebuild history at start.
    public mutating func recordHistory(amount: Money, budgetId: String, platform: String, serviceType: ServiceType, at time: Timestamp) {
        for id in chain(from: budgetId) {
            let allocationKey = budgets[id].flatMap { b in
                b.allocationIndex(platform: platform, serviceType: serviceType).map { b.allocations[$0].historyKey }
            }
            recordHistory(amount: amount, budgetId: id, allocationKey: allocationKey, at: time)
        }
    }

    /// The same for one budget and the history key of its matching allocation (`book` found it:
    /// `Allocation.historyKey`, the allocation's index `allocationIndex`), if any.
    /// Returns the keys' places in `history` as of its return (`HistoryPlaces`).
    ///
    /// `candidate`: the budget's routing position (`RouteTarget`), under which the places are
    /// kept for its next costs (`historyPlaceCache`), so that a budget's costs do not hash its
    /// two history keys each time (issue 8: two of a cost's seven String-keyed lookups).
    @discardableResult
    mutating func recordHistory(
        amount: Money, budgetId: String, allocationKey: String?, allocationIndex: Int? = nil, at time: Timestamp,
        candidate: Int? = nil
    ) -> HistoryPlaces {
        let hour = HourlySpend.hour(time)
        let cached = candidate.flatMap { cachedHistoryPlaces($0, budgetId: budgetId, allocationKey: allocationKey, allocationIndex: allocationIndex) }
        if let cached, allocationKey == nil || cached.allocation != nil {
            add(amount, at: cached.budget, hour: hour)
            if let a = cached.allocation { add(amount, at: a, hour: hour) }
            return cached
        }
        var budget = cached?.budget ?? record(amount, key: budgetId, hour: hour)
        if cached != nil { add(amount, at: budget, hour: hour) }
        let insertions = historyInsertions
        let allocation = allocationKey.map { record(amount, key: $0, hour: hour) }
        // The allocation's key was new: the budget's place went with the insertion.
        if historyInsertions != insertions { budget = history.index(forKey: budgetId)! }
        let places = HistoryPlaces(budget: budget, allocation: allocation)
        if let candidate { keepHistoryPlaces(places, candidate: candidate, allocationIndex: allocationIndex) }
        return places
    }

    /// The places kept for routing position `candidate` (with that of its allocation
    /// `allocationIndex` when kept, else nil), if still valid (no key added to the history
    /// since) and still this budget's and allocation's keys (its allocations may have changed
    /// since: the keys are compared, which for the very strings the table holds is a
    /// comparison of their storage).
    private func cachedHistoryPlaces(_ candidate: Int, budgetId: String, allocationKey: String?, allocationIndex: Int?) -> HistoryPlaces? {
        guard candidate < historyPlaceCache.count, let entry = historyPlaceCache[candidate],
              entry.insertions == historyInsertions, history.keys[entry.budget] == budgetId else { return nil }
        var places = HistoryPlaces(budget: entry.budget, allocation: nil)
        if let key = allocationKey, let i = allocationIndex, i < entry.allocations.count, let place = entry.allocations[i],
           history.keys[place] == key {
            places.allocation = place
        }
        return places
    }

    /// Keeps a booking's places for the budget's next costs (`cachedHistoryPlaces`).
    private mutating func keepHistoryPlaces(_ places: HistoryPlaces, candidate: Int, allocationIndex: Int?) {
        if candidate >= historyPlaceCache.count {
            historyPlaceCache += repeatElement(nil, count: candidate - historyPlaceCache.count + 1)
        }
        // A stale entry (a key was added to the history since) is started afresh.
        var entry = historyPlaceCache[candidate].flatMap { $0.insertions == historyInsertions ? $0 : nil }
            ?? HistoryPlaceCache(insertions: historyInsertions, budget: places.budget)
        entry.budget = places.budget
        if let i = allocationIndex, let place = places.allocation {
            if i >= entry.allocations.count { entry.allocations += repeatElement(nil, count: i - entry.allocations.count + 1) }
            entry.allocations[i] = place
        }
        historyPlaceCache[candidate] = entry
    }

    /// Adds `amount` to the hour of the key at `place` in `history`.
    private mutating func add(_ amount: Money, at place: Dictionary<String, HourlySpend>.Index, hour: Int64) {
        if history.values[place].add(amount, hour: hour) { changedHistoryKeys.append(history.keys[place]) }
    }

    /// Adds `amount` to `key`'s hour; returns the key's place in `history`.
    private mutating func record(_ amount: Money, key: String, hour: Int64) -> Dictionary<String, HourlySpend>.Index {
        let place: Dictionary<String, HourlySpend>.Index
        if let found = history.index(forKey: key) {
            place = found
        } else {
            history[key] = HourlySpend()
            historyInsertions += 1
            place = history.index(forKey: key)!
        }
        add(amount, at: place, hour: hour)
        return place
    }

    /// The history buckets changed since the last call, with their amounts now: what the
    /// caller persists (`spend_history`) so a restart restores the spike windows without
    /// reading every recent cost.
    public mutating func takeChangedHistory() -> [(bucket: HistoryBucket, amount: Money)] {
        var changed: [(bucket: HistoryBucket, amount: Money)] = []
        for key in changedHistoryKeys {
            guard let slot = history.index(forKey: key) else { continue }
            for hour in history.values[slot].changedHours {
                changed.append((HistoryBucket(key: key, hour: hour), history.values[slot].amount(hour: hour)))
            }
            history.values[slot].changedHours = []
        }
        changedHistoryKeys = []
        return changed
    }

    /// Sets one bucket of the history, as persisted (at start).
    public mutating func restoreHistory(_ bucket: HistoryBucket, amount: Money) {
        if history[bucket.key] == nil { historyInsertions += 1 }
        history[bucket.key, default: HourlySpend()].restore(hour: bucket.hour, amount: amount)
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

    /// Whether history key `key` (a budget's, or "budget/allocation") is in a spike at `now`,
    /// and if so its window's spend, the baseline days' total and their number. Reads only the
    /// history and settings (and keeps the key's baseline for the next cost: `HourlySpend`):
    /// `evaluate` asks it before copying a budget out of the table.
    ///
    /// `place`: `key`'s place in `history`, when the caller has it (valid: `historyInsertions`).
    mutating func spikeFigures(
        key: String, place: Dictionary<String, HourlySpend>.Index? = nil, periodStart: Timestamp, at now: Timestamp
    ) -> (recent: Money, baselineTotal: Money, days: Int)? {
        guard let place = place ?? history.index(forKey: key) else { return nil }
        let s = settings
        let current = HourlySpend.hour(now)
        // In place (a mutating call through the table's values: a read copied the spend).
        guard let figures = history.values[place].spikeFigures(current: current, firstHour: HourlySpend.hour(periodStart), settings: s) else {
            return nil
        }
        // Once per window (checked last: the other conditions rarely all hold, and this one
        // cost a lookup of the key for every cost).
        if let last = lastSpikeHour[key], current < last + Int64(s.spikeWindowHours) { return nil }
        return figures
    }

    /// SPENDING_SPIKE for a budget (allocation nil) or one of its allocations: spend in the recent
    /// window against the mean of the same window on the previous days of the period.
    mutating func spike(_ b: Budget, allocation: Allocation?, eventId: String?, at now: Timestamp) -> OutboundMessage? {
        let key = allocation?.historyKey ?? b.id
        guard let (recent, baselineTotal, days) = spikeFigures(key: key, periodStart: b.period.start, at: now) else { return nil }
        let s = settings
        let current = HourlySpend.hour(now)
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
        guard let exhaustion = b.lowBudgetExhaustion(settings: settings, at: now), let end = b.period.endExclusive else { return nil }
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

extension Budget {
    /// When LOW_BUDGET is due (not fired this period, spent and burning so that it runs out
    /// before the period ends, at least `lowBudgetMinElapsedHours` into it): the projected
    /// exhaustion; nil otherwise.
    func lowBudgetExhaustion(settings: AlertSettings, at now: Timestamp) -> Timestamp? {
        guard !isUnlimited, !fired.contains(.lowBudget), let end = period.endExclusive, end > now,
              spentAmount > .zero, spentAmount < totalAmount,
              now - period.start >= Int64(settings.lowBudgetMinElapsedHours) * AlertSettings.nanosPerHour
        else { return nil }
        let remaining = totalAmount - spentAmount
        let (product, overflow) = Self.multiplied(remaining.nanos, burnElapsed(at: now))
        guard !overflow else { return nil }
        // ⌊product ÷ spent⌋ < end − now  ⇔  product < (end − now) × spent (spent > 0): the
        // common case, a budget that lasts, without a 128-bit division for every booking (a
        // product past Int128 is past any product too).
        let (limit, limitOverflow) = Self.multiplied(Int128(end - now), spentAmount.nanos)
        guard limitOverflow || product < limit else { return nil }
        let untilEmpty = product / spentAmount.nanos
        return now.adding(nanoseconds: Int64(untilEmpty))
    }

    /// a × b, and whether it overflowed. Two factors under 2⁶³ in magnitude (every amount and
    /// duration a budget has in practice) cannot overflow, and are multiplied without the
    /// general check (`multipliedReportingOverflow` on Int128 cost ~400 instructions; this runs
    /// twice for every cost).
    static func multiplied(_ a: Int128, _ b: Int128) -> (Int128, overflow: Bool) {
        let small: UInt128 = 1 << 63
        if a.magnitude < small && b.magnitude < small { return (a &* b, false) }
        return a.multipliedReportingOverflow(by: b)
    }

    /// Whether a threshold, BUDGET_EXCEEDED, ALLOCATION_DEPLETED (of allocation `allocationIndex`,
    /// or of any when nil) or LOW_BUDGET is due: what `Ledger.evaluate` fires, but for spikes.
    func hasAlertDue(allocationIndex: Int?, settings: AlertSettings, at now: Timestamp) -> Bool {
        for type in AlertType.thresholds where isThresholdDue(type) { return true }
        if isExceededDue { return true }
        if let i = allocationIndex {
            if allocations[i].isDepletedUnfired { return true }
        } else if allocations.contains(where: \.isDepletedUnfired) {
            return true
        }
        return lowBudgetExhaustion(settings: settings, at: now) != nil
    }

    /// A threshold alert (80, 90, 100 %) enabled, not fired this period, and reached. Never for
    /// UNLIMITED.
    func isThresholdDue(_ type: AlertType) -> Bool {
        guard !isUnlimited, let percent = type.thresholdPercent, isEnabled(type), !fired.contains(type) else { return false }
        return spentAmount.reaches(percent: percent, of: totalAmount)
    }

    /// BUDGET_EXCEEDED not fired this period, and spent over the total. Never for UNLIMITED.
    var isExceededDue: Bool { !isUnlimited && !fired.contains(.budgetExceeded) && spentAmount > totalAmount }

    /// `hasAlertDue` run on a budget in place (mutating only so that a budget in a dictionary is
    /// not copied out of it: `addToAllocation`), with what `evaluate` needs for the spike check.
    mutating func quietCheck(allocationIndex: Int?, settings: AlertSettings, at now: Timestamp) -> (due: Bool, periodStart: Timestamp, allocationKey: String?, cancelled: Bool) {
        (
            hasAlertDue(allocationIndex: allocationIndex, settings: settings, at: now), period.start,
            allocationIndex.map { allocations[$0].historyKey }, status == .cancelled
        )
    }
}

extension Allocation {
    /// ALLOCATION_DEPLETED is due: spent reached what was allocated and it has not fired.
    var isDepletedUnfired: Bool { !depletedFired && spentAmount > .zero && spentAmount >= allocatedAmount }
}
