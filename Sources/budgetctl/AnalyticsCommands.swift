import ArgumentParser
import BudgetCore

/// `budgetctl analytics` → `analytics`.
struct AnalyticsCommand: ControlCommand {
    static let configuration = CommandConfiguration(
        commandName: "analytics",
        abstract: "Summarize spend over budgets (analytics): totals, top platforms, monthly trend.",
        discussion: """
            Covers the budgets in one currency (--currency, default USD) whose \
            period overlaps --from..--to (every budget without them), in any \
            status. Prints a summary (budgets and active ones, allocated, spent \
            and remaining over the top-level budgets so nothing counts twice, \
            the average spent percentage, how many are over their total and how \
            many at 80-100 %), then the platforms, largest first, with a bar \
            relative to the largest and each one's share of the platforms' \
            spend, then the monthly trend: each month's spend and utilization \
            (its spend ÷ the totals of the budgets overlapping it), one bar cell \
            per full 10 %. Platforms and months count only the range's days; \
            the summary's spent is the budgets' whole periods. Amounts are the \
            daemon's exact figures with at least two decimals. With --json, the \
            analytics result, unchanged.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only budgets whose period reaches this day or later, and spend from this day (YYYY-MM-DD or RFC 3339).", valueName: "date"))
    var from: String?

    @Option(help: ArgumentHelp("Only budgets whose period starts on or before this day, and spend up to it, included (YYYY-MM-DD or RFC 3339).", valueName: "date"))
    var to: String?

    @Option(help: ArgumentHelp("The 3-letter currency of the budgets covered (budgetd's default: USD).", valueName: "code"))
    var currency: String?

    func run(with client: ControlClient) throws {
        var args = JSONObject()
        args.set("startDate", from.map(JSONValue.string))
        args.set("endDate", to.map(JSONValue.string))
        args.set("currency", currency.map { .string($0.uppercased()) })
        let report = try client.call("analytics", args)
        if printedJSON(report) { return }
        AnalyticsText.print(report, from: from, to: to, currency: currency?.uppercased() ?? "USD")
    }
}

/// An `analytics` result as text for people.
enum AnalyticsText {
    static func print(_ report: JSONValue, from: String?, to: String?, currency requested: String) {
        let currency = report["currency"]?.stringValue ?? requested
        let range: String = switch (from, to) {
        case (nil, nil): "all budgets"
        case let (from, to): "budgets overlapping \(from ?? "")..\(to ?? "")"
        }
        let lines: [(String, String)] = [
            ("analytics", "\(currency), \(range)"),
            ("budgets", "\(Format.cell(report["totalBudgets"])) (\(Format.cell(report["activeBudgets"])) active)"),
            ("allocated", Format.amount(report["totalAllocated"], currency: currency)),
            ("spent", Format.amount(report["totalSpent"], currency: currency)),
            ("remaining", Format.amount(report["totalRemaining"], currency: currency)),
            ("average spent", percent(report["averageSpentPercentage"])),
            ("exceeded", "\(Format.cell(report["budgetsExceeded"])) (over their total)"),
            ("near limit", "\(Format.cell(report["budgetsNearLimit"])) (80-100 % spent)"),
        ]
        let width = lines.map(\.0.count).max() ?? 0
        Console.out(lines: lines.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 })

        printPlatforms(report["topSpendingPlatforms"]?.arrayValue ?? [], currency: currency)
        printTrend(report["monthlyTrend"]?.arrayValue ?? [], currency: currency)
    }

    /// The platforms table, after a blank line: a bar relative to the largest,
    /// and the share of the listed platforms' spend.
    static func printPlatforms(_ platforms: [JSONValue], currency: String) {
        Console.out("")
        guard !platforms.isEmpty else {
            Console.out("top platforms: none")
            return
        }
        let amounts = platforms.map { Format.money($0["totalSpent"]) }
        let top = amounts.compactMap { $0 }.max() ?? .zero
        let sum = amounts.compactMap { $0 }.reduce(Money.zero, +)
        var table = Table(["PLATFORM", "SPENT", "VS TOP", "SHARE"], rightAligned: ["SPENT", "SHARE"])
        for (platform, amount) in zip(platforms, amounts) {
            table.append([
                Format.cell(platform["platform"]),
                Format.amount(platform["totalSpent"], currency: currency),
                amount.map { Bar.text($0, of: top) } ?? "",
                amount.flatMap { sum > .zero ? $0.percentage(of: sum) + " %" : nil } ?? "-",
            ])
        }
        Console.out("top platforms")
        Console.out(lines: table.render())
    }

    /// The monthly trend table, after a blank line: spend and utilization,
    /// with a bar of the utilization (one cell per full 10 %, full over 100 %).
    static func printTrend(_ months: [JSONValue], currency: String) {
        Console.out("")
        guard !months.isEmpty else {
            Console.out("monthly trend: none")
            return
        }
        var table = Table(["MONTH", "SPENT", "UTILIZATION", "%"], rightAligned: ["SPENT", "%"])
        for month in months {
            let utilization = month["budgetUtilization"]
            var bar = ""
            if let share = Format.money(utilization) {
                let hundred = Money(nanos: 100 * Money.nanosPerUnit)
                bar = SpendLevel(spent: share, total: hundred).colour.paint(Bar.text(share, of: hundred))
            }
            table.append([
                Format.cell(month["month"]),
                Format.amount(month["totalSpent"], currency: currency),
                bar,
                percent(utilization),
            ])
        }
        Console.out("monthly trend")
        Console.out(lines: table.render())
    }

    /// The reply's own percentage text, `35.95 %`, `-` when absent.
    static func percent(_ value: JSONValue?) -> String {
        guard let text = value?.numberText ?? value?.stringValue else { return "-" }
        return text + " %"
    }
}

/// A 10-cell bar of one amount against another, `███░░░░░░░`: one full cell
/// per full tenth (exact integer arithmetic), full when it is reached or
/// passed, empty for nothing or no positive whole.
enum Bar {
    static func text(_ value: Money, of whole: Money) -> String {
        let cells = whole > .zero ? SpendGauge.cells(spent: value, total: whole) : 0
        return String(repeating: "█", count: cells) + String(repeating: "░", count: SpendGauge.width - cells)
    }
}
