import BudgetCore
import Testing

// Issue 5 item 5: recommendations on a synthetic usage history whose savings are worked out
// by hand below.

private func money(_ text: String) -> Money {
    try! Money(parsing: text)
}

private func instant(_ text: String) -> Timestamp {
    try! Timestamp(rfc3339: text)
}

private let catalogJSON = """
    {"version": "t", "prices": [
      {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2026-01-01",
       "unitPrices": {"inputTokens": "0.0000025", "outputTokens": "0.00001"},
       "batchUnitPrices": {"inputTokens": "0.00000125", "outputTokens": "0.000005"},
       "alternatives": ["gpt-4o-mini", "o3", "gpt-unknown"]},
      {"platform": "OpenAI", "model": "gpt-4o-mini", "effectiveFrom": "2026-01-01",
       "unitPrices": {"inputTokens": "0.00000015", "outputTokens": "0.0000006"}},
      {"platform": "OpenAI", "model": "o3", "effectiveFrom": "2026-01-01",
       "unitPrices": {"inputTokens": "0.000002", "outputTokens": "0.000008"}}
    ]}
    """

private let now = instant("2026-03-31T00:00:00Z")

/// A usage event from JSON fields (without the braces), as a publisher sends it.
private func event(_ fields: String) -> UsageEvent {
    try! UsageEventDecoder.decode(bytes: Array(("{" + fields + "}").utf8))
}

/// The synthetic history: what each rule should find is computed by hand in the test.
private func history() -> [(event: UsageEvent, time: Timestamp, cost: Money?)] {
    var events: [(UsageEvent, Timestamp, Money?)] = []
    var day = 0
    func at(_ d: Int) -> Timestamp { instant("2026-03-01T12:00:00Z").adding(seconds: Int64(d) * 86_400) }
    // 10 gpt-4o requests, 1000 in / 200 out: 0.0025 + 0.002 = 0.0045 each, 0.045 in all.
    for i in 0..<10 {
        events.append((event(#""id":"o\#(i)","platform":"OpenAI","serviceType":"API","model":"gpt-4o","usage":{"inputTokens":1000,"outputTokens":200}"#),
                       at(day), money("0.0045")))
        day = (day + 1) % 28
    }
    // 4 gpt-4o batch requests, 2000 in / 500 out at batch prices: 0.0025 + 0.0025 = 0.005 each, 0.02.
    for i in 0..<4 {
        events.append((event(#""id":"b\#(i)","platform":"openai","serviceType":"API","model":"GPT-4o","usage":{"inputTokens":2000,"outputTokens":500},"metadata":{"batch":true}"#),
                       at(i), money("0.005")))
    }
    // Anthropic requests with explicit costs and fingerprints h1 h2 h1 h1 h3 h2.
    let hashes = ["h1", "h2", "h1", "h1", "h3", "h2"]
    let costs = ["1.5", "0.7", "2.5", "2.6", "0.9", "0.8"]
    for i in 0..<6 {
        events.append((event(#""id":"a\#(i)","platform":"Anthropic","serviceType":"API","model":"claude","cost":\#(costs[i]),"metadata":{"requestHash":"\#(hashes[i])"}"#),
                       at(i), money(costs[i])))
    }
    // A daily scrape, two events per run (compute, then the dataset with the result hash).
    let results = ["A", "A", "A", "B", "B", "B"]
    let runCosts = [("0.3", "0.1"), ("0.3", "0.2"), ("0.4", "0.2"), ("0.3", "0.1"), ("0.3", "0.2"), ("0.4", "0.2")]
    for run in 0..<6 {
        let (compute, dataset) = runCosts[run]
        events.append((event(#""id":"s\#(run)c","platform":"Apify","serviceType":"SCRAPING","apifyRunId":"run-\#(run)","cost":\#(compute),"metadata":{"actorId":"apify/instagram-scraper"}"#),
                       at(run), money(compute)))
        events.append((event(#""id":"s\#(run)d","platform":"Apify","serviceType":"SCRAPING","apifyRunId":"run-\#(run)","cost":\#(dataset),"metadata":{"actorId":"apify/instagram-scraper","resultHash":"\#(results[run])"}"#),
                       at(run).adding(seconds: 60), money(dataset)))
    }
    // Another actor whose results change on every run: nothing to save, but 15 of spend.
    for run in 0..<3 {
        events.append((event(#""id":"t\#(run)","platform":"Apify","serviceType":"SCRAPING","apifyRunId":"other-\#(run)","cost":5,"metadata":{"actorId":"news","resultHash":"r\#(run)"}"#),
                       at(run), money("5")))
    }
    // Not a scrape run (API), not counted as one even with an actor id.
    events.append((event(#""id":"x","platform":"Apify","serviceType":"API","cost":0,"metadata":{"actorId":"apify/instagram-scraper","resultHash":"A"}"#),
                   at(9), money("0")))
    return events
}

private func analyze(_ events: [(event: UsageEvent, time: Timestamp, cost: Money?)]) throws -> [Recommendation] {
    var analyzer = OptimizationAnalyzer(catalog: try Catalog.load(json: Array(catalogJSON.utf8)), now: now)
    for e in events { analyzer.add(e.event, time: e.time, cost: e.cost, currency: e.cost == nil ? nil : "USD") }
    return analyzer.recommendations()
}

@Suite struct OptimizationTests {
    @Test func theFourRulesFindTheSavingsWorkedOutByHand() throws {
        let found = try analyze(history())
        // Largest saving first.
        #expect(found.map(\.optimizationType) == [.cacheResults, .reduceFrequency, .changeTier, .batchRequests])
        let byType = Dictionary(uniqueKeysWithValues: found.map { ($0.optimizationType, $0) })
        // The window's spend: 0.045 + 0.02 + 9 + 3 + 15 = 27.065 (the base of the impact rule).

        // CACHE_RESULTS: repeats are a2 (h1), a3 (h1), a5 (h2): 2.5 + 2.6 + 0.8 = 5.9 of 9.
        let cache = try #require(byType[.cacheResults])
        #expect(cache.platform == "Anthropic")
        #expect(cache.model == "claude")
        #expect(cache.currentCost == money("9"))
        #expect(cache.potentialSavings == money("5.9"))
        #expect(cache.projectedCost == money("3.1"))
        #expect(cache.impact == .high) // 21.8 % ≥ 10 %
        #expect(cache.recommendation.contains("3 of 6 requests"))

        // REDUCE_FREQUENCY: runs 0.4 0.5 0.6 0.4 0.5 0.6 with results A A A B B B: runs 2, 3, 5
        // and 6 repeat the run before: 0.5 + 0.6 + 0.5 + 0.6 = 2.2 of 3.
        let reduce = try #require(byType[.reduceFrequency])
        #expect(reduce.platform == "Apify")
        #expect(reduce.serviceType == .scraping)
        #expect(reduce.model == "apify/instagram-scraper")
        #expect(reduce.currentCost == money("3"))
        #expect(reduce.potentialSavings == money("2.2"))
        #expect(reduce.impact == .medium) // 8.1 %: ≥ 2 %, < 10 %
        #expect(reduce.recommendation.contains("4 of 5 compared runs"))
        #expect(reduce.recommendation.contains("every 24 h, every 5 d would do"))

        // CHANGE_TIER at today's prices. gpt-4o: 0.045 + 0.02 (batch events at batch prices) = 0.065.
        // gpt-4o-mini has no batch prices, so batch events pay its unit prices:
        // 10 × (1000 × 0.00000015 + 200 × 0.0000006) + 4 × (2000 × 0.00000015 + 500 × 0.0000006)
        // = 10 × 0.00027 + 4 × 0.0006 = 0.0051. o3 (0.036 + 0.032 = 0.068) costs more;
        // gpt-unknown has no price, so it cannot be recommended.
        let tier = try #require(byType[.changeTier])
        #expect(tier.platform == "OpenAI")
        #expect(tier.model == "gpt-4o")
        #expect(tier.currentCost == money("0.065"))
        #expect(tier.projectedCost == money("0.0051"))
        #expect(tier.potentialSavings == money("0.0599"))
        #expect(tier.impact == .low)
        #expect(tier.recommendation.hasPrefix("Switch OpenAI gpt-4o to gpt-4o-mini"))
        #expect(tier.recommendation.contains("14 requests"))

        // BATCH_REQUESTS: the 10 non-batch requests at batch prices:
        // 10 × (1000 × 0.00000125 + 200 × 0.000005) = 10 × 0.00225 = 0.0225 instead of 0.045.
        let batch = try #require(byType[.batchRequests])
        #expect(batch.currentCost == money("0.045"))
        #expect(batch.projectedCost == money("0.0225"))
        #expect(batch.potentialSavings == money("0.0225"))
        #expect(batch.recommendation.contains("10 non-batch requests"))

        #expect(found.allSatisfy { $0.status == .pending && $0.currency == "USD" && $0.windowDays == 30 })
        #expect(Set(found.map(\.id)).count == 4)
    }

    @Test func idsAreStableAcrossRecomputation() throws {
        let all = try analyze(history())
        // Fewer events, other amounts: the same findings keep their ids.
        let fewer = try analyze(Array(history().dropFirst(2)))
        #expect(Set(fewer.map(\.id)) == Set(all.map(\.id)))
        #expect(all.first { $0.optimizationType == .changeTier }?.id
            == Recommendation.stableId(.changeTier, platform: "OPENAI", serviceType: .api, subject: "GPT-4O", target: "gpt-4o-mini", currency: "USD"))
        #expect(Recommendation.stableId(.changeTier, platform: "OpenAI", serviceType: .api, subject: "gpt-4o", target: "o3", currency: "USD")
            != Recommendation.stableId(.changeTier, platform: "OpenAI", serviceType: .api, subject: "gpt-4o", target: "gpt-4o-mini", currency: "USD"))
        #expect(all.allSatisfy { $0.id.hasPrefix("o_") && $0.id.count == 18 })
    }

    @Test func nothingToSaveFindsNothing() throws {
        // Results that always change, unique fingerprints, a model without alternatives or batch prices.
        let events = [
            (event(#""id":"1","platform":"OpenAI","serviceType":"API","model":"o3","usage":{"inputTokens":10}"#), now, Optional(money("0.00002"))),
            (event(#""id":"2","platform":"X","serviceType":"API","cost":1,"metadata":{"requestHash":"a"}"#), now, Optional(money("1"))),
            (event(#""id":"3","platform":"X","serviceType":"API","cost":1,"metadata":{"requestHash":"b"}"#), now, Optional(money("1"))),
            (event(#""id":"4","platform":"A","serviceType":"SCRAPING","apifyRunId":"r1","cost":1,"metadata":{"resultHash":"x"}"#), now, Optional(money("1"))),
        ]
        #expect(try analyze(events).isEmpty)
    }

    @Test func resultsThatChangeOftenAreNotReported() throws {
        // 2 unchanged of 4 compared is the threshold ("at least half"); 1 of 3 is not.
        func runs(_ hashes: [String]) -> [(event: UsageEvent, time: Timestamp, cost: Money?)] {
            hashes.enumerated().map { i, h in
                (event(#""id":"r\#(i)","platform":"Apify","serviceType":"SCRAPING","model":"actor-x","apifyRunId":"run\#(i)","cost":1,"metadata":{"resultHash":"\#(h)"}"#),
                 now.adding(seconds: Int64(i) * 3600), money("1"))
            }
        }
        let half = try analyze(runs(["a", "a", "b", "b", "c"]))
        #expect(half.map(\.optimizationType) == [.reduceFrequency])
        #expect(half.first?.potentialSavings == money("2"))
        #expect(half.first?.model == "actor-x") // no actorId: the event's model names the actor
        #expect(try analyze(runs(["a", "a", "b", "c"])).isEmpty)
    }

    @Test func unpricedUsageAndExplicitCostsStayOutOfCatalogRules() throws {
        // An explicit cost is the publisher's price: no catalog comparison. An unknown unit
        // cannot be priced at today's prices either.
        let events = [
            (event(#""id":"1","platform":"OpenAI","serviceType":"API","model":"gpt-4o","cost":5,"usage":{"inputTokens":1000}"#), now, Optional(money("5"))),
            (event(#""id":"2","platform":"OpenAI","serviceType":"API","model":"gpt-4o","usage":{"imageTokens":1000}"#), now, nil),
        ]
        #expect(try analyze(events).isEmpty)
    }

    @Test(arguments: [
        (OptimizationStatus.pending, OptimizationStatus.approved, true), (.pending, .rejected, true),
        (.approved, .implemented, true), (.pending, .implemented, false), (.pending, .pending, false),
        (.approved, .approved, false), (.approved, .rejected, false), (.rejected, .approved, false),
        (.rejected, .implemented, false), (.implemented, .approved, false), (.implemented, .pending, false),
    ])
    func workflow(from: OptimizationStatus, to: OptimizationStatus, allowed: Bool) {
        #expect(from.canMove(to: to) == allowed)
    }

    @Test func aSnapshotReadsBack() throws {
        let r = try #require(try analyze(history()).first)
        var approved = r
        approved.status = .approved
        approved.active = false
        #expect(Recommendation(json: approved.json) == approved)
        #expect(Recommendation(json: .object(JSONObject([("id", "x")]))) == nil)
        let keys = try #require(r.json.objectValue?.keys)
        #expect(Array(keys.prefix(4)) == ["id", "platform", "serviceType", "optimizationType"])
        for key in ["currentCost", "projectedCost", "potentialSavings", "recommendation", "impact", "status"] {
            #expect(keys.contains(key))
        }
    }

    @Test func sentenceAmountsAndDurations() {
        #expect(OptimizationAnalyzer.amount(money("0.0599")) == "0.06")
        #expect(OptimizationAnalyzer.amount(money("12.5")) == "12.50")
        #expect(OptimizationAnalyzer.amount(money("0.125")) == "0.12") // half-even
        #expect(OptimizationAnalyzer.duration(45 * 60_000_000_000) == "45 min")
        #expect(OptimizationAnalyzer.duration(6 * 3_600_000_000_000) == "6 h")
        #expect(OptimizationAnalyzer.duration(72 * 3_600_000_000_000) == "3 d")
    }
}

@Suite struct OptimizationImpactTests {
    @Test func bookedSpendWidensTheImpactBase() throws {
        // CACHE saves 5.9 of an events' spend of 27.065 (HIGH, 21.8 %). With 300 booked in the
        // window (manual costs too), it is 5.9 ÷ 300 = 1.97 %: LOW; REDUCE's 2.2 is 0.73 %: LOW.
        var analyzer = OptimizationAnalyzer(catalog: try Catalog.load(json: Array(catalogJSON.utf8)), now: now)
        for e in history() { analyzer.add(e.event, time: e.time, cost: e.cost, currency: "USD") }
        analyzer.addBookedSpend(money("200"), currency: "USD")
        analyzer.addBookedSpend(money("100"), currency: "USD")
        analyzer.addBookedSpend(money("1000000"), currency: "EUR")
        let impacts = Dictionary(uniqueKeysWithValues: analyzer.recommendations().map { ($0.optimizationType, $0.impact) })
        #expect(impacts == [.cacheResults: .low, .reduceFrequency: .low, .changeTier: .low, .batchRequests: .low])
        // 295 booked: 5.9 is exactly 2 % of it, MEDIUM (the bounds are inclusive).
        var edge = OptimizationAnalyzer(catalog: try Catalog.load(json: Array(catalogJSON.utf8)), now: now)
        for e in history() { edge.add(e.event, time: e.time, cost: e.cost, currency: "USD") }
        edge.addBookedSpend(money("295"), currency: "USD")
        #expect(edge.recommendations().first { $0.optimizationType == .cacheResults }?.impact == .medium)
    }
}

@Suite struct StoredBodyTests {
    @Test func aStoredBodyReadsBackAsTheDecoderReadIt() throws {
        let decoded = event(#""id":"e1","source":"s","platform":"OpenAI","serviceType":"API","model":"gpt-4o","usage":{"inputTokens":"1200.50","requests":2},"cost":"0.10","apifyRunId":"r1","metadata":{"batch":true,"requestHash":"h"}"#)
        let stored = try #require(try JSON.parse(decoded.canonicalBody).objectValue)
        let read = try #require(UsageEvent(storedBody: stored))
        #expect(read.id == "e1" && read.source == "s" && read.platform == "OpenAI" && read.serviceType == .api)
        #expect(read.model == "gpt-4o")
        #expect(read.usage.map(\.unit) == decoded.usage.map(\.unit))
        #expect(read.usage.map(\.quantity) == decoded.usage.map(\.quantity))
        #expect(read.cost == decoded.cost)
        #expect(read.currency == "USD")
        #expect(read.apifyRunId == "r1")
        #expect(read.isBatch)
        #expect(read.metadata?["requestHash"]?.stringValue == "h")
        #expect(UsageEvent(storedBody: JSONObject([("id", "x")])) == nil)
    }
}
