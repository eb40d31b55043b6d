import Testing
import ZMQ

/// The frames a ROUTER must echo to reply to a REQ: everything up to and
/// including the empty delimiter (identity, any request-id, delimiter).
private func envelope(_ frames: [[UInt8]]) -> [[UInt8]] {
    guard let delimiter = frames.firstIndex(where: \.isEmpty) else { return [] }
    return Array(frames[...delimiter])
}

@Suite("ROUTER")
struct RouterTests {
    @Test(arguments: Transport.allCases)
    func routerAndReqRoundTrip(transport: Transport) throws {
        try withZMQ { zmq in
            let router = try zmq.socket(.router)
            let client = try zmq.socket(.req)
            let endpoint = try transport.bind(router, name: "router-req")
            try client.setIdentity(frame("client-7"))
            try client.connect(endpoint)

            try client.send([frame("hello")])
            let request = try #require(try router.receive())
            #expect(request == [frame("client-7"), [], frame("hello")])

            try router.send(envelope(request) + [frame("world")])
            #expect(try client.receive() == [frame("world")])
        }
    }

    @Test func routerGeneratesIdentityForAnonymousPeers() throws {
        try withZMQ { zmq in
            let router = try zmq.socket(.router)
            let first = try zmq.socket(.req)
            let second = try zmq.socket(.req)
            let endpoint = try bindEphemeral(router)
            try first.connect(endpoint)
            try second.connect(endpoint)

            try first.send([frame("one")])
            let fromFirst = try #require(try router.receive())
            try second.send([frame("two")])
            let fromSecond = try #require(try router.receive())

            // libzmq 4.x generates 5-byte identities starting with a zero byte
            // (which is why user identities may not start with one).
            #expect(fromFirst.count == 3 && fromSecond.count == 3)
            #expect(fromFirst[0].count == 5 && fromFirst[0].first == 0)
            #expect(fromFirst[0] != fromSecond[0])

            // Replies reach the right peer by identity, in any order.
            try router.send(envelope(fromSecond) + [frame("to two")])
            try router.send(envelope(fromFirst) + [frame("to one")])
            #expect(try first.receive() == [frame("to one")])
            #expect(try second.receive() == [frame("to two")])
        }
    }

    /// With REQ_CORRELATE the envelope carries a request-id frame before the
    /// delimiter; with REQ_RELAXED a retry may go out before the reply, and
    /// the late reply to the first request is discarded.
    @Test func correlatedRelaxedReqDiscardsStaleReply() throws {
        try withZMQ { zmq in
            let router = try zmq.socket(.router)
            let client = try zmq.socket(.req)
            try client.setReqCorrelate(true)
            try client.setReqRelaxed(true)
            let endpoint = try bindEphemeral(router)
            try client.connect(endpoint)

            try client.send([frame("first")])
            let first = try #require(try router.receive())
            #expect(first.count == 4)
            #expect(first[1].count == 4)  // request id
            #expect(first[2].isEmpty)
            #expect(first[3] == frame("first"))

            try client.send([frame("retry")])  // EFSM without REQ_RELAXED
            let retry = try #require(try router.receive())
            #expect(retry.count == 4)
            #expect(retry[0] == first[0])
            #expect(retry[1] != first[1])
            #expect(retry[3] == frame("retry"))

            try router.send(envelope(first) + [frame("stale reply")])
            try router.send(envelope(retry) + [frame("reply")])
            #expect(try client.receive() == [frame("reply")])

            // The exchange is complete: the next request goes out normally.
            try client.send([frame("next")])
            let next = try #require(try router.receive())
            #expect(next.last == frame("next"))
        }
    }

    @Test func strictReqRefusesSecondRequest() throws {
        try withZMQ { zmq in
            let router = try zmq.socket(.router)
            let client = try zmq.socket(.req)
            try router.bind("inproc://strict")
            try client.connect("inproc://strict")
            try client.send([frame("first")])
            let error = #expect(throws: ZMQError.self) {
                try client.send([frame("second")])
            }
            #expect(error?.code == .invalidState)
            // A REQ may not receive before it sent, either.
            let other = try zmq.socket(.req)
            try other.connect("inproc://strict")
            let receiveError = #expect(throws: ZMQError.self) { try other.receive(dontWait: true) }
            #expect(receiveError?.code == .invalidState)
        }
    }

    @Test(arguments: Transport.allCases)
    func routerAndDealerRoundTrip(transport: Transport) throws {
        try withZMQ { zmq in
            let router = try zmq.socket(.router)
            let dealer = try zmq.socket(.dealer)
            let endpoint = try transport.bind(router, name: "router-dealer")
            try dealer.setIdentity(frame("dealer-1"))
            try dealer.connect(endpoint)

            try dealer.send([frame("ping"), frame("2")])
            #expect(try router.receive() == [frame("dealer-1"), frame("ping"), frame("2")])

            try router.send([frame("dealer-1"), frame("pong")])
            #expect(try dealer.receive() == [frame("pong")])
        }
    }

    @Test func routerMandatoryReportsUnknownIdentity() throws {
        try withZMQ { zmq in
            let router = try zmq.socket(.router)
            _ = try bindEphemeral(router)

            // By default a ROUTER drops what it cannot route, and says it sent it.
            #expect(try router.send([frame("nobody"), frame("lost")]))

            try router.setRouterMandatory(true)
            do {
                try router.send([frame("nobody"), frame("lost")])
                Issue.record("send to an unknown identity succeeded")
            } catch ZMQError.hostUnreachable {
                // expected
            }
        }
    }
}
