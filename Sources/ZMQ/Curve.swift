internal import CZMQ

/// A CURVE key pair (Curve25519), both keys as 40-character Z85 text: the
/// form `budgetctl keygen` writes to `NAME.pub` and `NAME.key`, and the form
/// libzmq's CURVE options take.
///
/// The secret key is the whole of a peer's identity: keep it out of logs.
/// ``description`` shows only the public key.
public struct CurveKeyPair: Sendable, Hashable, CustomStringConvertible {
    /// The public key, 40 Z85 characters: give it to the peers that must
    /// recognize this one (a server's goes to its clients, a client's to the
    /// server's allow lists).
    public let publicKey: String
    /// The secret key, 40 Z85 characters.
    public let secretKey: String

    /// Whether the loaded libzmq was built with CURVE (`zmq_has("curve")`,
    /// which needs libsodium or the bundled tweetnacl). Without it every call
    /// here and every CURVE socket option throws.
    public static var isSupported: Bool {
        zmq_has("curve") != 0
    }

    /// The key pair whose secret key is `secretKey`, the public key derived
    /// from it: how a key file holding only the secret key is loaded.
    ///
    /// - Throws: ``ZMQError/Code/invalidArgument`` unless `secretKey` is a
    ///   valid Z85 key (see ``isValidZ85Key(_:)``).
    public init(secretKey: String) throws {
        self.publicKey = try Self.publicKey(forSecret: secretKey)
        self.secretKey = secretKey
    }

    private init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A new random key pair (`zmq_curve_keypair`, which draws from
    /// libsodium's random source).
    ///
    /// - Throws: ``ZMQError/Code/notSupported`` if libzmq has no CURVE.
    public static func generate() throws -> CurveKeyPair {
        try withZ85Buffers { publicBuffer, secretBuffer throws(ZMQError) in
            // zmq_curve_keypair(3): writes two NUL-terminated 40-character
            // strings into 41-byte buffers.
            try zmqCheck("zmq_curve_keypair") {
                zmq_curve_keypair(publicBuffer.baseAddress, secretBuffer.baseAddress)
            }
            return CurveKeyPair(publicKey: z85String(publicBuffer), secretKey: z85String(secretBuffer))
        }
    }

    /// The public key that belongs to `secretKey` (`zmq_curve_public`).
    ///
    /// - Throws: ``ZMQError/Code/invalidArgument`` unless `secretKey` is a
    ///   valid Z85 key (the error never contains the key).
    public static func publicKey(forSecret secretKey: String) throws -> String {
        // zmq_curve_public decodes with strlen(): a longer string would
        // overflow its 32-byte buffer, so the text is checked here first.
        guard isValidZ85Key(secretKey) else {
            throw ZMQError(code: .invalidArgument, operation: "zmq_curve_public(CURVE secret key)")
        }
        return try withZ85Buffers { publicBuffer, _ throws(ZMQError) in
            try zmqCheck("zmq_curve_public(CURVE secret key)") {
                zmq_curve_public(publicBuffer.baseAddress, secretKey)
            }
            return z85String(publicBuffer)
        }
    }

    /// Whether `key` is a CURVE key in Z85 text: exactly 40 characters of the
    /// Z85 alphabet (ZeroMQ RFC 32) that decode to 32 bytes.
    ///
    /// Surrounding whitespace makes a key invalid: trim lines read from a
    /// key file first.
    public static func isValidZ85Key(_ key: String) -> Bool {
        decodeZ85Key(key) != nil
    }

    /// The public key and, so a printed pair cannot leak it, no secret key.
    public var description: String {
        "CurveKeyPair(publicKey: \(publicKey))"
    }

    /// `key` decoded to its 32 bytes (`zmq_z85_decode`), or `nil` if it is
    /// not a valid Z85 key.
    internal static func decodeZ85Key(_ key: String) -> [UInt8]? {
        // zmq_z85_decode writes 4 bytes per 5 characters of whatever it is
        // given: only a 40-character string may reach it.
        guard key.utf8.count == z85KeyLength, key.utf8.allSatisfy(isZ85Character) else {
            return nil
        }
        var bytes = [UInt8](repeating: 0, count: curveKeyBytes)
        // Characters of the alphabet can still spell a 5-character group
        // above 2^32 - 1, which zmq_z85_decode refuses with NULL.
        let decoded = bytes.withUnsafeMutableBufferPointer { zmq_z85_decode($0.baseAddress, key) != nil }
        return decoded ? bytes : nil
    }
}

/// A CURVE public key as its 32 bytes: what allow lists are made of.
///
/// Two spellings of a key cannot differ (Z85 is a bijection on valid keys),
/// but comparing bytes makes that a fact of the type rather than of the text.
public struct CurvePublicKey: Sendable, Hashable, CustomStringConvertible {
    /// The key's 32 bytes.
    public let bytes: [UInt8]

    /// Decodes a 40-character Z85 public key.
    ///
    /// - Throws: ``ZMQError/Code/invalidArgument`` if `z85` is not a valid Z85
    ///   key (see ``CurveKeyPair/isValidZ85Key(_:)``).
    public init(z85: String) throws {
        guard let bytes = CurveKeyPair.decodeZ85Key(z85) else {
            throw ZMQError(code: .invalidArgument, operation: "zmq_z85_decode(CURVE public key)")
        }
        self.bytes = bytes
    }

    /// Wraps 32 raw key bytes, such as the credentials of a ZAP request.
    ///
    /// - Throws: ``ZMQError/Code/invalidArgument`` unless there are exactly 32.
    public init(bytes: [UInt8]) throws {
        guard bytes.count == curveKeyBytes else {
            throw ZMQError(code: .invalidArgument, operation: "CURVE public key (\(bytes.count) bytes, 32 expected)")
        }
        self.bytes = bytes
    }

    /// The key as 40 Z85 characters (`zmq_z85_encode`): the form of key files
    /// and of the User-Id the ``ZAPAuthenticator`` table policy reports.
    public var z85: String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: z85KeyLength + 1) { text in
            bytes.withUnsafeBufferPointer { key in
                // zmq_z85_encode(3): the destination holds size * 5 / 4 + 1
                // bytes; it fails only for a size not a multiple of 4.
                _ = zmq_z85_encode(text.baseAddress, key.baseAddress, key.count)
            }
            return z85String(text)
        }
    }

    /// ``z85``.
    public var description: String {
        z85
    }
}

/// Characters in a Z85 key, not counting the NUL libzmq adds.
internal let z85KeyLength = 40

/// Bytes in a decoded CURVE key.
internal let curveKeyBytes = 32

/// Whether `byte` is one of the 85 characters of ZeroMQ RFC 32:
/// `0-9 a-z A-Z . - : + = ^ ! / * ? & < > ( ) [ ] { } @ % $ #`.
private func isZ85Character(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "A")...UInt8(ascii: "Z"):
        true
    default:
        z85Punctuation.contains(byte)
    }
}

private let z85Punctuation: Set<UInt8> = Set(".-:+=^!/*?&<>()[]{}@%$#".utf8)

/// Two zeroed 41-byte buffers for libzmq's Z85 key output.
private func withZ85Buffers<Result>(
    _ body: (UnsafeMutableBufferPointer<CChar>, UnsafeMutableBufferPointer<CChar>) throws(ZMQError) -> Result
) throws(ZMQError) -> Result {
    try withUnsafeTemporaryAllocation(of: CChar.self, capacity: 2 * (z85KeyLength + 1)) {
        buffer throws(ZMQError) -> Result in
        buffer.initialize(repeating: 0)
        let first = UnsafeMutableBufferPointer(rebasing: buffer[..<(z85KeyLength + 1)])
        let second = UnsafeMutableBufferPointer(rebasing: buffer[(z85KeyLength + 1)...])
        return try body(first, second)
    }
}

/// The 40 characters libzmq wrote into a 41-byte buffer (the NUL dropped).
private func z85String(_ buffer: UnsafeMutableBufferPointer<CChar>) -> String {
    String(decoding: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[..<z85KeyLength]), as: UTF8.self)
}
