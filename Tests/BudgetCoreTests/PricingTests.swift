import BudgetCore
import Foundation
import Testing

// CONTRACT §3: the native catalog, the LiteLLM price map, the Pricer and currency conversion.

private func instant(_ text: String) throws -> Timestamp {
    try Timestamp(rfc3339: text)
}

/// A usage event at `time` with `extra` fields (no leading comma).
private func usageEvent(platform: String = "OpenAI", model: String? = "gpt-4o", time: String = "2026-02-15T12:00:00Z", _ extra: String = "") throws -> UsageEvent {
    var text = #"{"id":"e1","platform":"\#(platform)","serviceType":"API","time":"\#(time)""#
    if let model { text += #","model":"\#(model)""# }
    if !extra.isEmpty { text += "," + extra }
    return try UsageEventDecoder.decode(bytes: Array((text + "}").utf8))
}

/// What an event costs in a budget of `currency`: the rounded amount, or the reason it is UNPRICED.
enum PricingOutcome: Equatable, Sendable, CustomStringConvertible {
    case cost(String)
    case unpriced(String)

    var description: String {
        switch self {
        case .cost(let c): "cost \(c)"
        case .unpriced(let r): "UNPRICED (\(r))"
        }
    }

    var isUnpriced: Bool {
        if case .unpriced = self { return true }
        return false
    }
}

private func price(_ catalog: Catalog, _ event: UsageEvent, in currency: String = "USD") -> PricingOutcome {
    let pricer = Pricer(catalog: catalog)
    let time = event.time ?? Timestamp(nanosecondsSinceEpoch: 0)
    switch pricer.price(event, at: time) {
    case .unpriced(let reason):
        return .unpriced(reason)
    case .priced(let amount, let from, _):
        switch pricer.money(amount, from: from, to: currency, at: time) {
        case .success(let money): return .cost(money.description)
        case .failure(let failure): return .unpriced(failure.reason)
        }
    }
}

private func loadCatalog(_ json: String) throws -> Catalog {
    try Catalog.load(json: Array(json.utf8))
}

private let nativeCatalogJSON = """
    {"version": "2026-03-01",
     "prices": [
       {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD",
        "unitPrices": {"inputTokens": "0.0000025", "outputTokens": "0.00001", "cachedInputTokens": "0.00000125"},
        "perRequest": "0", "batchUnitPrices": {"inputTokens": "0.00000125", "outputTokens": "0.000005"},
        "alternatives": ["gpt-4o-mini"]},
       {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2026-03-01T00:00:00Z", "currency": "USD",
        "unitPrices": {"inputTokens": "0.000002", "outputTokens": "0.000008"}, "batchUnitPrices": {}},
       {"platform": "Apify", "model": "web-scraper", "effectiveFrom": "2026-01-01",
        "unitPrices": {"computeUnits": "0.25", "datasetItems": 0.001}, "perRequest": "0.01"},
       {"platform": "Mistral", "model": "large", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "eur",
        "unitPrices": {"inputTokens": "0.000002", "halfNano": "0.0000000005"}},
       {"platform": "Tiny", "model": "halves", "effectiveFrom": "2026-01-01T00:00:00Z",
        "unitPrices": {"a": "0.0000000015", "b": "0.0000000015", "c": "0.0000000005"}}
     ],
     "rates": [
       {"from": "EUR", "to": "USD", "rate": "1.08", "effectiveFrom": "2026-01-01T00:00:00Z"},
       {"from": "eur", "to": "usd", "rate": "1.1", "effectiveFrom": "2026-03-01T00:00:00Z"}
     ]}
    """

/// The LiteLLM map shipped in shared/data, loaded once (3.4 MB).
private let litellm: Result<Catalog, LiteLLMLoadFailure> = {
    // The repository's shared/ folder sits beside the clone: <root>/../shared/data.
    let here = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
    let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let candidates = [
        root.deletingLastPathComponent().appendingPathComponent("shared/data/litellm-model-prices.json").path,
        "/work/shared/data/litellm-model-prices.json",
    ]
    guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }),
          let data = FileManager.default.contents(atPath: path) else {
        return .failure(LiteLLMLoadFailure(description: "litellm-model-prices.json not found in \(candidates)"))
    }
    do {
        return .success(try Catalog.load(json: [UInt8](data)))
    } catch let error as CatalogError {
        return .failure(LiteLLMLoadFailure(description: "load failed: \(error.message)"))
    } catch {
        return .failure(LiteLLMLoadFailure(description: "load failed: \(error)"))
    }
}()

private struct LiteLLMLoadFailure: Error, CustomStringConvertible {
    var description: String
}

struct NativeCatalogTests {
    let catalog: Catalog

    init() throws {
        catalog = try loadCatalog(nativeCatalogJSON)
    }

    @Test("an exchange rate of 0 is refused when the catalog loads (it would book converted costs at 0); a price of 0 is fine")
    func zeroRateRefused() throws {
        let entry = #"{"platform":"P","model":"m","currency":"EUR","unitPrices":{"u":"0"}}"#
        #expect(throws: CatalogError("rates[0].rate must be greater than 0")) {
            try Catalog.load(json: Array(#"{"version":"v","prices":[\#(entry)],"rates":[{"from":"EUR","to":"USD","rate":"0.000"}]}"#.utf8))
        }
        let ok = try Catalog.load(json: Array(#"{"version":"v","prices":[\#(entry)],"rates":[{"from":"eur","to":"usd","rate":"1.08"}]}"#.utf8))
        #expect(ok.rate(from: "EUR", to: "USD", at: Timestamp(nanosecondsSinceEpoch: 0)) == (try ExactDecimal(parsing: "1.08")))
        #expect(throws: CatalogError("rates[0].from must be a 3-letter code, not ßd")) {
            try Catalog.load(json: Array(#"{"version":"v","prices":[\#(entry)],"rates":[{"from":"ßd","to":"USD","rate":"1"}]}"#.utf8))
        }
        #expect(throws: CatalogError("prices[0].currency must be a 3-letter code")) {
            try Catalog.load(json: Array(#"{"version":"v","prices":[{"platform":"P","model":"m","currency":"ßd","unitPrices":{}}]}"#.utf8))
        }
    }

    @Test("the native catalog is detected and every entry loaded")
    func loads() throws {
        #expect(catalog.version == "2026-03-01")
        #expect(catalog.entryCount == 5)
        let entry = try #require(catalog.entry(platform: "OpenAI", model: "gpt-4o", at: try instant("2026-02-01T00:00:00Z")))
        #expect(entry.unitPrices["outputTokens"] == ExactDecimal(mantissa: 1, exponent: -5))
        #expect(entry.perRequest == ExactDecimal(0))
        #expect(entry.alternatives == ["gpt-4o-mini"])
        // A lower-case currency is read as its code.
        #expect(catalog.entry(platform: "Mistral", model: "large", at: try instant("2026-02-01T00:00:00Z"))?.currency == "EUR")
        #expect(catalog.rate(from: "EUR", to: "USD", at: try instant("2026-03-02T00:00:00Z")) == ExactDecimal(mantissa: 11, exponent: -1))
    }

    static let effectiveDates: [(String, PricingOutcome)] = [
        ("2025-12-31T23:59:59.999999999Z", .unpriced("")),
        ("2026-01-01T00:00:00Z", .cost("0.0125")),
        ("2026-02-28T23:59:59.999999999Z", .cost("0.0125")),
        ("2026-03-01T00:00:00Z", .cost("0.01")),
        ("2026-03-01T01:00:00+01:00", .cost("0.01")),
        ("2027-01-01T00:00:00Z", .cost("0.01")),
    ]

    @Test("an event is priced by the latest entry in force at its time; before the first, UNPRICED", arguments: effectiveDates)
    func effectiveDate(time: String, expected: PricingOutcome) throws {
        let e = try usageEvent(time: time, #""usage":{"inputTokens":1000,"outputTokens":1000}"#)
        let got = price(catalog, e)
        if expected.isUnpriced {
            #expect(got.isUnpriced, "\(time): \(got)")
        } else {
            #expect(got == expected, "\(time)")
        }
    }

    static let perRequest: [(String, String, PricingOutcome)] = [
        ("requests absent count as 1", #""usage":{"computeUnits":2}"#, .cost("0.51")),
        ("perRequest × requests", #""usage":{"computeUnits":2,"requests":3}"#, .cost("0.53")),
        ("requests alone need no unit price", #""usage":{"requests":10}"#, .cost("0.1")),
        ("no usage at all is one request", "", .cost("0.01")),
        ("zero requests", #""usage":{"requests":0,"datasetItems":1000}"#, .cost("1")),
        ("a unit of quantity 0 without a price", #""usage":{"computeUnits":1,"gbMonths":0}"#, .cost("0.26")),
        ("a unit without a price", #""usage":{"computeUnits":1,"gbMonths":1}"#, .unpriced("no price for unit gbMonths of Apify/web-scraper")),
    ]

    @Test("perRequest and unit prices add up (§3)", arguments: perRequest)
    func requests(name: String, usage: String, expected: PricingOutcome) throws {
        let e = try usageEvent(platform: "Apify", model: "web-scraper", usage)
        #expect(price(catalog, e) == expected, "\(name)")
    }

    // Mistral/large has no perRequest at all (gpt-4o's is "0": a request is priced, at 0).
    static let withoutPerRequest: [(String, String, String, PricingOutcome)] = [
        ("no usage and no per-request price: nothing priced it", "Mistral", "", .unpriced("no usage to price and no per-request price for Mistral/large")),
        ("an empty usage likewise", "Mistral", #""usage":{}"#, .unpriced("no usage to price and no per-request price for Mistral/large")),
        ("requests without a per-request price", "Mistral", #""usage":{"requests":3}"#, .unpriced("no price for unit requests of Mistral/large (requests are priced by perRequest, not unitPrices)")),
        ("requests without a per-request price, beside a priced unit", "Mistral", #""usage":{"inputTokens":1000,"requests":1}"#, .unpriced("no price for unit requests of Mistral/large (requests are priced by perRequest, not unitPrices)")),
        ("zero requests without a per-request price", "Mistral", #""usage":{"inputTokens":1000,"requests":0}"#, .cost("0.002")),
        ("a zero quantity is still a usage the catalog prices", "Mistral", #""usage":{"inputTokens":0}"#, .cost("0")),
        ("a per-request price of 0 prices an event without usage at 0", "OpenAI", "", .cost("0")),
    ]

    @Test("an event that nothing in its entry prices is UNPRICED, not booked at 0 (§2, §3)", arguments: withoutPerRequest)
    func nothingPriced(name: String, platform: String, usage: String, expected: PricingOutcome) throws {
        let e = try usageEvent(platform: platform, model: platform == "Mistral" ? "large" : "gpt-4o", usage)
        #expect(price(catalog, e, in: platform == "Mistral" ? "EUR" : "USD") == expected, "\(name)")
    }

    @Test("any unpriced unit makes the whole event UNPRICED, never partly priced")
    func partlyPricingOutcomeIsUnpriced() throws {
        let e = try usageEvent(#""usage":{"inputTokens":1000,"imageTokens":5,"outputTokens":1000}"#)
        let got = price(catalog, e)
        #expect(got.isUnpriced, "\(got)")
        if case .unpriced(let reason) = got { #expect(reason.contains("imageTokens")) }
        // A zero quantity of the same unknown unit does not.
        let zero = try usageEvent(#""usage":{"inputTokens":1000,"imageTokens":0}"#)
        #expect(price(catalog, zero) == .cost("0.0025"))
    }

    @Test("cachedInputTokens are priced at their own rate")
    func cachedTokens() throws {
        let e = try usageEvent(#""usage":{"inputTokens":1000,"cachedInputTokens":4000}"#)
        #expect(price(catalog, e) == .cost("0.0075"))
    }

    static let batch: [(String, String, PricingOutcome)] = [
        ("batch prices when metadata.batch is true", "2026-02-15T12:00:00Z", .cost("0.00625")),
        ("an entry with empty batchUnitPrices keeps its unit prices", "2026-03-15T12:00:00Z", .cost("0.01")),
    ]

    @Test("batchUnitPrices replace unitPrices when metadata.batch is true", arguments: batch)
    func batchPrices(name: String, time: String, expected: PricingOutcome) throws {
        let usage = #""usage":{"inputTokens":1000,"outputTokens":1000}"#
        let batch = try usageEvent(time: time, usage + #","metadata":{"batch":true}"#)
        #expect(price(catalog, batch) == expected, "\(name)")
        // batch false, a string "true" and no metadata price normally.
        let normal = time.hasPrefix("2026-02") ? PricingOutcome.cost("0.0125") : .cost("0.01")
        #expect(price(catalog, try usageEvent(time: time, usage + #","metadata":{"batch":false}"#)) == normal)
        #expect(price(catalog, try usageEvent(time: time, usage + #","metadata":{"batch":"true"}"#)) == normal)
        #expect(price(catalog, try usageEvent(time: time, usage)) == normal)
    }

    @Test("an explicit cost wins over the catalog, in the event's currency")
    func explicitCost() throws {
        let e = try usageEvent(#""usage":{"inputTokens":1000},"cost":"0.15""#)
        let pricer = Pricer(catalog: catalog)
        guard case .priced(let amount, let currency, let entry) = pricer.price(e, at: e.time!) else {
            Issue.record("not priced")
            return
        }
        #expect(amount == .exact(ExactDecimal(mantissa: 15, exponent: -2)))
        #expect(currency == "USD")
        #expect(entry == nil)
        // Even without a model, and for a model the catalog does not know.
        #expect(price(catalog, try usageEvent(model: nil, #""cost":2"#)) == .cost("2"))
        #expect(price(catalog, try usageEvent(model: "unknown", #""cost":2"#)) == .cost("2"))
        // An explicit EUR cost in a USD budget is converted at the rate of its time.
        #expect(price(catalog, try usageEvent(#""cost":"0.15","currency":"EUR""#)) == .cost("0.162"))
        // Rounded once, after the rate, like a catalog cost: 4.5e-9 × 1.08 = 4.86e-9 → 5e-9 (rounding
        // first gave 4e-9 × 1.08 → 4e-9); 1.0000000005 × 1.08 = 1.08000000054 → 1.080000001 (not 1.08).
        #expect(price(catalog, try usageEvent(#""cost":"0.0000000045","currency":"EUR""#)) == .cost("0.000000005"))
        #expect(price(catalog, try usageEvent(#""cost":"1.0000000005","currency":"EUR""#)) == .cost("1.080000001"))
        // In the event's own currency the once-rounded value is the rounded cost itself.
        #expect(price(catalog, try usageEvent(#""cost":"0.0000000045""#)) == .cost("0.000000004"))
    }

    static let caseInsensitive: [(String, String)] = [
        ("OpenAI", "gpt-4o"), ("openai", "gpt-4o"), ("OPENAI", "GPT-4O"), ("oPeNaI", "Gpt-4o"),
    ]

    @Test("platform and model are matched case-insensitively", arguments: caseInsensitive)
    func caseInsensitiveMatch(platform: String, model: String) throws {
        let e = try usageEvent(platform: platform, model: model, #""usage":{"inputTokens":1000}"#)
        #expect(price(catalog, e) == .cost("0.0025"))
    }

    @Test("an event without cost and without model is UNPRICED")
    func noModel() throws {
        #expect(price(catalog, try usageEvent(model: nil, #""usage":{"inputTokens":1000}"#)).isUnpriced)
        #expect(price(catalog, try usageEvent(model: "gpt-5", #""usage":{"inputTokens":1000}"#)).isUnpriced)
        #expect(price(catalog, try usageEvent(platform: "Azure", #""usage":{"inputTokens":1000}"#)).isUnpriced)
    }

    static let conversions: [(String, String, String, PricingOutcome)] = [
        // 1,000,000 × 0.000002 EUR = 2 EUR
        ("2026-02-15T12:00:00Z", "USD", #""usage":{"inputTokens":1000000}"#, .cost("2.16")),
        ("2026-02-28T23:59:59Z", "USD", #""usage":{"inputTokens":1000000}"#, .cost("2.16")),
        ("2026-03-01T00:00:00Z", "USD", #""usage":{"inputTokens":1000000}"#, .cost("2.2")),
        ("2026-06-01T00:00:00Z", "USD", #""usage":{"inputTokens":1000000}"#, .cost("2.2")),
        ("2026-02-15T12:00:00Z", "EUR", #""usage":{"inputTokens":1000000}"#, .cost("2")),
        ("2026-02-15T12:00:00Z", "GBP", #""usage":{"inputTokens":1000000}"#, .unpriced("no rate EUR→GBP")),
    ]

    @Test("a cost in another currency is converted at the latest rate in force at the event's time", arguments: conversions)
    func conversion(time: String, budgetCurrency: String, usage: String, expected: PricingOutcome) throws {
        let e = try usageEvent(platform: "Mistral", model: "large", time: time, usage)
        #expect(price(catalog, e, in: budgetCurrency) == expected, "\(time) in \(budgetCurrency)")
    }

    @Test("no inverse and no rate before the first: \"no rate EUR→USD\"")
    func noRate() throws {
        // USD → EUR is not derived from EUR → USD.
        #expect(price(catalog, try usageEvent(#""usage":{"inputTokens":1000}"#), in: "EUR") == .unpriced("no rate USD→EUR"))
        // Before the first EUR → USD rate.
        let early = try usageEvent(model: nil, time: "2025-12-31T23:59:59Z", #""cost":"1","currency":"EUR""#)
        #expect(price(catalog, early) == .unpriced("no rate EUR→USD"))
        let pricer = Pricer(catalog: catalog)
        let result = pricer.money(ExactDecimal(1), from: "EUR", to: "USD", at: try instant("2025-06-01T00:00:00Z"))
        guard case .failure(let failure) = result else {
            Issue.record("converted without a rate: \(result)")
            return
        }
        #expect(failure.reason == "no rate EUR→USD")
    }

    @Test("a catalog cost is exact and rounded once, half-even, at the end")
    func roundedOnceAtTheEnd() throws {
        // a and b are 1.5 nano-units each: rounding each term gives 2 + 2 = 4, the sum is 3.
        let e = try usageEvent(platform: "Tiny", model: "halves", #""usage":{"a":1,"b":1}"#)
        let pricer = Pricer(catalog: catalog)
        guard case .priced(let amount, _, _) = pricer.price(e, at: e.time!) else {
            Issue.record("not priced")
            return
        }
        #expect(amount == .exact(ExactDecimal(mantissa: 3, exponent: -9)))
        #expect(price(catalog, e) == .cost("0.000000003"))
        // One term alone: 1.5 nano-units round half-even to 2.
        #expect(price(catalog, try usageEvent(platform: "Tiny", model: "halves", #""usage":{"a":1}"#)) == .cost("0.000000002"))
        // 0.5 nano-units rounds to 0 alone, and 3 × 0.5 = 1.5 rounds to 2 (not 3 × 0).
        #expect(price(catalog, try usageEvent(platform: "Tiny", model: "halves", #""usage":{"c":1}"#)) == .cost("0"))
        #expect(price(catalog, try usageEvent(platform: "Tiny", model: "halves", #""usage":{"c":3}"#)) == .cost("0.000000002"))
    }

    @Test("conversion happens before the one rounding")
    func conversionBeforeRounding() throws {
        // 0.5 nano-EUR × 1.08 = 0.54 nano-USD → 1 nano-unit; rounding first would give 0.
        let e = try usageEvent(platform: "Mistral", model: "large", #""usage":{"halfNano":1}"#)
        #expect(price(catalog, e) == .cost("0.000000001"))
        #expect(price(catalog, e, in: "EUR") == .cost("0"))
    }

    static let badCatalogs: [(String, String, String)] = [
        ("missing model in the second entry",
         #"{"prices":[{"platform":"A","model":"m","unitPrices":{}},{"platform":"B","unitPrices":{}}]}"#, "prices[1].model"),
        ("missing platform", #"{"prices":[{"model":"m"}]}"#, "prices[0].platform"),
        ("negative unit price", #"{"prices":[{"platform":"A","model":"m","unitPrices":{"inputTokens":"-1"}}]}"#, "prices[0].unitPrices.inputTokens"),
        ("unit price not a number", #"{"prices":[{"platform":"A","model":"m","unitPrices":{"inputTokens":"cheap"}}]}"#, "prices[0].unitPrices.inputTokens"),
        ("unit prices not an object", #"{"prices":[{"platform":"A","model":"m","unitPrices":[1]}]}"#, "prices[0].unitPrices"),
        ("bad batch price", #"{"prices":[{"platform":"A","model":"m","batchUnitPrices":{"x":true}}]}"#, "prices[0].batchUnitPrices.x"),
        ("negative perRequest", #"{"prices":[{"platform":"A","model":"m","perRequest":-1}]}"#, "prices[0].perRequest"),
        ("bad effectiveFrom", #"{"prices":[{"platform":"A","model":"m","effectiveFrom":"yesterday"}]}"#, "prices[0].effectiveFrom"),
        ("bad currency", #"{"prices":[{"platform":"A","model":"m","currency":"dollars"}]}"#, "prices[0].currency"),
        ("entry not an object", #"{"prices":[{"platform":"A","model":"m"},"B"]}"#, "prices[1]"),
        ("prices not an array", #"{"prices":{"platform":"A"}}"#, "prices must be an array"),
        ("rate without to", #"{"prices":[],"rates":[{"from":"EUR","rate":"1"}]}"#, "rates[0]"),
        ("negative rate", #"{"prices":[],"rates":[{"from":"EUR","to":"USD","rate":"-1"}]}"#, "rates[0].rate"),
        ("bad rate date", #"{"prices":[],"rates":[{"from":"EUR","to":"USD","rate":"1","effectiveFrom":"soon"}]}"#, "rates[0].effectiveFrom"),
        ("neither native nor LiteLLM", #"{"gpt-4o":{"input_cost_per_token":1}}"#, "neither"),
        ("not JSON", #"{"prices":["#, "not valid JSON"),
        ("not an object", #"[]"#, "must be a JSON object"),
        ("bad LiteLLM price", #"{"m":{"litellm_provider":"p","input_cost_per_token":"free"}}"#, "m.input_cost_per_token"),
    ]

    @Test("effectiveFrom null is effectiveFrom absent: always in force")
    func nullEffectiveFrom() throws {
        let c = try Catalog.load(json: Array("""
            {"prices":[{"platform":"A","model":"m","effectiveFrom":null,"unitPrices":{"u":"2"}}],
             "rates":[{"from":"EUR","to":"USD","rate":"1.5","effectiveFrom":null}]}
            """.utf8))
        #expect(price(c, try usageEvent(platform: "A", model: "m", #""usage":{"u":3}"#)) == .cost("6"))
    }

    @Test("a bad catalog is rejected with a message naming the entry", arguments: badCatalogs)
    func badCatalog(name: String, json: String, messageContains: String) {
        do {
            let c = try Catalog.load(json: Array(json.utf8))
            Issue.record("\(name): loaded \(c.entryCount) entries")
        } catch {
            #expect(error.message.contains(messageContains), "\(name): \(error.message)")
        }
    }

    @Test("a later entry with the same platform, model and date replaces the earlier one")
    func sameDateReplaces() throws {
        let c = try loadCatalog("""
            {"prices":[{"platform":"A","model":"m","effectiveFrom":"2026-01-01","unitPrices":{"u":"1"}},
                       {"platform":"a","model":"M","effectiveFrom":"2026-01-01T00:00:00Z","unitPrices":{"u":"2"}}]}
            """)
        #expect(c.entryCount == 1)
        #expect(price(c, try usageEvent(platform: "A", model: "m", #""usage":{"u":1}"#)) == .cost("2"))
    }
}

struct LiteLLMPricingTests {
    @Test("the LiteLLM map is detected by its shape and loaded whole")
    func detected() throws {
        let catalog = try litellm.get()
        // 3,945 keys with a provider and a token price, plus the short names of provider/model
        // keys not already keys there: 3,185 on their own provider, 215 more from the 113 keys
        // prefixed with another provider than theirs, on either (sample_spec left out; counted
        // again in Python from the file, case-insensitively).
        #expect(catalog.entryCount == 7345)
        #expect(catalog.version == "litellm-7345")
    }

    @Test("a LiteLLM map with a model named prices is still a LiteLLM map")
    func modelNamedPrices() throws {
        let catalog = try Catalog.load(json: Array("""
            {"prices": {"litellm_provider": "acme", "input_cost_per_token": 0.5},
             "gpt-x": {"litellm_provider": "acme", "input_cost_per_token": 0.25}}
            """.utf8))
        #expect(catalog.entryCount == 2)
        #expect(price(catalog, try usageEvent(platform: "acme", model: "prices", #""usage":{"inputTokens":2}"#)) == .cost("1"))
        // An entry under "prices" without a provider (LiteLLM has alias entries) is skipped, as
        // under any other key: the file is still the map (it was refused as a native catalog).
        let aliased = try Catalog.load(json: Array("""
            {"prices": {"alias_of": "gpt-x"}, "gpt-x": {"litellm_provider": "acme", "input_cost_per_token": 0.25}}
            """.utf8))
        #expect(aliased.entryCount == 1)
    }

    @Test("OpenAI gpt-4o, 1200 input + 300 output tokens, costs exactly 0.006")
    func gpt4o() throws {
        let catalog = try litellm.get()
        let e = try usageEvent(#""usage":{"inputTokens":1200,"outputTokens":300}"#)
        #expect(price(catalog, e) == .cost("0.006"))
        let pricer = Pricer(catalog: catalog)
        guard case .priced(let amount, let currency, let entry) = pricer.price(e, at: e.time!) else {
            Issue.record("not priced")
            return
        }
        #expect(amount == .exact(ExactDecimal(mantissa: 6, exponent: -3)))
        #expect(currency == "USD")
        #expect(entry?.model == "gpt-4o")
        #expect(entry?.platform == "openai")
        guard case .exact(let exact) = amount else { return }
        let money = try Money(exact)
        #expect(money.description == "0.006")
    }

    static let units: [(String, String, PricingOutcome)] = [
        ("cached input at cache_read_input_token_cost", #""usage":{"cachedInputTokens":1000}"#, .cost("0.00125")),
        ("input, cached input and output", #""usage":{"inputTokens":1000,"cachedInputTokens":4000,"outputTokens":100}"#, .cost("0.0085")),
        ("batch prices from *_batches", #""usage":{"inputTokens":1200,"outputTokens":300},"metadata":{"batch":true}"#, .cost("0.003")),
        // No batch price for cached input in the map: its regular one (1000 × 1.25e-6 each).
        ("batch with cached input: the cached unit keeps its regular price", #""usage":{"inputTokens":1000,"cachedInputTokens":1000},"metadata":{"batch":true}"#, .cost("0.0025")),
        ("a unit the map does not price", #""usage":{"inputTokens":1,"audioSeconds":1}"#, .unpriced("no price for unit audioSeconds of OpenAI/gpt-4o")),
    ]

    @Test("LiteLLM fields price inputTokens, outputTokens, cachedInputTokens", arguments: units)
    func unitsPricingOutcome(name: String, usage: String, expected: PricingOutcome) throws {
        let catalog = try litellm.get()
        #expect(price(catalog, try usageEvent(usage)) == expected, "\(name)")
    }

    static let lookups: [(String, String, String, PricingOutcome)] = [
        ("a provider that does not match the platform", "Anthropic", "gpt-4o", .unpriced("")),
        ("the provider is matched case-insensitively", "OPENAI", "gpt-4o", .cost("0.0025")),
        ("a provider/model key is found as model", "Azure", "gpt-realtime-2.1-2026-07-07", .cost("0.004")),
        ("a provider/model key is found under its full name too", "azure", "azure/gpt-realtime-2.1-2026-07-07", .cost("0.004")),
        ("the short name is not found on another provider", "OpenAI", "gpt-realtime-2.1-2026-07-07", .unpriced("")),
        // vertex_ai/claude-3-5-haiku is litellm_provider vertex_ai-anthropic_models (input 1e-06):
        // the short name is found on both providers.
        ("a key prefixed with another provider is found as model on the entry's provider", "vertex_ai-anthropic_models", "claude-3-5-haiku", .cost("0.001")),
        ("… and on the provider its key names", "Vertex_AI", "claude-3-5-haiku", .cost("0.001")),
        ("… and under its full name on the entry's provider", "vertex_ai-anthropic_models", "vertex_ai/claude-3-5-haiku", .cost("0.001")),
        ("azure/gpt-35-turbo-instruct of azure_text, on azure", "azure", "gpt-35-turbo-instruct", .cost("0.00165")),
        ("… and on azure_text", "azure_text", "gpt-35-turbo-instruct", .cost("0.00165")),
        // gemini/gemini-exp-1206 prices input at 0, the plain key gemini-exp-1206 at 3e-07.
        ("a plain key wins over the same model found through provider/model", "gemini", "gemini-exp-1206", .cost("0.0003")),
        ("sample_spec is skipped", "one of https://docs.litellm.ai/docs/providers", "sample_spec", .unpriced("")),
    ]

    @Test("LiteLLM keys are models on their litellm_provider", arguments: lookups)
    func lookup(name: String, platform: String, model: String, expected: PricingOutcome) throws {
        let catalog = try litellm.get()
        let got = price(catalog, try usageEvent(platform: platform, model: model, #""usage":{"inputTokens":1000}"#))
        if expected.isUnpriced {
            #expect(got.isUnpriced, "\(name): \(got)")
        } else {
            #expect(got == expected, "\(name)")
        }
    }
}

/// Costs whose exact value needs more than a 128-bit mantissa (a 17-digit LiteLLM price × a
/// 12-digit count × a 10-digit rate) were UNPRICED "cost overflow" and never booked: they are
/// now computed exactly in a `WideDecimal` and rounded once (expected values from Python's
/// decimal at 200 digits; the tie cases are an audit's, which a truncated fallback got wrong).
struct LongProductTests {
    static let catalogJSON = """
        {"version": "long", "prices": [
          {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD",
           "unitPrices": {"inputTokens": 2.5e-06}},
          {"platform": "Mistral", "model": "odd", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "EUR",
           "unitPrices": {"inputTokens": "3.2857142857142855e-08", "c": "3.2857142857142855e-08"}},
          {"platform": "Tiny", "model": "tie", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD",
           "unitPrices": {"below": "1.5e-9", "above": "2.5000000000000000000000000000000000001e-9",
                          "e": "0.0000000123456789012345678901234567", "a": "1e-20", "d": "0.0000000123456789012345678901234567"}}],
         "rates": [{"from": "EUR", "to": "USD", "rate": "1.0837462918", "effectiveFrom": "2026-01-01T00:00:00Z"}]}
        """

    @Test(arguments: [
        ("OpenAI", "gpt-4o", #""inputTokens":"123.45678901234567890123456789012345678""#, "0.000308642"),
        // Converted at the dated rate: 39 digits before the one rounding.
        ("Mistral", "odd", #""inputTokens":"999999999999""#, "35608.806730536"),
        // Just below a tie (1.5e-9 × (1 − 10⁻³⁸)): down; just above one (2.5e-9 × (1 + ~10⁻³⁷)): up.
        ("Tiny", "tie", #""below":"0.99999999999999999999999999999999999999""#, "0.000000001"),
        ("Tiny", "tie", #""above":"1.0000000000000000000000000000000000001""#, "0.000000003"),
        // Within 10⁻²⁴ of a tie after the rate (0.004987694499…99986 and 0.0395481645…0001207).
        ("Mistral", "odd", #""c":"140069.12777894034259587383828597938599""#, "0.004987694"),
        ("Mistral", "odd", #""c":"1110628.74977067105947808""#, "0.039548165"),
        // Two long terms summing to just above a tie (1.50000000000000000000000019716e-9;
        // 2.50000000000000000000000000058e-9 → 3) and just below one (2.49999…99958e-9 → 2).
        ("Tiny", "tie", #""e":"0.0895764326405293","a":"39411812550.1957948708426""#, "0.000000002"),
        ("Tiny", "tie", #""d":"0.0004155893309222779692014","a":"249486926756.5654642092260891""#, "0.000000003"),
        ("Tiny", "tie", #""d":"0.0004155893309222779692014","a":"249486926756.565464209226089""#, "0.000000002"),
    ])
    func longProductsRoundOnceAsTheExactValue(platform: String, model: String, usage: String, expected: String) throws {
        let catalog = try loadCatalog(Self.catalogJSON)
        let event = try usageEvent(platform: platform, model: model, time: "2026-05-01T00:00:00Z", #""usage":{\#(usage)}"#)
        #expect(price(catalog, event) == .cost(expected))
    }

    /// CONTRACT §2: values over 1e12 before rounding are refused. A computed or converted cost
    /// that rounds to exactly 1e12 from above was booked as 1e12 (the seventeenth session's audit).
    @Test func aCostOver1e12ByLessThanHalfANanoUnitIsUnpriced() throws {
        let big = try loadCatalog("""
            {"prices": [{"platform": "Big", "model": "m", "unitPrices": {"over": "1.0000000000000000000001", "at": "1"}}]}
            """)
        #expect(price(big, try usageEvent(platform: "Big", model: "m", #""usage":{"over":"1000000000000"}"#)) == .unpriced("cost over 1e12"))
        #expect(price(big, try usageEvent(platform: "Big", model: "m", #""usage":{"at":"1000000000000"}"#)) == .cost("1000000000000"))
        // 925925925925.925925926 EUR × 1.08 = 1000000000000.00000000008 USD; a nano-unit less is 999999999999.999999999.
        let over = try usageEvent(#""cost":"925925925925.925925926","currency":"EUR""#)
        let native = try loadCatalog(nativeCatalogJSON)
        #expect(price(native, over) == .unpriced("cost over 1e12"))
        let under = try usageEvent(#""cost":"925925925925.925925925","currency":"EUR""#)
        #expect(price(native, under) == .cost("999999999999.999999999"))
    }

    @Test func aCreditBelowANanoUnitConvertsFromItsExactValue() throws {
        let catalog = try loadCatalog(#"{"prices": [], "rates": [{"from": "EUR", "to": "USD", "rate": "1.25"}]}"#)
        // 4e-10 EUR × 1.25 = 5e-10 USD: a half, to even, 0; 4.8e-10 × 1.25 = 6e-10: 1e-9.
        let half = try usageEvent(model: nil, #""cost":"4e-10","currency":"EUR","kind":"CREDIT""#)
        #expect(price(catalog, half) == .cost("0"))
        let more = try usageEvent(model: nil, #""cost":"4.8e-10","currency":"EUR","kind":"CREDIT""#)
        #expect(price(catalog, more) == .cost("0.000000001"))
    }

    @Test func wideDecimalsRoundHalfEvenExactly() throws {
        func wide(_ text: String) throws -> WideDecimal { try #require(WideDecimal(ExactDecimal(parsing: text))) }
        // (10³⁸ − 1)² × 10⁻⁸⁵ = 9.99…9980…01 × 10⁻¹⁰ (76 digits): just under a nano-unit's
        // 1, well over its half: 1.
        let nines = try wide("99999999999999999999999999999999999999")
        let square = nines * nines * (try wide("1e-85"))
        #expect(square.roundedUnits(scale: 9) == 1)
        // Exactly half, long: 0.5e-9 × (2 × 10³⁰)/(2 × 10³⁰) spelled with 40 digits → half-even.
        let half = try wide("5000000000000000000000000000000000000") * (try wide("1e-46"))
        #expect(half.roundedUnits(scale: 9) == 0)            // 0.5 nano: to even, 0
        let threeHalves = try wide("15000000000000000000000000000000000000") * (try wide("1e-46"))
        #expect(threeHalves.roundedUnits(scale: 9) == 2)     // 1.5 nano: to even, 2
        // Sums align exponents; a sum past Int128 nano-units is nil, not a wrong value.
        #expect((try wide("0.0000000004") + (try wide("1e-60")) * nines).roundedUnits(scale: 9) == 0)
        #expect((try wide("1e40")).roundedUnits(scale: 9) == nil)
        #expect(WideDecimal(try ExactDecimal(parsing: "-1")) == nil)
    }
}
