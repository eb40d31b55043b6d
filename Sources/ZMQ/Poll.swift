internal import CZMQ

/// The conditions ``poll(_:timeoutMilliseconds:)`` waits for and reports.
public struct PollEvents: OptionSet, Sendable, Hashable {
    /// The raw `ZMQ_POLL*` bits (`short` in `zmq_pollitem_t`).
    public var rawValue: Int16

    /// Wraps raw `ZMQ_POLL*` bits.
    public init(rawValue: Int16) {
        self.rawValue = rawValue
    }

    /// `ZMQ_POLLIN`: a whole message can be received without blocking.
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    /// `ZMQ_POLLOUT`: a message can be sent without blocking.
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// `ZMQ_POLLERR`: only reported for plain file descriptors, which this
    /// wrapper does not poll; kept for completeness.
    public static let error = PollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Waits until at least one socket is ready for what it asked (`zmq_poll`).
///
/// - Parameters:
///   - items: the sockets and the events wanted from each. Every socket must
///     belong to the calling thread (sockets are not thread-safe).
///   - timeoutMilliseconds: how long to wait: -1 forever, 0 not at all.
/// - Returns: the events that occurred, one entry per item in the same order;
///   all empty on timeout, or when a signal interrupted the wait, so a loop
///   can check its stop flag and poll again.
/// - Throws: ``ZMQError``, such as ``ZMQError/Code/terminated`` once a socket's
///   context is being terminated.
public func poll(
    _ items: [(socket: ZMQSocket, events: PollEvents)],
    timeoutMilliseconds: Int
) throws -> [PollEvents] {
    // The sockets must stay alive (not be deinitialized and closed) while
    // libzmq holds their handles.
    try withExtendedLifetime(items) { () throws(ZMQError) -> [PollEvents] in
        try withUnsafeTemporaryAllocation(of: zmq_pollitem_t.self, capacity: items.count) {
            pollItems throws(ZMQError) -> [PollEvents] in
            for (index, item) in items.enumerated() {
                (pollItems.baseAddress! + index).initialize(
                    to: zmq_pollitem_t(socket: item.socket.openHandle, fd: 0, events: item.events.rawValue, revents: 0)
                )
            }
            let result: CallResult
            do throws(ZMQError) {
                // EINTR is not retried: the caller's loop gets to look at its
                // stop flag, which is what a signal usually means.
                result = try zmqCall("zmq_poll(\(items.count) items)") {
                    zmq_poll(pollItems.baseAddress, CInt(items.count), timeoutMilliseconds)
                }
            } catch {
                guard error.code == .interrupted else { throw error }
                result = .done(0)
            }
            guard case .done(let ready) = result, ready > 0 else {
                // Timeout or interrupted. (zmq_poll does not report EAGAIN,
                // and "would block" would mean nothing is ready all the same.)
                return [PollEvents](repeating: [], count: items.count)
            }
            return pollItems.map { PollEvents(rawValue: $0.revents) }
        }
    }
}
