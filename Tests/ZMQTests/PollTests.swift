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

    @Test func pollReportsReadableSocketInItsPosition() throws {
        try withZMQ { zmq in
            let idle = try zmq.socket(.pull)
            let busy = try zmq.socket(.pull)
            let push = try zmq.socket(.push)
            _ = try bindEphemeral(idle)
            let endpoint = try bindEphemeral(busy)
            try push.connect(endpoint)
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
}
