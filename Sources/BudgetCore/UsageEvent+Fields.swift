// The usage-event decoder's fast internals (issue 8): the known fields found in one pass
// over the event object, and the canonical body written straight to bytes.
//
// Both replace code that looked keys up one by one (a linear scan with string compares per
// field) and built a second, canonicalized JSONObject only to serialize it with sorted keys.
// The results are byte for byte the same; EventDecoderDifferentialTests compares them with
// the former implementation, kept in the tests as the reference.

/// A top-level field of a usage event (CONTRACT §2), or the CloudEvents `specversion`.
enum EventField: Int, CaseIterable {
    case id, source, seq, time, platform, serviceType, model, endpoint, usage, cost,
         currency, budgetId, userId, apiUsageId, apifyRunId, metadata, description, kind, correctsEvent
    /// Not a usage-event field: it marks a CloudEvents envelope.
    case specversion

    /// The JSON key.
    var name: StaticString {
        switch self {
        case .id: "id"
        case .source: "source"
        case .seq: "seq"
        case .time: "time"
        case .platform: "platform"
        case .serviceType: "serviceType"
        case .model: "model"
        case .endpoint: "endpoint"
        case .usage: "usage"
        case .cost: "cost"
        case .currency: "currency"
        case .budgetId: "budgetId"
        case .userId: "userId"
        case .apiUsageId: "apiUsageId"
        case .apifyRunId: "apifyRunId"
        case .metadata: "metadata"
        case .description: "description"
        case .kind: "kind"
        case .correctsEvent: "correctsEvent"
        case .specversion: "specversion"
        }
    }

    /// The JSON key as a String (immortal: no allocation).
    var key: String { name.description }

    /// The field whose key is exactly `key` (compared by UTF-8 bytes, as JSONObject does).
    ///
    /// The former code tested `knownFields.contains(key)` and `key != "description"` with
    /// Swift's String equality, which is canonical equivalence; for these ASCII names that
    /// is the same as byte equality (no other sequence is canonically equivalent to them:
    /// the only singleton decompositions to ASCII letters give "K", in none of the names).
    @inline(__always)
    init?(key: String) {
        if let found = key.utf8.withContiguousStorageIfAvailable({ EventField(bytes: $0) }) {
            guard let found else { return nil }
            self = found
        } else {
            let copy = Array(key.utf8)
            guard let found = copy.withUnsafeBufferPointer({ EventField(bytes: $0) }) else { return nil }
            self = found
        }
    }

    /// Dispatches on the length and a distinguishing byte, then checks the whole name.
    init?(bytes: UnsafeBufferPointer<UInt8>) {
        let candidate: EventField
        switch bytes.count {
        case 2: candidate = .id
        case 3: candidate = .seq
        case 4:
            switch bytes[0] {
            case UInt8(ascii: "t"): candidate = .time
            case UInt8(ascii: "c"): candidate = .cost
            case UInt8(ascii: "k"): candidate = .kind
            default: return nil
            }
        case 5:
            switch bytes[0] {
            case UInt8(ascii: "m"): candidate = .model
            case UInt8(ascii: "u"): candidate = .usage
            default: return nil
            }
        case 6:
            switch bytes[0] {
            case UInt8(ascii: "s"): candidate = .source
            case UInt8(ascii: "u"): candidate = .userId
            default: return nil
            }
        case 8:
            switch bytes[0] {
            case UInt8(ascii: "p"): candidate = .platform
            case UInt8(ascii: "e"): candidate = .endpoint
            case UInt8(ascii: "c"): candidate = .currency
            case UInt8(ascii: "b"): candidate = .budgetId
            case UInt8(ascii: "m"): candidate = .metadata
            default: return nil
            }
        case 10:
            switch bytes[3] {
            case UInt8(ascii: "U"): candidate = .apiUsageId
            case UInt8(ascii: "f"): candidate = .apifyRunId
            default: return nil
            }
        case 11:
            switch (bytes[0], bytes[1]) {
            case (UInt8(ascii: "s"), UInt8(ascii: "e")): candidate = .serviceType
            case (UInt8(ascii: "s"), UInt8(ascii: "p")): candidate = .specversion
            case (UInt8(ascii: "d"), _): candidate = .description
            default: return nil
            }
        case 13: candidate = .correctsEvent
        default: return nil
        }
        let name = candidate.name
        let expected = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        guard expected.count == bytes.count else { return nil }
        for i in 0..<bytes.count where bytes[i] != expected[i] { return nil }
        self = candidate
    }

    /// The usage-event fields (all but `specversion`), whose nulls the canonical body drops.
    var isKnownField: Bool { self != .specversion }
}

/// The values of an event object's known fields, found in one pass over it.
struct EventFields {
    var id, source, seq, time, platform, serviceType, model, endpoint, usage, cost: JSONValue?
    var currency, budgetId, userId, apiUsageId, apifyRunId, metadata, description, kind, correctsEvent: JSONValue?
    var specversion: JSONValue?

    init(_ object: JSONObject) {
        for entry in object.storage {
            guard let field = EventField(key: entry.key) else { continue }
            let value = entry.value
            switch field {
            case .id: id = value
            case .source: source = value
            case .seq: seq = value
            case .time: time = value
            case .platform: platform = value
            case .serviceType: serviceType = value
            case .model: model = value
            case .endpoint: endpoint = value
            case .usage: usage = value
            case .cost: cost = value
            case .currency: currency = value
            case .budgetId: budgetId = value
            case .userId: userId = value
            case .apiUsageId: apiUsageId = value
            case .apifyRunId: apifyRunId = value
            case .metadata: metadata = value
            case .description: description = value
            case .kind: kind = value
            case .correctsEvent: correctsEvent = value
            case .specversion: specversion = value
            }
        }
    }
}

// MARK: - Canonical body

extension UsageEventDecoder {
    /// Canonical JSON of a body: known fields in their normalized spelling (decimals in shortest form,
    /// the time in canonical RFC 3339, `source` "" and `currency` "USD" when absent), nulls of known
    /// fields dropped, keys sorted at every level, and every other number spelled canonically.
    ///
    /// Written straight to bytes; the same text as building the canonical object (the body
    /// with the known fields replaced, each other value passed through `canonicalize`) and
    /// serializing it with sorted keys.
    static func canonicalBody(of object: JSONObject, event: UsageEvent) -> String {
        var writer = CanonicalWriter(event: event, rawCost: EventFields(costOf: object))
        writer.out.reserveCapacity(512)
        writer.writeBody(object)
        return String(decoding: writer.out, as: UTF8.self)
    }
}

extension EventFields {
    /// Only the raw `cost` (for the canonical body's exact spelling of it).
    fileprivate init(costOf object: JSONObject) {
        for entry in object.storage where EventField(key: entry.key) == .cost {
            cost = entry.value
            break
        }
    }
}

/// A member to write: its position (or a synthesized field), its field, and the first
/// eight bytes of its key, big-endian and zero-padded, which order most pairs of keys
/// without looking at them again. (Where two prefixes differ, their order is the keys'
/// UTF-8 byte order: a zero pad byte only stands below a real byte where the shorter key
/// is a prefix of the longer one.)
private struct SortItem {
    var prefix: UInt64
    var code: Int
    var field: Int
}

private struct CanonicalWriter {
    var out: [UInt8] = []
    let event: UsageEvent
    /// The known fields the canonical body spells from the decoded event.
    let seqText: String?
    let timeText: String?
    let costText: String?

    init(event: UsageEvent, rawCost: EventFields) {
        self.event = event
        seqText = event.seq.map { String($0) }
        timeText = event.time?.rfc3339
        // The exact decimal as given, not the rounded money: 0.1234567891 and 0.123456789
        // are different bodies even though they book the same amount.
        if let raw = rawCost.cost, let text = raw.numberText ?? raw.stringValue,
           let exact = try? ExactDecimal(parsing: text) {
            costText = exact.description
        } else if let cost = event.cost {
            costText = cost.description
        } else {
            costText = nil
        }
    }

    /// Whether the canonical body spells `field` from the event rather than from the body.
    func overrides(_ field: EventField) -> Bool {
        switch field {
        case .id, .source, .currency: true
        case .seq: seqText != nil
        case .kind: event.kind == .credit
        case .time: timeText != nil
        case .cost: costText != nil
        case .usage: !event.usage.isEmpty
        default: false
        }
    }

    static let synthesized: [EventField] = [.id, .source, .currency, .seq, .kind, .time, .cost, .usage]

    mutating func writeBody(_ object: JSONObject) {
        let entries = object.storage
        let n = entries.count
        withUnsafeTemporaryAllocation(of: SortItem.self, capacity: n + CanonicalWriter.synthesized.count) { items in
            var count = 0
            var placed: UInt32 = 0
            for i in 0..<n {
                let entry = entries[i]
                var fieldCode = -1
                if let field = EventField(key: entry.key), field.isKnownField {
                    if overrides(field) {
                        placed |= 1 << UInt32(field.rawValue)
                        fieldCode = field.rawValue
                    } else if field == .kind || entry.value.isNull {
                        // `kind` USAGE is the default: spelled or not, the same body.
                        continue
                    }
                }
                items.initializeElement(at: count, to: SortItem(prefix: Self.prefix(entry.key), code: i, field: fieldCode))
                count += 1
            }
            for field in CanonicalWriter.synthesized where placed & (1 << UInt32(field.rawValue)) == 0 && overrides(field) {
                items.initializeElement(at: count, to: SortItem(prefix: Self.prefix(field.key), code: n, field: field.rawValue))
                count += 1
            }
            var sorted = UnsafeMutableBufferPointer(rebasing: items[0..<count])
            func key(_ item: SortItem) -> String {
                item.code < n ? entries[item.code].key : EventField(rawValue: item.field)!.key
            }
            sorted.sort { a, b in
                a.prefix != b.prefix ? a.prefix < b.prefix : JSONObject.keyPrecedes(key(a), key(b))
            }
            out.append(UInt8(ascii: "{"))
            for k in 0..<count {
                let item = sorted[k]
                if k > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key(item), into: &out)
                out.append(UInt8(ascii: ":"))
                if item.field >= 0, let field = EventField(rawValue: item.field) {
                    writeOverride(field)
                } else {
                    writeCanonical(entries[item.code].value)
                }
            }
            out.append(UInt8(ascii: "}"))
            _ = sorted.deinitialize()
        }
    }

    mutating func writeOverride(_ field: EventField) {
        switch field {
        case .id: JSONValue.writeString(event.id, into: &out)
        case .source: JSONValue.writeString(event.source, into: &out)
        case .currency: JSONValue.writeString(event.currency, into: &out)
        case .seq: out.append(contentsOf: (seqText ?? "").utf8)
        case .kind: JSONValue.writeString(EventKind.credit.rawValue, into: &out)
        case .time: JSONValue.writeString(timeText ?? "", into: &out)
        case .cost: out.append(contentsOf: (costText ?? "").utf8)
        case .usage:
            let usage = event.usage
            writeSortedObject(count: usage.count, key: { usage[$0].unit }) { writer, i in
                writer.out.append(contentsOf: usage[i].quantity.description.utf8)
            }
        default:
            preconditionFailure("no canonical override for \(field)")
        }
    }

    /// `UsageEventDecoder.canonicalize(value)`, serialized with sorted keys.
    mutating func writeCanonical(_ value: JSONValue) {
        switch value {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .number(let text):
            if let d = try? ExactDecimal(parsing: text) {
                out.append(contentsOf: d.description.utf8)
            } else {
                out.append(contentsOf: text.utf8)
            }
        case .string(let s):
            JSONValue.writeString(s, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (k, element) in elements.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                writeCanonical(element)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            let entries = object.storage
            writeSortedObject(count: entries.count, key: { entries[$0].key }) { writer, i in
                writer.writeCanonical(entries[i].value)
            }
        }
    }

    /// An object of `count` members, written in the UTF-8 byte order of their (distinct) keys.
    mutating func writeSortedObject(
        count: Int, key: (Int) -> String, value: (inout CanonicalWriter, Int) -> Void
    ) {
        out.append(UInt8(ascii: "{"))
        withUnsafeTemporaryAllocation(of: SortItem.self, capacity: count) { buffer in
            var items = buffer
            for i in 0..<count {
                items.initializeElement(at: i, to: SortItem(prefix: Self.prefix(key(i)), code: i, field: -1))
            }
            items.sort { a, b in
                a.prefix != b.prefix ? a.prefix < b.prefix : JSONObject.keyPrecedes(key(a.code), key(b.code))
            }
            for k in 0..<count {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                let i = items[k].code
                JSONValue.writeString(key(i), into: &out)
                out.append(UInt8(ascii: ":"))
                value(&self, i)
            }
            _ = items.deinitialize()
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The first eight UTF-8 bytes of `key`, big-endian, zero-padded.
    @inline(__always)
    static func prefix(_ key: String) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 56
        for c in key.utf8 {
            result |= UInt64(c) << shift
            if shift == 0 { break }
            shift -= 8
        }
        return result
    }
}
