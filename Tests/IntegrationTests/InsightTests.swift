import BudgetCore
import Foundation
import Testing

/// Forecasts and recommendations (issue 5 items 4–6) against the real daemon and budgetctl.
@Suite(.timeLimit(.minutes(5)))
struct InsightTests {
    static let catalog = """
        {"version": "insights", "prices": [
          {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2025-01-01T00:00:00Z", "currency": "USD",
           "unitPrices": {"inputTokens": "0.0000025", "outputTokens": "0.00001"},
           "batchUnitPrices": {"inputTokens": "0.00000125", "outputTokens": "0.000005"},
           "alternatives": ["gpt-4o-mini"]},
          {"platform": "OpenAI", "model": "gpt-4o-mini", "effectiveFrom": "2025-01-01T00:00:00Z", "currency": "USD",
           "unitPrices": {"inputTokens": "0.00000015", "outputTokens": "0.0000006"}}]}
        """

    var today: CivilDate { Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).civilDate }

    /// Noon UTC `days` days ago (plus `seconds`), as an event's `time`.
    func time(daysAgo days: Int, seconds: Int = 0) -> JSONValue {
        .string(today.addingDays(-days).startInstant.adding(seconds: 12 * 3600 + Int64(seconds)).rfc3339)
    }

    func startDaemon(_ dir: TempDir) throws -> Daemon {
        try Data(Self.catalog.utf8).write(to: URL(fileURLWithPath: dir.file("prices.json")))
        return try Daemon(dir: dir, extraArgs: ["--prices", dir.file("prices.json")])
    }

    /// A PROJECT budget from 60 days ago to 30 days ahead, so past events are booked.
    func projectBudget(_ client: Client, id: String, parent: String? = nil) throws {
        var args = JSONObject([
            ("id", .string(id)), ("name", .string(id)), ("budgetType", "PROJECT"), ("totalAmount", .number("100000")),
            ("startDate", .string(today.addingDays(-60).description)), ("endDate", .string(today.addingDays(30).description)),
        ])
        if let parent { args["parentId"] = .string(parent) }
        _ = try client.call("budget.create", .object(args))
    }

    func send(_ client: Client, _ fields: [(String, JSONValue)]) throws {
        var o = JSONObject([("source", "insights")])
        for (k, v) in fields { o[k] = v }
        let ack = try client.sendAck(.object(o))
        #expect(ack.string("status") == "ACCEPTED", "\(ack)")
    }

    func errorCode(_ reply: JSONValue) -> String? {
        reply["error"]?["code"]?.stringValue
    }

    // MARK: forecast

    @Test func forecastFromPastDaysPerPlatformCountedOnce() throws {
        let dir = try TempDir()
        let daemon = try startDaemon(dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        try projectBudget(client, id: "b_root")
        try projectBudget(client, id: "b_team", parent: "b_root")
        // 28 days of OpenAI at 10 a day, half of it booked to the child budget (which also
        // counts in the root: summed over roots it is still 10); Apify growing by 1 a day.
        for d in 1...28 {
            try send(client, [("id", .string("o\(d)a")), ("platform", "OpenAI"), ("serviceType", "API"), ("cost", .number("5")),
                              ("budgetId", "b_root"), ("time", time(daysAgo: d))])
            try send(client, [("id", .string("o\(d)b")), ("platform", "openai"), ("serviceType", "API"), ("cost", .number("5")),
                              ("budgetId", "b_team"), ("time", time(daysAgo: d, seconds: 60))])
            try send(client, [("id", .string("s\(d)")), ("platform", "Apify"), ("serviceType", "SCRAPING"),
                              ("cost", .number(String(30 - d))), ("budgetId", "b_root"), ("time", time(daysAgo: d))])
        }

        let monthly = try #require(try client.call("forecast", ["forecastPeriod": "MONTHLY"]).arrayValue)
        #expect(monthly.map { $0["platform"]?.stringValue } == ["Apify", "OpenAI"])
        let openAI = monthly[1]
        #expect(openAI["serviceType"]?.stringValue == "API")
        #expect(openAI["forecastPeriod"]?.stringValue == "MONTHLY")
        #expect(openAI["currentCost"]?.numberText == "280") // the last 30 days, today included
        #expect(openAI["forecastedCost"]?.numberText == "300") // a flat 10 a day, for 30 days
        #expect(openAI["basedOnDays"]?.numberText == "28")
        #expect(openAI["trendDirection"]?.stringValue == "STABLE")
        #expect(openAI["currency"]?.stringValue == "USD")
        let confidence = try #require(openAI["confidence"]?.numberText.flatMap { try? ExactDecimal(parsing: $0) })
        #expect(confidence >= ExactDecimal(80) && confidence <= ExactDecimal(90))
        #expect(openAI["projection"]?.arrayValue?.count == 30)
        #expect(openAI["projection"]?.arrayValue?.first?["date"]?.stringValue == today.addingDays(1).description)

        let apify = monthly[0]
        #expect(apify["trendDirection"]?.stringValue == "INCREASING")
        // Σ 2…29 over the 28 days; the line continues above its last day (29).
        #expect(apify["currentCost"]?.numberText == "434")
        let forecast = try #require(apify["forecastedCost"]?.numberText.flatMap { try? Money(parsing: $0) })
        #expect(forecast > (try Money(parsing: "870"))) // more than 30 × 29

        let filtered = try #require(try client.call("forecast", ["forecastPeriod": "WEEKLY", "platform": "OPENAI"]).arrayValue)
        #expect(filtered.count == 1)
        #expect(filtered.first?["forecastedCost"]?.numberText == "70")
        #expect(filtered.first?["currentCost"]?.numberText == "60")
        let scraping = try #require(try client.call("forecast", ["forecastPeriod": "QUARTERLY", "serviceType": "SCRAPING"]).arrayValue)
        #expect(scraping.map { $0["platform"]?.stringValue } == ["Apify"])
        #expect(try client.call("forecast", ["forecastPeriod": "WEEKLY", "currency": "EUR"]).arrayValue?.isEmpty == true)

        #expect(errorCode(try client.request("forecast")) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("forecast", ["forecastPeriod": "DAILY"])) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("forecast", ["forecastPeriod": "WEEKLY", "serviceType": "API2"])) == "VALIDATION_FAILED")
    }

    // MARK: recommendations

    /// The history of `OptimizationTests` (BudgetCoreTests), sent as events over past days, plus
    /// one old repeat outside the default window.
    func sendUsageHistory(_ client: Client) throws {
        for i in 0..<10 {
            try send(client, [("id", .string("gpt\(i)")), ("platform", "OpenAI"), ("serviceType", "API"), ("model", "gpt-4o"),
                              ("usage", ["inputTokens": 1000, "outputTokens": 200]), ("budgetId", "b_root"), ("time", time(daysAgo: 1 + i))])
        }
        for i in 0..<4 {
            try send(client, [("id", .string("batch\(i)")), ("platform", "OpenAI"), ("serviceType", "API"), ("model", "gpt-4o"),
                              ("usage", ["inputTokens": 2000, "outputTokens": 500]), ("metadata", ["batch": true]),
                              ("budgetId", "b_root"), ("time", time(daysAgo: 2 + i))])
        }
        let hashes = ["h1", "h2", "h1", "h1", "h3", "h2"]
        let costs = ["1.5", "0.7", "2.5", "2.6", "0.9", "0.8"]
        for i in 0..<6 {
            try send(client, [("id", .string("claude\(i)")), ("platform", "Anthropic"), ("serviceType", "API"), ("model", "claude"),
                              ("cost", .number(costs[i])), ("metadata", ["requestHash": .string(hashes[i])]),
                              ("budgetId", "b_root"), ("time", time(daysAgo: 12 - i))])
        }
        // 40 days ago: outside the default 30-day window, inside a 45-day one.
        try send(client, [("id", "claude-old"), ("platform", "Anthropic"), ("serviceType", "API"), ("model", "claude"),
                          ("cost", .number("4")), ("metadata", ["requestHash": "h2"]), ("budgetId", "b_root"), ("time", time(daysAgo: 40))])
        let results = ["A", "A", "A", "B", "B", "B"]
        let runCosts = [("0.3", "0.1"), ("0.3", "0.2"), ("0.4", "0.2"), ("0.3", "0.1"), ("0.3", "0.2"), ("0.4", "0.2")]
        for run in 0..<6 {
            let (compute, dataset) = runCosts[run]
            let metadata: JSONValue = ["actorId": "apify/instagram-scraper"]
            try send(client, [("id", .string("run\(run)c")), ("platform", "Apify"), ("serviceType", "SCRAPING"), ("cost", .number(compute)),
                              ("apifyRunId", .string("run-\(run)")), ("metadata", metadata), ("budgetId", "b_root"), ("time", time(daysAgo: 7 - run))])
            try send(client, [("id", .string("run\(run)d")), ("platform", "Apify"), ("serviceType", "SCRAPING"), ("cost", .number(dataset)),
                              ("apifyRunId", .string("run-\(run)")), ("budgetId", "b_root"), ("time", time(daysAgo: 7 - run, seconds: 60)),
                              ("metadata", ["actorId": "apify/instagram-scraper", "resultHash": .string(results[run])])])
        }
        for run in 0..<3 {
            try send(client, [("id", .string("news\(run)")), ("platform", "Apify"), ("serviceType", "SCRAPING"), ("cost", .number("5")),
                              ("apifyRunId", .string("news-\(run)")), ("metadata", ["actorId": "news", "resultHash": .string("r\(run)")]),
                              ("budgetId", "b_root"), ("time", time(daysAgo: 3 - run))])
        }
    }

    func byType(_ list: JSONValue) throws -> [String: JSONValue] {
        let items = try #require(list.arrayValue)
        return Dictionary(uniqueKeysWithValues: items.compactMap { item in item["optimizationType"]?.stringValue.map { ($0, item) } })
    }

    @Test func recommendationsWithExactSavingsAndAWorkflowThatSurvivesARestart() throws {
        let dir = try TempDir()
        var daemon = try startDaemon(dir)
        var client = try Client(daemon)
        try projectBudget(client, id: "b_root")
        try sendUsageHistory(client)

        let list = try client.call("optimization.list")
        #expect(list.arrayValue?.map { $0["optimizationType"]?.stringValue } == ["CACHE_RESULTS", "REDUCE_FREQUENCY", "CHANGE_TIER", "BATCH_REQUESTS"])
        var found = try byType(list)
        let amounts = { (type: String) in
            ["currentCost", "projectedCost", "potentialSavings"].map { found[type]?[$0]?.numberText }
        }
        #expect(amounts("CACHE_RESULTS") == ["9", "3.1", "5.9"])
        #expect(amounts("REDUCE_FREQUENCY") == ["3", "0.8", "2.2"])
        #expect(amounts("CHANGE_TIER") == ["0.065", "0.0051", "0.0599"])
        #expect(amounts("BATCH_REQUESTS") == ["0.045", "0.0225", "0.0225"])
        #expect(found["CACHE_RESULTS"]?["impact"]?.stringValue == "HIGH")
        #expect(found["REDUCE_FREQUENCY"]?["impact"]?.stringValue == "MEDIUM")
        #expect(found["CHANGE_TIER"]?["impact"]?.stringValue == "LOW")
        #expect(found["CHANGE_TIER"]?["recommendation"]?.stringValue?.hasPrefix("Switch OpenAI gpt-4o to gpt-4o-mini") == true)
        #expect(found["REDUCE_FREQUENCY"]?["platform"]?.stringValue == "Apify")
        #expect(found["REDUCE_FREQUENCY"]?["serviceType"]?.stringValue == "SCRAPING")
        #expect(list.arrayValue?.allSatisfy { $0["status"]?.stringValue == "PENDING" } == true)
        let cacheId = try #require(found["CACHE_RESULTS"]?["id"]?.stringValue)
        let reduceId = try #require(found["REDUCE_FREQUENCY"]?["id"]?.stringValue)
        let tierId = try #require(found["CHANGE_TIER"]?["id"]?.stringValue)

        // A longer window reaches the old h2 request, so the first h2 inside is now a repeat
        // too (+0.7, and +4 of current cost); the id stays.
        let wide = try byType(try client.call("optimization.list", ["days": 45]))
        #expect(wide["CACHE_RESULTS"]?["potentialSavings"]?.numberText == "6.6")
        #expect(wide["CACHE_RESULTS"]?["currentCost"]?.numberText == "13")
        #expect(wide["CACHE_RESULTS"]?["id"]?.stringValue == cacheId)
        #expect(errorCode(try client.request("optimization.list", ["days": 0])) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("optimization.list", ["status": "DONE"])) == "VALIDATION_FAILED")

        // The workflow.
        func update(_ id: String, _ status: String) throws -> JSONValue {
            try client.request("optimization.update", ["id": .string(id), "status": .string(status)])
        }
        let approved = try update(cacheId, "APPROVED")
        #expect(approved["result"]?["status"]?.stringValue == "APPROVED")
        // With the figures of its last computation: the 45-day listing.
        #expect(approved["result"]?["potentialSavings"]?.numberText == "6.6")
        #expect(errorCode(try update(cacheId, "APPROVED")) == "CONFLICT")
        #expect(errorCode(try update(cacheId, "REJECTED")) == "CONFLICT")
        #expect(errorCode(try update(cacheId, "PENDING")) == "CONFLICT")
        #expect(errorCode(try update(tierId, "IMPLEMENTED")) == "CONFLICT")
        #expect(try update(cacheId, "IMPLEMENTED")["result"]?["status"]?.stringValue == "IMPLEMENTED")
        #expect(try update(reduceId, "REJECTED")["result"]?["status"]?.stringValue == "REJECTED")
        #expect(errorCode(try update(reduceId, "APPROVED")) == "CONFLICT")
        #expect(errorCode(try update("o_0000000000000000", "APPROVED")) == "NOT_FOUND")
        #expect(errorCode(try update(tierId, "DONE")) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("optimization.update", ["status": "APPROVED"])) == "VALIDATION_FAILED")
        #expect(errorCode(try client.request("optimization.update", ["id": .string(tierId)])) == "VALIDATION_FAILED")

        // The statuses hold across a restart and the next computation.
        #expect(daemon.stop() == 0)
        daemon = try startDaemon(dir)
        defer { #expect(daemon.stop() == 0) }
        client = try Client(daemon)
        found = try byType(try client.call("optimization.list"))
        #expect(found["CACHE_RESULTS"]?["status"]?.stringValue == "IMPLEMENTED")
        #expect(found["REDUCE_FREQUENCY"]?["status"]?.stringValue == "REJECTED")
        #expect(found["CHANGE_TIER"]?["status"]?.stringValue == "PENDING")
        #expect(found["CACHE_RESULTS"]?["potentialSavings"]?.numberText == "5.9")
        let rejected = try #require(try client.call("optimization.list", ["status": "REJECTED"]).arrayValue)
        #expect(rejected.map { $0["id"]?.stringValue } == [reduceId])
        #expect(try update(tierId, "APPROVED")["result"]?["status"]?.stringValue == "APPROVED")
        #expect(try client.call("optimization.list", ["status": "PENDING"]).arrayValue?.map { $0["optimizationType"]?.stringValue } == ["BATCH_REQUESTS"])
    }

    // MARK: budgetctl

    func budgetctl(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        try runProcess(Products.budgetctl, args)
    }

    @Test func budgetctlShowsForecastsAndDrivesRecommendations() throws {
        let dir = try TempDir()
        let daemon = try startDaemon(dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        try projectBudget(client, id: "b_root")
        for d in 1...14 {
            try send(client, [("id", .string("f\(d)")), ("platform", "OpenAI"), ("serviceType", "API"), ("cost", .number(String(d % 7 == 0 ? 2 : 10))),
                              ("budgetId", "b_root"), ("time", time(daysAgo: d))])
        }
        try sendUsageHistory(client)
        let control = ["--control", daemon.control]

        let forecast = try budgetctl(["forecast", "--period", "weekly", "--platform", "anthropic"] + control)
        #expect(forecast.status == 0, "\(forecast.err)")
        let lines = forecast.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasPrefix("PLATFORM") == true)
        #expect(lines.first?.contains("CONFIDENCE") == true)
        #expect(lines.contains { $0.hasPrefix("Anthropic") && $0.contains("WEEKLY") })
        // The chart: 7 days of history, a bar, 7 forecast days; no colour on a pipe.
        let chart = try #require(lines.first { $0.hasPrefix("Anthropic API") && $0.contains("│") })
        let bars = chart.split(separator: " ").last.map(String.init) ?? ""
        #expect(bars.count == 15, "\(chart)")
        #expect(!forecast.out.contains("\u{1B}["))

        let json = try budgetctl(["forecast", "--period", "MONTHLY", "--service", "api", "--json"] + control)
        #expect(json.status == 0)
        let rows = try #require(try JSON.parse(json.out.trimmingCharacters(in: .whitespacesAndNewlines)).arrayValue)
        #expect(rows.map { $0["platform"]?.stringValue } == ["Anthropic", "OpenAI"])

        let list = try budgetctl(["recommendations"] + control)
        #expect(list.status == 0, "\(list.err)")
        #expect(list.out.contains("CACHE_RESULTS"))
        #expect(list.out.contains("5.90"))
        #expect(list.out.contains("Cache Anthropic claude results by request fingerprint"))
        let listed = try budgetctl(["recommendations", "list", "--json"] + control)
        let items = try #require(try JSON.parse(listed.out.trimmingCharacters(in: .whitespacesAndNewlines)).arrayValue)
        let id = try #require(items.first?["id"]?.stringValue)

        let approve = try budgetctl(["recommendations", "approve", id] + control)
        #expect(approve.status == 0, "\(approve.err)")
        #expect(approve.out.contains("now APPROVED"))
        let again = try budgetctl(["recommendations", "reject", id] + control)
        #expect(again.status == 1)
        #expect(again.err.contains("CONFLICT"))
        let implement = try budgetctl(["recommendations", "implement", id, "--json"] + control)
        #expect(implement.status == 0)
        #expect(try JSON.parse(implement.out.trimmingCharacters(in: .whitespacesAndNewlines))["status"]?.stringValue == "IMPLEMENTED")
        let implemented = try budgetctl(["recommendations", "--status", "implemented", "--json"] + control)
        #expect(try JSON.parse(implemented.out.trimmingCharacters(in: .whitespacesAndNewlines)).arrayValue?.count == 1)
        let missing = try budgetctl(["recommendations", "approve", "o_nope"] + control)
        #expect(missing.status == 1)
        #expect(missing.err.contains("NOT_FOUND"))
    }
}
