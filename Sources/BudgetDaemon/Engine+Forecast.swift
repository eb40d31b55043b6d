import BudgetCore
import BudgetStore

extension Engine {
    /// `forecast` (CONTRACT §6): one forecast per platform and service with spend, from the
    /// daily rollup of root budgets (each cost counted once) in `currency` (default USD, as
    /// `analytics`), filtered by `platform` (case-insensitive) and `serviceType`. Read-only.
    /// The method is `Forecaster`'s (docs/forecasting.md).
    func forecastOp(_ args: Args, _ w: StoreWriter, now: Timestamp) throws -> JSONValue {
        guard let period = try args.enumValue("forecastPeriod", ForecastPeriod.self) else {
            throw ControlFailure(.validationFailed, "forecastPeriod is required: WEEKLY, MONTHLY or QUARTERLY")
        }
        let platform = try args.string("platform")
        let serviceType = try args.enumValue("serviceType", ServiceType.self)
        let currency = try args.string("currency").map(UsageEventDecoder.uppercased) ?? "USD"
        let roots = ledger.budgetsInOrder.filter { $0.parentId == nil && $0.currency == currency }.map(\.id)
        let today = now.civilDate
        let rows = try w.reader.dailySpend(
            budgetIds: roots, fromDay: today.addingDays(-Forecaster.maxHistoryDays).description, toDay: today.description
        )
        let spend = try rows.map { row in
            guard let day = try? CivilDate(parsing: row.key.day) else {
                throw StoreError("corrupt day \(row.key.day) in daily_spend")
            }
            return PlatformDaySpend(day: day, platform: row.key.platform, serviceType: row.key.serviceType, amount: row.amount)
        }
        let forecasts = Forecaster.forecasts(
            spend, period: period, now: now, currency: currency, platform: platform, serviceType: serviceType
        )
        return .array(forecasts.map(\.json))
    }
}
