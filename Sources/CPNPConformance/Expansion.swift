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
        case .string(let s):
            if s.hasPrefix("{{"), s.hasSuffix("}}"), s.count > 4, !s.dropFirst(2).dropLast(2).contains("{{") {
                return try resolve(String(s.dropFirst(2).dropLast(2)).trimmingCharacters(in: .whitespaces))
            }
            return .string(try expandText(s))
        case .array(let a):
            var out: [JSONValue] = []
            for v in a { out.append(try expand(v)) }
            return .array(out)
        case .object(let o):
            var out = JSONObject()
            for (k, v) in o { out[k] = try expand(v) }
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
            case .string(let s): out += s
            case .number(let n): out += n.description
            case let v: out += JSONSerializer.serializeString(v)
            }
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    /// The value of one placeholder name.
    public mutating func resolve(_ name: String) throws(ConformanceError) -> JSONValue {
        if let v = values[name] { return v }
        // now, now+30s, now-1h: an RFC 3339 time relative to the current time.
        if name == "now" || name.hasPrefix("now+") || name.hasPrefix("now-") {
            var date = Date()
            if name != "now" {
                guard let offset = Self.duration(String(name.dropFirst(4))) else { throw ConformanceError("bad time offset in {{\(name)}}") }
                date += name.hasPrefix("now+") ? offset : -offset
            }
            let t = CPNPTimestamp(millisecondsSinceEpoch: Int64((date.timeIntervalSince1970 * 1_000).rounded(.down)) / 1_000 * 1_000)
            return .string(t.rfc3339)
        }
        if name.hasPrefix("target.") {
            guard let v = target.value(at: String(name.dropFirst(7))) else { throw ConformanceError("the target profile has no \(name.dropFirst(7))") }
            return v
        }
        // NAME+N / NAME-N: a number variable plus or minus N.
        if let r = name.range(of: #"[+-][0-9]+$"#, options: .regularExpression) {
            let base = String(name[..<r.lowerBound])
            if !base.isEmpty, let n = Int64(name[r].dropFirst()), case .number(let v)? = try? resolve(base) {
                return .number(name[r].hasPrefix("+") ? v + CPNPDecimal(n) : v - CPNPDecimal(n))
            }
        }
        // A dotted reference into a saved message or a setup value: offer.nonce, offer.cpd.
        if let dot = name.firstIndex(of: "."), let root = values[String(name[..<dot])] {
            guard let v = root.value(atDottedPath: String(name[name.index(after: dot)...])) else {
                throw ConformanceError("{{\(name)}}: \(name[..<dot]) has no \(name[name.index(after: dot)...])")
            }
            return v
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
            if let n = Double(text.dropLast(suffix.count)), n >= 0 { return n * scale }
        }
        return nil
    }
}
