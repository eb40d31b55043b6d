import BudgetCore
import BudgetStore

extension Engine {
    /// Above this many budgets the rollup is read for the range's days and filtered here, rather
    /// than with one SQL parameter per budget (SQLite caps the number of parameters).
    static let rollupIdLimit = 500

    /// `analytics`: budgets from the ledger, spend per platform and month from the daily rollup
    /// (never the cost rows).
    func analytics(_ args: Args, _ w: StoreWriter) throws -> JSONValue {
        let query = try AnalyticsQuery(args)
        let scope = Analytics.scope(ledger.budgetsInOrder, query)
        let ids = scope.topIds
        let rows = try w.reader.dailySpend(
            budgetIds: ids.count > Self.rollupIdLimit ? nil : ids,
            fromDay: query.fromDay?.description, toDay: query.toDay?.description
        )
        let daily = rows.compactMap { row -> DaySpend? in
            guard let day = try? CivilDate(parsing: row.key.day) else { return nil }
            return DaySpend(budgetId: row.key.budgetId, day: day, platform: row.key.platform, serviceType: row.key.serviceType, amount: row.amount)
        }
        return Analytics.report(scope, daily: daily, query: query).json
    }
}
