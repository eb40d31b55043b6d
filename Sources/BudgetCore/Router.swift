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
        if let budgetId {
            // An explicit id never falls back to the rules below; it follows renewals.
            var current = lookup(budgetId)
            var hops = 0
            while let b = current, !b.period.covers(time), let next = b.successorId, hops < 10_000 {
                current = lookup(next)
                hops += 1
            }
            guard let b = current, b.status != .cancelled, b.period.covers(time) else { return nil }
            return b.id
        }
        var bestSelector: (budget: Budget, keys: Int)?
        var bestPlain: Budget?
        for b in budgets where b.status != .cancelled && b.period.covers(time) {
            if let selector = b.selector, selector.count > 0 {
                guard let metadata, matches(selector: selector, metadata: metadata) else { continue }
                // Most keys matched first; ties go to the oldest, which came first.
                if bestSelector == nil || selector.count > bestSelector!.keys {
                    bestSelector = (b, selector.count)
                }
            } else if bestSelector == nil {
                if let current = bestPlain {
                    if isShorter(b.period, than: current.period) { bestPlain = b }
                } else {
                    bestPlain = b
                }
            }
        }
        return bestSelector?.budget.id ?? bestPlain?.id
    }

    /// Every selector key is in the metadata with an equal value (numbers compare by value).
    public static func matches(selector: JSONObject, metadata: JSONObject) -> Bool {
        for (key, expected) in selector {
            guard let actual = metadata[key] else { return false }
            if UsageEventDecoder.canonicalize(actual) != UsageEventDecoder.canonicalize(expected) { return false }
        }
        return true
    }

    /// Shortest period first; open-ended periods (UNLIMITED without an end) last.
    static func isShorter(_ a: Period, than b: Period) -> Bool {
        switch (a.length, b.length) {
        case (let x?, let y?): x < y
        case (.some, nil): true
        default: false
        }
    }
}
