import Foundation
import GRDB
import Testing

@testable import BudgetStore

// The checkpoint thread (issue 8): it starts the write-ahead log over (a RESTART checkpoint,
// which holds the writer for some milliseconds) when the log holds too many frames, and only
// then. A restarted log keeps its file at its high-water size, so the file's size cannot tell.

@Suite struct CheckpointerTests {
    /// A writer set up as the store's (WAL, no checkpoints of its own) in a new directory.
    private static func writer() throws -> (DatabaseQueue, String, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("budgetd-ckpt-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("c.db").path
        var config = Configuration()
        config.journalMode = .wal
        // As the store: wait for the lock a RESTART holds.
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        let queue = try DatabaseQueue(path: path, configuration: config)
        try queue.write { db in try db.execute(sql: "CREATE TABLE t (x BLOB NOT NULL)") }
        return (queue, path, dir)
    }

    /// The frames the log holds, from a passive checkpoint of this connection. A passive
    /// checkpoint does not wait for one in progress on the checkpoint thread (SQLITE_BUSY, no
    /// busy handler): it is tried again then.
    private static func logFrames(_ queue: DatabaseQueue) throws -> Int {
        for _ in 0..<1_000 {
            do {
                return try queue.writeWithoutTransaction { db in try db.checkpoint(.passive).walFrameCount }
            } catch let error as DatabaseError where error.resultCode.primaryResultCode == .SQLITE_BUSY {
                usleep(2_000)
            }
        }
        return try queue.writeWithoutTransaction { db in try db.checkpoint(.passive).walFrameCount }
    }

    @Test func restartsWhenTheLogHoldsTooManyFramesNotWhileItsFileIsLarge() throws {
        let (queue, path, dir) = try Self.writer()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 2 MiB of frames in the log before the checkpoint thread starts.
        let blob = Data(repeating: 7, count: 16 << 10)
        try queue.write { db in
            for _ in 0..<128 { try db.execute(sql: "INSERT INTO t (x) VALUES (?)", arguments: [blob]) }
        }
        let restartBytes: Int64 = 1 << 20
        let highWater = Checkpointer.fileSize(path + "-wal")
        #expect(highWater > 2 * restartBytes)
        let checkpointer = Checkpointer(path: path, interval: .milliseconds(5), restartBytes: restartBytes)
        checkpointer.start()
        defer { checkpointer.stop() }

        // More than `restartBytes` of frames: one RESTART (a slow machine gets time).
        let deadline = Date().addingTimeInterval(10)
        while checkpointer.restarts < 1 && Date() < deadline { usleep(5000) }
        #expect(checkpointer.restarts == 1)
        // The next transaction starts the log over, in the same file.
        try queue.write { db in try db.execute(sql: "INSERT INTO t (x) VALUES (x'00')") }
        let frames = try Self.logFrames(queue)
        #expect(frames > 0 && frames < 8, "the log started over: \(frames) frames")
        #expect(Checkpointer.fileSize(path + "-wal") == highWater, "the file keeps its size")

        // Small transactions (a frame or two each, ~0.5 MiB in all) for ~60 checkpoint
        // intervals, the file still above `restartBytes`: no restart (deciding by the file's
        // size, there was one per interval).
        for i in 0..<60 {
            try queue.write { db in try db.execute(sql: "INSERT INTO t (x) VALUES (?)", arguments: [Data([UInt8(i)])]) }
            usleep(5000)
        }
        #expect(checkpointer.restarts == 1, "\(checkpointer.restarts - 1) more restarts")
        // Nothing lost on the way.
        #expect(try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 128 + 1 + 60)
    }
}
