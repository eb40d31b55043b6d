import BudgetCore
import Testing

/// Cost ids: `prefix_` and 16 lowercase hex digits (milliseconds, then a counter), increasing
/// in the order they were made, so the cost table's key index grows at its end.
struct SortableIDsTests {
    @Test func idsAreSixteenHexDigitsAfterThePrefixAndIncrease() throws {
        var ids = SortableIDs(seed: 0xABCDE_12345)
        let t = try Timestamp(rfc3339: "2026-11-29T15:00:00.123Z")
        let first = ids.next("c", at: t)
        // 1,795,964,400,123 ms = 0x1a227d1f1fb, shifted by 20 bits; the counter starts at the
        // seed's low 20 bits + 1 (0x12346).
        #expect(first == "c_1a227d1f1fb12346")
        #expect(first.count == 18)
        #expect(first.dropFirst(2).allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) })
        // Later, the same millisecond, and a clock that stepped back: always greater.
        var previous = first
        for time in [t, t.adding(nanoseconds: 5_000_000), t.adding(nanoseconds: -60_000_000_000), t] {
            let id = ids.next("c", at: time)
            #expect(id > previous)
            previous = id
        }
        #expect(ids.next("budget", at: t).hasPrefix("budget_"))
        // The epoch itself (and before it) pads with zeros.
        var zero = SortableIDs(seed: 0)
        #expect(zero.next("x", at: Timestamp(nanosecondsSinceEpoch: -5)) == "x_0000000000000001")
    }
}
