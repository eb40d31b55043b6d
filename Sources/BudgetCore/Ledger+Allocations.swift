// `allocation.add`, `allocation.update`, `allocation.remove`: changing one allocation of an
// existing budget, with the validation of `budget.create` (CONTRACT §6).

extension Ledger {
    /// Adds an allocation to a budget. It counts costs booked from now on; earlier spend of the
    /// budget on that platform and service stays on the budget alone.
    ///
    /// Throws NOT_FOUND (budget), CONFLICT (the budget already has an allocation for that platform
    /// and service, or the id is taken), VALIDATION_FAILED (fields, or allocations over the total).
    public mutating func addAllocation(_ args: Args, at now: Timestamp) throws(LedgerError) -> (Budget, [OutboundMessage]) {
        var b = try allocationBudget(args)
        let platform = try args.requiredString("platform")
        guard let serviceType = try args.enumValue("serviceType", ServiceType.self) else {
            throw LedgerError(.validationFailed, "serviceType is required (\(ServiceType.allCases.map(\.rawValue).joined(separator: " ")))")
        }
        guard let amount = try args.amount("allocatedAmount") else { throw LedgerError(.validationFailed, "allocatedAmount is required") }
        if let existing = b.allocations.first(where: { $0.hasKey(platform: platform, serviceType: serviceType) }) {
            throw LedgerError(.conflict, "budget \(b.id) already has allocation \(existing.platform)/\(serviceType.rawValue) (\(existing.id)): change it with allocation.update")
        }
        let id = try args.string("id", max: EventLimits.maxIdLength) ?? IDs.make("al")
        if id.isEmpty { throw LedgerError(.validationFailed, "id must not be empty") }
        // Taken in this budget is CONFLICT too, as in another (`validate`), not "appears twice".
        if let taken = b.allocations.first(where: { $0.id == id }) {
            throw LedgerError(.conflict, "allocation id \(id) is already used by \(taken.platform)/\(taken.serviceType.rawValue) of budget \(b.id)")
        }
        b.allocations.append(Allocation(
            id: id, budgetId: b.id, platform: platform, serviceType: serviceType, allocatedAmount: amount,
            priority: try args.enumValue("priority", AllocationPriority.self) ?? .medium, isActive: try args.bool("isActive") ?? true
        ))
        try validate(b)
        budgets[b.id] = b
        return (b, [])
    }

    /// Changes an allocation's amount, priority or `isActive`. Raising the amount above its spend
    /// re-arms ALLOCATION_DEPLETED; lowering it to or below its spend fires it.
    ///
    /// Throws NOT_FOUND (budget or allocation), VALIDATION_FAILED (fields, or allocations over the total).
    public mutating func updateAllocation(_ args: Args, at now: Timestamp) throws(LedgerError) -> (Budget, [OutboundMessage]) {
        var b = try allocationBudget(args)
        let i = try allocationIndex(in: b, args)
        if let amount = try args.amount("allocatedAmount") { b.allocations[i].allocatedAmount = amount }
        if let priority = try args.enumValue("priority", AllocationPriority.self) { b.allocations[i].priority = priority }
        if let active = try args.bool("isActive") { b.allocations[i].isActive = active }
        try validate(b)
        budgets[b.id] = b
        var messages = rearm(budgetId: b.id, at: now)
        messages += evaluate(budgetId: b.id, allocationIndex: i, eventId: nil, at: now)
        return (budgets[b.id]!, messages)
    }

    /// Removes an allocation without spend (one with spend: CONFLICT; set `isActive` false instead).
    ///
    /// Throws NOT_FOUND (budget or allocation), CONFLICT (it has spend).
    public mutating func removeAllocation(_ args: Args, at now: Timestamp) throws(LedgerError) -> (Budget, [OutboundMessage]) {
        var b = try allocationBudget(args)
        let i = try allocationIndex(in: b, args)
        let a = b.allocations[i]
        if a.spentAmount > .zero {
            throw LedgerError(.conflict, "allocation \(a.platform)/\(a.serviceType.rawValue) (\(a.id)) has spent \(a.spentAmount) \(b.currency) and cannot be removed; set isActive false with allocation.update instead")
        }
        b.allocations.remove(at: i)
        budgets[b.id] = b
        return (b, [])
    }

    func allocationBudget(_ args: Args) throws(LedgerError) -> Budget {
        let id = try args.requiredString("budgetId", max: EventLimits.maxIdLength)
        guard let b = budgets[id] else { throw LedgerError(.notFound, "no budget \(id)") }
        return b
    }

    /// The allocation named by `id`, or else by `platform` + `serviceType`.
    func allocationIndex(in b: Budget, _ args: Args) throws(LedgerError) -> Int {
        if let id = try args.string("id", max: EventLimits.maxIdLength) {
            guard let i = b.allocations.firstIndex(where: { $0.id == id }) else {
                throw LedgerError(.notFound, "budget \(b.id) has no allocation \(id)")
            }
            return i
        }
        guard let platform = try args.string("platform"), !platform.isEmpty,
              let serviceType = try args.enumValue("serviceType", ServiceType.self) else {
            throw LedgerError(.validationFailed, "name the allocation by id, or by platform and serviceType")
        }
        guard let i = b.allocations.firstIndex(where: { $0.hasKey(platform: platform, serviceType: serviceType) }) else {
            throw LedgerError(.notFound, "budget \(b.id) has no allocation \(platform)/\(serviceType.rawValue)")
        }
        return i
    }
}
