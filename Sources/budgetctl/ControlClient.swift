import BudgetCore
import ZMQ

/// Why a control request did not produce a result.
enum ControlClientError: Error, CustomStringConvertible {
    /// The daemon answered `{"ok": false, "error": {"code", "message"}}`.
    case daemon(code: String, message: String)
    /// Nothing came back in time: no daemon there, or a stuck one.
    case noReply(endpoint: String, timeout: String, curve: Bool = false)
    /// Something came back that is not a control reply.
    case badReply(endpoint: String, reason: String)
    /// SIGINT or SIGTERM arrived while waiting (only with ``StopSignal`` installed).
    case interrupted

    var description: String {
        switch self {
        case .daemon(let code, let message): "error \(code): \(message)"
        case .noReply(let endpoint, let timeout, let curve):
            // A CURVE handshake the daemon refuses gets no answer at all (CONTRACT §8): say that
            // this may be why (an audit: the same words as a daemon that is down).
            "no reply from \(endpoint) within \(timeout)"
                + (curve ? " (with CURVE: is the daemon up, this key in its operators or viewers list, and --curve-server-key its public key?)" : "")
        case .badReply(let endpoint, let reason): "bad reply from \(endpoint): \(reason)"
        case .interrupted: "interrupted"
        }
    }
}

/// A client of the control socket (CONTRACT §6): one JSON frame
/// `{"op", "args"}` out, one `{"ok", "result" | "error"}` frame back.
///
/// It is a REQ socket with `ZMQ_REQ_RELAXED` and `ZMQ_REQ_CORRELATE`: after a
/// request times out the next one can go at once, and a late reply to the old
/// one is dropped by libzmq instead of being taken for the new one's. The
/// linger is 0, so a daemon that never answers cannot hold up the exit.
///
/// Like its socket, a client belongs to one thread.
final class ControlClient {
    /// The endpoint connected to, for messages.
    let endpoint: String
    /// How long ``call(_:_:)`` waits for each reply.
    let timeout: Duration
    /// The timeout as people read it, such as `5s`.
    let timeoutText: String

    private let socket: ZMQSocket
    /// Whether the socket uses CURVE (for the no-reply message).
    private var curve = false

    /// Connects to `endpoint`; no daemon needs to be there yet (ZeroMQ
    /// connects in the background), so this fails only for a malformed endpoint.
    init(context: ZMQContext, endpoint: String, timeout: Duration, timeoutText: String, secure: (ZMQSocket) throws -> Void) throws {
        self.endpoint = endpoint
        self.timeout = timeout
        self.timeoutText = timeoutText
        socket = try context.makeSocket(.req)
        do {
            try socket.setLinger(milliseconds: 0)
            try socket.setReqCorrelate(true)
            try socket.setReqRelaxed(true)
            try secure(socket)
            curve = (try? socket.securityMechanism) == .curve
            try socket.connect(endpoint)
        } catch {
            socket.close()
            throw error
        }
    }

    /// Closes the socket; call it before terminating the context.
    func close() {
        socket.close()
    }

    /// Sends `op` with `args` and returns the reply's `result` (`null` when the
    /// reply has none).
    ///
    /// - Throws: ``ControlClientError`` for an error reply, no reply within
    ///   ``timeout``, or a reply that is not one; ``ZMQError`` from the socket.
    func call(_ op: String, _ args: JSONObject = JSONObject()) throws -> JSONValue {
        let request = JSONValue.object(JSONObject([("op", .string(op)), ("args", .object(args))]))
        // A REQ socket queues the request for a connecting peer, so this does
        // not block; `false` would mean no pipe at all, which is no reply either.
        guard try socket.send([request.serializedBytes()], dontWait: true) else {
            throw ControlClientError.noReply(endpoint: endpoint, timeout: timeoutText, curve: curve)
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while true {
            if StopSignal.requested {
                throw ControlClientError.interrupted
            }
            let left = clock.now.duration(to: deadline)
            guard left > .zero else {
                throw ControlClientError.noReply(endpoint: endpoint, timeout: timeoutText, curve: curve)
            }
            // Short slices, so a stop signal is noticed while waiting.
            let slice = min(250, max(1, Self.milliseconds(left)))
            let ready = try poll([(socket: socket, events: .readable)], timeoutMilliseconds: slice)
            guard ready[0].contains(.readable), let frames = try socket.receive(dontWait: true) else {
                continue
            }
            return try decodeReply(frames)
        }
    }

    /// The `result` of a reply, or the error it carries.
    private func decodeReply(_ frames: [[UInt8]]) throws -> JSONValue {
        // The REQ socket has removed the envelope; the JSON is the last frame.
        guard let payload = frames.last else {
            throw ControlClientError.badReply(endpoint: endpoint, reason: "an empty message")
        }
        let reply: JSONValue
        do {
            reply = try JSON.parse(payload, maxDepth: 512)
        } catch {
            throw ControlClientError.badReply(endpoint: endpoint, reason: "not JSON (\(error))")
        }
        switch reply["ok"]?.boolValue {
        case true?:
            return reply["result"] ?? .null
        case false?:
            let error = reply["error"]
            throw ControlClientError.daemon(
                code: error?["code"]?.stringValue ?? "UNKNOWN",
                message: error?["message"]?.stringValue ?? "(no message)"
            )
        case nil:
            throw ControlClientError.badReply(endpoint: endpoint, reason: "no \"ok\" field")
        }
    }

    /// `duration` in whole milliseconds, rounded up.
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let fraction = attoseconds / perMillisecond + (attoseconds % perMillisecond > 0 ? 1 : 0)
        return Int(seconds) * 1000 + Int(fraction)
    }
}
