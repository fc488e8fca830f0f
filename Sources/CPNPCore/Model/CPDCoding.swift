/// Size limits applied while decoding a CPD, so that a hostile document cannot make the
/// decoder allocate without bound (docs/protocol.md §2.1 caps messages at 1 MiB anyway).
public enum CPDLimits: Sendable, Hashable {
    /// Components in a CPD (RFC 7297 §4).
    public static let maxComponents = 64
    /// Profiles in a component.
    public static let maxProfiles = 64
    /// Customer nodes, scope/QoS/capacity entries and other per-profile lists.
    public static let maxEntries = 1024
    /// Items of a list inside one entry (prefixes, link identifiers, events…).
    public static let maxListItems = 256
    /// Members of a `one-of` set.
    public static let maxOneOf = 64
    /// Identifiers, enumerations, prefixes and other short strings.
    public static let maxShortString = 256
    /// Free text (addresses, requirements).
    public static let maxText = 1024
}

/// Decoding and encoding shared by every CPD element.
protocol CPDJSONCodable {
    init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError)
    var json: JSONValue { get }
}

extension JSONObject {
    func decode<T>(
        _ key: String, at path: JSONPath,
        _ f: (JSONValue, JSONPath) throws(CPNPDecodingError) -> T
    ) throws(CPNPDecodingError) -> T {
        let v = try required(key, at: path)
        return try f(v, path.appending(key))
    }

    func decodeIfPresent<T>(
        _ key: String, at path: JSONPath,
        _ f: (JSONValue, JSONPath) throws(CPNPDecodingError) -> T
    ) throws(CPNPDecodingError) -> T? {
        guard let v = self[key] else { return nil }
        return try f(v, path.appending(key))
    }

    func element<T: CPDJSONCodable>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T {
        try decode(key, at: path) { (v, p) throws(CPNPDecodingError) in try T(json: v, at: p) }
    }

    func elementIfPresent<T: CPDJSONCodable>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try T(json: v, at: p) }
    }

    func elements<T: CPDJSONCodable>(_ key: String, at path: JSONPath, maxCount: Int) throws(CPNPDecodingError) -> [T] {
        try decode(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.elements(at: p, maxCount: maxCount) }
    }

    func elementsIfPresent<T: CPDJSONCodable>(_ key: String, at path: JSONPath, maxCount: Int) throws(CPNPDecodingError) -> [T]? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.elements(at: p, maxCount: maxCount) }
    }

    func string(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> String {
        try decode(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.string(at: p, maxLength: maxLength) }
    }

    func stringIfPresent(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> String? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.string(at: p, maxLength: maxLength) }
    }

    func strings(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> [String] {
        try decode(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.strings(at: p, maxLength: maxLength) }
    }

    func stringsIfPresent(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> [String]? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.strings(at: p, maxLength: maxLength) }
    }

    func boolIfPresent(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> Bool? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.bool(at: p) }
    }

    func integerIfPresent(_ key: String, at path: JSONPath, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws(CPNPDecodingError) -> Int64? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.integer(at: p, in: range) }
    }

    func integer(_ key: String, at path: JSONPath, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws(CPNPDecodingError) -> Int64 {
        try decode(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.integer(at: p, in: range) }
    }

    func decimalIfPresent(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> CPNPDecimal? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try v.decimal(at: p) }
    }

    func value<T: NegotiableValue>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T {
        try decode(key, at: path) { (v, p) throws(CPNPDecodingError) in try T(negotiableJSON: v, at: p) }
    }

    func valueIfPresent<T: NegotiableValue>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try T(negotiableJSON: v, at: p) }
    }

    func negotiable<T>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> Negotiable<T> {
        try decode(key, at: path) { (v, p) throws(CPNPDecodingError) in try Negotiable<T>(json: v, at: p) }
    }

    func negotiableIfPresent<T>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> Negotiable<T>? {
        try decodeIfPresent(key, at: path) { (v, p) throws(CPNPDecodingError) in try Negotiable<T>(json: v, at: p) }
    }

    // MARK: encoding

    mutating func put(_ key: String, _ value: JSONValue?) {
        if let value { self[key] = value }
    }

    mutating func put(_ key: String, _ value: String?) {
        if let value { self[key] = .string(value) }
    }

    mutating func put(_ key: String, _ value: [String]?) {
        if let value { self[key] = .array(value.map(JSONValue.string)) }
    }

    mutating func put(_ key: String, _ value: Bool?) {
        if let value { self[key] = .bool(value) }
    }

    mutating func put(_ key: String, _ value: Int64?) {
        if let value { self[key] = .number(CPNPDecimal(value)) }
    }

    mutating func put(_ key: String, _ value: CPNPDecimal?) {
        if let value { self[key] = .number(value) }
    }

    mutating func put<T: NegotiableValue>(_ key: String, _ value: T?) {
        if let value { self[key] = value.negotiableJSON }
    }

    mutating func put<T>(_ key: String, _ value: Negotiable<T>?) {
        if let value { self[key] = value.json }
    }

    mutating func put<T: CPDJSONCodable>(_ key: String, _ value: T?) {
        if let value { self[key] = value.json }
    }

    mutating func put<T: CPDJSONCodable>(_ key: String, _ value: [T]?) {
        if let value { self[key] = .array(value.map(\.json)) }
    }
}

extension JSONValue {
    func elements<T: CPDJSONCodable>(at path: JSONPath, maxCount: Int) throws(CPNPDecodingError) -> [T] {
        let items = try array(at: path, maxCount: maxCount)
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            out.append(try T(json: item, at: path.appending(index: i)))
        }
        return out
    }

    func strings(at path: JSONPath, maxLength: Int) throws(CPNPDecodingError) -> [String] {
        let items = try array(at: path, maxCount: CPDLimits.maxListItems)
        var out: [String] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            out.append(try item.string(at: path.appending(index: i), maxLength: maxLength))
        }
        return out
    }
}
