import ArgumentParser
import BudgetCore
import ZMQ

/// `budgetctl`: the command line of budgetd (CONTRACT §7).
@main
struct Budgetctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budgetctl",
        abstract: "Drive budgetd: budgets, allocations, costs, alerts, spend checks, analytics, events, prices, and load tests.",
        discussion: """
            Commands talk to the daemon's control socket (--control; `alerts \
            tail` also to its outbound socket, `events send` to its ingest \
            sockets instead) and print tables for people, or the raw `result` \
            JSON of the reply with --json, for scripts. Colour is used on a \
            terminal only, unless NO_COLOR is set.

            Exit status: 0 on success; 1 when the daemon answered with an error \
            (printed as `error CODE: message` on standard error); 2 when it did \
            not answer within --timeout or the reply was unreadable; 64 for a \
            command-line mistake. `spend check` also exits 1 when the spend is \
            denied, and `health` 3 when the daemon is DEGRADED.
            """,
        subcommands: [
            Call.self,
            BudgetCommand.self,
            CostCommand.self,
            AlertsCommand.self,
            OutboundCommand.self,
            SpendCommand.self,
            AnalyticsCommand.self,
            EventsCommand.self,
            Health.self,
            Stats.self,
            PricesCommand.self,
            ForecastCommand.self, RecommendationsCommand.self,
            Bench.self, Keygen.self,
            ExportCommand.self, BackupCommand.self, RetentionCommand.self,
        ]
    )

    /// `budgetctl --control EP health` works as `budgetctl health --control EP` does (CONTRACT §7:
    /// "budgetctl takes --control ENDPOINT", in the usual style, which allows either place).
    static func main() {
        main(LeadingOptions.moved(Array(CommandLine.arguments.dropFirst())))
    }
}

/// The connection and output options given before the subcommand, moved after it: each
/// subcommand declares them (`GlobalOptions`, and `--publish`/`--ingest…` where it uses them),
/// and the argument parser only reads a subcommand's options after its name.
enum LeadingOptions {
    static let withValue: Set<String> = ["--control", "--timeout", "--curve-key", "--curve-server-key", "--publish", "--ingest", "--ingest-ack"]
    static let flags: Set<String> = ["--json"]

    /// `arguments` with the known options that come before the first other word moved to the
    /// end (before a `--`, if any); unchanged when there are none, or nothing follows them.
    static func moved(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
            if flags.contains(word) {
                leading.append(word)
                i += 1
            } else if withValue.contains(name) {
                if word.contains("=") {
                    leading.append(word)
                    i += 1
                } else {
                    // A missing value is left where it is, for the parser to report.
                    guard i + 1 < arguments.count else { break }
                    leading += [word, arguments[i + 1]]
                    i += 2
                }
            } else {
                break
            }
        }
        guard !leading.isEmpty, i < arguments.count else { return arguments }
        var rest = Array(arguments[i...])
        rest.insert(contentsOf: leading, at: rest.firstIndex(of: "--") ?? rest.endIndex)
        return rest
    }
}

/// The options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .customLong("control"),
        help: ArgumentHelp("The daemon's control endpoint (ZeroMQ ROUTER).", valueName: "endpoint")
    )
    var control = "tcp://127.0.0.1:7603"

    @Flag(help: "Print JSON instead of text, for scripts: the reply's raw `result` on one line (alerts tail: each payload; events send: the acknowledgement; bench: the report).")
    var json = false

    @Option(
        help: ArgumentHelp(
            "How long to wait for each reply before giving up (exit status 2).",
            valueName: "seconds"
        )
    )
    var timeout: Double = 5

    @Option(
        name: .customLong("curve-key"),
        help: ArgumentHelp("Use CURVE with this key pair (NAME.key, as `budgetctl keygen NAME` writes); needs --curve-server-key.", valueName: "name")
    )
    var curveKey: String?

    @Option(
        name: .customLong("curve-server-key"),
        help: ArgumentHelp("The daemon's public key file (its NAME.pub), for CURVE.", valueName: "file")
    )
    var curveServerKey: String?

    /// Makes `socket` a CURVE client of the daemon when --curve-key is given; call before connect.
    func secure(_ socket: ZMQSocket) throws {
        try ClientSecurity.secure(socket, key: curveKey, serverKey: curveServerKey)
    }

    func validate() throws {
        guard timeout.isFinite, timeout > 0, timeout <= 86_400 else {
            throw ValidationError("--timeout must be a number of seconds above 0 (at most 86400)")
        }
    }

    /// The timeout as a duration.
    var timeoutDuration: Duration {
        .milliseconds(Int64((timeout * 1000).rounded(.up)))
    }

    /// The timeout as people read it: `5s`, `0.5s`.
    var timeoutText: String {
        timeout == timeout.rounded() ? "\(Int(timeout))s" : "\(timeout)s"
    }

    /// Runs `body` with a client connected to ``control``, then closes it;
    /// failures are reported the `budgetctl` way (see ``report(_:)``).
    func withClient<Result>(_ body: (ControlClient) throws -> Result) throws -> Result {
        do {
            let context = try ZMQContext()
            defer { context.terminate() }
            let client = try ControlClient(
                context: context, endpoint: control, timeout: timeoutDuration, timeoutText: timeoutText, secure: secure
            )
            defer { client.close() }
            return try body(client)
        } catch {
            throw Self.report(error)
        }
    }

    /// Prints `error` on standard error in the `budgetctl` way and returns the
    /// exit code to throw. Errors ArgumentParser knows how to print
    /// (`ValidationError`, `ExitCode`, `CleanExit`) are returned as they are.
    static func report(_ error: any Error) -> any Error {
        switch error {
        case ControlClientError.interrupted:
            return ExitCode.success
        case let failure as ControlClientError:
            Console.err(failure.description)
            if case .daemon = failure {
                return ExitCode.failure
            }
            return ExitCode(2)
        case let failure as ZMQError:
            Console.err("budgetctl: \(failure)")
            return ExitCode(2)
        case let failure as CommandFailure:
            Console.err("budgetctl: \(failure.message)")
            return ExitCode(failure.status)
        default:
            return error
        }
    }
}

/// A failure found on our side, after the arguments parsed (a malformed
/// reply field, a bench that could not finish).
struct CommandFailure: Error {
    var message: String
    var status: Int32 = 1

    init(_ message: String, status: Int32 = 1) {
        self.message = message
        self.status = status
    }
}

/// A command that sends control requests: it gets a connected client and
/// the global options, and its failures are reported uniformly.
protocol ControlCommand: ParsableCommand {
    var global: GlobalOptions { get }

    /// The command's work, with a client connected to `--control`.
    func run(with client: ControlClient) throws
}

extension ControlCommand {
    func run() throws {
        try global.withClient { client in
            try run(with: client)
        }
    }

    /// Prints `result` as one line of JSON if `--json` was given; returns
    /// whether it did, so the caller prints text otherwise.
    func printedJSON(_ result: JSONValue) -> Bool {
        guard global.json else { return false }
        Console.out(result.serialized())
        return true
    }
}

/// `budgetctl call OP [ARGS-JSON]`.
struct Call: ControlCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send any control op with raw JSON arguments and print the result JSON.",
        discussion: """
            Example: budgetctl call budget.get '{"id":"b_123"}'. The result is \
            printed as one line of JSON with or without --json; an error reply \
            exits 1 with `error CODE: message`.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The op, such as budget.list or stats.", valueName: "op"))
    var op: String

    @Argument(help: ArgumentHelp("The op's `args`, a JSON object (default {}).", valueName: "args-json"))
    var args: String = "{}"

    func validate() throws {
        guard (try? JSON.parse(args))?.objectValue != nil else {
            throw ValidationError("ARGS-JSON must be a JSON object, such as '{\"id\":\"b_123\"}'")
        }
    }

    func run(with client: ControlClient) throws {
        let object = (try? JSON.parse(args))?.objectValue ?? JSONObject()
        let result = try client.call(op, object)
        Console.out(result.serialized())
    }
}
