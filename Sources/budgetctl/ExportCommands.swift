import ArgumentParser
import BudgetCore

/// `budgetctl export costs|events`: every page of `cost.list` / `event.list` (`page: true`,
/// following `nextCursor`) streamed to standard output as CSV or JSON lines (docs/ledger.md).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export costs or events as CSV or JSON lines, page by page (for finance, archives).",
        subcommands: [Costs.self, Events.self]
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case csv, jsonl
    }

    /// The columns of the CSV export of each kind (JSON lines carry every field).
    static let costColumns = [
        "id", "budgetId", "allocationId", "kind", "platform", "serviceType", "costAmount", "currency", "costDate",
        "eventSource", "eventId", "correctsEvent.source", "correctsEvent.id", "catalogFrom", "catalogTo",
        "apiUsageId", "apifyRunId", "description", "metadata",
    ]
    static let eventColumns = [
        "source", "id", "state", "reason", "kind", "platform", "serviceType", "model", "time", "receivedAt",
        "cost", "currency", "budgetId", "costAllocationId", "catalogVersion", "body",
    ]

    /// A CSV field: amounts keep their exact text, objects are JSON, quoted when needed (RFC 4180).
    static func csvField(_ value: JSONValue?) -> String {
        let text: String
        switch value {
        case nil, .null?: text = ""
        case .string(let s)?: text = s
        case .number(let n)?: text = n
        case .bool(let b)?: text = b ? "true" : "false"
        case let v?: text = v.serialized(sortedKeys: true)
        }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingAll("\"", with: "\"\"") + "\""
    }

    static func value(_ item: JSONValue, _ path: String) -> JSONValue? {
        var v: JSONValue? = item
        for key in path.split(separator: ".") { v = v?[String(key)] }
        return v
    }

    /// Calls `op` page after page and writes each item as it comes.
    static func stream(_ client: ControlClient, op: String, args: JSONObject, format: Format, columns: [String], pageSize: Int) throws {
        if format == .csv { Console.outData(lines: [columns.joined(separator: ",")]) }
        var args = args
        args["page"] = true
        args["limit"] = .number(pageSize)
        while true {
            let page = try client.call(op, args)
            var lines: [String] = []
            for item in page["items"]?.arrayValue ?? [] {
                switch format {
                case .jsonl: lines.append(item.serialized())
                case .csv: lines.append(columns.map { csvField(value(item, $0)) }.joined(separator: ","))
                }
            }
            Console.outData(lines: lines)
            guard let next = page["nextCursor"]?.stringValue else { return }
            args["cursor"] = .string(next)
        }
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}

extension ExportCommand {
    /// `budgetctl export costs --budget ID` → `cost.list` pages.
    struct Costs: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a budget's cost allocations (costs, credits, re-pricing adjustments), newest first."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The budget's id.", valueName: "id"))
        var budget: String

        @Option(help: ArgumentHelp("Only costs at or after this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var from: String?

        @Option(help: ArgumentHelp("Only costs at or before this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var to: String?

        @Option(help: "csv (with a header) or jsonl.")
        var format: Format = .csv

        @Option(name: .customLong("page-size"), help: ArgumentHelp("Rows per control request.", valueName: "n"))
        var pageSize = 1000

        func validate() throws {
            if pageSize < 1 || pageSize > 100_000 { throw ValidationError("--page-size must be 1...100000") }
        }

        func run(with client: ControlClient) throws {
            var args: JSONObject = ["budgetId": .string(budget)]
            args.set("from", from.map(JSONValue.string))
            args.set("to", to.map(JSONValue.string))
            try ExportCommand.stream(client, op: "cost.list", args: args, format: format, columns: ExportCommand.costColumns, pageSize: pageSize)
        }
    }

    /// `budgetctl export events` → `event.list` pages.
    struct Events: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export stored usage events (and, without --budget, dead letters), newest first."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Only events booked to or routed to this budget.", valueName: "id"))
        var budget: String?

        @Option(help: ArgumentHelp("Only events at or after this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var from: String?

        @Option(help: ArgumentHelp("Only events at or before this time (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var to: String?

        @Option(help: ArgumentHelp("Only events in this state: ALLOCATED UNPRICED UNALLOCATED REJECTED.", valueName: "state"))
        var state: String?

        @Option(help: "csv (with a header) or jsonl.")
        var format: Format = .csv

        @Option(name: .customLong("page-size"), help: ArgumentHelp("Rows per control request.", valueName: "n"))
        var pageSize = 1000

        func validate() throws {
            if pageSize < 1 || pageSize > 100_000 { throw ValidationError("--page-size must be 1...100000") }
        }

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("budgetId", budget.map(JSONValue.string))
            args.set("from", from.map(JSONValue.string))
            args.set("to", to.map(JSONValue.string))
            args.set("state", state.map(JSONValue.string))
            try ExportCommand.stream(client, op: "event.list", args: args, format: format, columns: ExportCommand.eventColumns, pageSize: pageSize)
        }
    }
}
