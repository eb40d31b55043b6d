import BudgetCore
import Testing

/// A deterministic generator, so property checks see the same inputs on every run.
private func date(_ year: Int, _ month: Int, _ day: Int) -> CivilDate {
    guard let date = CivilDate(year: year, month: month, day: day) else {
        preconditionFailure("test date \(year)-\(month)-\(day) is invalid")
    }
    return date
}

/// 2026-03-05T12:00:00Z, checked against `date -u -d … +%s`.
private let noonMarch5: Int64 = 1_772_712_000 * 1_000_000_000

struct TimeTests {
    static let instants: [(String, Int64)] = [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-03-05T12:00:00Z", noonMarch5),
        ("2026-03-05t12:00:00z", noonMarch5),
        ("2026-03-05T14:00:00+02:00", noonMarch5),
        ("2026-03-05T06:30:00-05:30", noonMarch5),
        ("2026-03-05T12:00:00-00:00", noonMarch5),
        ("2026-03-06T01:00:00+13:00", noonMarch5),
        ("2026-03-04T12:01:00-23:59", noonMarch5),
        ("2026-03-05T12:00:00.5Z", noonMarch5 + 500_000_000),
        ("2026-03-05T12:00:00.000000001Z", noonMarch5 + 1),
        ("2026-03-05T12:00:00.123456789Z", noonMarch5 + 123_456_789),
        ("2026-03-05T12:00:00.100Z", noonMarch5 + 100_000_000),
        ("2026-03-05T12:00:00.5000000000Z", noonMarch5 + 500_000_000),
        ("2026-03-05T12:00:00.123456789000Z", noonMarch5 + 123_456_789),
        ("2026-03-05T12:00:00.000000000000000000000Z", noonMarch5),
        ("2026-03-05T14:00:00.25+02:00", noonMarch5 + 250_000_000),
        ("1969-12-31T23:59:59.999999999Z", -1),
        ("2024-02-29T00:00:00Z", 19_782 * 86_400 * 1_000_000_000),
        ("1677-09-21T00:12:43.145224192Z", Int64.min),
        ("2262-04-11T23:47:16.854775807Z", Int64.max),
        ("2262-04-12T01:47:16.854775807+02:00", Int64.max),
    ]

    @Test("parses RFC 3339 and normalizes offsets to UTC", arguments: instants)
    func parses(text: String, nanos: Int64) throws {
        #expect(try Timestamp(rfc3339: text).nanosecondsSinceEpoch == nanos)
    }

    @Test("equal instants written differently are equal")
    func offsetsNormalize() throws {
        #expect(try Timestamp(rfc3339: "2026-03-05T14:00:00+02:00") == Timestamp(rfc3339: "2026-03-05T12:00:00Z"))
        #expect(try Timestamp(rfc3339: "2026-03-05T14:00:00+02:00").rfc3339 == "2026-03-05T12:00:00Z")
        #expect(try Timestamp(rfc3339: "2026-03-05T12:00:00.500000000Z").rfc3339 == "2026-03-05T12:00:00.5Z")
        #expect(Timestamp(secondsSinceEpoch: 1_772_712_000) == (try Timestamp(rfc3339: "2026-03-05T12:00:00Z")))
    }

    static let rejected: [(String, String)] = [
        ("2026-02-30T00:00:00Z", "no such date"),
        ("2026-02-29T00:00:00Z", "no such date"),
        ("1900-02-29T00:00:00Z", "no such date"),
        ("2026-13-01T00:00:00Z", "no such date"),
        ("2026-00-10T00:00:00Z", "no such date"),
        ("2026-04-31T00:00:00Z", "no such date"),
        ("2026-03-00T00:00:00Z", "no such date"),
        ("2026-03-05T24:00:00Z", "hour out of range"),
        ("2026-03-05T23:60:00Z", "minute out of range"),
        ("2026-03-05T23:59:60Z", "leap seconds are not supported"),
        ("2026-03-05T23:59:61Z", "second out of range"),
        ("2026-03-05T12:00:00.1234567891Z", "more than 9 fractional digits"),
        ("2026-03-05T12:00:00.0000000000001Z", "finer than a nanosecond"),
        ("2026-03-05T12:00:00+24:00", "offset out of range"),
        ("2026-03-05T12:00:00+02:60", "offset out of range"),
        ("2026-03-05", "expected YYYY-MM-DD"),
        ("2026-03-05T12:00:00", "expected YYYY-MM-DD"),
        ("2026-03-05T12:00", "expected YYYY-MM-DD"),
        ("2026-03-05 12:00:00Z", "expected YYYY-MM-DD"),
        ("2026-03-05T12:00:00.Z", "expected YYYY-MM-DD"),
        ("2026-03-05T12:00:00+0200", "expected YYYY-MM-DD"),
        ("2026-03-05T12:00:00+02", "expected YYYY-MM-DD"),
        ("2026-3-5T12:00:00Z", "expected YYYY-MM-DD"),
        ("2026-03-05T12:00:00Zjunk", "expected YYYY-MM-DD"),
        ("2026-03-05T12:00:00Z ", "expected YYYY-MM-DD"),
        (" 2026-03-05T12:00:00Z", "expected YYYY-MM-DD"),
        ("2026-03-05T1a:00:00Z", "expected YYYY-MM-DD"),
        ("+2026-03-05T12:00:00Z", "expected YYYY-MM-DD"),
        ("２026-03-05T12:00:00Z", "expected YYYY-MM-DD"),
        ("", "expected YYYY-MM-DD"),
        ("1677-09-21T00:12:43.145224191Z", "representable range"),
        ("2262-04-11T23:47:16.854775808Z", "representable range"),
        ("9999-12-31T23:59:59Z", "representable range"),
        ("0000-01-01T00:00:00Z", "representable range"),
    ]

    @Test("rejects malformed and impossible timestamps", arguments: rejected)
    func rejects(text: String, message: String) {
        let error = #expect(throws: TimeError.self) { try Timestamp(rfc3339: text) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    static let formatted: [(Int64, String)] = [
        (0, "1970-01-01T00:00:00Z"),
        (noonMarch5, "2026-03-05T12:00:00Z"),
        (noonMarch5 + 500_000_000, "2026-03-05T12:00:00.5Z"),
        (noonMarch5 + 1, "2026-03-05T12:00:00.000000001Z"),
        (noonMarch5 + 120_000_000, "2026-03-05T12:00:00.12Z"),
        (noonMarch5 + 86_399_000_000_000, "2026-03-06T11:59:59Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (-500_000_000, "1969-12-31T23:59:59.5Z"),
        (-86_400_000_000_000, "1969-12-31T00:00:00Z"),
        (Int64.min, "1677-09-21T00:12:43.145224192Z"),
        (Int64.max, "2262-04-11T23:47:16.854775807Z"),
    ]

    @Test("writes the canonical RFC 3339 form", arguments: formatted)
    func formats(nanos: Int64, text: String) {
        let instant = Timestamp(nanosecondsSinceEpoch: nanos)
        #expect(instant.rfc3339 == text)
        #expect(instant.description == text)
    }

    @Test("canonical text round-trips over the whole Int64 range")
    func roundTrip() throws {
        var random = SplitMix64(state: 3)
        for _ in 0..<5000 {
            let instant = Timestamp(nanosecondsSinceEpoch: Int64(bitPattern: random.next()))
            #expect(try Timestamp(rfc3339: instant.rfc3339) == instant)
        }
    }

    @Test("every day 1600…2100 matches a naive day-by-day calendar")
    func civilDaysAgainstNaiveCalendar() {
        func naiveLength(_ year: Int, _ month: Int) -> Int {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        }
        var (year, month, day) = (1600, 1, 1)
        var days: Int64 = -135_140  // 1600-01-01, checked against `date -u`
        var mismatches = 0
        while year <= 2100 {
            let civil = CivilDate(daysSinceEpoch: days)
            if civil.year != year || civil.month != month || civil.day != day { mismatches += 1 }
            if date(year, month, day).daysSinceEpoch != days { mismatches += 1 }
            day += 1
            if day > naiveLength(year, month) {
                day = 1
                month += 1
                if month > 12 {
                    month = 1
                    year += 1
                }
            }
            days += 1
        }
        #expect(mismatches == 0)
        #expect(days == 47_847)  // 2101-01-01
    }

    @Test("known anchors", arguments: [
        (1970, 1, 1, 0), (2000, 3, 1, 11_017), (2024, 2, 29, 19_782), (2026, 3, 5, 20_517),
        (1600, 1, 1, -135_140), (2100, 12, 31, 47_846), (0, 3, 1, -719_468),
    ] as [(Int, Int, Int, Int64)])
    func anchors(year: Int, month: Int, day: Int, days: Int64) {
        #expect(date(year, month, day).daysSinceEpoch == days)
        #expect(CivilDate(daysSinceEpoch: days) == date(year, month, day))
    }

    @Test("days and dates round-trip far from today")
    func farRoundTrip() {
        var failures = 0
        for days in stride(from: Int64(-364_000_000), through: 364_000_000, by: 9973) {
            let civil = CivilDate(daysSinceEpoch: days)
            if civil.daysSinceEpoch != days || CivilDate(year: civil.year, month: civil.month, day: civil.day) != civil {
                failures += 1
            }
        }
        #expect(failures == 0)
    }

    static let validDates: [(Int, Int, Int, Bool)] = [
        (2026, 2, 29, false), (2024, 2, 29, true), (1900, 2, 29, false), (2000, 2, 29, true),
        (2026, 0, 1, false), (2026, 13, 1, false), (2026, 1, 0, false), (2026, 1, 32, false),
        (2026, 4, 31, false), (2026, 4, 30, true), (2026, 12, 31, true), (2_000_000, 1, 1, false),
        (-4713, 11, 24, true),
    ]

    @Test("CivilDate validates", arguments: validDates)
    func validation(year: Int, month: Int, day: Int, valid: Bool) {
        #expect((CivilDate(year: year, month: month, day: day) != nil) == valid)
    }

    static let parsedDates: [(String, Int, Int, Int)] = [
        ("2026-03-01", 2026, 3, 1), ("2024-02-29", 2024, 2, 29), ("0000-01-01", 0, 1, 1), ("9999-12-31", 9999, 12, 31),
    ]

    @Test("parses YYYY-MM-DD", arguments: parsedDates)
    func parsesDate(text: String, year: Int, month: Int, day: Int) throws {
        let parsed = try CivilDate(parsing: text)
        #expect(parsed == date(year, month, day))
        #expect(parsed.description == text)
    }

    static let badDates: [(String, String)] = [
        ("2026-3-1", "expected YYYY-MM-DD"),
        ("2026-02-29", "no such date"),
        ("2026-03-01T00:00:00Z", "expected YYYY-MM-DD"),
        ("20260301", "expected YYYY-MM-DD"),
        ("2026/03/01", "expected YYYY-MM-DD"),
        ("", "expected YYYY-MM-DD"),
        ("2026-03-1a", "expected YYYY-MM-DD"),
        ("-026-03-01", "expected YYYY-MM-DD"),
        ("2026-03-01 ", "expected YYYY-MM-DD"),
    ]

    @Test("rejects malformed dates", arguments: badDates)
    func rejectsDate(text: String, message: String) {
        let error = #expect(throws: TimeError.self) { try CivilDate(parsing: text) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    static let monthSteps: [(String, Int, String)] = [
        ("2026-01-31", 1, "2026-03-01"),
        ("2024-01-31", 1, "2024-03-01"),
        ("2024-01-29", 1, "2024-02-29"),
        ("2026-01-28", 1, "2026-02-28"),
        ("2026-03-01", 1, "2026-04-01"),
        ("2026-05-31", 1, "2026-07-01"),
        ("2026-08-31", 1, "2026-10-01"),
        ("2026-12-31", 1, "2027-01-31"),
        ("2026-12-15", 1, "2027-01-15"),
        ("2026-01-01", 3, "2026-04-01"),
        ("2026-11-30", 3, "2027-03-01"),
        ("2024-02-29", 12, "2025-03-01"),
        ("2024-02-29", 48, "2028-02-29"),
        ("2026-03-31", -1, "2026-03-01"),
        ("2026-01-15", -1, "2025-12-15"),
        ("2026-01-15", -13, "2024-12-15"),
        ("2026-01-15", 0, "2026-01-15"),
    ]

    @Test("addingMonths rolls a missing day over to the 1st of the next month", arguments: monthSteps)
    func addingMonths(start: String, months: Int, expected: String) throws {
        #expect(try CivilDate(parsing: start).addingMonths(months).description == expected)
    }

    static let daySteps: [(String, Int, String)] = [
        ("2026-02-28", 1, "2026-03-01"), ("2024-02-28", 1, "2024-02-29"), ("2026-12-31", 1, "2027-01-01"),
        ("2026-01-01", -1, "2025-12-31"), ("2026-03-01", 365, "2027-03-01"), ("1970-01-01", -1, "1969-12-31"),
    ]

    @Test("addingDays crosses months and years", arguments: daySteps)
    func addingDays(start: String, days: Int, expected: String) throws {
        #expect(try CivilDate(parsing: start).addingDays(days).description == expected)
    }

    @Test("text forms of dates")
    func dateText() {
        #expect(date(2026, 3, 1).description == "2026-03-01")
        #expect(date(2026, 3, 1).monthString == "2026-03")
        #expect(date(5, 1, 9).description == "0005-01-09")
        #expect(date(-1, 1, 1).description == "-0001-01-01")
        #expect(date(10000, 1, 1).description == "+10000-01-01")
        #expect(date(2026, 12, 31) < date(2027, 1, 1))
        #expect(date(2026, 2, 1) > date(2026, 1, 31))
    }

    @Test("instants and dates convert both ways")
    func instantDates() throws {
        #expect(Timestamp(nanosecondsSinceEpoch: -1).civilDate == date(1969, 12, 31))
        #expect(Timestamp(nanosecondsSinceEpoch: 0).civilDate == date(1970, 1, 1))
        #expect(Timestamp.min.civilDate == date(1677, 9, 21))
        #expect(Timestamp.max.civilDate == date(2262, 4, 11))
        #expect(try Timestamp(rfc3339: "2026-03-05T23:59:59.999999999Z").civilDate == date(2026, 3, 5))
        #expect(date(2026, 3, 5).startInstant.rfc3339 == "2026-03-05T00:00:00Z")
        #expect(Timestamp(startOf: date(1677, 9, 22)) != nil)
        #expect(Timestamp(startOf: date(1677, 9, 21)) == nil)
        #expect(Timestamp(startOf: date(2262, 4, 12)) == nil)
        #expect(date(1677, 9, 21).startInstant == Timestamp.min)
        #expect(date(9999, 12, 31).startInstant == Timestamp.max)
    }

    @Test("instant arithmetic")
    func arithmetic() throws {
        let noon = try Timestamp(rfc3339: "2026-03-05T12:00:00Z")
        #expect(noon.adding(seconds: 3600).rfc3339 == "2026-03-05T13:00:00Z")
        #expect(noon.adding(nanoseconds: -1).rfc3339 == "2026-03-05T11:59:59.999999999Z")
        #expect(noon.adding(seconds: 3600) - noon == 3_600_000_000_000)
        #expect(noon - noon.adding(seconds: 1) == -1_000_000_000)
        #expect(Timestamp.max - Timestamp.min == Int64.max)
        #expect(Timestamp.min - Timestamp.max == Int64.min)
        #expect(Timestamp.max.checkedAdding(nanoseconds: 1) == nil)
        #expect(Timestamp.min.checkedAdding(nanoseconds: -1) == nil)
        #expect(noon.checkedAdding(nanoseconds: 5) == noon.adding(nanoseconds: 5))
        #expect(noon < noon.adding(nanoseconds: 1))
    }
}

extension TimeTests {
    @Test("instants past Timestamp's range are written as RFC 3339 up to 9999-12-31T23:59:59.999999999Z; within it, as Timestamp writes them")
    func rfc3339PastTheRange() {
        var rng = SplitMix64(state: 2262)
        for _ in 0..<2_000 {
            let n = Int64.random(in: 0...Int64.max, using: &rng)
            #expect(Timestamp.rfc3339(nanosecondsSinceEpoch: Int128(n)) == Timestamp(nanosecondsSinceEpoch: n).rfc3339)
        }
        let day: Int128 = 86_400 * 1_000_000_000
        #expect(Timestamp.rfc3339(nanosecondsSinceEpoch: Int128(Int64.max) + 1) == "2262-04-11T23:47:16.854775808Z")
        #expect(Timestamp.rfc3339(nanosecondsSinceEpoch: 2_932_896 * day) == "9999-12-31T00:00:00Z")
        #expect(Timestamp.rfc3339(nanosecondsSinceEpoch: 2_932_897 * day - 1) == "9999-12-31T23:59:59.999999999Z")
        #expect(Timestamp.rfc3339(nanosecondsSinceEpoch: 2_932_897 * day) == "9999-12-31T23:59:59.999999999Z")
        #expect(Timestamp.rfc3339(nanosecondsSinceEpoch: .max) == "9999-12-31T23:59:59.999999999Z")
    }
}
