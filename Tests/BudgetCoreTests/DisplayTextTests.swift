import BudgetCore
import Testing

// What budgetctl and budgetd's log escape of publishers' text (docs/security.md).
struct DisplayTextTests {
    @Test("control characters, bidi controls and line separators become JSON escapes; everything else stays, in order")
    func escapes() throws {
        let text = "a\u{1B}[2J\u{7}b\nc\u{7F}\u{9B}d\u{202E}e\u{2066}f\u{2028}g\u{200F}h\u{061C}é🙂\u{FE0F}"
        let escaped = DisplayText.escaped(text)
        #expect(escaped == #"a\u001B[2J\u0007b\u000Ac\u007F\u009Bd\u202Ee\u2066f\u2028g\u200Fh\u061Cé🙂"# + "\u{FE0F}")
        #expect(!escaped.unicodeScalars.contains(where: DisplayText.isControl))
        // Still JSON: read back as a JSON string, it is the text again.
        #expect(try JSON.parse("\"\(escaped)\"") == .string(text))
        // Plain text is returned as it is.
        #expect(DisplayText.escaped("plain text, ünïcode") == "plain text, ünïcode")
    }
}
