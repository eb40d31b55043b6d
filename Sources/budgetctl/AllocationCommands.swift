import ArgumentParser
import BudgetCore

extension BudgetCommand {
    /// `budgetctl budget allocation …` → `allocation.add`, `allocation.update`, `allocation.remove`.
    struct Allocation: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "allocation",
            abstract: "Add, change or remove one allocation of a budget.",
            discussion: """
                An allocation is a budget's share for one platform and service \
                type, with its own running total. Each command prints the budget's \
                allocations afterwards (with --json, the budget as budgetd returns \
                it, allocations included). `budget update --allocation` replaces \
                the whole set instead.
                """,
            subcommands: [Add.self, Update.self, Remove.self]
        )
    }
}

/// How `allocation update` and `allocation remove` name the allocation: by
/// `--id`, or by `--platform` and `--service`.
struct AllocationSelector: ParsableArguments {
    @Option(help: ArgumentHelp("The allocation's id (al_…).", valueName: "id"))
    var id: String?

    @Option(help: "The allocation's platform (any letter case), with --service.")
    var platform: String?

    @Option(name: .customLong("service"), help: "The allocation's service type, with --platform: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER.")
    var service: ServiceTypeChoice?

    func validate() throws {
        switch (id, platform, service) {
        case (_?, nil, nil), (nil, _?, _?):
            return
        case (_?, _, _):
            throw ValidationError("name the allocation by --id, or by --platform and --service, not both")
        default:
            throw ValidationError("name the allocation by --id, or by --platform and --service")
        }
    }

    /// The args that name it.
    var args: JSONObject {
        var args = JSONObject()
        args.set("id", id.map(JSONValue.string))
        args.set("platform", platform.map(JSONValue.string))
        args.set("serviceType", service?.json)
        return args
    }

    /// `OpenAI/API` or `al_…`, for messages.
    var label: String {
        if let platform, let service { return "\(platform)/\(service.rawValue)" }
        return id ?? "?"
    }
}

extension BudgetCommand.Allocation {
    /// `budgetctl budget allocation add BUDGET` → `allocation.add`.
    struct Add: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an allocation to a budget (allocation.add).",
            discussion: """
                Example: budgetctl budget allocation add b_march --platform GCP \
                --service PROCESSING --amount 100 --priority HIGH

                The allocations must stay within the budget's total (except \
                UNLIMITED). One for the same platform and service type already \
                there is a CONFLICT: change it with `allocation update`. A new \
                allocation counts costs booked from now on; the budget's earlier \
                spend stays on the budget alone.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The budget's id.")
        var budget: String

        @Option(help: "The platform, such as OpenAI or Apify.")
        var platform: String

        @Option(name: .customLong("service"), help: "The service type: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER.")
        var service: ServiceTypeChoice

        @Option(help: ArgumentHelp("The allocated amount, a decimal such as 1500, in the budget's currency.", valueName: "amount"))
        var amount: DecimalText

        @Option(help: "CRITICAL, HIGH, MEDIUM or LOW (budgetd's default: MEDIUM); near the total, spend.check refuses lower priorities first.")
        var priority: PriorityChoice?

        @Option(help: "Whether it counts costs: on or off (budgetd's default: on).")
        var active: Switch?

        @Option(help: ArgumentHelp("A client-chosen allocation id, unique across budgets (budgetd makes one otherwise).", valueName: "id"))
        var id: String?

        func run(with client: ControlClient) throws {
            var args: JSONObject = ["budgetId": .string(budget)]
            args["platform"] = .string(platform)
            args["serviceType"] = service.json
            args["allocatedAmount"] = amount.json
            args.set("priority", priority?.json)
            args.set("isActive", active?.json)
            args.set("id", id.map(JSONValue.string))
            let result = try client.call("allocation.add", args)
            if printedJSON(result) { return }
            let added = AllocationText.find(in: result, id: id, platform: platform, service: service)
            let name = "\(added?["platform"]?.stringValue ?? platform)/\(service.rawValue)"
            let idText = added?["id"]?.stringValue.map { " (\($0))" } ?? ""
            Console.out("added allocation \(name)\(idText) to budget \(Format.cell(result["id"]))")
            AllocationText.printAllocations(of: result)
        }
    }

    /// `budgetctl budget allocation update BUDGET` → `allocation.update`.
    struct Update: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an allocation's amount, priority or whether it is active (allocation.update).",
            discussion: """
                Example: budgetctl budget allocation update b_march --platform \
                Apify --service SCRAPING --amount 280

                Only the fields given change. Raising the amount above its spend \
                re-arms ALLOCATION_DEPLETED; lowering it to or below the spend \
                fires it. --active off keeps the allocation and its spend but \
                stops counting new costs against it (the way to retire one that \
                has spend, which cannot be removed).
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The budget's id.")
        var budget: String

        @OptionGroup(title: "The allocation") var allocation: AllocationSelector

        @Option(help: ArgumentHelp("A new allocated amount, a decimal such as 2000.", valueName: "amount"))
        var amount: DecimalText?

        @Option(help: "A new priority: CRITICAL, HIGH, MEDIUM or LOW.")
        var priority: PriorityChoice?

        @Option(help: "Whether it counts costs: on or off.")
        var active: Switch?

        func validate() throws {
            if amount == nil, priority == nil, active == nil {
                throw ValidationError("nothing to change: give --amount, --priority or --active")
            }
        }

        func run(with client: ControlClient) throws {
            var args = allocation.args
            args["budgetId"] = .string(budget)
            args.set("allocatedAmount", amount?.json)
            args.set("priority", priority?.json)
            args.set("isActive", active?.json)
            let result = try client.call("allocation.update", args)
            if printedJSON(result) { return }
            let updated = AllocationText.find(in: result, id: allocation.id, platform: allocation.platform, service: allocation.service)
            let name = updated.map { "\(Format.cell($0["platform"]))/\(Format.cell($0["serviceType"])) (\(Format.cell($0["id"])))" }
                ?? allocation.label
            Console.out("updated allocation \(name) of budget \(Format.cell(result["id"]))")
            AllocationText.printAllocations(of: result)
        }
    }

    /// `budgetctl budget allocation remove BUDGET` → `allocation.remove`.
    struct Remove: ControlCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove an allocation without spend (allocation.remove).",
            discussion: """
                An allocation that has spend cannot be removed (CONFLICT, exit \
                status 1): deactivate it with `allocation update … --active off`.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The budget's id.")
        var budget: String

        @OptionGroup(title: "The allocation") var allocation: AllocationSelector

        func run(with client: ControlClient) throws {
            var args = allocation.args
            args["budgetId"] = .string(budget)
            let result = try client.call("allocation.remove", args)
            if printedJSON(result) { return }
            Console.out("removed allocation \(allocation.label) from budget \(Format.cell(result["id"]))")
            AllocationText.printAllocations(of: result)
        }
    }
}

/// Allocations of an `allocation.*` result (a budget) as text.
enum AllocationText {
    /// The allocation named by `id`, else by platform (any letter case) and service.
    static func find(in budget: JSONValue, id: String?, platform: String?, service: ServiceTypeChoice?) -> JSONValue? {
        let allocations = budget["allocations"]?.arrayValue ?? []
        if let id {
            return allocations.first { $0["id"]?.stringValue == id }
        }
        guard let platform, let service else { return nil }
        return allocations.first {
            $0["platform"]?.stringValue?.lowercased() == platform.lowercased()
                && $0["serviceType"]?.stringValue == service.rawValue
        }
    }

    /// The budget's allocations table (as `budget show` prints it), or a line
    /// saying it has none.
    static func printAllocations(of budget: JSONValue) {
        guard let allocations = budget["allocations"]?.arrayValue, !allocations.isEmpty else {
            Console.out("")
            Console.out("allocations: none")
            return
        }
        BudgetText.printAllocations(.array(allocations), currency: Format.cell(budget["currency"]))
    }
}
