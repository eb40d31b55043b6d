import ArgumentParser
import Foundation
import ZMQ

/// `budgetctl keygen NAME`: a CURVE key pair for budgetd or one of its clients.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a CURVE key pair: NAME.key (the secret key, mode 0600) and NAME.pub (the public key), one Z85 key per file.",
        discussion: """
            Give budgetd its own pair (--curve-secret-key NAME.key) and put each client's NAME.pub \
            in the daemon's allow list for its role (--curve-publishers, --curve-operators, \
            --curve-viewers, --curve-subscribers). Clients use --curve-key NAME and \
            --curve-server-key budgetd.pub. Existing files are never overwritten.
            """
    )

    @Argument(help: "Path and base name of the files to write (NAME.key and NAME.pub).")
    var name: String

    func run() throws {
        do { try write() } catch { throw GlobalOptions.report(error) }
    }

    func write() throws {
        let pair = try CurveKeyPair.generate()
        let secretPath = name + ".key", publicPath = name + ".pub"
        for path in [secretPath, publicPath] where FileManager.default.fileExists(atPath: path) {
            throw CommandFailure("\(path) exists: not overwriting a key", status: 1)
        }
        // The secret key is readable by its owner only, from the moment it exists.
        guard FileManager.default.createFile(
            atPath: secretPath, contents: Data((pair.secretKey + "\n").utf8), attributes: [.posixPermissions: 0o600]
        ) else { throw CommandFailure("cannot write \(secretPath)", status: 1) }
        guard FileManager.default.createFile(atPath: publicPath, contents: Data((pair.publicKey + "\n").utf8)) else {
            throw CommandFailure("cannot write \(publicPath)", status: 1)
        }
        print("wrote \(secretPath) (secret, keep it) and \(publicPath): \(pair.publicKey)")
    }
}

/// The client side of CURVE for every socket budgetctl opens.
struct ClientSecurity {
    var serverPublicKey: String
    var keyPair: CurveKeyPair

    /// Reads `--curve-key NAME` (NAME.key, or NAME itself if it is the key file) and
    /// `--curve-server-key FILE`.
    static func load(key: String, serverKey: String) throws -> ClientSecurity {
        let secretPath = FileManager.default.fileExists(atPath: key + ".key") ? key + ".key" : key
        let secret = try firstKey(in: secretPath)
        let pair: CurveKeyPair
        do { pair = try CurveKeyPair(secretKey: secret) } catch {
            throw CommandFailure("\(secretPath) does not hold a Z85 CURVE secret key", status: 64)
        }
        let server = try firstKey(in: serverKey)
        guard CurveKeyPair.isValidZ85Key(server) else {
            throw CommandFailure("\(serverKey) does not hold a Z85 CURVE public key", status: 64)
        }
        return ClientSecurity(serverPublicKey: server, keyPair: pair)
    }

    /// Makes `socket` a CURVE client of the daemon when a key is given (`--curve-key` and
    /// `--curve-server-key` go together); call before connect.
    static func secure(_ socket: ZMQSocket, key: String?, serverKey: String?) throws {
        switch (key, serverKey) {
        case (nil, nil):
            return
        case (let key?, let server?):
            let security = try load(key: key, serverKey: server)
            try socket.setCurveClient(serverPublicKey: security.serverPublicKey, keyPair: security.keyPair)
        default:
            throw CommandFailure("--curve-key and --curve-server-key go together", status: 64)
        }
    }

    static func firstKey(in path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("cannot read \(path)", status: 64)
        }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .first { !$0.isEmpty && !$0.hasPrefix("#") } ?? ""
    }
}
