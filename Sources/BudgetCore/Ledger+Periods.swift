extension Ledger {
    /// Ends periods (CONTRACT §5, issue 5): every budget whose period ended by `now` and is
    /// ACTIVE or EXCEEDED becomes COMPLETED (with its status event); one with `autoRenewal`
    /// gets a successor for the next period with the same total, allocations and thresholds,
    /// linked both ways. A successor whose period has ended too (the daemon was down) is completed
    /// and renewed in turn, so one call brings the chain up to `now`. PAUSED and CANCELLED are
    /// operators' statuses and stay until an operator changes them (CONTRACT §6): a paused budget
    /// is completed (and renewed) by the first call after it is set ACTIVE again. A COMPLETED
    /// budget whose `autoRenewal` was turned on afterwards is renewed too (`awaitsRenewal`).
    ///
    /// At most `maxRenewals` successors are made in one call (one transaction); a chain further
    /// behind goes on at the next tick, a second later (`nextPeriodEnd` is then past).
    ///
    /// A renewed child hangs under its parent's renewal whose period covers its start. When the
    /// parent renews after the child (later in the same call, at a later tick because it was
    /// PAUSED at its end, or because its `autoRenewal` was turned on only then), the child is
    /// moved to that renewal once it exists, with the spend it brought: `spendOf(id)` gives the
    /// rows of a budget's daily rollup (its own costs and its descendants'), the spend to take
    /// out of the parent's completed period (and its ancestors that are not the renewal's) and
    /// to count in the renewal (and its ancestors that were not the old parent's), allocations
    /// included. The renewal side then runs the alert rules, the other side re-arms.
    ///
    /// Returns the budgets created or changed (to persist), the messages to publish and the
    /// additions to the daily rollup (the moved spend).
    public mutating func rollOver<E: Error>(
        at now: Timestamp, maxRenewals: Int = 1_000, spendOf: (String) throws(E) -> [RollupRow], makeID: () -> String
    ) throws(E) -> RollOverResult {
        var changed: [String] = []
        var messages: [OutboundMessage] = []
        var renewals = 0
        var i = 0
        // `order` grows while we walk it: successors are visited too.
        while i < order.count {
            let id = order[i]
            i += 1
            guard var b = budgets[id], let end = b.period.endExclusive, end <= now,
                  b.status == .active || b.status == .exceeded || b.awaitsRenewal else { continue }
            if b.status != .completed {
                let previous = b.status
                b.status = .completed
                budgets[id] = b
                messages.append(.status(statusChange(b, from: previous, at: now)))
            }
            changed.append(id)
            guard b.autoRenewal, b.successorId == nil, renewals < maxRenewals, let next = b.period.successor(type: b.budgetType) else {
                refreshRoute(id)
                continue
            }
            renewals += 1
            let newId = makeID()
            var successor = Budget(
                id: newId, name: b.name, description: b.description, budgetType: b.budgetType,
                totalAmount: b.totalAmount, currency: b.currency, period: next,
                explicitEnd: b.explicitEnd == nil ? nil : next.endSpec,
                alertThreshold80: b.alertThreshold80, alertThreshold90: b.alertThreshold90,
                alertThreshold100: b.alertThreshold100, autoRenewal: true,
                parentId: b.parentId.map { coveringSuccessor(of: $0, at: next.start) },
                selector: b.selector, createdBy: b.createdBy, createdAt: now, ordinal: nextOrdinal,
                predecessorId: id
            )
            successor.allocations = b.allocations.map { a in
                Allocation(
                    id: IDs.make("al"), budgetId: newId, platform: a.platform, serviceType: a.serviceType,
                    allocatedAmount: a.allocatedAmount, priority: a.priority, isActive: a.isActive
                )
            }
            b.successorId = newId
            budgets[id] = b
            budgets[newId] = successor
            order.append(newId)
            refreshRoute(id)
            refreshRoute(newId)
            changed.append(newId)
        }
        // A child renewed before its parent hung under the parent's completed period (an audit):
        // every renewed child whose parent has a renewal covering its start goes there now that
        // every chain has renewed (also children renewed at an earlier tick, whose parent was
        // PAUSED then, or got `autoRenewal` only afterwards).
        var result = RollOverResult(changed: changed, messages: messages)
        if renewals > 0 {
            var moves: [(child: String, from: String, to: String)] = []
            for id in order {
                guard let c = budgets[id], let parent = c.parentId, let p = budgets[parent], p.successorId != nil,
                      !p.period.covers(c.period.start), inheritedParent(c) else { continue }
                let target = coveringSuccessor(of: parent, at: c.period.start)
                if target != parent, budgets[target]?.period.covers(c.period.start) == true {
                    moves.append((id, parent, target))
                }
            }
            for move in moves {
                try reparent(move.child, from: move.from, to: move.to, spendOf: spendOf, at: now, into: &result)
            }
        }
        return result
    }

    /// Moves a renewed child from its parent's completed period to the renewal, with its spend
    /// (see `rollOver`). The two ancestries' common part keeps its totals.
    private mutating func reparent<E: Error>(
        _ child: String, from old: String, to new: String, spendOf: (String) throws(E) -> [RollupRow], at now: Timestamp,
        into result: inout RollOverResult
    ) throws(E) {
        guard var c = budgets[child] else { return }
        c.parentId = new
        budgets[child] = c
        refreshRoute(child)
        result.changed.append(child)
        guard c.spentAmount != .zero || c.costCount != 0 else { return }
        // The child's rollup as stored, plus what earlier moves of this call changed of it.
        var rows = try spendOf(child)
        for pending in result.daily where pending.budgetId == child { rows.append(pending.spend) }
        let from = chain(from: old), to = chain(from: new)
        let leaving = from.filter { !to.contains($0) }, joining = to.filter { !from.contains($0) }
        for (ids, negative) in [(leaving, true), (joining, false)] {
            for id in ids {
                guard var b = budgets[id] else { continue }
                b.spentAmount += negative ? -c.spentAmount : c.spentAmount
                b.costCount += negative ? -c.costCount : c.costCount
                for row in rows {
                    let amount = negative ? -row.amount : row.amount
                    _ = b.addToAllocation(amount, platform: row.platform, serviceType: row.serviceType)
                    var moved = row
                    moved.amount = amount
                    moved.count = negative ? -row.count : row.count
                    result.daily.append((id, moved))
                }
                // Its routing view holds nothing of its totals: not refreshed.
                budgets[id] = b
                result.changed.append(id)
            }
        }
        // Nearest first, as a booking's rules run: what the old side no longer crosses re-arms,
        // what the renewal's side now crosses fires.
        for id in leaving { result.messages += rearm(budgetId: id, at: now) }
        for id in joining { result.messages += evaluate(budgetId: id, allocationIndex: nil, eventId: nil, at: now) }
    }

    /// Whether a budget's parent came with its renewal: its predecessor's parent or one of that
    /// one's renewals. A parent an operator chose since (`budget.update`) is kept (an audit: a
    /// renewed child moved by hand under another budget was moved again when that one renewed).
    func inheritedParent(_ c: Budget) -> Bool {
        guard let predecessor = c.predecessorId, let parent = c.parentId else { return false }
        var current = budgets[predecessor]?.parentId
        var hops = 0
        while let id = current, hops < 10_000 {
            if id == parent { return true }
            current = budgets[id]?.successorId
            hops += 1
        }
        return false
    }

    /// A renewed child's parent: the parent's own renewal whose period covers `time`, if renewed;
    /// the parent itself for a time before its end (an audit: a child whose periods began before
    /// the parent's was hung under the parent's last renewal, a later period than its own).
    func coveringSuccessor(of id: String, at time: Timestamp) -> String {
        var current = id
        var hops = 0
        while let b = budgets[current], let end = b.period.endExclusive, time >= end, let next = b.successorId, hops < 10_000 {
            current = next
            hops += 1
        }
        return current
    }

    /// The earliest end among budgets still to be completed (ACTIVE or EXCEEDED) or renewed (a
    /// COMPLETED budget whose `autoRenewal` was turned on after it completed): the scheduler need
    /// not look before it.
    public var nextPeriodEnd: Timestamp? {
        candidates.lazy.filter { $0.status == .active || $0.status == .exceeded || $0.awaitsRenewal }.compactMap(\.endExclusive).min()
    }
}

extension Budget {
    /// COMPLETED with `autoRenewal` on but no successor (turned on after it completed), and a
    /// period that has a next one: `rollOver` renews it.
    var awaitsRenewal: Bool {
        status == .completed && autoRenewal && successorId == nil && period.successor(type: budgetType) != nil
    }
}

/// A row of the daily rollup without its budget: a day's spend on one platform and service (the budget's
/// own costs and its descendants').
public struct RollupRow: Sendable, Hashable {
    /// UTC day, `YYYY-MM-DD`.
    public var day: String
    public var platform: String
    public var serviceType: ServiceType
    public var amount: Money
    public var count: Int64

    public init(day: String, platform: String, serviceType: ServiceType, amount: Money, count: Int64) {
        self.day = day
        self.platform = platform
        self.serviceType = serviceType
        self.amount = amount
        self.count = count
    }
}

/// What `Ledger.rollOver` did.
public struct RollOverResult: Sendable {
    /// Budgets created or changed, to persist.
    public var changed: [String]
    /// Status events and alerts, to publish in this order.
    public var messages: [OutboundMessage]
    /// Additions to the daily rollup: the spend moved with renewed children, by budget.
    public var daily: [(budgetId: String, spend: RollupRow)] = []
}
