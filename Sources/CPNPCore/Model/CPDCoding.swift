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

/// Decoding and encoding shared by every CPD element: a JSON object whose members the element
/// names once (``members(into:)``), written as a tree (``JSONObject``) or straight to bytes
/// (``JSONWriter``), with the same members in the same order (docs/protocol.md §2.3).
protocol CPDJSONCodable {
    init(json: JSONValue, at path: JSONPath) throws(CPNPDecodingError)
    var json: JSONValue { get }
    /// The members of the element's JSON object, in order; absent ones are skipped.
    func members(into object: inout some CPDJSONMembers)
}

extension CPDJSONCodable {
    /// The element's JSON object as a tree.
    var objectJSON: JSONValue {
        var object = JSONObject()
        members(into: &object)
        return .object(object)
    }

    /// The element's JSON object as compact bytes: what ``JSONSerializer`` gives for ``objectJSON``.
    func write(into writer: inout JSONWriter) {
        writer.beginObject()
        members(into: &writer)
        writer.endObject()
    }
}

/// Where a CPD element puts the members of its JSON object (``CPDJSONCodable/members(into:)``):
/// a nil value is no member.
protocol CPDJSONMembers {
    mutating func put(_ key: String, _ value: JSONValue?)
    mutating func put(_ key: String, _ value: String?)
    mutating func put(_ key: String, _ value: [String]?)
    mutating func put(_ key: String, _ value: Bool?)
    mutating func put(_ key: String, _ value: Int64?)
    mutating func put(_ key: String, _ value: CPNPDecimal?)
    mutating func put<T: NegotiableValue>(_ key: String, _ value: T?)
    mutating func put<T>(_ key: String, _ value: Negotiable<T>?)
    mutating func put<T: CPDJSONCodable>(_ key: String, _ value: T?)
    mutating func put<T: CPDJSONCodable>(_ key: String, _ value: [T]?)
}

extension JSONObject: CPDJSONMembers {}

extension JSONWriter: CPDJSONMembers {
    mutating func put(_ key: String, _ value: JSONValue?) {
        guard let value else { return }
        self.key(key)
        scalar(value)
    }

    mutating func put(_ key: String, _ value: String?) {
        guard let value else { return }
        member(key, value)
    }

    mutating func put(_ key: String, _ value: [String]?) {
        guard let value else { return }
        self.key(key)
        beginArray()
        for item in value { string(item) }
        endArray()
    }

    mutating func put(_ key: String, _ value: Bool?) {
        guard let value else { return }
        member(key, value)
    }

    mutating func put(_ key: String, _ value: Int64?) {
        guard let value else { return }
        member(key, value)
    }

    mutating func put(_ key: String, _ value: CPNPDecimal?) {
        guard let value else { return }
        self.key(key)
        decimal(value)
    }

    mutating func put<T: NegotiableValue>(_ key: String, _ value: T?) {
        guard let value else { return }
        self.key(key)
        scalar(value.negotiableJSON)
    }

    mutating func put<T>(_ key: String, _ value: Negotiable<T>?) {
        guard let value else { return }
        self.key(key)
        value.write(into: &self)
    }

    mutating func put<T: CPDJSONCodable>(_ key: String, _ value: T?) {
        guard let value else { return }
        self.key(key)
        value.write(into: &self)
    }

    mutating func put<T: CPDJSONCodable>(_ key: String, _ value: [T]?) {
        guard let value else { return }
        self.key(key)
        beginArray()
        for item in value { item.write(into: &self) }
        endArray()
    }
}

extension JSONObject {
    /// The member `key`, decoded by `decodeValue`, which gets the member's path as a function: a leaf
    /// builds it only for an error (``JSONValue/string(at:maxLength:)`` and the others take it as an autoclosure).
    func decode<T>(
        _ key: String, at path: JSONPath,
        _ decodeValue: (JSONValue, () -> JSONPath) throws(CPNPDecodingError) -> T
    ) throws(CPNPDecodingError) -> T {
        let value = try required(key, at: path)
        return try decodeValue(value) { path.appending(key) }
    }

    func decodeIfPresent<T>(
        _ key: String, at path: JSONPath,
        _ decodeValue: (JSONValue, () -> JSONPath) throws(CPNPDecodingError) -> T
    ) throws(CPNPDecodingError) -> T? {
        guard let value = self[key] else { return nil }
        return try decodeValue(value) { path.appending(key) }
    }

    func element<T: CPDJSONCodable>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T {
        try decode(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try T(json: member, at: memberPath()) }
    }

    func elementIfPresent<T: CPDJSONCodable>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try T(json: member, at: memberPath()) }
    }

    func elements<T: CPDJSONCodable>(_ key: String, at path: JSONPath, maxCount: Int) throws(CPNPDecodingError) -> [T] {
        try decode(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.elements(at: memberPath(), maxCount: maxCount) }
    }

    func elementsIfPresent<T: CPDJSONCodable>(_ key: String, at path: JSONPath, maxCount: Int) throws(CPNPDecodingError) -> [T]? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in
            try member.elements(at: memberPath(), maxCount: maxCount)
        }
    }

    func string(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> String {
        try decode(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.string(at: memberPath(), maxLength: maxLength) }
    }

    func stringIfPresent(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> String? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in
            try member.string(at: memberPath(), maxLength: maxLength)
        }
    }

    func strings(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> [String] {
        try decode(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.strings(at: memberPath(), maxLength: maxLength) }
    }

    func stringsIfPresent(_ key: String, at path: JSONPath, maxLength: Int = CPDLimits.maxShortString) throws(CPNPDecodingError) -> [String]? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in
            try member.strings(at: memberPath(), maxLength: maxLength)
        }
    }

    func boolIfPresent(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> Bool? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.bool(at: memberPath()) }
    }

    func integerIfPresent(_ key: String, at path: JSONPath, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws(CPNPDecodingError) -> Int64?
    {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.integer(at: memberPath(), in: range) }
    }

    func integer(_ key: String, at path: JSONPath, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws(CPNPDecodingError) -> Int64 {
        try decode(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.integer(at: memberPath(), in: range) }
    }

    func decimalIfPresent(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> CPNPDecimal? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try member.decimal(at: memberPath()) }
    }

    func value<T: NegotiableValue>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T {
        try decode(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try T(negotiableJSON: member, at: memberPath()) }
    }

    func valueIfPresent<T: NegotiableValue>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> T? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try T(negotiableJSON: member, at: memberPath()) }
    }

    func negotiable<T>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> Negotiable<T> {
        try decode(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try Negotiable<T>(json: member, at: memberPath()) }
    }

    func negotiableIfPresent<T>(_ key: String, at path: JSONPath) throws(CPNPDecodingError) -> Negotiable<T>? {
        try decodeIfPresent(key, at: path) { (member, memberPath) throws(CPNPDecodingError) in try Negotiable<T>(json: member, at: memberPath()) }
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
    func elements<T: CPDJSONCodable>(at path: @autoclosure () -> JSONPath, maxCount: Int) throws(CPNPDecodingError) -> [T] {
        let items = try array(at: path(), maxCount: maxCount)
        guard !items.isEmpty else { return [] }
        // Each element's decoder takes its path as a value: the list's, built once.
        let listPath = path()
        var out: [T] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            out.append(try T(json: item, at: listPath.appending(index: i)))
        }
        return out
    }

    func strings(at path: @autoclosure () -> JSONPath, maxLength: Int) throws(CPNPDecodingError) -> [String] {
        let items = try array(at: path(), maxCount: CPDLimits.maxListItems)
        var out: [String] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            out.append(try item.string(at: path().appending(index: i), maxLength: maxLength))
        }
        return out
    }
}
