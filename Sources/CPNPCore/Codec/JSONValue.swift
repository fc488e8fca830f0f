/// A parsed JSON document (RFC 8259) as CPNP carries it (docs/protocol.md §2.2).
///
/// Numbers keep their exact decimal value (``CPNPDecimal``); objects keep the order of
/// their keys so that encoding is deterministic, but compare equal regardless of order.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(CPNPDecimal)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON object with unique keys, in insertion order.
///
/// Equality and hashing ignore key order (two objects with the same members are equal).
public struct JSONObject: Sendable, Hashable, Sequence {
    public private(set) var keys: [String] = []
    private var storage: [String: JSONValue] = [:]

    public init() {}

    /// Builds an object from pairs; a later duplicate key replaces the earlier value.
    public init(_ pairs: [(String, JSONValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> JSONValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: JSONValue)> {
        var index = 0
        let keys = self.keys
        let storage = self.storage
        return AnyIterator<(key: String, value: JSONValue)> {
            guard index < keys.count else { return nil }
            defer { index += 1 }
            return (keys[index], storage[keys[index]]!)
        }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool { lhs.storage == rhs.storage }
    public func hash(into hasher: inout Hasher) { hasher.combine(storage) }
}

/// A location inside a decoded message, used to name the offending field in errors
/// (e.g. `cpd.components[0].profiles[1].qos-guarantees.entries[0].from`).
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    public enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    public var components: [Component]

    public init(_ components: [Component] = []) { self.components = components }

    public static let root = JSONPath()

    /// The path extended by an object key.
    public func appending(_ key: String) -> JSONPath { JSONPath(components + [.key(key)]) }
    /// The path extended by an array index.
    public func appending(index: Int) -> JSONPath { JSONPath(components + [.index(index)]) }

    public var description: String {
        var out = ""
        for c in components {
            switch c {
            case .key(let k):
                if !out.isEmpty { out += "." }
                out += k
            case .index(let i):
                out += "[\(i)]"
            }
        }
        return out.isEmpty ? "$" : out
    }
}

/// Why a message or document could not be decoded. Names the offending field so a
/// server can put it in the diagnostic of a FAIL with status 1 (RFC 8921 §10.2).
public struct CPNPDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// Not JSON at all, or truncated (RFC 8259 syntax error).
        case malformedJSON = "malformed-json"
        /// Bytes are not valid UTF-8.
        case invalidUTF8 = "invalid-utf8"
        /// An object repeats a key.
        case duplicateKey = "duplicate-key"
        /// Arrays/objects nested deeper than the limit (32).
        case nestingTooDeep = "nesting-too-deep"
        /// The whole document exceeds the size limit.
        case documentTooLarge = "document-too-large"
        /// A string exceeds its length limit.
        case stringTooLong = "string-too-long"
        /// The top level is not an object.
        case notAnObject = "not-an-object"
        /// A mandatory attribute is absent.
        case missingField = "missing-field"
        /// A value has the wrong JSON type.
        case wrongType = "wrong-type"
        /// A number is outside its allowed range.
        case outOfRange = "out-of-range"
        /// A value has the right type but an invalid form or content.
        case invalidValue = "invalid-value"
        /// `version` is not 1.
        case unsupportedVersion = "unsupported-version"
        /// `method` is not a known METHOD_CODE.
        case unknownMethod = "unknown-method"
    }

    public var code: Code
    /// Where in the document the problem is (`$` for the document itself).
    public var path: JSONPath
    /// A short human-readable explanation.
    public var reason: String

    public init(_ code: Code, at path: JSONPath, _ reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason) (\(code.rawValue))" }
}
