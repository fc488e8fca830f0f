/// An instant in UTC with millisecond precision, carried on the wire as an RFC 3339
/// date-time (RFC 8921 §9.1.6–9.1.8; docs/protocol.md §2.5).
public struct CPNPTimestamp: Sendable, Hashable, Comparable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }

    public static func < (lhs: CPNPTimestamp, rhs: CPNPTimestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }
}

// MARK: - Civil calendar (Howard Hinnant's algorithms, proleptic Gregorian)

extension CPNPTimestamp {
    static let millisecondsPerDay: Int64 = 86_400_000

    /// Days since 1970-01-01 of a civil date.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Civil date of a count of days since 1970-01-01.
    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

// MARK: - RFC 3339

extension CPNPTimestamp: CustomStringConvertible {
    /// A UTC instant from calendar fields; nil if a field is out of range
    /// (year 0…9999, real month/day incl. leap years, hour 0…23, minute/second 0…59,
    /// millisecond 0…999).
    public init?(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, millisecond: Int = 0) {
        guard (0...9999).contains(year), (1...12).contains(month),
            day >= 1, Int64(day) <= Self.daysInMonth(year: Int64(year), month: Int64(month)),
            (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
            (0...999).contains(millisecond)
        else { return nil }
        let days = Self.daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        let millisecondOfDay = ((Int64(hour) * 60 + Int64(minute)) * 60 + Int64(second)) * 1000 + Int64(millisecond)
        self.init(millisecondsSinceEpoch: days * Self.millisecondsPerDay + millisecondOfDay)
    }

    /// Parses an RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
    ///
    /// `T`/`t` and `Z`/`z` are accepted; the fraction (any number of digits) is truncated
    /// to milliseconds; a leap second (`:60`) is clamped to `:59.999`; the offset is
    /// converted to UTC. Returns nil for anything else, including impossible dates.
    public init?(rfc3339 text: some StringProtocol) {
        let bytes = Array(text.utf8)
        var position = 0
        func digits(_ count: Int) -> Int? {
            guard position + count <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<count {
                let digit = bytes[position] &- 0x30
                guard digit < 10 else { return nil }
                value = value * 10 + Int(digit)
                position += 1
            }
            return value
        }
        func expect(_ expected: UInt8, or alternative: UInt8? = nil) -> Bool {
            guard position < bytes.count, bytes[position] == expected || bytes[position] == alternative else { return false }
            position += 1
            return true
        }
        guard let year = digits(4), expect(UInt8(ascii: "-")),
            let month = digits(2), expect(UInt8(ascii: "-")),
            let day = digits(2), expect(UInt8(ascii: "T"), or: UInt8(ascii: "t")),
            let hour = digits(2), expect(UInt8(ascii: ":")),
            let minute = digits(2), expect(UInt8(ascii: ":")),
            var second = digits(2)
        else { return nil }
        var millisecond = 0
        if expect(UInt8(ascii: ".")) {
            var count = 0
            while position < bytes.count, bytes[position] &- 0x30 < 10 {
                if count < 3 { millisecond = millisecond * 10 + Int(bytes[position] &- 0x30) }
                count += 1
                position += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<max(count, 3) { millisecond *= 10 }
        }
        if second == 60 {
            second = 59
            millisecond = 999
        }
        var offsetMinutes = 0
        if expect(UInt8(ascii: "Z"), or: UInt8(ascii: "z")) {
            offsetMinutes = 0
        } else if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
            let negative = bytes[position] == UInt8(ascii: "-")
            position += 1
            guard let offsetHour = digits(2), expect(UInt8(ascii: ":")), let offsetMinute = digits(2), offsetHour <= 23, offsetMinute <= 59
            else { return nil }
            offsetMinutes = (negative ? -1 : 1) * (offsetHour * 60 + offsetMinute)
        } else {
            return nil
        }
        guard position == bytes.count,
            let local = CPNPTimestamp(
                year: year, month: month, day: day, hour: hour, minute: minute, second: second,
                millisecond: millisecond)
        else { return nil }
        self.init(millisecondsSinceEpoch: local.millisecondsSinceEpoch - Int64(offsetMinutes) * 60_000)
    }

    /// RFC 3339 text in UTC with `Z`: whole seconds when the milliseconds are zero
    /// (`2026-11-21T10:05:00Z`), else three fraction digits (`2026-11-21T10:05:00.250Z`).
    /// Years outside 0…9999 (reachable only by arithmetic) are written with a sign.
    public var rfc3339: String {
        let milliseconds = millisecondsSinceEpoch
        var days = milliseconds / Self.millisecondsPerDay
        var rest = milliseconds % Self.millisecondsPerDay
        if rest < 0 {
            rest += Self.millisecondsPerDay
            days -= 1
        }
        let (year, month, day) = Self.civilFromDays(days)
        let millisecond = rest % 1000
        let second = rest / 1000 % 60
        let minute = rest / 60_000 % 60
        let hour = rest / 3_600_000

        // Written as bytes into one buffer: sign, a year of up to 19 digits, and 25 more characters.
        return String(unsafeUninitializedCapacity: 48) { buffer in
            var count = 0
            func append(_ byte: UInt8) {
                buffer[count] = byte
                count += 1
            }
            /// `value`'s magnitude in decimal, zero-padded to `width` digits.
            func digits(_ value: Int64, _ width: Int) {
                var magnitude = value.magnitude
                var length = 1
                var power: UInt64 = 10
                while length < 20, magnitude >= power {
                    length += 1
                    power = power.multipliedReportingOverflow(by: 10).partialValue
                }
                let written = max(width, length)
                for index in stride(from: count + written - 1, through: count, by: -1) {
                    buffer[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                }
                count += written
            }
            if year < 0 { append(UInt8(ascii: "-")) } else if year > 9999 { append(UInt8(ascii: "+")) }
            digits(year, 4)
            append(UInt8(ascii: "-"))
            digits(month, 2)
            append(UInt8(ascii: "-"))
            digits(day, 2)
            append(UInt8(ascii: "T"))
            digits(hour, 2)
            append(UInt8(ascii: ":"))
            digits(minute, 2)
            append(UInt8(ascii: ":"))
            digits(second, 2)
            if millisecond != 0 {
                append(UInt8(ascii: "."))
                digits(millisecond, 3)
            }
            append(UInt8(ascii: "Z"))
            return count
        }
    }

    /// Same as ``rfc3339``.
    public var description: String { rfc3339 }
}

// MARK: - Arithmetic

extension CPNPTimestamp {
    /// Milliseconds in a duration, truncated toward zero and saturated to `Int64`.
    static func milliseconds(of duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (wholeMilliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = wholeMilliseconds.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// This instant moved by `duration` (sub-millisecond parts are dropped; saturates).
    public func adding(_ duration: Duration) -> CPNPTimestamp {
        let (sum, overflow) = millisecondsSinceEpoch.addingReportingOverflow(Self.milliseconds(of: duration))
        if overflow { return CPNPTimestamp(millisecondsSinceEpoch: sum < 0 ? .max : .min) }
        return CPNPTimestamp(millisecondsSinceEpoch: sum)
    }

    /// The time elapsed from `other` to this instant (negative if `other` is later).
    public func duration(since other: CPNPTimestamp) -> Duration {
        let (difference, overflow) = millisecondsSinceEpoch.subtractingReportingOverflow(other.millisecondsSinceEpoch)
        if overflow {
            return .seconds(millisecondsSinceEpoch / 1000) - .seconds(other.millisecondsSinceEpoch / 1000)
                + .milliseconds(millisecondsSinceEpoch % 1000 - other.millisecondsSinceEpoch % 1000)
        }
        return .milliseconds(difference)
    }

    /// This instant moved by `duration`.
    public static func + (lhs: CPNPTimestamp, rhs: Duration) -> CPNPTimestamp { lhs.adding(rhs) }

    /// This instant moved back by `duration`.
    public static func - (lhs: CPNPTimestamp, rhs: Duration) -> CPNPTimestamp { lhs.adding(.zero - rhs) }

    /// The time elapsed from `rhs` to `lhs`.
    public static func - (lhs: CPNPTimestamp, rhs: CPNPTimestamp) -> Duration { lhs.duration(since: rhs) }
}
