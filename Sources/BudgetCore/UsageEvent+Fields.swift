// The usage-event decoder's fast internals (issue 8): the known fields found in one pass
// over the event object, and the canonical body written straight to bytes.
//
// Both replace code that looked keys up one by one (a linear scan with string compares per
// field) and built a second, canonicalized JSONObject only to serialize it with sorted keys.
// The results are byte for byte the same; EventDecoderDifferentialTests compares them with
// the former implementation, kept in the tests as the reference.

/// A top-level field of a usage event (CONTRACT §2), or the CloudEvents `specversion`.
extension UsageEventDecoder {
    /// The usage event's field names (CONTRACT §2), as `stats` keeps them in rejection reasons.
    public static let fieldNames: Set<String> = Set(EventField.allCases.filter { $0 != .specversion }.map { "\($0.name)" })
}

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
    /// The former code tested a `Set<String>` of these names and `key != "description"` with
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

/// Where an event object's known fields are, found in one pass over it.
struct EventFields {
    /// The object's members.
    let entries: [JSONObject.Entry]
    /// The position in `entries` of each field, by raw value; -1 when absent.
    private var positions = SIMD32<Int32>(repeating: -1)

    init(_ object: JSONObject) {
        entries = object.storage
        for i in entries.indices {
            if let field = EventField(key: entries[i].key) { positions[field.rawValue] = Int32(truncatingIfNeeded: i) }
        }
    }

    /// The position of `field` in `entries`, if present.
    @inline(__always)
    func position(_ field: EventField) -> Int? {
        let p = positions[field.rawValue]
        return p < 0 ? nil : Int(p)
    }

    /// The value of `field`, if present.
    @inline(__always)
    subscript(_ field: EventField) -> JSONValue? {
        let p = positions[field.rawValue]
        return p < 0 ? nil : entries[Int(p)].value
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
    ///
    /// The known fields are passed one by one (which spares copying a whole UsageEvent); `cost`
    /// is the explicit cost's exact value as given, not the rounded money: 0.1234567891 and
    /// 0.123456789 are different bodies even though they book the same amount.
    static func canonicalBody(
        of fields: EventFields, id: String, source: String, currency: String, kind: EventKind,
        usage: [(unit: String, quantity: ExactDecimal)], seq: Int64?, time: Timestamp?, costText: String?
    ) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch in
            var writer = CanonicalWriter(
                out: JSONByteWriter(scratch: scratch), fields: fields, id: id, source: source, currency: currency,
                kind: kind, usage: usage, seq: seq, time: time, costText: costText
            )
            writer.writeBody()
            let body = writer.out.makeString()
            writer.out.release()
            return body
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
    var out: JSONByteWriter
    let fields: EventFields
    /// The known fields the canonical body spells from the decoded event.
    let id: String
    let source: String
    let currency: String
    let isCredit: Bool
    let usage: [(unit: String, quantity: ExactDecimal)]
    let seqText: String?
    let timeText: String?
    let costText: String?

    init(
        out: JSONByteWriter, fields: EventFields, id: String, source: String, currency: String, kind: EventKind,
        usage: [(unit: String, quantity: ExactDecimal)], seq: Int64?, time: Timestamp?, costText: String?
    ) {
        self.out = out
        self.fields = fields
        self.id = id
        self.source = source
        self.currency = currency
        isCredit = kind == .credit
        self.usage = usage
        seqText = seq.map { String($0) }
        timeText = time?.rfc3339
        // The exact decimal as given (the decoder parsed it once), not the rounded money.
        self.costText = costText
    }

    /// Whether the canonical body spells `field` from the event rather than from the body.
    func overrides(_ field: EventField) -> Bool {
        switch field {
        case .id, .source, .currency: true
        case .seq: seqText != nil
        case .kind: isCredit
        case .time: timeText != nil
        case .cost: costText != nil
        case .usage: !usage.isEmpty
        default: false
        }
    }

    /// How many fields `overrides` may add: id, source, currency, seq, kind, time, cost, usage.
    static let maxSynthesized = 8

    mutating func writeBody() {
        let entries = fields.entries
        let n = entries.count
        withUnsafeTemporaryAllocation(of: SortItem.self, capacity: n + CanonicalWriter.maxSynthesized) { items in
            // Every member first, then the known fields marked: spelled from the event, or
            // dropped (`kind`, whose USAGE is the default, and nulls).
            for i in 0..<n {
                items.initializeElement(at: i, to: SortItem(prefix: Self.prefix(entries[i].key), code: i, field: -1))
            }
            var count = n
            for raw in 0..<EventField.specversion.rawValue {
                let field = EventField(rawValue: raw)!
                let position = fields.position(field)
                if overrides(field) {
                    if let position {
                        items[position].field = field.rawValue
                    } else {
                        items.initializeElement(at: count, to: SortItem(prefix: Self.prefix(field.key), code: n, field: field.rawValue))
                        count += 1
                    }
                } else if let position, field == .kind || entries[position].value.isNull {
                    items[position].code = -1
                }
            }
            var kept = 0
            for k in 0..<count where items[k].code >= 0 {
                items[kept] = items[k]
                kept += 1
            }
            let sorted = UnsafeMutableBufferPointer(rebasing: items[0..<kept])
            func key(_ item: SortItem) -> String {
                item.code < n ? entries[item.code].key : EventField(rawValue: item.field)!.key
            }
            Self.sort(sorted) { a, b in JSONObject.keyPrecedes(key(a), key(b)) }
            out.append(UInt8(ascii: "{"))
            for k in 0..<kept {
                let item = sorted[k]
                if k > 0 { out.append(UInt8(ascii: ",")) }
                out.appendJSONString(key(item))
                out.append(UInt8(ascii: ":"))
                if item.field >= 0, let field = EventField(rawValue: item.field) {
                    writeOverride(field)
                } else {
                    writeCanonical(entries[item.code].value)
                }
            }
            out.append(UInt8(ascii: "}"))
            _ = UnsafeMutableBufferPointer(rebasing: items[0..<count]).deinitialize()
        }
    }

    /// Sorts by the prefixes, then by `precedes` for equal prefixes: an insertion sort for
    /// the usual dozen members, the standard library's beyond.
    static func sort(_ items: UnsafeMutableBufferPointer<SortItem>, by precedes: (SortItem, SortItem) -> Bool) {
        var items = items
        guard items.count > 16 else {
            for i in 1..<Swift.max(items.count, 1) {
                let item = items[i]
                var j = i
                while j > 0, item.prefix < items[j - 1].prefix
                    || (item.prefix == items[j - 1].prefix && precedes(item, items[j - 1])) {
                    items[j] = items[j - 1]
                    j -= 1
                }
                items[j] = item
            }
            return
        }
        items.sort { a, b in a.prefix != b.prefix ? a.prefix < b.prefix : precedes(a, b) }
    }

    mutating func writeOverride(_ field: EventField) {
        switch field {
        case .id: out.appendJSONString(id)
        case .source: out.appendJSONString(source)
        case .currency: out.appendJSONString(currency)
        case .seq: out.append(seqText ?? "")
        case .kind: out.appendJSONString(EventKind.credit.rawValue)
        case .time: out.appendJSONString(timeText ?? "")
        case .cost: out.append(costText ?? "")
        case .usage:
            let usage = self.usage
            writeSortedObject(count: usage.count, key: { usage[$0].unit }) { writer, i in
                writer.out.append(usage[i].quantity.canonicalText)
            }
        default:
            preconditionFailure("no canonical override for \(field)")
        }
    }

    /// `UsageEventDecoder.canonicalize(value)`, serialized with sorted keys.
    mutating func writeCanonical(_ value: JSONValue) {
        switch value {
        case .null:
            out.append("null")
        case .bool(let b):
            out.append(b ? "true" : "false")
        case .number(let text):
            out.append(ExactDecimal.canonicalNumberText(text))
        case .string(let s):
            out.appendJSONString(s)
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
    /// Inlined so that the closures are too.
    @inline(__always)
    mutating func writeSortedObject(
        count: Int, key: (Int) -> String, value: (inout CanonicalWriter, Int) -> Void
    ) {
        out.append(UInt8(ascii: "{"))
        withUnsafeTemporaryAllocation(of: SortItem.self, capacity: count) { items in
            for i in 0..<count {
                items.initializeElement(at: i, to: SortItem(prefix: Self.prefix(key(i)), code: i, field: -1))
            }
            Self.sort(items) { a, b in JSONObject.keyPrecedes(key(a.code), key(b.code)) }
            for k in 0..<count {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                let i = items[k].code
                out.appendJSONString(key(i))
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
        if let result = key.utf8.withContiguousStorageIfAvailable(prefix(utf8:)) { return result }
        return Array(key.utf8).withUnsafeBufferPointer(prefix(utf8:))
    }

    static func prefix(utf8 bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        if bytes.count >= 8, let base = bytes.baseAddress {
            return UInt64(bigEndian: UnsafeRawPointer(base).loadUnaligned(as: UInt64.self))
        }
        var result: UInt64 = 0
        for i in 0..<bytes.count { result |= UInt64(bytes[i]) << (56 - 8 * UInt64(i)) }
        return result
    }
}
