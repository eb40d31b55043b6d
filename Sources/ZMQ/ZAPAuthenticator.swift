internal import CZMQ
internal import Synchronization

/// One ZAP request (ZeroMQ RFC 27): a peer's handshake asking to be admitted
/// to a socket that has security or a ZAP domain.
public struct ZAPRequest: Sendable, Hashable {
    /// The ZAP domain of the server socket (``ZMQSocket/setZAPDomain(_:)``),
    /// empty if it set none: the socket's role.
    public var domain: String
    /// The peer's IP address, such as `127.0.0.1`.
    public var address: String
    /// The routing id of the server socket (not the peer's), usually empty.
    public var routingID: [UInt8]
    /// The handshake's mechanism.
    public var mechanism: SecurityMechanism
    /// The mechanism's credentials: for CURVE one frame, the client's 32-byte
    /// long-term public key; for PLAIN the user name and password; none for NULL.
    public var credentials: [[UInt8]]

    /// Creates a request; the authenticator does this, tests of a policy may too.
    public init(
        domain: String,
        address: String = "127.0.0.1",
        routingID: [UInt8] = [],
        mechanism: SecurityMechanism,
        credentials: [[UInt8]] = []
    ) {
        self.domain = domain
        self.address = address
        self.routingID = routingID
        self.mechanism = mechanism
        self.credentials = credentials
    }

    /// The client's public key, when the mechanism is CURVE.
    public var clientKey: CurvePublicKey? {
        guard mechanism == .curve, credentials.count == 1 else { return nil }
        return try? CurvePublicKey(bytes: credentials[0])
    }
}

/// A ZAP handler's answer to one request.
public enum ZAPDecision: Sendable, Hashable {
    /// Status 200: admit the peer. `userID` becomes the `User-Id` property of
    /// every message from this connection (see
    /// ``ZMQSocket/receiveWithUserID(dontWait:)``).
    case allow(userID: String)
    /// Status 400: refuse the peer; libzmq ends the connection during the
    /// handshake and the client does not retry it. `reason` is the status
    /// text, for the peer's handshake failure event.
    case deny(reason: String)
}

/// Who a ``ZAPAuthenticator`` admits.
///
/// ZAP domains serve as roles: each bound socket names its role with
/// ``ZMQSocket/setZAPDomain(_:)`` (`ingest`, `control`, `publish`, ...), and
/// the policy decides per domain. Roles finer than a socket (viewers and
/// operators on one control socket) are the application's: admit both lists
/// on the domain, then look at the user id of each message.
///
/// A policy runs on the authenticator's thread for every handshake, so it
/// must be quick and must not block: load key files elsewhere and swap the
/// policy in with ``ZAPAuthenticator/policy``.
public struct ZAPPolicy: Sendable {
    private let decide: @Sendable (ZAPRequest) -> ZAPDecision

    /// A policy that calls `decide` for every request.
    public init(_ decide: @escaping @Sendable (ZAPRequest) -> ZAPDecision) {
        self.decide = decide
    }

    /// A policy from allow lists.
    ///
    /// - A CURVE peer is admitted if its public key is in `allowedKeys` for
    ///   the socket's domain; its user id is its public key in Z85.
    /// - A NULL peer (a socket without security that set a ZAP domain) is
    ///   admitted, with an empty user id, only if the domain is in
    ///   `nullDomains`: for sockets on loopback or inproc that need no CURVE.
    /// - Anything else is refused: unknown domains, other keys, PLAIN, GSSAPI.
    public init(allowedKeys: [String: Set<CurvePublicKey>], nullDomains: Set<String> = []) {
        decide = { request in
            switch request.mechanism {
            case .curve:
                guard let key = request.clientKey else {
                    return .deny(reason: "malformed CURVE credentials")
                }
                guard allowedKeys[request.domain]?.contains(key) == true else {
                    return .deny(reason: "key not allowed in domain '\(request.domain)'")
                }
                return .allow(userID: key.z85)
            case .null:
                guard nullDomains.contains(request.domain) else {
                    return .deny(reason: "NULL security not allowed in domain '\(request.domain)'")
                }
                return .allow(userID: "")
            case .plain, .gssapi:
                return .deny(reason: "\(request.mechanism) not allowed")
            }
        }
    }

    /// Refuses everyone.
    public static let denyAll = ZAPPolicy { _ in .deny(reason: "no one is allowed") }

    /// The policy's answer to `request`.
    public func decision(for request: ZAPRequest) -> ZAPDecision {
        decide(request)
    }
}

/// A ZAP handler (ZeroMQ RFC 27): decides which peers the CURVE sockets of
/// one context admit.
///
/// **Start it before binding any CURVE socket of the context, and stop it
/// only after closing them.** libzmq looks for a handler on
/// `inproc://zeromq.zap.01` at every handshake, and when none is bound it
/// admits every client that knows the server's public key, whatever its own
/// key, without an error or a log line. The daemon's order is therefore:
///
/// ```swift
/// let authenticator = try ZAPAuthenticator(context: context, policy: policy)
/// try control.setCurveServer(secretKey: serverKeys.secretKey)
/// try control.setZAPDomain("control")
/// try control.bind(endpoint)
/// // ... serve ...
/// control.close()
/// authenticator.stop()
/// context.terminate()
/// ```
///
/// The handler runs on a thread of its own, which owns the handler's REP
/// socket for its whole life (sockets are not thread-safe). It keeps running
/// until ``stop()`` or until the context is terminated (then it closes its
/// sockets, so termination is not held up), even if this object is dropped:
/// an authenticator that went away silently would let everyone in.
///
/// One per context: a second one fails with ``ZMQError/Code/addressInUse``.
public final class ZAPAuthenticator: Sendable {
    /// The endpoint libzmq sends ZAP requests to (RFC 27).
    public static let endpoint = "inproc://zeromq.zap.01"

    private let shared: Shared

    /// Binds the handler on ``endpoint`` in `context` and starts its thread.
    ///
    /// When this returns, handshakes on the context are already judged by
    /// `policy` (requests wait for the thread if it has not started yet).
    ///
    /// - Throws: ``ZMQError/Code/addressInUse`` if the context already has a
    ///   ZAP handler; ``ZMQError/Code/terminated`` if it was terminated.
    public init(context: ZMQContext, policy: ZAPPolicy) throws {
        var made: [ZMQSocket] = []
        do {
            let handler = try context.makeSocket(.rep)
            made.append(handler)
            // Replies still queued at shutdown are for handshakes that no
            // longer matter: never hold up context termination for them.
            try handler.setLinger(milliseconds: 0)
            try handler.bind(Self.endpoint)

            // A PAIR pipe wakes the thread from zmq_poll for stop().
            let pipe = "inproc://budgetd.zap-authenticator.\(Self.instances.add(1, ordering: .relaxed).newValue)"
            let wakeReceiver = try context.makeSocket(.pair)
            made.append(wakeReceiver)
            try wakeReceiver.setLinger(milliseconds: 0)
            try wakeReceiver.bind(pipe)
            let waker = try context.makeSocket(.pair)
            made.append(waker)
            try waker.setLinger(milliseconds: 0)
            try waker.connect(pipe)

            shared = Shared(policy: policy, waker: waker)
            let worker = Worker(handler: handler, wakeReceiver: wakeReceiver, shared: shared)
            // zmq_threadstart runs the function on a new thread with every
            // signal blocked (signals are the main thread's business); it
            // aborts rather than return if the thread cannot be created. The
            // retained worker is released by the thread.
            let thread = zmq_threadstart(runWorker, Unmanaged.passRetained(worker).toOpaque())
            shared.control.withLock { $0.thread = thread.map(ThreadHandle.init) }
        } catch {
            for socket in made {
                socket.close()
            }
            throw error
        }
    }

    /// The policy deciding new handshakes.
    ///
    /// Setting it takes effect for the next handshake. Connections already
    /// admitted stay admitted (libzmq authenticates a connection once), and
    /// clients refused earlier stay away until they reconnect (libzmq does
    /// not retry a refused handshake). Safe to set from any thread, such as
    /// a reload of the key files on SIGHUP.
    public var policy: ZAPPolicy {
        get { shared.policy.withLock { $0 } }
        set { shared.policy.withLock { $0 = newValue } }
    }

    /// Whether the handler is still answering: `false` after ``stop()``, or
    /// once the context's termination has stopped it.
    public var isRunning: Bool {
        shared.control.withLock { $0.waker != nil }
    }

    /// Stops the handler, unbinds it and waits for its thread to finish;
    /// calling it again does nothing (a call made while another is waiting
    /// returns at once).
    ///
    /// Afterwards libzmq admits every client key on the context's CURVE
    /// sockets: close them first. Never call it from the policy, which runs
    /// on the thread it waits for.
    public func stop() {
        let thread = shared.control.withLock { control -> ThreadHandle? in
            defer { control.thread = nil }
            // Any message wakes the thread. The waker is gone when the thread
            // already stopped for context termination; a full pipe (stop()
            // racing itself) or ETERM means it is stopping anyway.
            _ = try? control.waker?.send([[]], dontWait: true)
            return control.thread
        }
        if let thread {
            // Joins the thread, then frees libzmq's handle on it.
            zmq_threadclose(thread.pointer)
        }
    }

    /// Numbers the wake pipes, so a new authenticator never meets the
    /// endpoint of a stopped one.
    private static let instances = Atomic<Int>(0)
}

/// What the authenticator and its thread share.
private final class Shared: Sendable {
    let policy: Mutex<ZAPPolicy>
    let control: Mutex<Control>

    init(policy: ZAPPolicy, waker: ZMQSocket) {
        self.policy = Mutex(policy)
        self.control = Mutex(Control(waker: waker, thread: nil))
    }
}

/// The authenticator's handles on its thread.
private struct Control: Sendable {
    /// The sending end of the wake pipe, used only under the lock (by stop()
    /// and by the thread closing it on exit); `nil` once the thread stopped.
    var waker: ZMQSocket?
    /// The thread to join; `nil` once stop() took it.
    var thread: ThreadHandle?
}

/// The `void *` zmq_threadstart returned.
///
/// `@unchecked Sendable`: it is only handed, once, to zmq_threadclose, under
/// the control lock that makes sure of "once".
private struct ThreadHandle: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

/// The handler thread's state: its two sockets, which it owns from the start
/// of the thread until it closes them.
private final class Worker: Sendable {
    let handler: ZMQSocket
    let wakeReceiver: ZMQSocket
    let shared: Shared

    init(handler: ZMQSocket, wakeReceiver: ZMQSocket, shared: Shared) {
        self.handler = handler
        self.wakeReceiver = wakeReceiver
        self.shared = shared
    }

    /// Answers requests until stop() or context termination.
    func run() {
        defer {
            // zmq_close releases an inproc endpoint later, on libzmq's reaper
            // thread; zmq_unbind releases it now, so that when stop() returns
            // a new authenticator can bind. (It fails with ETERM once the
            // context is terminating, when nothing can bind anyway.)
            try? handler.unbind(ZAPAuthenticator.endpoint)
            handler.close()
            wakeReceiver.close()
            shared.control.withLock { control in
                control.waker?.close()
                control.waker = nil
            }
        }
        do {
            while true {
                let ready = try poll([(handler, .readable), (wakeReceiver, .readable)], timeoutMilliseconds: -1)
                if !ready[1].isEmpty {
                    return
                }
                // REP alternates strictly: every request gets its reply
                // before the next one is read.
                if !ready[0].isEmpty, let request = try handler.receive(dontWait: true) {
                    try handler.send(reply(to: request))
                }
            }
        } catch ZMQError.terminated {
            return
        } catch {
            // Nothing else can fail on inproc REP and PAIR sockets that only
            // this thread uses. Carrying on without a handler would admit
            // every client key, so this stops the process instead.
            preconditionFailure("ZAP handler failed, and libzmq would admit everyone without it: \(error)")
        }
    }

    /// The reply frames (RFC 27): version, request id, status code, status
    /// text, user id, metadata.
    func reply(to frames: [[UInt8]]) -> [[UInt8]] {
        let requestID = frames.count > 1 ? frames[1] : []
        let decision: ZAPDecision
        if let request = Self.parse(frames) {
            // Read the policy, then decide outside the lock: a slow policy
            // must not hold up a reload.
            let policy = shared.policy.withLock { $0 }
            decision = policy.decision(for: request)
        } else {
            decision = .deny(reason: "malformed ZAP request")
        }
        switch decision {
        case .allow(let userID):
            return [Array("1.0".utf8), requestID, Array("200".utf8), Array("OK".utf8), Array(userID.utf8), []]
        case .deny(let reason):
            return [Array("1.0".utf8), requestID, Array("400".utf8), Array(reason.utf8), [], []]
        }
    }

    /// The request in `frames`: version "1.0", request id, domain, address,
    /// routing id, mechanism, credentials; `nil` if it is not one.
    static func parse(_ frames: [[UInt8]]) -> ZAPRequest? {
        guard frames.count >= 6, frames[0] == Array("1.0".utf8),
            let mechanism = SecurityMechanism(rawValue: String(decoding: frames[5], as: UTF8.self))
        else {
            return nil
        }
        return ZAPRequest(
            domain: String(decoding: frames[2], as: UTF8.self),
            address: String(decoding: frames[3], as: UTF8.self),
            routingID: frames[4],
            mechanism: mechanism,
            credentials: Array(frames[6...])
        )
    }
}

/// The handler thread's entry point, a C function for zmq_threadstart.
private func runWorker(_ argument: UnsafeMutableRawPointer?) {
    Unmanaged<Worker>.fromOpaque(argument!).takeRetainedValue().run()
}
