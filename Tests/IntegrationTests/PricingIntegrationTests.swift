import BudgetCore
import Foundation
import Testing
import ZMQ

/// Pricing, currencies, hierarchies and re-processing against the real daemon.
@Suite(.timeLimit(.minutes(5)))
struct PricingIntegrationTests {
    static let catalogV1 = """
        {"version": "v1", "prices": [
          {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD",
           "unitPrices": {"inputTokens": "0.0000025", "outputTokens": "0.00001"}}],
         "rates": [{"from": "USD", "to": "EUR", "rate": "0.9", "effectiveFrom": "2026-01-01T00:00:00Z"}]}
        """
    static let catalogV2 = """
        {"version": "v2", "prices": [
          {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD",
           "unitPrices": {"inputTokens": "0.0000025", "outputTokens": "0.00001"}},
          {"platform": "OpenAI", "model": "gpt-new", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD",
           "unitPrices": {"inputTokens": "0.001"}}]}
        """

    func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func usage(_ id: String, model: String, input: Int, output: Int = 0, extra: [(String, JSONValue)] = []) -> JSONValue {
        var o = JSONObject([
            ("id", .string(id)), ("source", "pricing"), ("platform", "OpenAI"), ("serviceType", "API"),
            ("model", .string(model)), ("usage", ["inputTokens": .number(String(input)), "outputTokens": .number(String(output))]),
        ])
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    @Test(arguments: ["op", "SIGHUP"])
    func unpricedUsageAlertsThenAReloadPricesItOnce(trigger: String) throws {
        let dir = try TempDir()
        try write(Self.catalogV1, to: dir.file("prices.json"))
        let daemon = try Daemon(dir: dir, extraArgs: ["--prices", dir.file("prices.json")])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "100")
        let sub = try client.subscriber()

        let ack = try client.sendAck(usage("n1", model: "gpt-new", input: 1000))
        #expect(ack.string("state") == "UNPRICED")
        #expect(ack.string("reason")?.contains("gpt-new") == true)
        let alert = try #require(try client.next(sub))
        #expect(alert.topic == "alert.UNPRICED_USAGE")
        #expect(alert.payload.string("severity") == "WARNING")
        #expect(alert.payload.string("platform") == "OpenAI")
        #expect(alert.payload.string("serviceType") == "API")
        #expect(alert.payload.string("model") == "gpt-new")
        #expect(alert.payload.string("budgetId") == budgetId)
        // Once per platform and model per month: a second unpriced event is stored, not alerted.
        #expect(try client.sendAck(usage("n2", model: "gpt-new", input: 500)).string("state") == "UNPRICED")
        #expect(try client.quiet(sub, ms: 300))

        try write(Self.catalogV2, to: dir.file("prices.json"))
        if trigger == "op" {
            let reloaded = try client.call("prices.reload")
            #expect(reloaded["version"]?.stringValue == "v2")
            #expect(reloaded["entries"]?.numberText == "2")
            #expect(reloaded["allocated"]?.numberText == "2")
        } else {
            kill(daemon.process.processIdentifier, SIGHUP)
            try waitFor { try client.call("event.list", ["state": "UNPRICED"]).arrayValue?.isEmpty == true }
        }
        // 1000 × 0.001 + 500 × 0.001, counted once each.
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == "1.5")
        #expect(try client.sendAck(usage("n1", model: "gpt-new", input: 1000)).string("status") == "DUPLICATE")
        _ = try client.call("prices.reload")
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == "1.5")
        #expect(try client.call("event.list", ["state": "ALLOCATED"]).arrayValue?.count == 2)
    }

    /// With no budget to take it, a catalog cost is still checked as a booked one is: over 1e12
    /// is UNPRICED with its reason and UNPRICED_USAGE (budget null), in the ack, the quote and
    /// event.list (it was UNALLOCATED with the cost, its state depending on routing: an audit);
    /// and an UNALLOCATED event's would-be cost follows a reloaded catalog (it kept the first).
    @Test func anUnroutedCostIsRangeCheckedAndFollowsAReloadedCatalog() throws {
        let dir = try TempDir()
        func catalog(_ price: String) -> String {
            """
            {"version": "p\(price)", "prices": [
              {"platform": "Acme", "model": "Big", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD", "unitPrices": {"units": "1000"}},
              {"platform": "OpenAI", "model": "gpt-4o", "effectiveFrom": "2026-01-01T00:00:00Z", "currency": "USD", "unitPrices": {"inputTokens": "\(price)"}}]}
            """
        }
        try write(catalog("0.001"), to: dir.file("prices.json"))
        let daemon = try Daemon(dir: dir, extraArgs: ["--prices", dir.file("prices.json")])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let sub = try client.subscriber()
        let big: JSONValue = [
            "id": "big", "platform": "Acme", "serviceType": "API", "model": "Big", "usage": ["units": "1000000001"],
            "time": "2026-11-02T00:00:00Z",
        ]
        let ack = try client.sendAck(big)
        #expect(ack.string("state") == "UNPRICED", "\(ack)")
        #expect(ack.string("reason") == "cost over 1e12", "\(ack)")
        var quoteArgs = big.objectValue!
        _ = quoteArgs.removeValue(forKey: "id")
        let quote = try client.call("price.quote", .object(quoteArgs))
        #expect(quote["state"]?.stringValue == "UNPRICED", "\(quote)")
        #expect(quote["cost"] == .null, "\(quote)")
        let alert = try #require(try client.next(sub))
        #expect(alert.topic == "alert.UNPRICED_USAGE")
        #expect(alert.payload["budgetId"] == .null)
        let unpriced = try #require(try client.call("event.list", ["state": "UNPRICED"]).arrayValue?.first)
        #expect(unpriced["id"]?.stringValue == "big")
        #expect(unpriced["cost"] == .null, "\(unpriced)")

        // 1000 × 0.001, no budget: UNALLOCATED with the cost it would have had.
        let small = usage("small", model: "gpt-4o", input: 1000, extra: [("time", "2026-11-02T00:00:00Z")])
        #expect(try client.sendAck(small).string("state") == "UNALLOCATED")
        func listedCost() throws -> String? {
            try client.call("event.list", ["state": "UNALLOCATED"]).arrayValue?.first?["cost"]?.numberText
        }
        #expect(try listedCost() == "1")
        try write(catalog("0.002"), to: dir.file("prices.json"))
        #expect(try client.call("prices.reload")["version"]?.stringValue == "p0.002")
        // A reload re-prices UNPRICED events; an UNALLOCATED one is priced again when it is
        // re-processed (by event.reprocess, or when budgets change), and keeps no budget.
        #expect(try listedCost() == "1")
        let again = try client.call("event.reprocess", ["state": "UNALLOCATED"])
        #expect(again["remaining"]?.numberText == "1", "\(again)")
        #expect(try listedCost() == "2")
        var smallQuote = small.objectValue!
        _ = smallQuote.removeValue(forKey: "id")
        #expect(try client.call("price.quote", .object(smallQuote))["cost"]?.numberText == "2")
    }

    /// UNPRICED_USAGE is once per platform and model per UTC month of the usage (the event's
    /// time), not of when it arrives: a backfill of two months alerts twice; the rule holds
    /// across a restart (rebuilt from the alerts' `usageMonth`).
    @Test func unpricedUsageOncePerMonthOfTheUsage() throws {
        let dir = try TempDir()
        try write(Self.catalogV1, to: dir.file("prices.json"))
        var daemon = try Daemon(dir: dir, extraArgs: ["--prices", dir.file("prices.json")])
        func send(_ client: Client, _ id: String, _ time: String) throws -> String? {
            try client.sendAck(usage(id, model: "gpt-new", input: 10, extra: [("time", .string(time))])).string("state")
        }
        do {
            let client = try Client(daemon)
            let sub = try client.subscriber()
            #expect(try send(client, "m1", "2026-03-05T12:00:00Z") == "UNPRICED")
            let march = try #require(try client.next(sub))
            #expect(march.topic == "alert.UNPRICED_USAGE")
            #expect(march.payload.string("usageMonth") == "2026-03")
            #expect(try send(client, "m2", "2026-03-31T23:59:59Z") == "UNPRICED")
            #expect(try client.quiet(sub, ms: 300))
            #expect(try send(client, "m3", "2026-04-01T00:00:00Z") == "UNPRICED")
            #expect(try client.next(sub)?.payload.string("usageMonth") == "2026-04")
        }
        #expect(daemon.stop() == 0)
        daemon = try Daemon(dir: dir, extraArgs: ["--prices", dir.file("prices.json")])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let sub = try client.subscriber()
        #expect(try send(client, "m4", "2026-03-20T00:00:00Z") == "UNPRICED")
        #expect(try send(client, "m5", "2026-04-20T00:00:00Z") == "UNPRICED")
        #expect(try client.quiet(sub, ms: 300))
        #expect(try send(client, "m6", "2026-05-02T00:00:00Z") == "UNPRICED")
        #expect(try client.next(sub)?.payload.string("usageMonth") == "2026-05")
        #expect(try client.call("alert.list", ["budgetId": .null]).arrayValue?.count == 3)
    }

    /// The catalog's path was read once at start: a config file naming another catalog was
    /// re-read by SIGHUP (its alert settings applied) and the old path reloaded.
    @Test("SIGHUP with a config file naming another catalog loads that one; a bad one is refused, the old one stays")
    func sighupFollowsTheConfiguredCatalogPath() throws {
        let dir = try TempDir()
        try write(Self.catalogV1, to: dir.file("prices.json"))
        let daemon = try Daemon(dir: dir, config: ["prices": "\"\(dir.file("prices.json"))\""])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        func quote() throws -> String? {
            try client.call("price.quote", usage("q", model: "gpt-new", input: 1000))["cost"]?.numberText
        }
        #expect(try client.call("price.quote", usage("q", model: "gpt-new", input: 1000))["state"]?.stringValue == "UNPRICED")
        try write(Self.catalogV2, to: dir.file("prices-v2.json"))
        let config = dir.file("config.json")
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try write(text.replacingOccurrences(of: dir.file("prices.json"), with: dir.file("prices-v2.json")), to: config)
        kill(daemon.process.processIdentifier, SIGHUP)
        try waitFor { try client.call("price.quote", usage("q", model: "gpt-new", input: 1000))["state"]?.stringValue != "UNPRICED" }
        #expect(try quote() == "1")
        #expect(daemon.stderr.contains("price catalog path changed"), "\(daemon.stderr)")
        // prices.reload reads the new path too; a bad catalog there is refused, the loaded one stays.
        try write("{\"prices\": [{\"platform\": \"OpenAI\"}]}", to: dir.file("prices-v2.json"))
        #expect(try client.request("prices.reload")["error"]?["code"]?.stringValue == "VALIDATION_FAILED")
        #expect(try quote() == "1")
    }

    @Test func aBadCatalogIsRefusedAndTheOldOneStays() throws {
        let dir = try TempDir()
        try write(Self.catalogV1, to: dir.file("prices.json"))
        let daemon = try Daemon(dir: dir, extraArgs: ["--prices", dir.file("prices.json")])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        try write("{\"prices\": [{\"platform\": \"OpenAI\"}]}", to: dir.file("prices.json"))
        let reply = try client.request("prices.reload")
        #expect(reply["error"]?["code"]?.stringValue == "VALIDATION_FAILED")
        #expect(reply["error"]?["message"]?.stringValue?.contains("prices[0].model") == true)
        let quote = try client.call("price.quote", usage("q", model: "gpt-4o", input: 1200, output: 300))
        #expect(quote["cost"]?.numberText == "0.006")
        #expect(quote["price"]?["model"]?.stringValue == "gpt-4o")
        // The entry's prices are JSON numbers in shortest form, as every amount in a reply.
        #expect(quote["price"]?["unitPrices"]?["inputTokens"]?.numberText == "0.0000025")
        #expect(quote["price"]?["unitPrices"]?["outputTokens"]?.numberText == "0.00001")
    }

    @Test func aBudgetInAnotherCurrencyConvertsWithTheDatedRate() throws {
        let dir = try TempDir()
        try write(Self.catalogV1, to: dir.file("prices.json"))
        let daemon = try Daemon(dir: dir, extraArgs: ["--prices", dir.file("prices.json")])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let eur = try makeBudget(client, name: "EUR", total: "100", extra: [("currency", "EUR"), ("selector", ["team": "eu"])])
        // 1200 × 0.0000025 + 300 × 0.00001 = 0.006 USD → × 0.9 = 0.0054 EUR.
        let ack = try client.sendAck(usage("c1", model: "gpt-4o", input: 1200, output: 300, extra: [("metadata", ["team": "eu"])]))
        #expect(ack.string("state") == "ALLOCATED")
        #expect(try client.call("budget.get", ["id": .string(eur)])["totalSpent"]?.numberText == "0.0054")
        // An explicit USD cost finer than 1e-9 is converted from its exact value and rounded once:
        // 2.0000000015 × 0.9 = 1.80000000135 → 1.800000001 EUR (rounding the cost first gave
        // 2.000000002 × 0.9 = 1.8000000018 → 1.800000002).
        let fine = try client.sendAck(costEvent("c3", cost: "2.0000000015", extra: [("metadata", ["team": "eu"])]))
        #expect(fine.string("state") == "ALLOCATED")
        #expect(try client.call("budget.get", ["id": .string(eur)])["totalSpent"]?.numberText == "1.805400001")
        // An explicit cost in GBP has no GBP→EUR rate: UNPRICED with the reason.
        let gbp = try client.sendAck(costEvent("c2", cost: "1", extra: [("currency", "GBP"), ("metadata", ["team": "eu"])]))
        #expect(gbp.string("state") == "UNPRICED")
        #expect(gbp.string("reason") == "no rate GBP→EUR")
        // price.quote says the same: UNPRICED, no cost (not the unconverted 1 GBP).
        let quote = try client.call("price.quote", costEvent("q", cost: "1", extra: [("currency", "GBP"), ("metadata", ["team": "eu"])]))
        #expect(quote["state"]?.stringValue == "UNPRICED")
        #expect(quote["reason"]?.stringValue == "no rate GBP→EUR")
        #expect(quote["cost"]?.isNull == true)
        #expect(quote["currency"]?.isNull == true)
        // A CREDIT is quoted as it is booked: a negative cost.
        let credit = try client.call("price.quote", costEvent("q", cost: "2", extra: [("kind", "CREDIT"), ("metadata", ["team": "eu"])]))
        #expect(credit["cost"]?.numberText == "-1.8")
        #expect(credit["currency"]?.stringValue == "EUR")
    }

    @Test func aChildsSpendRollsUpThroughThreeLevelsWithEachLevelsAlerts() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let year = try makeBudget(client, name: "Year", total: "1000")
        let quarter = try makeBudget(client, name: "Quarter", total: "500", extra: [("parentId", .string(year))])
        let team = try makeBudget(client, name: "Team", total: "100", extra: [
            ("parentId", .string(quarter)),
            ("allocations", [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": .number("50")]]),
        ])
        let sub = try client.subscriber()
        // 420 crosses everything on Team (and its allocation), 80 % of Quarter, nothing on Year (42 %).
        _ = try client.sendAck(costEvent("h1", cost: "420", budgetId: team))
        var got: [(String, String?)] = []
        for _ in 0..<7 {
            let m = try #require(try client.next(sub))
            got.append((m.topic, m.payload.string("budgetId")))
        }
        #expect(got.map(\.0) == [
            "alert.THRESHOLD_80", "alert.THRESHOLD_90", "alert.THRESHOLD_100", "alert.BUDGET_EXCEEDED",
            "status.EXCEEDED", "alert.ALLOCATION_DEPLETED", "alert.THRESHOLD_80",
        ])
        #expect(got.map(\.1) == [team, team, team, team, team, team, quarter])
        #expect(try client.quiet(sub, ms: 300))
        #expect(try client.call("budget.get", ["id": .string(year)])["totalSpent"]?.numberText == "420")
        #expect(try client.call("budget.get", ["id": .string(quarter)])["totalSpent"]?.numberText == "420")
        // A cycle and a currency mismatch are refused.
        let cycle = try client.request("budget.update", ["id": .string(year), "parentId": .string(team)])
        #expect(cycle["error"]?["code"]?.stringValue == "CONFLICT" || cycle["error"]?["code"]?.stringValue == "VALIDATION_FAILED")
        let otherCurrency = try client.request("budget.create", [
            "name": "EUR child", "budgetType": "MONTHLY", "totalAmount": .number("5"), "startDate": "2026-03-01",
            "currency": "EUR", "parentId": .string(year),
        ])
        #expect(otherCurrency["error"]?["code"]?.stringValue == "VALIDATION_FAILED")
    }

    @Test func cloudEventsStructuredModeIsAccepted() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "100")
        let event: JSONValue = [
            "specversion": "1.0", "type": "com.example.usage", "id": "ce-1", "source": "scraper-eu-1",
            "time": .string(Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).rfc3339),
            "datacontenttype": "application/json",
            "data": ["platform": "Apify", "serviceType": "SCRAPING", "cost": "0.15"],
        ]
        let ack = try client.sendAck(event)
        #expect(ack.string("status") == "ACCEPTED")
        #expect(ack.string("id") == "ce-1")
        #expect(ack.string("source") == "scraper-eu-1")
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == "0.15")
        let binary: JSONValue = ["specversion": "1.0", "type": "t", "id": "ce-2", "source": "s", "data_base64": "AAAA"]
        let rejected = try client.sendAck(binary)
        #expect(rejected.string("status") == "REJECTED")
        #expect(rejected.string("reason")?.contains("data_base64") == true)
    }

    @Test func theLiteLLMMapPricesEventsExactly() throws {
        let map = try #require(SharedData.litellmPath, "shared/data/litellm-model-prices.json not found")
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir, extraArgs: ["--prices", map])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let budgetId = try makeBudget(client, total: "100")
        #expect(try client.sendAck(usage("l1", model: "gpt-4o", input: 1200, output: 300)).string("state") == "ALLOCATED")
        #expect(try client.call("budget.get", ["id": .string(budgetId)])["totalSpent"]?.numberText == "0.006")
        let reloaded = try client.call("prices.reload")
        #expect(Int(reloaded["entries"]?.numberText ?? "") ?? 0 > 2000)
    }
}

/// The shared data folder, beside the repository (CI lays a copy there) or at /work/shared.
enum SharedData {
    static var litellmPath: String? {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for candidate in [repo.deletingLastPathComponent().appendingPathComponent("shared/data/litellm-model-prices.json").path,
                          "/work/shared/data/litellm-model-prices.json"]
        where FileManager.default.fileExists(atPath: candidate) {
            return candidate
        }
        return nil
    }
}
