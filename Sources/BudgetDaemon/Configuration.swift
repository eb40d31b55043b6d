public import BudgetCore
public import BudgetStore
import Glibc

/// Everything budgetd can be told, with the defaults of CONTRACT §1 and §8.
///
/// Keys of the config file (JSON, `--config PATH`), each overridden by its environment variable
/// `BUDGETD_<KEY>` (`environmentName(of:)`), which the flag of the same name overrides in turn:
/// - `db` (`--db`): the SQLite file; default `budgetd.db` in `$STATE_DIRECTORY` or the working directory.
/// - `ingest` (`--ingest`): SUB endpoint for fire-and-forget usage events; `tcp://127.0.0.1:7600`.
/// - `ingestAck` (`--ingest-ack`): ROUTER endpoint for acknowledged usage events; `tcp://127.0.0.1:7601`.
/// - `publish` (`--publish`): PUB endpoint for alerts, status, heartbeat, health; `tcp://127.0.0.1:7602`.
/// - `control` (`--control`): ROUTER endpoint for control requests; `tcp://127.0.0.1:7603`.
/// - `prices` (`--prices`): price catalog file (native JSON or LiteLLM map); none = explicit costs only.
/// - `metrics` (`--metrics`): `HOST:PORT` serving Prometheus metrics at `/metrics`; off by default.
/// - `heartbeatIntervalMs`: heartbeat period; 1000.
/// - `maxMessageBytes`: a larger usage message is rejected with reason `oversized`; 65536.
/// - `socketMaxMessageBytes`: ZMQ_MAXMSGSIZE, a larger one drops the sender's connection; 1048576.
/// - `maxBatch`: most messages read into one batch, and gathered for one transaction before the
///   engine waits for the commit in progress; 8192.
/// - `drainTimeoutMs`: how long SIGTERM drains what was received; 5000.
/// - `keysPerGeneration`: event keys kept in memory before they are copied into a generation
///   of `event_keys` (docs/ledger.md, "How duplicates are found"); 262144.
/// - `synchronous`: SQLite `synchronous` (FULL, NORMAL, OFF); FULL.
/// - `receiveHighWaterMark`, `sendHighWaterMark`: ZeroMQ queue bounds per socket; 100000.
/// - `logLevel`: trace, debug, info, notice, warning, error, critical; info.
/// - `spikeWindowHours`, `spikeBaselineDays`, `spikeFactorPercent`, `spikeMinAmount`,
///   `lowBudgetMinElapsedHours`: SPENDING_SPIKE and LOW_BUDGET (see `AlertSettings`); 1, 7, 300, "10", 24.
/// - `allocationSpikes`: SPENDING_SPIKE for allocations as well as budgets; false.
/// - `retentionDays`: raw usage events, dead letters and outbound messages received more than this
///   many days ago are pruned once a day (docs/ledger.md); 0 = keep forever.
/// - `dedupWindowDays`: usage events younger than this are never pruned, so a resend within it is
///   still DUPLICATE; at most `retentionDays` (when that is not 0); 0.
public struct DaemonConfiguration: Sendable {
    public var databasePath: String
    public var ingestEndpoint = "tcp://127.0.0.1:7600"
    public var ingestAckEndpoint = "tcp://127.0.0.1:7601"
    public var publishEndpoint = "tcp://127.0.0.1:7602"
    public var controlEndpoint = "tcp://127.0.0.1:7603"
    public var pricesPath: String?
    public var heartbeatIntervalMs: Int = 1000
    public var maxMessageBytes: Int = EventLimits.defaultMaxMessageBytes
    public var socketMaxMessageBytes: Int64 = 1 << 20
    public var maxBatch: Int = 8192
    public var drainTimeoutMs: Int = 5000
    public var keysPerGeneration: Int = RecentKeys.defaultKeysPerGeneration
    public var synchronous: SynchronousMode = .full
    public var receiveHighWaterMark: Int32 = 100_000
    public var sendHighWaterMark: Int32 = 100_000
    public var logLevel: String = "info"
    /// `HOST:PORT` to serve Prometheus metrics on (`/metrics`); nil = off.
    public var metricsAddress: String?
    public var alerts = AlertSettings()
    /// Days raw events, dead letters and outbound messages are kept; 0 = forever.
    public var retentionDays: Int = 0
    /// Days a usage event is never pruned in, whatever `retention.run` is asked (idempotency window).
    public var dedupWindowDays: Int = 0
    public var security = SecurityConfiguration()

    public init(databasePath: String) {
        self.databasePath = databasePath
    }

    /// Applies the keys of a JSON config file; unknown keys and bad values are errors naming the key.
    public mutating func apply(configFile bytes: [UInt8]) throws(ConfigurationError) {
        let value: JSONValue
        do { value = try JSON.parse(bytes) } catch {
            throw ConfigurationError("config file is not valid JSON: \(error.message) at byte \(error.offset)")
        }
        guard let object = value.objectValue else { throw ConfigurationError("config file must be a JSON object") }
        for (key, v) in object {
            try apply(key: key, value: v, origin: "config key \(key)")
        }
    }

    /// Every key the config file (and the environment) knows.
    public static let keys = [
        "db", "ingest", "ingestAck", "publish", "control", "prices", "metrics", "heartbeatIntervalMs", "maxMessageBytes",
        "socketMaxMessageBytes", "maxBatch", "drainTimeoutMs", "keysPerGeneration", "synchronous", "receiveHighWaterMark", "sendHighWaterMark",
        "logLevel", "curveSecretKey", "curvePublishers", "curveOperators", "curveViewers", "curveSubscribers",
        "spikeWindowHours", "spikeBaselineDays", "spikeFactorPercent", "spikeMinAmount", "lowBudgetMinElapsedHours",
        "allocationSpikes", "retentionDays", "dedupWindowDays",
    ]

    /// The environment variable that overrides a config key: `BUDGETD_` and the key in upper
    /// snake case (`ingestAck` → `BUDGETD_INGEST_ACK`, `heartbeatIntervalMs` → `BUDGETD_HEARTBEAT_INTERVAL_MS`).
    public static func environmentName(of key: String) -> String {
        var name = "BUDGETD_"
        for c in key {
            if c.isUppercase { name += "_" }
            name += c.uppercased()
        }
        return name
    }

    /// Applies `BUDGETD_<KEY>` variables (between the config file and the flags). A `BUDGETD_`
    /// variable that names no key is an error, as an unknown config key is: a typo must not be
    /// silently ignored.
    public mutating func apply(environment: [String: String]) throws(ConfigurationError) {
        let byName = Dictionary(uniqueKeysWithValues: Self.keys.map { (Self.environmentName(of: $0), $0) })
        for (name, text) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("BUDGETD_") {
            guard let key = byName[name] else {
                throw ConfigurationError("unknown environment variable \(name) (config keys map to BUDGETD_<KEY>, see docs/configuration.md)")
            }
            try apply(key: key, value: .string(text), origin: "environment variable \(name) (config key \(key))")
        }
    }

    /// One key. `origin` names where the value came from in error messages. Values from the
    /// environment arrive as strings; numbers are accepted as their text.
    public mutating func apply(key: String, value v: JSONValue, origin: String) throws(ConfigurationError) {
        func string() throws(ConfigurationError) -> String {
            guard let s = v.stringValue, !s.isEmpty else { throw ConfigurationError("\(origin) must be a non-empty string") }
            return s
        }
        func int(_ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let t = v.numberText ?? v.stringValue, let n = Int(t), range.contains(n) else {
                throw ConfigurationError("\(origin) must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return n
        }
        switch key {
        case "db": databasePath = try string()
        case "ingest": ingestEndpoint = try string()
        case "ingestAck": ingestAckEndpoint = try string()
        case "publish": publishEndpoint = try string()
        case "control": controlEndpoint = try string()
        case "prices": pricesPath = try string()
        case "metrics":
            // "" (or null) is off: how an environment variable turns off what the file turns on.
            if v.isNull || v.stringValue == "" {
                metricsAddress = nil
                return
            }
            let address = try string()
            guard Self.isHostPort(address) else { throw ConfigurationError("\(origin) must be HOST:PORT (e.g. 127.0.0.1:9464)") }
            metricsAddress = address
        case "heartbeatIntervalMs": heartbeatIntervalMs = try int(10...3_600_000)
        case "maxMessageBytes": maxMessageBytes = try int(256...(64 << 20))
        case "socketMaxMessageBytes": socketMaxMessageBytes = Int64(try int(1024...(1 << 30)))
        case "maxBatch": maxBatch = try int(1...1_000_000)
        case "drainTimeoutMs": drainTimeoutMs = try int(0...600_000)
        case "keysPerGeneration": keysPerGeneration = try int(1...(1 << 24))
        case "receiveHighWaterMark": receiveHighWaterMark = Int32(try int(0...100_000_000))
        case "sendHighWaterMark": sendHighWaterMark = Int32(try int(0...100_000_000))
        case "synchronous":
            guard let mode = SynchronousMode(rawValue: try string().uppercased()) else {
                throw ConfigurationError("\(origin) must be FULL, NORMAL or OFF")
            }
            synchronous = mode
        case "logLevel":
            let level = try string()
            guard Self.logLevels.contains(level) else {
                throw ConfigurationError("\(origin): \(level) is not one of \(Self.logLevels.joined(separator: " "))")
            }
            logLevel = level
        case "curveSecretKey": security.secretKeyPath = try string()
        case "curvePublishers": security.publishersPath = try string()
        case "curveOperators": security.operatorsPath = try string()
        case "curveViewers": security.viewersPath = try string()
        case "curveSubscribers": security.subscribersPath = try string()
        case "spikeWindowHours": alerts.spikeWindowHours = try int(1...168)
        case "spikeBaselineDays": alerts.spikeBaselineDays = try int(1...60)
        case "spikeFactorPercent": alerts.spikeFactorPercent = try int(101...100_000)
        case "lowBudgetMinElapsedHours": alerts.lowBudgetMinElapsedHours = try int(0...8760)
        case "allocationSpikes":
            if let b = v.boolValue {
                alerts.allocationSpikes = b
            } else if let t = v.stringValue?.lowercased(), t == "true" || t == "false" {
                alerts.allocationSpikes = t == "true"
            } else {
                throw ConfigurationError("\(origin) must be true or false")
            }
        case "retentionDays": retentionDays = try int(0...36_500)
        case "dedupWindowDays": dedupWindowDays = try int(0...36_500)
        case "spikeMinAmount":
            guard let text = v.numberText ?? v.stringValue, let amount = try? Money.parseAmount(text) else {
                throw ConfigurationError("\(origin) must be a non-negative decimal amount")
            }
            alerts.spikeMinAmount = amount
        default: throw ConfigurationError("unknown config key \(key)")
        }
    }

    /// Checks what no single key can: `dedupWindowDays` ≤ `retentionDays` (unless that is 0,
    /// forever); every ZeroMQ endpoint well-formed, and no two the same (so `--check-config`
    /// refuses what the start would, and a port past 65535 is refused rather than wrapped by
    /// libzmq into another port).
    public func validate() throws(ConfigurationError) {
        // A message over maxMessageBytes is stored as an `oversized` dead letter only if the
        // socket lets it through (CONTRACT §2: the socket's cap is "far larger").
        if Int64(maxMessageBytes) >= socketMaxMessageBytes {
            throw ConfigurationError("maxMessageBytes (\(maxMessageBytes)) must be less than socketMaxMessageBytes (\(socketMaxMessageBytes)), or oversized messages drop their sender's connection instead of being recorded")
        }
        if retentionDays > 0 && dedupWindowDays > retentionDays {
            throw ConfigurationError("dedupWindowDays (\(dedupWindowDays)) must be at most retentionDays (\(retentionDays))")
        }
        let endpoints = [
            ("ingest", ingestEndpoint), ("ingestAck", ingestAckEndpoint), ("publish", publishEndpoint), ("control", controlEndpoint),
        ]
        for (key, endpoint) in endpoints {
            if let problem = Self.endpointProblem(endpoint) { throw ConfigurationError("\(key) endpoint \(endpoint): \(problem)") }
            // With CURVE, ipc endpoints are left to the file system's permissions; an abstract
            // socket (`ipc://@NAME`) has no file, so any local user could use it (as an operator,
            // on the control socket: an audit).
            if security.isEnabled && endpoint.hasPrefix("ipc://@") {
                throw ConfigurationError("\(key) endpoint \(endpoint): an abstract ipc socket has no file permissions to guard it, and CURVE guards only TCP: give a path (ipc:///run/budgetd/\(key).sock) in a directory only the right users may enter")
            }
        }
        // Fixed TCP ports, the metrics endpoint's among them: two on one port whose hosts are the
        // same or either a wildcard cannot both be bound (`07888` is 7888). Ephemeral ports (`*`,
        // 0) differ each time they are bound.
        var bound: [(key: String, host: String, port: Int)] = []
        for (i, (key, endpoint)) in endpoints.enumerated() {
            if endpoint.hasPrefix("tcp://") {
                if let (host, port) = Self.hostPort(endpoint.dropFirst("tcp://".count)), let n = Int(port) { bound.append((key, host, n)) }
            } else if let (other, _) = endpoints[..<i].first(where: { $0.1 == endpoint }) {
                throw ConfigurationError("\(other) and \(key) have the same endpoint \(endpoint)")
            }
        }
        if let metricsAddress {
            if let problem = MetricsServer.addressProblem(metricsAddress) { throw ConfigurationError("metrics address \(metricsAddress): \(problem)") }
            if let (host, port) = Self.hostPort(Substring(metricsAddress)), let n = Int(port) { bound.append(("metrics", host, n)) }
        }
        let wildcards: Set<String> = ["*", "0.0.0.0", "::", ""]
        for (i, a) in bound.enumerated() where a.port != 0 {
            if let b = bound[..<i].first(where: { $0.port == a.port && ($0.host == a.host || wildcards.contains($0.host) || wildcards.contains(a.host)) }) {
                throw ConfigurationError("\(b.key) and \(a.key) both bind port \(a.port) (\(b.host.isEmpty ? "*" : b.host), \(a.host.isEmpty ? "*" : a.host))")
            }
        }
    }

    /// The host (brackets of an IPv6 address removed) and the port's text of `HOST:PORT`; nil
    /// without a colon.
    static func hostPort(_ address: Substring) -> (host: String, port: Substring)? {
        guard let colon = address.lastIndex(of: ":") else { return nil }
        var host = address[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (String(host), address[address.index(after: colon)...])
    }

    /// Why libzmq could not bind `endpoint`, or nil: `tcp://HOST:PORT` (PORT 0…65535 or `*`),
    /// `ipc://PATH`, `inproc://NAME`.
    public static func endpointProblem(_ endpoint: String) -> String? {
        let parts = endpoint.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return "expected TRANSPORT://ADDRESS (tcp, ipc or inproc)" }
        let transport = parts[0], address = parts[1]
        switch transport {
        case "tcp":
            guard let (host, port) = hostPort(address), address.first != ":" else { return "expected tcp://HOST:PORT" }
            if port == "*" { return nil }
            guard !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber) else { return "port \(port) is not a number or *" }
            guard let n = Int(port), n <= 65535 else { return "port \(port) is out of range (0…65535)" }
            // libzmq binds `*`, a numeric address or a network interface's name: not a host
            // name (`localhost` fails with "No such device").
            if host != "*" && !isNumericAddress(host) && if_nametoindex(host) == 0 {
                return "\(host) is not *, a numeric address or a network interface (libzmq binds no host names)"
            }
            return nil
        case "ipc":
            if address.isEmpty { return "expected ipc://PATH" }
            // A Unix socket's path holds 107 bytes and a NUL.
            if address.utf8.count > 107 { return "the path is \(address.utf8.count) bytes, more than a Unix socket's 107" }
            return nil
        case "inproc":
            return address.isEmpty ? "expected inproc://NAME" : nil
        default:
            return "unsupported transport \(transport) (tcp, ipc or inproc)"
        }
    }

    /// Whether `host` is a numeric IPv4 or IPv6 address.
    static func isNumericAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// `HOST:PORT` or `[IPv6]:PORT` with a numeric port (0 = ephemeral).
    public static func isHostPort(_ s: String) -> Bool {
        guard let colon = s.lastIndex(of: ":"), UInt16(s[s.index(after: colon)...]) != nil else { return false }
        return colon != s.startIndex
    }
}

/// A configuration that cannot be used; the message names the key.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The daemon's version, printed by `budgetd --version` and returned by `health`.
public let budgetdVersion = "0.1.0"

/// Why ``readWholeFile(atPath:waitingUnless:)`` read nothing.
public enum FileReadFailure: Error, Equatable {
    /// It cannot be opened or read (missing, a directory, no permission).
    case unreadable
    /// A FIFO or pipe where only a regular file will do (anything read again at a reload).
    case notRegular
    /// A stop was asked for while waiting for a FIFO's writer.
    case stopped
}

/// The whole content of a file, read with POSIX calls. Never blocks in `open`. A regular file
/// is read at once. Anything else (a FIFO, a shell's `<(…)`, which Foundation's reader refused)
/// only when `waitingUnless` is given, for a read at start: its data is awaited in 100 ms
/// polls until its writer closes, while `waitingUnless()` is false (a SIGTERM at start then stops
/// the wait; a blocking `open` had made budgetd unstoppable, and a reload of a FIFO catalog had
/// hung the whole daemon: an audit). Without it such a file is `.notRegular`.
public func readWholeFile(atPath path: String, waitingUnless stop: (() -> Bool)? = nil) throws(FileReadFailure) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw .unreadable }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .unreadable }
    let regular = info.st_mode & S_IFMT == S_IFREG
    if !regular && stop == nil { throw .notRegular }
    var content: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        if !regular {
            if stop?() == true { throw .stopped }
            var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&waiting, 1, 100)
            if ready < 0 && errno != EINTR { throw .unreadable }
            if ready <= 0 { continue }
        }
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            content.append(contentsOf: chunk[..<n])
        } else if n == 0 {
            return content
        } else if errno != EINTR && errno != EAGAIN {
            throw .unreadable
        }
    }
}

extension FileReadFailure {
    /// "cannot read WHAT PATH", with the reason when it is not the plain one.
    public func message(_ what: String, _ path: String) -> String {
        switch self {
        case .unreadable: "cannot read \(what) \(path)"
        case .notRegular: "cannot read \(what) \(path): not a regular file (a FIFO or pipe is read only as --config, at start)"
        case .stopped: "stopped while waiting for \(what) \(path)"
        }
    }
}
