/// A validated usage event (CONTRACT §2).
public struct UsageEvent: Sendable, Hashable {
    public var id: String
    /// The publisher's name; "" when absent.
    public var source: String
    public var seq: Int64?
    /// The event's own time, if it gave one; the effective time is `time ?? receivedAt`.
    public var time: Timestamp?
    public var platform: String
    public var serviceType: ServiceType
    public var model: String?
    public var endpoint: String?
    /// unit → quantity, in the order given.
    public var usage: [(unit: String, quantity: ExactDecimal)]
    /// An explicit cost, which wins over the catalog.
    public var cost: Money?
    public var currency: String
    public var budgetId: String?
    public var userId: String?
    public var apiUsageId: String?
    public var apifyRunId: String?
    public var description: String?
    public var metadata: JSONObject?
    /// The canonical JSON text of the body: two bodies are "the same" (DUPLICATE) exactly when these are equal.
    public var canonicalBody: String
    /// `USAGE` (absent) or `CREDIT`: a refund or credit note, booked as a negative cost (docs/ledger.md).
    public var kind: EventKind = .usage
    /// The event a CREDIT corrects, when it names one (`correctsEvent: {source, id}`).
    public var correctsEvent: EventRef?
    /// The explicit cost as sent, when it has more than nine decimals (`cost` is it rounded to
    /// 1e-9): converted into a budget's currency from this exact value, a cost is rounded once,
    /// as a catalog cost is (CONTRACT §2), not before and again after the rate.
    public var exactCost: ExactDecimal?
    /// The explicit cost as sent when it has more significant digits than `exactCost` holds
    /// (38): kept exact too, so its one rounding, its range check and a conversion are as exact.
    public var wideCost: WideDecimal?

    public static func == (a: UsageEvent, b: UsageEvent) -> Bool { a.canonicalBody.hasSameCodePoints(as: b.canonicalBody) }
    public func hash(into hasher: inout Hasher) { canonicalBody.hashCodePoints(into: &hasher) }

    /// Whether `metadata.batch` is true (batch prices apply, §3).
    public var isBatch: Bool { metadata?["batch"]?.boolValue == true }

    public func quantity(of unit: String) -> ExactDecimal? {
        usage.first { $0.unit == unit }?.quantity
    }
}

/// What a usage event records: usage (a cost) or a credit (a refund: a negative cost).
public enum EventKind: String, Sendable, Hashable, CaseIterable {
    case usage = "USAGE", credit = "CREDIT"
}

/// A stored event's key: (source, id).
public struct EventRef: Sendable, Hashable {
    public var source: String
    public var id: String
    public init(source: String, id: String) {
        self.source = source
        self.id = id
    }

    public var json: JSONValue { .object(JSONObject([("source", .string(source)), ("id", .string(id))])) }

    /// Keys are equal when their code points are (as the database's index compares them), not
    /// under Swift's canonical equivalence: an id "é" and an id "e\u{301}" are two events.
    public static func == (a: EventRef, b: EventRef) -> Bool {
        a.id.hasSameCodePoints(as: b.id) && a.source.hasSameCodePoints(as: b.source)
    }

    public func hash(into hasher: inout Hasher) {
        source.hashCodePoints(into: &hasher)
        hasher.combine(0xFF as UInt8)  // not a UTF-8 byte: source and id stay apart
        id.hashCodePoints(into: &hasher)
    }

    /// Reads `{source?, id}` (a missing source is ""), or nil for null/absent.
    public static func parse(_ value: JSONValue?) throws(EventRejection) -> EventRef? {
        guard let value, !value.isNull else { return nil }
        guard let o = value.objectValue, let id = o["id"]?.stringValue, !id.isEmpty, id.count <= EventLimits.maxIdLength else {
            throw EventRejection("correctsEvent must be an object {source, id}")
        }
        let source: String
        if let s = o["source"], !s.isNull {
            guard let text = s.stringValue, text.count <= EventLimits.maxStringLength else {
                throw EventRejection("correctsEvent.source must be a string")
            }
            source = text
        } else {
            source = ""
        }
        return EventRef(source: source, id: id)
    }
}

/// Why a message was rejected; `reason` goes into the dead letter and the acknowledgement.
public struct EventRejection: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    /// The event id and source, when they could be read.
    public var id: String?
    public var source: String?

    public init(_ reason: String, id: String? = nil, source: String? = nil) {
        self.reason = reason
        self.id = id
        self.source = source
    }

    public var description: String { reason }

    /// The reason CONTRACT §2 names for a message over the size limit.
    public static let oversizedReason = "oversized"
    /// The reason CONTRACT §2 names for an id reused with a different body.
    public static let conflictReason = "conflict"
}

/// The acknowledgement of one message on the acknowledged socket (CONTRACT §2):
/// `{"id":…,"source":…,"status":…,"state":…,"reason":…}`, written straight into bytes (one
/// per acknowledged event: building and serializing a JSON object for it was about 6 % of the
/// engine thread's samples on that path, `perf` during an ack run with a window of 256).
public enum IngestAck {
    public static func bytes(id: String?, source: String?, status: String, state: String?, reason: String?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + (id?.utf8.count ?? 0) + (source?.utf8.count ?? 0) + (reason?.utf8.count ?? 0))
        func member(_ prefix: StaticString, _ value: String?) {
            out.append(contentsOf: UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
            if let value { JSONValue.writeString(value, into: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        member("{\"id\":", id)
        member(",\"source\":", source)
        member(",\"status\":", status)
        member(",\"state\":", state)
        member(",\"reason\":", reason)
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// Field limits of CONTRACT §2.
public enum EventLimits {
    public static let maxIdLength = 128
    public static let maxStringLength = 256
    public static let maxDescriptionLength = 4096
    public static let maxMetadataBytes = 16 * 1024
    public static let maxDepth = 32
    /// Default size limit of one message body.
    public static let defaultMaxMessageBytes = 64 * 1024
    /// The most a message's topic frame may add to its body (`usage.…` names are short): a
    /// longer one makes the message `oversized` too.
    public static let maxTopicBytes = 256
}

/// Decodes and validates usage events from JSON. Pure: safe to run beside the writer.
public enum UsageEventDecoder {
    /// Parses raw bytes and decodes; every failure becomes an `EventRejection` with a reason a person can act on.
    public static func decode(bytes: some Collection<UInt8>, maxBytes: Int = EventLimits.defaultMaxMessageBytes) throws(EventRejection) -> UsageEvent {
        if bytes.count > maxBytes { throw EventRejection(EventRejection.oversizedReason) }
        // The common event, without a JSON tree (UsageEvent+CommonShape.swift); the same result.
        if let event = bytes.withContiguousStorageIfAvailable({ decodeCommonShape($0) }) ?? nil { return event }
        let value: JSONValue
        do {
            value = try JSON.parse(bytes, maxDepth: EventLimits.maxDepth)
        } catch {
            throw EventRejection("invalid JSON: \(error.message)")
        }
        return try decode(value)
    }

    /// The `id` and `source` of a message that is rejected before it is decoded (wrong topic,
    /// wrong frame count, over the size limit), when its body is a JSON object that has them:
    /// a REJECTED acknowledgement names the event whenever its id can be read (CONTRACT §2).
    /// `source` is "" when the object has none, as for any other rejection.
    /// A CloudEvents envelope is read as `decode` reads it: its own `id` and `source` first, the
    /// ones of `data` where it leaves them out or sets them to null.
    public static func identity(of bytes: some Collection<UInt8>) -> (id: String?, source: String?) {
        guard case .object(var object)? = try? JSON.parse(bytes, maxDepth: EventLimits.maxDepth) else { return (nil, nil) }
        if object["specversion"] != nil, var data = object["data"]?.objectValue {
            for key in ["id", "source"] where object[key].map({ !$0.isNull }) ?? false { data[key] = object[key] }
            object = data
        }
        guard let id = object["id"]?.stringValue else { return (nil, nil) }
        let source = object["source"]
        return (id, source == nil ? "" : source?.stringValue)
    }

    /// Decodes a parsed JSON value.
    ///
    /// The known fields are found in one pass over the object (`EventFields`) rather than
    /// looked up one by one; the checks then run in the order they always have, so the
    /// first problem found, and its reason, stay the same.
    public static func decode(_ value: JSONValue) throws(EventRejection) -> UsageEvent {
        guard case .object(var object) = value else {
            throw EventRejection("event must be a JSON object")
        }
        var fields = EventFields(object)
        if fields.position(.specversion) != nil {
            object = try flattenCloudEvent(object)
            fields = EventFields(object)
        }
        // Read id and source first so a rejection can say which event it was.
        let rawId = fields[.id]?.stringValue
        let rawSource = fields[.source]?.stringValue
        let sourceAbsent = fields.position(.source) == nil
        func reject(_ reason: String) -> EventRejection {
            EventRejection(reason, id: rawId, source: rawSource ?? (sourceAbsent ? "" : nil))
        }

        guard let idValue = fields[.id], !idValue.isNull else { throw reject("missing field: id") }
        guard let id = idValue.stringValue else { throw reject("field id must be a string") }
        if id.isEmpty || exceeds(id, EventLimits.maxIdLength) {
            throw reject("field id must be 1..\(EventLimits.maxIdLength) characters")
        }
        let source = try optionalString(fields[.source], "source", reject) ?? ""
        let platform = try optionalString(fields[.platform], "platform", reject)
        guard let platform, !platform.isEmpty else { throw reject("missing field: platform") }
        guard let serviceTypeText = try optionalString(fields[.serviceType], "serviceType", reject) else {
            throw reject("missing field: serviceType")
        }
        guard let serviceType = ServiceType(rawValue: serviceTypeText) else {
            throw reject("invalid serviceType \"\(serviceTypeText)\": expected one of \(ServiceType.allCases.map(\.rawValue).joined(separator: " "))")
        }

        var seq: Int64?
        if let seqValue = fields[.seq], !seqValue.isNull {
            guard let text = seqValue.numberText ?? seqValue.stringValue, let n = Int64(text) ?? integralValue(text), n >= 0 else {
                throw reject("field seq must be an integer from 0 to 9223372036854775807")
            }
            seq = n
        }

        var time: Timestamp?
        if let timeText = try optionalString(fields[.time], "time", reject) {
            do { time = try Timestamp(rfc3339: timeText) } catch {
                throw reject("field time is not an RFC 3339 timestamp: \(error.message)")
            }
        }

        var usage: [(unit: String, quantity: ExactDecimal)] = []
        if let usageValue = fields[.usage], !usageValue.isNull {
            guard let usageObject = usageValue.objectValue else { throw reject("field usage must be an object") }
            usage.reserveCapacity(usageObject.count)
            for entry in usageObject.storage {
                let unit = entry.key
                if unit.isEmpty || exceeds(unit, EventLimits.maxStringLength) {
                    throw reject("usage unit names must be 1..\(EventLimits.maxStringLength) characters")
                }
                usage.append((unit, try decimalAmount(entry.value, "usage.\(unit)", reject)))
            }
        }

        var cost: Money?
        var exactCost: ExactDecimal?
        var wideCost: (value: WideDecimal, text: String)?
        if let costValue = fields[.cost], !costValue.isNull {
            do {
                let (rounded, exact) = try moneyAmount(costValue, "cost", reject)
                cost = rounded
                if exact != rounded.exactDecimal { exactCost = exact }
            } catch {
                // More digits than 128 bits hold: rounded all the same (CONTRACT §2), from its
                // exact value; every other refusal stands.
                guard let wide = try wideMoneyAmount(costValue, "cost", reject) else { throw error }
                wideCost = wide.exact
                cost = wide.money
            }
        }

        let currency = try optionalString(fields[.currency], "currency", reject).map(uppercased) ?? "USD"
        if !isCurrencyCode(currency) { throw reject("field currency must be a 3-letter code") }

        var description: String?
        if let d = fields[.description], !d.isNull {
            guard let text = d.stringValue else { throw reject("field description must be a string") }
            if exceeds(text, EventLimits.maxDescriptionLength) {
                throw reject("field description is longer than \(EventLimits.maxDescriptionLength) characters")
            }
            description = text
        }

        var metadata: JSONObject?
        if let m = fields[.metadata], !m.isNull {
            guard let metadataObject = m.objectValue else { throw reject("field metadata must be an object") }
            // As stored (numbers spelled canonically): the same limit then holds when the
            // stored body is decoded again (event.reprocess, a reload).
            if m.serializedByteCount(limit: EventLimits.maxMetadataBytes, asStored: true) > EventLimits.maxMetadataBytes {
                throw reject("field metadata is larger than \(EventLimits.maxMetadataBytes) bytes")
            }
            metadata = metadataObject
        }

        var kind = EventKind.usage
        if let kindText = try optionalString(fields[.kind], "kind", reject) {
            guard let k = EventKind(rawValue: kindText) else {
                throw reject("invalid kind \"\(kindText)\": expected USAGE or CREDIT")
            }
            kind = k
        }
        if kind == .credit {
            if cost == nil { throw reject("a CREDIT event needs an explicit cost (a positive amount)") }
            // Greater than 0 as sent (its exact value), not as rounded in its own currency: a
            // credit of 4e-10 EUR is 5e-10 USD, 1e-9 once converted and rounded (docs/ledger.md).
            if wideCost == nil, (exactCost ?? cost?.exactDecimal)?.isZero == true { throw reject("a CREDIT event needs a cost greater than 0") }
        }
        let correctsEvent: EventRef?
        do { correctsEvent = try EventRef.parse(fields[.correctsEvent]) } catch { throw reject(error.reason) }

        var event = UsageEvent(
            id: id, source: source, seq: seq, time: time, platform: platform, serviceType: serviceType,
            model: try optionalString(fields[.model], "model", reject),
            endpoint: try optionalString(fields[.endpoint], "endpoint", reject),
            usage: usage, cost: cost, currency: currency,
            budgetId: try optionalString(fields[.budgetId], "budgetId", reject),
            userId: try optionalString(fields[.userId], "userId", reject),
            apiUsageId: try optionalString(fields[.apiUsageId], "apiUsageId", reject),
            apifyRunId: try optionalString(fields[.apifyRunId], "apifyRunId", reject),
            description: description, metadata: metadata,
            canonicalBody: ""
        )
        event.kind = kind
        event.correctsEvent = correctsEvent
        event.exactCost = exactCost
        event.wideCost = wideCost?.value
        // Fields of unknown meaning are kept in the body (and compared), their names and
        // every string in them, at any depth, bounded like other strings (CONTRACT §2).
        for entry in object.storage where EventField(key: entry.key) == nil {
            if exceeds(entry.key, EventLimits.maxStringLength) {
                throw reject("a field name is longer than \(EventLimits.maxStringLength) characters")
            }
            switch longString(in: entry.value) {
            case nil: break
            case .itself: throw reject("field \(entry.key) is longer than \(EventLimits.maxStringLength) characters")
            case .string: throw reject("field \(entry.key) holds a string longer than \(EventLimits.maxStringLength) characters")
            case .key: throw reject("field \(entry.key) holds a key longer than \(EventLimits.maxStringLength) characters")
            }
        }
        event.canonicalBody = canonicalBody(
            of: fields, id: id, source: source, currency: currency, kind: kind, usage: usage, seq: seq, time: time,
            costText: wideCost?.text ?? (exactCost ?? cost?.exactDecimal)?.canonicalText
        )
        return event
    }

    /// Where a value holds a string longer than `maxStringLength`: itself, a string or a key
    /// within it.
    enum LongString { case itself, string, key }

    static func longString(in value: JSONValue) -> LongString? {
        switch value {
        case .string(let s):
            return exceeds(s, EventLimits.maxStringLength) ? .itself : nil
        case .array(let items):
            for item in items {
                if let inner = longString(in: item) { return inner == .itself ? .string : inner }
            }
            return nil
        case .object(let object):
            for entry in object.storage {
                if exceeds(entry.key, EventLimits.maxStringLength) { return .key }
                if let inner = longString(in: entry.value) { return inner == .itself ? .string : inner }
            }
            return nil
        default:
            return nil
        }
    }

    /// An integer written as a decimal (`6.0`, `6e0`, `1.2e3`): equal decimals are the same
    /// value (CONTRACT §2), so a `seq` of 6 resent as 6.0 is the same event. nil when not whole.
    public static func integralValue(_ text: String) -> Int64? {
        guard let d = try? ExactDecimal(parsing: text), let whole = d.roundedUnits(scale: 0),
              ExactDecimal(mantissa: whole, exponent: 0) == d else { return nil }
        return Int64(exactly: whole)
    }

    /// Whether `s` has more than `limit` characters. A character is a Unicode code point (what
    /// JSON strings are made of, and what most clients count), not a grapheme cluster: an id of
    /// one letter and 20,000 combining marks is 20,001 characters. A code point is at least one
    /// UTF-8 byte, so it is only counted when the byte count is over.
    @inline(__always)
    static func exceeds(_ s: String, _ limit: Int) -> Bool {
        s.utf8.count > limit && s.unicodeScalars.count > limit
    }

    /// ASCII letters upper-cased, anything else left as it is (currency codes: "ßd" must not
    /// become the three letters "SSD" and pass the check that follows, as `uppercased()` made it).
    public static func uppercased(_ s: String) -> String {
        let utf8 = s.utf8
        guard utf8.count <= 15, utf8.allSatisfy({ $0 < 0x80 }) else { return s }
        guard utf8.contains(where: { $0 &- UInt8(ascii: "a") < 26 }) else { return s }
        return String(unsafeUninitializedCapacity: utf8.count) { buffer in
            var i = 0
            for c in utf8 {
                buffer[i] = c &- UInt8(ascii: "a") < 26 ? c - 0x20 : c
                i += 1
            }
            return i
        }
    }

    /// A CloudEvents 1.0 structured-mode event (CONTRACT §2): `id`, `source`, `time` come from
    /// the envelope (from `data` when the envelope has none) and every other field from `data`,
    /// which must be a JSON object.
    static func flattenCloudEvent(_ envelope: JSONObject) throws(EventRejection) -> JSONObject {
        let id = envelope["id"]?.stringValue
        let source = envelope["source"]?.stringValue
        func reject(_ reason: String) -> EventRejection { EventRejection(reason, id: id, source: source) }
        guard envelope["specversion"]?.stringValue == "1.0" else {
            throw reject("unsupported CloudEvents specversion: only 1.0 is accepted")
        }
        if envelope["data_base64"] != nil {
            throw reject("CloudEvents data_base64 is not accepted: send the usage event as JSON in data")
        }
        if let type = envelope["datacontenttype"]?.stringValue, !type.lowercased().contains("json") {
            throw reject("CloudEvents datacontenttype must be JSON, not \(type)")
        }
        guard let data = envelope["data"]?.objectValue else {
            throw reject("CloudEvents data must be a JSON object holding the usage event")
        }
        // The envelope's id, source and time win; one the envelope leaves out or sets to null (as
        // CloudEvents' JSON format reads an absent attribute) is taken from `data` rather than
        // dropped (an audit's event dated when received, and its source lost to the "" of
        // sourceless publishers).
        var flat = data
        for key in ["id", "source", "time"] where envelope[key].map({ !$0.isNull }) ?? false {
            flat[key] = envelope[key]
        }
        return flat
    }

    /// Numbers spelled canonically wherever they are (`ExactDecimal.canonicalNumberText`), so
    /// 1.50 and 1.5 compare equal, however many digits they have.
    public static func canonicalize(_ value: JSONValue) -> JSONValue {
        switch value {
        case .number(let text):
            return .number(ExactDecimal.canonicalNumberText(text))
        case .array(let items):
            return .array(items.map(canonicalize))
        case .object(let object):
            return .object(JSONObject(object.pairs.map { ($0.key, canonicalize($0.value)) }))
        default:
            return value
        }
    }

    static func isCurrencyCode(_ s: String) -> Bool {
        s.utf8.count == 3 && s.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
    }

    static func optionalString(
        _ value: JSONValue?, _ key: String, _ reject: (String) -> EventRejection
    ) throws(EventRejection) -> String? {
        guard let value, !value.isNull else { return nil }
        guard case .string(let s) = value else { throw reject("field \(key) must be a string") }
        if exceeds(s, EventLimits.maxStringLength) {
            throw reject("field \(key) is longer than \(EventLimits.maxStringLength) characters")
        }
        return s
    }

    /// A quantity: an exact non-negative decimal ≤ 1e12, from a JSON number or a string.
    static func decimalAmount(
        _ value: JSONValue, _ name: @autoclosure () -> String, _ reject: (String) -> EventRejection
    ) throws(EventRejection) -> ExactDecimal {
        guard let text = value.numberText ?? value.stringValue else {
            throw reject("field \(name()) must be a number or a decimal string")
        }
        let d: ExactDecimal
        do { d = try ExactDecimal(parsing: text) } catch {
            throw reject("field \(name()) is not a valid decimal: \(error.message)")
        }
        if d.isNegative { throw reject("field \(name()) is negative") }
        if d > ExactDecimal(mantissa: 1, exponent: 12) { throw reject("field \(name()) is over 1e12") }
        return d
    }

    /// An amount of money with more significant digits than an `ExactDecimal` holds: its
    /// exact value, rounded once half-even to 1e-9, and its canonical text; nil when the text
    /// is refused for another reason (`moneyAmount` says which). Negative and over 1e12 are
    /// refused as there.
    static func wideMoneyAmount(
        _ value: JSONValue, _ name: String, _ reject: (String) -> EventRejection
    ) throws(EventRejection) -> (money: Money, exact: (value: WideDecimal, text: String))? {
        guard let text = value.numberText ?? value.stringValue else { return nil }
        var literal = text
        let parsed: (wide: WideDecimal, text: String)?? = literal.withUTF8 { bytes in
            guard case .failure(let error) = ExactDecimal.parse(bytes), error.kind == .tooManyDigits else { return .none }
            if bytes.first == UInt8(ascii: "-") { return .some(nil) }
            // Not a literal it reads (an exponent out of range): the first refusal stands.
            guard let wide = WideDecimal.parsingLiteral(bytes) else { return .none }
            return .some((wide, ExactDecimal.canonicalNumberText(bytes)))
        }
        guard let parsed else { return nil }
        guard let (wide, canonical) = parsed else { throw reject("field \(name): negative amount") }
        let amount = CostAmount.wide(wide)
        guard !amount.isOverMoneyRange, let nanos = amount.roundedUnits(scale: Money.scale) else {
            throw reject("field \(name): amount over 1e12")
        }
        return (Money(nanos: nanos), (wide, canonical))
    }

    /// An amount of money: as `decimalAmount`, then rounded once half-even to 1e-9.
    static func moneyAmount(
        _ value: JSONValue, _ name: String, _ reject: (String) -> EventRejection
    ) throws(EventRejection) -> (money: Money, exact: ExactDecimal) {
        guard let text = value.numberText ?? value.stringValue else {
            throw reject("field \(name) must be a number or a decimal string")
        }
        do { return try Money.parseAmountKeepingExact(text) } catch {
            throw reject("field \(name): \(error.message)")
        }
    }
}
