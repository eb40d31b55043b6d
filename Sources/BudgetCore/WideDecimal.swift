// Costs too long for a 128-bit mantissa (CONTRACT §2: "a cost computed from a price is kept
// exact and rounded once"): a 17-digit LiteLLM price × a 12-digit token count × a 10-digit
// rate has ~39 digits. ExactDecimal's arithmetic reports overflow there; from that term on,
// `CostAmount` goes on exactly in a decimal with an unbounded mantissa, and rounds once.
// Rare (an audit's random run with rates: 22 events of 1,500), so plain and unhurried.

/// A non-negative integer of any size: little-endian 64-bit limbs, no trailing zero limbs.
public struct BigUInt: Sendable, Hashable {
    var limbs: [UInt64]

    public init(_ value: UInt128) {
        limbs = [UInt64(truncatingIfNeeded: value), UInt64(truncatingIfNeeded: value >> 64)]
        trim()
    }

    public var isZero: Bool { limbs.isEmpty }

    /// The value, when it fits in `UInt128`.
    public var uint128: UInt128? {
        switch limbs.count {
        case 0: 0
        case 1: UInt128(limbs[0])
        case 2: UInt128(limbs[1]) << 64 | UInt128(limbs[0])
        default: nil
        }
    }

    mutating func trim() {
        while limbs.last == 0 { limbs.removeLast() }
    }

    public static func * (a: BigUInt, b: BigUInt) -> BigUInt {
        if a.isZero || b.isZero { return BigUInt(0) }
        var out = [UInt64](repeating: 0, count: a.limbs.count + b.limbs.count)
        for (i, x) in a.limbs.enumerated() {
            var carry: UInt64 = 0
            for (j, y) in b.limbs.enumerated() {
                let (high, low) = x.multipliedFullWidth(by: y)
                let (s1, c1) = out[i + j].addingReportingOverflow(low)
                let (s2, c2) = s1.addingReportingOverflow(carry)
                out[i + j] = s2
                carry = high &+ (c1 ? 1 : 0) &+ (c2 ? 1 : 0)  // high ≤ 2⁶⁴ − 2: no overflow
            }
            out[i + b.limbs.count] = carry
        }
        var r = BigUInt(0)
        r.limbs = out
        r.trim()
        return r
    }

    public static func + (a: BigUInt, b: BigUInt) -> BigUInt {
        var out = [UInt64](repeating: 0, count: max(a.limbs.count, b.limbs.count) + 1)
        var carry = false
        for k in 0..<(out.count - 1) {
            let x = k < a.limbs.count ? a.limbs[k] : 0
            let y = k < b.limbs.count ? b.limbs[k] : 0
            let (s1, c1) = x.addingReportingOverflow(y)
            let (s2, c2) = s1.addingReportingOverflow(carry ? 1 : 0)
            out[k] = s2
            carry = c1 || c2
        }
        out[out.count - 1] = carry ? 1 : 0
        var r = BigUInt(0)
        r.limbs = out
        r.trim()
        return r
    }

    /// × 10^k.
    func timesPowerOfTen(_ k: Int) -> BigUInt {
        var r = self
        var rest = k
        while rest > 0 {
            let step = min(rest, 19)
            r = r * BigUInt(UInt128(PowersOfTen.uint128[step]))
            rest -= step
        }
        return r
    }

    /// Divides in place by `divisor` (> 0); returns the remainder.
    mutating func divide(by divisor: UInt64) -> UInt64 {
        var remainder: UInt64 = 0
        for k in stride(from: limbs.count - 1, through: 0, by: -1) {
            let (q, r) = divisor.dividingFullWidth((high: remainder, low: limbs[k]))
            limbs[k] = q
            remainder = r
        }
        trim()
        return remainder
    }
}

/// A non-negative decimal with an unbounded mantissa: `mantissa` × 10^`exponent`.
public struct WideDecimal: Sendable, Hashable {
    public var mantissa: BigUInt
    public var exponent: Int

    /// nil for a negative value (costs, prices, quantities and rates are never negative here).
    public init?(_ d: ExactDecimal) {
        guard !d.isNegative else { return nil }
        mantissa = BigUInt(d.mantissa.magnitude)
        exponent = d.exponent
    }

    init(mantissa: BigUInt, exponent: Int) {
        self.mantissa = mantissa
        self.exponent = exponent
    }

    public static func * (a: WideDecimal, b: WideDecimal) -> WideDecimal {
        WideDecimal(mantissa: a.mantissa * b.mantissa, exponent: a.exponent + b.exponent)
    }

    /// The exact sum (exponents are bounded by the parser's ±1000, so aligning them is cheap).
    public static func + (a: WideDecimal, b: WideDecimal) -> WideDecimal {
        if a.mantissa.isZero { return b }
        if b.mantissa.isZero { return a }
        let e = min(a.exponent, b.exponent)
        return WideDecimal(
            mantissa: a.mantissa.timesPowerOfTen(a.exponent - e) + b.mantissa.timesPowerOfTen(b.exponent - e),
            exponent: e
        )
    }

    /// Rounds once, half-even, to `scale` decimal places: the count of 10^-`scale` units, nil
    /// when it does not fit in `Int128` (as `ExactDecimal.roundedUnits`).
    public func roundedUnits(scale: Int) -> Int128? {
        let shift = exponent + scale
        var m = mantissa
        if shift >= 0 {
            guard let v = m.timesPowerOfTen(shift).uint128, v <= UInt128(Int128.max) else { return nil }
            return Int128(v)
        }
        // Drop -shift digits: all but the last in chunks, remembering whether any was non-zero,
        // then the last one, which decides with them (above, below or exactly half).
        var rest = -shift - 1
        var sticky = false
        while rest > 0, !m.isZero {
            let step = min(rest, 19)
            if m.divide(by: UInt64(PowersOfTen.uint128[step])) != 0 { sticky = true }
            rest -= step
        }
        let last = m.divide(by: 10)
        guard var q = m.uint128, q <= UInt128(Int128.max) else { return nil }
        if last > 5 || (last == 5 && (sticky || q & 1 == 1)) { q += 1 }
        guard q <= UInt128(Int128.max) else { return nil }
        return Int128(q)
    }
}

extension WideDecimal {
    /// The exact value of a JSON number literal with more significant digits than an
    /// `ExactDecimal` holds (an explicit cost with many decimals: CONTRACT §2 has it rounded
    /// like any other, so it is not refused). nil for text that is not a non-negative number
    /// literal, and for an exponent beyond what the parser accepts (`ExactDecimal`'s ±1000,
    /// from the digits' end: the work of rounding grows with it).
    public static func parsingLiteral(_ s: UnsafeBufferPointer<UInt8>) -> WideDecimal? {
        let n = s.count
        var i = 0
        var mantissa = BigUInt(0)
        var chunk: UInt64 = 0
        var chunkDigits = 0
        var exponent = 0
        func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }
        func push(_ c: UInt8) {
            chunk = chunk * 10 + UInt64(c &- UInt8(ascii: "0"))
            chunkDigits += 1
            if chunkDigits == 19 {
                mantissa = mantissa.timesPowerOfTen(19) + BigUInt(UInt128(chunk))
                chunk = 0
                chunkDigits = 0
            }
        }
        guard i < n, isDigit(s[i]) else { return nil }
        while i < n, isDigit(s[i]) { push(s[i]); i += 1 }
        if i < n, s[i] == UInt8(ascii: ".") {
            i += 1
            guard i < n, isDigit(s[i]) else { return nil }
            while i < n, isDigit(s[i]) { push(s[i]); exponent -= 1; i += 1 }
        }
        if i < n, s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E") {
            i += 1
            var negative = false
            if i < n, s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") {
                negative = s[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < n, isDigit(s[i]) else { return nil }
            var value = 0
            while i < n, isDigit(s[i]) {
                if value < 1_000_000_000 { value = value * 10 + Int(s[i] &- UInt8(ascii: "0")) }
                i += 1
            }
            exponent += negative ? -value : value
        }
        guard i == n, abs(exponent) <= ExactDecimal.parsedExponentLimit else { return nil }
        mantissa = mantissa.timesPowerOfTen(chunkDigits) + BigUInt(UInt128(chunk))
        return WideDecimal(mantissa: mantissa, exponent: exponent)
    }
}

/// A computed cost before its one rounding: exact in an `ExactDecimal`, or, when that would
/// overflow, in a `WideDecimal`.
public enum CostAmount: Sendable, Hashable {
    case exact(ExactDecimal)
    case wide(WideDecimal)

    /// Whether the exact value is over 1e12 (CONTRACT §2: values over 1e12 before rounding are
    /// refused), however little: 1000000000000.00000000008 is, though it rounds to 1e12.
    public var isOverMoneyRange: Bool {
        switch self {
        case .exact(let d):
            return d > ExactDecimal(mantissa: 1, exponent: 12)
        case .wide(let w):
            // mantissa × 10^exponent > 10^12 ⟺ mantissa > 10^(12 − exponent), exponent ≤ 12;
            // beyond that, any mantissa but zero is over.
            if w.exponent > 12 { return !w.mantissa.isZero }
            return BigUInt(1).timesPowerOfTen(12 - w.exponent) < w.mantissa
        }
    }

    /// Rounded once, half-even, to `scale` places (units of 10^-`scale`); nil when too large.
    public func roundedUnits(scale: Int) -> Int128? {
        switch self {
        case .exact(let d): d.roundedUnits(scale: scale)
        case .wide(let w): w.roundedUnits(scale: scale)
        }
    }

    /// `self` + `quantity` × `price`, exact: in an `ExactDecimal` while it fits, in a
    /// `WideDecimal` from the first term that does not. nil for a negative operand that does not
    /// fit (costs, quantities and prices are never negative).
    public func adding(_ quantity: ExactDecimal, times price: ExactDecimal) -> CostAmount? {
        switch self {
        case .exact(let total):
            let (product, o1) = quantity.multipliedReportingOverflow(by: price)
            let (sum, o2) = total.addingReportingOverflow(product)
            if !o1 && !o2 { return .exact(sum) }
            guard let wide = WideDecimal(total) else { return nil }
            return CostAmount.wide(wide).adding(quantity, times: price)
        case .wide(let total):
            guard let q = WideDecimal(quantity), let p = WideDecimal(price) else { return nil }
            return .wide(total + q * p)
        }
    }

    /// `self` × `rate` (a conversion before the one rounding), exact as `adding` is.
    public func times(_ rate: ExactDecimal) -> CostAmount? {
        switch self {
        case .exact(let amount): return CostAmount.exact(.zero).adding(amount, times: rate)
        case .wide(let amount): return WideDecimal(rate).map { .wide(amount * $0) }
        }
    }
}

extension BigUInt {
    /// Whether `a` < `b`.
    static func < (a: BigUInt, b: BigUInt) -> Bool {
        if a.limbs.count != b.limbs.count { return a.limbs.count < b.limbs.count }
        for k in stride(from: a.limbs.count - 1, through: 0, by: -1) where a.limbs[k] != b.limbs[k] {
            return a.limbs[k] < b.limbs[k]
        }
        return false
    }

    /// `a` − `b`, for `a` ≥ `b`.
    static func - (a: BigUInt, b: BigUInt) -> BigUInt {
        precondition(!(a < b), "BigUInt subtraction below zero")
        var out = a.limbs
        var borrow = false
        for k in out.indices {
            let y = k < b.limbs.count ? b.limbs[k] : 0
            let (d1, b1) = out[k].subtractingReportingOverflow(y)
            let (d2, b2) = d1.subtractingReportingOverflow(borrow ? 1 : 0)
            out[k] = d2
            borrow = b1 || b2
        }
        var r = BigUInt(0)
        r.limbs = out
        r.trim()
        return r
    }

    /// The value in decimal digits (`0` for zero).
    var decimalText: String {
        if isZero { return "0" }
        var rest = self
        var chunks: [UInt64] = []
        while !rest.isZero { chunks.append(rest.divide(by: 10_000_000_000_000_000_000)) }
        var text = String(chunks.removeLast())
        for chunk in chunks.reversed() {
            let digits = String(chunk)
            text += String(repeating: "0", count: 19 - digits.count) + digits
        }
        return text
    }
}
