import Synchronization
import Testing
import ZMQ

/// A bound CURVE server socket and the endpoint its clients connect to.
private func curveServer(
    _ zmq: TestContext,
    _ type: SocketType,
    keys: CurveKeyPair,
    domain: String,
    timeoutMilliseconds: Int32 = 5_000
) throws -> (socket: ZMQSocket, endpoint: String) {
    let socket = try zmq.socket(type, timeoutMilliseconds: timeoutMilliseconds)
    try socket.setCurveServer(secretKey: keys.secretKey)
    try socket.setZAPDomain(domain)
    return (socket, try bindEphemeral(socket))
}

/// A CURVE client socket of `server`, connected to `endpoint`.
private func curveClient(
    _ zmq: TestContext,
    _ type: SocketType,
    keys: CurveKeyPair,
    server: CurveKeyPair,
    endpoint: String,
    timeoutMilliseconds: Int32 = 5_000
) throws -> ZMQSocket {
    let socket = try zmq.socket(type, timeoutMilliseconds: timeoutMilliseconds)
    try socket.setCurveClient(serverPublicKey: server.publicKey, keyPair: keys)
    try socket.connect(endpoint)
    return socket
}

/// The table policy admitting `keys` on `domain`.
private func allowing(_ keys: CurveKeyPair..., on domain: String) throws -> ZAPPolicy {
    ZAPPolicy(allowedKeys: [domain: Set(try keys.map { try CurvePublicKey(z85: $0.publicKey) })])
}

/// How long a refused peer is given to get a message through. Refusal takes a
/// handshake on loopback (well under 10 ms); this is generous for a shared machine.
private let refusalWindow: Int32 = 400

@Suite("CURVE and ZAP", .enabled(if: CurveKeyPair.isSupported, "libzmq built without CURVE"))
struct CurveTests {
    // MARK: Keys

    @Test func generatedKeyPairsAreZ85AndDerivable() throws {
        let first = try CurveKeyPair.generate()
        let second = try CurveKeyPair.generate()
        for key in [first.publicKey, first.secretKey, second.publicKey, second.secretKey] {
            #expect(key.utf8.count == 40)
            #expect(CurveKeyPair.isValidZ85Key(key))
        }
        #expect(try CurveKeyPair.publicKey(forSecret: first.secretKey) == first.publicKey)
        #expect(try CurveKeyPair(secretKey: second.secretKey) == second)
        #expect(first.publicKey != second.publicKey)
        #expect(first.secretKey != second.secretKey)
        #expect(first.publicKey != first.secretKey)

        // Printing a pair never shows the secret key.
        #expect(!"\(first)".contains(first.secretKey))
        #expect(!String(reflecting: first).contains(first.secretKey))
        #expect("\(first)".contains(first.publicKey))
    }

    /// A key decodes to 32 bytes and encodes back to the same text.
    @Test func publicKeyDecodesToThirtyTwoBytes() throws {
        let keys = try CurveKeyPair.generate()
        let key = try CurvePublicKey(z85: keys.publicKey)
        #expect(key.bytes.count == 32)
        #expect(key.z85 == keys.publicKey)
        #expect("\(key)" == keys.publicKey)
        #expect(try CurvePublicKey(bytes: key.bytes) == key)
        #expect(try CurvePublicKey(z85: try CurveKeyPair.generate().publicKey) != key)

        // ZeroMQ RFC 32's test vector, padded with zero bytes to a key.
        let hello: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B] + Array(repeating: 0, count: 24)
        let vector = try CurvePublicKey(bytes: hello)
        #expect(vector.z85 == "HelloWorld" + String(repeating: "0", count: 30))
        #expect(try CurvePublicKey(z85: vector.z85) == vector)
    }

    @Test(arguments: [
        ("", "empty"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", "39 characters"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7A", "41 characters"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7rq:rM", "45 characters"),
        (" rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf", "leading space"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\n", "trailing newline"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~", "tilde is not Z85"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\"", "quote is not Z85"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]y\u{0}7", "NUL inside"),
        ("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yé", "non-ASCII"),
        ("#####" + String(repeating: "0", count: 35), "a group above 2^32 - 1"),
    ])
    func badZ85KeysAreRejected(key: String, why: String) throws {
        #expect(!CurveKeyPair.isValidZ85Key(key), "\(why)")
        for error in [
            #expect(throws: ZMQError.self) { try CurveKeyPair.publicKey(forSecret: key) },
            #expect(throws: ZMQError.self) { try CurveKeyPair(secretKey: key) },
            #expect(throws: ZMQError.self) { try CurvePublicKey(z85: key) },
        ] {
            #expect(error?.code == .invalidArgument)
        }

        try withZMQ { zmq in
            let good = try CurveKeyPair.generate()
            let socket = try zmq.socket(.router)
            let serverError = #expect(throws: ZMQError.self) { try socket.setCurveServer(secretKey: key) }
            #expect(serverError?.code == .invalidArgument)
            // An error may end up in a log: it names the option, never the key.
            #expect(serverError.map { !key.isEmpty && $0.description.contains(key) } == false)

            let client = try zmq.socket(.dealer)
            for (server, publicKey, secretKey) in [
                (key, good.publicKey, good.secretKey),
                (good.publicKey, key, good.secretKey),
                (good.publicKey, good.publicKey, key),
            ] {
                let error = #expect(throws: ZMQError.self) {
                    try client.setCurveClient(serverPublicKey: server, publicKey: publicKey, secretKey: secretKey)
                }
                #expect(error?.code == .invalidArgument)
            }
            // Nothing half-set: the socket is still plain.
            #expect(try socket.securityMechanism == .null)
            #expect(try client.securityMechanism == .null)
        }
    }

    /// A client whose public key does not belong to its secret key could
    /// never complete a handshake: refused when set, not at connect time.
    @Test func mismatchedClientKeyPairThrows() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let mine = try CurveKeyPair.generate()
            let other = try CurveKeyPair.generate()
            let client = try zmq.socket(.req)
            let error = #expect(throws: ZMQError.self) {
                try client.setCurveClient(
                    serverPublicKey: server.publicKey, publicKey: other.publicKey, secretKey: mine.secretKey)
            }
            #expect(error?.code == .invalidArgument)
        }
    }

    @Test func securityOptionsReadBack() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let client = try CurveKeyPair.generate()
            let serverSocket = try zmq.socket(.router)
            let clientSocket = try zmq.socket(.dealer)
            #expect(try serverSocket.securityMechanism == .null)
            #expect(try serverSocket.zapDomain == "")
            #expect(try !serverSocket.isCurveServer)

            try serverSocket.setCurveServer(secretKey: server.secretKey)
            try serverSocket.setZAPDomain("control")
            #expect(try serverSocket.securityMechanism == .curve)
            #expect(try serverSocket.isCurveServer)
            #expect(try serverSocket.zapDomain == "control")

            try clientSocket.setCurveClient(serverPublicKey: server.publicKey, keyPair: client)
            #expect(try clientSocket.securityMechanism == .curve)
            #expect(try !clientSocket.isCurveServer)
            #expect(try clientSocket.curveServerKey == server.publicKey)
            #expect(try clientSocket.curvePublicKey == client.publicKey)

            let error = #expect(throws: ZMQError.self) {
                try serverSocket.setZAPDomain(String(repeating: "d", count: 256))
            }
            #expect(error?.code == .invalidArgument)
        }
    }

    // MARK: Admission

    /// The acknowledged-ingest and control shape: REQ clients, a ROUTER server.
    @Test func zapAdmitsListedKeyAndRefusesOthersOnRouter() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let alice = try CurveKeyPair.generate()
            let mallory = try CurveKeyPair.generate()
            let authenticator = try ZAPAuthenticator(context: zmq.context, policy: try allowing(alice, on: "control"))
            defer { authenticator.stop() }

            let (router, endpoint) = try curveServer(zmq, .router, keys: server, domain: "control")
            let client = try curveClient(zmq, .req, keys: alice, server: server, endpoint: endpoint)
            try client.send([frame("hello")])
            let request = try #require(try router.receiveWithUserID())
            #expect(request.frames.count == 3 && request.frames[2] == frame("hello"))
            // The authenticated key arrives with the message, on the identity frame.
            #expect(request.userID == alice.publicKey)
            try router.send([request.frames[0], [], frame("world")])
            #expect(try client.receive() == [frame("world")])

            // Mallory knows the server key but is not listed; the plain client
            // cannot even start a CURVE handshake. Neither reaches the router.
            try router.setReceiveTimeout(milliseconds: refusalWindow)
            let intruder = try curveClient(zmq, .req, keys: mallory, server: server, endpoint: endpoint)
            let plain = try zmq.socket(.req)
            try plain.connect(endpoint)
            #expect(try intruder.send([frame("let me in")], dontWait: true))  // queued, never delivered
            #expect(try plain.send([frame("me too")], dontWait: true))
            #expect(try router.receive() == nil)

            // Alice's connection is unaffected.
            try client.send([frame("again")])
            let again = try #require(try router.receiveWithUserID())
            #expect(again.frames.last == frame("again") && again.userID == alice.publicKey)
        }
    }

    /// The fire-and-forget ingest shape: the daemon's SUB is bound and is the
    /// CURVE server; publishers connect with PUB as clients. The user id comes
    /// with every published message.
    @Test func boundSubReceivesOnlyFromListedPublisherWithItsUserID() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let alice = try CurveKeyPair.generate()
            let mallory = try CurveKeyPair.generate()
            let authenticator = try ZAPAuthenticator(context: zmq.context, policy: try allowing(alice, on: "ingest"))
            defer { authenticator.stop() }

            let (subscriber, endpoint) = try curveServer(
                zmq, .sub, keys: server, domain: "ingest", timeoutMilliseconds: 50)
            try subscriber.subscribe("usage")
            let good = try curveClient(zmq, .pub, keys: alice, server: server, endpoint: endpoint)
            let bad = try curveClient(zmq, .pub, keys: mallory, server: server, endpoint: endpoint)
            let plain = try zmq.socket(.pub)
            try plain.connect(endpoint)

            // PUB drops until the subscription has crossed the handshake, so
            // everyone publishes until Alice's message shows up, and a while after.
            var fromAlice: [(frames: [[UInt8]], userID: String?)] = []
            var others: [[[UInt8]]] = []
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(5)
            var quietUntil: ContinuousClock.Instant?
            while clock.now < (quietUntil ?? deadline) {
                try good.send([frame("usage"), frame("alice")], dontWait: true)
                try bad.send([frame("usage"), frame("mallory")], dontWait: true)
                try plain.send([frame("usage"), frame("plain")], dontWait: true)
                while let message = try subscriber.receiveWithUserID() {
                    if message.frames == [frame("usage"), frame("alice")] {
                        fromAlice.append(message)
                        quietUntil = quietUntil ?? clock.now + .milliseconds(Int(refusalWindow))
                    } else {
                        others.append(message.frames)
                    }
                }
            }
            #expect(!fromAlice.isEmpty)
            #expect(fromAlice.allSatisfy { $0.userID == alice.publicKey })
            #expect(others.isEmpty)
        }
    }

    /// The outbound shape: the daemon's publisher is bound and is the CURVE
    /// server; subscribers connect as clients. An XPUB sees each admitted
    /// subscription with the subscriber's user id; a refused one never
    /// subscribes, so it gets nothing. A client has no user id for the server.
    @Test func boundPublisherReachesOnlyListedSubscriber() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let alice = try CurveKeyPair.generate()
            let mallory = try CurveKeyPair.generate()
            let authenticator = try ZAPAuthenticator(context: zmq.context, policy: try allowing(alice, on: "publish"))
            defer { authenticator.stop() }

            let (publisher, endpoint) = try curveServer(zmq, .xpub, keys: server, domain: "publish")
            let good = try curveClient(zmq, .sub, keys: alice, server: server, endpoint: endpoint)
            try good.subscribe("alert.")
            let subscription = try #require(try publisher.receiveWithUserID())
            #expect(subscription.frames == [[1] + frame("alert.")])
            #expect(subscription.userID == alice.publicKey)

            let bad = try curveClient(
                zmq, .sub, keys: mallory, server: server, endpoint: endpoint, timeoutMilliseconds: refusalWindow)
            try bad.subscribe("alert.")
            let plain = try zmq.socket(.sub, timeoutMilliseconds: refusalWindow)
            try plain.subscribe("")
            try plain.connect(endpoint)
            try publisher.setReceiveTimeout(milliseconds: refusalWindow)
            #expect(try publisher.receive() == nil)

            try publisher.send([frame("alert.budget"), frame("{}")])
            let received = try #require(try good.receiveWithUserID())
            #expect(received.frames == [frame("alert.budget"), frame("{}")])
            #expect(received.userID == nil)
            #expect(try bad.receive() == nil)
            #expect(try plain.receive() == nil)
        }
    }

    /// libzmq's behaviour the daemon must guard against: with no ZAP handler
    /// bound, a CURVE server admits any client that knows its public key,
    /// whatever the client's own key, with no error anywhere. Hence the
    /// authenticator is started before any CURVE socket binds.
    /// libzmq 4.3.4's ROUTER loses the metadata of the identity frame it prefetches for zmq_poll;
    /// the user id must still come through (budgetd's engine polls before it receives).
    @Test func userIDSurvivesAPollBeforeTheReceive() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let alice = try CurveKeyPair.generate()
            let authenticator = try ZAPAuthenticator(context: zmq.context, policy: try allowing(alice, on: "control"))
            defer { authenticator.stop() }
            let (router, endpoint) = try curveServer(zmq, .router, keys: server, domain: "control")
            let client = try curveClient(zmq, .dealer, keys: alice, server: server, endpoint: endpoint)
            try client.send([frame("polled")])
            #expect(try poll([(router, .readable)], timeoutMilliseconds: 5000)[0].contains(.readable))
            let request = try #require(try router.receiveWithUserID(dontWait: true))
            #expect(request.frames.last == frame("polled"))
            #expect(request.userID == alice.publicKey)
        }
    }

    @Test func withoutZAPHandlerCurveServerAdmitsAnyClientKey() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let stranger = try CurveKeyPair.generate()
            let (router, endpoint) = try curveServer(zmq, .router, keys: server, domain: "control")
            let client = try curveClient(zmq, .req, keys: stranger, server: server, endpoint: endpoint)

            try client.send([frame("anyone home?")])
            let request = try #require(try router.receiveWithUserID())
            #expect(request.frames.last == frame("anyone home?"))
            // Nobody vouched for the peer: no user id.
            #expect(request.userID == nil)
            try router.send([request.frames[0], [], frame("come in")])
            #expect(try client.receive() == [frame("come in")])
        }
    }

    /// The same hole reopens once the handler is stopped: new connections are
    /// admitted unchecked. Close the CURVE sockets before stopping it.
    @Test func stoppedZAPHandlerAdmitsAnyClientKeyAgain() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let stranger = try CurveKeyPair.generate()
            let authenticator = try ZAPAuthenticator(context: zmq.context, policy: .denyAll)
            let (router, endpoint) = try curveServer(
                zmq, .router, keys: server, domain: "control", timeoutMilliseconds: refusalWindow)
            let refused = try curveClient(zmq, .dealer, keys: stranger, server: server, endpoint: endpoint)
            try refused.send([frame("before stop")])  // lost: a refused connection is not retried
            #expect(try router.receive() == nil)

            authenticator.stop()
            #expect(!authenticator.isRunning)
            try router.setReceiveTimeout(milliseconds: 5_000)
            let admitted = try curveClient(zmq, .dealer, keys: stranger, server: server, endpoint: endpoint)
            try admitted.send([frame("after stop")])
            let message = try #require(try router.receive())
            #expect(message.last == frame("after stop"))
        }
    }

    @Test func replacingThePolicyAppliesToNewConnections() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let alice = try CurveKeyPair.generate()
            let bob = try CurveKeyPair.generate()
            let authenticator = try ZAPAuthenticator(context: zmq.context, policy: try allowing(alice, on: "control"))
            defer { authenticator.stop() }
            let (router, endpoint) = try curveServer(
                zmq, .router, keys: server, domain: "control", timeoutMilliseconds: refusalWindow)

            let aliceBefore = try curveClient(zmq, .dealer, keys: alice, server: server, endpoint: endpoint)
            try aliceBefore.send([frame("alice 1")])
            #expect(try router.receiveWithUserID()?.userID == alice.publicKey)
            let bobBefore = try curveClient(zmq, .dealer, keys: bob, server: server, endpoint: endpoint)
            try bobBefore.send([frame("bob 1")])
            #expect(try router.receive() == nil)

            // Reload: Bob in, Alice out.
            authenticator.policy = try allowing(bob, on: "control")
            try router.setReceiveTimeout(milliseconds: 5_000)
            let bobAfter = try curveClient(zmq, .dealer, keys: bob, server: server, endpoint: endpoint)
            try bobAfter.send([frame("bob 2")])
            let fromBob = try #require(try router.receiveWithUserID())
            #expect(fromBob.frames.last == frame("bob 2"))
            #expect(fromBob.userID == bob.publicKey)

            // libzmq does not retry a refused handshake (it ends the session
            // as a protocol error), so Bob's first socket stays cut off until
            // it reconnects; then the new policy admits it too.
            try router.setReceiveTimeout(milliseconds: refusalWindow)
            #expect(try router.receive() == nil)
            try bobBefore.disconnect(endpoint)
            try bobBefore.connect(endpoint)
            try bobBefore.send([frame("bob 3")])
            try router.setReceiveTimeout(milliseconds: 5_000)
            let reconnected = try #require(try router.receiveWithUserID())
            #expect(reconnected.frames.last == frame("bob 3") && reconnected.userID == bob.publicKey)

            // A new connection from Alice is refused; her open one stays
            // admitted (libzmq authenticates a connection once).
            try router.setReceiveTimeout(milliseconds: refusalWindow)
            let aliceAfter = try curveClient(zmq, .dealer, keys: alice, server: server, endpoint: endpoint)
            try aliceAfter.send([frame("alice new")])
            #expect(try router.receive() == nil)
            try aliceBefore.send([frame("alice 2")])
            let old = try #require(try router.receiveWithUserID())
            #expect(old.frames.last == frame("alice 2") && old.userID == alice.publicKey)
        }
    }

    /// What the handler is asked: the socket's domain, the peer's address,
    /// the mechanism and the client's public key.
    @Test func policySeesTheRequest() throws {
        try withZMQ { zmq in
            let server = try CurveKeyPair.generate()
            let alice = try CurveKeyPair.generate()
            let seen = Mutex<[ZAPRequest]>([])
            let authenticator = try ZAPAuthenticator(
                context: zmq.context,
                policy: ZAPPolicy { request in
                    seen.withLock { $0.append(request) }
                    return .allow(userID: "alice@\(request.domain)")
                }
            )
            defer { authenticator.stop() }
            let (router, endpoint) = try curveServer(zmq, .router, keys: server, domain: "ingest")
            let client = try curveClient(zmq, .dealer, keys: alice, server: server, endpoint: endpoint)
            try client.send([frame("x")])
            #expect(try router.receiveWithUserID()?.userID == "alice@ingest")

            let request = try #require(seen.withLock { $0.first })
            #expect(request.domain == "ingest")
            #expect(request.address == "127.0.0.1")
            #expect(request.mechanism == .curve)
            #expect(request.clientKey == (try CurvePublicKey(z85: alice.publicKey)))
        }
    }

    /// Sockets without CURVE (loopback-only ones): without a ZAP domain libzmq
    /// never asks the handler; with one, the table admits them only in a
    /// domain listed as allowing NULL, with no user id.
    @Test func nullMechanismNeedsADomainThatAllowsIt() throws {
        try withZMQ { zmq in
            let asked = Mutex<Set<String>>([])
            let table = ZAPPolicy(allowedKeys: [:], nullDomains: ["local"])
            let authenticator = try ZAPAuthenticator(
                context: zmq.context,
                policy: ZAPPolicy { request in
                    asked.withLock { _ = $0.insert("\(request.mechanism) \(request.domain)") }
                    return table.decision(for: request)
                }
            )
            defer { authenticator.stop() }

            for (domain, admitted) in [("local", true), ("control", false), ("", true)] {
                let pull = try zmq.socket(.pull, timeoutMilliseconds: admitted ? 5_000 : refusalWindow)
                if !domain.isEmpty {
                    try pull.setZAPDomain(domain)
                }
                let push = try zmq.socket(.push)
                try push.connect(try bindEphemeral(pull))
                try push.send([frame(domain)])
                let message = try pull.receiveWithUserID()
                #expect((message != nil) == admitted, "domain '\(domain)'")
                #expect(message?.userID == nil)
            }
            // Asked for "local" and "control" only.
            #expect(asked.withLock { $0 } == ["NULL local", "NULL control"])
        }
    }

    @Test func tablePolicyDecisions() throws {
        let alice = try CurvePublicKey(z85: try CurveKeyPair.generate().publicKey)
        let bob = try CurvePublicKey(z85: try CurveKeyPair.generate().publicKey)
        let policy = ZAPPolicy(allowedKeys: ["control": [alice], "ingest": [alice, bob]], nullDomains: ["local"])
        func decide(_ domain: String, _ mechanism: SecurityMechanism, _ credentials: [[UInt8]] = []) -> ZAPDecision {
            policy.decision(for: ZAPRequest(domain: domain, mechanism: mechanism, credentials: credentials))
        }
        #expect(decide("control", .curve, [alice.bytes]) == .allow(userID: alice.z85))
        #expect(decide("ingest", .curve, [bob.bytes]) == .allow(userID: bob.z85))
        #expect(decide("local", .null) == .allow(userID: ""))
        for refused in [
            decide("control", .curve, [bob.bytes]),
            decide("publish", .curve, [alice.bytes]),
            decide("control", .curve, [[1, 2, 3]]),
            decide("control", .curve, []),
            decide("control", .null),
            decide("", .null),
            decide("local", .plain, [frame("admin"), frame("secret")]),
            decide("local", .gssapi, [frame("principal")]),
            ZAPPolicy.denyAll.decision(
                for: ZAPRequest(domain: "control", mechanism: .curve, credentials: [alice.bytes])),
        ] {
            guard case .deny = refused else {
                Issue.record("admitted: \(refused)")
                continue
            }
        }
    }

    // MARK: Lifecycle

    @Test func stopIsIdempotentAndTheEndpointCanBeBoundAgain() throws {
        try withZMQ { zmq in
            let first = try ZAPAuthenticator(context: zmq.context, policy: .denyAll)
            #expect(first.isRunning)
            let error = #expect(throws: ZMQError.self) {
                try ZAPAuthenticator(context: zmq.context, policy: .denyAll)
            }
            #expect(error?.code == .addressInUse)
            #expect(error?.operation == "zmq_bind(inproc://zeromq.zap.01)")

            first.stop()
            first.stop()
            #expect(!first.isRunning)
            let second = try ZAPAuthenticator(context: zmq.context, policy: .denyAll)
            #expect(second.isRunning)
            second.stop()
        }
    }

    /// Terminating the context stops a running authenticator (its thread
    /// closes its sockets), so terminate() returns; stop() afterwards only joins.
    @Test func contextTerminationStopsTheAuthenticator() throws {
        let context = try ZMQContext()
        let authenticator = try ZAPAuthenticator(context: context, policy: .denyAll)
        let (_, elapsed) = milliseconds { context.terminate() }
        #expect(elapsed < 5_000)
        #expect(!authenticator.isRunning)
        authenticator.stop()
        #expect(throws: ZMQError.self) { try ZAPAuthenticator(context: context, policy: .denyAll) }
    }
}
