// KeyFilter benchmark (issue 8): the dedup filter's cost per ingested event, one `mayContain`
// (the lookup of a new key) and one `insert`, on the daemon's 16 MiB filter, over N distinct
// keys shaped as budgetctl bench's ("bench-RUN", "RUN-i").
//
//   swift run -c release KeyFilterBench [keys] [rounds]
//
// Prints ns/event (best and median round) and how many keys the filter took for seen before
// they were inserted (false positives), which must stay near zero at these counts.
import BudgetCore

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
let count = arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5

func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

var results: [Double] = []
var falsePositives = 0
for round in 0..<rounds {
    // Keys built before timing, distinct per round.
    let source = "bench-r\(round)"
    let ids = (0..<count).map { "r\(round)-\($0)" }
    var filter = KeyFilter()
    falsePositives = 0
    let start = nowNs()
    for id in ids {
        if filter.mayContain(source: source, id: id) { falsePositives += 1 }
        filter.insert(source: source, id: id)
    }
    results.append(Double(nowNs() - start) / Double(count))
}
let sorted = results.sorted()
print("keys \(count), rounds \(rounds)")
print("ns/event best \(Int(sorted[0].rounded())) median \(Int(sorted[sorted.count / 2].rounded()))")
print("false positives (last round) \(falsePositives)")
