import ArgumentParser
import BudgetCore

/// `budgetctl health` → `health`.
struct Health: ControlCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show whether budgetd can commit (health).",
        discussion: """
            Exit status 3 when the daemon answers DEGRADED (it cannot commit, \
            and sends no acknowledgements meanwhile), so monitoring scripts can \
            use it as is; the exit statuses of every command apply otherwise.
            """
    )

    @OptionGroup var global: GlobalOptions

    func run(with client: ControlClient) throws {
        let health = try client.call("health")
        let status = health["status"]?.stringValue ?? "UNKNOWN"
        if !printedJSON(health) {
            var line = "\(status)  budgetd \(Format.cell(health["version"])), up \(Format.cell(health["uptimeSeconds"]))s"
            if let reason = health["reason"]?.stringValue {
                line += "  reason: \(reason)"
            }
            Console.out(line)
        }
        if status != "OK" {
            throw ExitCode(3)
        }
    }
}

/// `budgetctl stats` → `stats`.
struct Stats: ControlCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show budgetd's counters since it started (stats).",
        discussion: "received = accepted + duplicates + rejected; gaps counts, per source, jumps in its seq."
    )

    @OptionGroup var global: GlobalOptions

    func run(with client: ControlClient) throws {
        let stats = try client.call("stats")
        if printedJSON(stats) { return }
        guard let object = stats.objectValue else {
            Console.out(stats.serialized())
            return
        }
        // Every field, in the daemon's order, so fields added later show up too;
        // objects (gaps per source, ...) one line per entry.
        var lines: [(String, String)] = []
        for (key, value) in object.pairs {
            if let nested = value.objectValue {
                if nested.isEmpty {
                    lines.append((key, "none"))
                }
                for (innerKey, innerValue) in nested.pairs {
                    // A source's name is the publisher's text.
                    lines.append(("\(key) \(DisplayText.escaped(innerKey))", Format.cell(innerValue)))
                }
            } else {
                lines.append((key, Format.cell(value)))
            }
        }
        let width = lines.map(\.0.count).max() ?? 0
        Console.out(lines: lines.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 })
    }
}

/// `budgetctl prices …`.
struct PricesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prices",
        abstract: "Reload the price catalog or ask what a usage would cost.",
        subcommands: [Reload.self, Quote.self]
    )
}

extension PricesCommand {
    /// `budgetctl prices reload` → `prices.reload`.
    struct Reload: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reload the configured price catalog (prices.reload); a refused catalog leaves the old one in force."
        )

        @OptionGroup var global: GlobalOptions

        func run(with client: ControlClient) throws {
            let result = try client.call("prices.reload")
            if printedJSON(result) { return }
            Console.out("catalog \(Format.cell(result["version"])): \(Format.cell(result["entries"])) entries")
        }
    }

    /// `budgetctl prices quote` → `price.quote`.
    struct Quote: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Price a usage without recording anything (price.quote).",
            discussion: """
                Example: budgetctl prices quote --platform OpenAI --service API \
                --model gpt-4o --usage inputTokens=1200 --usage outputTokens=300

                The quote is routed like an event, so with --budget or --metadata \
                the cost is converted to that budget's currency.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "The platform, such as OpenAI.")
        var platform: String

        @Option(name: .customLong("service"), help: "The service type: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER.")
        var service: ServiceTypeChoice

        @Option(help: "The catalog item: model, actor, tier or SKU.")
        var model: String?

        @Option(help: ArgumentHelp("A usage quantity UNIT=QUANTITY, e.g. inputTokens=1200 (repeatable).", valueName: "unit=quantity"))
        var usage: [UsageQuantity] = []

        @Option(help: ArgumentHelp("An explicit cost, which wins over the catalog.", valueName: "amount"))
        var cost: DecimalText?

        @Option(help: ArgumentHelp("The explicit cost's currency (default USD).", valueName: "code"))
        var currency: String?

        @Option(help: ArgumentHelp("Price at this RFC 3339 time (default: now).", valueName: "time"))
        var time: String?

        @Option(help: ArgumentHelp("Route to this budget.", valueName: "id"))
        var budget: String?

        @Option(
            name: .customLong("metadata"),
            help: ArgumentHelp("A metadata entry KEY=VALUE for routing (repeatable; KEY:=JSON for non-strings).", valueName: "key=value")
        )
        var metadata: [KeyValue] = []

        func run(with client: ControlClient) throws {
            var args: JSONObject = [
                "platform": .string(platform),
                "serviceType": service.json,
            ]
            args.set("model", model.map(JSONValue.string))
            if !usage.isEmpty { args["usage"] = .object(UsageQuantity.object(usage)) }
            args.set("cost", cost?.json)
            args.set("currency", currency.map { .string($0.uppercased()) })
            args.set("time", time.map(JSONValue.string))
            args.set("budgetId", budget.map(JSONValue.string))
            if !metadata.isEmpty { args["metadata"] = .object(KeyValue.object(metadata)) }

            let quote = try client.call("price.quote", args)
            if printedJSON(quote) { return }
            var lines: [String] = []
            if let amount = quote["cost"], !amount.isNull {
                lines.append("cost   \(amount.numberText ?? Format.cell(amount)) \(Format.cell(quote["currency"]))")
            } else {
                lines.append("cost   -")
            }
            lines.append("state  \(Format.cell(quote["state"]))")
            if let reason = quote["reason"]?.stringValue {
                lines.append("reason \(reason)")
            }
            if let price = quote["price"], !price.isNull {
                lines.append("price  \(Self.describe(price))")
            }
            Console.out(lines: lines)
        }

        /// A catalog entry on one line: `OpenAI/gpt-4o from 2025-01-01T00:00:00Z
        /// in USD: inputTokens 0.0000025, outputTokens 0.00001`.
        static func describe(_ price: JSONValue) -> String {
            var text = "\(Format.cell(price["platform"]))/\(Format.cell(price["model"]))"
                + " from \(Format.cell(price["effectiveFrom"])) in \(Format.cell(price["currency"]))"
            var units = (price["unitPrices"]?.objectValue?.pairs ?? []).map { "\($0.key) \(Format.cell($0.value))" }
            if let perRequest = price["perRequest"], let text = perRequest.stringValue ?? perRequest.numberText,
               text.contains(where: { $0 != "0" && $0 != "." })
            {
                units.append("per request \(text)")
            }
            if !units.isEmpty {
                text += ": " + units.joined(separator: ", ")
            }
            return text
        }
    }
}
