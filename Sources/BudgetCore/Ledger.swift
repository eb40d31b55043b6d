/// An error of a ledger operation, with the control error code it maps to (CONTRACT §6).
public struct LedgerError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case badRequest = "BAD_REQUEST", notFound = "NOT_FOUND", validationFailed = "VALIDATION_FAILED"
        case conflict = "CONFLICT"
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

/// What booking one cost changed: where it went and what must be published.
public struct Booking: Sendable, Hashable {
    /// The allocation of the budget itself the cost counted against, if any.
    public var allocationId: String?
    /// Every budget whose totals changed (the budget and its ancestors).
    public var touchedBudgets: BudgetChain
    public var messages: [OutboundMessage]
}

/// Where routing sent an event (`Ledger.routeTarget`): the budget, its currency, and its place
/// among the ledger's routing candidates (valid for the ledger it came from: budgets are never
/// removed, so a place stays the same budget's).
public struct RouteTarget: Sendable, Hashable {
    public let budgetId: String
    public let currency: String
    let position: Int
}

/// A budget and its ancestors, nearest first (empty for an unknown budget). The first id is held
/// inline, so a budget without a parent, the common case, costs no allocation: a booking's
/// arrays were four of an event's fifteen allocations (issue 8).
public struct BudgetChain: RandomAccessCollection, Sendable, Hashable, ExpressibleByArrayLiteral {
    /// nil only when the chain is empty.
    private let head: String?
    private let tail: [String]

    public init(_ ids: [String]) {
        head = ids.first
        tail = ids.count > 1 ? Array(ids.dropFirst()) : []
    }

    public init(arrayLiteral ids: String...) { self.init(ids) }

    /// A budget without an ancestor.
    init(single id: String) {
        head = id
        tail = []
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { head == nil ? 0 : 1 + tail.count }
    public subscript(position: Int) -> String { position == 0 ? head! : tail[position - 1] }
}

/// The accounting state: budgets with running totals and alert state, and the outbound `seq`.
///
/// One writer owns it (STYLE.md): every change goes through these methods in order, so the same
/// input log gives the same state. It does no I/O; the caller persists what it reports.
public struct Ledger: Sendable {
    public internal(set) var budgets: [String: Budget] = [:]
    /// Budget ids, oldest first: the tie-breaker of routing.
    public internal(set) var order: [String] = []
    /// The last `seq` handed out to an alert or status event.
    public internal(set) var lastSeq: Int64
    /// What routing needs of each budget (and its parent, for `chain`), in `order`; refreshed
    /// when a budget is created or updated or its period renewed (`refreshRoute`).
    var candidates: [RouteCandidate] = []
    /// UNPRICED_USAGE alerts raised: platform, model and month (see `unpricedKey`).
    var unpricedAlerted: Set<String> = []
    /// Settings of SPENDING_SPIKE and LOW_BUDGET.
    public var settings = AlertSettings()
    /// Hourly spend by cost time, per budget and per "budget/allocation".
    var history: [String: HourlySpend] = [:]
    /// Keys added to `history` so far: a place in it (`Dictionary.Index`) taken when this
    /// count was n stays valid while it is n (updating a value in place keeps it).
    var historyInsertions = 0
    /// Keys of `history` with changed hours (`HourlySpend.changedHours`) since `takeChangedHistory`.
    var changedHistoryKeys: [String] = []
    /// The places of a budget's and its matching allocation's history keys by the budget's
    /// routing position, with `historyInsertions` when they were taken (`recordHistory`).
    var historyPlaceCache: [HistoryPlaceCache?] = []
    /// The hour of the last SPENDING_SPIKE per budget or "budget/allocation" (once per window).
    var lastSpikeHour: [String: Int64] = [:]
    var candidateIndex: [String: Int] = [:]
    /// Each candidate's place in `budgets`, valid while `budgets.count` is `budgetSlotsCount`
    /// (`budgetSlot(ofCandidate:)`).
    var budgetSlots: [Dictionary<String, Budget>.Index] = []
    var budgetSlotsCount = -1
    /// Which candidates an event's metadata could match (`RouteIndex`).
    var routeIndex = RouteIndex()
    /// false: `evaluate` runs every rule on a copy of the budget even when its in-place check
    /// finds nothing due (for the tests that compare the two).
    var evaluatesInPlace = true

    public init(budgets: [Budget] = [], lastSeq: Int64 = 0) {
        self.lastSeq = lastSeq
        for b in budgets.sorted(by: { $0.ordinal < $1.ordinal }) {
            self.budgets[b.id] = b
            order.append(b.id)
            refreshRoute(b.id)
        }
    }

    /// Brings the routing view of a budget up to date after it was created or changed.
    mutating func refreshRoute(_ id: String) {
        guard let b = budgets[id] else { return }
        let candidate = RouteCandidate(b)
        if let i = candidateIndex[id] {
            candidates[i] = candidate
            routeIndex.update(position: i, candidate)
        } else {
            candidateIndex[id] = candidates.count
            routeIndex.update(position: candidates.count, candidate)
            candidates.append(candidate)
        }
    }

    public subscript(id: String) -> Budget? { budgets[id] }

    public var budgetsInOrder: [Budget] { order.compactMap { budgets[$0] } }

    var nextOrdinal: Int64 { (order.last.flatMap { budgets[$0]?.ordinal } ?? 0) + 1 }

    mutating func nextSeq() -> Int64 {
        lastSeq += 1
        return lastSeq
    }

    // MARK: Routing and booking

    /// The budget an event with these fields goes to (CONTRACT §4), or nil.
    public func route(budgetId: String?, metadata: JSONObject?, time: Timestamp) -> String? {
        routePosition(budgetId: budgetId, metadata: metadata, time: time).map { candidates[$0].id }
    }

    /// Why an explicit budget id routes nowhere at `time` (CONTRACT §4): unknown, or the budget
    /// of its chain of successors that covers the time is CANCELLED (named, also when it is a
    /// successor), or none covers it.
    /// `timeName`: what the time is, in the reason ("costDate").
    public func unroutedReason(budgetId id: String, time: Timestamp, timeName: String? = nil) -> String {
        let when = (timeName.map { $0 + " " } ?? "") + time.rfc3339
        guard let start = candidateIndex[id] else { return "unknown budget \(id)" }
        let candidateIndex = self.candidateIndex
        let b = candidates[Router.chainPosition(from: start, time: time, candidates: candidates) { candidateIndex[$0] }]
        guard b.covers(time) else { return "budget \(id) does not cover \(when)" }
        if b.status == .cancelled { return b.id == id ? "budget \(id) is CANCELLED" : "budget \(b.id) (renewing \(id)) is CANCELLED" }
        return "budget \(id) does not cover \(when)"
    }

    /// `route`'s budget with its currency and its place among the routing candidates, for
    /// `book(…, routed:)`: neither the currency nor the booking then hashes the budget's id
    /// again (issue 8: two of a cost's seven String-keyed lookups, LedgerBench).
    public func routeTarget(budgetId: String?, metadata: JSONObject?, time: Timestamp) -> RouteTarget? {
        guard let p = routePosition(budgetId: budgetId, metadata: metadata, time: time) else { return nil }
        return RouteTarget(budgetId: candidates[p].id, currency: candidates[p].currency, position: p)
    }

    private func routePosition(budgetId: String?, metadata: JSONObject?, time: Timestamp) -> Int? {
        // The lookup captures the table, not `self` (a closure over `self` copied the ledger).
        let candidateIndex = self.candidateIndex
        return Router.routePosition(budgetId: budgetId, metadata: metadata, time: time, candidates: candidates, index: routeIndex) {
            candidateIndex[$0]
        }
    }

    /// The place in `budgets` of the budget at routing position `position`. The places are
    /// taken again after a budget was added (a place stays valid while nothing is added to the
    /// table: budgets are never removed, and updating a value in place or copying the table
    /// keeps it).
    mutating func budgetSlot(ofCandidate position: Int) -> Dictionary<String, Budget>.Index {
        if budgetSlotsCount != budgets.count {
            budgetSlots = candidates.map { budgets.index(forKey: $0.id)! }
            budgetSlotsCount = budgets.count
        }
        return budgetSlots[position]
    }

    /// The currency of a budget, if it exists (without copying the budget out of the table).
    public func currency(ofBudget id: String) -> String? { budgets[id]?.currency }

    /// The budget and its ancestors, nearest first (cycles are refused at creation; guarded anyway).
    ///
    /// Walked through the routing view, whose entries are read in place: reading a parent through
    /// `budgets` copied each budget (issue 8: a few per cent of the engine thread).
    public func chain(from id: String) -> [String] {
        var result: [String] = []
        var current: String? = id
        while let c = current, let i = candidateIndex[c], !result.contains(c) {
            result.append(c)
            current = candidates[i].parentId
        }
        return result
    }

    /// Books a cost to a budget: it counts there, in every ancestor, and in each one's matching
    /// allocation; then the alert rules run, in the order of CONTRACT §5.
    public mutating func book(
        amount: Money, budgetId: String, platform: String, serviceType: ServiceType,
        eventId: String?, costTime: Timestamp? = nil, at now: Timestamp, rearming: Bool = false, routed: RouteTarget? = nil
    ) -> Booking {
        // The booked budget's place, found once: its parent decides the chain, and the loops
        // below start from it (a chain read from the routing view hashed the id once more).
        // From routing's place when the caller routed to this budget (`routeTarget`).
        let candidate = routed.flatMap { $0.budgetId == budgetId ? $0.position : nil }
        let known = candidate.map { budgetSlot(ofCandidate: $0) }
        guard let bookedSlot = known ?? budgets.index(forKey: budgetId) else {
            return Booking(allocationId: nil, touchedBudgets: [], messages: [])
        }
        let parentId = budgets.values[bookedSlot].parentInPlace()
        let ids = budgetChain(from: budgetId, parentId: parentId)
        var allocationId: String?
        // The booked budget's matching allocation, from the first loop for the second (its
        // place, `bookedSlot`, stays valid: nothing is added to or removed from the table
        // between them): one scan of its allocations fewer per cost (issue 8, LedgerBench).
        var firstAllocationIndex: Int?
        // And its places in the spend history, which the rules read again for the spike check,
        // valid while no key is added to the history after them (an ancestor's first cost adds
        // one): two hashes fewer per cost.
        var firstHistory: (places: HistoryPlaces, insertions: Int)?
        // Counted in every budget of the chain (and its matching allocation), with the spike
        // history, before any alert rule runs. The chain starts with the booked budget.
        for (position, id) in ids.enumerated() {
            let slot = position == 0 ? bookedSlot : budgets.index(forKey: id)
            let match = slot.flatMap { addCost(amount, at: $0, platform: platform, serviceType: serviceType) }
            let places = recordHistory(
                amount: amount, budgetId: id, allocationKey: match?.historyKey, allocationIndex: match?.index, at: costTime ?? now,
                candidate: position == 0 ? candidate : nil
            )
            if position == 0 {
                allocationId = match?.id
                firstAllocationIndex = match?.index
                firstHistory = (places, historyInsertions)
            }
        }
        // Then the rules, budget by budget. An ancestor's place and matching allocation are
        // looked up again rather than kept in arrays from the loop above: for a budget without
        // an ancestor, the common case, a booking then allocates nothing (issue 8: its arrays
        // were four of an event's fifteen allocations).
        var messages: [OutboundMessage] = []
        for (position, id) in ids.enumerated() {
            let slot = position == 0 ? bookedSlot : budgets.index(forKey: id)
            let allocationIndex = position == 0
                ? firstAllocationIndex
                : slot.flatMap { budgets.values[$0].allocationIndex(platform: platform, serviceType: serviceType) }
            let historyPlaces = position == 0 && firstHistory?.insertions == historyInsertions ? firstHistory?.places : nil
            let fired = alerts(
                budgetId: id, slot: slot, allocationIndex: allocationIndex, historyPlaces: historyPlaces, eventId: eventId,
                rearming: rearming, at: now
            )
            // Almost always nothing: then no call to append at all (`+=` of an empty array to an
            // empty one still cost ~150 instructions per cost: LedgerBench).
            if !fired.isEmpty { messages += fired }
        }
        return Booking(allocationId: allocationId, touchedBudgets: ids, messages: messages)
    }

    /// `chain(from: id)` of an existing budget whose parent is `parentId`, without an array when
    /// it has no ancestor (a parent that is none, itself or unknown), the common case.
    func budgetChain(from id: String, parentId: String?) -> BudgetChain {
        guard let parent = parentId, parent != id, candidateIndex[parent] != nil else { return BudgetChain(single: id) }
        return BudgetChain(chain(from: id))
    }

    /// Counts a cost in the budget at `slot` and in its matching allocation, if any (in place:
    /// a copy taken out of the dictionary would copy its allocations on write).
    private mutating func addCost(
        _ amount: Money, at slot: Dictionary<String, Budget>.Index, platform: String, serviceType: ServiceType
    ) -> (index: Int, id: String, historyKey: String)? {
        budgets.values[slot].spentAmount += amount
        budgets.values[slot].costCount += 1
        return budgets.values[slot].addToAllocation(amount, platform: platform, serviceType: serviceType)
    }

    /// What a booking fires for one budget of its chain, once every budget of it is counted.
    private mutating func alerts(
        budgetId: String, slot: Dictionary<String, Budget>.Index?, allocationIndex: Int?, historyPlaces: HistoryPlaces?,
        eventId: String?, rearming: Bool, at now: Timestamp
    ) -> [OutboundMessage] {
        // A negative amount (a credit) re-arms first: a status.ACTIVE it causes comes before
        // what the same booking fires (LOW_BUDGET), as when a raised total re-arms (§5's order).
        let rearmed = rearming ? rearm(budgetId: budgetId, at: now) : []
        let fired = evaluate(
            budgetId: budgetId, slot: rearming ? nil : slot, allocationIndex: allocationIndex,
            historyPlaces: rearming ? nil : historyPlaces, eventId: eventId, fromCost: true, at: now
        )
        return rearmed.isEmpty ? fired : rearmed + fired
    }

    /// Fires what is crossed and not yet fired for one budget: thresholds lowest first,
    /// BUDGET_EXCEEDED, status.EXCEEDED, ALLOCATION_DEPLETED.
    ///
    /// `slot`: the budget's place in `budgets`, when the caller has it; `historyPlaces`: its and
    /// its allocation `allocationIndex`'s places in `history`, when the caller has them (valid).
    mutating func evaluate(
        budgetId: String, slot known: Dictionary<String, Budget>.Index? = nil, allocationIndex: Int?,
        historyPlaces: HistoryPlaces? = nil, eventId: String?, fromCost: Bool = false, at now: Timestamp
    ) -> [OutboundMessage] {
        // Almost every booking fires nothing: that is found with the budget read in place, for
        // the copy out of the table and back cost a retain and a release of each of its fields
        // and a second hash of its id (issue 8). The same predicates decide below.
        guard let slot = known ?? budgets.index(forKey: budgetId) else { return [] }
        let check = budgets.values[slot].quietCheck(allocationIndex: allocationIndex, settings: settings, at: now)
        // A CANCELLED budget (an ancestor: nothing is routed to one) still counts its children's
        // spend but pages nobody: an operator cancelled it (an audit's THRESHOLD_80 … EXCEEDED of
        // a cancelled parent). Set ACTIVE again, `budget.update` evaluates it and fires what is due.
        // (Read by `quietCheck`, in place: `budgets.values[slot].status` copied the budget, ~850
        // instructions a cost in LedgerBench.)
        if check.cancelled { return [] }
        if evaluatesInPlace && !check.due && !(fromCost && (
            spikeFigures(key: budgetId, place: historyPlaces?.budget, periodStart: check.periodStart, at: now) != nil
                || settings.allocationSpikes && check.allocationKey.map {
                    spikeFigures(key: $0, place: historyPlaces?.allocation, periodStart: check.periodStart, at: now) != nil
                } == true
        )) {
            return []
        }
        var b = budgets.values[slot]
        var messages: [OutboundMessage] = []
        for type in AlertType.thresholds where b.isThresholdDue(type) {
            b.fired.insert(type)
            messages.append(.alert(alert(type, budget: b, threshold: type.thresholdPercent, eventId: eventId, at: now)))
        }
        if b.isExceededDue {
            b.fired.insert(.budgetExceeded)
            messages.append(.alert(alert(.budgetExceeded, budget: b, eventId: eventId, at: now)))
            if b.status == .active {
                b.status = .exceeded
                messages.append(.status(statusChange(b, from: .active, at: now)))
            }
        }
        let indices = allocationIndex.map { [$0] } ?? Array(b.allocations.indices)
        var spikes: [OutboundMessage] = []
        for i in indices {
            let a = b.allocations[i]
            guard a.isDepletedUnfired else { continue }
            b.allocations[i].depletedFired = true
            var record = alert(.allocationDepleted, budget: b, eventId: eventId, at: now)
            record.platform = a.platform
            record.serviceType = a.serviceType
            record.spentPercentage = a.allocatedAmount > .zero ? a.spentAmount.percentage(of: a.allocatedAmount) : "100"
            record.spentAmount = a.spentAmount
            record.totalAmount = a.allocatedAmount
            record.message = "\(b.name): allocation \(a.platform)/\(a.serviceType.rawValue) has spent \(a.spentAmount.displayString) of \(a.allocatedAmount.displayString) \(b.currency)"
            messages.append(.alert(record))
        }
        // SPENDING_SPIKE (the budget's, then its allocation's), then LOW_BUDGET: §5's order.
        // Only a cost (an event) can start a spike; a change of settings or totals cannot.
        if fromCost {
            if let m = spike(b, allocation: nil, eventId: eventId, at: now) { spikes.append(m) }
            if settings.allocationSpikes, let i = allocationIndex, let m = spike(b, allocation: b.allocations[i], eventId: eventId, at: now) {
                spikes.append(m)
            }
        }
        messages += spikes
        if let m = lowBudget(&b, eventId: eventId, at: now) { messages.append(m) }
        budgets.values[slot] = b
        return messages
    }

    /// Re-arms what spent no longer crosses (after the total was raised or a credit), and turns
    /// EXCEEDED back to ACTIVE when spent is no longer over the total.
    mutating func rearm(budgetId: String, at now: Timestamp) -> [OutboundMessage] {
        guard var b = budgets[budgetId] else { return [] }
        var messages: [OutboundMessage] = []
        for type in AlertType.thresholds {
            if let p = type.thresholdPercent, !b.spentAmount.reaches(percent: p, of: b.totalAmount) { b.fired.remove(type) }
        }
        if b.spentAmount <= b.totalAmount {
            b.fired.remove(.budgetExceeded)
            if b.status == .exceeded {
                b.status = .active
                messages.append(.status(statusChange(b, from: .exceeded, at: now)))
            }
        }
        for i in b.allocations.indices where b.allocations[i].spentAmount < b.allocations[i].allocatedAmount {
            b.allocations[i].depletedFired = false
        }
        budgets[budgetId] = b
        return messages
    }

    mutating func alert(_ type: AlertType, budget b: Budget, threshold: Int? = nil, eventId: String?, at now: Timestamp) -> AlertRecord {
        let seq = nextSeq()
        let percentage = b.spentPercentage
        let message = switch type {
        case .budgetExceeded:
            "\(b.name) is over budget: spent \(b.spentAmount.displayString) of \(b.totalAmount.displayString) \(b.currency) (\(percentage)%)"
        default:
            "\(b.name) has spent \(percentage)% of \(b.totalAmount.displayString) \(b.currency)"
        }
        return AlertRecord(
            id: "a_\(seq)", seq: seq, type: type, budgetId: b.id, budgetName: b.name,
            threshold: threshold, spentPercentage: percentage, spentAmount: b.spentAmount,
            totalAmount: b.totalAmount, currency: b.currency, triggeredAt: now, eventId: eventId, message: message
        )
    }

    mutating func statusChange(_ b: Budget, from previous: BudgetStatus, at now: Timestamp) -> StatusChange {
        StatusChange(
            seq: nextSeq(), budgetId: b.id, budgetName: b.name, status: b.status,
            previousStatus: previous, spentAmount: b.spentAmount, totalAmount: b.totalAmount, at: now
        )
    }
}
