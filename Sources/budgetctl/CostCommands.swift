import ArgumentParser
import BudgetCore

/// `budgetctl cost …`.
struct CostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "Book costs and credits by hand and list a budget's costs.",
        subcommands: [Allocate.self, Credit.self, List.self]
    )
}

extension CostCommand {
    /// `budgetctl cost allocate` → `cost.allocate`.
    struct Allocate: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Book a cost against a budget (cost.allocate); alerts are checked as for usage events.",
            discussion: """
                With --id the booking is idempotent: repeating the command with \
                the same key returns the first booking instead of a second one.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The budget's id.", valueName: "id"))
        var budget: String

        @Option(help: "The platform, such as OpenAI or Apify.")
        var platform: String

        @Option(name: .customLong("service"), help: "The service type: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER.")
        var service: ServiceTypeChoice

        @Option(help: ArgumentHelp("The cost, a decimal such as 12.5, in the budget's currency.", valueName: "amount"))
        var amount: DecimalText

        @Option(help: ArgumentHelp("An idempotency key for this booking.", valueName: "key"))
        var id: String?

        @Option(help: "A free-text description.")
        var description: String?

        @Option(help: ArgumentHelp("When the cost was incurred, YYYY-MM-DD or RFC 3339 (default: now).", valueName: "date"))
        var date: String?

        @Option(name: .customLong("api-usage-id"), help: ArgumentHelp("A link to the API usage record.", valueName: "id"))
        var apiUsageId: String?

        @Option(name: .customLong("apify-run-id"), help: ArgumentHelp("A link to the Apify run.", valueName: "id"))
        var apifyRunId: String?

        @Option(
            name: .customLong("metadata"),
            help: ArgumentHelp("A metadata entry KEY=VALUE (repeatable; KEY:=JSON for non-strings).", valueName: "key=value")
        )
        var metadata: [KeyValue] = []

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("id", id.map(JSONValue.string))
            args["budgetId"] = .string(budget)
            args["platform"] = .string(platform)
            args["serviceType"] = service.json
            args["costAmount"] = amount.json
            args.set("description", description.map(JSONValue.string))
            args.set("costDate", date.map(JSONValue.string))
            args.set("apiUsageId", apiUsageId.map(JSONValue.string))
            args.set("apifyRunId", apifyRunId.map(JSONValue.string))
            if !metadata.isEmpty { args["metadata"] = .object(KeyValue.object(metadata)) }

            let cost = try client.call("cost.allocate", args)
            if printedJSON(cost) { return }
            Console.out(
                "booked \(Format.amount(cost["costAmount"])) \(Format.cell(cost["currency"])) "
                    + "on \(Format.cell(cost["budgetId"])) as \(Format.cell(cost["id"]))"
            )
        }
    }

    /// `budgetctl cost list BUDGET` → `cost.list`.
    struct List: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a budget's costs, newest first (cost.list)."
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The budget's id.")
        var budget: String

        @Option(help: ArgumentHelp("Only costs at or after this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var from: String?

        @Option(help: ArgumentHelp("Only costs at or before this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var to: String?

        @Option(help: ArgumentHelp("At most this many (budgetd's default: 100).", valueName: "n"))
        var limit: Int?

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run(with client: ControlClient) throws {
            var args: JSONObject = ["budgetId": .string(budget)]
            args.set("from", from.map(JSONValue.string))
            args.set("to", to.map(JSONValue.string))
            args.set("limit", limit.map { .number($0) })
            let costs = try client.call("cost.list", args)
            if printedJSON(costs) { return }

            var table = Table(
                ["DATE", "ID", "PLATFORM", "SERVICE", "AMOUNT", "EVENT", "DESCRIPTION"],
                rightAligned: ["AMOUNT"]
            )
            for cost in costs.arrayValue ?? [] {
                table.append([
                    Format.cell(cost["costDate"]),
                    Format.cell(cost["id"]),
                    Format.cell(cost["platform"]),
                    Format.cell(cost["serviceType"]),
                    Format.amount(cost["costAmount"]),
                    Format.cell(cost["eventId"]),
                    Format.cell(cost["description"]),
                ])
            }
            table.print(empty: "no costs")
        }
    }
}
