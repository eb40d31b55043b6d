/// An index over the routing candidates so that routing an event looks at the budgets whose
/// selector could match it, not at every budget (issue 8: with 10⁴ budgets, a scan per event
/// was the whole cost of ingest).
///
/// A budget with a selector is filed under one of its selector's pairs (the smallest key, when
/// its value is a string): an event can only match it if its metadata has that very pair.
/// Budgets whose chosen pair is not a string, and budgets without a selector, are kept in
/// lists that routing scans (they are few in practice; a scan of them is what routing did
/// for every budget before). Positions are indexes into the ledger's `candidates`, which are in
/// creation order, so ties still go to the oldest budget. Pure.
public struct RouteIndex: Sendable {
    enum Place: Hashable, Sendable {
        case keyed(key: String, value: String)
        case unindexed
        case plain
    }

    /// A selector pair (key and string value), hashed as one: one hash and one probe per
    /// metadata pair of an event, not one for the key and another for the value (issue 8).
    struct Pair: Hashable, Sendable {
        var key: String
        var value: String
    }

    private(set) var byPair: [Pair: [Int]] = [:]
    /// Bit n set when some key of `byPair` is n UTF-8 bytes long (63: 63 or more): an event's
    /// metadata key of another length is skipped without hashing it (issue 8: most metadata
    /// keys select no budget, and each lookup hashed the key).
    private(set) var keyLengths: UInt64 = 0
    private(set) var unindexed: [Int] = []
    private(set) var plain: [Int] = []
    private var places: [Int: Place] = [:]

    public init() {}

    /// Files (or re-files) the candidate at `position`.
    public mutating func update(position: Int, _ candidate: RouteCandidate) {
        let place = Self.place(of: candidate)
        if let old = places[position] {
            if old == place { return }
            remove(position, from: old)
        }
        places[position] = place
        switch place {
        case .keyed(let key, let value):
            Self.insert(position, into: &byPair[Pair(key: key, value: value), default: []])
            keyLengths |= Self.lengthBit(key)
        case .unindexed: Self.insert(position, into: &unindexed)
        case .plain: Self.insert(position, into: &plain)
        }
    }

    static func place(of c: RouteCandidate) -> Place {
        guard let selector = c.selector else { return .plain }
        guard let first = selector.min(by: { $0.key < $1.key }) else { return .plain }
        if case .string(let value) = first.value { return .keyed(key: first.key, value: value) }
        return .unindexed
    }

    private mutating func remove(_ position: Int, from place: Place) {
        switch place {
        case .keyed(let key, let value):
            let pair = Pair(key: key, value: value)
            byPair[pair]?.removeAll { $0 == position }
            if byPair[pair]?.isEmpty == true {
                byPair[pair] = nil
                keyLengths = byPair.keys.reduce(0) { $0 | Self.lengthBit($1.key) }
            }
        case .unindexed: unindexed.removeAll { $0 == position }
        case .plain: plain.removeAll { $0 == position }
        }
    }

    static func lengthBit(_ key: String) -> UInt64 { 1 << UInt64(min(key.utf8.count, 63)) }

    /// Whether some indexed selector has a key as long as `key` (false: none has this key).
    func mayIndex(key: String) -> Bool { keyLengths & Self.lengthBit(key) != 0 }

    /// Keeps `list` ascending (new candidates come last, so this is usually an append).
    private static func insert(_ position: Int, into list: inout [Int]) {
        if let last = list.last, last > position {
            list.insert(position, at: list.firstIndex { $0 > position } ?? list.endIndex)
        } else {
            list.append(position)
        }
    }
}

extension Router {
    /// Along the chain of successors from the candidate at `start`: the first that covers `time`,
    /// else the last one the chain reaches (CONTRACT §4: "the id of a renewed budget follows its
    /// chain of successors to the one whose period covers the event's time").
    public static func chainPosition(
        from start: Int, time: Timestamp, candidates: [RouteCandidate], position: (String) -> Int?
    ) -> Int {
        var current = start
        var hops = 0
        while !candidates[current].covers(time), let next = candidates[current].successorId.flatMap(position), hops < 10_000 {
            current = next
            hops += 1
        }
        return current
    }

    /// `route(budgetId:metadata:time:candidates:lookup:)`'s budget as its place in `candidates`,
    /// looking only at the candidates `index` says could match. `position` finds a candidate's
    /// place by id (to follow an explicit id along its chain of successors). The place, not
    /// the id, so that the caller reads the budget's currency from the candidate and books into
    /// its slot without hashing the id again (issue 8: two of a cost's seven String-keyed
    /// lookups, LedgerBench).
    public static func routePosition(
        budgetId: String?, metadata: JSONObject?, time: Timestamp,
        candidates: [RouteCandidate], index: RouteIndex, position: (String) -> Int?
    ) -> Int? {
        if let budgetId {
            // An explicit id never falls back to the rules below; it follows renewals.
            guard let start = position(budgetId) else { return nil }
            let p = chainPosition(from: start, time: time, candidates: candidates, position: position)
            guard candidates[p].status != .cancelled, candidates[p].covers(time) else { return nil }
            return p
        }
        var best: (position: Int, keys: Int)?
        if let metadata {
            func consider(_ position: Int) {
                // Read in place: `let b = candidates[position]` copied the candidate (a retain
                // and a release of each of its strings) for every event (issue 8, LedgerBench).
                guard candidates[position].status != .cancelled, candidates[position].covers(time),
                      let selector = candidates[position].selector,
                      matches(selector: selector, metadata: metadata) else { return }
                // Most keys matched first; ties go to the oldest.
                if let current = best, selector.count < current.keys || (selector.count == current.keys && position > current.position) {
                    return
                }
                best = (position, selector.count)
            }
            for (key, value) in metadata where index.mayIndex(key: key) {
                guard case .string(let text) = value, let positions = index.byPair[RouteIndex.Pair(key: key, value: text)] else { continue }
                for p in positions { consider(p) }
            }
            for p in index.unindexed { consider(p) }
        }
        if let best { return best.position }
        // Positions, not ids, while comparing: read in place, as above.
        var bestPlain: (position: Int, length: Int64?)?
        for p in index.plain {
            guard candidates[p].status != .cancelled, candidates[p].covers(time) else { continue }
            let length = candidates[p].length
            if let current = bestPlain {
                if isShorter(length, than: current.length) { bestPlain = (p, length) }
            } else {
                bestPlain = (p, length)
            }
        }
        return bestPlain?.position
    }
}
