import Foundation
import Synchronization

/// The sd_notify(3) protocol without libsystemd: one datagram per state change to the AF_UNIX
/// socket named by `$NOTIFY_SOCKET` (a leading `@` names an abstract socket).
///
/// When `$NOTIFY_SOCKET` is absent (not under systemd, or not `Type=notify`), every call is a
/// no-op. `$WATCHDOG_USEC` (with `$WATCHDOG_PID`, when set, naming this process) turns on
/// `WATCHDOG=1` pings at half the interval; they are sent by whoever calls `watchdogIfDue`, which
/// is the engine loop itself, so a hung loop stops pinging and systemd restarts the daemon.
///
/// `Sendable`: the socket descriptor is immutable after init, `sendto` on a datagram socket is
/// thread-safe, and the next ping time is an atomic.
public final class SystemdNotifier: Sendable {
    private let fd: Int32
    private let address: [UInt8]
    /// Half of `$WATCHDOG_USEC`, in nanoseconds; nil when the watchdog is off.
    public let watchdogIntervalNanoseconds: Int64?
    private let nextPing = Atomic<Int64>(0)

    /// Reads the environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    public convenience init() {
        self.init(environment: ProcessInfo.processInfo.environment)
    }

    public init(environment: [String: String]) {
        let path = environment["NOTIFY_SOCKET"] ?? ""
        var address: [UInt8] = []
        var fd: Int32 = -1
        // sun_path is 108 bytes; a longer name cannot be addressed.
        if !path.isEmpty, path.utf8.count < 108, path.hasPrefix("/") || path.hasPrefix("@") {
            address = Array(path.utf8)
            if address[0] == UInt8(ascii: "@") { address[0] = 0 }
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        self.fd = fd
        self.address = address
        var interval: Int64?
        if fd >= 0, let usec = environment["WATCHDOG_USEC"].flatMap({ Int64($0) }), usec > 0 {
            let pid = environment["WATCHDOG_PID"].flatMap { Int32($0) }
            if pid == nil || pid == getpid() { interval = usec * 1000 / 2 }
        }
        watchdogIntervalNanoseconds = interval
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Whether a notification socket was given.
    public var isEnabled: Bool { fd >= 0 }

    /// Sends `state` (e.g. `READY=1`, `STOPPING=1`, `STATUS=…`); failures are ignored, as
    /// sd_notify's are: the daemon must not stop because its supervisor went away.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard fd >= 0 else { return false }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let length = withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: address)
            return MemoryLayout.offset(of: \sockaddr_un.sun_path)! + address.count
        }
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { b in
                    sendto(fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL), sa, socklen_t(length))
                }
            }
        }
        return sent == bytes.count
    }

    /// Sends `WATCHDOG=1` when half of `$WATCHDOG_USEC` has passed since the last ping.
    /// `now` is a monotonic nanosecond count. Cheap when the watchdog is off.
    public func watchdogIfDue(now: Int64 = SystemdNotifier.monotonicNow()) {
        guard let interval = watchdogIntervalNanoseconds else { return }
        guard now >= nextPing.load(ordering: .relaxed) else { return }
        nextPing.store(now + interval, ordering: .relaxed)
        notify("WATCHDOG=1")
    }

    /// CLOCK_MONOTONIC in nanoseconds: the watchdog must not follow wall-clock jumps.
    public static func monotonicNow() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
