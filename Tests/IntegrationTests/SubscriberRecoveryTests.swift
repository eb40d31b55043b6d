import BudgetCore
import Foundation
import Testing
import ZMQ

/// Subscribers lose nothing for good (issue 6, item 9; docs/reliability.md): what a subscriber
/// missed, because it was away or past its high-water mark, it recovers by `seq` with
/// `outbound.list`, as `budgetctl alerts tail` does.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct SubscriberRecoveryTests {
    /// What one subscriber knows: the seqs it received live, the last seq the daemon announced
    /// (in a message or a heartbeat), and what it fetched to fill the gaps.
    final class SeqTracker {
        var live: [Int] = []
        var recovered: [Int] = []
        var announced = 0

        /// Reads until a heartbeat announces `lastSeq` (published after every message up to
        /// it, on the same pipe: everything before it that was not dropped has been read).
        func read(_ socket: ZMQSocket, until lastSeq: Int, timeoutMs: Int = 20_000) throws {
            let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
            while Date() < deadline {
                guard try poll([(socket, .readable)], timeoutMilliseconds: 100)[0].contains(.readable) else { continue }
                while let m = try socket.receive(dontWait: true) {
                    guard m.count == 2, let payload = try JSON.parse(m[1]).objectValue else { continue }
                    let topic = String(decoding: m[0], as: UTF8.self)
                    if topic == "heartbeat" {
                        let n = Int(payload.number("lastSeq") ?? "") ?? 0
                        announced = max(announced, n)
                        if n >= lastSeq { return }
                    } else if let seq = payload.number("seq").flatMap({ Int($0) }) {
                        live.append(seq)
                        announced = max(announced, seq)
                    }
                }
            }
            throw HarnessError("no heartbeat with lastSeq \(lastSeq) within \(timeoutMs) ms")
        }

        /// Asks `outbound.list` for each run of missing seqs up to the announced one.
        /// Returns how many requests it took.
        @discardableResult
        func recover(_ client: Client) throws -> Int {
            let have = Set(live).union(recovered)
            var requests = 0
            var seq = 1
            while seq <= announced {
                guard !have.contains(seq) else { seq += 1; continue }
                var end = seq
                while end + 1 <= announced && !have.contains(end + 1) { end += 1 }
                let page = try client.call("outbound.list", [
                    "sinceSeq": .number(String(seq - 1)), "limit": .number(String(end - seq + 1)),
                ]).arrayValue ?? []
                requests += 1
                let got = page.compactMap { $0["seq"]?.numberText.flatMap { Int($0) } }
                #expect(got == Array(seq...end), "outbound.list since \(seq - 1): \(got.prefix(5))…")
                recovered += got
                seq = end + 1
            }
            return requests
        }

        var union: [Int] { Set(live).union(recovered).sorted() }
    }

    /// Sends `count` usage events that nothing can price, each of its own model: one
    /// UNPRICED_USAGE alert each (CONTRACT §5), so the test knows the seqs to expect.
    /// `padding` lengthens the model names (and so the alerts), to fill socket buffers sooner.
    static func fireAlerts(_ client: Client, from: Int, count: Int, acknowledged: Bool, padding: Int = 0) throws {
        let pad = String(repeating: "x", count: padding)
        for i in from..<(from + count) {
            let event = JSONValue.object(JSONObject([
                ("id", .string("alert-\(i)")), ("platform", "OpenAI"), ("serviceType", "API"),
                ("model", .string("no-price-\(pad)\(i)")), ("usage", ["inputTokens": 1]),
            ]))
            if acknowledged {
                #expect(try client.sendAck(event).string("state") == "UNPRICED")
            } else {
                try client.publish(event)
            }
        }
    }

    /// Waits until `stats` says `lastSeq` ≥ n (a seq past n fails the test's own checks, which
    /// say which); on a timeout, says where it stopped and what the daemon counted.
    static func waitForLastSeq(_ client: Client, _ n: Int) throws {
        let deadline = Date().addingTimeInterval(60)
        var last = JSONValue.null
        while Date() < deadline {
            last = try client.call("stats")
            if let seq = last["lastSeq"]?.numberText.flatMap({ Int($0) }), seq >= n { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("lastSeq never reached \(n): stats \(last.serialized())")
    }

    @Test func alertsPublishedWhileASubscriberWasAwayAreRecoveredBySeq() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let tracker = SeqTracker()

        // Present for 1…50.
        do {
            let subscriber = try Client(daemon)
            let sub = try subscriber.subscriber()
            try Self.fireAlerts(client, from: 0, count: 50, acknowledged: true)
            try tracker.read(sub, until: 50)
        }
        // Away for 51…200.
        try Self.fireAlerts(client, from: 50, count: 150, acknowledged: true)
        // Back for 201…250: it notices the jump (and the heartbeat's lastSeq), and fills it.
        let subscriber = try Client(daemon)
        let sub = try subscriber.subscriber()
        try Self.fireAlerts(client, from: 200, count: 50, acknowledged: true)
        try tracker.read(sub, until: 250)
        #expect(tracker.live == Array(1...50) + Array(201...250))
        let requests = try tracker.recover(client)
        #expect(tracker.union == Array(1...250), "missed: \(Set(1...250).subtracting(tracker.union).sorted().prefix(20))")
        #expect(requests == 1)
        reportFigures("subscriberAway: alerts=250 live=\(tracker.live.count) recovered=\(tracker.recovered.count) missed=\(250 - tracker.union.count)")
    }

    @Test func alertsDroppedAtTheHighWaterMarkAreRecoveredBySeq() throws {
        let dir = try TempDir()
        // A small send queue per subscriber on the daemon's PUB, so the drops come soon.
        let daemon = try Daemon(dir: dir, config: ["sendHighWaterMark": "100"])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)

        // A subscriber with RCVHWM 1 and a small kernel buffer that reads nothing while the
        // alerts fire.
        let subscriber = try Client(daemon)
        let slow = try subscriber.socket(.sub)
        try slow.setReceiveHighWaterMark(1)
        try slow.setIntOption(12, 4096) // ZMQ_RCVBUF
        for t in ["alert.", "status.", "heartbeat"] { try slow.subscribe(t) }
        try slow.connect(daemon.publish)
        let tracker = SeqTracker()
        try tracker.read(slow, until: 0)

        // More than the kernel's socket buffers (up to 4 MiB on the daemon's side) and the
        // daemon's queue hold: about 6 MiB of alerts.
        let count = 6000
        try Self.fireAlerts(client, from: 0, count: count, acknowledged: false, padding: 200)
        try Self.waitForLastSeq(client, count)
        try tracker.read(slow, until: count)
        let received = tracker.live.count
        #expect(received < count, "nothing was dropped: the high-water mark was not exercised")
        #expect(zip(tracker.live, tracker.live.dropFirst()).allSatisfy { $0 < $1 }, "live seqs out of order")
        let requests = try tracker.recover(client)
        #expect(tracker.union == Array(1...count), "missed: \(Set(1...count).subtracting(tracker.union).count)")
        reportFigures("subscriberHWM: alerts=\(count) receivedLive=\(received) droppedAtHWM=\(count - received) recovered=\(tracker.recovered.count) requests=\(requests) missed=\(count - tracker.union.count)")
    }
}
