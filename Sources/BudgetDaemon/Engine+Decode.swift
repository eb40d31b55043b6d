import BudgetCore
import Dispatch

/// What decoding one ingest message gave: an event, or the reason it is rejected.
///
/// A struct with optional members rather than an enum: the engine moves the event out
/// (`event.take()`); binding an enum case's payload copied the event (a retain and a release per
/// string) on every message (issue 8: 2 % of the daemon's samples, `perf` during a PUB run).
struct DecodeOutcome: Sendable {
    var event: UsageEvent?
    var rejection: (reason: String, id: String?, source: String?)?
    /// The event's `EventKeyHash` (0 without an event): computed where it is decoded, on the
    /// decode thread, for the key filter and the commit thread (issue 8: 4 % of the engine's).
    var keyHash: Int64 = 0

    static func event(_ event: UsageEvent) -> DecodeOutcome {
        DecodeOutcome(event: event, rejection: nil, keyHash: EventKeyHash.of(source: event.source, id: event.id))
    }

    static func rejected(reason: String, id: String?, source: String?) -> DecodeOutcome {
        DecodeOutcome(event: nil, rejection: (reason, id, source))
    }
}

/// A batch whose ingest messages are being decoded on the decode thread while the engine
/// decides the batch before it (issue 8: decoding was a quarter of the engine thread's time).
///
/// `@unchecked Sendable`: `outcomes` is written by the decode thread before `done` is signalled
/// and read by the engine only after waiting on it.
final class DecodeJob: @unchecked Sendable {
    let items: [WorkItem]
    var outcomes: [DecodeOutcome?] = []
    private let done = DispatchSemaphore(value: 0)

    init(_ items: [WorkItem]) { self.items = items }

    func run(maxBytes: Int) {
        outcomes = items.map { item in
            switch item {
            case .publish(let frames, _), .ack(_, let frames, _): Engine.decodeIngest(frames, maxBytes: maxBytes)
            case .control, .reload, .tick: nil
            }
        }
        done.signal()
    }

    /// Waits for the decode thread; returns the batch and its outcomes, which the job no longer
    /// holds: the caller owns the only reference, so taking outcomes out of it moves them
    /// instead of copying every event's strings (issue 8: the copies and their releases were a
    /// tenth of the engine thread's time).
    func wait() -> (items: [WorkItem], outcomes: [DecodeOutcome?]) {
        done.wait()
        defer { outcomes = [] }
        return (items, outcomes)
    }
}

extension Engine {
    /// Checks the frames and decodes the event: pure, runs on the decode thread.
    static func decodeIngest(_ frames: [[UInt8]], maxBytes: Int) -> DecodeOutcome {
        // A message rejected before its body is decoded still names its event in the
        // acknowledgement when the body has an id (the first of the first frames that does).
        func rejected(_ reason: String, bodies: ArraySlice<[UInt8]>) -> DecodeOutcome {
            let named = bodies.lazy.map { UsageEventDecoder.identity(of: $0) }.first { $0.id != nil }
            return .rejected(reason: reason, id: named?.id, source: named?.source)
        }
        guard frames.count == 2 else {
            let bodies = frames.count == 1 ? frames[...] : frames.dropFirst().prefix(3)
            return rejected("expected 2 frames [topic, json], got \(frames.count)", bodies: bodies)
        }
        let topic = frames[0]
        // The size limit is the JSON frame's; the topic may add at most `maxTopicBytes` (a 1 MiB
        // topic starting with `usage.` was accepted, and a dead letter kept all of it).
        guard topic.count <= EventLimits.maxTopicBytes else {
            return rejected(EventRejection.oversizedReason, bodies: frames[1...])
        }
        // The UTF-8 view, not an array of it: that was an allocation per message.
        let usage = "usage".utf8
        guard topic.starts(with: usage), topic.count == usage.count || topic[usage.count] == UInt8(ascii: ".") else {
            return rejected("topic must be usage or usage.*", bodies: frames[1...])
        }
        do {
            return .event(try UsageEventDecoder.decode(bytes: frames[1], maxBytes: maxBytes))
        } catch where error.reason == EventRejection.oversizedReason {
            // Over the size limit, but no bigger than the socket's hard cap: its id is read.
            return rejected(error.reason, bodies: frames[1...])
        } catch {
            return .rejected(reason: error.reason, id: error.id, source: error.source)
        }
    }

    /// Hands a batch to the decode thread.
    func startDecoding(_ batch: [WorkItem]) -> DecodeJob {
        let job = DecodeJob(batch)
        let maxBytes = config.maxMessageBytes
        decodeQueue.async { job.run(maxBytes: maxBytes) }
        return job
    }

    /// Processes every batch being decoded, in order, then releases the commit in progress:
    /// on return, everything read so far is committed (or failed) and released. Before anything
    /// else touches the ledger or the database, so batches commit in the order they were read.
    func finishDecoding() {
        while !decoding.isEmpty { finishOldestDecoding(pipelined: false) }
        completeCommit()
    }

    /// The serve loop's hot path. Right after it handed a new batch to the decode thread
    /// (`keepingNewest`), the batches before it are staged (and the one before those commits
    /// meanwhile), so this thread decides batch n+1 while batch n+2 decodes and batch n commits.
    /// With nothing new to read, every decoded batch is staged: it commits while the next one,
    /// when it comes, is decided (rather than both being done here in one go).
    func advancePipeline(keepingNewest: Bool = true) {
        while decoding.count > (keepingNewest ? 1 : 0) { finishOldestDecoding(pipelined: true) }
    }

    private func finishOldestDecoding(pipelined: Bool) {
        var (items, outcomes) = decoding.removeFirst().wait()
        // `process` keeps ingest behind a failed batch waiting for its retry.
        guard pipelined && canStage else { return process(items, decoded: consume outcomes) }
        // Ingest is staged (it commits while the next batch is decided) with the requests
        // answered from memory (a stats poll, say), replied to when the ingest before them is
        // released. Anything else runs after the staged batch commits, in one transaction.
        let isStaged = items.map { $0.isIngest || isMemoryControl($0) }
        // Handed over, not copied: `stage` takes each outcome out of the array, which must be
        // its only reference (a copied array would be copied whole on the first take).
        guard isStaged.contains(false) else { return stage(items, decoded: consume outcomes) }
        let staged = items.indices.filter { isStaged[$0] }
        let rest = items.indices.filter { !isStaged[$0] }.map { items[$0] }
        if !staged.isEmpty { stage(staged.map { items[$0] }, decoded: staged.map { outcomes[$0].take() }) }
        if !rest.isEmpty { process(rest) }
    }
}
