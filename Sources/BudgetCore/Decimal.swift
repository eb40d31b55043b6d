// Exact decimal arithmetic for prices, quantities and rates (CONTRACT §2, §3).
//
// No Foundation and no binary floating point: a value is an `Int128` mantissa scaled by a
// power of ten, so "0.1" is exactly one tenth and a cost is rounded only once, when it
// becomes `Money`.

/// An exact decimal: `mantissa` × 10^`exponent`. Used for prices and quantities; never
/// floating point.
///
/// Values are not kept normalized (150 × 10⁻² and 15 × 10⁻¹ may both occur), but `==`,
/// `hash(into:)` and the ordering compare values, so `1.50 == 1.5`.
public struct ExactDecimal: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The signed significant digits.
    public var mantissa: Int128
    /// The power of ten that scales `mantissa`.
    public var exponent: Int

    /// Creates `mantissa` × 10^`exponent`.
    public init(mantissa: Int128, exponent: Int) {
        self.mantissa = mantissa
        self.exponent = exponent
    }

    /// Creates the decimal equal to `integer`.
    public init(_ integer: Int) {
        self.init(mantissa: Int128(integer), exponent: 0)
    }

    /// Zero.
    public static let zero = ExactDecimal(mantissa: 0, exponent: 0)

    /// The largest |exponent| (of the normalized value) that `init(parsing:)` accepts.
    ///
    /// `description` writes values without an exponent, so without a bound an 8-byte
    /// literal such as `1e999999999` would expand into a gigabyte of zeros wherever a
    /// value is written back (canonical JSON, replies). No price, quantity or amount
    /// comes near 10^±1000.
    public static let parsedExponentLimit = 1000

    /// Whether the value is below zero.
    public var isNegative: Bool { mantissa < 0 }

    /// Whether the value is zero (whatever its exponent).
    public var isZero: Bool { mantissa == 0 }

    /// The same value with trailing zeros moved from the mantissa into the exponent;
    /// zero is `0 × 10⁰`. Two equal values have identical normalized forms.
    public var normalized: ExactDecimal {
        if mantissa == 0 { return .zero }
        var m = mantissa
        var e = exponent
        while e < Int.max {
            let (q, r) = m.quotientAndRemainder(dividingBy: 10)
            if r != 0 { break }
            m = q
            e += 1
        }
        return ExactDecimal(mantissa: m, exponent: e)
    }
}

/// Why a decimal literal was rejected, with a message fit for a client.
public struct DecimalError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A human-readable reason, such as `too many digits`.
    public let message: String

    /// What went wrong, so that `Money` can phrase an out-of-range literal as an amount
    /// error ("amount over 1e12") rather than as an exponent error.
    enum Kind: Sendable, Hashable {
        case syntax, nonFinite, tooManyDigits, tooLarge, tooSmall
    }

    let kind: Kind

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

// MARK: - Powers of ten

/// 10⁰ … 10³⁸: every power of ten that fits in `UInt128`; all of them fit in `Int128` too.
enum PowersOfTen {
    static let uint128: [UInt128] = {
        var table: [UInt128] = [1]
        table.reserveCapacity(39)
        for _ in 1...38 { table.append(table[table.count - 1] * 10) }
        return table
    }()

    /// The largest k with 10^k representable in `Int128` (10³⁸ < 2¹²⁷ ≈ 1.7 × 10³⁸).
    static let maxInt128Exponent = 38

    /// 10^k as `Int128`, for 0 ≤ k ≤ 38.
    @inline(__always)
    static func int128(_ k: Int) -> Int128 { Int128(uint128[k]) }
}

extension StringProtocol {
    /// Runs `body` over the UTF-8 bytes of `self`, without copying when the storage is
    /// already contiguous (native strings and their substrings).
    ///
    /// The public parsers that take `some StringProtocol` are `@inlinable` shells around
    /// this and a non-generic byte parser: unspecialized generic code looks up type
    /// metadata at run time on every call, which costed more than the parsing itself.
    @inlinable
    func withContiguousUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable(body) { return result }
        let copy = Array(utf8)
        return copy.withUnsafeBufferPointer(body)
    }
}

/// Writes ASCII text into a buffer of known capacity, to build short strings (amounts,
/// instants) without intermediate arrays. Writing past the capacity is a programming
/// error (unchecked in release builds), so callers size the buffer for the worst case.
struct ASCIIWriter {
    let buffer: UnsafeMutableBufferPointer<UInt8>
    var count = 0

    init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        buffer[count] = byte
        count += 1
    }

    mutating func append(repeating byte: UInt8, count n: Int) {
        for _ in 0..<n { append(byte) }
    }

    /// The decimal digits of `value`, left-padded with zeros to `minimumWidth`.
    mutating func appendDigits(_ value: UInt64, minimumWidth: Int = 1) {
        var width = 1
        var rest = value / 10
        while rest != 0 {
            width += 1
            rest /= 10
        }
        width = Swift.max(width, minimumWidth)
        var v = value
        var i = count + width - 1
        while i >= count {
            buffer[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
            v /= 10
            i -= 1
        }
        count += width
    }

    /// The decimal digits of `value`, left-padded with zeros to `minimumWidth` (≤ 19).
    mutating func appendDigits(_ value: UInt128, minimumWidth: Int = 1) {
        if let small = UInt64(exactly: value) {
            appendDigits(small, minimumWidth: minimumWidth)
            return
        }
        // 19-digit chunks keep the costly 128-bit division to one or two per number.
        let (high, low) = value.quotientAndRemainder(dividingBy: 10_000_000_000_000_000_000)
        appendDigits(high)
        appendDigits(UInt64(truncatingIfNeeded: low), minimumWidth: 19)
    }
}

extension String {
    /// A string of at most `capacity` ASCII bytes written by `body`.
    ///
    /// Written on the stack, then made into a string of its length: one of at most 15 bytes (an
    /// amount such as `0.001234567`) is then held inline, with no allocation. Initializing a
    /// string of the full capacity in place allocated that capacity first, whatever the length
    /// (issue 8: each stored event's cost text was one of its allocations).
    init(asciiCapacity capacity: Int, _ body: (inout ASCIIWriter) -> Void) {
        self = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            var writer = ASCIIWriter(buffer)
            body(&writer)
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<writer.count]), as: UTF8.self)
        }
    }
}

// MARK: - Parsing

extension ExactDecimal {
    /// Parses a JSON-number literal (also used for amounts sent as strings): `12`, `-0.5`,
    /// `1.5e-7`, `2E+3`, `0.0000025`.
    ///
    /// The grammar is exactly RFC 8259's number: no leading `+`, no leading zeros (`01`),
    /// no bare `.5` or `1.`, no spaces, no hex. `NaN`, `Infinity` and their kin are
    /// rejected as "not a finite number". Nothing is rounded: a literal whose significant
    /// digits do not fit in `Int128` is rejected ("too many digits"), though trailing
    /// zeros never count (`1.000…0` with any number of zeros is fine), and so is a value
    /// whose normalized exponent is beyond ±``parsedExponentLimit`` (zero is always fine).
    @inlinable
    public init(parsing text: some StringProtocol) throws(DecimalError) {
        self = try text.withContiguousUTF8 { ExactDecimal.parse($0) }.get()
    }

    /// The parser behind `init(parsing:)`, over raw bytes so JSON number literals parse
    /// without building a `String` first.
    @usableFromInline
    static func parse(_ s: UnsafeBufferPointer<UInt8>) -> Result<ExactDecimal, DecimalError> {
        let n = s.count
        guard n > 0 else { return .failure(DecimalError(.syntax, "empty number")) }
        var i = 0
        let negative = s[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        guard i < n, isDigit(s[i]) else {
            if isNonFinite(s, from: i) {
                return .failure(DecimalError(.nonFinite, "not a finite number: \(quoted(s))"))
            }
            return .failure(syntaxError(s))
        }

        // Significant digits accumulate in `magnitude`; zeros are held back in
        // `pendingZeros` until a non-zero digit follows, so trailing zeros never overflow
        // the mantissa and simply move into the exponent.
        var magnitude: UInt128 = 0
        var pendingZeros = 0
        var exponent = 0
        var overflow = false

        @inline(__always)
        func push(_ digit: UInt8) {
            let d = UInt128(digit &- UInt8(ascii: "0"))
            if d == 0 {
                if magnitude != 0 { pendingZeros += 1 }
                return
            }
            if overflow { return }
            let shift = pendingZeros + 1
            pendingZeros = 0
            guard shift <= PowersOfTen.maxInt128Exponent else {
                overflow = true
                return
            }
            let (scaled, o1) = magnitude.multipliedReportingOverflow(by: PowersOfTen.uint128[shift])
            let (sum, o2) = scaled.addingReportingOverflow(d)
            if o1 || o2 { overflow = true } else { magnitude = sum }
        }

        // Integer part: "0" or a non-zero digit followed by digits.
        if s[i] == UInt8(ascii: "0") {
            i += 1
            if i < n, isDigit(s[i]) {
                return .failure(DecimalError(.syntax, "leading zeros are not allowed: \(quoted(s))"))
            }
        } else {
            while i < n, isDigit(s[i]) {
                push(s[i])
                i += 1
            }
        }
        // Fraction: each digit after the point scales the value down by ten.
        if i < n, s[i] == UInt8(ascii: ".") {
            i += 1
            guard i < n, isDigit(s[i]) else { return .failure(syntaxError(s)) }
            while i < n, isDigit(s[i]) {
                push(s[i])
                exponent -= 1
                i += 1
            }
        }
        // Exponent: saturates far beyond any accepted value, so it cannot overflow `Int`.
        if i < n, s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E") {
            let exponentNegative = skipExponentMark(s, &i)
            guard i < n, isDigit(s[i]) else { return .failure(syntaxError(s)) }
            var value = 0
            while i < n, isDigit(s[i]) {
                if value < 1_000_000_000 { value = value * 10 + Int(s[i] &- UInt8(ascii: "0")) }
                i += 1
            }
            exponent += exponentNegative ? -value : value
        }
        guard i == n else { return .failure(syntaxError(s)) }

        if overflow {
            return .failure(DecimalError(.tooManyDigits, "too many digits: \(quoted(s))"))
        }
        if magnitude == 0 { return .success(.zero) }
        exponent += pendingZeros
        if exponent > parsedExponentLimit {
            return .failure(DecimalError(.tooLarge, "number out of range: \(quoted(s))"))
        }
        if exponent < -parsedExponentLimit {
            return .failure(DecimalError(.tooSmall, "number out of range: \(quoted(s))"))
        }
        // A negative mantissa may reach 2¹²⁷ (Int128.min); a positive one only 2¹²⁷ − 1.
        let limit: UInt128 = negative ? UInt128(Int128.max) + 1 : UInt128(Int128.max)
        guard magnitude <= limit else {
            return .failure(DecimalError(.tooManyDigits, "too many digits: \(quoted(s))"))
        }
        let mantissa = negative
            ? Int128(truncatingIfNeeded: 0 &- magnitude)
            : Int128(truncatingIfNeeded: magnitude)
        return .success(ExactDecimal(mantissa: mantissa, exponent: exponent))
    }

    /// Past the `e` or `E` at `i` and the sign after it, if any; whether that sign is `-`.
    @inline(__always)
    private static func skipExponentMark(_ s: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Bool {
        i += 1
        guard i < s.count, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") else { return false }
        i += 1
        return s[i - 1] == UInt8(ascii: "-")
    }

    @inline(__always)
    private static func isDigit(_ c: UInt8) -> Bool {
        c &- UInt8(ascii: "0") < 10
    }

    /// Recognizes the spellings other languages print for non-finite floats, to give a
    /// clearer message than a syntax error.
    private static func isNonFinite(_ s: UnsafeBufferPointer<UInt8>, from start: Int) -> Bool {
        let rest = String(decoding: UnsafeBufferPointer(rebasing: s[start...]), as: UTF8.self)
        switch rest.lowercased() {
        case "nan", "inf", "infinity", "+inf", "+infinity", "+nan": return true
        default: return false
        }
    }

    private static func syntaxError(_ s: UnsafeBufferPointer<UInt8>) -> DecimalError {
        DecimalError(.syntax, "not a decimal number: \(quoted(s))")
    }

    /// The offending text for a message, cut short so a huge input cannot bloat a reply.
    private static func quoted(_ s: UnsafeBufferPointer<UInt8>) -> String {
        let limit = 40
        let cut = s.count > limit
        let text = String(decoding: UnsafeBufferPointer(rebasing: s[..<min(s.count, limit)]), as: UTF8.self)
        return "\"" + text + (cut ? "…" : "") + "\""
    }
}

// MARK: - Equality, hashing, ordering

extension ExactDecimal {
    /// Value equality: `1.50 == 1.5`.
    public static func == (lhs: ExactDecimal, rhs: ExactDecimal) -> Bool {
        if lhs.exponent == rhs.exponent { return lhs.mantissa == rhs.mantissa }
        return compare(lhs, rhs) == 0
    }

    /// Hashes the normalized value, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        let n = normalized
        hasher.combine(n.mantissa)
        hasher.combine(n.exponent)
    }

    /// Value ordering.
    public static func < (lhs: ExactDecimal, rhs: ExactDecimal) -> Bool {
        compare(lhs, rhs) < 0
    }

    /// -1, 0 or 1, comparing values exactly whatever the exponents.
    static func compare(_ a: ExactDecimal, _ b: ExactDecimal) -> Int {
        let sa = a.mantissa.signum()
        let sb = b.mantissa.signum()
        if sa != sb { return sa < sb ? -1 : 1 }
        if sa == 0 { return 0 }
        if a.exponent == b.exponent { return threeWay(a.mantissa, b.mantissa) }
        // Bring the larger exponent down to the smaller one. If that overflows, its
        // magnitude exceeds Int128.max × 10^smaller ≥ the other's, so the sign decides.
        if a.exponent > b.exponent {
            guard let scaled = scale(a.mantissa, up: a.exponent.subtractingReportingOverflow(b.exponent))
            else { return Int(sa) }
            return threeWay(scaled, b.mantissa)
        } else {
            guard let scaled = scale(b.mantissa, up: b.exponent.subtractingReportingOverflow(a.exponent))
            else { return -Int(sb) }
            return threeWay(a.mantissa, scaled)
        }
    }

    @inline(__always)
    private static func threeWay(_ x: Int128, _ y: Int128) -> Int {
        x < y ? -1 : (x == y ? 0 : 1)
    }

    /// `m` × 10^k, or nil when it does not fit (or k itself overflowed).
    static func scale(_ m: Int128, up k: (partialValue: Int, overflow: Bool)) -> Int128? {
        if m == 0 { return 0 }
        guard !k.overflow, k.partialValue >= 0, k.partialValue <= PowersOfTen.maxInt128Exponent else {
            return nil
        }
        let (r, o) = m.multipliedReportingOverflow(by: PowersOfTen.int128(k.partialValue))
        return o ? nil : r
    }
}

// MARK: - Arithmetic

extension ExactDecimal {
    /// The exact sum, and whether it did not fit (then `value` is meaningless).
    ///
    /// Operands are aligned to the smaller exponent; a sum of values too far apart in
    /// scale to share a 128-bit mantissa (say 10³⁰ + 10⁻³⁰) reports overflow.
    public func addingReportingOverflow(_ other: ExactDecimal) -> (value: ExactDecimal, overflow: Bool) {
        if let r = ExactDecimal.combine(self, other, subtract: false) { return (r, false) }
        // Trailing zeros may be what made it overflow; retry once without them.
        if let r = ExactDecimal.combine(normalized, other.normalized, subtract: false) { return (r, false) }
        return (.zero, true)
    }

    /// The exact difference, and whether it did not fit (then `value` is meaningless).
    public func subtractingReportingOverflow(_ other: ExactDecimal) -> (value: ExactDecimal, overflow: Bool) {
        if let r = ExactDecimal.combine(self, other, subtract: true) { return (r, false) }
        if let r = ExactDecimal.combine(normalized, other.normalized, subtract: true) { return (r, false) }
        return (.zero, true)
    }

    /// The exact product, and whether it did not fit (then `value` is meaningless).
    public func multipliedReportingOverflow(by other: ExactDecimal) -> (value: ExactDecimal, overflow: Bool) {
        if let r = ExactDecimal.product(self, other) { return (r, false) }
        if let r = ExactDecimal.product(normalized, other.normalized) { return (r, false) }
        return (.zero, true)
    }

    private static func combine(_ a: ExactDecimal, _ b: ExactDecimal, subtract: Bool) -> ExactDecimal? {
        if b.mantissa == 0 { return a }
        if a.mantissa == 0 {
            if !subtract { return b }
            let (m, o) = Int128(0).subtractingReportingOverflow(b.mantissa)
            return o ? nil : ExactDecimal(mantissa: m, exponent: b.exponent)
        }
        var am = a.mantissa
        var bm = b.mantissa
        let exponent = min(a.exponent, b.exponent)
        if a.exponent > exponent {
            guard let s = scale(am, up: a.exponent.subtractingReportingOverflow(exponent)) else { return nil }
            am = s
        } else if b.exponent > exponent {
            guard let s = scale(bm, up: b.exponent.subtractingReportingOverflow(exponent)) else { return nil }
            bm = s
        }
        let (m, o) = subtract ? am.subtractingReportingOverflow(bm) : am.addingReportingOverflow(bm)
        return o ? nil : ExactDecimal(mantissa: m, exponent: exponent)
    }

    private static func product(_ a: ExactDecimal, _ b: ExactDecimal) -> ExactDecimal? {
        if a.mantissa == 0 || b.mantissa == 0 { return .zero }
        let (m, o1) = a.mantissa.multipliedReportingOverflow(by: b.mantissa)
        let (e, o2) = a.exponent.addingReportingOverflow(b.exponent)
        return o1 || o2 ? nil : ExactDecimal(mantissa: m, exponent: e)
    }

    /// The exact sum. Traps when it does not fit; code handling input uses
    /// `addingReportingOverflow(_:)`.
    public static func + (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        let (r, o) = lhs.addingReportingOverflow(rhs)
        precondition(!o, "ExactDecimal addition overflow")
        return r
    }

    /// The exact difference. Traps when it does not fit; code handling input uses
    /// `subtractingReportingOverflow(_:)`.
    public static func - (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        let (r, o) = lhs.subtractingReportingOverflow(rhs)
        precondition(!o, "ExactDecimal subtraction overflow")
        return r
    }

    /// The exact product. Traps when it does not fit; code handling input uses
    /// `multipliedReportingOverflow(by:)`.
    public static func * (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal {
        let (r, o) = lhs.multipliedReportingOverflow(by: rhs)
        precondition(!o, "ExactDecimal multiplication overflow")
        return r
    }

    /// Adds in place; traps when the sum does not fit.
    public static func += (lhs: inout ExactDecimal, rhs: ExactDecimal) {
        lhs = lhs + rhs
    }

    /// The negated value. Traps only for a mantissa of `Int128.min`.
    public static prefix func - (operand: ExactDecimal) -> ExactDecimal {
        ExactDecimal(mantissa: -operand.mantissa, exponent: operand.exponent)
    }
}

// MARK: - Rounding and text

extension ExactDecimal {
    /// Rounds once, half-even, to `scale` decimal places, returning the integer count of
    /// 10^-`scale` units (scale 9 gives nano-units); nil when that count does not fit in
    /// `Int128`.
    ///
    /// Half-even (banker's rounding) is symmetric for negative values and has no upward
    /// bias when many costs are rounded and summed.
    public func roundedUnits(scale: Int) -> Int128? {
        if mantissa == 0 { return 0 }
        let (k, o) = exponent.addingReportingOverflow(scale)
        // An overflowing shift is astronomically large or small.
        if o { return exponent > 0 ? nil : 0 }
        if k >= 0 {
            return ExactDecimal.scale(mantissa, up: (k, false))
        }
        // |mantissa| < 2¹²⁷ < ½ × 10³⁹: a shift of 39 or more always rounds to zero.
        if k < -PowersOfTen.maxInt128Exponent { return 0 }
        let divisor = PowersOfTen.uint128[-k]
        let magnitude = mantissa.magnitude
        var (q, r) = magnitude.quotientAndRemainder(dividingBy: divisor)
        // Compare r with divisor − r rather than 2r with divisor: 2r could overflow.
        let rest = divisor - r
        if r > rest || (r == rest && q & 1 == 1) { q += 1 }
        // q ≤ 2¹²⁷ / 10 + 1, so it fits either way.
        return mantissa < 0 ? -Int128(q) : Int128(q)
    }

    /// Canonical shortest text without exponent: `0.006`, `4065`, `-1.5`, `0`.
    ///
    /// Equal values have the same text, so it is the spelling used in canonical JSON and
    /// replies. It is a valid JSON number literal.
    public var description: String {
        let n = normalized
        if n.mantissa == 0 { return "0" }
        let magnitude = n.mantissa.magnitude
        var digitCount = 1
        while digitCount <= PowersOfTen.maxInt128Exponent, magnitude >= PowersOfTen.uint128[digitCount] {
            digitCount += 1
        }
        // The text is the digits plus a sign, "0." and the zeros the exponent implies.
        let capacity = digitCount + Int(n.exponent.magnitude) + 3
        return String(asciiCapacity: capacity) { out in
            if n.mantissa < 0 { out.append(UInt8(ascii: "-")) }
            if n.exponent >= 0 {
                out.appendDigits(magnitude)
                out.append(repeating: UInt8(ascii: "0"), count: n.exponent)
                return
            }
            let fractionDigits = -n.exponent
            if fractionDigits >= digitCount {
                out.append(UInt8(ascii: "0"))
                out.append(UInt8(ascii: "."))
                out.append(repeating: UInt8(ascii: "0"), count: fractionDigits - digitCount)
                out.appendDigits(magnitude)
                return
            }
            let (whole, fraction) = magnitude.quotientAndRemainder(dividingBy: PowersOfTen.uint128[fractionDigits])
            out.appendDigits(whole)
            out.append(UInt8(ascii: "."))
            // A fraction of up to 38 digits, padded: split it like appendDigits does.
            if fractionDigits <= 19 {
                out.appendDigits(UInt64(truncatingIfNeeded: fraction), minimumWidth: fractionDigits)
            } else {
                let (high, low) = fraction.quotientAndRemainder(dividingBy: 10_000_000_000_000_000_000)
                out.appendDigits(UInt64(truncatingIfNeeded: high), minimumWidth: fractionDigits - 19)
                out.appendDigits(UInt64(truncatingIfNeeded: low), minimumWidth: 19)
            }
        }
    }
}

// MARK: - Canonical number text

extension ExactDecimal {
    /// The canonical spelling of a JSON number literal (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`),
    /// for comparing bodies (CONTRACT §2: "the spelling of equal decimals does not matter"):
    /// equal values, however many digits, get the same text.
    ///
    /// A value whose plain spelling needs at most ``canonicalPaddingLimit`` zeros beyond its
    /// significant digits (every amount, price and quantity in practice) is written without an
    /// exponent: as its
    /// `description` (`0.006`, `4065`) when `init(parsing:)` takes it, else the same way from its
    /// digits (`12345678901234567890123456789012345678901`, resent as `…901.0` or `1.2…901e40`,
    /// is the same number). Any other is written as its significant digits, `e` and that
    /// exponent (`1e999`, `-25e-2000`), so a short literal does not become hundreds of stored
    /// digits (`1e999` was 1,000 digits in the stored body: a 48 KB message of them stored 8 MB,
    /// an audit found), whatever the exponent's length (`adding(_:toDigits:)`). A literal that is
    /// not a JSON number is returned as it is.
    public static func canonicalNumberText(_ literal: UnsafeBufferPointer<UInt8>) -> String {
        if case .success(let d) = parse(literal) { return d.canonicalText }
        return canonicalDigits(literal) ?? String(decoding: literal, as: UTF8.self)
    }

    /// `canonicalNumberText` of this value (the 40-zero rule applied to `description`): what
    /// stored bodies hold for amounts and usage quantities too (an audit's 59 KB event of
    /// `1e-999` quantities stored 4 MB of digits).
    public var canonicalText: String {
        // As parsed, an exponent in -40...2 cannot need over 40 zeros (normalizing only raises
        // it, by at most the mantissa's 38 trailing zeros): every common number, without
        // normalizing it twice (issue 8, DecodeBench).
        if exponent >= -ExactDecimal.canonicalPaddingLimit && exponent <= 2 { return description }
        let n = normalized
        if n.mantissa == 0 { return "0" }
        let digits = String(n.mantissa.magnitude).utf8.count
        if ExactDecimal.paddingZeros(digits: digits, exponent: n.exponent) <= ExactDecimal.canonicalPaddingLimit { return description }
        return "\(n.mantissa)e\(n.exponent)"
    }

    /// Canonical number text is plain when it needs at most this many zeros beyond the
    /// significant digits (`canonicalNumberText`), so it is at most 42 bytes longer than they are.
    public static let canonicalPaddingLimit = 40

    /// The zeros a plain spelling of `digits` significant digits × 10^`exponent` adds to them:
    /// trailing ones for a positive exponent, leading ones after `0.` for a small value.
    static func paddingZeros(digits: Int, exponent: Int) -> Int {
        exponent >= 0 ? exponent : max(0, -exponent - digits)
    }

    /// `canonicalNumberText` for a `String`.
    public static func canonicalNumberText(_ literal: String) -> String {
        var text = literal
        return text.withUTF8 { canonicalNumberText($0) }
    }

    /// The decimal digits of `digits` (at least 19, no leading zero) plus `delta` (|delta| below
    /// 10^18, so the result keeps the sign and at least 18 digits).
    static func adding(_ delta: Int, toDigits digits: [UInt8]) -> [UInt8] {
        let zero = UInt8(ascii: "0")
        let split = digits.count - 18
        var high = Array(digits[..<split])
        var low = digits[split...].reduce(0) { $0 * 10 + Int($1 - zero) } + delta
        let base = 1_000_000_000_000_000_000
        if low >= base {
            low -= base
            var j = high.count - 1
            while j >= 0 && high[j] == UInt8(ascii: "9") { high[j] = zero; j -= 1 }
            if j >= 0 { high[j] += 1 } else { high.insert(UInt8(ascii: "1"), at: 0) }
        } else if low < 0 {
            low += base
            var j = high.count - 1
            while high[j] == zero { high[j] = UInt8(ascii: "9"); j -= 1 }
            high[j] -= 1
        }
        let lowText = String(low)
        var result = high + Array(String(repeating: "0", count: 18 - lowText.count).utf8) + Array(lowText.utf8)
        while result.count > 1 && result[0] == zero { result.removeFirst() }
        return result
    }

    /// The digit-by-digit canonical form (values `parse` refuses), or nil.
    static func canonicalDigits(_ s: UnsafeBufferPointer<UInt8>) -> String? {
        let n = s.count
        var i = 0
        let negative = i < n && s[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        // The significant digits (integer and fraction parts, without the point).
        var digits: [UInt8] = []
        digits.reserveCapacity(n)
        let integerStart = i
        while i < n, isDigit(s[i]) {
            digits.append(s[i])
            i += 1
        }
        guard i > integerStart else { return nil }
        var exponent = 0
        if i < n, s[i] == UInt8(ascii: ".") {
            i += 1
            let fractionStart = i
            while i < n, isDigit(s[i]) {
                digits.append(s[i])
                i += 1
            }
            guard i > fractionStart else { return nil }
            exponent = -(i - fractionStart)
        }
        // The literal's exponent: an Int when it has at most 18 digits (leading zeros aside),
        // else its digits, added to below (`hugeExponent`).
        var hugeExponent: (negative: Bool, digits: [UInt8])?
        if i < n, s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E") {
            let exponentNegative = skipExponentMark(s, &i)
            let exponentStart = i
            while i < n, s[i] == UInt8(ascii: "0") { i += 1 }
            var exponentDigits: [UInt8] = []
            while i < n, isDigit(s[i]) {
                exponentDigits.append(s[i])
                i += 1
            }
            guard i > exponentStart else { return nil }
            if exponentDigits.count <= 18 {
                let literalExponent = exponentDigits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                exponent += exponentNegative ? -literalExponent : literalExponent
            } else {
                hugeExponent = (exponentNegative, exponentDigits)
            }
        }
        guard i == n else { return nil }
        // Leading zeros carry nothing; trailing ones move into the exponent.
        let first = digits.firstIndex { $0 != UInt8(ascii: "0") }
        guard let first else { return "0" }
        let last = digits.lastIndex { $0 != UInt8(ascii: "0") }!
        exponent += digits.count - 1 - last
        let significant = digits[first...last]
        var out: [UInt8] = []
        out.reserveCapacity(significant.count + 24)
        if negative { out.append(UInt8(ascii: "-")) }
        if let huge = hugeExponent {
            // 10^(10^18) or beyond: digits and exponent, the exponent's digits plus (or minus) the
            // small shift of the point (an exponent with 19 or more digits was kept as sent, so
            // equal values spelled so compared unequal: an audit).
            out.append(contentsOf: significant)
            out.append(UInt8(ascii: "e"))
            if huge.negative { out.append(UInt8(ascii: "-")) }
            out.append(contentsOf: Self.adding(huge.negative ? -exponent : exponent, toDigits: huge.digits))
            return String(decoding: out, as: UTF8.self)
        }
        if paddingZeros(digits: significant.count, exponent: exponent) > canonicalPaddingLimit {
            out.append(contentsOf: significant)
            out.append(UInt8(ascii: "e"))
            out.append(contentsOf: String(exponent).utf8)
        } else if exponent >= 0 {
            out.append(contentsOf: significant)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: exponent))
        } else if -exponent >= significant.count {
            out.append(contentsOf: "0.".utf8)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -exponent - significant.count))
            out.append(contentsOf: significant)
        } else {
            let point = significant.startIndex + significant.count + exponent
            out.append(contentsOf: significant[..<point])
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: significant[point...])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
