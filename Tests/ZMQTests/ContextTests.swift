import Foundation  // Thread: the blocking receive needs a thread of its own.
import Synchronization
import Testing
import ZMQ

@Suite("ZMQContext")
struct ContextTests {
    @Test func terminateIsIdempotentAndStopsSocketCreation() throws {
        let context = try ZMQContext(ioThreads: 2)
        let socket = try context.makeSocket(.push)
        socket.close()
        context.terminate()
        context.terminate()
        let error = #expect(throws: ZMQError.self) { try context.makeSocket(.pull) }
        #expect(error?.code == .terminated)
    }

    @Test func invalidIOThreadCountThrows() {
        let error = #expect(throws: ZMQError.self) { try ZMQContext(ioThreads: -1) }
        #expect(error?.code == .invalidArgument)
    }

    @Test func nonBlockyContextGivesSocketsZeroLinger() throws {
        let context = try ZMQContext(blocky: false)
        let socket = try context.makeSocket(.push)
        defer {
            socket.close()
            context.terminate()
        }
        #expect(try socket.intOption(17) == 0)  // ZMQ_LINGER
        let blocky = try ZMQContext()
        let other = try blocky.makeSocket(.push)
        #expect(try other.intOption(17) == -1)
        other.close()
        blocky.terminate()
    }

    /// The shutdown path the daemon relies on: terminating the context wakes
    /// a socket blocked in receive on its owner thread with ETERM; the owner
    /// closes it, and only then does terminate() return.
    @Test func terminateWakesBlockedReceiveWithTerminated() throws {
        let context = try ZMQContext()
        let socket = try context.makeSocket(.pull)
        // Bounded, so a regression fails the test instead of hanging it.
        try socket.setReceiveTimeout(milliseconds: 10_000)
        try socket.bind("inproc://blocked")

        let outcome = Mutex<String?>(nil)
        let started = Mutex(false)
        // The socket is handed to its owning thread once, and used only there.
        Thread.detachNewThread {
            started.withLock { $0 = true }
            let result: String
            do {
                let frames = try socket.receive()
                result = frames == nil ? "timed out" : "received"
            } catch ZMQError.terminated {
                result = "terminated"
            } catch {
                result = "\(error)"
            }
            outcome.withLock { $0 = result }
            socket.close()
        }
        while !started.withLock({ $0 }) {
            Thread.sleep(forTimeInterval: 0.005)
        }
        Thread.sleep(forTimeInterval: 0.05)  // let it block in receive
        context.terminate()
        #expect(outcome.withLock { $0 } == "terminated")
        #expect(socket.isClosed)
    }
}
