import BudgetCore
import Dispatch
import Foundation
import Synchronization
import ZMQ

/// What a socket made on another thread needs to reach the daemon: the
/// control endpoint, the reply timeout and the CURVE options (a plain value,
/// so it can cross to that thread).
struct BenchConnection: Sendable {
    var control: String
    var timeout: Duration
    var timeoutText: String
    var curveKey: String?
    var curveServerKey: String?

    /// Makes `socket` a CURVE client of the daemon when a key is given; call before connect.
    func secure(_ socket: ZMQSocket) throws {
        try ClientSecurity.secure(socket, key: curveKey, serverKey: curveServerKey)
    }

    /// A control client for the calling thread.
    func makeClient(context: ZMQContext) throws -> ControlClient {
        try ControlClient(context: context, endpoint: control, timeout: timeout, timeoutText: timeoutText, secure: secure)
    }
}

/// How the bench publishes to the daemon's fire-and-forget ingest.
struct PublisherSettings: Sendable {
    var ingest: String
    /// `ZMQ_XPUB_NODROP` with a finite queue, instead of an unlimited one.
    var nodrop: Bool
    var sendHwm: Int
    var connection: BenchConnection

    /// How long a --nodrop send may wait for room before the run fails.
    var stallLimit: Duration {
        max(connection.timeout, .seconds(30))
    }

    /// An XPUB connected to --ingest: with an unlimited queue, or with
    /// --nodrop a --send-hwm queue that refuses instead of dropping. An XPUB
    /// is a PUB that also hands us the subscriptions it gets, so we know when
    /// the daemon's SUB has subscribed instead of sleeping on it.
    func makePublisher(context: ZMQContext) throws -> ZMQSocket {
        let publisher = try context.makeSocket(.xpub)
        do {
            try publisher.setLinger(milliseconds: 0)
            if nodrop {
                try publisher.setSendHighWaterMark(Int32(sendHwm))
                try publisher.setXPubNoDrop(true)
                // A blocking send waits for room (libzmq wakes it when the
                // queue drains); the timeout only lets the loop look around.
                try publisher.setSendTimeout(milliseconds: 200)
            } else {
                // No limit: a PUB drops what does not fit, and this bench must not.
                try publisher.setSendHighWaterMark(0)
            }
            try connection.secure(publisher)
            try publisher.connect(ingest)
        } catch {
            publisher.close()
            throw error
        }
        return publisher
    }

    /// Waits until the peer's SUB has subscribed to this XPUB, so the first
    /// messages are not dropped for want of a subscriber.
    static func waitForSubscription(_ publisher: ZMQSocket, endpoint: String, timeout: Duration, timeoutText: String) throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
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
        throw CommandFailure("no subscriber on \(endpoint) within \(timeoutText): is budgetd's ingest there?", status: 2)
    }
}

/// Sends on a publisher; with --nodrop, a full queue makes it wait for room
/// (flow control) instead of dropping, and the waits are counted.
struct FlowSender {
    let socket: ZMQSocket
    let nodrop: Bool
    let stallLimit: Duration
    /// How many sends found the queue full.
    private(set) var blockedSends = 0
    /// How long those sends waited in all.
    private(set) var blockedTime: Duration = .zero
    private let clock = ContinuousClock()

    init(socket: ZMQSocket, settings: PublisherSettings) {
        self.socket = socket
        self.nodrop = settings.nodrop
        self.stallLimit = settings.stallLimit
    }

    mutating func send(_ frames: [[UInt8]]) throws {
        guard nodrop else {
            try socket.send(frames)
            return
        }
        if try socket.send(frames, dontWait: true) {
            return
        }
        blockedSends += 1
        let since = clock.now
        // XPUB always reports POLLOUT (libzmq's dist_t::has_out), so
        // zmq_poll cannot tell when room frees up; a blocking send can: it
        // sleeps until the queue's reader hands back credit (or 200 ms pass).
        while try !socket.send(frames) {
            if StopSignal.requested {
                throw ControlClientError.interrupted
            }
            if since.duration(to: clock.now) > stallLimit {
                throw CommandFailure("the daemon took no event for \(stallLimit) (--nodrop): is it stuck?", status: 2)
            }
        }
        blockedTime += since.duration(to: clock.now)
    }
}

/// One `stats.process` sample.
struct ProcessSample: Sendable {
    var at: ContinuousClock.Instant
    var rssBytes: Int64?
    var databaseBytes: Int64?
    var walBytes: Int64?

    init(at: ContinuousClock.Instant, stats: JSONValue) {
        self.at = at
        let process = stats["process"]
        rssBytes = process?["rssBytes"]?.numberText.flatMap { Int64($0) }
        databaseBytes = process?["databaseBytes"]?.numberText.flatMap { Int64($0) }
        walBytes = process?["walBytes"]?.numberText.flatMap { Int64($0) }
    }
}

/// Samples the daemon's `stats.process` every `interval` from a control
/// connection of its own, on a thread of its own, so neither the sender
/// nor the receiver of a run waits for it.
final class ResourceSampler: Sendable {
    let context: ZMQContext
    let connection: BenchConnection
    let interval: Duration
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let state = Mutex<(samples: [ProcessSample], failures: Int)>(([], 0))

    init(context: ZMQContext, connection: BenchConnection, interval: Duration) {
        self.context = context
        self.connection = connection
        self.interval = interval
    }

    func start() {
        Thread.detachNewThread { self.run() }
    }

    /// Stops the thread and returns the samples, oldest first, and how many requests failed.
    @discardableResult
    func stop() -> (samples: [ProcessSample], failures: Int) {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        return state.withLock { $0 }
    }

    private func run() {
        defer { finished.signal() }
        let clock = ContinuousClock()
        guard let client = try? connection.makeClient(context: context) else {
            state.withLock { $0.failures += 1 }
            return
        }
        defer { client.close() }
        var next = clock.now
        while !stopping.load(ordering: .relaxed) {
            do {
                let stats = try client.call("stats")
                let sample = ProcessSample(at: clock.now, stats: stats)
                state.withLock { $0.samples.append(sample) }
            } catch {
                state.withLock { $0.failures += 1 }
            }
            next = next.advanced(by: interval)
            // Sleep in short slices, so stop() does not wait a whole interval.
            while !stopping.load(ordering: .relaxed), clock.now < next {
                Thread.sleep(forTimeInterval: min(0.01, max(0, BenchReport.seconds(clock.now.duration(to: next)))))
            }
        }
    }

    /// The resource lines of a report: memory from the samples and from the
    /// `stats` replies before and after the run, database growth per event.
    static func report(
        before: JSONValue, after: JSONValue, sampled: (samples: [ProcessSample], failures: Int), committed: Int64,
        into report: inout BenchReport
    ) {
        let start = ProcessSample(at: .now, stats: before)
        let end = ProcessSample(at: .now, stats: after)
        guard let peak = after["process"]?["peakRssBytes"]?.numberText.flatMap({ Int64($0) }),
              let rssStart = start.rssBytes, let rssEnd = end.rssBytes
        else {
            report.add("process", .string("not in the daemon's stats reply"))
            return
        }
        report.add("peakRssBytes", .number(peak))
        report.add("rssStartBytes", .number(rssStart))
        report.add("rssEndBytes", .number(rssEnd))
        // Steady state: the median over the second half of the samples.
        let secondHalf = sampled.samples.suffix(sampled.samples.count / 2).compactMap(\.rssBytes).sorted()
        report.add("rssSteadyBytes", secondHalf.isEmpty ? .null : .number(secondHalf[secondHalf.count / 2]))
        report.add("rssSamples", .number(sampled.samples.count))
        if sampled.failures > 0 {
            report.add("rssSampleFailures", .number(sampled.failures))
        }
        let bytesBefore = (start.databaseBytes ?? 0) + (start.walBytes ?? 0)
        let bytesAfter = (end.databaseBytes ?? 0) + (end.walBytes ?? 0)
        report.add("databaseBytes", .number(end.databaseBytes ?? 0))
        report.add("walBytes", .number(end.walBytes ?? 0))
        report.add(
            "databaseBytesPerMillionEvents",
            committed > 0 ? .number((bytesAfter - bytesBefore) * 1_000_000 / committed) : .null
        )
    }
}

extension Bench {
    /// What a socket on another thread needs to reach the daemon.
    var connection: BenchConnection {
        BenchConnection(
            control: global.control, timeout: global.timeoutDuration, timeoutText: global.timeoutText,
            curveKey: global.curveKey, curveServerKey: global.curveServerKey
        )
    }

    /// How this run publishes to --ingest.
    var publisherSettings: PublisherSettings {
        PublisherSettings(ingest: ingest, nodrop: nodrop, sendHwm: sendHwm, connection: connection)
    }

    /// Milliseconds with microsecond precision, for latencies.
    static func milliseconds(_ duration: Duration) -> String {
        BenchReport.fixed(BenchReport.seconds(duration) * 1000, decimals: 3)
    }

    /// Adds `<prefix>P50LatencyMs` … for the given quantiles (`p50LatencyMs`
    /// … without a prefix) and the maximum.
    static func addLatencies(_ sorted: [Duration], prefix: String, quantiles: [(String, Double)], into report: inout BenchReport) {
        func key(_ name: String) -> String {
            prefix.isEmpty ? name.prefix(1).lowercased() + name.dropFirst() + "LatencyMs" : prefix + name + "LatencyMs"
        }
        for (name, q) in quantiles {
            report.add(key(name), .number(percentileMilliseconds(sorted, q)))
        }
        report.add(key("Max"), .number(sorted.last.map(milliseconds) ?? "0"))
    }
}
