// Decode benchmark: UsageEventDecoder.decode(bytes:maxBytes:) over a realistic event mix.
//
//   swift run -c release DecodeBench [events] [rounds]
//
// Events are budgetctl's own, from its BenchWorkload (Sources/budgetctl/BenchWorkload.swift):
// OpenAI and Anthropic token usage, Apify with a cost as a decimal string, AWS storage with a
// cost as a JSON number, each with ids, seq, time, userId and metadata; ~300 bytes, all distinct.
// Prints ns/event (best and median round), allocations/event, and a checksum of every decoded
// field and canonical body, which must not change when the decoder is optimized.
import BenchEvents
import BudgetCore
import MallocCounter

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
let count = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 10 : 10

/// The measured loop (callgrind: --collect-atstart=no --toggle-collect='*decodeAll*').
@inline(never)
func decodeAll(_ messages: [[UInt8]]) -> Int {
    var total = 0
    for bytes in messages {
        do {
            let event = try UsageEventDecoder.decode(bytes: bytes)
            total &+= event.canonicalBody.utf8.count
        } catch {
            fatalError("rejected: \(error.reason)")
        }
    }
    return total
}

/// FNV-1a over every decoded field and the canonical body.
func checksum(_ messages: [[UInt8]]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ text: String) {
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01B3
    }
    for bytes in messages {
        guard let e = try? UsageEventDecoder.decode(bytes: bytes) else { fatalError("rejected") }
        mix(e.id); mix(e.source); mix(e.seq.map { String($0) } ?? "-"); mix(e.time?.rfc3339 ?? "-")
        mix(e.platform); mix(e.serviceType.rawValue); mix(e.model ?? "-"); mix(e.endpoint ?? "-")
        for (unit, quantity) in e.usage { mix(unit); mix(quantity.description) }
        mix(e.cost?.description ?? "-"); mix(e.currency); mix(e.budgetId ?? "-"); mix(e.userId ?? "-")
        mix(e.apiUsageId ?? "-"); mix(e.apifyRunId ?? "-"); mix(e.description ?? "-")
        mix(e.metadata.map { JSONValue.object($0).serialized() } ?? "-")
        mix(e.kind.rawValue); mix(e.correctsEvent.map { "\($0.source)/\($0.id)" } ?? "-")
        mix(e.canonicalBody)
    }
    return hash
}

let messages = (0..<count).map { message($0) }
let averageBytes = messages.reduce(0) { $0 + $1.count } / max(count, 1)
print("events: \(count), average \(averageBytes) bytes, rounds: \(rounds)")
print("checksum: \(String(checksum(messages), radix: 16))")
if let first = messages.first, let e = try? UsageEventDecoder.decode(bytes: first) {
    print("sample canonical body: \(e.canonicalBody)")
}

let clock = ContinuousClock()
var perEvent: [Double] = []
var allocations: UInt64 = 0
var sink = 0
for _ in 0..<rounds {
    let before = malloc_counter_allocations()
    let start = clock.now
    sink &+= decodeAll(messages)
    let elapsed = clock.now - start
    allocations = malloc_counter_allocations() - before
    let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    perEvent.append(ns / Double(count))
}
perEvent.sort()
func format(_ x: Double) -> String { String(Int((x * 10).rounded())).dropLast() + "." + String(Int((x * 10).rounded())).suffix(1) }
if !perEvent.isEmpty {
    print("ns/event: best \(format(perEvent[0])), median \(format(perEvent[perEvent.count / 2]))")
    print("allocations/event: \(format(Double(allocations) / Double(count)))")
}
print("sink: \(sink)")
