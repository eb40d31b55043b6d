// `analytics` (CONTRACT §6): totals over budgets, counts, top platforms and a monthly trend.
// Pure: the engine reads the daily rollup and passes it in; nothing here scans costs.

/// One row of the daily spend rollup: what a budget spent on one UTC day, platform and service.
/// A cost counts in its budget and in each ancestor, as in the budgets' own totals.
public struct DaySpend: Sendable, Hashable {
    public var budgetId: String
    public var day: CivilDate
    public var platform: String
    public var serviceType: ServiceType
    public var amount: Money

    public init(budgetId: String, day: CivilDate, platform: String, serviceType: ServiceType, amount: Money) {
        self.budgetId = budgetId
        self.day = day
        self.platform = platform
        self.serviceType = serviceType
        self.amount = amount
    }
}

/// What `analytics` covers: one currency and an optional range of instants.
public struct AnalyticsQuery: Sendable, Hashable {
    /// Only budgets in this currency are covered.
    public var currency: String
    /// The first instant of the range; nil: from the beginning.
    public var from: Timestamp?
    /// The first instant after the range; nil: to the end of time.
    public var toExclusive: Timestamp?

    public init(currency: String = "USD", from: Timestamp? = nil, toExclusive: Timestamp? = nil) {
        self.currency = currency
        self.from = from
        self.toExclusive = toExclusive
    }

    /// Reads `startDate?`, `endDate?` (an end day includes its whole day) and `currency?` (default USD).
    public init(_ args: Args) throws(LedgerError) {
        currency = try Ledger.currency(args) ?? "USD"
        from = try args.dateSpec("startDate")?.startInstant
        toExclusive = try args.dateSpec("endDate")?.endExclusive
        if let from, let toExclusive, toExclusive <= from {
            throw LedgerError(.validationFailed, "endDate must not be before startDate")
        }
    }

    /// The first UTC day of the rollup to read (the rollup is per day: a range that starts
    /// mid-day takes that whole day).
    public var fromDay: CivilDate? { from?.civilDate }

    /// The last UTC day of the rollup to read.
    public var toDay: CivilDate? { toExclusive.map { $0.adding(nanoseconds: -1).civilDate } }

    /// Whether a period overlaps the range.
    func overlaps(_ p: Period) -> Bool {
        if let toExclusive, p.start >= toExclusive { return false }
        if let from, let end = p.endExclusive, end <= from { return false }
        return true
    }
}

/// The budgets an `analytics` request covers.
public struct AnalyticsScope: Sendable {
    /// Budgets in the currency whose period overlaps the range, oldest first.
    public var selected: [Budget]
    /// The selected budgets none of whose ancestors is selected: summing over these counts each
    /// cost once. Without a range these are exactly the budgets without a parent.
    public var tops: [Budget]
    /// Every budget's parent (selected or not), for walking a selected budget's ancestors past
    /// those outside the range.
    public var parents: [String: String] = [:]

    /// The ids whose rollup rows the report needs.
    public var topIds: [String] { tops.map(\.id) }
}

/// `analytics`' result (the original design's fields, CONTRACT §6).
public struct AnalyticsReport: Sendable, Hashable {
    /// One entry of `topSpendingPlatforms`.
    public struct PlatformSpend: Sendable, Hashable {
        public var platform: String
        public var totalSpent: Money
    }

    /// One entry of `monthlyTrend`.
    public struct MonthSpend: Sendable, Hashable {
        /// `YYYY-MM`.
        public var month: String
        public var totalSpent: Money
        /// Percentage text with at most two decimals.
        public var budgetUtilization: String
    }

    /// The currency every amount is in (the query's).
    public var currency: String
    public var totalBudgets: Int
    public var activeBudgets: Int
    public var totalAllocated: Money
    public var totalSpent: Money
    public var totalRemaining: Money
    /// Percentage text with at most two decimals.
    public var averageSpentPercentage: String
    public var budgetsExceeded: Int
    public var budgetsNearLimit: Int
    public var topSpendingPlatforms: [PlatformSpend]
    public var monthlyTrend: [MonthSpend]

    /// The reply of `analytics`: amounts and percentages as JSON numbers.
    public var json: JSONValue {
        .object(JSONObject([
            ("currency", .string(currency)),
            ("totalBudgets", .number(totalBudgets)), ("activeBudgets", .number(activeBudgets)),
            ("totalAllocated", .number(totalAllocated)), ("totalSpent", .number(totalSpent)),
            ("totalRemaining", .number(totalRemaining)),
            ("averageSpentPercentage", .number(averageSpentPercentage)),
            ("budgetsExceeded", .number(budgetsExceeded)), ("budgetsNearLimit", .number(budgetsNearLimit)),
            ("topSpendingPlatforms", .array(topSpendingPlatforms.map { p in
                .object(JSONObject([("platform", .string(p.platform)), ("totalSpent", .number(p.totalSpent))]))
            })),
            ("monthlyTrend", .array(monthlyTrend.map { m in
                .object(JSONObject([
                    ("month", .string(m.month)), ("totalSpent", .number(m.totalSpent)),
                    ("budgetUtilization", .number(m.budgetUtilization)),
                ]))
            })),
        ]))
    }
}

/// The arithmetic of `analytics`.
///
/// - Budgets: those in the requested currency whose period overlaps the range (all of them
///   without a range), in any status. Counts (`totalBudgets`, `activeBudgets`,
///   `budgetsExceeded`, `budgetsNearLimit`) and `averageSpentPercentage` are over every such
///   budget, children included: a child near its limit is worth knowing about.
/// - Amounts are summed over the *tops* (selected budgets with no selected ancestor), so a cost
///   that counts in a child and its parent is summed once.
/// - UNLIMITED budgets have no total: they are left out of `totalAllocated`, `totalRemaining`,
///   the percentages, `budgetsExceeded` and `budgetsNearLimit`, and out of the denominator of
///   `budgetUtilization`; their spend counts in `totalSpent`, `topSpendingPlatforms` and each
///   month's `totalSpent`, which is `budgetUtilization`'s numerator (CONTRACT §6: "a month's
///   spend ÷ the totals of the budgets that overlap that month × 100").
/// - `totalSpent` is the tops' running totals (their whole periods); `topSpendingPlatforms` and
///   `monthlyTrend` come from the daily rollup restricted to the range's days.
public enum Analytics {
    /// Which budgets a query covers.
    public static func scope(_ budgets: [Budget], _ query: AnalyticsQuery) -> AnalyticsScope {
        let selected = budgets.filter { $0.currency == query.currency && query.overlaps($0.period) }
        var byId: [String: Budget] = [:]
        for b in selected { byId[b.id] = b }
        let all = Dictionary(budgets.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let tops = selected.filter { b in
            // Walk the ancestors (guarded against a cycle, which creation refuses anyway).
            var seen: Set<String> = [b.id]
            var current = b.parentId
            while let id = current, seen.insert(id).inserted {
                if byId[id] != nil { return false }
                current = all[id]?.parentId
            }
            return true
        }
        var parents: [String: String] = [:]
        for b in budgets { if let p = b.parentId { parents[b.id] = p } }
        return AnalyticsScope(selected: selected, tops: tops, parents: parents)
    }

    /// The report, from the scope and the rollup rows of its tops within the range's days.
    /// Rows of other budgets are ignored.
    public static func report(_ scope: AnalyticsScope, daily: [DaySpend], query: AnalyticsQuery) -> AnalyticsReport {
        let limited = scope.selected.filter { !$0.isUnlimited && $0.totalAmount > .zero }
        let limitedTops = scope.tops.filter { !$0.isUnlimited && $0.totalAmount > .zero }
        let topIds = Set(scope.topIds)

        var totalSpent = Money.zero
        for b in scope.tops { totalSpent += b.spentAmount }
        var totalAllocated = Money.zero
        var totalRemaining = Money.zero
        for b in limitedTops {
            totalAllocated += b.totalAmount
            totalRemaining += b.totalAmount - b.spentAmount
        }

        // The mean of the spent ÷ total ratios, rounded once to two decimals, half-even (§6). Each
        // ratio is kept to 1e-18, not rounded: kept to 1e-9 (rounded) and then rounded again, a
        // mean of 12.3749999999999…% came out 12.38.
        let average = limited.isEmpty ? "0" : Self.meanPercentage(limited.map { ($0.spentAmount, $0.totalAmount) })

        // Platforms compare case-insensitively, as allocations do; the spelling that carries the
        // most spend is shown (ties: the first in string order), whatever the rows' order.
        var platforms: [String: [String: Money]] = [:]
        var months: [String: Money] = [:]
        var firstMonth: CivilDate?
        var lastMonth: CivilDate?
        for row in daily where topIds.contains(row.budgetId) {
            platforms[row.platform.lowercased(), default: [:]][row.platform, default: .zero] += row.amount
            let month = CivilDate(year: row.day.year, month: row.day.month, day: 1)!
            let text = month.monthString
            months[text, default: .zero] += row.amount
            if firstMonth.map({ month < $0 }) ?? true { firstMonth = month }
            if lastMonth.map({ month > $0 }) ?? true { lastMonth = month }
        }
        var top: [AnalyticsReport.PlatformSpend] = []
        for spellings in platforms.values {
            var name = ""
            // No floor: a platform whose credits outweigh its spend nets below zero, and was
            // named "" (an audit) when the best was taken from −1 nano-unit.
            var best: Money?
            var total = Money.zero
            for (spelling, amount) in spellings {
                total += amount
                if best.map({ amount > $0 || (amount == $0 && spelling < name) }) ?? true { (name, best) = (spelling, amount) }
            }
            top.append(AnalyticsReport.PlatformSpend(platform: name, totalSpent: total))
        }
        top.sort { a, b in a.totalSpent != b.totalSpent ? a.totalSpent > b.totalSpent : a.platform < b.platform }

        let selectedById = Dictionary(scope.selected.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // Every month from the first with spend to the last, gaps included (with zero spend).
        var trend: [AnalyticsReport.MonthSpend] = []
        if var month = firstMonth, let last = lastMonth {
            while month <= last {
                let next = month.addingMonths(1)
                let spend = months[month.monthString] ?? .zero
                // The totals of the limited budgets overlapping the month, each counted once: a
                // budget whose limited ancestor overlaps it too is inside that one's total. (Tops
                // alone left out a child whose period runs past its parent's: its month's spend,
                // in the parent's rollup, over a total of 0, showed as 0 %.) Every ancestor is
                // looked at, past those the range leaves out (the walk stopped at the first such
                // parent, and a grandchild's total was added to its grandparent's: an audit).
                let (from, to) = (month.startInstant, next.startInstant)
                var totals = Money.zero
                for b in limited where overlaps(b.period, from: from, toExclusive: to) {
                    var parent = b.parentId
                    var covered = false
                    var steps = 0  // parents form no cycle (refused); bounded all the same
                    while let id = parent, !covered, steps <= scope.parents.count {
                        if let a = selectedById[id] {
                            covered = !a.isUnlimited && a.totalAmount > .zero && overlaps(a.period, from: from, toExclusive: to)
                        }
                        parent = scope.parents[id]
                        steps += 1
                    }
                    if !covered { totals += b.totalAmount }
                }
                trend.append(AnalyticsReport.MonthSpend(
                    month: month.monthString, totalSpent: spend,
                    budgetUtilization: totals > .zero ? spend.percentage(of: totals) : "0"
                ))
                month = next
            }
        }

        return AnalyticsReport(
            currency: query.currency,
            totalBudgets: scope.selected.count,
            activeBudgets: scope.selected.count(where: { $0.status == .active }),
            totalAllocated: totalAllocated, totalSpent: totalSpent, totalRemaining: totalRemaining,
            averageSpentPercentage: average,
            budgetsExceeded: limited.count(where: { $0.spentAmount > $0.totalAmount }),
            budgetsNearLimit: limited.count(where: { $0.spentAmount.reaches(percent: 80, of: $0.totalAmount) && $0.spentAmount <= $0.totalAmount }),
            topSpendingPlatforms: top, monthlyTrend: trend
        )
    }

    static func overlaps(_ p: Period, from: Timestamp, toExclusive: Timestamp) -> Bool {
        p.start < toExclusive && (p.endExclusive.map { $0 > from } ?? true)
    }

    /// The mean of `spent ÷ total` over `ratios` as a percentage with at most two decimals,
    /// half-even, from the ratios truncated to 1e-18, of any size: exact but for a mean within
    /// n × 1e-16 % of a rounding boundary that some truncated ratio hides.
    static func meanPercentage(_ ratios: [(spent: Money, total: Money)]) -> String {
        // Σ ratio × 1e18, each ratio floor-divided to 1e-18 (so every truncation is down), in
        // integers of any size: a ratio can be ~10³⁸ (spent 10¹² over a total of one nano-unit),
        // past Int128 once scaled (the sum saturated until the seventeenth session's audit:
        // 17014118346046923173168.73 % for 10¹⁴ %). Positive and negative parts apart (a credit
        // can leave spent below zero), subtracted once.
        let scale: UInt128 = 1_000_000_000_000_000_000
        var positive = BigUInt(0), negative = BigUInt(0)
        var inexact = false
        for (spent, total) in ratios {
            var (whole, rest) = spent.nanos.quotientAndRemainder(dividingBy: total.nanos)
            if rest < 0 {
                whole -= 1
                rest += total.nanos
            }
            // rest < total: rest × 1e18 ÷ total is below 1e18 (the full width holds the product).
            let (fraction, remainder) = total.nanos.magnitude.dividingFullWidth(rest.magnitude.multipliedFullWidth(by: scale))
            if remainder != 0 { inexact = true }
            let scaledWhole = BigUInt(whole.magnitude) * BigUInt(scale)
            if whole < 0 { negative = negative + scaledWhole } else { positive = positive + scaledWhole }
            positive = positive + BigUInt(fraction)
        }
        let isNegative = positive < negative
        var magnitude = isNegative ? negative - positive : positive - negative
        // Hundredths of a percent: sum ÷ (n × 1e14), rounded half-even. The sum is at most the
        // true one (truncated ratios): a remainder of exactly one half with `inexact` is above
        // the half for a positive sum, below it for a negative one.
        let low = UInt128(magnitude.divide(by: 100_000_000_000_000))
        let high = UInt128(magnitude.divide(by: UInt64(ratios.count)))
        let rem = high * 100_000_000_000_000 + low
        let per = UInt128(ratios.count) * 100_000_000_000_000
        let odd = (magnitude.limbs.first ?? 0) & 1 == 1
        let up = rem * 2 > per || (rem * 2 == per && (isNegative ? !inexact && odd : inexact || odd))
        if up { magnitude = magnitude + BigUInt(1) }
        // As text: the whole percent, then up to two decimals without trailing zeros.
        let fraction = magnitude.divide(by: 100)
        let text = magnitude.decimalText + Money.hundredthsText(Int(fraction))
        return isNegative && text != "0" ? "-" + text : text
    }
}
