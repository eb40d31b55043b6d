import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT and SIGTERM for the commands that run until stopped (`alerts tail`,
/// `bench`): the handler only sets a flag, and their loops, which never block
/// for long, look at it and finish cleanly (exit status 0).
///
/// A second signal gets the default action, so a stuck command still dies on
/// a second Ctrl-C.
enum StopSignal {
    /// Lock-free, so storing to it is async-signal-safe.
    private static let flag = Atomic<Bool>(false)

    /// Whether SIGINT or SIGTERM has arrived since ``install()``.
    static var requested: Bool {
        flag.load(ordering: .relaxed)
    }

    /// Installs the handlers. Call it once, before the loop starts.
    static func install() {
        // Initialize the static now: its lazy initializer must not first run
        // inside a signal handler.
        _ = flag.load(ordering: .relaxed)
        var set = sigset_t()
        sigemptyset(&set)
        for number in [SIGINT, SIGTERM] {
            signal(number) { number in
                StopSignal.flag.store(true, ordering: .relaxed)
                // signal(2) is async-signal-safe: the next one is not caught.
                signal(number, SIG_DFL)
            }
            sigaddset(&set, number)
        }
        // A parent may have started us with them blocked (a Foundation `Process` does: a
        // SIGTERM then stayed pending and `alerts tail` ran on). Threads started from now on
        // (ZeroMQ's) inherit this thread's mask.
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
