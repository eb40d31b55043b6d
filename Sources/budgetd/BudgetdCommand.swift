import ArgumentParser
import Dispatch
import BudgetCore
import BudgetDaemon
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

@main
struct BudgetdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budgetd",
        abstract: "Cost-tracking daemon: prices usage events from ZeroMQ, allocates them to budgets, publishes alerts.",
        version: budgetdVersion
    )

    @Option(help: "Configuration file (JSON; see docs/configuration.md).")
    var config: String?
    @Option(help: "SQLite database file (default: budgetd.db in $STATE_DIRECTORY or the working directory).")
    var db: String?
    @Option(help: "Fire-and-forget ingest endpoint (SUB, bound).")
    var ingest: String?
    @Option(name: .customLong("ingest-ack"), help: "Acknowledged ingest endpoint (ROUTER, bound).")
    var ingestAck: String?
    @Option(help: "Outbound endpoint for alerts, status, heartbeat and health (PUB, bound).")
    var publish: String?
    @Option(help: "Control endpoint (ROUTER, bound).")
    var control: String?
    @Option(help: "Price catalog: a native catalog or the LiteLLM price map (JSON).")
    var prices: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?
    @Option(help: "Serve Prometheus metrics at HOST:PORT/metrics (not available in this version).")
    var metrics: String?
    @Option(name: .customLong("curve-secret-key"), help: "The daemon's Z85 CURVE secret key file (budgetctl keygen NAME writes NAME.key): turns on CURVE for every TCP socket.")
    var curveSecretKey: String?
    @Option(name: .customLong("curve-publishers"), help: "Public keys allowed on the ingest sockets: a file, one Z85 key per line, or a directory of .pub files.")
    var curvePublishers: String?
    @Option(name: .customLong("curve-operators"), help: "Public keys allowed every control op (file or directory of .pub files).")
    var curveOperators: String?
    @Option(name: .customLong("curve-viewers"), help: "Public keys allowed the read-only control ops (file or directory of .pub files).")
    var curveViewers: String?
    @Option(name: .customLong("curve-subscribers"), help: "Public keys allowed on the outbound socket (file or directory of .pub files).")
    var curveSubscribers: String?
    @Flag(name: .customLong("check-config"), help: "Validate the configuration and price catalog, then exit 0 or 1.")
    var checkConfig = false

    func makeConfiguration() throws -> DaemonConfiguration {
        let stateDirectory = ProcessInfo.processInfo.environment["STATE_DIRECTORY"]
            .flatMap { $0.split(separator: ":").first.map(String.init) }
        var c = DaemonConfiguration(databasePath: stateDirectory.map { $0 + "/budgetd.db" } ?? "budgetd.db")
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else {
                throw ConfigurationError("cannot read config file \(config)")
            }
            try c.apply(configFile: [UInt8](data))
        }
        if let db { c.databasePath = db }
        if let ingest { c.ingestEndpoint = ingest }
        if let ingestAck { c.ingestAckEndpoint = ingestAck }
        if let publish { c.publishEndpoint = publish }
        if let control { c.controlEndpoint = control }
        if let prices { c.pricesPath = prices }
        if let logLevel { c.logLevel = logLevel }
        guard Logger.Level(rawValue: c.logLevel) != nil else {
            throw ConfigurationError("log level \(c.logLevel) is not one of trace debug info notice warning error critical")
        }
        if metrics != nil { throw ConfigurationError("--metrics is not available in budgetd \(budgetdVersion) yet") }
        if let curveSecretKey { c.security.secretKeyPath = curveSecretKey }
        if let curvePublishers { c.security.publishersPath = curvePublishers }
        if let curveOperators { c.security.operatorsPath = curveOperators }
        if let curveViewers { c.security.viewersPath = curveViewers }
        if let curveSubscribers { c.security.subscribersPath = curveSubscribers }
        let lists = [c.security.publishersPath, c.security.operatorsPath, c.security.viewersPath, c.security.subscribersPath]
        if !c.security.isEnabled && lists.contains(where: { $0 != nil }) {
            // Refuse rather than run open while the operator believes access is restricted.
            throw ConfigurationError("--curve-publishers/operators/viewers/subscribers need --curve-secret-key")
        }
        return c
    }

    func run() async throws {
        let configuration: DaemonConfiguration
        do {
            configuration = try makeConfiguration()
            if checkConfig {
                try configuration.check()
                print("configuration OK")
                return
            }
        } catch {
            FileHandle.standardError.write(Data("budgetd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "budgetd")
        let engine = Engine(configuration: configuration, logger: logger) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        // SIGHUP reloads the price catalog (between two batches, on the engine thread).
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { engine.requestReload() }
        hangup.resume()
        defer { hangup.cancel() }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: EngineService(engine: engine), successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        do {
            try await group.run()
        } catch {
            logger.critical("budgetd failed: \(error)")
            throw ExitCode(1)
        }
    }
}
