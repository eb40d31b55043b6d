import Testing
import ZMQ

@Suite("PUB/SUB")
struct PubSubTests {
    /// The publisher is an XPUB that waits for the subscription before
    /// publishing; a plain PUB would drop everything sent before the SUB's
    /// subscription arrived (the "slow joiner").
    @Test(arguments: Transport.allCases)
    func prefixSubscriptionDeliversOnlyMatchingTopics(transport: Transport) throws {
        try withZMQ { zmq in
            let publisher = try zmq.socket(.xpub)
            let subscriber = try zmq.socket(.sub)
            let endpoint = try transport.bind(publisher, name: "pubsub")
            try subscriber.subscribe("cost.")
            try subscriber.connect(endpoint)

            // XPUB delivers each subscription as one frame: 1 then the prefix.
            #expect(try publisher.receive() == [[1] + frame("cost.")])

            #expect(try publisher.send([frame("alert.budget"), frame("ignored")]))
            #expect(try publisher.send([frame("cost.openai"), frame("42")]))
            #expect(try publisher.send([frame("cos"), frame("too short to match")]))
            #expect(try publisher.send([frame("cost.anthropic"), frame("7")]))

            // Were the non-matching topics delivered, they would come first.
            #expect(try subscriber.receive() == [frame("cost.openai"), frame("42")])
            #expect(try subscriber.receive() == [frame("cost.anthropic"), frame("7")])
            #expect(try subscriber.receive(dontWait: true) == nil)

            // Unsubscribing reaches the XPUB as 0 then the prefix.
            try subscriber.unsubscribe("cost.")
            #expect(try publisher.receive() == [[0] + frame("cost.")])
        }
    }

    @Test func binarySubscriptionMatchesBytePrefix() throws {
        try withZMQ { zmq in
            let publisher = try zmq.socket(.xpub)
            let subscriber = try zmq.socket(.sub)
            let endpoint = try bindEphemeral(publisher)
            try subscriber.subscribe([0xFF, 0x00])
            try subscriber.connect(endpoint)
            #expect(try publisher.receive() == [[1, 0xFF, 0x00]])

            try publisher.send([[0xFF, 0x01, 9]])
            try publisher.send([[0xFF, 0x00, 9], [1]])
            #expect(try subscriber.receive() == [[0xFF, 0x00, 9], [1]])
        }
    }

    /// With XPUB_NODROP a subscriber at its high-water mark makes sends fail
    /// fast instead of silently dropping; without it they "succeed".
    @Test(arguments: [true, false])
    func xpubNoDropRefusesWhenSubscriberIsFull(noDrop: Bool) throws {
        try withZMQ { zmq in
            let publisher = try zmq.socket(.xpub)
            let subscriber = try zmq.socket(.sub)
            try publisher.setSendHighWaterMark(1)
            try subscriber.setReceiveHighWaterMark(1)
            try publisher.setXPubNoDrop(noDrop)
            try publisher.bind("inproc://nodrop")
            try subscriber.subscribe("")
            try subscriber.connect("inproc://nodrop")
            #expect(try publisher.receive() == [[1]])

            var accepted = 0
            for _ in 0..<100 {
                if try publisher.send([frame("tick")], dontWait: true) {
                    accepted += 1
                }
            }
            if noDrop {
                // inproc pipes hold SNDHWM + peer's RCVHWM messages.
                #expect(accepted == 2)
            } else {
                #expect(accepted == 100)
            }
            #expect(try subscriber.receive() == [frame("tick")])
        }
    }
}
