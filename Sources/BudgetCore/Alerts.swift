/// An alert as stored and published (CONTRACT §5).
public struct AlertRecord: Sendable, Hashable {
    public var id: String
    public var seq: Int64
    public var type: AlertType
    public var budgetId: String?
    public var budgetName: String?
    public var platform: String?
    public var serviceType: ServiceType?
    public var model: String?
    public var threshold: Int?
    public var spentPercentage: String
    public var spentAmount: Money
    public var totalAmount: Money
    public var currency: String
    public var triggeredAt: Timestamp
    public var eventId: String?
    public var message: String
    /// SPENDING_SPIKE: spend in the recent window and the baseline it was compared with.
    public var windowAmount: Money? = nil
    public var baselineAmount: Money? = nil
    /// LOW_BUDGET: when the budget runs out at its burn rate.
    public var projectedExhaustion: Timestamp? = nil
    /// UNPRICED_USAGE: the UTC month of the usage ("2026-03"), the once-a-month rule's month.
    public var usageMonth: String? = nil
    public var resolved: Bool = false
    public var resolvedAt: Timestamp?

    public var severity: AlertSeverity { type.severity }
    public var topic: String { "alert." + type.rawValue }

    /// The published payload; `resolved`/`resolvedAt` are added for `alert.list`.
    public func json(includeResolution: Bool = false) -> JSONValue {
        var o = JSONObject([
            ("seq", .number(String(seq))), ("id", .string(id)), ("type", .string(type.rawValue)),
            ("severity", .string(severity.rawValue)),
            ("budgetId", budgetId.map(JSONValue.string) ?? .null),
            ("budgetName", budgetName.map(JSONValue.string) ?? .null),
            ("platform", platform.map(JSONValue.string) ?? .null),
            ("serviceType", serviceType.map { .string($0.rawValue) } ?? .null),
        ])
        if type == .unpricedUsage { o["model"] = model.map(JSONValue.string) ?? .null }
        o["threshold"] = threshold.map { .number(String($0)) } ?? .null
        o["spentPercentage"] = .number(spentPercentage)
        o["spentAmount"] = .number(spentAmount.description)
        o["totalAmount"] = .number(totalAmount.description)
        o["currency"] = .string(currency)
        o["triggeredAt"] = .string(triggeredAt.rfc3339)
        o["eventId"] = eventId.map(JSONValue.string) ?? .null
        o["message"] = .string(message)
        if let windowAmount { o["windowAmount"] = .number(windowAmount.description) }
        if let baselineAmount { o["baselineAmount"] = .number(baselineAmount.description) }
        if let projectedExhaustion { o["projectedExhaustion"] = .string(projectedExhaustion.rfc3339) }
        if let usageMonth { o["usageMonth"] = .string(usageMonth) }
        if includeResolution {
            o["resolved"] = .bool(resolved)
            o["resolvedAt"] = resolvedAt.map { .string($0.rfc3339) } ?? .null
        }
        return .object(o)
    }
}

/// A status change of a budget (CONTRACT §5, `status.<STATUS>`).
public struct StatusChange: Sendable, Hashable {
    public var seq: Int64
    public var budgetId: String
    public var budgetName: String
    public var status: BudgetStatus
    public var previousStatus: BudgetStatus
    public var spentAmount: Money
    public var totalAmount: Money
    public var at: Timestamp

    public var topic: String { "status." + status.rawValue }

    public var json: JSONValue {
        .object(JSONObject([
            ("seq", .number(String(seq))), ("budgetId", .string(budgetId)), ("budgetName", .string(budgetName)),
            ("status", .string(status.rawValue)), ("previousStatus", .string(previousStatus.rawValue)),
            ("spentAmount", .number(spentAmount.description)), ("totalAmount", .number(totalAmount.description)),
            ("at", .string(at.rfc3339)),
        ]))
    }
}

/// Something the ledger wants published, numbered by `seq`, persisted with the change that caused it.
public enum OutboundMessage: Sendable, Hashable {
    case alert(AlertRecord)
    case status(StatusChange)

    public var seq: Int64 {
        switch self {
        case .alert(let a): a.seq
        case .status(let s): s.seq
        }
    }

    public var topic: String {
        switch self {
        case .alert(let a): a.topic
        case .status(let s): s.topic
        }
    }

    public var payload: JSONValue {
        switch self {
        case .alert(let a): a.json()
        case .status(let s): s.json
        }
    }
}

extension Money {
    /// "5000.00", "0.006": at least two decimals, for messages people read.
    public var displayString: String {
        let text = description
        guard let dot = text.firstIndex(of: ".") else { return text + ".00" }
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        return decimals >= 2 ? text : text + String(repeating: "0", count: 2 - decimals)
    }
}
