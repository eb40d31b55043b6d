import BudgetCore
import Testing

// CONTRACT §4: which one budget an event goes to.

/// A budget as a routing fixture: enough to build a `Budget`.
struct RouteBudget: Sendable {
    var id: String
    var type: BudgetType = .monthly
    var start: String
    var end: String? = nil
    var selector: String? = nil
    var status: BudgetStatus = .active
    var ordinal: Int64
    var successor: String? = nil

    func make() throws -> Budget {
        let period = try Period.make(
            type: type, start: DateSpec(parsing: start), end: try end.map { try DateSpec(parsing: $0) }
        )
        let selectorObject = try selector.map { try #require(JSON.parse($0).objectValue) }
        return Budget(
            id: id, name: id, budgetType: type, totalAmount: Money(nanos: 1_000 * Money.nanosPerUnit), period: period,
            status: status, selector: selectorObject, createdAt: Timestamp(nanosecondsSinceEpoch: 0), ordinal: ordinal,
            successorId: successor
        )
    }
}

/// Routes through a ledger built from `fixtures` given newest first, so the ledger itself must
/// restore creation order for the "oldest wins" tie-break.
private func route(_ fixtures: [RouteBudget], budgetId: String?, metadata: String?, time: String) throws -> String? {
    let ledger = Ledger(budgets: try fixtures.reversed().map { try $0.make() })
    let meta = try metadata.map { try #require(JSON.parse($0).objectValue) }
    return ledger.route(budgetId: budgetId, metadata: meta, time: try Timestamp(rfc3339: time))
}

/// One row of a routing table.
struct RouteCase: Sendable, CustomTestStringConvertible {
    var name: String
    var budgetId: String? = nil
    var metadata: String? = nil
    var time: String
    var expected: String?

    var testDescription: String { name }
}

struct RouterTests {
    // MARK: Rule 1: an explicit budgetId

    static let renewals: [RouteBudget] = [
        RouteBudget(id: "plain", type: .yearly, start: "2025-01-01", ordinal: 1),
        RouteBudget(id: "feb", start: "2026-02-01", status: .completed, ordinal: 2, successor: "mar"),
        RouteBudget(id: "mar", start: "2026-03-01", ordinal: 3, successor: "apr"),
        RouteBudget(id: "apr", start: "2026-04-01", ordinal: 4),
        RouteBudget(id: "cxl", start: "2026-03-01", status: .cancelled, ordinal: 5),
        RouteBudget(id: "old", start: "2025-01-01", ordinal: 6),
        RouteBudget(id: "jan", start: "2026-01-01", ordinal: 7, successor: "feb-cxl"),
        RouteBudget(id: "feb-cxl", start: "2026-02-01", status: .cancelled, ordinal: 8),
        RouteBudget(id: "exceeded", start: "2026-03-01", status: .exceeded, ordinal: 9),
        RouteBudget(id: "paused", start: "2026-03-01", status: .paused, ordinal: 10),
        RouteBudget(id: "iso", type: .project, start: "2026-03-05T10:00:00Z", end: "2026-03-05T11:59:59Z", ordinal: 11),
    ]

    static let explicitCases: [RouteCase] = [
        RouteCase(name: "a covering budget", budgetId: "mar", time: "2026-03-05T12:00:00Z", expected: "mar"),
        RouteCase(name: "the first instant of the period", budgetId: "mar", time: "2026-03-01T00:00:00Z", expected: "mar"),
        RouteCase(name: "the last instant of the last day", budgetId: "mar", time: "2026-03-31T23:59:59.999999999Z", expected: "mar"),
        RouteCase(name: "an unknown id never falls back", budgetId: "nope", time: "2026-03-05T12:00:00Z", expected: nil),
        RouteCase(name: "a CANCELLED budget", budgetId: "cxl", time: "2026-03-05T12:00:00Z", expected: nil),
        RouteCase(name: "a budget not covering the time, without successor", budgetId: "old", time: "2026-03-05T12:00:00Z", expected: nil),
        RouteCase(name: "a COMPLETED budget for a late event of its period", budgetId: "feb", time: "2026-02-10T00:00:00Z", expected: "feb"),
        RouteCase(name: "an EXCEEDED budget", budgetId: "exceeded", time: "2026-03-10T00:00:00Z", expected: "exceeded"),
        RouteCase(name: "a PAUSED budget", budgetId: "paused", time: "2026-03-10T00:00:00Z", expected: "paused"),
        RouteCase(name: "a renewed budget follows its successor", budgetId: "feb", time: "2026-03-05T12:00:00Z", expected: "mar"),
        RouteCase(name: "the chain is followed over two renewals", budgetId: "feb", time: "2026-04-30T23:59:59Z", expected: "apr"),
        RouteCase(name: "past the end of the chain", budgetId: "feb", time: "2026-05-01T00:00:00Z", expected: nil),
        RouteCase(name: "before the budget's start", budgetId: "feb", time: "2026-01-31T23:59:59Z", expected: nil),
        RouteCase(name: "a chain that ends in a CANCELLED successor", budgetId: "jan", time: "2026-02-10T00:00:00Z", expected: nil),
        RouteCase(name: "an RFC 3339 end is the last instant", budgetId: "iso", time: "2026-03-05T11:59:59Z", expected: "iso"),
        RouteCase(name: "one second after an RFC 3339 end", budgetId: "iso", time: "2026-03-05T12:00:00Z", expected: nil),
    ]

    @Test("rule 1: an explicit budgetId", arguments: explicitCases)
    func explicitId(c: RouteCase) throws {
        #expect(try route(Self.renewals, budgetId: c.budgetId, metadata: c.metadata, time: c.time) == c.expected)
    }

    // MARK: Rules 2 and 3

    static let candidates: [RouteBudget] = [
        RouteBudget(id: "unlimited", type: .unlimited, start: "2026-01-01", ordinal: 1),
        RouteBudget(id: "year", type: .yearly, start: "2026-01-01", ordinal: 2),
        RouteBudget(id: "month", start: "2026-03-01", ordinal: 3),
        RouteBudget(id: "month-newer", start: "2026-03-01", ordinal: 4),
        RouteBudget(id: "week-cancelled", type: .project, start: "2026-03-02", end: "2026-03-08", status: .cancelled, ordinal: 5),
        RouteBudget(id: "days-completed", type: .project, start: "2026-03-10", end: "2026-03-11", status: .completed, ordinal: 6),
        RouteBudget(id: "days-paused", type: .project, start: "2026-03-20", end: "2026-03-21", status: .paused, ordinal: 7),
        RouteBudget(id: "days-exceeded", type: .project, start: "2026-03-25", end: "2026-03-26", status: .exceeded, ordinal: 8),
        RouteBudget(id: "proj", start: "2026-03-01", selector: #"{"projectId":"proj-123"}"#, ordinal: 9),
        RouteBudget(id: "proj-newer", start: "2026-03-01", selector: #"{"projectId":"proj-123"}"#, ordinal: 10),
        RouteBudget(id: "proj-team", type: .yearly, start: "2026-01-01", selector: #"{"team":"data","projectId":"proj-123"}"#, ordinal: 11),
        RouteBudget(id: "tier", type: .yearly, start: "2026-01-01", selector: #"{"tier":2}"#, ordinal: 12),
        RouteBudget(id: "proj-cancelled", type: .yearly, start: "2026-01-01", selector: #"{"projectId":"proj-123","env":"prod","team":"data"}"#, status: .cancelled, ordinal: 13),
        RouteBudget(id: "paused-sel", type: .yearly, start: "2026-01-01", selector: #"{"projectId":"p-paused"}"#, status: .paused, ordinal: 14),
        RouteBudget(id: "exceeded-sel", type: .yearly, start: "2026-01-01", selector: #"{"projectId":"p-exceeded"}"#, status: .exceeded, ordinal: 15),
        RouteBudget(id: "completed-sel", type: .yearly, start: "2026-01-01", selector: #"{"projectId":"p-completed"}"#, status: .completed, ordinal: 16),
        RouteBudget(id: "nested-sel", type: .yearly, start: "2026-01-01", selector: #"{"cfg":{"a":1.50,"b":[1,2]}}"#, ordinal: 17),
    ]

    static let implicitCases: [RouteCase] = [
        RouteCase(name: "no metadata: the shortest plain period, the oldest of a tie", time: "2026-03-05T12:00:00Z", expected: "month"),
        RouteCase(name: "metadata no selector matches", metadata: #"{"projectId":"other"}"#, time: "2026-03-05T12:00:00Z", expected: "month"),
        RouteCase(name: "a matching selector wins over plain budgets", metadata: #"{"projectId":"proj-123"}"#, time: "2026-03-05T12:00:00Z", expected: "proj"),
        RouteCase(name: "most keys matched first, even with a longer period", metadata: #"{"projectId":"proj-123","team":"data"}"#, time: "2026-03-05T12:00:00Z", expected: "proj-team"),
        RouteCase(name: "extra metadata keys do not matter", metadata: #"{"projectId":"proj-123","team":"ml","x":1}"#, time: "2026-03-05T12:00:00Z", expected: "proj"),
        RouteCase(name: "every selector key must match", metadata: #"{"team":"data"}"#, time: "2026-03-05T12:00:00Z", expected: "month"),
        RouteCase(name: "a CANCELLED selector budget is skipped", metadata: #"{"projectId":"proj-123","team":"data","env":"prod"}"#, time: "2026-03-05T12:00:00Z", expected: "proj-team"),
        RouteCase(name: "a selector budget whose period does not cover the time", metadata: #"{"projectId":"proj-123"}"#, time: "2026-05-05T12:00:00Z", expected: "year"),
        RouteCase(name: "numbers compare by value: 2.0", metadata: #"{"tier":2.0}"#, time: "2026-03-05T12:00:00Z", expected: "tier"),
        RouteCase(name: "numbers compare by value: 2e0", metadata: #"{"tier":2e0}"#, time: "2026-03-05T12:00:00Z", expected: "tier"),
        RouteCase(name: "a string is not a number", metadata: #"{"tier":"2"}"#, time: "2026-03-05T12:00:00Z", expected: "month"),
        RouteCase(name: "a different number", metadata: #"{"tier":2.01}"#, time: "2026-03-05T12:00:00Z", expected: "month"),
        RouteCase(name: "nested values compare by value", metadata: #"{"cfg":{"b":[1,2.0],"a":1.5}}"#, time: "2026-03-05T12:00:00Z", expected: "nested-sel"),
        RouteCase(name: "a PAUSED selector budget is a candidate", metadata: #"{"projectId":"p-paused"}"#, time: "2026-03-05T12:00:00Z", expected: "paused-sel"),
        RouteCase(name: "an EXCEEDED selector budget is a candidate", metadata: #"{"projectId":"p-exceeded"}"#, time: "2026-03-05T12:00:00Z", expected: "exceeded-sel"),
        RouteCase(name: "a COMPLETED selector budget is a candidate", metadata: #"{"projectId":"p-completed"}"#, time: "2026-03-05T12:00:00Z", expected: "completed-sel"),
        RouteCase(name: "a CANCELLED plain budget is skipped although shortest", time: "2026-03-04T12:00:00Z", expected: "month"),
        RouteCase(name: "a COMPLETED plain budget keeps its period's costs", time: "2026-03-11T23:00:00Z", expected: "days-completed"),
        RouteCase(name: "a PAUSED plain budget is a candidate", time: "2026-03-20T08:00:00Z", expected: "days-paused"),
        RouteCase(name: "an EXCEEDED plain budget is a candidate", time: "2026-03-26T08:00:00Z", expected: "days-exceeded"),
        RouteCase(name: "a year before an open-ended UNLIMITED", time: "2026-05-05T12:00:00Z", expected: "year"),
        RouteCase(name: "the open-ended UNLIMITED when nothing else covers", time: "2027-06-01T00:00:00Z", expected: "unlimited"),
        RouteCase(name: "nothing covers the time", time: "2025-12-31T23:59:59Z", expected: nil),
    ]

    @Test("rules 2 and 3: selectors, then plain budgets", arguments: implicitCases)
    func implicit(c: RouteCase) throws {
        #expect(try route(Self.candidates, budgetId: c.budgetId, metadata: c.metadata, time: c.time) == c.expected)
    }

    @Test("an explicit id never falls back to selectors or plain budgets")
    func explicitNeverFallsBack() throws {
        #expect(try route(Self.candidates, budgetId: "ghost", metadata: #"{"projectId":"proj-123"}"#, time: "2026-03-05T12:00:00Z") == nil)
        #expect(try route(Self.candidates, budgetId: "week-cancelled", metadata: nil, time: "2026-03-05T12:00:00Z") == nil)
        // An explicit id ignores selectors: it goes where it says.
        #expect(try route(Self.candidates, budgetId: "year", metadata: #"{"projectId":"proj-123"}"#, time: "2026-03-05T12:00:00Z") == "year")
    }

    static let ties: [(String, [RouteBudget], String)] = [
        ("two plain budgets of equal length: the lower ordinal",
         [RouteBudget(id: "b", start: "2026-03-01", ordinal: 7), RouteBudget(id: "a", start: "2026-03-01", ordinal: 3)], "a"),
        ("two selector budgets with as many keys: the lower ordinal",
         [RouteBudget(id: "b", start: "2026-03-01", selector: #"{"k":1}"#, ordinal: 2),
          RouteBudget(id: "a", start: "2026-03-01", selector: #"{"j":1}"#, ordinal: 9)], "b"),
        ("shortest first beats age",
         [RouteBudget(id: "old-year", type: .yearly, start: "2026-01-01", ordinal: 1),
          RouteBudget(id: "new-quarter", type: .quarterly, start: "2026-03-01", ordinal: 2)], "new-quarter"),
        ("two open-ended UNLIMITED budgets: the older",
         [RouteBudget(id: "u2", type: .unlimited, start: "2026-01-01", ordinal: 5),
          RouteBudget(id: "u1", type: .unlimited, start: "2026-02-01", ordinal: 4)], "u1"),
        ("an UNLIMITED budget with an end is ordered by its length",
         [RouteBudget(id: "year", type: .yearly, start: "2026-01-01", ordinal: 1),
          RouteBudget(id: "u-end", type: .unlimited, start: "2026-03-01", end: "2026-03-31", ordinal: 2)], "u-end"),
    ]

    @Test("ties go to the oldest budget (lower ordinal)", arguments: ties)
    func tieBreaks(name: String, budgets: [RouteBudget], expected: String) throws {
        #expect(try route(budgets, budgetId: nil, metadata: #"{"k":1,"j":1}"#, time: "2026-03-15T00:00:00Z") == expected, "\(name)")
        // The order the budgets are given in does not matter, only their ordinals.
        #expect(try route(budgets.reversed(), budgetId: nil, metadata: #"{"k":1,"j":1}"#, time: "2026-03-15T00:00:00Z") == expected, "\(name), reversed")
    }

    @Test("Router.matches: all keys, by value")
    func matches() throws {
        func object(_ text: String) throws -> JSONObject { try #require(JSON.parse(text).objectValue) }
        #expect(Router.matches(selector: try object(#"{"a":1,"b":"x"}"#), metadata: try object(#"{"b":"x","a":1.0,"c":null}"#)))
        #expect(!Router.matches(selector: try object(#"{"a":1,"b":"x"}"#), metadata: try object(#"{"a":1}"#)))
        #expect(!Router.matches(selector: try object(#"{"a":null}"#), metadata: try object(#"{}"#)))
        #expect(Router.matches(selector: try object(#"{"a":null}"#), metadata: try object(#"{"a":null}"#)))
        #expect(!Router.matches(selector: try object(#"{"a":true}"#), metadata: try object(#"{"a":"true"}"#)))
        // Strings compare by code point (RFC 8259 §8.3), not by Swift's canonical equivalence.
        #expect(!Router.matches(selector: try object(#"{"p":"caf\u00e9"}"#), metadata: try object(#"{"p":"cafe\u0301"}"#)))
        #expect(Router.matches(selector: try object(#"{"p":"caf\u00e9"}"#), metadata: try object(#"{"p":"café"}"#)))
    }
}
