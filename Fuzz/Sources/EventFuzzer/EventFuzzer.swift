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
    // The common-shape path (UsageEvent+CommonShape.swift) gives what the general decoder
    // gives (the JSON tree, then the event), or gives up.
    if let fast = UsageEventDecoder.decodeCommonShape(bytes) {
        guard let value = try? JSON.parse(bytes, maxDepth: EventLimits.maxDepth),
              let general = try? UsageEventDecoder.decode(value) else {
            fatalError("the common-shape path takes a message the general decoder rejects")
        }
        guard allFields(fast) == allFields(general) else {
            fatalError("the common-shape path differs:\n\(allFields(fast))\n\(allFields(general))")
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

/// Every field of an event, as text (strings by their scalars: canonically equivalent texts differ).
func allFields(_ e: UsageEvent) -> String {
    func s(_ text: String?) -> String { text.map { $0.unicodeScalars.map { String($0.value, radix: 16) }.joined(separator: ".") } ?? "nil" }
    let units = e.usage.map { "\(s($0.unit))=\($0.quantity.mantissa)e\($0.quantity.exponent)" }.joined(separator: ",")
    let fields: [String] = [
        s(e.id), s(e.source), "\(e.seq.map(String.init) ?? "nil")", "\(e.time.map { String($0.nanosecondsSinceEpoch) } ?? "nil")",
        s(e.platform), e.serviceType.rawValue, s(e.model), s(e.endpoint), units, "\(e.cost.map { String($0.nanos) } ?? "nil")",
        "\(e.exactCost.map { "\($0.mantissa)e\($0.exponent)" } ?? "nil")", s(e.currency), s(e.budgetId), s(e.userId),
        s(e.apiUsageId), s(e.apifyRunId), s(e.description), e.metadata.map { s(JSONValue.object($0).serialized()) } ?? "nil",
        e.kind.rawValue, e.correctsEvent.map { s($0.source) + "/" + s($0.id) } ?? "nil", s(e.canonicalBody),
    ]
    return fields.joined(separator: "|")
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
