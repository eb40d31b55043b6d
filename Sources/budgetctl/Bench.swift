import ArgumentParser
import BudgetCore
import Foundation
import ZMQ

/// `budgetctl bench`: the load generator behind docs/benchmarks.md.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load-test ingest: send prebuilt usage events and measure what budgetd commits.",
        discussion: """
            pub: PUB to --ingest (fire-and-forget), then watch the daemon's \
            stats over --control until accepted+duplicates+rejected reaches the \
            count or stops growing for 2 s. committed = the growth of `accepted`; \
            lost = sent - committed - duplicates - rejected (growth of each); \
            events/s = committed / (first send to the last commit observed, \
            polled every 50 ms). Other traffic on the same daemon counts too: \
            bench an idle one.

            ack: DEALER to --ingest-ack with at most --window events awaiting \
            their acknowledgement; replies are counted by status, nothing is \
            resent (missing replies are reported after --timeout of silence); \
            events/s = acknowledged / wall time; p50/p99 acknowledgement latency.

            raw: no daemon; a PUB and a SUB in this process over loopback TCP \
            with the same messages: the messages/s ZeroMQ alone carries here. \
            With --with-raw, pub and ack modes run this first and report \
            rawMessagesPerSecond and ratioToRaw (events/s ÷ raw msg/s).

            --nodrop (pub, alerts, control): the publisher sets \
            ZMQ_XPUB_NODROP with --send-hwm; when its queue is full it waits \
            and retries instead of dropping (flow control: lost is 0 unless \
            the daemon drops). Without it the send queue is unlimited.

            pub and ack also sample the daemon's stats.process every \
            --sample-ms on a second control connection: peakRssBytes (VmHWM \
            at the end), rssStartBytes, rssEndBytes, rssSteadyBytes (median of \
            the second half of the samples) and databaseBytesPerMillionEvents \
            ((database + WAL growth) ÷ committed × 1e6).

            alerts: alert latency under load. Creates --probes MONTHLY budgets \
            (total 100 USD, selector probe=RUNID-p), subscribes to alert.* on \
            --publish, sends the workload over PUB at --rate, and spread evenly \
            through it one event of cost 85 USD per probe budget: latency is \
            from sending a probe to receiving its budget's THRESHOLD_80.

            control: control round-trip latency: --warmup, then --requests REQ \
            round trips alternating budget.get and spend.check (0.01 USD) on \
            --budget-id (default: the first --setup budget); p50/p90/p99/max \
            per op. With --rate, the workload is published meanwhile.

            Events are about 300 bytes of realistic JSON (OpenAI, Anthropic, \
            Apify, AWS), with ids RUNID-i so runs never collide. Every message \
            is built before timing starts. The sender waits until the daemon's \
            subscription has arrived before sending, so none is dropped for \
            want of a subscriber.
            """
    )

    /// How events are sent.
    enum Mode: String, ExpressibleByArgument, CaseIterable, Sendable {
        case pub, ack, raw, alerts, control
    }

    /// How event ids are spelled: `RUNID-i` (each near the one before in an index), or with
    /// eight pseudo-random hex digits first, as UUIDs spread over an index.
    enum IdStyle: String, ExpressibleByArgument, CaseIterable, Sendable {
        case sequential, random
    }

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("How many events to send.", valueName: "n"))
    var count = 100_000

    @Option(help: ArgumentHelp("How many budget keys (metadata.bench) to spread events over, round-robin.", valueName: "m"))
    var budgets = 20

    @Option(help: "pub (fire-and-forget ingest), ack (acknowledged ingest), raw (ZeroMQ alone, no daemon), alerts (alert latency under load) or control (control round-trip latency).")
    var mode: Mode = .pub

    @Option(help: ArgumentHelp("ack mode: the most events awaiting acknowledgement at once.", valueName: "w"))
    var window = 1000

    @Option(help: ArgumentHelp("The daemon's fire-and-forget ingest endpoint (pub mode).", valueName: "endpoint"))
    var ingest = "tcp://127.0.0.1:7600"

    @Option(name: .customLong("ingest-ack"), help: ArgumentHelp("The daemon's acknowledged ingest endpoint (ack mode).", valueName: "endpoint"))
    var ingestAck = "tcp://127.0.0.1:7601"

    @Option(help: ArgumentHelp("Send at most this many events per second; 0 is full speed.", valueName: "events/s"))
    var rate = 0

    @Option(
        name: .customLong("run-id"),
        help: ArgumentHelp("Names the run: event ids RUNID-i, source bench-RUNID (default: random). Letters, digits, . _ -", valueName: "id")
    )
    var runId: String?

    @Option(help: "Event ids: sequential (RUNID-i) or random (8 pseudo-random hex digits first, like UUIDs: each insert lands elsewhere in the database's key index).")
    var ids: IdStyle = .sequential

    @Option(help: ArgumentHelp("The daemon's outbound (PUB) endpoint (alerts mode).", valueName: "endpoint"))
    var publish = "tcp://127.0.0.1:7602"

    @Flag(help: "pub, alerts, control: set ZMQ_XPUB_NODROP with --send-hwm and wait instead of dropping when the queue is full.")
    var nodrop = false

    @Option(name: .customLong("send-hwm"), help: ArgumentHelp("With --nodrop: the publisher's send high-water mark (messages).", valueName: "n"))
    var sendHwm = 10_000

    @Flag(name: .customLong("with-raw"), help: "pub, ack: first measure raw ZeroMQ PUB→SUB with the same messages, and report the ratio.")
    var withRaw = false

    @Option(name: .customLong("sample-ms"), help: ArgumentHelp("pub, ack: how often to sample the daemon's stats.process.", valueName: "ms"))
    var sampleMs = 100

    @Option(help: ArgumentHelp("alerts mode: how many probe budgets (one probe event each).", valueName: "p"))
    var probes = 200

    @Option(help: ArgumentHelp("control mode: timed requests (after --warmup).", valueName: "k"))
    var requests = 10_000

    @Option(help: ArgumentHelp("control mode: untimed requests first.", valueName: "n"))
    var warmup = 500

    @Option(name: .customLong("budget-id"), help: ArgumentHelp("control mode: the budget to query (default: the first --setup budget).", valueName: "id"))
    var budgetId: String?

    @Flag(help: "First create --budgets MONTHLY budgets over this month (total 1e9, selector bench=RUNID-k) to route the events to.")
    var setup = false

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard budgets >= 1 else { throw ValidationError("--budgets must be at least 1") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard sendHwm >= 1, sendHwm <= Int(Int32.max) else { throw ValidationError("--send-hwm must be at least 1") }
        guard sampleMs >= 10 else { throw ValidationError("--sample-ms must be at least 10") }
        guard probes >= 1 else { throw ValidationError("--probes must be at least 1") }
        guard requests >= 1 else { throw ValidationError("--requests must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
        if mode == .control, budgetId == nil, !setup {
            throw ValidationError("control mode needs --budget-id or --setup")
        }
        if let runId {
            // The ids are interpolated into the events' JSON as they are.
            let allowed = runId.utf8.allSatisfy { byte in
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
            guard !runId.isEmpty, runId.count <= 64, allowed else {
                throw ValidationError("--run-id must be 1 to 64 letters, digits, '.', '_' or '-'")
            }
        }
        if setup, mode == .raw {
            throw ValidationError("--setup needs a daemon: use it with --mode pub, ack, alerts or control")
        }
    }

    func run() throws {
        do {
            let runId = self.runId ?? Self.randomRunId()
            let workload = BenchWorkload(runId: runId, count: count, budgets: budgets, randomIds: ids == .random)
            let messages = workload.messages(time: BenchWorkload.now())
            let context = try ZMQContext()
            defer { context.terminate() }

            var report = BenchReport()
            report.add("mode", .string(mode.rawValue))
            report.add("runId", .string(runId))
            report.add("count", .number(count))
            report.add("ids", .string(ids.rawValue))
            report.add("averageEventBytes", .number(messages.reduce(0) { $0 + $1[1].count } / messages.count))

            switch mode {
            case .raw:
                try runRaw(context: context, messages: messages, report: &report)
            case .pub, .ack, .alerts, .control:
                let client = try ControlClient(
                    context: context, endpoint: global.control,
                    timeout: global.timeoutDuration, timeoutText: global.timeoutText, secure: global.secure
                )
                defer { client.close() }
                if setup {
                    try createBudgets(client: client, workload: workload)
                    report.add("budgetsCreated", .number(budgets))
                }
                switch mode {
                case .pub, .ack:
                    if withRaw {
                        let raw = try measureRaw(context: context, messages: messages)
                        report.add("rawMessagesPerSecond", .number(raw.messagesPerSecond))
                        report.add("rawLost", .number(raw.lost))
                        try runDaemonMode(context: context, client: client, workload: workload, messages: messages, report: &report)
                        report.addRatio(to: raw.messagesPerSecond)
                    } else {
                        try runDaemonMode(context: context, client: client, workload: workload, messages: messages, report: &report)
                    }
                case .alerts:
                    try runAlerts(context: context, client: client, workload: workload, messages: messages, report: &report)
                case .control:
                    let target = budgetId ?? "bench-\(workload.budgetKey(0))"
                    try runControl(context: context, client: client, budgetId: target, messages: messages, report: &report)
                case .raw:
                    break
                }
            }
            report.print(json: global.json)
        } catch {
            throw GlobalOptions.report(error)
        }
    }

    /// pub or ack against the daemon, with the daemon's resources sampled on the side.
    private func runDaemonMode(
        context: ZMQContext, client: ControlClient, workload: BenchWorkload, messages: [[[UInt8]]], report: inout BenchReport
    ) throws {
        let before = try client.call("stats")
        let sampler = ResourceSampler(context: context, connection: connection, interval: .milliseconds(sampleMs))
        sampler.start()
        let committed: Int64
        do {
            if mode == .pub {
                committed = try runPub(context: context, client: client, before: before, messages: messages, report: &report)
            } else {
                committed = try runAck(context: context, workload: workload, messages: messages, report: &report)
            }
        } catch {
            sampler.stop()
            throw error
        }
        let sampled = sampler.stop()
        let after = try client.call("stats")
        ResourceSampler.report(before: before, after: after, sampled: sampled, committed: committed, into: &report)
    }

    /// `--setup`: one MONTHLY budget per key, over the current UTC month.
    func createBudgets(client: ControlClient, workload: BenchWorkload) throws {
        let start = BenchWorkload.firstOfMonth()
        for k in 0..<budgets {
            let key = workload.budgetKey(k)
            let args: JSONObject = [
                "id": .string("bench-\(key)"),
                "name": .string("bench \(workload.runId) #\(k)"),
                "budgetType": "MONTHLY",
                "totalAmount": .number("1000000000"),
                "currency": "USD",
                "startDate": .string(start),
                "selector": ["bench": .string(key)],
                "createdBy": "budgetctl bench",
            ]
            _ = try client.call("budget.create", args)
        }
    }

    static func randomRunId() -> String {
        let hex = String(UInt32.random(in: .min ... .max), radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// What a bench run measured, in order: printed as `key  value` lines, or as
/// one JSON object with `--json`.
struct BenchReport {
    private(set) var entries: [(key: String, value: JSONValue)] = []

    mutating func add(_ key: String, _ value: JSONValue) {
        entries.append((key, value))
    }

    /// Seconds with millisecond precision.
    mutating func add(_ key: String, seconds duration: Duration) {
        add(key, .number(Self.fixed(Self.seconds(duration), decimals: 3)))
    }

    /// `ratioToRaw`: this run's `eventsPerSecond` ÷ raw ZeroMQ's messages/s.
    mutating func addRatio(to rawPerSecond: Int) {
        let eventsPerSecond = entries.last { $0.key == "eventsPerSecond" }.flatMap { $0.value.numberText.flatMap(Double.init) } ?? 0
        add("ratioToRaw", .number(Self.fixed(rawPerSecond > 0 ? eventsPerSecond / Double(rawPerSecond) : 0, decimals: 4)))
    }

    /// A rate, rounded to a whole number per second.
    mutating func add(_ key: String, rate count: Int, over duration: Duration) {
        let seconds = Self.seconds(duration)
        add(key, .number(seconds > 0 ? Int((Double(count) / seconds).rounded()) : 0))
    }

    func print(json: Bool) {
        if json {
            Console.out(JSONValue.object(JSONObject(entries.map { ($0.key, $0.value) })).serialized())
            return
        }
        let width = entries.map(\.key.count).max() ?? 0
        Console.out(lines: entries.map { $0.key + String(repeating: " ", count: width - $0.key.count) + "  " + Format.cell($0.value) })
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// `value` with `decimals` decimals, as JSON number text. (Timings, not money.)
    static func fixed(_ value: Double, decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }
}

/// Spaces sends out to `--rate` events per second.
struct Pacer {
    let rate: Int
    let start: ContinuousClock.Instant

    /// Waits until event `index` is due; does nothing at full speed.
    func wait(for index: Int, clock: ContinuousClock) {
        guard rate > 0 else { return }
        let due = start.advanced(by: .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate)))
        let early = clock.now.duration(to: due)
        if early > .milliseconds(1) {
            Thread.sleep(forTimeInterval: BenchReport.seconds(early))
        }
    }

    /// Whether event `index` is due now (for loops that must not sleep).
    func isDue(_ index: Int, clock: ContinuousClock) -> Bool {
        guard rate > 0 else { return true }
        return clock.now >= start.advanced(by: .nanoseconds(Int64(index) * 1_000_000_000 / Int64(rate)))
    }
}
