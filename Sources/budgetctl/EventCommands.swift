import ArgumentParser
import BudgetCore

/// `budgetctl events …`.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Send a usage event; inspect stored events and dead letters; re-process the unpriced and unallocated.",
        subcommands: [Send.self, List.self, Get.self, Reprocess.self, Reprice.self]
    )
}

extension EventsCommand {
    /// `budgetctl events list` → `event.list`.
    struct List: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "List stored usage events, newest first (event.list).",
            discussion: "REJECTED lists the dead letters (malformed or refused messages) with their reasons."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "Only events in this state: ALLOCATED, UNPRICED, UNALLOCATED or REJECTED.")
        var state: EventStateChoice?

        @Option(help: ArgumentHelp("At most this many (budgetd's default: 100).", valueName: "n"))
        var limit: Int?

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("state", state?.json)
            args.set("limit", limit.map { .number($0) })
            let events = try client.call("event.list", args)
            if printedJSON(events) { return }

            var table = Table(
                ["RECEIVED", "SOURCE", "ID", "STATE", "PLATFORM", "SERVICE", "MODEL", "COST", "BUDGET", "REASON"],
                rightAligned: ["COST"]
            )
            for event in events.arrayValue ?? [] {
                let cost = event["cost"].map { $0.isNull ? "-" : "\(Format.amount($0)) \(Format.cell(event["currency"]))" } ?? "-"
                table.append([
                    Format.cell(event["receivedAt"]),
                    Format.cell(event["source"]),
                    Format.cell(event["id"]),
                    Format.cell(event["state"]),
                    Format.cell(event["platform"]),
                    Format.cell(event["serviceType"]),
                    Format.cell(event["model"]),
                    cost,
                    Format.cell(event["budgetId"]),
                    Format.cell(event["reason"]),
                ])
            }
            table.print(empty: "no events")
        }
    }

    /// `budgetctl events reprocess` → `event.reprocess`.
    struct Reprocess: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Price and route stored UNPRICED and UNALLOCATED events again (event.reprocess).",
            discussion: "Useful after loading prices or creating budgets; budgetd also does this by itself on those changes."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "Only events in this state: UNPRICED or UNALLOCATED (default: both).")
        var state: EventStateChoice?

        func validate() throws {
            if let state, state != .unpriced, state != .unallocated {
                throw ValidationError("--state must be UNPRICED or UNALLOCATED")
            }
        }

        func run(with client: ControlClient) throws {
            var args = JSONObject()
            args.set("state", state?.json)
            let result = try client.call("event.reprocess", args)
            if printedJSON(result) { return }
            Console.out(
                "priced \(Format.cell(result["priced"])), allocated \(Format.cell(result["allocated"])), "
                    + "still waiting \(Format.cell(result["remaining"]))"
            )
        }
    }
}
