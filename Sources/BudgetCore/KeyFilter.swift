/// A Bloom filter of event keys (source, id): `mayContain` is false only for a key never
/// inserted, so a new event (almost every event) needs no dedup lookup in the database; true
/// means "look it up" (the key was inserted, or, rarely, its bits were set by others).
///
/// Fixed size: memory does not grow with the events; as the filter fills, more answers are
/// "look it up" (about 0.7 % of new keys with 10⁷ keys in the default 2²⁷ bits, four probes),
/// never a wrong "new". Keys are hashed with Swift's `Hasher`, seeded per process: a filter
/// is meaningful only inside the process that built it (it is never stored).
public struct KeyFilter: Sendable {
    private var words: [UInt64]
    private let mask: UInt64
    /// Keys inserted (with repeats).
    public private(set) var insertions: Int = 0

    public static let defaultBits = 1 << 27
    static let probes = 4

    /// `bits`: a power of two, at least 64.
    public init(bits: Int = KeyFilter.defaultBits) {
        precondition(bits >= 64 && bits & (bits - 1) == 0, "KeyFilter bits must be a power of two ≥ 64")
        words = Array(repeating: 0, count: bits / 64)
        mask = UInt64(bits - 1)
    }

    public mutating func insert(source: String, id: String) {
        let (h1, h2) = Self.hashes(source, id)
        for i in 0..<UInt64(Self.probes) {
            let bit = (h1 &+ i &* h2) & mask
            words[Int(bit >> 6)] |= 1 << (bit & 63)
        }
        insertions += 1
    }

    public func mayContain(source: String, id: String) -> Bool {
        let (h1, h2) = Self.hashes(source, id)
        for i in 0..<UInt64(Self.probes) {
            let bit = (h1 &+ i &* h2) & mask
            if words[Int(bit >> 6)] & (1 << (bit & 63)) == 0 { return false }
        }
        return true
    }

    /// Adds every key of `other` (a filter of the same size, built in this process).
    public mutating func formUnion(_ other: KeyFilter) {
        precondition(other.words.count == words.count, "KeyFilter sizes differ")
        for i in words.indices { words[i] |= other.words[i] }
        insertions += other.insertions
    }

    /// Two hashes of the key (Kirsch–Mitzenmacher: probe i is h1 + i·h2); h2 is odd, so the
    /// probes of one key never collapse onto one bit.
    private static func hashes(_ source: String, _ id: String) -> (UInt64, UInt64) {
        var hasher = Hasher()
        hasher.combine(source)
        hasher.combine(id)
        let h = UInt64(bitPattern: Int64(hasher.finalize()))
        return (h, (h >> 29 | h << 35) | 1)
    }
}
