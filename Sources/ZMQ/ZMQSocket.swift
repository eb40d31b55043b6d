internal import CZMQ

/// A libzmq socket, made by ``ZMQContext/makeSocket(_:)``.
///
/// Not thread-safe: libzmq sockets must be used by one thread at a time, and
/// this wrapper adds no lock. Give each socket one owner (a service's thread
/// or serial executor) for its whole life, from creation to ``close()``.
///
/// `@unchecked Sendable` only so a socket can be created in one place and
/// handed once to the thread that will own it. zmq(7) allows exactly that
/// migration when "full memory barriers are issued", which starting a thread,
/// taking a lock or hopping executors all do. Sharing it after that is a data
/// race the compiler cannot see.
///
/// Close every socket explicitly: the context cannot terminate while one is
/// open, and `deinit` treats a forgotten close as a bug (it asserts in debug
/// builds, then closes anyway).
public final class ZMQSocket: @unchecked Sendable {
    /// The socket's type.
    public let type: SocketType

    /// Kept so the context outlives its sockets: a context deinitialized with
    /// an open socket would wait forever in `zmq_ctx_term`.
    private let context: ZMQContext

    /// The `void *` socket; `nil` once closed.
    private var handle: UnsafeMutableRawPointer?

    internal init(context: ZMQContext, type: SocketType, handle: UnsafeMutableRawPointer) {
        self.context = context
        self.type = type
        self.handle = handle
    }

    deinit {
        assert(handle == nil, "ZMQSocket (\(type)) deinitialized without close()")
        close()
    }

    /// The open socket, for the libzmq calls in this module.
    ///
    /// Using a closed socket is a programmer error, so it traps instead of
    /// handing libzmq a dangling pointer.
    @inline(__always)
    internal var openHandle: UnsafeMutableRawPointer {
        guard let handle else {
            preconditionFailure("ZMQSocket (\(type)) used after close()")
        }
        return handle
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool {
        handle == nil
    }

    /// Closes the socket; calling it again does nothing.
    ///
    /// Messages still queued for sending are kept for the socket's linger
    /// period (libzmq's default: until delivered), and ``ZMQContext/terminate()``
    /// waits for them. Use ``close(lingerMilliseconds:)`` to bound that wait.
    public func close() {
        guard let handle else { return }
        self.handle = nil
        // zmq_close(3) fails only with ENOTSOCK, which `handle` rules out.
        zmq_close(handle)
    }

    /// Sets `ZMQ_LINGER`, then closes the socket; does nothing if already closed.
    ///
    /// - Parameter milliseconds: how long queued outgoing messages may delay
    ///   context termination; 0 drops them, -1 waits forever.
    public func close(lingerMilliseconds milliseconds: Int32) {
        guard !isClosed else { return }
        do {
            try setLinger(milliseconds: milliseconds)
        } catch {
            // Only a negative value below -1 can be refused; closing matters more.
            assertionFailure("\(error)")
        }
        close()
    }

    /// Binds to a local endpoint such as `tcp://127.0.0.1:*`, `ipc:///path`
    /// or `inproc://name`.
    ///
    /// A `*` port binds an ephemeral port; read it back from ``lastEndpoint``.
    ///
    /// - Throws: ``ZMQError`` (``ZMQError/Code/addressInUse``,
    ///   ``ZMQError/Code/invalidArgument`` for a malformed endpoint,
    ///   ``ZMQError/Code/protocolNotSupported`` for an unknown transport, ...).
    public func bind(_ endpoint: String) throws {
        let socket = openHandle
        try enableIPv6IfNeeded(endpoint)
        try zmqCheck("zmq_bind(\(endpoint))") { zmq_bind(socket, endpoint) }
    }

    /// An IPv6 literal (`tcp://[::1]:7603`) needs `ZMQ_IPV6` on the socket: without it libzmq
    /// fails with "No such device" (an audit's `[::1]` endpoint that `--check-config` passed
    /// and the start refused). Set for such endpoints only, so IPv4 ones stay as they were.
    private func enableIPv6IfNeeded(_ endpoint: String) throws {
        guard endpoint.hasPrefix("tcp://"), endpoint.dropFirst(6).contains("[") else { return }
        try setFixedOption(ZMQ_IPV6, 1 as CInt, "ZMQ_IPV6")
    }

    /// Stops listening on an endpoint bound with ``bind(_:)``.
    ///
    /// For an ephemeral bind, pass ``lastEndpoint``, not the `*` form.
    ///
    /// - Throws: ``ZMQError/Code/noSuchEndpoint`` if it is not bound.
    public func unbind(_ endpoint: String) throws {
        let socket = openHandle
        try zmqCheck("zmq_unbind(\(endpoint))") { zmq_unbind(socket, endpoint) }
    }

    /// Connects to a remote endpoint.
    ///
    /// Connecting succeeds before any peer exists: libzmq connects (and
    /// reconnects) in the background.
    ///
    /// - Throws: ``ZMQError`` for a malformed or unsupported endpoint.
    public func connect(_ endpoint: String) throws {
        let socket = openHandle
        try enableIPv6IfNeeded(endpoint)
        try zmqCheck("zmq_connect(\(endpoint))") { zmq_connect(socket, endpoint) }
    }

    /// Disconnects from an endpoint given to ``connect(_:)``.
    ///
    /// - Throws: ``ZMQError/Code/noSuchEndpoint`` if it is not connected.
    public func disconnect(_ endpoint: String) throws {
        let socket = openHandle
        try zmqCheck("zmq_disconnect(\(endpoint))") { zmq_disconnect(socket, endpoint) }
    }

    /// The endpoint most recently bound or connected (`ZMQ_LAST_ENDPOINT`),
    /// with an ephemeral port resolved: `tcp://127.0.0.1:41234` after binding
    /// `tcp://127.0.0.1:*`. Empty if there was none.
    public var lastEndpoint: String {
        get throws {
            let socket = openHandle
            // Endpoints are short (an ipc path is at most 107 bytes); libzmq
            // fails with EINVAL rather than truncating if this were too small.
            return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 512) { buffer in
                var size = buffer.count
                try zmqCheck("zmq_getsockopt(ZMQ_LAST_ENDPOINT)") {
                    zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, buffer.baseAddress, &size)
                }
                // `size` counts the terminating NUL.
                return String(decoding: buffer.prefix(max(size - 1, 0)), as: UTF8.self)
            }
        }
    }
}
