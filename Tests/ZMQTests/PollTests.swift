import Foundation
import Testing
import ZMQ

@Suite("poll")
struct PollTests {
    @Test func idlePollTimesOutWithNoEvents() throws {
        try withZMQ { zmq in
            let pull = try zmq.socket(.pull)
            _ = try bindEphemeral(pull)
            let (events, elapsed) = try milliseconds {
                try poll([(pull, .readable)], timeoutMilliseconds: 100)
            }
            #expect(events == [[]])
            #expect(elapsed >= 90)
            // Generous: the machine is shared; the point is "not forever".
            #expect(elapsed < 1_500)

            let (immediate, zeroElapsed) = try milliseconds {
                try poll([(pull, .readable)], timeoutMilliseconds: 0)
            }
            #expect(immediate == [[]])
            #expect(zeroElapsed < 500)
        }
    }

    /// No sockets: libzmq just sleeps for the timeout.
    @Test func pollWithoutSocketsSleeps() throws {
        let (events, elapsed) = try milliseconds { try poll([], timeoutMilliseconds: 20) }
        #expect(events.isEmpty)
        #expect(elapsed >= 15)
    }

    /// Two bound PULL sockets, one with a PUSH connected to it.
    func idleAndBusy(_ zmq: TestContext) throws -> (idle: ZMQSocket, busy: ZMQSocket, push: ZMQSocket) {
        let idle = try zmq.socket(.pull)
        let busy = try zmq.socket(.pull)
        let push = try zmq.socket(.push)
        _ = try bindEphemeral(idle)
        try push.connect(try bindEphemeral(busy))
        return (idle, busy, push)
    }

    @Test func pollReportsReadableSocketInItsPosition() throws {
        try withZMQ { zmq in
            let (idle, busy, push) = try idleAndBusy(zmq)
            try push.send([frame("wake"), frame("up")])

            let events = try poll([(idle, .readable), (busy, .readable)], timeoutMilliseconds: 5_000)
            #expect(events == [[], .readable])
            #expect(try busy.receive(dontWait: true) == [frame("wake"), frame("up")])

            // Drained: readable no more.
            #expect(try poll([(busy, .readable)], timeoutMilliseconds: 0) == [[]])
        }
    }

    @Test func pollReportsWritableOnlyWithRoom() throws {
        try withZMQ { zmq in
            let lonely = try zmq.socket(.push)
            _ = try bindEphemeral(lonely)
            let router = try zmq.socket(.router)
            let dealer = try zmq.socket(.dealer)
            try router.bind("inproc://writable")
            try dealer.connect("inproc://writable")

            let events = try poll(
                [(lonely, [.readable, .writable]), (dealer, [.readable, .writable])],
                timeoutMilliseconds: 1_000
            )
            // A PUSH with no peer cannot send; a connected DEALER can.
            #expect(events == [[], .writable])
        }
    }

    /// A signal wakes a poll blocked on sockets that stay quiet, from another thread; it stays
    /// signalled until cleared, and signals before a clear wake once.
    @Test func pollSignalWakesAPollFromAnotherThread() throws {
        try withZMQ { zmq in
            let pull = try zmq.socket(.pull)
            _ = try bindEphemeral(pull)
            let signal = try PollSignal()

            // Not signalled: the poll waits out its timeout.
            let (quiet, quietElapsed) = try milliseconds { try poll([(pull, .readable)], signal: signal, timeoutMilliseconds: 50) }
            #expect(quiet.events == [[]] && !quiet.signalled)
            #expect(quietElapsed >= 40)

            // Signalled 200 ms into a 10 s wait: it returns then, the socket not ready.
            let thread = Thread {
                Thread.sleep(forTimeInterval: 0.2)
                signal.signal()
            }
            thread.start()
            let (woken, elapsed) = try milliseconds { try poll([(pull, .readable)], signal: signal, timeoutMilliseconds: 10_000) }
            #expect(woken.signalled && woken.events == [[]])
            #expect(elapsed >= 150 && elapsed < 5_000, "\(elapsed) ms")

            // Still signalled (twice now) until cleared; once cleared, quiet again.
            signal.signal()
            #expect(try poll([(pull, .readable)], signal: signal, timeoutMilliseconds: 0).signalled)
            signal.clear()
            #expect(try !poll([(pull, .readable)], signal: signal, timeoutMilliseconds: 0).signalled)
            // Clearing what is not signalled does not block.
            signal.clear()
            // Without the signal, the plain poll's answer.
            #expect(try poll([(pull, .readable)], signal: nil, timeoutMilliseconds: 0) == ([[]], false))
        }
    }

    /// A socket and the signal ready together: both reported, each in its place.
    @Test func pollReportsSocketsAndSignalTogether() throws {
        try withZMQ { zmq in
            let (idle, busy, push) = try idleAndBusy(zmq)
            try push.send([frame("x")])
            let signal = try PollSignal()
            signal.signal()
            // The message may take a moment to arrive: poll until it has.
            var result = try poll([(idle, .readable), (busy, .readable)], signal: signal, timeoutMilliseconds: 5_000)
            for _ in 0..<100 where result.events[1].isEmpty {
                Thread.sleep(forTimeInterval: 0.01)
                result = try poll([(idle, .readable), (busy, .readable)], signal: signal, timeoutMilliseconds: 5_000)
            }
            #expect(result.events == [[], .readable])
            #expect(result.signalled)
        }
    }
}

