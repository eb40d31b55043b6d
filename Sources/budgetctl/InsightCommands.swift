import ArgumentParser
import BudgetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `forecastPeriod` (CONTRACT §6).
enum ForecastPeriodChoice: String, UpperCaseChoice {
    case weekly = "WEEKLY", monthly = "MONTHLY", quarterly = "QUARTERLY"
}

/// A recommendation's `status`.
enum OptimizationStatusChoice: String, UpperCaseChoice {
    case pending = "PENDING", approved = "APPROVED", rejected = "REJECTED", implemented = "IMPLEMENTED"
}

/// `budgetctl forecast` → `forecast`.
struct ForecastCommand: ControlCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Forecast spend per platform and service for the next week, month or quarter.",
        discussion: """
            Prints one row per platform and service with spend: the spend of the \
            last period (CURRENT), the forecast of the next one (FORECAST), the \
            confidence, the days of history the fit rests on, and the trend; then \
            a chart of each: the daily spend of the last period, a bar, and the \
            forecast days (weeks for QUARTERLY). Forecasts are estimates rounded \
            to 1e-4; docs/forecasting.md describes the method.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "How far ahead: WEEKLY (7 days), MONTHLY (30) or QUARTERLY (91).")
    var period: ForecastPeriodChoice

    @Option(help: "Only this platform (any letter case).")
    var platform: String?

    @Option(name: .customLong("service"), help: "Only this service type: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER.")
    var service: ServiceTypeChoice?

    @Option(help: ArgumentHelp("The currency of the budgets to forecast (default USD).", valueName: "code"))
    var currency: String?

    func run(with client: ControlClient) throws {
        var args = JSONObject([("forecastPeriod", period.json)])
        args.set("platform", platform.map(JSONValue.string))
        args.set("serviceType", service?.json)
        args.set("currency", currency.map(JSONValue.string))
        let result = try client.call("forecast", args)
        if printedJSON(result) { return }
        let rows = result.arrayValue ?? []
        var table = Table(
            ["PLATFORM", "SERVICE", "PERIOD", "CURRENT", "FORECAST", "CURRENCY", "CONFIDENCE", "DAYS", "TREND"],
            rightAligned: ["CURRENT", "FORECAST", "CONFIDENCE", "DAYS"]
        )
        for row in rows {
            table.append([
                Format.cell(row["platform"]), Format.cell(row["serviceType"]), Format.cell(row["forecastPeriod"]),
                Format.amount(row["currentCost"]), Format.amount(row["forecastedCost"]), Format.cell(row["currency"]),
                Format.percent(row["confidence"]), Format.cell(row["basedOnDays"]), Self.trend(row["trendDirection"]),
            ])
        }
        table.print(empty: "no spend to forecast")
        guard !rows.isEmpty else { return }
        var lines = [""]
        let width = rows.map { "\(Format.cell($0["platform"])) \(Format.cell($0["serviceType"]))".count }.max() ?? 0
        for row in rows {
            let name = "\(Format.cell(row["platform"])) \(Format.cell(row["serviceType"]))"
            let chart = SpendChart(history: row["history"], projection: row["projection"])
            lines.append(name + String(repeating: " ", count: width - name.count) + "  " + chart.text)
        }
        let unit = (rows.first?["forecastPeriod"]?.stringValue == "QUARTERLY") ? "week" : "day"
        lines.append(String(repeating: " ", count: width) + "  one bar per \(unit): last period │ forecast")
        Console.out(lines: lines)
    }

    /// `↑ INCREASING`, `↓ DECREASING`, `→ STABLE`.
    static func trend(_ value: JSONValue?) -> String {
        switch value?.stringValue {
        case "INCREASING": "↑ INCREASING"
        case "DECREASING": "↓ DECREASING"
        case "STABLE": "→ STABLE"
        default: Format.cell(value)
        }
    }
}

/// A one-line block chart of a forecast reply's `history` and `projection` (arrays of
/// `{date, amount}`), on one scale: `▂▃▅▅▇│▇▇██`. Periods longer than 60 days are shown by
/// week. Heights come from exact integer arithmetic on the amounts; on a terminal the
/// forecast is coloured (cyan) so it is not mistaken for what was spent.
struct SpendChart {
    static let blocks: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    let history: [Money]
    let projection: [Money]

    init(history: JSONValue?, projection: JSONValue?) {
        func amounts(_ value: JSONValue?) -> [Money] {
            (value?.arrayValue ?? []).map { Format.moneyValue($0["amount"]) ?? .zero }
        }
        let h = amounts(history), p = amounts(projection)
        let bucket = max(h.count, p.count) > 60 ? 7 : 1
        self.history = Self.buckets(h, size: bucket)
        self.projection = Self.buckets(p, size: bucket)
    }

    /// Sums of `size` consecutive amounts.
    static func buckets(_ amounts: [Money], size: Int) -> [Money] {
        stride(from: 0, to: amounts.count, by: size).map { start in
            amounts[start..<min(start + size, amounts.count)].reduce(.zero, +)
        }
    }

    /// ▁ for nothing; a spend is ▂…█ in proportion to the largest bar, so a small one is still seen.
    static func block(_ amount: Money, max: Money) -> Character {
        guard amount > .zero, max > .zero else { return blocks[0] }
        let level = 1 + Int(amount.nanos * Int128(blocks.count - 2) / max.nanos)
        return blocks[min(level, blocks.count - 1)]
    }

    var text: String {
        let top = (history + projection).max() ?? .zero
        let past = String(history.map { Self.block($0, max: top) })
        let future = String(projection.map { Self.block($0, max: top) })
        return past + "│" + Colour.cyan.paint(future)
    }
}

extension Format {
    /// An amount of a reply as exact `Money`, nil when absent or not a number.
    static func moneyValue(_ value: JSONValue?) -> Money? {
        guard let text = value?.numberText ?? value?.stringValue else { return nil }
        return try? Money(parsing: text)
    }
}

/// `budgetctl recommendations …` → `optimization.list` / `optimization.update`.
struct RecommendationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommendations",
        abstract: "List cost-saving recommendations and approve, reject or implement them.",
        discussion: """
            Recommendations are computed from the stored usage of the last 30 days \
            (--days) and the price catalog: CHANGE_TIER, BATCH_REQUESTS, \
            CACHE_RESULTS and REDUCE_FREQUENCY. Their status goes PENDING → \
            APPROVED or REJECTED, and APPROVED → IMPLEMENTED.
            """,
        subcommands: [List.self, Approve.self, Reject.self, Implement.self],
        defaultSubcommand: List.self
    )
}

extension RecommendationsCommand {
    /// `budgetctl recommendations [list]`.
    struct List: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "List recommendations, largest saving first (optimization.list)."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "Only recommendations in this status: PENDING, APPROVED, REJECTED or IMPLEMENTED.")
        var status: OptimizationStatusChoice?

        @Option(help: ArgumentHelp("The window of usage to look at, in days (1–365, default 30).", valueName: "days"))
        var days: Int?

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("status", status?.json)
            args.set("days", days.map { .number($0) })
            let result = try client.call("optimization.list", args)
            if printedJSON(result) { return }
            let rows = result.arrayValue ?? []
            var table = Table(
                ["ID", "TYPE", "PLATFORM", "SERVICE", "MODEL", "CURRENT", "PROJECTED", "SAVINGS", "CURRENCY", "IMPACT", "STATUS"],
                rightAligned: ["CURRENT", "PROJECTED", "SAVINGS"]
            )
            for row in rows {
                let status = Format.cell(row["status"]) + (row["active"]?.boolValue == false ? " (no longer found)" : "")
                table.append([
                    Format.cell(row["id"]), Format.cell(row["optimizationType"]), Format.cell(row["platform"]),
                    Format.cell(row["serviceType"]), Format.cell(row["model"]), Format.amount(row["currentCost"]),
                    Format.amount(row["projectedCost"]), Format.amount(row["potentialSavings"]), Format.cell(row["currency"]),
                    Format.cell(row["impact"]), status,
                ])
            }
            table.print(empty: "no recommendations")
            guard !rows.isEmpty else { return }
            Console.out(lines: [""] + rows.map { "\(Format.cell($0["id"])): \(Format.cell($0["recommendation"]))" })
        }
    }

    /// `approve`, `reject` and `implement` are the same request with a different status.
    protocol StatusChange: ControlCommand {
        var id: String { get }
        /// The status asked for.
        static var status: String { get }
        /// What the command did, in the past tense.
        static var verb: String { get }
    }

    /// `budgetctl recommendations approve ID`.
    struct Approve: StatusChange {
        static let status = "APPROVED", verb = "approved"
        static let configuration = CommandConfiguration(abstract: "Approve a PENDING recommendation.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The recommendation's id, from the list.", valueName: "id"))
        var id: String
    }

    /// `budgetctl recommendations reject ID`.
    struct Reject: StatusChange {
        static let status = "REJECTED", verb = "rejected"
        static let configuration = CommandConfiguration(abstract: "Reject a PENDING recommendation.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The recommendation's id, from the list.", valueName: "id"))
        var id: String
    }

    /// `budgetctl recommendations implement ID`.
    struct Implement: StatusChange {
        static let status = "IMPLEMENTED", verb = "implemented"
        static let configuration = CommandConfiguration(abstract: "Mark an APPROVED recommendation as implemented.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: ArgumentHelp("The recommendation's id, from the list.", valueName: "id"))
        var id: String
    }
}

extension RecommendationsCommand.StatusChange {
    func run(with client: ControlClient) throws {
        let r = try client.call("optimization.update", JSONObject([("id", .string(id)), ("status", .string(Self.status))]))
        if printedJSON(r) { return }
        Console.out(
            "\(Self.verb) \(Format.cell(r["id"])) (\(Format.cell(r["optimizationType"])) on \(Format.cell(r["platform"])), "
                + "saving \(Format.amount(r["potentialSavings"])) \(Format.cell(r["currency"]))): now \(Format.cell(r["status"]))"
        )
    }
}
