internal import CZMQ
internal import Synchronization

/// A libzmq context: the I/O threads and the sockets made from it.
///
/// Make one per process, share it freely, and call ``terminate()`` once every
/// service is done. zmq(7): "A 0MQ context is thread safe and may be shared
/// among as many application threads as necessary, without any additional
/// locking required on the part of the caller". The sockets it makes are not.
///
/// Termination is also how blocked sockets are woken up at shutdown: once
/// ``terminate()`` starts, every blocking call on this context's sockets fails
/// with ``ZMQError/Code/terminated``, their owners close them, and
/// ``terminate()`` returns after the last one is closed.
public final class ZMQContext: Sendable {
    /// `nil` once ``terminate()`` has started. The lock orders socket creation
    /// against termination: `zmq_socket` on a context that `zmq_ctx_term` has
    /// freed would be a use after free.
    private let handle: Mutex<ContextHandle?>

    /// Creates a context.
    ///
    /// - Parameters:
    ///   - ioThreads: libzmq's I/O thread count (`ZMQ_IO_THREADS`); the zmq
    ///     guide's rule of thumb is one per gigabyte per second of traffic.
    ///   - blocky: libzmq's `ZMQ_BLOCKY`. When `true` (libzmq's default) new
    ///     sockets linger forever, so ``terminate()`` waits until queued
    ///     outgoing messages are delivered; when `false` they get a linger of
    ///     zero and termination drops them.
    /// - Throws: ``ZMQError`` if libzmq cannot create the context or rejects an option
    ///   (``ZMQError/Code/invalidArgument`` for a negative `ioThreads`).
    public init(ioThreads: Int32 = 1, blocky: Bool = true) throws {
        guard let pointer = zmq_ctx_new() else {
            throw ZMQError(code: ZMQError.Code(rawValue: zmq_errno()), operation: "zmq_ctx_new")
        }
        do {
            // Both options must be set before the first socket exists.
            try zmqCheck("zmq_ctx_set(ZMQ_IO_THREADS, \(ioThreads))") {
                zmq_ctx_set(pointer, ZMQ_IO_THREADS, ioThreads)
            }
            try zmqCheck("zmq_ctx_set(ZMQ_BLOCKY, \(blocky))") {
                zmq_ctx_set(pointer, ZMQ_BLOCKY, blocky ? 1 : 0)
            }
        } catch {
            // No sockets yet, so this cannot block.
            zmq_ctx_term(pointer)
            throw error
        }
        handle = Mutex(ContextHandle(pointer: pointer))
    }

    deinit {
        // Every socket holds its context strongly, so by now all of them are
        // closed and this only waits for their lingering messages.
        terminate()
    }

    /// Creates a socket of `type`.
    ///
    /// The socket is not thread-safe: see ``ZMQSocket``.
    ///
    /// - Throws: ``ZMQError/Code/terminated`` once ``terminate()`` has been called;
    ///   ``ZMQError/Code/tooManyOpenFiles`` when the context's socket limit is reached.
    public func makeSocket(_ type: SocketType) throws -> ZMQSocket {
        let socket = try handle.withLock { handle throws(ZMQError) -> SocketHandle in
            guard let handle else {
                throw ZMQError(code: .terminated, operation: "zmq_socket(\(type))")
            }
            // zmq_socket(3): returns NULL and sets errno on failure.
            guard let pointer = zmq_socket(handle.pointer, type.rawValue) else {
                throw ZMQError(code: ZMQError.Code(rawValue: zmq_errno()), operation: "zmq_socket(\(type))")
            }
            return SocketHandle(pointer: pointer)
        }
        return ZMQSocket(context: self, type: type, handle: socket.pointer)
    }

    /// Terminates the context; calling it again does nothing.
    ///
    /// zmq_ctx_term(3): blocking calls on the context's open sockets "shall
    /// return immediately with an error code of ETERM", then the call blocks
    /// until every socket has been closed with `zmq_close()` and its queued
    /// messages were sent or its linger period expired. So every socket's
    /// owner must close it for this to return. An interrupting signal
    /// restarts the wait, as the docs allow.
    ///
    /// A second call made while the first is still waiting returns at once.
    public func terminate() {
        let taken = handle.withLock { handle -> ContextHandle? in
            defer { handle = nil }
            return handle
        }
        guard let taken else { return }
        do {
            try zmqCheck("zmq_ctx_term", retryingInterrupts: true) { zmq_ctx_term(taken.pointer) }
        } catch {
            // zmq_ctx_term(3) lists only EFAULT (trapped by zmqCall) and EINTR (retried).
            assertionFailure("\(error)")
        }
    }
}

/// A `void *` libzmq context.
///
/// `@unchecked Sendable` because libzmq contexts are thread-safe; the only
/// hazard is using one after `zmq_ctx_term`, which ``ZMQContext`` rules out.
private struct ContextHandle: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

/// A freshly made `void *` socket on its way out of the context's lock to the
/// ``ZMQSocket`` that will own it.
///
/// `@unchecked Sendable` only to cross that closure boundary: nothing else has
/// seen the socket yet.
private struct SocketHandle: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}
