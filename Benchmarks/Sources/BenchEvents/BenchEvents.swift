// The events of the micro-benchmarks: the shapes of budgetctl's BenchWorkload
// (Sources/budgetctl/Bench+Workload.swift), shared by DecodeBench and LedgerBench.

/// Message `i`, as BenchWorkload.message(_:time:) builds it (runId "b8", 10 budgets).
public func message(_ i: Int, runId: String = "b8", budgets: Int = 10, time: String = "2025-11-29T12:10:00Z") -> [UInt8] {
    var mix = UInt64(i) &+ 0x9E37_79B9_7F4A_7C15
    mix = (mix ^ (mix >> 30)) &* 0xBF58_476D_1CE4_E5B9
    mix = (mix ^ (mix >> 27)) &* 0x94D0_49BB_1331_11EB
    mix ^= mix >> 31
    let inputTokens = 200 + Int(mix % 4000)
    let outputTokens = 50 + Int((mix >> 16) % 1200)
    let user = Int((mix >> 32) % 50)
    let project = Int((mix >> 40) % 8)
    let head = "{\"id\":\"\(runId)-\(i)\",\"source\":\"bench-\(runId)\",\"seq\":\(i + 1),\"time\":\"\(time)\","
    let tail = ",\"userId\":\"user-\(user)\",\"metadata\":{\"projectId\":\"proj-\(project)\",\"bench\":\"\(runId)-\(i % budgets)\"}}"
    let body: String
    switch (i / budgets) % 4 {
    case 0:
        body = "\"platform\":\"OpenAI\",\"serviceType\":\"API\",\"model\":\"gpt-4o\",\"endpoint\":\"/v1/chat/completions\","
            + "\"usage\":{\"inputTokens\":\(inputTokens),\"outputTokens\":\(outputTokens)},\"currency\":\"USD\""
    case 1:
        body = "\"platform\":\"Anthropic\",\"serviceType\":\"API\",\"model\":\"claude-sonnet-4-5\",\"endpoint\":\"/v1/messages\","
            + "\"usage\":{\"inputTokens\":\(inputTokens),\"outputTokens\":\(outputTokens)},\"currency\":\"USD\""
    case 2:
        let cents = 1 + Int(mix % 250)
        body = "\"platform\":\"Apify\",\"serviceType\":\"SCRAPING\",\"model\":\"apify/web-scraper\","
            + "\"cost\":\"\(decimal(cents, scale: 4))\",\"currency\":\"USD\",\"apifyRunId\":\"run-\(runId)-\(i)\""
    default:
        let micros = 100 + Int(mix % 90_000)
        body = "\"platform\":\"AWS\",\"serviceType\":\"STORAGE\",\"model\":\"s3-standard\",\"endpoint\":\"s3:PutObject\","
            + "\"cost\":\(decimal(micros, scale: 6)),\"currency\":\"USD\""
    }
    return Array((head + body + tail).utf8)
}

/// `units` × 10^-scale as decimal text, such as `0.0125` for (125, 4).
public func decimal(_ units: Int, scale: Int) -> String {
    var digits = String(units)
    if digits.count <= scale {
        digits = String(repeating: "0", count: scale - digits.count + 1) + digits
    }
    let split = digits.index(digits.endIndex, offsetBy: -scale)
    var fraction = digits[split...]
    while fraction.last == "0" { fraction = fraction.dropLast() }
    return fraction.isEmpty ? String(digits[..<split]) : "\(digits[..<split]).\(fraction)"
}
