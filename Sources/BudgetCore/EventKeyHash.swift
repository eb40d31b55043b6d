/// A 64-bit hash of an event key (source, id) that is the same in every process and every
/// version of budgetd: it is stored (the `event_keys` and `recent_keys` tables, docs/ledger.md
/// "How duplicates are found"), so it must never change.
///
/// FNV-1a over the UTF-8 bytes of `source`, one 0xFF byte (never part of UTF-8, so no two
/// keys give the same byte string), and the bytes of `id`; then MurmurHash3's 64-bit
/// finalizer, so every bit of the result depends on every byte (the key filter takes its
/// block and probes from different bits). Two keys may share a hash: it only finds
/// candidates, and each is compared by its texts.
public enum EventKeyHash {
    public static func of(source: String, id: String) -> Int64 {
        of(sourceBytes: source.utf8, idBytes: id.utf8)
    }

    /// The same from the UTF-8 bytes of source and id (as SQLite stores them: every byte, a
    /// NUL included).
    public static func of(sourceBytes: some Sequence<UInt8>, idBytes: some Sequence<UInt8>) -> Int64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        @inline(__always) func mix(_ byte: UInt8) {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        for byte in sourceBytes { mix(byte) }
        mix(0xFF)
        for byte in idBytes { mix(byte) }
        return Int64(bitPattern: finalize(h))
    }

    /// MurmurHash3's fmix64.
    static func finalize(_ x: UInt64) -> UInt64 {
        var k = x
        k ^= k >> 33
        k = k &* 0xFF51_AFD7_ED55_8CCD
        k ^= k >> 33
        k = k &* 0xC4CE_B9FE_1A85_EC53
        k ^= k >> 33
        return k
    }
}
