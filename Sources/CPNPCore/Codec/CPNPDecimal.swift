/// An exact decimal number, as JSON numbers are carried and compared in CPNP
/// (cpp-template.md §4: "compare with exact decimal arithmetic").
///
/// Normalised so that equal values are equal structurally: `100`, `100.0` and `1e2` are one value.
public struct CPNPDecimal: Sendable, Hashable {
    /// True for values below zero (never for zero).
    public let isNegative: Bool
    /// Decimal digits (0...9), most significant first, without leading or trailing zeros; empty for zero.
    public let digits: [UInt8]
    /// The value is `digits × 10^exponent`.
    public let exponent: Int

    /// Builds a normalised value; `digits` may have leading/trailing zeros.
    public init(isNegative: Bool, digits: [UInt8], exponent: Int) {
        var d = digits[...]
        var e = exponent
        while let f = d.first, f == 0 { d = d.dropFirst() }
        while let l = d.last, l == 0 { d = d.dropLast(); e += 1 }
        if d.isEmpty {
            self.isNegative = false
            self.digits = []
            self.exponent = 0
        } else {
            self.isNegative = isNegative
            self.digits = Array(d)
            self.exponent = e
        }
    }
}
