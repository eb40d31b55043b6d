internal import CZMQ

/// What a libzmq call that can be refused for lack of room or data produced.
internal enum CallResult {
    /// The call succeeded with this non-negative return value.
    case done(CInt)
    /// `EAGAIN`: non-blocking mode found nothing to do, or a timeout expired.
    case wouldBlock
}

/// Runs one libzmq call, the only place the wrapper interprets `zmq_errno()`.
///
/// - `zmq_errno()` is read immediately after `body` returns -1: nothing may run
///   in between that could call into libc and overwrite the thread's errno.
/// - `EINTR` is retried only when `retryingInterrupts`; callers pass `true` for
///   send, receive and context termination, whose docs say they can simply be
///   restarted, and `false` where the caller should see the interruption.
/// - `EAGAIN` becomes `.wouldBlock` rather than an error.
/// - `ENOTSOCK` and `EFAULT` mean a closed socket, a dead context or a bad
///   message was passed in: a programmer error, so it traps.
/// - Anything else throws, naming the operation; `operation` is an autoclosure
///   so the hot path never builds the string.
@inline(__always)
internal func zmqCall(
    _ operation: @autoclosure () -> String,
    retryingInterrupts: Bool = false,
    _ body: () -> CInt
) throws(ZMQError) -> CallResult {
    while true {
        let result = body()
        if result >= 0 {
            return .done(result)
        }
        let number = zmq_errno()
        switch number {
        case EINTR where retryingInterrupts:
            continue
        case EAGAIN:
            return .wouldBlock
        case ENOTSOCK, EFAULT:
            preconditionFailure("\(operation()): \(ZMQError.Code(rawValue: number)) (programmer error)")
        default:
            throw ZMQError(code: ZMQError.Code(rawValue: number), operation: operation())
        }
    }
}

/// ``zmqCall(_:retryingInterrupts:_:)`` for calls where `EAGAIN` is a failure
/// like any other (bind, options, or the later frames of a message).
@inline(__always)
@discardableResult
internal func zmqCheck(
    _ operation: @autoclosure () -> String,
    retryingInterrupts: Bool = false,
    _ body: () -> CInt
) throws(ZMQError) -> CInt {
    switch try zmqCall(operation(), retryingInterrupts: retryingInterrupts, body) {
    case .done(let result):
        return result
    case .wouldBlock:
        throw ZMQError(code: .wouldBlock, operation: operation())
    }
}
