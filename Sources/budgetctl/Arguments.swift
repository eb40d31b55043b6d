import ArgumentParser
import BudgetCore

/// An amount or quantity typed on the command line, kept as exact decimal text
/// and sent as a JSON number literal: `5000`, `12.50`, `0.0125`, `1e9`.
///
/// Only the spelling is checked here (a non-negative decimal); the daemon
/// applies the money rules (range, rounding to 1e-9) and says what is wrong.
/// The text is normalized only as far as JSON needs: `.5` → `0.5`, `007` → `7`,
/// `+3` → `3`, `5.` → `5`.
struct DecimalText: ExpressibleByArgument, Sendable, Hashable {
    /// A valid JSON number literal.
    let literal: String

    init?(argument: String) {
        guard let literal = Self.jsonLiteral(argument) else { return nil }
        self.literal = literal
    }

    /// The literal as a JSON number.
    var json: JSONValue { .number(literal) }

    /// `text` as a JSON number literal, or nil if it is not a non-negative
    /// decimal (negative, `NaN`, `1,5`, `12 USD`, an empty string...).
    static func jsonLiteral(_ text: String) -> String? {
        var rest = Substring(text)
        if rest.first == "+" { rest = rest.dropFirst() }
        let mantissaEnd = rest.firstIndex { $0 == "e" || $0 == "E" } ?? rest.endIndex
        let mantissa = rest[..<mantissaEnd]
        let exponent = rest[mantissaEnd...]

        let dot = mantissa.firstIndex(of: ".")
        let integerPart = mantissa[..<(dot ?? mantissa.endIndex)]
        let fractionPart = dot.map { mantissa[mantissa.index(after: $0)...] } ?? ""
        guard !(integerPart.isEmpty && fractionPart.isEmpty),
              integerPart.allSatisfy(\.isASCIIDigit),
              fractionPart.allSatisfy(\.isASCIIDigit)
        else { return nil }

        var literal = String(integerPart.drop { $0 == "0" })
        if literal.isEmpty { literal = "0" }
        if !fractionPart.isEmpty { literal += "." + fractionPart }

        if !exponent.isEmpty {
            var digits = exponent.dropFirst()
            var sign = ""
            if let first = digits.first, first == "+" || first == "-" {
                sign = String(first)
                digits = digits.dropFirst()
            }
            guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit) else { return nil }
            literal += "e" + sign + digits
        }
        return literal
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A choice given in any letter case on the command line (`monthly` or
/// `MONTHLY`) and sent in the contract's UPPER_SNAKE spelling.
protocol UpperCaseChoice: RawRepresentable, CaseIterable, ExpressibleByArgument, Sendable where RawValue == String {}

extension UpperCaseChoice {
    init?(argument: String) {
        self.init(rawValue: argument.uppercased())
    }

    var json: JSONValue { .string(rawValue) }
}

/// `budgetType` (CONTRACT §4).
enum BudgetTypeChoice: String, UpperCaseChoice {
    case monthly = "MONTHLY", quarterly = "QUARTERLY", yearly = "YEARLY", project = "PROJECT", unlimited = "UNLIMITED"
}

/// Every budget status, for filters.
enum BudgetStatusChoice: String, UpperCaseChoice {
    case active = "ACTIVE", exceeded = "EXCEEDED", paused = "PAUSED", completed = "COMPLETED", cancelled = "CANCELLED"
}

/// The statuses an operator may set (`EXCEEDED` and `COMPLETED` are budgetd's).
enum SettableStatusChoice: String, UpperCaseChoice {
    case active = "ACTIVE", paused = "PAUSED", cancelled = "CANCELLED"
}

/// `serviceType` (CONTRACT §2).
enum ServiceTypeChoice: String, UpperCaseChoice {
    case api = "API", scraping = "SCRAPING", storage = "STORAGE", processing = "PROCESSING"
    case monitoring = "MONITORING", other = "OTHER"
}

/// An allocation's `priority`.
enum PriorityChoice: String, UpperCaseChoice {
    case critical = "CRITICAL", high = "HIGH", medium = "MEDIUM", low = "LOW"
}

/// A stored usage event's `state`.
enum EventStateChoice: String, UpperCaseChoice {
    case allocated = "ALLOCATED", unpriced = "UNPRICED", unallocated = "UNALLOCATED", rejected = "REJECTED"
}

/// `on` or `off` for a boolean field that `budget update` may change.
enum Switch: String, ExpressibleByArgument, CaseIterable, Sendable {
    case on, off

    init?(argument: String) {
        switch argument.lowercased() {
        case "on", "true", "yes": self = .on
        case "off", "false", "no": self = .off
        default: return nil
        }
    }

    var json: JSONValue { .bool(self == .on) }
}

/// `KEY=VALUE` (the value is a string) or `KEY:=JSON` (the value is any JSON,
/// such as a number or `true`): a selector or metadata entry.
struct KeyValue: ExpressibleByArgument, Sendable {
    var key: String
    var value: JSONValue

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "=") else { return nil }
        var keyEnd = equals
        var isJSON = false
        if equals > argument.startIndex, argument[argument.index(before: equals)] == ":" {
            keyEnd = argument.index(before: equals)
            isJSON = true
        }
        let key = String(argument[..<keyEnd])
        let text = String(argument[argument.index(after: equals)...])
        guard !key.isEmpty else { return nil }
        self.key = key
        if isJSON {
            guard let value = try? JSON.parse(text) else { return nil }
            self.value = value
        } else {
            self.value = .string(text)
        }
    }

    /// Later entries win over earlier ones with the same key.
    static func object(_ entries: [KeyValue]) -> JSONObject {
        var object = JSONObject()
        for entry in entries {
            object[entry.key] = entry.value
        }
        return object
    }
}

/// `UNIT=QUANTITY` for a usage map, the quantity an exact decimal.
struct UsageQuantity: ExpressibleByArgument, Sendable {
    var unit: String
    var quantity: DecimalText

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let quantity = DecimalText(argument: String(parts[1])) else {
            return nil
        }
        self.unit = String(parts[0])
        self.quantity = quantity
    }

    /// The `usage` object of an event: unit → quantity; a later entry wins over an earlier one.
    static func object(_ entries: [UsageQuantity]) -> JSONObject {
        var object = JSONObject()
        for entry in entries {
            object[entry.unit] = entry.quantity.json
        }
        return object
    }
}

/// `PLATFORM:SERVICETYPE:AMOUNT[:PRIORITY]`, one allocation of a budget,
/// e.g. `OpenAI:API:1500:HIGH`. The platform may itself contain colons: the
/// fields are taken from the right.
struct AllocationSpec: ExpressibleByArgument, Sendable {
    var platform: String
    var serviceType: ServiceTypeChoice
    var amount: DecimalText
    var priority: PriorityChoice?

    init?(argument: String) {
        var parts = argument.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var priority: PriorityChoice?
        if parts.count >= 4, let last = parts.last, let parsed = PriorityChoice(argument: last) {
            priority = parsed
            parts.removeLast()
        }
        guard parts.count >= 3,
              let amount = DecimalText(argument: parts[parts.count - 1]),
              let serviceType = ServiceTypeChoice(argument: parts[parts.count - 2])
        else { return nil }
        let platform = parts[..<(parts.count - 2)].joined(separator: ":")
        guard !platform.isEmpty else { return nil }
        self.platform = platform
        self.serviceType = serviceType
        self.amount = amount
        self.priority = priority
    }

    /// The allocation as `budget.create`/`budget.update` take it.
    var json: JSONValue {
        var object = JSONObject([
            ("platform", .string(platform)),
            ("serviceType", serviceType.json),
            ("allocatedAmount", amount.json),
        ])
        if let priority {
            object["priority"] = priority.json
        }
        return .object(object)
    }
}

extension JSONObject {
    /// Sets `key` only when `value` is present, so absent options are absent
    /// from the request and the daemon's defaults apply.
    mutating func set(_ key: String, _ value: JSONValue?) {
        if let value {
            self[key] = value
        }
    }
}
