import BudgetCore
import Foundation
import Testing

/// The example catalog shipped in config/ loads and prices what it claims to.
@Suite struct ExampleCatalogTests {
    static let catalog: Catalog? = {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        guard let data = FileManager.default.contents(atPath: repo.appendingPathComponent("config/prices.json").path) else { return nil }
        return try? Catalog.load(json: [UInt8](data))
    }()

    func cost(_ platform: String, _ model: String, _ usage: [(String, String)], batch: Bool = false) throws -> String? {
        let catalog = try #require(Self.catalog)
        var o = JSONObject([("id", "x"), ("platform", .string(platform)), ("serviceType", "API"), ("model", .string(model))])
        o["usage"] = .object(JSONObject(usage.map { ($0.0, JSONValue.number($0.1)) }))
        if batch { o["metadata"] = ["batch": true] }
        let event = try UsageEventDecoder.decode(.object(o))
        guard case .priced(let amount, "USD", _) = Pricer(catalog: catalog).price(event, at: try Timestamp(rfc3339: "2026-11-01T00:00:00Z")) else { return nil }
        return amount.roundedUnits(scale: 9).map { Money(nanos: $0).description }
    }

    @Test func openAIAnthropicAndApifyArePriced() throws {
        #expect(try cost("OpenAI", "gpt-4o", [("inputTokens", "1200"), ("outputTokens", "300")]) == "0.006")
        #expect(try cost("openai", "GPT-4O", [("cachedInputTokens", "1000")]) == "0.00125")
        #expect(try cost("OpenAI", "gpt-4o", [("inputTokens", "1000")], batch: true) == "0.00125")
        #expect(try cost("Anthropic", "claude-sonnet-4-5", [("inputTokens", "1000"), ("outputTokens", "1000")]) == "0.018")
        #expect(try cost("Apify", "BRONZE", [("computeUnits", "2"), ("datasetWrites", "1000")]) == "0.605")
        #expect(try cost("Apify", "GOLD", [("computeUnits", "2")]) == "0.4")
        #expect(try cost("Apify", "BRONZE", [("proxyGb", "1")]) == nil)
    }

    @Test func theExampleRateConvertsEuros() throws {
        let catalog = try #require(Self.catalog)
        #expect(catalog.rate(from: "EUR", to: "USD", at: try Timestamp(rfc3339: "2026-06-01T00:00:00Z"))?.description == "1.08")
        #expect(catalog.rate(from: "USD", to: "EUR", at: try Timestamp(rfc3339: "2026-06-01T00:00:00Z")) == nil)
    }
}
