import BudgetCore
import Testing

private func spec(_ text: String) throws -> DateSpec {
    try DateSpec(parsing: text)
}

private func instant(_ text: String) throws -> Timestamp {
    try Timestamp(rfc3339: text)
}

private let nanosPerDay: Int64 = 86_400 * 1_000_000_000

struct PeriodTests {
    static let derived: [(BudgetType, String, String, String)] = [
        (.monthly, "2026-03-01", "2026-04-01T00:00:00Z", "2026-03-31"),
        (.monthly, "2026-01-31", "2026-03-01T00:00:00Z", "2026-02-28"),
        (.monthly, "2024-01-31", "2024-03-01T00:00:00Z", "2024-02-29"),
        (.monthly, "2026-12-15", "2027-01-15T00:00:00Z", "2027-01-14"),
        (.quarterly, "2026-01-01", "2026-04-01T00:00:00Z", "2026-03-31"),
        (.quarterly, "2026-11-30", "2027-03-01T00:00:00Z", "2027-02-28"),
        (.yearly, "2026-01-01", "2027-01-01T00:00:00Z", "2026-12-31"),
        (.yearly, "2024-02-29", "2025-03-01T00:00:00Z", "2025-02-28"),
        (.monthly, "2026-03-01T12:00:00Z", "2026-04-01T12:00:00Z", "2026-04-01T11:59:59.999999999Z"),
        (.monthly, "2026-01-31T08:30:00+02:00", "2026-03-01T06:30:00Z", "2026-03-01T06:29:59.999999999Z"),
        (.yearly, "2026-03-05T12:00:00.5Z", "2027-03-05T12:00:00.5Z", "2027-03-05T12:00:00.499999999Z"),
        (.monthly, "1969-12-31T23:00:00Z", "1970-01-31T23:00:00Z", "1970-01-31T22:59:59.999999999Z"),
    ]

    @Test("an end derived from the type follows CONTRACT §4", arguments: derived)
    func derivesEnd(type: BudgetType, start: String, endExclusive: String, endDate: String) throws {
        let period = try Period.make(type: type, start: spec(start), end: nil)
        #expect(period.start == (try spec(start)).startInstant)
        #expect(period.startSpec == (try spec(start)))
        #expect(period.endExclusive?.rfc3339 == endExclusive)
        #expect(period.endSpec?.description == endDate)
        // Storing the type and both specs is enough to rebuild the period.
        #expect(try Period.make(type: type, start: period.startSpec, end: period.endSpec) == period)
    }

    static let explicit: [(BudgetType, String, String, String)] = [
        (.project, "2026-03-01", "2026-03-10", "2026-03-11T00:00:00Z"),
        (.project, "2026-03-01", "2026-03-01", "2026-03-02T00:00:00Z"),
        (.project, "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00.000000001Z"),
        (.monthly, "2026-03-01", "2026-03-15", "2026-03-16T00:00:00Z"),
        (.unlimited, "2026-03-01", "2026-12-31", "2027-01-01T00:00:00Z"),
        (.project, "2026-03-01", "2026-03-31T23:59:59Z", "2026-03-31T23:59:59.000000001Z"),
        (.project, "2026-03-05T12:00:00Z", "2026-03-05", "2026-03-06T00:00:00Z"),
        (.yearly, "2026-03-01", "2026-03-31T23:59:59+02:00", "2026-03-31T21:59:59.000000001Z"),
    ]

    @Test("an explicit end includes its day or is the last instant", arguments: explicit)
    func explicitEnd(type: BudgetType, start: String, end: String, endExclusive: String) throws {
        let period = try Period.make(type: type, start: spec(start), end: spec(end))
        #expect(period.endExclusive?.rfc3339 == endExclusive)
        #expect(period.endSpec == (try spec(end)))
        #expect(try Period.make(type: type, start: period.startSpec, end: period.endSpec) == period)
    }

    static let invalid: [(BudgetType, String, String?, String)] = [
        (.project, "2026-03-10", "2026-03-09", "endDate must not be before startDate"),
        (.monthly, "2026-03-05T12:00:00Z", "2026-03-05T11:59:59.999999999Z", "endDate must not be before startDate"),
        (.project, "2026-03-05", "2026-03-04T23:59:59.999999999Z", "endDate must not be before startDate"),
        (.project, "2026-03-01", nil, "PROJECT budgets need an endDate"),
        (.project, "2262-04-11", "2262-04-11", "endDate out of range"),
        (.project, "2026-03-01", "2262-04-11T23:47:16.854775807Z", "endDate out of range"),
        (.monthly, "2262-04-01", nil, "period end out of range"),
        (.yearly, "2262-01-01T00:00:00Z", nil, "period end out of range"),
    ]

    @Test("invalid periods are rejected with a reason", arguments: invalid)
    func rejects(type: BudgetType, start: String, end: String?, message: String) throws {
        let startSpec = try spec(start)
        let endSpec = try end.map { try spec($0) }
        let error = #expect(throws: PeriodError.self) { try Period.make(type: type, start: startSpec, end: endSpec) }
        #expect(error?.message == message)
    }

    @Test("a start day outside the instant range is rejected")
    func startOutOfRange() throws {
        let far = try CivilDate(parsing: "9999-01-01")
        let error = #expect(throws: PeriodError.self) { try Period.make(type: .monthly, start: .day(far), end: nil) }
        #expect(error?.message == "startDate out of range")
    }

    @Test("UNLIMITED without an end is open")
    func openEnded() throws {
        let period = try Period.make(type: .unlimited, start: spec("2026-03-01"), end: nil)
        #expect(period.endExclusive == nil)
        #expect(period.endSpec == nil)
        #expect(period.length == nil)
        #expect(period.covers(.max))
        #expect(period.covers(try instant("2026-03-01T00:00:00Z")))
        #expect(!period.covers(try instant("2026-02-28T23:59:59.999999999Z")))
        #expect(period.successor(type: .unlimited) == nil)
    }

    static let coverage: [(String, Bool)] = [
        ("2026-02-28T23:59:59.999999999Z", false),
        ("2026-03-01T00:00:00Z", true),
        ("2026-03-15T12:00:00Z", true),
        ("2026-03-31T23:59:59.999999999Z", true),
        ("2026-04-01T00:00:00Z", false),
        ("2026-04-01T01:59:59+02:00", true),
    ]

    @Test("covers is [start, endExclusive)", arguments: coverage)
    func covers(at: String, expected: Bool) throws {
        let march = try Period.make(type: .monthly, start: spec("2026-03-01"), end: nil)
        #expect(march.covers(try instant(at)) == expected)
    }

    @Test("length orders shortest first")
    func lengths() throws {
        let march = try Period.make(type: .monthly, start: spec("2026-03-01"), end: nil)
        let february = try Period.make(type: .monthly, start: spec("2026-02-01"), end: nil)
        let quarter = try Period.make(type: .quarterly, start: spec("2026-01-01"), end: nil)
        let tiny = try Period.make(type: .project, start: spec("2026-03-01T00:00:00Z"), end: spec("2026-03-01T00:00:00Z"))
        #expect(march.length == 31 * nanosPerDay)
        #expect(february.length == 28 * nanosPerDay)
        #expect(quarter.length == 90 * nanosPerDay)
        #expect(tiny.length == 1)
        let huge = try Period.make(type: .project, start: spec("1700-01-01"), end: spec("2262-01-01"))
        #expect(huge.length == Int64.max)
    }

    static let successors: [(BudgetType, String, String?, String, String)] = [
        (.monthly, "2026-01-31", nil, "2026-03-01", "2026-03-31"),
        (.monthly, "2026-03-01", nil, "2026-04-01", "2026-04-30"),
        (.quarterly, "2026-01-01", nil, "2026-04-01", "2026-06-30"),
        (.yearly, "2024-02-29", nil, "2025-03-01", "2026-02-28"),
        (.monthly, "2026-03-01T12:00:00Z", nil, "2026-04-01T12:00:00Z", "2026-05-01T11:59:59.999999999Z"),
        (.project, "2026-03-01", "2026-03-10", "2026-03-11", "2026-03-20"),
        (.monthly, "2026-03-01", "2026-03-15", "2026-03-16", "2026-03-30"),
        (.monthly, "2026-03-01", "2026-03-31", "2026-04-01", "2026-04-30"),
        (.unlimited, "2026-01-01", "2026-12-31", "2027-01-01", "2027-12-31"),
        (.project, "2026-03-01T00:00:00Z", "2026-03-01T05:59:59.999999999Z", "2026-03-01T06:00:00Z", "2026-03-01T11:59:59.999999999Z"),
        (.project, "2026-03-01", "2026-03-15T11:59:59Z", "2026-03-15T11:59:59.000000001Z", "2026-03-29T23:59:58.000000001Z"),
    ]

    @Test("successor renews by the calendar or by the same length", arguments: successors)
    func successor(type: BudgetType, start: String, end: String?, nextStart: String, nextEnd: String) throws {
        let period = try Period.make(type: type, start: spec(start), end: end.map { try spec($0) })
        let next = try #require(period.successor(type: type))
        #expect(next.start == period.endExclusive)
        #expect(next.startSpec.description == nextStart)
        #expect(next.endSpec?.description == nextEnd)
        #expect(next.startSpec == (try spec(nextStart)))
    }

    @Test("no successor beyond the representable range")
    func successorOutOfRange() throws {
        let last = try Period.make(type: .monthly, start: spec("2262-03-01"), end: nil)
        #expect(last.endExclusive?.rfc3339 == "2262-04-01T00:00:00Z")
        #expect(last.successor(type: .monthly) == nil)
        let long = try Period.make(type: .project, start: spec("2000-01-01"), end: spec("2199-12-31"))
        #expect(long.successor(type: .project) == nil)
    }

    static let specs: [(String, String, Bool)] = [
        ("2026-03-31", "2026-03-31", true),
        ("2026-03-31T10:00:00+02:00", "2026-03-31T08:00:00Z", false),
        ("2026-03-31t08:00:00.500z", "2026-03-31T08:00:00.5Z", false),
        ("1677-09-22", "1677-09-22", true),
        ("2262-04-11", "2262-04-11", true),
    ]

    @Test("DateSpec accepts a day or an RFC 3339 instant", arguments: specs)
    func dateSpecs(text: String, description: String, isDay: Bool) throws {
        let parsed = try spec(text)
        #expect(parsed.description == description)
        if case .day = parsed { #expect(isDay) } else { #expect(!isDay) }
    }

    static let badSpecs: [(String, String)] = [
        ("2026-02-30", "no such date"),
        ("9999-12-31", "out of range"),
        ("1677-09-21", "out of range"),
        ("2026-03-31T25:00:00Z", "hour out of range"),
        ("2026-03-31T08:00:00", "expected YYYY-MM-DDTHH:MM:SS"),
        ("abc", "expected YYYY-MM-DD or an RFC 3339 timestamp"),
        ("", "expected YYYY-MM-DD or an RFC 3339 timestamp"),
        ("2026-03-31 08:00:00Z", "expected YYYY-MM-DD or an RFC 3339 timestamp"),
        ("March 31", "expected YYYY-MM-DD or an RFC 3339 timestamp"),
    ]

    @Test("DateSpec rejects anything else", arguments: badSpecs)
    func badDateSpecs(text: String, message: String) {
        let error = #expect(throws: TimeError.self) { try spec(text) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    @Test("DateSpec bounds as start and inclusive end")
    func specBounds() throws {
        let day = try spec("2026-03-31")
        #expect(day.startInstant.rfc3339 == "2026-03-31T00:00:00Z")
        #expect(day.endExclusive.rfc3339 == "2026-04-01T00:00:00Z")
        let moment = try spec("2026-03-31T08:00:00Z")
        #expect(moment.startInstant.rfc3339 == "2026-03-31T08:00:00Z")
        #expect(moment.endExclusive.rfc3339 == "2026-03-31T08:00:00.000000001Z")
        #expect(DateSpec.instant(.max).endExclusive == .max)
        #expect(DateSpec.day(try CivilDate(parsing: "2262-04-11")).endExclusive == .max)
    }

    @Test("budget types", arguments: [
        (BudgetType.monthly, "MONTHLY", 1), (.quarterly, "QUARTERLY", 3), (.yearly, "YEARLY", 12),
        (.project, "PROJECT", nil), (.unlimited, "UNLIMITED", nil),
    ] as [(BudgetType, String, Int?)])
    func budgetTypes(type: BudgetType, raw: String, months: Int?) {
        #expect(type.rawValue == raw)
        #expect(BudgetType(rawValue: raw) == type)
        #expect(type.derivedMonths == months)
        #expect(BudgetType(rawValue: raw.lowercased()) == nil)
        #expect(BudgetType.allCases.count == 5)
    }
}
