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
