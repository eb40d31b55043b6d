/// A cost allocation: one booked cost (CONTRACT §6 shape).
public struct CostRecord: Sendable, Hashable {
    public var id: String
    public var budgetId: String
    public var allocationId: String?
    public var platform: String
    public var serviceType: ServiceType
    public var costAmount: Money
    public var currency: String
    public var description: String?
    public var costDate: Timestamp
    public var apiUsageId: String?
    public var apifyRunId: String?
    /// The usage event that caused it (nil for a manual `cost.allocate`).
    public var eventId: String?
    public var eventSource: String?
    public var metadata: JSONObject?
    /// COST (a booked cost), CREDIT (a refund: negative) or REPRICE (a re-pricing difference).
    public var kind: CostKind
    /// The event a CREDIT or REPRICE entry corrects, if any.
    public var corrects: EventRef?
    /// For REPRICE: the catalog versions the difference goes from and to.
    public var catalogFrom: String?
    public var catalogTo: String?

    public init(
        id: String, budgetId: String, allocationId: String?, platform: String, serviceType: ServiceType,
        costAmount: Money, currency: String, description: String?, costDate: Timestamp,
        apiUsageId: String?, apifyRunId: String?, eventId: String?, eventSource: String?, metadata: JSONObject?,
        kind: CostKind = .cost, corrects: EventRef? = nil, catalogFrom: String? = nil, catalogTo: String? = nil
    ) {
        self.kind = kind
        self.corrects = corrects
        self.catalogFrom = catalogFrom
        self.catalogTo = catalogTo
        self.id = id
        self.budgetId = budgetId
        self.allocationId = allocationId
        self.platform = platform
        self.serviceType = serviceType
        self.costAmount = costAmount
        self.currency = currency
        self.description = description
        self.costDate = costDate
        self.apiUsageId = apiUsageId
        self.apifyRunId = apifyRunId
        self.eventId = eventId
        self.eventSource = eventSource
        self.metadata = metadata
    }

    public var json: JSONValue {
        .object(JSONObject([
            ("id", .string(id)), ("budgetId", .string(budgetId)),
            ("allocationId", allocationId.map(JSONValue.string) ?? .null),
            ("platform", .string(platform)), ("serviceType", .string(serviceType.rawValue)),
            ("costAmount", .number(costAmount.description)), ("currency", .string(currency)),
            ("description", description.map(JSONValue.string) ?? .null),
            ("costDate", .string(costDate.rfc3339)),
            ("apiUsageId", apiUsageId.map(JSONValue.string) ?? .null),
            ("apifyRunId", apifyRunId.map(JSONValue.string) ?? .null),
            ("eventId", eventId.map(JSONValue.string) ?? .null),
            ("eventSource", eventSource.map(JSONValue.string) ?? .null),
            ("metadata", metadata.map(JSONValue.object) ?? .null),
            ("kind", .string(kind.rawValue)), ("correctsEvent", corrects?.json ?? .null),
            ("catalogFrom", catalogFrom.map(JSONValue.string) ?? .null),
            ("catalogTo", catalogTo.map(JSONValue.string) ?? .null),
        ]))
    }
}

/// What a cost allocation row is. The history is append-only: a correction is a new row.
public enum CostKind: String, Sendable, Hashable, CaseIterable {
    case cost = "COST", credit = "CREDIT", reprice = "REPRICE"
}

extension Allocation {
    public var json: JSONValue {
        .object(JSONObject([
            ("id", .string(id)), ("budgetId", .string(budgetId)), ("platform", .string(platform)),
            ("serviceType", .string(serviceType.rawValue)), ("allocatedAmount", .number(allocatedAmount.description)),
            ("spentAmount", .number(spentAmount.description)), ("remainingAmount", .number(remainingAmount.description)),
            ("priority", .string(priority.rawValue)), ("isActive", .bool(isActive)),
        ]))
    }
}

extension Budget {
    /// The budget shape of CONTRACT §6, with its allocations.
    public var json: JSONValue {
        .object(JSONObject([
            ("id", .string(id)), ("name", .string(name)), ("description", description.map(JSONValue.string) ?? .null),
            ("budgetType", .string(budgetType.rawValue)), ("totalAmount", .number(totalAmount.description)),
            ("spentAmount", .number(spentAmount.description)),
            ("remainingAmount", remainingAmount.map { .number($0.description) } ?? .null),
            ("currency", .string(currency)), ("startDate", .string(period.startSpec.description)),
            ("endDate", period.endSpec.map { .string($0.description) } ?? .null),
            ("status", .string(status.rawValue)), ("alertThreshold80", .bool(alertThreshold80)),
            ("alertThreshold90", .bool(alertThreshold90)), ("alertThreshold100", .bool(alertThreshold100)),
            ("autoRenewal", .bool(autoRenewal)), ("parentId", parentId.map(JSONValue.string) ?? .null),
            ("selector", selector.map(JSONValue.object) ?? .null), ("createdBy", createdBy.map(JSONValue.string) ?? .null),
            ("createdAt", .string(createdAt.rfc3339)), ("spentPercentage", .number(spentPercentage)),
            ("predecessorId", predecessorId.map(JSONValue.string) ?? .null),
            ("successorId", successorId.map(JSONValue.string) ?? .null),
            ("allocations", .array(allocations.map(\.json))),
        ]))
    }

    /// `budget.get`'s summary (CONTRACT §6): burnRate = spent ÷ max(1, days from the start to now
    /// or the end, whichever is first); projectedEndDate = when the remainder runs out at that rate.
    public func summary(at now: Timestamp) -> JSONValue {
        let rate = burnRate(at: now)
        var projected: JSONValue = .null
        if !isUnlimited, spentAmount > .zero {
            let remaining = totalAmount - spentAmount
            if remaining <= .zero {
                projected = .string(now.rfc3339)
            } else {
                // remaining ÷ (spent ÷ elapsed) at the exact rate, not the rounded burnRate shown,
                // in full width: a few nano-units spent of a large total run out in millennia,
                // past Timestamp's range (2262), written up to RFC 3339's last year, 9999 (they
                // were null until the seventeenth session's audit: null means "no spend").
                let product = remaining.nanos.magnitude.multipliedFullWidth(by: UInt128(burnElapsed(at: now)))
                let spent = spentAmount.nanos.magnitude
                var end = Int128.max
                if product.high < spent {
                    let duration = Int128(clamping: spent.dividingFullWidth(product).quotient)
                    let (sum, overflow) = Int128(now.nanosecondsSinceEpoch).addingReportingOverflow(duration)
                    if !overflow { end = sum }
                }
                projected = .string(Timestamp.rfc3339(nanosecondsSinceEpoch: end))
            }
        }
        return .object(JSONObject([
            ("budget", json), ("allocations", .array(allocations.map(\.json))),
            ("totalSpent", .number(spentAmount.description)),
            ("totalRemaining", remainingAmount.map { .number($0.description) } ?? .null),
            ("spentPercentage", .number(spentPercentage)), ("burnRate", .number(rate.description)),
            ("projectedEndDate", projected),
        ]))
    }

    static let nanosPerDay: Int128 = 86_400 * 1_000_000_000

    /// The time spend accrued over: from the start to now or the end, whichever is first, at least a day.
    func burnElapsed(at now: Timestamp) -> Int128 {
        var until = now
        if let end = period.endExclusive, end < until { until = end }
        return max(Int128(until - period.start), Self.nanosPerDay)
    }

    /// Spend per day, rounded half-even to 1e-9 (a negative spend, after credits, the same way).
    public func burnRate(at now: Timestamp) -> Money {
        let elapsed = UInt128(burnElapsed(at: now))
        // |spent| × day ÷ elapsed in full width (spent × 86,400 × 10⁹ overflowed Int128 past
        // ~1.97 × 10¹⁵ spent, and trapped: an audit's budget.get killed the daemon); the
        // quotient fits, for elapsed ≥ a day. Rounded on the magnitude, so −2 over 3 days is
        // −0.666666667, as +2 is +0.666666667 (truncated toward zero before).
        let product = spentAmount.nanos.magnitude.multipliedFullWidth(by: UInt128(Self.nanosPerDay))
        var (q, r) = elapsed.dividingFullWidth(product)
        let rest = elapsed - r
        if r > rest || (r == rest && q & 1 == 1) { q += 1 }
        let rate = Int128(q)
        return Money(nanos: spentAmount.nanos < 0 ? -rate : rate)
    }
}
