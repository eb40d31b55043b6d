import ArgumentParser
import BudgetCore

/// `budgetctl outbound …`.
struct OutboundCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbound",
        abstract: "Read the outbound log: every alert and status event budgetd published, by seq.",
        subcommands: [List.self]
    )
}

extension OutboundCommand {
    /// `budgetctl outbound list` → `outbound.list`.
    struct List: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the alerts and status events published after a seq, in seq order (outbound.list).",
            discussion: """
                seq numbers alerts and status events together, so a subscriber \
                that missed some (a jump in seq) can fetch them here. Prints one \
                row per message: its seq, topic, when it happened, and a summary \
                of the payload (an alert's severity and message; a status event's \
                budget, previous and new status, and spent of total). With \
                --json, the outbound.list result (seq, topic, payload), unchanged. \
                `alerts tail --since-seq N` follows the same log live.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(name: .customLong("since-seq"), help: ArgumentHelp("Only messages after this seq (default 0: from the first).", valueName: "seq"))
        var sinceSeq: Int64 = 0

        @Option(help: ArgumentHelp("At most this many (budgetd's default: 1000).", valueName: "n"))
        var limit: Int?

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
            if sinceSeq < 0 { throw ValidationError("--since-seq must not be negative") }
        }

        func run(with client: ControlClient) throws {
            var args: JSONObject = ["sinceSeq": .number(sinceSeq)]
            args.set("limit", limit.map { .number($0) })
            let messages = try client.call("outbound.list", args)
            if printedJSON(messages) { return }

            var table = Table(["SEQ", "TOPIC", "AT", "SUMMARY"], rightAligned: ["SEQ"])
            for message in messages.arrayValue ?? [] {
                let payload = message["payload"] ?? .null
                table.append([
                    Format.cell(message["seq"]),
                    Format.cell(message["topic"]),
                    Format.instant(payload["triggeredAt"] ?? payload["at"]),
                    Self.summary(topic: message["topic"]?.stringValue ?? "", payload: payload),
                ])
            }
            table.print(empty: "no messages after seq \(sinceSeq)")
        }

        /// A payload on one line: `WARNING March 2026 Operations has spent 81.21% of 5000.00 USD`
        /// for an alert, `March 2026 Operations: ACTIVE -> EXCEEDED (spent 5100.00 of 5000.00)`
        /// for a status event, compact JSON for anything else.
        static func summary(topic: String, payload: JSONValue) -> String {
            if topic.hasPrefix("alert.") {
                return "\(Format.cell(payload["severity"])) \(Format.cell(payload["message"]))"
            }
            if topic.hasPrefix("status.") {
                let budget = Format.cell(payload["budgetName"] ?? payload["budgetId"])
                var text = "\(budget): \(Format.cell(payload["previousStatus"])) -> \(Format.cell(payload["status"]))"
                if payload["spentAmount"] != nil {
                    // Status events carry no currency; an UNLIMITED budget's total is sent as 0 (or null).
                    let total = Format.money(payload["totalAmount"])
                    if let total, total > .zero {
                        text += " (spent \(Format.amount(payload["spentAmount"])) of \(Format.amount(payload["totalAmount"])))"
                    } else {
                        text += " (spent \(Format.amount(payload["spentAmount"])), no total)"
                    }
                }
                return text
            }
            return payload.serialized()
        }
    }
}
