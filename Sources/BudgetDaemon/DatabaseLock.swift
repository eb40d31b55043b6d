#if canImport(Glibc)
import Glibc
#endif

/// Held while the daemon runs: an exclusive `flock` on the database file itself, so that a
/// second budgetd on the same file refuses to start instead of serving beside the first (each
/// would keep its own ledger and dedup filter: the same event ACCEPTED by both, one daemon's
/// running totals lost at the next start, an audit found). On the file, not on its path: a
/// symlink or a hard link to it is the same file (a lock on `PATH.lock` let two daemons run
/// through a symlink, the next audit found). `flock` and SQLite's POSIX locks do not interact;
/// but closing any descriptor of the file drops the process's POSIX locks on it, so this one is
/// closed only after the database is (`release`).
///
/// Beside it, `PATH.lock` (of the database's resolved path) remembers the pid and the last
/// outbound `seq` published (`pid`, then `lastSeq N`, a line each), so that a database restored
/// from a backup does not number new alerts with `seq`s and alert ids already published
/// (CONTRACT §5: monotonic; an audit's restore reused seq 4–6): `previousLastSeq` is what the
/// last daemon on this database recorded. It is written before each batch's alerts are
/// published (not only at heartbeats: a kill -9 between a batch's alerts and the next heartbeat
/// left the file behind, and a restore then reused them).
final class DatabaseLock {
    /// The file holding the pid and the last `seq`.
    let path: String
    /// The last `seq` the previous daemon recorded, if it did (and it is a sane one).
    let previousLastSeq: Int64?
    /// A `lastSeq` line that could not be read as one (to log: the floor is then not applied).
    private(set) var unreadableRecord: String?
    private var databaseFD: Int32
    private var fd: Int32
    private let pid = getpid()
    private var recorded: Int64?

    /// A recorded `seq` above this is ignored as damaged (numbering from Int64.max would
    /// overflow at the first alert; from 2⁶² it takes 2⁶² alerts to).
    static let largestSeq: Int64 = 1 << 62

    init(databasePath: String) throws {
        databaseFD = open(databasePath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if databaseFD < 0 && [EACCES, EPERM, EROFS].contains(errno) {
            // A read-only file still takes the lock; the store then refuses it, saying why.
            databaseFD = open(databasePath, O_RDONLY | O_CLOEXEC)
        }
        guard databaseFD >= 0 else {
            let error = errno
            let why = error == EISDIR ? "it is a directory" : "unable to open database file (\(String(cString: strerror(error))))"
            throw ConfigurationError("cannot open database \(databasePath): \(why)")
        }
        let resolved = Self.resolvedPath(databasePath)
        path = resolved + ".lock"
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let error = errno
            close(databaseFD)
            throw ConfigurationError("cannot open database \(databasePath): unable to open its lock file \(path): \(String(cString: strerror(error)))")
        }
        guard flock(databaseFD, LOCK_EX | LOCK_NB) == 0 else {
            let error = errno
            // Read for the message only: the holder owns the file.
            let holder = Self.read(fd).pid.map { " (pid \($0))" } ?? ""
            close(fd)
            close(databaseFD)
            fd = -1
            databaseFD = -1
            if error == EWOULDBLOCK {
                throw ConfigurationError("database \(databasePath) is in use by another budgetd\(holder)")
            }
            throw ConfigurationError("cannot lock database \(databasePath): \(String(cString: strerror(error)))")
        }
        // Read once the lock is held (a daemon still stopping may have been writing it).
        let record = Self.read(fd)
        previousLastSeq = record.lastSeq
        unreadableRecord = record.unreadable
        write(lastSeq: previousLastSeq)
    }

    /// Records `lastSeq` when it is past what is recorded (never lower), just before messages up
    /// to it are published: only published seqs are recorded (a heartbeat's or the stop's
    /// `ledger.lastSeq` could be one of a batch that failed to commit). Not synced to the disk: a
    /// power loss may lose the last record (docs/ledger.md).
    func record(lastSeq: Int64) {
        guard fd >= 0, lastSeq > (recorded ?? 0) else { return }
        write(lastSeq: lastSeq)
    }

    private func write(lastSeq: Int64?) {
        let line = lastSeq.map { "lastSeq \($0)\n" } ?? ""
        let text = Array(("\(pid)\n" + line).utf8)
        if pwrite(fd, text, text.count, 0) == text.count, ftruncate(fd, off_t(text.count)) == 0 { recorded = lastSeq }
    }

    /// The pid and the recorded `seq` in the file, as far as they can be read.
    private static func read(_ fd: Int32) -> (pid: Int64?, lastSeq: Int64?, unreadable: String?) {
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = pread(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return (nil, nil, nil) }
        let lines = String(decoding: buffer[..<n], as: UTF8.self).split(separator: "\n")
        let pid = lines.first.flatMap { Int64($0) }
        guard lines.count > 1 else { return (pid, nil, nil) }
        if lines[1].hasPrefix("lastSeq "), let value = Int64(lines[1].dropFirst(8)), value >= 0, value <= largestSeq {
            return (pid, value, nil)
        }
        return (pid, nil, String(lines[1].prefix(40)))
    }

    /// The path with symlinks resolved (the file's own directory, so every link to it shares
    /// one record), or as given when it cannot be resolved.
    private static func resolvedPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Lets the lock go (after the database is closed).
    func release() {
        if fd >= 0 { close(fd) }
        if databaseFD >= 0 { close(databaseFD) }
        fd = -1
        databaseFD = -1
    }

    deinit { release() }
}
