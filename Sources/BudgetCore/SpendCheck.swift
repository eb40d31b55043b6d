// `spend.check` (CONTRACT §6): "may I spend X on platform P now?" Routes like an event, books
// nothing, and answers with the reason and what remains. Pure: the ledger and the time are given.

/// A `spend.check` request.
public struct SpendRequest: Sendable, Hashable {
    public var budgetId: String?
    public var platform: String
    public var serviceType: ServiceType
    /// In the currency of the budget it routes to.
    public var amount: Money
    /// Matched against budget selectors, as an event's metadata is.
    public var metadata: JSONObject?

    public init(budgetId: String? = nil, platform: String, serviceType: ServiceType, amount: Money, metadata: JSONObject? = nil) {
        self.budgetId = budgetId
        self.platform = platform
        self.serviceType = serviceType
        self.amount = amount
        self.metadata = metadata
    }

    /// Reads `budgetId?`, `platform`, `serviceType`, `amount`, `metadata?`.
    public init(_ args: Args) throws(LedgerError) {
        budgetId = try args.string("budgetId", max: EventLimits.maxIdLength)
        platform = try args.requiredString("platform")
        guard let type = try args.enumValue("serviceType", ServiceType.self) else {
            throw LedgerError(.validationFailed, "serviceType is required (\(ServiceType.allCases.map(\.rawValue).joined(separator: " ")))")
        }
        serviceType = type
        guard let amount = try args.amount("amount") else { throw LedgerError(.validationFailed, "amount is required") }
        self.amount = amount
        if let m = args.object["metadata"], !m.isNull {
            guard let o = m.objectValue else { throw LedgerError(.validationFailed, "metadata must be an object") }
            metadata = o
        }
    }
}

/// How close to its total a budget may get before spend of a priority is refused.
///
/// A spend is refused when, after it, the budget (or an ancestor) would be at or above the
/// threshold of the spend's priority: LOW from 90 %, MEDIUM from 95 %, HIGH from 98 %. CRITICAL
/// has no threshold: it is refused only when it would take a budget over its total, as everything is.
public struct SpendPolicy: Sendable, Hashable {
    /// Percent of the total at or above which spend of a priority is refused; nil: never (only over 100 %).
    public var refuseAtPercent: [AllocationPriority: Int] = [.low: 90, .medium: 95, .high: 98]
    /// The priority of spend that matches no allocation.
    public var unallocatedPriority: AllocationPriority = .medium

    public init() {}

    /// The documented policy (docs/control.md).
    public static let standard = SpendPolicy()
}

/// `spend.check`'s answer.
public struct SpendDecision: Sendable, Hashable {
    /// What the spend would count against in the routed budget, before and after.
    public struct AllocationView: Sendable, Hashable {
        public var id: String
        public var platform: String
        public var serviceType: ServiceType
        public var priority: AllocationPriority
        public var remaining: Money
        public var remainingAfter: Money
    }

    public var allowed: Bool
    /// The budget the spend would go to; nil when no budget covers it.
    public var budgetId: String?
    public var budgetName: String?
    public var currency: String?
    public var status: BudgetStatus?
    /// The priority the policy applied (the matching allocation's, else the policy's default).
    public var priority: AllocationPriority?
    /// Spent percentage before and after the amount (0 for UNLIMITED, nil without a budget).
    public var spentPercentage: String?
    public var spentPercentageAfter: String?
    /// Remaining before and after the amount (nil for UNLIMITED or without a budget).
    public var remaining: Money?
    public var remainingAfter: Money?
    /// The matching allocation of the budget, if any.
    public var allocation: AllocationView?
    /// Why: for a refusal, what would be crossed and by how much; for an approval, where it stands.
    public var reason: String

    /// The reply of `spend.check`; absent values are null.
    public var json: JSONValue {
        .object(JSONObject([
            ("allowed", .bool(allowed)), ("budgetId", budgetId.map(JSONValue.string) ?? .null),
            ("budgetName", budgetName.map(JSONValue.string) ?? .null),
            ("currency", currency.map(JSONValue.string) ?? .null),
            ("status", status.map { .string($0.rawValue) } ?? .null),
            ("priority", priority.map { .string($0.rawValue) } ?? .null),
            ("spentPercentage", spentPercentage.map { JSONValue.number($0) } ?? .null),
            ("spentPercentageAfter", spentPercentageAfter.map { JSONValue.number($0) } ?? .null),
            ("remaining", remaining.map { JSONValue.number($0) } ?? .null),
            ("remainingAfter", remainingAfter.map { JSONValue.number($0) } ?? .null),
            ("allocation", allocation.map { a in
                .object(JSONObject([
                    ("id", .string(a.id)), ("platform", .string(a.platform)), ("serviceType", .string(a.serviceType.rawValue)),
                    ("priority", .string(a.priority.rawValue)), ("remaining", .number(a.remaining)),
                    ("remainingAfter", .number(a.remainingAfter)),
                ]))
            } ?? .null),
            ("reason", .string(reason)),
        ]))
    }
}

extension Ledger {
    /// Answers `spend.check` at `now`. Books nothing.
    ///
    /// The checks, in order; the first that fails is the reason:
    /// 1. routing (CONTRACT §4 at `now`): an unknown explicit `budgetId` throws NOT_FOUND; an
    ///    explicit id that routes nowhere (CANCELLED, or no period of it or its renewals covers
    ///    `now`) routes to no budget, as an event would: allowed with `budgetId` nil and the
    ///    reason, as when no budget covers the spend at all (the event would be UNALLOCATED,
    ///    nothing to protect);
    /// 2. status: the budget or an ancestor PAUSED, CANCELLED or COMPLETED is refused;
    /// 3. amounts, the budget first and then each ancestor: its matching allocation (if any) and
    ///    then its total (UNLIMITED budgets have none) must not be exceeded after the amount;
    /// 4. priority (`SpendPolicy`): after the amount, the budget and each limited ancestor must
    ///    stay below the threshold of the spend's priority.
    public func checkSpend(_ request: SpendRequest, policy: SpendPolicy = .standard, at now: Timestamp) throws(LedgerError) -> SpendDecision {
        let amountText = request.amount.description
        if let explicit = request.budgetId, budgets[explicit] == nil {
            throw LedgerError(.notFound, "no budget \(explicit)")
        }
        guard let id = route(budgetId: request.budgetId, metadata: request.metadata, time: now), let b = budgets[id] else {
            if let explicit = request.budgetId, let b = budgets[explicit] {
                let why = b.status == .cancelled
                    ? "budget \(b.name) (\(b.id)) is CANCELLED"
                    : "budget \(b.name) (\(b.id)) does not cover \(now.rfc3339): its period is \(b.period.startSpec) … \(b.period.endSpec?.description ?? "open-ended") and no renewal covers now"
                // §6: spend.check routes like an event, and an event sent to it would route to
                // no budget (§4 rule 1: no fallback): "with no routable budget it is allowed
                // with budgetId: null". The reason says why.
                return SpendDecision(allowed: true, reason: why + "; spend sent to it would be stored UNALLOCATED")
            }
            return SpendDecision(
                allowed: true, reason: "no budget covers \(request.platform)/\(request.serviceType.rawValue) at \(now.rfc3339): the spend would be stored UNALLOCATED"
            )
        }

        let chain = chain(from: id)
        // The spend's priority: the matching allocation of the budget, else of the nearest ancestor.
        var priority = policy.unallocatedPriority
        var prioritySource = "no allocation matches \(request.platform)/\(request.serviceType.rawValue), so it counts as \(priority.rawValue)"
        for cid in chain {
            if let c = budgets[cid], let i = c.allocationIndex(platform: request.platform, serviceType: request.serviceType) {
                let a = c.allocations[i]
                priority = a.priority
                prioritySource = "allocation \(a.platform)/\(a.serviceType.rawValue)\(cid == id ? "" : " of \(c.name)") is \(priority.rawValue)"
                break
            }
        }

        var decision = SpendDecision(
            allowed: true, budgetId: b.id, budgetName: b.name, currency: b.currency, status: b.status, priority: priority,
            spentPercentage: b.spentPercentage,
            spentPercentageAfter: b.isUnlimited || b.totalAmount <= .zero ? "0" : (b.spentAmount + request.amount).percentage(of: b.totalAmount),
            remaining: b.remainingAmount, remainingAfter: b.remainingAmount.map { $0 - request.amount }, reason: ""
        )
        if let i = b.allocationIndex(platform: request.platform, serviceType: request.serviceType) {
            let a = b.allocations[i]
            decision.allocation = SpendDecision.AllocationView(
                id: a.id, platform: a.platform, serviceType: a.serviceType, priority: a.priority,
                remaining: a.remainingAmount, remainingAfter: a.remainingAmount - request.amount
            )
        }
        func refuse(_ reason: String) -> SpendDecision {
            decision.allowed = false
            decision.reason = reason
            return decision
        }
        func label(_ c: Budget) -> String {
            c.id == id ? "budget \(c.name)" : "parent budget \(c.name) (\(c.id))"
        }

        for cid in chain {
            guard let c = budgets[cid] else { continue }
            switch c.status {
            case .paused: return refuse("\(label(c)) is PAUSED: no spend until an operator sets it ACTIVE again")
            case .cancelled: return refuse("\(label(c)) is CANCELLED")
            case .completed: return refuse("\(label(c)) is COMPLETED: its period ended")
            case .active, .exceeded: break
            }
        }
        for cid in chain {
            guard let c = budgets[cid] else { continue }
            if let i = c.allocationIndex(platform: request.platform, serviceType: request.serviceType) {
                let a = c.allocations[i]
                if a.spentAmount + request.amount > a.allocatedAmount {
                    let whose = cid == id ? "" : " of \(label(c))"
                    // Over already, whatever the amount (0 included): said so, not "would take".
                    if a.spentAmount > a.allocatedAmount {
                        return refuse("allocation \(a.platform)/\(a.serviceType.rawValue)\(whose) is over its \(a.allocatedAmount) \(c.currency) already (\(a.spentAmount) spent)")
                    }
                    return refuse("\(amountText) \(c.currency) would take allocation \(a.platform)/\(a.serviceType.rawValue)\(whose) over its \(a.allocatedAmount) \(c.currency) (\(a.spentAmount) spent)")
                }
            }
            if !c.isUnlimited, c.spentAmount + request.amount > c.totalAmount {
                if c.spentAmount > c.totalAmount {
                    return refuse("\(label(c)) is over its \(c.totalAmount) \(c.currency) already (\(c.spentAmount) spent)")
                }
                return refuse("\(amountText) \(c.currency) would take \(label(c)) over its \(c.totalAmount) \(c.currency) (\(c.spentAmount) spent)")
            }
        }
        if let percent = policy.refuseAtPercent[priority] {
            for cid in chain {
                guard let c = budgets[cid], !c.isUnlimited, c.totalAmount > .zero else { continue }
                let after = c.spentAmount + request.amount
                if after.reaches(percent: percent, of: c.totalAmount) {
                    return refuse("\(label(c)) would be at \(after.percentage(of: c.totalAmount))% of its \(c.totalAmount) \(c.currency) after \(amountText) \(c.currency); \(priority.rawValue) spend is refused from \(percent)% (\(prioritySource))")
                }
            }
        }
        decision.reason = b.isUnlimited
            ? "budget \(b.name) is UNLIMITED; \(b.spentAmount + request.amount) \(b.currency) spent after this"
            : "within budget \(b.name): \(b.spentAmount + request.amount) of \(b.totalAmount) \(b.currency) spent after this (\(decision.spentPercentageAfter ?? "0")%)"
        return decision
    }
}
