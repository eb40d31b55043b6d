#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on `DATABASE.lock`, held while the daemon runs, so that a second budgetd
/// on the same database refuses to start instead of serving beside the first: each would keep
/// its own ledger and dedup filter, so the same event was ACCEPTED by both and one daemon's
/// running totals were lost at the next start (an audit's two daemons on one file). A separate
/// file rather than the database's: closing any descriptor of the database would drop SQLite's
/// own POSIX locks on it. The lock goes with the process (also on kill -9); the file stays.
///
/// The file also remembers the last outbound `seq` published (`pid`, then `lastSeq N`, a line
/// each), so that a database restored from a backup does not number new alerts with `seq`s and
/// alert ids already published (CONTRACT §5: monotonic; an audit's restore reused seq 4–6, and
/// `alerts tail` dropped the new alerts as already seen): `previousLastSeq` is what the last
/// daemon on this database recorded.
final class DatabaseLock {
    let path: String
    /// The last `seq` the previous daemon recorded, if it did.
    let previousLastSeq: Int64?
    private var fd: Int32
    private let pid = getpid()
    private var recorded: Int64?

    init(databasePath: String) throws {
        path = databasePath + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigurationError("cannot open database \(databasePath): unable to open its lock file \(path): \(String(cString: strerror(errno)))")
        }
        let previous = Self.read(fd)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            close(fd)
            fd = -1
            if error == EWOULDBLOCK {
                let holder = previous.first.map { " (pid \($0))" } ?? ""
                throw ConfigurationError("database \(databasePath) is in use by another budgetd\(holder) holding \(path)")
            }
            throw ConfigurationError("cannot lock \(path): \(String(cString: strerror(error)))")
        }
        previousLastSeq = previous.count > 1 ? previous[1] : nil
        write(lastSeq: previousLastSeq)
    }

    /// Records `lastSeq` when it is past what is recorded (never lower: a ledger that failed
    /// to load reads 0): at each heartbeat and at the stop.
    func record(lastSeq: Int64) {
        guard fd >= 0, lastSeq > (recorded ?? 0) else { return }
        write(lastSeq: lastSeq)
    }

    private func write(lastSeq: Int64?) {
        let line = lastSeq.map { "lastSeq \($0)\n" } ?? ""
        let text = Array(("\(pid)\n" + line).utf8)
        if pwrite(fd, text, text.count, 0) == text.count, ftruncate(fd, off_t(text.count)) == 0 { recorded = lastSeq }
    }

    /// The pid and the recorded `seq` in the file (as many as can be read).
    private static func read(_ fd: Int32) -> [Int64] {
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return [] }
        let lines = String(decoding: buffer[..<n], as: UTF8.self).split(separator: "\n")
        var values: [Int64] = []
        if let first = lines.first, let pid = Int64(first) { values.append(pid) } else { return values }
        if lines.count > 1, lines[1].hasPrefix("lastSeq "), let seq = Int64(lines[1].dropFirst(8)), seq >= 0 { values.append(seq) }
        return values
    }

    /// Lets the lock go (after the database is closed).
    func release() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { release() }
}
