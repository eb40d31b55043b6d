import BudgetCore
import BudgetStore

extension Engine {
    /// The window `optimization.list` looks at: `days` (1…365), default 30.
    func optimizationWindow(_ args: Args) throws -> Int {
        guard let days = try args.int("days") else { return OptimizationAnalyzer.defaultWindowDays }
        guard (1...365).contains(days) else { throw ControlFailure(.validationFailed, "days must be 1...365") }
        return Int(days)
    }

    /// `optimization.list` (CONTRACT §6): recomputes the recommendations from the stored usage
    /// of the last `days` (default 30) and today's catalog, with the statuses stored for their
    /// ids; filtered by `status`. Recommendations that were decided (not PENDING) but are no
    /// longer found are still listed, with their last figures and `active: false`.
    ///
    /// Cost: one pass over the window's events (each body parsed again) per call, O(events in
    /// the window); fine at today's volumes, a cache keyed by the last rowid would avoid it.
    func optimizationListOp(_ args: Args, _ w: StoreWriter, now: Timestamp) throws -> JSONValue {
        let status = try args.enumValue("status", OptimizationStatus.self)
        let days = try optimizationWindow(args)
        let stored = try w.reader.optimizations()
        var result: [Recommendation] = []
        var found: Set<String> = []
        for var r in try computeRecommendations(days: days, w, now: now) {
            try w.saveOptimizationSnapshot(id: r.id, snapshot: r.json, at: now)
            r.status = stored[r.id]?.status ?? .pending
            found.insert(r.id)
            result.append(r)
        }
        for s in stored.values where !found.contains(s.id) && s.status != .pending {
            guard var r = Recommendation(json: s.snapshot) else { continue }
            r.status = s.status
            r.active = false
            result.append(r)
        }
        return .array(result
            .filter { status == nil || $0.status == status }
            .sorted { ($0.active ? 0 : 1, $1.potentialSavings, $0.id) < ($1.active ? 0 : 1, $0.potentialSavings, $1.id) }
            .map(\.json))
    }

    /// `optimization.update` (CONTRACT §6): moves a listed recommendation along its workflow,
    /// PENDING → APPROVED or REJECTED, APPROVED → IMPLEMENTED (anything else is CONFLICT), and
    /// returns it with its last computed figures.
    func optimizationUpdateOp(_ args: Args, _ w: StoreWriter, now: Timestamp) throws -> JSONValue {
        let id = try args.requiredString("id", max: EventLimits.maxIdLength)
        guard let next = try args.enumValue("status", OptimizationStatus.self) else {
            throw ControlFailure(.validationFailed, "status is required: APPROVED, REJECTED or IMPLEMENTED")
        }
        guard let stored = try w.reader.optimization(id: id), var r = Recommendation(json: stored.snapshot) else {
            throw ControlFailure(.notFound, "no recommendation \(id) (optimization.list shows the current ones)")
        }
        guard stored.status.canMove(to: next) else {
            let allowed = switch stored.status {
            case .pending: "it can become APPROVED or REJECTED"
            case .approved: "it can only become IMPLEMENTED"
            case .rejected, .implemented: "that is final"
            }
            throw ControlFailure(.conflict, "recommendation \(id) is \(stored.status.rawValue): \(allowed)")
        }
        try w.setOptimizationStatus(id: id, status: next, at: now)
        r.status = next
        return r.json
    }

    /// Recommendations from the events of the last `days` days up to `now` and today's catalog.
    func computeRecommendations(days: Int, _ w: StoreWriter, now: Timestamp) throws -> [Recommendation] {
        var analyzer = OptimizationAnalyzer(catalog: pricer.catalog, now: now, windowDays: days)
        let from = now.adding(seconds: -Int64(days) * 86_400)
        // The booked spend of the window's days (root budgets: each cost once), for the impact rule.
        let roots = Dictionary(uniqueKeysWithValues: ledger.budgetsInOrder.filter { $0.parentId == nil }.map { ($0.id, $0.currency) })
        for row in try w.reader.dailySpend(budgetIds: Array(roots.keys), fromDay: from.civilDate.description, toDay: now.civilDate.description) {
            if let currency = roots[row.key.budgetId] { analyzer.addBookedSpend(row.amount, currency: currency) }
        }
        try w.reader.forEachUsageEvent(from: from, to: now) { stored in
            // Stored bodies were validated on the way in; one that no longer reads is skipped.
            guard let body = try? JSON.parse(stored.body).objectValue, let event = UsageEvent(storedBody: body) else { return }
            analyzer.add(event, time: stored.time, cost: stored.cost, currency: stored.currency)
        }
        return analyzer.recommendations()
    }
}
