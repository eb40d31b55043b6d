import ArgumentParser
import BudgetCore
import ZMQ

/// `budgetctl alerts …`.
struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "List, resolve and follow alerts.",
        subcommands: [List.self, Resolve.self, Tail.self]
    )
}

extension AlertsCommand {
    /// `budgetctl alerts list` → `alert.list`.
    struct List: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "List alerts in seq order (alert.list)."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Only this budget's alerts.", valueName: "id"))
        var budget: String?

        @Flag(help: "Only alerts not resolved yet.")
        var unresolved = false

        @Option(name: .customLong("since-seq"), help: ArgumentHelp("Only alerts after this seq.", valueName: "seq"))
        var sinceSeq: Int64?

        @Option(help: ArgumentHelp("At most this many (budgetd's default: 1000).", valueName: "n"))
        var limit: Int?

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            if let sinceSeq, sinceSeq < 0 { throw ValidationError("--since-seq must not be negative") }
        }

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("budgetId", budget.map(JSONValue.string))
            if unresolved { args["unresolved"] = true }
            args.set("sinceSeq", sinceSeq.map { .number($0) })
            args.set("limit", limit.map { .number($0) })
            let alerts = try client.call("alert.list", args)
            if printedJSON(alerts) { return }

            var table = Table(
                ["SEQ", "ID", "TYPE", "SEVERITY", "BUDGET", "SPENT", "TRIGGERED", "RESOLVED", "MESSAGE"],
                rightAligned: ["SEQ", "SPENT"]
            )
            for alert in alerts.arrayValue ?? [] {
                let resolved: String = switch alert["resolved"]?.boolValue {
                case true?: alert["resolvedAt"]?.stringValue ?? "yes"
                case false?: "no"
                case nil: "-"
                }
                table.append([
                    Format.cell(alert["seq"]),
                    Format.cell(alert["id"]),
                    Format.cell(alert["type"]),
                    Format.cell(alert["severity"]),
                    Format.cell(alert["budgetName"] ?? alert["budgetId"]),
                    Format.percent(alert["spentPercentage"]),
                    Format.cell(alert["triggeredAt"]),
                    resolved,
                    Format.cell(alert["message"]),
                ])
            }
            table.print(empty: "no alerts")
        }
    }

    /// `budgetctl alerts resolve ID` → `alert.resolve`.
    struct Resolve: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Acknowledge an alert (alert.resolve); it does not re-arm the rule that fired it."
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The alert's id.")
        var id: String

        func run(with client: ControlClient) throws {
            let alert = try client.call("alert.resolve", ["id": .string(id)])
            if printedJSON(alert) { return }
            Console.out("resolved \(Format.cell(alert["id"])): \(Format.cell(alert["message"]))")
        }
    }

    /// `budgetctl alerts tail`: follow the outbound socket.
    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print alerts and status changes as budgetd publishes them, recovering missed ones by seq.",
            discussion: """
                Subscribes to the outbound socket (--publish) and prints one line \
                per message: `SEQ TYPE SEVERITY BUDGET PERCENT% MESSAGE` for an \
                alert, `SEQ status.STATUS BUDGET PREVIOUS -> STATUS (spent … of …)` \
                for a status change; with --json, the message's JSON payload, one \
                per line.

                Nothing is lost and nothing printed twice: seq numbers alerts and \
                status events together, so when a message's seq jumps, or a \
                heartbeat's lastSeq is ahead of the last one seen, the missing \
                messages are fetched with outbound.list over --control and printed \
                in order first. Without --since-seq, it starts after budgetd's \
                current lastSeq (from stats), or, when budgetd started after the \
                tail did, after the seq it started at (so what it published as it \
                started is printed); with it, it first prints everything after \
                that seq.

                A silent daemon (no heartbeat for 3 intervals) is reported on \
                standard error, as is the starting point (`following ENDPOINT \
                after seq N`) once it is set. Runs until SIGINT or SIGTERM (exit \
                0), or until --count messages are printed.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The daemon's outbound endpoint (ZeroMQ PUB).", valueName: "endpoint"))
        var publish = "tcp://127.0.0.1:7602"

        @Option(name: .customLong("since-seq"), help: ArgumentHelp("First print every alert and status event after this seq.", valueName: "seq"))
        var sinceSeq: Int64?

        @Option(
            name: .customLong("topic"),
            help: ArgumentHelp(
                "Print only messages whose topic starts with this prefix, such as alert.THRESHOLD or status. (repeatable; default: alert. and status.; health and heartbeat may be added).",
                valueName: "prefix"
            )
        )
        var topics: [String] = []

        @Option(help: ArgumentHelp("Stop after printing this many messages.", valueName: "n"))
        var count: Int?

        func validate() throws {
            if let count, count < 1 { throw ValidationError("--count must be at least 1") }
            if let sinceSeq, sinceSeq < 0 { throw ValidationError("--since-seq must not be negative") }
        }

        func run() throws {
            StopSignal.install()
            do {
                let context = try ZMQContext()
                defer { context.terminate() }
                let subscriber = try context.makeSocket(.sub)
                defer { subscriber.close() }
                try subscriber.setLinger(milliseconds: 0)
                // Every sequenced topic is subscribed, whatever --topic says, so
                // filtered-out messages still advance the seq and are not taken
                // for losses; --topic only filters what is printed.
                let filters = topics.isEmpty ? ["alert.", "status."] : topics
                for prefix in Set(filters + ["alert.", "status.", "heartbeat"]) {
                    try subscriber.subscribe(prefix)
                }
                try global.secure(subscriber)
                try subscriber.connect(publish)

                let client = try ControlClient(
                    context: context, endpoint: global.control,
                    timeout: global.timeoutDuration, timeoutText: global.timeoutText, secure: global.secure
                )
                defer { client.close() }

                var follower = TailFollower(
                    client: client, publish: publish, filters: filters, json: global.json, limit: count
                )
                try follower.start(sinceSeq: sinceSeq)
                if !follower.isDone {
                    // On standard error, so it never mixes with what scripts read;
                    // it also tells a test when the starting point is set.
                    let after = follower.lastSeq.map { "after seq \($0)" } ?? "from the first message"
                    Console.err("following \(publish) \(after)")
                }
                while !follower.isDone, !StopSignal.requested {
                    let ready = try poll([(socket: subscriber, events: .readable)], timeoutMilliseconds: 250)
                    if ready[0].contains(.readable) {
                        while !follower.isDone, let frames = try subscriber.receive(dontWait: true) {
                            try follower.handle(frames)
                        }
                    }
                    follower.checkHeartbeat()
                }
            } catch {
                throw GlobalOptions.report(error)
            }
        }
    }
}

/// The state of `alerts tail`: the last seq printed (or skipped by the
/// filter), recovery of gaps over the control socket, heartbeat watching.
struct TailFollower {
    let client: ControlClient
    let publish: String
    let filters: [String]
    let json: Bool
    let limit: Int?

    /// The last alert or status event seq dealt with; nil until known.
    private(set) var lastSeq: Int64?
    /// How many messages were printed.
    private(set) var printed = 0

    private let clock = ContinuousClock()
    private var lastHeartbeat: ContinuousClock.Instant
    private var heartbeatInterval: Duration = .seconds(1)
    private var reportedSilence = false
    /// No outbound.list before this, after one went unanswered.
    private var retryAfter: ContinuousClock.Instant?
    /// When this tail started (wall clock, to compare with the daemon's `readyAt`).
    private let launchedAt = Now.timestamp()
    /// Whether `stats` was asked again at the first message, the starting point being unknown.
    private var askedAgain = false

    init(client: ControlClient, publish: String, filters: [String], json: Bool, limit: Int?) {
        self.client = client
        self.publish = publish
        self.filters = filters
        self.json = json
        self.limit = limit
        lastHeartbeat = clock.now
    }

    /// Whether `--count` messages have been printed.
    var isDone: Bool {
        limit.map { printed >= $0 } ?? false
    }

    /// Sets the starting point: with `sinceSeq`, prints everything after it;
    /// without, starts after the daemon's current `lastSeq`.
    ///
    /// Called after the subscriber connected, so nothing published from now
    /// on is missed: it either arrives on the socket or shows up as a gap.
    mutating func start(sinceSeq: Int64?) throws {
        if let sinceSeq {
            lastSeq = sinceSeq
            try recover(reason: nil)
            return
        }
        do {
            try adopt(stats: client.call("stats"))
        } catch let error as ControlClientError {
            if case .interrupted = error { throw error }
            // The outbound socket may work without the control socket; the
            // first message or heartbeat sets the starting point then (after
            // one more try of `stats`, the daemon being up by then).
            Console.err("warning: \(error); starting from the first message received")
        }
    }

    /// The starting point from the daemon's `stats`: after its `lastSeq`; or,
    /// when the daemon became ready (`readyAt`: its sockets bound, before it
    /// published anything) after this tail started (it was down, or still
    /// starting: a migration, say), after the seq it started from
    /// (`startSeq`), so what it published as it started (a `status.COMPLETED`
    /// of a period that ended while it was down) is printed too, not taken for
    /// the past (an audit's tails missed exactly those).
    private mutating func adopt(stats: JSONValue) throws {
        if let text = stats["readyAt"]?.stringValue, let ready = try? Timestamp(rfc3339: text),
           ready >= launchedAt,
           let startText = stats["startSeq"]?.numberText, let startSeq = Int64(startText) {
            lastSeq = startSeq
            try recover(reason: nil)
        } else if let text = stats["lastSeq"]?.numberText, let seq = Int64(text) {
            lastSeq = seq
        }
    }

    /// Deals with one message from the outbound socket.
    mutating func handle(_ frames: [[UInt8]]) throws {
        guard frames.count >= 2 else { return }
        let topic = String(decoding: frames[0], as: UTF8.self)
        guard let payload = try? JSON.parse(frames[1], maxDepth: 512) else {
            Console.err("warning: unreadable message on \(topic)")
            return
        }

        if lastSeq == nil && !askedAgain && (topic == "heartbeat" || payload["seq"] != nil) {
            // No starting point (`stats` did not answer at the start): the daemon is up now.
            askedAgain = true
            do {
                try adopt(stats: client.call("stats"))
                if let lastSeq { Console.err("following \(publish) after seq \(lastSeq)") }
            } catch let error as ControlClientError {
                if case .interrupted = error { throw error }
            }
        }
        if topic == "heartbeat" {
            lastHeartbeat = clock.now
            if reportedSilence {
                reportedSilence = false
                Console.err("heartbeat from \(publish) again")
            }
            if let text = payload["intervalMs"]?.numberText, let milliseconds = Int64(text), milliseconds > 0 {
                heartbeatInterval = .milliseconds(milliseconds)
            }
            if let text = payload["lastSeq"]?.numberText, let seq = Int64(text) {
                if let lastSeq {
                    if seq > lastSeq {
                        try recover(reason: "heartbeat lastSeq \(seq)")
                    } else if seq < lastSeq {
                        // Behind what was seen (its database replaced, or --since-seq past its
                        // end): its next messages would be taken as seen and dropped unsaid.
                        Console.err("warning: \(publish) is at seq \(seq), before seq \(lastSeq) seen (its database replaced, or --since-seq past its end?): following from seq \(seq)")
                        self.lastSeq = seq
                    }
                } else {
                    lastSeq = seq
                }
            }
            if matches(topic) { emit(topic: topic, payload: payload, text: frames[1]) }
            return
        }

        guard let text = payload["seq"]?.numberText, let seq = Int64(text) else {
            // Not sequenced (health): print it if asked for.
            if matches(topic) { emit(topic: topic, payload: payload, text: frames[1]) }
            return
        }
        if let lastSeq {
            if seq <= lastSeq {
                // Already printed from outbound.list.
                return
            }
            if seq > lastSeq + 1 {
                try recover(reason: "seq \(seq) after \(lastSeq)")
                let reached = self.lastSeq ?? lastSeq
                if seq <= reached {
                    return
                }
                if seq > reached + 1 {
                    Console.err("warning: missed seq \(reached + 1)...\(seq - 1): outbound.list did not answer")
                }
            }
        }
        lastSeq = seq
        if matches(topic) { emit(topic: topic, payload: payload, text: frames[1]) }
    }

    /// Fetches and prints, in order, every outbound message after ``lastSeq``.
    ///
    /// When the control socket does not answer, this is said on standard
    /// error and tailing goes on; further attempts wait 10 s, so a dead
    /// control socket cannot stall the subscriber behind one timeout per
    /// heartbeat.
    ///
    /// - Parameter reason: what revealed the gap, for the note on standard
    ///   error; nil for the catch-up of `--since-seq`, which is no gap.
    private mutating func recover(reason: String?) throws {
        if let retryAfter, clock.now < retryAfter {
            return
        }
        guard let first = lastSeq else { return }
        var since = first
        var fetched = 0
        defer {
            // A gap is worth knowing about; the catch-up of --since-seq is not.
            if fetched > 0, let reason {
                Console.err("note: fetched \(fetched) missed message(s) after seq \(first) from outbound.list (\(reason))")
            }
        }
        let pageSize = 1000
        while !isDone {
            let page: [JSONValue]
            do {
                page = try client.call(
                    "outbound.list", ["sinceSeq": .number(since), "limit": .number(pageSize)]
                ).arrayValue ?? []
            } catch let error as ControlClientError {
                if case .interrupted = error { throw error }
                Console.err("warning: could not fetch the messages after seq \(since): \(error)")
                retryAfter = clock.now.advanced(by: .seconds(10))
                return
            }
            for item in page {
                guard let text = item["seq"]?.numberText, let seq = Int64(text), seq > since else { continue }
                since = seq
                lastSeq = seq
                fetched += 1
                let topic = item["topic"]?.stringValue ?? ""
                if matches(topic), !isDone {
                    emit(topic: topic, payload: item["payload"] ?? .null, text: nil)
                }
            }
            if page.count < pageSize {
                return
            }
        }
    }

    /// Reports a daemon that stopped sending heartbeats, once per silence.
    mutating func checkHeartbeat() {
        let silence = lastHeartbeat.duration(to: clock.now)
        let allowed = max(heartbeatInterval * 3, .seconds(3))
        if !reportedSilence, silence > allowed {
            reportedSilence = true
            Console.err("warning: no heartbeat from \(publish) for \(ControlClient.milliseconds(silence) / 1000)s")
        }
    }

    private func matches(_ topic: String) -> Bool {
        filters.contains { topic.hasPrefix($0) }
    }

    /// Prints one message; `text` is its payload as received, if it was.
    private mutating func emit(topic: String, payload: JSONValue, text: [UInt8]?) {
        printed += 1
        if json {
            Console.out(text.map { String(decoding: $0, as: UTF8.self) } ?? payload.serialized())
            return
        }
        Console.out(Self.line(topic: topic, payload: payload))
    }

    /// A message as one line for people.
    static func line(topic: String, payload: JSONValue) -> String {
        let seq = Format.cell(payload["seq"])
        let budget = Format.cell(payload["budgetName"] ?? payload["budgetId"])
        if topic.hasPrefix("alert.") {
            return [
                seq,
                Format.cell(payload["type"]),
                Format.cell(payload["severity"]),
                budget,
                Format.percent(payload["spentPercentage"]),
                Format.cell(payload["message"]),
            ].joined(separator: " ")
        }
        if topic.hasPrefix("status.") {
            return "\(seq) \(topic) \(budget) \(Format.cell(payload["previousStatus"])) -> \(Format.cell(payload["status"])) "
                + "(spent \(Format.amount(payload["spentAmount"])) of \(Format.amount(payload["totalAmount"])))"
        }
        return "\(topic) \(payload.serialized())"
    }
}
