import BudgetCore
import Testing

private func money(_ text: String) throws -> Money {
    try Money(parsing: text)
}

struct MoneyTests {
    @Test("a million single nano-units sum to exactly 0.001")
    func millionNanos() throws {
        var total = Money.zero
        let nano = Money(nanos: 1)
        for _ in 0..<1_000_000 { total += nano }
        #expect(total == (try money("0.001")))
        #expect(total.nanos == 1_000_000)
        #expect(total.description == "0.001")
    }

    @Test("0.1 + 0.2 == 0.3")
    func pointOnePlusPointTwo() throws {
        let sum = try money("0.1") + money("0.2")
        #expect(sum == (try money("0.3")))
        #expect(sum.nanos == 300_000_000)
        #expect(sum.description == "0.3")
    }

    @Test("the largest amount below 1e12 plus one nano-unit is exactly 1e12")
    func reachesMaximum() throws {
        let sum = try money("999999999999.999999999") + money("0.000000001")
        #expect(sum == Money.maxValue)
        #expect(sum == (try money("1e12")))
        #expect(sum.nanos == 1_000_000_000_000_000_000_000)
        #expect(sum.description == "1000000000000")
        #expect(Money.maxValue.nanos == 1_000_000_000_000 * Money.nanosPerUnit)
    }

    static let roundings: [(String, Int128)] = [
        ("0.0000000005", 0),
        ("0.0000000015", 2),
        ("0.0000000025", 2),
        ("0.0000000035", 4),
        ("1.0000000035", 1_000_000_004),
        ("1.2345678905", 1_234_567_890),
        ("1.2345678915", 1_234_567_892),
        ("1.23456789049", 1_234_567_890),
        ("1.234567890500001", 1_234_567_891),
        ("-0.0000000025", -2),
        ("0.15", 150_000_000),
        ("1E-9", 1),
        ("4.5e-10", 0),
    ]

    @Test("rounds once, half-even, to 1e-9", arguments: roundings)
    func rounds(text: String, nanos: Int128) throws {
        #expect(try money(text).nanos == nanos)
        #expect(try Money(ExactDecimal(parsing: text)).nanos == nanos)
    }

    @Test("a cost computed from a price is rounded once, at the end")
    func roundedOnce() throws {
        // 3 × 0.0000000025 = 7.5 nano-units → 8; rounding the price first would give 6.
        let cost = try ExactDecimal(parsing: "0.0000000025") * ExactDecimal(3)
        #expect(try Money(cost).nanos == 8)
        let tokens = try ExactDecimal(parsing: "1200") * ExactDecimal(parsing: "0.0000025")
            + ExactDecimal(parsing: "300") * ExactDecimal(parsing: "0.00001")
        #expect(try Money(tokens) == money("0.006"))
    }

    static let rejectedAmounts: [(String, String)] = [
        ("-1", "negative amount"),
        ("-0.0000000001", "negative amount"),
        ("1000000000000.0000000001", "amount over 1e12"),
        ("1000000000000.000000000000000000001", "amount over 1e12"),
        ("1e13", "amount over 1e12"),
        ("1e5000", "amount over 1e12"),
        ("-1e5000", "negative amount"),
        ("NaN", "not a finite number"),
        ("Infinity", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("abc", "not a decimal number"),
        ("", "empty number"),
        (" 5", "not a decimal number"),
        ("99999999999999999999999999999999999999999", "too many digits"),
    ]

    @Test("parseAmount rejects what a client may not send", arguments: rejectedAmounts)
    func rejectsAmount(text: String, message: String) {
        let error = #expect(throws: MoneyError.self) { try Money.parseAmount(text) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "no error")")
    }

    static let acceptedAmounts: [(String, Int128)] = [
        ("1e12", 1_000_000_000_000_000_000_000),
        ("1000000000000.000000000", 1_000_000_000_000_000_000_000),
        ("1E-9", 1),
        ("0.15", 150_000_000),
        ("0", 0),
        ("-0", 0),
        ("0.00000000049", 0),
        ("12", 12_000_000_000),
        ("4065.5", 4_065_500_000_000),
    ]

    @Test("parseAmount accepts amounts from 0 to 1e12", arguments: acceptedAmounts)
    func acceptsAmount(text: String, nanos: Int128) throws {
        #expect(try Money.parseAmount(text).nanos == nanos)
    }

    @Test("Money(parsing:) leaves range policy to parseAmount but reports overflow")
    func plainParsing() throws {
        #expect(try money("-2.5").nanos == -2_500_000_000)
        #expect(try money("1e20").nanos == 100_000_000_000_000_000_000_000_000_000)
        let error = #expect(throws: MoneyError.self) { try money("1e30") }
        #expect(error?.message == "amount out of range")
        #expect(throws: MoneyError.self) { try money("NaN") }
    }

    static let extremes: [Int128] = [
        .min, .max, .min + 1, .max - 1, 0, 1, -1,
        1_000_000_000_000_000_000_000, 999_999_999_999_999_999_999, -1_000_000_000_000_000_000_000,
    ]

    @Test("every Int128 nano amount round-trips through its text", arguments: extremes)
    func extremesRoundTrip(nanos: Int128) throws {
        let amount = Money(nanos: nanos)
        let back = try money(amount.description)
        #expect(back == amount)
        #expect(back.description == amount.description)
    }

    static let texts: [(Int128, String)] = [
        (1_000_000, "0.001"),
        (1_000_000_000_000_000_000_000, "1000000000000"),
        (0, "0"),
        (-2_500_000_000, "-2.5"),
        (999_999_999_999_999_999_999, "999999999999.999999999"),
        (1, "0.000000001"),
        (-1, "-0.000000001"),
        (100_000_000_000, "100"),
        (123_450_000_000, "123.45"),
        (Int128.max, "170141183460469231731687303715.884105727"),
        (Int128.min, "-170141183460469231731687303715.884105728"),
    ]

    @Test("description is the shortest exact decimal", arguments: texts)
    func description(nanos: Int128, text: String) {
        #expect(Money(nanos: nanos).description == text)
        #expect(Money(nanos: nanos).decimalValue.description == text)
    }

    static let percentages: [(String, String, String)] = [
        ("4065", "5000", "81.3"),
        ("2", "3", "66.67"),
        ("1", "3", "33.33"),
        ("4", "3", "133.33"),
        ("5000", "5000", "100"),
        ("6000", "5000", "120"),
        ("0", "5000", "0"),
        ("0.5", "5000", "0.01"),
        ("0.25", "5000", "0"),      // 0.005 % → 0.00 (half to even)
        ("0.75", "5000", "0.02"),   // 0.015 % → 0.02
        ("1.25", "5000", "0.02"),   // 0.025 % → 0.02
        ("0.00125", "1", "0.12"),   // 0.125 % → 0.12
        ("0.00375", "1", "0.38"),   // 0.375 % → 0.38
        ("999.995", "1000", "100"), // 99.9995 % → 100.00
        ("999.94999", "1000", "99.99"),
        ("1.05", "100", "1.05"),
        ("1.1", "100", "1.1"),
        ("1.001", "100", "1"),
        ("10.01", "100", "10.01"),
        ("1", "0.000000001", "100000000000"),
        ("0.000000001", "1000000000000", "0"),
        ("-1", "3", "-33.33"),
        ("-0.0000001", "1000", "0"),
    ]

    @Test("percentage is exact and rounded half-even to two decimals", arguments: percentages)
    func percentage(part: String, total: String, text: String) throws {
        #expect(try money(part).percentage(of: money(total)) == text)
    }

    @Test("percentage does not overflow at the extremes")
    func percentageExtremes() {
        #expect(Money(nanos: .max).percentage(of: Money(nanos: 1)) == "17014118346046923173168730371588410572700")
        #expect(Money(nanos: .max).percentage(of: Money(nanos: .max)) == "100")
        #expect(Money(nanos: 1).percentage(of: Money(nanos: .max)) == "0")
        #expect(Money(nanos: .min).percentage(of: Money(nanos: 3)) == "-5671372782015641057722910123862803524266.67")
    }

    static let thresholds: [(String, Int, String, Bool)] = [
        ("4000", 80, "5000", true),
        ("3999.999999999", 80, "5000", false),
        ("5000", 100, "5000", true),
        ("5000.000000001", 100, "5000", true),
        ("4999.999999999", 100, "5000", false),
        ("0", 0, "5000", true),
        ("450", 90, "500", true),
        ("449.999999999", 90, "500", false),
        ("0.000000001", 80, "0.000000001", true),
    ]

    @Test("reaches(percent:of:) compares exactly", arguments: thresholds)
    func reaches(spent: String, percent: Int, total: String, expected: Bool) throws {
        #expect(try money(spent).reaches(percent: percent, of: money(total)) == expected)
    }

    @Test("reaches(percent:of:) agrees with the 256-bit comparison on both sides of its 128-bit fast path (2⁶³ nano-units, percent 2³¹)")
    func reachesFastPathAgrees() {
        func reference(_ spent: Int128, _ percent: Int, _ total: Int128) -> Bool {
            let lhs = spent.multipliedFullWidth(by: 100)
            let rhs = total.multipliedFullWidth(by: Int128(percent))
            if lhs.high != rhs.high { return lhs.high > rhs.high }
            return lhs.low >= rhs.low
        }
        let edge = Int128(1) << 63
        let amounts: [Int128] = [0, 1, -1, 99, 100, 4_000, edge - 2, edge - 1, edge, edge + 1, -edge, -edge + 1, -edge - 1, .max, .min, .max / 100, .min / 100]
        let percents = [0, 1, 80, 90, 100, 101, Int(Int32.max), Int(Int32.max) + 1, -1, Int.max, Int.min]
        var state: UInt64 = 42
        func next() -> Int128 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int128(Int64(bitPattern: z ^ (z >> 31))) >> Int(z % 40)
        }
        var cases = 0
        for spent in amounts + (0..<200).map({ _ in next() }) {
            for total in amounts + (0..<20).map({ _ in next() }) {
                for percent in percents {
                    #expect(Money(nanos: spent).reaches(percent: percent, of: Money(nanos: total)) == reference(spent, percent, total), "\(spent) \(percent) \(total)")
                    cases += 1
                }
            }
        }
        #expect(cases > 70_000)
    }

    @Test("reaches(percent:of:) does not overflow at the extremes")
    func reachesExtremes() {
        let max = Money(nanos: .max)
        #expect(max.reaches(percent: 100, of: max))
        #expect(!max.reaches(percent: 101, of: max))
        #expect(!max.reaches(percent: Int.max, of: max))
        #expect(Money(nanos: .min).reaches(percent: Int.min, of: max))
    }

    @Test("arithmetic, overflow reporting and ordering")
    func arithmetic() throws {
        #expect(Money(nanos: .max).adding(Money(nanos: 1)) == nil)
        #expect(Money(nanos: .min).subtracting(Money(nanos: 1)) == nil)
        #expect(Money(nanos: 1).adding(Money(nanos: 2)) == Money(nanos: 3))
        #expect(Money(nanos: 1).subtracting(Money(nanos: 2)) == Money(nanos: -1))
        var amount = try money("10")
        amount -= try money("2.5")
        #expect(amount == (try money("7.5")))
        #expect(try amount - money("10") == money("-2.5"))
        #expect(-amount == (try money("-7.5")))
        #expect(amount * 3 == (try money("22.5")))
        let sorted = try [money("2"), money("-1"), money("0.5")].sorted()
        #expect(sorted.map(\.description) == ["-1", "0.5", "2"])
        #expect(try money("1.5").decimalValue == ExactDecimal(parsing: "1.5"))
    }
}
