import Testing
@testable import budgetctl

/// The acknowledged bench's quick reading of replies (`Bench.quickAck`, `index(ofIdBytes:)`):
/// the same answers as parsing the reply and `index(ofId:)`, and nil for any other shape, so the
/// slow path takes it. (A quick path that never matched would go unnoticed by the bench's
/// counts: the slow path would count every reply alike.)
@Suite struct BenchReplyTests {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func acceptedRepliesAreReadWithoutParsing() throws {
        let reply = bytes(#"{"id":"run-7-42","source":"bench-run-7","status":"ACCEPTED","state":"ALLOCATED","reason":null}"#)
        let quick = try #require(Bench.quickAck(reply))
        #expect(Array(quick.id) == bytes("run-7-42"))
        #expect(quick.accepted)
        let duplicate = try #require(Bench.quickAck(bytes(#"{"id":"a","source":"s","status":"DUPLICATE","state":"ALLOCATED","reason":null}"#)))
        #expect(!duplicate.accepted)
        #expect(Array(duplicate.id) == bytes("a"))
        // Other shapes go to the parser: escapes, a null source, another member order, not JSON.
        #expect(Bench.quickAck(bytes(#"{"id":"a\"b","source":"s","status":"ACCEPTED"}"#)) == nil)
        #expect(Bench.quickAck(bytes(#"{"id":"a","source":null,"status":"ACCEPTED"}"#)) == nil)
        #expect(Bench.quickAck(bytes(#"{"status":"ACCEPTED","id":"a","source":"s"}"#)) == nil)
        #expect(Bench.quickAck(bytes(#"{"id":"a","#)) == nil)
        #expect(Bench.quickAck([]) == nil)
    }

    @Test(arguments: [false, true])
    func idBytesMapToTheirEventAsStringsDo(random: Bool) {
        var workload = BenchWorkload(runId: "r-1", count: 1200, budgets: 3)
        workload.randomIds = random
        for i in [0, 1, 9, 10, 99, 1000, 1199] {
            #expect(workload.index(ofIdBytes: Array(workload.id(i).utf8)) == i)
            #expect(workload.index(ofId: workload.id(i)) == i)
        }
        // Not one of this run's: out of range, a leading zero, another run, a changed hash digit.
        for id in ["r-1-1200", "r-1-01", "r-2-5", "r-1-", "r-1-5x", "x"] + (random ? ["00000000-r-1-5"] : []) {
            #expect(workload.index(ofIdBytes: Array(id.utf8)) == nil, "\(id)")
            #expect(workload.index(ofId: id) == nil, "\(id)")
        }
        if random {
            var changed = Array(workload.id(5).utf8)
            changed[0] = changed[0] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            #expect(workload.index(ofIdBytes: changed) == nil)
        }
    }
}
