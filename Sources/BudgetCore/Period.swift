// Budget periods (CONTRACT §4): how start and end dates become a half-open interval of
// instants, and how a period renews.

/// A budget's type, which decides the length of its period when no end date is given.
public enum BudgetType: String, Sendable, Hashable, CaseIterable {
    /// A calendar month from the start date, unless an end date is given.
    case monthly = "MONTHLY"
    /// Three calendar months from the start date, unless an end date is given.
    case quarterly = "QUARTERLY"
    /// Twelve calendar months from the start date, unless an end date is given.
    case yearly = "YEARLY"
    /// From the start date through an end date, which is required.
    case project = "PROJECT"
    /// From the start date, through an end date if one is given; never exceeded.
    case unlimited = "UNLIMITED"

    /// The calendar months a period of this type spans when no end date is given; nil for
    /// `PROJECT` (which needs an end) and `UNLIMITED` (which may have none).
    public var derivedMonths: Int? {
        switch self {
        case .monthly: return 1
        case .quarterly: return 3
        case .yearly: return 12
        case .project, .unlimited: return nil
        }
    }
}

/// How a client spelled a period bound: a whole UTC day or an instant. Kept so replies
/// echo the same kind.
public enum DateSpec: Sendable, Hashable, CustomStringConvertible {
    /// A whole UTC day, `YYYY-MM-DD`.
    case day(CivilDate)
    /// An RFC 3339 instant.
    case instant(Timestamp)

    /// Accepts `YYYY-MM-DD` or RFC 3339. A day must start at a representable instant
    /// (1677-09-22 … 2262-04-11), since a bound is only useful as one.
    @inlinable
    public init(parsing text: some StringProtocol) throws(TimeError) {
        self = try text.withContiguousUTF8 { DateSpec.parse($0) }.get()
    }

    /// The byte-level parser behind `init(parsing:)`.
    @usableFromInline
    static func parse(_ s: UnsafeBufferPointer<UInt8>) -> Result<DateSpec, TimeError> {
        // "YYYY-MM-DD" is exactly 10 bytes and every RFC 3339 timestamp is longer.
        if s.count == 10 {
            switch CivilDate.parse(s) {
            case .failure(let error):
                return .failure(error)
            case .success(let date):
                guard Timestamp(startOf: date) != nil else {
                    let range = "\(Timestamp.min.civilDate.addingDays(1)) … \(Timestamp.max.civilDate)"
                    return .failure(TimeError(message: "date \(date) out of range (\(range))"))
                }
                return .success(.day(date))
            }
        }
        switch Timestamp.parseRFC3339(s) {
        case .success(let instant):
            return .success(.instant(instant))
        case .failure(let error):
            // Only blame RFC 3339 details when the text was trying to be a timestamp.
            if s.count > 10, s[10] == UInt8(ascii: "T") || s[10] == UInt8(ascii: "t") { return .failure(error) }
            return .failure(TimeError(message: "invalid date \(TimeText.quoted(s)): expected YYYY-MM-DD or an RFC 3339 timestamp"))
        }
    }

    /// `2026-03-31` for a day, the canonical RFC 3339 text for an instant.
    public var description: String {
        switch self {
        case .day(let date): return date.description
        case .instant(let instant): return instant.rfc3339
        }
    }

    /// The first instant this bound covers as a start: 00:00:00Z of a day (clamped to
    /// ``Timestamp/min``…``Timestamp/max``), the instant itself otherwise.
    public var startInstant: Timestamp {
        switch self {
        case .day(let date): return date.startInstant
        case .instant(let instant): return instant
        }
    }

    /// The first instant after this bound read as an inclusive end (CONTRACT §4): the
    /// next day's 00:00:00Z for a day, one nanosecond later for an instant; clamped to
    /// ``Timestamp/max``.
    public var endExclusive: Timestamp {
        switch self {
        case .day(let date):
            guard Timestamp(startOf: date) != nil else { return date.startInstant }
            return date.addingDays(1).startInstant
        case .instant(let instant):
            return instant.checkedAdding(nanoseconds: 1) ?? .max
        }
    }
}

/// A budget's period: [start, endExclusive). `endExclusive` nil = open-ended (UNLIMITED
/// without an end).
///
/// `Period.make(type:start:startSpec, end:endSpec)` rebuilds the same period, so storing
/// the type and the two specs is enough to store a period.
public struct Period: Sendable, Hashable {
    /// The first instant of the period.
    public var start: Timestamp
    /// The first instant after the period; nil when it never ends.
    public var endExclusive: Timestamp?
    /// The start as the client spelled it.
    public var startSpec: DateSpec
    /// What replies show as `endDate`: for a day-start period without an explicit end the
    /// last included day; for an instant start the last instant (`endExclusive` − 1 ns);
    /// an explicit end as given; nil when open-ended.
    public var endSpec: DateSpec?

    private init(start: Timestamp, endExclusive: Timestamp?, startSpec: DateSpec, endSpec: DateSpec?) {
        self.start = start
        self.endExclusive = endExclusive
        self.startSpec = startSpec
        self.endSpec = endSpec
    }

    /// Derives a period per CONTRACT §4.
    ///
    /// - A start day begins at 00:00:00Z; an explicit end day runs through the end of that
    ///   day; an explicit RFC 3339 end is the period's last instant.
    /// - Without an end: MONTHLY, QUARTERLY and YEARLY end just before start + 1, 3 and 12
    ///   months, a day the target month lacks rolling over to the 1st of the next month
    ///   (`CivilDate.addingMonths`); an instant start keeps its time of day. PROJECT
    ///   throws "PROJECT budgets need an endDate"; UNLIMITED is open-ended.
    /// - Throws "endDate must not be before startDate", and an out-of-range error when a
    ///   bound is not a representable instant.
    public static func make(type: BudgetType, start: DateSpec, end: DateSpec?) throws(PeriodError) -> Period {
        let startInstant: Timestamp
        switch start {
        case .day(let date):
            guard let t = Timestamp(startOf: date) else { throw PeriodError(message: "startDate out of range") }
            startInstant = t
        case .instant(let t):
            startInstant = t
        }

        if let end {
            let endExclusive: Timestamp
            switch end {
            case .day(let date):
                // The first check keeps addingDays within CivilDate's range.
                guard Timestamp(startOf: date) != nil, let t = Timestamp(startOf: date.addingDays(1)) else {
                    throw PeriodError(message: "endDate out of range")
                }
                endExclusive = t
            case .instant(let t):
                guard let next = t.checkedAdding(nanoseconds: 1) else { throw PeriodError(message: "endDate out of range") }
                endExclusive = next
            }
            guard endExclusive > startInstant else {
                throw PeriodError(message: "endDate must not be before startDate")
            }
            return Period(start: startInstant, endExclusive: endExclusive, startSpec: start, endSpec: end)
        }

        guard let months = type.derivedMonths else {
            if type == .project { throw PeriodError(message: "PROJECT budgets need an endDate") }
            return Period(start: startInstant, endExclusive: nil, startSpec: start, endSpec: nil)
        }
        switch start {
        case .day(let date):
            let next = date.addingMonths(months)
            guard let endExclusive = Timestamp(startOf: next) else {
                throw PeriodError(message: "period end out of range")
            }
            return Period(start: startInstant, endExclusive: endExclusive, startSpec: start, endSpec: .day(next.addingDays(-1)))
        case .instant(let t):
            let (days, timeOfDay) = Timestamp.floorDivide(t.nanosecondsSinceEpoch, Timestamp.nanosPerDay)
            let next = CivilDate(daysSinceEpoch: days).addingMonths(months)
            let nanos = Int128(next.daysSinceEpoch) * Int128(Timestamp.nanosPerDay) + Int128(timeOfDay)
            // The last instant must be representable too, for endSpec.
            guard let exact = Int64(exactly: nanos) else { throw PeriodError(message: "period end out of range") }
            let endExclusive = Timestamp(nanosecondsSinceEpoch: exact)
            return Period(
                start: startInstant, endExclusive: endExclusive, startSpec: start,
                endSpec: .instant(endExclusive.adding(nanoseconds: -1))
            )
        }
    }

    /// Whether `t` lies in [start, endExclusive).
    public func covers(_ t: Timestamp) -> Bool {
        guard t >= start else { return false }
        guard let endExclusive else { return true }
        return t < endExclusive
    }

    /// The length in nanoseconds (nil when open-ended), used to order "shortest period
    /// first". Saturates at `Int64.max` for periods over ~292 years.
    public var length: Int64? {
        guard let endExclusive else { return nil }
        return endExclusive - start
    }

    /// The next period of the same type for auto-renewal, starting at `endExclusive`;
    /// nil when open-ended or when the next period would leave the representable range.
    ///
    /// The new start is a day when the old start was a day and the period ends at
    /// midnight, an instant otherwise. A period whose end was derived from its type
    /// (MONTHLY, QUARTERLY, YEARLY) renews by the same calendar rule from the new start
    /// (2026-01-31 → 2026-02-28 is followed by 2026-03-01 → 2026-03-31); any other
    /// (PROJECT, an explicit end) renews with the same length: in days for day periods,
    /// in nanoseconds otherwise.
    public func successor(type: BudgetType) -> Period? {
        guard let endExclusive else { return nil }
        let endsAtMidnight = Timestamp.floorDivide(endExclusive.nanosecondsSinceEpoch, Timestamp.nanosPerDay).remainder == 0
        let nextStart: DateSpec
        if case .day = startSpec, endsAtMidnight {
            nextStart = .day(endExclusive.civilDate)
        } else {
            nextStart = .instant(endExclusive)
        }

        if type.derivedMonths != nil, let derived = try? Period.make(type: type, start: startSpec, end: nil), derived == self {
            return try? Period.make(type: type, start: nextStart, end: nil)
        }
        switch nextStart {
        case .day(let date):
            // Both bounds are at midnight here, so the length is a whole number of days.
            let days = (endExclusive - start) / Timestamp.nanosPerDay
            return try? Period.make(type: type, start: nextStart, end: .day(date.addingDays(Int(days) - 1)))
        case .instant(let t):
            guard let length = length, let last = t.checkedAdding(nanoseconds: length - 1) else { return nil }
            return try? Period.make(type: type, start: nextStart, end: .instant(last))
        }
    }
}

/// Why a period could not be derived, with a message fit for a client.
public struct PeriodError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A human-readable reason, such as `endDate must not be before startDate`.
    public let message: String

    /// Creates an error with `message`.
    public init(message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
