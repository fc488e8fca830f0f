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

    public func object(at path: JSONPath) throws(CPNPDecodingError) -> JSONObject {
        guard case .object(let o) = self else { throw Self.wrongType("an object", self, path) }
        return o
    }

    public func array(at path: JSONPath, maxCount: Int = 4096) throws(CPNPDecodingError) -> [JSONValue] {
        guard case .array(let a) = self else { throw Self.wrongType("an array", self, path) }
        guard a.count <= maxCount else {
            throw CPNPDecodingError(.outOfRange, at: path, "array has \(a.count) elements, at most \(maxCount) allowed")
        }
        return a
    }

    public func string(at path: JSONPath, maxLength: Int = 1024) throws(CPNPDecodingError) -> String {
        guard case .string(let s) = self else { throw Self.wrongType("a string", self, path) }
        guard s.unicodeScalars.count <= maxLength else {
            throw CPNPDecodingError(.stringTooLong, at: path, "string longer than \(maxLength) characters")
        }
        return s
    }

    public func bool(at path: JSONPath) throws(CPNPDecodingError) -> Bool {
        guard case .bool(let b) = self else { throw Self.wrongType("a boolean", self, path) }
        return b
    }

    public func decimal(at path: JSONPath) throws(CPNPDecodingError) -> CPNPDecimal {
        guard case .number(let d) = self else { throw Self.wrongType("a number", self, path) }
        return d
    }

    /// An integer within `range` (inclusive); a fractional or out-of-range number is an error.
    public func integer(at path: JSONPath, in range: ClosedRange<Int64>) throws(CPNPDecodingError) -> Int64 {
        let d = try decimal(at: path)
        guard let i = d.int64Value else {
            throw CPNPDecodingError(.outOfRange, at: path, "expected an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        guard range.contains(i) else {
            throw CPNPDecodingError(.outOfRange, at: path, "\(i) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    static func wrongType(_ expected: String, _ actual: JSONValue, _ path: JSONPath) -> CPNPDecodingError {
        CPNPDecodingError(.wrongType, at: path, "expected \(expected), found \(actual.typeName)")
    }
}

extension JSONObject {
    /// The value of a mandatory key; absent → `missingField`.
    public func required(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> JSONValue {
        guard let v = self[key] else {
            throw CPNPDecodingError(.missingField, at: path.appending(key), "mandatory attribute is missing")
        }
        return v
    }

    /// The value of an optional key; absent → nil. An explicit `null` is returned as `.null`.
    public func optional(_ key: String) -> JSONValue? { self[key] }
}

extension CPNPDecimal: Comparable, ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self.init(value) }

    /// The exact value of an integer.
    public init(_ value: Int64) {
        let negative = value < 0
        var magnitude = value.magnitude
        var ds: [UInt8] = []
        while magnitude > 0 {
            ds.append(UInt8(magnitude % 10))
            magnitude /= 10
        }
        self.init(isNegative: negative, digits: ds.reversed(), exponent: 0)
    }

    public var isZero: Bool { digits.isEmpty }

    /// The value as an Int64 when it is an integer that fits; otherwise nil.
    public var int64Value: Int64? {
        if isZero { return 0 }
        guard exponent >= 0, digits.count + exponent <= 19 else { return nil }
        var m: UInt64 = 0
        for d in digits {
            let (p, o1) = m.multipliedReportingOverflow(by: 10)
            let (s, o2) = p.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            m = s
        }
        for _ in 0..<exponent {
            let (p, o) = m.multipliedReportingOverflow(by: 10)
            if o { return nil }
            m = p
        }
        if isNegative {
            guard m <= UInt64(Int64.max) + 1 else { return nil }
            return m == UInt64(Int64.max) + 1 ? Int64.min : -Int64(m)
        }
        guard m <= UInt64(Int64.max) else { return nil }
        return Int64(m)
    }

    public static func < (lhs: CPNPDecimal, rhs: CPNPDecimal) -> Bool {
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative }
        let magnitudeLess = compareMagnitude(lhs, rhs)
        return lhs.isNegative ? magnitudeLess == .orderedDescending : magnitudeLess == .orderedAscending
    }

    private enum Order { case orderedAscending, orderedSame, orderedDescending }

    private static func compareMagnitude(_ a: CPNPDecimal, _ b: CPNPDecimal) -> Order {
        if a.isZero || b.isZero {
            if a.isZero && b.isZero { return .orderedSame }
            return a.isZero ? .orderedAscending : .orderedDescending
        }
        // Position of the most significant digit: digits.count + exponent.
        let ma = a.digits.count + a.exponent
        let mb = b.digits.count + b.exponent
        if ma != mb { return ma < mb ? .orderedAscending : .orderedDescending }
        let n = max(a.digits.count, b.digits.count)
        for i in 0..<n {
            let da = i < a.digits.count ? a.digits[i] : 0
            let db = i < b.digits.count ? b.digits[i] : 0
            if da != db { return da < db ? .orderedAscending : .orderedDescending }
        }
        return .orderedSame
    }
}
