import BudgetCore
import Testing

// CONTRACT §2: decoding, validation and the canonical body of usage events.

/// The smallest valid event; `extra` adds fields (without a leading comma).
private func body(_ extra: String = "") -> String {
    let base = #"{"id":"e1","platform":"OpenAI","serviceType":"API""#
    return extra.isEmpty ? base + "}" : base + "," + extra + "}"
}

private func decode(_ text: String, maxBytes: Int = EventLimits.defaultMaxMessageBytes) throws -> UsageEvent {
    try UsageEventDecoder.decode(bytes: Array(text.utf8), maxBytes: maxBytes)
}

/// The rejection `text` gets, or nil when it decodes.
private func rejection(_ text: String, maxBytes: Int = EventLimits.defaultMaxMessageBytes) -> EventRejection? {
    do {
        _ = try UsageEventDecoder.decode(bytes: Array(text.utf8), maxBytes: maxBytes)
        return nil
    } catch {
        return error
    }
}

private func repeated(_ c: Character, _ n: Int) -> String { String(repeating: c, count: n) }

/// An event whose `metadata` nests `levels` objects below the top-level one.
private func nested(levels: Int) -> String {
    body(#""metadata":"# + String(repeating: #"{"a":"#, count: levels) + "1" + repeated("}", levels))
}

struct EventDecoderTests {
    // MARK: Valid events

    @Test("every field of a full event is decoded")
    func fullEvent() throws {
        let e = try decode("""
            {"id":"9f1c2e7a","source":"scraper-eu-1","seq":1042,"time":"2026-03-05T13:00:00+01:00",
             "platform":"OpenAI","serviceType":"SCRAPING","model":"gpt-4o","endpoint":"/v1/chat/completions",
             "usage":{"outputTokens":"300","inputTokens":1200},"cost":"0.15","currency":"eur",
             "budgetId":"b_1","userId":"user-123","apiUsageId":"u-1","apifyRunId":"r-1",
             "description":"nightly run","metadata":{"projectId":"proj-123","batch":true}}
            """)
        #expect(e.id == "9f1c2e7a")
        #expect(e.source == "scraper-eu-1")
        #expect(e.seq == 1042)
        #expect(e.time?.rfc3339 == "2026-03-05T12:00:00Z")
        #expect(e.platform == "OpenAI")
        #expect(e.serviceType == .scraping)
        #expect(e.model == "gpt-4o")
        #expect(e.endpoint == "/v1/chat/completions")
        // Usage keeps the order given.
        #expect(e.usage.map(\.unit) == ["outputTokens", "inputTokens"])
        #expect(e.usage.map(\.quantity.description) == ["300", "1200"])
        #expect(e.quantity(of: "inputTokens") == ExactDecimal(1200))
        #expect(e.quantity(of: "cachedInputTokens") == nil)
        #expect(e.cost?.description == "0.15")
        #expect(e.cost?.nanos == 150_000_000)
        #expect(e.currency == "EUR")
        #expect(e.budgetId == "b_1")
        #expect(e.userId == "user-123")
        #expect(e.apiUsageId == "u-1")
        #expect(e.apifyRunId == "r-1")
        #expect(e.description == "nightly run")
        #expect(e.metadata?["projectId"] == .string("proj-123"))
        #expect(e.isBatch)
    }

    @Test("defaults: source \"\", currency USD, no time, no cost, no usage")
    func defaults() throws {
        let e = try decode(body())
        #expect(e.source == "")
        #expect(e.currency == "USD")
        #expect(e.time == nil)
        #expect(e.cost == nil)
        #expect(e.seq == nil)
        #expect(e.model == nil)
        #expect(e.usage.isEmpty)
        #expect(e.metadata == nil)
        #expect(!e.isBatch)
    }

    @Test("every serviceType of the contract is accepted", arguments: ["API", "SCRAPING", "STORAGE", "PROCESSING", "MONITORING", "OTHER"])
    func serviceTypes(name: String) throws {
        let e = try decode(#"{"id":"e1","platform":"Apify","serviceType":"\#(name)"}"#)
        #expect(e.serviceType.rawValue == name)
    }

    @Test("amounts as strings and as JSON numbers decode to the same exact value")
    func amountSpellings() throws {
        let a = try decode(body(#""cost":"0.1000000000000000000001","usage":{"inputTokens":"1.5e3"}"#))
        let b = try decode(body(#""cost":0.1,"usage":{"inputTokens":1500}"#))
        #expect(a.cost == b.cost)
        #expect(a.cost?.nanos == 100_000_000)
        #expect(a.quantity(of: "inputTokens") == ExactDecimal(1500))
    }

    @Test("an explicit cost with more than nine decimals is rounded once, half-even")
    func costRounding() throws {
        #expect(try decode(body(#""cost":"0.0000000025""#)).cost?.nanos == 2)
        #expect(try decode(body(#""cost":"0.0000000035""#)).cost?.nanos == 4)
        #expect(try decode(body(#""cost":"0.00000000250001""#)).cost?.nanos == 3)
    }

    @Test("an explicit cost with more than nine decimals keeps its exact value for conversion; one with nine or fewer does not need it")
    func exactCost() throws {
        let fine = try decode(body(#""cost":"0.0000000045""#))
        #expect(fine.cost?.nanos == 4)
        #expect(fine.exactCost == ExactDecimal(mantissa: 45, exponent: -10))
        #expect(try decode(body(#""cost":"1e-10""#)).exactCost == ExactDecimal(mantissa: 1, exponent: -10))
        #expect(try decode(body(#""cost":0.15"#)).exactCost == nil)
        #expect(try decode(body(#""cost":"12.500000000000""#)).exactCost == nil) // exact at 1e-9 already
    }

    @Test("a CREDIT needs a cost greater than 0 as sent, not as rounded in its own currency (converted, 4e-10 EUR is 1e-9 USD)")
    func creditGreaterThanZeroAsSent() throws {
        let small = try decode(body(#""cost":"4e-10","currency":"EUR","kind":"CREDIT""#))
        #expect(small.kind == .credit)
        #expect(small.cost == .zero)
        #expect(small.exactCost == ExactDecimal(mantissa: 4, exponent: -10))
        for zero in [#""0""#, "0", #""0e-20""#, "0.000"] {
            #expect(throws: EventRejection.self) { try decode(body(#""cost":\#(zero),"kind":"CREDIT""#)) }
        }
    }

    // MARK: Limits that are still allowed

    static let accepted: [(String, String)] = [
        ("id of 128 characters", #"{"id":"\#(repeated("i", 128))","platform":"OpenAI","serviceType":"API"}"#),
        ("id of 128 non-ASCII characters", #"{"id":"\#(repeated("é", 128))","platform":"OpenAI","serviceType":"API"}"#),
        ("id of 64 letters with a combining mark each (128 code points)", #"{"id":"\#(String(repeating: "e\u{301}", count: 64))","platform":"OpenAI","serviceType":"API"}"#),
        ("id of 128 emoji (4 UTF-8 bytes each)", #"{"id":"\#(repeated("😀", 128))","platform":"OpenAI","serviceType":"API"}"#),
        ("model of 256 characters", body(#""model":"\#(repeated("m", 256))""#)),
        ("unknown string field of 256 characters", body(#""note":"\#(repeated("n", 256))""#)),
        ("description of 4096 characters", body(#""description":"\#(repeated("d", 4096))""#)),
        // {"k":"…"} is 8 bytes plus the string.
        ("metadata of exactly 16 KiB", body(#""metadata":{"k":"\#(repeated("x", 16 * 1024 - 8))"}"#)),
        ("cost of exactly 1e12", body(#""cost":1000000000000"#)),
        ("cost 1e12 spelled with an exponent", body(#""cost":"1e12""#)),
        ("cost 1e12 with trailing zeros", body(#""cost":"1000000000000.000000000000""#)),
        ("cost 0", body(#""cost":0"#)),
        ("usage quantity of exactly 1e12", body(#""usage":{"inputTokens":1e12}"#)),
        ("usage quantity 0", body(#""usage":{"inputTokens":0}"#)),
        ("JSON nesting of exactly 32 levels", nested(levels: 31)),
        ("strings and keys of 256 characters nested in an unknown field",
         body(#""\#(repeated("f", 256))":{"\#(repeated("k", 256))":["\#(repeated("n", 256))"]}"#)),
    ]

    @Test("values at the limits are accepted", arguments: accepted)
    func acceptedAtLimit(name: String, text: String) {
        #expect(rejection(text) == nil, "\(name)")
    }

    // MARK: Costs with more digits than 128 bits hold

    /// CONTRACT §2: "an explicit `cost` with more decimals is rounded the same way", without a
    /// limit on digits: 40 ones were refused ("too many digits"), an audit. Kept exact, rounded
    /// once: a tail beyond the 38th digit still decides a tie.
    @Test("an explicit cost with more than 38 significant digits is rounded once from its exact value", arguments: [
        ("0." + String(repeating: "1", count: 40), "0.111111111"),
        ("0.0000000025" + String(repeating: "0", count: 40) + "1", "0.000000003"),   // above the tie
        ("0.0000000025" + String(repeating: "0", count: 40), "0.000000002"),         // the tie itself: half-even
        ("0.0000000035" + String(repeating: "0", count: 40) + "1", "0.000000004"),
        ("999999999999.999999999" + String(repeating: "4", count: 30), "999999999999.999999999"),
        ("0.000000000" + String(repeating: "4", count: 40), "0"),
    ])
    func costWithManyDigits(literal: String, rounded: String) throws {
        for spelling in [literal, "\"\(literal)\""] {
            let event = try decode(body(#""cost":"# + spelling))
            #expect(event.cost?.description == rounded, "\(spelling)")
            // The body keeps every digit: a resend differing in the last one is another body.
            var digits = Substring(literal)
            while digits.hasSuffix("0") { digits = digits.dropLast() }
            #expect(event.canonicalBody.contains(#""cost":\#(digits),"#), "\(event.canonicalBody)")
        }
    }

    @Test func aCostWithManyDigitsKeepsThemInItsBodyAndComparesByValue() throws {
        let ones = String(repeating: "1", count: 40)
        let a = try decode(body(#""cost":0."# + ones))
        let b = try decode(body(#""cost":"# + "\"0.\(ones)000\""))
        let c = try decode(body(#""cost":"# + "1.\(ones.dropLast())e-1"))
        let d = try decode(body(#""cost":0."# + ones.dropLast() + "2"))
        #expect(a.canonicalBody == b.canonicalBody)
        #expect(a.canonicalBody == c.canonicalBody)
        #expect(a.canonicalBody != d.canonicalBody)
        #expect(a.cost == d.cost)
        #expect(a.wideCost != nil)
        // Refusals stand: negative, over 1e12 (before rounding), not a number.
        #expect(rejection(body(#""cost":-0."# + ones))?.reason.contains("negative") == true)
        #expect(rejection(body(#""cost":1000000000000.0"# + ones))?.reason.contains("over 1e12") == true)
        #expect(rejection(body(#""cost":"# + ones + ones))?.reason.contains("over 1e12") == true)
        #expect(rejection(body(#""cost":"1."# + ones + "x\""))?.reason.contains("cost") == true)
        // A CREDIT is greater than 0 as sent, though it rounds to 0.
        let credit = try decode(body(#""kind":"CREDIT","cost":0.0000000000"# + ones))
        #expect(credit.cost?.description == "0")
        #expect(credit.kind == .credit)
    }

    /// Converted into another currency from its exact value, then rounded once: 1.25e-9 and a
    /// 1 at the 45th place, × 2, is above the tie of 2.5e-9 (3e-9); cut at 38 digits, it would
    /// be the tie itself (2e-9, half-even).
    @Test func aCostWithManyDigitsConvertsFromItsExactValue() throws {
        let catalog = try Catalog.load(json: Array(#"{"version":"v","prices":[],"rates":[{"from":"EUR","to":"USD","rate":"2","effectiveFrom":"2026-01-01T00:00:00Z"}]}"#.utf8))
        let event = try decode(body(#""currency":"EUR","cost":"0.00000000125"# + String(repeating: "0", count: 40) + "1\""))
        let pricer = Pricer(catalog: catalog)
        let t = try Timestamp(rfc3339: "2026-03-01T00:00:00Z")
        guard case .priced(let amount, let currency, nil) = pricer.price(event, at: t) else {
            Issue.record("not priced")
            return
        }
        #expect(currency == "EUR")
        #expect(try pricer.money(amount, from: "EUR", to: "USD", at: t).get().description == "0.000000003")
        #expect(try pricer.money(amount, from: "EUR", to: "EUR", at: t).get().description == "0.000000001")
    }

    // MARK: Rejections

    static let rejected: [(String, String, String)] = [
        ("missing id", #"{"platform":"OpenAI","serviceType":"API"}"#, "missing field: id"),
        ("null id", #"{"id":null,"platform":"OpenAI","serviceType":"API"}"#, "missing field: id"),
        ("numeric id", #"{"id":7,"platform":"OpenAI","serviceType":"API"}"#, "id must be a string"),
        ("empty id", #"{"id":"","platform":"OpenAI","serviceType":"API"}"#, "1..128"),
        ("id of 129 characters", #"{"id":"\#(repeated("i", 129))","platform":"OpenAI","serviceType":"API"}"#, "1..128"),
        // Characters are code points, as JSON and most clients count them, not grapheme clusters.
        ("id of one letter and 20,000 combining marks", #"{"id":"e\#(String(repeating: "\u{301}", count: 20_000))","platform":"OpenAI","serviceType":"API"}"#, "1..128"),
        ("platform of one letter and 256 combining marks", #"{"id":"e1","platform":"X\#(String(repeating: "\u{301}", count: 256))","serviceType":"API"}"#, "field platform is longer than 256"),
        ("missing platform", #"{"id":"e1","serviceType":"API"}"#, "missing field: platform"),
        ("empty platform", #"{"id":"e1","platform":"","serviceType":"API"}"#, "missing field: platform"),
        ("missing serviceType", #"{"id":"e1","platform":"OpenAI"}"#, "missing field: serviceType"),
        ("lower-case serviceType", #"{"id":"e1","platform":"OpenAI","serviceType":"api"}"#, "invalid serviceType"),
        ("unknown serviceType", #"{"id":"e1","platform":"OpenAI","serviceType":"COMPUTE"}"#, "invalid serviceType"),
        ("negative cost", body(#""cost":-0.01"#), "negative"),
        ("tiny negative cost that rounds to zero", body(#""cost":"-0.0000000001""#), "negative"),
        ("NaN cost", body(#""cost":"NaN""#), "not a finite number"),
        ("infinite cost", body(#""cost":"Infinity""#), "not a finite number"),
        ("cost over 1e12 by one nano", body(#""cost":"1000000000000.000000001""#), "over 1e12"),
        ("cost over 1e12 that rounds to 1e12", body(#""cost":"1000000000000.0000000004""#), "over 1e12"),
        ("cost 2e12", body(#""cost":2e12"#), "over 1e12"),
        ("cost with a huge exponent", body(#""cost":1e9999"#), "over 1e12"),
        ("boolean cost", body(#""cost":true"#), "cost must be a number"),
        ("negative usage quantity", body(#""usage":{"inputTokens":-1}"#), "usage.inputTokens is negative"),
        ("usage quantity over 1e12", body(#""usage":{"inputTokens":"1000000000000.1"}"#), "usage.inputTokens is over 1e12"),
        ("usage quantity not a number", body(#""usage":{"inputTokens":"lots"}"#), "usage.inputTokens"),
        ("usage not an object", body(#""usage":[1]"#), "usage must be an object"),
        ("model of 257 characters", body(#""model":"\#(repeated("m", 257))""#), "field model is longer than 256"),
        ("source of 257 characters", body(#""source":"\#(repeated("s", 257))""#), "field source is longer than 256"),
        ("unknown string field of 257 characters", body(#""note":"\#(repeated("n", 257))""#), "field note is longer than 256"),
        ("a string of 257 characters nested in an unknown field", body(#""note":{"a":[1,"\#(repeated("n", 257))"]}"#), "field note holds a string longer than 256"),
        ("a key of 257 characters nested in an unknown field", body(#""note":[{"\#(repeated("k", 257))":1}]"#), "field note holds a key longer than 256"),
        ("an unknown field named with 257 characters", body(#""\#(repeated("f", 257))":1"#), "a field name is longer than 256"),
        ("description of 4097 characters", body(#""description":"\#(repeated("d", 4097))""#), "description is longer than 4096"),
        ("metadata one byte over 16 KiB", body(#""metadata":{"k":"\#(repeated("x", 16 * 1024 - 7))"}"#), "metadata is larger than 16384"),
        ("metadata not an object", body(#""metadata":["a"]"#), "metadata must be an object"),
        ("a JSON array", #"[{"id":"e1","platform":"OpenAI","serviceType":"API"}]"#, "must be a JSON object"),
        ("a JSON string", #""e1""#, "must be a JSON object"),
        ("not JSON", #"{"id":"e1","#, "invalid JSON"),
        ("JSON nesting of 33 levels", nested(levels: 32), "too deep"),
        ("time without offset", body(#""time":"2026-03-05T12:00:00""#), "RFC 3339"),
        ("a date as time", body(#""time":"2026-03-05""#), "RFC 3339"),
        ("currency of four letters", body(#""currency":"EURO""#), "3-letter"),
        ("currency of two letters that upper-case to three", body(#""currency":"ßd""#), "3-letter"),
        ("currency with a ligature", body(#""currency":"\#u{FB00}x""#), "3-letter"),
        ("negative seq", body(#""seq":-1"#), "seq must be an integer from 0 to 9223372036854775807"),
        ("fractional seq", body(#""seq":6.5"#), "seq must be an integer from 0 to 9223372036854775807"),
        ("negative seq spelled as a decimal", body(#""seq":-6.0"#), "seq must be an integer from 0 to 9223372036854775807"),
        ("seq over Int64", body(#""seq":1e19"#), "seq must be an integer from 0 to 9223372036854775807"),
    ]

    @Test("invalid events are rejected with a reason that names the problem", arguments: rejected)
    func rejects(name: String, text: String, reasonContains: String) throws {
        let r = try #require(rejection(text), "\(name) was accepted")
        #expect(r.reason.contains(reasonContains), "\(name): reason \"\(r.reason)\"")
    }

    @Test("a rejection carries the id and source it could read")
    func rejectionNamesTheEvent() throws {
        let withSource = try #require(rejection(#"{"id":"e9","source":"s1","platform":"OpenAI","serviceType":"X"}"#))
        #expect(withSource.id == "e9")
        #expect(withSource.source == "s1")
        let withoutSource = try #require(rejection(#"{"id":"e9","platform":"OpenAI"}"#))
        #expect(withoutSource.id == "e9")
        #expect(withoutSource.source == "")
        let withoutId = try #require(rejection(#"{"platform":"OpenAI","serviceType":"API"}"#))
        #expect(withoutId.id == nil)
    }

    // MARK: Size limit

    @Test("a message over the size limit is rejected with reason exactly \"oversized\"")
    func oversized() throws {
        let text = body()
        let n = text.utf8.count
        #expect(rejection(text, maxBytes: n) == nil)
        let r = try #require(rejection(text, maxBytes: n - 1))
        #expect(r.reason == "oversized")
        #expect(r.reason == EventRejection.oversizedReason)
    }

    @Test("the default size limit is 64 KiB, white space included")
    func defaultSizeLimit() throws {
        let text = body()
        let padding = EventLimits.defaultMaxMessageBytes - text.utf8.count
        // Trailing white space is valid JSON, so only the size can reject these.
        let atLimit = text + repeated(" ", padding)
        #expect(atLimit.utf8.count == 65_536)
        #expect(rejection(atLimit) == nil)
        let over = try #require(rejection(atLimit + " "))
        #expect(over.reason == "oversized")
    }

    // MARK: CloudEvents

    @Test("a CloudEvents 1.0 structured event takes id, source, time from the envelope and the rest from data")
    func cloudEvents() throws {
        let e = try decode("""
            {"specversion":"1.0","id":"ce-1","source":"scraper-eu-1","type":"com.example.usage",
             "time":"2026-03-05T12:00:00Z","datacontenttype":"application/json",
             "data":{"platform":"OpenAI","serviceType":"API","cost":"0.15","metadata":{"projectId":"p"}}}
            """)
        #expect(e.id == "ce-1")
        #expect(e.source == "scraper-eu-1")
        #expect(e.time?.rfc3339 == "2026-03-05T12:00:00Z")
        #expect(e.platform == "OpenAI")
        #expect(e.serviceType == .api)
        #expect(e.cost?.description == "0.15")
        #expect(e.metadata?["projectId"] == .string("p"))
        let base64 = try #require(rejection("""
            {"specversion":"1.0","id":"ce-2","source":"s","type":"usage","data_base64":"eyJ9"}
            """))
        #expect(base64.reason.contains("data_base64"))
        // What the envelope leaves out comes from data (a missing envelope time dropped data's:
        // the event was dated when received); what it has wins.
        let partial = try decode("""
            {"specversion":"1.0","id":"ce-3","type":"usage",
             "data":{"id":"other","source":"pub-A","time":"2026-03-05T12:00:00Z","platform":"OpenAI","serviceType":"API","cost":"1"}}
            """)
        #expect(partial.id == "ce-3")
        #expect(partial.source == "pub-A")
        #expect(partial.time?.rfc3339 == "2026-03-05T12:00:00Z")
        // Null is left out, as in CloudEvents' JSON format.
        let nulls = try decode("""
            {"specversion":"1.0","id":null,"source":null,"time":null,"type":"usage",
             "data":{"id":"d-1","source":"pub-B","time":"2026-03-06T00:00:00Z","platform":"OpenAI","serviceType":"API","cost":"1"}}
            """)
        #expect(nulls.id == "d-1" && nulls.source == "pub-B" && nulls.time?.rfc3339 == "2026-03-06T00:00:00Z")
    }

    // MARK: Canonical body (DUPLICATE comparison)

    static let sameBodies: [(String, String, String)] = [
        ("key order and white space",
         #"{"id":"e1","platform":"OpenAI","serviceType":"API","cost":0.5,"metadata":{"a":1,"b":[1,2]}}"#,
         " { \"metadata\" : { \"b\" : [ 1 , 2 ] , \"a\" : 1 } ,\n\t\"cost\" : 0.5 , \"serviceType\" : \"API\" , \"platform\" : \"OpenAI\" , \"id\" : \"e1\" } "),
        ("cost \"0.50\" and 0.5", body(#""cost":"0.50""#), body(#""cost":0.5"#)),
        ("cost 0.5 and \"0.5\"", body(#""cost":0.5"#), body(#""cost":"0.5""#)),
        ("cost 5e-1 and 0.500", body(#""cost":5e-1"#), body(#""cost":0.500"#)),
        ("equal instants with different offsets", body(#""time":"2026-03-05T12:00:00Z""#), body(#""time":"2026-03-05T13:30:00+01:30""#)),
        ("equal instants with a zero fraction", body(#""time":"2026-03-05T12:00:00.000Z""#), body(#""time":"2026-03-05T07:00:00-05:00""#)),
        ("null model and no model", body(#""model":null"#), body()),
        ("null metadata and no metadata", body(#""metadata":null"#), body()),
        ("null time and no time", body(#""time":null"#), body()),
        ("source absent and \"\"", body(), body(#""source":"""#)),
        ("null source and \"\"", body(#""source":null"#), body(#""source":"""#)),
        ("currency absent, \"USD\" and \"usd\"", body(), body(#""currency":"usd""#)),
        ("usage quantities spelled differently, in another order",
         body(#""usage":{"inputTokens":"1200","outputTokens":300}"#),
         body(#""usage":{"outputTokens":3.0e2,"inputTokens":1200.00}"#)),
        ("metadata numbers spelled differently", body(#""metadata":{"n":1.50,"m":{"k":10}}"#), body(#""metadata":{"m":{"k":1e1},"n":1.5}"#)),
        // More significant digits than an Int128 holds, or exponents past ±1000: still equal decimals.
        ("a 41-digit metadata number and the same with .0",
         body(#""metadata":{"n":12345678901234567890123456789012345678901}"#),
         body(#""metadata":{"n":12345678901234567890123456789012345678901.0}"#)),
        ("a 41-digit number in an unknown field, plainly and with an exponent",
         body(#""x":[12345678901234567890123456789012345678901]"#),
         body(#""x":[1.2345678901234567890123456789012345678901e40]"#)),
        ("a 45-digit fraction and the same with trailing zeros",
         body(#""metadata":{"n":-0.000123456789012345678901234567890123456789012345}"#),
         body(#""metadata":{"n":-1234567890123456789012345678901234567890123450000e-52}"#)),
        ("1e1001 and 10e1000", body(#""metadata":{"n":1e1001}"#), body(#""metadata":{"n":10E+1000}"#)),
        ("-25e-2000 and -2.50e-1999", body(#""metadata":{"n":-25e-2000}"#), body(#""metadata":{"n":-2.50e-1999}"#)),
        ("0 and -0.0e5000", body(#""metadata":{"n":0}"#), body(#""metadata":{"n":-0.0e5000}"#)),
        ("seq as a string and as a number", body(#""seq":"5""#), body(#""seq":5"#)),
        ("seq 6, 6.0 and 6e0", body(#""seq":6.0"#), body(#""seq":6e0"#)),
        ("seq 6.0 and 6", body(#""seq":6.0"#), body(#""seq":6"#)),
        ("instants with zeros past the nanosecond", body(#""time":"2026-03-05T12:00:00.5000000000Z""#), body(#""time":"2026-03-05T12:00:00.5Z""#)),
    ]

    @Test("bodies that differ only in spelling have the same canonical body", arguments: sameBodies)
    func sameCanonicalBody(name: String, a: String, b: String) throws {
        let x = try decode(a)
        let y = try decode(b)
        #expect(x.canonicalBody == y.canonicalBody, "\(name)")
        #expect(x == y)
        #expect(x.hashValue == y.hashValue)
    }

    static let differentBodies: [(String, String, String)] = [
        ("different cost", body(#""cost":0.5"#), body(#""cost":0.51"#)),
        ("cost and no cost", body(#""cost":0"#), body()),
        ("different metadata value", body(#""metadata":{"a":1}"#), body(#""metadata":{"a":2}"#)),
        ("metadata string vs number", body(#""metadata":{"a":"1"}"#), body(#""metadata":{"a":1}"#)),
        ("metadata with an extra key", body(#""metadata":{"a":1}"#), body(#""metadata":{"a":1,"b":null}"#)),
        ("different source", body(#""source":"a""#), body()),
        ("different instants", body(#""time":"2026-03-05T12:00:00Z""#), body(#""time":"2026-03-05T12:00:00.000000001Z""#)),
        ("different usage", body(#""usage":{"inputTokens":1}"#), body(#""usage":{"inputTokens":2}"#)),
        ("different unit", body(#""usage":{"inputTokens":1}"#), body(#""usage":{"outputTokens":1}"#)),
        ("different model", body(#""model":"gpt-4o""#), body(#""model":"gpt-4o-mini""#)),
        ("different currency", body(#""cost":1,"currency":"EUR""#), body(#""cost":1"#)),
        ("an unknown field", body(#""note":"x""#), body()),
        ("41-digit metadata numbers one apart",
         body(#""metadata":{"n":12345678901234567890123456789012345678901}"#),
         body(#""metadata":{"n":12345678901234567890123456789012345678902}"#)),
        ("1e1001 and 1e1002", body(#""metadata":{"n":1e1001}"#), body(#""metadata":{"n":1e1002}"#)),
        ("1e1001 and -1e1001", body(#""metadata":{"n":1e1001}"#), body(#""metadata":{"n":-1e1001}"#)),
    ]

    @Test("bodies that differ in substance have different canonical bodies", arguments: differentBodies)
    func differentCanonicalBody(name: String, a: String, b: String) throws {
        let x = try decode(a)
        let y = try decode(b)
        #expect(x.canonicalBody != y.canonicalBody, "\(name)")
        #expect(x != y)
    }

    @Test("costs that differ below 1e-9 are different bodies (they are not equal decimals)")
    func costsDifferingBelowResolution() throws {
        // CONTRACT §2: only "the spelling of equal decimals" does not matter. These two are
        // different values, so a resend with the other one is a conflict, not a duplicate.
        let x = try decode(body(#""cost":"0.1234567891""#))
        let y = try decode(body(#""cost":"0.123456789""#))
        #expect(x.cost == y.cost) // both round to the same nano-unit…
        #expect(x.canonicalBody != y.canonicalBody) // …but the bodies are not the same
    }

    @Test("the canonical body is sorted, compact JSON with normalized known fields")
    func canonicalShape() throws {
        let e = try decode(#"{ "platform":"OpenAI", "id":"e1", "serviceType":"API", "cost":"0.50", "time":"2026-03-05T13:00:00+01:00" }"#)
        #expect(e.canonicalBody == #"{"cost":0.5,"currency":"USD","id":"e1","platform":"OpenAI","serviceType":"API","source":"","time":"2026-03-05T12:00:00Z"}"#)
    }

    @Test("a message rejected before decoding is named by the id and source its body has, if any")
    func identityOfARejectedBody() {
        func identity(_ text: String) -> [String?] {
            let (id, source) = UsageEventDecoder.identity(of: Array(text.utf8))
            return [id, source]
        }
        #expect(identity(#"{"id":"e1","source":"s1","platform":"OpenAI"}"#) == ["e1", "s1"])
        #expect(identity(#"{"id":"e2"}"#) == ["e2", ""])
        #expect(identity(#"{"specversion":"1.0","id":"ce1","source":"/scraper","data":{}}"#) == ["ce1", "/scraper"])
        #expect(identity(#"{"id":7,"source":"s"}"#) == [nil, nil])
        #expect(identity(#"{"source":"s"}"#) == [nil, nil])
        #expect(identity(#"["e1"]"#) == [nil, nil])
        #expect(identity("{not json") == [nil, nil])
        #expect(identity(#"{"id":"e3","source":5}"#) == ["e3", nil])
        // A CloudEvents envelope reads as the decoder reads it: what it leaves out, or sets to
        // null, comes from data (an audit's envelopes on a wrong topic were named id null).
        #expect(identity(#"{"specversion":"1.0","source":"/s","data":{"id":"inner1","source":"x"}}"#) == ["inner1", "/s"])
        #expect(identity(#"{"specversion":"1.0","id":"ce3","data":{"source":"inner"}}"#) == ["ce3", "inner"])
        #expect(identity(#"{"specversion":"1.0","id":null,"source":null,"data":{"id":"d1","source":"ds"}}"#) == ["d1", "ds"])
        #expect(identity(#"{"specversion":"1.0","id":"ce4","data":{}}"#) == ["ce4", ""])
        #expect(identity(#"{"specversion":"1.0","data":"text"}"#) == [nil, nil])
        // The same names as the decoder gives the same body when it rejects it later.
        for text in [#"{"specversion":"1.0","source":"/s","data":{"id":"inner1"}}"#,
                     #"{"specversion":"1.0","id":"ce5","data":{"source":"inner"}}"#] {
            do {
                _ = try UsageEventDecoder.decode(bytes: Array(text.utf8))
                Issue.record("decoded \(text)")
            } catch {
                #expect(identity(text) == [error.id, error.source])
            }
        }
    }

    @Test("an acknowledgement is written as the JSON object it always was: keys in contract order, strings escaped, nil as null")
    func ackBytes() throws {
        let cases: [(String?, String?, String, String?, String?)] = [
            ("e1", "s1", "ACCEPTED", "ALLOCATED", nil),
            (nil, nil, "REJECTED", "REJECTED", "invalid JSON: unexpected end"),
            ("q\"uo\\te", "", "DUPLICATE", "UNPRICED", "no price for OpenAI/gpt-5\n\u{01}\t ü 🙂"),
            ("", nil, "REJECTED", nil, "conflict"),
        ]
        for (id, source, status, state, reason) in cases {
            let expected = JSONValue.object(JSONObject([
                ("id", id.map(JSONValue.string) ?? .null), ("source", source.map(JSONValue.string) ?? .null),
                ("status", .string(status)), ("state", state.map(JSONValue.string) ?? .null),
                ("reason", reason.map(JSONValue.string) ?? .null),
            ])).serializedBytes()
            let bytes = IngestAck.bytes(id: id, source: source, status: status, state: state, reason: reason)
            #expect(String(decoding: bytes, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
            // And it reads back as what was written.
            let parsed = try JSON.parse(bytes)
            #expect(parsed["id"]?.stringValue == id)
            #expect(parsed["reason"]?.stringValue == reason)
        }
        #expect(String(decoding: IngestAck.bytes(id: "e1", source: "s", status: "ACCEPTED", state: "ALLOCATED", reason: nil), as: UTF8.self)
            == #"{"id":"e1","source":"s","status":"ACCEPTED","state":"ALLOCATED","reason":null}"#)
    }

    @Test("metadata is measured as it is stored: a number with an exponent counts as its canonical text, so what is accepted decodes again from its stored body (re-processing), in both decoders")
    func metadataMeasuredAsStored() throws {
        // `1e40` is 41 digits stored (a 1 and 40 zeros: the most written out, `canonicalNumberText`):
        // 389 of them fit in 16 KiB, 390 do not, though either message is about 2 KB.
        func nested(_ n: Int) -> String {
            #"{"id":"m","platform":"P","serviceType":"API","cost":"1","metadata":{"a":["# + Array(repeating: "1e40", count: n).joined(separator: ",") + "]}}"
        }
        let accepted = try UsageEventDecoder.decode(bytes: Array(nested(389).utf8))
        #expect(accepted.canonicalBody.utf8.count > 16_000)
        #expect(try UsageEventDecoder.decode(JSON.parse(accepted.canonicalBody)) == accepted)
        #expect(throws: EventRejection("field metadata is larger than 16384 bytes", id: "m", source: "")) {
            try UsageEventDecoder.decode(bytes: Array(nested(390).utf8))
        }
        // The one-pass decoder leaves metadata with an exponent to the general one.
        let flat = #"{"id":"m","platform":"P","serviceType":"API","cost":"1","metadata":{"k":1E+40,"j":"x"}}"#
        #expect(Array(flat.utf8).withUnsafeBufferPointer { UsageEventDecoder.decodeCommonShape($0) } == nil)
        #expect(try UsageEventDecoder.decode(bytes: Array(flat.utf8)).canonicalBody.contains(#""k":1"# + String(repeating: "0", count: 40) + "}"))
        // Far exponents are kept as digits and exponent, not expanded: `1e999` is stored as sent.
        let far = try UsageEventDecoder.decode(bytes: Array(#"{"id":"m","platform":"P","serviceType":"API","cost":"1","metadata":{"a":[1E+999,-2.50e-2000]}}"#.utf8))
        #expect(far.canonicalBody.contains(#""a":[1e999,-25e-2001]"#), "\(far.canonicalBody)")
        // Nor is one counted longer than stored: 1,500 `1.50000000` (16.5 KB sent) are 1,500
        // `1.5` stored (it was refused as over 16 KiB).
        let zeros = #"{"id":"m","platform":"P","serviceType":"API","cost":"1","metadata":{"a":["# + Array(repeating: "1.50000000", count: 1_500).joined(separator: ",") + "]}}"
        let trimmed = try UsageEventDecoder.decode(bytes: Array(zeros.utf8))
        #expect(trimmed.canonicalBody.utf8.count < 7_000)
        #expect(try UsageEventDecoder.decode(JSON.parse(trimmed.canonicalBody)) == trimmed)
        // Without an exponent a number is never longer stored than sent: counted as sent.
        let plain = #"{"id":"m","platform":"P","serviceType":"API","cost":"1","metadata":{"a":"# + String(repeating: "9", count: 16_370) + "}}"
        #expect(throws: Never.self) { try UsageEventDecoder.decode(bytes: Array(plain.utf8), maxBytes: 65_536) }
    }

}
