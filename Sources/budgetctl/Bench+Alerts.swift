import BudgetCore
import Dispatch
import Foundation
import Synchronization
import ZMQ

extension Bench {
    // MARK: alerts

    /// Alert latency under load: probe budgets of 100 USD, one 85 USD probe
    /// event each spread evenly through the background workload, and the time
    /// from sending a probe to receiving its budget's `alert.THRESHOLD_80`.
    func runAlerts(context: ZMQContext, client: ControlClient, workload: BenchWorkload, messages: [[[UInt8]]], report: inout BenchReport) throws {
        let clock = ContinuousClock()
        let probeSet = ProbeSet(runId: workload.runId, count: probes)
        try probeSet.createBudgets(client: client)
        let time = BenchWorkload.now()
        let probeMessages = (0..<probes).map { probeSet.message($0, time: time) }

        let listener = AlertListener(
            context: context, endpoint: publish, connection: connection, probeSet: probeSet
        )
        listener.start()
        defer { listener.stop() }
        // The daemon publishes a heartbeat every second by default: the first
        // one proves the subscription is in place.
        let heartbeatWait = max(global.timeoutDuration, .seconds(5))
        let heartbeatDeadline = clock.now.advanced(by: heartbeatWait)
        while !listener.subscribed {
            if let error = listener.error {
                throw error
            }
            guard clock.now < heartbeatDeadline else {
                throw CommandFailure("no heartbeat on \(publish) within \(heartbeatWait): is budgetd's outbound socket there?", status: 2)
            }
            Thread.sleep(forTimeInterval: 0.01)
        }

        let before = try IngestCounters(client.call("stats"))
        let settings = publisherSettings
        let publisher = try settings.makePublisher(context: context)
        defer { publisher.close() }
        try waitForSubscription(publisher, endpoint: ingest, clock: clock)

        var sender = FlowSender(socket: publisher, settings: settings)
        var sentAt = [ContinuousClock.Instant?](repeating: nil, count: probes)
        var nextProbe = 0
        let start = clock.now
        let pacer = Pacer(rate: rate, start: start)
        for (index, frames) in messages.enumerated() {
            pacer.wait(for: index, clock: clock)
            // Probe p goes just before background event (2p + 1) · n / 2P: evenly spread.
            while nextProbe < probes, probeSet.slot(nextProbe, among: messages.count) <= index {
                sentAt[nextProbe] = clock.now
                try sender.send(probeMessages[nextProbe])
                nextProbe += 1
            }
            try sender.send(frames)
        }
        while nextProbe < probes {
            sentAt[nextProbe] = clock.now
            try sender.send(probeMessages[nextProbe])
            nextProbe += 1
        }
        let sendEnd = clock.now

        let sent = Int64(messages.count + probes)
        let watch = try watchCounters(client: client, before: before, expected: sent, since: sendEnd, clock: clock)
        // The last alerts may still be on their way.
        let alertDeadline = clock.now.advanced(by: global.timeoutDuration)
        while listener.thresholdAlerts < probes, clock.now < alertDeadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        let heard = listener.stop()
        if let error = heard.error {
            throw error
        }

        var latencies: [Duration] = []
        var duplicates = 0
        var seen = Set<Int>()
        var others = 0
        for alert in heard.alerts {
            guard alert.type == "THRESHOLD_80" else {
                others += 1
                continue
            }
            guard seen.insert(alert.probe).inserted else {
                duplicates += 1
                continue
            }
            if let sent = sentAt[alert.probe] {
                latencies.append(sent.duration(to: alert.at))
            }
        }
        latencies.sort()

        let committed = watch.after.accepted - before.accepted
        let duplicateEvents = watch.after.duplicates - before.duplicates
        let rejected = watch.after.rejected - before.rejected
        report.add("probes", .number(probes))
        report.add("alertsReceived", .number(seen.count))
        report.add("missingAlerts", .number(probes - seen.count))
        report.add("duplicateAlerts", .number(duplicates))
        report.add("otherProbeAlerts", .number(others))
        Self.addLatencies(latencies, prefix: "", quantiles: [("P50", 0.50), ("P99", 0.99)], into: &report)
        report.add("targetRate", .number(rate))
        report.add("backgroundSent", .number(messages.count))
        report.add("backgroundEventsPerSecond", rate: messages.count, over: start.duration(to: sendEnd))
        report.add("nodrop", .bool(nodrop))
        if nodrop {
            report.add("blockedSends", .number(sender.blockedSends))
        }
        report.add("committed", .number(committed))
        report.add("lost", .number(sent - committed - duplicateEvents - rejected))
        report.add("seconds", seconds: start.duration(to: watch.lastGrowth))
        report.add("eventsPerSecond", rate: Int(committed), over: start.duration(to: watch.lastGrowth))
    }
}

/// The probe budgets of an alerts run and their events.
struct ProbeSet: Sendable {
    let runId: String
    let count: Int

    /// Budget ids `probe-RUNID-p`.
    var idPrefix: String { "probe-\(runId)-" }

    func budgetId(_ p: Int) -> String { idPrefix + String(p) }

    /// The probe index of a budget id, if it is one of this run's.
    func index(ofBudget id: String) -> Int? {
        guard id.hasPrefix(idPrefix), let p = Int(id.dropFirst(idPrefix.count)), p >= 0, p < count else { return nil }
        return p
    }

    /// The background event index before which probe `p` is sent.
    func slot(_ p: Int, among background: Int) -> Int {
        (2 * p + 1) * background / (2 * count)
    }

    /// MONTHLY over this month, 100 USD, every threshold alert on, selector probe=RUNID-p.
    func createBudgets(client: ControlClient) throws {
        let start = BenchWorkload.firstOfMonth()
        for p in 0..<count {
            let args: JSONObject = [
                "id": .string(budgetId(p)),
                "name": .string("bench probe \(runId) #\(p)"),
                "budgetType": "MONTHLY",
                "totalAmount": .number("100"),
                "currency": "USD",
                "startDate": .string(start),
                "alertThreshold80": .bool(true),
                "alertThreshold90": .bool(true),
                "alertThreshold100": .bool(true),
                "selector": ["probe": .string("\(runId)-\(p)")],
                "createdBy": "budgetctl bench",
            ]
            _ = try client.call("budget.create", args)
        }
    }

    /// Probe `p`: an explicit cost of 85 USD (85 % of its budget: exactly
    /// the 80 % threshold is crossed), routed by its selector.
    func message(_ p: Int, time: String) -> [[UInt8]] {
        let body = "{\"id\":\"\(runId)-probe-\(p)\",\"source\":\"bench-\(runId)-probe\",\"time\":\"\(time)\","
            + "\"platform\":\"BenchProbe\",\"serviceType\":\"OTHER\",\"cost\":\"85\",\"currency\":\"USD\","
            + "\"metadata\":{\"probe\":\"\(runId)-\(p)\"}}"
        return [Array("usage.bench".utf8), Array(body.utf8)]
    }
}

/// Subscribes to `alert.*` and `heartbeat` on the daemon's outbound socket,
/// on a thread of its own, and notes when each alert of a probe budget
/// arrived.
final class AlertListener: Sendable {
    struct Alert: Sendable {
        var probe: Int
        var type: String
        var at: ContinuousClock.Instant
    }

    struct Heard: Sendable {
        var alerts: [Alert] = []
        var error: ZMQError?
    }

    let context: ZMQContext
    let endpoint: String
    let connection: BenchConnection
    let probeSet: ProbeSet
    private let subscribedFlag = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let thresholdCount = Atomic<Int>(0)
    private let finished = DispatchSemaphore(value: 0)
    private let stopped = Mutex<Heard?>(nil)
    private let state = Mutex(Heard())

    init(context: ZMQContext, endpoint: String, connection: BenchConnection, probeSet: ProbeSet) {
        self.context = context
        self.endpoint = endpoint
        self.connection = connection
        self.probeSet = probeSet
    }

    /// Whether a heartbeat has arrived (so alerts will too).
    var subscribed: Bool { subscribedFlag.load(ordering: .relaxed) }

    /// How many THRESHOLD_80 alerts of probe budgets arrived so far (repeats included).
    var thresholdAlerts: Int { thresholdCount.load(ordering: .relaxed) }

    /// A failure of the receiving thread so far.
    var error: ZMQError? { state.withLock { $0.error } }

    func start() {
        Thread.detachNewThread { self.run() }
    }

    /// Stops the thread (once; later calls return the same) and returns what it heard.
    @discardableResult
    func stop() -> Heard {
        stopped.withLock { result in
            if let result { return result }
            stopping.store(true, ordering: .relaxed)
            finished.wait()
            let heard = state.withLock { $0 }
            result = heard
            return heard
        }
    }

    private func run() {
        defer { finished.signal() }
        let clock = ContinuousClock()
        do {
            let subscriber = try context.makeSocket(.sub)
            defer { subscriber.close() }
            try subscriber.setLinger(milliseconds: 0)
            try subscriber.setReceiveHighWaterMark(0)
            try connection.secure(subscriber)
            try subscriber.subscribe("alert.")
            try subscriber.subscribe("heartbeat")
            try subscriber.connect(endpoint)
            while !stopping.load(ordering: .relaxed) {
                let ready = try poll([(socket: subscriber, events: .readable)], timeoutMilliseconds: 20)
                guard ready[0].contains(.readable) else { continue }
                while let frames = try subscriber.receive(dontWait: true) {
                    let at = clock.now
                    guard frames.count == 2 else { continue }
                    if frames[0].starts(with: Array("heartbeat".utf8)) {
                        subscribedFlag.store(true, ordering: .relaxed)
                        continue
                    }
                    // Only an alert of one of this run's probe budgets counts.
                    guard let payload = try? JSON.parse(frames[1]),
                          let budgetId = payload["budgetId"]?.stringValue,
                          let probe = probeSet.index(ofBudget: budgetId),
                          let type = payload["type"]?.stringValue
                    else { continue }
                    state.withLock { $0.alerts.append(Alert(probe: probe, type: type, at: at)) }
                    if type == "THRESHOLD_80" {
                        thresholdCount.add(1, ordering: .relaxed)
                    }
                }
            }
        } catch let error as ZMQError {
            state.withLock { $0.error = error }
        } catch {
            state.withLock { $0.error = ZMQError(code: .invalidArgument, operation: "alert listener: \(error)") }
        }
    }
}
