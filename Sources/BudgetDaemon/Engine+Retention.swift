import BudgetCore
import BudgetStore
import Logging

extension Engine {
    static let secondsPerDay: Int64 = 86_400

    /// The retention horizons at `now`: events received before `events` and dead letters and
    /// outbound messages before `others` go. `olderThan` (from `retention.run`) replaces the
    /// configured `retentionDays`; events younger than `dedupWindowDays` are kept either way.
    /// Nil when nothing is to be pruned (retention off and no `olderThan`).
    func retentionHorizons(olderThan: Timestamp?, now: Timestamp) -> (events: Timestamp, others: Timestamp)? {
        let others: Timestamp
        if let olderThan {
            others = olderThan
        } else if config.retentionDays > 0 {
            others = now.adding(seconds: -Int64(config.retentionDays) * Self.secondsPerDay)
        } else {
            return nil
        }
        let dedupStart = now.adding(seconds: -Int64(config.dedupWindowDays) * Self.secondsPerDay)
        return (min(others, dedupStart), others)
    }

    /// Prunes in `w`; the result of `retention.run`.
    func prune(olderThan: Timestamp?, now: Timestamp, _ w: StoreWriter) throws -> JSONValue {
        guard let horizons = retentionHorizons(olderThan: olderThan, now: now) else {
            return .object(JSONObject([
                ("enabled", .bool(false)), ("usageEvents", .number(0)), ("deadLetters", .number(0)), ("outbound", .number(0)),
            ]))
        }
        let counts = try w.prune(eventsBefore: horizons.events, othersBefore: horizons.others)
        if counts.usageEvents + counts.deadLetters + counts.outbound > 0 {
            logger.notice("retention: pruned", metadata: [
                "usageEvents": "\(counts.usageEvents)", "deadLetters": "\(counts.deadLetters)", "outbound": "\(counts.outbound)",
                "eventsBefore": "\(horizons.events.rfc3339)", "othersBefore": "\(horizons.others.rfc3339)",
            ])
        }
        return .object(JSONObject([
            ("enabled", .bool(true)),
            ("usageEvents", .number(counts.usageEvents)), ("deadLetters", .number(counts.deadLetters)),
            ("outbound", .number(counts.outbound)),
            ("eventsBefore", .string(horizons.events.rfc3339)), ("othersBefore", .string(horizons.others.rfc3339)),
        ]))
    }

    /// `retention.run`: `olderThan?` (RFC 3339 or YYYY-MM-DD; default now − `retentionDays`).
    func retentionOp(_ args: Args, _ w: StoreWriter, now: Timestamp) throws -> JSONValue {
        try prune(olderThan: try args.instant("olderThan"), now: now, w)
    }

    /// The daily run from the scheduler tick, in a transaction of its own; a failure is logged
    /// and tried again at the next day.
    func runRetention(at now: Timestamp) {
        guard config.retentionDays > 0 else { return }
        do {
            _ = try store.write { w in try prune(olderThan: nil, now: now, w) }
        } catch {
            logger.error("retention: cannot prune: \(error)")
        }
    }
}
