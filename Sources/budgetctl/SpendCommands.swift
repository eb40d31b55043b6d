import ArgumentParser
import BudgetCore

/// `budgetctl spend …`.
struct SpendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spend",
        abstract: "Ask budgetd whether a spend is allowed before making it.",
        subcommands: [Check.self]
    )
}

extension SpendCommand {
    /// `budgetctl spend check` → `spend.check`.
    struct Check: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a spend before an expensive operation (spend.check); nothing is booked.",
            discussion: """
                Example: budgetctl spend check --platform OpenAI --service API \
                --amount 12.5 && run-the-batch

                The spend is routed like a usage event at the current time (or to \
                --budget), and budgetd answers whether it may go ahead: it is \
                refused when it would take the budget, its allocation or an \
                ancestor over its total, when the budget is PAUSED, CANCELLED or \
                COMPLETED, or, as the budget nears its total, by the priority of \
                the matching allocation (LOW from 90 %, MEDIUM from 95 %, HIGH \
                from 98 %; CRITICAL only over 100 %). Spend no budget covers is \
                allowed. Prints ALLOWED or DENIED, the budget, the reason, and the \
                remaining amount before and after.

                Exit status, so scripts can use it as a gate: 0 when allowed; 1 \
                when denied (with --json too), or when budgetd answered with an \
                error such as NOT_FOUND for an unknown --budget (the message on \
                standard error); 2 when budgetd did not answer.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "The platform, such as OpenAI or Apify.")
        var platform: String

        @Option(name: .customLong("service"), help: "The service type: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER.")
        var service: ServiceTypeChoice

        @Option(help: ArgumentHelp("The amount about to be spent, a decimal such as 12.5, in the budget's currency.", valueName: "amount"))
        var amount: DecimalText

        @Option(help: ArgumentHelp("Check against this budget instead of routing by platform, service and metadata.", valueName: "id"))
        var budget: String?

        @Option(
            name: .customLong("metadata"),
            help: ArgumentHelp("A metadata entry KEY=VALUE for selector routing (repeatable; KEY:=JSON for non-strings).", valueName: "key=value")
        )
        var metadata: [KeyValue] = []

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("budgetId", budget.map(JSONValue.string))
            args["platform"] = .string(platform)
            args["serviceType"] = service.json
            args["amount"] = amount.json
            if !metadata.isEmpty { args["metadata"] = .object(KeyValue.object(metadata)) }

            let check = try client.call("spend.check", args)
            guard let allowed = check["allowed"]?.boolValue else {
                throw CommandFailure("spend.check replied without \"allowed\": \(check.serialized())")
            }
            if !printedJSON(check) {
                Console.out(lines: Self.lines(check, allowed: allowed))
            }
            if !allowed {
                throw ExitCode.failure
            }
        }

        /// The answer for people: `ALLOWED` or `DENIED`, then `label  value` lines.
        static func lines(_ check: JSONValue, allowed: Bool) -> [String] {
            let currency = check["currency"]?.stringValue
            func amount(_ value: JSONValue?) -> String {
                guard let currency else { return Format.amount(value) }
                return Format.amount(value, currency: currency)
            }
            var budget = "none covers this spend"
            if let id = check["budgetId"]?.stringValue {
                budget = check["budgetName"]?.stringValue.map { "\($0) (\(id))" } ?? id
                if let status = check["status"]?.stringValue { budget += ", \(status)" }
            }
            var rows: [(String, String)] = [
                ("budget", budget),
                ("reason", Format.cell(check["reason"])),
            ]
            // Figures the daemon left null (a budget the spend cannot go to) are
            // left out rather than shown as dashes. A budget the policy ran on
            // (it has a priority) without a remaining amount is UNLIMITED, whose
            // spentPercentage of 0 says nothing either.
            func present(_ keys: String...) -> Bool {
                keys.contains { check[$0].map { !$0.isNull } ?? false }
            }
            let hasRemaining = present("remaining", "remainingAfter")
            if hasRemaining {
                rows.append(("remaining", "\(amount(check["remaining"])) before, \(amount(check["remainingAfter"])) after"))
            } else if present("priority") {
                rows.append(("remaining", "unlimited (no total)"))
            }
            if hasRemaining, present("spentPercentage", "spentPercentageAfter") {
                rows.append(("spent", "\(Format.percent(check["spentPercentage"])) before, \(Format.percent(check["spentPercentageAfter"])) after"))
            }
            if present("priority") {
                rows.append(("priority", Format.cell(check["priority"])))
            }
            if let allocation = check["allocation"], !allocation.isNull {
                rows.append((
                    "allocation",
                    "\(Format.cell(allocation["platform"]))/\(Format.cell(allocation["serviceType"])) "
                        + "(\(Format.cell(allocation["id"])), \(Format.cell(allocation["priority"]))): "
                        + "\(amount(allocation["remaining"])) remaining before, \(amount(allocation["remainingAfter"])) after"
                ))
            } else if present("priority") {
                rows.append(("allocation", "none matches (the spend counts as \(Format.cell(check["priority"])))"))
            }
            let verdict = allowed ? Colour.green.paint("ALLOWED") : Colour.red.paint("DENIED")
            let width = rows.map(\.0.count).max() ?? 0
            return [verdict] + rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }
        }
    }
}
