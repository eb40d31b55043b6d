// Spend forecasts per platform and service (issue 5 item 4; CONTRACT §6 `forecast`).
//
// Money is exact everywhere in budgetd except inside the fitting below. A forecast is an
// estimate, not a booked amount: the regression works on the daily totals as `Double`, and
// every figure it hands back is converted to `Money` by rounding half-even to 1e-4
// (`Money(estimate:)`), so the reply still carries exact decimals and nothing computed here
// is ever added to a ledger total. See docs/forecasting.md for the method and its back-test.

/// How far a forecast looks ahead, and how far back its `currentCost` looks.
public enum ForecastPeriod: String, Sendable, Hashable, CaseIterable {
    case weekly = "WEEKLY", monthly = "MONTHLY", quarterly = "QUARTERLY"

    /// The period in whole UTC days: 7, 30, 91.
    public var days: Int {
        switch self {
        case .weekly: 7
        case .monthly: 30
        case .quarterly: 91
        }
    }
}

/// Whether spend is going up, down, or neither (judged by ``Forecaster/trendDirection``).
public enum TrendDirection: String, Sendable, Hashable, CaseIterable {
    case increasing = "INCREASING", decreasing = "DECREASING", stable = "STABLE"
}

/// The regression a series was forecast with, chosen by how many days it has and which
/// terms pass their significance test.
public enum ForecastModel: String, Sendable, Hashable, CaseIterable {
    /// The mean day.
    case level = "LEVEL"
    /// A line through the days.
    case trend = "TREND"
    /// The mean day plus a day-of-week profile.
    case weekday = "WEEKDAY"
    /// A line plus a day-of-week profile.
    case trendWeekday = "TREND_WEEKDAY"
    /// A line per weekday: a day-of-week profile that grows (or shrinks) with the trend.
    case trendByWeekday = "TREND_BY_WEEKDAY"
}

/// One UTC day's spend.
public struct DayAmount: Sendable, Hashable {
    public var day: CivilDate
    public var amount: Money

    public init(day: CivilDate, amount: Money) {
        self.day = day
        self.amount = amount
    }

    public var json: JSONValue {
        .object(JSONObject([("date", .string(day.description)), ("amount", .number(amount))]))
    }
}

/// The forecast of one daily series.
public struct SeriesForecast: Sendable, Hashable {
    /// The predicted spend of each day of the horizon (never negative), first day first.
    public var daily: [Money]
    /// The sum of `daily`, exactly.
    public var total: Money
    /// 0–100 with at most two decimals: how much to trust `total` (see ``Forecaster``).
    public var confidence: ExactDecimal
    /// The days of history the fit rests on.
    public var basedOnDays: Int
    public var trendDirection: TrendDirection
    public var model: ForecastModel
    /// The fitted slope per day, as an estimate (0 for models without a trend).
    public var slopePerDay: Money
}

/// Forecasts a daily spend series by least squares: a level, a linear trend and a
/// day-of-week profile, each kept only when the data supports it (docs/forecasting.md).
///
/// - Fewer than 3 days: the mean day (`LEVEL`).
/// - 3 to 13 days: a line; fewer than 14 days cannot estimate six weekday effects.
/// - 14 days and more: a line plus six weekday effects, kept when an F-test at 5 % says they
///   explain the data; from 28 days, also each weekday's own slope (weekday × trend), kept by
///   the same test, so a weekly profile can grow with the level. The trend is then kept when
///   its t-test at 5 % says so: a series flat within its noise is forecast by its (weekday)
///   mean, not by a noisy slope.
/// - The fit uses the last ``fitWindow(horizon:)`` days at most, so an old regime does not
///   bend the line for ever; predictions below zero are cut to zero.
///
/// `trendDirection` is INCREASING or DECREASING when the slope is significant (t-test at 5 %)
/// *and* it moves spend by at least ``materialChange`` of the mean day over 30 days; STABLE
/// otherwise. `confidence` = length score × fit score: the length score rises with the days of
/// history (√(n/30) × 90 up to 30 days, then up to 95 at 90 days: "30+ days, 80–90 %"); the
/// fit score is 1 ÷ (1 + 2 × r), where r is the larger of the prediction standard error of
/// the period's total relative to the forecast total (noise and the uncertainty of the fitted
/// terms) and the out-of-sample error of ``holdoutError(y:days:horizon:)``.
public enum Forecaster {
    /// Days of history at most, whatever the horizon.
    public static let maxHistoryDays = 365

    /// Relative change over 30 days, of the mean day, below which a significant slope is still STABLE.
    public static let materialChange = 0.05

    /// The fit window for a horizon: three horizons, at least 8 weeks, at most a year.
    public static func fitWindow(horizon: Int) -> Int {
        min(maxHistoryDays, max(56, 3 * horizon))
    }

    /// Forecasts the `horizon` days that begin `gap` days after the last day of `history`
    /// (`gap` 0: the next day). `history` holds consecutive days, the first on `firstDay`.
    public static func forecast(history: [Money], firstDay: CivilDate, gap: Int = 0, horizon: Int) -> SeriesForecast {
        precondition(horizon >= 1 && gap >= 0, "a forecast needs a horizon of at least a day")
        let window = min(history.count, fitWindow(horizon: horizon))
        let skipped = history.count - window
        let y = history.suffix(window).map(\.doubleValue)
        let start = firstDay.addingDays(skipped)
        let days = (0..<window).map { start.addingDays($0) }
        let future = (0..<horizon).map { start.addingDays(window + gap + $0) }

        guard !y.isEmpty else {
            return SeriesForecast(
                daily: Array(repeating: .zero, count: horizon), total: .zero, confidence: .zero,
                basedOnDays: 0, trendDirection: .stable, model: .level, slopePerDay: .zero
            )
        }
        let fit = Fit.choose(y: y, days: days)
        // Days are indexed from the window's first day; the future continues the count.
        let futureIndex = (0..<horizon).map { window + gap + $0 }
        let rows = zip(futureIndex, future).map { fit.spec.row(index: $0.0, day: $0.1, count: window) }
        let predictions = rows.map { row in max(0, zip(row, fit.beta).reduce(0) { $0 + $1.0 * $1.1 }) }
        let daily = predictions.map { Money(estimate: $0) }
        let total = daily.reduce(Money.zero, +)

        // The prediction error of the total: horizon × σ² of noise plus the variance of the
        // summed fitted terms, s′ Cov(β) s with s the sum of the future rows.
        var sumRow = Array(repeating: 0.0, count: fit.beta.count)
        for row in rows { for k in row.indices { sumRow[k] += row[k] } }
        var termVariance = 0.0
        for i in sumRow.indices { for j in sumRow.indices { termVariance += sumRow[i] * fit.inverse[i][j] * sumRow[j] } }
        let variance = fit.sigma2 * (Double(horizon) + max(0, termVariance))
        let forecastTotal = predictions.reduce(0, +)
        let modelError: Double = if forecastTotal > 0 {
            variance.squareRoot() / forecastTotal
        } else {
            variance > 0 ? 1 : 0
        }
        let relativeError = max(modelError, holdoutError(y: y, days: days, horizon: horizon))
        // Degenerate arithmetic (never seen, but Int128(Double) would trap on NaN) scores as a 100 % error.
        let fitScore = relativeError.isFinite ? 1 / (1 + 2 * relativeError) : 1.0 / 3
        let n = Double(window)
        let lengthScore = window >= 30 ? 90 + 5 * min(1, (n - 30) / 60) : 90 * (n / 30).squareRoot()
        let confidence = ExactDecimal(mantissa: Int128((lengthScore * fitScore * 100).rounded(.toNearestOrEven)), exponent: -2)

        return SeriesForecast(
            daily: daily, total: total, confidence: confidence.normalized, basedOnDays: window,
            trendDirection: trendDirection(y: y, days: days), model: fit.spec.model,
            slopePerDay: Money(signedEstimate: fit.spec.hasTrend ? fit.beta[1] : 0)
        )
    }

    /// The out-of-sample error: the model chosen on all but the last k days (k = the horizon,
    /// at most a third of the days) forecasts those k days; the relative error of their total.
    /// It catches what the noise estimate cannot: a model that does not fit (a step in spend
    /// looks like a trend). 0 when there are too few days to hold any out.
    static func holdoutError(y: [Double], days: [CivilDate], horizon: Int) -> Double {
        let k = min(horizon, y.count / 3)
        guard k >= 1, y.count - k >= 3 else { return 0 }
        let n = y.count - k
        let fit = Fit.choose(y: Array(y[..<n]), days: Array(days[..<n]))
        var predicted = 0.0
        for i in n..<y.count {
            predicted += max(0, zip(fit.spec.row(index: i, day: days[i], count: n), fit.beta).reduce(0) { $0 + $1.0 * $1.1 })
        }
        let actual = y[n...].reduce(0, +)
        if actual > 0 { return abs(predicted - actual) / actual }
        return predicted > 0 ? 1 : 0
    }

    /// INCREASING or DECREASING for a slope that is significant (t-test at 5 %, in the
    /// line-plus-weekday model when there are 14 days, else the line) and material (it
    /// moves the mean day by ``materialChange`` or more over 30 days); else STABLE.
    static func trendDirection(y: [Double], days: [CivilDate]) -> TrendDirection {
        guard y.count >= 3 else { return .stable }
        let spec = FitSpec(hasTrend: true, hasWeekday: y.count >= Fit.weekdayMinimum)
        guard let fit = Fit(spec: spec, y: y, days: days), fit.df > 0 else { return .stable }
        let slope = fit.beta[1]
        let mean = y.reduce(0, +) / Double(y.count)
        guard mean > 0, fit.isSignificant(term: 1) else { return .stable }
        guard abs(slope) * 30 >= materialChange * mean else { return .stable }
        return slope > 0 ? .increasing : .decreasing
    }
}

// MARK: - Fitting (Double inside, by design: see the top of the file)

/// Which terms a regression has.
struct FitSpec: Hashable {
    var hasTrend: Bool
    var hasWeekday: Bool
    /// Weekday × trend: each weekday's own slope, so a weekly profile can grow with the level
    /// (spend is seasonal in proportion: a quiet Sunday stays quiet as weekdays grow).
    var hasInteraction = false

    var model: ForecastModel {
        switch (hasTrend, hasWeekday) {
        case (false, false): .level
        case (true, false): .trend
        case (false, true): .weekday
        case (true, true): hasInteraction ? .trendByWeekday : .trendWeekday
        }
    }

    var parameterCount: Int { 1 + (hasTrend ? 1 : 0) + (hasWeekday ? 6 : 0) + (hasInteraction ? 6 : 0) }

    /// The design row of day number `index` (0 = the first day of the fit): 1, the day
    /// centred on the window (trend), six weekday effects and their products with the trend.
    ///
    /// Weekdays are effect-coded (Tuesday…Sunday: 1 on that day, −1 on Mondays, else 0), so
    /// the intercept is the mean weekday and the trend coefficient the mean slope over the
    /// weekdays, whichever terms are present: its t-test is the trend's.
    func row(index: Int, day: CivilDate, count: Int) -> [Double] {
        var row = [1.0]
        let t = Double(index) - Double(count - 1) / 2
        if hasTrend { row.append(t) }
        if hasWeekday {
            let weekday = day.weekday
            let effects = (1...6).map { w -> Double in weekday == w ? 1 : (weekday == 0 ? -1 : 0) }
            row += effects
            if hasInteraction { row += effects.map { $0 * t } }
        }
        return row
    }
}

/// An ordinary least-squares fit: coefficients, (XᵀX)⁻¹ and the residual variance.
struct Fit {
    static let weekdayMinimum = 14
    static let interactionMinimum = 28

    var spec: FitSpec
    var beta: [Double]
    var inverse: [[Double]]
    var sse: Double
    var df: Int
    /// The smallest residual standard deviation taken seriously: 1e-9 of the mean day. Below
    /// it a residual is rounding in the arithmetic, so an exact series does not make a
    /// rounding-sized slope "significant".
    var noiseFloor: Double
    /// σ², the residual variance (SSE ÷ degrees of freedom, at least the floor²; 0 without any).
    var sigma2: Double { df > 0 ? max(sse / Double(df), noiseFloor * noiseFloor) : 0 }

    init?(spec: FitSpec, y: [Double], days: [CivilDate]) {
        let x = days.indices.map { spec.row(index: $0, day: days[$0], count: days.count) }
        guard let (beta, inverse) = Self.leastSquares(x, y) else { return nil }
        var sse = 0.0
        for (row, value) in zip(x, y) {
            let e = value - zip(row, beta).reduce(0) { $0 + $1.0 * $1.1 }
            sse += e * e
        }
        self.spec = spec
        self.beta = beta
        self.inverse = inverse
        self.sse = sse
        df = y.count - spec.parameterCount
        noiseFloor = 1e-9 * max(y.reduce(0) { $0 + abs($1) } / Double(y.count), 1e-9)
    }

    /// The t-test of coefficient `term` against 0, two-sided at 5 %.
    func isSignificant(term: Int) -> Bool {
        guard df > 0 else { return false }
        let variance = sigma2 * inverse[term][term]
        guard variance > 0 else { return false }
        return abs(beta[term]) / variance.squareRoot() > StudentT.critical95(df: df)
    }

    /// The model for `y`: the line, plus the weekday block (14+ days) and the weekday × trend
    /// block (28+ days) when their F-tests at 5 % say they explain the data; then the trend
    /// (with its interactions) dropped when its t-test at 5 % does not hold.
    static func choose(y: [Double], days: [CivilDate]) -> Fit {
        let level = Fit(spec: FitSpec(hasTrend: false, hasWeekday: false), y: y, days: days)!
        guard y.count >= 3 else { return level }
        var spec = FitSpec(hasTrend: true, hasWeekday: false)
        if y.count >= weekdayMinimum,
           let weekly = Fit(spec: FitSpec(hasTrend: true, hasWeekday: true), y: y, days: days),
           let line = Fit(spec: spec, y: y, days: days), weekly.improves(on: line) {
            spec.hasWeekday = true
            if y.count >= interactionMinimum,
               let growing = Fit(spec: FitSpec(hasTrend: true, hasWeekday: true, hasInteraction: true), y: y, days: days),
               growing.improves(on: weekly) {
                spec.hasInteraction = true
            }
        }
        guard let withTrend = Fit(spec: spec, y: y, days: days) else { return level }
        if withTrend.isSignificant(term: 1) { return withTrend }
        return Fit(spec: FitSpec(hasTrend: false, hasWeekday: spec.hasWeekday), y: y, days: days) ?? level
    }

    /// The F-test of the extra terms of `self` over the nested `smaller` fit, at 5 %.
    func improves(on smaller: Fit) -> Bool {
        let extra = smaller.df - df
        guard extra > 0, df > 0 else { return false }
        let f = ((smaller.sse - sse) / Double(extra)) / sigma2
        return f > FDistribution.critical95(numerator: extra, denominator: df)
    }

    /// Solves the normal equations XᵀX β = Xᵀy by Gauss–Jordan elimination with partial
    /// pivoting; returns β and (XᵀX)⁻¹, or nil when XᵀX is singular (a column is constant or
    /// a weekday never occurs).
    static func leastSquares(_ x: [[Double]], _ y: [Double]) -> (beta: [Double], inverse: [[Double]])? {
        guard let p = x.first?.count, x.count >= p else { return nil }
        var a = Array(repeating: Array(repeating: 0.0, count: 2 * p), count: p)
        var xty = Array(repeating: 0.0, count: p)
        for (row, value) in zip(x, y) {
            for i in 0..<p {
                xty[i] += row[i] * value
                for j in 0..<p { a[i][j] += row[i] * row[j] }
            }
        }
        for i in 0..<p { a[i][p + i] = 1 }
        let scale = (0..<p).map { a[$0][$0] }.max() ?? 1
        for column in 0..<p {
            var pivot = column
            for r in column..<p where abs(a[r][column]) > abs(a[pivot][column]) { pivot = r }
            guard abs(a[pivot][column]) > 1e-10 * max(scale, 1) else { return nil }
            a.swapAt(column, pivot)
            let d = a[column][column]
            for j in 0..<(2 * p) { a[column][j] /= d }
            for r in 0..<p where r != column {
                let factor = a[r][column]
                if factor == 0 { continue }
                for j in 0..<(2 * p) { a[r][j] -= factor * a[column][j] }
            }
        }
        let inverse = a.map { Array($0[p...]) }
        let beta = inverse.map { row in zip(row, xty).reduce(0) { $0 + $1.0 * $1.1 } }
        return (beta, inverse)
    }
}

/// Two-sided 5 % critical values of Student's t.
enum StudentT {
    static let table: [Double] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ]

    /// The value for `df` degrees of freedom; between table rows, the row below (the larger
    /// value), so the test never claims more than it should.
    static func critical95(df: Int) -> Double {
        precondition(df >= 1)
        if df <= 30 { return table[df - 1] }
        if df <= 40 { return 2.042 }
        if df <= 60 { return 2.021 }
        if df <= 120 { return 2.000 }
        return 1.980
    }
}

/// Upper 5 % critical values of F(d1, d2) for d1 = 1…6, the block sizes tested here.
enum FDistribution {
    /// Rows: d2 = 1…30, then 40, 60, 120; columns d1 = 1…6.
    static let rows: [(d2: Int, values: [Double])] = [
        (1, [161.4, 199.5, 215.7, 224.6, 230.2, 234.0]), (2, [18.51, 19.00, 19.16, 19.25, 19.30, 19.33]),
        (3, [10.13, 9.55, 9.28, 9.12, 9.01, 8.94]), (4, [7.71, 6.94, 6.59, 6.39, 6.26, 6.16]),
        (5, [6.61, 5.79, 5.41, 5.19, 5.05, 4.95]), (6, [5.99, 5.14, 4.76, 4.53, 4.39, 4.28]),
        (7, [5.59, 4.74, 4.35, 4.12, 3.97, 3.87]), (8, [5.32, 4.46, 4.07, 3.84, 3.69, 3.58]),
        (9, [5.12, 4.26, 3.86, 3.63, 3.48, 3.37]), (10, [4.96, 4.10, 3.71, 3.48, 3.33, 3.22]),
        (11, [4.84, 3.98, 3.59, 3.36, 3.20, 3.09]), (12, [4.75, 3.89, 3.49, 3.26, 3.11, 3.00]),
        (13, [4.67, 3.81, 3.41, 3.18, 3.03, 2.92]), (14, [4.60, 3.74, 3.34, 3.11, 2.96, 2.85]),
        (15, [4.54, 3.68, 3.29, 3.06, 2.90, 2.79]), (16, [4.49, 3.63, 3.24, 3.01, 2.85, 2.74]),
        (17, [4.45, 3.59, 3.20, 2.96, 2.81, 2.70]), (18, [4.41, 3.55, 3.16, 2.93, 2.77, 2.66]),
        (19, [4.38, 3.52, 3.13, 2.90, 2.74, 2.63]), (20, [4.35, 3.49, 3.10, 2.87, 2.71, 2.60]),
        (21, [4.32, 3.47, 3.07, 2.84, 2.68, 2.57]), (22, [4.30, 3.44, 3.05, 2.82, 2.66, 2.55]),
        (23, [4.28, 3.42, 3.03, 2.80, 2.64, 2.53]), (24, [4.26, 3.40, 3.01, 2.78, 2.62, 2.51]),
        (25, [4.24, 3.39, 2.99, 2.76, 2.60, 2.49]), (26, [4.23, 3.37, 2.98, 2.74, 2.59, 2.47]),
        (27, [4.21, 3.35, 2.96, 2.73, 2.57, 2.46]), (28, [4.20, 3.34, 2.95, 2.71, 2.56, 2.45]),
        (29, [4.18, 3.33, 2.93, 2.70, 2.55, 2.43]), (30, [4.17, 3.32, 2.92, 2.69, 2.53, 2.42]),
        (40, [4.08, 3.23, 2.84, 2.61, 2.45, 2.34]), (60, [4.00, 3.15, 2.76, 2.53, 2.37, 2.25]),
        (120, [3.92, 3.07, 2.68, 2.45, 2.29, 2.18]),
    ]

    /// The value for (d1, d2); between rows, the row of the next smaller d2 (the larger value).
    static func critical95(numerator d1: Int, denominator d2: Int) -> Double {
        precondition((1...6).contains(d1) && d2 >= 1)
        let row = rows.last { $0.d2 <= d2 } ?? rows[0]
        return row.values[d1 - 1]
    }
}

extension CivilDate {
    /// ISO weekday from 0: Monday 0 … Sunday 6 (1970-01-01 was a Thursday).
    public var weekday: Int {
        Int(((daysSinceEpoch + 3) % 7 + 7) % 7)
    }
}

extension Money {
    /// The amount in currency units as a `Double`: for the forecast's fitting only.
    var doubleValue: Double {
        Double(nanos) / Double(Money.nanosPerUnit)
    }

    /// An estimate in currency units, rounded half-even to 1e-4 and kept within 0…1e12
    /// (a forecast of negative spend is no spend). Not for booked amounts.
    init(estimate value: Double) {
        self.init(signedEstimate: max(0, value))
    }

    /// As ``init(estimate:)`` but keeping the sign (a slope), within ±1e12.
    init(signedEstimate value: Double) {
        guard value.isFinite else {
            self = .zero
            return
        }
        let limit = 1e16 // 1e12 in units of 1e-4
        let tenThousandths = min(limit, max(-limit, (value * 10_000).rounded(.toNearestOrEven)))
        self.init(nanos: Int128(tenThousandths) * 100_000)
    }
}

// MARK: - Per platform and service

/// A day's spend on one platform and service (summed over root budgets, so counted once).
public struct PlatformDaySpend: Sendable, Hashable {
    public var day: CivilDate
    public var platform: String
    public var serviceType: ServiceType
    public var amount: Money

    public init(day: CivilDate, platform: String, serviceType: ServiceType, amount: Money) {
        self.day = day
        self.platform = platform
        self.serviceType = serviceType
        self.amount = amount
    }
}

/// A forecast row of the `forecast` op: CONTRACT §6's CostForecast, plus its `currency`, the
/// model used, and the daily `history` (the `currentCost` window) and `projection` (the
/// forecast window) that budgetctl charts.
public struct CostForecast: Sendable, Hashable {
    public var platform: String
    public var serviceType: ServiceType
    public var forecastPeriod: ForecastPeriod
    public var currency: String
    /// Spend of the last period-length window, today included.
    public var currentCost: Money
    /// Predicted spend of the next period: the days after today.
    public var forecastedCost: Money
    public var confidence: ExactDecimal
    public var basedOnDays: Int
    public var trendDirection: TrendDirection
    public var model: ForecastModel
    public var history: [DayAmount]
    public var projection: [DayAmount]

    public var json: JSONValue {
        .object(JSONObject([
            ("platform", .string(platform)), ("serviceType", .string(serviceType.rawValue)),
            ("forecastPeriod", .string(forecastPeriod.rawValue)), ("currency", .string(currency)),
            ("currentCost", .number(currentCost)), ("forecastedCost", .number(forecastedCost)),
            ("confidence", .number(confidence)), ("basedOnDays", .number(basedOnDays)),
            ("trendDirection", .string(trendDirection.rawValue)), ("model", .string(model.rawValue)),
            ("history", .array(history.map(\.json))), ("projection", .array(projection.map(\.json))),
        ]))
    }
}

extension Forecaster {
    /// One forecast per (platform, serviceType) with spend, platforms compared
    /// case-insensitively (shown as spelled on their first day; of two spellings that day,
    /// the one that sorts first), filtered by `platform`
    /// and `serviceType` when given.
    ///
    /// Each series runs from its first day with spend to today, missing days counting as 0.
    /// Today is still under way, so the fit uses the whole days before it (today alone when
    /// there is nothing else) and the forecast covers the `period` days after today;
    /// `currentCost` is the spend of the `period` days up to and including today. Days after
    /// today (events with a future `time`) are ignored.
    public static func forecasts(
        _ rows: [PlatformDaySpend], period: ForecastPeriod, now: Timestamp, currency: String,
        platform: String? = nil, serviceType: ServiceType? = nil
    ) -> [CostForecast] {
        let today = now.civilDate
        let wanted = platform?.lowercased()
        var names: [String: String] = [:]
        var series: [SeriesKey: [CivilDate: Money]] = [:]
        for row in rows.sorted(by: { ($0.day, $0.platform) < ($1.day, $1.platform) }) where row.day <= today {
            let lower = row.platform.lowercased()
            if let wanted, lower != wanted { continue }
            if let serviceType, row.serviceType != serviceType { continue }
            if names[lower] == nil { names[lower] = row.platform }
            series[SeriesKey(platform: lower, serviceType: row.serviceType), default: [:]][row.day, default: .zero] += row.amount
        }
        var result: [CostForecast] = []
        for (key, byDay) in series {
            guard let first = byDay.keys.min(), byDay.values.contains(where: { $0 != .zero }) else { continue }
            let start = max(first, today.addingDays(-maxHistoryDays))
            let lastWhole = today.addingDays(-1)
            let fitEnd = start <= lastWhole ? lastWhole : today
            let count = Int(fitEnd.daysSinceEpoch - start.daysSinceEpoch) + 1
            let history = (0..<count).map { byDay[start.addingDays($0)] ?? .zero }
            let gap = Int(today.daysSinceEpoch - fitEnd.daysSinceEpoch)
            let f = forecast(history: history, firstDay: start, gap: gap, horizon: period.days)
            let recent = (0..<period.days).map { offset -> DayAmount in
                let day = today.addingDays(offset - period.days + 1)
                return DayAmount(day: day, amount: byDay[day] ?? .zero)
            }
            result.append(CostForecast(
                platform: names[key.platform] ?? key.platform, serviceType: key.serviceType, forecastPeriod: period,
                currency: currency, currentCost: recent.reduce(.zero) { $0 + $1.amount }, forecastedCost: f.total,
                confidence: f.confidence, basedOnDays: f.basedOnDays, trendDirection: f.trendDirection, model: f.model,
                history: recent,
                projection: f.daily.enumerated().map { DayAmount(day: today.addingDays($0.offset + 1), amount: $0.element) }
            ))
        }
        return result.sorted {
            ($0.platform.lowercased(), $0.serviceType.rawValue) < ($1.platform.lowercased(), $1.serviceType.rawValue)
        }
    }

    struct SeriesKey: Hashable {
        var platform: String
        var serviceType: ServiceType
    }
}
