public import CPNPCore

/// One problem in a configuration file, named by its path (e.g.
/// `policy.links[2].capacity-mbps: must be a positive number`).
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The text is not YAML (path `$`).
        case syntax
        /// A key this version does not know (often a typo: see the did-you-mean).
        case unknownKey = "unknown-key"
        /// A required key is absent.
        case missingKey = "missing-key"
        /// The same key twice in one mapping.
        case duplicateKey = "duplicate-key"
        /// A mapping where a list was expected, etc.
        case wrongType = "wrong-type"
        /// The value has the right type but is not acceptable (range, format).
        case invalidValue = "invalid-value"
        /// A reference to a PE, link or customer that is not defined.
        case unknownReference = "unknown-reference"
        /// Two entries with the same identifier.
        case duplicateIdentifier = "duplicate-identifier"
    }

    /// The kind of problem.
    public var code: Code
    /// Where: keys and list indexes from the document root (`$` for the whole document).
    public var path: JSONPath
    /// What is wrong.
    public var message: String
    /// 1-based line in the YAML text, when known.
    public var line: Int?

    /// - Parameters:
    ///   - code: kind of problem.
    ///   - path: location.
    ///   - message: explanation.
    ///   - line: 1-based line, if known.
    public init(_ code: Code, at path: JSONPath, _ message: String, line: Int? = nil) {
        self.code = code
        self.path = path
        self.message = message
        self.line = line
    }

    /// `path: message`.
    public var description: String { "\(path): \(message)" }

    /// `line N: path: message` (or ``description`` when the line is unknown), for humans.
    public var descriptionWithLine: String {
        line.map { "line \($0): \(description)" } ?? description
    }
}

/// Every problem found in a configuration file, in document order (the loader never stops at
/// the first one).
public struct ConfigurationErrors: Error, Sendable, Hashable, CustomStringConvertible {
    /// The problems, at least one.
    public var errors: [ConfigurationError]

    /// - Parameter errors: the problems.
    public init(_ errors: [ConfigurationError]) {
        self.errors = errors
    }

    /// One problem per line, with line numbers.
    public var description: String {
        errors.map(\.descriptionWithLine).joined(separator: "\n")
    }
}
