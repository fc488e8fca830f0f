import CPNPCore
import Yams

/// Reads Yams nodes into typed values, recording every problem with its path instead of
/// stopping at the first one. Not Codable on purpose: Codable stops at the first error and
/// cannot report unknown keys.
final class YAMLReader {
    private(set) var errors: [ConfigurationError] = []
    /// Every key some mapping allowed (the configuration's vocabulary, for documentation checks).
    private(set) var allowedKeys: Set<String> = []

    // MARK: errors

    func error(_ code: ConfigurationError.Code, _ path: JSONPath, _ node: Node?, _ message: String) {
        errors.append(ConfigurationError(code, at: path, message, line: node?.mark?.line))
    }

    func invalid(_ path: JSONPath, _ node: Node?, _ message: String) {
        error(.invalidValue, path, node, message)
    }

    // MARK: structure

    /// A mapping's known keys with their values; `line` is the mapping's own line.
    struct Map {
        let path: JSONPath
        let node: Node
        fileprivate var values: [String: Node]

        /// The value of `key`, nil when absent or null.
        subscript(key: String) -> Node? {
            guard let value = values[key], !YAMLReader.isNull(value) else { return nil }
            return value
        }

        func path(_ key: String) -> JSONPath { path.appending(key) }

        var isEmpty: Bool { values.isEmpty }
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node else { return false }
        switch scalar.style {
        case .plain, .any: return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
        default: return false
        }
    }

    private static func kind(_ node: Node) -> String {
        switch node {
        case .scalar: "a scalar"
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }

    /// A mapping with the allowed `keys`; nil when absent/null or not a mapping (reported).
    /// Unknown and duplicate keys are reported; non-scalar keys too.
    func map(_ node: Node?, at path: JSONPath, keys: [String]) -> Map? {
        guard let node, !Self.isNull(node) else { return nil }
        allowedKeys.formUnion(keys)
        guard case .mapping(let pairs) = node else {
            error(.wrongType, path, node, "expected a mapping, found \(Self.kind(node))")
            return nil
        }
        var values: [String: Node] = [:]
        for (keyNode, valueNode) in pairs {
            guard case .scalar(let keyScalar) = keyNode else {
                error(.wrongType, path, keyNode, "mapping keys must be strings")
                continue
            }
            let key = keyScalar.string
            let keyPath = path.appending(key)
            if values[key] != nil {
                error(.duplicateKey, keyPath, keyNode, "duplicate key")
                continue
            }
            guard keys.contains(key) else {
                var message = "unknown key"
                if let suggestion = Self.suggestion(for: key, among: keys) { message += " (did you mean \"\(suggestion)\"?)" }
                error(.unknownKey, keyPath, keyNode, message)
                continue
            }
            values[key] = valueNode
        }
        return Map(path: path, node: node, values: values)
    }

    /// The elements of a list with their paths; nil when absent/null or not a list (reported).
    func list(_ node: Node?, at path: JSONPath) -> [(node: Node, path: JSONPath)]? {
        guard let node, !Self.isNull(node) else { return nil }
        guard case .sequence(let elements) = node else {
            error(.wrongType, path, node, "expected a list, found \(Self.kind(node))")
            return nil
        }
        return elements.enumerated().map { ($0.element, path.appending(index: $0.offset)) }
    }

    /// The elements of a list that must all be mappings with the allowed `keys` (null or
    /// wrongly typed items are reported and skipped).
    func mapItems(_ node: Node?, at path: JSONPath, keys: [String]) -> [Map] {
        (list(node, at: path) ?? []).compactMap { item in
            if YAMLReader.isNull(item.node) {
                error(.wrongType, item.path, item.node, "expected a mapping, found nothing")
                return nil
            }
            return map(item.node, at: item.path, keys: keys)
        }
    }

    /// Reports `key` as missing.
    func missing(_ mapping: Map, _ key: String) {
        error(.missingKey, mapping.path(key), mapping.node, "missing required key")
    }

    // MARK: scalars

    /// The text of a scalar; reports other node kinds.
    func scalarText(_ node: Node, at path: JSONPath, expected: String) -> String? {
        guard case .scalar(let scalar) = node else {
            error(.wrongType, path, node, "expected \(expected), found \(Self.kind(node))")
            return nil
        }
        return scalar.string
    }

    func string(_ node: Node, at path: JSONPath, allowEmpty: Bool = false) -> String? {
        guard let text = scalarText(node, at: path, expected: "a string") else { return nil }
        if !allowEmpty && text.isEmpty {
            invalid(path, node, "must not be empty")
            return nil
        }
        return text
    }

    func string(_ mapping: Map, _ key: String, required: Bool = false) -> String? {
        guard let node = mapping[key] else {
            if required { missing(mapping, key) }
            return nil
        }
        return string(node, at: mapping.path(key))
    }

    func bool(_ mapping: Map, _ key: String) -> Bool? {
        guard let node = mapping[key], let text = scalarText(node, at: mapping.path(key), expected: "true or false") else { return nil }
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            invalid(mapping.path(key), node, "expected true or false")
            return nil
        }
    }

    func integer(_ node: Node, at path: JSONPath, in range: ClosedRange<Int>) -> Int? {
        guard let text = scalarText(node, at: path, expected: "an integer") else { return nil }
        let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        guard !digits.isEmpty, digits.count <= 18, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let value = Int(text), range.contains(value)
        else {
            invalid(path, node, "must be an integer between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return value
    }

    func integer(_ mapping: Map, _ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        guard let node = mapping[key] else {
            if required { missing(mapping, key) }
            return nil
        }
        return integer(node, at: mapping.path(key), in: range)
    }

    /// What a decimal must be.
    enum DecimalRule {
        case positive
        case nonNegative
        case percent

        var message: String {
            switch self {
            case .positive: "must be a positive number"
            case .nonNegative: "must be a number ≥ 0"
            case .percent: "must be a number between 0 and 100"
            }
        }

        func admits(_ value: CPNPDecimal) -> Bool {
            switch self {
            case .positive: CPNPDecimal(0) < value
            case .nonNegative: !value.isNegative
            case .percent: !value.isNegative && !(CPNPDecimal(100) < value)
            }
        }
    }

    /// An exact decimal (plain or quoted; never through a binary float).
    func decimal(_ node: Node, at path: JSONPath, _ rule: DecimalRule) -> CPNPDecimal? {
        guard let text = scalarText(node, at: path, expected: "a number") else { return nil }
        guard let decimal = CPNPDecimal(parsing: text), rule.admits(decimal) else {
            invalid(path, node, rule.message)
            return nil
        }
        return decimal
    }

    func decimal(_ mapping: Map, _ key: String, _ rule: DecimalRule, required: Bool = false) -> CPNPDecimal? {
        guard let node = mapping[key] else {
            if required { missing(mapping, key) }
            return nil
        }
        return decimal(node, at: mapping.path(key), rule)
    }

    /// A duration: `500ms`, `30s`, `10m`, `1h`, `2d`, combinations such as `1h30m`, or a plain
    /// number of seconds. Must be positive.
    func duration(_ mapping: Map, _ key: String) -> Duration? {
        guard let node = mapping[key], let text = scalarText(node, at: mapping.path(key), expected: "a duration") else { return nil }
        guard let duration = Duration(text: text), duration > .zero else {
            invalid(mapping.path(key), node, "not a positive duration (e.g. 500ms, 30s, 10m, 1h, 1d)")
            return nil
        }
        return duration
    }

    /// A size in bytes: an integer, or with a `KiB`, `MiB` or `GiB` suffix.
    func size(_ mapping: Map, _ key: String) -> Int? {
        guard let node = mapping[key], let text = scalarText(node, at: mapping.path(key), expected: "a size in bytes") else { return nil }
        var digits = Substring(text)
        var factor = 1
        for (suffix, multiplier) in [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)] where text.hasSuffix(suffix) {
            digits = text.dropLast(suffix.count)
            factor = multiplier
        }
        guard !digits.isEmpty, digits.count <= 10, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let count = Int(digits), count > 0
        else {
            invalid(mapping.path(key), node, "must be a positive size in bytes (e.g. 262144 or 256KiB)")
            return nil
        }
        return count * factor
    }

    /// One of the raw values of `E`.
    func enumeration<E: RawRepresentable<String> & CaseIterable>(_ node: Node, at path: JSONPath, _: E.Type) -> E? {
        guard let text = scalarText(node, at: path, expected: "a string") else { return nil }
        guard let value = E(rawValue: text) else {
            let allowed = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            var message = "must be one of \(allowed)"
            if let suggestion = Self.suggestion(for: text, among: E.allCases.map(\.rawValue)) {
                message += " (did you mean \"\(suggestion)\"?)"
            }
            invalid(path, node, message)
            return nil
        }
        return value
    }

    func enumeration<E: RawRepresentable<String> & CaseIterable>(_ mapping: Map, _ key: String, _ type: E.Type) -> E? {
        guard let node = mapping[key] else { return nil }
        return enumeration(node, at: mapping.path(key), type)
    }

    /// A list of non-empty strings (a single scalar is reported as the wrong type).
    func strings(_ mapping: Map, _ key: String) -> [String]? {
        guard let items = list(mapping[key], at: mapping.path(key)) else { return nil }
        return items.compactMap { string($0.node, at: $0.path) }
    }

    // MARK: did you mean

    /// The closest of `candidates` to `word` when it is a plausible typo (optimal string
    /// alignment distance ≤ 2 and less than half the word).
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        var best: (String, Int)?
        for candidate in candidates {
            let editDistance = distance(Array(word.utf8), Array(candidate.utf8))
            if editDistance <= 2, editDistance * 2 < max(word.utf8.count, 2), best == nil || editDistance < best!.1 {
                best = (candidate, editDistance)
            }
        }
        return best?.0
    }

    /// Levenshtein distance with adjacent transpositions (optimal string alignment).
    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
