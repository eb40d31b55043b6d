/// A Bloom filter of event keys (source, id): `mayContain` is false only for a key never
/// inserted, so a new event (almost every event) needs no dedup lookup in the database; true
/// means "look it up" (the key was inserted, or, rarely, its bits were set by others).
///
/// Blocked: a key's four bits all lie in one 512-bit block (one 64-byte cache line), chosen
/// by its hash, so a lookup and the insert after it cost one cache miss in the 16 MiB table
/// instead of four each (issue 8: 392 → 245 ns per new event, `KeyFilterBench` in Benchmarks/).
///
/// Fixed size: memory does not grow with the events; as the filter fills, more answers are
/// "look it up" (about 0.11 % of new keys with 10⁷ keys in the default 2²⁷ bits), never a wrong
/// "new". Keys are hashed with `EventKeyHash`, the hash the database stores beside each key,
/// so the filter is loaded at start from those hashes alone.
public struct KeyFilter: Sendable {
    private var words: [UInt64]
    /// Blocks in the table, minus one (a power of two).
    private let blockMask: UInt64
    /// Bits in a block, minus one: 511, or fewer in a filter smaller than one block.
    private let bitMask: UInt64
    /// Keys inserted (with repeats).
    public private(set) var insertions: Int = 0

    public static let defaultBits = 1 << 27
    static let probes = 4
    static let blockBits = 512

    /// `bits`: a power of two, at least 64.
    public init(bits: Int = KeyFilter.defaultBits) {
        precondition(bits >= 64 && bits & (bits - 1) == 0, "KeyFilter bits must be a power of two ≥ 64")
        words = Array(repeating: 0, count: bits / 64)
        let block = min(bits, Self.blockBits)
        blockMask = UInt64(bits / block - 1)
        bitMask = UInt64(block - 1)
    }

    public mutating func insert(source: String, id: String) {
        insert(hash: EventKeyHash.of(source: source, id: id))
    }

    /// Inserts the key whose `EventKeyHash` is `hash`.
    public mutating func insert(hash: Int64) {
        let h = UInt64(bitPattern: hash)
        let base = blockStart(h)
        words.withUnsafeMutableBufferPointer { words in
            for i in 0..<UInt64(Self.probes) {
                let bit = (h >> (9 * i)) & bitMask
                words[base + Int(bit >> 6)] |= 1 << (bit & 63)
            }
        }
        insertions += 1
    }

    public func mayContain(source: String, id: String) -> Bool {
        mayContain(hash: EventKeyHash.of(source: source, id: id))
    }

    /// Whether the key whose `EventKeyHash` is `hash` may have been inserted.
    public func mayContain(hash: Int64) -> Bool {
        let h = UInt64(bitPattern: hash)
        let base = blockStart(h)
        return words.withUnsafeBufferPointer { words in
            for i in 0..<UInt64(Self.probes) {
                let bit = (h >> (9 * i)) & bitMask
                if words[base + Int(bit >> 6)] & (1 << (bit & 63)) == 0 { return false }
            }
            return true
        }
    }

    /// Calls `body` with the addresses of the first and last word of `hash`'s block (the
    /// array's storage is not aligned to cache lines, so a block may span two), valid only
    /// during the call: for a prefetch hint, so that the block is in the cache when that key's
    /// lookup comes (issue 8: `mayContain` was 5 % of the engine thread, nearly all of it
    /// waiting for memory).
    public func withBlock(hash: Int64, _ body: (UnsafeRawPointer, UnsafeRawPointer) -> Void) {
        let base = blockStart(UInt64(bitPattern: hash))
        let last = base + max(0, Int(bitMask + 1) / 64 - 1)
        words.withUnsafeBufferPointer { body(UnsafeRawPointer($0.baseAddress! + base), UnsafeRawPointer($0.baseAddress! + last)) }
    }

    /// The table's memory, for the caller to advise the kernel about (huge pages: the daemon's
    /// `HugePages`; this module does no system calls).
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try words.withUnsafeMutableBytes(body)
    }

    /// Adds every key of `other` (a filter of the same size, built in this process).
    public mutating func formUnion(_ other: KeyFilter) {
        precondition(other.words.count == words.count, "KeyFilter sizes differ")
        for i in words.indices { words[i] |= other.words[i] }
        insertions += other.insertions
    }

    /// The first word of the key's block: from the hash's top bits (its low 36 bits place the
    /// four probes, 9 bits each, inside the block).
    private func blockStart(_ h: UInt64) -> Int {
        Int((h >> 36) & blockMask) * Int(bitMask + 1) / 64
    }
}
