extension Ledger {
    /// The key UNPRICED_USAGE is deduplicated on: platform and model (case-insensitive) and the UTC month.
    public static func unpricedKey(platform: String, model: String?, month: String) -> String {
        platform.lowercased() + "\u{0}" + (model ?? "").lowercased() + "\u{0}" + month
    }

    /// Remembers UNPRICED_USAGE alerts already raised (from the database at start).
    public mutating func rememberUnpricedAlert(platform: String, model: String?, month: String) {
        unpricedAlerted.insert(Self.unpricedKey(platform: platform, model: model, month: month))
    }

    /// UNPRICED_USAGE (CONTRACT §5): usage that could not be priced is never silently zero. Fires
    /// once per platform and model per UTC month of the usage (the event's time, `usageTime`;
    /// `now` without one), with the budget the event routes to, or none. The alert carries the
    /// month (`usageMonth`), from which the rule is rebuilt at start.
    public mutating func unpricedUsage(
        platform: String, serviceType: ServiceType, model: String?, reason: String,
        budgetId: String?, currency: String, eventId: String?, usageTime: Timestamp? = nil, at now: Timestamp
    ) -> [OutboundMessage] {
        let month = (usageTime ?? now).civilDate.monthString
        let key = Self.unpricedKey(platform: platform, model: model, month: month)
        guard !unpricedAlerted.contains(key) else { return [] }
        unpricedAlerted.insert(key)
        let seq = nextSeq()
        let b = budgetId.flatMap { budgets[$0] }
        let what = model.map { "\(platform)/\($0)" } ?? platform
        var record = AlertRecord(
            id: "a_\(seq)", seq: seq, type: .unpricedUsage, budgetId: b?.id, budgetName: b?.name,
            platform: platform, serviceType: serviceType, model: model, threshold: nil,
            spentPercentage: b?.spentPercentage ?? "0", spentAmount: b?.spentAmount ?? .zero,
            totalAmount: b?.totalAmount ?? .zero, currency: b?.currency ?? currency, triggeredAt: now,
            eventId: eventId, message: "Usage of \(what) could not be priced (\(reason)); it is stored UNPRICED and priced again when the catalog is reloaded"
        )
        if b == nil { record.spentPercentage = "0" }
        record.usageMonth = month
        return [.alert(record)]
    }
}
