import BudgetStore
import Foundation
public import ServiceLifecycle

/// Runs the engine's loop on its own thread (the sockets' owner for their whole life) as a
/// ServiceLifecycle service: a graceful shutdown (SIGTERM/SIGINT) asks it to drain and stop.
public struct EngineService: Service {
    let engine: Engine

    public init(engine: Engine) { self.engine = engine }

    public func run() async throws {
        let engine = self.engine
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    nameCurrentThread("budgetd-engine")
                    do {
                        try engine.run()
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.start()
            }
        } onGracefulShutdown: {
            engine.requestStop()
        }
    }
}
