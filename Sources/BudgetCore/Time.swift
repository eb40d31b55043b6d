// Instants, UTC calendar dates and RFC 3339 text (CONTRACT §2, §4), without Foundation.
//
// The calendar arithmetic is Howard Hinnant's days_from_civil / civil_from_days
// (https://howardhinnant.github.io/date_algorithms.html): exact integer formulas for the
// proleptic Gregorian calendar, with no time zone database because everything is UTC.

/// An instant as nanoseconds since 1970-01-01T00:00:00Z.
///
/// `Int64` nanoseconds span 1677-09-21T00:12:43.145224192Z … 2262-04-11T23:47:16.854775807Z
/// (``min`` … ``max``); parsing rejects anything outside.
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds since 1970-01-01T00:00:00Z; negative before it.
    public var nanosecondsSinceEpoch: Int64

    /// Creates the instant `nanosecondsSinceEpoch` after the epoch.
    public init(nanosecondsSinceEpoch: Int64) {
        self.nanosecondsSinceEpoch = nanosecondsSinceEpoch
    }

    /// Creates the instant `secondsSinceEpoch` after the epoch; traps outside ``min`` … ``max``.
    public init(secondsSinceEpoch: Int64) {
        self.init(nanosecondsSinceEpoch: secondsSinceEpoch * Timestamp.nanosPerSecond)
    }

    /// 00:00:00Z of `date`, or nil when that instant is outside ``min`` … ``max``.
    public init?(startOf date: CivilDate) {
        let nanos = Int128(date.daysSinceEpoch) * Int128(Timestamp.nanosPerDay)
        guard let exact = Int64(exactly: nanos) else { return nil }
        self.init(nanosecondsSinceEpoch: exact)
    }

    /// The earliest representable instant, 1677-09-21T00:12:43.145224192Z.
    public static let min = Timestamp(nanosecondsSinceEpoch: .min)

    /// The latest representable instant, 2262-04-11T23:47:16.854775807Z.
    public static let max = Timestamp(nanosecondsSinceEpoch: .max)

    static let nanosPerSecond: Int64 = 1_000_000_000
    static let nanosPerDay: Int64 = 86_400 * nanosPerSecond

    /// Orders instants in time.
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    /// The instant `nanoseconds` later (earlier when negative); traps outside ``min`` … ``max``.
    /// Use `checkedAdding(nanoseconds:)` with values derived from input.
    public func adding(nanoseconds: Int64) -> Timestamp {
        Timestamp(nanosecondsSinceEpoch: nanosecondsSinceEpoch + nanoseconds)
    }

    /// The instant `seconds` later (earlier when negative); traps outside ``min`` … ``max``.
    public func adding(seconds: Int64) -> Timestamp {
        adding(nanoseconds: seconds * Timestamp.nanosPerSecond)
    }

    /// The instant `nanoseconds` later, or nil when it is outside ``min`` … ``max``.
    public func checkedAdding(nanoseconds: Int64) -> Timestamp? {
        let (r, o) = nanosecondsSinceEpoch.addingReportingOverflow(nanoseconds)
        return o ? nil : Timestamp(nanosecondsSinceEpoch: r)
    }

    /// The nanoseconds from `rhs` to `lhs`.
    ///
    /// Saturates at `Int64.min`/`Int64.max` instead of trapping: two valid instants can be
    /// up to ~584 years apart, twice what `Int64` holds, and both may come from input
    /// (say a budget starting in 1700 measured at now), which must not crash the daemon.
    public static func - (lhs: Timestamp, rhs: Timestamp) -> Int64 {
        let (d, o) = lhs.nanosecondsSinceEpoch.subtractingReportingOverflow(rhs.nanosecondsSinceEpoch)
        if !o { return d }
        return lhs > rhs ? .max : .min
    }

    /// The UTC calendar date this instant falls on.
    public var civilDate: CivilDate {
        CivilDate(daysSinceEpoch: Timestamp.floorDivide(nanosecondsSinceEpoch, Timestamp.nanosPerDay).quotient)
    }

    /// Floor division (and the matching non-negative remainder), so that instants before
    /// 1970 land on the day they belong to.
    public static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        var (q, r) = a.quotientAndRemainder(dividingBy: b)
        if r < 0 {
            q -= 1
            r += b
        }
        return (q, r)
    }
}

/// Why a date or timestamp was rejected, with a message fit for a client.
public struct TimeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A human-readable reason, naming the offending text.
    public let message: String

    /// Creates an error with `message`.
    public init(message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

// MARK: - RFC 3339

extension Timestamp {
    /// Parses an RFC 3339 date-time: `2026-03-05T12:00:00Z`, `2026-03-05t12:00:00.5z`,
    /// `2026-03-05T14:00:00+02:00`.
    ///
    /// `T` and `Z` may be lower case; fractional seconds have 1…9 significant digits, and
    /// any number of zeros after them (a finer digit would be silently lost, so it is
    /// rejected); an offset `±HH:MM` is applied and
    /// the result is UTC, `-00:00` included. Rejected: a date alone (see
    /// `DateSpec`), a space instead of `T`, a missing offset, impossible dates
    /// (`2026-02-30`), hour 24, and leap second 60: an `Int64` instant has no room for
    /// it and smearing it silently would reorder events.
    @inlinable
    public init(rfc3339 text: some StringProtocol) throws(TimeError) {
        self = try text.withContiguousUTF8 { Timestamp.parseRFC3339($0) }.get()
    }

    /// The byte-level parser behind `init(rfc3339:)`.
    @usableFromInline
    static func parseRFC3339(_ s: UnsafeBufferPointer<UInt8>) -> Result<Timestamp, TimeError> {
        func fail(_ reason: String) -> Result<Timestamp, TimeError> {
            .failure(TimeError(message: "invalid timestamp \(TimeText.quoted(s)): \(reason)"))
        }
        let shape = "expected YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or ±HH:MM"
        let n = s.count
        guard n >= 20,
              s[4] == UInt8(ascii: "-"), s[7] == UInt8(ascii: "-"),
              s[10] == UInt8(ascii: "T") || s[10] == UInt8(ascii: "t"),
              s[13] == UInt8(ascii: ":"), s[16] == UInt8(ascii: ":"),
              let year = TimeText.digits(s, 0, 4), let month = TimeText.digits(s, 5, 2),
              let day = TimeText.digits(s, 8, 2), let hour = TimeText.digits(s, 11, 2),
              let minute = TimeText.digits(s, 14, 2), let second = TimeText.digits(s, 17, 2)
        else { return fail(shape) }

        var i = 19
        var fraction: Int64 = 0
        if s[i] == UInt8(ascii: ".") {
            i += 1
            var count = 0
            while i < n, TimeText.isDigit(s[i]) {
                count += 1
                if count > 9 {
                    // Zeros past the nanosecond change nothing; any other digit would be lost.
                    if s[i] != UInt8(ascii: "0") { return fail("more than 9 fractional digits (finer than a nanosecond)") }
                } else {
                    fraction = fraction * 10 + Int64(s[i] &- UInt8(ascii: "0"))
                }
                i += 1
            }
            if count == 0 { return fail(shape) }
            for _ in Swift.min(count, 9)..<9 { fraction *= 10 }
        }

        var offsetSeconds = 0
        guard i < n else { return fail(shape) }
        switch s[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard n - i >= 6, s[i + 3] == UInt8(ascii: ":"),
                  let offsetHour = TimeText.digits(s, i + 1, 2),
                  let offsetMinute = TimeText.digits(s, i + 4, 2)
            else { return fail(shape) }
            guard offsetHour <= 23, offsetMinute <= 59 else { return fail("offset out of range") }
            offsetSeconds = (offsetHour * 3600 + offsetMinute * 60) * (s[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        default:
            return fail(shape)
        }
        guard i == n else { return fail(shape) }

        guard let date = CivilDate(year: year, month: month, day: day) else { return fail("no such date") }
        guard hour <= 23 else { return fail("hour out of range") }
        guard minute <= 59 else { return fail("minute out of range") }
        if second == 60 { return fail("leap seconds are not supported") }
        guard second <= 59 else { return fail("second out of range") }

        // Int128 because Timestamp.min's whole seconds × 10⁹ alone is below Int64.min.
        let seconds = Int128(date.daysSinceEpoch) * 86_400 + Int128(hour * 3600 + minute * 60 + second - offsetSeconds)
        let nanos = seconds * Int128(Timestamp.nanosPerSecond) + Int128(fraction)
        guard let exact = Int64(exactly: nanos) else {
            return fail("outside the representable range \(Timestamp.min.rfc3339) … \(Timestamp.max.rfc3339)")
        }
        return .success(Timestamp(nanosecondsSinceEpoch: exact))
    }

    /// The canonical RFC 3339 spelling, used for equality of instants written as text:
    /// `2026-03-05T12:00:00Z`, with fractional seconds only when non-zero and their
    /// trailing zeros trimmed (`…:00.5Z`, `…:00.000000001Z`). Always UTC.
    public var rfc3339: String {
        let (days, nanoOfDay) = Timestamp.floorDivide(nanosecondsSinceEpoch, Timestamp.nanosPerDay)
        return Timestamp.rfc3339(days: days, nanoOfDay: nanoOfDay)
    }

    /// The RFC 3339 spelling of an instant past the range of `Timestamp` (2262-04-11), up to
    /// the last one RFC 3339 can write, 9999-12-31T23:59:59.999999999Z: later ones are that one.
    /// (`budget.get`'s projected end of a budget that spends slowly.)
    public static func rfc3339(nanosecondsSinceEpoch nanos: Int128) -> String {
        // 9999-12-31 is day 2,932,896 since 1970-01-01.
        let last = Int128(2_932_897) * Int128(nanosPerDay) - 1
        let n = Swift.min(Swift.max(nanos, 0), last)
        let (days, nanoOfDay) = n.quotientAndRemainder(dividingBy: Int128(nanosPerDay))
        return rfc3339(days: Int64(days), nanoOfDay: Int64(nanoOfDay))
    }

    static func rfc3339(days: Int64, nanoOfDay: Int64) -> String {
        let date = CivilDate(daysSinceEpoch: days)
        let (secondOfDay, fraction) = nanoOfDay.quotientAndRemainder(dividingBy: Timestamp.nanosPerSecond)
        // "YYYY-MM-DDTHH:MM:SS.fffffffffZ" is 30 bytes; years here have 4 digits.
        return String(asciiCapacity: 30) { out in
            date.write(into: &out)
            out.append(UInt8(ascii: "T"))
            out.appendDigits(UInt64(secondOfDay / 3600), minimumWidth: 2)
            out.append(UInt8(ascii: ":"))
            out.appendDigits(UInt64(secondOfDay / 60 % 60), minimumWidth: 2)
            out.append(UInt8(ascii: ":"))
            out.appendDigits(UInt64(secondOfDay % 60), minimumWidth: 2)
            if fraction != 0 {
                var digits = 9
                var trimmed = UInt64(fraction)
                while trimmed % 10 == 0 {
                    trimmed /= 10
                    digits -= 1
                }
                out.append(UInt8(ascii: "."))
                out.appendDigits(trimmed, minimumWidth: digits)
            }
            out.append(UInt8(ascii: "Z"))
        }
    }

    /// The canonical RFC 3339 spelling, `rfc3339`.
    public var description: String { rfc3339 }
}

// MARK: - Civil dates

/// A proleptic-Gregorian UTC calendar date (Howard Hinnant's days_from_civil /
/// civil_from_days).
///
/// Years run from −1,000,000 to 1,000,000, far beyond what an instant can express, so
/// calendar arithmetic itself never overflows; leaving that range traps.
public struct CivilDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The year (astronomical numbering: year 0 exists).
    public var year: Int
    /// The month, 1…12.
    public var month: Int
    /// The day of the month, 1…31.
    public var day: Int

    /// The date, or nil for an impossible one (`2026-02-30`, month 13) or a year beyond ±1,000,000.
    public init?(year: Int, month: Int, day: Int) {
        guard CivilDate.yearRange.contains(year), (1...12).contains(month),
              day >= 1, day <= CivilDate.daysInMonth(year: year, month: month)
        else { return nil }
        self.init(unchecked: year, month, day)
    }

    private init(unchecked year: Int, _ month: Int, _ day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    static let yearRange = -1_000_000...1_000_000
    static let dayRange = daysFromCivil(-1_000_000, 1, 1)...daysFromCivil(1_000_000, 12, 31)

    /// The date `daysSinceEpoch` days after 1970-01-01 (before it when negative).
    /// Traps beyond the supported years (±1,000,000).
    public init(daysSinceEpoch: Int64) {
        precondition(CivilDate.dayRange.contains(daysSinceEpoch), "CivilDate out of range")
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097                                      // [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365 // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)                // [0, 365]
        let mp = (5 * doy + 2) / 153                                     // [0, 11], March first
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(unchecked: Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    /// Days since 1970-01-01 (negative before it).
    public var daysSinceEpoch: Int64 {
        CivilDate.daysFromCivil(year, month, day)
    }

    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
        // Counting years from March puts the leap day last.
        let y = Int64(year) - (month <= 2 ? 1 : 0)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400                                              // [0, 399]
        let doy = (153 * Int64(month > 2 ? month - 3 : month + 9) + 2) / 5 + Int64(day) - 1 // [0, 365]
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy                      // [0, 146096]
        return era * 146_097 + doe - 719_468
    }

    static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Parses `YYYY-MM-DD` strictly: a 4-digit year, 2-digit month and day, a real date.
    @inlinable
    public init(parsing text: some StringProtocol) throws(TimeError) {
        self = try text.withContiguousUTF8 { CivilDate.parse($0) }.get()
    }

    /// The byte-level parser behind `init(parsing:)`.
    @usableFromInline
    static func parse(_ s: UnsafeBufferPointer<UInt8>) -> Result<CivilDate, TimeError> {
        guard s.count == 10, s[4] == UInt8(ascii: "-"), s[7] == UInt8(ascii: "-"),
              let year = TimeText.digits(s, 0, 4), let month = TimeText.digits(s, 5, 2),
              let day = TimeText.digits(s, 8, 2)
        else {
            return .failure(TimeError(message: "invalid date \(TimeText.quoted(s)): expected YYYY-MM-DD"))
        }
        guard let date = CivilDate(year: year, month: month, day: day) else {
            return .failure(TimeError(message: "invalid date \(TimeText.quoted(s)): no such date"))
        }
        return .success(date)
    }

    /// `2026-03-01`. Years outside 0…9999 are written with a sign (`+10000-01-01`,
    /// `-0001-01-01`), as ISO 8601 expanded years; parsing accepts 0…9999 only.
    public var description: String {
        String(asciiCapacity: 32) { write(into: &$0) }
    }

    /// `2026-03`, the month this date is in.
    public var monthString: String {
        String(asciiCapacity: 32) { out in
            writeYear(into: &out)
            out.append(UInt8(ascii: "-"))
            out.appendDigits(UInt64(month), minimumWidth: 2)
        }
    }

    /// Writes `YYYY-MM-DD` (at most 21 bytes, for a signed 7-digit year).
    func write(into out: inout ASCIIWriter) {
        writeYear(into: &out)
        out.append(UInt8(ascii: "-"))
        out.appendDigits(UInt64(month), minimumWidth: 2)
        out.append(UInt8(ascii: "-"))
        out.appendDigits(UInt64(day), minimumWidth: 2)
    }

    private func writeYear(into out: inout ASCIIWriter) {
        if year < 0 {
            out.append(UInt8(ascii: "-"))
        } else if year > 9999 {
            out.append(UInt8(ascii: "+"))
        }
        out.appendDigits(UInt64(year.magnitude), minimumWidth: 4)
    }

    /// 00:00:00Z of this date, clamped to ``Timestamp/min`` … ``Timestamp/max``.
    ///
    /// Clamping lets a far date used as a query bound (`9999-12-31`) mean "the end of
    /// time" instead of trapping; use `Timestamp(startOf:)` where an out-of-range date
    /// must be an error.
    public var startInstant: Timestamp {
        if let exact = Timestamp(startOf: self) { return exact }
        return year < 1970 ? .min : .max
    }

    /// Adds `n` calendar months (subtracts when negative), keeping the day of the month.
    ///
    /// A day that the target month lacks rolls over to the 1st of the following month
    /// (CONTRACT §4): 2026-01-31 + 1 month = 2026-03-01, 2024-02-29 + 12 months =
    /// 2025-03-01. The rule is the same going backwards: 2026-03-31 − 1 month = 2026-03-01.
    public func addingMonths(_ n: Int) -> CivilDate {
        let (total, overflow) = (year * 12 + (month - 1)).addingReportingOverflow(n)
        precondition(!overflow, "CivilDate out of range")
        var y = total / 12
        var m = total % 12
        if m < 0 {
            y -= 1
            m += 12
        }
        m += 1
        precondition(CivilDate.yearRange.contains(y), "CivilDate out of range")
        if day <= CivilDate.daysInMonth(year: y, month: m) {
            return CivilDate(unchecked: y, m, day)
        }
        // December has 31 days, so the rollover never leaves the year.
        return CivilDate(unchecked: y, m + 1, 1)
    }

    /// Adds `n` days (subtracts when negative). Traps beyond the supported years.
    public func addingDays(_ n: Int) -> CivilDate {
        CivilDate(daysSinceEpoch: daysSinceEpoch + Int64(n))
    }

    /// Orders dates in time.
    public static func < (lhs: CivilDate, rhs: CivilDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }
}

/// Small byte-level helpers shared by the date and timestamp parsers and writers.
enum TimeText {
    @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool {
        c &- UInt8(ascii: "0") < 10
    }

    /// The decimal value of `count` digits at `start`, or nil if any is not a digit.
    @inline(__always)
    static func digits(_ s: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int) -> Int? {
        guard start + count <= s.count else { return nil }
        var value = 0
        for k in start..<(start + count) {
            guard isDigit(s[k]) else { return nil }
            value = value * 10 + Int(s[k] &- UInt8(ascii: "0"))
        }
        return value
    }

    /// The offending text for a message, cut short so a huge input cannot bloat a reply.
    static func quoted(_ s: UnsafeBufferPointer<UInt8>) -> String {
        let limit = 40
        let text = String(decoding: UnsafeBufferPointer(rebasing: s[..<Swift.min(s.count, limit)]), as: UTF8.self)
        return "\"" + text + (s.count > limit ? "…" : "") + "\""
    }
}
