/// One price of the catalog: what a platform's model costs per unit from a date on (CONTRACT §3).
public struct PriceEntry: Sendable, Hashable {
    public var platform: String
    public var model: String
    public var effectiveFrom: Timestamp
    public var currency: String
    public var unitPrices: [String: ExactDecimal]
    public var perRequest: ExactDecimal?
    public var batchUnitPrices: [String: ExactDecimal]
    public var alternatives: [String]

    public init(
        platform: String, model: String, effectiveFrom: Timestamp, currency: String = "USD",
        unitPrices: [String: ExactDecimal], perRequest: ExactDecimal? = nil,
        batchUnitPrices: [String: ExactDecimal] = [:], alternatives: [String] = []
    ) {
        self.platform = platform
        self.model = model
        self.effectiveFrom = effectiveFrom
        self.currency = currency
        self.unitPrices = unitPrices
        self.perRequest = perRequest
        self.batchUnitPrices = batchUnitPrices
        self.alternatives = alternatives
    }

    /// The entry as JSON, as `price.quote` shows it: the catalog's shape, with its prices as
    /// JSON numbers (CONTRACT §6: amounts in replies are numbers; the catalog file may spell
    /// them as strings).
    public var json: JSONValue {
        func prices(_ p: [String: ExactDecimal]) -> JSONValue {
            .object(JSONObject(p.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.number($0.value)) }))
        }
        return .object(JSONObject([
            ("platform", .string(platform)), ("model", .string(model)),
            ("effectiveFrom", .string(effectiveFrom.rfc3339)), ("currency", .string(currency)),
            ("unitPrices", prices(unitPrices)),
            ("perRequest", perRequest.map { .number($0) } ?? .null),
            ("batchUnitPrices", prices(batchUnitPrices)),
            ("alternatives", .array(alternatives.map { .string($0) })),
        ]))
    }
}

/// A dated exchange rate for one direction (no inverse, no chaining).
public struct ExchangeRate: Sendable, Hashable {
    public var from: String
    public var to: String
    public var rate: ExactDecimal
    public var effectiveFrom: Timestamp

    public init(from: String, to: String, rate: ExactDecimal, effectiveFrom: Timestamp) {
        self.from = from
        self.to = to
        self.rate = rate
        self.effectiveFrom = effectiveFrom
    }
}

/// A catalog that could not be loaded; the message names the entry and field.
public struct CatalogError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The price catalog: entries indexed by platform and model, each list sorted by `effectiveFrom`.
public struct Catalog: Sendable {
    public var version: String
    public private(set) var entryCount: Int = 0
    private var entries: [String: [PriceEntry]] = [:]
    private var rates: [String: [ExchangeRate]] = [:]
    /// `entries` by platform and model as the catalog spells them: an event that spells them
    /// the same (almost every one) is priced without lower-casing both and joining them into
    /// a key (issue 8: two allocations and ~700 instructions per event).
    private var spelled: [Spelling: [PriceEntry]] = [:]
    /// The spellings of each key of `entries`, to keep `spelled` in step.
    private var spellings: [String: [Spelling]] = [:]

    private struct Spelling: Hashable, Sendable {
        var platform: String
        var model: String
    }

    /// An empty catalog: every event without an explicit cost is UNPRICED.
    public init(version: String = "empty") { self.version = version }

    public init(version: String, entries: [PriceEntry], rates: [ExchangeRate] = []) {
        self.version = version
        for entry in entries { add(entry) }
        for rate in rates { add(rate) }
    }

    static func key(_ platform: String, _ model: String) -> String {
        platform.lowercased() + "\u{0}" + model.lowercased()
    }

    public mutating func add(_ entry: PriceEntry) {
        let k = Self.key(entry.platform, entry.model)
        var list = entries[k] ?? []
        // Keep sorted by effectiveFrom; a later duplicate date replaces the earlier entry.
        if let i = list.firstIndex(where: { $0.effectiveFrom == entry.effectiveFrom }) {
            list[i] = entry
        } else {
            list.append(entry)
            list.sort { $0.effectiveFrom < $1.effectiveFrom }
            entryCount += 1
        }
        entries[k] = list
        let spelling = Spelling(platform: entry.platform, model: entry.model)
        if !(spellings[k]?.contains(spelling) ?? false) { spellings[k, default: []].append(spelling) }
        for s in spellings[k] ?? [] { spelled[s] = list }
    }

    public mutating func add(_ rate: ExchangeRate) {
        let k = rate.from + ">" + rate.to
        var list = rates[k] ?? []
        list.append(rate)
        list.sort { $0.effectiveFrom < $1.effectiveFrom }
        rates[k] = list
    }

    /// The latest entry for platform and model (case-insensitive) in force at `time`.
    public func entry(platform: String, model: String, at time: Timestamp) -> PriceEntry? {
        guard let list = spelled[Spelling(platform: platform, model: model)] ?? entries[Self.key(platform, model)] else { return nil }
        return list.last { $0.effectiveFrom <= time }
    }

    /// The latest rate from → to in force at `time`.
    public func rate(from: String, to: String, at time: Timestamp) -> ExactDecimal? {
        rates[from + ">" + to]?.last { $0.effectiveFrom <= time }?.rate
    }
}

/// The outcome of pricing one event.
public enum PriceOutcome: Sendable, Hashable {
    /// Exact, not yet rounded: conversion may follow before the one rounding.
    case priced(amount: CostAmount, currency: String, entry: PriceEntry?)
    case unpriced(reason: String)
}

/// Prices events from a catalog (CONTRACT §3). Pure.
public struct Pricer: Sendable {
    public var catalog: Catalog

    public init(catalog: Catalog) { self.catalog = catalog }

    /// cost = Σ quantity × unit price + perRequest × requests (1 when absent); an explicit cost wins.
    public func price(_ event: UsageEvent, at time: Timestamp) -> PriceOutcome {
        if let cost = event.cost {
            let amount: CostAmount = event.wideCost.map { .wide($0) } ?? .exact(event.exactCost ?? cost.exactDecimal)
            return .priced(amount: amount, currency: event.currency, entry: nil)
        }
        guard let model = event.model else {
            return .unpriced(reason: "no cost and no model to price")
        }
        guard let entry = catalog.entry(platform: event.platform, model: model, at: time) else {
            return .unpriced(reason: "no price for \(event.platform)/\(model) at \(time.rfc3339)")
        }
        let prices = event.isBatch && !entry.batchUnitPrices.isEmpty ? entry.batchUnitPrices : entry.unitPrices
        var total = CostAmount.exact(.zero)
        var requests = ExactDecimal(1)
        for (unit, quantity) in event.usage {
            if unit == "requests" {
                // `requests` is priced by perRequest and needs no unit price; without one it is
                // a unit without a price (at quantity 0 it is ignored, as any such unit).
                if entry.perRequest == nil, !quantity.isZero {
                    return .unpriced(reason: "no price for unit requests of \(event.platform)/\(model) (requests are priced by perRequest, not unitPrices)")
                }
                requests = quantity
                continue
            }
            if quantity.isZero { continue }
            guard let price = prices[unit] else {
                return .unpriced(reason: "no price for unit \(unit) of \(event.platform)/\(model)")
            }
            guard let sum = total.adding(quantity, times: price) else { return .unpriced(reason: "cost overflow") }
            total = sum
        }
        if let perRequest = entry.perRequest {
            guard let sum = total.adding(requests, times: perRequest) else { return .unpriced(reason: "cost overflow") }
            total = sum
        } else if event.usage.isEmpty {
            // Nothing to price: no usage, and no per-request price to charge the one request
            // (CONTRACT §2: an event needs a cost or a usage the catalog can price).
            return .unpriced(reason: "no usage to price and no per-request price for \(event.platform)/\(model)")
        }
        return .priced(amount: total, currency: entry.currency, entry: entry)
    }

    /// Converts an exact amount into `currency` and rounds once, half-even, to 1e-9.
    public func money(_ amount: ExactDecimal, from: String, to: String, at time: Timestamp) -> Result<Money, PricingFailure> {
        money(.exact(amount), from: from, to: to, at: time)
    }

    /// Converts an exact amount into `currency` and rounds once, half-even, to 1e-9; a product
    /// too long for an `ExactDecimal` is made in a `WideDecimal`, exact as well.
    public func money(_ amount: CostAmount, from: String, to: String, at time: Timestamp) -> Result<Money, PricingFailure> {
        var value = amount
        if from != to {
            guard let rate = catalog.rate(from: from, to: to, at: time) else {
                return .failure(PricingFailure(reason: "no rate \(from)→\(to)"))
            }
            guard let converted = amount.times(rate) else { return .failure(PricingFailure(reason: "cost overflow")) }
            value = converted
        }
        guard let nanos = value.roundedUnits(scale: 9) else { return .failure(PricingFailure(reason: "cost over 1e12")) }
        let money = Money(nanos: nanos)
        // Over 1e12 before the rounding, as an explicit cost is (CONTRACT §2): only a value that
        // rounds to 1e12 exactly needs the exact comparison.
        if money > Money.maxValue || (money == Money.maxValue && value.isOverMoneyRange) {
            return .failure(PricingFailure(reason: "cost over 1e12"))
        }
        return .success(money)
    }
}

/// Why an event could not be priced.
public struct PricingFailure: Error, Sendable, Hashable {
    public var reason: String
}

extension Money {
    /// The exact decimal value of this amount.
    public var exactDecimal: ExactDecimal { ExactDecimal(mantissa: nanos, exponent: -9) }
}
