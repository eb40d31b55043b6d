import BudgetCore
import Foundation

/// Counters since the process started (CONTRACT §6 `stats`).
struct Stats: Sendable {
    var received: Int64 = 0
    var accepted: Int64 = 0
    var duplicates: Int64 = 0
    var rejected: Int64 = 0
    var unpriced: Int64 = 0
    var unallocated: Int64 = 0
    var alertsPublished: Int64 = 0
    var statusEventsPublished: Int64 = 0
    var rejectedByReason: [String: Int64] = [:]
    /// source → how many times its `seq` jumped forward. Sources are told apart by code point,
    /// as event keys are.
    var gaps: [CodePointKey: Int64] = [:]
    /// source → the last `seq` seen, for at most `maxTrackedSources` sources (a publisher
    /// that sends every event under a source of its own must not grow memory per event).
    var lastSourceSeq: [CodePointKey: Int64] = [:]
    /// Events with a `seq` from sources beyond `maxTrackedSources`: not checked for gaps.
    var untrackedSequences: Int64 = 0
    static let maxTrackedSources = 65_536
    var batches: Int64 = 0
    /// Of `batches`: ingest batches decided while the batch before them committed (`Engine.stage`).
    var stagedBatches: Int64 = 0
    /// The transactions `stagedBatches` committed in: batches staged while one commits are
    /// committed together (`CommitJob`).
    var stagedCommits: Int64 = 0
    var startedAt: Timestamp
    /// The last seq when this process started (its first message is the one after): a
    /// subscriber that started before the daemon did prints from there (`alerts tail`).
    var startSeq: Int64 = 0
    /// When its sockets were bound and it was ready (before it published anything): a
    /// subscriber started before that may have missed what followed (`alerts tail`).
    var readyAt: Timestamp?

    init(startedAt: Timestamp) { self.startedAt = startedAt }

    /// Back to `before` after a batch failed to commit: what it counted on input is undone;
    /// what was counted on output since (batches committed, messages published by other
    /// batches, which did commit) stays.
    mutating func rollBack(to before: Stats) {
        let (batches, staged, commits, alerts, statuses) = (self.batches, stagedBatches, stagedCommits, alertsPublished, statusEventsPublished)
        self = before
        self.batches = batches
        stagedBatches = staged
        stagedCommits = commits
        alertsPublished = alerts
        statusEventsPublished = statuses
    }

    /// A jump forward is a gap; a value at or below the last is a publisher restart, not a gap.
    /// Returns the source's seq before this one when there is a gap (to log it), else nil.
    @discardableResult
    mutating func observe(source: String, seq: Int64) -> Int64? {
        // One lookup of the source, to read the last seq and replace it.
        let source = CodePointKey(source)
        if lastSourceSeq.count >= Self.maxTrackedSources && lastSourceSeq[source] == nil {
            untrackedSequences += 1
            return nil
        }
        guard let last = lastSourceSeq.updateValue(seq, forKey: source),
              // `seq - 1 > last`, not `seq > last + 1`: a last seq of Int64.max would overflow
              // (and stop the daemon); seq is never negative, so seq - 1 cannot.
              seq - 1 > last else { return nil }
        gaps[source, default: 0] += 1
        return last
    }

    /// Reasons are grouped by their stable first words, before the first `:`, `"` or `,` (what
    /// follows names the client's value: "field cost: negative amount" → "field cost", `invalid
    /// serviceType "BAD17"` → "invalid serviceType"), at most 80 characters, and at most
    /// `maxReasonKeys` of them (then "other"): a publisher's distinct bad values made a key each,
    /// without bound, in memory, `stats` and the metrics (an audit's 1,105 keys).
    mutating func countRejection(_ reason: String) {
        rejected += 1
        rejectedByReason[Self.reasonKey(reason, known: rejectedByReason), default: 0] += 1
    }

    static let maxReasonKeys = 256

    static func reasonKey(_ reason: String, known: [String: Int64]) -> String {
        var stem = reason.prefix { $0 != ":" && $0 != "\"" && $0 != "," }
        while stem.last == " " { stem.removeLast() }
        var key = String((stem.isEmpty ? "unreadable" : stem).prefix(80))
        // "field NAME …": a name of the publisher's (a usage unit, an unknown field) becomes `*`
        // (`field usage.* is negative`, `field * is longer than 256 characters`), a field of the
        // contract stays (an audit filled the map with `field field7 …`).
        // The name ends where the reason's verb begins (the last " is ", " must ", " holds "):
        // a name may hold spaces itself (an audit's `field * w7 is …`).
        if key.hasPrefix("field "), let verb = [" is ", " must ", " holds "].compactMap({ key.range(of: $0, options: .backwards) }).max(by: { $0.lowerBound < $1.lowerBound }),
           verb.lowerBound > key.index(key.startIndex, offsetBy: 6) {
            let name = key[key.index(key.startIndex, offsetBy: 6)..<verb.lowerBound]
            let general = name.firstIndex(of: ".").map { name[..<$0] + ".*" }
                ?? (UsageEventDecoder.fieldNames.contains(String(name)) ? name : "*")
            key = "field " + general + key[verb.lowerBound...]
        }
        return known[key] != nil || known.count < maxReasonKeys ? key : "other"
    }

    func json(lastSeq: Int64, process: ProcessFigures? = nil) -> JSONValue {
        .object(JSONObject([
            ("received", .number(received)), ("accepted", .number(accepted)), ("duplicates", .number(duplicates)),
            ("rejected", .number(rejected)), ("unpriced", .number(unpriced)), ("unallocated", .number(unallocated)),
            ("alertsPublished", .number(alertsPublished)), ("statusEventsPublished", .number(statusEventsPublished)),
            ("lastSeq", .number(lastSeq)),
            ("gaps", .object(JSONObject(gaps.sorted { $0.key.string.utf8.lexicographicallyPrecedes($1.key.string.utf8) }.map { ($0.key.string, JSONValue.number($0.value)) }))),
            ("rejectedByReason", .object(JSONObject(rejectedByReason.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.number($0.value)) }))),
            ("untrackedSequences", .number(untrackedSequences)),
            ("batches", .number(batches)), ("stagedBatches", .number(stagedBatches)),
            ("stagedCommits", .number(stagedCommits)),
            ("startedAt", .string(startedAt.rfc3339)), ("startSeq", .number(startSeq)),
            ("readyAt", readyAt.map { .string($0.rfc3339) } ?? .null),
            ("process", process.map { p in
                .object(JSONObject([
                    ("rssBytes", p.rssBytes.map { .number($0) } ?? .null),
                    ("peakRssBytes", p.peakRssBytes.map { .number($0) } ?? .null),
                    ("databaseBytes", .number(p.databaseBytes)), ("walBytes", .number(p.walBytes)),
                    ("synchronous", .string(p.synchronous)),
                ]))
            } ?? .null),
        ]))
    }
}
