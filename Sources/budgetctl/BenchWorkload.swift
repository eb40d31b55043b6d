/// The usage events a bench run sends, built before any timing starts.
///
/// Standard library only: the micro-benchmarks (Benchmarks/Sources/BenchEvents) compile this
/// file through a symlink, so they decode and book the very events `budgetctl bench` sends.
///
/// About 300 bytes each, in a realistic mix: OpenAI gpt-4o and Anthropic
/// claude-sonnet-4-5 calls priced from the catalog by their token usage (both
/// are in config/prices.json, so with it nothing is UNPRICED), Apify
/// scraping runs and AWS storage with an explicit cost. Ids are `RUNID-i`, so
/// runs never collide with each other's idempotency keys (with `randomIds`,
/// `HHHHHHHH-RUNID-i`: eight hex digits of a hash of i first, so consecutive
/// ids land far apart in an index, as UUIDs do); `seq` increases from
/// 1 per run (`source` is `bench-RUNID`); `metadata.bench` spreads the events
/// round-robin over the run's budget keys `RUNID-k`.
struct BenchWorkload {
    let runId: String
    let count: Int
    let budgets: Int
    var randomIds = false

    /// The id of event `i`.
    func id(_ i: Int) -> String {
        guard randomIds else { return "\(runId)-\(i)" }
        let hex = String(Self.idHash(i), radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex + "-\(runId)-\(i)"
    }

    /// The 32-bit hash whose eight hex digits start the random id of event `i`.
    static func idHash(_ i: Int) -> UInt64 {
        mix(UInt64(i) ^ 0x5DEE_CE66_D1CE_4E5B) >> 32
    }

    /// A 64-bit mixing function (SplitMix64's finalizer).
    static func mix(_ x: UInt64) -> UInt64 {
        var mix = x &+ 0x9E37_79B9_7F4A_7C15
        mix = (mix ^ (mix >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mix = (mix ^ (mix >> 27)) &* 0x94D0_49BB_1331_11EB
        return mix ^ (mix >> 31)
    }

    /// The `metadata.bench` key of budget `k`, also its selector.
    func budgetKey(_ k: Int) -> String {
        "\(runId)-\(k)"
    }

    /// The event index of an id `RUNID-i` (or `HHHHHHHH-RUNID-i`), if it is one of this run's.
    func index(ofId id: String) -> Int? {
        index(ofIdBytes: id.utf8)
    }

    /// The same for an id's UTF-8 bytes, read without making a string: the acknowledged bench
    /// reads every reply's id this way (issue 8: the generator shares the cores with the
    /// daemon, and making and comparing strings was a tenth of its time).
    func index(ofIdBytes id: some Collection<UInt8>) -> Int? {
        var rest = id[...]
        if randomIds {
            guard rest.count > 9 else { return nil }
            rest = rest.dropFirst(9)
        }
        let prefix = runId.utf8
        guard rest.starts(with: prefix) else { return nil }
        rest = rest.dropFirst(prefix.count)
        guard rest.first == UInt8(ascii: "-") else { return nil }
        rest = rest.dropFirst()
        // Decimal, no sign, no leading zero: as `id(_:)` writes it.
        guard !rest.isEmpty, rest.count <= 18, rest.first != UInt8(ascii: "0") || rest.count == 1 else { return nil }
        var index = 0
        for byte in rest {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            index = index * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard index < count else { return nil }
        if randomIds {
            // The eight hex digits `id(_:)` puts first.
            let hash = Self.idHash(index)
            var shift = 28
            for byte in id.prefix(8) {
                guard byte == Self.hexDigits[Int((hash >> UInt64(shift)) & 0xF)] else { return nil }
                shift -= 4
            }
            guard id.dropFirst(8).first == UInt8(ascii: "-") else { return nil }
        }
        return index
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Every message as `[topic, json]` frames, all stamped `time`.
    func messages(time: String) -> [[[UInt8]]] {
        (0..<count).map { message($0, time: time) }
    }

    /// Message `i`. The run id is restricted to `[A-Za-z0-9._-]` (see
    /// ``Bench/validate()``), so plain interpolation makes valid JSON.
    func message(_ i: Int, time: String) -> [[UInt8]] {
        // A cheap, fixed pseudo-random stream, so runs are reproducible.
        let mix = Self.mix(UInt64(i))
        let inputTokens = 200 + Int(mix % 4000)
        let outputTokens = 50 + Int((mix >> 16) % 1200)
        let user = Int((mix >> 32) % 50)
        let project = Int((mix >> 40) % 8)
        let head = "{\"id\":\"\(id(i))\",\"source\":\"bench-\(runId)\",\"seq\":\(i + 1),\"time\":\"\(time)\","
        let tail = ",\"userId\":\"user-\(user)\",\"metadata\":{\"projectId\":\"proj-\(project)\",\"bench\":\"\(budgetKey(i % budgets))\"}}"
        let topic: String
        let body: String
        // Budgets round-robin, platforms in runs of `budgets` events, so every
        // budget sees every platform whatever the two counts are.
        switch (i / budgets) % 4 {
        case 0:
            topic = "usage.openai"
            body = "\"platform\":\"OpenAI\",\"serviceType\":\"API\",\"model\":\"gpt-4o\",\"endpoint\":\"/v1/chat/completions\","
                + "\"usage\":{\"inputTokens\":\(inputTokens),\"outputTokens\":\(outputTokens)},\"currency\":\"USD\""
        case 1:
            topic = "usage.anthropic"
            body = "\"platform\":\"Anthropic\",\"serviceType\":\"API\",\"model\":\"claude-sonnet-4-5\",\"endpoint\":\"/v1/messages\","
                + "\"usage\":{\"inputTokens\":\(inputTokens),\"outputTokens\":\(outputTokens)},\"currency\":\"USD\""
        case 2:
            topic = "usage.apify"
            // An explicit cost given as a decimal string, as the contract allows.
            let cents = 1 + Int(mix % 250)
            body = "\"platform\":\"Apify\",\"serviceType\":\"SCRAPING\",\"model\":\"apify/web-scraper\","
                + "\"cost\":\"\(Self.decimal(cents, scale: 4))\",\"currency\":\"USD\",\"apifyRunId\":\"run-\(runId)-\(i)\""
        default:
            topic = "usage.aws"
            // An explicit cost given as a JSON number.
            let micros = 100 + Int(mix % 90_000)
            body = "\"platform\":\"AWS\",\"serviceType\":\"STORAGE\",\"model\":\"s3-standard\",\"endpoint\":\"s3:PutObject\","
                + "\"cost\":\(Self.decimal(micros, scale: 6)),\"currency\":\"USD\""
        }
        return [Array(topic.utf8), Array((head + body + tail).utf8)]
    }

    /// `units` × 10^-scale as decimal text, such as `0.0125` for (125, 4).
    static func decimal(_ units: Int, scale: Int) -> String {
        var digits = String(units)
        if digits.count <= scale {
            digits = String(repeating: "0", count: scale - digits.count + 1) + digits
        }
        let split = digits.index(digits.endIndex, offsetBy: -scale)
        var fraction = digits[split...]
        while fraction.last == "0" { fraction = fraction.dropLast() }
        return fraction.isEmpty ? String(digits[..<split]) : "\(digits[..<split]).\(fraction)"
    }
}
