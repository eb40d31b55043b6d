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
///   lists `alternatives`. Each event is priced at today's entry of its model and of every
///   alternative (batch prices for batch events, as the `Pricer` does); the cheapest
///   alternative that prices every such event wins if it costs less.
/// - BATCH_REQUESTS: catalog-priced events not marked `metadata.batch` of a model whose entry
///   has `batchUnitPrices`: the same events priced as batch.
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
    var tiers: [ItemKey: TierGroup] = [:]
    var batches: [ItemKey: BatchGroup] = [:]
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
        guard let entry = pricer.catalog.entry(platform: event.platform, model: model, at: now),
              case .priced(let current, _, _) = pricer.price(event, at: now)
        else { return }
        let key = ItemKey(platform: event.platform.lowercased(), serviceType: event.serviceType, model: model.lowercased())
        let alternatives = entry.alternatives.filter { $0.lowercased() != model.lowercased() }
        if !alternatives.isEmpty {
            if tiers[key] == nil {
                tiers[key] = TierGroup(entry: entry, alternatives: alternatives)
                order.append(.tier(key))
            }
            var group = tiers[key]!
            group.events += 1
            group.current.add(current)
            for (i, alternative) in group.alternatives.enumerated() where !group.alternativeTotals[i].failed {
                var other = event
                other.model = alternative
                if case .priced(let amount, let currency, _) = pricer.price(other, at: now) {
                    group.alternativeTotals[i].add(amount)
                    group.alternativeCurrencies[i] = currency
                } else {
                    group.alternativeTotals[i].failed = true
                }
            }
            tiers[key] = group
        }
        if !event.isBatch && !entry.batchUnitPrices.isEmpty {
            var batched = event
            var metadata = event.metadata ?? JSONObject()
            metadata["batch"] = .bool(true)
            batched.metadata = metadata
            if batches[key] == nil {
                batches[key] = BatchGroup(entry: entry)
                order.append(.batch(key))
            }
            var group = batches[key]!
            group.events += 1
            group.current.add(current)
            if case .priced(let amount, _, _) = pricer.price(batched, at: now) {
                group.batch.add(amount)
            } else {
                group.batch.failed = true
            }
            batches[key] = group
        }
    }

    /// The recommendations found, largest saving first (ties by id), all PENDING.
    public func recommendations() -> [Recommendation] {
        var result: [Recommendation] = []
        for group in order {
            let found: Recommendation? = switch group {
            case .tier(let key): tiers[key].flatMap { changeTier(key, $0) }
            case .batch(let key): batches[key].flatMap { batchRequests(key, $0) }
            case .cache(let key): caches[key].flatMap { cacheResults(key, $0) }
            case .actor(let key): actors[key].flatMap { reduceFrequency(key, $0) }
            }
            if let found { result.append(found) }
        }
        return result.sorted { ($0.potentialSavings, $1.id) > ($1.potentialSavings, $0.id) }
    }

    // MARK: Each rule

    func changeTier(_ key: ItemKey, _ group: TierGroup) -> Recommendation? {
        let currency = group.entry.currency
        guard let current = money(group.current, from: currency, to: currency) else { return nil }
        var best: (name: String, cost: Money)?
        for (i, name) in group.alternatives.enumerated() where !group.alternativeTotals[i].failed {
            guard let from = group.alternativeCurrencies[i],
                  let cost = money(group.alternativeTotals[i], from: from, to: currency) else { continue }
            if best == nil || cost < best!.cost { best = (name, cost) }
        }
        guard let best, best.cost < current else { return nil }
        let entry = group.entry
        let text = "Switch \(entry.platform) \(entry.model) to \(best.name), the cheapest alternative the catalog lists: "
            + "the \(count(group.events, "request")) of the last \(count(windowDays, "day")) would cost "
            + "\(Self.amount(best.cost)) \(currency) instead of \(Self.amount(current)) \(currency) at today's prices."
        return make(.changeTier, platform: entry.platform, serviceType: key.serviceType, model: entry.model,
                    target: best.name, currency: currency, current: current, projected: best.cost, text: text)
    }

    func batchRequests(_ key: ItemKey, _ group: BatchGroup) -> Recommendation? {
        let currency = group.entry.currency
        guard !group.batch.failed,
              let current = money(group.current, from: currency, to: currency),
              let projected = money(group.batch, from: currency, to: currency),
              projected < current else { return nil }
        let entry = group.entry
        let text = "Send \(entry.platform) \(entry.model) requests that can wait through the batch API "
            + "(metadata.batch): the \(count(group.events, "non-batch request")) of the last \(count(windowDays, "day")) "
            + "would cost \(Self.amount(projected)) \(currency) at batch prices instead of \(Self.amount(current)) \(currency)."
        return make(.batchRequests, platform: entry.platform, serviceType: key.serviceType, model: entry.model,
                    target: nil, currency: currency, current: current, projected: projected, text: text)
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

    /// An exact sum converted (when needed) at today's rate and rounded once, half-even.
    func money(_ sum: ExactSum, from: String, to: String) -> Money? {
        guard !sum.failed, case .success(let m) = pricer.money(sum.value, from: from, to: to, at: now) else { return nil }
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

    /// A group of one rule, by its key.
    enum Group {
        case tier(ItemKey), batch(ItemKey), cache(CacheKey), actor(ActorKey)
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

    /// An exact running sum that remembers an overflow or an event it could not price.
    struct ExactSum {
        var value = ExactDecimal.zero
        var failed = false

        mutating func add(_ amount: ExactDecimal) {
            let (sum, overflow) = value.addingReportingOverflow(amount)
            if overflow { failed = true } else { value = sum }
        }
    }

    struct TierGroup {
        var entry: PriceEntry
        var alternatives: [String]
        var events = 0
        var current = ExactSum()
        var alternativeTotals: [ExactSum]
        var alternativeCurrencies: [String?]

        init(entry: PriceEntry, alternatives: [String]) {
            self.entry = entry
            self.alternatives = alternatives
            alternativeTotals = Array(repeating: ExactSum(), count: alternatives.count)
            alternativeCurrencies = Array(repeating: nil, count: alternatives.count)
        }
    }

    struct BatchGroup {
        var entry: PriceEntry
        var events = 0
        var current = ExactSum()
        var batch = ExactSum()
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
