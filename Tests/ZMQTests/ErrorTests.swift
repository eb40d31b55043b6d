import Testing
import ZMQ

@Suite("ZMQError")
struct ErrorTests {
    #if os(Linux)
    /// The named codes are the platform's errno values (and libzmq's own for
    /// ETERM/EFSM), so a raw `zmq_errno()` maps onto them.
    @Test(arguments: [
        (ZMQError.Code.wouldBlock, Int32(11)),  // EAGAIN
        (.interrupted, 4),  // EINTR
        (.invalidArgument, 22),  // EINVAL
        (.addressInUse, 98),  // EADDRINUSE
        (.hostUnreachable, 113),  // EHOSTUNREACH
        (.messageTooLarge, 90),  // EMSGSIZE
        (.terminated, 156_384_712 + 53),  // ETERM = ZMQ_HAUSNUMERO + 53
        (.invalidState, 156_384_712 + 51),  // EFSM
    ])
    func codesAreErrnoValues(code: ZMQError.Code, errno: Int32) {
        #expect(code.rawValue == errno)
    }
    #endif

    @Test func codePatternsMatchOnlyTheirCode() {
        let error: any Error = ZMQError(code: .addressInUse, operation: "zmq_bind(tcp://127.0.0.1:1)")
        let matched: String
        switch error {
        case ZMQError.Code.wouldBlock: matched = "wouldBlock"
        case ZMQError.terminated: matched = "terminated"
        case ZMQError.addressInUse: matched = "addressInUse"
        default: matched = "none"
        }
        #expect(matched == "addressInUse")

        struct OtherError: Error {}
        #expect(!(ZMQError.Code.addressInUse ~= OtherError()))
    }

    /// Callers holding a `ZMQError` can switch on it with the same shortcuts.
    @Test func concreteErrorSwitchesOnCode() {
        let error = ZMQError(code: .hostUnreachable, operation: "zmq_send(ROUTER, frame 1 of 2)")
        let handled: Bool
        switch error {
        case ZMQError.wouldBlock, ZMQError.terminated: handled = false
        case ZMQError.hostUnreachable: handled = true
        default: handled = false
        }
        #expect(handled)
        #expect(error == ZMQError(code: .hostUnreachable, operation: "zmq_send(ROUTER, frame 1 of 2)"))
        #expect(error != ZMQError(code: .hostUnreachable, operation: "zmq_send(ROUTER, frame 2 of 2)"))
    }

    @Test func descriptionNamesTheOperationAndLibzmqText() {
        let error = ZMQError(code: .addressInUse, operation: "zmq_bind(tcp://127.0.0.1:1)")
        #expect(error.description.hasPrefix("zmq_bind(tcp://127.0.0.1:1) failed: "))
        #expect(error.description.contains("Address already in use"))
        #expect(ZMQError(code: .terminated, operation: "x").description.contains("Context was terminated"))
    }

    @Test func versionIsTheLoadedLibzmq() {
        let version = zmqVersion()
        #expect(version.major == 4)
        #expect(version.minor >= 3)
    }
}
