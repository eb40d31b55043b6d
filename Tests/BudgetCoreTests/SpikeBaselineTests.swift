@testable import BudgetCore
import Testing

// The spike check keeps each history key's baseline between costs (HourlySpend.baseline): every
// answer must equal the one computed afresh, whatever the costs' hours, the clock, the settings,
// prunes and restores do meanwhile.
struct SpikeBaselineTests {
    /// The same spend with no kept baseline.
    private func fresh(_ spend: HourlySpend) -> HourlySpend {
        var copy = spend
        copy.baseline = nil
        return copy
    }

    @Test("a kept spike baseline answers as a fresh one through random costs, clocks, settings, prunes and restores", arguments: [1, 2, 3])
    func keptBaselineAnswersAsAFreshOne(seed: UInt64) {
        var rng = SplitMix64(state: seed)
        var spend = HourlySpend()
        var settings = AlertSettings()
        settings.spikeMinAmount = Money(nanos: 1_000_000_000)
        var current: Int64 = 500_000
        let firstHours: [Int64] = [current - 400, current - 100, current - 30, current]
        var firstHour = firstHours[0]
        var kept = 0, spikes = 0
        for _ in 0..<20_000 {
            switch rng.below(100) {
            case 0..<60:
                // Most costs in the current hour; some in earlier ones (late events), some later.
                let hour = rng.below(10) < 8 ? current : current - Int64(rng.below(200)) + Int64(rng.below(3))
                _ = spend.add(Money(nanos: Int128(rng.below(20) + 1) * 1_000_000_000), hour: hour)
            case 60..<70: current += 1
            case 70..<72: settings.spikeWindowHours = 1 + rng.below(30)
            case 72..<74: settings.spikeBaselineDays = 1 + rng.below(8)
            case 74..<76: firstHour = firstHours[rng.below(firstHours.count)]
            case 76..<77: spend.prune(before: current - Int64(rng.below(300)))
            case 77..<78: spend.restore(hour: current - Int64(rng.below(100)), amount: Money(nanos: Int128(rng.below(50)) * 1_000_000_000))
            default: break
            }
            let before = spend.baseline
            var reference = fresh(spend)
            let expected = reference.spikeFigures(current: current, firstHour: firstHour, settings: settings)
            let got = spend.spikeFigures(current: current, firstHour: firstHour, settings: settings)
            #expect(got?.recent == expected?.recent && got?.baselineTotal == expected?.baselineTotal && got?.days == expected?.days)
            // A kept baseline that would be used now (same hour, period start and settings) is what
            // a fresh computation gives now; one for other parameters is recomputed before use.
            if let b = spend.baseline, b.current == current, b.firstHour == firstHour,
               b.windowHours == settings.spikeWindowHours, b.baselineDays == settings.spikeBaselineDays {
                #expect(b == spend.computeBaseline(current: current, firstHour: firstHour, settings: settings))
            }
            if before != nil && before == spend.baseline { kept += 1 }
            if expected != nil { spikes += 1 }
        }
        // The runs exercise both: answers from a kept baseline, and spikes found.
        #expect(kept > 1_000, "kept \(kept)")
        #expect(spikes > 10, "spikes \(spikes)")
    }

    @Test("a cost in an earlier hour drops the kept baseline; one in the current hour keeps it")
    func earlierCostDropsTheBaseline() {
        var spend = HourlySpend()
        var settings = AlertSettings()
        settings.spikeMinAmount = Money(nanos: 1)
        let current: Int64 = 1_000
        _ = spend.add(Money(nanos: 5), hour: current - 24)
        _ = spend.add(Money(nanos: 100), hour: current)
        let first = spend.spikeFigures(current: current, firstHour: 0, settings: settings)
        #expect(first?.baselineTotal == Money(nanos: 5) && first?.days == 7)
        #expect(spend.baseline != nil)
        _ = spend.add(Money(nanos: 1), hour: current)
        #expect(spend.baseline != nil)
        _ = spend.add(Money(nanos: 7), hour: current - 48)
        #expect(spend.baseline == nil)
        let second = spend.spikeFigures(current: current, firstHour: 0, settings: settings)
        #expect(second?.baselineTotal == Money(nanos: 12))
    }
}
