// Placeholder expansion (conformance/README.md, "Placeholders"): `{{name}}` in a template is
// replaced by a generated value, a target-profile value, or a value captured from an earlier
// message.
public import CPNPCore
import Foundation

/// The variables of one case run.
public struct ConformanceVariables: Sendable {
    /// Named values: setup parameters, saved messages (sent and received), captured identifiers.
    public var values: [String: JSONValue] = [:]
    let target: TargetProfile
    let caseID: String

    public init(target: TargetProfile, caseID: String) {
        self.target = target
        self.caseID = caseID
    }

    /// Expands every placeholder in `template`. A string that is exactly one placeholder becomes
    /// the placeholder's JSON value (a number, an object …); elsewhere placeholders are replaced
    /// by their text.
    public mutating func expand(_ template: JSONValue) throws(ConformanceError) -> JSONValue {
        switch template {
        case .string(let string):
            if string.hasPrefix("{{"), string.hasSuffix("}}"), string.count > 4, !string.dropFirst(2).dropLast(2).contains("{{") {
                return try resolve(String(string.dropFirst(2).dropLast(2)).trimmingCharacters(in: .whitespaces))
            }
            return .string(try expandText(string))
        case .array(let elements):
            var out: [JSONValue] = []
            for element in elements { out.append(try expand(element)) }
            return .array(out)
        case .object(let object):
            var out = JSONObject()
            for (key, value) in object { out[key] = try expand(value) }
            return .object(out)
        default:
            return template
        }
    }

    /// Replaces each `{{name}}` in `text` by the text of its value.
    public mutating func expandText(_ text: String) throws(ConformanceError) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else { throw ConformanceError("unterminated placeholder in \"\(text)\"") }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            switch try resolve(name) {
            case .string(let string): out += string
            case .number(let number): out += number.description
            case let other: out += JSONSerializer.serializeString(other)
            }
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    /// The value of one placeholder name.
    public mutating func resolve(_ name: String) throws(ConformanceError) -> JSONValue {
        if let value = values[name] { return value }
        // now, now+30s, now-1h: an RFC 3339 time relative to the current time.
        if name == "now" || name.hasPrefix("now+") || name.hasPrefix("now-") {
            var date = Date()
            if name != "now" {
                guard let offset = Self.duration(String(name.dropFirst(4))) else { throw ConformanceError("bad time offset in {{\(name)}}") }
                date += name.hasPrefix("now+") ? offset : -offset
            }
            let timestamp = CPNPTimestamp(millisecondsSinceEpoch: Int64((date.timeIntervalSince1970 * 1_000).rounded(.down)) / 1_000 * 1_000)
            return .string(timestamp.rfc3339)
        }
        if name.hasPrefix("target.") {
            guard let value = target.value(at: String(name.dropFirst(7))) else {
                throw ConformanceError("the target profile has no \(name.dropFirst(7))")
            }
            return value
        }
        // NAME+N / NAME-N: a number variable plus or minus N.
        if let offsetRange = name.range(of: #"[+-][0-9]+$"#, options: .regularExpression) {
            let base = String(name[..<offsetRange.lowerBound])
            if !base.isEmpty, let offset = Int64(name[offsetRange].dropFirst()), case .number(let baseValue)? = try? resolve(base) {
                return .number(name[offsetRange].hasPrefix("+") ? baseValue + CPNPDecimal(offset) : baseValue - CPNPDecimal(offset))
            }
        }
        // A dotted reference into a saved message or a setup value: offer.nonce, offer.cpd.
        if let dot = name.firstIndex(of: "."), let root = values[String(name[..<dot])] {
            guard let value = root.value(atDottedPath: String(name[name.index(after: dot)...])) else {
                throw ConformanceError("{{\(name)}}: \(name[..<dot]) has no \(name[name.index(after: dot)...])")
            }
            return value
        }
        // Generated on first use, then fixed for the rest of the case.
        var rng = SystemRandomNumberGenerator()
        let generated: JSONValue
        if name.hasPrefix("seq") {
            generated = .number(CPNPDecimal(Int64(UInt32.random(in: 0...UInt32(Int32.max), using: &rng))))
        } else if name.hasPrefix("transaction-id") || name.hasPrefix("nonce") {
            generated = .string(Self.hex(16, using: &rng))
        } else if name.hasPrefix("customer-order-id") {
            generated = .string("conf-\(caseID.prefix(80))-\(Self.hex(4, using: &rng))")
        } else if name.hasPrefix("provider-order-id") {
            throw ConformanceError("{{\(name)}} is not known yet (no message carried a provider-order-id)")
        } else {
            throw ConformanceError("unknown placeholder {{\(name)}}")
        }
        values[name] = generated
        return generated
    }

    static func hex(_ bytes: Int, using rng: inout some RandomNumberGenerator) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    /// `500ms`, `30s`, `10m`, `2h`, `3d`.
    static func duration(_ text: String) -> TimeInterval? {
        for (suffix, scale) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3_600.0), ("d", 86_400.0)] where text.hasSuffix(suffix) {
            if let amount = Double(text.dropLast(suffix.count)), amount >= 0 { return amount * scale }
        }
        return nil
    }
}
