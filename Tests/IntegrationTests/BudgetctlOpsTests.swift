import BudgetCore
import Foundation
import Testing

/// The `budgetctl` subcommands of the control ops added last — `analytics`,
/// `spend check`, `budget allocation add|update|remove`, `outbound list` —
/// against the real daemon: golden text, exit statuses, error messages on
/// standard error, and `--json` equal to the daemon's own result.
@Suite(.timeLimit(.minutes(3)))
struct BudgetctlOpsTests {
    // MARK: analytics

    @Test func analyticsIsAGoldenSummary() throws {
        let fixture = try AnalyticsBudgets()
        let (daemon, client) = (fixture.daemon, fixture.client)
        defer { #expect(daemon.stop() == 0) }
        let control = ["--control", daemon.control]

        let run = try budgetctl(["analytics", "--from", "2026-03-01", "--to", "2026-04-30"] + control)
        #expect(run.status == 0, "\(run.err)")
        // 4 USD budgets overlap March-April (b_eur is in EUR); only b_unl is still ACTIVE.
        // Top-level: b_ops 5000 (2875.125 spent, b_research's 310 included), b_apr 40
        // (45.75), b_unl (12.5, no total): allocated 5040, spent 2933.375, remaining
        // 2124.875 - 5.75. Average of 57.5025, 88.571428571 and 114.375 = 86.82;
        // b_apr is over, b_research near. OpenAI = 2500 + "openai" 12.5.
        // March: (2500 + 65.125 + 310 + b_unl's 12.5) ÷ 5000 = 57.75 % (b_unl's spend counts, its
        // missing total does not);
        // April: 45.75 ÷ 40 = 114.375 → 114.38 (half-even).
        let expected = """
            analytics      USD, budgets overlapping 2026-03-01..2026-04-30
            budgets        4 (1 active)
            allocated      5040.00 USD
            spent          2933.375 USD
            remaining      2119.125 USD
            average spent  86.82 %
            exceeded       1 (over their total)
            near limit     1 (80-100 % spent)

            top platforms
            PLATFORM         SPENT  VS TOP        SHARE
            OpenAI     2512.50 USD  ██████████  85.65 %
            Anthropic   310.00 USD  █░░░░░░░░░  10.57 %
            Apify       65.125 USD  ░░░░░░░░░░   2.22 %
            AWS          45.75 USD  ░░░░░░░░░░   1.56 %

            monthly trend
            MONTH           SPENT  UTILIZATION         %
            2026-03  2887.625 USD  █████░░░░░    57.75 %
            2026-04     45.75 USD  ██████████   114.38 %

            """
        #expect(run.out == expected)
        #expect(!run.out.contains("\u{1B}"), "no colour on a pipe")

        // Only March's days and budgets: b_apr is out.
        let march = try budgetctl(["analytics", "--from", "2026-03-01", "--to", "2026-03-31"] + control)
        #expect(march.status == 0, "\(march.err)")
        let marchLines = lines(march.out)
        #expect(marchLines.contains("budgets        3 (1 active)"))
        #expect(marchLines.contains("2026-03  2887.625 USD  █████░░░░░   57.75 %"))
        #expect(!march.out.contains("2026-04"))
        #expect(!march.out.contains("AWS"))

        // Another currency, lower case on the command line.
        let euro = try budgetctl(["analytics", "--currency", "eur"] + control)
        #expect(euro.status == 0, "\(euro.err)")
        #expect(euro.out == """
            analytics      EUR, all budgets
            budgets        1 (0 active)
            allocated      800.00 EUR
            spent          99.00 EUR
            remaining      701.00 EUR
            average spent  12.38 %
            exceeded       0 (over their total)
            near limit     0 (80-100 % spent)

            top platforms
            PLATFORM      SPENT  VS TOP      SHARE
            OpenAI    99.00 EUR  ██████████  100 %

            monthly trend
            MONTH        SPENT  UTILIZATION        %
            2026-03  99.00 EUR  █░░░░░░░░░   12.38 %

            """)

        // No budget in that currency: the summary, and no tables.
        let none = try budgetctl(["analytics", "--currency", "GBP"] + control)
        #expect(none.status == 0, "\(none.err)")
        #expect(none.out.hasSuffix("\ntop platforms: none\n\nmonthly trend: none\n"))
        #expect(lines(none.out).contains("spent          0.00 GBP"))

        // --json is the daemon's result, unchanged.
        #expect(try json(["analytics", "--from", "2026-03-01", "--to", "2026-04-30"] + control)
            == (try client.call("analytics", ["startDate": "2026-03-01", "endDate": "2026-04-30"])))
        #expect(try json(["analytics"] + control) == (try client.call("analytics")))
        #expect(try json(["analytics", "--currency", "EUR"] + control) == (try client.call("analytics", ["currency": "EUR"])))

        // A range that ends before it starts is the daemon's VALIDATION_FAILED.
        let backwards = try budgetctl(["analytics", "--from", "2026-04-01", "--to", "2026-03-01"] + control)
        #expect(backwards.status == 1)
        #expect(backwards.out.isEmpty)
        #expect(backwards.err.hasPrefix("error VALIDATION_FAILED: "), "\(backwards.err)")
    }

    // MARK: spend check

    @Test func spendCheckGatesByExitStatus() throws {
        let fixture = try CurrentBudget()
        let (daemon, client) = (fixture.daemon, fixture.client)
        defer { #expect(daemon.stop() == 0) }
        let control = ["--control", daemon.control]

        // Allowed: exit 0. The CRITICAL allocation is exactly used up; 0 more is fine.
        let zero = try budgetctl(["spend", "check", "--platform", "OpenAI", "--service", "API", "--amount", "0"] + control)
        #expect(zero.status == 0, "\(zero.err)")
        let allocationId = try fixture.allocationId("OpenAI")
        #expect(zero.out == """
            ALLOWED
            budget      Ops (this month) (b_now), ACTIVE
            reason      within budget Ops (this month): 880 of 1000 USD spent after this (88%)
            remaining   120.00 USD before, 120.00 USD after
            spent       88% before, 88% after
            priority    CRITICAL
            allocation  OpenAI/API (\(allocationId), CRITICAL): 0.00 USD remaining before, 0.00 USD after

            """)
        #expect(zero.err.isEmpty)

        // Denied: exit 1, the reason on standard output (it is the answer, not an error).
        let over = try budgetctl(["spend", "check", "--platform", "OpenAI", "--service", "API", "--amount", "25"] + control)
        #expect(over.status == 1)
        #expect(over.err.isEmpty)
        #expect(lines(over.out).first == "DENIED")
        #expect(lines(over.out).contains("reason      25 USD would take allocation OpenAI/API over its 600 USD (600 spent)"))
        #expect(lines(over.out).contains("remaining   120.00 USD before, 95.00 USD after"))
        #expect(lines(over.out).contains("spent       88% before, 90.5% after"))

        // The LOW allocation is refused from 90 %.
        let low = try budgetctl(["spend", "check", "--platform", "Apify", "--service", "scraping", "--amount", "20"] + control)
        #expect(low.status == 1)
        #expect(lines(low.out).first == "DENIED")
        #expect(lines(low.out).contains(
            "reason      budget Ops (this month) would be at 90% of its 1000 USD after 20 USD; LOW spend is refused from 90% (allocation Apify/SCRAPING is LOW)"
        ))

        // No matching allocation: MEDIUM, allowed below 95 %.
        let medium = try budgetctl(["spend", "check", "--platform", "GCP", "--service", "PROCESSING", "--amount", "40", "--budget", "b_now"] + control)
        #expect(medium.status == 0, "\(medium.err)")
        #expect(lines(medium.out).first == "ALLOWED")
        #expect(lines(medium.out).contains("allocation  none matches (the spend counts as MEDIUM)"))
        #expect(lines(medium.out).contains("remaining   120.00 USD before, 80.00 USD after"))

        // An UNLIMITED budget (routed by its selector) has no remaining amount to show.
        _ = try client.call("budget.create", [
            "id": "b_unl", "name": "Research", "budgetType": "UNLIMITED", "startDate": "2026-01-01", "selector": ["team": "research"],
        ])
        let unlimited = try budgetctl(["spend", "check", "--platform", "OpenAI", "--service", "API", "--amount", "5",
                                       "--metadata", "team=research"] + control)
        #expect(unlimited.status == 0, "\(unlimited.err)")
        #expect(unlimited.out == """
            ALLOWED
            budget      Research (b_unl), ACTIVE
            reason      budget Research is UNLIMITED; 5 USD spent after this
            remaining   unlimited (no total)
            priority    MEDIUM
            allocation  none matches (the spend counts as MEDIUM)

            """)

        // --json: the daemon's result, and the same exit status.
        for (args, status) in [
            ((["OpenAI", "API", "0"]), Int32(0)), ((["OpenAI", "API", "25"]), 1), ((["Apify", "SCRAPING", "20"]), 1),
        ] {
            let run = try budgetctl(["spend", "check", "--platform", args[0], "--service", args[1], "--amount", args[2], "--json"] + control)
            #expect(run.status == status, "\(args): \(run.err)")
            let daemonResult = try client.call("spend.check", [
                "platform": .string(args[0]), "serviceType": .string(args[1]), "amount": .number(args[2]),
            ])
            #expect(try JSON.parse(run.out) == daemonResult, "\(args)")
        }

        // An error reply: exit 1 with the message on standard error, nothing on standard output.
        let unknown = try budgetctl(["spend", "check", "--platform", "OpenAI", "--service", "API", "--amount", "1", "--budget", "b_nope"] + control)
        #expect(unknown.status == 1)
        #expect(unknown.out.isEmpty)
        #expect(unknown.err == "error NOT_FOUND: no budget b_nope\n")

        // No daemon: exit 2.
        let silent = try budgetctl(["spend", "check", "--platform", "OpenAI", "--service", "API", "--amount", "1",
                                    "--control", "tcp://127.0.0.1:1", "--timeout", "0.3"])
        #expect(silent.status == 2)
        #expect(silent.err.contains("no reply from tcp://127.0.0.1:1"))

        // A negative amount never reaches the daemon.
        let negative = try budgetctl(["spend", "check", "--platform", "OpenAI", "--service", "API", "--amount", "-3"] + control)
        #expect(negative.status == 64)
    }

    // MARK: allocations

    @Test func allocationAddUpdateRemove() throws {
        let fixture = try CurrentBudget()
        let (daemon, client) = (fixture.daemon, fixture.client)
        defer { #expect(daemon.stop() == 0) }
        let control = ["--control", daemon.control]
        let openAI = try fixture.allocationId("OpenAI")
        let apify = try fixture.allocationId("Apify")

        // add: the new allocation and the budget's table.
        let add = try budgetctl(["budget", "allocation", "add", "b_now", "--platform", "GCP", "--service", "processing",
                                 "--amount", "100", "--priority", "high", "--id", "al_gcp"] + control)
        #expect(add.status == 0, "\(add.err)")
        #expect(add.out == """
            added allocation GCP/PROCESSING (al_gcp) to budget b_now

            allocations
            PLATFORM  SERVICE     PRIORITY   ALLOCATED       SPENT   REMAINING  USED              %  ACTIVE
            OpenAI    API         CRITICAL  600.00 USD  600.00 USD    0.00 USD  ██████████    100 %  yes
            Apify     SCRAPING    LOW       300.00 USD  280.00 USD   20.00 USD  █████████░  93.33 %  yes
            GCP       PROCESSING  HIGH      100.00 USD    0.00 USD  100.00 USD  ░░░░░░░░░░      0 %  yes

            """)
        let stored = try #require(try client.call("budget.get", ["id": "b_now"])["allocations"]?.arrayValue)
        #expect(stored.map { $0["id"]?.stringValue } == [openAI, apify, "al_gcp"])
        #expect(stored.last?["priority"]?.stringValue == "HIGH")

        // The same platform and service again: CONFLICT, exit 1, the message on standard error.
        let twice = try budgetctl(["budget", "allocation", "add", "b_now", "--platform", "gcp", "--service", "PROCESSING", "--amount", "5"] + control)
        #expect(twice.status == 1)
        #expect(twice.out.isEmpty)
        #expect(twice.err == "error CONFLICT: budget b_now already has allocation GCP/PROCESSING (al_gcp): change it with allocation.update\n")

        // Over the total: VALIDATION_FAILED.
        let tooMuch = try budgetctl(["budget", "allocation", "add", "b_now", "--platform", "AWS", "--service", "STORAGE", "--amount", "1000"] + control)
        #expect(tooMuch.status == 1)
        #expect(tooMuch.err == "error VALIDATION_FAILED: Total allocation (2000) exceeds budget total (1000)\n")

        // update by platform and service: lowering Apify to its spend depletes it.
        let lower = try budgetctl(["budget", "allocation", "update", "b_now", "--platform", "apify", "--service", "SCRAPING", "--amount", "280"] + control)
        #expect(lower.status == 0, "\(lower.err)")
        #expect(lines(lower.out).first == "updated allocation Apify/SCRAPING (\(apify)) of budget b_now")
        #expect(lines(lower.out).contains("Apify     SCRAPING    LOW       280.00 USD  280.00 USD    0.00 USD  ██████████  100 %  yes"))
        try eventually {
            try client.call("alert.list", ["budgetId": "b_now"]).arrayValue?.contains {
                $0["type"]?.stringValue == "ALLOCATION_DEPLETED" && $0["platform"]?.stringValue == "Apify"
            } == true
        }

        // update by id: priority and active.
        let retire = try budgetctl(["budget", "allocation", "update", "b_now", "--id", "al_gcp", "--priority", "LOW", "--active", "off"] + control)
        #expect(retire.status == 0, "\(retire.err)")
        #expect(lines(retire.out).first == "updated allocation GCP/PROCESSING (al_gcp) of budget b_now")
        #expect(lines(retire.out).contains("GCP       PROCESSING  LOW       100.00 USD    0.00 USD  100.00 USD  ░░░░░░░░░░    0 %  no"))

        // The allocation must be named one way, and something must change: command-line mistakes.
        for args in [
            ["update", "b_now", "--amount", "5"],
            ["update", "b_now", "--platform", "GCP", "--amount", "5"],
            ["update", "b_now", "--id", "al_gcp", "--platform", "GCP", "--service", "PROCESSING", "--amount", "5"],
            ["update", "b_now", "--id", "al_gcp"],
            ["remove", "b_now"],
        ] {
            let run = try budgetctl(["budget", "allocation"] + args + control)
            #expect(run.status == 64, "\(args)")
        }
        let missing = try budgetctl(["budget", "allocation", "update", "b_now", "--id", "al_nope", "--amount", "5"] + control)
        #expect(missing.status == 1)
        #expect(missing.err == "error NOT_FOUND: budget b_now has no allocation al_nope\n")

        // remove: one with spend is a CONFLICT (deactivate it instead) ...
        let spent = try budgetctl(["budget", "allocation", "remove", "b_now", "--platform", "Apify", "--service", "SCRAPING"] + control)
        #expect(spent.status == 1)
        #expect(spent.out.isEmpty)
        #expect(spent.err == "error CONFLICT: allocation Apify/SCRAPING (\(apify)) has spent 280 USD and cannot be removed; set isActive false with allocation.update instead\n")

        // ... one without is removed.
        let remove = try budgetctl(["budget", "allocation", "remove", "b_now", "--id", "al_gcp"] + control)
        #expect(remove.status == 0, "\(remove.err)")
        #expect(remove.out == """
            removed allocation al_gcp from budget b_now

            allocations
            PLATFORM  SERVICE   PRIORITY   ALLOCATED       SPENT  REMAINING  USED            %  ACTIVE
            OpenAI    API       CRITICAL  600.00 USD  600.00 USD   0.00 USD  ██████████  100 %  yes
            Apify     SCRAPING  LOW       280.00 USD  280.00 USD   0.00 USD  ██████████  100 %  yes

            """)

        // --json: the budget as the daemon has it afterwards.
        let added = try json(["budget", "allocation", "add", "b_now", "--platform", "AWS", "--service", "STORAGE", "--amount", "50"] + control)
        #expect(added == (try client.call("budget.get", ["id": "b_now"])["budget"]))
        #expect(added["allocations"]?.arrayValue?.last?["priority"]?.stringValue == "MEDIUM")
        let updated = try json(["budget", "allocation", "update", "b_now", "--platform", "AWS", "--service", "STORAGE", "--amount", "60"] + control)
        #expect(updated == (try client.call("budget.get", ["id": "b_now"])["budget"]))
        let removed = try json(["budget", "allocation", "remove", "b_now", "--platform", "AWS", "--service", "STORAGE"] + control)
        #expect(removed == (try client.call("budget.get", ["id": "b_now"])["budget"]))
        #expect(removed["allocations"]?.arrayValue?.count == 2)

        // A budget left without allocations says so.
        _ = try client.call("budget.create", ["id": "b_bare", "name": "Bare", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-03-01"])
        _ = try budgetctl(["budget", "allocation", "add", "b_bare", "--platform", "X", "--service", "OTHER", "--amount", "1"] + control)
        let bare = try budgetctl(["budget", "allocation", "remove", "b_bare", "--platform", "x", "--service", "OTHER"] + control)
        #expect(bare.status == 0, "\(bare.err)")
        #expect(bare.out == "removed allocation x/OTHER from budget b_bare\n\nallocations: none\n")
    }

    // MARK: outbound list

    @Test func outboundListShowsTheLogBySeq() throws {
        let fixture = try CurrentBudget()
        let (daemon, client) = (fixture.daemon, fixture.client)
        defer { #expect(daemon.stop() == 0) }
        let control = ["--control", daemon.control]

        // Pausing publishes a status event (seq 3) after the two alerts of the fixture's spend.
        _ = try client.call("budget.update", ["id": "b_now", "status": "PAUSED"])
        let log = try #require(try client.call("outbound.list", ["sinceSeq": 0]).arrayValue)
        #expect(log.map { $0["topic"]?.stringValue } == ["alert.ALLOCATION_DEPLETED", "alert.THRESHOLD_80", "status.PAUSED"])
        func at(_ index: Int) -> String {
            let payload = log[index]["payload"]
            return BudgetctlOutputTests.toTheSecond(payload?["triggeredAt"]?.stringValue ?? payload?["at"]?.stringValue ?? "?")
        }

        let run = try budgetctl(["outbound", "list"] + control)
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out == """
            SEQ  TOPIC                      AT                    SUMMARY
              1  alert.ALLOCATION_DEPLETED  \(at(0))  WARNING Ops (this month): allocation OpenAI/API has spent 600.00 of 600.00 USD
              2  alert.THRESHOLD_80         \(at(1))  WARNING Ops (this month) has spent 88% of 1000.00 USD
              3  status.PAUSED              \(at(2))  Ops (this month): ACTIVE -> PAUSED (spent 880.00 of 1000.00)

            """)

        // After a seq, with a limit.
        let page = try budgetctl(["outbound", "list", "--since-seq", "1", "--limit", "1"] + control)
        #expect(page.status == 0, "\(page.err)")
        #expect(lines(page.out).count == 3, "a header, one row, the final newline")
        #expect(lines(page.out)[1].hasPrefix("  2  alert.THRESHOLD_80  "))
        let after = try budgetctl(["outbound", "list", "--since-seq", "3"] + control)
        #expect(after.out == "no messages after seq 3\n")

        // --json: the daemon's result.
        #expect(try json(["outbound", "list"] + control) == (try client.call("outbound.list", ["sinceSeq": 0])))
        #expect(try json(["outbound", "list", "--since-seq", "1", "--limit", "1"] + control)
            == (try client.call("outbound.list", ["sinceSeq": 1, "limit": 1])))

        let negative = try budgetctl(["outbound", "list", "--since-seq", "-1"] + control)
        #expect(negative.status == 64)
    }

    // MARK: every op has a subcommand

    @Test func everyControlOpHasASubcommand() throws {
        // The ops of CONTRACT §6 and docs/control.md, and the subcommand that sends each.
        let commands: [String: [String]] = [
            "budget.create": ["budget", "create"], "budget.update": ["budget", "update"],
            "budget.get": ["budget", "show"], "budget.list": ["budget", "list"],
            "allocation.add": ["budget", "allocation", "add"], "allocation.update": ["budget", "allocation", "update"],
            "allocation.remove": ["budget", "allocation", "remove"],
            "cost.allocate": ["cost", "allocate"], "cost.list": ["cost", "list"],
            "alert.list": ["alerts", "list"], "alert.resolve": ["alerts", "resolve"], "outbound.list": ["outbound", "list"],
            "analytics": ["analytics"], "forecast": ["forecast"],
            "optimization.list": ["recommendations", "list"], "optimization.update": ["recommendations", "approve"],
            "spend.check": ["spend", "check"], "price.quote": ["prices", "quote"], "prices.reload": ["prices", "reload"],
            "event.list": ["events", "list"], "event.reprocess": ["events", "reprocess"],
            "health": ["health"], "stats": ["stats"],
            "cost.credit": ["cost", "credit"], "event.get": ["events", "get"], "event.reprice": ["events", "reprice"],
            "backup.create": ["backup"], "retention.run": ["retention", "run"],
        ]
        for (op, command) in commands.sorted(by: { $0.key < $1.key }) {
            let help = try budgetctl(command + ["--help"])
            #expect(help.status == 0, "\(op): budgetctl \(command.joined(separator: " ")) --help: \(help.err)")
            #expect(help.out.contains("--json"), "\(op)")
        }
    }

    // MARK: helpers

    private func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Runs budgetctl with --json; it must succeed with one line of JSON.
    private func json(_ args: [String]) throws -> JSONValue {
        let run = try budgetctl(args + ["--json"])
        #expect(run.status == 0, "\(args): \(run.err)")
        #expect(run.out.hasSuffix("\n") && run.out.dropLast().firstIndex(of: "\n") == nil, "\(args)")
        return try JSON.parse(run.out, maxDepth: 512)
    }

    /// Runs budgetctl to the end: (exit status, standard output, standard error).
    private func budgetctl(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        // Colour depends on the terminal, not on NO_COLOR, in these golden tests.
        try runProcess(Products.budgetctl, args, removingEnvironment: ["NO_COLOR"])
    }

    private func eventually(_ condition: () throws -> Bool) throws {
        try BudgetctlOutputTests.eventually(condition)
    }
}

/// USD and EUR budgets in March and April 2026, COMPLETED (their periods are
/// over) except the UNLIMITED one, with costs sent at explicit times:
/// - `b_ops`: MONTHLY 5000 (OpenAI/API 3000 CRITICAL, Apify/SCRAPING 1000 LOW):
///   OpenAI 2500 on the 2nd, Apify 65.125 on the 10th, and its child's 310.
/// - `b_research`: child of b_ops, 350: Anthropic 310 on the 12th (88.57 %).
/// - `b_apr`: MONTHLY 40 in April: AWS 45.75 on 3 April (over).
/// - `b_unl`: UNLIMITED from 1 March: "openai" 12.5 on the 3rd.
/// - `b_eur`: MONTHLY 800 EUR: OpenAI 99 on the 5th.
private struct AnalyticsBudgets {
    let dir: TempDir
    let daemon: Daemon
    let client: Client

    init() throws {
        dir = try TempDir()
        daemon = try Daemon(dir: dir)
        let client = try Client(daemon)
        self.client = client
        _ = try client.call("budget.create", [
            "id": "b_ops", "name": "March 2026 Operations", "budgetType": "MONTHLY", "totalAmount": 5000, "startDate": "2026-03-01",
            "allocations": [
                ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 3000, "priority": "CRITICAL"],
                ["platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 1000, "priority": "LOW"],
            ],
        ])
        _ = try client.call("budget.create", [
            "id": "b_research", "name": "March research", "budgetType": "MONTHLY", "totalAmount": 350,
            "startDate": "2026-03-01", "parentId": "b_ops",
        ])
        _ = try client.call("budget.create", ["id": "b_apr", "name": "April launch", "budgetType": "MONTHLY", "totalAmount": 40, "startDate": "2026-04-01"])
        _ = try client.call("budget.create", ["id": "b_unl", "name": "Research", "budgetType": "UNLIMITED", "startDate": "2026-03-01"])
        _ = try client.call("budget.create", [
            "id": "b_eur", "name": "EU", "budgetType": "MONTHLY", "totalAmount": 800, "currency": "EUR", "startDate": "2026-03-01",
        ])

        // Past periods are COMPLETED a moment after creation; wait, so the counts are fixed.
        let past: Set<String> = ["b_ops", "b_research", "b_apr", "b_eur"]
        try BudgetctlOutputTests.eventually {
            try client.call("budget.list", ["status": "COMPLETED"]).arrayValue?
                .compactMap { $0["id"]?.stringValue }.filter(past.contains).count == past.count
        }

        let costs: [(id: String, budget: String, platform: String, service: String, cost: String, time: String, currency: String)] = [
            ("a-1", "b_ops", "OpenAI", "API", "2500", "2026-03-02T09:00:00Z", "USD"),
            ("a-2", "b_ops", "Apify", "SCRAPING", "65.125", "2026-03-10T18:30:00Z", "USD"),
            ("a-3", "b_research", "Anthropic", "API", "310", "2026-03-12T12:00:00Z", "USD"),
            ("a-4", "b_apr", "AWS", "STORAGE", "45.75", "2026-04-03T00:00:00Z", "USD"),
            ("a-5", "b_unl", "openai", "API", "12.5", "2026-03-03T12:00:00Z", "USD"),
            ("a-6", "b_eur", "OpenAI", "API", "99", "2026-03-05T12:00:00Z", "EUR"),
        ]
        for cost in costs {
            let ack = try client.sendAck(costEvent(
                cost.id, cost: cost.cost, source: "ops", budgetId: cost.budget, platform: cost.platform,
                extra: [("serviceType", .string(cost.service)), ("time", .string(cost.time)), ("currency", .string(cost.currency))]
            ))
            guard ack.string("state") == "ALLOCATED" else { throw HarnessError("\(cost.id) not allocated: \(ack)") }
        }
    }
}

/// A budget of the current month, `b_now` "Ops (this month)", 1000 USD, with
/// OpenAI/API 600 CRITICAL (600 spent: ALLOCATION_DEPLETED, seq 1) and
/// Apify/SCRAPING 300 LOW (280 spent: 88 %, THRESHOLD_80, seq 2).
private struct CurrentBudget {
    let dir: TempDir
    let daemon: Daemon
    let client: Client

    init() throws {
        dir = try TempDir()
        daemon = try Daemon(dir: dir)
        let client = try Client(daemon)
        self.client = client
        let id = try makeBudget(client, name: "Ops (this month)", total: "1000", extra: [
            ("id", "b_now"),
            ("allocations", [
                ["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 600, "priority": "CRITICAL"],
                ["platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 300, "priority": "LOW"],
            ]),
        ])
        guard id == "b_now" else { throw HarnessError("budget id \(id)") }
        for (eventId, platform, service, cost) in [("n-1", "OpenAI", "API", "600"), ("n-2", "Apify", "SCRAPING", "280")] {
            let ack = try client.sendAck(costEvent(eventId, cost: cost, budgetId: "b_now", platform: platform,
                                                   extra: [("serviceType", .string(service))]))
            guard ack.string("state") == "ALLOCATED" else { throw HarnessError("\(eventId) not allocated: \(ack)") }
        }
        try BudgetctlOutputTests.eventually {
            try client.call("alert.list", ["budgetId": "b_now"]).arrayValue?.count == 2
        }
    }

    /// The id budgetd gave the allocation of `platform`.
    func allocationId(_ platform: String) throws -> String {
        let allocations = try client.call("budget.get", ["id": "b_now"])["allocations"]?.arrayValue ?? []
        guard let id = allocations.first(where: { $0["platform"]?.stringValue == platform })?["id"]?.stringValue else {
            throw HarnessError("no \(platform) allocation")
        }
        return id
    }
}
