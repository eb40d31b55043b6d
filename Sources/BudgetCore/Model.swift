/// The kinds of service a cost belongs to (CONTRACT §2).
public enum ServiceType: String, Sendable, Hashable, CaseIterable {
    case api = "API", scraping = "SCRAPING", storage = "STORAGE"
    case processing = "PROCESSING", monitoring = "MONITORING", other = "OTHER"
}

/// A budget's lifecycle status (CONTRACT §5).
public enum BudgetStatus: String, Sendable, Hashable, CaseIterable {
    case active = "ACTIVE", exceeded = "EXCEEDED", paused = "PAUSED"
    case completed = "COMPLETED", cancelled = "CANCELLED"
}

/// How important an allocation is when a budget runs low.
public enum AllocationPriority: String, Sendable, Hashable, CaseIterable {
    case critical = "CRITICAL", high = "HIGH", medium = "MEDIUM", low = "LOW"
}

/// What became of a stored usage event.
public enum EventState: String, Sendable, Hashable, CaseIterable {
    case allocated = "ALLOCATED", unpriced = "UNPRICED", unallocated = "UNALLOCATED", rejected = "REJECTED"
}

/// The alert types of CONTRACT §5.
public enum AlertType: String, Sendable, Hashable, CaseIterable {
    case threshold80 = "THRESHOLD_80", threshold90 = "THRESHOLD_90", threshold100 = "THRESHOLD_100"
    case budgetExceeded = "BUDGET_EXCEEDED", spendingSpike = "SPENDING_SPIKE", lowBudget = "LOW_BUDGET"
    case allocationDepleted = "ALLOCATION_DEPLETED", unpricedUsage = "UNPRICED_USAGE"

    /// CONTRACT §5's severities.
    public var severity: AlertSeverity {
        switch self {
        case .threshold90, .threshold100, .budgetExceeded: .critical
        case .threshold80, .allocationDepleted, .spendingSpike, .unpricedUsage, .lowBudget: .warning
        }
    }

    /// The threshold alerts, lowest first (the order they fire in).
    public static var thresholds: [AlertType] { [.threshold80, .threshold90, .threshold100] }

    /// The percentage a threshold alert stands for; nil for the other types.
    public var thresholdPercent: Int? {
        switch self {
        case .threshold80: 80
        case .threshold90: 90
        case .threshold100: 100
        default: nil
        }
    }
}

/// Alert severities.
public enum AlertSeverity: String, Sendable, Hashable {
    case info = "INFO", warning = "WARNING", critical = "CRITICAL"
}

/// A per-platform share of a budget, with its own running total.
public struct Allocation: Sendable, Hashable {
    public var id: String { didSet { historyKey = Ledger.allocationKey(budgetId, id) } }
    public var budgetId: String { didSet { historyKey = Ledger.allocationKey(budgetId, id) } }
    /// "budget/allocation": its key in the ledger's spend history, made once rather than for
    /// every cost it counts (issue 8).
    public private(set) var historyKey: String
    public var platform: String
    public var serviceType: ServiceType
    public var allocatedAmount: Money
    public var spentAmount: Money
    public var priority: AllocationPriority
    public var isActive: Bool
    /// Whether ALLOCATION_DEPLETED has fired for the current period (re-armed when spent falls below).
    public var depletedFired: Bool

    public init(
        id: String, budgetId: String, platform: String, serviceType: ServiceType,
        allocatedAmount: Money, spentAmount: Money = .zero, priority: AllocationPriority = .medium,
        isActive: Bool = true, depletedFired: Bool = false
    ) {
        self.id = id
        self.budgetId = budgetId
        self.historyKey = Ledger.allocationKey(budgetId, id)
        self.platform = platform
        self.serviceType = serviceType
        self.allocatedAmount = allocatedAmount
        self.spentAmount = spentAmount
        self.priority = priority
        self.isActive = isActive
        self.depletedFired = depletedFired
    }

    public var remainingAmount: Money { allocatedAmount - spentAmount }

    /// Whether this allocation is the one for (platform, serviceType), active or not: the key
    /// allocations are unique by.
    public func hasKey(platform: String, serviceType: ServiceType) -> Bool {
        self.serviceType == serviceType && Self.samePlatform(self.platform, platform)
    }

    /// `a.lowercased() == b.lowercased()`, without making the two lowercased strings when both
    /// are ASCII (every booking compares its platform with its budget's allocations: issue 8,
    /// LedgerBench). ASCII lowercasing maps only A–Z, as `lowercased()` does on ASCII; a
    /// non-ASCII string may lowercase to ASCII (the Kelvin sign to `k`), so it takes the
    /// general comparison.
    static func samePlatform(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        // nil: not decided on ASCII alone.
        let ascii: Bool? = a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else {
                    return x.allSatisfy { $0 < 0x80 } && y.allSatisfy { $0 < 0x80 } ? false : nil
                }
                for i in 0..<x.count {
                    let p = x[i], q = y[i]
                    if p >= 0x80 || q >= 0x80 { return nil }
                    // Two ASCII bytes after an ASCII prefix: unequal unless the two cases of one
                    // letter (ASCII lowercases byte for byte, so the lowercased strings would
                    // differ right here whatever follows).
                    if p != q && (p | 0x20 != q | 0x20 || !(0x61...0x7A).contains(p | 0x20)) { return false }
                }
                return true
            }
        }
        return ascii ?? (a.lowercased() == b.lowercased())
    }
}

/// A budget with its running totals and alert state. One budget is one period;
/// renewal makes a successor.
public struct Budget: Sendable, Hashable {
    public var id: String
    public var name: String
    public var description: String?
    public var budgetType: BudgetType
    public var totalAmount: Money
    public var spentAmount: Money
    public var currency: String
    public var period: Period
    /// The `endDate` the client gave, if any (else the end is derived from `budgetType`).
    public var explicitEnd: DateSpec?
    public var status: BudgetStatus
    public var alertThreshold80: Bool
    public var alertThreshold90: Bool
    public var alertThreshold100: Bool
    public var autoRenewal: Bool
    public var parentId: String?
    /// Metadata key → value that an event's `metadata` must all match (§4 rule 2).
    public var selector: JSONObject?
    public var createdBy: String?
    public var createdAt: Timestamp
    /// Creation order, the tie-breaker "oldest first" of §4 (createdAt can tie).
    public var ordinal: Int64
    /// The threshold and exceeded alerts fired in this period and not re-armed.
    public var fired: Set<AlertType>
    public var allocations: [Allocation]
    /// The next period's budget once renewed.
    public var successorId: String?
    /// The previous period's budget this one renewed.
    public var predecessorId: String?
    /// Number of cost allocations booked directly to this budget or a descendant (locks some fields).
    public var costCount: Int64

    public init(
        id: String, name: String, description: String? = nil, budgetType: BudgetType,
        totalAmount: Money, spentAmount: Money = .zero, currency: String = "USD", period: Period,
        explicitEnd: DateSpec? = nil, status: BudgetStatus = .active, alertThreshold80: Bool = true, alertThreshold90: Bool = true,
        alertThreshold100: Bool = true, autoRenewal: Bool = false, parentId: String? = nil,
        selector: JSONObject? = nil, createdBy: String? = nil, createdAt: Timestamp, ordinal: Int64 = 0,
        fired: Set<AlertType> = [], allocations: [Allocation] = [], successorId: String? = nil,
        predecessorId: String? = nil, costCount: Int64 = 0
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.budgetType = budgetType
        self.totalAmount = totalAmount
        self.spentAmount = spentAmount
        self.currency = currency
        self.period = period
        self.explicitEnd = explicitEnd
        self.status = status
        self.alertThreshold80 = alertThreshold80
        self.alertThreshold90 = alertThreshold90
        self.alertThreshold100 = alertThreshold100
        self.autoRenewal = autoRenewal
        self.parentId = parentId
        self.selector = selector
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.ordinal = ordinal
        self.fired = fired
        self.allocations = allocations
        self.successorId = successorId
        self.predecessorId = predecessorId
        self.costCount = costCount
    }

    public var isUnlimited: Bool { budgetType == .unlimited }

    /// nil for UNLIMITED budgets (CONTRACT §6).
    public var remainingAmount: Money? { isUnlimited ? nil : totalAmount - spentAmount }

    /// Spent as a percentage with two decimals, as a JSON number literal; "0" for UNLIMITED.
    public var spentPercentage: String {
        isUnlimited || totalAmount <= .zero ? "0" : spentAmount.percentage(of: totalAmount)
    }

    public func isEnabled(_ type: AlertType) -> Bool {
        switch type {
        case .threshold80: alertThreshold80
        case .threshold90: alertThreshold90
        case .threshold100: alertThreshold100
        default: true
        }
    }

    /// The index of the allocation a cost on this platform and service counts against: an
    /// active one with that key (`Allocation.hasKey`: platform case-insensitive).
    public func allocationIndex(platform: String, serviceType: ServiceType) -> Int? {
        // Read field by field in place: `firstIndex` handed each allocation to its closure as a
        // copy, and a method called on `allocations[i]` (the `matches` this replaced) copied it
        // too (a retain and a release of each of its strings: issue 8, LedgerBench 10,164
        // against 10,544 instructions per cost through `matches`).
        for i in allocations.indices where allocations[i].serviceType == serviceType && allocations[i].isActive
            && Allocation.samePlatform(allocations[i].platform, platform) {
            return i
        }
        return nil
    }

    /// `parentId`, read through a mutating call so that a budget in a dictionary is read in place
    /// (`budgets.values[slot].parentId` copied the whole budget out first).
    mutating func parentInPlace() -> String? { parentId }

    /// Adds `amount` to the allocation a cost on this platform and service counts against;
    /// returns its index and id, or nil when none does. Mutating, so a budget in a dictionary
    /// is read in place (a non-mutating call through `values[slot]` copies it first).
    mutating func addToAllocation(_ amount: Money, platform: String, serviceType: ServiceType) -> (index: Int, id: String, historyKey: String)? {
        guard let i = allocationIndex(platform: platform, serviceType: serviceType) else { return nil }
        allocations[i].spentAmount += amount
        return (i, allocations[i].id, allocations[i].historyKey)
    }
}
