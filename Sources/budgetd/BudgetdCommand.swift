import ArgumentParser
import Dispatch
import BudgetCore
import BudgetDaemon
import CEarlySignal
import Foundation
import Logging
import Metrics
import Prometheus
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
    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (port 0: ephemeral; off by default).")
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

    /// The configuration file, then `BUDGETD_<KEY>` environment variables, then the flags.
    ///
    /// `atStart`: the config may be a FIFO or `<(…)`, awaited until SIGTERM or SIGINT; read
    /// again (SIGHUP), it must be a regular file, for the reload must not block.
    func makeConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment, atStart: Bool = false) throws -> DaemonConfiguration {
        let stateDirectory = environment["STATE_DIRECTORY"]
            .flatMap { $0.split(separator: ":").first.map(String.init) }
        var c = DaemonConfiguration(databasePath: stateDirectory.map { $0 + "/budgetd.db" } ?? "budgetd.db")
        if let config {
            let data: [UInt8]
            do {
                data = try readWholeFile(atPath: config, waitingUnless: atStart ? { budgetd_early_stop_signal() != 0 } : nil)
            } catch {
                throw ConfigurationError(error.message("config file", config))
            }
            try c.apply(configFile: data)
        }
        try c.apply(environment: environment)
        func flag(_ key: String, _ value: String?, _ name: String) throws {
            if let value { try c.apply(key: key, value: .string(value), origin: "--\(name)") }
        }
        try flag("db", db, "db")
        try flag("ingest", ingest, "ingest")
        try flag("ingestAck", ingestAck, "ingest-ack")
        try flag("publish", publish, "publish")
        try flag("control", control, "control")
        try flag("prices", prices, "prices")
        try flag("logLevel", logLevel, "log-level")
        try flag("metrics", metrics, "metrics")
        try flag("curveSecretKey", curveSecretKey, "curve-secret-key")
        try flag("curvePublishers", curvePublishers, "curve-publishers")
        try flag("curveOperators", curveOperators, "curve-operators")
        try flag("curveViewers", curveViewers, "curve-viewers")
        try flag("curveSubscribers", curveSubscribers, "curve-subscribers")
        let lists = [c.security.publishersPath, c.security.operatorsPath, c.security.viewersPath, c.security.subscribersPath]
        if !c.security.isEnabled && lists.contains(where: { $0 != nil }) {
            // Refuse rather than run open while the operator believes access is restricted.
            throw ConfigurationError("--curve-publishers/operators/viewers/subscribers need --curve-secret-key")
        }
        try c.validate()
        return c
    }

    func run() async throws {
        // A reader of standard error that goes away (`budgetd … | head`, a log shipper) must not
        // stop the daemon: writes to it fail instead (and the line is dropped). Outside systemd,
        // which sets this itself for services.
        signal(SIGPIPE, SIG_IGN)
        let configuration: DaemonConfiguration
        do {
            configuration = try makeConfiguration(atStart: true)
            if checkConfig {
                try configuration.check()
                print("configuration OK")
                return
            }
        } catch {
            writeStandardError("budgetd: \(error)\n")
            // Stopped by SIGTERM or SIGINT before it could start: a clean stop (CONTRACT §8).
            if budgetd_early_stop_signal() != 0 { throw ExitCode(0) }
            throw ExitCode(1)
        }
        // Only main bootstraps logging and metrics, once.
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        let journal = JournalLogHandler.stderrIsJournal(ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournalLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = EscapingLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "budgetd")
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var metricsField = ""
        if let address = configuration.metricsAddress {
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.valueHistogramBuckets["budgetd_commit_batch_size"] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
            // Commits take from a quarter of a millisecond (an fsync) upwards.
            let commitBuckets: [Duration] = [
                .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
            ]
            factory.durationHistogramBuckets["budgetd_commit_duration_seconds"] = commitBuckets
            factory.durationHistogramBuckets["budgetd_commit_transaction_seconds"] = commitBuckets
            // A batch handed over at once waits some microseconds; one behind a commit, up to its length.
            factory.durationHistogramBuckets["budgetd_commit_queue_seconds"] = [.microseconds(50), .microseconds(100)] + commitBuckets
            MetricsSystem.bootstrap(factory)
            let server: MetricsServer
            do {
                server = try MetricsServer(address: address) { registry.emitToBuffer() }
            } catch {
                logger.critical("budgetd cannot start: \(error)")
                throw ExitCode(1)
            }
            metricsField = " metrics=\(server.boundAddress)"
            services.append(.init(service: MetricsServerService(server: server), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let readySuffix = metricsField
        // A SIGTERM or SIGINT before the service group below handles them was caught by
        // CEarlySignal's handler (installed before main): the engine then stops as cleanly.
        let engine = Engine(configuration: configuration, logger: logger, notifier: SystemdNotifier(), stopSignalled: { budgetd_early_stop_signal() != 0 }) { line in
            // The metrics socket is bound before the engine opens, so READY=1 (sent right after
            // this line) covers it too.
            writeStandardError(line + readySuffix + "\n")
        }
        // SIGHUP reloads the price catalog and the alert settings of the config file (between
        // two batches, on the engine thread). A config file that no longer validates is refused
        // and the running settings stay.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler {
            do {
                let fresh = try makeConfiguration()
                engine.requestReload(alertSettings: fresh.alerts, pricesPath: fresh.pricesPath)
            } catch {
                logger.error("SIGHUP: configuration refused, the running alert settings stay: \(error)")
                engine.requestReload()
            }
        }
        hangup.resume()
        defer { hangup.cancel() }
        // Shut down in reverse order: the engine drains first, then the metrics endpoint goes.
        services.append(.init(service: EngineService(engine: engine), successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services,
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
