// Adjustments: credits (refunds) and re-pricing differences (docs/ledger.md).
//
// The history is append-only: a correction is a new cost row with its own (signed) amount,
// booked like any cost, never an edit of the row it corrects.

extension Ledger {
    /// Books a signed adjustment to a budget: a credit (negative) or a re-pricing difference
    /// (either sign). It counts in the budget, every ancestor and their matching allocations, as
    /// `book` does; a positive amount runs the alert rules as a cost would, a negative one re-arms
    /// what spend no longer crosses (thresholds, BUDGET_EXCEEDED with EXCEEDED → ACTIVE and
    /// `status.ACTIVE`, ALLOCATION_DEPLETED), nearest budget first, each budget before what the
    /// booking then fires for it.
    public mutating func adjust(
        amount: Money, budgetId: String, platform: String, serviceType: ServiceType,
        eventId: String?, costTime: Timestamp, at now: Timestamp, routed: RouteTarget? = nil
    ) -> Booking {
        book(
            amount: amount, budgetId: budgetId, platform: platform, serviceType: serviceType,
            eventId: eventId, costTime: costTime, at: now, rearming: amount < .zero, routed: routed
        )
    }
}
