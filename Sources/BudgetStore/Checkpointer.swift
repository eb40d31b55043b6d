import Foundation
import GRDBSQLite
import Synchronization

/// Copies the write-ahead log into the database file on its own thread and connection, so the
/// writer's commits never wait for a checkpoint (issue 8: checkpoints on the writer thread were
/// a fifth of its time under load).
///
/// The writer runs with `wal_autocheckpoint = 0`. This thread runs a PASSIVE checkpoint every
/// `interval` (it never blocks the writer; it copies what was committed and syncs the database
/// file, as `synchronous = FULL` asks). When the log holds more than `restartBytes` (64 MiB) of
/// frames anyway (under sustained load the writer never pauses long enough for a passive
/// checkpoint to reach the log's end, so the log never starts over), it runs a RESTART
/// checkpoint after the passive one, which waits for the writer's current transaction, copies
/// the little that is left, and makes the writer's next transaction start the log over from
/// the beginning of its file. It holds the writer meanwhile, some milliseconds: the tail of the
/// alert latency under load (docs/benchmarks.md). What counts is the frames the log holds (the
/// passive checkpoint reports them), not the file's size: a restarted log keeps its file, so
/// the size stays at its high-water mark, and deciding by it restarted the log at every
/// interval once it had been reached (then every 100 ms: a stall of the writer each time). Measured
/// alternatives were worse: TRUNCATE (the same, then cutting the file to zero) stalled the
/// writer for ~60 ms, a 1 GiB limit for half a second; checkpointing from the writer itself
/// cost the writer more than it saved (each checkpoint's fsync of the database file delays the
/// writer's fsync of the log). Every 25 ms rather than 100: each fsync of the database file
/// then carries a quarter of the pages, and holds up the writer's fsyncs less (alert p99 at
/// 17,000 events/s 19–31 → 16–22 ms, 6 % more bytes written: docs/benchmarks.md). Failures
/// (a full disk, say) are retried at the next interval; nothing is lost meanwhile, the log
/// only grows.
final class Checkpointer: Sendable {
    private let path: String
    private let interval: Duration
    private let restartBytes: Int64
    private let stopRequested = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let finished = Mutex<Bool>(false)
    private let restartCount = Atomic<Int>(0)

    /// RESTART checkpoints run so far.
    var restarts: Int { restartCount.load(ordering: .relaxed) }

    init(path: String, interval: Duration = .milliseconds(25), restartBytes: Int64 = 64 << 20) {
        self.path = path
        self.interval = interval
        self.restartBytes = restartBytes
    }

    func start() {
        started.store(true, ordering: .releasing)
        let thread = Thread { [self] in
            nameCurrentThread("budgetd-ckpt")
            run()
        }
        thread.start()
    }

    /// Stops the thread and waits for it (at most one checkpoint's time).
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        guard started.load(ordering: .acquiring) else { return }
        while !finished.withLock({ $0 }) { usleep(1000) }
    }

    private func run() {
        defer { finished.withLock { $0 = true } }
        var connection: OpaquePointer?
        // The store opened this file just before; should this fail anyway, the log only grows
        // and the writer's commits go on.
        guard sqlite3_open_v2(path, &connection, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let connection else {
            sqlite3_close(connection)
            return
        }
        defer { sqlite3_close(connection) }
        // Up to 5 s for the writer's lock, in 200 µs steps (the writer lets it go between two
        // batches only briefly; SQLite's own timeout sleeps up to 100 ms at a time).
        sqlite3_busy_handler(connection, { _, tries in
            usleep(200)
            return tries < 25_000 ? 1 : 0
        }, nil)
        // A new connection learns that the file is in WAL mode only when it first reads it;
        // until then a checkpoint does nothing (and reports -1 frames).
        sqlite3_exec(connection, "PRAGMA schema_version", nil, nil, nil)
        // A frame of the log: a page and its 24-byte header.
        let frameBytes = Int64(Self.pageSize(connection) + 24)
        // The log's frame count at the last RESTART: until the writer has started the log over,
        // the log still reports that many frames (all copied), and needs no second one.
        var restartedAtFrames: Int32 = -1
        let walPath = path + "-wal"
        let clock = ContinuousClock()
        var next = clock.now
        while !stopRequested.load(ordering: .acquiring) {
            if clock.now < next {
                usleep(5000)
                continue
            }
            next = clock.now.advanced(by: interval)
            guard Self.fileSize(walPath) > 0 else { continue }
            // A passive checkpoint even before a RESTART: a RESTART holds the writer back
            // while it copies, so the less is left to copy then, the shorter the wait. A
            // failure (busy, a full disk) is tried again at the next interval.
            var logFrames: Int32 = 0
            guard sqlite3_wal_checkpoint_v2(connection, nil, SQLITE_CHECKPOINT_PASSIVE, &logFrames, nil) == SQLITE_OK,
                  Int64(logFrames) * frameBytes > restartBytes, logFrames != restartedAtFrames else { continue }
            if sqlite3_wal_checkpoint_v2(connection, nil, SQLITE_CHECKPOINT_RESTART, &logFrames, nil) == SQLITE_OK {
                restartedAtFrames = logFrames
                restartCount.add(1, ordering: .relaxed)
            }
        }
    }

    /// The database's page size (4096 when it cannot be read).
    static func pageSize(_ connection: OpaquePointer) -> Int {
        var statement: OpaquePointer?
        defer { sqlite3_finalize(statement) }
        guard sqlite3_prepare_v2(connection, "PRAGMA page_size", -1, &statement, nil) == SQLITE_OK,
              sqlite3_step(statement) == SQLITE_ROW else { return 4096 }
        return Int(sqlite3_column_int64(statement, 0))
    }

    /// A file's size in bytes, 0 when it does not exist.
    static func fileSize(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }
}

/// Names the calling thread for the kernel, as /proc, `top -H` and perf show it (15 bytes at
/// most). Foundation's `Thread.name` does not reach the kernel on Linux, and Swift does not
/// import glibc's `pthread_setname_np`: this writes /proc/thread-self/comm, which is what it does.
public func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    defer { close(fd) }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
