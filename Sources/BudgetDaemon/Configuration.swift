public import BudgetCore
public import BudgetStore

/// Everything budgetd can be told, with the defaults of CONTRACT §1 and §8.
///
/// Keys of the config file (JSON, `--config PATH`), each overridden by the flag of the same name:
/// - `db` (`--db`): the SQLite file; default `budgetd.db` in `$STATE_DIRECTORY` or the working directory.
/// - `ingest` (`--ingest`): SUB endpoint for fire-and-forget usage events; `tcp://127.0.0.1:7600`.
/// - `ingestAck` (`--ingest-ack`): ROUTER endpoint for acknowledged usage events; `tcp://127.0.0.1:7601`.
/// - `publish` (`--publish`): PUB endpoint for alerts, status, heartbeat, health; `tcp://127.0.0.1:7602`.
/// - `control` (`--control`): ROUTER endpoint for control requests; `tcp://127.0.0.1:7603`.
/// - `prices` (`--prices`): price catalog file (native JSON or LiteLLM map); none = explicit costs only.
/// - `heartbeatIntervalMs`: heartbeat period; 1000.
/// - `maxMessageBytes`: a larger usage message is rejected with reason `oversized`; 65536.
/// - `socketMaxMessageBytes`: ZMQ_MAXMSGSIZE, a larger one drops the sender's connection; 1048576.
/// - `maxBatch`: most events committed in one transaction; 2048.
/// - `drainTimeoutMs`: how long SIGTERM drains what was received; 5000.
/// - `synchronous`: SQLite `synchronous` (FULL, NORMAL, OFF); FULL.
/// - `receiveHighWaterMark`, `sendHighWaterMark`: ZeroMQ queue bounds per socket; 100000.
/// - `logLevel`: trace, debug, info, notice, warning, error, critical; info.
/// - `spikeWindowHours`, `spikeBaselineDays`, `spikeFactorPercent`, `spikeMinAmount`,
///   `lowBudgetMinElapsedHours`: SPENDING_SPIKE and LOW_BUDGET (see `AlertSettings`); 1, 7, 300, "10", 24.
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
    public var maxBatch: Int = 2048
    public var drainTimeoutMs: Int = 5000
    public var synchronous: SynchronousMode = .full
    public var receiveHighWaterMark: Int32 = 100_000
    public var sendHighWaterMark: Int32 = 100_000
    public var logLevel: String = "info"
    public var alerts = AlertSettings()
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
            func string() throws(ConfigurationError) -> String {
                guard let s = v.stringValue, !s.isEmpty else { throw ConfigurationError("config key \(key) must be a non-empty string") }
                return s
            }
            func int(_ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
                guard let t = v.numberText, let n = Int(t), range.contains(n) else {
                    throw ConfigurationError("config key \(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
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
            case "heartbeatIntervalMs": heartbeatIntervalMs = try int(10...3_600_000)
            case "maxMessageBytes": maxMessageBytes = try int(256...(64 << 20))
            case "socketMaxMessageBytes": socketMaxMessageBytes = Int64(try int(1024...(1 << 30)))
            case "maxBatch": maxBatch = try int(1...1_000_000)
            case "drainTimeoutMs": drainTimeoutMs = try int(0...600_000)
            case "receiveHighWaterMark": receiveHighWaterMark = Int32(try int(0...100_000_000))
            case "sendHighWaterMark": sendHighWaterMark = Int32(try int(0...100_000_000))
            case "synchronous":
                guard let mode = SynchronousMode(rawValue: try string().uppercased()) else {
                    throw ConfigurationError("config key synchronous must be FULL, NORMAL or OFF")
                }
                synchronous = mode
            case "logLevel": logLevel = try string()
            case "curveSecretKey": security.secretKeyPath = try string()
            case "curvePublishers": security.publishersPath = try string()
            case "curveOperators": security.operatorsPath = try string()
            case "curveViewers": security.viewersPath = try string()
            case "curveSubscribers": security.subscribersPath = try string()
            case "spikeWindowHours": alerts.spikeWindowHours = try int(1...168)
            case "spikeBaselineDays": alerts.spikeBaselineDays = try int(1...60)
            case "spikeFactorPercent": alerts.spikeFactorPercent = try int(101...100_000)
            case "lowBudgetMinElapsedHours": alerts.lowBudgetMinElapsedHours = try int(0...8760)
            case "spikeMinAmount":
                guard let text = v.numberText ?? v.stringValue, let amount = try? Money.parseAmount(text) else {
                    throw ConfigurationError("config key spikeMinAmount must be a non-negative decimal amount")
                }
                alerts.spikeMinAmount = amount
            default: throw ConfigurationError("unknown config key \(key)")
            }
        }
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
