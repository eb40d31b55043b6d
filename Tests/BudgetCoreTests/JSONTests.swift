import BudgetCore
import Testing

/// A deterministic generator, so the fuzz checks see the same inputs on every run.
private func parseError(_ bytes: [UInt8], maxDepth: Int = 32) -> JSONParseError? {
    do throws(JSONParseError) {
        _ = try JSON.parse(bytes, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}

private func parseError(_ text: String, maxDepth: Int = 32) -> JSONParseError? {
    parseError(Array(text.utf8), maxDepth: maxDepth)
}

struct JSONTests {
    // MARK: Numbers

    @Test("numbers keep their exact literal text")
    func exactNumbers() throws {
        let value = try JSON.parse("[0.1000000000000000000001, 1e400, -0, 12, -0.0e-0, 1E+2, 123456789012345678901234567890]")
        #expect(value.arrayValue?.compactMap(\.numberText) == [
            "0.1000000000000000000001", "1e400", "-0", "12", "-0.0e-0", "1E+2", "123456789012345678901234567890",
        ])
        #expect(value.serialized() == "[0.1000000000000000000001,1e400,-0,12,-0.0e-0,1E+2,123456789012345678901234567890]")
        let cost = try JSON.parse(#"{"cost": 0.1000000000000000000001}"#)["cost"]?.numberText
        #expect(try ExactDecimal(parsing: cost ?? "").description == "0.1000000000000000000001")
    }

    static let validNumbers = ["0", "-0", "0.0", "1e5", "1E5", "1e+5", "1e-5", "-12.34e-56", "10", "9007199254740993"]

    @Test("valid number literals parse and serialize unchanged", arguments: validNumbers)
    func validNumber(text: String) throws {
        let value = try JSON.parse(text)
        #expect(value == .number(text))
        #expect(value.serialized() == text)
    }

    static let invalidNumbers = [
        "01", "-", "1.", ".1", "1e", "1e+", "--1", "+1", "0x10", "1.e5", "-.5", "Infinity", "-Infinity", "NaN", "-NaN", "1_000",
    ]

    @Test("invalid number literals are rejected", arguments: invalidNumbers)
    func invalidNumber(text: String) {
        #expect(parseError(text) != nil)
        #expect(parseError("[\(text)]") != nil)
    }

    // MARK: Structure and errors

    @Test("duplicate keys are rejected")
    func duplicateKeys() {
        let error = parseError(#"{"a":1,"a":2}"#)
        #expect(error?.message == #"duplicate key "a""#)
        #expect(error?.offset == 7)
        #expect(parseError(#"{"x":{"b":1,"b":1}}"#)?.message == #"duplicate key "b""#)
        #expect(parseError(#"{"a":1,"\u0061":2}"#)?.message == #"duplicate key "a""#)
        #expect(parseError(#"{"a":1,"A":2}"#) == nil)
        // Past the size where JSONObject switches to an index.
        let many = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(parseError("{\(many)}") == nil)
        #expect(parseError("{\(many),\"k17\":0}")?.message == #"duplicate key "k17""#)
    }

    @Test("keys that share a length and their ends are still told apart")
    func similarKeys() throws {
        let value = try JSON.parse(#"{"abcdef1z":1,"abcdef2z":2,"abcdef1z ":3}"#)
        #expect(value.objectValue?.keys == ["abcdef1z", "abcdef2z", "abcdef1z "])
        #expect(value["abcdef2z"] == 2)
        #expect(parseError(#"{"abcdef1z":1,"abcdef2z":2,"abcdef1z":3}"#)?.message == #"duplicate key "abcdef1z""#)
        #expect(parseError(#"{"x":{"a":1},"a":2,"y":{"a":3,"b":{"a":4}}}"#) == nil)
    }

    @Test("keys and strings compare by code point, as RFC 8259 does")
    func codePointEquality() throws {
        let value = try JSON.parse(#"{"K":1,"\u212A":2}"#)
        #expect(value.objectValue?.count == 2)
        #expect(value["K"] == 1)
        #expect(value["\u{212A}"] == 2)
        var object = JSONObject()
        object["K"] = 1
        object["\u{212A}"] = 2
        #expect(object.keys == ["K", "\u{212A}"])
        #expect(JSONValue.string("\u{E9}") != .string("e\u{301}"))
        #expect(try JSON.parse(#"{"k":"\u00e9"}"#) != JSON.parse(#"{"k":"e\u0301"}"#))
        #expect(try JSON.parse(#"{"k":"\u00e9"}"#) == JSON.parse(#"{"k":"é"}"#))
    }

    @Test("nesting up to 32 levels is accepted", arguments: [1, 2, 31, 32])
    func depthAccepted(levels: Int) throws {
        let arrays = String(repeating: "[", count: levels) + String(repeating: "]", count: levels)
        #expect(parseError(arrays) == nil)
        let objects = String(repeating: #"{"a":"#, count: levels) + "1" + String(repeating: "}", count: levels)
        let value = try JSON.parse(objects)
        var depth = 0
        var cursor: JSONValue? = value
        while let object = cursor?.objectValue {
            depth += 1
            cursor = object["a"]
        }
        #expect(depth == levels)
        #expect(cursor == .number("1"))
    }

    @Test("nesting deeper than 32 levels is rejected", arguments: [33, 34, 100, 100_000])
    func depthRejected(levels: Int) {
        let arrays = String(repeating: "[", count: levels) + String(repeating: "]", count: levels)
        #expect(parseError(arrays)?.message.contains("too deep") == true)
        #expect(parseError(arrays)?.offset == 32)
        let objects = String(repeating: #"{"a":"#, count: levels) + "1" + String(repeating: "}", count: levels)
        #expect(parseError(objects)?.message.contains("too deep") == true)
        let mixed = String(repeating: #"[{"a":"#, count: levels / 2 + 1) + "1" + String(repeating: "}]", count: levels / 2 + 1)
        #expect(parseError(mixed)?.message.contains("too deep") == true)
    }

    @Test("maxDepth is configurable")
    func customDepth() {
        #expect(parseError("[[1]]", maxDepth: 1)?.message.contains("too deep") == true)
        #expect(parseError("[[1]]", maxDepth: 2) == nil)
        #expect(parseError("1", maxDepth: 0) == nil)
        #expect(parseError("[]", maxDepth: 0) != nil)
    }

    static let malformed: [(String, String, Int)] = [
        ("", "unexpected end of input", 0),
        ("   ", "unexpected end of input", 3),
        ("{", "unexpected end of input", 1),
        ("[", "unexpected end of input", 1),
        ("[1", "unexpected end of input", 2),
        ("[1,]", "unexpected character ']'", 3),
        ("[1,,2]", "unexpected character ','", 3),
        (#"{"a":1,}"#, "expected a string key", 7),
        ("{1:2}", "expected a string key", 1),
        (#"{"a" 1}"#, "expected ':'", 5),
        (#"{"a":}"#, "unexpected character '}'", 5),
        (#"{"a":1 "b":2}"#, "expected ',' or '}'", 7),
        ("[1 2]", "expected ',' or ']'", 3),
        ("tru", "invalid literal", 0),
        ("nul", "invalid literal", 0),
        ("falsy", "invalid literal", 0),
        ("truex", "unexpected trailing characters", 4),
        ("[1]x", "unexpected trailing characters", 3),
        ("{} {}", "unexpected trailing characters", 3),
        (#""abc"#, "unterminated string", 0),
        (#""\x""#, "invalid escape", 1),
        (#""\u12""#, #"invalid \u escape"#, 1),
        (#""\uZZZZ""#, #"invalid \u escape"#, 1),
        ("\"a\tb\"", "control character in string", 2),
        ("\"\u{7}\"", "control character in string", 1),
        ("\"a\nb\"", "control character in string", 2),
        ("NaN", "unexpected character 'N'", 0),
        ("Infinity", "unexpected character 'I'", 0),
        ("-Infinity", "invalid number", 0),
        ("01", "leading zeros are not allowed", 0),
        ("1.", "invalid number", 0),
        (".5", "unexpected character '.'", 0),
        ("+1", "unexpected character '+'", 0),
        ("'a'", "unexpected character '''", 0),
    ]

    @Test("malformed text is rejected with a message and an offset", arguments: malformed)
    func malformedText(text: String, message: String, offset: Int) {
        let error = parseError(text)
        #expect(error?.message == message)
        #expect(error?.offset == offset)
    }

    static let malformedBytes: [([UInt8], String, Int)] = [
        ([0xFF, 0xFE], "unexpected byte 0xFF", 0),
        ([0xEF, 0xBB, 0xBF, 0x7B, 0x7D], "unexpected byte 0xEF", 0),  // byte order mark
        ([0x00], "unexpected byte 0x0", 0),
        ([0x5B, 0x31, 0x00, 0x5D], "expected ',' or ']'", 2),
        ([0x22, 0xC3, 0x28, 0x22], "invalid UTF-8", 1),               // bad continuation
        ([0x22, 0xC0, 0xAF, 0x22], "invalid UTF-8", 1),               // overlong "/"
        ([0x22, 0xE0, 0x80, 0xAF, 0x22], "invalid UTF-8", 1),         // overlong, 3 bytes
        ([0x22, 0xED, 0xA0, 0x80, 0x22], "invalid UTF-8", 1),         // encoded surrogate
        ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "invalid UTF-8", 1),   // above U+10FFFF
        ([0x22, 0xE2, 0x82, 0x22], "invalid UTF-8", 1),               // truncated
        ([0x22, 0xE2, 0x82], "invalid UTF-8", 1),                     // truncated at the end
        ([0x22, 0x80, 0x22], "invalid UTF-8", 1),                     // lone continuation
        ([0x22, 0x5C, 0x6E, 0xFF, 0x22], "invalid UTF-8", 3),         // after an escape
    ]

    @Test("binary and invalid UTF-8 input is rejected", arguments: malformedBytes)
    func malformedInput(bytes: [UInt8], message: String, offset: Int) {
        let error = parseError(bytes)
        #expect(error?.message == message)
        #expect(error?.offset == offset)
    }

    @Test("every truncation of a document is rejected, never a crash")
    func truncations() throws {
        let document = #"{"a":[1,2.5e3,"x\u00e9\ud83d\ude00"],"b":{"c":null,"d":true,"e":false},"f":"€"}"#
        let bytes = Array(document.utf8)
        #expect(parseError(bytes) == nil)
        for length in 0..<bytes.count {
            let error = parseError(Array(bytes[..<length]))
            #expect(error != nil, "prefix of \(length) bytes parsed")
            #expect((error?.offset ?? .max) <= length)
        }
    }

    @Test("random and mutated bytes either parse and round-trip or throw")
    func fuzz() throws {
        var random = SplitMix64(state: 7)
        let alphabet = Array(#"{}[]":,\-0123456789.eE+truefalsn u"#.utf8) + [0x00, 0x09, 0x0A, 0xC3, 0xA9, 0xFF, 0xED, 0xF0]
        let seed = Array(#"{"id":"e-1","usage":{"inputTokens":1200},"cost":0.15,"tags":["a",null,true]}"#.utf8)
        var parsed = 0
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                let count = Int(random.next() % 24)
                bytes = (0..<count).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            } else {
                bytes = seed
                for _ in 0..<(1 + random.next() % 3) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] = random.next() % 2 == 0 ? alphabet[Int(random.next() % UInt64(alphabet.count))] : UInt8(truncatingIfNeeded: random.next())
                }
            }
            do throws(JSONParseError) {
                let value = try JSON.parse(bytes)
                parsed += 1
                let again = try JSON.parse(value.serializedBytes())
                #expect(again == value)
            } catch {
                #expect(error.offset >= 0 && error.offset <= bytes.count)
                #expect(!error.message.isEmpty)
            }
        }
        // Both outcomes must have been exercised for the check to mean anything.
        #expect(parsed > 100)
        #expect(parsed < 19_000)
    }

    // MARK: Strings

    static let strings: [(String, String)] = [
        (#""\u00e9""#, "é"),
        (#""\u00E9""#, "é"),
        (#""\ud83d\ude00""#, "😀"),
        (#""\uD83D\uDE00""#, "😀"),
        (#""\u0000""#, "\u{0}"),
        (#""\u20ac""#, "€"),
        (#""€""#, "€"),
        (#""x\u00e9y😀z""#, "xéy😀z"),
        (#""a\nb\t\"\\\/""#, "a\nb\t\"\\/"),
        (#""\b\f\r""#, "\u{8}\u{C}\r"),
        (#""""#, ""),
    ]

    @Test("string escapes, surrogate pairs and raw UTF-8 decode", arguments: strings)
    func decodesStrings(json: String, expected: String) throws {
        #expect(try JSON.parse(json) == .string(expected))
        #expect(try JSON.parse(JSONValue.string(expected).serialized()) == .string(expected))
    }

    static let loneSurrogates = [
        #""\ud83d""#, #""\ude00""#, #""\ud83d\u0041""#, #""\ud83dx""#, #""\ud83d\ud83d""#, #""\ude00\ud83d""#, #""\ud83d\""#,
    ]

    @Test("lone surrogates are rejected", arguments: loneSurrogates)
    func loneSurrogate(json: String) {
        let error = parseError(json)
        #expect(error != nil)
        #expect(error?.offset == 1)
    }

    // MARK: Writing

    static let serializations: [(JSONValue, String)] = [
        (["a": 1, "b": [true, false, nil], "c": "x\"y\\z\n"], #"{"a":1,"b":[true,false,null],"c":"x\"y\\z\n"}"#),
        (.string("\u{1}\u{1F}\u{7F}é😀"), "\"\\u0001\\u001f\u{7F}é😀\""),
        (.string("\u{8}\u{C}\r\t/"), #""\b\f\r\t/""#),
        ([:], "{}"),
        ([], "[]"),
        (.null, "null"),
        (.number(Int128.max), "170141183460469231731687303715884105727"),
        (.number(-5), "-5"),
        (.number(UInt8(7)), "7"),
        (.number(ExactDecimal(mantissa: 150, exponent: -2)), "1.5"),
        (.number(Money(nanos: 4_065_500_000_000)), "4065.5"),
    ]

    @Test("serializes compactly with RFC 8259 escapes", arguments: serializations)
    func serializes(value: JSONValue, text: String) throws {
        #expect(value.serialized() == text)
        #expect(value.serializedBytes() == Array(text.utf8))
        #expect(try JSON.parse(text) == value)
    }

    @Test("parse then serialize is the compact form of the input")
    func roundTrip() throws {
        let spaced = "{ \"b\" : [ 1 , 2.50 ] ,\n\t\"a\" : \"x\" , \"c\" : { } }\r\n"
        let value = try JSON.parse(spaced)
        #expect(value.serialized() == #"{"b":[1,2.50],"a":"x","c":{}}"#)
        #expect(try JSON.parse(value.serialized()) == value)
        let canonical = #"{"id":"9f1c","time":"2026-03-05T12:00:00Z","usage":{"inputTokens":1200,"outputTokens":300},"cost":0.15,"metadata":{"projectId":"proj-123","nested":[null,true,false,"é"]}}"#
        #expect(try JSON.parse(canonical).serialized() == canonical)
    }

    @Test("sortedKeys orders keys by code point at every level")
    func sortedKeys() throws {
        let value = try JSON.parse(#"{"b":1,"a":{"d":2,"c":3},"é":0,"z":[{"y":1,"x":2}],"Z":0}"#)
        #expect(value.serialized(sortedKeys: true) == #"{"Z":0,"a":{"c":3,"d":2},"b":1,"z":[{"x":2,"y":1}],"é":0}"#)
        #expect(value.serialized() == #"{"b":1,"a":{"d":2,"c":3},"é":0,"z":[{"y":1,"x":2}],"Z":0}"#)
        let reordered = try JSON.parse(#"{"Z":0,"z":[{"x":2,"y":1}],"a":{"c":3,"d":2},"é":0,"b":1}"#)
        #expect(reordered.serialized(sortedKeys: true) == value.serialized(sortedKeys: true))
    }

    // MARK: Objects and conveniences

    @Test("JSONObject keeps order, replaces in place and removes")
    func objectEditing() {
        var object = JSONObject()
        object["b"] = 1
        object["a"] = 2
        object["b"] = 3
        #expect(object.keys == ["b", "a"])
        #expect(object["b"] == 3)
        #expect(object.count == 2)
        object["a"] = nil
        #expect(object.keys == ["b"])
        #expect(object["a"] == nil)
        #expect(object.removeValue(forKey: "b") == 3)
        #expect(object.isEmpty)

        let built = JSONObject([("x", 1), ("y", 2), ("x", 3)])
        #expect(built.keys == ["x", "y"])
        #expect(built["x"] == 3)
        #expect(built.map(\.key) == ["x", "y"])
        #expect(built.pairs.map(\.value) == [3, 2])
    }

    @Test("large JSONObjects stay consistent through edits")
    func largeObject() {
        var object = JSONObject()
        for k in 0..<40 { object["k\(k)"] = .number(k) }
        object["k5"] = "five"
        object["k20"] = nil
        object["k0"] = nil
        object["new"] = true
        #expect(object.count == 39)
        #expect(object.keys.first == "k1")
        #expect(object.keys.last == "new")
        #expect(object["k5"] == "five")
        #expect(object["k20"] == nil)
        #expect(object["k39"] == .number(39))
        #expect(object["new"] == true)
        for k in 1..<40 where k != 20 && k != 5 {
            #expect(object["k\(k)"] == .number(k))
        }
    }

    @Test("object equality and hashing ignore key order")
    func objectEquality() {
        let a = JSONObject([("a", 1), ("b", [2, 3])])
        let b = JSONObject([("b", [2, 3]), ("a", 1)])
        let c = JSONObject([("a", 1), ("b", [3, 2])])
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != c)
        #expect(Set([JSONValue.object(a), .object(b), .object(c)]).count == 2)
        #expect(JSONObject([("a", 1)]) != JSONObject([("a", 1), ("b", 1)]))
    }

    @Test("literals and accessors")
    func conveniences() throws {
        let value: JSONValue = ["z": 1, "a": "x", "n": nil, "t": true, "list": [1, "two"]]
        #expect(value.objectValue?.keys == ["z", "a", "n", "t", "list"])
        #expect(value["a"]?.stringValue == "x")
        #expect(value["z"]?.numberText == "1")
        #expect(value["n"]?.isNull == true)
        #expect(value["t"]?.boolValue == true)
        #expect(value["list"]?.arrayValue?.count == 2)
        #expect(value["missing"] == nil)
        #expect(value["a"]?.numberText == nil)
        #expect(value["z"]?.stringValue == nil)
        #expect(JSONValue.string("x")["a"] == nil)
        let nested = try JSON.parse(#"{"usage":{"inputTokens":1200}}"#)
        #expect(nested["usage"]?["inputTokens"]?.numberText == "1200")
    }

    @Test("all input forms parse alike")
    func inputForms() throws {
        let text = #"{"a":[1,"é"]}"#
        let expected: JSONValue = ["a": [1, "é"]]
        #expect(try JSON.parse(text) == expected)
        #expect(try JSON.parse(Array(text.utf8)) == expected)
        #expect(try JSON.parse(Array(("xx" + text).utf8)[2...]) == expected)
        #expect(try JSON.parse(text.utf8.lazy.map { $0 }) == expected)
        let bytes = Array(text.utf8)
        let fromRaw = try bytes.withUnsafeBytes { raw throws(JSONParseError) in try JSON.parse(raw) }
        #expect(fromRaw == expected)
        #expect(parseError([UInt8]())?.message == "unexpected end of input")
    }

    @Test("errors describe themselves with their offset")
    func errorDescription() {
        let error = parseError("[1,]")
        #expect(error?.description == "unexpected character ']' at offset 3")
    }

    /// Code point equality (metadata values, sources) compares UTF-8 bytes eight at a time, then
    /// the rest: every length around the words, a difference at every position, against the
    /// bytes' own equality; canonically equivalent spellings stay different.
    @Test("hasSameCodePoints is byte equality at every length and position")
    func sameCodePointsIsByteEquality() {
        for length in 0...25 {
            // Long enough to be stored out of line from 16 bytes on (small strings below).
            let base = String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
            #expect(base.hasSameCodePoints(as: String(base)))
            #expect(CodePointKey(base) == CodePointKey(base + ""))
            for position in 0..<length {
                var bytes = Array(base.utf8)
                bytes[position] ^= 0x01
                let changed = String(decoding: bytes, as: UTF8.self)
                #expect(!base.hasSameCodePoints(as: changed), "\(base) / \(changed)")
                #expect(!changed.hasSameCodePoints(as: base))
            }
            // One byte more or less.
            #expect(!base.hasSameCodePoints(as: base + "a"))
            if length > 0 { #expect(!base.hasSameCodePoints(as: String(base.dropLast()))) }
        }
        // é precomposed and decomposed: equal as Swift strings, not as code points.
        let precomposed = "caf\u{E9}-source-longer-than-16", decomposed = "cafe\u{301}-source-longer-than-16"
        #expect(precomposed == decomposed)
        #expect(!precomposed.hasSameCodePoints(as: decomposed))
        #expect(CodePointKey(precomposed) != CodePointKey(decomposed))
    }
}
