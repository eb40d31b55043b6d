// Ledger benchmark: what the engine thread does with a decoded event before it is stored,
// BudgetCore's part of it (issue 8): route (`Ledger.route`), price (`Pricer.price`, `money`),
// book (`Ledger.adjust`: totals, allocation, spend history, alert rules with spike windows and
// LOW_BUDGET), over budgetctl bench's workload.
//
//   swift run -c release LedgerBench [events] [rounds] [budgets] [catalog]
//
// 20 MONTHLY budgets (as `budgetctl bench --setup --budgets 20`), each with an allocation per
// platform of the workload, so every booking also counts in an allocation; the events of
// DecodeBench's generator (the same ~300-byte mix), decoded before timing. A round books every
// event once on a fresh ledger; the changed history is taken every 2,048 events, as a batch does.
// Prints ns/event (best and median round), allocations/event, and a checksum of the budgets'
// totals, allocations and every message, which must not change when the ledger is optimized.
import BenchEvents
import BudgetCore
import MallocCounter

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
let count = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 10 : 10
let budgetCount = arguments.count > 3 ? Int(arguments[3]) ?? 20 : 20
let catalogPath = arguments.count > 4 ? arguments[4] : "../config/prices.json"

func readFile(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

let runId = "lb"
let eventTime = "2025-11-29T12:10:00Z"
let now = try! Timestamp(rfc3339: eventTime)
let pricer: Pricer = {
    do { return Pricer(catalog: try Catalog.load(json: readFile(catalogPath))) } catch {
        fatalError("catalog \(catalogPath): \(error)")
    }
}()

/// A ledger with the budgets (their allocations sum to less than the total: nothing depletes
/// or crosses a threshold, as in a bench run with `--setup`'s large totals).
/// SPIKE_MIN=amount (environment): SPENDING_SPIKE's minimum window spend instead of 10, so
/// that the whole spike check (the baseline days) runs as for a budget spending more than that
/// an hour.
let spikeMin = getenv("SPIKE_MIN").map { try! Money(parsing: String(cString: $0)) }

func makeLedger() -> Ledger {
    var ledger = Ledger()
    if let spikeMin { ledger.settings.spikeMinAmount = spikeMin }
    for k in 0..<budgetCount {
        let key = "\(runId)-\(k)"
        let args: JSONObject = [
            "name": .string("bench \(runId) #\(k)"), "budgetType": "MONTHLY", "totalAmount": .number("1000000000"),
            "currency": "USD", "startDate": "2025-11-01", "selector": ["bench": .string(key)],
        ]
        do {
            let b = try ledger.createBudget(Args(args), id: "bench-\(key)", at: now)
            for (platform, service) in [("OpenAI", "API"), ("Anthropic", "API"), ("Apify", "SCRAPING"), ("AWS", "STORAGE")] {
                let a: JSONObject = [
                    "id": .string("al-\(k)-\(platform)"),  // not random: the count must repeat
                    "budgetId": .string(b.id), "platform": .string(platform), "serviceType": .string(service),
                    "allocatedAmount": .number("100000000"),
                ]
                _ = try ledger.addAllocation(Args(a), at: now)
            }
        } catch {
            fatalError("budget: \(error)")
        }
    }
    return ledger
}

/// The measured loop (callgrind: --collect-atstart=no --toggle-collect='*bookAll*'): what
/// `Engine.apply` does with each event, but for storing it.
@inline(never)
func bookAll(_ events: [UsageEvent], ledger: inout Ledger) -> (booked: Int, messages: Int, total: Money) {
    var booked = 0, messages = 0
    var total = Money.zero
    for (i, event) in events.enumerated() {
        let time = event.time ?? now
        guard let routed = ledger.routeTarget(budgetId: event.budgetId, metadata: event.metadata, time: time),
              case .priced(let amount, let from, _) = pricer.price(event, at: time),
              case .success(let money) = pricer.money(amount, from: from, to: routed.currency, at: time)
        else { fatalError("event \(i) not booked") }
        let booking = ledger.adjust(
            amount: money, budgetId: routed.budgetId, platform: event.platform, serviceType: event.serviceType,
            eventId: event.id, costTime: time, at: now, routed: routed
        )
        booked += booking.allocationId == nil ? 0 : 1
        // Alerts (none with these totals) and, below, history buckets taken: both in the checksum.
        messages += booking.messages.count
        total += money
        if i % 2048 == 2047 { messages += ledger.takeChangedHistory().count }
    }
    return (booked, messages, total)
}

/// FNV-1a over every budget's totals and allocations, in id order.
func checksum(_ ledger: Ledger, _ result: (booked: Int, messages: Int, total: Money)) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ text: String) {
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01B3
    }
    mix("\(result.booked) \(result.messages) \(result.total)")
    for b in ledger.budgets.values.sorted(by: { $0.id < $1.id }) {
        mix("\(b.id) \(b.spentAmount) \(b.costCount) \(b.status.rawValue) \(b.fired.map(\.rawValue).sorted())")
        for a in b.allocations { mix("\(a.platform) \(a.serviceType.rawValue) \(a.spentAmount) \(a.depletedFired)") }
    }
    return hash
}

// SPREAD_HOURS=H (environment): event i dated (i mod H) hours before the others, so the spend
// history spans H hours as a budget's does after days of use (the default, 0, puts every event
// in one hour; the checksum above is for that).
let spreadHours = getenv("SPREAD_HOURS").flatMap { Int(String(cString: $0)) } ?? 0
let events: [UsageEvent] = (0..<count).map { i in
    let time = spreadHours > 0
        ? Timestamp(nanosecondsSinceEpoch: now.nanosecondsSinceEpoch - Int64(i % spreadHours) * 3_600_000_000_000).rfc3339
        : eventTime
    do { return try UsageEventDecoder.decode(bytes: message(i, runId: runId, budgets: budgetCount, time: time)) } catch {
        fatalError("rejected: \(error)")
    }
}
print("events: \(count), budgets: \(budgetCount), rounds: \(rounds), spread over hours: \(max(spreadHours, 1)), catalog: \(pricer.catalog.version)")

// Each round on a fresh ledger; the checksum is of the last round (so under callgrind, with one
// round, `bookAll` runs once).
let clock = ContinuousClock()
var perEvent: [Double] = []
var allocations: UInt64 = 0
var last: (ledger: Ledger, result: (booked: Int, messages: Int, total: Money))?
for _ in 0..<max(rounds, 1) {
    var ledger = makeLedger()
    let before = malloc_counter_allocations()
    let start = clock.now
    let result = bookAll(events, ledger: &ledger)
    let elapsed = clock.now - start
    allocations = malloc_counter_allocations() - before
    let ns = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    perEvent.append(ns / Double(count))
    last = (ledger, result)
}
if let last {
    print("booked to an allocation: \(last.result.booked), history buckets taken: \(last.result.messages), total: \(last.result.total)")
    print("checksum: \(String(checksum(last.ledger, last.result), radix: 16))")
}
perEvent.sort()
func format(_ x: Double) -> String { String(Int((x * 10).rounded())).dropLast() + "." + String(Int((x * 10).rounded())).suffix(1) }
print("ns/event: best \(format(perEvent[0])), median \(format(perEvent[perEvent.count / 2]))")
print("allocations/event: \(format(Double(allocations) / Double(count)))")
