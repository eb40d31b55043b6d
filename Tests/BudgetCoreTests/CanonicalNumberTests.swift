@testable import BudgetCore
import Testing

// CONTRACT §2: "the spelling of equal decimals does not matter" when bodies are compared, for
// numbers of any length (`ExactDecimal.canonicalNumberText`).

/// A random JSON spelling of `sign` `digits` × 10^`exponent`: the point anywhere (or none),
/// zeros added at either end, an exponent making up the difference, `e` or `E`, `+` or not.
private func spelling(negative: Bool, digits: String, exponent: Int, using rng: inout SplitMix64) -> String {
    var mantissa = digits + String(repeating: "0", count: Int.random(in: 0...3, using: &rng))
    var scale = exponent - (mantissa.count - digits.count)
    // A point placed `fraction` digits from the right, with leading zeros when needed.
    let fraction = Int.random(in: 0...(mantissa.count + 2), using: &rng)
    if fraction > 0 {
        if fraction >= mantissa.count { mantissa = String(repeating: "0", count: fraction - mantissa.count + 1) + mantissa }
        let point = mantissa.index(mantissa.endIndex, offsetBy: -fraction)
        mantissa = String(mantissa[..<point]) + "." + String(mantissa[point...])
        scale += fraction
    }
    var text = (negative ? "-" : "") + mantissa
    if scale != 0 || Bool.random(using: &rng) {
        text += Bool.random(using: &rng) ? "e" : "E"
        if scale >= 0, Bool.random(using: &rng) { text += "+" }
        text += String(scale)
    }
    return text
}

private func randomDigits(_ count: Int, using rng: inout SplitMix64) -> String {
    // No zero at either end: the significant digits of a value.
    var s = String(Int.random(in: 1...9, using: &rng))
    if count > 1 {
        for _ in 0..<(count - 2) { s += String(Int.random(in: 0...9, using: &rng)) }
        s += String(Int.random(in: 1...9, using: &rng))
    }
    return s
}

struct CanonicalNumberTests {
    @Test("the digit-by-digit form writes every value ExactDecimal parses as the parsed form does, however it is spelled: its description, or digits and exponent when that would need over 40 zeros")
    func parsedValuesAsDescription() throws {
        var rng = SplitMix64(state: 17)
        for _ in 0..<3_000 {
            let digits = randomDigits(Int.random(in: 1...30, using: &rng), using: &rng)
            let exponent = Int.random(in: -60...40, using: &rng)
            let negative = Bool.random(using: &rng)
            let text = spelling(negative: negative, digits: digits, exponent: exponent, using: &rng)
            let parsed = try ExactDecimal(parsing: text)
            let expected = ExactDecimal.canonicalNumberText(text)
            let n = parsed.normalized
            let zeros = n.exponent >= 0 ? n.exponent : max(0, -n.exponent - String(n.mantissa.magnitude).count)
            #expect(expected == (zeros <= 40 ? parsed.description : "\(n.mantissa)e\(n.exponent)"), "\(text)")
            // The digit-by-digit form, used only where parsing fails, agrees with it (so values
            // on either side of ExactDecimal's limits get one spelling).
            let byDigits = text.utf8.withContiguousStorageIfAvailable { ExactDecimal.canonicalDigits($0) } ?? nil
            #expect(byDigits == expected, "\(text)")
        }
    }

    @Test("every spelling of a value too long for ExactDecimal, or far from 1, has one text; other values another")
    func longValuesOneText() {
        var rng = SplitMix64(state: 41)
        for _ in 0..<1_000 {
            let digits = randomDigits(Int.random(in: 39...70, using: &rng), using: &rng)
            let exponent = Bool.random(using: &rng) ? Int.random(in: -80...40, using: &rng) : Int.random(in: 990...1_100, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
            let negative = Bool.random(using: &rng)
            let texts = (0..<4).map { _ in spelling(negative: negative, digits: digits, exponent: exponent, using: &rng) }
            let canonical = texts.map(ExactDecimal.canonicalNumberText)
            #expect(Set(canonical).count == 1, "\(texts) → \(canonical)")
            // The text is a JSON number of the same value: spelled again, it comes back unchanged.
            #expect(ExactDecimal.canonicalNumberText(canonical[0]) == canonical[0])
            // Another last digit, sign or exponent is another value.
            var other = digits
            let last = other.removeLast()
            other += last == "1" ? "2" : "1"
            #expect(ExactDecimal.canonicalNumberText(spelling(negative: negative, digits: other, exponent: exponent, using: &rng)) != canonical[0])
            #expect(ExactDecimal.canonicalNumberText(spelling(negative: !negative, digits: digits, exponent: exponent, using: &rng)) != canonical[0])
            #expect(ExactDecimal.canonicalNumberText(spelling(negative: negative, digits: digits, exponent: exponent + 1, using: &rng)) != canonical[0])
        }
    }

    @Test("examples", arguments: [
        ("12345678901234567890123456789012345678901.0", "12345678901234567890123456789012345678901"),
        ("1.2345678901234567890123456789012345678901e40", "12345678901234567890123456789012345678901"),
        ("-0.000123456789012345678901234567890123456789012345e-2", "-0.00000123456789012345678901234567890123456789012345"),
        ("10E+1000", "1e1001"),
        ("-2.50e-1999", "-25e-2000"),
        ("0.5e1002", "5e1001"),
        ("-0.0e99999", "0"),
        ("1e1000000000000000000", "1e1000000000000000000"), // a 19-digit exponent
        // Exponents of any length: the point's shift is added to their digits (they were kept
        // as sent, so equal values spelled so compared unequal: an audit).
        ("10e9223372036854775807", "1e9223372036854775808"),
        ("1e9223372036854775808", "1e9223372036854775808"),
        ("10e99999999999999999999998", "1e99999999999999999999999"),
        ("0.1e100000000000000000000000", "1e99999999999999999999999"),
        ("10e9999999999999999999", "1e10000000000000000000"),   // a carry into the high digits
        ("0.1e10000000000000000000", "1e9999999999999999999"),  // a borrow from them
        ("-25.0e-10000000000000000000", "-25e-10000000000000000000"),
        ("0.25e-9999999999999999999", "25e-10000000000000000001"),
        ("1e0000000000000000000001", "10"),                     // leading zeros count for nothing
        (String(repeating: "9", count: 41) + "e00000000000000000000", String(repeating: "9", count: 41)),
        ("1.5e-7", "0.00000015"),
        // No more than 40 zeros are written out: a short literal is not stored as hundreds of digits.
        ("1e999", "1e999"),
        ("1E+40", "1" + String(repeating: "0", count: 40)),
        ("1e41", "1e41"),
        ("10e-42", "0." + String(repeating: "0", count: 40) + "1"),
        ("1e-42", "1e-42"),
        ("-12345e-46", "-12345e-46"),
        ("123456789012345678901234567890123456789012345e-45", "0.123456789012345678901234567890123456789012345"),
    ])
    func examples(literal: String, expected: String) {
        #expect(ExactDecimal.canonicalNumberText(literal) == expected)
    }
}
