import BudgetCore
import Foundation
import Testing
import ZMQ

// Every control op of CONTRACT §6 (and the allocation ops) through the real control socket of the
// real daemon, with the values checked. Past periods and explicit event times keep the figures
// independent of today's date, except where an op is defined at "now" (spend.check).

private func code(_ reply: JSONValue) -> String? { reply["error"]?["code"]?.stringValue }
private func message(_ reply: JSONValue) -> String? { reply["error"]?["message"]?.stringValue }
private func ids(_ list: JSONValue) -> [String] { list.arrayValue?.compactMap { $0["id"]?.stringValue } ?? [] }
private func number(_ value: JSONValue?) -> String? { value?.numberText }

/// A cost event for a budget at an explicit time.
private func spend(_ id: String, _ cost: String, _ budgetId: String, _ platform: String, _ serviceType: String = "API", at time: String, currency: String? = nil) -> JSONValue {
    var extra: [(String, JSONValue)] = [("time", .string(time)), ("serviceType", .string(serviceType))]
    if let currency { extra.append(("currency", .string(currency))) }
    return costEvent(id, cost: cost, budgetId: budgetId, platform: platform, extra: extra)
}

private func now() -> Timestamp { Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)) }

/// The first day of the current UTC month, for budgets that must cover now.
private func thisMonth() -> String {
    let today = now().civilDate
    return CivilDate(year: today.year, month: today.month, day: 1)!.description
}

@Suite(.timeLimit(.minutes(5)))
struct ControlOpsTests {
    @Test func summaryMathBudgetListFiltersAndCostList() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)

        _ = try client.call("budget.create", [
            "id": "p", "name": "January project", "budgetType": "PROJECT", "totalAmount": 1000,
            "startDate": "2025-01-01", "endDate": "2025-01-10", "createdBy": "ops-team",
            "allocations": [["platform": "OpenAI", "serviceType": "API", "allocatedAmount": 400, "priority": "HIGH"]],
        ])
        _ = try client.call("budget.create", ["id": "m", "name": "February", "budgetType": "MONTHLY", "totalAmount": 500, "startDate": "2025-02-01"])
        _ = try client.call("budget.create", ["id": "u", "name": "Research", "budgetType": "UNLIMITED", "startDate": "2025-01-15"])
        _ = try client.call("budget.create", ["id": "q", "name": "Q2", "budgetType": "QUARTERLY", "totalAmount": 3000, "startDate": "2025-04-01"])
        #expect(try client.call("budget.update", ["id": "q", "status": "PAUSED"])["status"]?.stringValue == "PAUSED")

        for (id, cost, platform, service, time) in [
            ("e1", "250", "OpenAI", "API", "2025-01-03T12:00:00Z"),
            ("e2", "50", "Apify", "SCRAPING", "2025-01-05T08:00:00Z"),
            ("e3", "100", "openai", "API", "2025-01-10T23:00:00Z"),
        ] {
            #expect(try client.sendAck(spend(id, cost, "p", platform, service, at: time)).string("state") == "ALLOCATED")
        }

        // The summary: 400 spent over the whole 10-day period (it is over) = 40 a day; the 600
        // left runs out 15 days after now at that rate.
        let before = now()
        let s = try client.call("budget.get", ["id": "p"])
        let after = now().adding(seconds: 1)
        #expect(number(s["totalSpent"]) == "400")
        #expect(number(s["totalRemaining"]) == "600")
        #expect(number(s["spentPercentage"]) == "40")
        #expect(number(s["burnRate"]) == "40")
        let projected = try Timestamp(rfc3339: s["projectedEndDate"]?.stringValue ?? "")
        let fifteenDays: Int64 = 15 * 86_400
        #expect(projected >= before.adding(seconds: fifteenDays) && projected <= after.adding(seconds: fifteenDays))
        #expect(s["budget"]?["createdBy"]?.stringValue == "ops-team")
        #expect(s["budget"]?["endDate"]?.stringValue == "2025-01-10")
        let allocation = try #require(s["allocations"]?.arrayValue?.first)
        #expect(number(allocation["spentAmount"]) == "350")
        #expect(number(allocation["remainingAmount"]) == "50")
        #expect(allocation["priority"]?.stringValue == "HIGH")
        #expect(s["dailySpend"]?.arrayValue?.map { "\($0["date"]?.stringValue ?? "")=\(number($0["amount"]) ?? "")" }
            == ["2025-01-03=250", "2025-01-05=50", "2025-01-10=100"])

        // An UNLIMITED budget: no remainder, 0 %, no projected end, but a burn rate.
        _ = try client.sendAck(spend("u1", "34", "u", "AWS", "STORAGE", at: "2025-01-16T00:00:00Z"))
        let unlimited = try client.call("budget.get", ["id": "u"])
        #expect(unlimited["totalRemaining"]?.isNull == true)
        #expect(number(unlimited["spentPercentage"]) == "0")
        #expect(unlimited["projectedEndDate"]?.isNull == true)

        // budget.list filters: status, type, and a date range the periods overlap (end day inclusive).
        func list(_ args: JSONValue) throws -> [String] { ids(try client.call("budget.list", args)) }
        #expect(try list([:]) == ["p", "m", "u", "q"])
        #expect(try list(["status": "PAUSED"]) == ["q"])
        #expect(try list(["status": "ACTIVE"]) == ["p", "m", "u"])
        #expect(try list(["budgetType": "MONTHLY"]) == ["m"])
        #expect(try list(["status": "ACTIVE", "budgetType": "PROJECT"]) == ["p"])
        #expect(try list(["startDate": "2025-01-11", "endDate": "2025-01-31"]) == ["u"])
        #expect(try list(["startDate": "2025-01-10", "endDate": "2025-01-10"]) == ["p"])
        #expect(try list(["endDate": "2025-02-01"]) == ["p", "m", "u"])
        #expect(try list(["startDate": "2025-07-01"]) == ["u"])
        #expect(try list(["startDate": "2025-06-30T23:59:59Z"]) == ["u", "q"])
        let badStatus = try client.request("budget.list", ["status": "OPEN"])
        #expect(code(badStatus) == "VALIDATION_FAILED")
        #expect(message(badStatus) == "status must be one of ACTIVE EXCEEDED PAUSED COMPLETED CANCELLED")
        let backwards = try client.request("budget.list", ["startDate": "2025-02-01", "endDate": "2025-01-01"])
        #expect(code(backwards) == "VALIDATION_FAILED")
        #expect(message(backwards) == "endDate must not be before startDate")

        // cost.list: newest first; `to` includes its whole day; limit.
        func costs(_ args: JSONValue) throws -> [String] {
            try client.call("cost.list", args).arrayValue?.compactMap { $0["eventId"]?.stringValue } ?? []
        }
        #expect(try costs(["budgetId": "p"]) == ["e3", "e2", "e1"])
        #expect(try costs(["budgetId": "p", "from": "2025-01-04"]) == ["e3", "e2"])
        #expect(try costs(["budgetId": "p", "to": "2025-01-05"]) == ["e2", "e1"])
        #expect(try costs(["budgetId": "p", "from": "2025-01-04", "to": "2025-01-05"]) == ["e2"])
        #expect(try costs(["budgetId": "p", "to": "2025-01-05T08:00:00Z"]) == ["e2", "e1"])
        #expect(try costs(["budgetId": "p", "limit": 1]) == ["e3"])
        // A whole number however spelled (equal decimals are the same value, §2).
        #expect(try costs(["budgetId": "p", "limit": .number("1.0")]) == ["e3"])
        #expect(try costs(["budgetId": "p", "limit": .number("2e0")]) == ["e3", "e2"])
        let first = try #require(try client.call("cost.list", ["budgetId": "p", "limit": 1]).arrayValue?.first)
        #expect(number(first["costAmount"]) == "100")
        #expect(first["platform"]?.stringValue == "openai")
        #expect(first["costDate"]?.stringValue == "2025-01-10T23:00:00Z")
        #expect(first["allocationId"]?.stringValue == s["allocations"]?.arrayValue?.first?["id"]?.stringValue)
        #expect(code(try client.request("cost.list", ["budgetId": "nope"])) == "NOT_FOUND")
        // cost.allocate's metadata has an event's limit, measured as stored (60 KB was accepted).
        let big = try client.request("cost.allocate", ["budgetId": "p", "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 1, "costDate": "2025-01-09",
                                                      "metadata": ["a": .array(Array(repeating: .number("1e40"), count: 400))]])
        #expect(message(big) == "metadata is larger than 16384 bytes", "\(big)")
        // alert.list too (it answered [] for a budget that does not exist).
        #expect(message(try client.request("alert.list", ["budgetId": "nope"])) == "no budget nope")
        #expect(try client.call("alert.list", ["budgetId": "p"]).arrayValue != nil)
        #expect(code(try client.request("cost.list", ["budgetId": "p", "limit": 0])) == "VALIDATION_FAILED")
        #expect(message(try client.request("cost.list", ["budgetId": "p", "limit": 100_001])) == "limit must be 1...100000")
        #expect(message(try client.request("cost.list", ["budgetId": "p", "from": "2025-01-05", "to": "2025-01-04"])) == "to must not be before from")
        #expect(message(try client.request("cost.list", ["budgetId": "p", "from": "yesterday"]))?.hasPrefix("from must be YYYY-MM-DD or RFC 3339") == true)

        // cost.allocate's idempotency key is 1..128 characters: "" is refused, and books nothing.
        let spentBefore = try client.call("budget.get", ["id": "p"])["totalSpent"]
        for amount in [10, 20] {
            let empty = try client.request("cost.allocate", ["id": "", "budgetId": "p", "platform": "GCP", "serviceType": "PROCESSING", "costAmount": .number(amount)])
            #expect(code(empty) == "VALIDATION_FAILED")
            #expect(message(empty) == "id must not be empty")
        }
        #expect(try client.call("budget.get", ["id": "p"])["totalSpent"] == spentBefore)

        // A cost must fall in the budget's period (as an event's explicit budgetId, §4); a
        // repeated id returns the first cost, and is a CONFLICT when it asks for another one.
        let period = try client.call("budget.get", ["id": "p"])["budget"]
        let outside = try client.request("cost.allocate", ["budgetId": "p", "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 5, "costDate": "2019-12-31"])
        #expect(code(outside) == "VALIDATION_FAILED")
        #expect(message(outside) == "budget p does not cover costDate 2019-12-31T00:00:00Z", "\(period?.serialized() ?? "")")
        #expect(try client.call("budget.get", ["id": "p"])["totalSpent"] == spentBefore)
        let args: JSONObject = ["id": "k1", "budgetId": "p", "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 5, "costDate": "2025-01-09"]
        let k1 = try client.call("cost.allocate", .object(args))
        #expect(try client.call("cost.allocate", .object(args)) == k1)
        var withoutDate = args
        withoutDate["costDate"] = nil
        #expect(try client.call("cost.allocate", .object(withoutDate)) == k1)
        for (key, value) in [("costAmount", JSONValue.number("6")), ("platform", "AWS"), ("serviceType", "STORAGE"), ("costDate", "2025-01-08")] {
            var other = args
            other[key] = value
            let reply = try client.request("cost.allocate", .object(other))
            #expect(code(reply) == "CONFLICT", "\(key)")
            #expect(message(reply)?.hasPrefix("id k1 was used for another cost: 5 USD to budget p, GCP/PROCESSING") == true, "\(key): \(reply.serialized())")
        }
        #expect(number(try client.call("budget.get", ["id": "p"])["totalSpent"]) == number(spentBefore).map { String((Int($0) ?? 0) + 5) })
    }

    @Test func analyticsAgainstHandComputedTotals() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)

        for args: JSONValue in [
            ["id": "org", "name": "Org 2025", "budgetType": "YEARLY", "totalAmount": 12000, "startDate": "2025-01-01"],
            ["id": "jan", "name": "January", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2025-01-01", "parentId": "org"],
            ["id": "feb", "name": "February", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": "2025-02-01", "parentId": "org"],
            ["id": "solo", "name": "Solo", "budgetType": "PROJECT", "totalAmount": 500, "startDate": "2025-01-20", "endDate": "2025-02-10"],
            ["id": "unl", "name": "Research", "budgetType": "UNLIMITED", "startDate": "2025-01-01"],
            ["id": "eur", "name": "Euro", "budgetType": "MONTHLY", "totalAmount": 800, "currency": "EUR", "startDate": "2025-01-01"],
        ] {
            _ = try client.call("budget.create", args)
        }
        for event in [
            spend("a1", "850", "jan", "OpenAI", at: "2025-01-10T10:00:00Z"),
            spend("a2", "600", "feb", "Apify", "SCRAPING", at: "2025-02-02T10:00:00Z"),
            spend("a3", "500", "feb", "apify", "SCRAPING", at: "2025-02-20T10:00:00Z"),
            spend("a4", "40", "solo", "OpenAI", at: "2025-01-25T10:00:00Z"),
            spend("a5", "60", "solo", "openai", at: "2025-02-05T10:00:00Z"),
            spend("a6", "100", "unl", "AWS", "STORAGE", at: "2025-01-15T10:00:00Z"),
            spend("a7", "200", "unl", "AWS", "STORAGE", at: "2025-02-15T10:00:00Z"),
            spend("a8", "700", "eur", "OpenAI", at: "2025-01-10T10:00:00Z", currency: "EUR"),
        ] {
            #expect(try client.sendAck(event).string("state") == "ALLOCATED")
        }
        #expect(try client.call("budget.get", ["id": "feb"])["budget"]?["status"]?.stringValue == "EXCEEDED")

        // USD, no range. Tops: org (jan + feb = 1950), solo (100), unl (300): 2350 spent.
        // Limited budgets: org 16.25 %, jan 85 % (near), feb 110 % (exceeded), solo 20 %: mean 57.8125 → 57.81.
        // January: 850 + 40 + 100 = 990 spent; utilization 990 ÷ (12000 + 500) = 7.92 % (the month's
        // spend, UNLIMITED's included, over the totals of the budgets that have one).
        // February: 1100 + 60 + 200 = 1360 spent; utilization 1360 ÷ 12500 = 10.88 %.
        let all = try client.call("analytics")
        #expect(all == [
            "currency": "USD", "totalBudgets": 5, "activeBudgets": 4, "totalAllocated": .number("12500"),
            "totalSpent": .number("2350"), "totalRemaining": .number("10450"), "averageSpentPercentage": .number("57.81"),
            "budgetsExceeded": 1, "budgetsNearLimit": 1,
            "topSpendingPlatforms": [
                ["platform": "Apify", "totalSpent": .number("1100")], ["platform": "OpenAI", "totalSpent": .number("950")],
                ["platform": "AWS", "totalSpent": .number("300")],
            ],
            "monthlyTrend": [
                ["month": "2025-01", "totalSpent": .number("990"), "budgetUtilization": .number("7.92")],
                ["month": "2025-02", "totalSpent": .number("1360"), "budgetUtilization": .number("10.88")],
            ],
        ], "\(all.serialized())")

        // February only: jan is out; totals stay whole-period; platforms and months are February's days.
        // Mean of org 16.25, feb 110, solo 20 = 48.75.
        let february = try client.call("analytics", ["startDate": "2025-02-01", "endDate": "2025-02-28"])
        #expect(february == [
            "currency": "USD", "totalBudgets": 4, "activeBudgets": 3, "totalAllocated": .number("12500"),
            "totalSpent": .number("2350"), "totalRemaining": .number("10450"), "averageSpentPercentage": .number("48.75"),
            "budgetsExceeded": 1, "budgetsNearLimit": 0,
            "topSpendingPlatforms": [
                ["platform": "Apify", "totalSpent": .number("1100")], ["platform": "AWS", "totalSpent": .number("200")],
                ["platform": "openai", "totalSpent": .number("60")],
            ],
            "monthlyTrend": [["month": "2025-02", "totalSpent": .number("1360"), "budgetUtilization": .number("10.88")]],
        ], "\(february.serialized())")

        let euro = try client.call("analytics", ["currency": "EUR"])
        #expect(number(euro["totalBudgets"]) == "1")
        #expect(number(euro["totalSpent"]) == "700")
        #expect(number(euro["totalRemaining"]) == "100")
        #expect(number(euro["averageSpentPercentage"]) == "87.5")
        #expect(number(euro["budgetsNearLimit"]) == "1")
        #expect(euro["monthlyTrend"] == [["month": "2025-01", "totalSpent": .number("700"), "budgetUtilization": .number("87.5")]])

        let none = try client.call("analytics", ["startDate": "2030-01-01"])
        #expect(number(none["totalBudgets"]) == "1")  // only the open-ended UNLIMITED budget overlaps
        #expect(number(none["totalAllocated"]) == "0")
        #expect(number(none["averageSpentPercentage"]) == "0")
        #expect(none["monthlyTrend"] == [])

        #expect(message(try client.request("analytics", ["startDate": "2025-03-01", "endDate": "2025-02-01"])) == "endDate must not be before startDate")
        #expect(message(try client.request("analytics", ["currency": "EURO"])) == "currency must be a 3-letter code")
        #expect(code(try client.request("analytics", ["startDate": 20250101])) == "VALIDATION_FAILED")
    }

    @Test func spendCheckRoutesDeniesByPriorityAncestorsAndStatusAndBooksNothing() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let month = thisMonth()
        _ = try client.call("budget.create", ["id": "org", "name": "Org", "budgetType": "MONTHLY", "totalAmount": 1800, "startDate": .string(month)])
        _ = try client.call("budget.create", [
            "id": "ops", "name": "Ops", "budgetType": "MONTHLY", "totalAmount": 1000, "startDate": .string(month),
            "parentId": "org", "selector": ["team": "ops"],
            "allocations": [
                ["id": "al_openai", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 400, "priority": "CRITICAL"],
                ["id": "al_apify", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 200, "priority": "LOW"],
            ],
        ])
        _ = try client.call("budget.create", [
            "id": "data", "name": "Data", "budgetType": "MONTHLY", "totalAmount": 1500, "startDate": .string(month),
            "parentId": "org", "selector": ["team": "data"],
        ])
        _ = try client.call("budget.create", ["id": "lab", "name": "Lab", "budgetType": "UNLIMITED", "startDate": .string(month), "selector": ["team": "lab"]])
        _ = try client.call("cost.allocate", ["budgetId": "ops", "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 880])

        func check(_ platform: String, _ service: String, _ amount: String, team: String? = "ops", budgetId: String? = nil) throws -> JSONValue {
            var args = JSONObject([("platform", .string(platform)), ("serviceType", .string(service)), ("amount", .number(amount))])
            if let team { args["metadata"] = ["team": .string(team)] }
            if let budgetId { args["budgetId"] = .string(budgetId) }
            return try client.call("spend.check", .object(args))
        }

        // Priority: LOW refused from 90 %, MEDIUM (no allocation) from 95 %, CRITICAL up to 100 %.
        let low = try check("Apify", "SCRAPING", "20")
        #expect(low["allowed"] == false)
        #expect(low["budgetId"]?.stringValue == "ops")
        #expect(low["priority"]?.stringValue == "LOW")
        #expect(low["reason"]?.stringValue == "budget Ops would be at 90% of its 1000 USD after 20 USD; LOW spend is refused from 90% (allocation Apify/SCRAPING is LOW)")
        #expect(number(low["remaining"]) == "120")
        #expect(number(low["remainingAfter"]) == "100")
        #expect(number(low["spentPercentage"]) == "88")
        #expect(try check("Apify", "SCRAPING", "19.99")["allowed"] == true)
        let medium = try check("GCP", "PROCESSING", "70")
        #expect(medium["allowed"] == false)
        #expect(medium["reason"]?.stringValue == "budget Ops would be at 95% of its 1000 USD after 70 USD; MEDIUM spend is refused from 95% (no allocation matches GCP/PROCESSING, so it counts as MEDIUM)")
        let critical = try check("OpenAI", "API", "120")
        #expect(critical["allowed"] == true)
        #expect(critical["reason"]?.stringValue == "within budget Ops: 1000 of 1000 USD spent after this (100%)")
        #expect(critical["allocation"]?["remainingAfter"]?.numberText == "280")
        let over = try check("OpenAI", "API", "120.000000001")
        #expect(over["allowed"] == false)
        #expect(over["reason"]?.stringValue == "120.000000001 USD would take budget Ops over its 1000 USD (880 spent)")
        #expect(try check("OpenAI", "API", "401")["reason"]?.stringValue == "401 USD would take allocation OpenAI/API over its 400 USD (0 spent)")

        // An ancestor: Data's spend fills Org (1780 of 1800).
        _ = try client.call("cost.allocate", ["budgetId": "data", "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 900])
        #expect(try check("OpenAI", "API", "20")["allowed"] == true)
        let parent = try check("OpenAI", "API", "20.5")
        #expect(parent["allowed"] == false)
        #expect(parent["budgetId"]?.stringValue == "ops")
        #expect(parent["reason"]?.stringValue == "20.5 USD would take parent budget Org (org) over its 1800 USD (1780 spent)")

        // Without metadata only Org, the budget without a selector, matches.
        let plain = try check("OpenAI", "API", "10", team: nil)
        #expect(plain["budgetId"]?.stringValue == "org")
        #expect(plain["allowed"] == false)
        #expect(plain["reason"]?.stringValue == "budget Org would be at 99.44% of its 1800 USD after 10 USD; MEDIUM spend is refused from 95% (no allocation matches OpenAI/API, so it counts as MEDIUM)")

        // UNLIMITED is never over.
        let lab = try check("GCP", "PROCESSING", "1000000000000", team: "lab")
        #expect(lab["allowed"] == true)
        #expect(lab["budgetId"]?.stringValue == "lab")
        #expect(lab["remaining"]?.isNull == true)

        // Nothing was booked by any of it.
        #expect(number(try client.call("budget.get", ["id": "ops"])["totalSpent"]) == "880")
        #expect(number(try client.call("budget.get", ["id": "org"])["totalSpent"]) == "1780")
        #expect(try client.call("cost.list", ["budgetId": "ops"]).arrayValue?.count == 1)

        // PAUSED refuses everything, even what would otherwise pass.
        _ = try client.call("budget.update", ["id": "ops", "status": "PAUSED"])
        let paused = try check("OpenAI", "API", "1")
        #expect(paused["allowed"] == false)
        #expect(paused["status"]?.stringValue == "PAUSED")
        #expect(paused["reason"]?.stringValue == "budget Ops is PAUSED: no spend until an operator sets it ACTIVE again")
        _ = try client.call("budget.update", ["id": "ops", "status": "ACTIVE"])
        #expect(try check("OpenAI", "API", "1")["allowed"] == true)

        // No routable budget: allowed, budgetId null; an explicit CANCELLED one routes nowhere too.
        _ = try client.call("budget.update", ["id": "org", "status": "CANCELLED"])
        let nowhere = try check("OpenAI", "API", "5", team: nil)
        #expect(nowhere["allowed"] == true)
        #expect(nowhere["budgetId"]?.isNull == true)
        #expect(nowhere["reason"]?.stringValue?.hasSuffix("the spend would be stored UNALLOCATED") == true)
        let cancelled = try check("OpenAI", "API", "5", team: nil, budgetId: "org")
        #expect(cancelled["allowed"] == true)
        #expect(cancelled["budgetId"]?.isNull == true)
        #expect(cancelled["reason"]?.stringValue == "budget Org (org) is CANCELLED; spend sent to it would be stored UNALLOCATED")
        // A CANCELLED ancestor refuses its children's spend too.
        #expect(try check("OpenAI", "API", "1")["reason"]?.stringValue == "parent budget Org (org) is CANCELLED")

        let unknown = try client.request("spend.check", ["budgetId": "nope", "platform": "OpenAI", "serviceType": "API", "amount": 1])
        #expect(code(unknown) == "NOT_FOUND")
        #expect(message(unknown) == "no budget nope")
        #expect(message(try client.request("spend.check", ["platform": "OpenAI", "serviceType": "API"])) == "amount is required")
        #expect(message(try client.request("spend.check", ["platform": "OpenAI", "serviceType": "API", "amount": "1e13"])) == "amount: amount over 1e12")
    }

    @Test func allocationOpsValidateFireAndReArmAndPersist() throws {
        let dir = try TempDir()
        var daemon = try Daemon(dir: dir)
        var client = try Client(daemon)
        let budgetId = try makeBudget(client, name: "Ops", total: "1000", extra: [
            ("allocations", [["id": "al_openai", "platform": "OpenAI", "serviceType": "API", "allocatedAmount": 400]]),
        ])
        _ = try client.call("cost.allocate", ["budgetId": .string(budgetId), "platform": "OpenAI", "serviceType": "API", "costAmount": 300])
        let sub = try client.subscriber()

        let added = try client.call("allocation.add", [
            "budgetId": .string(budgetId), "id": "al_apify", "platform": "Apify", "serviceType": "SCRAPING", "allocatedAmount": 200, "priority": "LOW",
        ])
        #expect(added["id"]?.stringValue == budgetId)
        #expect(ids(added["allocations"] ?? []) == ["al_openai", "al_apify"])
        let apify = try #require(added["allocations"]?.arrayValue?.last)
        #expect(apify["priority"]?.stringValue == "LOW")
        #expect(number(apify["spentAmount"]) == "0")
        #expect(number(apify["remainingAmount"]) == "200")
        #expect(apify["isActive"] == true)

        let duplicate = try client.request("allocation.add", ["budgetId": .string(budgetId), "platform": "openai", "serviceType": "API", "allocatedAmount": 1])
        #expect(code(duplicate) == "CONFLICT")
        #expect(message(duplicate) == "budget \(budgetId) already has allocation OpenAI/API (al_openai): change it with allocation.update")
        let tooMuch = try client.request("allocation.add", ["budgetId": .string(budgetId), "platform": "AWS", "serviceType": "STORAGE", "allocatedAmount": .number("400.5")])
        #expect(code(tooMuch) == "VALIDATION_FAILED")
        #expect(message(tooMuch) == "Total allocation (1000.5) exceeds budget total (1000)")
        #expect(code(try client.request("allocation.add", ["budgetId": "nope", "platform": "AWS", "serviceType": "STORAGE", "allocatedAmount": 1])) == "NOT_FOUND")

        // Lowering OpenAI/API to its spend fires ALLOCATION_DEPLETED, published after the commit.
        let lowered = try client.call("allocation.update", ["budgetId": .string(budgetId), "platform": "OPENAI", "serviceType": "API", "allocatedAmount": 300])
        #expect(number(lowered["allocations"]?.arrayValue?.first?["remainingAmount"]) == "0")
        let depleted = try #require(try client.next(sub))
        #expect(depleted.topic == "alert.ALLOCATION_DEPLETED")
        #expect(depleted.payload.string("platform") == "OpenAI")
        #expect(depleted.payload.string("serviceType") == "API")
        #expect(depleted.payload.number("spentAmount") == "300")
        #expect(depleted.payload.number("totalAmount") == "300")
        #expect(depleted.payload["eventId"]?.isNull == true)

        // Raising it above the spend re-arms without publishing; the next cost that reaches it fires again.
        _ = try client.call("allocation.update", ["budgetId": .string(budgetId), "id": "al_openai", "allocatedAmount": 350, "priority": "CRITICAL"])
        #expect(try client.quiet(sub, ms: 300))
        _ = try client.call("cost.allocate", ["budgetId": .string(budgetId), "platform": "OpenAI", "serviceType": "API", "costAmount": 50])
        let again = try #require(try client.next(sub))
        #expect(again.topic == "alert.ALLOCATION_DEPLETED")
        #expect(again.payload.number("spentAmount") == "350")

        let withSpend = try client.request("allocation.remove", ["budgetId": .string(budgetId), "id": "al_openai"])
        #expect(code(withSpend) == "CONFLICT")
        #expect(message(withSpend) == "allocation OpenAI/API (al_openai) has spent 350 USD and cannot be removed; set isActive false with allocation.update instead")
        let removed = try client.call("allocation.remove", ["budgetId": .string(budgetId), "platform": "Apify", "serviceType": "SCRAPING"])
        #expect(ids(removed["allocations"] ?? []) == ["al_openai"])
        #expect(code(try client.request("allocation.remove", ["budgetId": .string(budgetId), "id": "al_apify"])) == "NOT_FOUND")
        #expect(message(try client.request("allocation.update", ["budgetId": .string(budgetId), "allocatedAmount": 1])) == "name the allocation by id, or by platform and serviceType")

        // alert.list and alert.resolve over those alerts.
        let listed = try client.call("alert.list", ["budgetId": .string(budgetId)])
        #expect(listed.arrayValue?.compactMap { $0["type"]?.stringValue } == ["ALLOCATION_DEPLETED", "ALLOCATION_DEPLETED"])
        let firstId = try #require(listed.arrayValue?.first?["id"]?.stringValue)
        let firstSeq = try #require(listed.arrayValue?.first?["seq"]?.numberText)
        #expect(try client.call("alert.resolve", ["id": .string(firstId)])["resolved"] == true)
        #expect(try client.call("alert.list", ["budgetId": .string(budgetId), "unresolved": true]).arrayValue?.count == 1)
        #expect(try client.call("alert.list", ["sinceSeq": .number(firstSeq)]).arrayValue?.count == 1)
        #expect(try client.call("alert.list", ["limit": 1]).arrayValue?.count == 1)
        #expect(code(try client.request("alert.resolve", ["id": "a_999"])) == "NOT_FOUND")
        #expect(code(try client.request("alert.list", ["limit": "many"])) == "VALIDATION_FAILED")

        // Everything persisted: after a restart the allocations are as left, and still depleted.
        #expect(daemon.stop() == 0)
        daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        client = try Client(daemon)
        let summary = try client.call("budget.get", ["id": .string(budgetId)])
        let openAI = try #require(summary["allocations"]?.arrayValue?.first)
        #expect(summary["allocations"]?.arrayValue?.count == 1)
        #expect(number(openAI["allocatedAmount"]) == "350")
        #expect(number(openAI["spentAmount"]) == "350")
        #expect(openAI["priority"]?.stringValue == "CRITICAL")
        let sub2 = try client.subscriber()
        _ = try client.call("cost.allocate", ["budgetId": .string(budgetId), "platform": "OpenAI", "serviceType": "API", "costAmount": 1])
        #expect(try client.quiet(sub2, ms: 300))
    }

    @Test("alert.list finds a budget's alerts by any canonically equivalent spelling of its id, as every other op does (it listed none)")
    func alertListByEquivalentId() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        _ = try client.call("budget.create", ["id": .string(composed), "name": "Cafe", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2025-01-01"])
        _ = try client.call("cost.allocate", ["budgetId": .string(decomposed), "platform": "GCP", "serviceType": "PROCESSING", "costAmount": 11, "costDate": "2025-01-02"])
        let types = ["THRESHOLD_80", "THRESHOLD_90", "THRESHOLD_100", "BUDGET_EXCEEDED"]
        for id in [composed, decomposed] {
            #expect(try client.call("alert.list", ["budgetId": .string(id)]).arrayValue?.compactMap { $0["type"]?.stringValue } == types, "\(Array(id.unicodeScalars))")
            let page = try client.call("alert.list", ["budgetId": .string(id), "page": true])
            #expect(page["items"]?.arrayValue?.count == 4)
        }
        // A child named by the other spelling of its parent stores the parent's id as stored.
        let child = try client.call("budget.create", ["name": "Child", "budgetType": "MONTHLY", "totalAmount": 5, "startDate": "2025-01-01", "parentId": .string(decomposed)])
        #expect(child["parentId"]?.stringValue.map { Array($0.utf8) } == Array(composed.utf8))
    }

    @Test func everyErrorCodeIsReachableAndTheDaemonKeepsServing() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let cases: [(JSONValue, String, String)] = [
            (try client.requestRaw([Array("{\"op\":".utf8)]), "BAD_REQUEST", "request is not valid JSON: "),
            (try client.requestRaw([Array("[1]".utf8)]), "BAD_REQUEST", "a request is a JSON object {\"op\": …, \"args\": {…}}"),
            (try client.requestRaw([Array("{\"args\":{}}".utf8)]), "BAD_REQUEST", "request needs \"op\", a string"),
            (try client.requestRaw([Array("{\"op\":\"health\",\"args\":[]}".utf8)]), "BAD_REQUEST", "\"args\" must be an object"),
            (try client.requestRaw([Array("{\"op\":\"health\"}".utf8), Array("x".utf8)]), "BAD_REQUEST", "a control request is one JSON frame, got 2"),
            (try client.request("budget.explode"), "UNKNOWN_OP", "unknown op budget.explode"),
            (try client.request("budget.get", ["id": "b_nope"]), "NOT_FOUND", "no budget b_nope"),
            (try client.request("budget.get", [:]), "VALIDATION_FAILED", "id is required"),
            (try client.request("budget.create", ["name": "x", "budgetType": "WEEKLY", "totalAmount": 1, "startDate": "2026-01-01"]),
             "VALIDATION_FAILED", "budgetType must be one of MONTHLY QUARTERLY YEARLY PROJECT UNLIMITED"),
            (try client.request("spend.check", ["platform": "X", "serviceType": "API", "amount": true]),
             "VALIDATION_FAILED", "amount must be a number or a decimal string"),
            (try client.request("event.list", ["state": "LOST"]), "VALIDATION_FAILED", "state must be one of ALLOCATED UNPRICED UNALLOCATED REJECTED"),
            (try client.request("outbound.list", ["sinceSeq": "x"]), "VALIDATION_FAILED", "sinceSeq must be an integer"),
            (try client.request("outbound.list", ["sinceSeq": .number("1.5")]), "VALIDATION_FAILED", "sinceSeq must be an integer"),
            (try client.request("event.reprocess", ["state": "ALLOCATED"]), "VALIDATION_FAILED", "event.reprocess takes state UNPRICED or UNALLOCATED"),
            // Budgets and allocations are stored through a binding that stops at a NUL character.
            (try client.request("budget.create", ["id": "a\u{0}b", "name": "x", "budgetType": "MONTHLY", "totalAmount": 1, "startDate": "2026-01-01"]),
             "VALIDATION_FAILED", "budget.create: texts must not contain a NUL character (U+0000)"),
            (try client.request("budget.create", ["name": "x", "budgetType": "MONTHLY", "totalAmount": 1, "startDate": "2026-01-01",
                                                  "selector": ["team\u{0}": "a"]]),
             "VALIDATION_FAILED", "budget.create: texts must not contain a NUL character (U+0000)"),
            (try client.request("allocation.add", ["budgetId": "b_nope", "platform": "Open\u{0}AI", "serviceType": "API", "allocatedAmount": 1]),
             "VALIDATION_FAILED", "allocation.add: texts must not contain a NUL character (U+0000)"),
        ]
        for (reply, expectedCode, expectedMessage) in cases {
            #expect(reply["ok"] == false)
            #expect(code(reply) == expectedCode, "\(reply.serialized())")
            #expect(message(reply)?.hasPrefix(expectedMessage) == true, "\(reply.serialized())")
        }
        _ = try client.call("budget.create", ["id": "same", "name": "Same", "budgetType": "MONTHLY", "totalAmount": 5, "startDate": "2026-01-01"])
        let again = try client.request("budget.create", ["id": "same", "name": "Same", "budgetType": "MONTHLY", "totalAmount": 5, "startDate": "2026-01-01"])
        #expect(code(again) == "CONFLICT")
        #expect(message(again) == "budget same already exists")
        // An allocation id taken by another budget is CONFLICT, not a failed commit.
        _ = try client.call("budget.create", ["name": "A", "budgetType": "MONTHLY", "totalAmount": 5, "startDate": "2026-01-01",
                                              "allocations": [["id": "al_x", "platform": "X", "serviceType": "API", "allocatedAmount": 1]]])
        let taken = try client.request("budget.create", ["name": "B", "budgetType": "MONTHLY", "totalAmount": 5, "startDate": "2026-01-01",
                                                         "allocations": [["id": "al_x", "platform": "X", "serviceType": "API", "allocatedAmount": 1]]])
        #expect(code(taken) == "CONFLICT")
        let health = try client.call("health")
        #expect(health["status"]?.stringValue == "OK")
        #expect(health["version"]?.stringValue == budgetdVersionForTests)
    }
}

/// The version the daemon reports (`budgetd --version`).
private let budgetdVersionForTests: String = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Products.budgetd)
    process.arguments = ["--version"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try? process.run()
    process.waitUntilExit()
    return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}()
