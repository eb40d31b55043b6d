import BudgetCore
import Testing

// Issue 5 item 4: the forecast, back-tested on synthetic series whose truth is known.

/// The noisy series come from the target's seeded generator, so they are the same on every run.
extension SplitMix64 {
    /// Uniform in [0, 1).
    mutating func uniform() -> Double {
        Double(next() >> 11) / Double(UInt64(1) << 53)
    }

    /// Approximately standard normal: the sum of 12 uniforms minus 6 (Irwin–Hall).
    mutating func normal() -> Double {
        (0..<12).reduce(0) { sum, _ in sum + uniform() } - 6
    }
}

/// A Monday, so weekday patterns line up with the day index.
private let seriesStart = CivilDate(year: 2026, month: 1, day: 5)!

/// Amounts from test literals, rounded to 1e-4 like the daily figures a publisher would send.
private func money(_ value: Double) -> Money {
    try! Money(parsing: String(Int((value * 10_000).rounded())) + "e-4")
}

private func money(_ text: String) -> Money {
    try! Money(parsing: text)
}

/// Weekday profile for the seasonal series: busy weekdays, quiet weekends (Monday first).
private let weekdayFactor: [Double] = [1.2, 1.2, 1.2, 1.2, 1.2, 0.4, 0.3]

/// A synthetic daily spend series: a known truth plus seeded Gaussian noise, with the error
/// bounds its back-test must stay within.
struct SyntheticSeries: Sendable, CustomStringConvertible {
    var name: String
    /// The noise-free series.
    var truth: [Double]
    /// What was "observed": truth plus noise, never below 0.
    var values: [Double]
    /// Upper bounds for the error of the 7- and 30-day totals and the daily MAPE over 30 days,
    /// all against the observed values.
    var maxTotal7: Double
    var maxTotal30: Double
    var maxDaily30: Double
    /// Upper bound for the daily MAPE over 30 days against the noise-free truth: the error of
    /// the method itself, without the noise no forecast can know.
    var maxTruth30: Double

    var description: String { name }

    static let length = 90
    static let fitDays = 60

    static func make(
        _ name: String, noise sigma: Double = 0, seed: UInt64 = 0,
        bounds: (total7: Double, total30: Double, daily30: Double, truth30: Double), _ truth: (Int) -> Double
    ) -> SyntheticSeries {
        var rng = SplitMix64(state: seed)
        let clean = (0..<length).map(truth)
        return SyntheticSeries(
            name: name, truth: clean, values: clean.map { max(0, $0 + sigma * rng.normal()) },
            maxTotal7: bounds.total7, maxTotal30: bounds.total30, maxDaily30: bounds.daily30, maxTruth30: bounds.truth30
        )
    }

    /// Exact series must come out exact, up to the 1e-4 rounding of the estimates.
    static let exact = (total7: 0.0001, total30: 0.0001, daily30: 0.0001, truth30: 0.0001)

    static let all: [SyntheticSeries] = [
        make("flat", bounds: exact) { _ in 10 },
        make("linear growth", bounds: exact) { t in 5 + 0.1 * Double(t) },
        make("linear decline", bounds: exact) { t in 20 - 0.15 * Double(t) },
        make("weekly cycle", bounds: exact) { t in 10 * weekdayFactor[t % 7] },
        make("step change (+75 % on day 40)", bounds: (0.08, 0.18, 0.18, 0.18)) { t in t < 40 ? 8 : 14 },
        make("noise (σ 20 %)", noise: 2, seed: 1, bounds: (0.05, 0.05, 0.20, 0.05)) { _ in 10 },
        make("noise (σ 50 %)", noise: 5, seed: 3, bounds: (0.30, 0.22, 0.45, 0.10)) { _ in 10 },
        make("growth × weekly + noise", noise: 0.5, seed: 2, bounds: (0.03, 0.03, 0.08, 0.06)) { t in
            (5 + 0.1 * Double(t)) * weekdayFactor[t % 7]
        },
    ]
}

/// Back-test figures of one series: errors of the 7- and 30-day totals, the daily MAPE over
/// 30 days against the observed values and against the noise-free truth.
struct BacktestResult {
    var total7: Double
    var total30: Double
    var daily30: Double
    var daily30Truth: Double
    var forecast30: SeriesForecast
}

private func backtest(_ series: SyntheticSeries) -> BacktestResult {
    let history = series.values.prefix(SyntheticSeries.fitDays).map(money)
    let actual = series.values.dropFirst(SyntheticSeries.fitDays).map { money($0).doubleForTests }
    let truth = Array(series.truth.dropFirst(SyntheticSeries.fitDays))
    let f7 = Forecaster.forecast(history: history, firstDay: seriesStart, horizon: 7)
    let f30 = Forecaster.forecast(history: history, firstDay: seriesStart, horizon: 30)
    func totalError(_ f: SeriesForecast, _ days: Int) -> Double {
        let sum = actual.prefix(days).reduce(0, +)
        return abs(f.total.doubleForTests - sum) / sum
    }
    func mape(_ reference: [Double]) -> Double {
        let errors = zip(f30.daily, reference).map { abs($0.doubleForTests - $1) / $1 }
        return errors.reduce(0, +) / Double(errors.count)
    }
    return BacktestResult(
        total7: totalError(f7, 7), total30: totalError(f30, 30), daily30: mape(actual), daily30Truth: mape(truth),
        forecast30: f30
    )
}

extension Money {
    /// For error ratios in tests only.
    fileprivate var doubleForTests: Double { Double(nanos) / 1e9 }
}

private func percent(_ x: Double) -> String {
    let hundredths = Int((x * 10_000).rounded())
    return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) %"
}

@Suite struct ForecastBacktests {
    /// Fit on the first 60 days, forecast the next 7 and 30, compare with what happened.
    @Test(arguments: SyntheticSeries.all)
    func backtestErrorStaysWithinItsBound(_ series: SyntheticSeries) {
        let r = backtest(series)
        #expect(r.total7 <= series.maxTotal7, "7-day total off by \(percent(r.total7))")
        #expect(r.total30 <= series.maxTotal30, "30-day total off by \(percent(r.total30))")
        #expect(r.daily30 <= series.maxDaily30, "daily MAPE \(percent(r.daily30))")
        #expect(r.daily30Truth <= series.maxTruth30, "daily MAPE against the truth \(percent(r.daily30Truth))")
    }

    /// The table in docs/forecasting.md: `swift test --filter ForecastBacktests/printTable`.
    @Test func printTable() {
        var lines = [
            "| series | model | 7-day total | 30-day total | 30-day daily MAPE | daily MAPE vs truth | confidence | trend |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for s in SyntheticSeries.all {
            let r = backtest(s)
            let f = r.forecast30
            lines.append(
                "| \(s.name) | \(f.model.rawValue) | \(percent(r.total7)) | \(percent(r.total30)) | \(percent(r.daily30)) "
                    + "| \(percent(r.daily30Truth)) | \(f.confidence) | \(f.trendDirection.rawValue) |"
            )
        }
        print(lines.joined(separator: "\n"))
    }
}

@Suite struct ForecastTests {
    /// `days` of `value(t)` plus seeded noise of `sigma`.
    func series(_ days: Int, noise sigma: Double = 0, seed: UInt64 = 7, _ value: (Int) -> Double) -> [Money] {
        var rng = SplitMix64(state: seed)
        return (0..<days).map { money(max(0, value($0) + sigma * rng.normal())) }
    }

    func forecast(_ history: [Money], horizon: Int = 30) -> SeriesForecast {
        Forecaster.forecast(history: history, firstDay: seriesStart, horizon: horizon)
    }

    @Test(arguments: [
        ("rising 1 %/day in noise", 1.0, TrendDirection.increasing),
        ("falling 1 %/day in noise", -1.0, .decreasing),
        ("flat in noise", 0.0, .stable),
    ])
    func trendDirectionFollowsASignificantSlope(_ name: String, percentPerDay: Double, expected: TrendDirection) {
        let history = series(45, noise: 1.5) { t in 20 * (1 + percentPerDay / 100 * Double(t)) }
        #expect(forecast(history).trendDirection == expected, "\(name)")
    }

    @Test func aSignificantButImmaterialSlopeIsStable() {
        // Exact, so the t-test finds the slope, but it moves the mean day by 0.3 % a month.
        let history = series(40) { t in 10 + 0.001 * Double(t) }
        let f = forecast(history)
        #expect(f.model == .trend)
        #expect(f.trendDirection == .stable)
        // 30 days after day 39: Σ (10 + 0.001 t) for t = 40…69 = 300 + 0.001 × 1635.
        #expect(f.total == money("301.635"))
    }

    @Test func aSlopeLostInTheNoiseIsNotExtrapolated() {
        // A hint of growth far below the noise: the forecast is the mean, not a line.
        let history = series(30, noise: 3, seed: 11) { t in 10 + 0.01 * Double(t) }
        let f = forecast(history)
        #expect(f.model == .level)
        #expect(f.trendDirection == .stable)
        #expect(f.slopePerDay == .zero)
        #expect(Set(f.daily).count == 1)
    }

    @Test func confidenceGrowsWithDaysAndFallsWithNoise() {
        let noisy = series(60, noise: 3) { _ in 10 }
        let clean = series(60, noise: 0.5) { _ in 10 }
        let short = Array(noisy.prefix(10))
        let week = Array(noisy.prefix(7))
        let c = { (h: [Money]) in forecast(h).confidence }
        #expect(c(week) < c(short))
        #expect(c(short) < c(noisy))
        #expect(c(noisy) < c(clean))
        // CostForecast's design: 30+ days of clean data, 80–90 %; a week, low.
        #expect(c(clean) >= ExactDecimal(80) && c(clean) <= ExactDecimal(95))
        #expect(c(week) < ExactDecimal(50))
        // A perfect fit over 90 days gets the whole length score, 95.
        #expect(c(series(90) { _ in 10 }) == ExactDecimal(95))
        #expect(c(series(30) { _ in 10 }) == ExactDecimal(90))
    }

    @Test func shortHistories() {
        let one = forecast([money("12")], horizon: 7)
        #expect(one.model == .level)
        #expect(one.total == money("84"))
        #expect(one.basedOnDays == 1)
        #expect(one.confidence == ExactDecimal(mantissa: 1643, exponent: -2)) // 90 × √(1/30), exact fit
        let two = forecast([money("10"), money("20")], horizon: 7)
        #expect(two.model == .level)
        #expect(two.total == money("105"))
        #expect(two.trendDirection == .stable)
        // Three days in a perfect line: the trend is extrapolated, the line continues.
        let three = forecast([money("10"), money("20"), money("30")], horizon: 2)
        #expect(three.model == .trend)
        #expect(three.daily == [money("40"), money("50")])
        #expect(three.trendDirection == .increasing)
    }

    @Test func aFallingLineStopsAtZero() {
        let history = series(20) { t in 20 - Double(t) }
        let f = forecast(history, horizon: 7)
        #expect(f.daily == Array(repeating: .zero, count: 7))
        #expect(f.total == .zero)
        #expect(f.trendDirection == .decreasing)
    }

    @Test func gapSkipsDaysBetweenHistoryAndHorizon() {
        let f = Forecaster.forecast(history: [money("10"), money("20"), money("30")], firstDay: seriesStart, gap: 1, horizon: 1)
        #expect(f.daily == [money("50")])
    }

    @Test func weekdays() {
        #expect(CivilDate(year: 1970, month: 1, day: 1)!.weekday == 3) // a Thursday
        #expect(seriesStart.weekday == 0) // 2026-01-05, a Monday
        #expect(CivilDate(year: 2026, month: 3, day: 1)!.weekday == 6) // a Sunday
        #expect(CivilDate(year: 1969, month: 12, day: 31)!.weekday == 2)
    }

    // MARK: Per platform and service

    func day(_ text: String) -> CivilDate { try! CivilDate(parsing: text) }

    func rows() -> [PlatformDaySpend] {
        var rows: [PlatformDaySpend] = []
        for d in 0..<19 {
            let date = day("2026-03-01").addingDays(d)
            // One platform spelled two ways (two budgets' rows), 10 a day together.
            rows.append(PlatformDaySpend(day: date, platform: "openai", serviceType: .api, amount: money("6")))
            rows.append(PlatformDaySpend(day: date, platform: "OpenAI", serviceType: .api, amount: money("4")))
        }
        rows.append(PlatformDaySpend(day: day("2026-03-20"), platform: "OpenAI", serviceType: .api, amount: money("3")))
        rows.append(PlatformDaySpend(day: day("2026-03-25"), platform: "OpenAI", serviceType: .api, amount: money("1000")))
        rows.append(PlatformDaySpend(day: day("2026-03-10"), platform: "Apify", serviceType: .scraping, amount: money("5")))
        rows.append(PlatformDaySpend(day: day("2026-03-12"), platform: "Apify", serviceType: .storage, amount: .zero))
        return rows
    }

    @Test func onePerPlatformAndServiceFromFirstSpendToToday() throws {
        let now = try Timestamp(rfc3339: "2026-03-20T12:00:00Z")
        let weekly = Forecaster.forecasts(rows(), period: .weekly, now: now, currency: "USD")
        #expect(weekly.map { "\($0.platform)/\($0.serviceType.rawValue)" } == ["Apify/SCRAPING", "OpenAI/API"])
        let openAI = try #require(weekly.last)
        // 1–19 March at 10 a day; today (the 20th, 3 so far) is not fitted; the 25th is the future.
        #expect(openAI.basedOnDays == 19)
        #expect(openAI.model == .level)
        #expect(openAI.forecastedCost == money("70"))
        #expect(openAI.projection.first?.day == day("2026-03-21"))
        #expect(openAI.projection.count == 7)
        // The last 7 days, today included: 14–19 March and today's 3.
        #expect(openAI.currentCost == money("63"))
        #expect(openAI.history.map(\.day) == (0..<7).map { day("2026-03-14").addingDays($0) })
        #expect(openAI.trendDirection == .stable)
        #expect(openAI.currency == "USD")
        let apify = try #require(weekly.first)
        #expect(apify.basedOnDays == 10) // 10–19 March, zeros after the one day with spend
        #expect(apify.currentCost == .zero)

        let monthly = Forecaster.forecasts(rows(), period: .monthly, now: now, currency: "USD", platform: "OPENAI")
        #expect(monthly.count == 1)
        #expect(monthly.first?.forecastedCost == money("300"))
        #expect(monthly.first?.currentCost == money("193"))
        let scraping = Forecaster.forecasts(rows(), period: .quarterly, now: now, currency: "USD", serviceType: .scraping)
        #expect(scraping.map(\.platform) == ["Apify"])
        #expect(scraping.first?.projection.count == 91)
    }

    @Test func onlyTodaysSpendIsUsedWhenThereIsNothingElse() throws {
        let now = try Timestamp(rfc3339: "2026-03-20T12:00:00Z")
        let rows = [PlatformDaySpend(day: day("2026-03-20"), platform: "OpenAI", serviceType: .api, amount: money("2"))]
        let f = try #require(Forecaster.forecasts(rows, period: .weekly, now: now, currency: "USD").first)
        #expect(f.basedOnDays == 1)
        #expect(f.forecastedCost == money("14"))
        #expect(f.currentCost == money("2"))
    }

    @Test func theReplyShape() throws {
        let now = try Timestamp(rfc3339: "2026-03-20T12:00:00Z")
        let f = try #require(Forecaster.forecasts(rows(), period: .weekly, now: now, currency: "USD", platform: "openai").first)
        let o = try #require(f.json.objectValue)
        #expect(o.keys == ["platform", "serviceType", "forecastPeriod", "currency", "currentCost", "forecastedCost",
                           "confidence", "basedOnDays", "trendDirection", "model", "history", "projection"])
        #expect(o["forecastedCost"]?.numberText == "70")
        #expect(o["basedOnDays"]?.numberText == "19")
        #expect(o["projection"]?.arrayValue?.first?["date"]?.stringValue == "2026-03-21")
    }
}
