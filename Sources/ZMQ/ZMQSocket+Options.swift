internal import CZMQ

extension ZMQSocket {
    /// Sets `ZMQ_SNDHWM`: how many outgoing messages may queue per peer
    /// before sends block or drop (per the socket type). 0 means no limit.
    public func setSendHighWaterMark(_ n: Int32) throws {
        try setFixedOption(ZMQ_SNDHWM, n, "ZMQ_SNDHWM")
    }

    /// Sets `ZMQ_RCVHWM`: how many incoming messages may queue per peer.
    /// 0 means no limit.
    public func setReceiveHighWaterMark(_ n: Int32) throws {
        try setFixedOption(ZMQ_RCVHWM, n, "ZMQ_RCVHWM")
    }

    /// Sets `ZMQ_MAXMSGSIZE`: a peer that sends a larger frame is disconnected
    /// and the message is never delivered (it reconnects on its own). -1 means
    /// no limit. Set it before `bind`/`connect`: libzmq applies it when a
    /// connection starts, and only to TCP/IPC, not inproc.
    ///
    /// Despite its name, libzmq 4.3 checks each frame, not the whole multipart
    /// message: three 80-byte frames pass a limit of 100.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        try setFixedOption(ZMQ_MAXMSGSIZE, bytes, "ZMQ_MAXMSGSIZE")
    }

    /// Sets `ZMQ_LINGER`: how long messages still queued at close may keep
    /// ``ZMQContext/terminate()`` waiting. -1 (libzmq's default) waits forever,
    /// 0 drops them.
    public func setLinger(milliseconds: Int32) throws {
        try setFixedOption(ZMQ_LINGER, milliseconds, "ZMQ_LINGER")
    }

    /// Subscribes a SUB socket to messages whose first frame starts with
    /// `prefix`; the empty prefix subscribes to everything.
    public func subscribe(_ prefix: String) throws {
        var prefix = prefix
        try prefix.withUTF8 { try setBufferOption(ZMQ_SUBSCRIBE, UnsafeRawBufferPointer($0), "ZMQ_SUBSCRIBE") }
    }

    /// Subscribes a SUB socket to messages whose first frame starts with `prefix`.
    public func subscribe(_ prefix: [UInt8]) throws {
        try prefix.withUnsafeBytes { try setBufferOption(ZMQ_SUBSCRIBE, $0, "ZMQ_SUBSCRIBE") }
    }

    /// Removes one earlier ``subscribe(_:)-(String)`` of the same prefix.
    public func unsubscribe(_ prefix: String) throws {
        var prefix = prefix
        try prefix.withUTF8 { try setBufferOption(ZMQ_UNSUBSCRIBE, UnsafeRawBufferPointer($0), "ZMQ_UNSUBSCRIBE") }
    }

    /// Removes one earlier ``subscribe(_:)-([UInt8])`` of the same prefix.
    public func unsubscribe(_ prefix: [UInt8]) throws {
        try prefix.withUnsafeBytes { try setBufferOption(ZMQ_UNSUBSCRIBE, $0, "ZMQ_UNSUBSCRIBE") }
    }

    /// Sets `ZMQ_RCVTIMEO`: a blocking ``receive(dontWait:)`` gives up after
    /// this long and returns `nil`. -1 (the default) waits forever.
    public func setReceiveTimeout(milliseconds: Int32) throws {
        try setFixedOption(ZMQ_RCVTIMEO, milliseconds, "ZMQ_RCVTIMEO")
    }

    /// Sets `ZMQ_SNDTIMEO`: a blocking ``send(_:dontWait:)`` gives up after
    /// this long and returns `false`. -1 (the default) waits forever.
    public func setSendTimeout(milliseconds: Int32) throws {
        try setFixedOption(ZMQ_SNDTIMEO, milliseconds, "ZMQ_SNDTIMEO")
    }

    /// Sets `ZMQ_ROUTER_MANDATORY` on a ROUTER: sending to an identity with no
    /// connected peer throws ``ZMQError/Code/hostUnreachable`` instead of
    /// silently dropping the message, and a full peer makes the send block
    /// (or return `false`) instead of dropping.
    public func setRouterMandatory(_ on: Bool) throws {
        try setFixedOption(ZMQ_ROUTER_MANDATORY, on ? 1 as CInt : 0, "ZMQ_ROUTER_MANDATORY")
    }

    /// Sets `ZMQ_XPUB_NODROP` on an XPUB: a subscriber at its high-water mark
    /// makes the send block (or return `false`) instead of dropping.
    public func setXPubNoDrop(_ on: Bool) throws {
        try setFixedOption(ZMQ_XPUB_NODROP, on ? 1 as CInt : 0, "ZMQ_XPUB_NODROP")
    }

    /// Sets `ZMQ_REQ_CORRELATE` on a REQ: each request carries a request-id
    /// frame before the empty delimiter, and replies to older requests are
    /// discarded. A ROUTER must echo every frame up to the delimiter.
    public func setReqCorrelate(_ on: Bool) throws {
        try setFixedOption(ZMQ_REQ_CORRELATE, on ? 1 as CInt : 0, "ZMQ_REQ_CORRELATE")
    }

    /// Sets `ZMQ_REQ_RELAXED` on a REQ: a new request may be sent before the
    /// reply to the last one arrived (a retry after a timeout). Pair it with
    /// ``setReqCorrelate(_:)`` so a late reply is not taken for the new one.
    public func setReqRelaxed(_ on: Bool) throws {
        try setFixedOption(ZMQ_REQ_RELAXED, on ? 1 as CInt : 0, "ZMQ_REQ_RELAXED")
    }

    /// Sets `ZMQ_IMMEDIATE`: queue messages only to completed connections, so
    /// a send with no connected peer blocks (or returns `false`) instead of
    /// queueing for a peer that may never come.
    public func setImmediate(_ on: Bool) throws {
        try setFixedOption(ZMQ_IMMEDIATE, on ? 1 as CInt : 0, "ZMQ_IMMEDIATE")
    }

    /// Sets `ZMQ_ROUTING_ID` (formerly `ZMQ_IDENTITY`): the identity a ROUTER
    /// peer sees for this socket. 1 to 255 bytes, not starting with a zero
    /// byte; set it before `connect`.
    public func setIdentity(_ id: [UInt8]) throws {
        try id.withUnsafeBytes { try setBufferOption(ZMQ_ROUTING_ID, $0, "ZMQ_ROUTING_ID") }
    }

    /// Sets any integer option by its libzmq number: the escape hatch for
    /// options without a method here.
    public func setIntOption(_ option: Int32, _ value: Int32) throws {
        try setFixedOption(option, value, "option \(option)")
    }

    /// Sets any binary option by its libzmq number.
    public func setBytesOption(_ option: Int32, _ value: [UInt8]) throws {
        try value.withUnsafeBytes { try setBufferOption(option, $0, "option \(option)") }
    }

    /// Lets the socket handle what its I/O thread has for it (a new peer's pipe, a peer's
    /// subscription) without receiving a message: reading `ZMQ_EVENTS` does that. A SUB socket
    /// that is never read nor polled never attaches a new publisher's pipe, so it never sends
    /// that publisher its subscription, and the publisher drops everything it sends.
    public func processCommands() throws {
        _ = try intOption(ZMQ_EVENTS)
    }

    /// Reads any integer (C `int`) option by its libzmq number, such as
    /// `ZMQ_SNDHWM` or `ZMQ_EVENTS`.
    public func intOption(_ option: Int32) throws -> Int32 {
        let socket = openHandle
        var value: CInt = 0
        var size = MemoryLayout<CInt>.size
        try zmqCheck("zmq_getsockopt(option \(option))") {
            zmq_getsockopt(socket, option, &value, &size)
        }
        return value
    }

    /// `zmq_setsockopt` with a fixed-size value (`int` or `int64_t`, per the option).
    internal func setFixedOption<Value: BitwiseCopyable>(
        _ option: CInt,
        _ value: Value,
        _ name: @autoclosure () -> String
    ) throws(ZMQError) {
        let socket = openHandle
        var value = value
        try zmqCheck("zmq_setsockopt(\(name()))") {
            zmq_setsockopt(socket, option, &value, MemoryLayout<Value>.size)
        }
    }

    /// `zmq_setsockopt` with a byte-string value.
    internal func setBufferOption(
        _ option: CInt,
        _ bytes: UnsafeRawBufferPointer,
        _ name: @autoclosure () -> String
    ) throws(ZMQError) {
        let socket = openHandle
        try zmqCheck("zmq_setsockopt(\(name()))") {
            zmq_setsockopt(socket, option, bytes.baseAddress, bytes.count)
        }
    }
}
