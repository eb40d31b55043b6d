/// Routes an event to exactly one budget (CONTRACT §4). Pure.
public enum Router {
    /// The budget for an event, or nil (UNALLOCATED).
    ///
    /// - `budgets` must be in creation order (oldest first), which breaks ties.
    /// - `lookup` finds a budget by id, to follow an explicit id along its chain of successors.
    public static func route(
        budgetId: String?, metadata: JSONObject?, time: Timestamp,
        budgets: some Sequence<Budget>, lookup: (String) -> Budget?
    ) -> String? {
        route(
            budgetId: budgetId, metadata: metadata, time: time,
            candidates: budgets.lazy.map(RouteCandidate.init), lookup: { lookup($0).map(RouteCandidate.init) }
        )
    }

    /// The same over the compact routing view the ledger keeps, so routing an event copies no budget.
    public static func route(
        budgetId: String?, metadata: JSONObject?, time: Timestamp,
        candidates: some Sequence<RouteCandidate>, lookup: (String) -> RouteCandidate?
    ) -> String? {
        if let budgetId {
            // An explicit id never falls back to the rules below; it follows renewals.
            var current = lookup(budgetId)
            var hops = 0
            while let b = current, !b.covers(time), let next = b.successorId, hops < 10_000 {
                current = lookup(next)
                hops += 1
            }
            guard let b = current, b.status != .cancelled, b.covers(time) else { return nil }
            return b.id
        }
        var bestSelector: (id: String, keys: Int)?
        var bestPlain: (id: String, length: Int64?)?
        for b in candidates where b.status != .cancelled && b.covers(time) {
            if let selector = b.selector {
                guard let metadata, matches(selector: selector, metadata: metadata) else { continue }
                // Most keys matched first; ties go to the oldest, which came first.
                if bestSelector == nil || selector.count > bestSelector!.keys {
                    bestSelector = (b.id, selector.count)
                }
            } else if bestSelector == nil {
                if let current = bestPlain {
                    if isShorter(b.length, than: current.length) { bestPlain = (b.id, b.length) }
                } else {
                    bestPlain = (b.id, b.length)
                }
            }
        }
        return bestSelector?.id ?? bestPlain?.id
    }

    /// Every selector key is in the metadata with an equal value (numbers compare by value).
    public static func matches(selector: JSONObject, metadata: JSONObject) -> Bool {
        for (key, expected) in selector {
            guard let actual = metadata[key] else { return false }
            // Strings, the usual case, compare code point by code point (RFC 8259 §8.3, as
            // everywhere in JSON values: not Swift's canonical equivalence); anything else by
            // canonical value.
            if case .string(let e) = expected, case .string(let a) = actual {
                if !e.hasSameCodePoints(as: a) { return false }
                continue
            }
            if UsageEventDecoder.canonicalize(actual) != UsageEventDecoder.canonicalize(expected) { return false }
        }
        return true
    }

    /// Shortest period first; open-ended periods (UNLIMITED without an end) last.
    static func isShorter(_ a: Int64?, than b: Int64?) -> Bool {
        switch (a, b) {
        case (let x?, let y?): x < y
        case (.some, nil): true
        default: false
        }
    }
}

/// What routing needs of a budget, kept by the ledger in creation order.
public struct RouteCandidate: Sendable, Hashable {
    public var id: String
    public var start: Timestamp
    public var endExclusive: Timestamp?
    public var length: Int64?
    public var status: BudgetStatus
    /// nil when the budget has no selector (or an empty one).
    public var selector: JSONObject?
    public var successorId: String?
    /// Not for routing: `Budget.awaitsRenewal` (`Ledger.nextPeriodEnd`).
    public var awaitsRenewal: Bool
    /// Not for routing: the currency a cost routed here is converted to (`Ledger.routeTarget`).
    public var currency: String
    /// Not for routing: the parent, so booking walks a budget's chain without copying budgets.
    public var parentId: String?

    public init(_ b: Budget) {
        id = b.id
        start = b.period.start
        endExclusive = b.period.endExclusive
        length = b.period.length
        status = b.status
        selector = (b.selector?.count ?? 0) > 0 ? b.selector : nil
        successorId = b.successorId
        currency = b.currency
        awaitsRenewal = b.awaitsRenewal
        parentId = b.parentId
    }

    public func covers(_ t: Timestamp) -> Bool {
        t >= start && (endExclusive.map { t < $0 } ?? true)
    }
}
