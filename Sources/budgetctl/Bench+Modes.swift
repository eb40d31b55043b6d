import BudgetCore
import Dispatch
import Foundation
import Synchronization
import ZMQ

extension Bench {
    // MARK: pub

    /// Fire-and-forget: send everything over PUB, then watch `stats` until the
    /// daemon has dealt with it all or stops making progress.
    func runPub(context: ZMQContext, client: ControlClient, messages: [[[UInt8]]], report: inout BenchReport) throws {
        let clock = ContinuousClock()
        let before = try IngestCounters(client.call("stats"))

        // An XPUB is a PUB that also hands us the subscriptions it gets: we
        // know when the daemon's SUB has subscribed instead of sleeping on it.
        let publisher = try context.makeSocket(.xpub)
        defer { publisher.close() }
        try publisher.setLinger(milliseconds: 0)
        // No limit: a PUB drops what does not fit, and this bench must not.
        try publisher.setSendHighWaterMark(0)
        try global.secure(publisher)
        try publisher.connect(ingest)
        try waitForSubscription(publisher, endpoint: ingest, clock: clock)

        let start = clock.now
        let pacer = Pacer(rate: rate, start: start)
        for (index, frames) in messages.enumerated() {
            pacer.wait(for: index, clock: clock)
            try publisher.send(frames)
        }
        let sendEnd = clock.now

        // Watch the daemon's counters. The last observed growth marks when the
        // last commit happened, to within one polling interval (50 ms).
        let sent = Int64(messages.count)
        var after = before
        var lastGrowth = sendEnd
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
            if progress >= sent || lastGrowth.duration(to: observed) >= .seconds(2) {
                break
            }
        }

        let committed = after.accepted - before.accepted
        let duplicates = after.duplicates - before.duplicates
        let rejected = after.rejected - before.rejected
        report.add("sent", .number(sent))
        report.add("senderSeconds", seconds: start.duration(to: sendEnd))
        report.add("senderEventsPerSecond", rate: messages.count, over: start.duration(to: sendEnd))
        report.add("committed", .number(committed))
        report.add("duplicates", .number(duplicates))
        report.add("rejected", .number(rejected))
        report.add("lost", .number(sent - committed - duplicates - rejected))
        report.add("seconds", seconds: start.duration(to: lastGrowth))
        report.add("eventsPerSecond", rate: Int(committed), over: start.duration(to: lastGrowth))
    }

    // MARK: ack

    /// Acknowledged: a DEALER with at most `--window` events awaiting replies.
    func runAck(context: ZMQContext, workload: BenchWorkload, messages: [[[UInt8]]], report: inout BenchReport) throws {
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
                    let reply = frames.last.flatMap { try? JSON.parse($0) }
                    let status = reply?["status"]?.stringValue ?? "UNREADABLE"
                    statuses[status, default: 0] += 1
                    if status == "REJECTED" {
                        reasons[reply?["reason"]?.stringValue ?? "(no reason)", default: 0] += 1
                    }
                    if let id = reply?["id"]?.stringValue, let index = workload.index(ofId: id),
                       !acknowledged[index], let sent = sentAt[index]
                    {
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
    }

    /// The `q` quantile (nearest rank) of sorted durations, in milliseconds.
    static func percentileMilliseconds(_ sorted: [Duration], _ q: Double) -> String {
        guard !sorted.isEmpty else { return "0" }
        let rank = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
        return BenchReport.fixed(BenchReport.seconds(sorted[rank]) * 1000, decimals: 3)
    }

    // MARK: raw

    /// ZeroMQ alone: a PUB bound on loopback and a SUB in a second thread.
    func runRaw(context: ZMQContext, messages: [[[UInt8]]], report: inout BenchReport) throws {
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
        report.add("endpoint", .string(endpoint))
        report.add("sent", .number(messages.count))
        report.add("senderSeconds", seconds: start.duration(to: sendEnd))
        report.add("received", .number(outcome.received))
        report.add("lost", .number(messages.count - outcome.received))
        report.add("seconds", seconds: start.duration(to: end))
        report.add("messagesPerSecond", rate: outcome.received, over: start.duration(to: end))
        let bytes = messages.reduce(0) { $0 + $1[0].count + $1[1].count }
        let megabytes = Double(bytes) * Double(outcome.received) / Double(messages.count) / 1_000_000
        let seconds = BenchReport.seconds(start.duration(to: end))
        report.add("megabytesPerSecond", .number(BenchReport.fixed(seconds > 0 ? megabytes / seconds : 0, decimals: 1)))
    }

    // MARK: shared

    /// Waits until the peer's SUB has subscribed to this XPUB, so the first
    /// messages are not dropped for want of a subscriber.
    func waitForSubscription(_ publisher: ZMQSocket, endpoint: String, clock: ContinuousClock) throws {
        let deadline = clock.now.advanced(by: global.timeoutDuration)
        while clock.now < deadline {
            let ready = try poll([(socket: publisher, events: .readable)], timeoutMilliseconds: 50)
            guard ready[0].contains(.readable) else { continue }
            // A subscription message is 0x01 followed by the prefix.
            while let frames = try publisher.receive(dontWait: true) {
                if frames.first?.first == 1 {
                    return
                }
            }
        }
        throw CommandFailure("no subscriber on \(endpoint) within \(global.timeoutText): is budgetd's ingest there?", status: 2)
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
