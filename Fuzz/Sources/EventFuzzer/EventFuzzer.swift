import BudgetCore

/// libFuzzer's entry point: every input goes through the JSON parser and the usage-event
/// decoder and validator, exactly as a message body arriving on an ingest socket does.
///
/// Beyond "no crash, no sanitizer report", it checks properties the daemon depends on:
/// - a parsed value serializes to text that parses back to the same value;
/// - an accepted event's canonical body decodes again to the same event, with the same body
///   (deduplication compares these bodies: an unstable canonical form would turn a resend into
///   a conflict).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    if let value = try? JSON.parse(bytes, maxDepth: EventLimits.maxDepth) {
        let text = value.serializedBytes()
        guard let again = try? JSON.parse(text, maxDepth: EventLimits.maxDepth + 1) else {
            fatalError("serialized JSON does not parse: \(String(decoding: text, as: UTF8.self))")
        }
        guard again == value else {
            fatalError("JSON round trip changed the value: \(String(decoding: text, as: UTF8.self))")
        }
        let sorted = value.serializedBytes(sortedKeys: true)
        guard (try? JSON.parse(sorted, maxDepth: EventLimits.maxDepth + 1)) == value else {
            fatalError("sorted-keys JSON round trip changed the value")
        }
    }
    if let event = try? UsageEventDecoder.decode(bytes: bytes) {
        let body = event.canonicalBody
        guard let again = try? UsageEventDecoder.decode(bytes: Array(body.utf8), maxBytes: Int.max) else {
            fatalError("canonical body is rejected: \(body)")
        }
        guard again.canonicalBody == body else {
            fatalError("canonical body is not stable:\n\(body)\n\(again.canonicalBody)")
        }
    }
    return 0
}

/// libFuzzer's driver (exported by its runtime since LLVM 11).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The program's entry point. SwiftPM links an executable target with `main` aliased to
/// `<module>_main` (so that tests can link it), which hides the `main` of libFuzzer's runtime;
/// this hands control to libFuzzer's driver instead.
@_cdecl("EventFuzzer_main")
public func eventFuzzerMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzzOneInput(data, size)
    }
}
