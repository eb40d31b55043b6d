import BudgetCore
import Testing

/// A deterministic generator, so property checks see the same inputs on every run.
private func dec(_ text: String) throws -> ExactDecimal {
    try ExactDecimal(parsing: text)
}

struct DecimalTests {
    static let parsed: [(String, Int128, Int)] = [
        ("12", 12, 0),
        ("-0.5", -5, -1),
        ("1.5e-7", 15, -8),
        ("2E+3", 2, 3),
        ("2e3", 2, 3),
        ("0.0000025", 25, -7),
        ("1.000000000000000000000000000000000000000000", 1, 0),
        ("0", 0, 0),
        ("-0", 0, 0),
        ("0.000", 0, 0),
        ("0e99999999999", 0, 0),
        ("100", 1, 2),
        ("10.50", 105, -1),
        ("1E-9", 1, -9),
        ("1234567890.0987654321", 12_345_678_900_987_654_321, -10),
        ("170141183460469231731687303715884105727", Int128.max, 0),
        ("-170141183460469231731687303715884105728", Int128.min, 0),
        ("170141183460469231731.687303715884105727", Int128.max, -18),
        ("1000000000000000000000000000000000000000000000", 1, 45),
        ("0.0000000000000000000000000000000000000000000001", 1, -46),
        ("1e1000", 1, 1000),
        ("1e-1000", 1, -1000),
        ("-12.5e+2", -125, 1),
    ]

    @Test("parses literals exactly and strips trailing zeros", arguments: parsed)
    func parses(text: String, mantissa: Int128, exponent: Int) throws {
        let value = try dec(text)
        #expect(value.mantissa == mantissa)
        #expect(value.exponent == exponent)
    }

    static let rejected: [(String, String)] = [
        ("NaN", "not a finite number"),
        ("nan", "not a finite number"),
        ("Infinity", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("inf", "not a finite number"),
        ("", "empty number"),
        (".5", "not a decimal number"),
        ("1.", "not a decimal number"),
        ("-.5", "not a decimal number"),
        ("0x1F", "not a decimal number"),
        (" 1", "not a decimal number"),
        ("1 ", "not a decimal number"),
        ("+1", "not a decimal number"),
        ("-", "not a decimal number"),
        ("--1", "not a decimal number"),
        ("1e", "not a decimal number"),
        ("1e+", "not a decimal number"),
        ("1.2.3", "not a decimal number"),
        ("1,5", "not a decimal number"),
        ("abc", "not a decimal number"),
        ("١٢", "not a decimal number"),
        ("01", "leading zeros"),
        ("-00.5", "leading zeros"),
        ("170141183460469231731687303715884105728", "too many digits"),
        ("-170141183460469231731687303715884105729", "too many digits"),
        ("1234567890123456789012345678901234567891", "too many digits"),
        ("1.00000000000000000000000000000000000000001", "too many digits"),
        ("1e1001", "out of range"),
        ("1e-1001", "out of range"),
        ("1e999999999999999999999", "out of range"),
    ]

    @Test("rejects what is not an exact finite decimal", arguments: rejected)
    func rejects(text: String, message: String) {
        let error = #expect(throws: DecimalError.self) { try dec(text) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    @Test("a long bad literal is cut short in the message")
    func longLiteralMessage() {
        let text = String(repeating: "9", count: 500) + "x"
        let error = #expect(throws: DecimalError.self) { try dec(text) }
        #expect(error?.message.hasPrefix("not a decimal number: \"9999") == true)
        #expect((error?.message.count ?? 1000) < 80)
    }

    static let texts: [(Int128, Int, String)] = [
        (6, -3, "0.006"),
        (4065, 0, "4065"),
        (-15, -1, "-1.5"),
        (0, 5, "0"),
        (0, -5, "0"),
        (150, -2, "1.5"),
        (12, 3, "12000"),
        (-1, -9, "-0.000000001"),
        (1005, -1, "100.5"),
        (1005, -4, "0.1005"),
        (1005, -5, "0.01005"),
        (Int128.max, 0, "170141183460469231731687303715884105727"),
        (Int128.min, -20, "-1701411834604692317.31687303715884105728"),
        (Int128.min, -45, "-0.000000170141183460469231731687303715884105728"),
    ]

    @Test("description is the canonical shortest text without exponent", arguments: texts)
    func description(mantissa: Int128, exponent: Int, text: String) throws {
        let value = ExactDecimal(mantissa: mantissa, exponent: exponent)
        #expect(value.description == text)
        #expect(try dec(text) == value)
    }

    @Test("description and parsing round-trip")
    func roundTrip() throws {
        var random = SplitMix64(state: 42)
        for _ in 0..<5000 {
            let high = Int128(Int64(bitPattern: random.next()))
            let low = Int128(random.next())
            let shift = Int(random.next() % 128)
            let mantissa = (high << 64 | low) >> shift
            let exponent = Int(random.next() % 81) - 40
            let value = ExactDecimal(mantissa: mantissa, exponent: exponent)
            let back = try dec(value.description)
            #expect(back == value, "\(value.description)")
            #expect(back.description == value.description)
        }
    }

    static let equalPairs: [(String, String)] = [
        ("1.50", "1.5"), ("100", "1e2"), ("0", "-0.000"), ("0.1", "1e-1"), ("-2.50", "-25e-1"), ("1e-5", "0.00001"),
    ]

    @Test("equal values are equal and hash alike whatever their spelling", arguments: equalPairs)
    func equalValues(a: String, b: String) throws {
        let x = try dec(a)
        let y = try dec(b)
        #expect(x == y)
        #expect(x.hashValue == y.hashValue)
        #expect(Set([x, y]).count == 1)
        #expect(x.description == y.description)
    }

    @Test("unnormalized forms compare by value")
    func unnormalized() {
        let a = ExactDecimal(mantissa: 150, exponent: -2)
        let b = ExactDecimal(mantissa: 15, exponent: -1)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(ExactDecimal(mantissa: 1500, exponent: -3) < ExactDecimal(2))
        #expect(ExactDecimal(mantissa: 0, exponent: 7) == ExactDecimal.zero)
        #expect(a.normalized.mantissa == 15 && a.normalized.exponent == -1)
    }

    static let orderings: [(String, String, Int)] = [
        ("1", "2", -1),
        ("-1", "-2", 1),
        ("0.1", "0.09", 1),
        ("1.5", "1.05", 1),
        ("1", "-1", 1),
        ("1e30", "1e-30", 1),
        ("-1e30", "1e-30", -1),
        ("1e38", "170141183460469231731687303715884105727", -1),
        ("1e40", "170141183460469231731687303715884105727", 1),
        ("-1e40", "-170141183460469231731687303715884105727", -1),
        ("1e-1000", "0", 1),
        ("0", "-1e-1000", 1),
        ("1.50", "1.5", 0),
        ("1e1000", "1e999", 1),
    ]

    @Test("orders by value", arguments: orderings)
    func ordering(a: String, b: String, expected: Int) throws {
        let x = try dec(a)
        let y = try dec(b)
        #expect((x < y) == (expected < 0))
        #expect((y < x) == (expected > 0))
        #expect((x == y) == (expected == 0))
    }

    @Test("0.1 + 0.2 is exactly 0.3")
    func pointOnePlusPointTwo() throws {
        let sum = try dec("0.1") + dec("0.2")
        #expect(sum == (try dec("0.3")))
        #expect(sum.description == "0.3")
        #expect(sum != (try dec("0.30000000000000004")))
    }

    static let sums: [(String, String, String)] = [
        ("999999999999.999999999", "0.000000001", "1000000000000"),
        ("1e12", "-0.000000001", "999999999999.999999999"),
        ("-1.5", "1.5", "0"),
        ("1e-20", "1e10", "10000000000.00000000000000000001"),
        ("0", "-7.25", "-7.25"),
    ]

    @Test("adds exactly", arguments: sums)
    func adds(a: String, b: String, sum: String) throws {
        let (value, overflow) = try dec(a).addingReportingOverflow(dec(b))
        #expect(!overflow)
        #expect(value.description == sum)
        #expect(try dec(a) + dec(b) == dec(sum))
    }

    static let differences: [(String, String, String)] = [
        ("0.3", "0.1", "0.2"),
        ("1", "1.000000001", "-0.000000001"),
        ("0", "5", "-5"),
        ("1e12", "1e12", "0"),
    ]

    @Test("subtracts exactly", arguments: differences)
    func subtracts(a: String, b: String, difference: String) throws {
        #expect(try (dec(a) - dec(b)).description == difference)
        let (value, overflow) = try dec(a).subtractingReportingOverflow(dec(b))
        #expect(!overflow)
        #expect(try value == dec(difference))
    }

    static let products: [(String, String, String)] = [
        ("0.0000025", "1200", "0.003"),
        ("0.00001", "300", "0.003"),
        ("-1.5", "2", "-3"),
        ("1e-500", "1e500", "1"),
        ("0", "1e900", "0"),
        ("1.08", "99.99", "107.9892"),
    ]

    @Test("multiplies exactly", arguments: products)
    func multiplies(a: String, b: String, product: String) throws {
        #expect(try (dec(a) * dec(b)).description == product)
        let (value, overflow) = try dec(a).multipliedReportingOverflow(by: dec(b))
        #expect(!overflow)
        #expect(try value == dec(product))
    }

    @Test("overflow is reported, not wrapped")
    func overflowReported() throws {
        let max = ExactDecimal(mantissa: Int128.max, exponent: 0)
        #expect(max.addingReportingOverflow(ExactDecimal(1)).overflow)
        #expect(ExactDecimal(mantissa: Int128.min, exponent: 0).subtractingReportingOverflow(ExactDecimal(1)).overflow)
        #expect(max.multipliedReportingOverflow(by: ExactDecimal(2)).overflow)
        // 10³⁰ + 10⁻³⁰ needs 61 significant digits.
        #expect(try dec("1e30").addingReportingOverflow(dec("1e-30")).overflow)
        #expect(ExactDecimal(mantissa: 1, exponent: Int.max).multipliedReportingOverflow(by: ExactDecimal(mantissa: 1, exponent: 1)).overflow)
    }

    @Test("trailing zeros do not cause a spurious overflow")
    func retriesNormalized() throws {
        let one = ExactDecimal(mantissa: 100_000_000_000_000_000_000_000_000_000_000_000_000, exponent: -38)
        let (sum, overflow) = one.addingReportingOverflow(ExactDecimal(1))
        #expect(!overflow && sum == ExactDecimal(2))
        let big = ExactDecimal(mantissa: 1_000_000_000_000_000_000_000_000_000_000, exponent: 0)
        let (square, o2) = big.multipliedReportingOverflow(by: big)
        #expect(!o2)
        #expect(try square == dec("1e60"))
    }

    static let roundings: [(String, Int, Int128?)] = [
        ("0.0000000005", 9, 0),
        ("0.0000000015", 9, 2),
        ("0.0000000025", 9, 2),
        ("0.0000000035", 9, 4),
        ("1.0000000035", 9, 1_000_000_004),
        ("1.0000000045", 9, 1_000_000_004),
        ("0.00000000050000001", 9, 1),
        ("0.00000000049999999", 9, 0),
        ("-0.0000000025", 9, -2),
        ("-0.0000000035", 9, -4),
        ("-0.0000000015", 9, -2),
        ("2.5", 0, 2),
        ("3.5", 0, 4),
        ("-2.5", 0, -2),
        ("0.4999999999", 0, 0),
        ("12.345", -1, 1),
        ("15", -1, 2),
        ("25", -1, 2),
        ("1e-100", 9, 0),
        ("-1e-100", 9, 0),
        ("0", 9, 0),
        ("1e29", 9, 100_000_000_000_000_000_000_000_000_000_000_000_000),
        ("1e30", 9, nil),
        ("170141183460469231731687303715.884105727", 9, Int128.max),
        ("-170141183460469231731687303715.884105728", 9, Int128.min),
        ("170141183460469231731687303716", 9, nil),
        ("1.8e29", 9, nil),
        ("0.15", 9, 150_000_000),
    ]

    @Test("rounds once, half-even, to units of 10^-scale", arguments: roundings)
    func rounds(text: String, scale: Int, units: Int128?) throws {
        #expect(try dec(text).roundedUnits(scale: scale) == units)
    }

    @Test("rounding survives extreme exponents")
    func roundingExtremes() {
        #expect(ExactDecimal(mantissa: 1, exponent: Int.max).roundedUnits(scale: 9) == nil)
        #expect(ExactDecimal(mantissa: 1, exponent: Int.min).roundedUnits(scale: -1) == 0)
        #expect(ExactDecimal(mantissa: Int128.max, exponent: -48).roundedUnits(scale: 9) == 0)
        #expect(ExactDecimal(mantissa: Int128.max, exponent: -47).roundedUnits(scale: 9) == 2)
    }

    @Test("sign and zero tests")
    func signs() throws {
        #expect(try dec("-0.000001").isNegative)
        #expect(try !dec("-0").isNegative)
        #expect(try dec("-0").isZero)
        #expect(try !dec("0.000001").isZero)
        #expect((-ExactDecimal(5)).description == "-5")
        var total = ExactDecimal.zero
        total += try dec("0.25")
        total += try dec("0.75")
        #expect(total == ExactDecimal(1))
    }
}
