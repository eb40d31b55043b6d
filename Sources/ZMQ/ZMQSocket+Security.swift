internal import CZMQ

/// A ZMTP security mechanism: how a connection's handshake authenticates and
/// whether it encrypts. The raw value is the name ZMTP and ZAP use.
public enum SecurityMechanism: String, Sendable, Hashable, CustomStringConvertible {
    /// `NULL`: no authentication, no encryption (libzmq's default).
    case null = "NULL"
    /// `PLAIN`: user name and password in clear text.
    case plain = "PLAIN"
    /// `CURVE`: CurveZMQ, authenticated and encrypted with Curve25519 keys.
    case curve = "CURVE"
    /// `GSSAPI`: Kerberos.
    case gssapi = "GSSAPI"

    /// The mechanism's ZMTP name, such as `CURVE`.
    public var description: String {
        rawValue
    }
}

extension ZMQSocket {
    /// Makes this socket a CURVE server (`ZMQ_CURVE_SERVER` = 1 and
    /// `ZMQ_CURVE_SECRETKEY`): every connection must complete a CURVE
    /// handshake, and its traffic is encrypted. Call it before ``bind(_:)``:
    /// libzmq applies security options when a connection starts.
    ///
    /// CURVE alone proves only that a client knows the server's public key.
    /// Which clients are admitted is decided by the ZAP handler of the
    /// socket's context, and **with no handler bound libzmq admits every
    /// client key**: start a ``ZAPAuthenticator`` on the context before
    /// binding, and give the socket its role with ``setZAPDomain(_:)``.
    ///
    /// - Parameter secretKey: the server's Z85 secret key; clients are given
    ///   the matching public key.
    /// - Throws: ``ZMQError/Code/invalidArgument`` if the key is not valid Z85
    ///   (the error never contains the key) or libzmq has no CURVE.
    public func setCurveServer(secretKey: String) throws {
        let secret = try decodedKey(secretKey, "ZMQ_CURVE_SECRETKEY")
        try setFixedOption(ZMQ_CURVE_SERVER, 1 as CInt, "ZMQ_CURVE_SERVER")
        // The server's public key is not used by libzmq: the server proves
        // its identity with the secret key, which it derives from.
        try secret.withUnsafeBytes { try setBufferOption(ZMQ_CURVE_SECRETKEY, $0, "ZMQ_CURVE_SECRETKEY") }
    }

    /// Makes this socket a CURVE client of the server whose public key is
    /// `serverPublicKey` (`ZMQ_CURVE_SERVERKEY`, `ZMQ_CURVE_PUBLICKEY`,
    /// `ZMQ_CURVE_SECRETKEY`). Call it before ``connect(_:)``.
    ///
    /// A server that refuses the client's key ends the connection during the
    /// handshake, and libzmq 4.3 does not retry it (an authentication failure
    /// is a protocol error, not a dropped connection): messages queued for
    /// that server are never delivered, and nothing reports it but a socket
    /// monitor. Once the key is allowed, the client must ``disconnect(_:)``
    /// and ``connect(_:)`` again, or be restarted.
    ///
    /// - Parameters:
    ///   - serverPublicKey: the server's Z85 public key.
    ///   - publicKey: this client's Z85 public key, the one the server's
    ///     allow list holds.
    ///   - secretKey: this client's Z85 secret key.
    /// - Throws: ``ZMQError/Code/invalidArgument`` if a key is not valid Z85,
    ///   if `publicKey` is not the public key of `secretKey` (the handshake
    ///   could never succeed), or if libzmq has no CURVE.
    public func setCurveClient(serverPublicKey: String, publicKey: String, secretKey: String) throws {
        let server = try decodedKey(serverPublicKey, "ZMQ_CURVE_SERVERKEY")
        let client = try decodedKey(publicKey, "ZMQ_CURVE_PUBLICKEY")
        let secret = try decodedKey(secretKey, "ZMQ_CURVE_SECRETKEY")
        guard try CurveKeyPair.publicKey(forSecret: secretKey) == publicKey else {
            throw ZMQError(
                code: .invalidArgument,
                operation: "zmq_setsockopt(ZMQ_CURVE_PUBLICKEY): not the public key of the secret key"
            )
        }
        try server.withUnsafeBytes { try setBufferOption(ZMQ_CURVE_SERVERKEY, $0, "ZMQ_CURVE_SERVERKEY") }
        try client.withUnsafeBytes { try setBufferOption(ZMQ_CURVE_PUBLICKEY, $0, "ZMQ_CURVE_PUBLICKEY") }
        try secret.withUnsafeBytes { try setBufferOption(ZMQ_CURVE_SECRETKEY, $0, "ZMQ_CURVE_SECRETKEY") }
    }

    /// ``setCurveClient(serverPublicKey:publicKey:secretKey:)`` with this
    /// client's key pair.
    public func setCurveClient(serverPublicKey: String, keyPair: CurveKeyPair) throws {
        try setCurveClient(serverPublicKey: serverPublicKey, publicKey: keyPair.publicKey, secretKey: keyPair.secretKey)
    }

    /// Sets `ZMQ_ZAP_DOMAIN`: the domain this socket's ZAP requests name, which
    /// a ``ZAPAuthenticator`` policy uses as the socket's role (`ingest`,
    /// `control`, ...). Call it before ``bind(_:)``.
    ///
    /// On a CURVE (or PLAIN) server every handshake asks the ZAP handler, with
    /// or without a domain. On a socket without security (NULL), libzmq asks
    /// the handler only when the domain is not empty; with the empty domain
    /// every NULL peer is admitted.
    ///
    /// - Throws: ``ZMQError/Code/invalidArgument`` for a domain longer than
    ///   255 bytes.
    public func setZAPDomain(_ domain: String) throws {
        var domain = domain
        try domain.withUTF8 { try setBufferOption(ZMQ_ZAP_DOMAIN, UnsafeRawBufferPointer($0), "ZMQ_ZAP_DOMAIN") }
    }

    /// `ZMQ_ZAP_DOMAIN`: the domain set by ``setZAPDomain(_:)``, empty if none.
    public var zapDomain: String {
        get throws {
            try stringOption(ZMQ_ZAP_DOMAIN, capacity: 256, "ZMQ_ZAP_DOMAIN")
        }
    }

    /// `ZMQ_MECHANISM`: the security mechanism this socket's connections use.
    public var securityMechanism: SecurityMechanism {
        get throws {
            switch try intOption(ZMQ_MECHANISM) {
            case ZMQ_PLAIN: .plain
            case ZMQ_CURVE: .curve
            case ZMQ_GSSAPI: .gssapi
            default: .null
            }
        }
    }

    /// `ZMQ_CURVE_SERVER`: whether ``setCurveServer(secretKey:)`` made this a
    /// CURVE server.
    public var isCurveServer: Bool {
        get throws {
            try intOption(ZMQ_CURVE_SERVER) != 0
        }
    }

    /// `ZMQ_CURVE_SERVERKEY`: the server public key a CURVE client was given,
    /// in Z85 (40 `0` characters when none was).
    public var curveServerKey: String {
        get throws {
            // Asking for 41 bytes makes libzmq answer in Z85 rather than binary.
            try stringOption(ZMQ_CURVE_SERVERKEY, capacity: z85KeyLength + 1, "ZMQ_CURVE_SERVERKEY")
        }
    }

    /// `ZMQ_CURVE_PUBLICKEY`: a CURVE client's own public key, in Z85.
    public var curvePublicKey: String {
        get throws {
            try stringOption(ZMQ_CURVE_PUBLICKEY, capacity: z85KeyLength + 1, "ZMQ_CURVE_PUBLICKEY")
        }
    }

    /// The 32 bytes of a Z85 key, or an error naming the option but not the key.
    private func decodedKey(_ key: String, _ option: String) throws(ZMQError) -> [UInt8] {
        guard let bytes = CurveKeyPair.decodeZ85Key(key) else {
            throw ZMQError(code: .invalidArgument, operation: "zmq_setsockopt(\(option)): not a 40-character Z85 key")
        }
        return bytes
    }

    /// A NUL-terminated string option read into a buffer of `capacity` bytes.
    private func stringOption(
        _ option: CInt,
        capacity: Int,
        _ name: @autoclosure () -> String
    ) throws(ZMQError) -> String {
        let socket = openHandle
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer throws(ZMQError) in
            var size = buffer.count
            try zmqCheck("zmq_getsockopt(\(name()))") {
                zmq_getsockopt(socket, option, buffer.baseAddress, &size)
            }
            // `size` counts the terminating NUL.
            return String(decoding: buffer.prefix(max(size - 1, 0)), as: UTF8.self)
        }
    }
}
