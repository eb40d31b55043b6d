import BudgetCore

// The usage-event decoder as it was before issue 8's optimization (commit eda5805), kept
// verbatim but for the result type as the reference that EventDecoderDifferentialTests
// compares the optimized decoder with. Only public API is used, so no @testable import.
// Changed since with the rules (seventeenth session, both decoders): every string and key in
// a field of unknown meaning is bounded, at any depth, and numbers too long for ExactDecimal
// are compared by `ExactDecimal.canonicalNumberText`.

/// The fields of a decoded event (UsageEvent's memberwise initializer is internal).
struct ReferenceEvent {
    var id: String
    var source: String
    var seq: Int64?
    var time: Timestamp?
    var platform: String
    var serviceType: ServiceType
    var model: String?
    var endpoint: String?
    var usage: [(unit: String, quantity: ExactDecimal)]
    var cost: Money?
    var currency: String
    var budgetId: String?
    var userId: String?
    var apiUsageId: String?
    var apifyRunId: String?
    var description: String?
    var metadata: JSONObject?
    var canonicalBody: String
    var kind: EventKind = .usage
    var correctsEvent: EventRef?
}

/// The former `UsageEventDecoder`.
enum ReferenceEventDecoder {
    static func decode(bytes: some Collection<UInt8>, maxBytes: Int = EventLimits.defaultMaxMessageBytes) throws(EventRejection) -> ReferenceEvent {
        if bytes.count > maxBytes { throw EventRejection(EventRejection.oversizedReason) }
        let value: JSONValue
        do {
            value = try JSON.parse(bytes, maxDepth: EventLimits.maxDepth)
        } catch {
            throw EventRejection("invalid JSON: \(error.message)")
        }
        return try decode(value)
    }

    /// Decodes a parsed JSON value.
    static func decode(_ value: JSONValue) throws(EventRejection) -> ReferenceEvent {
        guard case .object(var object) = value else {
            throw EventRejection("event must be a JSON object")
        }
        if object["specversion"] != nil { object = try flattenCloudEvent(object) }
        // Read id and source first so a rejection can say which event it was.
        let rawId = object["id"]?.stringValue
        let rawSource = object["source"]?.stringValue
        func reject(_ reason: String) -> EventRejection {
            EventRejection(reason, id: rawId, source: rawSource ?? (object["source"] == nil ? "" : nil))
        }

        guard let idValue = object["id"], !idValue.isNull else { throw reject("missing field: id") }
        guard let id = idValue.stringValue else { throw reject("field id must be a string") }
        if id.isEmpty || id.unicodeScalars.count > EventLimits.maxIdLength {
            throw reject("field id must be 1..\(EventLimits.maxIdLength) characters")
        }
        let source = try optionalString(object, "source", reject) ?? ""
        let platform = try optionalString(object, "platform", reject)
        guard let platform, !platform.isEmpty else { throw reject("missing field: platform") }
        guard let serviceTypeText = try optionalString(object, "serviceType", reject) else {
            throw reject("missing field: serviceType")
        }
        guard let serviceType = ServiceType(rawValue: serviceTypeText) else {
            throw reject("invalid serviceType \"\(serviceTypeText)\": expected one of \(ServiceType.allCases.map(\.rawValue).joined(separator: " "))")
        }

        var seq: Int64?
        if let seqValue = object["seq"], !seqValue.isNull {
            guard let text = seqValue.numberText ?? seqValue.stringValue, let n = Int64(text) ?? UsageEventDecoder.integralValue(text), n >= 0 else {
                throw reject("field seq must be an integer from 0 to 9223372036854775807")
            }
            seq = n
        }

        var time: Timestamp?
        if let timeText = try optionalString(object, "time", reject) {
            do { time = try Timestamp(rfc3339: timeText) } catch {
                throw reject("field time is not an RFC 3339 timestamp: \(error.message)")
            }
        }

        var usage: [(unit: String, quantity: ExactDecimal)] = []
        if let usageValue = object["usage"], !usageValue.isNull {
            guard let usageObject = usageValue.objectValue else { throw reject("field usage must be an object") }
            for (unit, quantityValue) in usageObject {
                if unit.isEmpty || unit.unicodeScalars.count > EventLimits.maxStringLength {
                    throw reject("usage unit names must be 1..\(EventLimits.maxStringLength) characters")
                }
                usage.append((unit, try decimalAmount(quantityValue, "usage.\(unit)", reject)))
            }
        }

        var cost: Money?
        if let costValue = object["cost"], !costValue.isNull {
            cost = try moneyAmount(costValue, "cost", reject)
        }

        // ASCII letters only upper-cased: "ßd" is not "SSD".
        let currency = try optionalString(object, "currency", reject).map { s in s.unicodeScalars.allSatisfy(\.isASCII) ? s.uppercased() : s } ?? "USD"
        if !isCurrencyCode(currency) { throw reject("field currency must be a 3-letter code") }

        var description: String?
        if let d = object["description"], !d.isNull {
            guard let text = d.stringValue else { throw reject("field description must be a string") }
            if text.unicodeScalars.count > EventLimits.maxDescriptionLength {
                throw reject("field description is longer than \(EventLimits.maxDescriptionLength) characters")
            }
            description = text
        }

        var metadata: JSONObject?
        if let m = object["metadata"], !m.isNull {
            guard let metadataObject = m.objectValue else { throw reject("field metadata must be an object") }
            // As stored: numbers spelled canonically.
            if UsageEventDecoder.canonicalize(m).serializedBytes().count > EventLimits.maxMetadataBytes {
                throw reject("field metadata is larger than \(EventLimits.maxMetadataBytes) bytes")
            }
            metadata = metadataObject
        }

        var kind = EventKind.usage
        if let kindText = try optionalString(object, "kind", reject) {
            guard let k = EventKind(rawValue: kindText) else {
                throw reject("invalid kind \"\(kindText)\": expected USAGE or CREDIT")
            }
            kind = k
        }
        if kind == .credit {
            if cost == nil { throw reject("a CREDIT event needs an explicit cost (a positive amount)") }
            // Since the ninth session: greater than 0 as sent, not as rounded to 1e-9.
            if cost == .zero, let text = object["cost"]?.numberText ?? object["cost"]?.stringValue,
               (try? ExactDecimal(parsing: text))?.isZero ?? !text.contains(where: { ("1"..."9").contains($0) }) {
                throw reject("a CREDIT event needs a cost greater than 0")
            }
        }
        let correctsEvent: EventRef?
        do { correctsEvent = try EventRef.parse(object["correctsEvent"]) } catch { throw reject(error.reason) }

        var event = ReferenceEvent(
            id: id, source: source, seq: seq, time: time, platform: platform, serviceType: serviceType,
            model: try optionalString(object, "model", reject),
            endpoint: try optionalString(object, "endpoint", reject),
            usage: usage, cost: cost, currency: currency,
            budgetId: try optionalString(object, "budgetId", reject),
            userId: try optionalString(object, "userId", reject),
            apiUsageId: try optionalString(object, "apiUsageId", reject),
            apifyRunId: try optionalString(object, "apifyRunId", reject),
            description: description, metadata: metadata,
            canonicalBody: ""
        )
        event.kind = kind
        event.correctsEvent = correctsEvent
        // Fields of unknown meaning are bounded: their names, and every string and key in them.
        for (key, value) in object where !Self.knownFields.contains(key) {
            if key.unicodeScalars.count > EventLimits.maxStringLength {
                throw reject("a field name is longer than \(EventLimits.maxStringLength) characters")
            }
            if let s = value.stringValue, s.unicodeScalars.count > EventLimits.maxStringLength {
                throw reject("field \(key) is longer than \(EventLimits.maxStringLength) characters")
            }
            var pending = [value]
            while let next = pending.popLast() {
                if let items = next.arrayValue {
                    for item in items {
                        if let s = item.stringValue, s.unicodeScalars.count > EventLimits.maxStringLength {
                            throw reject("field \(key) holds a string longer than \(EventLimits.maxStringLength) characters")
                        }
                        pending.append(item)
                    }
                } else if let members = next.objectValue {
                    for (k, v) in members {
                        if k.unicodeScalars.count > EventLimits.maxStringLength {
                            throw reject("field \(key) holds a key longer than \(EventLimits.maxStringLength) characters")
                        }
                        if let s = v.stringValue, s.unicodeScalars.count > EventLimits.maxStringLength {
                            throw reject("field \(key) holds a string longer than \(EventLimits.maxStringLength) characters")
                        }
                        pending.append(v)
                    }
                }
            }
        }
        var result = event
        result.canonicalBody = canonicalBody(of: object, event: event)
        return result
    }

    /// Canonical JSON of a body: known fields in their normalized spelling (decimals in shortest form,
    /// the time in canonical RFC 3339, `source` "" and `currency` "USD" when absent), nulls of known
    /// fields dropped, keys sorted at every level, and every other number spelled canonically.
    static func canonicalBody(of object: JSONObject, event: ReferenceEvent) -> String {
        var canonical = JSONObject()
        for (key, value) in object {
            if value.isNull && knownFields.contains(key) { continue }
            canonical[key] = canonicalize(value)
        }
        canonical["id"] = .string(event.id)
        canonical["source"] = .string(event.source)
        canonical["currency"] = .string(event.currency)
        if let seq = event.seq { canonical["seq"] = .number(String(seq)) }
        // `kind` USAGE is the default: spelled or not, the same body.
        canonical["kind"] = nil
        if event.kind == .credit { canonical["kind"] = .string(EventKind.credit.rawValue) }
        if let time = event.time { canonical["time"] = .string(time.rfc3339) }
        // The exact decimal as given, not the rounded money: 0.1234567891 and 0.123456789
        // are different bodies even though they book the same amount.
        if let raw = object["cost"], let text = raw.numberText ?? raw.stringValue, let exact = try? ExactDecimal(parsing: text) {
            canonical["cost"] = .number(exact.description)
        } else if let raw = object["cost"], let text = raw.numberText ?? raw.stringValue, event.cost != nil {
            // Too many digits for an ExactDecimal: every one kept, spelled canonically.
            canonical["cost"] = .number(ExactDecimal.canonicalNumberText(text))
        } else if let cost = event.cost {
            canonical["cost"] = .number(cost.description)
        }
        if !event.usage.isEmpty {
            canonical["usage"] = .object(JSONObject(event.usage.map { ($0.unit, JSONValue.number($0.quantity.description)) }))
        }
        return JSONValue.object(canonical).serialized(sortedKeys: true)
    }

    /// A CloudEvents 1.0 structured-mode event (CONTRACT §2): `id`, `source`, `time` come from
    /// the envelope and every other field from `data`, which must be a JSON object.
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
        var flat = data
        // (From data when the envelope has none: a change kept in both decoders.)
        for key in ["id", "source", "time"] where envelope[key].map({ !$0.isNull }) ?? false {
            flat[key] = envelope[key]
        }
        return flat
    }

    static let knownFields: Set<String> = [
        "id", "source", "seq", "time", "platform", "serviceType", "model", "endpoint", "usage", "cost",
        "currency", "budgetId", "userId", "apiUsageId", "apifyRunId", "metadata", "description", "kind", "correctsEvent",
    ]

    /// Numbers spelled canonically wherever they are, so 1.50 and 1.5 compare equal.
    static func canonicalize(_ value: JSONValue) -> JSONValue {
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
        _ object: JSONObject, _ key: String, _ reject: (String) -> EventRejection
    ) throws(EventRejection) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let s = value.stringValue else { throw reject("field \(key) must be a string") }
        if s.unicodeScalars.count > EventLimits.maxStringLength {
            throw reject("field \(key) is longer than \(EventLimits.maxStringLength) characters")
        }
        return s
    }

    /// A quantity: an exact non-negative decimal ≤ 1e12, from a JSON number or a string.
    static func decimalAmount(
        _ value: JSONValue, _ name: String, _ reject: (String) -> EventRejection
    ) throws(EventRejection) -> ExactDecimal {
        guard let text = value.numberText ?? value.stringValue else {
            throw reject("field \(name) must be a number or a decimal string")
        }
        let d: ExactDecimal
        do { d = try ExactDecimal(parsing: text) } catch {
            throw reject("field \(name) is not a valid decimal: \(error.message)")
        }
        if d.isNegative { throw reject("field \(name) is negative") }
        if d > ExactDecimal(mantissa: 1, exponent: 12) { throw reject("field \(name) is over 1e12") }
        return d
    }

    /// An amount of money: as `decimalAmount`, then rounded once half-even to 1e-9.
    static func moneyAmount(
        _ value: JSONValue, _ name: String, _ reject: (String) -> EventRejection
    ) throws(EventRejection) -> Money {
        guard let text = value.numberText ?? value.stringValue else {
            throw reject("field \(name) must be a number or a decimal string")
        }
        do { return try Money.parseAmount(text) } catch {
            // Since the twenty-first session: more digits than 128 bits hold are rounded, not
            // refused (CONTRACT §2), judged here on the digits themselves.
            if error.message.hasPrefix("too many digits"), let money = try longAmount(text, name, reject) { return money }
            throw reject("field \(name): \(error.message)")
        }
    }

    /// A plain or exponent literal of many digits, by its digits: negative and over 1e12 (before
    /// rounding) refused, else rounded half-even to 1e-9. nil for a literal it does not read.
    static func longAmount(_ text: String, _ name: String, _ reject: (String) -> EventRejection) throws(EventRejection) -> Money? {
        if text.hasPrefix("-") { throw reject("field \(name): negative amount") }
        var mantissaText = Substring(text), exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let x = Int(text[text.index(after: e)...].drop { $0 == "+" }), abs(x) <= 1000 else { return nil }
            exponent = x
            mantissaText = text[..<e]
        }
        let parts = mantissaText.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        // All digits, and where the point falls in them once the exponent has moved it.
        var digits = Array(parts[0]) + (parts.count == 2 ? Array(parts[1]) : [])
        var point = parts[0].count + exponent
        guard digits.allSatisfy(\.isNumber) else { return nil }
        while point < 1 { digits.insert("0", at: 0); point += 1 }
        while digits.count < point + 10 { digits.append("0") }
        let whole = digits[..<point].drop { $0 == "0" }
        let tail = digits[(point + 10)...]
        let over = whole.count > 13 || (whole.count == 13 && (whole.first != "1" || whole.dropFirst().contains { $0 != "0" }
            || digits[point...].contains { $0 != "0" }))
        if over { throw reject("field \(name): amount over 1e12") }
        guard var nanos = Int128(String(digits[..<(point + 9)])) else { return nil }
        let next = digits[point + 9]
        if next > "5" || (next == "5" && (tail.contains { $0 != "0" } || nanos & 1 == 1)) { nanos += 1 }
        return Money(nanos: nanos)
    }
}
