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
            guard let v = values[key], !YAMLReader.isNull(v) else { return nil }
            return v
        }

        func path(_ key: String) -> JSONPath { path.appending(key) }

        var isEmpty: Bool { values.isEmpty }
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar(let s) = node else { return false }
        switch s.style {
        case .plain, .any: return ["", "~", "null", "Null", "NULL"].contains(s.string)
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
        guard case .mapping(let m) = node else {
            error(.wrongType, path, node, "expected a mapping, found \(Self.kind(node))")
            return nil
        }
        var values: [String: Node] = [:]
        for (k, v) in m {
            guard case .scalar(let ks) = k else {
                error(.wrongType, path, k, "mapping keys must be strings")
                continue
            }
            let key = ks.string
            let kp = path.appending(key)
            if values[key] != nil {
                error(.duplicateKey, kp, k, "duplicate key")
                continue
            }
            guard keys.contains(key) else {
                var message = "unknown key"
                if let s = Self.suggestion(for: key, among: keys) { message += " (did you mean \"\(s)\"?)" }
                error(.unknownKey, kp, k, message)
                continue
            }
            values[key] = v
        }
        return Map(path: path, node: node, values: values)
    }

    /// The elements of a list with their paths; nil when absent/null or not a list (reported).
    func list(_ node: Node?, at path: JSONPath) -> [(node: Node, path: JSONPath)]? {
        guard let node, !Self.isNull(node) else { return nil }
        guard case .sequence(let s) = node else {
            error(.wrongType, path, node, "expected a list, found \(Self.kind(node))")
            return nil
        }
        return s.enumerated().map { ($0.element, path.appending(index: $0.offset)) }
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
    func missing(_ m: Map, _ key: String) {
        error(.missingKey, m.path(key), m.node, "missing required key")
    }

    // MARK: scalars

    /// The text of a scalar; reports other node kinds.
    func scalarText(_ node: Node, at path: JSONPath, expected: String) -> String? {
        guard case .scalar(let s) = node else {
            error(.wrongType, path, node, "expected \(expected), found \(Self.kind(node))")
            return nil
        }
        return s.string
    }

    func string(_ node: Node, at path: JSONPath, allowEmpty: Bool = false) -> String? {
        guard let s = scalarText(node, at: path, expected: "a string") else { return nil }
        if !allowEmpty && s.isEmpty {
            invalid(path, node, "must not be empty")
            return nil
        }
        return s
    }

    func string(_ m: Map, _ key: String, required: Bool = false) -> String? {
        guard let n = m[key] else {
            if required { missing(m, key) }
            return nil
        }
        return string(n, at: m.path(key))
    }

    func bool(_ m: Map, _ key: String) -> Bool? {
        guard let n = m[key], let s = scalarText(n, at: m.path(key), expected: "true or false") else { return nil }
        switch s {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            invalid(m.path(key), n, "expected true or false")
            return nil
        }
    }

    func integer(_ node: Node, at path: JSONPath, in range: ClosedRange<Int>) -> Int? {
        guard let s = scalarText(node, at: path, expected: "an integer") else { return nil }
        let digits = s.hasPrefix("-") ? s.dropFirst() : Substring(s)
        guard !digits.isEmpty, digits.count <= 18, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let v = Int(s), range.contains(v)
        else {
            invalid(path, node, "must be an integer between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return v
    }

    func integer(_ m: Map, _ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        guard let n = m[key] else {
            if required { missing(m, key) }
            return nil
        }
        return integer(n, at: m.path(key), in: range)
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

        func admits(_ d: CPNPDecimal) -> Bool {
            switch self {
            case .positive: CPNPDecimal(0) < d
            case .nonNegative: !d.isNegative
            case .percent: !d.isNegative && !(CPNPDecimal(100) < d)
            }
        }
    }

    /// An exact decimal (plain or quoted; never through a binary float).
    func decimal(_ node: Node, at path: JSONPath, _ rule: DecimalRule) -> CPNPDecimal? {
        guard let s = scalarText(node, at: path, expected: "a number") else { return nil }
        guard let d = CPNPDecimal(parsing: s), rule.admits(d) else {
            invalid(path, node, rule.message)
            return nil
        }
        return d
    }

    func decimal(_ m: Map, _ key: String, _ rule: DecimalRule, required: Bool = false) -> CPNPDecimal? {
        guard let n = m[key] else {
            if required { missing(m, key) }
            return nil
        }
        return decimal(n, at: m.path(key), rule)
    }

    /// A duration: `500ms`, `30s`, `10m`, `1h`, `2d`, combinations such as `1h30m`, or a plain
    /// number of seconds. Must be positive.
    func duration(_ m: Map, _ key: String) -> Duration? {
        guard let n = m[key], let s = scalarText(n, at: m.path(key), expected: "a duration") else { return nil }
        guard let d = Self.parseDuration(s), d > .zero else {
            invalid(m.path(key), n, "not a positive duration (e.g. 500ms, 30s, 10m, 1h, 1d)")
            return nil
        }
        return d
    }

    static func parseDuration(_ text: String) -> Duration? {
        let u = Array(text.utf8)
        guard !u.isEmpty else { return nil }
        if u.allSatisfy({ (0x30...0x39).contains($0) }) {
            guard u.count <= 12, let v = Int64(text) else { return nil }
            return .seconds(v)
        }
        var total = Duration.zero
        var i = 0
        while i < u.count {
            var n: Int64 = 0
            let start = i
            while i < u.count, (0x30...0x39).contains(u[i]) {
                guard i - start < 12 else { return nil }
                n = n * 10 + Int64(u[i] - 0x30)
                i += 1
            }
            guard i > start else { return nil }
            let unitStart = i
            while i < u.count, !(0x30...0x39).contains(u[i]) { i += 1 }
            switch String(decoding: u[unitStart..<i], as: UTF8.self) {
            case "ms": total += .milliseconds(n)
            case "s": total += .seconds(n)
            case "m": total += .seconds(n * 60)
            case "h": total += .seconds(n * 3600)
            case "d": total += .seconds(n * 86400)
            default: return nil
            }
        }
        return total
    }

    /// A size in bytes: an integer, or with a `KiB`, `MiB` or `GiB` suffix.
    func size(_ m: Map, _ key: String) -> Int? {
        guard let n = m[key], let s = scalarText(n, at: m.path(key), expected: "a size in bytes") else { return nil }
        var digits = Substring(s)
        var factor = 1
        for (suffix, f) in [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)] where s.hasSuffix(suffix) {
            digits = s.dropLast(suffix.count)
            factor = f
        }
        guard !digits.isEmpty, digits.count <= 10, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let v = Int(digits), v > 0
        else {
            invalid(m.path(key), n, "must be a positive size in bytes (e.g. 262144 or 256KiB)")
            return nil
        }
        return v * factor
    }

    /// One of the raw values of `E`.
    func enumeration<E: RawRepresentable<String> & CaseIterable>(_ node: Node, at path: JSONPath, _: E.Type) -> E? {
        guard let s = scalarText(node, at: path, expected: "a string") else { return nil }
        guard let v = E(rawValue: s) else {
            let allowed = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            var message = "must be one of \(allowed)"
            if let sug = Self.suggestion(for: s, among: E.allCases.map(\.rawValue)) { message += " (did you mean \"\(sug)\"?)" }
            invalid(path, node, message)
            return nil
        }
        return v
    }

    func enumeration<E: RawRepresentable<String> & CaseIterable>(_ m: Map, _ key: String, _ t: E.Type) -> E? {
        guard let n = m[key] else { return nil }
        return enumeration(n, at: m.path(key), t)
    }

    /// A list of non-empty strings (a single scalar is reported as the wrong type).
    func strings(_ m: Map, _ key: String) -> [String]? {
        guard let items = list(m[key], at: m.path(key)) else { return nil }
        return items.compactMap { string($0.node, at: $0.path) }
    }

    // MARK: did you mean

    /// The closest of `candidates` to `word` when it is a plausible typo (optimal string
    /// alignment distance ≤ 2 and less than half the word).
    static func suggestion(for word: String, among candidates: [String]) -> String? {
        var best: (String, Int)?
        for c in candidates {
            let d = distance(Array(word.utf8), Array(c.utf8))
            if d <= 2, d * 2 < max(word.utf8.count, 2), best == nil || d < best!.1 { best = (c, d) }
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
