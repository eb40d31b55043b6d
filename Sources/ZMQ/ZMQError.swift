internal import CZMQ

/// A libzmq call that failed: the error number `zmq_errno()` reported and the
/// call it came from.
///
/// Match on the code rather than on the whole error:
///
/// ```swift
/// do {
///     try socket.bind(endpoint)
/// } catch ZMQError.addressInUse {          // same as ZMQError.Code.addressInUse
///     // pick another endpoint
/// }
/// ```
///
/// Would-block is not an error in the socket API (`send` returns `false`,
/// `receive` returns `nil`), so `wouldBlock` only appears where a call could
/// not finish a multipart message it had started.
public struct ZMQError: Error, Hashable, CustomStringConvertible {
    /// A libzmq error number: a POSIX `errno` value or one of libzmq's own
    /// (such as `ETERM`), with named constants for those callers handle.
    ///
    /// Any `Code` matches an error in a `catch` clause or a `switch` (see
    /// ``~=(_:_:)``), so callers never deal with raw numbers.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The raw error number, as `zmq_errno()` returned it.
        public var rawValue: Int32

        /// Wraps a raw error number.
        public init(rawValue: Int32) {
            self.rawValue = rawValue
        }

        /// `EAGAIN`: the call would have blocked (non-blocking mode, or a
        /// send/receive timeout expired).
        public static let wouldBlock = Code(rawValue: EAGAIN)
        /// `EINTR`: a signal interrupted the call.
        public static let interrupted = Code(rawValue: EINTR)
        /// `ETERM`: the socket's context was terminated; close the socket.
        public static let terminated = Code(rawValue: ETERM)
        /// `EHOSTUNREACH`: a ROUTER with `setRouterMandatory(true)` was asked
        /// to send to an identity it has no peer for.
        public static let hostUnreachable = Code(rawValue: EHOSTUNREACH)
        /// `EADDRINUSE`: the endpoint is already bound.
        public static let addressInUse = Code(rawValue: EADDRINUSE)
        /// `EADDRNOTAVAIL`: the endpoint names an address that is not local.
        public static let addressNotAvailable = Code(rawValue: EADDRNOTAVAIL)
        /// `ENODEV`: the endpoint names an interface that does not exist.
        public static let noSuchDevice = Code(rawValue: ENODEV)
        /// `EINVAL`: an invalid argument, such as a malformed endpoint or an
        /// option value out of range.
        public static let invalidArgument = Code(rawValue: EINVAL)
        /// `EPROTONOSUPPORT`: the endpoint's transport is not supported.
        public static let protocolNotSupported = Code(rawValue: EPROTONOSUPPORT)
        /// `ENOCOMPATPROTO`: the transport does not suit the socket type.
        public static let incompatibleProtocol = Code(rawValue: ENOCOMPATPROTO)
        /// `ENOENT`: `disconnect` or `unbind` of an endpoint that is not connected or bound.
        public static let noSuchEndpoint = Code(rawValue: ENOENT)
        /// `EMSGSIZE`: a message is too large.
        public static let messageTooLarge = Code(rawValue: EMSGSIZE)
        /// `EFSM`: the operation is not allowed in the socket's current state
        /// (for example a REQ sending twice without `setReqRelaxed(true)`).
        public static let invalidState = Code(rawValue: EFSM)
        /// `ENOTSUP`: the operation is not supported by this socket type.
        public static let notSupported = Code(rawValue: ENOTSUP)
        /// `EMFILE`: the process or the context ran out of sockets or file descriptors.
        public static let tooManyOpenFiles = Code(rawValue: EMFILE)
        /// `EMTHREAD`: no I/O thread is available for the operation.
        public static let noIOThread = Code(rawValue: EMTHREAD)

        /// libzmq's text for the code (`zmq_strerror`) and its number.
        public var description: String {
            "\(String(cString: zmq_strerror(rawValue))) (errno \(rawValue))"
        }

        /// Whether `error` is a ``ZMQError`` with this code, so a code can be
        /// a `catch` pattern.
        ///
        /// The operator lives on `Code`, not on `ZMQError`: Swift requires a
        /// member operator to take its own type, and the pattern is the code.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? ZMQError)?.code == code
        }
    }

    /// The error number.
    public let code: Code

    /// The libzmq call that failed and its main argument, such as
    /// `zmq_bind(tcp://127.0.0.1:5555)`.
    public let operation: String

    /// Creates an error; the wrapper does this, tests and fakes may too.
    public init(code: Code, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The operation and libzmq's text for the code.
    public var description: String {
        "\(operation) failed: \(code)"
    }

    // Shortcuts so a catch clause can read `catch ZMQError.wouldBlock`
    // (GRDB's DatabaseError habit): each is the `Code` of the same name.

    /// ``Code/wouldBlock``.
    public static let wouldBlock = Code.wouldBlock
    /// ``Code/interrupted``.
    public static let interrupted = Code.interrupted
    /// ``Code/terminated``.
    public static let terminated = Code.terminated
    /// ``Code/hostUnreachable``.
    public static let hostUnreachable = Code.hostUnreachable
    /// ``Code/addressInUse``.
    public static let addressInUse = Code.addressInUse
    /// ``Code/addressNotAvailable``.
    public static let addressNotAvailable = Code.addressNotAvailable
    /// ``Code/noSuchDevice``.
    public static let noSuchDevice = Code.noSuchDevice
    /// ``Code/invalidArgument``.
    public static let invalidArgument = Code.invalidArgument
    /// ``Code/protocolNotSupported``.
    public static let protocolNotSupported = Code.protocolNotSupported
    /// ``Code/incompatibleProtocol``.
    public static let incompatibleProtocol = Code.incompatibleProtocol
    /// ``Code/noSuchEndpoint``.
    public static let noSuchEndpoint = Code.noSuchEndpoint
    /// ``Code/messageTooLarge``.
    public static let messageTooLarge = Code.messageTooLarge
    /// ``Code/invalidState``.
    public static let invalidState = Code.invalidState
    /// ``Code/notSupported``.
    public static let notSupported = Code.notSupported
    /// ``Code/tooManyOpenFiles``.
    public static let tooManyOpenFiles = Code.tooManyOpenFiles
    /// ``Code/noIOThread``.
    public static let noIOThread = Code.noIOThread
}
