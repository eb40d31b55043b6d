import BudgetStore
import Foundation

/// The process's own resource figures, for `stats.process` and the benchmarks: resident memory
/// (now and its peak, from /proc/self/status) and the database's bytes on disk (file and WAL, from the store).
struct ProcessFigures {
    var rssBytes: Int64?
    var peakRssBytes: Int64?
    var databaseBytes: Int64
    var walBytes: Int64
    /// The writer connection's `PRAGMA synchronous` as read back when the store opened.
    var synchronous: String

    static func read(store: Store) -> ProcessFigures {
        var rss: Int64?, peak: Int64?
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                if line.hasPrefix("VmRSS:") { rss = kilobytes(line) }
                if line.hasPrefix("VmHWM:") { peak = kilobytes(line) }
            }
        }
        let sizes = store.fileSizes
        return ProcessFigures(
            rssBytes: rss, peakRssBytes: peak, databaseBytes: sizes.database, walBytes: sizes.wal,
            synchronous: store.synchronousMode.rawValue
        )
    }

    /// "VmRSS:	  123456 kB" → bytes.
    static func kilobytes(_ line: Substring) -> Int64? {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard fields.count >= 2, let kb = Int64(fields[1]) else { return nil }
        return kb * 1024
    }
}
