/// Typed, path-aware access to decoded JSON. Every failure names the field
/// (``CPNPDecodingError/path``), as FAIL 1 diagnostics need (RFC 8921 §10.2).
extension JSONValue {
    /// The JSON type name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    // Each takes its path as an autoclosure: a path is built only for an error, so decoding a valid
    // document allocates none for its leaves (docs/performance.md, round 16).

    public func object(at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) -> JSONObject {
        guard case .object(let object) = self else { throw Self.wrongType("an object", self, path()) }
        return object
    }

    public func array(at path: @autoclosure () -> JSONPath, maxCount: Int = 4096) throws(CPNPDecodingError) -> [JSONValue] {
        guard case .array(let elements) = self else { throw Self.wrongType("an array", self, path()) }
        guard elements.count <= maxCount else {
            throw CPNPDecodingError(.outOfRange, at: path(), "array has \(elements.count) elements, at most \(maxCount) allowed")
        }
        return elements
    }

    public func string(at path: @autoclosure () -> JSONPath, maxLength: Int = 1024) throws(CPNPDecodingError) -> String {
        guard case .string(let text) = self else { throw Self.wrongType("a string", self, path()) }
        guard text.unicodeScalars.count <= maxLength else {
            throw CPNPDecodingError(.stringTooLong, at: path(), "string longer than \(maxLength) characters")
        }
        return text
    }

    public func bool(at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) -> Bool {
        guard case .bool(let value) = self else { throw Self.wrongType("a boolean", self, path()) }
        return value
    }

    public func decimal(at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) -> CPNPDecimal {
        guard case .number(let decimal) = self else { throw Self.wrongType("a number", self, path()) }
        return decimal
    }

    /// An integer within `range` (inclusive); a fractional or out-of-range number is an error.
    public func integer(at path: @autoclosure () -> JSONPath, in range: ClosedRange<Int64>) throws(CPNPDecodingError) -> Int64 {
        let number = try decimal(at: path())
        guard let value = number.int64Value else {
            throw CPNPDecodingError(.outOfRange, at: path(), "expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        guard range.contains(value) else {
            throw CPNPDecodingError(.outOfRange, at: path(), "\(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    static func wrongType(_ expected: String, _ actual: JSONValue, _ path: JSONPath) -> CPNPDecodingError {
        CPNPDecodingError(.wrongType, at: path, "expected \(expected), found \(actual.typeName)")
    }
}

extension JSONObject {
    /// The value of a mandatory key; absent → `missingField`.
    public func required(_ key: String, at path: @autoclosure () -> JSONPath) throws(CPNPDecodingError) -> JSONValue {
        guard let value = self[key] else {
            throw CPNPDecodingError(.missingField, at: path().appending(key), "mandatory attribute is missing")
        }
        return value
    }

    /// The value of an optional key; absent → nil. An explicit `null` is returned as `.null`.
    public func optional(_ key: String) -> JSONValue? { self[key] }
}

extension CPNPDecimal: Comparable, ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self.init(value) }

    /// The exact value of an integer.
    public init(_ value: Int64) {
        self.init(isNegative: value < 0, coefficient: value.magnitude, exponent: 0)
    }

    public var isZero: Bool { magnitude == .small(0) }

    /// The value as an Int64 when it is an integer that fits; otherwise nil.
    public var int64Value: Int64? {
        if isZero { return 0 }
        guard exponent >= 0 else { return nil }
        let magnitude: UInt64
        if case .small(let coefficient) = self.magnitude {
            guard let scaled = Self.scaled(coefficient, by: exponent) else { return nil }
            magnitude = scaled
        } else {
            guard let exact = largeMagnitude else { return nil }
            magnitude = exact
        }
        if isNegative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    /// The magnitude of a value of many digits when it is an integer that fits in 64 bits.
    private var largeMagnitude: UInt64? {
        guard exponent >= 0, digitCount + exponent <= 20 else { return nil }
        var magnitude: UInt64 = 0
        for digit in digits {
            let (product, productOverflow) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, sumOverflow) = product.addingReportingOverflow(UInt64(digit))
            if productOverflow || sumOverflow { return nil }
            magnitude = sum
        }
        return Self.scaled(magnitude, by: exponent)
    }

    public static func < (lhs: CPNPDecimal, rhs: CPNPDecimal) -> Bool {
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative }
        let magnitudeLess = compareMagnitude(lhs, rhs)
        return lhs.isNegative ? magnitudeLess == .orderedDescending : magnitudeLess == .orderedAscending
    }

    enum Order { case orderedAscending, orderedSame, orderedDescending }

    static func compareMagnitude(_ left: CPNPDecimal, _ right: CPNPDecimal) -> Order {
        if left.isZero || right.isZero {
            if left.isZero && right.isZero { return .orderedSame }
            return left.isZero ? .orderedAscending : .orderedDescending
        }
        if case .small(let leftCoefficient) = left.magnitude, case .small(let rightCoefficient) = right.magnitude {
            // Aligned to the smaller exponent; a coefficient that no longer fits in 64 bits is the
            // larger one, since the other is below 10^18.
            let commonExponent = min(left.exponent, right.exponent)
            guard let leftAligned = scaled(leftCoefficient, by: left.exponent - commonExponent) else { return .orderedDescending }
            guard let rightAligned = scaled(rightCoefficient, by: right.exponent - commonExponent) else { return .orderedAscending }
            return leftAligned == rightAligned ? .orderedSame : leftAligned < rightAligned ? .orderedAscending : .orderedDescending
        }
        return compareDigits(left, right)
    }

    /// ``compareMagnitude(_:_:)`` digit by digit (any size; neither value zero).
    static func compareDigits(_ left: CPNPDecimal, _ right: CPNPDecimal) -> Order {
        let leftDigits = left.digits, rightDigits = right.digits
        // Position of the most significant digit: digits.count + exponent.
        let leftMagnitude = leftDigits.count + left.exponent
        let rightMagnitude = rightDigits.count + right.exponent
        if leftMagnitude != rightMagnitude { return leftMagnitude < rightMagnitude ? .orderedAscending : .orderedDescending }
        let length = max(leftDigits.count, rightDigits.count)
        for i in 0..<length {
            let leftDigit = i < leftDigits.count ? leftDigits[i] : 0
            let rightDigit = i < rightDigits.count ? rightDigits[i] : 0
            if leftDigit != rightDigit { return leftDigit < rightDigit ? .orderedAscending : .orderedDescending }
        }
        return .orderedSame
    }
}
