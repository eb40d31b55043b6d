import ArgumentParser
import BudgetCore

/// `budgetctl budget …`.
struct BudgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Create, change and inspect budgets.",
        subcommands: [Create.self, Update.self, Show.self, List.self]
    )
}

extension BudgetCommand {
    /// `budgetctl budget create` → `budget.create`.
    struct Create: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a budget (budget.create) and print it.",
            discussion: """
                Example: budgetctl budget create --name "March 2026 Operations" \
                --type MONTHLY --total 5000 --start 2026-03-01 \
                --allocation OpenAI:API:1500:HIGH --selector projectId=proj-123

                Amounts are sent exactly as typed, as JSON numbers. Without --end \
                the period follows from --type (MONTHLY: one month); PROJECT \
                needs --end; UNLIMITED needs no --total. Thresholds 80/90/100 % \
                are on unless turned off.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "The budget's name.")
        var name: String

        @Option(name: .customLong("type"), help: "The budget type: MONTHLY, QUARTERLY, YEARLY, PROJECT or UNLIMITED.")
        var type: BudgetTypeChoice

        @Option(help: ArgumentHelp("The total amount, a decimal such as 5000 or 12.50 (not needed for UNLIMITED).", valueName: "amount"))
        var total: DecimalText?

        @Option(help: ArgumentHelp("The 3-letter currency code (budgetd's default: USD).", valueName: "code"))
        var currency: String?

        @Option(help: ArgumentHelp("The first day, YYYY-MM-DD, or an RFC 3339 instant.", valueName: "date"))
        var start: String

        @Option(help: ArgumentHelp("The last day (included), YYYY-MM-DD, or the last instant (RFC 3339).", valueName: "date"))
        var end: String?

        @Option(help: ArgumentHelp("A client-chosen budget id (budgetd makes one otherwise).", valueName: "id"))
        var id: String?

        @Option(help: "A free-text description.")
        var description: String?

        @Option(name: .customLong("parent"), help: ArgumentHelp("The parent budget's id; spend here counts there too.", valueName: "id"))
        var parent: String?

        @Flag(help: "Renew the budget for the next period when this one ends.")
        var autoRenewal = false

        @Flag(name: .customLong("no-threshold-80"), help: "Do not alert at 80 % spent.")
        var noThreshold80 = false

        @Flag(name: .customLong("no-threshold-90"), help: "Do not alert at 90 % spent.")
        var noThreshold90 = false

        @Flag(name: .customLong("no-threshold-100"), help: "Do not alert at 100 % spent (BUDGET_EXCEEDED still fires over 100 %).")
        var noThreshold100 = false

        @Option(
            name: .customLong("selector"),
            help: ArgumentHelp(
                "Route events whose metadata has KEY=VALUE here (repeatable; all must match). KEY:=JSON for a non-string value.",
                valueName: "key=value"
            )
        )
        var selector: [KeyValue] = []

        @Option(
            name: .customLong("allocation"),
            help: ArgumentHelp(
                "An allocation PLATFORM:SERVICETYPE:AMOUNT[:PRIORITY], e.g. OpenAI:API:1500:HIGH (repeatable).",
                valueName: "spec"
            )
        )
        var allocations: [AllocationSpec] = []

        @Option(help: ArgumentHelp("Who creates it, recorded as createdBy.", valueName: "name"))
        var createdBy: String?

        func validate() throws {
            if total == nil, type != .unlimited {
                throw ValidationError("--total is required for a \(type.rawValue) budget")
            }
            if type == .project, end == nil {
                throw ValidationError("a PROJECT budget needs --end")
            }
        }

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("id", id.map(JSONValue.string))
            args["name"] = .string(name)
            args.set("description", description.map(JSONValue.string))
            args["budgetType"] = type.json
            args.set("totalAmount", total?.json)
            args.set("currency", currency.map { .string($0.uppercased()) })
            args["startDate"] = .string(start)
            args.set("endDate", end.map(JSONValue.string))
            if autoRenewal { args["autoRenewal"] = true }
            if noThreshold80 { args["alertThreshold80"] = false }
            if noThreshold90 { args["alertThreshold90"] = false }
            if noThreshold100 { args["alertThreshold100"] = false }
            args.set("parentId", parent.map(JSONValue.string))
            if !selector.isEmpty { args["selector"] = .object(KeyValue.object(selector)) }
            if !allocations.isEmpty { args["allocations"] = .array(allocations.map(\.json)) }
            args.set("createdBy", createdBy.map(JSONValue.string))

            let budget = try client.call("budget.create", args)
            if printedJSON(budget) { return }
            Console.out("created budget \(Format.cell(budget["id"]))")
            BudgetText.printBudget(budget, allocations: budget["allocations"])
        }
    }

    /// `budgetctl budget update ID` → `budget.update`.
    struct Update: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a budget (budget.update) and print it.",
            discussion: """
                Only the fields given change. --allocation replaces the whole set \
                (an allocation with spend must stay in it; a kept one keeps its \
                spend); --clear-allocations removes them all. Once a budget has \
                costs its currency, start, type and parent cannot change.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The budget's id.")
        var id: String

        @Option(help: "A new name.")
        var name: String?

        @Option(help: "A new description.")
        var description: String?

        @Option(name: .customLong("type"), help: "A new type: MONTHLY, QUARTERLY, YEARLY, PROJECT or UNLIMITED.")
        var type: BudgetTypeChoice?

        @Option(help: ArgumentHelp("A new total amount, a decimal such as 6000.", valueName: "amount"))
        var total: DecimalText?

        @Option(help: ArgumentHelp("A new 3-letter currency code.", valueName: "code"))
        var currency: String?

        @Option(help: ArgumentHelp("A new first day, YYYY-MM-DD or RFC 3339.", valueName: "date"))
        var start: String?

        @Option(help: ArgumentHelp("A new last day (included), YYYY-MM-DD or RFC 3339.", valueName: "date"))
        var end: String?

        @Flag(help: "Remove the explicit end: the period follows from the type again.")
        var clearEnd = false

        @Option(help: "ACTIVE, PAUSED or CANCELLED (EXCEEDED and COMPLETED are set by budgetd).")
        var status: SettableStatusChoice?

        @Option(name: .customLong("threshold-80"), help: "Alert at 80 % spent: on or off.")
        var threshold80: Switch?

        @Option(name: .customLong("threshold-90"), help: "Alert at 90 % spent: on or off.")
        var threshold90: Switch?

        @Option(name: .customLong("threshold-100"), help: "Alert at 100 % spent: on or off.")
        var threshold100: Switch?

        @Option(help: "Renew for the next period when this one ends: on or off.")
        var autoRenewal: Switch?

        @Option(name: .customLong("parent"), help: ArgumentHelp("A new parent budget id.", valueName: "id"))
        var parent: String?

        @Flag(help: "Make it a top-level budget (no parent).")
        var clearParent = false

        @Option(
            name: .customLong("selector"),
            help: ArgumentHelp("Replace the selector with these KEY=VALUE pairs (repeatable; KEY:=JSON for non-strings).", valueName: "key=value")
        )
        var selector: [KeyValue] = []

        @Flag(help: "Remove the selector.")
        var clearSelector = false

        @Option(
            name: .customLong("allocation"),
            help: ArgumentHelp("Replace the allocations with these PLATFORM:SERVICETYPE:AMOUNT[:PRIORITY] (repeatable).", valueName: "spec")
        )
        var allocations: [AllocationSpec] = []

        @Flag(help: "Remove every allocation.")
        var clearAllocations = false

        func validate() throws {
            if clearEnd, end != nil { throw ValidationError("--end and --clear-end exclude each other") }
            if clearParent, parent != nil { throw ValidationError("--parent and --clear-parent exclude each other") }
            if clearSelector, !selector.isEmpty { throw ValidationError("--selector and --clear-selector exclude each other") }
            if clearAllocations, !allocations.isEmpty {
                throw ValidationError("--allocation and --clear-allocations exclude each other")
            }
            if requestArgs().count < 2 {
                throw ValidationError("nothing to change: give at least one option")
            }
        }

        /// The `budget.update` args: the id and every field given.
        func requestArgs() -> JSONObject {
            var args = JSONObject([("id", .string(id))])
            args.set("name", name.map(JSONValue.string))
            args.set("description", description.map(JSONValue.string))
            args.set("budgetType", type?.json)
            args.set("totalAmount", total?.json)
            args.set("currency", currency.map { .string($0.uppercased()) })
            args.set("startDate", start.map(JSONValue.string))
            args.set("endDate", clearEnd ? .null : end.map(JSONValue.string))
            args.set("status", status?.json)
            args.set("alertThreshold80", threshold80?.json)
            args.set("alertThreshold90", threshold90?.json)
            args.set("alertThreshold100", threshold100?.json)
            args.set("autoRenewal", autoRenewal?.json)
            args.set("parentId", clearParent ? .null : parent.map(JSONValue.string))
            if clearSelector {
                args["selector"] = .null
            } else if !selector.isEmpty {
                args["selector"] = .object(KeyValue.object(selector))
            }
            if clearAllocations {
                args["allocations"] = .array([])
            } else if !allocations.isEmpty {
                args["allocations"] = .array(allocations.map(\.json))
            }
            return args
        }

        func run(with client: ControlClient) throws {
            let args = requestArgs()
            let budget = try client.call("budget.update", args)
            if printedJSON(budget) { return }
            Console.out("updated budget \(Format.cell(budget["id"]))")
            BudgetText.printBudget(budget, allocations: budget["allocations"])
        }
    }

    /// `budgetctl budget show ID` → `budget.get`.
    struct Show: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a budget's summary (budget.get): spend, burn rate, projected end, allocations."
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The budget's id.")
        var id: String

        func run(with client: ControlClient) throws {
            let summary = try client.call("budget.get", ["id": .string(id)])
            if printedJSON(summary) { return }
            BudgetText.printSummary(summary)
        }
    }

    /// `budgetctl budget list` → `budget.list`.
    struct List: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "List budgets (budget.list) as a table.",
            discussion: "--from and --to keep the budgets whose period overlaps that range."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "Only budgets in this status: ACTIVE, EXCEEDED, PAUSED, COMPLETED or CANCELLED.")
        var status: BudgetStatusChoice?

        @Option(name: .customLong("type"), help: "Only budgets of this type: MONTHLY, QUARTERLY, YEARLY, PROJECT or UNLIMITED.")
        var type: BudgetTypeChoice?

        @Option(help: ArgumentHelp("Only budgets whose period reaches this day or later (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var from: String?

        @Option(help: ArgumentHelp("Only budgets whose period starts on or before this day (YYYY-MM-DD or RFC 3339).", valueName: "date"))
        var to: String?

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("status", status?.json)
            args.set("budgetType", type?.json)
            args.set("startDate", from.map(JSONValue.string))
            args.set("endDate", to.map(JSONValue.string))
            let budgets = try client.call("budget.list", args)
            if printedJSON(budgets) { return }

            var table = Table(
                ["ID", "NAME", "TYPE", "STATUS", "SPENT", "TOTAL", "%", "PERIOD"],
                rightAligned: ["SPENT", "TOTAL", "%"]
            )
            for budget in budgets.arrayValue ?? [] {
                table.append([
                    Format.cell(budget["id"]),
                    Format.cell(budget["name"]),
                    Format.cell(budget["budgetType"]),
                    Format.cell(budget["status"]),
                    Format.amount(budget["spentAmount"]),
                    BudgetText.total(budget),
                    BudgetText.percent(budget),
                    Format.period(start: budget["startDate"], end: budget["endDate"]),
                ])
            }
            table.print(empty: "no budgets")
        }
    }
}

/// Budgets as text for people.
enum BudgetText {
    /// `5000.00 USD`, or `unlimited`.
    static func total(_ budget: JSONValue) -> String {
        if budget["budgetType"]?.stringValue == BudgetTypeChoice.unlimited.rawValue {
            return "unlimited"
        }
        return Format.amount(budget["totalAmount"])
    }

    /// The reply's `spentPercentage`, or one computed exactly from spent and total.
    static func percent(_ budget: JSONValue) -> String {
        if let given = budget["spentPercentage"], given.numberText != nil {
            return Format.percent(given)
        }
        if budget["budgetType"]?.stringValue == BudgetTypeChoice.unlimited.rawValue {
            return "-"
        }
        return Format.percent(spent: budget["spentAmount"], total: budget["totalAmount"])
    }

    /// A budget as a block of `label value` lines, then its allocations.
    static func printBudget(_ budget: JSONValue, allocations: JSONValue?, extra: [(String, String)] = []) {
        let currency = Format.cell(budget["currency"])
        var lines: [(String, String)] = [
            ("id", Format.cell(budget["id"])),
            ("name", Format.cell(budget["name"])),
            ("type", Format.cell(budget["budgetType"])),
            ("period", Format.period(start: budget["startDate"], end: budget["endDate"])),
            ("status", Format.cell(budget["status"])),
            ("spent", spent(budget, currency: currency)),
            ("remaining", remaining(budget["remainingAmount"], currency: currency)),
        ]
        lines += extra
        let thresholds = [("80", "alertThreshold80"), ("90", "alertThreshold90"), ("100", "alertThreshold100")]
            .filter { budget[$0.1]?.boolValue ?? true }
            .map { $0.0 + "%" }
        lines.append(("alerts at", thresholds.isEmpty ? "none" : thresholds.joined(separator: " ")))
        if budget["autoRenewal"]?.boolValue == true { lines.append(("renews", "yes")) }
        if let parent = budget["parentId"]?.stringValue { lines.append(("parent", parent)) }
        if let selector = budget["selector"]?.objectValue, !selector.isEmpty {
            lines.append(("selector", selector.pairs.map { "\($0.key)=\(Format.cell($0.value))" }.joined(separator: " ")))
        }
        if let description = budget["description"]?.stringValue, !description.isEmpty {
            lines.append(("description", description))
        }
        if let createdBy = budget["createdBy"]?.stringValue { lines.append(("created by", createdBy)) }
        if let createdAt = budget["createdAt"]?.stringValue { lines.append(("created at", createdAt)) }

        let width = lines.map(\.0.count).max() ?? 0
        Console.out(lines: lines.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 })
        printAllocations(allocations)
    }

    /// `budget.get`'s summary: the budget with the summary's figures, then allocations.
    static func printSummary(_ summary: JSONValue) {
        guard var budget = summary["budget"]?.objectValue else {
            Console.out(summary.serialized())
            return
        }
        // The summary's own figures are the reference; the budget's may be absent.
        if let spent = summary["totalSpent"] { budget["spentAmount"] = spent }
        if let remaining = summary["totalRemaining"] { budget["remainingAmount"] = remaining }
        if let percentage = summary["spentPercentage"] { budget["spentPercentage"] = percentage }
        let currency = Format.cell(budget["currency"])
        let projected: String = switch summary["projectedEndDate"] {
        case .string(let date)?: date
        default: "-"
        }
        printBudget(
            .object(budget),
            allocations: summary["allocations"] ?? budget["allocations"],
            extra: [
                ("burn rate", "\(Format.amount(summary["burnRate"])) \(currency)/day"),
                ("projected end", projected),
            ]
        )
    }

    /// `4065.00 of 5000.00 USD (81.3%)`, or `12.00 USD (unlimited)`.
    private static func spent(_ budget: JSONValue, currency: String) -> String {
        let spent = Format.amount(budget["spentAmount"])
        if budget["budgetType"]?.stringValue == BudgetTypeChoice.unlimited.rawValue {
            return "\(spent) \(currency) (unlimited)"
        }
        return "\(spent) of \(total(budget)) \(currency) (\(percent(budget)))"
    }

    private static func remaining(_ value: JSONValue?, currency: String) -> String {
        guard let value, !value.isNull else { return "-" }
        return "\(Format.amount(value)) \(currency)"
    }

    /// The allocations table, after a blank line; nothing when there are none.
    static func printAllocations(_ allocations: JSONValue?) {
        guard let allocations = allocations?.arrayValue, !allocations.isEmpty else { return }
        var table = Table(
            ["PLATFORM", "SERVICE", "PRIORITY", "ALLOCATED", "SPENT", "REMAINING", "%", "ACTIVE"],
            rightAligned: ["ALLOCATED", "SPENT", "REMAINING", "%"]
        )
        for allocation in allocations {
            table.append([
                Format.cell(allocation["platform"]),
                Format.cell(allocation["serviceType"]),
                Format.cell(allocation["priority"]),
                Format.amount(allocation["allocatedAmount"]),
                Format.amount(allocation["spentAmount"]),
                Format.amount(allocation["remainingAmount"]),
                Format.percent(spent: allocation["spentAmount"], total: allocation["allocatedAmount"]),
                Format.cell(allocation["isActive"]),
            ])
        }
        Console.out("")
        Console.out("allocations")
        Console.out(lines: table.render())
    }
}
