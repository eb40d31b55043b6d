// An exact JSON parser and writer (RFC 8259), without Foundation.
//
// Foundation's JSONSerialization turns numbers into Double, which would lose amounts
// such as 0.1000000000000000000001 before we ever see them (CONTRACT §2). Here a number
// stays the exact literal text it was sent as, and `ExactDecimal` / `Money` read it.

/// A JSON value. Numbers keep their literal text; objects keep their key order.
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number as its literal text, exactly as in the input (validated against the JSON
    /// number grammar when parsed); never converted to a binary float. Code that builds
    /// this case itself must pass valid JSON number text, as the writer copies it as is.
    /// Equality compares the text (`1.0` ≠ `1`); compare values with `ExactDecimal`.
    case number(String)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, in input order.
    case object(JSONObject)
}


extension JSONValue {
    /// Structural equality. Strings (like object keys) compare code point by code point,
    /// as RFC 8259 §8.3 says, and not by Swift's canonical equivalence: a precomposed
    /// `"é"` and `"e\u0301"` differ, as they do in the serialized bytes. Numbers compare
    /// as text, objects ignore key order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return CodePointKey.same(a, b)
        case let (.string(a), .string(b)): return CodePointKey.same(a, b)
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a == b
        default: return false
        }
    }

    /// Hashes consistently with `==` (equal code points are equal Swift strings).
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null:
            hasher.combine(0)
        case .bool(let b):
            hasher.combine(1)
            hasher.combine(b)
        case .number(let text):
            hasher.combine(2)
            hasher.combine(text)
        case .string(let s):
            hasher.combine(3)
            hasher.combine(s)
        case .array(let elements):
            hasher.combine(4)
            hasher.combine(elements)
        case .object(let object):
            hasher.combine(5)
            hasher.combine(object)
        }
    }
}

/// A JSON object: string keys, unique, kept in insertion (input) order.
///
/// Keys compare code point by code point, as RFC 8259 §8.3 says, and not by Swift's
/// canonical equivalence: `"\u212A"` (KELVIN SIGN) and `"K"` are two keys, as every
/// other JSON implementation sees them. `==` ignores the key order, as JSON does;
/// `hash(into:)` agrees.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// A key and its value.
    public typealias Element = (key: String, value: JSONValue)

    /// A struct rather than the public tuple: arrays of tuples are destroyed through
    /// generic runtime metadata, which showed up in parse profiles.
    struct Entry {
        var key: String
        var value: JSONValue
    }

    /// The entries in order (read by the event decoder's single pass).
    private(set) var storage: [Entry]
    /// Key → position, built only for larger objects: for the usual dozen keys a linear
    /// scan (which mostly compares lengths) is faster than hashing.
    private var index: [CodePointKey: Int]?

    private static let indexThreshold = 32

    /// An empty object.
    public init() {
        storage = []
        index = nil
    }

    /// An empty object with room for `capacity` keys (the parser's guess).
    init(reservingCapacity capacity: Int) {
        self.init()
        storage.reserveCapacity(capacity)
    }

    /// An object with `pairs` in order; a repeated key replaces the earlier value in its
    /// original position.
    public init(_ pairs: [(String, JSONValue)]) {
        self.init()
        storage.reserveCapacity(pairs.count)
        for (key, value) in pairs { self[key] = value }
    }

    /// An object with the literal's pairs in order. A repeated key traps, as it does for
    /// `Dictionary` literals: it is a programming error.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init()
        storage.reserveCapacity(elements.count)
        for (key, value) in elements {
            // Not inside precondition(): its condition is not evaluated under -Ounchecked.
            let inserted = insertNew(key, value)
            precondition(inserted, "duplicate key \"\(key)\" in JSONObject literal")
        }
    }

    /// The keys in order.
    public var keys: [String] { storage.map(\.key) }

    /// The number of keys.
    public var count: Int { storage.count }

    /// Whether the object has no keys.
    public var isEmpty: Bool { storage.isEmpty }

    /// The pairs in order.
    public var pairs: [(key: String, value: JSONValue)] { storage.map { ($0.key, $0.value) } }

    /// The value for `key`. Setting a value replaces it in place or appends a new key;
    /// setting nil removes the key.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let position = position(of: key) else { return nil }
            return storage[position].value
        }
        set {
            if let newValue {
                if let position = position(of: key) {
                    storage[position].value = newValue
                } else {
                    append(key, newValue)
                }
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Removes `key` and returns its value, if it was there.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let position = position(of: key) else { return nil }
        let removed = storage.remove(at: position).value
        rebuildIndex()
        return removed
    }

    /// Iterates the pairs in order.
    public func makeIterator() -> Iterator {
        Iterator(base: storage.makeIterator())
    }

    /// Yields the pairs in order.
    public struct Iterator: IteratorProtocol {
        fileprivate var base: IndexingIterator<[Entry]>

        /// The next pair, or nil at the end.
        public mutating func next() -> Element? {
            guard let entry = base.next() else { return nil }
            return (entry.key, entry.value)
        }
    }

    /// The number of pairs.
    public var underestimatedCount: Int { storage.count }

    /// Adds `key` unless present; false when it was (for literals' duplicate check).
    mutating func insertNew(_ key: String, _ value: JSONValue) -> Bool {
        if position(of: key) != nil { return false }
        append(key, value)
        return true
    }

    /// Appends a key the caller knows is new (the parser has checked).
    mutating func appendNew(_ key: String, _ value: JSONValue) {
        append(key, value)
    }

    /// The entries ordered by the UTF-8 bytes of their keys, which is code point order.
    /// Positions are sorted rather than entries: moving entries costs reference counting.
    fileprivate func entriesSortedByKey() -> [Entry] {
        let order = storage.withUnsafeBufferPointer { entries in
            entries.indices.sorted { JSONObject.keyPrecedes(entries[$0].key, entries[$1].key) }
        }
        return order.map { storage[$0] }
    }

    static func keyPrecedes(_ a: String, _ b: String) -> Bool {
        let result = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in
                for i in 0..<Swift.min(x.count, y.count) where x[i] != y[i] { return x[i] < y[i] }
                return x.count < y.count
            }
        }
        // Nil (at either level) only for strings without contiguous UTF-8 storage.
        if let result, let result { return result }
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Whether the key at `position` is `key`.
    func hasKey(_ key: String, at position: Int) -> Bool {
        CodePointKey.same(storage[position].key, key)
    }

    private func position(of key: String) -> Int? {
        if let index { return index[CodePointKey(key)] }
        for position in storage.indices where CodePointKey.same(storage[position].key, key) {
            return position
        }
        return nil
    }

    private mutating func append(_ key: String, _ value: JSONValue) {
        storage.append(Entry(key: key, value: value))
        if index != nil {
            index![CodePointKey(key)] = storage.count - 1
        } else if storage.count > JSONObject.indexThreshold {
            rebuildIndex()
        }
    }

    private mutating func rebuildIndex() {
        guard storage.count > JSONObject.indexThreshold else {
            index = nil
            return
        }
        var built = [CodePointKey: Int](minimumCapacity: storage.count)
        for (position, entry) in storage.enumerated() { built[CodePointKey(entry.key)] = position }
        index = built
    }

    /// Equal when both have the same keys with equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for entry in lhs.storage {
            guard rhs[entry.key] == entry.value else { return false }
        }
        return true
    }

    /// Hashes independently of key order, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        // A commutative sum of per-pair hashes; keys are unique, so pairs cannot cancel.
        var combined: UInt = 0
        for entry in storage {
            var pairHasher = Hasher()
            pairHasher.combine(entry.key)
            pairHasher.combine(entry.value)
            combined &+= UInt(bitPattern: pairHasher.finalize())
        }
        hasher.combine(storage.count)
        hasher.combine(combined)
    }
}

/// A string as a key, equal and hashed by its UTF-8 bytes (its code points), as RFC 8259 §8.3
/// compares names, not by Swift's canonical equivalence: object keys here, and the daemon's
/// publisher names (two publishers named "é" and "e\u{301}" stay apart).
public struct CodePointKey: Hashable, Sendable {
    public let string: String

    public init(_ string: String) { self.string = string }

    @inline(__always)
    static func same(_ a: String, _ b: String) -> Bool {
        // Lengths differ for nearly every pair of distinct keys; UTF8View.count is O(1).
        guard a.utf8.count == b.utf8.count else { return false }
        // Native strings are contiguous: compare the bytes directly rather than through the
        // generic UTF8View iterator (the hot spot of key lookups in profiles).
        let fast: Bool?? = a.utf8.withContiguousStorageIfAvailable { pa in
            b.utf8.withContiguousStorageIfAvailable { pb in sameBytes(pa, pb) }
        }
        if let fast, let equal = fast { return equal }
        return a.utf8.elementsEqual(b.utf8)
    }

    /// Byte equality eight bytes at a time (the generic `elementsEqual` of two buffers went
    /// byte by byte through their iterators: issue 8, a source's lookup per event).
    @inline(__always)
    static func sameBytes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = a.count
        guard count == b.count else { return false }
        guard count > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return true }
        let ra = UnsafeRawPointer(pa), rb = UnsafeRawPointer(pb)
        var i = 0
        while i + 8 <= count {
            if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < count {
            if pa[i] != pb[i] { return false }
            i += 1
        }
        return true
    }

    public static func == (lhs: CodePointKey, rhs: CodePointKey) -> Bool {
        same(lhs.string, rhs.string)
    }

    public func hash(into hasher: inout Hasher) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            for byte in string.utf8 { hasher.combine(byte) }
        }
    }
}

extension String {
    /// Whether the two strings have the same code points (the same UTF-8 bytes): what JSON
    /// text means by equal strings (RFC 8259 §8.3). Swift's `==` is canonical equivalence,
    /// under which a precomposed "é" equals "e\u{301}".
    @inline(__always)
    public func hasSameCodePoints(as other: String) -> Bool { CodePointKey.same(self, other) }

    /// Hashes the UTF-8 bytes: consistent with `hasSameCodePoints(as:)`.
    @inline(__always)
    public func hashCodePoints(into hasher: inout Hasher) { CodePointKey(self).hash(into: &hasher) }
}

/// Why JSON input was rejected: a message and the byte offset where it was noticed.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A human-readable reason, such as `duplicate key "id"`.
    public let message: String
    /// The byte offset into the input.
    public let offset: Int

    /// Creates an error.
    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    /// `message at offset N`.
    public var description: String { "\(message) at offset \(offset)" }
}

/// Parsing entry points.
public enum JSON {
    /// Parses UTF-8 bytes as one JSON value (RFC 8259), with surrounding white space.
    ///
    /// Rejects, with an error and never a crash: invalid UTF-8, trailing garbage,
    /// duplicate object keys (`duplicate key "x"`), nesting deeper than `maxDepth`
    /// (message contains "too deep"; the top-level array or object is depth 1), invalid
    /// escapes and lone surrogates, leading zeros, `NaN`/`Infinity`, raw control
    /// characters in strings, and a byte order mark. Numbers keep their text.
    ///
    /// `maxDepth` also bounds the parser's recursion; keep it modest.
    @inlinable
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 32) throws(JSONParseError) -> JSONValue {
        // Inlinable so that it is specialized for the caller's collection: unspecialized
        // generic code would look up type metadata at run time on every message.
        if let result = bytes.withContiguousStorageIfAvailable({ parse(buffer: $0, maxDepth: maxDepth) }) {
            return try result.get()
        }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { parse(buffer: $0, maxDepth: maxDepth) }.get()
    }

    /// Parses raw memory (a received message frame) without copying it.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 32) throws(JSONParseError) -> JSONValue {
        try parse(buffer: bytes.assumingMemoryBound(to: UInt8.self), maxDepth: maxDepth).get()
    }

    /// Parses the UTF-8 form of `text` (see `parse(_:maxDepth:)` for bytes).
    public static func parse(_ text: String, maxDepth: Int = 32) throws(JSONParseError) -> JSONValue {
        var text = text
        return try text.withUTF8 { parse(buffer: $0, maxDepth: maxDepth) }.get()
    }

    /// The parser behind the public entry points, over borrowed bytes.
    @usableFromInline
    static func parse(buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int) -> Result<JSONValue, JSONParseError> {
        precondition(maxDepth >= 0, "maxDepth must not be negative")
        var parser = JSONParser(bytes: buffer, maxDepth: maxDepth)
        do throws(JSONParseError) {
            let value = try parser.parseValue()
            parser.skipWhitespace()
            guard parser.position == buffer.count else {
                throw parser.error("unexpected trailing characters")
            }
            return .success(value)
        } catch {
            return .failure(error)
        }
    }
}

// MARK: - Parser

/// A recursive-descent parser over borrowed bytes; recursion depth is bounded by maxDepth.
private struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var position = 0
    var depth = 0
    /// Fingerprints of the keys of the objects being parsed, innermost last, so a
    /// duplicate check compares integers and only looks at a key on a match.
    var keyFingerprints: [UInt64] = []

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        keyFingerprints.reserveCapacity(32)
    }

    func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(message: message, offset: offset ?? position)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw error("unexpected end of input") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw unexpectedCharacter()
        }
    }

    func unexpectedCharacter() -> JSONParseError {
        let c = bytes[position]
        if c >= 0x21 && c < 0x7F {
            return error("unexpected character '\(Character(Unicode.Scalar(c)))'")
        }
        return error("unexpected byte 0x\(String(c, radix: 16, uppercase: true))")
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let start = position
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count else { throw error("invalid literal", at: start) }
        let expected = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for k in 0..<count where bytes[position + k] != expected[k] {
            throw error("invalid literal", at: start)
        }
        position += count
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > maxDepth { throw error("nesting too deep (more than \(maxDepth) levels)") }
    }

    mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enter()
        position += 1
        // A usage event has a dozen or more members; the objects inside it a few.
        var object = JSONObject(reservingCapacity: depth == 1 ? 16 : 4)
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return .object(object)
        }
        let fingerprintBase = keyFingerprints.count
        // One bit per fingerprint seen in this object: a key whose bit is clear is new
        // without comparing it with the others (nearly every key of a dozen).
        var seen: UInt64 = 0
        while true {
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input") }
            guard bytes[position] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyOffset = position
            let key = try parseString()
            // Escapes always shrink, so equal lengths mean the raw bytes are the key's.
            let rawCount = position - keyOffset - 2
            let fingerprint = rawCount == key.utf8.count
                ? JSONParser.fingerprint(UnsafeBufferPointer(rebasing: bytes[(keyOffset + 1)..<(position - 1)]))
                : Array(key.utf8).withUnsafeBufferPointer { JSONParser.fingerprint($0) }
            let bit: UInt64 = 1 << ((fingerprint &* 0x9E37_79B9_7F4A_7C15) >> 58)
            if seen & bit != 0 {
                for k in fingerprintBase..<keyFingerprints.count
                where keyFingerprints[k] == fingerprint && object.hasKey(key, at: k - fingerprintBase) {
                    let shown = key.unicodeScalars.count > 64 ? String(key.unicodeScalars.prefix(64)) + "…" : key
                    throw error("duplicate key \"\(shown)\"", at: keyOffset)
                }
            }
            seen |= bit
            keyFingerprints.append(fingerprint)
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error(position < bytes.count ? "expected ':'" : "unexpected end of input")
            }
            position += 1
            object.appendNew(key, try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: ","):
                position += 1
            case UInt8(ascii: "}"):
                position += 1
                depth -= 1
                keyFingerprints.removeSubrange(fingerprintBase...)
                return .object(object)
            default:
                throw error("expected ',' or '}'")
            }
        }
    }

    mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enter()
        position += 1
        var elements: [JSONValue] = []
        elements.reserveCapacity(4)
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw error("unexpected end of input") }
            switch bytes[position] {
            case UInt8(ascii: ","):
                position += 1
            case UInt8(ascii: "]"):
                position += 1
                depth -= 1
                return .array(elements)
            default:
                throw error("expected ',' or ']'")
            }
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, kept as text.
    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number", at: start) }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, isDigit(bytes[position]) {
                throw error("leading zeros are not allowed", at: start)
            }
        } else {
            skipDigits()
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number", at: start) }
            skipDigits()
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number", at: start) }
            skipDigits()
        }
        return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
    }

    /// A cheap summary of a key's UTF-8 bytes: length, last byte and first six bytes.
    /// Keys that share it are compared in full, so it only needs to separate the usual
    /// dozen distinct keys of one object, not to be a good hash.
    @inline(__always)
    static func fingerprint(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let count = bytes.count
        guard count > 0 else { return 0 }
        var summary = UInt64(truncatingIfNeeded: count) << 56 | UInt64(bytes[count - 1]) << 48
        for i in 0..<Swift.min(count, 6) { summary ^= UInt64(bytes[i]) << (i * 8) }
        return summary
    }

    @inline(__always)
    func isDigit(_ c: UInt8) -> Bool {
        c &- UInt8(ascii: "0") < 10
    }

    mutating func skipDigits() {
        while position < bytes.count, isDigit(bytes[position]) { position += 1 }
    }

    /// Parses a string starting at its opening quote. Strings without escapes (nearly all)
    /// are validated in place and decoded in one go.
    mutating func parseString() throws(JSONParseError) -> String {
        position += 1
        let start = position
        while position < bytes.count {
            // Plain ASCII runs go 8 bytes at a time, up to the first byte that matters.
            while bytes.count - position >= 8, let base = bytes.baseAddress {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                let mask = JSONWords.attentionMask(word)
                if mask != 0 {
                    position += mask.trailingZeroBitCount >> 3
                    break
                }
                position += 8
            }
            guard position < bytes.count else { break }
            let c = bytes[position]
            if c == UInt8(ascii: "\"") {
                let run = UnsafeBufferPointer(rebasing: bytes[start..<position])
                let text = String(unsafeUninitializedCapacity: run.count) { target in
                    _ = target.initialize(from: run)
                    return run.count
                }
                position += 1
                return text
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in string") }
            if c < 0x80 { position += 1 } else { try skipUTF8Sequence() }
        }
        guard position < bytes.count else { throw error("unterminated string", at: start - 1) }

        var decoded: [UInt8] = []
        decoded.reserveCapacity(position - start + 16)
        decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<position]))
        while position < bytes.count {
            let c = bytes[position]
            switch c {
            case UInt8(ascii: "\""):
                position += 1
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &decoded)
            case 0..<0x20:
                throw error("control character in string")
            case 0x20..<0x80:
                decoded.append(c)
                position += 1
            default:
                let sequenceStart = position
                try skipUTF8Sequence()
                decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[sequenceStart..<position]))
            }
        }
        throw error("unterminated string", at: start - 1)
    }

    mutating func parseEscape(into decoded: inout [UInt8]) throws(JSONParseError) {
        let escapeStart = position
        position += 1
        guard position < bytes.count else { throw error("unterminated string") }
        let c = bytes[position]
        position += 1
        switch c {
        case UInt8(ascii: "\""): decoded.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): decoded.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): decoded.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hex4(escapeStart: escapeStart)
            var scalar = UInt32(unit)
            if (0xD800...0xDBFF).contains(unit) {
                // A high surrogate must be followed at once by an escaped low surrogate.
                guard bytes.count - position >= 6,
                      bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                else { throw error("lone surrogate \\u\(hex(unit))", at: escapeStart) }
                position += 2
                let low = try hex4(escapeStart: escapeStart)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("lone surrogate \\u\(hex(unit))", at: escapeStart)
                }
                scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(unit) {
                throw error("lone surrogate \\u\(hex(unit))", at: escapeStart)
            }
            appendUTF8(scalar, to: &decoded)
        default:
            throw error("invalid escape", at: escapeStart)
        }
    }

    func hex(_ unit: UInt16) -> String {
        let digits = String(unit, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - digits.count) + digits
    }

    mutating func hex4(escapeStart: Int) throws(JSONParseError) -> UInt16 {
        guard bytes.count - position >= 4 else { throw error("invalid \\u escape", at: escapeStart) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape", at: escapeStart)
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(0xC0 | UInt8(scalar >> 6))
            out.append(0x80 | UInt8(scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(0xE0 | UInt8(scalar >> 12))
            out.append(0x80 | UInt8(scalar >> 6 & 0x3F))
            out.append(0x80 | UInt8(scalar & 0x3F))
        default:
            out.append(0xF0 | UInt8(scalar >> 18))
            out.append(0x80 | UInt8(scalar >> 12 & 0x3F))
            out.append(0x80 | UInt8(scalar >> 6 & 0x3F))
            out.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    /// Validates one multi-byte UTF-8 sequence at `position` (RFC 3629: no overlong
    /// forms, no surrogates, nothing above U+10FFFF) and steps over it.
    mutating func skipUTF8Sequence() throws(JSONParseError) {
        let lead = bytes[position]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw error("invalid UTF-8")
        }
        guard bytes.count - position >= length, secondRange.contains(bytes[position + 1]) else {
            throw error("invalid UTF-8")
        }
        for k in 2..<length where bytes[position + k] & 0xC0 != 0x80 {
            throw error("invalid UTF-8")
        }
        position += length
    }
}

// MARK: - Writer

extension JSONValue {
    /// Compact serialization, no white space. Numbers are written as their stored literal
    /// text; strings are escaped per RFC 8259 (`"`, `\` and control characters; other
    /// characters, non-ASCII included, are written as UTF-8).
    ///
    /// With `sortedKeys`, object keys are ordered by Unicode code point (UTF-8 byte order),
    /// independent of locale and normalization: the canonical form used to compare bodies.
    public func serialized(sortedKeys: Bool = false) -> String {
        String(decoding: serializedBytes(sortedKeys: sortedKeys), as: UTF8.self)
    }

    /// The UTF-8 bytes of `serialized(sortedKeys:)`, ready to send as a message frame.
    public func serializedBytes(sortedKeys: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out, sortedKeys: sortedKeys)
        return out
    }

    private func write(into out: inout [UInt8], sortedKeys: Bool) {
        switch self {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .number(let text):
            out.append(contentsOf: text.utf8)
        case .string(let s):
            JSONValue.writeString(s, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (k, element) in elements.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                element.write(into: &out, sortedKeys: sortedKeys)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            var first = true
            if sortedKeys {
                for entry in object.entriesSortedByKey() {
                    JSONValue.writeMember(entry.key, entry.value, first: &first, into: &out, sortedKeys: true)
                }
            } else {
                for (key, value) in object {
                    JSONValue.writeMember(key, value, first: &first, into: &out, sortedKeys: false)
                }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// The byte count of `serializedBytes()` (sorted or not: the same), without building
    /// it; counting stops early once it is over `limit`, and the result is then only
    /// known to be over it.
    ///
    /// `asStored`: a number counts as its canonical spelling (`ExactDecimal.canonicalNumberText`),
    /// which the stored body has: `1e40` is 41 digits there, `1.50000000` is `1.5`. So a limit
    /// checked this way at ingest holds again, to the byte, when the stored body is decoded to be
    /// re-processed (an audit's event whose metadata of exponents was accepted, then refused at
    /// every re-processing as over 16 KiB: UNALLOCATED for good; and metadata of `1.50000000`s
    /// refused though it was stored in a third of the limit; and a body stored before the
    /// 40-zero rule, whose `1e999` is 1,000 digits, counts as the 5 of `1e999` now).
    public func serializedByteCount(limit: Int = .max, asStored: Bool = false) -> Int {
        switch self {
        case .null: return 4
        case .bool(let b): return b ? 4 : 5
        case .number(let text): return asStored ? ExactDecimal.canonicalNumberText(text).utf8.count : text.utf8.count
        case .string(let s): return JSONValue.serializedStringByteCount(s)
        case .array(let elements):
            var total = 1 + Swift.max(elements.count, 1)
            for element in elements {
                total += element.serializedByteCount(limit: limit, asStored: asStored)
                if total > limit { return total }
            }
            return total
        case .object(let object):
            var total = 1 + Swift.max(object.count, 1)
            for entry in object.storage {
                total += JSONValue.serializedStringByteCount(entry.key) + 1
                total += entry.value.serializedByteCount(limit: limit, asStored: asStored)
                if total > limit { return total }
            }
            return total
        }
    }

    /// The byte count of a string as `writeString` writes it, quotes included.
    private static func serializedStringByteCount(_ s: String) -> Int {
        let plain = s.utf8.withContiguousStorageIfAvailable { JSONByteWriter.needsEscape($0) ? nil : $0.count + 2 }
        if let plain, let plain { return plain }
        var total = 2
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\\"), UInt8(ascii: "\""), 0x0A, 0x0D, 0x09, 0x08, 0x0C: total += 2
            case 0..<0x20: total += 6
            default: total += 1
            }
        }
        return total
    }

    private static func writeMember(
        _ key: String, _ value: JSONValue, first: inout Bool, into out: inout [UInt8], sortedKeys: Bool
    ) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        writeString(key, into: &out)
        out.append(UInt8(ascii: ":"))
        value.write(into: &out, sortedKeys: sortedKeys)
    }

    /// `s` as a JSON string (quoted, escaped as `serialized` does), appended to `out`.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { writeEscaped($0, into: &out) }
        if done == nil {
            writeEscaped(Array(s.utf8), into: &out)
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func writeEscaped(_ bytes: [UInt8], into out: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { writeEscaped($0, into: &out) }
    }

    /// Copies runs that need no escaping in one go; escapes `"`, `\` and control characters.
    fileprivate static func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        let count = bytes.count
        var runStart = 0
        var i = 0
        while i < count {
            // Skip 8 bytes at a time up to the first one that needs an escape.
            if count - i >= 8, let base = bytes.baseAddress {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
                let mask = JSONWords.escapeMask(word)
                if mask == 0 {
                    i += 8
                    continue
                }
                i += mask.trailingZeroBitCount >> 3
            }
            let c = bytes[i]
            guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else {
                i += 1
                continue
            }
            if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
            i += 1
            runStart = i
            out.append(UInt8(ascii: "\\"))
            switch c {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            default:
                let hexDigits: StaticString = "0123456789abcdef"
                out.append(contentsOf: "u00".utf8)
                out.append(hexDigits.utf8Start[Int(c >> 4)])
                out.append(hexDigits.utf8Start[Int(c & 0xF)])
            }
        }
        if runStart < count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...])) }
    }
}

// MARK: - Byte writer

/// Appends bytes to memory it manages by hand, for the event decoder's canonical body:
/// no uniqueness check or reference counting per append, as an `[UInt8]` has. It starts
/// in scratch memory the caller provides (on the stack) and moves to the heap only when
/// that is full; the caller must call `release()` when done.
struct JSONByteWriter {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var ownsMemory = false
    /// The bytes written so far.
    private(set) var count = 0

    init(scratch: UnsafeMutableBufferPointer<UInt8>) {
        precondition(scratch.count > 0, "JSONByteWriter needs some scratch memory")
        base = scratch.baseAddress!
        capacity = scratch.count
    }

    /// Frees the heap memory, if the writer moved there.
    mutating func release() {
        if ownsMemory { base.deallocate() }
        ownsMemory = false
        capacity = 0
        count = 0
    }

    /// The bytes written, as a String.
    func makeString() -> String {
        String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self)
    }

    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        if capacity - count < extra { grow(extra) }
    }

    @inline(never)
    private mutating func grow(_ extra: Int) {
        let newCapacity = Swift.max(capacity * 2, count + extra)
        let memory = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        memory.initialize(from: base, count: count)
        if ownsMemory { base.deallocate() }
        base = memory
        capacity = newCapacity
        ownsMemory = true
    }

    /// Overwrites the byte at `index` (already written).
    mutating func replace(at index: Int, with byte: UInt8) {
        precondition(index < count, "JSONByteWriter.replace past the end")
        base[index] = byte
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        (base + count).initialize(from: source, count: bytes.count)
        count += bytes.count
    }

    /// The UTF-8 bytes of `text` as they are (numbers, literals).
    mutating func append(_ text: String) {
        // Not withUTF8, which needs a mutable copy (and so reference counting).
        if text.utf8.withContiguousStorageIfAvailable({ append($0) }) == nil {
            Array(text.utf8).withUnsafeBufferPointer { append($0) }
        }
    }

    /// `s` as a JSON string, quoted and escaped exactly as `JSONValue.serialized` writes it.
    mutating func appendJSONString(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ appendJSONString(utf8: $0) }) == nil {
            Array(s.utf8).withUnsafeBufferPointer { appendJSONString(utf8: $0) }
        }
    }

    private mutating func appendJSONString(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        if JSONByteWriter.needsEscape(bytes) {
            var escaped: [UInt8] = []
            escaped.reserveCapacity(bytes.count + 16)
            JSONValue.writeEscaped(bytes, into: &escaped)
            append(UInt8(ascii: "\""))
            escaped.withUnsafeBufferPointer { append($0) }
            append(UInt8(ascii: "\""))
            return
        }
        reserve(bytes.count + 2)
        base[count] = UInt8(ascii: "\"")
        count += 1
        if let source = bytes.baseAddress {
            (base + count).initialize(from: source, count: bytes.count)
            count += bytes.count
        }
        base[count] = UInt8(ascii: "\"")
        count += 1
    }

    /// Whether any byte is `"`, `\` or a control character.
    static func needsEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = bytes.count
        var i = 0
        if let base = bytes.baseAddress {
            while count - i >= 8 {
                let word = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
                if JSONWords.escapeMask(word) != 0 { return true }
                i += 8
            }
        }
        while i < count {
            let c = bytes[i]
            if c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { return true }
            i += 1
        }
        return false
    }
}

// MARK: - Conveniences

extension JSONValue {
    /// A number value for an integer, written in decimal.
    public static func number(_ integer: some BinaryInteger) -> JSONValue {
        .number(String(integer))
    }

    /// A number value for an exact decimal, in its canonical text (`0.006`).
    public static func number(_ decimal: ExactDecimal) -> JSONValue {
        .number(decimal.description)
    }

    /// A number value for an amount, in its shortest exact text (`4065.5`): CONTRACT §6
    /// has amounts in replies as JSON numbers.
    public static func number(_ money: Money) -> JSONValue {
        .number(money.description)
    }

    /// The string, if this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The object, if this is an object.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The boolean, if this is `true` or `false`.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// Whether this is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The literal text, if this is a number.
    public var numberText: String? {
        if case .number(let text) = self { return text }
        return nil
    }

    /// The value for `key`, if this is an object that has it.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

extension JSONValue: ExpressibleByStringLiteral {
    /// A string value.
    public init(stringLiteral value: String) {
        self = .string(value)
    }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    /// A boolean value.
    public init(booleanLiteral value: Bool) {
        self = .bool(value)
    }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    /// A number value written in decimal.
    public init(integerLiteral value: Int) {
        self = .number(String(value))
    }
}

extension JSONValue: ExpressibleByArrayLiteral {
    /// An array value.
    public init(arrayLiteral elements: JSONValue...) {
        self = .array(elements)
    }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    /// An object value with the literal's keys in order; a repeated key traps.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements {
            let inserted = object.insertNew(key, value)
            precondition(inserted, "duplicate key \"\(key)\" in JSONValue literal")
        }
        self = .object(object)
    }
}

extension JSONValue: ExpressibleByNilLiteral {
    /// `null`. (Where a `JSONValue?` is expected, `nil` is still `Optional.none`.)
    public init(nilLiteral: ()) {
        self = .null
    }
}

/// Eight bytes at a time: which of them a string scan must look at (the parser, the byte
/// writer, and the usage-event decoder's common-shape path).
enum JSONWords {
    /// As `attentionMask`, without non-ASCII: what a writer must escape (it copies UTF-8 as is).
    @inline(__always)
    static func escapeMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let hasQuote = (quote &- ones) & ~quote
        let hasBackslash = (backslash &- ones) & ~backslash
        let hasControl = (word &- ones &* 0x20) & ~word
        return (hasQuote | hasBackslash | hasControl) & 0x8080_8080_8080_8080
    }

    /// Flags (bit 7 of each byte) the bytes among 8 little-endian ones that a string scan
    /// must look at one by one: `"`, `\`, control characters and non-ASCII. Uses the
    /// "has a zero byte" bit trick; its false positives lie only above a true one, so
    /// the lowest flag is exact.
    @inline(__always)
    static func attentionMask(_ word: UInt64) -> UInt64 {
        // Non-ASCII bytes are those with bit 7 set.
        escapeMask(word) | (word & 0x8080_8080_8080_8080)
    }
}
