import Testing
@testable import CPNPCore

private func ts(_ s: String) -> CPNPTimestamp? { CPNPTimestamp(rfc3339: s) }

@Suite struct TimestampTests {
    @Test func epochAndKnownInstants() throws {
        #expect(ts("1970-01-01T00:00:00Z")?.millisecondsSinceEpoch == 0)
        #expect(ts("2026-11-21T10:05:00Z")?.millisecondsSinceEpoch == 1_795_255_500_000)
        #expect(ts("2000-03-01T00:00:00Z")?.millisecondsSinceEpoch == 951_868_800_000)
        #expect(ts("1969-12-31T23:59:59.999Z")?.millisecondsSinceEpoch == -1)
        #expect(ts("0000-01-01T00:00:00Z")?.millisecondsSinceEpoch == -62_167_219_200_000)
        #expect(ts("9999-12-31T23:59:59.999Z")?.millisecondsSinceEpoch == 253_402_300_799_999)
    }

    @Test(arguments: [
        ("2026-11-21T10:05:00Z", "2026-11-21T10:05:00Z"),
        ("2026-11-21T10:05:00.250Z", "2026-11-21T10:05:00.250Z"),
        ("2026-11-21T10:05:00.25Z", "2026-11-21T10:05:00.250Z"),
        ("2026-11-21T10:05:00.000Z", "2026-11-21T10:05:00Z"),
        ("2026-11-21T10:05:00.123456789Z", "2026-11-21T10:05:00.123Z"),
        ("2026-11-21t10:05:00z", "2026-11-21T10:05:00Z"),
        ("2026-11-21T12:05:00+02:00", "2026-11-21T10:05:00Z"),
        ("2026-11-21T05:35:00-04:30", "2026-11-21T10:05:00Z"),
        ("2026-11-21T10:05:00-00:00", "2026-11-21T10:05:00Z"),
        ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z"),
        ("2024-02-29T23:00:00-02:00", "2024-03-01T01:00:00Z"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999Z"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z"),
        ("0000-01-01T00:00:00+01:00", "-0001-12-31T23:00:00Z"),
    ])
    func parsesAndFormatsInUTC(input: String, expected: String) throws {
        let t = try #require(ts(input))
        #expect(t.rfc3339 == expected)
        #expect(t.description == expected)
        #expect(ts(expected) == t || expected.hasPrefix("-"))
    }

    /// The formatter writes bytes into one buffer: it gives what the plain rendering below gives, for
    /// random instants across the whole range, years outside 0000–9999 and the extremes included.
    @Test func formattingMatchesAPlainRendering() throws {
        func plain(_ t: CPNPTimestamp) -> String {
            let perDay: Int64 = 86_400_000
            var days = t.millisecondsSinceEpoch / perDay
            var rest = t.millisecondsSinceEpoch % perDay
            if rest < 0 {
                rest += perDay
                days -= 1
            }
            let (year, month, day) = CPNPTimestamp.civilFromDays(days)
            func pad(_ value: Int64, _ width: Int) -> String {
                let text = String(value.magnitude)
                return String(repeating: "0", count: max(0, width - text.count)) + text
            }
            var out = year < 0 ? "-" : (year > 9999 ? "+" : "")
            out += pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(rest / 3_600_000, 2) + ":"
            out += pad(rest / 60_000 % 60, 2) + ":" + pad(rest / 1000 % 60, 2)
            if rest % 1000 != 0 { out += "." + pad(rest % 1000, 3) }
            return out + "Z"
        }
        var generator = SplitMix64(seed: 3339)
        var instants: [Int64] = [0, -1, 1, .max, .min, .max - 999, .min + 1, 253_402_300_800_000, -62_167_219_200_001]
        for _ in 0..<20_000 { instants.append(Int64(bitPattern: generator.next()) >> Int64.random(in: 0...40, using: &generator)) }
        for milliseconds in instants {
            let t = CPNPTimestamp(millisecondsSinceEpoch: milliseconds)
            #expect(t.rfc3339 == plain(t), "\(milliseconds)")
        }
        #expect(CPNPTimestamp(millisecondsSinceEpoch: 253_402_300_800_000).rfc3339 == "+10000-01-01T00:00:00Z")
    }

    @Test func leapYears() {
        #expect(ts("2024-02-29T00:00:00Z") != nil)
        #expect(ts("2000-02-29T00:00:00Z") != nil)
        #expect(ts("2023-02-29T00:00:00Z") == nil)
        #expect(ts("1900-02-29T00:00:00Z") == nil)
        #expect(ts("2100-02-29T00:00:00Z") == nil)
        #expect(ts("2024-02-30T00:00:00Z") == nil)
    }

    @Test(arguments: [
        "", "2026-11-21", "2026-11-21T10:05:00", "2026-11-21 10:05:00Z", "2026-11-21T10:05Z",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-04-31T00:00:00Z", "2026-01-32T00:00:00Z",
        "2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:61Z",
        "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+01:60", "2026-01-01T00:00:00Zjunk", "26-01-01T00:00:00Z", "20261-01-01T00:00:00Z",
        "2026-1-01T00:00:00Z", "+2026-01-01T00:00:00Z", "2026-01-01T00:00:00,5Z", "２026-01-01T00:00:00Z",
        "2026-01-01T00:00:00 Z",
    ])
    func rejectsInvalid(text: String) {
        #expect(ts(text) == nil)
    }

    @Test func fieldInitialiser() {
        #expect(CPNPTimestamp(year: 2026, month: 11, day: 21, hour: 10, minute: 5)?.rfc3339 == "2026-11-21T10:05:00Z")
        #expect(CPNPTimestamp(year: 2026, month: 2, day: 29) == nil)
        #expect(CPNPTimestamp(year: 10_000, month: 1, day: 1) == nil)
        #expect(CPNPTimestamp(year: 2026, month: 1, day: 1, millisecond: 1000) == nil)
    }

    @Test func civilRoundTripAcrossCenturies() {
        // Every day from 1600-01-01 to 2400-12-31 formats and re-parses to the same instant.
        let start = CPNPTimestamp.daysFromCivil(year: 1600, month: 1, day: 1)
        let end = CPNPTimestamp.daysFromCivil(year: 2400, month: 12, day: 31)
        #expect(end - start + 1 == 2 * 146_097 + 366)
        var day = start
        while day <= end {
            let (y, m, dd) = CPNPTimestamp.civilFromDays(day)
            #expect(CPNPTimestamp.daysFromCivil(year: y, month: m, day: dd) == day)
            day += 97  // sample: keeps the test fast in debug builds
        }
    }

    @Test func arithmetic() throws {
        let t = try #require(ts("2026-11-21T10:05:00Z"))
        #expect(t.adding(.seconds(300)).rfc3339 == "2026-11-21T10:10:00Z")
        #expect(t.adding(.milliseconds(250)).rfc3339 == "2026-11-21T10:05:00.250Z")
        #expect(t.adding(.seconds(-3600)).rfc3339 == "2026-11-21T09:05:00Z")
        #expect(t.adding(.seconds(86_400 * 40)).rfc3339 == "2026-12-31T10:05:00Z")
        #expect((t + .seconds(1)) - .seconds(1) == t)
        #expect(t.adding(.microseconds(1500)).millisecondsSinceEpoch == t.millisecondsSinceEpoch + 1)
        let later = try #require(ts("2026-11-21T10:15:00.5Z"))
        #expect(later.duration(since: t) == .milliseconds(600_500))
        #expect(t.duration(since: later) == .milliseconds(-600_500))
        #expect(later - t == .milliseconds(600_500))
        #expect(t < later)
        // Saturates instead of trapping.
        let max = CPNPTimestamp(millisecondsSinceEpoch: .max)
        #expect(max.adding(.seconds(1)) == max)
        #expect(CPNPTimestamp(millisecondsSinceEpoch: .min).adding(.seconds(-1)).millisecondsSinceEpoch == .min)
        let span = max.duration(since: CPNPTimestamp(millisecondsSinceEpoch: .min))
        #expect(span > .seconds(Int64.max / 1000))
    }
}
