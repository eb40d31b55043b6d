import BudgetCore
import Foundation
import Logging

/// Log lines for journald's stream transport: `<N>label: message key=value`, where `N` is the
/// syslog priority (sd-daemon(3)'s `SD_ERR` … prefixes), and no timestamp (the journal adds its own).
struct JournalLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// syslog priorities: 2 crit, 3 err, 4 warning, 5 notice, 6 info, 7 debug.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        var line = "<\(Self.priority(event.level))>\(label): \(event.message)"
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
        // One record per line: a newline inside a message would start a new journal entry at
        // the default priority.
        // Other control characters are escaped as in the plain handler (an escape sequence in
        // a publisher's source would otherwise reach `journalctl`'s terminal).
        line = DisplayText.escaped(line.replacingOccurrences(of: "\n", with: " ")) + "\n"
        writeStandardError(line)
    }

    /// Whether standard error is the journal's stream: `$JOURNAL_STREAM` is `DEVICE:INODE` of
    /// it (systemd.exec(5)), compared with stderr itself so a child that merely inherited the
    /// variable but was redirected elsewhere keeps timestamps.
    static func stderrIsJournal(_ environment: [String: String]) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }
}

/// Writes `text` to standard error with write(2), all of it or until the write fails. A
/// closed reader (`budgetd … | head`, a log shipper that went away) is an error here, not a
/// signal: budgetd ignores SIGPIPE, and a log line that cannot be written is dropped while
/// the daemon goes on (FileHandle's write would stop the process on EPIPE).
func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(2, raw.baseAddress! + offset, raw.count - offset)
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}
