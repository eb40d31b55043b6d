import BudgetCore
import Foundation
import Testing

/// The optimized decoder (issue 8) against the former one (ReferenceEventDecoder): the same
/// acceptance, the same rejection reason, id and source, the same field values and the same
/// canonical body bytes, over the fuzz seed corpus, the benchmark's event shapes, and every
/// known field (and a few unknown ones) set to each of a list of awkward values.
struct EventDecoderDifferentialTests {
    /// Everything a decode yields, as comparable text.
    static func outcome(_ bytes: [UInt8]) -> String {
        do {
            return describe(try UsageEventDecoder.decode(bytes: bytes))
        } catch {
            return "rejected: \(error.reason) id=\(error.id ?? "nil") source=\(error.source ?? "nil")"
        }
    }

    static func referenceOutcome(_ bytes: [UInt8]) -> String {
        do {
            let e = try ReferenceEventDecoder.decode(bytes: bytes)
            return describe(
                e.id, e.source, e.seq, e.time, e.platform, e.serviceType, e.model, e.endpoint, e.usage, e.cost,
                e.currency, e.budgetId, e.userId, e.apiUsageId, e.apifyRunId, e.description, e.metadata,
                e.kind, e.correctsEvent, e.canonicalBody
            )
        } catch {
            return "rejected: \(error.reason) id=\(error.id ?? "nil") source=\(error.source ?? "nil")"
        }
    }

    static func describe(_ e: UsageEvent) -> String {
        describe(
            e.id, e.source, e.seq, e.time, e.platform, e.serviceType, e.model, e.endpoint, e.usage, e.cost,
            e.currency, e.budgetId, e.userId, e.apiUsageId, e.apifyRunId, e.description, e.metadata,
            e.kind, e.correctsEvent, e.canonicalBody
        )
    }

    // swiftlint:disable:next function_parameter_count
    static func describe(
        _ id: String, _ source: String, _ seq: Int64?, _ time: Timestamp?, _ platform: String,
        _ serviceType: ServiceType, _ model: String?, _ endpoint: String?,
        _ usage: [(unit: String, quantity: ExactDecimal)], _ cost: Money?, _ currency: String,
        _ budgetId: String?, _ userId: String?, _ apiUsageId: String?, _ apifyRunId: String?,
        _ description: String?, _ metadata: JSONObject?, _ kind: EventKind, _ correctsEvent: EventRef?,
        _ canonicalBody: String
    ) -> String {
        // Strings are shown by their scalars so canonically equivalent texts stay distinct.
        func s(_ text: String?) -> String { text.map { $0.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: ".") } ?? "nil" }
        let units = usage.map { "\(s($0.unit))=\($0.quantity.mantissa)e\($0.quantity.exponent)" }.joined(separator: ",")
        let meta = metadata.map { s(JSONValue.object($0).serialized()) } ?? "nil"
        return [
            s(id), s(source), seq.map { String($0) } ?? "nil", time.map { String($0.nanosecondsSinceEpoch) } ?? "nil",
            s(platform), serviceType.rawValue, s(model), s(endpoint), units, cost.map { String($0.nanos) } ?? "nil",
            s(currency), s(budgetId), s(userId), s(apiUsageId), s(apifyRunId), s(description), meta,
            kind.rawValue, correctsEvent.map { s($0.source) + "/" + s($0.id) } ?? "nil", s(canonicalBody),
        ].joined(separator: "|")
    }

    /// A benchmark-shaped event (Benchmarks/Sources/DecodeBench, after budgetctl's BenchWorkload).
    static func benchEvent(_ i: Int) -> String {
        let head = #"{"id":"b8-\#(i)","source":"bench-b8","seq":\#(i + 1),"time":"2025-11-29T12:10:00Z","#
        let tail = #","userId":"user-\#(i % 50)","metadata":{"projectId":"proj-\#(i % 8)","bench":"b8-\#(i % 10)"}}"#
        switch i % 4 {
        case 0:
            return head + #""platform":"OpenAI","serviceType":"API","model":"gpt-4o","endpoint":"/v1/chat/completions","usage":{"inputTokens":\#(200 + i),"outputTokens":\#(50 + i)},"currency":"USD""# + tail
        case 1:
            return head + #""platform":"Anthropic","serviceType":"API","model":"claude-sonnet-4-5","endpoint":"/v1/messages","usage":{"inputTokens":\#(200 + i),"outputTokens":\#(50 + i)},"currency":"USD""# + tail
        case 2:
            return head + #""platform":"Apify","serviceType":"SCRAPING","model":"apify/web-scraper","cost":"0.0\#(i)","currency":"USD","apifyRunId":"run-b8-\#(i)""# + tail
        default:
            return head + #""platform":"AWS","serviceType":"STORAGE","model":"s3-standard","endpoint":"s3:PutObject","cost":0.000\#(i),"currency":"USD""# + tail
        }
    }

    static let bases: [String] = [
        #"{"id":"e1","platform":"OpenAI","serviceType":"API"}"#,
        #"{"seq":7,"id":"e2","source":"s","platform":"OpenAI","serviceType":"API","usage":{"b":1,"a":"2.50"},"cost":"0.10","currency":"eur","kind":"CREDIT","time":"2026-03-05T13:00:00+01:00","metadata":{"z":1.0,"a":[1e2,{"y":null,"x":"1"}]},"note":null,"zz":-0.0}"#,
        #"{"specversion":"1.0","id":"ce1","source":"/s","type":"usage","time":"2026-03-05T12:00:00Z","datacontenttype":"application/json","data":{"platform":"AWS","serviceType":"STORAGE","cost":1.5,"extra":{"k":10}}}"#,
    ]

    static let fields = [
        "id", "source", "seq", "time", "platform", "serviceType", "model", "endpoint", "usage", "cost", "currency",
        "budgetId", "userId", "apiUsageId", "apifyRunId", "metadata", "description", "kind", "correctsEvent",
        "specversion", "data", "note", "", "ids", "idx", "apiUsageIdX", "metadata2", "m\u{E9}tadata", "\u{212A}ind",
        "description\u{301}",
    ]

    static let values: [String] = [
        "null", "true", "false", "0", "-1", "7", "1.50", "1e3", "1E-3", "-0.0", "0.1000000000000000000001", "1e9999",
        "12345678901234567890123456789012345678901", #""""#, #""1.50""#, #""1e3""#, #""USD""#, #""usd""#, #""eur""#,
        #""CREDIT""#, #""USAGE""#, #""credit""#, #""API""#, #""1.0""#, #""-5""#, #""e\u0301""#, #""\u00e9\"\n\u0001""#,
        #""2026-03-05T13:00:00+01:00""#, #""2026-03-05""#, "{}", #"{"a":1.0,"B":[1,"x",{"b":2.50,"a":null}]}"#,
        #"{"inputTokens":"1.50","b":0,"a":1e2}"#, #"{"id":"x","source":"s"}"#, #"{"id":"x"}"#, #"{"":1}"#, "[]",
        #"[1,"x",{"b":2.50}]"#, "\"" + String(repeating: "x", count: 257) + "\"",
        "\"" + String(repeating: "\u{E9}", count: 200) + "\"", "\"" + String(repeating: "d", count: 4097) + "\"",
        "\"" + String(repeating: "i", count: 129) + "\"",
        #"{"k":""# + String(repeating: "x", count: 16 * 1024 - 7) + #""}"#,
        #"{"k":""# + String(repeating: "x", count: 16 * 1024 - 8) + #""}"#,
        #"{"cost":"0.5","kind":"CREDIT"}"#,
    ]

    /// Every base with `field` set (added, or replacing its value) to each value.
    static func variants() -> [String] {
        var result: [String] = []
        for base in bases {
            guard case .object(let object)? = try? JSON.parse(base) else { continue }
            for field in fields {
                for value in values {
                    guard let parsed = try? JSON.parse(value, maxDepth: 64) else { continue }
                    var o = object
                    o[field] = parsed
                    result.append(JSONValue.object(o).serialized())
                    // The same field first, and as an escaped key.
                    var first = JSONObject()
                    first[field] = parsed
                    for (k, v) in object where k != field { first[k] = v }
                    result.append(JSONValue.object(first).serialized())
                }
            }
        }
        return result
    }

    static func corpusFiles() throws -> [[UInt8]] {
        try FuzzRegressionTests.corpus().map(\.1)
    }

    static func check(_ inputs: [[UInt8]]) {
        var differences = 0
        for input in inputs {
            let expected = referenceOutcome(input)
            let actual = outcome(input)
            if actual != expected {
                differences += 1
                if differences <= 10 {
                    Issue.record("decoders differ for \(String(decoding: input, as: UTF8.self).prefix(300))\nnew: \(actual.prefix(600))\nold: \(expected.prefix(600))")
                }
            }
        }
        #expect(differences == 0)
    }

    @Test func theFuzzCorpusDecodesAsBefore() throws {
        let corpus = try Self.corpusFiles()
        #expect(corpus.count >= 20)
        Self.check(corpus)
        // And with each file's bytes as the body of a CloudEvent where it is an object.
        Self.check(corpus.map { Array(#"{"specversion":"1.0","id":"c","source":"s","data":"#.utf8) + $0 + Array("}".utf8) })
    }

    @Test func benchmarkShapedEventsDecodeAsBefore() {
        Self.check((0..<400).map { Array(Self.benchEvent($0).utf8) })
    }

    @Test func everyFieldWithAwkwardValuesDecodesAsBefore() {
        let inputs = Self.variants()
        #expect(inputs.count > 2000)
        Self.check(inputs.map { Array($0.utf8) })
    }

    @Test func handWrittenEdgeCasesDecodeAsBefore() {
        let cases: [String] = [
            #"{"\u0069d":"e1","platform":"OpenAI","serviceType":"API"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","source":null,"currency":null,"kind":null,"seq":null,"time":null,"cost":null,"usage":null}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","usage":{}}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","usage":{"":1}}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","kind":"USAGE","cost":0}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","kind":"CREDIT","cost":0}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","kind":"CREDIT","cost":"0.0000000001"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","kind":"CREDIT","cost":"1.2345678915"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","currency":"ｕｓｄ"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","currency":"uSd"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","currency":"ß"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","aaaaaaaab":1,"aaaaaaaaa":2,"aaaaaaaa":3,"aaaaaaa\u0000":4,"aaaaaaa":5}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","\u00ff":1,"\u007f":2,"\ud83d\ude00":3,"\uffff":4}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","metadata":{"é":1,"e\u0301":2,"K":3,"\u212a":4}}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","correctsEvent":{"id":"e0"},"kind":"CREDIT","cost":1}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","correctsEvent":{"id":"e0","source":7}}"#,
            #"{"id":"\#(String(repeating: "é", count: 128))","platform":"OpenAI","serviceType":"API"}"#,
            #"{"id":"\#(String(repeating: "e\u{301}", count: 128))","platform":"OpenAI","serviceType":"API"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","note":"\#(String(repeating: "e\u{301}", count: 256))"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","description":"\#(String(repeating: "e\u{301}", count: 4096))"}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","usage":{"\#(String(repeating: "u", count: 257))":1}}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","usage":{"\#(String(repeating: "e\u{301}", count: 256))":1}}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","metadata":{"k":"\#(String(repeating: "\u{1}", count: 2731))"}}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","metadata":{"k":"\#(String(repeating: "\\n", count: 8185))"}}"#,
            #"{"id":"e1","platform":"OpenAI","serviceType":"API","x":[[[[1.0]]],{"b":{"a":1e-3}}],"seq":"12"}"#,
            #"{"specversion":"1.0","id":"c","source":"s","data":{"id":"inner","platform":"AWS","serviceType":"STORAGE","time":"bad"},"time":null}"#,
            #"{"specversion":"1.1","id":"c","data":{}}"#,
            #"{"specversion":"1.0","id":"c","datacontenttype":"text/plain","data":{}}"#,
            "{\"id\":\"e1\",\"platform\":\"OpenAI\",\"serviceType\":\"API\",\"k\":\"" + String(repeating: "long-value-", count: 30) + "\"}",
        ]
        Self.check(cases.map { Array($0.utf8) })
    }

    /// Golden canonical bodies, independent of either implementation.
    @Test func goldenCanonicalBodies() throws {
        let e = try UsageEventDecoder.decode(bytes: Array(Self.benchEvent(2).utf8))
        #expect(e.canonicalBody == #"{"apifyRunId":"run-b8-2","cost":0.02,"currency":"USD","id":"b8-2","metadata":{"bench":"b8-2","projectId":"proj-2"},"model":"apify/web-scraper","platform":"Apify","seq":3,"serviceType":"SCRAPING","source":"bench-b8","time":"2025-11-29T12:10:00Z","userId":"user-2"}"#)
        let credit = try UsageEventDecoder.decode(bytes: Array(Self.bases[1].utf8))
        #expect(credit.canonicalBody == #"{"cost":0.1,"currency":"EUR","id":"e2","kind":"CREDIT","metadata":{"a":[100,{"x":"1","y":null}],"z":1},"note":null,"platform":"OpenAI","seq":7,"serviceType":"API","source":"s","time":"2026-03-05T12:00:00Z","usage":{"a":2.5,"b":1},"zz":0}"#)
    }

    // MARK: The common-shape path (UsageEvent+CommonShape.swift) against the general decoder

    /// The general decoder alone (a JSON tree, then the event), without the common-shape path.
    static func generalOutcome(_ bytes: [UInt8]) -> String {
        let value: JSONValue
        do { value = try JSON.parse(bytes, maxDepth: EventLimits.maxDepth) } catch {
            return "rejected: invalid JSON: \(error.message)"
        }
        do { return describe(try UsageEventDecoder.decode(value)) } catch {
            return "rejected: \(error.reason)"
        }
    }

    /// The common-shape path's event, or nil where it gives up.
    static func commonShape(_ bytes: [UInt8]) -> UsageEvent? {
        bytes.withUnsafeBufferPointer { UsageEventDecoder.decodeCommonShape($0) }
    }

    /// Where the common-shape path gives an event, the general decoder gives the same one;
    /// returns how many it gave.
    static func checkCommonShape(_ inputs: [[UInt8]]) -> Int {
        var taken = 0, differences = 0
        for input in inputs {
            guard let event = commonShape(input) else { continue }
            taken += 1
            let expected = generalOutcome(input)
            let actual = describe(event)
            if actual != expected {
                differences += 1
                if differences <= 10 {
                    Issue.record("the common-shape path differs for \(String(decoding: input, as: UTF8.self).prefix(300))\nfast: \(actual.prefix(600))\ngeneral: \(expected.prefix(600))")
                }
            }
        }
        #expect(differences == 0)
        return taken
    }

    @Test("the common-shape path decodes every benchmark-shaped event, as the general decoder does")
    func commonShapeTakesTheBenchmarkEvents() {
        let inputs = (0..<400).map { Array(Self.benchEvent($0).utf8) }
        #expect(Self.checkCommonShape(inputs) == 400)
    }

    @Test("where the common-shape path takes an awkward value, it decodes it as the general decoder does; it gives up on the rest")
    func commonShapeWithAwkwardValues() throws {
        let inputs = Self.variants().map { Array($0.utf8) } + (try Self.corpusFiles())
        let taken = Self.checkCommonShape(inputs)
        // It takes some (plain values of known fields on the first base), not all.
        #expect(taken > 100)
        #expect(taken < inputs.count / 2)
    }

    @Test("the common-shape path against the general decoder on 30,000 mutated events: same event where it takes one, nothing the general decoder rejects")
    func commonShapeOnMutatedEvents() {
        var rng = SplitMix64(state: 0x5EED_0F_C0FFEE)
        let pieces: [[UInt8]] = [
            Array("\"".utf8), Array("\\".utf8), Array(" ".utf8), Array("\n".utf8), Array("{".utf8), Array("}".utf8),
            Array("[".utf8), Array("]".utf8), Array(",".utf8), Array(":".utf8), Array("0".utf8), Array("1".utf8),
            Array("-".utf8), Array(".".utf8), Array("e".utf8), Array("E".utf8), Array("+".utf8), Array("a".utf8),
            Array("Z".utf8), Array("é".utf8), [0x7F], [0x01], [0x00], Array("null".utf8), Array("true".utf8),
            Array("\"x\":1,".utf8), Array("\"id\":\"d\",".utf8), Array("\"kind\":\"CREDIT\",".utf8),
            Array("\"metadata\":{},".utf8), Array("\"usage\":{\"u\":\"1.5\"},".utf8), Array("\"cost\":\"-1\",".utf8),
            Array("\"currency\":\"eur\",".utf8), Array("\"seq\":0,".utf8), Array("\"time\":\"2026-01-01T00:00:00+02:00\",".utf8),
        ]
        var inputs: [[UInt8]] = []
        for n in 0..<30_000 {
            var bytes = Array(Self.benchEvent(rng.below(400)).utf8)
            for _ in 0..<(1 + n % 3) {
                let at = rng.below(bytes.count + 1)
                switch rng.below(4) {
                case 0 where at < bytes.count: bytes.remove(at: at)
                case 1 where at < bytes.count: bytes[at] = pieces[rng.below(pieces.count)].first ?? 0x20
                default: bytes.insert(contentsOf: pieces[rng.below(pieces.count)], at: at)
                }
            }
            inputs.append(bytes)
        }
        var rejectedTaken = 0
        for input in inputs where Self.generalOutcome(input).hasPrefix("rejected:") && Self.commonShape(input) != nil {
            rejectedTaken += 1
            if rejectedTaken <= 5 { Issue.record("the common-shape path takes what the general decoder rejects: \(String(decoding: input, as: UTF8.self))") }
        }
        #expect(rejectedTaken == 0)
        let taken = Self.checkCommonShape(inputs)
        // Mutations that keep an event valid and simple (white space, a digit, a letter) stay on it.
        #expect(taken > 3_000)
        // And the whole decoder (both paths) still agrees with the former implementation.
        Self.check(Array(inputs.prefix(5_000)))
    }
}
