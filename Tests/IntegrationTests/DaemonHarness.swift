import BudgetCore
import Foundation
import Testing
import ZMQ

/// Where `swift build` put the executables: beside the test bundle.
enum Products {
    static let directory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The runner may live inside a bundle directory (…/budgetdPackageTests.xctest/…).
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("budgetd").path), dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }()
    static var budgetd: String { directory.appendingPathComponent("budgetd").path }
    static var budgetctl: String { directory.appendingPathComponent("budgetctl").path }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A temporary directory per test, removed at the end.
final class TempDir: @unchecked Sendable {
    let path: String
    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("budgetd-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// A real `budgetd` process on ephemeral loopback ports, with its database in a temp directory.
///
/// `@unchecked Sendable`: the stderr buffer is guarded by a lock; the rest is set once in init.
final class Daemon: @unchecked Sendable {
    let process = Process()
    let ingest: String, ingestAck: String, publish: String, control: String
    private let output = OutputBuffer()

    /// Starts budgetd and waits for its `ready` line.
    /// `config` adds keys to the test config. LOW_BUDGET and SPENDING_SPIKE are quiet by default
    /// (their timing depends on today's date, which tests must not); their own tests turn them on.
    /// `launcher`, when given, is a command that runs budgetd: it gets the budgetd path and its
    /// arguments appended (e.g. `unshare -m sh -c '… && exec "$0" "$@"'`, so budgetd keeps the pid).
    init(dir: TempDir, dbName: String = "budgetd.db", dbPath: String? = nil, heartbeatMs: Int = 100, config: [String: String] = [:], extraArgs: [String] = [], launcher: [String] = [], directory: String? = nil) throws {
        let configPath = dir.file("config.json")
        var keys = ["heartbeatIntervalMs": "\(heartbeatMs)", "drainTimeoutMs": "3000",
                    "lowBudgetMinElapsedHours": "8760", "spikeMinAmount": "\"1000000000000\""]
        for (k, v) in config { keys[k] = v }
        let text = "{" + keys.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        try Data(text.utf8).write(to: URL(fileURLWithPath: configPath))
        let arguments = [
            "--config", configPath, "--db", dbPath ?? dir.file(dbName),
            "--ingest", "tcp://127.0.0.1:*", "--ingest-ack", "tcp://127.0.0.1:*",
            "--publish", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
        ] + extraArgs
        if let command = launcher.first {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = Array(launcher.dropFirst()) + [Products.budgetd] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Products.budgetd)
            process.arguments = arguments
        }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Read stderr continuously so the daemon never blocks on a full pipe.
        let readyLine = ReadyLine()
        let handle = pipe.fileHandleForReading
        let output = self.output
        Thread.detachNewThread {
            var pendingLine = ""
            while true {
                let data = handle.availableData
                if data.isEmpty { readyLine.finish(); return }
                let text = String(decoding: data, as: UTF8.self)
                output.append(text)
                pendingLine += text
                while let nl = pendingLine.firstIndex(of: "\n") {
                    let line = String(pendingLine[..<nl])
                    pendingLine = String(pendingLine[pendingLine.index(after: nl)...])
                    if line.hasPrefix("ready ") { readyLine.set(line) }
                }
            }
        }
        guard let line = readyLine.wait(seconds: 60) else {
            process.terminate()
            throw HarnessError("budgetd did not print its ready line; stderr:\n\(output.text)")
        }
        var endpoints: [String: String] = [:]
        for part in line.split(separator: " ").dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { endpoints[String(kv[0])] = String(kv[1]) }
        }
        guard let i = endpoints["ingest"], let a = endpoints["ingest-ack"], let p = endpoints["publish"], let c = endpoints["control"] else {
            throw HarnessError("bad ready line: \(line)")
        }
        (ingest, ingestAck, publish, control) = (i, a, p, c)
    }

    var stderr: String { output.text }

    /// SIGTERM, then the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill9() }
    }
}

/// What the daemon wrote to stderr, for failure messages.
final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer = ""
    func append(_ s: String) {
        lock.lock()
        buffer += s
        lock.unlock()
    }
    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return buffer
    }
}

/// A one-shot latch for the ready line.
final class ReadyLine: @unchecked Sendable {
    private let condition = NSCondition()
    private var line: String?
    private var done = false
    func set(_ l: String) {
        condition.lock()
        if line == nil { line = l }
        condition.broadcast()
        condition.unlock()
    }
    func finish() {
        condition.lock()
        done = true
        condition.broadcast()
        condition.unlock()
    }
    func wait(seconds: Double) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while line == nil && !done && condition.wait(until: deadline) {}
        return line
    }
}

/// A client of the daemon's sockets, as a publisher, an operator or a subscriber would be.
/// Each client owns its sockets and uses them from the test's task only.
final class Client: @unchecked Sendable {
    let context: ZMQContext
    let daemon: Daemon
    private var sockets: [ZMQSocket] = []

    init(_ daemon: Daemon) throws {
        self.daemon = daemon
        context = try ZMQContext()
    }

    deinit {
        for s in sockets { try? s.setLinger(milliseconds: 0); s.close() }
        context.terminate()
    }

    func socket(_ type: SocketType) throws -> ZMQSocket {
        let s = try context.makeSocket(type)
        try s.setLinger(milliseconds: 0)
        sockets.append(s)
        return s
    }

    // MARK: control

    private var controlSocket: ZMQSocket?

    /// Sends a control request and returns the whole reply.
    func request(_ op: String, _ args: JSONValue = .object(JSONObject()), timeoutMs: Int = 10_000) throws -> JSONValue {
        let body = JSONValue.object(JSONObject([("op", .string(op)), ("args", args)]))
        return try requestRaw([body.serializedBytes()], timeoutMs: timeoutMs)
    }

    func requestRaw(_ frames: [[UInt8]], timeoutMs: Int = 10_000) throws -> JSONValue {
        // A fresh REQ per request keeps a lost reply from wedging the REQ state machine.
        if let s = controlSocket { s.close(); sockets.removeAll { $0 === s } }
        let s = try socket(.req)
        try s.connect(daemon.control)
        controlSocket = s
        try s.send(frames)
        guard try poll([(s, .readable)], timeoutMilliseconds: timeoutMs)[0].contains(.readable),
              let reply = try s.receive(), reply.count == 1 else {
            throw HarnessError("no control reply; daemon stderr:\n\(daemon.stderr)")
        }
        return try JSON.parse(reply[0])
    }

    /// The `result` of a successful request; fails the test otherwise.
    func call(_ op: String, _ args: JSONValue = .object(JSONObject())) throws -> JSONValue {
        let reply = try request(op, args)
        guard reply.objectValue?["ok"]?.boolValue == true, let result = reply.objectValue?["result"] else {
            throw HarnessError("\(op) failed: \(reply.serialized())")
        }
        return result
    }

    // MARK: acknowledged ingest

    private var dealer: ZMQSocket?

    func ackSocket() throws -> ZMQSocket {
        if let d = dealer { return d }
        let d = try socket(.dealer)
        try d.connect(daemon.ingestAck)
        dealer = d
        return d
    }

    /// Sends one event on the acknowledged socket and waits for its reply.
    func sendAck(_ event: JSONValue, topic: String = "usage") throws -> JSONObject {
        try sendAckRaw([Array(topic.utf8), event.serializedBytes()])
    }

    func sendAckRaw(_ frames: [[UInt8]], timeoutMs: Int = 10_000) throws -> JSONObject {
        let d = try ackSocket()
        try d.send(frames)
        guard try poll([(d, .readable)], timeoutMilliseconds: timeoutMs)[0].contains(.readable),
              let reply = try d.receive(), let last = reply.last,
              let o = try JSON.parse(last).objectValue else {
            throw HarnessError("no ack; daemon stderr:\n\(daemon.stderr)")
        }
        return o
    }

    // MARK: fire-and-forget ingest

    private var xpub: ZMQSocket?

    /// An XPUB publisher that has seen the daemon's subscription, so nothing is lost to the slow
    /// joiner, and with flow control (`ZMQ_XPUB_NODROP`): a burst the daemon takes slowly (a
    /// busy CI machine) makes `publish` wait, up to 30 s, instead of dropping at the high-water
    /// mark. (A test that sent 6,000 events at once lost some on a slow run and then waited in
    /// vain for their alerts.)
    func publisher() throws -> ZMQSocket {
        if let p = xpub { return p }
        let p = try socket(.xpub)
        try p.setXPubNoDrop(true)
        try p.setSendTimeout(milliseconds: 30_000)
        try p.connect(daemon.ingest)
        guard try poll([(p, .readable)], timeoutMilliseconds: 10_000)[0].contains(.readable),
              let sub = try p.receive(), sub.first?.first == 1 else {
            throw HarnessError("the daemon's SUB never subscribed")
        }
        xpub = p
        return p
    }

    func publish(_ event: JSONValue, topic: String = "usage") throws {
        guard try publisher().send([Array(topic.utf8), event.serializedBytes()]) else {
            throw HarnessError("publish: the daemon took nothing for 30 s")
        }
    }

    // MARK: outbound

    /// A subscriber that has received a heartbeat, so it is known to be subscribed.
    func subscriber(topics: [String] = ["alert.", "status."]) throws -> ZMQSocket {
        let s = try socket(.sub)
        for t in topics + ["heartbeat"] { try s.subscribe(t) }
        try s.connect(daemon.publish)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            guard try poll([(s, .readable)], timeoutMilliseconds: 500)[0].contains(.readable), let m = try s.receive() else { continue }
            if String(decoding: m[0], as: UTF8.self) == "heartbeat" { return s }
        }
        throw HarnessError("no heartbeat on \(daemon.publish)")
    }

    /// The next message that is not a heartbeat, as (topic, payload).
    func next(_ s: ZMQSocket, timeoutMs: Int = 10_000) throws -> (topic: String, payload: JSONObject)? {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while Date() < deadline {
            guard try poll([(s, .readable)], timeoutMilliseconds: 100)[0].contains(.readable), let m = try s.receive() else { continue }
            let topic = String(decoding: m[0], as: UTF8.self)
            if topic == "heartbeat" { continue }
            return (topic, try JSON.parse(m[1]).objectValue ?? JSONObject())
        }
        return nil
    }

    /// Whether anything but heartbeats arrives within `ms`.
    func quiet(_ s: ZMQSocket, ms: Int) throws -> Bool {
        try next(s, timeoutMs: ms) == nil
    }
}

// MARK: builders

/// A budget covering the current month, created through the control socket.
func makeBudget(_ client: Client, name: String = "Ops", total: String = "100", extra: [(String, JSONValue)] = []) throws -> String {
    let today = Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).civilDate
    let start = CivilDate(year: today.year, month: today.month, day: 1)!
    var args = JSONObject([
        ("name", .string(name)), ("budgetType", "MONTHLY"), ("totalAmount", .number(total)),
        ("startDate", .string(start.description)),
    ])
    for (k, v) in extra { args[k] = v }
    let result = try client.call("budget.create", .object(args))
    guard let id = result.objectValue?["id"]?.stringValue else { throw HarnessError("no id in \(result.serialized())") }
    return id
}

/// A usage event with an explicit cost.
func costEvent(_ id: String, cost: String, source: String = "test", budgetId: String? = nil, platform: String = "OpenAI", extra: [(String, JSONValue)] = []) -> JSONValue {
    var o = JSONObject([
        ("id", .string(id)), ("source", .string(source)), ("platform", .string(platform)), ("serviceType", "API"),
        ("cost", .number(cost)),
    ])
    if let budgetId { o["budgetId"] = .string(budgetId) }
    for (k, v) in extra { o[k] = v }
    return .object(o)
}

extension JSONObject {
    func string(_ key: String) -> String? { self[key]?.stringValue }
    func number(_ key: String) -> String? { self[key]?.numberText }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? { objectValue?[key] }
}

/// Runs a binary to its end: (exit status, standard output, standard error). Standard error is
/// read on a thread of its own, so neither pipe can fill up and block the child.
func runProcess(_ path: String, _ args: [String], removingEnvironment: [String] = []) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = args
    if !removingEnvironment.isEmpty {
        var environment = ProcessInfo.processInfo.environment
        for key in removingEnvironment { environment.removeValue(forKey: key) }
        process.environment = environment
    }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let errors = OutputBuffer()
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        errors.append(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        done.signal()
    }
    let output = out.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self), errors.text)
}
