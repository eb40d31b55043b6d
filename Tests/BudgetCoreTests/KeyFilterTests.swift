import BudgetCore
import Testing

/// The dedup key filter: no key ever inserted may be reported new (that would book a resend
/// twice); keys never inserted are mostly reported new (that is what saves the lookups).
struct KeyFilterTests {
    private func keys(_ n: Int, seed: UInt64, prefix: String) -> [(String, String)] {
        var random = SplitMix64(state: seed)
        return (0..<n).map { i in ("\(prefix)-src-\(random.below(50))", "\(prefix)-\(i)-\(random.next())") }
    }

    @Test func noInsertedKeyIsEverReportedNewAndFewOthersAreMaybe() {
        var filter = KeyFilter(bits: 1 << 20)
        let inserted = keys(50_000, seed: 1, prefix: "in")
        for (s, i) in inserted { filter.insert(source: s, id: i) }
        #expect(inserted.allSatisfy { filter.mayContain(source: $0.0, id: $0.1) })
        #expect(filter.insertions == 50_000)
        // 50,000 keys in 2^20 bits, 4 probes: about 3 % false "maybe"; allow twice that.
        let others = keys(50_000, seed: 2, prefix: "out")
        let maybe = others.filter { filter.mayContain(source: $0.0, id: $0.1) }.count
        #expect(maybe < 3_000, "false maybes: \(maybe)")
        // Source and id are kept apart: ("ab", "c") is not ("a", "bc").
        var small = KeyFilter(bits: 1 << 16)
        small.insert(source: "ab", id: "c")
        #expect(small.mayContain(source: "ab", id: "c"))
        #expect(!small.mayContain(source: "a", id: "bc"))
        #expect(!small.mayContain(source: "", id: "abc"))
    }

    @Test func aUnionHoldsTheKeysOfBoth() {
        var a = KeyFilter(bits: 1 << 16), b = KeyFilter(bits: 1 << 16)
        let first = keys(2_000, seed: 3, prefix: "a"), second = keys(2_000, seed: 4, prefix: "b")
        for (s, i) in first { a.insert(source: s, id: i) }
        for (s, i) in second { b.insert(source: s, id: i) }
        #expect(!second.allSatisfy { a.mayContain(source: $0.0, id: $0.1) })
        a.formUnion(b)
        #expect((first + second).allSatisfy { a.mayContain(source: $0.0, id: $0.1) })
        #expect(a.insertions == 4_000)
    }

    @Test func anEmptyFilterHasSeenNothing() {
        let filter = KeyFilter(bits: 64)
        #expect(!filter.mayContain(source: "", id: ""))
        #expect(!filter.mayContain(source: "test", id: "e-1"))
    }

    /// Blocked: every block is used (keys spread over the table, not into a few blocks), and a
    /// filter smaller than one block still works.
    @Test func keysSpreadOverEveryBlockAndASmallFilterWorks() {
        var tiny = KeyFilter(bits: 64)
        let few = keys(3, seed: 5, prefix: "t")
        for (s, i) in few { tiny.insert(source: s, id: i) }
        #expect(few.allSatisfy { tiny.mayContain(source: $0.0, id: $0.1) })
        // 64 blocks of 512 bits, 20,000 keys: a key that lands in an empty block is "new" for
        // sure. Were the keys crowded into a few blocks, most fresh keys would be "maybe".
        var filter = KeyFilter(bits: 64 * 512)
        for (s, i) in keys(640, seed: 6, prefix: "in") { filter.insert(source: s, id: i) }
        let maybe = keys(20_000, seed: 7, prefix: "out").filter { filter.mayContain(source: $0.0, id: $0.1) }.count
        // 10 keys per block: a block has ~40 of its 512 bits set, so ~0.05 % of fresh keys are "maybe".
        #expect(maybe < 100, "false maybes: \(maybe)")
    }
}
