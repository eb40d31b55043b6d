import ArgumentParser
import BudgetCore

/// `budgetctl budget …`.
struct BudgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Create, change and inspect budgets and their allocations.",
        subcommands: [Create.self, Update.self, Show.self, List.self, Allocation.self]
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

        @Option(help: ArgumentHelp("Who is responsible for it now, recorded as createdBy.", valueName: "name"))
        var createdBy: String?

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
            args.set("createdBy", createdBy.map(JSONValue.string))
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
            abstract: "Show a budget's summary (budget.get): spend, burn rate, projected end, allocations, daily spend, open alerts.",
            discussion: """
                Prints the budget with a spend bar (10 cells, one per full 10 % \
                spent), its allocations with their own bars, the daily spend of \
                the period up to today as a sparkline (days without spend count \
                as 0; periods over 93 days are drawn by week) with its highest \
                and lowest days, and the budget's unresolved alerts (alert.list). \
                Amounts are the daemon's exact figures with at least two decimals. \
                With --json, only the budget.get result, unchanged.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The budget's id.")
        var id: String

        func run(with client: ControlClient) throws {
            let summary = try client.call("budget.get", ["id": .string(id)])
            if printedJSON(summary) { return }
            // Both replies before printing anything, so a failure prints no half summary.
            let alerts = try client.call(
                "alert.list", ["budgetId": .string(id), "unresolved": true]
            )
            BudgetText.printSummary(summary, alerts: alerts, now: Now.timestamp())
        }
    }

    /// `budgetctl budget list` → `budget.list`.
    struct List: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "List budgets (budget.list) as a table.",
            discussion: """
                --from and --to keep the budgets whose period overlaps that range.

                Each budget has a spend bar, one cell per full 10 % of its total \
                spent (UNLIMITED budgets have none), and the exact percentage; on \
                a terminal (unless NO_COLOR is set) it is green under 80 %, yellow \
                from 80 to 100 %, red over 100 % or EXCEEDED. Amounts are the \
                daemon's exact figures with at least two decimals. With --json, \
                the budget.list result, unchanged.
                """
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
                ["ID", "NAME", "TYPE", "STATUS", "SPENT", "TOTAL", "USED", "%", "PERIOD"],
                rightAligned: ["SPENT", "TOTAL", "%"]
            )
            for budget in budgets.arrayValue ?? [] {
                let currency = Format.cell(budget["currency"])
                let gauge = BudgetText.gauge(budget)
                table.append([
                    Format.cell(budget["id"]),
                    Format.cell(budget["name"]),
                    Format.cell(budget["budgetType"]),
                    Format.cell(budget["status"]),
                    Format.amount(budget["spentAmount"], currency: currency),
                    BudgetText.total(budget, currency: currency),
                    gauge.paintedBar,
                    gauge.paintedPercent,
                    Format.period(start: budget["startDate"], end: budget["endDate"]),
                ])
            }
            table.print(empty: "no budgets")
        }
    }
}

/// Budgets as text for people.
enum BudgetText {
    static func isUnlimited(_ budget: JSONValue) -> Bool {
        budget["budgetType"]?.stringValue == BudgetTypeChoice.unlimited.rawValue
    }

    /// `5000.00 USD`, or `unlimited`.
    static func total(_ budget: JSONValue, currency: String) -> String {
        isUnlimited(budget) ? "unlimited" : Format.amount(budget["totalAmount"], currency: currency)
    }

    /// The budget's spend bar and percentage; red when the daemon says EXCEEDED.
    static func gauge(_ budget: JSONValue) -> SpendGauge {
        SpendGauge(
            spent: budget["spentAmount"], total: budget["totalAmount"],
            unlimited: isUnlimited(budget),
            exceeded: budget["status"]?.stringValue == BudgetStatusChoice.exceeded.rawValue
        )
    }

    /// A budget as a block of `label  value` lines, then its allocations.
    static func printBudget(_ budget: JSONValue, allocations: JSONValue?, extra: [(String, String)] = []) {
        let currency = Format.cell(budget["currency"])
        var lines: [(String, String)] = [
            ("name", Format.cell(budget["name"])),
            ("id", Format.cell(budget["id"])),
            ("type", Format.cell(budget["budgetType"])),
            ("status", Format.cell(budget["status"])),
            ("period", Format.period(start: budget["startDate"], end: budget["endDate"])),
            ("spent", spent(budget, currency: currency)),
            ("remaining", Format.amount(budget["remainingAmount"], currency: currency)),
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
            lines.append(("description", DisplayText.escaped(description)))
        }
        if let createdBy = budget["createdBy"]?.stringValue { lines.append(("created by", DisplayText.escaped(createdBy))) }
        if let createdAt = budget["createdAt"]?.stringValue { lines.append(("created at", createdAt)) }

        let width = lines.map(\.0.count).max() ?? 0
        Console.out(lines: lines.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 })
        printAllocations(allocations, currency: currency)
    }

    /// `budget show`: the summary of `budget.get` (the budget with the
    /// summary's figures, burn rate, projected end), the allocations, the
    /// daily spend as a sparkline (when the reply has `dailySpend`), and the
    /// budget's open alerts (`alerts`, an `alert.list` result).
    static func printSummary(_ summary: JSONValue, alerts: JSONValue?, now: Timestamp) {
        guard var budget = summary["budget"]?.objectValue else {
            Console.out(summary.serialized())
            return
        }
        // The summary's own figures are the reference; the budget's may be absent.
        if let spent = summary["totalSpent"] { budget["spentAmount"] = spent }
        if let remaining = summary["totalRemaining"] { budget["remainingAmount"] = remaining }
        if let percentage = summary["spentPercentage"] { budget["spentPercentage"] = percentage }
        let currency = Format.cell(budget["currency"])
        printBudget(
            .object(budget),
            allocations: summary["allocations"] ?? budget["allocations"],
            extra: [
                ("burn rate", "\(Format.amount(summary["burnRate"])) \(currency)/day"),
                ("projected end", projectedEnd(summary, budget: .object(budget), now: now)),
            ]
        )
        if let daily = summary["dailySpend"]?.arrayValue {
            printDailySpend(daily, budget: .object(budget), currency: currency, now: now)
        }
        if let alerts {
            printOpenAlerts(alerts)
        }
    }

    /// When the remainder runs out at the burn rate, as people read it.
    ///
    /// The daemon projects from now, which says nothing about a period that
    /// is over, and answers "now" when nothing remains: both are said in
    /// words instead of an instant that changes with every call.
    static func projectedEnd(_ summary: JSONValue, budget: JSONValue, now: Timestamp) -> String {
        guard case .string(let text)? = summary["projectedEndDate"] else { return "-" }
        let end = budget["endDate"]?.stringValue.flatMap { try? DateSpec(parsing: $0) }
        if let end, end.endExclusive <= now {
            return "- (the period is over)"
        }
        if let remaining = Format.money(budget["remainingAmount"]), remaining <= .zero {
            return "reached: nothing remains"
        }
        let shown = Format.instant(.string(text))
        guard let end else { return shown }
        // Past 2262 (Timestamp's range): after any period's end.
        guard let projected = try? Timestamp(rfc3339: text) else { return "\(shown) (after the period ends)" }
        if projected < end.endExclusive {
            return SpendLevel.near.colour.paint("\(shown) (before the period ends)")
        }
        return "\(shown) (after the period ends)"
    }

    /// `4065.00 USD of 5000.00 USD  ████████░░  81.3 %`, or `12.00 USD (unlimited)`.
    private static func spent(_ budget: JSONValue, currency: String) -> String {
        let spent = Format.amount(budget["spentAmount"], currency: currency)
        if isUnlimited(budget) {
            return "\(spent) (unlimited)"
        }
        return "\(spent) of \(total(budget, currency: currency))  \(gauge(budget).text)"
    }

    /// The allocations table, after a blank line; nothing when there are none.
    static func printAllocations(_ allocations: JSONValue?, currency: String) {
        guard let allocations = allocations?.arrayValue, !allocations.isEmpty else { return }
        var table = Table(
            ["PLATFORM", "SERVICE", "PRIORITY", "ALLOCATED", "SPENT", "REMAINING", "USED", "%", "ACTIVE"],
            rightAligned: ["ALLOCATED", "SPENT", "REMAINING", "%"]
        )
        for allocation in allocations {
            let gauge = SpendGauge(spent: allocation["spentAmount"], total: allocation["allocatedAmount"])
            table.append([
                Format.cell(allocation["platform"]),
                Format.cell(allocation["serviceType"]),
                Format.cell(allocation["priority"]),
                Format.amount(allocation["allocatedAmount"], currency: currency),
                Format.amount(allocation["spentAmount"], currency: currency),
                Format.amount(allocation["remainingAmount"], currency: currency),
                gauge.paintedBar,
                gauge.paintedPercent,
                Format.cell(allocation["isActive"]),
            ])
        }
        Console.out("")
        Console.out("allocations")
        Console.out(lines: table.render())
    }

    /// The daily spend of the period up to today as a sparkline, with the
    /// highest and lowest days; nothing for a period that has not started.
    static func printDailySpend(_ daily: [JSONValue], budget: JSONValue, currency: String, now: Timestamp) {
        guard let startText = budget["startDate"]?.stringValue,
              let start = try? DateSpec(parsing: startText)
        else { return }
        let last: CivilDate? = switch budget["endDate"]?.stringValue.flatMap({ try? DateSpec(parsing: $0) }) {
        case .day(let date)?: date
        case .instant(let instant)?: instant.civilDate
        case nil: nil
        }
        guard let sparkline = Sparkline(
            dailySpend: daily, first: start.startInstant.civilDate, last: last, today: now.civilDate
        ) else { return }
        let range = "\(sparkline.first)..\(sparkline.last)"
        Console.out("")
        guard let highest = sparkline.highestDay, let lowest = sparkline.lowestDay else {
            Console.out("daily spend \(range): none")
            return
        }
        var title = "daily spend \(range)"
        if sparkline.daysPerCell > 1 {
            title += " (one cell per \(sparkline.daysPerCell) days"
            let cells = (sparkline.days.count + sparkline.daysPerCell - 1) / sparkline.daysPerCell
            title += cells > Sparkline.maxDailyCells ? ", the last \(Sparkline.maxDailyCells))" : ")"
        }
        func day(_ pick: (date: CivilDate, amount: Money)) -> String {
            "\(pick.date) \(Format.amount(pick.amount.description)) \(currency)"
        }
        Console.out(lines: [
            title,
            sparkline.line,
            "highest \(day(highest)), lowest \(day(lowest)), "
                + "\(sparkline.daysWithoutSpend) of \(sparkline.days.count) days without spend",
        ])
    }

    /// The open alerts table, after a blank line.
    static func printOpenAlerts(_ alerts: JSONValue) {
        Console.out("")
        guard let alerts = alerts.arrayValue, !alerts.isEmpty else {
            Console.out("open alerts: none")
            return
        }
        var table = Table(["SEQ", "ID", "TYPE", "SEVERITY", "TRIGGERED", "MESSAGE"], rightAligned: ["SEQ"])
        for alert in alerts {
            table.append([
                Format.cell(alert["seq"]),
                Format.cell(alert["id"]),
                Format.cell(alert["type"]),
                Format.cell(alert["severity"]),
                Format.instant(alert["triggeredAt"]),
                Format.cell(alert["message"]),
            ])
        }
        Console.out("open alerts")
        Console.out(lines: table.render())
    }
}
