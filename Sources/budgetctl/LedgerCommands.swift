import ArgumentParser
import BudgetCore
import Foundation

/// An event reference on the command line, `SOURCE:ID` (the id may hold colons;
/// an empty source, `:ID`, is the default source).
struct EventRef: ExpressibleByArgument, Sendable {
    let source: String
    let id: String

    init?(argument: String) {
        guard let colon = argument.firstIndex(of: ":") else { return nil }
        let id = String(argument[argument.index(after: colon)...])
        guard !id.isEmpty else { return nil }
        self.source = String(argument[..<colon])
        self.id = id
    }

    var json: JSONValue { .object(JSONObject([("source", .string(source)), ("id", .string(id))])) }
}

extension CostCommand {
    /// `budgetctl cost credit` → `cost.credit`.
    struct Credit: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Book a credit or refund, a negative adjustment (cost.credit); thresholds re-arm when spend falls below them.",
            discussion: """
                With --corrects SOURCE:ID the credit is linked to that event, and the \
                budget, platform and service default to the event's. Without it, \
                --budget, --platform and --service are needed. With --id the credit \
                is idempotent.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The budget's id (default: the corrected event's).", valueName: "id"))
        var budget: String?

        @Option(help: "The platform, such as OpenAI or Apify (default: the corrected event's).")
        var platform: String?

        @Option(name: .customLong("service"), help: "The service type: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER (default: the corrected event's).")
        var service: ServiceTypeChoice?

        @Option(help: ArgumentHelp("The credit, a positive decimal such as 12.5; it is booked as a negative cost.", valueName: "amount"))
        var amount: DecimalText

        @Option(help: "Why: a credit note number, a refund reference.")
        var reason: String?

        @Option(help: ArgumentHelp("The event this credit corrects.", valueName: "source:id"))
        var corrects: EventRef?

        @Option(help: ArgumentHelp("An idempotency key for this credit.", valueName: "key"))
        var id: String?

        @Option(help: ArgumentHelp("When the credit applies, YYYY-MM-DD or RFC 3339 (default: now).", valueName: "date"))
        var date: String?

        func validate() throws {
            if corrects == nil, budget == nil || platform == nil || service == nil {
                throw ValidationError("--budget, --platform and --service are needed without --corrects")
            }
        }

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("id", id.map(JSONValue.string))
            args.set("budgetId", budget.map(JSONValue.string))
            args.set("platform", platform.map(JSONValue.string))
            args.set("serviceType", service?.json)
            args["amount"] = amount.json
            args.set("reason", reason.map(JSONValue.string))
            args.set("costDate", date.map(JSONValue.string))
            args.set("correctsEvent", corrects?.json)

            let cost = try client.call("cost.credit", args)
            if printedJSON(cost) { return }
            var line = "credited \(Format.amount(cost["costAmount"])) \(Format.cell(cost["currency"])) "
                + "on \(Format.cell(cost["budgetId"])) as \(Format.cell(cost["id"]))"
            if let ref = cost["correctsEvent"], !ref.isNull {
                line += " (corrects \(Format.cell(ref["source"])):\(Format.cell(ref["id"])))"
            }
            Console.out(line)
        }
    }
}

extension EventsCommand {
    /// `budgetctl events get SOURCE ID` → `event.get`.
    struct Get: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one stored event by (source, id) with its costs and corrections (event.get).",
            discussion: "Use \"\" as SOURCE for events sent without one."
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The event's source (\"\" for none).")
        var source: String

        @Argument(help: "The event's id.")
        var id: String

        func run(with client: ControlClient) throws {
            let event = try client.call("event.get", ["source": .string(source), "id": .string(id)])
            if printedJSON(event) { return }

            let currency = Format.cell(event["currency"])
            var fields = Table(["FIELD", "VALUE"])
            for key in ["source", "id", "state", "reason", "kind", "platform", "serviceType", "model", "time", "receivedAt", "budgetId", "catalogVersion"] {
                guard let value = event[key], !value.isNull else { continue }
                fields.append([key, Format.cell(value)])
            }
            if let cost = event["cost"], !cost.isNull { fields.append(["cost", "\(Format.amount(cost)) \(currency)"]) }
            if let total = event["totalCost"], !total.isNull { fields.append(["totalCost", "\(Format.amount(total)) \(currency)"]) }
            fields.print(empty: "no event")

            let costs = event["costs"]?.arrayValue ?? []
            guard !costs.isEmpty else { return }
            Console.out("")
            var table = Table(["DATE", "ID", "KIND", "BUDGET", "AMOUNT", "CATALOG", "DESCRIPTION"], rightAligned: ["AMOUNT"])
            for cost in costs {
                let catalog: String
                if let from = cost["catalogFrom"]?.stringValue, let to = cost["catalogTo"]?.stringValue {
                    catalog = "\(from) → \(to)"
                } else {
                    catalog = "-"
                }
                table.append([
                    Format.cell(cost["costDate"]), Format.cell(cost["id"]), Format.cell(cost["kind"]),
                    Format.cell(cost["budgetId"]), Format.amount(cost["costAmount"]), catalog, Format.cell(cost["description"]),
                ])
            }
            table.print(empty: "no costs")
        }
    }

    /// `budgetctl events reprice` → `event.reprice`.
    struct Reprice: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Price ALLOCATED events again with the catalog in force and book the differences (event.reprice).",
            discussion: """
                --dry-run shows the differences without recording them. --catalog FILE \
                prices with that catalog instead ("what would it have cost?") and never \
                records anything. A second run after a recorded one finds no difference.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "Only events of this platform.")
        var platform: String?

        @Option(help: "Only events of this model.")
        var model: String?

        @Option(help: ArgumentHelp("Only events at or after this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var from: String?

        @Option(help: ArgumentHelp("Only events at or before this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var to: String?

        @Flag(name: .customLong("dry-run"), help: "Show the differences; record nothing.")
        var dryRun = false

        @Option(help: ArgumentHelp("A catalog JSON file to price with instead; nothing is recorded.", valueName: "file"))
        var catalog: String?

        @Option(help: ArgumentHelp("At most this many rows of differences in the reply (budgetd's default: 100).", valueName: "n"))
        var limit: Int?

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("platform", platform.map(JSONValue.string))
            args.set("model", model.map(JSONValue.string))
            args.set("from", from.map(JSONValue.string))
            args.set("to", to.map(JSONValue.string))
            if dryRun { args["dryRun"] = .bool(true) }
            args.set("limit", limit.map { .number($0) })
            if let catalog {
                guard let data = FileManager.default.contents(atPath: catalog) else {
                    throw CommandFailure("cannot read \(catalog)", status: 64)
                }
                guard let parsed = try? JSON.parse([UInt8](data), maxDepth: 512), parsed.objectValue != nil else {
                    throw CommandFailure("\(catalog) is not a JSON object", status: 64)
                }
                args["catalog"] = parsed
            }

            let result = try client.call("event.reprice", args)
            if printedJSON(result) { return }

            var table = Table(
                ["SOURCE", "ID", "BUDGET", "CURRENT", "NEW", "DIFFERENCE", "CURRENCY", "CATALOG"],
                rightAligned: ["CURRENT", "NEW", "DIFFERENCE"]
            )
            for event in result["events"]?.arrayValue ?? [] {
                table.append([
                    Format.cell(event["source"]), Format.cell(event["id"]), Format.cell(event["budgetId"]),
                    Format.amount(event["currentCost"]), Format.amount(event["newCost"]), Format.amount(event["difference"]),
                    Format.cell(event["currency"]),
                    "\(Format.cell(event["catalogFrom"])) → \(Format.cell(event["catalogTo"]))",
                ])
            }
            table.print(empty: "no differences")
            let recorded = result["recorded"]?.boolValue == true
            var summary = "\(Format.cell(result["count"])) changed, difference \(Format.amount(result["totalDifference"])) "
                + "(\(Format.amount(result["currentTotal"])) → \(Format.amount(result["newTotal"]))), "
                + "catalog \(Format.cell(result["catalogVersion"])), "
                + (recorded ? "recorded" : "not recorded")
            if result["truncated"]?.boolValue == true { summary += "; more rows than shown" }
            Console.out(summary)
        }
    }
}

/// `budgetctl backup PATH` → `backup.create`.
struct BackupCommand: ControlCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write an online, consistent copy of the database (backup.create); ingest goes on.",
        discussion: """
            PATH is written by budgetd, on its host: it must be absolute and must not \
            exist. Restore: docs/ledger.md, "Backup and restore".
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Where budgetd writes the copy (absolute, new).", valueName: "path"))
    var path: String

    func run(with client: ControlClient) throws {
        let result = try client.call("backup.create", ["path": .string(path)])
        if printedJSON(result) { return }
        Console.out(
            "backup \(Format.cell(result["path"])): \(Format.cell(result["bytes"])) bytes in \(Format.cell(result["ms"])) ms, "
                + "\(Format.cell(result["events"])) events, \(Format.cell(result["costs"])) costs"
        )
        var table = Table(["BUDGET", "SPENT"], rightAligned: ["SPENT"])
        for budget in result["budgets"]?.arrayValue ?? [] {
            table.append([Format.cell(budget["id"]), Format.amount(budget["spentAmount"])])
        }
        if !table.rows.isEmpty { table.print(empty: "") }
    }
}

/// `budgetctl retention …`.
struct RetentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Prune raw events, dead letters and the outbound log now (budgetd also does it daily).",
        subcommands: [Run.self]
    )
}

extension RetentionCommand {
    /// `budgetctl retention run` → `retention.run`.
    struct Run: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prune what is older than the retention horizon (retention.run); costs and totals stay.",
            discussion: """
                Without --older-than the configured retentionDays apply (nothing when 0). \
                Usage events inside dedupWindowDays are kept either way.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("older-than"), help: ArgumentHelp("Prune what was received before this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var olderThan: String?

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("olderThan", olderThan.map(JSONValue.string))
            let result = try client.call("retention.run", args)
            if printedJSON(result) { return }
            guard result["enabled"]?.boolValue == true else {
                Console.out("retention is off (retentionDays 0): nothing pruned")
                return
            }
            Console.out(
                "pruned \(Format.cell(result["usageEvents"])) usage events (received before \(Format.cell(result["eventsBefore"]))), "
                    + "\(Format.cell(result["deadLetters"])) dead letters and \(Format.cell(result["outbound"])) outbound messages "
                    + "(before \(Format.cell(result["othersBefore"])))"
            )
        }
    }
}
