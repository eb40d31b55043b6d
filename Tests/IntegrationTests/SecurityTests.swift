import BudgetCore
import Foundation
import Testing
import ZMQ

/// CURVE on every TCP socket, with the roles of CONTRACT §8, against the real daemon.
@Suite(.timeLimit(.minutes(3)))
struct SecurityTests {
    struct Keys {
        let server = try! CurveKeyPair.generate()
        let publisher = try! CurveKeyPair.generate()
        let operatorKey = try! CurveKeyPair.generate()
        let viewer = try! CurveKeyPair.generate()
        let subscriber = try! CurveKeyPair.generate()
        let stranger = try! CurveKeyPair.generate()
    }

    func write(_ text: String, _ path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Starts a daemon with CURVE: operators as a list file, the other roles as directories of .pub files.
    func secureDaemon(_ dir: TempDir, _ k: Keys) throws -> Daemon {
        try write("# budgetd\n\(k.server.secretKey)\n", dir.file("server.key"))
        try write("# operators\n\(k.operatorKey.publicKey)\n", dir.file("operators.txt"))
        for (role, key) in [("publishers", k.publisher), ("viewers", k.viewer), ("subscribers", k.subscriber)] {
            try FileManager.default.createDirectory(atPath: dir.file(role), withIntermediateDirectories: true)
            try write(key.publicKey + "\n", dir.file("\(role)/one.pub"))
        }
        return try Daemon(dir: dir, extraArgs: [
            "--curve-secret-key", dir.file("server.key"), "--curve-operators", dir.file("operators.txt"),
            "--curve-publishers", dir.file("publishers"), "--curve-viewers", dir.file("viewers"),
            "--curve-subscribers", dir.file("subscribers"),
        ])
    }

    /// A socket of `type` connected with CURVE as `client` (or plain when nil).
    func connect(_ context: ZMQContext, _ type: SocketType, to endpoint: String, server: CurveKeyPair, as client: CurveKeyPair?) throws -> ZMQSocket {
        let s = try context.makeSocket(type)
        try s.setLinger(milliseconds: 0)
        if let client { try s.setCurveClient(serverPublicKey: server.publicKey, keyPair: client) }
        try s.connect(endpoint)
        return s
    }

    /// One control request; nil when nothing answers within `ms`.
    func request(_ s: ZMQSocket, _ op: String, _ args: JSONValue = [:], ms: Int = 1500) throws -> JSONValue? {
        let body: JSONValue = ["op": .string(op), "args": args]
        try s.send([body.serializedBytes()])
        guard try poll([(s, .readable)], timeoutMilliseconds: ms)[0].contains(.readable), let reply = try s.receive() else { return nil }
        return try JSON.parse(reply[0])
    }

    @Test func rolesDecideWhoMayDoWhat() throws {
        let dir = try TempDir()
        let k = Keys()
        let daemon = try secureDaemon(dir, k)
        defer { #expect(daemon.stop() == 0) }
        let context = try ZMQContext()
        defer { context.terminate() }
        var sockets: [ZMQSocket] = []
        defer { for s in sockets { s.close() } }
        func socket(_ type: SocketType, _ endpoint: String, _ key: CurveKeyPair?) throws -> ZMQSocket {
            let s = try connect(context, type, to: endpoint, server: k.server, as: key)
            sockets.append(s)
            return s
        }

        // An operator may change things.
        let op = try socket(.dealer, daemon.control, k.operatorKey)
        let created = try #require(try request(op, "budget.create", [
            "id": "b_sec", "name": "Secure", "budgetType": "MONTHLY", "totalAmount": .number("100"),
            "startDate": .string(Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)).civilDate.description),
        ], ms: 10_000))
        #expect(created["ok"]?.boolValue == true, "\(created.serialized())")

        // A viewer may read, not write.
        let viewer = try socket(.dealer, daemon.control, k.viewer)
        #expect(try request(viewer, "budget.get", ["id": "b_sec"], ms: 10_000)?["ok"]?.boolValue == true)
        let refused = try #require(try request(viewer, "budget.update", ["id": "b_sec", "totalAmount": .number("5")]))
        #expect(refused["error"]?["code"]?.stringValue == "UNAUTHORIZED")
        #expect(refused["error"]?["message"]?.stringValue?.contains("viewer") == true)
        // Every op by name (docs/security.md): read-only ones are a viewer's, state-changing
        // ones UNAUTHORIZED, and an op that does not exist is UNKNOWN_OP, for a viewer as for
        // an operator (it was UNAUTHORIZED, "changes state"). An operator gets no UNKNOWN_OP
        // for any of them: the two lists are every op.
        let readOnly = ["budget.get", "budget.list", "cost.list", "alert.list", "outbound.list", "analytics", "forecast",
                        "optimization.list", "spend.check", "price.quote", "event.list", "health", "stats", "audit.list", "event.get"]
        let changing = ["budget.create", "budget.update", "cost.allocate", "cost.credit", "alert.resolve", "event.reprice",
                        "retention.run", "event.reprocess", "prices.reload", "allocation.add", "allocation.update", "allocation.remove",
                        "optimization.update", "backup.create"]
        for name in readOnly {
            let code = try request(viewer, name, [:], ms: 10_000)?["error"]?["code"]?.stringValue
            #expect(code != "UNAUTHORIZED" && code != "UNKNOWN_OP", "\(name): \(code ?? "ok")")
        }
        for name in changing {
            #expect(try request(viewer, name, [:], ms: 10_000)?["error"]?["code"]?.stringValue == "UNAUTHORIZED", "\(name)")
        }
        for name in readOnly + changing {
            #expect(try request(op, name, [:], ms: 10_000)?["error"]?["code"]?.stringValue != "UNKNOWN_OP", "\(name)")
        }
        for client in [viewer, op] {
            let unknown = try request(client, "nope.op", [:], ms: 10_000)
            #expect(unknown?["error"]?["code"]?.stringValue == "UNKNOWN_OP")
            #expect(unknown?["error"]?["message"]?.stringValue == "unknown op nope.op")
        }

        // A key in no list, and a client without CURVE, are refused at the handshake: no answer at all.
        #expect(try request(try socket(.dealer, daemon.control, k.stranger), "health") == nil)
        #expect(try request(try socket(.dealer, daemon.control, nil), "health") == nil)
        // A publisher's key does not open the control socket either.
        #expect(try request(try socket(.dealer, daemon.control, k.publisher), "health") == nil)

        // Ingest: only publishers.
        let event = costEvent("sec-1", cost: "1", budgetId: "b_sec").serializedBytes()
        let publisher = try socket(.dealer, daemon.ingestAck, k.publisher)
        try publisher.send([Array("usage".utf8), event])
        #expect(try poll([(publisher, .readable)], timeoutMilliseconds: 10_000)[0].contains(.readable))
        let ack = try JSON.parse(try #require(try publisher.receive()?.last))
        #expect(ack["status"]?.stringValue == "ACCEPTED")
        let intruder = try socket(.dealer, daemon.ingestAck, k.stranger)
        try intruder.send([Array("usage".utf8), costEvent("sec-2", cost: "1000", budgetId: "b_sec").serializedBytes()])
        #expect(try poll([(intruder, .readable)], timeoutMilliseconds: 1500)[0].isEmpty)
        #expect(try request(op, "budget.get", ["id": "b_sec"], ms: 10_000)?["result"]?["totalSpent"]?.numberText == "1")

        // The audit log says who changed what; the refused update left no entry.
        let audit = try #require(try request(op, "audit.list", ["target": "b_sec"], ms: 10_000)?["result"]?.arrayValue)
        #expect(audit.count == 1)
        #expect(audit.first?["op"]?.stringValue == "budget.create")
        #expect(audit.first?["actor"]?.stringValue == k.operatorKey.publicKey)
        #expect(audit.first?["before"]?.isNull == true)
        #expect(audit.first?["after"]?["totalAmount"]?.numberText == "100")

        // Outbound: only subscribers hear the heartbeat.
        let subscriber = try socket(.sub, daemon.publish, k.subscriber)
        try subscriber.subscribe("heartbeat")
        #expect(try poll([(subscriber, .readable)], timeoutMilliseconds: 10_000)[0].contains(.readable))
        let eavesdropper = try socket(.sub, daemon.publish, k.viewer)
        try eavesdropper.subscribe("")
        #expect(try poll([(eavesdropper, .readable)], timeoutMilliseconds: 1500)[0].isEmpty)
    }

    @Test func everyChangeIsAuditedWithBeforeAndAfter() throws {
        let dir = try TempDir()
        let daemon = try Daemon(dir: dir)
        defer { #expect(daemon.stop() == 0) }
        let client = try Client(daemon)
        let id = try makeBudget(client, total: "100")
        _ = try client.call("budget.update", ["id": .string(id), "totalAmount": .number("250")])
        _ = try client.call("budget.get", ["id": .string(id)])
        _ = try client.request("budget.update", ["id": .string(id), "status": "COMPLETED"])
        let entries = try #require(try client.call("audit.list", ["target": .string(id)]).arrayValue)
        #expect(entries.map { $0["op"]?.stringValue } == ["budget.update", "budget.create"])
        #expect(entries.allSatisfy { $0["actor"]?.stringValue == "local" })
        #expect(entries.first?["before"]?["totalAmount"]?.numberText == "100")
        #expect(entries.first?["after"]?["totalAmount"]?.numberText == "250")
        #expect(entries.first?["args"]?["totalAmount"]?.numberText == "250")
        let older = try #require(try client.call("audit.list", ["before": entries[0]["id"] ?? .null]).arrayValue)
        #expect(older.map { $0["op"]?.stringValue } == ["budget.create"])
    }

    /// Runs a binary; returns (status, stdout, stderr).
    func run(_ path: String, _ args: [String]) throws -> (Int32, String, String) {
        try runProcess(path, args)
    }

    @Test func budgetctlKeygenAndCurveOptionsReachASecureDaemon() throws {
        let dir = try TempDir()
        for name in ["budgetd", "alice", "mallory"] {
            let (status, out, err) = try run(Products.budgetctl, ["keygen", dir.file(name)])
            #expect(status == 0, "\(err)")
            #expect(out.contains(dir.file(name) + ".pub"))
        }
        let secretMode = try FileManager.default.attributesOfItem(atPath: dir.file("alice.key"))[.posixPermissions] as? Int
        #expect(secretMode == 0o600)
        #expect(try run(Products.budgetctl, ["keygen", dir.file("alice")]).0 == 1)  // never overwrites
        try FileManager.default.createDirectory(atPath: dir.file("operators"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir.file("alice.pub"), toPath: dir.file("operators/alice.pub"))
        let daemon = try Daemon(dir: dir, extraArgs: ["--curve-secret-key", dir.file("budgetd.key"), "--curve-operators", dir.file("operators")])
        defer { #expect(daemon.stop() == 0) }
        let base = ["--control", daemon.control, "--timeout", "2", "--curve-server-key", dir.file("budgetd.pub")]
        let ok = try run(Products.budgetctl, ["health", "--json", "--curve-key", dir.file("alice")] + base)
        #expect(ok.0 == 0, "\(ok.2)")
        #expect(try JSON.parse(ok.1.trimmingCharacters(in: .whitespacesAndNewlines))["status"]?.stringValue == "OK")
        // Not listed, or no CURVE at all: no answer, exit 2.
        let refused = try run(Products.budgetctl, ["health", "--curve-key", dir.file("mallory")] + base)
        #expect(refused.0 == 2)
        // The refusal is silent (§8); the message says that may be why.
        #expect(refused.2.contains("(with CURVE: is the daemon up, this key in its operators or viewers list"), "\(refused.2)")
        let plain = try run(Products.budgetctl, ["health", "--control", daemon.control, "--timeout", "2"])
        #expect(plain.0 == 2)
        #expect(!plain.2.contains("with CURVE"))
    }

    @Test("with CURVE on, an ipc control endpoint (guarded by the file system, not CURVE) serves its clients as operators; it answered UNAUTHORIZED to every op")
    func ipcControlIsAnOperatorsEndpoint() throws {
        let dir = try TempDir()
        let k = Keys()
        try write("\(k.server.secretKey)\n", dir.file("server.key"))
        try write("\(k.operatorKey.publicKey)\n", dir.file("operators.txt"))
        let daemon = try Daemon(dir: dir, extraArgs: [
            "--curve-secret-key", dir.file("server.key"), "--curve-operators", dir.file("operators.txt"),
            "--control", "ipc://\(dir.file("control.sock"))",
        ])
        defer { #expect(daemon.stop() == 0) }
        #expect(daemon.control == "ipc://\(dir.file("control.sock"))")
        let context = try ZMQContext()
        defer { context.terminate() }
        let req = try connect(context, .req, to: daemon.control, server: k.server, as: nil)
        defer { req.close() }
        #expect(try request(req, "health")?["result"]?["status"]?.stringValue == "OK")
        let created = try request(req, "budget.create", ["name": "Local", "budgetType": "MONTHLY", "totalAmount": 10, "startDate": "2026-01-01"])
        #expect(created?["ok"]?.boolValue == true, "\(created?.serialized() ?? "no reply")")
    }

    @Test func badKeyFilesStopTheDaemonWithAMessage() throws {
        let dir = try TempDir()
        try write("not a key\n", dir.file("server.key"))
        let check = try runProcess(Products.budgetd, ["--check-config", "--curve-secret-key", dir.file("server.key")])
        #expect(check.status == 1)
        #expect(check.err.contains("server.key"))
        // One key per file: a second key (or any second line) is refused, not ignored.
        let pair = try CurveKeyPair.generate(), other = try CurveKeyPair.generate()
        try write("\(pair.secretKey)\n\(other.secretKey)\n", dir.file("two.key"))
        let two = try runProcess(Products.budgetd, ["--check-config", "--curve-secret-key", dir.file("two.key")])
        #expect(two.status == 1)
        #expect(two.err.contains("two.key holds 2 lines; a secret key file holds one Z85 key"), "\(two.err)")
        // An abstract ipc socket has no file to guard it: refused with CURVE on (any local user
        // was an operator on one).
        try write("\(pair.secretKey)\n", dir.file("one.key"))
        let abstract = try runProcess(Products.budgetd, ["--check-config", "--curve-secret-key", dir.file("one.key"), "--control", "ipc://@budgetd-test-control"])
        #expect(abstract.status == 1)
        #expect(abstract.err.contains("an abstract ipc socket has no file permissions to guard it"), "\(abstract.err)")
        #expect(try runProcess(Products.budgetd, ["--check-config", "--curve-secret-key", dir.file("one.key"), "--control", "ipc://\(dir.file("c.sock"))"]).status == 0)
        // Allow lists without a server key would be a false sense of security: refused.
        #expect(try runProcess(Products.budgetd, ["--check-config", "--curve-operators", dir.file("server.key")]).status == 1)
    }
}
