internal import CZMQ

/// The version of the libzmq library loaded at run time (`zmq_version`),
/// which may differ from the headers the module was built against.
public func zmqVersion() -> (major: Int, minor: Int, patch: Int) {
    var major: CInt = 0
    var minor: CInt = 0
    var patch: CInt = 0
    zmq_version(&major, &minor, &patch)
    return (Int(major), Int(minor), Int(patch))
}
