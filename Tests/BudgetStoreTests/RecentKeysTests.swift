@testable import BudgetStore
import Testing

// The recent keys in memory (EventKeys.swift): hash → rows, where two keys can share a hash.
struct RecentKeysTests {
    @Test("keys sharing a hash keep every row, the first first; a sealed set still finds them; sorted lists each once by hash then row")
    func sharedHashes() {
        let keys = RecentKeys()
        keys.add([(7, 100), (8, 101), (7, 102), (9, 103), (7, 104), (8, 105)])
        func rows(_ hash: Int64) -> [Int64] {
            var found: [Int64] = []
            _ = keys.candidates(hash, into: &found)
            return found
        }
        #expect(rows(7) == [100, 102, 104])
        #expect(rows(8) == [101, 105])
        #expect(rows(9) == [103])
        #expect(rows(10) == [])
        let sealed = keys.seal()
        #expect(sealed.count == 6)
        keys.add([(7, 106)])
        #expect(rows(7) == [106, 100, 102, 104])
        #expect(sealed.sorted().map(\.hash) == [7, 7, 7, 8, 8, 9])
        #expect(sealed.sorted().map(\.rowid) == [100, 102, 104, 101, 105, 103])
    }
}
