import Testing
@testable import CPNPCore

private func d(_ s: String) -> CPNPDecimal {
    guard let v = CPNPDecimal(parsing: s) else { fatalError("not a decimal: \(s)") }
    return v
}

@Suite struct DecimalTests {
    @Test(arguments: [
        ("100", "100"), ("-3", "-3"), ("0", "0"), ("-0", "0"), ("0.0", "0"), ("-0.0e5", "0"),
        ("0.05", "0.05"), ("0.050", "0.05"), ("99.95", "99.95"), ("1250.00", "1250"), ("1E2", "100"),
        ("1e+2", "100"), ("12.5e-1", "1.25"), ("1.5e30", "1.5e+30"), ("1e-30", "1e-30"),
        ("-1.5E-30", "-1.5e-30"), ("1e20", "100000000000000000000"), ("1e21", "1e+21"),
        ("123456789012345678901", "123456789012345678901"), ("1234567890123456789012", "1.234567890123456789012e+21"),
        ("0.000000000000000000001", "0.000000000000000000001"), ("1e-22", "1e-22"),
        ("123456789012345678901.5", "123456789012345678901.5"), ("1234567890123456789012.5", "1.2345678901234567890125e+21"),
        ("4294967295", "4294967295"), ("-9223372036854775808", "-9223372036854775808"),
    ])
    func canonicalText(input: String, expected: String) throws {
        let v = try #require(CPNPDecimal(parsing: input))
        #expect(v.description == expected)
        #expect(CPNPDecimal(parsing: v.description) == v)
        #expect(v.canonicalLength == expected.utf8.count)
        #expect("\(v)" == expected)
        #expect(CPNPDecimal(v.description) == v)  // LosslessStringConvertible
    }

    @Test(arguments: [
        "", " 1", "1 ", "+1", "01", "-01", ".5", "1.", "-", "1e", "1e+", "1.e3", "0x1F", "NaN", "inf",
        "1,5", "1_000", "--1", "1e10001", "1e-10001", "10e10000", "١",
    ])
    func rejectsNonJSONNumbers(text: String) {
        #expect(CPNPDecimal(parsing: text) == nil)
    }

    @Test func acceptsSubstrings() {
        let s = "amount=1250.00;"
        let sub = s.dropFirst(7).dropLast()
        #expect(CPNPDecimal(parsing: sub) == d("1250"))
    }

    @Test func normalisation() {
        #expect(d("100") == d("100.0"))
        #expect(d("100") == d("1e2"))
        #expect(d("-0") == d("0"))
        #expect(d("-0").isNegative == false)
        #expect(d("0.1") == CPNPDecimal(isNegative: false, digits: [1], exponent: -1))
        #expect(d("1200").digits == [1, 2])
        #expect(d("1200").exponent == 2)
        #expect(Set([d("1.0"), d("1"), d("10e-1")]).count == 1)
        #expect(d("0.1") != d("0.10000000000000001"))
    }

    @Test func comparisons() {
        #expect(d("0.1") < d("0.2"))
        #expect(d("-1") < d("0"))
        #expect(d("-2") < d("-1.5"))
        #expect(d("99.95") < d("100"))
        #expect(d("1e-30") > 0)
        #expect(d("1e30") > d("999999999999999999999999999999"))
        #expect(d("2.50") == d("2.5"))
        #expect(!(d("2.5") < d("2.5")))
        #expect([d("3"), d("-1"), d("0.5"), d("1e1")].sorted() == [d("-1"), d("0.5"), d("3"), d("10")])
    }

    @Test func addition() {
        #expect(d("0.1") + d("0.2") == d("0.3"))
        #expect(d("99.95") + d("0.05") == d("100"))
        #expect(d("1e20") + d("1e-20") == d("100000000000000000000.00000000000000000001"))
        #expect(d("-1.5") + d("1.5") == 0)
        #expect(d("-1.5") + d("1.25") == d("-0.25"))
        #expect(d("1.25") + d("-1.5") == d("-0.25"))
        #expect(d("-1") + d("-2.5") == d("-3.5"))
        #expect(d("999") + d("1") == d("1000"))
        #expect(d("0") + d("7.5") == d("7.5"))
        #expect(d("7.5") + 0 == d("7.5"))
        var sum: CPNPDecimal = 0
        for _ in 0..<10 { sum += d("0.1") }
        #expect(sum == 1)
    }

    @Test func subtraction() {
        #expect(d("1") - d("1.001") == d("-0.001"))
        #expect(d("100") - d("99.95") == d("0.05"))
        #expect(d("0.3") - d("0.1") == d("0.2"))
        #expect(d("-5") - d("-5") == 0)
        #expect(d("1000") - d("1") == d("999"))
        #expect(d("1e3") - d("1e-3") == d("999.999"))
        #expect(-d("2.5") == d("-2.5"))
        #expect(-CPNPDecimal(0) == 0)
        var x = d("10")
        x -= d("0.01")
        #expect(x == d("9.99"))
    }

    @Test func multiplication() {
        #expect(d("12.5") * 3 == d("37.5"))
        #expect(3 * d("12.5") == d("37.5"))
        #expect(d("1250.00") * 12 == d("15000"))
        #expect(d("0.1") * d("0.1") == d("0.01"))
        #expect(d("-2") * d("3.5") == d("-7"))
        #expect(d("-2") * -3 == 6)
        #expect(d("99.95") * 0 == 0)
        #expect(d("123456789") * d("987654321") == d("121932631112635269"))
        #expect(d("1") * Int.max == CPNPDecimal(Int64.max))
    }

    @Test func integerConversions() {
        #expect(d("1e2").int64Value == 100)
        #expect(d("1.5").int64Value == nil)
        #expect(d("9223372036854775807").int64Value == Int64.max)
        #expect(d("9223372036854775808").int64Value == nil)
        #expect(CPNPDecimal(Int64.min).description == "-9223372036854775808")
    }

    @Test func plainStrings() {
        #expect(d("1250").plainString(minimumFractionDigits: 2) == "1250.00")
        #expect(d("1250.5").plainString(minimumFractionDigits: 2) == "1250.50")
        #expect(d("0.125").plainString(minimumFractionDigits: 2) == "0.125")
        #expect(d("-0.05").plainString() == "-0.05")
        #expect(d("1e21").plainString() == "1000000000000000000000")
        #expect(d("1e-22").plainString() == "0.0000000000000000000001")
        #expect(d("0").plainString(minimumFractionDigits: 1) == "0.0")
        #expect(d("12").plainString() == "12")
    }

    @Test func doubleValues() {
        #expect(d("0.1").doubleValue == 0.1)
        #expect(d("-99.95").doubleValue == -99.95)
        #expect(d("1.5e30").doubleValue == 1.5e30)
        #expect(d("0").doubleValue == 0)
        #expect(d("1e400").doubleValue == .infinity)
        #expect(d("-1e400").doubleValue == -.infinity)
    }
}

/// The fixed-point fast path (a 64-bit coefficient) against the digit-by-digit arithmetic it
/// replaces on small values, and against 128-bit integers.
@Suite struct DecimalFixedPointTests {
    /// A value drawn from a mix of sizes: few digits, around the 18-digit boundary of the machine
    /// integer and around 2^64, and many digits; exponents on both sides; both signs.
    private static func randomDecimal(_ rng: inout SplitMix64) -> CPNPDecimal {
        let count: Int
        switch rng.next() % 8 {
        case 0: count = 0
        case 1, 2, 3: count = Int(rng.next() % 6) + 1
        case 4, 5: count = Int(rng.next() % 4) + 16
        case 6: count = 20
        default: count = Int(rng.next() % 30) + 1
        }
        var digits = (0..<count).map { _ in UInt8(rng.next() % 10) }
        if rng.next() % 4 == 0, !digits.isEmpty { digits = [UInt8](repeating: 9, count: digits.count) }
        return CPNPDecimal(isNegative: rng.next() % 2 == 0, digits: digits, exponent: Int(rng.next() % 41) - 20)
    }

    @Test("sums, products and comparisons equal the digit-by-digit results; text and hash round-trip")
    func fixedPointMatchesDigitArithmetic() throws {
        var rng = SplitMix64(seed: 8921)
        for _ in 0..<20_000 {
            let a = Self.randomDecimal(&rng), b = Self.randomDecimal(&rng)
            #expect(a + b == CPNPDecimal.digitSum(a, b), "\(a) + \(b)")
            #expect(a - b == CPNPDecimal.digitSum(a, -b), "\(a) - \(b)")
            #expect(a * b == CPNPDecimal.digitProduct(a, b), "\(a) * \(b)")
            #expect((a + b) - b == a, "\(a) + \(b) - \(b)")
            let order: CPNPDecimal.Order =
                a.isZero || b.isZero
                ? (a.isZero && b.isZero ? .orderedSame : a.isZero ? .orderedAscending : .orderedDescending)
                : CPNPDecimal.compareDigits(a, b)
            #expect(CPNPDecimal.compareMagnitude(a, b) == order, "|\(a)| against |\(b)|")
            #expect((a < b) == (a - b).isNegative, "\(a) < \(b)")
            let reparsed = try #require(CPNPDecimal(parsing: a.description))
            #expect(reparsed == a && reparsed.hashValue == a.hashValue, "\(a)")
            let rebuilt = CPNPDecimal(isNegative: a.isNegative, digits: [0] + a.digits + [0, 0], exponent: a.exponent - 2)
            #expect(rebuilt == a && rebuilt.hashValue == a.hashValue && rebuilt.digitCount == a.digits.count, "\(a)")
        }
    }

    @Test("fixed-point sums and products equal 128-bit integer arithmetic at a common scale")
    func integerArithmeticAgreesWithInt128() throws {
        var rng = SplitMix64(seed: 7297)
        for _ in 0..<20_000 {
            let left = Int64(bitPattern: rng.next()) >> (rng.next() % 64), right = Int64(bitPattern: rng.next()) >> (rng.next() % 64)
            let leftScale = Int(rng.next() % 12), rightScale = Int(rng.next() % 12)
            let a = CPNPDecimal(isNegative: left < 0, coefficient: left.magnitude, exponent: -leftScale)
            let b = CPNPDecimal(isNegative: right < 0, coefficient: right.magnitude, exponent: -rightScale)
            // At the common scale, both are integers of at most 64 + 40 bits.
            let scale = max(leftScale, rightScale)
            var power: Int128 = 1
            for _ in 0..<(scale - leftScale) { power *= 10 }
            let leftScaled = Int128(left) * power
            power = 1
            for _ in 0..<(scale - rightScale) { power *= 10 }
            let rightScaled = Int128(right) * power
            let sum = try #require(CPNPDecimal(parsing: String(leftScaled + rightScaled)))
            #expect(
                a + b == (sum.isZero ? sum : CPNPDecimal(isNegative: sum.isNegative, magnitude: sum.magnitude, exponent: sum.exponent - scale)),
                "\(a) + \(b)")
            #expect((a < b) == (leftScaled < rightScaled), "\(a) < \(b)")
            #expect((a == b) == (leftScaled == rightScaled), "\(a) == \(b)")
            let product = try #require(CPNPDecimal(parsing: String(Int128(left) * Int128(right))))
            #expect(
                a * b
                    == (product.isZero
                        ? product
                        : CPNPDecimal(
                            isNegative: product.isNegative, magnitude: product.magnitude, exponent: product.exponent - leftScale - rightScale)))
            #expect(CPNPDecimal(left).int64Value == left)
        }
        #expect(CPNPDecimal(Int64.min).int64Value == Int64.min)
        #expect(CPNPDecimal(Int64.max) + 1 == CPNPDecimal(parsing: "9223372036854775808"))
        #expect(CPNPDecimal(parsing: "18446744073709551615")! + 1 == CPNPDecimal(parsing: "18446744073709551616"))
        #expect(CPNPDecimal(parsing: "999999999999999999")! + 1 == CPNPDecimal(parsing: "1e18"))
        #expect(CPNPDecimal(parsing: "1e18")! - 1 == CPNPDecimal(parsing: "999999999999999999"))
    }
}
