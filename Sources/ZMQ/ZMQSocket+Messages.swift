internal import CZMQ

extension ZMQSocket {
    /// Sends `frames` as one multipart message.
    ///
    /// libzmq delivers a multipart message whole or not at all, and once it
    /// has accepted the first frame it accepts the rest (high-water marks count
    /// whole messages), so only the first frame can be refused for lack of
    /// room. The later frames are therefore sent without `ZMQ_DONTWAIT`: they
    /// do not wait, and the socket is never left holding half a message.
    ///
    /// - Parameters:
    ///   - frames: the frames, in order; at least one, each may be empty.
    ///   - dontWait: fail fast instead of blocking when the message cannot be
    ///     queued (no peer, or every peer at its high-water mark).
    /// - Returns: `true` if the message was queued; `false` if it would have
    ///   blocked (only possible with `dontWait`, or when a send timeout expired).
    /// - Throws: ``ZMQError``, such as ``ZMQError/Code/hostUnreachable`` from a
    ///   ROUTER with `setRouterMandatory(true)`, ``ZMQError/Code/invalidState``
    ///   from a REQ out of turn, ``ZMQError/Code/terminated`` at shutdown.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        precondition(!frames.isEmpty, "ZMQSocket.send: a message needs at least one frame")
        let socket = openHandle
        let last = frames.count - 1
        for index in frames.indices {
            var flags: CInt = index == last ? 0 : ZMQ_SNDMORE
            if index == 0, dontWait {
                flags |= ZMQ_DONTWAIT
            }
            // zmq_send copies the bytes before returning, so the buffer is
            // needed only for the call.
            let result = try frames[index].withUnsafeBytes { bytes throws(ZMQError) in
                try zmqCall("zmq_send(\(type), frame \(index + 1) of \(frames.count))", retryingInterrupts: true) {
                    zmq_send(socket, bytes.baseAddress, bytes.count, flags)
                }
            }
            if case .wouldBlock = result {
                if index == 0 {
                    return false
                }
                // Only a send timeout can get here, and the message is broken.
                throw ZMQError(code: .wouldBlock, operation: "zmq_send(\(type), frame \(index + 1) of \(frames.count))")
            }
        }
        return true
    }

    /// Receives one whole multipart message, each frame copied into its own array.
    ///
    /// - Parameter dontWait: return `nil` at once instead of blocking when no
    ///   message is waiting.
    /// - Returns: the frames in order (at least one), or `nil` if no message
    ///   was ready (only possible with `dontWait`, or when the receive timeout
    ///   expired).
    /// - Throws: ``ZMQError``, such as ``ZMQError/Code/terminated`` at shutdown.
    public func receive(dontWait: Bool = false) throws -> [[UInt8]]? {
        try receiveMessage(dontWait: dontWait, readingUserID: false)?.frames
    }

    /// Receives one whole multipart message and the authenticated identity
    /// of the peer that sent it: the `User-Id` property libzmq attaches to
    /// every frame of a connection that a ZAP handler admitted
    /// (`zmq_msg_gets`).
    ///
    /// With a ``ZAPAuthenticator`` table policy the user id is the sender's
    /// CURVE public key in Z85, so a server can apply roles and audit per
    /// message. It is there on the receiving side of the connection's server
    /// (the socket that set ``setCurveServer(secretKey:)``), whatever the
    /// socket type: a ROUTER sees it with the identity frame, a bound SUB with
    /// each published message, an XPUB with each subscription. A CURVE client
    /// never has one: the server is not authenticated by ZAP.
    ///
    /// - Parameter dontWait: return `nil` at once instead of blocking when no
    ///   message is waiting.
    /// - Returns: the frames in order (at least one) and the user id, `nil`
    ///   when no ZAP handler admitted the peer or it gave an empty user id
    ///   (a NULL-mechanism connection); `nil` altogether if no message was
    ///   ready (only possible with `dontWait`, or when the receive timeout
    ///   expired).
    /// - Throws: ``ZMQError``, such as ``ZMQError/Code/terminated`` at shutdown.
    public func receiveWithUserID(dontWait: Bool = false) throws -> (frames: [[UInt8]], userID: String?)? {
        try receiveMessage(dontWait: dontWait, readingUserID: true)
    }

    /// ``receive(dontWait:)``, and when `readingUserID` the first frame's
    /// `User-Id` property.
    private func receiveMessage(
        dontWait: Bool,
        readingUserID: Bool
    ) throws(ZMQError) -> (frames: [[UInt8]], userID: String?)? {
        let socket = openHandle
        // A zmq_msg_t must stay at one address while libzmq uses it (small
        // messages are stored inside it), so it lives in a temporary
        // allocation, not a Swift `var` that inout could copy. No heap either.
        return try withUnsafeTemporaryAllocation(of: zmq_msg_t.self, capacity: 1) {
            buffer throws(ZMQError) -> (frames: [[UInt8]], userID: String?)? in
            let message = buffer.baseAddress!
            // zmq_msg_init(3): "always returns zero".
            zmq_msg_init(message)
            defer { zmq_msg_close(message) }

            var frames: [[UInt8]] = []
            var userID: String?
            // The first frame may be refused; the rest of a message arrives
            // with it (atomic delivery), so they are read without ZMQ_DONTWAIT.
            var flags: CInt = dontWait ? ZMQ_DONTWAIT : 0
            repeat {
                // zmq_msg_recv(3) releases the previous frame held in `message`.
                let result = try zmqCall("zmq_msg_recv(\(type), frame \(frames.count + 1))", retryingInterrupts: true) {
                    zmq_msg_recv(message, socket, flags)
                }
                guard case .done = result else {
                    if frames.isEmpty {
                        return nil
                    }
                    // Only a receive timeout can get here.
                    throw ZMQError(code: .wouldBlock, operation: "zmq_msg_recv(\(type), frame \(frames.count + 1))")
                }
                if frames.isEmpty {
                    // Most of our messages have two to four frames.
                    frames.reserveCapacity(4)
                }
                if readingUserID && userID == nil {
                    // zmq_msg_gets(3): the string belongs to the message and lives until it is
                    // closed or reused, so it is copied now. NULL (EINVAL) when the connection
                    // has no such property: no ZAP handler admitted it. Every frame is asked,
                    // not only the first: libzmq 4.3.4's ROUTER drops the metadata from the
                    // identity frame it prefetched for zmq_poll (seen in budgetd's engine,
                    // which polls), while the frames after it keep theirs.
                    if let value = zmq_msg_gets(message, "User-Id"), value.pointee != 0 {
                        userID = String(cString: value)
                    }
                }
                frames.append(
                    [UInt8](UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message)))
                )
                flags = 0
            } while zmq_msg_more(message) != 0
            return (frames, userID)
        }
    }
}
