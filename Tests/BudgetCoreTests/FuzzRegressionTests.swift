import BudgetCore
import Foundation
import Testing

/// The fuzz target's checks (Fuzz/Sources/EventFuzzer), run by the test suite over the
/// committed seed corpus and every input that once made the fuzzer fail, so the properties
/// hold in every CI run without building the sanitized fuzzer (docs/reliability.md).
struct FuzzRegressionTests {
    /// Inputs the fuzzer found, kept after their fix (add new ones here with the date).
    static let regressions: [[UInt8]] = [
        // None yet: no crash or failed property in the runs recorded in docs/reliability.md.
    ]

    static let corpusDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    static func corpus() throws -> [(String, [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory.path).sorted()
        return try names.map { ($0, [UInt8](try Data(contentsOf: corpusDirectory.appendingPathComponent($0)))) }
    }

    /// What the fuzz target checks for one input; returns whether it decoded as an event.
    @discardableResult
    static func check(_ bytes: [UInt8], _ name: String) -> Bool {
        if let value = try? JSON.parse(bytes, maxDepth: EventLimits.maxDepth) {
            let text = value.serializedBytes()
            #expect((try? JSON.parse(text, maxDepth: EventLimits.maxDepth + 1)) == value, "\(name): JSON round trip")
            #expect((try? JSON.parse(value.serializedBytes(sortedKeys: true), maxDepth: EventLimits.maxDepth + 1)) == value, "\(name): sorted round trip")
        }
        guard let event = try? UsageEventDecoder.decode(bytes: bytes) else { return false }
        let again = try? UsageEventDecoder.decode(bytes: Array(event.canonicalBody.utf8), maxBytes: Int.max)
        #expect(again?.canonicalBody == event.canonicalBody, "\(name): canonical body not stable")
        return true
    }

    @Test func theSeedCorpusHoldsTheFuzzTargetsProperties() throws {
        let corpus = try Self.corpus()
        #expect(corpus.count >= 20)
        let events = corpus.filter { Self.check($0.1, $0.0) }.count
        // Both kinds are there: real events, and edge cases the validator rejects.
        #expect(events >= 8)
        #expect(corpus.count - events >= 8)
    }

    @Test func inputsTheFuzzerFoundStayFixed() {
        for (i, input) in Self.regressions.enumerated() { Self.check(input, "regression \(i)") }
    }
}
