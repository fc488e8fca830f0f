// Field constraints of `expect` steps (conformance/README.md, "Expectations").
import CPNPCore
import Foundation

extension Expectation {
    /// Why `message` (already expanded constraints in `fields`) does not meet the expectation, or nil.
    static func mismatch(_ message: JSONValue, method: MethodCode?, fields: [(String, JSONValue)]) -> String? {
        if let method {
            let got = message.value(atDottedPath: "method")
            guard got == .number(CPNPDecimal(Int64(method.rawValue))) else { return "expected \(method.name), got \(describe(message))" }
        }
        for (path, constraint) in fields {
            if let why = check(message.value(atDottedPath: path), constraint) { return "\(path): \(why) (in \(describe(message)))" }
        }
        return nil
    }

    /// `FAIL 6 "no network presence"`, `OFFER seq 1234` …: a short description of a received message.
    static func describe(_ message: JSONValue) -> String {
        var name = "a message without a method"
        if case .number(let n)? = message.value(atDottedPath: "method"), let i = n.int64Value {
            name = MethodCode(rawValue: Int(i))?.name ?? "method \(i)"
        }
        if case .number(let s)? = message.value(atDottedPath: "status-code") { name += " \(s)" }
        if case .string(let d)? = message.value(atDottedPath: "diagnostic") { name += " \"\(d)\"" }
        return name
    }

    /// Why `value` (nil: absent) fails `constraint`, or nil when it holds.
    static func check(_ value: JSONValue?, _ constraint: JSONValue) -> String? {
        if case .object(let o) = constraint, !o.isEmpty, o.keys.allSatisfy({ $0.hasPrefix("$") }) {
            for (op, arg) in o {
                if let why = apply(op, arg, to: value) { return why }
            }
            return nil
        }
        guard let value else { return "missing, expected \(text(constraint))" }
        return value == constraint ? nil : "expected \(text(constraint)), got \(text(value))"
    }

    static func apply(_ op: String, _ arg: JSONValue, to value: JSONValue?) -> String? {
        switch op {
        case "$present":
            let want = arg == .bool(true)
            if want && value == nil { return "missing" }
            if !want, let value { return "must be absent, got \(text(value))" }
            return nil
        case "$not":
            guard let value else { return nil }
            return value == arg ? "must differ from \(text(arg))" : nil
        case "$one-of":
            guard case .array(let options) = arg else { return "$one-of needs an array" }
            guard let value else { return "missing, expected one of \(text(arg))" }
            return options.contains(value) ? nil : "expected one of \(text(arg)), got \(text(value))"
        case "$gt", "$ge", "$lt", "$le":
            guard case .number(let bound) = arg else { return "\(op) needs a number" }
            guard case .number(let n)? = value else { return "expected a number \(op) \(bound), got \(value.map(text) ?? "nothing")" }
            let ok = switch op {
            case "$gt": bound < n
            case "$ge": !(n < bound)
            case "$lt": n < bound
            default: !(bound < n)
            }
            return ok ? nil : "expected \(op.dropFirst()) \(bound), got \(n)"
        case "$type":
            guard case .string(let t) = arg else { return "$type needs a string" }
            guard let value else { return "missing, expected a \(t)" }
            return value.typeName == t ? nil : "expected a \(t), got \(value.typeName)"
        case "$matches":
            guard case .string(let pattern) = arg else { return "$matches needs a string" }
            guard case .string(let s)? = value else { return "expected a string matching \(pattern)" }
            return s.range(of: pattern, options: .regularExpression) != nil ? nil : "\"\(s)\" does not match \(pattern)"
        case "$after-now", "$before-now":
            guard case .string(let s)? = value, let t = CPNPTimestamp(rfc3339: s) else { return "expected an RFC 3339 time" }
            let now = CPNPTimestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
            let after = now < t
            return (op == "$after-now") == after ? nil : "\(s) is not \(op == "$after-now" ? "in the future" : "in the past")"
        default:
            return "unknown operator \(op)"
        }
    }

    static func text(_ v: JSONValue) -> String {
        let s = JSONSerializer.serializeString(v)
        return s.count > 120 ? String(s.prefix(117)) + "…" : s
    }
}
