/// An exact decimal number, as JSON numbers are carried and compared in CPNP
/// (docs/protocol.md §2.4: negotiation compares with exact decimal arithmetic).
///
/// Normalised so that equal values are equal structurally: `100`, `100.0` and `1e2` are one value.
public struct CPNPDecimal: Sendable, Hashable {
    /// True for values below zero (never for zero).
    public let isNegative: Bool
    /// The significant digits: a machine integer when there are few enough, so that the sums and
    /// comparisons of capacities and prices are integer operations (docs/performance.md, round 14).
    let magnitude: Magnitude
    /// The value is `digits × 10^exponent`.
    public let exponent: Int

    /// The significant digits of a normalised value: without leading or trailing zeros, so that
    /// every value has one representation (and the synthesised `==` and hash are the value's).
    enum Magnitude: Sendable, Hashable {
        /// At most ``CPNPDecimal/smallDigitCount`` digits (0 for zero): sums and comparisons are
        /// integer operations.
        case small(UInt64)
        /// More digits, most significant first.
        case large([UInt8])
    }

    /// The most digits kept in a machine integer: below 10^18, so that a sum of two cannot overflow.
    static let smallDigitCount = 18

    /// Decimal digits (0...9), most significant first, without leading or trailing zeros; empty for zero.
    public var digits: [UInt8] {
        switch magnitude {
        case .large(let digits): digits
        case .small(let coefficient): Self.decimalDigits(of: coefficient)
        }
    }

    /// The decimal digits of `value`, most significant first (none for 0).
    static func decimalDigits(of value: UInt64) -> [UInt8] {
        var value = value
        var reversed: [UInt8] = []
        while value > 0 {
            reversed.append(UInt8(value % 10))
            value /= 10
        }
        return reversed.reversed()
    }

    /// How many significant digits (0 for zero).
    var digitCount: Int {
        switch magnitude {
        case .large(let digits): return digits.count
        case .small(var coefficient):
            var count = 0
            while coefficient > 0 {
                count += 1
                coefficient /= 10
            }
            return count
        }
    }

    /// Builds a normalised value; `digits` may have leading/trailing zeros.
    public init(isNegative: Bool, digits: [UInt8], exponent: Int) {
        var significant = digits[...]
        var normalizedExponent = exponent
        while let first = significant.first, first == 0 { significant = significant.dropFirst() }
        while let last = significant.last, last == 0 { significant = significant.dropLast(); normalizedExponent += 1 }
        if significant.isEmpty {
            self.init(isNegative: false, magnitude: .small(0), exponent: 0)
        } else if significant.count <= Self.smallDigitCount {
            self.init(isNegative: isNegative, magnitude: .small(significant.reduce(0) { $0 * 10 + UInt64($1) }), exponent: normalizedExponent)
        } else {
            self.init(isNegative: isNegative, magnitude: .large(Array(significant)), exponent: normalizedExponent)
        }
    }

    /// `coefficient × 10^exponent`, normalised (any coefficient, trailing zeros included).
    init(isNegative: Bool, coefficient: UInt64, exponent: Int) {
        guard coefficient != 0 else {
            self.init(isNegative: false, magnitude: .small(0), exponent: 0)
            return
        }
        var coefficient = coefficient
        var exponent = exponent
        while coefficient % 10 == 0 {
            coefficient /= 10
            exponent += 1
        }
        self.init(
            isNegative: isNegative, magnitude: coefficient < Self.smallLimit ? .small(coefficient) : .large(Self.decimalDigits(of: coefficient)),
            exponent: exponent)
    }

    /// A normalised magnitude with its sign (never negative for zero).
    init(isNegative: Bool, magnitude: Magnitude, exponent: Int) {
        self.isNegative = isNegative
        self.magnitude = magnitude
        self.exponent = exponent
    }

    /// 10^18: a small coefficient is below it.
    static let smallLimit: UInt64 = 1_000_000_000_000_000_000

    /// `coefficient × 10^power`, or nil when it does not fit in 64 bits.
    static func scaled(_ coefficient: UInt64, by power: Int) -> UInt64? {
        var value = coefficient
        for _ in 0..<power {
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            value = product
        }
        return value
    }
}

// MARK: - Parsing

extension CPNPDecimal {
    /// The largest decimal exponent magnitude accepted when parsing (both the literal's
    /// exponent and the value's scientific exponent), so that exact arithmetic stays cheap.
    public static let maxExponentMagnitude = 10_000

    /// Why a number literal was refused; internal to the codec.
    enum ScanError: Error {
        /// Not the JSON number grammar; `offset` is the byte where it went wrong.
        case syntax(String, offset: Int)
        /// Grammatically valid but too long or with too large an exponent.
        case outOfRange(String)
    }

    /// Parses a number written in the JSON grammar (RFC 8259 §6), e.g. `-12`, `0.05`,
    /// `1250.00`, `1.5e+30`. Returns nil for anything else (leading `+`, leading zeros,
    /// `.5`, `1.`, whitespace, `NaN`…) or when an exponent exceeds ±``maxExponentMagnitude``.
    public init?(parsing text: some StringProtocol) {
        let bytes = Array(text.utf8)
        let result: CPNPDecimal? = bytes.withUnsafeBufferPointer { buffer in
            guard
                let (value, end) = try? CPNPDecimal.scan(
                    buffer, from: 0, maxLength: .max, maxExponent: CPNPDecimal.maxExponentMagnitude),
                end == buffer.count
            else { return nil }
            return value
        }
        guard let result else { return nil }
        self = result
    }

    /// Scans one JSON number starting at `start`; returns the value and the index after it.
    ///
    /// Refuses (``ScanError/outOfRange(_:)``) literals longer than `maxLength` bytes,
    /// exponents beyond ±`maxExponent`, and values whose canonical text would exceed
    /// either bound, so that every accepted value re-serializes into an accepted literal.
    static func scan(
        _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, maxLength: Int, maxExponent: Int
    ) throws(ScanError) -> (value: CPNPDecimal, end: Int) {
        let end = bytes.count
        var position = start
        let tooLong = ScanError.outOfRange("number literal longer than \(maxLength) characters")
        var negative = false
        if position < end, bytes[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        // The significant digits go into a machine integer; only a literal with more than
        // smallDigitCount of them collects them in an array.
        var coefficient: UInt64 = 0
        var significantCount = 0
        var manyDigits: [UInt8]?
        func take(_ digit: UInt8) {
            if significantCount == 0 && digit == 0 { return }
            significantCount += 1
            if significantCount <= CPNPDecimal.smallDigitCount {
                coefficient = coefficient * 10 + UInt64(digit)
                return
            }
            if manyDigits == nil { manyDigits = CPNPDecimal.decimalDigits(of: coefficient) }
            manyDigits!.append(digit)
        }
        guard position < end, bytes[position] &- 0x30 < 10 else {
            throw .syntax("expected a digit in number", offset: position)
        }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < end, bytes[position] &- 0x30 < 10 {
                throw .syntax("leading zeros are not allowed in numbers", offset: position)
            }
        } else {
            while position < end, bytes[position] &- 0x30 < 10 {
                if position - start >= maxLength { throw tooLong }
                take(bytes[position] &- 0x30)
                position += 1
            }
        }
        var fractionCount = 0
        if position < end, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard position < end, bytes[position] &- 0x30 < 10 else {
                throw .syntax("expected a digit after the decimal point", offset: position)
            }
            while position < end, bytes[position] &- 0x30 < 10 {
                if position - start >= maxLength { throw tooLong }
                take(bytes[position] &- 0x30)
                fractionCount += 1
                position += 1
            }
        }
        var literalExponent = 0
        if position < end, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            var exponentNegative = false
            if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                exponentNegative = bytes[position] == UInt8(ascii: "-")
                position += 1
            }
            guard position < end, bytes[position] &- 0x30 < 10 else {
                throw .syntax("expected a digit in the exponent", offset: position)
            }
            while position < end, bytes[position] &- 0x30 < 10 {
                if position - start >= maxLength { throw tooLong }
                if literalExponent <= 1_000_000_000 {
                    literalExponent = literalExponent * 10 + Int(bytes[position] &- 0x30)
                }
                position += 1
            }
            if exponentNegative { literalExponent = -literalExponent }
        }
        if position - start > maxLength { throw tooLong }
        if literalExponent.magnitude > maxExponent.magnitude {
            throw .outOfRange("number exponent beyond ±\(maxExponent)")
        }
        let value =
            manyDigits.map { CPNPDecimal(isNegative: negative, digits: $0, exponent: literalExponent - fractionCount) }
            ?? CPNPDecimal(isNegative: negative, coefficient: coefficient, exponent: literalExponent - fractionCount)
        if !value.isZero {
            if value.scientificExponent.magnitude > maxExponent.magnitude {
                throw .outOfRange("number magnitude beyond 10^±\(maxExponent)")
            }
            if value.canonicalLength > maxLength {
                throw .outOfRange("number's canonical form longer than \(maxLength) characters")
            }
        }
        return (value, position)
    }
}

// MARK: - Canonical text

extension CPNPDecimal: CustomStringConvertible, LosslessStringConvertible {
    /// Same as ``init(parsing:)``.
    public init?(_ description: String) { self.init(parsing: description) }

    /// The exponent in scientific notation: the value is `d.ddd × 10^scientificExponent`.
    var scientificExponent: Int { digitCount + exponent - 1 }

    private enum Form { case zero, integer, fraction, scientific }

    private var form: Form {
        if isZero { return .zero }
        let integerDigits = digitCount + exponent
        if exponent >= 0 { return integerDigits <= 21 ? .integer : .scientific }
        return exponent >= -21 && integerDigits <= 21 ? .fraction : .scientific
    }

    /// Length in bytes of ``description``, computed without building it.
    var canonicalLength: Int {
        let sign = isNegative ? 1 : 0
        let digitCount = self.digitCount
        switch form {
        case .zero: return 1
        case .integer: return sign + digitCount + exponent
        case .fraction: return digitCount + exponent > 0 ? sign + digitCount + 1 : sign + 2 - exponent
        case .scientific:
            var magnitude = scientificExponent.magnitude
            var exponentDigits = 1
            while magnitude >= 10 { magnitude /= 10; exponentDigits += 1 }
            return sign + digitCount + (digitCount > 1 ? 1 : 0) + 2 + exponentDigits
        }
    }

    /// Canonical text, which ``init(parsing:)`` reads back to the same value:
    /// integers below 10^21 in plain digits (`100`, `-3`), fractions with at most 21
    /// fraction digits and 21 integer digits in plain notation (`0.05`, `99.95`),
    /// anything else in scientific notation (`1.5e+30`, `1e-30`). Zero is `0`.
    public var description: String {
        var out: [UInt8] = []
        appendCanonical(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends ``description``'s UTF-8 bytes to `out`.
    func appendCanonical(to out: inout [UInt8]) {
        let zero = UInt8(ascii: "0")
        let digits = self.digits
        if isNegative { out.append(UInt8(ascii: "-")) }
        switch form {
        case .zero:
            out.append(zero)
        case .integer:
            for digit in digits { out.append(zero + digit) }
            for _ in 0..<exponent { out.append(zero) }
        case .fraction:
            let integerDigits = digits.count + exponent
            if integerDigits > 0 {
                for digit in digits[..<integerDigits] { out.append(zero + digit) }
                out.append(UInt8(ascii: "."))
                for digit in digits[integerDigits...] { out.append(zero + digit) }
            } else {
                out.append(zero)
                out.append(UInt8(ascii: "."))
                for _ in 0 ..< -integerDigits { out.append(zero) }
                for digit in digits { out.append(zero + digit) }
            }
        case .scientific:
            out.append(zero + digits[0])
            if digits.count > 1 {
                out.append(UInt8(ascii: "."))
                for digit in digits[1...] { out.append(zero + digit) }
            }
            let exponentValue = scientificExponent
            out.append(UInt8(ascii: "e"))
            out.append(exponentValue < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            out.append(contentsOf: String(exponentValue.magnitude).utf8)
        }
    }

    /// Rounded half away from zero to at most `fractionDigits` digits after the point (a price
    /// to a currency's minor unit).
    public func rounded(fractionDigits: Int) -> CPNPDecimal {
        guard -exponent > fractionDigits else { return self }
        let digits = self.digits
        let kept = digits.count + exponent + fractionDigits
        guard kept >= 0 else { return CPNPDecimal(isNegative: false, digits: [], exponent: 0) }
        var out = Array(digits.prefix(kept))
        if digits[kept] >= 5 {
            var i = out.count - 1
            while i >= 0 && out[i] == 9 {
                out[i] = 0
                i -= 1
            }
            if i >= 0 { out[i] += 1 } else { out.insert(1, at: 0) }
        }
        return CPNPDecimal(isNegative: isNegative, digits: out, exponent: -fractionDigits)
    }

    /// Plain notation without exponent, padded with trailing zeros to at least
    /// `minimumFractionDigits` fraction digits (e.g. `1250.00` for cost amounts).
    public func plainString(minimumFractionDigits: Int = 0) -> String {
        let zero = UInt8(ascii: "0")
        let digits = self.digits
        var out: [UInt8] = []
        if isNegative { out.append(UInt8(ascii: "-")) }
        let fractionDigits = max(0, -exponent)
        let integerDigits = digits.count + exponent
        if integerDigits <= 0 {
            out.append(zero)
        } else {
            for i in 0..<integerDigits { out.append(i < digits.count ? zero + digits[i] : zero) }
        }
        let shown = max(fractionDigits, minimumFractionDigits)
        if shown > 0 {
            out.append(UInt8(ascii: "."))
            // Fraction position `fractionPosition` (1-based) holds digit index integerDigits + fractionPosition - 1.
            for fractionPosition in 1...shown {
                let index = integerDigits + fractionPosition - 1
                out.append(index >= 0 && index < digits.count ? zero + digits[index] : zero)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An approximation as a `Double`, for display and scoring only (never for comparisons
    /// that matter: use the exact operators).
    public var doubleValue: Double {
        if isZero { return 0 }
        return Double(description) ?? (isNegative ? -.infinity : .infinity)
    }
}

// MARK: - Exact arithmetic

extension CPNPDecimal {
    /// Digits least significant first, padded with `shift` trailing zeros.
    private func littleEndianDigits(shiftedBy shift: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: shift)
        out.reserveCapacity(shift + digits.count)
        out.append(contentsOf: digits.reversed())
        return out
    }

    private static func compareLittleEndian(_ left: [UInt8], _ right: [UInt8]) -> Int {
        let length = max(left.count, right.count)
        var i = length - 1
        while i >= 0 {
            let leftDigit = i < left.count ? left[i] : 0
            let rightDigit = i < right.count ? right[i] : 0
            if leftDigit != rightDigit { return leftDigit < rightDigit ? -1 : 1 }
            i -= 1
        }
        return 0
    }

    /// The value with the opposite sign.
    public static prefix func - (operand: CPNPDecimal) -> CPNPDecimal {
        operand.isZero ? operand : CPNPDecimal(isNegative: !operand.isNegative, magnitude: operand.magnitude, exponent: operand.exponent)
    }

    /// Exact sum: in 64-bit integers when both coefficients, aligned to the smaller exponent, fit;
    /// digit by digit otherwise.
    public static func + (lhs: CPNPDecimal, rhs: CPNPDecimal) -> CPNPDecimal {
        if lhs.isZero { return rhs }
        if rhs.isZero { return lhs }
        if case .small(let left) = lhs.magnitude, case .small(let right) = rhs.magnitude {
            let commonExponent = min(lhs.exponent, rhs.exponent)
            if let left = scaled(left, by: lhs.exponent - commonExponent), let right = scaled(right, by: rhs.exponent - commonExponent) {
                if lhs.isNegative == rhs.isNegative {
                    let (sum, overflow) = left.addingReportingOverflow(right)
                    if !overflow { return CPNPDecimal(isNegative: lhs.isNegative, coefficient: sum, exponent: commonExponent) }
                } else if left >= right {
                    return CPNPDecimal(isNegative: lhs.isNegative, coefficient: left - right, exponent: commonExponent)
                } else {
                    return CPNPDecimal(isNegative: rhs.isNegative, coefficient: right - left, exponent: commonExponent)
                }
            }
        }
        return digitSum(lhs, rhs)
    }

    /// Exact sum, digit by digit (any size).
    static func digitSum(_ lhs: CPNPDecimal, _ rhs: CPNPDecimal) -> CPNPDecimal {
        if lhs.isZero { return rhs }
        if rhs.isZero { return lhs }
        let commonExponent = min(lhs.exponent, rhs.exponent)
        let leftDigits = lhs.littleEndianDigits(shiftedBy: lhs.exponent - commonExponent)
        let rightDigits = rhs.littleEndianDigits(shiftedBy: rhs.exponent - commonExponent)
        var result: [UInt8] = []
        let negative: Bool
        if lhs.isNegative == rhs.isNegative {
            negative = lhs.isNegative
            var carry: UInt8 = 0
            for i in 0..<max(leftDigits.count, rightDigits.count) {
                let sum = (i < leftDigits.count ? leftDigits[i] : 0) + (i < rightDigits.count ? rightDigits[i] : 0) + carry
                result.append(sum % 10)
                carry = sum / 10
            }
            if carry > 0 { result.append(carry) }
        } else {
            let order = compareLittleEndian(leftDigits, rightDigits)
            if order == 0 { return CPNPDecimal(isNegative: false, digits: [], exponent: 0) }
            let (big, small) = order > 0 ? (leftDigits, rightDigits) : (rightDigits, leftDigits)
            negative = order > 0 ? lhs.isNegative : rhs.isNegative
            var borrow: Int8 = 0
            for i in 0..<big.count {
                var difference = Int8(big[i]) - (i < small.count ? Int8(small[i]) : 0) - borrow
                if difference < 0 { difference += 10; borrow = 1 } else { borrow = 0 }
                result.append(UInt8(difference))
            }
        }
        return CPNPDecimal(isNegative: negative, digits: result.reversed(), exponent: commonExponent)
    }

    /// Exact difference.
    public static func - (lhs: CPNPDecimal, rhs: CPNPDecimal) -> CPNPDecimal { lhs + (-rhs) }

    /// Exact product: in 64-bit integers when it fits, digit by digit otherwise.
    public static func * (lhs: CPNPDecimal, rhs: CPNPDecimal) -> CPNPDecimal {
        if lhs.isZero || rhs.isZero { return CPNPDecimal(isNegative: false, digits: [], exponent: 0) }
        if case .small(let left) = lhs.magnitude, case .small(let right) = rhs.magnitude {
            let (product, overflow) = left.multipliedReportingOverflow(by: right)
            if !overflow {
                return CPNPDecimal(isNegative: lhs.isNegative != rhs.isNegative, coefficient: product, exponent: lhs.exponent + rhs.exponent)
            }
        }
        return digitProduct(lhs, rhs)
    }

    /// Exact product, digit by digit (any size).
    static func digitProduct(_ lhs: CPNPDecimal, _ rhs: CPNPDecimal) -> CPNPDecimal {
        if lhs.isZero || rhs.isZero { return CPNPDecimal(isNegative: false, digits: [], exponent: 0) }
        let leftDigits = lhs.littleEndianDigits(shiftedBy: 0)
        let rightDigits = rhs.littleEndianDigits(shiftedBy: 0)
        var columns = [Int](repeating: 0, count: leftDigits.count + rightDigits.count)
        for i in 0..<leftDigits.count where leftDigits[i] != 0 {
            for j in 0..<rightDigits.count { columns[i + j] += Int(leftDigits[i]) * Int(rightDigits[j]) }
        }
        var result: [UInt8] = []
        result.reserveCapacity(columns.count + 1)
        var carry = 0
        for column in columns {
            let total = column + carry
            result.append(UInt8(total % 10))
            carry = total / 10
        }
        while carry > 0 { result.append(UInt8(carry % 10)); carry /= 10 }
        return CPNPDecimal(
            isNegative: lhs.isNegative != rhs.isNegative, digits: result.reversed(),
            exponent: lhs.exponent + rhs.exponent)
    }

    /// Exact product by an integer (e.g. a unit price times a quantity).
    public static func * (lhs: CPNPDecimal, rhs: Int) -> CPNPDecimal { lhs * CPNPDecimal(Int64(rhs)) }

    /// Exact product by an integer.
    public static func * (lhs: Int, rhs: CPNPDecimal) -> CPNPDecimal { CPNPDecimal(Int64(lhs)) * rhs }

    /// Adds in place, exactly.
    public static func += (lhs: inout CPNPDecimal, rhs: CPNPDecimal) { lhs = lhs + rhs }

    /// Subtracts in place, exactly.
    public static func -= (lhs: inout CPNPDecimal, rhs: CPNPDecimal) { lhs = lhs - rhs }
}
