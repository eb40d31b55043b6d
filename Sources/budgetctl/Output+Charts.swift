import BudgetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// ANSI colour for standard output, on a terminal only.
///
/// Colour is used when standard output is a terminal (`isatty(1)`) and
/// `NO_COLOR` is not set to a non-empty value (https://no-color.org), so
/// pipes, files and tests get plain text.
enum Colour: String {
    case green = "32", yellow = "33", red = "31", cyan = "36"

    /// Whether standard output gets colour, decided once per process.
    static let isEnabled: Bool = {
        guard isatty(1) == 1 else { return false }
        if let value = getenv("NO_COLOR"), value.pointee != 0 { return false }
        return true
    }()

    /// `text` in this colour when ``isEnabled``, else `text` as it is.
    func paint(_ text: String) -> String {
        guard Self.isEnabled, !text.isEmpty else { return text }
        return "\u{1B}[\(rawValue)m\(text)\u{1B}[0m"
    }
}

/// How far into its total a budget or an allocation is, for colour:
/// under 80 %, 80–100 %, or over (or an `EXCEEDED` budget).
enum SpendLevel {
    case normal, near, over

    init(spent: Money, total: Money, exceeded: Bool = false) {
        if exceeded || spent > total {
            self = .over
        } else if spent.reaches(percent: 80, of: total) {
            self = .near
        } else {
            self = .normal
        }
    }

    var colour: Colour {
        switch self {
        case .normal: .green
        case .near: .yellow
        case .over: .red
        }
    }
}

/// A spend gauge: a 10-cell bar and the exact percentage, `████████░░` and
/// `81.3 %`, computed from the exact amounts of a reply.
struct SpendGauge {
    /// Cells in a bar.
    static let width = 10

    /// The bar, `████████░░`; empty for an unlimited budget or an amount that
    /// is not a number.
    let bar: String
    /// The percentage with its sign, `81.3 %`; `-` when there is no total.
    let percent: String
    /// The colour band, nil without a total.
    let level: SpendLevel?

    /// A gauge of `spent` against `total` (amounts as the daemon sent them).
    ///
    /// - Parameters:
    ///   - unlimited: no total to measure against: no bar, `-`.
    ///   - exceeded: the daemon says `EXCEEDED`, which is red whatever the figures.
    init(spent: JSONValue?, total: JSONValue?, unlimited: Bool = false, exceeded: Bool = false) {
        guard !unlimited,
              let spentMoney = Format.money(spent),
              let totalMoney = Format.money(total),
              totalMoney > .zero
        else {
            bar = ""
            percent = "-"
            level = nil
            return
        }
        let cells = Self.cells(spent: spentMoney, total: totalMoney)
        bar = String(repeating: "█", count: cells) + String(repeating: "░", count: Self.width - cells)
        percent = spentMoney.percentage(of: totalMoney) + " %"
        level = SpendLevel(spent: spentMoney, total: totalMoney, exceeded: exceeded)
    }

    /// Full cells: ⌊spent × 10 ÷ total⌋, between 0 and 10. Integer arithmetic
    /// on nano-units: amounts are at most 1e21 nanos, so ×10 cannot overflow.
    static func cells(spent: Money, total: Money) -> Int {
        precondition(total > .zero, "a gauge needs a positive total")
        guard spent > .zero else { return 0 }
        let cells = spent.nanos * Int128(width) / total.nanos
        return Int(min(cells, Int128(width)))
    }

    /// The bar, coloured on a terminal.
    var paintedBar: String {
        level.map { $0.colour.paint(bar) } ?? bar
    }

    /// The percentage, coloured on a terminal.
    var paintedPercent: String {
        level.map { $0.colour.paint(percent) } ?? percent
    }

    /// `████████░░  81.3 %` (just `-` without a total), for a line of text.
    var text: String {
        bar.isEmpty ? percent : "\(paintedBar)  \(paintedPercent)"
    }
}

/// The daily spend of a period as a sparkline, `▁▂▃▅▇`.
///
/// Days of the period up to today without an entry count as 0. A day with no
/// spend is `▁`; a day with spend is one of `▂`…`█`, in proportion to the
/// highest day, so a small spend never looks like none. Periods longer than
/// ``maxDailyCells`` days are drawn by week (7-day sums from the start), and
/// only the last ``maxDailyCells`` weeks are drawn.
struct Sparkline {
    /// The longest period drawn day by day (a quarter), and the most cells drawn.
    static let maxDailyCells = 93
    static let levels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// The first and last day drawn.
    let first: CivilDate
    let last: CivilDate
    /// Each day's spend, from `first` to `last`.
    let days: [Money]

    /// The spend from a `dailySpend` list (`[{"date", "amount"}]`), over the
    /// period's days up to `today`; nil when the period has no day yet.
    /// Entries outside those days are left out.
    init?(dailySpend: [JSONValue], first: CivilDate, last periodLast: CivilDate?, today: CivilDate) {
        var last = today
        if let periodLast, periodLast < last { last = periodLast }
        guard first <= last else { return nil }
        let count = Int(last.daysSinceEpoch - first.daysSinceEpoch) + 1
        var days = [Money](repeating: .zero, count: count)
        for entry in dailySpend {
            guard let text = entry["date"]?.stringValue,
                  let date = try? CivilDate(parsing: text),
                  first <= date, date <= last,
                  let amount = Format.money(entry["amount"])
            else { continue }
            days[Int(date.daysSinceEpoch - first.daysSinceEpoch)] += amount
        }
        self.first = first
        self.last = last
        self.days = days
    }

    /// Days per cell: 1, or 7 for periods longer than ``maxDailyCells`` days.
    var daysPerCell: Int {
        days.count <= Self.maxDailyCells ? 1 : 7
    }

    /// The sparkline itself.
    var line: String {
        var cells: [Money] = []
        let step = daysPerCell
        var index = 0
        while index < days.count {
            cells.append(days[index..<min(index + step, days.count)].reduce(.zero, +))
            index += step
        }
        let shown = cells.suffix(Self.maxDailyCells)
        let highest = shown.max() ?? .zero
        return String(shown.map { Self.glyph($0, highest: highest) })
    }

    /// `▁` for nothing, else `▂`…`█` by the amount's share of `highest`.
    static func glyph(_ amount: Money, highest: Money) -> Character {
        guard amount > .zero, highest > .zero else { return levels[0] }
        let steps = Int128(levels.count - 2)
        let level = 1 + Int(min(amount.nanos * steps / highest.nanos, steps))
        return levels[level]
    }

    /// The day with the most spend (the first of equals), nil without spend.
    var highestDay: (date: CivilDate, amount: Money)? {
        pick { $0 > $1 }
    }

    /// The day with the least spend among days with spend (the first of equals).
    var lowestDay: (date: CivilDate, amount: Money)? {
        pick { $0 < $1 }
    }

    /// The first day with spend that no later day `beats`.
    private func pick(_ beats: (Money, Money) -> Bool) -> (date: CivilDate, amount: Money)? {
        var best: (offset: Int, amount: Money)?
        for (offset, amount) in days.enumerated() where amount > .zero {
            if let current = best, !beats(amount, current.amount) { continue }
            best = (offset, amount)
        }
        return best.map { (first.addingDays($0.offset), $0.amount) }
    }

    /// How many days had no spend.
    var daysWithoutSpend: Int {
        days.count(where: { $0 <= .zero })
    }
}

/// The current time, for what depends on "today".
enum Now {
    static func timestamp() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(nanosecondsSinceEpoch: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}
