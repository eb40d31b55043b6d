// Cost-optimization recommendations (issue 5 item 5; CONTRACT §6 `optimization.list`).
//
// Every figure is exact: catalog prices are applied with the `Pricer`'s own rules and summed
// as exact decimals, stored costs are summed as `Money`, and each total is rounded once.
// See docs/recommendations.md for the rules and their thresholds.

/// What a recommendation proposes.
public enum OptimizationType: String, Sendable, Hashable, CaseIterable {
    case changeTier = "CHANGE_TIER", batchRequests = "BATCH_REQUESTS"
    case cacheResults = "CACHE_RESULTS", reduceFrequency = "REDUCE_FREQUENCY"
}

/// How much of the window's spend a recommendation would save (``OptimizationAnalyzer/impact``).
public enum OptimizationImpact: String, Sendable, Hashable, CaseIterable {
    case low = "LOW", medium = "MEDIUM", high = "HIGH"
}

/// Where a recommendation is in its workflow.
public enum OptimizationStatus: String, Sendable, Hashable, CaseIterable {
    case pending = "PENDING", approved = "APPROVED", rejected = "REJECTED", implemented = "IMPLEMENTED"

    /// PENDING → APPROVED or REJECTED; APPROVED → IMPLEMENTED. Nothing else, not even a
    /// status to itself (a repeated approval is a client's mistake worth telling).
    public func canMove(to next: OptimizationStatus) -> Bool {
        switch (self, next) {
        case (.pending, .approved), (.pending, .rejected), (.approved, .implemented): true
        default: false
        }
    }
}

/// One recommendation: CONTRACT §6's shape plus `model` (the catalog item, or the actor of a
/// scrape), `currency`, `windowDays` and `active` (whether the latest computation still finds it).
public struct Recommendation: Sendable, Hashable {
    public var id: String
    public var platform: String
    public var serviceType: ServiceType
    public var optimizationType: OptimizationType
    public var model: String?
    public var currency: String
    public var currentCost: Money
    public var projectedCost: Money
    public var potentialSavings: Money
    public var recommendation: String
    public var impact: OptimizationImpact
    public var status: OptimizationStatus
    public var windowDays: Int
    public var active: Bool

    public init(
        id: String, platform: String, serviceType: ServiceType, optimizationType: OptimizationType, model: String?,
        currency: String, currentCost: Money, projectedCost: Money, recommendation: String, impact: OptimizationImpact,
        status: OptimizationStatus = .pending, windowDays: Int, active: Bool = true
    ) {
        self.id = id
        self.platform = platform
        self.serviceType = serviceType
        self.optimizationType = optimizationType
        self.model = model
        self.currency = currency
        self.currentCost = currentCost
        self.projectedCost = projectedCost
        self.potentialSavings = currentCost - projectedCost
        self.recommendation = recommendation
        self.impact = impact
        self.status = status
        self.windowDays = windowDays
        self.active = active
    }

    public var json: JSONValue {
        .object(JSONObject([
            ("id", .string(id)), ("platform", .string(platform)), ("serviceType", .string(serviceType.rawValue)),
            ("optimizationType", .string(optimizationType.rawValue)), ("model", model.map(JSONValue.string) ?? .null),
            ("currency", .string(currency)), ("currentCost", .number(currentCost)),
            ("projectedCost", .number(projectedCost)), ("potentialSavings", .number(potentialSavings)),
            ("recommendation", .string(recommendation)), ("impact", .string(impact.rawValue)),
            ("status", .string(status.rawValue)), ("windowDays", .number(windowDays)), ("active", .bool(active)),
        ]))
    }

    /// Reads back what `json` wrote (a stored snapshot); nil for anything else.
    public init?(json: JSONValue) {
        guard let o = json.objectValue,
              let id = o["id"]?.stringValue, let platform = o["platform"]?.stringValue,
              let service = o["serviceType"]?.stringValue.flatMap(ServiceType.init(rawValue:)),
              let type = o["optimizationType"]?.stringValue.flatMap(OptimizationType.init(rawValue:)),
              let currency = o["currency"]?.stringValue,
              let current = o["currentCost"]?.numberText.flatMap({ try? Money(parsing: $0) }),
              let projected = o["projectedCost"]?.numberText.flatMap({ try? Money(parsing: $0) }),
              let text = o["recommendation"]?.stringValue,
              let impact = o["impact"]?.stringValue.flatMap(OptimizationImpact.init(rawValue:)),
              let status = o["status"]?.stringValue.flatMap(OptimizationStatus.init(rawValue:)),
              let window = o["windowDays"]?.numberText.flatMap({ Int($0) })
        else { return nil }
        self.init(
            id: id, platform: platform, serviceType: service, optimizationType: type, model: o["model"]?.stringValue,
            currency: currency, currentCost: current, projectedCost: projected, recommendation: text, impact: impact,
            status: status, windowDays: window, active: o["active"]?.boolValue ?? true
        )
    }

    /// A stable id: the same finding gets the same id on every computation, whatever the window
    /// or the amounts, so a status set on it sticks. FNV-1a (64 bits) of type, platform
    /// (lowercased), service, subject (lowercased), target (lowercased) and currency.
    public static func stableId(
        _ type: OptimizationType, platform: String, serviceType: ServiceType, subject: String?, target: String?, currency: String
    ) -> String {
        let key = [type.rawValue, platform.lowercased(), serviceType.rawValue, subject?.lowercased() ?? "",
                   target?.lowercased() ?? "", currency].joined(separator: "\u{0}")
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "o_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Finds savings in a window of stored usage, one event at a time (oldest first), with the
/// catalog as it is now. Pure: the events, the catalog and `now` are handed in.
///
/// - CHANGE_TIER: events priced by the catalog (no explicit `cost`) of a model whose entry
///   lists `alternatives`, and that today's entry can price. Their usage is summed per unit
///   (batch and non-batch apart) and priced with the `Pricer`'s rules at today's entry of the
///   model and of each alternative (batch prices for the batch part where an entry has them;
///   prices are linear, so this is the sum of the events' prices); the cheapest alternative
///   that prices the whole mix wins if it costs less.
/// - BATCH_REQUESTS: the same events not marked `metadata.batch`, of a model whose entry has
///   `batchUnitPrices`: their mix priced as batch.
/// - CACHE_RESULTS: events with a `metadata.requestHash` string and a cost: every event whose
///   hash was seen earlier in the window (same platform, service and model) is a saving.
/// - REDUCE_FREQUENCY: SCRAPING runs of an actor (`metadata.actorId`, else the event's
///   `model`) that carry `metadata.actorId` or `apifyRunId`; a run is its `apifyRunId` (the
///   event id without one), its cost the sum of its events, its result the
///   `metadata.resultHash` of its events. A run whose result equals the previous compared
///   run's is a saving — reported when at least ``minimumUnchangedRuns`` runs, and at least
///   half of the compared runs, were unchanged ("results rarely change").
///
/// Impact: savings of at least 10 % of the window's spend in that currency are HIGH, of at
/// least 2 % MEDIUM, else LOW. The window's spend is the largest of: the stored costs of its
/// events (all platforms, allocated or not), the costs booked in it (``addBookedSpend(_:currency:)``,
/// manual costs included), and the recommendation's own current cost.
public struct OptimizationAnalyzer {
    public static let defaultWindowDays = 30
    public static let minimumUnchangedRuns = 2
    public static let highImpactPercent = 10
    public static let mediumImpactPercent = 2

    let pricer: Pricer
    let now: Timestamp
    let windowDays: Int

    /// Stored spend of the window's events per currency: a base of the impact rule.
    var spend: [String: Money] = [:]
    /// Booked spend of the window per currency: the other base of the impact rule.
    var booked: [String: Money] = [:]
    var items: [ItemKey: ItemGroup] = [:]
    /// Today's entry and the group key of each (platform, model) as spelled in events, so
    /// the catalog is searched once per spelling, not once per event.
    var entries: [SpelledModel: (entry: PriceEntry, key: ItemKey)?] = [:]
    var caches: [CacheKey: CacheGroup] = [:]
    var actors: [ActorKey: ActorGroup] = [:]
    /// Groups in the order first seen, so the output does not depend on hashing.
    var order: [Group] = []

    public init(catalog: Catalog, now: Timestamp, windowDays: Int = defaultWindowDays) {
        pricer = Pricer(catalog: catalog)
        self.now = now
        self.windowDays = windowDays
    }

    /// Adds spend booked in the window (a day of the root budgets' rollup), for the impact rule.
    public mutating func addBookedSpend(_ amount: Money, currency: String) {
        booked[currency, default: .zero] += amount
    }

    /// Adds one stored event (call in time order): its decoded body, its effective time, and
    /// the cost and currency it was stored with (nil when UNPRICED).
    public mutating func add(_ event: UsageEvent, time: Timestamp, cost: Money?, currency: String?) {
        if let cost, let currency { spend[currency, default: .zero] += cost }
        if event.cost == nil, let model = event.model { addCatalogPriced(event, model: model) }
        if let cost, let currency, let hash = event.metadata?["requestHash"]?.stringValue {
            let key = CacheKey(platform: event.platform.lowercased(), serviceType: event.serviceType, model: event.model?.lowercased(), currency: currency)
            if caches[key] == nil {
                caches[key] = CacheGroup(platform: event.platform, model: event.model)
                order.append(.cache(key))
            }
            caches[key]!.add(hash: hash, cost: cost)
        }
        if event.serviceType == .scraping, let cost, let currency,
           event.metadata?["actorId"] != nil || event.apifyRunId != nil,
           let actor = event.metadata?["actorId"]?.stringValue ?? event.model {
            let key = ActorKey(platform: event.platform.lowercased(), actor: actor, currency: currency)
            if actors[key] == nil {
                actors[key] = ActorGroup(platform: event.platform, actor: actor)
                order.append(.actor(key))
            }
            actors[key]!.add(run: event.apifyRunId ?? "event:" + event.source + "\u{0}" + event.id, time: time, cost: cost,
                             resultHash: event.metadata?["resultHash"]?.stringValue)
        }
    }

    mutating func addCatalogPriced(_ event: UsageEvent, model: String) {
        let spelled = SpelledModel(platform: event.platform, model: model)
        if entries[spelled] == nil {
            let found = pricer.catalog.entry(platform: event.platform, model: model, at: now).map {
                (entry: $0, key: ItemKey(platform: event.platform.lowercased(), serviceType: event.serviceType, model: model.lowercased()))
            }
            entries.updateValue(found, forKey: spelled)
        }
        guard case .some(.some(let found)) = entries[spelled] else { return }
        let entry = found.entry
        var key = found.key
        key.serviceType = event.serviceType
        // An event today's entry cannot price (a unit without a price) stays out: it is UNPRICED
        // at today's prices, and would make every comparison fail.
        guard Self.prices(event, with: entry) else { return }
        if items[key] == nil {
            let alternatives = entry.alternatives.filter { $0.lowercased() != model.lowercased() }
            guard !alternatives.isEmpty || !entry.batchUnitPrices.isEmpty else { return }
            items[key] = ItemGroup(entry: entry, alternatives: alternatives)
            order.append(.item(key))
        }
        if event.isBatch {
            items[key]!.batch.add(event)
        } else {
            items[key]!.plain.add(event)
        }
    }

    /// Whether `entry` has a price for every unit of `event` with a quantity (the `Pricer`'s rule).
    static func prices(_ event: UsageEvent, with entry: PriceEntry) -> Bool {
        let prices = event.isBatch && !entry.batchUnitPrices.isEmpty ? entry.batchUnitPrices : entry.unitPrices
        return event.usage.allSatisfy { $0.unit == "requests" || $0.quantity.isZero || prices[$0.unit] != nil }
    }

    /// The recommendations found, largest saving first (ties by id), all PENDING.
    public func recommendations() -> [Recommendation] {
        var result: [Recommendation] = []
        for group in order {
            switch group {
            case .item(let key):
                guard let group = items[key] else { continue }
                result += [changeTier(key, group), batchRequests(key, group)].compactMap { $0 }
            case .cache(let key):
                if let r = caches[key].flatMap({ cacheResults(key, $0) }) { result.append(r) }
            case .actor(let key):
                if let r = actors[key].flatMap({ reduceFrequency(key, $0) }) { result.append(r) }
            }
        }
        return result.sorted { ($0.potentialSavings, $1.id) > ($1.potentialSavings, $0.id) }
    }

    // MARK: Each rule

    func changeTier(_ key: ItemKey, _ group: ItemGroup) -> Recommendation? {
        let entry = group.entry
        let currency = entry.currency
        guard !group.alternatives.isEmpty, let current = cost(of: group, at: entry, in: currency) else { return nil }
        var best: (name: String, cost: Money)?
        for name in group.alternatives {
            guard let other = pricer.catalog.entry(platform: entry.platform, model: name, at: now),
                  let cost = cost(of: group, at: other, in: currency) else { continue }
            if best == nil || cost < best!.cost { best = (name, cost) }
        }
        guard let best, best.cost < current else { return nil }
        let text = "Switch \(entry.platform) \(entry.model) to \(best.name), the cheapest alternative the catalog lists: "
            + "the \(count(group.plain.events + group.batch.events, "request")) of the last \(count(windowDays, "day")) would cost "
            + "\(Self.amount(best.cost)) \(currency) instead of \(Self.amount(current)) \(currency) at today's prices."
        return make(.changeTier, platform: entry.platform, serviceType: key.serviceType, model: entry.model,
                    target: best.name, currency: currency, current: current, projected: best.cost, text: text)
    }

    func batchRequests(_ key: ItemKey, _ group: ItemGroup) -> Recommendation? {
        let entry = group.entry
        let currency = entry.currency
        guard !entry.batchUnitPrices.isEmpty, group.plain.events > 0,
              let current = money(group.plain.price(at: entry, batch: false), from: currency, to: currency),
              let projected = money(group.plain.price(at: entry, batch: true), from: currency, to: currency),
              projected < current else { return nil }
        let text = "Send \(entry.platform) \(entry.model) requests that can wait through the batch API "
            + "(metadata.batch): the \(count(group.plain.events, "non-batch request")) of the last \(count(windowDays, "day")) "
            + "would cost \(Self.amount(projected)) \(currency) at batch prices instead of \(Self.amount(current)) \(currency)."
        return make(.batchRequests, platform: entry.platform, serviceType: key.serviceType, model: entry.model,
                    target: nil, currency: currency, current: current, projected: projected, text: text)
    }

    /// The group's whole usage (plain and batch) at `entry`, converted into `currency` at
    /// today's rate; nil when the entry cannot price all of it.
    func cost(of group: ItemGroup, at entry: PriceEntry, in currency: String) -> Money? {
        guard let plain = group.plain.price(at: entry, batch: false),
              let batch = group.batch.price(at: entry, batch: true) else { return nil }
        let (sum, overflow) = plain.addingReportingOverflow(batch)
        return overflow ? nil : money(sum, from: entry.currency, to: currency)
    }

    func cacheResults(_ key: CacheKey, _ group: CacheGroup) -> Recommendation? {
        guard group.repeatCost > .zero else { return nil }
        let subject = group.model.map { "\(group.platform) \($0)" } ?? group.platform
        let text = "Cache \(subject) results by request fingerprint: \(group.repeats) of \(count(group.events, "request")) "
            + "in the last \(count(windowDays, "day")) repeated an earlier request (same metadata.requestHash) "
            + "and cost \(Self.amount(group.repeatCost)) \(key.currency)."
        return make(.cacheResults, platform: group.platform, serviceType: key.serviceType, model: group.model,
                    target: nil, currency: key.currency, current: group.cost, projected: group.cost - group.repeatCost, text: text)
    }

    func reduceFrequency(_ key: ActorKey, _ group: ActorGroup) -> Recommendation? {
        let runs = group.runs.values.sorted { ($0.firstTime, $0.order) < ($1.firstTime, $1.order) }
        var previous: String?
        var compared = 0, unchanged = 0
        var saving = Money.zero
        for run in runs {
            guard let hash = run.resultHash else { continue }
            if let previous {
                compared += 1
                if previous == hash {
                    unchanged += 1
                    saving += run.cost
                }
            }
            previous = hash
        }
        guard unchanged >= Self.minimumUnchangedRuns, unchanged * 2 >= compared, saving > .zero else { return nil }
        let current = runs.reduce(Money.zero) { $0 + $1.cost }
        let changed = compared - unchanged
        var text = "Run \(group.platform) actor \(group.actor) less often: \(unchanged) of \(compared) compared runs "
            + "in the last \(count(windowDays, "day")) returned the same result as the run before (metadata.resultHash)"
        if runs.count >= 2, let first = runs.first?.firstTime, let last = runs.last?.firstTime, last > first {
            let interval = (last - first) / Int64(runs.count - 1)
            // Results changed once every compared/changed runs: run that much less often.
            let factor = Int64(compared / max(changed, 1))
            text += "; it runs about every \(Self.duration(interval)), every \(Self.duration(interval * max(factor, 2))) would do"
        }
        text += ", saving \(Self.amount(saving)) \(key.currency)."
        return make(.reduceFrequency, platform: group.platform, serviceType: .scraping, model: group.actor,
                    target: nil, currency: key.currency, current: current, projected: current - saving, text: text)
    }

    func make(
        _ type: OptimizationType, platform: String, serviceType: ServiceType, model: String?, target: String?,
        currency: String, current: Money, projected: Money, text: String
    ) -> Recommendation {
        Recommendation(
            id: Recommendation.stableId(type, platform: platform, serviceType: serviceType, subject: model, target: target, currency: currency),
            platform: platform, serviceType: serviceType, optimizationType: type, model: model, currency: currency,
            currentCost: current, projectedCost: projected, recommendation: text,
            impact: impact(savings: current - projected, current: current, currency: currency), windowDays: windowDays
        )
    }

    /// HIGH at ≥ 10 % of the window's spend in `currency`, MEDIUM at ≥ 2 %, else LOW.
    func impact(savings: Money, current: Money, currency: String) -> OptimizationImpact {
        let base = max(spend[currency] ?? .zero, booked[currency] ?? .zero, current)
        guard base > .zero else { return .low }
        if savings.reaches(percent: Self.highImpactPercent, of: base) { return .high }
        if savings.reaches(percent: Self.mediumImpactPercent, of: base) { return .medium }
        return .low
    }

    /// An exact amount converted (when needed) at today's rate and rounded once, half-even.
    func money(_ amount: ExactDecimal?, from: String, to: String) -> Money? {
        guard let amount, case .success(let m) = pricer.money(amount, from: from, to: to, at: now) else { return nil }
        return m
    }

    func count(_ n: Int, _ noun: String) -> String {
        n == 1 ? "1 \(noun)" : "\(n) \(noun)s"
    }

    /// An amount for a sentence: rounded half-even to cents (the exact figure is in the fields).
    public static func amount(_ m: Money) -> String {
        let cents = m.exactDecimal.roundedUnits(scale: 2) ?? 0
        let whole = cents / 100, fraction = (cents % 100).magnitude
        return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    /// `45 min`, `6 h`, `3 d`: a run interval, rounded to its unit.
    public static func duration(_ nanoseconds: Int64) -> String {
        let minutes = (nanoseconds + 30_000_000_000) / 60_000_000_000
        if minutes < 120 { return "\(max(minutes, 1)) min" }
        let hours = (minutes + 30) / 60
        if hours < 48 { return "\(hours) h" }
        return "\((hours + 12) / 24) d"
    }
}

// MARK: - Accumulators

extension OptimizationAnalyzer {
    struct ItemKey: Hashable {
        var platform: String
        var serviceType: ServiceType
        var model: String
    }

    /// A model as an event spells it (the catalog is case-insensitive; this is a cache key).
    struct SpelledModel: Hashable {
        var platform: String
        var model: String
    }

    /// A group of the rules, by its key.
    enum Group {
        case item(ItemKey), cache(CacheKey), actor(ActorKey)
    }

    struct CacheKey: Hashable {
        var platform: String
        var serviceType: ServiceType
        var model: String?
        var currency: String
    }

    struct ActorKey: Hashable {
        var platform: String
        var actor: String
        var currency: String
    }

    /// The summed usage of some events: quantity per unit and requests (each event's
    /// `usage.requests`, 1 when absent), exact.
    struct UsageMix {
        var units: [String: ExactDecimal] = [:]
        var requests = ExactDecimal.zero
        var events = 0
        var overflow = false

        mutating func add(_ event: UsageEvent) {
            events += 1
            var eventRequests = ExactDecimal(1)
            for (unit, quantity) in event.usage {
                if unit == "requests" {
                    eventRequests = quantity
                } else if !quantity.isZero {
                    let (sum, o) = (units[unit] ?? .zero).addingReportingOverflow(quantity)
                    if o { overflow = true } else { units[unit] = sum }
                }
            }
            let (sum, o) = requests.addingReportingOverflow(eventRequests)
            if o { overflow = true } else { requests = sum }
        }

        /// Σ quantity × unit price + perRequest × requests, as the `Pricer` prices one event
        /// (batch prices replace unit prices when asked and the entry has any); nil when a
        /// unit has no price or the arithmetic overflows. An empty mix costs 0.
        func price(at entry: PriceEntry, batch: Bool) -> ExactDecimal? {
            if events == 0 { return .zero }
            if overflow { return nil }
            let prices = batch && !entry.batchUnitPrices.isEmpty ? entry.batchUnitPrices : entry.unitPrices
            var total = ExactDecimal.zero
            for (unit, quantity) in units {
                guard let price = prices[unit] else { return nil }
                let (product, o1) = quantity.multipliedReportingOverflow(by: price)
                let (sum, o2) = total.addingReportingOverflow(product)
                if o1 || o2 { return nil }
                total = sum
            }
            if let perRequest = entry.perRequest {
                let (product, o1) = requests.multipliedReportingOverflow(by: perRequest)
                let (sum, o2) = total.addingReportingOverflow(product)
                if o1 || o2 { return nil }
                total = sum
            }
            return total
        }
    }

    /// The catalog-priced usage of one model: its entry today, and the mixes of its plain and batch events.
    struct ItemGroup {
        var entry: PriceEntry
        var alternatives: [String]
        var plain = UsageMix()
        var batch = UsageMix()
    }

    struct CacheGroup {
        var platform: String
        var model: String?
        var seen: Set<String> = []
        var events = 0
        var repeats = 0
        var cost = Money.zero
        var repeatCost = Money.zero

        mutating func add(hash: String, cost: Money) {
            events += 1
            self.cost += cost
            if !seen.insert(hash).inserted {
                repeats += 1
                repeatCost += cost
            }
        }
    }

    struct Run {
        var firstTime: Timestamp
        var order: Int
        var cost: Money
        var resultHash: String?
    }

    struct ActorGroup {
        var platform: String
        var actor: String
        var runs: [String: Run] = [:]

        mutating func add(run id: String, time: Timestamp, cost: Money, resultHash: String?) {
            if var run = runs[id] {
                run.cost += cost
                if let resultHash { run.resultHash = resultHash }
                runs[id] = run
            } else {
                runs[id] = Run(firstTime: time, order: runs.count, cost: cost, resultHash: resultHash)
            }
        }
    }
}

extension UsageEvent {
    /// Reads back a body as `usage_events` stores it (canonical, validated on the way in)
    /// without validating and canonicalizing it again: the fields recommendations use, for
    /// scanning a window of events quickly. Nil when a required field is missing or malformed.
    public init?(storedBody object: JSONObject) {
        // A CREDIT (a refund) is not usage: recommendations look at what was used.
        if object["kind"]?.stringValue == EventKind.credit.rawValue { return nil }
        guard let id = object["id"]?.stringValue, let platform = object["platform"]?.stringValue,
              let serviceType = object["serviceType"]?.stringValue.flatMap(ServiceType.init(rawValue:))
        else { return nil }
        var usage: [(unit: String, quantity: ExactDecimal)] = []
        if let units = object["usage"]?.objectValue {
            for (unit, value) in units {
                guard let text = value.numberText ?? value.stringValue, let quantity = try? ExactDecimal(parsing: text) else { return nil }
                usage.append((unit, quantity))
            }
        }
        var cost: Money?
        if let value = object["cost"], !value.isNull {
            guard let text = value.numberText ?? value.stringValue, let money = try? Money(parsing: text) else { return nil }
            cost = money
        }
        self.init(
            id: id, source: object["source"]?.stringValue ?? "", seq: nil, time: nil, platform: platform,
            serviceType: serviceType, model: object["model"]?.stringValue, endpoint: nil, usage: usage, cost: cost,
            currency: object["currency"]?.stringValue ?? "USD", budgetId: nil, userId: nil, apiUsageId: nil,
            apifyRunId: object["apifyRunId"]?.stringValue, description: nil, metadata: object["metadata"]?.objectValue,
            canonicalBody: ""
        )
    }
}
