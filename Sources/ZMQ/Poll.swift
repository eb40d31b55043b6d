internal import CZMQ
#if canImport(Glibc)
import Glibc
#endif

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
    try poll(items, signal: nil, timeoutMilliseconds: timeoutMilliseconds).events
}

/// Waits until at least one socket is ready for what it asked, or `signal` has
/// been signalled (`zmq_poll` with the signal's descriptor as a plain item).
///
/// - Returns: the sockets' events as ``poll(_:timeoutMilliseconds:)`` returns
///   them, and whether `signal` was signalled (it stays so until ``PollSignal/clear()``).
public func poll(
    _ items: [(socket: ZMQSocket, events: PollEvents)],
    signal: PollSignal?,
    timeoutMilliseconds: Int
) throws -> (events: [PollEvents], signalled: Bool) {
    let count = items.count + (signal == nil ? 0 : 1)
    // The sockets must stay alive (not be deinitialized and closed) while
    // libzmq holds their handles; so must the signal's descriptor.
    return try withExtendedLifetime((items, signal)) { () throws(ZMQError) -> (events: [PollEvents], signalled: Bool) in
        try withUnsafeTemporaryAllocation(of: zmq_pollitem_t.self, capacity: count) {
            pollItems throws(ZMQError) -> (events: [PollEvents], signalled: Bool) in
            for (index, item) in items.enumerated() {
                (pollItems.baseAddress! + index).initialize(
                    to: zmq_pollitem_t(socket: item.socket.openHandle, fd: 0, events: item.events.rawValue, revents: 0)
                )
            }
            if let signal {
                (pollItems.baseAddress! + items.count).initialize(
                    to: zmq_pollitem_t(socket: nil, fd: signal.fileDescriptor, events: Int16(ZMQ_POLLIN), revents: 0)
                )
            }
            let result: CallResult
            do throws(ZMQError) {
                // EINTR is not retried: the caller's loop gets to look at its
                // stop flag, which is what a signal usually means.
                result = try zmqCall("zmq_poll(\(count) items)") {
                    zmq_poll(pollItems.baseAddress, CInt(count), timeoutMilliseconds)
                }
            } catch {
                guard error.code == .interrupted else { throw error }
                result = .done(0)
            }
            guard case .done(let ready) = result, ready > 0 else {
                // Timeout or interrupted. (zmq_poll does not report EAGAIN,
                // and "would block" would mean nothing is ready all the same.)
                return ([PollEvents](repeating: [], count: items.count), false)
            }
            let events = pollItems.prefix(items.count).map { PollEvents(rawValue: $0.revents) }
            let signalled = signal != nil && pollItems[items.count].revents & Int16(ZMQ_POLLIN) != 0
            return (events, signalled)
        }
    }
}

/// A wake-up another thread can send to a thread waiting in
/// ``poll(_:signal:timeoutMilliseconds:)``: a Linux eventfd, so the waiting thread
/// needs no socket of the signalling thread's (sockets are not thread-safe).
/// Signals do not queue: several before a ``clear()`` wake the poll once.
public final class PollSignal: Sendable {
    /// The eventfd (non-blocking, closed on exec).
    public let fileDescriptor: Int32

    /// - Throws: ``ZMQError`` with the `errno` of `eventfd(2)` (too many open files, say).
    public init() throws(ZMQError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw ZMQError(code: ZMQError.Code(rawValue: errno), operation: "eventfd") }
        fileDescriptor = fd
    }

    deinit { close(fileDescriptor) }

    /// Wakes the poll (from any thread).
    public func signal() {
        var one: UInt64 = 1
        // Fails only when the counter would overflow (2⁶⁴ − 2 signals without a clear).
        _ = write(fileDescriptor, &one, 8)
    }

    /// Takes the signal back: the next poll waits again (on the polling thread).
    public func clear() {
        var value: UInt64 = 0
        // EAGAIN when it was not signalled: nothing to take.
        _ = read(fileDescriptor, &value, 8)
    }
}
