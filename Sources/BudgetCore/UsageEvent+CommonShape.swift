// The usage-event decoder's path for the common event (issue 8): one pass over the bytes,
// no JSON tree, the canonical body written from the byte ranges found.
//
// The general decoder parses the message into a JSONValue tree (a String and an enum value per
// member, an array per object), reads the event from the tree, then writes the canonical body
// from it: about 40,000 instructions and 8 allocations for a 300-byte event, most of them
// building and freeing the tree (Benchmarks/README.md). Nearly every event a client sends is
// simpler than what the general decoder must handle: a flat object of known fields, ASCII
// strings without escapes, `usage` and `metadata` one level deep. This path decodes exactly
// those and gives up on anything else (returns nil), before deciding anything: the caller then
// runs the general decoder, which gives the same event, or the rejection with its reason. It
// accepts only what the general decoder accepts, and gives the same event and the same
// canonical body byte for byte (EventDecoderDifferentialTests, the fuzzer).
//
// It gives up on: anything but an object at the top; a key that is not a known field; a
// repeated key; `kind`, `correctsEvent`, `specversion` (credits, corrections, CloudEvents);
// null; a string with an escape, a control character or a non-ASCII byte; a `seq` that is not
// plain digits; an empty `usage`; `usage` or `metadata` values that are objects or arrays;
// and any value the general decoder would reject (it then says why).

extension UsageEventDecoder {
    /// The event in `bytes` when it has the common shape (see above), decoded in one pass;
    /// nil otherwise, and for every message the general decoder rejects. Public for the
    /// differential tests and the fuzzer, which compare it with the general decoder.
    public static func decodeCommonShape(_ bytes: UnsafeBufferPointer<UInt8>) -> UsageEvent? {
        guard bytes.baseAddress != nil else { return nil }
        var scanner = CommonShapeScanner(bytes: bytes)
        return scanner.event()
    }

    /// The known fields in the order of their keys' UTF-8 bytes: the canonical body's order.
    fileprivate static let canonicalFieldOrder: [EventField] = EventField.allCases.sorted { a, b in
        let x = UnsafeBufferPointer(start: a.name.utf8Start, count: a.name.utf8CodeUnitCount)
        let y = UnsafeBufferPointer(start: b.name.utf8Start, count: b.name.utf8CodeUnitCount)
        return x.lexicographicallyPrecedes(y)
    }

    /// `,"key":` of each field, by raw value (the canonical body appends a field's whole), in
    /// memory that lives as long as the process.
    nonisolated(unsafe) fileprivate static let canonicalKeys: [UnsafeBufferPointer<UInt8>] = EventField.allCases.map { field in
        let bytes = Array(",\"".utf8) + Array(UnsafeBufferPointer(start: field.name.utf8Start, count: field.name.utf8CodeUnitCount)) + Array("\":".utf8)
        let memory = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = memory.initialize(from: bytes)
        return UnsafeBufferPointer(memory)
    }
}

/// A member of `metadata`: its key, and its value (a string's content, a number's text, or a
/// literal).
private struct FlatMember {
    enum Kind { case string, number, `true`, `false`, null }
    var key: Range<Int>
    var value: Range<Int>
    var kind: Kind
}

private struct CommonShapeScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let base: UnsafePointer<UInt8>
    var position = 0
    /// Where each string field's content is, by `EventField.rawValue`: start and end, -1 when absent.
    var starts = SIMD32<Int32>(repeating: -1)
    var ends = SIMD32<Int32>(repeating: -1)
    var seq: Range<Int>?
    var cost: Range<Int>?
    var usage: [(unit: String, quantity: ExactDecimal)] = []
    /// Where the units of `usage` are (for the canonical body's order, and repeated keys).
    var unitRanges: [Range<Int>] = []
    var metadataMembers: [FlatMember] = []
    var hasMetadata = false

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        base = bytes.baseAddress!
    }

    // MARK: Scanning

    @inline(__always)
    mutating func skipWhitespace() {
        while position < bytes.count {
            switch base[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    @inline(__always)
    func peek(_ c: UInt8) -> Bool { position < bytes.count && base[position] == c }

    /// A string at `position` (its opening quote) with printable ASCII only, no escape: the
    /// range of its content; nil for anything else.
    mutating func string() -> Range<Int>? {
        guard peek(UInt8(ascii: "\"")) else { return nil }
        position += 1
        let start = position
        // Eight bytes at a time up to the first that is a quote, a backslash, a control
        // character or not ASCII (JSONParser's attention mask).
        while bytes.count - position >= 8 {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
            let mask = JSONWords.attentionMask(word)
            if mask != 0 {
                position += mask.trailingZeroBitCount >> 3
                break
            }
            position += 8
        }
        while position < bytes.count {
            let c = base[position]
            if c == UInt8(ascii: "\"") {
                position += 1
                return start..<(position - 1)
            }
            if c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { return nil }
            position += 1
        }
        return nil
    }

    @inline(__always)
    func isDigit(_ i: Int) -> Bool { i < bytes.count && base[i] &- UInt8(ascii: "0") < 10 }

    mutating func skipDigits() {
        while isDigit(position) { position += 1 }
    }

    /// A JSON number at `position`, with the grammar JSONParser accepts
    /// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`): its text's range.
    mutating func number() -> Range<Int>? {
        let start = position
        if peek(UInt8(ascii: "-")) { position += 1 }
        guard isDigit(position) else { return nil }
        if base[position] == UInt8(ascii: "0") {
            position += 1
            if isDigit(position) { return nil }
        } else {
            skipDigits()
        }
        if peek(UInt8(ascii: ".")) {
            position += 1
            guard isDigit(position) else { return nil }
            skipDigits()
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            position += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { position += 1 }
            guard isDigit(position) else { return nil }
            skipDigits()
        }
        return start..<position
    }

    mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        for k in 0..<count where base[position + k] != text.utf8Start[k] { return false }
        position += count
        return true
    }

    /// After a member's value: `,` (true, more follow) or `}` (false, the object ends); nil
    /// for anything else.
    mutating func memberEnd() -> Bool? {
        skipWhitespace()
        guard position < bytes.count else { return nil }
        switch base[position] {
        case UInt8(ascii: ","):
            position += 1
            return true
        case UInt8(ascii: "}"):
            position += 1
            return false
        default:
            return nil
        }
    }

    /// A key and its colon; the value's first byte is next.
    mutating func key() -> Range<Int>? {
        skipWhitespace()
        guard let key = string() else { return nil }
        skipWhitespace()
        guard peek(UInt8(ascii: ":")) else { return nil }
        position += 1
        skipWhitespace()
        return key
    }

    func slice(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    func same(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
        a.count == b.count && memcmpEqual(base + a.lowerBound, base + b.lowerBound, a.count)
    }

    /// Whether the bytes in `range` are `bytes`.
    func same(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        bytes.count == range.count && bytes.withUnsafeBufferPointer { memcmpEqual($0.baseAddress!, base + range.lowerBound, range.count) }
    }

    /// Each service type's raw value as bytes (its exact spelling: ServiceType(rawValue:)).
    static let serviceTypes: [(bytes: [UInt8], type: ServiceType)] = ServiceType.allCases.map { (Array($0.rawValue.utf8), $0) }

    func precedes(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
        slice(a).lexicographicallyPrecedes(slice(b))
    }

    /// A String of the ASCII bytes in `range` (the same representation the JSON parser makes).
    func text(_ range: Range<Int>) -> String {
        let run = slice(range)
        return String(unsafeUninitializedCapacity: run.count) { target in
            _ = target.initialize(from: run)
            return run.count
        }
    }

    // MARK: The event

    mutating func event() -> UsageEvent? {
        skipWhitespace()
        guard peek(UInt8(ascii: "{")) else { return nil }
        position += 1
        var seen: UInt32 = 0
        repeat {
            guard let keyRange = key(), let field = EventField(bytes: slice(keyRange)) else { return nil }
            let bit = UInt32(1) << UInt32(field.rawValue)
            guard seen & bit == 0 else { return nil }
            seen |= bit
            switch field {
            case .usage:
                guard readUsage() else { return nil }
            case .metadata:
                guard readMetadata() else { return nil }
            case .seq:
                guard let r = number(), r.allSatisfy({ isDigit($0) }), r.count <= 18 else { return nil }
                seq = r
            case .cost:
                guard let r = peek(UInt8(ascii: "\"")) ? string() : number() else { return nil }
                cost = r
            case .kind, .correctsEvent, .specversion:
                return nil
            default:
                guard let r = string() else { return nil }
                starts[field.rawValue] = Int32(truncatingIfNeeded: r.lowerBound)
                ends[field.rawValue] = Int32(truncatingIfNeeded: r.upperBound)
            }
            guard let more = memberEnd() else { return nil }
            if !more { break }
        } while true
        skipWhitespace()
        guard position == bytes.count else { return nil }
        return make()
    }

    /// `usage`: an object of units (1…256 characters) to quantities (numbers or decimal
    /// strings, 0…1e12), at least one.
    mutating func readUsage() -> Bool {
        guard peek(UInt8(ascii: "{")) else { return false }
        position += 1
        usage.reserveCapacity(4)
        unitRanges.reserveCapacity(4)
        repeat {
            guard let unit = key(), !unit.isEmpty, unit.count <= EventLimits.maxStringLength,
                  !unitRanges.contains(where: { same($0, unit) }),
                  let quantity = peek(UInt8(ascii: "\"")) ? string() : number(),
                  case .success(let d) = ExactDecimal.parse(slice(quantity)),
                  !d.isNegative, !(d > ExactDecimal(mantissa: 1, exponent: 12)) else { return false }
            unitRanges.append(unit)
            usage.append((text(unit), d))
            guard let more = memberEnd() else { return false }
            if !more { return true }
        } while true
    }

    /// `metadata`: an object whose values are strings, numbers, booleans or null (possibly
    /// none), at most 16 KiB.
    mutating func readMetadata() -> Bool {
        guard peek(UInt8(ascii: "{")) else { return false }
        let start = position
        position += 1
        metadataMembers.reserveCapacity(8)
        skipWhitespace()
        if peek(UInt8(ascii: "}")) {
            position += 1
            hasMetadata = true
            return true
        }
        repeat {
            guard metadataMembers.count < 32, let key = key(),
                  !metadataMembers.contains(where: { same($0.key, key) }) else { return false }
            let member: FlatMember
            guard position < bytes.count else { return false }
            switch base[position] {
            case UInt8(ascii: "\""):
                guard let r = string() else { return false }
                member = FlatMember(key: key, value: r, kind: .string)
            case UInt8(ascii: "t"):
                guard literal("true") else { return false }
                member = FlatMember(key: key, value: key, kind: .true)
            case UInt8(ascii: "f"):
                guard literal("false") else { return false }
                member = FlatMember(key: key, value: key, kind: .false)
            case UInt8(ascii: "n"):
                guard literal("null") else { return false }
                member = FlatMember(key: key, value: key, kind: .null)
            default:
                guard let r = number() else { return false }
                // With an exponent it may be far longer stored than sent (`1e999`): the general
                // decoder measures metadata as stored.
                guard !bytes[r].contains(where: { $0 | 0x20 == UInt8(ascii: "e") }) else { return false }
                member = FlatMember(key: key, value: r, kind: .number)
            }
            metadataMembers.append(member)
            guard let more = memberEnd() else { return false }
            if !more { break }
        } while true
        // Serialized (no white space; strings without escapes as they are; numbers without an
        // exponent canonically, never longer than sent), metadata is at most as long as it was
        // sent: within the limit when the text is.
        guard position - start <= EventLimits.maxMetadataBytes else { return false }
        hasMetadata = true
        return true
    }

    /// The range of string field `field`, if present.
    @inline(__always)
    func range(_ field: EventField) -> Range<Int>? {
        let s = starts[field.rawValue]
        return s < 0 ? nil : Int(s)..<Int(ends[field.rawValue])
    }

    /// An optional string field of at most `limit` characters (ASCII: bytes); false when too long.
    func optional(_ field: EventField, limit: Int = EventLimits.maxStringLength) -> (ok: Bool, value: String?) {
        guard let r = range(field) else { return (true, nil) }
        return r.count <= limit ? (true, text(r)) : (false, nil)
    }

    /// The checks of `UsageEventDecoder.decode(_:)`, for what this path reads: anything it
    /// would reject gives nil here (and it then says why).
    mutating func make() -> UsageEvent? {
        guard let idRange = range(.id), !idRange.isEmpty, idRange.count <= EventLimits.maxIdLength,
              let platformRange = range(.platform), !platformRange.isEmpty, platformRange.count <= EventLimits.maxStringLength,
              let serviceTypeRange = range(.serviceType), serviceTypeRange.count <= EventLimits.maxStringLength,
              let serviceType = Self.serviceTypes.first(where: { same($0.bytes, serviceTypeRange) })?.type
        else { return nil }
        var seqValue: Int64?
        if let seq {
            var n: Int64 = 0
            for i in seq { n = n * 10 + Int64(base[i] &- UInt8(ascii: "0")) }
            seqValue = n
        }
        var time: Timestamp?
        if let r = range(.time) {
            guard r.count <= EventLimits.maxStringLength, case .success(let t) = Timestamp.parseRFC3339(slice(r)) else { return nil }
            time = t
        }
        var money: Money?
        var exact: ExactDecimal?
        if let cost {
            guard case .success(let parsed) = Money.parseAmount(utf8: slice(cost)) else { return nil }
            money = parsed.money
            exact = parsed.exact
        }
        var currency = "USD"
        if let r = range(.currency) {
            // Three ASCII letters, upper-cased (isCurrencyCode after uppercased, as the general decoder).
            guard r.count == 3 else { return nil }
            func upper(_ c: UInt8) -> UInt8? {
                if c &- UInt8(ascii: "A") < 26 { return c }
                if c &- UInt8(ascii: "a") < 26 { return c - 0x20 }
                return nil
            }
            guard let a = upper(base[r.lowerBound]), let b = upper(base[r.lowerBound + 1]), let c = upper(base[r.lowerBound + 2]) else { return nil }
            currency = String(unsafeUninitializedCapacity: 3) { target in
                target[0] = a
                target[1] = b
                target[2] = c
                return 3
            }
        }
        let source = optional(.source), model = optional(.model), endpoint = optional(.endpoint)
        let budgetId = optional(.budgetId), userId = optional(.userId), apiUsageId = optional(.apiUsageId)
        let apifyRunId = optional(.apifyRunId), description = optional(.description, limit: EventLimits.maxDescriptionLength)
        guard source.ok, model.ok, endpoint.ok, budgetId.ok, userId.ok, apiUsageId.ok, apifyRunId.ok, description.ok else { return nil }
        var metadata: JSONObject?
        if hasMetadata {
            var object = JSONObject(reservingCapacity: metadataMembers.count)
            for m in metadataMembers {
                let value: JSONValue = switch m.kind {
                case .string: .string(text(m.value))
                case .number: .number(text(m.value))
                case .true: .bool(true)
                case .false: .bool(false)
                case .null: .null
                }
                object.appendNew(text(m.key), value)
            }
            metadata = object
        }
        let id = text(idRange)
        var event = UsageEvent(
            id: id, source: source.value ?? "", seq: seqValue, time: time, platform: text(platformRange), serviceType: serviceType,
            model: model.value, endpoint: endpoint.value, usage: usage, cost: money, currency: currency,
            budgetId: budgetId.value, userId: userId.value, apiUsageId: apiUsageId.value, apifyRunId: apifyRunId.value,
            description: description.value, metadata: metadata, canonicalBody: ""
        )
        if let exact, let money, exact != money.exactDecimal { event.exactCost = exact }
        event.canonicalBody = canonicalBody(currency: currency, time: time, exactCost: event.exactCost ?? money?.exactDecimal)
        return event
    }

    // MARK: The canonical body

    /// The text `UsageEventDecoder.canonicalBody` writes for this event: the members in the
    /// byte order of their keys; `id`, `source` (`""` when absent) and `currency` (upper case,
    /// `USD` when absent) always; `seq`, `time` (canonical RFC 3339), `cost` (its exact value
    /// as given, canonical) and `usage` (units in order, quantities canonical) as decoded;
    /// other strings as sent (they need no escape); `metadata` with its keys in order and its
    /// numbers canonical.
    func canonicalBody(currency: String, time: Timestamp?, exactCost: ExactDecimal?) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { scratch in
            var out = JSONByteWriter(scratch: scratch)
            defer { out.release() }
            // Each member starts with `,"key":`; the first comma becomes the opening brace.
            let start = out.count
            for field in UsageEventDecoder.canonicalFieldOrder {
                switch field {
                case .source:
                    Self.appendKey(field, to: &out)
                    Self.appendQuoted(slice(range(.source) ?? 0..<0), to: &out)
                case .currency:
                    Self.appendKey(field, to: &out)
                    out.appendJSONString(currency)
                case .seq:
                    guard let seq else { continue }
                    Self.appendKey(field, to: &out)
                    out.append(slice(seq))
                case .time:
                    guard let time else { continue }
                    Self.appendKey(field, to: &out)
                    // Sent as `YYYY-MM-DDTHH:MM:SSZ` (and valid: it was parsed), it is already its
                    // canonical spelling: whole seconds, UTC, upper case.
                    if let r = range(.time), r.count == 20, base[r.lowerBound + 10] == UInt8(ascii: "T"),
                       base[r.lowerBound + 19] == UInt8(ascii: "Z") {
                        Self.appendQuoted(slice(r), to: &out)
                    } else {
                        out.appendJSONString(time.rfc3339)
                    }
                case .cost:
                    guard let exactCost else { continue }
                    Self.appendKey(field, to: &out)
                    out.append(exactCost.canonicalText)
                case .usage:
                    guard !usage.isEmpty else { continue }
                    Self.appendKey(field, to: &out)
                    writeSorted(count: usage.count, key: { unitRanges[$0] }, into: &out) { i, out in
                        out.append(usage[i].quantity.canonicalText)
                    }
                case .metadata:
                    guard hasMetadata else { continue }
                    Self.appendKey(field, to: &out)
                    let members = metadataMembers
                    writeSorted(count: members.count, key: { members[$0].key }, into: &out) { i, out in
                        let m = members[i]
                        switch m.kind {
                        case .string:
                            Self.appendQuoted(slice(m.value), to: &out)
                        case .number:
                            // As UsageEventDecoder.canonicalize.
                            out.append(ExactDecimal.canonicalNumberText(slice(m.value)))
                        case .true: out.append("true")
                        case .false: out.append("false")
                        case .null: out.append("null")
                        }
                    }
                case .kind, .correctsEvent, .specversion:
                    continue
                default:
                    guard let r = range(field) else { continue }
                    Self.appendKey(field, to: &out)
                    Self.appendQuoted(slice(r), to: &out)
                }
            }
            out.replace(at: start, with: UInt8(ascii: "{"))
            out.append(UInt8(ascii: "}"))
            return out.makeString()
        }
    }

    static func appendKey(_ field: EventField, to out: inout JSONByteWriter) {
        out.append(UsageEventDecoder.canonicalKeys[field.rawValue])
    }

    static func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout JSONByteWriter) {
        out.append(UInt8(ascii: "\""))
        out.append(bytes)
        out.append(UInt8(ascii: "\""))
    }

    /// An object of `count` members with distinct keys, in the byte order of their keys.
    func writeSorted(
        count: Int, key: (Int) -> Range<Int>, into out: inout JSONByteWriter, value: (Int, inout JSONByteWriter) -> Void
    ) {
        out.append(UInt8(ascii: "{"))
        withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { order in
            for i in 0..<count { order.initializeElement(at: i, to: i) }
            // Insertion sort: a few members.
            for i in 1..<Swift.max(count, 1) {
                let item = order[i]
                var j = i
                while j > 0, precedes(key(item), key(order[j - 1])) {
                    order[j] = order[j - 1]
                    j -= 1
                }
                order[j] = item
            }
            for k in 0..<count {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                let i = order[k]
                Self.appendQuoted(slice(key(i)), to: &out)
                out.append(UInt8(ascii: ":"))
                value(i, &out)
            }
        }
        out.append(UInt8(ascii: "}"))
    }
}

/// Whether `count` bytes at `a` and `b` are the same.
@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    for i in 0..<count where a[i] != b[i] { return false }
    return true
}
