import BudgetCore
import Foundation
import Testing

// The budgetctl subcommands of the ledger ops (docs/ledger.md): `cost credit`, `events get`,
// `events reprice`, `backup` — against the real daemon, text and --json.

/// Runs budgetctl to the end: (exit status, standard output, standard error).
private func budgetctl(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    try runProcess(Products.budgetctl, args)
}

/// Runs budgetctl with --json; it must succeed; the parsed result.
private func json(_ args: [String]) throws -> JSONValue {
    let run = try budgetctl(args + ["--json"])
    #expect(run.status == 0, "\(args): \(run.err)")
    return try JSON.parse(run.out, maxDepth: 512)
}

private func catalogText(version: String, inputPrice: String) -> String {
    """
    {"version": "\(version)", "prices": [{"platform": "OpenAI", "model": "m1", "currency": "USD",
      "unitPrices": {"inputTokens": "\(inputPrice)"}, "perRequest": "0"}]}
    """
}

private func usage(_ id: String, tokens: Int) -> JSONValue {
    .object(JSONObject([
        ("id", .string(id)), ("source", "test"), ("platform", "OpenAI"), ("serviceType", "API"),
        ("model", "m1"), ("usage", .object(JSONObject([("inputTokens", .number(String(tokens)))]))),
    ]))
}

private func spent(_ client: Client, _ id: String) throws -> String? {
    try client.call("budget.get", ["id": .string(id)])["budget"]?["spentAmount"]?.numberText
}

@Suite(.timeLimit(.minutes(3)))
struct LedgerCLITests {
    @Test func costCreditBooksANegativeAdjustment() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100")
        let control = ["--control", daemon.control]
        #expect(try client.sendAck(costEvent("e1", cost: "40.25", budgetId: b)).string("state") == "ALLOCATED")

        // Linked to the event: budget, platform and service come from it; exact amounts.
        let text = try budgetctl(["cost", "credit", "--corrects", "test:e1", "--amount", "0.125", "--reason", "CN-1", "--id", "cn-1"] + control)
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.hasPrefix("credited -0.125 USD on \(b) as "), "\(text.out)")
        #expect(text.out.contains("(corrects test:e1)"))
        #expect(try spent(client, b) == "40.125")
        // Idempotent by --id; --json is the raw result.
        let again = try json(["cost", "credit", "--corrects", "test:e1", "--amount", "0.125", "--id", "cn-1"] + control)
        #expect(again["costAmount"]?.numberText == "-0.125")
        #expect(again["kind"]?.stringValue == "CREDIT")
        #expect(try spent(client, b) == "40.125")

        // Without an event: a period credit on the budget.
        let period = try json(["cost", "credit", "--budget", b, "--platform", "OpenAI", "--service", "API", "--amount", "10"] + control)
        #expect(period["costAmount"]?.numberText == "-10")
        #expect(try spent(client, b) == "30.125")

        // Mistakes: no target (64), a negative amount (64), a bad reference (64), an unknown event (1).
        #expect(try budgetctl(["cost", "credit", "--amount", "1"] + control).status == 64)
        #expect(try budgetctl(["cost", "credit", "--corrects", "test:e1", "--amount", "-1"] + control).status == 64)
        #expect(try budgetctl(["cost", "credit", "--corrects", "e1", "--amount", "1"] + control).status == 64)
        let missing = try budgetctl(["cost", "credit", "--corrects", "test:nope", "--amount", "1"] + control)
        #expect(missing.status == 1)
        #expect(missing.err.contains("NOT_FOUND"), "\(missing.err)")
    }

    @Test func eventsGetShowsTheEventAndItsCosts() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100")
        let control = ["--control", daemon.control]
        #expect(try client.sendAck(costEvent("e1", cost: "45", budgetId: b)).string("state") == "ALLOCATED")
        _ = try client.call("cost.credit", ["correctsEvent": ["source": "test", "id": "e1"], "amount": 10])

        let text = try budgetctl(["events", "get", "test", "e1"] + control)
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.contains("ALLOCATED"))
        #expect(text.out.contains("45.00 USD"))
        #expect(text.out.contains("35.00 USD"), "totalCost: \(text.out)")
        #expect(text.out.contains("CREDIT"))
        #expect(text.out.contains("-10.00"))

        let raw = try json(["events", "get", "test", "e1"] + control)
        #expect(raw == (try client.call("event.get", ["source": "test", "id": "e1"])))
        #expect(raw["totalCost"]?.numberText == "35")

        let missing = try budgetctl(["events", "get", "test", "nope"] + control)
        #expect(missing.status == 1)
        #expect(missing.err.contains("NOT_FOUND"), "\(missing.err)")
    }

    @Test func eventsRepriceShowsDifferencesAndRecordsOnce() throws {
        let dir = try TempDir()
        let prices = dir.file("prices.json")
        try Data(catalogText(version: "v1", inputPrice: "0.01").utf8).write(to: URL(fileURLWithPath: prices))
        let daemon = try Daemon(dir: dir, extraArgs: ["--prices", prices])
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "1000")
        let control = ["--control", daemon.control]
        for i in 1...2 {
            #expect(try client.sendAck(usage("u\(i)", tokens: 100)).string("state") == "ALLOCATED")  // 1 each
        }
        #expect(try spent(client, b) == "2")

        // What a proposed catalog would have cost: a table, nothing recorded.
        let proposal = dir.file("proposal.json")
        try Data(catalogText(version: "proposal", inputPrice: "0.0125").utf8).write(to: URL(fileURLWithPath: proposal))
        let whatIf = try budgetctl(["events", "reprice", "--catalog", proposal] + control)
        #expect(whatIf.status == 0, "\(whatIf.err)")
        #expect(whatIf.out.contains("DIFFERENCE"))
        #expect(whatIf.out.contains("0.25"))
        #expect(whatIf.out.contains("v1 → proposal"))
        #expect(whatIf.out.contains("2 changed, difference 0.50 (2.00 → 2.50), catalog proposal, not recorded"), "\(whatIf.out)")
        #expect(try spent(client, b) == "2")
        #expect(try budgetctl(["events", "reprice", "--catalog", dir.file("absent.json")] + control).status == 64)

        // The catalog is fixed; a dry run first, then the run, then nothing left to do.
        try Data(catalogText(version: "v2", inputPrice: "0.015").utf8).write(to: URL(fileURLWithPath: prices))
        #expect(try client.call("prices.reload")["version"]?.stringValue == "v2")
        let dry = try json(["events", "reprice", "--dry-run", "--platform", "OpenAI", "--model", "m1"] + control)
        #expect(dry["dryRun"]?.boolValue == true)
        #expect(dry["totalDifference"]?.numberText == "1")
        #expect(try spent(client, b) == "2")
        let limited = try json(["events", "reprice", "--dry-run", "--limit", "1"] + control)
        #expect(limited["events"]?.arrayValue?.count == 1)
        #expect(limited["truncated"]?.boolValue == true)

        let run = try budgetctl(["events", "reprice"] + control)
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("2 changed, difference 1.00 (2.00 → 3.00), catalog v2, recorded"), "\(run.out)")
        #expect(try spent(client, b) == "3")
        let second = try budgetctl(["events", "reprice"] + control)
        #expect(second.out.hasPrefix("no differences\n0 changed"), "\(second.out)")
        #expect(try spent(client, b) == "3")
    }

    @Test func backupWritesACopyAndRefusesToOverwrite() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let b = try makeBudget(client, total: "100")
        let control = ["--control", daemon.control]
        #expect(try client.sendAck(costEvent("e1", cost: "12.5", budgetId: b)).string("state") == "ALLOCATED")

        let path = dir.file("copy.db")
        let text = try budgetctl(["backup", path] + control)
        #expect(text.status == 0, "\(text.err)")
        #expect(text.out.hasPrefix("backup \(path): "), "\(text.out)")
        #expect(text.out.contains("1 events, 1 costs"))
        #expect(text.out.contains(b) && text.out.contains("12.50"))
        #expect(FileManager.default.fileExists(atPath: path))

        let again = try budgetctl(["backup", path] + control)
        #expect(again.status == 1)
        #expect(again.err.contains("CONFLICT"), "\(again.err)")
        let relative = try budgetctl(["backup", "copy2.db"] + control)
        #expect(relative.status == 1)
        #expect(relative.err.contains("VALIDATION_FAILED"), "\(relative.err)")

        let raw = try json(["backup", dir.file("copy3.db")] + control)
        #expect(raw["budgets"]?.arrayValue?.first?["spentAmount"]?.numberText == "12.5")
    }
}
