// Money as integer nano-units (CONTRACT §2): exact, 128-bit, rounded once half-even.

/// An amount of money in integer nano-units (1e-9) in 128-bit arithmetic (CONTRACT §2:
/// resolution 1e-9, values up to 1e12 each; 21 significant digits).
///
/// The currency is not part of the value: a budget has one currency and conversion
/// happens before amounts meet.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The amount in units of 10⁻⁹.
    public var nanos: Int128

    /// Creates an amount of `nanos` × 10⁻⁹.
    public init(nanos: Int128) {
        self.nanos = nanos
    }

    /// No money.
    public static let zero = Money(nanos: 0)

    /// Nano-units in one unit of currency.
    public static let nanosPerUnit: Int128 = 1_000_000_000

    /// The largest amount a client may send: exactly 1e12.
    public static let maxValue = Money(nanos: 1_000_000_000_000 * nanosPerUnit)

    /// The scale of a nano-unit, for `ExactDecimal.roundedUnits(scale:)`.
    static let scale = 9

    /// Parses a decimal literal (JSON number text or a string, the grammar of
    /// `ExactDecimal.init(parsing:)`) exactly and rounds it once, half-even, to 1e-9.
    ///
    /// Throws for text that is not a number, `NaN`/`Infinity`, too many digits, or a value
    /// beyond the `Int128` nano range. It does not reject negative amounts or amounts over
    /// 1e12: use `parseAmount(_:)` for amounts sent by clients.
    @inlinable
    public init(parsing text: some StringProtocol) throws(MoneyError) {
        self = try text.withContiguousUTF8 { Money.parse($0) }.get()
    }

    /// The byte-level parser behind `init(parsing:)`.
    @usableFromInline
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<Money, MoneyError> {
        switch ExactDecimal.parse(bytes) {
        case .failure(let error): return .failure(MoneyError(message: error.message))
        case .success(let decimal): return Result { () throws(MoneyError) in try Money(decimal) }
        }
    }

    /// Rounds `decimal` once, half-even, to 1e-9. Throws when the result does not fit.
    public init(_ decimal: ExactDecimal) throws(MoneyError) {
        guard let nanos = decimal.roundedUnits(scale: Money.scale) else {
            throw MoneyError(message: "amount out of range")
        }
        self.nanos = nanos
    }

    /// Validates and parses an amount sent by a client (CONTRACT §2).
    ///
    /// Rejects what `init(parsing:)` rejects, negative values ("negative amount", also
    /// for tiny negatives that would round to zero) and values over 1e12, judged before
    /// rounding ("amount over 1e12": `1000000000000.0000000001` is rejected although it
    /// rounds to 1e12). 1e12 itself is allowed.
    @inlinable
    public static func parseAmount(_ text: some StringProtocol) throws(MoneyError) -> Money {
        try text.withContiguousUTF8 { Money.parseAmount(utf8: $0) }.get().money
    }

    /// The same, with the exact value as written (before its rounding to 1e-9).
    public static func parseAmountKeepingExact(_ text: some StringProtocol) throws(MoneyError) -> (money: Money, exact: ExactDecimal) {
        try text.withContiguousUTF8 { Money.parseAmount(utf8: $0) }.get()
    }

    /// The byte-level parser behind `parseAmount(_:)`.
    @usableFromInline
    static func parseAmount(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Result<(money: Money, exact: ExactDecimal), MoneyError> {
        let decimal: ExactDecimal
        switch ExactDecimal.parse(bytes) {
        case .success(let value):
            decimal = value
        case .failure(let error):
            // A literal whose exponent is out of range is still plainly too large or
            // negative; say that rather than blame the exponent.
            if error.kind == .tooLarge || error.kind == .tooSmall {
                if bytes.first == UInt8(ascii: "-") { return .failure(MoneyError(message: "negative amount")) }
                if error.kind == .tooLarge { return .failure(MoneyError(message: "amount over 1e12")) }
            }
            return .failure(MoneyError(message: error.message))
        }
        if decimal.isNegative { return .failure(MoneyError(message: "negative amount")) }
        if decimal > Money.maxDecimal { return .failure(MoneyError(message: "amount over 1e12")) }
        return Result { () throws(MoneyError) in (try Money(decimal), decimal) }
    }

    private static let maxDecimal = ExactDecimal(mantissa: 1, exponent: 12)

    /// The exact value as a decimal, for arithmetic with prices and rates.
    public var decimalValue: ExactDecimal {
        ExactDecimal(mantissa: nanos, exponent: -Money.scale)
    }
}

/// Why an amount was rejected, with a message fit for a client.
public struct MoneyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A human-readable reason, such as `negative amount`.
    public let message: String

    /// Creates an error with `message`.
    public init(message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

// MARK: - Arithmetic

extension Money {
    // The plain operators trap on overflow. Every amount that enters is at most 1e12
    // (1e21 nanos) while Int128 holds about 1.7e38, so a sum overflows only after some
    // 1.7e17 maximal amounts: not reachable by any ledger, hence a trap and not a throw.

    /// The sum; traps on `Int128` overflow (unreachable for amounts ≤ 1e12, see above).
    public static func + (lhs: Money, rhs: Money) -> Money {
        Money(nanos: lhs.nanos + rhs.nanos)
    }

    /// The difference; traps on `Int128` overflow (unreachable for amounts ≤ 1e12).
    public static func - (lhs: Money, rhs: Money) -> Money {
        Money(nanos: lhs.nanos - rhs.nanos)
    }

    /// Adds in place; traps on `Int128` overflow (unreachable for amounts ≤ 1e12).
    public static func += (lhs: inout Money, rhs: Money) {
        lhs.nanos += rhs.nanos
    }

    /// Subtracts in place; traps on `Int128` overflow (unreachable for amounts ≤ 1e12).
    public static func -= (lhs: inout Money, rhs: Money) {
        lhs.nanos -= rhs.nanos
    }

    /// The negated amount (for refunds and remainders); traps only for `Int128.min` nanos.
    public static prefix func - (operand: Money) -> Money {
        Money(nanos: -operand.nanos)
    }

    /// The amount multiplied by an integer (`rhs` times over); traps on `Int128` overflow.
    public static func * (lhs: Money, rhs: Int) -> Money {
        Money(nanos: lhs.nanos * Int128(rhs))
    }

    /// The sum, or nil when it does not fit in `Int128` nano-units.
    public func adding(_ other: Money) -> Money? {
        let (r, o) = nanos.addingReportingOverflow(other.nanos)
        return o ? nil : Money(nanos: r)
    }

    /// The difference, or nil when it does not fit in `Int128` nano-units.
    public func subtracting(_ other: Money) -> Money? {
        let (r, o) = nanos.subtractingReportingOverflow(other.nanos)
        return o ? nil : Money(nanos: r)
    }

    /// Orders by amount.
    public static func < (lhs: Money, rhs: Money) -> Bool {
        lhs.nanos < rhs.nanos
    }
}

// MARK: - Text and ratios

extension Money {
    /// Shortest exact decimal text: `0.001`, `1000000000000`, `0`, `-2.5`,
    /// `999999999999.999999999`. A valid JSON number literal, used for replies and
    /// storage; `Money(parsing:)` reads it back exactly over the whole `Int128` range.
    public var description: String {
        let (whole, fraction) = nanos.magnitude.quotientAndRemainder(dividingBy: UInt128(Money.nanosPerUnit))
        // Sign, up to 30 integer digits, point, 9 fraction digits.
        return String(asciiCapacity: 41) { out in
            if nanos < 0 { out.append(UInt8(ascii: "-")) }
            out.appendDigits(whole)
            if fraction != 0 {
                var digits = 9
                var trimmed = UInt64(truncatingIfNeeded: fraction)
                while trimmed % 10 == 0 {
                    trimmed /= 10
                    digits -= 1
                }
                out.append(UInt8(ascii: "."))
                out.appendDigits(trimmed, minimumWidth: digits)
            }
        }
    }

    /// The percentage of `total` that `self` is, rounded half-even to two decimals, as
    /// JSON number text: `81.3`, `100`, `0.01`, `133.33`. Exact integer arithmetic.
    ///
    /// `total` must be positive (a programmer error otherwise: callers report 0 for a
    /// budget without a total).
    public func percentage(of total: Money) -> String {
        precondition(total.nanos > 0, "percentage(of:) needs a positive total")
        let a = nanos.magnitude
        let b = total.nanos.magnitude
        // a/b × 100 in hundredths is a×10⁴/b = q×10⁴ + r×10⁴/b. The second term is
        // below 10⁴ but r×10⁴ may not fit in 128 bits, hence the full-width division.
        let (q, r) = a.quotientAndRemainder(dividingBy: b)
        let (u, v) = b.dividingFullWidth(r.multipliedFullWidth(by: 10_000))
        var hundredths = u
        let rest = b - v
        // q×10⁴ is even, so the parity that half-even looks at is that of `hundredths`.
        if v > rest || (v == rest && hundredths & 1 == 1) { hundredths += 1 }
        // Whole percent = q×100 + hundredths/100, built as text so a huge q cannot overflow.
        var wholeHigh = q
        var wholeLow = hundredths / 100
        let fraction = hundredths % 100
        if wholeLow == 100 {
            wholeHigh += 1
            wholeLow = 0
        }
        var text = ""
        if wholeHigh == 0 {
            text = String(wholeLow)
        } else {
            text = String(wholeHigh) + (wholeLow < 10 ? "0" : "") + String(wholeLow)
        }
        text += Self.hundredthsText(Int(fraction))
        if nanos < 0 && text != "0" { text = "-" + text }
        return text
    }

    /// The decimals of a percentage of `hundredths` (0…99) hundredths, without trailing zeros:
    /// `""`, `.5`, `.05`, `.25`.
    static func hundredthsText(_ hundredths: Int) -> String {
        if hundredths == 0 { return "" }
        return hundredths % 10 == 0 ? "." + String(hundredths / 10) : (hundredths < 10 ? ".0" : ".") + String(hundredths)
    }

    /// Whether `self` is at least `percent` % of `total`: `self × 100 ≥ percent × total`,
    /// compared exactly in 256-bit arithmetic.
    public func reaches(percent: Int, of total: Money) -> Bool {
        // Amounts under 2⁶³ nano-units (9.2 × 10⁹ units) and a percentage under 2³¹: both
        // products fit in 128 bits, compared without the 256-bit multiplication (~140
        // instructions each; the threshold checks run three of these pairs for every cost).
        let small: UInt128 = 1 << 63
        if nanos.magnitude < small, total.nanos.magnitude < small, percent >= 0, percent < 1 << 31 {
            return nanos &* 100 >= total.nanos &* Int128(percent)
        }
        let lhs = nanos.multipliedFullWidth(by: 100)
        let rhs = total.nanos.multipliedFullWidth(by: Int128(percent))
        // (signed high, unsigned low) orders like the 256-bit two's-complement value.
        if lhs.high != rhs.high { return lhs.high > rhs.high }
        return lhs.low >= rhs.low
    }
}
