import BudgetStore
import Foundation
import Synchronization

/// A thread of its own that runs jobs in order: the engine's decode and commit stages. Not
/// Dispatch's pool, so each stage keeps one thread with its name (what `top -H`, perf and
/// `scripts/bench-cpu.sh` show) and never waits for a pool thread.
final class WorkerThread: Sendable {
    private let jobs = Mutex<[@Sendable () -> Void]>([])
    private let ready = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in
            nameCurrentThread(name)
            while true {
                ready.wait()
                let job = jobs.withLock { $0.removeFirst() }
                job()
            }
        }
        thread.start()
    }

    /// Runs `job` after the jobs given before it.
    func async(_ job: @escaping @Sendable () -> Void) {
        jobs.withLock { $0.append(job) }
        ready.signal()
    }
}
