#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on `DATABASE.lock`, held while the daemon runs, so that a second budgetd
/// on the same database refuses to start instead of serving beside the first: each would keep
/// its own ledger and dedup filter, so the same event was ACCEPTED by both and one daemon's
/// running totals were lost at the next start (an audit's two daemons on one file). A separate
/// file rather than the database's: closing any descriptor of the database would drop SQLite's
/// own POSIX locks on it. The lock goes with the process (also on kill -9); the file, holding
/// the holder's pid for the message, stays and is harmless.
final class DatabaseLock {
    let path: String
    private var fd: Int32

    init(databasePath: String) throws {
        path = databasePath + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigurationError("cannot open database \(databasePath): unable to open its lock file \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            let holder = n > 0 ? String(decoding: buffer[..<n], as: UTF8.self).trimmingSpaces : ""
            close(fd)
            fd = -1
            if error == EWOULDBLOCK {
                throw ConfigurationError("database \(databasePath) is in use by another budgetd\(holder.isEmpty ? "" : " (pid \(holder))") holding \(path)")
            }
            throw ConfigurationError("cannot lock \(path): \(String(cString: strerror(error)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) == 0 { _ = pwrite(fd, pid, pid.count, 0) }
    }

    /// Lets the lock go (after the database is closed).
    func release() {
        guard fd >= 0 else { return }
        close(fd)
        fd = -1
    }

    deinit { release() }
}

private extension String {
    var trimmingSpaces: String {
        String(unicodeScalars.filter { !$0.properties.isWhitespace })
    }
}
