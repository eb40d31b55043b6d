public import BudgetCore
import Synchronization

extension Engine {
    /// Asks the loop to reload the price catalog and to replace the SPENDING_SPIKE / LOW_BUDGET
    /// settings (SIGHUP with a re-read config file), between two batches; safe from any thread.
    /// The settings go through a lock the engine thread takes once per reload, so no batch ever
    /// sees half of them, and no event is dropped or counted twice.
    ///
    /// `pricesPath`: the catalog the re-read configuration names; the catalog is then loaded
    /// from there (nil: from the path in use, as a configuration without `prices` cannot
    /// unload the catalog).
    public func requestReload(alertSettings: AlertSettings, pricesPath: String? = nil) {
        pendingAlertSettings.withLock { $0 = alertSettings }
        pendingPricesPath.withLock { $0 = pricesPath }
        requestReload()
    }
}
