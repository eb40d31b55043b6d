import BudgetCore
import Dispatch
import Foundation
import Synchronization
import ZMQ

extension Bench {
    // MARK: control

    /// Control latency: --warmup untimed, then --requests timed REQ round
    /// trips alternating `budget.get` and `spend.check` on one budget, one
    /// after the other; with --rate, the workload is published meanwhile
    /// from another thread.
    func runControl(context: ZMQContext, client: ControlClient, budgetId: String, messages: [[[UInt8]]], report: inout BenchReport) throws {
        let clock = ContinuousClock()
        // Fails with NOT_FOUND before anything is timed if the budget is not there.
        _ = try client.call("budget.get", ["id": .string(budgetId)])
        let getArgs: JSONObject = ["id": .string(budgetId)]
        let checkArgs: JSONObject = [
            "budgetId": .string(budgetId), "platform": "OpenAI", "serviceType": "API", "amount": .number("0.01"),
        ]

        var background: BackgroundPublisher?
        if rate > 0 {
            let publisher = BackgroundPublisher(context: context, settings: publisherSettings, rate: rate, messages: messages)
            try publisher.start()
            background = publisher
        }
        // Stops (and waits for) the background thread on every way out.
        var backgroundOutcome: BackgroundPublisher.Outcome?
        defer { if backgroundOutcome == nil { background?.stop() } }

        var denied = 0
        func request(_ index: Int) throws -> Duration {
            let isGet = index % 2 == 0
            let began = clock.now
            let result = try client.call(isGet ? "budget.get" : "spend.check", isGet ? getArgs : checkArgs)
            let took = began.duration(to: clock.now)
            if !isGet, result["allowed"]?.boolValue != true {
                denied += 1
            }
            return took
        }

        for index in 0..<warmup {
            _ = try request(index)
        }
        denied = 0
        var gets: [Duration] = []
        var checks: [Duration] = []
        gets.reserveCapacity(requests / 2 + 1)
        checks.reserveCapacity(requests / 2 + 1)
        let start = clock.now
        for index in 0..<requests {
            let took = try request(index)
            if index % 2 == 0 {
                gets.append(took)
            } else {
                checks.append(took)
            }
        }
        let elapsed = start.duration(to: clock.now)
        backgroundOutcome = background?.stop()
        gets.sort()
        checks.sort()
        let stats = try client.call("stats")

        report.add("budgetId", .string(budgetId))
        report.add("warmup", .number(warmup))
        report.add("requests", .number(requests))
        report.add("seconds", seconds: elapsed)
        report.add("requestsPerSecond", rate: requests, over: elapsed)
        let quantiles = [("P50", 0.50), ("P90", 0.90), ("P99", 0.99)]
        report.add("budgetGetRequests", .number(gets.count))
        Self.addLatencies(gets, prefix: "budgetGet", quantiles: quantiles, into: &report)
        report.add("spendCheckRequests", .number(checks.count))
        Self.addLatencies(checks, prefix: "spendCheck", quantiles: quantiles, into: &report)
        report.add("spendCheckDenied", .number(denied))
        // `stats` has no stored-cost count; `accepted` since the daemon
        // started is the number of events stored (each one cost) by it.
        report.add("daemonAccepted", stats["accepted"] ?? .null)
        if let outcome = backgroundOutcome {
            if let error = outcome.error {
                throw error
            }
            report.add("targetRate", .number(rate))
            report.add("backgroundSent", .number(outcome.sent))
            report.add("backgroundEventsPerSecond", rate: outcome.sent, over: outcome.time)
        }
    }
}

/// Publishes the workload to --ingest at a fixed rate from a thread of its
/// own (the socket is made, used and closed there), until told to stop or
/// out of messages.
final class BackgroundPublisher: Sendable {
    struct Outcome: Sendable {
        var sent = 0
        var time: Duration = .zero
        var error: (any Error)?
    }

    let context: ZMQContext
    let settings: PublisherSettings
    let rate: Int
    let messages: [[[UInt8]]]
    private let stopping = Atomic<Bool>(false)
    private let subscribed = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let state = Mutex(Outcome())

    init(context: ZMQContext, settings: PublisherSettings, rate: Int, messages: [[[UInt8]]]) {
        self.context = context
        self.settings = settings
        self.rate = rate
        self.messages = messages
    }

    /// Starts the thread and returns once the daemon has subscribed (or the thread failed).
    func start() throws {
        Thread.detachNewThread { self.run() }
        subscribed.wait()
        if let error = state.withLock({ $0.error }) {
            finished.wait()
            throw error
        }
    }

    /// Stops the thread and returns what it did.
    @discardableResult
    func stop() -> Outcome {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        return state.withLock { $0 }
    }

    private func run() {
        defer { finished.signal() }
        var signalled = false
        defer { if !signalled { subscribed.signal() } }
        let clock = ContinuousClock()
        do {
            let publisher = try settings.makePublisher(context: context)
            defer { publisher.close() }
            try PublisherSettings.waitForSubscription(
                publisher, endpoint: settings.ingest, timeout: settings.connection.timeout, timeoutText: settings.connection.timeoutText
            )
            signalled = true
            subscribed.signal()
            var sender = FlowSender(socket: publisher, settings: settings)
            let start = clock.now
            let pacer = Pacer(rate: rate, start: start)
            var sent = 0
            for frames in messages {
                if stopping.load(ordering: .relaxed) { break }
                // Short sleeps, so a stop is noticed at any rate.
                while !pacer.isDue(sent, clock: clock), !stopping.load(ordering: .relaxed) {
                    Thread.sleep(forTimeInterval: 0.001)
                }
                if stopping.load(ordering: .relaxed) { break }
                try sender.send(frames)
                sent += 1
            }
            let time = start.duration(to: clock.now)
            state.withLock { $0.sent = sent; $0.time = time }
        } catch {
            state.withLock { $0.error = error }
        }
    }
}
