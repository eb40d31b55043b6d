import BudgetCore
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
        event.message = Logger.Message(stringLiteral: DisplayText.escaped(event.message.description))
        event.metadata = event.metadata?.mapValues { .string(DisplayText.escaped($0.description)) }
        inner.log(event: event)
    }
}
