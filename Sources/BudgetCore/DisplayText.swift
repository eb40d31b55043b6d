/// Text from publishers shown to people, on a terminal (budgetctl) or in a log (budgetd): the
/// characters that act on a terminal or break a line are written as JSON's `\uXXXX` escapes, so
/// an id, a source or a description cannot clear the screen, set the window title, hide the
/// rest of a line or forge a second one (the second audit's "FAKE: all budgets OK" and forged
/// `critical` log line). JSON's own escape, so JSON text stays valid.
public enum DisplayText {
    /// C0 (a newline too), DEL, C1, bidi marks, embeddings, overrides and isolates, and the line
    /// and paragraph separators.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x2028, 0x2029: true
        default: false
        }
    }

    /// `\uXXXX` of a scalar that `isControl` (all of them are below U+10000).
    public static func escape(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// `text` with every `isControl` character escaped.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isControl(scalar) { out.append(contentsOf: escape(scalar).unicodeScalars) } else { out.append(scalar) }
        }
        return String(out)
    }
}
