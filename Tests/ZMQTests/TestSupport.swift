import Testing
import ZMQ

/// A context for one test, plus every socket the test makes from it.
///
/// Each test gets its own context so tests can run in parallel (inproc names
/// are per context too). Sockets get a linger of 0 and a receive/send timeout
/// so a failing test reports `nil`/`false` instead of hanging the run.
final class TestContext {
    let context: ZMQContext
    private var sockets: [ZMQSocket] = []

    init() throws {
        context = try ZMQContext()
    }

    func socket(_ type: SocketType, timeoutMilliseconds: Int32 = 5_000) throws -> ZMQSocket {
        let socket = try context.makeSocket(type)
        sockets.append(socket)
        try socket.setLinger(milliseconds: 0)
        try socket.setReceiveTimeout(milliseconds: timeoutMilliseconds)
        try socket.setSendTimeout(milliseconds: timeoutMilliseconds)
        return socket
    }

    func shutDown() {
        for socket in sockets {
            socket.close()
        }
        context.terminate()
    }
}

/// Runs `body` with a fresh ``TestContext`` and shuts it down afterwards,
/// even when `body` throws.
func withZMQ(_ body: (TestContext) throws -> Void) throws {
    let zmq = try TestContext()
    defer { zmq.shutDown() }
    try body(zmq)
}

/// The transports the messaging tests run over. TCP always binds an
/// ephemeral port (tests run in parallel, so never a fixed one).
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tcp
    case inproc

    /// Binds `socket` and returns the endpoint a peer should connect to.
    func bind(_ socket: ZMQSocket, name: String) throws -> String {
        switch self {
        case .tcp:
            try socket.bind("tcp://127.0.0.1:*")
            return try socket.lastEndpoint
        case .inproc:
            let endpoint = "inproc://\(name)"
            try socket.bind(endpoint)
            return endpoint
        }
    }

    var testDescription: String { rawValue }
}

/// A message frame from text.
func frame(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// Binds `socket` to an ephemeral loopback TCP port and returns the endpoint.
func bindEphemeral(_ socket: ZMQSocket) throws -> String {
    try socket.bind("tcp://127.0.0.1:*")
    return try socket.lastEndpoint
}

/// Milliseconds elapsed while running `body`.
func milliseconds<T>(_ body: () throws -> T) rethrows -> (result: T, milliseconds: Int64) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = try body()
    let elapsed = start.duration(to: clock.now)
    return (result, elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
}
