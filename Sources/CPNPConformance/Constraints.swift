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
        if case .number(let number)? = message.value(atDottedPath: "method"), let rawMethod = number.int64Value {
            name = MethodCode(rawValue: Int(rawMethod))?.name ?? "method \(rawMethod)"
        }
        if case .number(let statusCode)? = message.value(atDottedPath: "status-code") { name += " \(statusCode)" }
        if case .string(let diagnostic)? = message.value(atDottedPath: "diagnostic") { name += " \"\(diagnostic)\"" }
        return name
    }

    /// Why `value` (nil: absent) fails `constraint`, or nil when it holds.
    static func check(_ value: JSONValue?, _ constraint: JSONValue) -> String? {
        if case .object(let object) = constraint, !object.isEmpty, object.keys.allSatisfy({ $0.hasPrefix("$") }) {
            for (operation, arg) in object {
                if let why = apply(operation, arg, to: value) { return why }
            }
            return nil
        }
        guard let value else { return "missing, expected \(text(constraint))" }
        return value == constraint ? nil : "expected \(text(constraint)), got \(text(value))"
    }

    static func apply(_ operation: String, _ arg: JSONValue, to value: JSONValue?) -> String? {
        switch operation {
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
            guard case .number(let bound) = arg else { return "\(operation) needs a number" }
            guard case .number(let number)? = value else { return "expected a number \(operation) \(bound), got \(value.map(text) ?? "nothing")" }
            let holds =
                switch operation {
                case "$gt": bound < number
                case "$ge": !(number < bound)
                case "$lt": number < bound
                default: !(bound < number)
                }
            return holds ? nil : "expected \(operation.dropFirst()) \(bound), got \(number)"
        case "$type":
            guard case .string(let expectedType) = arg else { return "$type needs a string" }
            guard let value else { return "missing, expected a \(expectedType)" }
            return value.typeName == expectedType ? nil : "expected a \(expectedType), got \(value.typeName)"
        case "$matches":
            guard case .string(let pattern) = arg else { return "$matches needs a string" }
            guard case .string(let string)? = value else { return "expected a string matching \(pattern)" }
            return string.range(of: pattern, options: .regularExpression) != nil ? nil : "\"\(string)\" does not match \(pattern)"
        case "$after-now", "$before-now":
            guard case .string(let string)? = value, let time = CPNPTimestamp(rfc3339: string) else { return "expected an RFC 3339 time" }
            let now = CPNPTimestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1_000).rounded(.down)))
            let after = now < time
            return (operation == "$after-now") == after ? nil : "\(string) is not \(operation == "$after-now" ? "in the future" : "in the past")"
        default:
            return "unknown operator \(operation)"
        }
    }

    static func text(_ value: JSONValue) -> String {
        let serialized = JSONSerializer.serializeString(value)
        return serialized.count > 120 ? String(serialized.prefix(117)) + "…" : serialized
    }
}
