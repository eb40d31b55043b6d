import BudgetCore
import Foundation
import Testing
import ZMQ

// Helpers of the fault tests (CrashTests, DiskFaultTests, SubscriberRecoveryTests): a seeded
// random generator, the sqlite3 shell, private mount namespaces, and a windowed load of
// acknowledged events whose fate the test models exactly.

/// SplitMix64: a small seeded generator, so a failing run can be replayed with its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The seed of a randomized test: `BUDGETD_TEST_SEED` when set (to replay a failure), else a new one.
func testSeed() -> UInt64 {
    if let text = ProcessInfo.processInfo.environment["BUDGETD_TEST_SEED"], let seed = UInt64(text) { return seed }
    return UInt64.random(in: 1...UInt64(UInt32.max))
}

/// Runs a command to completion; returns its exit status and what it wrote (stdout + stderr).
@discardableResult
func runCommand(_ arguments: [String], timeoutSeconds: Double = 30) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let output = OutputBuffer()
    let done = DispatchSemaphore(value: 0)
    let handle = pipe.fileHandleForReading
    Thread.detachNewThread {
        while true {
            let data = handle.availableData
            if data.isEmpty { break }
            output.append(String(decoding: data, as: UTF8.self))
        }
        done.signal()
    }
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        _ = done.wait(timeout: .now() + 2)
        throw HarnessError("\(arguments.joined(separator: " ")) still running after \(timeoutSeconds) s; output:\n\(output.text)")
    }
    process.waitUntilExit()
    _ = done.wait(timeout: .now() + 5)
    return (process.terminationStatus, output.text)
}

/// The first of `paths` that is an executable file.
func findExecutable(_ paths: [String]) -> String? {
    paths.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// The sqlite3 shell (apt: sqlite3; .ci/run installs it), to look at the database from outside.
enum SQLiteShell {
    static let path = findExecutable(["/usr/bin/sqlite3", "/usr/local/bin/sqlite3", "/bin/sqlite3"])

    /// Runs SQL on the file (read-only: the daemon may be running, or the file may be as a
    /// kill -9 left it, and the test must not change what the daemon will recover).
    static func query(_ db: String, _ sql: String) throws -> String {
        guard let path else { throw HarnessError("sqlite3 is not installed (apt-get install sqlite3)") }
        let (status, output) = try runCommand([path, "-readonly", "-batch", db, sql], timeoutSeconds: 120)
        guard status == 0 else { throw HarnessError("sqlite3 \(sql) failed (\(status)): \(output)") }
        return output
    }

    /// Runs SQL that writes, on a file no daemon has open (to make a large database quickly).
    static func write(_ db: String, _ sql: String) throws {
        guard let path else { throw HarnessError("sqlite3 is not installed (apt-get install sqlite3)") }
        let (status, output) = try runCommand([path, "-batch", db, sql], timeoutSeconds: 120)
        guard status == 0 else { throw HarnessError("sqlite3 \(sql) failed (\(status)): \(output)") }
    }

    /// Adds `copies` copies of the stored event `id` (ids `id-1` … `id-N`, the rest of the row
    /// as it is, booked in its row if it was), on a file no daemon has open: a large database
    /// in a second rather than minutes of ingest.
    static func copyEvent(_ db: String, id: String, copies: Int) throws {
        let columns = try query(db, "SELECT group_concat(name, ',') FROM pragma_table_info('usage_events') WHERE name <> 'rowid'")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let copied = columns.split(separator: ",").map { $0 == "event_id" ? "event_id || '-' || i" : String($0) }.joined(separator: ",")
        try write(db, """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(copies))
            INSERT INTO usage_events (\(columns)) SELECT \(copied) FROM usage_events, n WHERE event_id = '\(id)';
            """)
    }

    /// `PRAGMA integrity_check`: "ok" for a sound file.
    static func integrityCheck(_ db: String) throws -> String {
        try query(db, "PRAGMA integrity_check").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Private mount namespaces (`unshare -m`, root): a test can give budgetd a small tmpfs or a
/// read-only bind mount that only budgetd sees, and reach into it with `nsenter -t PID -m`.
enum MountNamespace {
    static let unshare = findExecutable(["/usr/bin/unshare", "/bin/unshare"])
    static let nsenter = findExecutable(["/usr/bin/nsenter", "/bin/nsenter"])

    /// Whether this machine lets the tests mount a tmpfs in a private mount namespace.
    static let available: Bool = {
        guard let unshare, nsenter != nil, getuid() == 0, let dir = try? TempDir() else { return false }
        let probe = dir.file("probe")
        try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)
        let result = try? runCommand([unshare, "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs '\(probe)' && mount --bind '\(probe)' '\(probe)' && mount -o remount,bind,ro '\(probe)'"], timeoutSeconds: 10)
        return result?.status == 0
    }()

    /// A launcher for `Daemon(launcher:)`: runs `setup` (shell) in a new mount namespace, then
    /// execs budgetd there (same pid, so `nsenter -t pid -m` reaches the namespace).
    static func launcher(_ setup: String) -> [String] {
        [unshare ?? "/usr/bin/unshare", "-m", "sh", "-c", setup + " && exec \"$0\" \"$@\""]
    }

    /// Runs a shell command inside the mount namespace of `pid`.
    @discardableResult
    static func run(in pid: Int32, _ command: String) throws -> (status: Int32, output: String) {
        try runCommand([nsenter ?? "/usr/bin/nsenter", "-t", String(pid), "-m", "sh", "-c", command])
    }
}

// MARK: - A modelled load

/// One usage event of a fault test: a distinct exact amount (so a double count shows in the
/// totals) or, for some, no price at all (an UNPRICED_USAGE alert for its own model).
struct ModelEvent {
    let index: Int
    let id: String
    let budget: Int
    /// nil: unpriced (model `m-<index>`, no catalog entry).
    let cost: Money?
    let body: [UInt8]
}

/// The events of a test and what the daemon answered for each.
final class EventModel {
    let source: String
    let budgetIds: [String]
    private(set) var events: [ModelEvent] = []
    private var indexById: [String: Int] = [:]
    /// Replies per event: how many ACCEPTED and DUPLICATE came back.
    private(set) var accepted: [Int: Int] = [:]
    private(set) var duplicates: [Int: Int] = [:]
    private(set) var rejected: [String] = []
    /// Events sent at least once (over either socket).
    private(set) var sent = Set<Int>()

    /// `padding`: a description of that many characters on every event (bigger rows).
    init(source: String, budgetIds: [String], count: Int, unpricedEvery: Int = 40, padding: Int = 0) {
        self.source = source
        self.budgetIds = budgetIds
        events.reserveCapacity(count)
        for i in 0..<count {
            let id = "\(source)-\(i)"
            let budget = i % budgetIds.count
            var o = JSONObject([
                ("id", .string(id)), ("source", .string(source)), ("platform", "OpenAI"), ("serviceType", "API"),
                ("budgetId", .string(budgetIds[budget])),
            ])
            if padding > 0 { o["description"] = .string(String(repeating: "x", count: padding)) }
            var cost: Money?
            if unpricedEvery > 0 && i % unpricedEvery == unpricedEvery - 1 {
                o["model"] = .string("m-\(source)-\(i)")
                o["usage"] = ["inputTokens": 1]
            } else {
                // 0.001 + i nano-units: every amount distinct and exact.
                let money = Money(nanos: 1_000_000 + Int128(i))
                o["cost"] = .number(money.description)
                cost = money
            }
            events.append(ModelEvent(index: i, id: id, budget: budget, cost: cost, body: JSONValue.object(o).serializedBytes()))
            indexById[id] = i
        }
    }

    func markSent(_ i: Int) { sent.insert(i) }

    /// Records an acknowledgement; returns the event's index, or nil for a reply to no event of ours.
    @discardableResult
    func record(ack: JSONObject) -> Int? {
        guard let id = ack.string("id"), let i = indexById[id] else {
            rejected.append(ack.serialized())
            return nil
        }
        switch ack.string("status") {
        case "ACCEPTED": accepted[i, default: 0] += 1
        case "DUPLICATE": duplicates[i, default: 0] += 1
        default: rejected.append(ack.serialized())
        }
        return i
    }

    func isAcknowledged(_ i: Int) -> Bool { accepted[i] != nil || duplicates[i] != nil }
    var acceptedIds: Set<Int> { Set(accepted.keys) }
    /// Events ACCEPTED more than once: a double count by the daemon.
    var acceptedTwice: [Int] { accepted.filter { $0.value > 1 }.map(\.key).sorted() }
    var duplicateReplies: Int { duplicates.values.reduce(0, +) }

    /// What each budget must have spent if exactly the events `stored` were counted once.
    func expectedSpent(stored: Set<Int>) -> [Money] {
        var totals = Array(repeating: Money.zero, count: budgetIds.count)
        for i in stored { if let c = events[i].cost { totals[events[i].budget] += c } }
        return totals
    }
}

/// The client side of a load: for each logical client, the events it has still to send, those
/// in flight, and those to resend after a crash. Survives daemon restarts; the sockets do not.
final class LoadDriver {
    let model: EventModel
    let window: Int
    private var pools: [[Int]]
    private var nextNew: [Int]
    private(set) var inFlight: [Set<Int>]
    private var resend: [[Int]]
    /// Events for the PUB socket, in order, and how many were published.
    private let publishPool: [Int]
    private(set) var published = 0
    private(set) var resent = 0

    init(model: EventModel, clients: Int, window: Int, publishEvery: Int) {
        self.model = model
        self.window = window
        var pools = Array(repeating: [Int](), count: clients)
        var publishPool: [Int] = []
        for e in model.events {
            if publishEvery > 0 && e.index % publishEvery == 0 { publishPool.append(e.index) } else { pools[e.index % clients].append(e.index) }
        }
        self.pools = pools
        self.publishPool = publishPool
        nextNew = Array(repeating: 0, count: clients)
        inFlight = Array(repeating: [], count: clients)
        resend = Array(repeating: [], count: clients)
    }

    var totalInFlight: Int { inFlight.reduce(0) { $0 + $1.count } }

    /// After a crash (or a stop): everything sent and not answered is sent again, first.
    func daemonRestarted() {
        for c in inFlight.indices {
            resend[c] += inFlight[c].sorted()
            inFlight[c] = []
        }
    }

    /// Queues every published event for a resend over the acknowledged socket (the end of a
    /// test: fire-and-forget events were never acknowledged, so whether they got in is unknown).
    func resendPublished() {
        for (k, i) in publishPool.prefix(published).enumerated() { resend[k % resend.count].append(i) }
    }

    /// Drives the load against `daemon` until `stop` says so, all is answered and nothing is
    /// left to send, or `timeout`. `sendNew: false` only resends. Calls `afterReplies` after
    /// each burst of replies (a test kills or stops the daemon there).
    func run(
        daemon: Daemon, client: Client, sendNew: Bool, publish: Bool, timeout: Double = 60,
        stop: () throws -> Bool, afterReplies: () throws -> Void = {}
    ) throws {
        var dealers: [ZMQSocket] = []
        for _ in inFlight.indices {
            let d = try client.socket(.dealer)
            try d.connect(daemon.ingestAck)
            dealers.append(d)
        }
        let publisher = publish && published < publishPool.count ? try client.publisher() : nil
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try stop() { return }
            var sending = false
            for c in dealers.indices {
                while inFlight[c].count < window {
                    let i: Int
                    if !resend[c].isEmpty {
                        i = resend[c].removeFirst()
                        resent += 1
                    } else if sendNew && nextNew[c] < pools[c].count {
                        i = pools[c][nextNew[c]]
                        nextNew[c] += 1
                    } else { break }
                    try dealers[c].send([Array("usage".utf8), model.events[i].body])
                    model.markSent(i)
                    inFlight[c].insert(i)
                    sending = true
                }
            }
            if let publisher, published < publishPool.count {
                let i = publishPool[published]
                try publisher.send([Array("usage".utf8), model.events[i].body])
                model.markSent(i)
                published += 1
                sending = true
            }
            if !sending && totalInFlight == 0 { return }
            let ready = try poll(dealers.map { ($0, PollEvents.readable) }, timeoutMilliseconds: 100)
            var any = false
            for (c, events) in ready.enumerated() where events.contains(.readable) {
                while let reply = try dealers[c].receive(dontWait: true) {
                    guard let o = try JSON.parse(reply.last ?? []).objectValue else { continue }
                    if let i = model.record(ack: o) { inFlight[c].remove(i) }
                    any = true
                }
            }
            if any { try afterReplies() }
        }
        throw HarnessError("load did not finish in \(timeout) s: \(totalInFlight) in flight; daemon stderr:\n\(daemon.stderr.suffix(2000))")
    }
}

extension JSONObject {
    func serialized() -> String { JSONValue.object(self).serialized() }
}

/// The stored events as the database has them: (source|id) → (state, cost), and any event
/// with more than one cost allocation.
func storedEvents(_ db: String) throws -> (events: [String: (state: String, cost: String)], rows: Int, costsCountedTwice: [String]) {
    var events: [String: (String, String)] = [:]
    var rows = 0
    for line in try SQLiteShell.query(db, "SELECT source || '|' || event_id || '|' || state || '|' || ifnull(cost, '') FROM usage_events").split(separator: "\n") {
        let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 else { continue }
        rows += 1
        events[parts[0] + "|" + parts[1]] = (parts[2], parts[3])
    }
    // A cost is a cost row or an event row that is its own booking (`booked`).
    let twice = try SQLiteShell.query(db, """
        SELECT k FROM (
          SELECT event_source || '|' || event_id AS k FROM cost_allocations WHERE event_id IS NOT NULL
          UNION ALL SELECT source || '|' || event_id FROM usage_events WHERE booked IS NOT NULL
        ) GROUP BY k HAVING count(*) > 1
        """)
        .split(separator: "\n").map(String.init)
    return (events, rows, twice)
}

/// Every outbound message after `sinceSeq`, page by page, as (seq, topic).
func outboundLog(_ client: Client, sinceSeq: Int = 0) throws -> [(seq: Int, topic: String)] {
    var all: [(Int, String)] = []
    var since = sinceSeq
    while true {
        let page = try client.call("outbound.list", ["sinceSeq": .number(String(since)), "limit": .number("1000")]).arrayValue ?? []
        if page.isEmpty { return all }
        for m in page {
            guard let seq = m["seq"]?.numberText.flatMap({ Int($0) }), let topic = m["topic"]?.stringValue else {
                throw HarnessError("bad outbound row \(m.serialized())")
            }
            all.append((seq, topic))
            since = seq
        }
    }
}

/// Whether `seqs` is exactly 1…n in order: strictly increasing, no gap.
func isGapFree(_ seqs: [Int]) -> Bool {
    seqs.enumerated().allSatisfy { $0.offset + 1 == $0.element }
}

/// Appends a line of figures to the test output (and to `$BUDGETD_RELIABILITY_LOG` when set),
/// for docs/reliability.md.
func reportFigures(_ line: String) {
    print("reliability: " + line)
    if let path = ProcessInfo.processInfo.environment["BUDGETD_RELIABILITY_LOG"],
       let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil) {
        handle.seekToEndOfFile()
        handle.write(Data(("reliability: " + line + "\n").utf8))
        try? handle.close()
    }
}
