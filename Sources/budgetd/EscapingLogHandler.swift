import Logging

/// The plain standard-error handler (`timestamp level label: message key=value`) with control
/// characters in the message and metadata written as `\u00XX`: messages quote what publishers
/// send (a source in "sequence gap from …", an id), and a newline in a source wrote a second,
/// forged line that looked like a `critical` entry of budgetd's own to anyone reading the log or
/// shipping it line by line (an audit). The journal's handler keeps each record on one line by
/// itself (`JournalLogHandler`).
struct EscapingLogHandler: LogHandler {
    var inner: StreamLogHandler

    init(label: String) { inner = StreamLogHandler.standardError(label: label) }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = Logger.Message(stringLiteral: Self.escaped(event.message.description))
        event.metadata = event.metadata?.mapValues { .string(Self.escaped($0.description)) }
        inner.log(event: event)
    }

    /// `text` with C0, DEL and C1 control characters written as `\u00XX`.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// C0, DEL, C1, and what reorders or breaks a line (bidi controls, U+2028, U+2029).
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x2028, 0x2029: true
        default: false
        }
    }
}
