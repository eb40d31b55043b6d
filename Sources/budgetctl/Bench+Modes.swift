import BudgetCore
import Dispatch
import Foundation
import Synchronization
import ZMQ

extension Bench {
    // MARK: pub

    /// Fire-and-forget: send everything over PUB, then watch `stats` until the
    /// daemon has dealt with it all or stops making progress. Returns how many
    /// events the daemon committed.
    func runPub(context: ZMQContext, client: ControlClient, before stats: JSONValue, messages: [[[UInt8]]], report: inout BenchReport) throws -> Int64 {
        let clock = ContinuousClock()
        let before = try IngestCounters(stats)

        let settings = publisherSettings
        let publisher = try settings.makePublisher(context: context)
        defer { publisher.close() }
        try waitForSubscription(publisher, endpoint: ingest, clock: clock)

        var sender = FlowSender(socket: publisher, settings: settings)
        let start = clock.now
        let pacer = Pacer(rate: rate, start: start)
        for (index, frames) in messages.enumerated() {
            pacer.wait(for: index, clock: clock)
            try sender.send(frames)
        }
        let sendEnd = clock.now

        let sent = Int64(messages.count)
        let watch = try watchCounters(client: client, before: before, expected: sent, since: sendEnd, clock: clock)
        let after = watch.after
        let committed = after.accepted - before.accepted
        let duplicates = after.duplicates - before.duplicates
        let rejected = after.rejected - before.rejected
        report.add("sent", .number(sent))
        report.add("nodrop", .bool(nodrop))
        if nodrop {
            report.add("sendHwm", .number(sendHwm))
            report.add("blockedSends", .number(sender.blockedSends))
            report.add("blockedSeconds", seconds: sender.blockedTime)
        }
        report.add("senderSeconds", seconds: start.duration(to: sendEnd))
        report.add("senderEventsPerSecond", rate: messages.count, over: start.duration(to: sendEnd))
        report.add("committed", .number(committed))
        report.add("duplicates", .number(duplicates))
        report.add("rejected", .number(rejected))
        report.add("lost", .number(sent - committed - duplicates - rejected))
        report.add("seconds", seconds: start.duration(to: watch.lastGrowth))
        report.add("eventsPerSecond", rate: Int(committed), over: start.duration(to: watch.lastGrowth))
        return committed
    }

    /// Polls `stats` every 50 ms until the daemon has handled `expected`
    /// more events than `before`, or handled nothing new for 2 s. The last
    /// observed growth marks when the last commit happened, to within one
    /// polling interval.
    func watchCounters(
        client: ControlClient, before: IngestCounters, expected: Int64, since: ContinuousClock.Instant, clock: ContinuousClock
    ) throws -> (after: IngestCounters, lastGrowth: ContinuousClock.Instant) {
        var after = before
        var lastGrowth = since
        var lastProgress: Int64 = 0
        while true {
            Thread.sleep(forTimeInterval: 0.05)
            let current = try IngestCounters(client.call("stats"))
            let observed = clock.now
            after = current
            let progress = current.handled - before.handled
            if progress > lastProgress {
                lastProgress = progress
                lastGrowth = observed
            }
            if progress >= expected || lastGrowth.duration(to: observed) >= .seconds(2) {
                return (after, lastGrowth)
            }
        }
    }

    // MARK: ack

    /// Acknowledged: a DEALER with at most `--window` events awaiting
    /// replies. Returns how many were ACCEPTED.
    func runAck(context: ZMQContext, workload: BenchWorkload, messages: [[[UInt8]]], report: inout BenchReport) throws -> Int64 {
        let clock = ContinuousClock()
        let dealer = try context.makeSocket(.dealer)
        defer { dealer.close() }
        try dealer.setLinger(milliseconds: 0)
        try dealer.setSendHighWaterMark(0)
        try dealer.setReceiveHighWaterMark(0)
        try global.secure(dealer)
        try dealer.connect(ingestAck)

        let total = messages.count
        var sentAt = [ContinuousClock.Instant?](repeating: nil, count: total)
        var acknowledged = [Bool](repeating: false, count: total)
        var latencies: [Duration] = []
        latencies.reserveCapacity(total)
        var statuses: [String: Int] = [:]
        var reasons: [String: Int] = [:]
        var unmatched = 0
        var next = 0
        var outstanding = 0
        // ACCEPTED replies read by `quickAck` (added to `statuses` at the end).
        var accepted = 0

        let start = clock.now
        let pacer = Pacer(rate: rate, start: start)
        var lastReply = start
        var lastActivity = start
        var gaveUp = false
        while true {
            while next < total, outstanding < window, pacer.isDue(next, clock: clock) {
                guard try dealer.send(messages[next], dontWait: true) else { break }
                let now = clock.now
                sentAt[next] = now
                lastActivity = now
                next += 1
                outstanding += 1
            }
            if next == total, outstanding == 0 {
                break
            }
            let ready = try poll([(socket: dealer, events: .readable)], timeoutMilliseconds: rate > 0 ? 1 : 100)
            if ready[0].contains(.readable) {
                while let frames = try dealer.receive(dontWait: true) {
                    let now = clock.now
                    lastReply = now
                    lastActivity = now
                    // An ACCEPTED reply in the daemon's own shape is read without a JSON tree
                    // (the generator shares the cores with the daemon); anything else is parsed.
                    let index: Int?
                    if let body = frames.last, let quick = Self.quickAck(body), quick.accepted {
                        accepted += 1
                        index = workload.index(ofIdBytes: quick.id)
                    } else {
                        let reply = frames.last.flatMap { try? JSON.parse($0) }
                        let status = reply?["status"]?.stringValue ?? "UNREADABLE"
                        statuses[status, default: 0] += 1
                        if status == "REJECTED" {
                            reasons[reply?["reason"]?.stringValue ?? "(no reason)", default: 0] += 1
                        }
                        index = reply?["id"]?.stringValue.flatMap { workload.index(ofId: $0) }
                    }
                    if let index, !acknowledged[index], let sent = sentAt[index] {
                        acknowledged[index] = true
                        outstanding -= 1
                        latencies.append(sent.duration(to: now))
                    } else {
                        unmatched += 1
                    }
                }
            }
            if outstanding > 0, lastActivity.duration(to: clock.now) > global.timeoutDuration {
                gaveUp = true
                break
            }
        }

        latencies.sort()
        let acked = latencies.count
        if accepted > 0 { statuses["ACCEPTED", default: 0] += accepted }
        if gaveUp, statuses.isEmpty {
            // Not a measurement: nobody is there.
            throw ControlClientError.noReply(endpoint: ingestAck, timeout: global.timeoutText)
        }
        report.add("sent", .number(next))
        report.add("window", .number(window))
        report.add("acknowledged", .number(acked))
        report.add("accepted", .number(statuses["ACCEPTED", default: 0]))
        report.add("duplicates", .number(statuses["DUPLICATE", default: 0]))
        report.add("rejected", .number(statuses["REJECTED", default: 0]))
        // The commonest reasons, so a run of conflicts (a reused --run-id) explains itself.
        for (reason, n) in reasons.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }).prefix(3) {
            report.add("rejected \(reason)", .number(n))
        }
        for (status, n) in statuses.sorted(by: { $0.key < $1.key }) where !["ACCEPTED", "DUPLICATE", "REJECTED"].contains(status) {
            report.add("status \(status)", .number(n))
        }
        report.add("unmatchedReplies", .number(unmatched))
        report.add("missingReplies", .number(next - acked))
        if gaveUp {
            report.add("note", .string("stopped after \(global.timeoutText) without a reply"))
        }
        report.add("seconds", seconds: start.duration(to: lastReply))
        report.add("eventsPerSecond", rate: acked, over: start.duration(to: lastReply))
        report.add("p50LatencyMs", .number(Self.percentileMilliseconds(latencies, 0.50)))
        report.add("p99LatencyMs", .number(Self.percentileMilliseconds(latencies, 0.99)))
        return Int64(statuses["ACCEPTED", default: 0])
    }

    /// The id of an acknowledgement as the daemon writes it (`IngestAck.bytes`:
    /// `{"id":"…","source":…,"status":"…",…`) when neither the id nor the source has an escape,
    /// and whether its status is ACCEPTED; nil for any other shape (the caller parses it).
    static func quickAck(_ body: [UInt8]) -> (id: ArraySlice<UInt8>, accepted: Bool)? {
        let (head, source, status, accepted) = (quickAckHead, quickAckSource, quickAckStatus, quickAckAccepted)
        guard body.starts(with: head) else { return nil }
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        // The end of a string with no escape that starts at `from`.
        func stringEnd(_ from: Int) -> Int? {
            guard let end = body[from...].firstIndex(of: quote), !body[from..<end].contains(backslash) else { return nil }
            return end
        }
        // Each closing quote is followed by the next member's name and opening quote.
        guard let idEnd = stringEnd(head.count), body[(idEnd + 1)...].starts(with: source),
              let sourceEnd = stringEnd(idEnd + 1 + source.count), body[(sourceEnd + 1)...].starts(with: status) else { return nil }
        return (body[head.count..<idEnd], body[(sourceEnd + 1 + status.count)...].starts(with: accepted))
    }

    private static let quickAckHead = Array(#"{"id":""#.utf8)
    private static let quickAckSource = Array(#","source":""#.utf8)
    private static let quickAckStatus = Array(#","status":""#.utf8)
    private static let quickAckAccepted = Array(#"ACCEPTED""#.utf8)

    /// The `q` quantile (nearest rank) of sorted durations, in milliseconds.
    static func percentileMilliseconds(_ sorted: [Duration], _ q: Double) -> String {
        guard !sorted.isEmpty else { return "0" }
        let rank = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
        return BenchReport.fixed(BenchReport.seconds(sorted[rank]) * 1000, decimals: 3)
    }

    // MARK: raw

    /// ZeroMQ alone: a PUB bound on loopback and a SUB in a second thread.
    func runRaw(context: ZMQContext, messages: [[[UInt8]]], report: inout BenchReport) throws {
        let raw = try measureRaw(context: context, messages: messages)
        report.add("endpoint", .string(raw.endpoint))
        report.add("sent", .number(messages.count))
        report.add("senderSeconds", seconds: raw.senderTime)
        report.add("received", .number(raw.received))
        report.add("lost", .number(raw.lost))
        report.add("seconds", seconds: raw.time)
        report.add("messagesPerSecond", .number(raw.messagesPerSecond))
        let bytes = messages.reduce(0) { $0 + $1[0].count + $1[1].count }
        let megabytes = Double(bytes) * Double(raw.received) / Double(messages.count) / 1_000_000
        let seconds = BenchReport.seconds(raw.time)
        report.add("megabytesPerSecond", .number(BenchReport.fixed(seconds > 0 ? megabytes / seconds : 0, decimals: 1)))
    }

    /// What ``measureRaw(context:messages:)`` measured.
    struct RawMeasurement {
        var endpoint: String
        var received: Int
        var lost: Int
        var senderTime: Duration
        /// First send to last receipt.
        var time: Duration
        var messagesPerSecond: Int
    }

    /// Sends `messages` from a PUB to a SUB in this process (the SUB on its
    /// own thread) over loopback TCP, both with unlimited queues.
    func measureRaw(context: ZMQContext, messages: [[[UInt8]]]) throws -> RawMeasurement {
        let clock = ContinuousClock()
        let publisher = try context.makeSocket(.xpub)
        defer { publisher.close() }
        try publisher.setLinger(milliseconds: 0)
        try publisher.setSendHighWaterMark(0)
        try publisher.bind("tcp://127.0.0.1:*")
        let endpoint = try publisher.lastEndpoint

        let receiver = RawReceiver(context: context, endpoint: endpoint, expected: messages.count)
        let thread = Thread { receiver.run() }
        thread.start()
        do {
            try waitForSubscription(publisher, endpoint: endpoint, clock: clock)
        } catch {
            // The receiver gives up on its own after its idle time.
            receiver.finished.wait()
            throw error
        }

        let start = clock.now
        let pacer = Pacer(rate: rate, start: start)
        for (index, frames) in messages.enumerated() {
            pacer.wait(for: index, clock: clock)
            try publisher.send(frames)
        }
        let sendEnd = clock.now
        receiver.finished.wait()
        let outcome = receiver.outcome
        if let error = outcome.error {
            throw error
        }
        let end = outcome.lastReceived ?? sendEnd
        let seconds = BenchReport.seconds(start.duration(to: end))
        return RawMeasurement(
            endpoint: endpoint, received: outcome.received, lost: messages.count - outcome.received,
            senderTime: start.duration(to: sendEnd), time: start.duration(to: end),
            messagesPerSecond: seconds > 0 ? Int((Double(outcome.received) / seconds).rounded()) : 0
        )
    }

    // MARK: shared

    /// Waits until the peer's SUB has subscribed to this XPUB, so the first
    /// messages are not dropped for want of a subscriber.
    func waitForSubscription(_ publisher: ZMQSocket, endpoint: String, clock: ContinuousClock) throws {
        try PublisherSettings.waitForSubscription(publisher, endpoint: endpoint, timeout: global.timeoutDuration, timeoutText: global.timeoutText)
    }
}

/// The ingest counters of a `stats` reply.
struct IngestCounters {
    var accepted: Int64
    var duplicates: Int64
    var rejected: Int64

    /// Everything the daemon has dealt with.
    var handled: Int64 { accepted + duplicates + rejected }

    init(_ stats: JSONValue) throws {
        func counter(_ key: String) throws -> Int64 {
            guard let text = stats[key]?.numberText, let value = Int64(text) else {
                throw CommandFailure("the stats reply has no integer \(key)", status: 2)
            }
            return value
        }
        accepted = try counter("accepted")
        duplicates = try counter("duplicates")
        rejected = try counter("rejected")
    }
}

/// The SUB side of raw mode, run on its own thread: the socket is made,
/// used and closed there (libzmq sockets belong to one thread).
final class RawReceiver: Sendable {
    /// What the receiver saw.
    struct Outcome: Sendable {
        var received = 0
        var lastReceived: ContinuousClock.Instant?
        var error: ZMQError?
    }

    let context: ZMQContext
    let endpoint: String
    let expected: Int
    /// Signalled once when ``run()`` is over.
    let finished = DispatchSemaphore(value: 0)
    private let state = Mutex(Outcome())

    init(context: ZMQContext, endpoint: String, expected: Int) {
        self.context = context
        self.endpoint = endpoint
        self.expected = expected
    }

    /// The result; read it after ``finished`` was signalled.
    var outcome: Outcome {
        state.withLock { $0 }
    }

    /// Receives until `expected` messages arrived or none came for 5 s.
    func run() {
        defer { finished.signal() }
        let clock = ContinuousClock()
        var outcome = Outcome()
        do {
            let subscriber = try context.makeSocket(.sub)
            defer { subscriber.close() }
            try subscriber.setLinger(milliseconds: 0)
            try subscriber.setReceiveHighWaterMark(0)
            try subscriber.setReceiveTimeout(milliseconds: 200)
            try subscriber.subscribe("usage")
            try subscriber.connect(endpoint)
            var idleSince = clock.now
            while outcome.received < expected {
                if try subscriber.receive() != nil {
                    outcome.received += 1
                    idleSince = clock.now
                    outcome.lastReceived = idleSince
                } else if idleSince.duration(to: clock.now) > .seconds(5) {
                    break
                }
            }
        } catch let error as ZMQError {
            outcome.error = error
        } catch {
            outcome.error = ZMQError(code: .invalidArgument, operation: "raw receiver: \(error)")
        }
        state.withLock { $0 = outcome }
    }
}
