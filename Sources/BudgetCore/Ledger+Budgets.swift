/// Reads typed, validated fields out of a control request's `args` (CONTRACT §6).
public struct Args: Sendable {
    public var object: JSONObject
    public init(_ object: JSONObject) { self.object = object }

    func has(_ key: String) -> Bool { object[key] != nil }

    public func string(_ key: String, max: Int = EventLimits.maxStringLength) throws(LedgerError) -> String? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw LedgerError(.validationFailed, "\(key) must be a string") }
        if UsageEventDecoder.exceeds(s, max) { throw LedgerError(.validationFailed, "\(key) is longer than \(max) characters") }
        return s
    }

    public func requiredString(_ key: String, max: Int = EventLimits.maxStringLength) throws(LedgerError) -> String {
        guard let s = try string(key, max: max), !s.isEmpty else { throw LedgerError(.validationFailed, "\(key) is required") }
        return s
    }

    public func bool(_ key: String) throws(LedgerError) -> Bool? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let b = v.boolValue else { throw LedgerError(.validationFailed, "\(key) must be true or false") }
        return b
    }

    public func int(_ key: String) throws(LedgerError) -> Int64? {
        guard let v = object[key], !v.isNull else { return nil }
        // A whole number however it is spelled (`5`, `5.0`, `5e0`): equal decimals are the same
        // value (§2), as for an event's `seq`.
        guard let text = v.numberText ?? v.stringValue,
              let n = Int64(text) ?? UsageEventDecoder.integralValue(text) else {
            throw LedgerError(.validationFailed, "\(key) must be an integer")
        }
        return n
    }

    public func amount(_ key: String) throws(LedgerError) -> Money? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let text = v.numberText ?? v.stringValue else {
            throw LedgerError(.validationFailed, "\(key) must be a number or a decimal string")
        }
        do { return try Money.parseAmount(text) } catch { throw LedgerError(.validationFailed, "\(key): \(error.message)") }
    }

    public func dateSpec(_ key: String) throws(LedgerError) -> DateSpec? {
        guard let text = try string(key) else { return nil }
        do { return try DateSpec(parsing: text) } catch {
            throw LedgerError(.validationFailed, "\(key) must be YYYY-MM-DD or RFC 3339: \(error.message)")
        }
    }

    public func instant(_ key: String) throws(LedgerError) -> Timestamp? {
        try dateSpec(key)?.startInstant
    }

    public func enumValue<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) throws(LedgerError) -> E? where E.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let e = E(rawValue: s) else {
            throw LedgerError(.validationFailed, "\(key) must be one of \(E.allCases.map(\.rawValue).joined(separator: " "))")
        }
        return e
    }
}

extension Ledger {
    /// Creates a budget from `budget.create` args, with CONTRACT §6's validation.
    public mutating func createBudget(_ args: Args, id newId: String, at now: Timestamp) throws(LedgerError) -> Budget {
        let id = try args.string("id", max: EventLimits.maxIdLength) ?? newId
        if id.isEmpty { throw LedgerError(.validationFailed, "id must not be empty") }
        if budgets[id] != nil { throw LedgerError(.conflict, "budget \(id) already exists") }
        let name = try args.requiredString("name")
        guard let type = try args.enumValue("budgetType", BudgetType.self) else {
            throw LedgerError(.validationFailed, "budgetType is required (MONTHLY QUARTERLY YEARLY PROJECT UNLIMITED)")
        }
        let total = try args.amount("totalAmount")
        if total == nil && type != .unlimited { throw LedgerError(.validationFailed, "totalAmount is required") }
        guard let start = try args.dateSpec("startDate") else { throw LedgerError(.validationFailed, "startDate is required") }
        // A child budget has its parent's currency (§6): without one of its own, it takes it.
        // The parent's id as stored: a canonically equal spelling (NFD for NFC) found it, and was
        // stored as given, byte for byte different from the parent's (an audit).
        let parentId = try args.string("parentId").map { budgets[$0]?.id ?? $0 }
        let currency = try Self.currency(args) ?? parentId.flatMap { budgets[$0]?.currency } ?? "USD"
        var budget = Budget(
            id: id, name: name, description: try args.string("description", max: EventLimits.maxDescriptionLength),
            budgetType: type, totalAmount: total ?? .zero, currency: currency,
            period: try Self.period(type: type, start: start, end: try args.dateSpec("endDate")),
            explicitEnd: try args.dateSpec("endDate"),
            alertThreshold80: try args.bool("alertThreshold80") ?? true,
            alertThreshold90: try args.bool("alertThreshold90") ?? true,
            alertThreshold100: try args.bool("alertThreshold100") ?? true,
            autoRenewal: try args.bool("autoRenewal") ?? false,
            parentId: parentId, selector: try Self.selector(args),
            createdBy: try args.string("createdBy"), createdAt: now, ordinal: nextOrdinal
        )
        if let allocations = args.object["allocations"], !allocations.isNull {
            budget.allocations = try Self.allocations(allocations, budgetId: id, existing: [])
        }
        try validate(budget)
        budgets[id] = budget
        order.append(id)
        refreshRoute(id)
        return budget
    }

    /// Updates a budget from `budget.update` args; returns it and the alerts and status events the
    /// change caused (a raised total re-arms, a lowered one or an enabled threshold fires).
    public mutating func updateBudget(_ args: Args, at now: Timestamp) throws(LedgerError) -> (Budget, [OutboundMessage]) {
        let id = try args.requiredString("id", max: EventLimits.maxIdLength)
        guard let old = budgets[id] else { throw LedgerError(.notFound, "no budget \(id)") }
        var b = old
        if let name = try args.string("name") {
            if name.isEmpty { throw LedgerError(.validationFailed, "name must not be empty") }
            b.name = name
        }
        if args.has("description") { b.description = try args.string("description", max: EventLimits.maxDescriptionLength) }
        if let type = try args.enumValue("budgetType", BudgetType.self) { b.budgetType = type }
        if let total = try args.amount("totalAmount") { b.totalAmount = total }
        if let currency = try Self.currency(args) { b.currency = currency }
        if let v = try args.bool("alertThreshold80") { b.alertThreshold80 = v }
        if let v = try args.bool("alertThreshold90") { b.alertThreshold90 = v }
        if let v = try args.bool("alertThreshold100") { b.alertThreshold100 = v }
        if let v = try args.bool("autoRenewal") { b.autoRenewal = v }
        if args.has("parentId") {
            b.parentId = try args.string("parentId").map { budgets[$0]?.id ?? $0 }
            // Moved under a parent without a currency given: it takes the parent's (§6), which
            // is refused below like any change of currency once it has costs.
            if !args.has("currency"), let parent = b.parentId.flatMap({ budgets[$0] }) { b.currency = parent.currency }
        }
        if args.has("selector") { b.selector = try Self.selector(args) }
        if let createdBy = try args.string("createdBy") { b.createdBy = createdBy }
        if args.has("startDate") || args.has("endDate") || b.budgetType != old.budgetType {
            let start = try args.dateSpec("startDate") ?? old.period.startSpec
            let end = args.has("endDate") ? try args.dateSpec("endDate") : old.explicitEnd
            b.period = try Self.period(type: b.budgetType, start: start, end: end)
            b.explicitEnd = end
        }
        if let status = try args.enumValue("status", BudgetStatus.self) {
            if status == .exceeded || status == .completed {
                throw LedgerError(.validationFailed, "status \(status.rawValue) is set by budgetd, not by budget.update")
            }
            // ACTIVE asked of an EXCEEDED budget changes nothing by itself (§6: it goes back
            // to ACTIVE when the total is raised above spent, which `rearm` does below): it
            // stays EXCEEDED while over, instead of announcing ACTIVE and EXCEEDED again.
            if !(status == .active && old.status == .exceeded) { b.status = status }
        }
        // A COMPLETED budget whose period (as updated) is over cannot be ACTIVE again: it would be
        // completed again within a second, announcing ACTIVE and COMPLETED at every such update.
        // Nor PAUSED: ACTIVE from there did the same in two steps (an audit's PAUSED, ACTIVE,
        // COMPLETED). CANCELLED it may be.
        if b.status == .active || b.status == .paused, old.status == .completed, let end = b.period.endExclusive, end <= now {
            throw LedgerError(.validationFailed, "budget \(id) is COMPLETED: its period ended at \(end.rfc3339); give a later endDate to make it \(b.status.rawValue) again")
        }
        // One renewal chain keeps its periods apart: an end moved past the renewal's start (or a
        // renewal's start before its predecessor's end) made two periods cover the same instants,
        // and an event naming the chain's id went to the older one (an audit).
        if b.period != old.period {
            if let next = b.successorId.flatMap({ budgets[$0] }), b.period.endExclusive.map({ $0 > next.period.start }) ?? true {
                throw LedgerError(.validationFailed, "budget \(id) was renewed as \(next.id) from \(next.period.start.rfc3339): its period cannot reach past that")
            }
            if let previous = b.predecessorId.flatMap({ budgets[$0] }), let end = previous.period.endExclusive, b.period.start < end {
                throw LedgerError(.validationFailed, "budget \(id) renews \(previous.id), which ends at \(end.rfc3339): its period cannot start before that")
            }
        }
        if let allocations = args.object["allocations"], !allocations.isNull {
            b.allocations = try Self.allocations(allocations, budgetId: id, existing: old.allocations)
        }
        if old.costCount > 0 {
            for (field, changed) in [
                ("currency", b.currency != old.currency), ("startDate", b.period.start != old.period.start),
                ("budgetType", b.budgetType != old.budgetType), ("parentId", b.parentId != old.parentId),
            ] where changed {
                throw LedgerError(.conflict, "\(field) of budget \(id) cannot change: it has costs")
            }
        }
        if b.currency != old.currency, budgets.values.contains(where: { $0.parentId == id }) {
            throw LedgerError(.validationFailed, "currency of budget \(id) cannot change: its children use \(old.currency)")
        }
        try validate(b)
        budgets[id] = b
        var messages: [OutboundMessage] = []
        var resumedExceeded: OutboundMessage?
        if b.status != old.status {
            messages.append(.status(statusChange(b, from: old.status, at: now)))
            // A budget resumed while over its total is EXCEEDED, not ACTIVE (§5: only an ACTIVE
            // budget becomes EXCEEDED, so it happens now rather than never). When BUDGET_EXCEEDED
            // has yet to fire (the total was just lowered below spent), `evaluate` below fires it
            // and makes the budget EXCEEDED; when it fired before, nothing else would, whatever
            // the new total.
            if b.status == .active, !b.isUnlimited, b.spentAmount > b.totalAmount, b.fired.contains(.budgetExceeded) {
                b.status = .exceeded
                budgets[id] = b
                resumedExceeded = .status(statusChange(b, from: .active, at: now))
            }
        }
        messages += rearm(budgetId: id, at: now)
        var evaluated = evaluate(budgetId: id, allocationIndex: nil, eventId: nil, at: now)
        if let resumedExceeded {
            // §5's order: the thresholds the same change fires come before status.EXCEEDED (a
            // threshold switched on while CANCELLED came after it, an audit).
            let after = evaluated.firstIndex { m in
                guard case .alert(let a) = m else { return true }
                return !(AlertType.thresholds.contains(a.type) || a.type == .budgetExceeded)
            } ?? evaluated.endIndex
            evaluated.insert(resumedExceeded, at: after)
        }
        messages += evaluated
        refreshRoute(id)
        return (budgets[id]!, messages)
    }

    /// Checks a budget about to be stored: amounts, allocations, parent (exists, same currency, no cycle).
    func validate(_ b: Budget) throws(LedgerError) {
        // A renewing period shorter than an hour renews without end: a PROJECT of one nanosecond
        // started a second ago made the next tick create ~10⁹ successors in one transaction, and
        // the daemon died of it at every start (an audit).
        if b.autoRenewal, let end = b.period.endExclusive, end - b.period.start < Self.shortestRenewingPeriod {
            throw LedgerError(.validationFailed, "autoRenewal needs a period of at least an hour")
        }
        if b.budgetType != .unlimited {
            if b.totalAmount <= .zero { throw LedgerError(.validationFailed, "totalAmount must be greater than 0") }
            let sum = b.allocations.reduce(Money.zero) { $0 + $1.allocatedAmount }
            if sum > b.totalAmount {
                throw LedgerError(.validationFailed, "Total allocation (\(sum)) exceeds budget total (\(b.totalAmount))")
            }
        }
        // Allocation ids are unique across budgets (the store's primary key): a client-chosen id
        // that is taken must be refused here, not fail the whole batch's commit.
        var ids: Set<String> = []
        for a in b.allocations {
            if a.id.isEmpty { throw LedgerError(.validationFailed, "an allocation id must not be empty") }
            if !ids.insert(a.id).inserted { throw LedgerError(.validationFailed, "allocation id \(a.id) appears twice") }
        }
        for other in budgets.values where other.id != b.id {
            if let taken = other.allocations.first(where: { ids.contains($0.id) }) {
                throw LedgerError(.conflict, "allocation id \(taken.id) is already used by budget \(other.id)")
            }
        }
        if let parentId = b.parentId {
            // Its own parent is a cycle (CONTRACT §6), also when the budget is being created.
            if parentId == b.id { throw LedgerError(.validationFailed, "parentId \(parentId) would make a cycle of parents") }
            guard let parent = budgets[parentId] else { throw LedgerError(.notFound, "parent budget \(parentId) not found") }
            if parent.currency != b.currency {
                throw LedgerError(.validationFailed, "a child budget has its parent's currency (\(parent.currency)), not \(b.currency)")
            }
            var seen: Set<String> = [b.id]
            var current: String? = parentId
            while let c = current {
                if seen.contains(c) { throw LedgerError(.validationFailed, "parentId \(parentId) would make a cycle of parents") }
                seen.insert(c)
                current = budgets[c]?.parentId
            }
        }
    }

    /// The shortest period `autoRenewal` accepts: an hour, in nanoseconds.
    static let shortestRenewingPeriod: Int64 = 3_600_000_000_000

    static func currency(_ args: Args) throws(LedgerError) -> String? {
        guard let c = try args.string("currency").map(UsageEventDecoder.uppercased) else { return nil }
        if !UsageEventDecoder.isCurrencyCode(c) { throw LedgerError(.validationFailed, "currency must be a 3-letter code") }
        return c
    }

    static func period(type: BudgetType, start: DateSpec, end: DateSpec?) throws(LedgerError) -> Period {
        do { return try Period.make(type: type, start: start, end: end) } catch {
            throw LedgerError(.validationFailed, error.message)
        }
    }

    static func selector(_ args: Args) throws(LedgerError) -> JSONObject? {
        guard let v = args.object["selector"], !v.isNull else { return nil }
        guard let o = v.objectValue else { throw LedgerError(.validationFailed, "selector must be an object of metadata key → value") }
        return o.count == 0 ? nil : o
    }

    /// Parses an allocation list; allocations keep their id and spend when (platform, serviceType)
    /// matches an existing one, and one with spend cannot be dropped.
    static func allocations(_ value: JSONValue, budgetId: String, existing: [Allocation]) throws(LedgerError) -> [Allocation] {
        guard let items = value.arrayValue else { throw LedgerError(.validationFailed, "allocations must be an array") }
        var result: [Allocation] = []
        for (i, item) in items.enumerated() {
            guard let o = item.objectValue else { throw LedgerError(.validationFailed, "allocations[\(i)] must be an object") }
            let a = Args(o)
            let platform = try a.requiredString("platform")
            guard let serviceType = try a.enumValue("serviceType", ServiceType.self) else {
                throw LedgerError(.validationFailed, "allocations[\(i)].serviceType is required")
            }
            guard let amount = try a.amount("allocatedAmount") else {
                throw LedgerError(.validationFailed, "allocations[\(i)].allocatedAmount is required")
            }
            if result.contains(where: { $0.hasKey(platform: platform, serviceType: serviceType) }) {
                throw LedgerError(.validationFailed, "allocations are unique by platform and serviceType: \(platform)/\(serviceType.rawValue) twice")
            }
            let priority = try a.enumValue("priority", AllocationPriority.self)
            if var old = existing.first(where: { $0.hasKey(platform: platform, serviceType: serviceType) }) {
                old.allocatedAmount = amount
                if let priority { old.priority = priority }
                if let active = try a.bool("isActive") { old.isActive = active }
                result.append(old)
            } else {
                result.append(Allocation(
                    id: try a.string("id") ?? IDs.make("al"), budgetId: budgetId, platform: platform,
                    serviceType: serviceType, allocatedAmount: amount, priority: priority ?? .medium,
                    isActive: try a.bool("isActive") ?? true
                ))
            }
        }
        // Kept is by platform and serviceType, as matched above, not by id: a new allocation
        // given the id of one with spend would otherwise drop that spend (an audit's "Renamed"
        // allocation taking over `al_a`'s id, its OpenAI/API spend gone).
        for old in existing where old.spentAmount > .zero && !result.contains(where: { $0.hasKey(platform: old.platform, serviceType: old.serviceType) }) {
            throw LedgerError(.conflict, "allocation \(old.platform)/\(old.serviceType.rawValue) has spend and cannot be removed")
        }
        return result
    }
}

/// Random ids with a type prefix, e.g. `b_3f9c0a1d2e4b5c6d`.
public enum IDs {
    public static func make(_ prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        let n = rng.next() as UInt64
        let hex = String(n, radix: 16)
        return prefix + "_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Ids in the same `prefix_16hex` form as `IDs.make`, but rising with time: the top 44 bits are
/// milliseconds since 1970, the low 20 a counter that starts at a random value. Rows keyed by
/// them are appended at the end of their primary-key index instead of at random places in it,
/// which keeps the index's working set small however many rows there are (issue 8). Unique
/// while the clock does not go back to a millisecond already used with the same counter value.
public struct SortableIDs: Sendable {
    private var counter: UInt64
    private var last: UInt64 = 0

    public init(seed: UInt64) { counter = seed & 0xFFFFF }

    public mutating func next(_ prefix: String, at time: Timestamp) -> String {
        let millis = UInt64(max(0, time.nanosecondsSinceEpoch / 1_000_000)) & 0xFFF_FFFF_FFFF
        counter = (counter + 1) & 0xFFFFF
        // Never below the previous id of this generator, even if the clock steps back.
        let n = max(millis << 20 | counter, last &+ 1)
        last = n
        return Self.format(prefix, n)
    }

    /// `prefix_` and `n` as 16 lowercase hex digits, written in one allocation (an id per cost:
    /// `String(radix:)`, the padding and the joins were four).
    public static func format(_ prefix: String, _ n: UInt64) -> String {
        let p = prefix.utf8
        return String(unsafeUninitializedCapacity: p.count + 17) { buffer in
            var i = 0
            for b in p {
                buffer[i] = b
                i += 1
            }
            buffer[i] = UInt8(ascii: "_")
            i += 1
            for shift in stride(from: 60, through: 0, by: -4) {
                let digit = UInt8(truncatingIfNeeded: n >> UInt64(shift)) & 0xF
                buffer[i] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                i += 1
            }
            return i
        }
    }
}
