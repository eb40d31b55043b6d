import Foundation
public import ServiceLifecycle
import Synchronization

/// A deliberately small HTTP/1.1 server for `GET /metrics`, on POSIX sockets and one thread.
///
/// It answers one request per connection and closes it. Everything a client can make it hold is
/// bounded, so a hostile or broken client can cost it a slot for at most `requestTimeout`, never
/// the daemon's engine: the request head (line and headers) is at most `maxHeaderBytes` (431
/// beyond), each connection has one deadline for reading the request and writing the answer
/// (slowloris and slow readers are closed), at most `maxConnections` are open (more are accepted
/// and closed at once, so the kernel backlog cannot fill), and anything that is not an HTTP/1.x
/// request line is answered 400. `GET`/`HEAD /metrics` is 200 (`text/plain; version=0.0.4`),
/// another path 404, another method 405.
///
/// `@unchecked Sendable`: the descriptors and connection table are used by the server thread
/// (`run`) only; other threads call `stop`, which writes to a pipe, and read `boundAddress`,
/// which is immutable.
public final class MetricsServer: @unchecked Sendable {
    public struct Limits: Sendable {
        public var maxHeaderBytes = 8192
        public var requestTimeoutMilliseconds = 5000
        public var maxConnections = 32
        public init() {}
    }

    /// `HOST:PORT` as bound (the real port when 0 was asked for).
    public let boundAddress: String
    private let listener: Int32
    private let wake: (read: Int32, write: Int32)
    private let limits: Limits
    private let render: @Sendable () -> [UInt8]
    private let stopped = Atomic<Bool>(false)

    private struct Connection {
        var input: [UInt8] = []
        var output: [UInt8] = []
        var written = 0
        var deadline: Int64
    }
    private var connections: [Int32: Connection] = [:]

    /// Why `address` cannot be listened on, as far as can be told without binding it: not
    /// `HOST:PORT`, or a host that is not a numeric address (`--check-config` asks this).
    public static func addressProblem(_ address: String) -> String? {
        guard let (host, port) = DaemonConfiguration.hostPort(Substring(address)), UInt16(port) != nil else {
            return "must be HOST:PORT"
        }
        if host.isEmpty || host == "*" || DaemonConfiguration.isNumericAddress(host) { return nil }
        return "\(host) is not a numeric IP address"
    }

    /// Binds and listens on `address` (`HOST:PORT`, `[IPv6]:PORT`; port 0 picks one). `render`
    /// produces the exposition text; it is called on the server thread.
    public init(address: String, limits: Limits = Limits(), render: @escaping @Sendable () -> [UInt8]) throws(ConfigurationError) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw ConfigurationError("metrics address \(address) must be HOST:PORT")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty || host == "*" { host = "0.0.0.0" }
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw ConfigurationError("metrics address \(address): \(host) is not a numeric IP address")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ConfigurationError("metrics socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw ConfigurationError("metrics address \(address): cannot listen: \(reason)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var name = [CChar](repeating: 0, count: Int(NI_MAXHOST)), service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                _ = getsockname(fd, sa, &length)
                _ = getnameinfo(sa, length, &name, socklen_t(name.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        let boundHost = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let boundPort = String(decoding: service.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        boundAddress = (boundHost.contains(":") ? "[\(boundHost)]" : boundHost) + ":" + boundPort
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            close(fd)
            throw ConfigurationError("metrics: cannot create a pipe")
        }
        for p in fds {
            _ = fcntl(p, F_SETFD, FD_CLOEXEC)
            _ = fcntl(p, F_SETFL, O_NONBLOCK)
        }
        listener = fd
        wake = (fds[0], fds[1])
        self.limits = limits
        self.render = render
    }

    deinit {
        for fd in connections.keys { close(fd) }
        close(listener)
        close(wake.read)
        close(wake.write)
    }

    /// Makes `run` return; safe from any thread, idempotent.
    public func stop() {
        stopped.store(true, ordering: .releasing)
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    /// Serves until `stop`. Blocks the calling thread, which it owns meanwhile.
    public func run() {
        var events = [pollfd]()
        var order = [Int32]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !stopped.load(ordering: .acquiring) {
            let now = SystemdNotifier.monotonicNow()
            for (fd, c) in connections where c.deadline <= now { drop(fd) }
            events.removeAll(keepingCapacity: true)
            order.removeAll(keepingCapacity: true)
            events.append(pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0))
            events.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            var nearest = now + Int64(limits.requestTimeoutMilliseconds) * 1_000_000
            for (fd, c) in connections {
                events.append(pollfd(fd: fd, events: Int16(c.output.isEmpty ? POLLIN : POLLOUT), revents: 0))
                order.append(fd)
                nearest = min(nearest, c.deadline)
            }
            let timeout = Int32(max(1, min(1000, (nearest - now) / 1_000_000 + 1)))
            let n = poll(&events, nfds_t(events.count), timeout)
            if n < 0 { if errno == EINTR { continue } else { break } }
            if n == 0 { continue }
            if events[0].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 64)
                _ = read(wake.read, &sink, sink.count)
            }
            if events[1].revents & Int16(POLLIN) != 0 { acceptAll() }
            for (i, fd) in order.enumerated() {
                let revents = events[i + 2].revents
                guard revents != 0, connections[fd] != nil else { continue }
                if revents & Int16(POLLOUT) != 0 {
                    flush(fd)
                } else if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                    receive(fd, &chunk)
                }
            }
        }
        for fd in connections.keys { drop(fd) }
    }

    private func acceptAll() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }  // EAGAIN (nothing left), or a transient error: poll again
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
            if connections.count >= limits.maxConnections {
                close(fd)
                continue
            }
            let deadline = SystemdNotifier.monotonicNow() + Int64(limits.requestTimeoutMilliseconds) * 1_000_000
            connections[fd] = Connection(deadline: deadline)
        }
    }

    private func receive(_ fd: Int32, _ chunk: inout [UInt8]) {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { return drop(fd) }
        if n < 0 { return }
        connections[fd]!.input += chunk[..<n]
        let input = connections[fd]!.input
        guard let headEnd = Self.endOfHead(input) else {
            if input.count > limits.maxHeaderBytes { respond(fd, status: "431 Request Header Fields Too Large") }
            return
        }
        guard headEnd <= limits.maxHeaderBytes else { return respond(fd, status: "431 Request Header Fields Too Large") }
        let lineEnd = input.firstIndex(of: UInt8(ascii: "\n")) ?? headEnd
        var line = input[..<lineEnd]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].starts(with: Array("HTTP/1.".utf8)), parts[2].count == 8,
              !parts[0].isEmpty, parts[0].allSatisfy({ (65...90).contains($0) }), parts[1].first == UInt8(ascii: "/")
        else { return respond(fd, status: "400 Bad Request") }
        let method = String(decoding: parts[0], as: UTF8.self)
        let target = parts[1].split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard target.elementsEqual("/metrics".utf8) else { return respond(fd, status: "404 Not Found") }
        guard method == "GET" || method == "HEAD" else {
            return respond(fd, status: "405 Method Not Allowed", extraHeaders: "Allow: GET, HEAD\r\n")
        }
        respond(fd, status: "200 OK", contentType: "text/plain; version=0.0.4; charset=utf-8", body: render(), includeBody: method == "GET")
    }

    /// The index just past the blank line ending the request head, if it has arrived.
    static func endOfHead(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "\n") {
                if bytes[i + 1] == UInt8(ascii: "\n") { return i + 2 }
                if bytes[i + 1] == UInt8(ascii: "\r"), i + 2 < bytes.count, bytes[i + 2] == UInt8(ascii: "\n") { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    private func respond(_ fd: Int32, status: String, contentType: String = "text/plain; charset=utf-8", body: [UInt8]? = nil,
                         includeBody: Bool = true, extraHeaders: String = "") {
        let body = body ?? Array((status + "\n").utf8)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\(extraHeaders)Connection: close\r\n\r\n"
        connections[fd]!.input = []
        connections[fd]!.output = Array(head.utf8) + (includeBody ? body : [])
        flush(fd)
    }

    private func flush(_ fd: Int32) {
        guard var c = connections[fd] else { return }
        while c.written < c.output.count {
            let n = c.output.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + c.written, raw.count - c.written, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { connections[fd] = c; return }
                return drop(fd)
            }
            c.written += n
        }
        // Done: close our side. What the client may still be sending is discarded.
        shutdown(fd, Int32(SHUT_WR))
        drop(fd)
    }

    private func drop(_ fd: Int32) {
        connections[fd] = nil
        close(fd)
    }
}

/// Runs a `MetricsServer` on its own thread as a ServiceLifecycle service.
public struct MetricsServerService: Service {
    let server: MetricsServer

    public init(server: MetricsServer) { self.server = server }

    public func run() async throws {
        let server = self.server
        // Stopped by a graceful shutdown (SIGTERM after the engine drained) and by cancellation:
        // when the engine fails to start, the group cancels the other services. On graceful
        // shutdown alone, a failed start left the metrics thread serving `budgetd_healthy 1`,
        // the group waiting for it, and SIGTERM unheard (the seventeenth session's audit).
        await withTaskCancellationOrGracefulShutdownHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let thread = Thread {
                    server.run()
                    continuation.resume()
                }
                thread.name = "budgetd-metrics"
                thread.start()
            }
        } onCancelOrGracefulShutdown: {
            server.stop()
        }
    }
}
