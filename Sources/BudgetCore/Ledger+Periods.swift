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
    /// Returns the budgets created or changed (to persist) and the messages to publish.
    public mutating func rollOver(at now: Timestamp, maxRenewals: Int = 1_000, makeID: () -> String) -> (changed: [String], messages: [OutboundMessage]) {
        var changed: [String] = []
        var messages: [OutboundMessage] = []
        var renewals = 0
        var successors: [String] = []
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
            successors.append(newId)
        }
        // A child visited before its parent (one re-parented to a younger budget) was hung under
        // the parent's old period, the parent's renewal not made yet (an audit): each successor's
        // parent is looked up again now that every chain has been renewed.
        for id in successors {
            guard var s = budgets[id], let parent = s.parentId else { continue }
            let covering = coveringSuccessor(of: parent, at: s.period.start)
            if covering != parent {
                s.parentId = covering
                budgets[id] = s
                refreshRoute(id)
            }
        }
        return (changed, messages)
    }

    /// A renewed child's parent: the parent's own successor whose period covers `time`, if renewed.
    func coveringSuccessor(of id: String, at time: Timestamp) -> String {
        var current = id
        var hops = 0
        while let b = budgets[current], !b.period.covers(time), let next = b.successorId, hops < 10_000 {
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
