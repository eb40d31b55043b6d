import ArgumentParser
import BudgetCore
import Foundation
import ZMQ

extension EventsCommand {
    /// `budgetctl events send`: publish one usage event (CONTRACT §2).
    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish one usage event, fire-and-forget or --reliable (acknowledged, with retry).",
            discussion: """
                The event comes from --file (a JSON usage event or CloudEvent; - \
                reads standard input; its bytes are sent as they are) or from the \
                options: budgetctl events send --platform OpenAI --service API \
                --model gpt-4o --usage inputTokens=1200 --usage outputTokens=300 \
                --metadata projectId=proj-123. Amounts and quantities are sent \
                exactly as typed. Without --id the event gets a random UUID.

                Fire-and-forget (default): a PUB to --ingest. The event is sent \
                only once the daemon's subscription has arrived (within \
                --timeout), so it is not lost to a subscriber still joining, and \
                the command waits for it to be flushed. Nothing says whether it \
                was stored: look with `budgetctl events list`. Exit status 0 when \
                sent, 2 when no daemon subscribed in time.

                --reliable: a DEALER to --ingest-ack; waits --timeout for the \
                acknowledgement and sends the same bytes again, up to --retries \
                times (safe: the daemon counts an id once and answers DUPLICATE). \
                Prints the acknowledgement (with --json, its JSON). Exit status 0 \
                for ACCEPTED or DUPLICATE, 1 for REJECTED, 2 when no \
                acknowledgement came.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(
            help: ArgumentHelp(
                "Send the JSON event in this file (- for standard input) instead of building one from the options below.",
                valueName: "path"
            )
        )
        var file: String?

        @Option(help: ArgumentHelp("The event's id, its idempotency key (default: a random UUID).", valueName: "id"))
        var id: String?

        @Option(help: ArgumentHelp("The publisher's name; duplicates are detected per source and id.", valueName: "name"))
        var source: String?

        @Option(help: "The platform, such as OpenAI or Apify (required without --file).")
        var platform: String?

        @Option(
            name: .customLong("service"),
            help: "The service type: API, SCRAPING, STORAGE, PROCESSING, MONITORING or OTHER (required without --file)."
        )
        var service: ServiceTypeChoice?

        @Option(help: "The price-catalog item: model, actor, tier or SKU.")
        var model: String?

        @Option(help: ArgumentHelp("A usage quantity UNIT=QUANTITY, e.g. inputTokens=1200 (repeatable).", valueName: "unit=quantity"))
        var usage: [UsageQuantity] = []

        @Option(help: ArgumentHelp("An explicit cost, which wins over the catalog, such as 0.15.", valueName: "amount"))
        var cost: DecimalText?

        @Option(help: ArgumentHelp("The explicit cost's 3-letter currency (budgetd's default: USD).", valueName: "code"))
        var currency: String?

        @Option(help: ArgumentHelp("Allocate to this budget instead of routing by metadata.", valueName: "id"))
        var budget: String?

        @Option(help: ArgumentHelp("When the usage happened, RFC 3339 (default: when budgetd receives it).", valueName: "time"))
        var time: String?

        @Option(
            name: .customLong("metadata"),
            help: ArgumentHelp("A metadata entry KEY=VALUE (repeatable; KEY:=JSON for non-strings).", valueName: "key=value")
        )
        var metadata: [KeyValue] = []

        @Option(help: ArgumentHelp("The topic: usage or usage.<anything>, such as usage.openai.", valueName: "topic"))
        var topic = "usage"

        @Option(help: ArgumentHelp("The daemon's fire-and-forget ingest endpoint (ZeroMQ SUB).", valueName: "endpoint"))
        var ingest = "tcp://127.0.0.1:7600"

        @Option(
            name: .customLong("ingest-ack"),
            help: ArgumentHelp("The daemon's acknowledged ingest endpoint (ZeroMQ ROUTER), for --reliable.", valueName: "endpoint")
        )
        var ingestAck = "tcp://127.0.0.1:7601"

        @Flag(help: "Send over the acknowledged socket, wait for the acknowledgement, and resend on --timeout.")
        var reliable = false

        @Option(help: ArgumentHelp("With --reliable: how many times to resend after a timeout.", valueName: "n"))
        var retries = 5

        func validate() throws {
            guard topic == "usage" || topic.hasPrefix("usage.") else {
                throw ValidationError("--topic must be usage or start with usage. (budgetd takes no other)")
            }
            guard (0...100).contains(retries) else {
                throw ValidationError("--retries must be 0 to 100")
            }
            if file != nil {
                let given = [
                    ("--id", id != nil), ("--source", source != nil), ("--platform", platform != nil),
                    ("--service", service != nil), ("--model", model != nil), ("--usage", !usage.isEmpty),
                    ("--cost", cost != nil), ("--currency", currency != nil), ("--budget", budget != nil),
                    ("--time", time != nil), ("--metadata", !metadata.isEmpty),
                ].filter(\.1).map(\.0)
                if !given.isEmpty {
                    throw ValidationError("--file sends the file as it is: leave out \(given.joined(separator: ", "))")
                }
                return
            }
            guard platform != nil, service != nil else {
                throw ValidationError("give --platform and --service (or --file)")
            }
            if let id, id.isEmpty || id.count > 128 {
                throw ValidationError("--id must be 1 to 128 characters")
            }
            if let time, (try? Timestamp(rfc3339: time)) == nil {
                throw ValidationError("--time must be an RFC 3339 timestamp, such as 2026-03-05T12:00:00Z")
            }
        }

        func run() throws {
            do {
                let (body, eventId) = try makeEvent()
                let frames = [Array(topic.utf8), body]
                let context = try ZMQContext()
                defer { context.terminate() }
                if reliable {
                    try sendReliably(context: context, frames: frames, eventId: eventId)
                } else {
                    try publish(context: context, frames: frames, eventId: eventId)
                }
            } catch {
                throw GlobalOptions.report(error)
            }
        }

        /// The event's JSON bytes and its id (nil when a file has none).
        func makeEvent() throws -> (body: [UInt8], id: String?) {
            if let file {
                return try readEvent(file)
            }
            let eventId = id ?? UUID().uuidString.lowercased()
            var event = JSONObject([("id", .string(eventId))])
            event.set("source", source.map(JSONValue.string))
            event.set("time", time.map(JSONValue.string))
            event.set("platform", platform.map(JSONValue.string))
            event.set("serviceType", service?.json)
            event.set("model", model.map(JSONValue.string))
            if !usage.isEmpty { event["usage"] = .object(UsageQuantity.object(usage)) }
            event.set("cost", cost?.json)
            event.set("currency", currency.map { .string($0.uppercased()) })
            event.set("budgetId", budget.map(JSONValue.string))
            if !metadata.isEmpty { event["metadata"] = .object(KeyValue.object(metadata)) }
            return (JSONValue.object(event).serializedBytes(), eventId)
        }

        /// The bytes of `path` (standard input for `-`), checked to be a JSON object.
        func readEvent(_ path: String) throws -> (body: [UInt8], id: String?) {
            let data: Data
            if path == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: path) else {
                    throw CommandFailure("cannot read \(path)", status: 64)
                }
                data = contents
            }
            let bytes = [UInt8](data)
            let name = path == "-" ? "standard input" : path
            // Syntax only (any depth): the daemon applies the contract's limits and says why.
            guard let event = try? JSON.parse(bytes, maxDepth: 512), event.objectValue != nil else {
                throw CommandFailure("\(name) is not a JSON object", status: 64)
            }
            return (bytes, event["id"]?.stringValue)
        }

        // MARK: fire-and-forget

        /// Sends over an XPUB once the daemon's SUB has subscribed to the
        /// topic, then lingers up to --timeout for the message to leave.
        func publish(context: ZMQContext, frames: [[UInt8]], eventId: String?) throws {
            let publisher = try context.makeSocket(.xpub)
            // The linger bounds the flush that context termination waits for.
            let linger = Int32(clamping: ControlClient.milliseconds(global.timeoutDuration))
            defer { publisher.close(lingerMilliseconds: linger) }
            try global.secure(publisher)
            try publisher.connect(ingest)
            try waitForSubscription(publisher, topic: frames[0])
            try publisher.send(frames)
            if global.json {
                var result = JSONObject([("status", "SENT"), ("id", eventId.map(JSONValue.string) ?? .null)])
                result["topic"] = .string(topic)
                result["endpoint"] = .string(ingest)
                Console.out(JSONValue.object(result).serialized())
            } else {
                Console.out("sent \(eventId ?? "event") on \(topic) to \(ingest) (fire-and-forget: see `budgetctl events list`)")
            }
        }

        /// Waits, up to --timeout, for a subscription that covers `topic`
        /// (XPUB hands them over as `0x01` + the prefix).
        func waitForSubscription(_ publisher: ZMQSocket, topic: [UInt8]) throws {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: global.timeoutDuration)
            while true {
                let left = clock.now.duration(to: deadline)
                guard left > .zero else {
                    throw CommandFailure(
                        "no subscriber on \(ingest) within \(global.timeoutText): is budgetd's ingest there?", status: 2
                    )
                }
                let slice = min(250, max(1, ControlClient.milliseconds(left)))
                guard try poll([(socket: publisher, events: .readable)], timeoutMilliseconds: slice)[0].contains(.readable) else {
                    continue
                }
                while let message = try publisher.receive(dontWait: true) {
                    guard let frame = message.first, frame.first == 1 else { continue }
                    if topic.starts(with: frame.dropFirst()) {
                        return
                    }
                }
            }
        }

        // MARK: acknowledged

        /// Sends over a DEALER and waits for the acknowledgement, resending
        /// the same bytes after each --timeout, up to --retries times.
        func sendReliably(context: ZMQContext, frames: [[UInt8]], eventId: String?) throws {
            let dealer = try context.makeSocket(.dealer)
            defer { dealer.close() }
            try dealer.setLinger(milliseconds: 0)
            try global.secure(dealer)
            try dealer.connect(ingestAck)
            let attempts = retries + 1
            for attempt in 1...attempts {
                if attempt > 1 {
                    Console.err("no acknowledgement within \(global.timeoutText); sending again (attempt \(attempt) of \(attempts))")
                }
                // A DEALER queues for a connecting peer; `false` (no room) is one more silent attempt.
                _ = try dealer.send(frames, dontWait: true)
                if let (ack, text) = try awaitAck(dealer, eventId: eventId) {
                    try report(ack, text: text)
                    return
                }
            }
            let plural = attempts == 1 ? "" : "s"
            throw CommandFailure(
                "no acknowledgement from \(ingestAck) after \(attempts) attempt\(plural) of \(global.timeoutText) each",
                status: 2
            )
        }

        /// The acknowledgement of `eventId` that arrives within --timeout, with
        /// its text; nil on timeout. Replies to other ids (a late reply to an
        /// earlier send cannot be one: it is the same id) are skipped.
        func awaitAck(_ dealer: ZMQSocket, eventId: String?) throws -> (JSONValue, String)? {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: global.timeoutDuration)
            while true {
                let left = clock.now.duration(to: deadline)
                guard left > .zero else { return nil }
                let slice = min(250, max(1, ControlClient.milliseconds(left)))
                guard try poll([(socket: dealer, events: .readable)], timeoutMilliseconds: slice)[0].contains(.readable) else {
                    continue
                }
                while let message = try dealer.receive(dontWait: true) {
                    guard let payload = message.last, let ack = try? JSON.parse(payload, maxDepth: 512),
                          ack["status"]?.stringValue != nil
                    else { continue }
                    if let eventId, let acked = ack["id"]?.stringValue, acked != eventId { continue }
                    return (ack, String(decoding: payload, as: UTF8.self))
                }
            }
        }

        /// Prints the acknowledgement; REJECTED exits 1.
        func report(_ ack: JSONValue, text: String) throws {
            let status = ack["status"]?.stringValue ?? "UNKNOWN"
            if global.json {
                Console.out(text)
            } else {
                var line = "\(status) \(ack["id"]?.stringValue ?? "(no id)")"
                if let state = ack["state"]?.stringValue { line += ", state \(state)" }
                if let reason = ack["reason"]?.stringValue { line += ", reason: \(reason)" }
                Console.out(line)
            }
            switch status {
            case "ACCEPTED", "DUPLICATE":
                return
            case "REJECTED":
                Console.err("budgetctl: the event was rejected: \(ack["reason"]?.stringValue ?? "no reason given")")
                throw ExitCode.failure
            default:
                Console.err("budgetctl: unexpected acknowledgement status \(status)")
                throw ExitCode(2)
            }
        }
    }
}
