import BudgetCore
import Foundation
import ZMQ

/// CURVE on every TCP socket (CONTRACT §8): the daemon's secret key and who may use what.
///
/// Roles map to ZAP domains: publishers → `ingest` (both ingest sockets), operators and viewers
/// → `control`, subscribers → `publish`. A key in no list is refused at the handshake; a viewer
/// reaches the control socket but gets `UNAUTHORIZED` for ops that change state.
public struct SecurityConfiguration: Sendable {
    /// The daemon's Z85 secret key file (as `budgetctl keygen NAME` writes `NAME.key`).
    public var secretKeyPath: String?
    /// Each: a file of Z85 public keys, one per line (`#` comments), or a directory of `.pub` files.
    public var publishersPath: String?
    public var operatorsPath: String?
    public var viewersPath: String?
    public var subscribersPath: String?

    public init() {}

    public var isEnabled: Bool { secretKeyPath != nil }
}

/// The loaded keys.
struct SecurityKeys: Sendable {
    var server: CurveKeyPair
    var publishers: Set<CurvePublicKey>
    var operators: Set<CurvePublicKey>
    var viewers: Set<CurvePublicKey>
    var subscribers: Set<CurvePublicKey>

    static let ingestDomain = "ingest", controlDomain = "control", publishDomain = "publish"

    /// Reads the key files; a missing file or a bad key is an error naming the file.
    static func load(_ c: SecurityConfiguration) throws -> SecurityKeys {
        guard let secretPath = c.secretKeyPath else { throw ConfigurationError("CURVE needs --curve-secret-key") }
        let lines = try keys(in: secretPath)
        // One key per file (CONTRACT §8): a second line is a mistake (which key would it be?).
        if lines.count > 1 { throw ConfigurationError("\(secretPath) holds \(lines.count) lines; a secret key file holds one Z85 key") }
        let secret = lines.first ?? ""
        let server: CurveKeyPair
        do { server = try CurveKeyPair(secretKey: secret) } catch {
            throw ConfigurationError("\(secretPath) does not hold a Z85 CURVE secret key (40 characters)")
        }
        func list(_ path: String?) throws -> Set<CurvePublicKey> {
            guard let path else { return [] }
            var result: Set<CurvePublicKey> = []
            for key in try publicKeys(at: path) {
                guard let k = try? CurvePublicKey(z85: key) else {
                    throw ConfigurationError("\(path): \"\(key.prefix(8))…\" is not a Z85 CURVE public key")
                }
                result.insert(k)
            }
            return result
        }
        return SecurityKeys(
            server: server, publishers: try list(c.publishersPath), operators: try list(c.operatorsPath),
            viewers: try list(c.viewersPath), subscribers: try list(c.subscribersPath)
        )
    }

    /// The Z85 keys in a file: non-empty lines that are not comments.
    static func keys(in path: String) throws -> [String] {
        let data: [UInt8]
        do { data = try readWholeFile(atPath: path) } catch { throw ConfigurationError(error.message("key file", path)) }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// A list file, or every `.pub` file of a directory.
    static func publicKeys(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError("key list \(path) does not exist")
        }
        guard isDirectory.boolValue else { return try keys(in: path) }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".pub") }.sorted()
        return try names.flatMap { try keys(in: path + "/" + $0) }
    }

    var policy: ZAPPolicy {
        ZAPPolicy(allowedKeys: [
            Self.ingestDomain: publishers, Self.controlDomain: operators.union(viewers), Self.publishDomain: subscribers,
        ])
    }

    /// What a control client may do, by its authenticated key (Z85).
    func role(of userID: String?) -> ControlRole {
        guard let userID, let key = try? CurvePublicKey(z85: userID) else { return .none }
        if operators.contains(key) { return .operator }
        if viewers.contains(key) { return .viewer }
        return .none
    }
}

/// What a control client may do.
enum ControlRole {
    /// Every op (also every local client when CURVE is off).
    case `operator`
    /// Read-only ops.
    case viewer
    case none
}

extension Engine {
    /// Ops that change nothing, open to viewers.
    static let readOnlyOps: Set<String> = [
        "budget.get", "budget.list", "cost.list", "alert.list", "outbound.list", "analytics", "forecast",
        "optimization.list", "spend.check", "price.quote", "event.list", "health", "stats", "audit.list",
        "event.get",
    ]

    /// Ops that change state: operators only. With `readOnlyOps`, every op the daemon answers
    /// (ControlOpsTests checks that each is answered and nothing else): a viewer asking for an
    /// op in neither gets `UNKNOWN_OP`, as an operator does, not `UNAUTHORIZED`.
    static let stateChangingOps: Set<String> = [
        "budget.create", "budget.update", "cost.allocate", "cost.credit", "alert.resolve", "event.reprice",
        "retention.run", "event.reprocess", "prices.reload", "allocation.add", "allocation.update", "allocation.remove",
        "optimization.update", "backup.create",
    ]

    /// Makes a socket a CURVE server in a ZAP domain when its endpoint is TCP (CURVE is for the network;
    /// ipc and inproc endpoints are guarded by the file system and the process).
    func secure(_ socket: ZMQSocket, endpoint: String, domain: String) throws {
        guard let keys = securityKeys, endpoint.hasPrefix("tcp://") else { return }
        try socket.setZAPDomain(domain)
        try socket.setCurveServer(secretKey: keys.server.secretKey)
    }
}

extension DaemonConfiguration {
    /// What `budgetd --check-config` checks beyond parsing: the catalog loads and the CURVE key
    /// files hold valid keys. Throws the first problem, naming the file.
    public func check() throws {
        if let path = pricesPath { _ = try Engine.loadCatalog(path: path) }
        if security.isEnabled { _ = try SecurityKeys.load(security) }
        if let problem = Self.databaseProblem(databasePath) { throw ConfigurationError("database \(databasePath): \(problem)") }
    }

    /// Why the start could not open or create the database at `path`, as far as can be told
    /// without opening it (a running daemon may hold it): not a regular file, not readable and
    /// writable, not an SQLite file; or, when it does not exist, a directory that is missing or
    /// not writable. nil when it looks usable. (`--check-config` passed all of these, and the
    /// start then failed: an audit.)
    static func databaseProblem(_ path: String) -> String? {
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return "is a directory" }
            if (st.st_mode & S_IFMT) != S_IFREG { return "is not a regular file" }
            if access(path, R_OK | W_OK) != 0 { return "cannot be read and written by this user (\(String(cString: strerror(errno))))" }
            guard st.st_size > 0 else { return nil }
            guard let f = fopen(path, "rb") else { return "cannot be opened (\(String(cString: strerror(errno))))" }
            defer { fclose(f) }
            var header = [UInt8](repeating: 0, count: 16)
            let n = fread(&header, 1, 16, f)
            return n == 16 && header == Array("SQLite format 3\0".utf8) ? nil : "is not an SQLite database"
        }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var dirStat = stat()
        guard stat(directory, &dirStat) == 0, (dirStat.st_mode & S_IFMT) == S_IFDIR else { return "its directory \(directory) does not exist" }
        if access(directory, W_OK | X_OK) != 0 { return "cannot be created: its directory \(directory) is not writable by this user" }
        return nil
    }
}
