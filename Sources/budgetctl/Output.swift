import BudgetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes whole lines straight to file descriptors 1 and 2.
///
/// Not `print`: standard output is block-buffered when it is a pipe, and
/// `alerts tail | grep …` or a test reading our output line by line must see
/// each line when it is written, not when a 4 KiB buffer fills.
enum Console {
    /// Writes `line` and a newline to standard output.
    static func out(_ line: String) {
        write(visible(line) + "\n", to: 1)
    }

    /// Writes `line` and a newline to standard error.
    static func err(_ line: String) {
        write(visible(line) + "\n", to: 2)
    }

    /// Writes several lines with one system call where possible (tables).
    static func out(lines: [String]) {
        guard !lines.isEmpty else { return }
        write(lines.map(visible).joined(separator: "\n") + "\n", to: 1)
    }

    /// Writes data lines as they are, for files (`export`: a CSV field's newline or tab is
    /// data, quoted by CSV's rules, not something to escape: a review found exports altered).
    static func outData(lines: [String]) {
        guard !lines.isEmpty else { return }
        write(lines.joined(separator: "\n") + "\n", to: 1)
    }

    /// `line` with every control character (C0, DEL, C1, so also a newline) and every character
    /// that reorders or breaks a line (bidi controls, U+2028, U+2029) written as its `\uXXXX`
    /// escape, but for budgetctl's own colours (`Colour`: exactly `ESC[0m`, `ESC[31m`, `ESC[32m`,
    /// `ESC[33m`, `ESC[36m`): text from publishers (ids, sources, models, descriptions, alert
    /// messages that quote them) reaches an operator's terminal, and an escape sequence in it
    /// could clear the screen, set the title, hide the rest of a line (`ESC[8m`) or forge lines
    /// (an audit's "FAKE: all budgets OK"). Table cells escape every one of them, colours too
    /// (`Format.cell`). The escape is also JSON's, so `--json` output stays valid.
    static func visible(_ line: String) -> String {
        guard line.unicodeScalars.contains(where: DisplayText.isControl) else { return line }
        let scalars = Array(line.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            let scalar = scalars[i]
            // Only when budgetctl colours at all (a terminal, no NO_COLOR): else every SGR is
            // data, escaped (an audit found operators' and the catalog's reach pipes raw).
            if Colour.isEnabled, scalar == "\u{1B}", let end = sgrEnd(scalars, from: i) {
                out.append(contentsOf: scalars[i...end])
                i = end + 1
                continue
            }
            if DisplayText.isControl(scalar) { out.append(contentsOf: DisplayText.escape(scalar).unicodeScalars) } else { out.append(scalar) }
            i += 1
        }
        return String(out)
    }

    /// The index of the `m` ending one of budgetctl's own colour sequences (`ESC [ n m` with n
    /// one of `Colour`'s or 0) that starts at `start`.
    private static func sgrEnd(_ scalars: [Unicode.Scalar], from start: Int) -> Int? {
        guard start + 2 < scalars.count, scalars[start + 1] == "[" else { return nil }
        var j = start + 2
        var parameter = ""
        while j < scalars.count, ("0"..."9").contains(scalars[j]), parameter.count < 3 {
            parameter.unicodeScalars.append(scalars[j])
            j += 1
        }
        guard j < scalars.count, scalars[j] == "m", parameter == "0" || Colour(rawValue: parameter) != nil else { return nil }
        return j
    }

    private static func write(_ text: String, to descriptor: CInt) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                #if canImport(Glibc)
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                #else
                let written = Darwin.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                #endif
                if written < 0 {
                    if errno == EINTR { continue }
                    // A closed pipe or a full disk: nothing sensible is left to say it on.
                    return
                }
                offset += written
            }
        }
    }
}

/// A plain text table: a header row, columns padded to their widest cell.
struct Table {
    /// How a column's cells line up.
    enum Alignment {
        case left, right
    }

    var headers: [String]
    var alignments: [Alignment]
    var rows: [[String]] = []

    /// A table with these column headers; columns whose header is in
    /// `rightAligned` (numbers) are right-aligned.
    init(_ headers: [String], rightAligned: Set<String> = []) {
        self.headers = headers
        self.alignments = headers.map { rightAligned.contains($0) ? .right : .left }
    }

    mutating func append(_ row: [String]) {
        precondition(row.count == headers.count, "a table row needs \(headers.count) cells, got \(row.count)")
        rows.append(row)
    }

    /// The lines of the table; the last column is not padded, so lines carry
    /// no trailing blanks.
    func render() -> [String] {
        var widths = headers.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() {
                widths[column] = max(widths[column], Format.visibleWidth(cell))
            }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (column, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: widths[column] - Format.visibleWidth(cell))
                let isLast = column == cells.count - 1
                switch alignments[column] {
                case .right: parts.append(padding + cell)
                case .left: parts.append(isLast ? cell : cell + padding)
                }
            }
            var text = parts.joined(separator: "  ")
            // A last column that is empty in this row leaves the separator behind.
            while text.last == " " { text.removeLast() }
            return text
        }
        return [line(headers)] + rows.map(line)
    }

    /// Prints the table, or `empty` instead when it has no rows.
    func print(empty: String) {
        if rows.isEmpty {
            Console.out(empty)
        } else {
            Console.out(lines: render())
        }
    }
}

/// Turning reply values into text for people. Amounts stay the exact decimal
/// text the daemon sent: nothing here goes through binary floating point.
enum Format {
    /// A value as a table cell: strings as they are, numbers as their literal,
    /// `null` or a missing field as `-`.
    static func cell(_ value: JSONValue?) -> String {
        guard let value else { return "-" }
        switch value {
        case .null: return "-"
        // Publishers' text: control characters escaped, so columns line up and nothing in it
        // acts on the terminal (`DisplayText`).
        case .string(let text): return text.isEmpty ? "-" : DisplayText.escaped(text)
        case .number(let text): return text
        case .bool(let flag): return flag ? "yes" : "no"
        case .array, .object: return DisplayText.escaped(value.serialized(sortedKeys: false))
        }
    }

    /// An amount with at least two decimals (`5000` → `5000.00`, `0.0125`
    /// stays), by editing its text, never by rounding.
    static func amount(_ value: JSONValue?) -> String {
        guard let text = value?.numberText ?? value?.stringValue, !text.isEmpty else { return "-" }
        return amount(text)
    }

    /// ``amount(_:)-(JSONValue?)`` for literal text.
    static func amount(_ text: String) -> String {
        // Exponent forms are left alone: padding them would change their meaning.
        guard !text.contains(where: { $0 == "e" || $0 == "E" }) else { return text }
        guard let dot = text.firstIndex(of: ".") else { return text + ".00" }
        let decimals = text.distance(from: dot, to: text.endIndex) - 1
        return decimals >= 2 ? text : text + String(repeating: "0", count: 2 - decimals)
    }

    /// An amount and its currency, `4065.00 USD` (see ``amount(_:)-(JSONValue?)``);
    /// `-` when absent or `null`.
    static func amount(_ value: JSONValue?, currency: String) -> String {
        guard let value, !value.isNull else { return "-" }
        let text = amount(value)
        return text == "-" ? text : "\(text) \(currency)"
    }

    /// An amount of a reply as exact ``Money``, nil when absent or not a number.
    static func money(_ value: JSONValue?) -> Money? {
        guard let text = value?.numberText ?? value?.stringValue else { return nil }
        return try? Money(parsing: text)
    }

    /// An RFC 3339 instant to the second, `2026-03-20T10:11:12Z`, for tables:
    /// the fraction of a second only widens the column.
    static func instant(_ value: JSONValue?) -> String {
        guard let text = value?.stringValue, !text.isEmpty else { return "-" }
        guard let time = try? Timestamp(rfc3339: text) else { return text }
        let whole = Timestamp(
            secondsSinceEpoch: time.nanosecondsSinceEpoch / 1_000_000_000
                - (time.nanosecondsSinceEpoch % 1_000_000_000 < 0 ? 1 : 0)
        )
        return whole.rfc3339
    }

    /// How many columns `text` takes on a terminal: its characters, not
    /// counting ANSI escape sequences (`ESC [ … m`).
    static func visibleWidth(_ text: String) -> Int {
        var width = 0
        var inEscape = false
        for character in text {
            if inEscape {
                if character == "m" { inEscape = false }
            } else if character == "\u{1B}" {
                inEscape = true
            } else {
                width += 1
            }
        }
        return width
    }

    /// A percentage literal with a `%` sign, `-` when absent.
    static func percent(_ value: JSONValue?) -> String {
        guard let text = value?.numberText ?? value?.stringValue else { return "-" }
        return text + "%"
    }

    /// `spent` as a percentage of `total`, computed exactly (half-even, two
    /// decimals) for replies that do not carry one; `-` without a positive total.
    static func percent(spent: JSONValue?, total: JSONValue?) -> String {
        guard let spentText = spent?.numberText ?? spent?.stringValue,
              let totalText = total?.numberText ?? total?.stringValue,
              let spentMoney = try? Money(parsing: spentText),
              let totalMoney = try? Money(parsing: totalText),
              totalMoney > .zero
        else { return "-" }
        return spentMoney.percentage(of: totalMoney) + "%"
    }

    /// A budget period, `start..end` (`start..` when open-ended); a midnight
    /// UTC timestamp is shown as its day.
    static func period(start: JSONValue?, end: JSONValue?) -> String {
        "\(day(start))..\(end?.stringValue.map { day(.string($0)) } ?? "")"
    }

    private static func day(_ value: JSONValue?) -> String {
        guard let text = value?.stringValue else { return "?" }
        if text.hasSuffix("T00:00:00Z"), text.count == 20 {
            return String(text.prefix(10))
        }
        return text
    }
}
