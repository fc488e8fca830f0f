// Reads case files and target profiles (conformance/README.md, "Format").
import CPNPCore
import Foundation

/// Reads conformance vectors from JSON files.
public enum ConformanceLoader {
    /// The format tag every case file carries.
    public static let format = "cpnp-conformance/1"

    /// Every case of every `*.json` file in `directory`, files in name order, cases in file order.
    /// Throws on the first malformed file, naming it; duplicate case ids are an error.
    public static func loadCases(directory: String) throws -> [ConformanceCase] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
        guard !names.isEmpty else { throw ConformanceError("no *.json case files in \(directory)") }
        var cases: [ConformanceCase] = []
        var seen = Set<String>()
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            for c in try loadCases(file: path) {
                guard seen.insert(c.id).inserted else { throw ConformanceError("\(path): case id \(c.id) is used twice") }
                cases.append(c)
            }
        }
        return cases
    }

    /// The cases of one file.
    public static func loadCases(file path: String) throws -> [ConformanceCase] {
        let root = try parse(path)
        let name = (path as NSString).lastPathComponent
        do {
            guard case .object(let o) = root else { throw ConformanceError("the top level must be an object") }
            guard o["format"] == .string(format) else { throw ConformanceError("format must be \"\(format)\"") }
            guard case .array(let list)? = o["cases"] else { throw ConformanceError("cases must be an array") }
            return try list.enumerated().map { i, v in
                do { return try decodeCase(v, file: name) } catch { throw ConformanceError("cases[\(i)]: \(error)") }
            }
        } catch {
            throw ConformanceError("\(path): \(error)")
        }
    }

    /// A target profile file.
    public static func loadTarget(file path: String) throws -> TargetProfile {
        guard case .object(let o) = try parse(path) else { throw ConformanceError("\(path): a target profile must be a JSON object") }
        do { return try TargetProfile(json: o) } catch { throw ConformanceError("\(path): \(error)") }
    }

    static func parse(_ path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConformanceError("cannot read \(path)") }
        do { return try JSONParser.parse(Array(data), limits: .init(maxBytes: 16 << 20)) } catch {
            throw ConformanceError("\(path): \(error)")
        }
    }

    static func decodeCase(_ v: JSONValue, file: String) throws -> ConformanceCase {
        guard case .object(let o) = v else { throw ConformanceError("a case must be an object") }
        guard case .string(let id)? = o["id"], !id.isEmpty, !id.contains(where: \.isWhitespace) else {
            throw ConformanceError("id must be a non-empty string without spaces")
        }
        do {
            guard case .string(let title)? = o["title"] else { throw ConformanceError("title must be a string") }
            let refs = try strings(o["rfc"], "rfc")
            guard !refs.isEmpty else { throw ConformanceError("rfc must name at least one reference") }
            var setup: [(String, JSONValue)] = []
            if let s = o["setup"] {
                guard case .object(let so) = s else { throw ConformanceError("setup must be an object") }
                setup = so.map { ($0.key, $0.value) }
            }
            let steps = try decodeSteps(o["steps"], "steps")
            guard !steps.isEmpty else { throw ConformanceError("steps must not be empty") }
            return ConformanceCase(
                id: id, title: title, references: refs, requires: try strings(o["requires"], "requires"), setup: setup,
                steps: steps, cleanup: try decodeSteps(o["cleanup"], "cleanup"), file: file)
        } catch {
            throw ConformanceError("case \(id): \(error)")
        }
    }

    static func strings(_ v: JSONValue?, _ what: String) throws -> [String] {
        switch v {
        case nil: return []
        case .string(let s)?: return [s]
        case .array(let a)?:
            return try a.map {
                guard case .string(let s) = $0 else { throw ConformanceError("\(what) must hold strings") }
                return s
            }
        default: throw ConformanceError("\(what) must be a string or an array of strings")
        }
    }

    static func decodeSteps(_ v: JSONValue?, _ what: String) throws -> [ConformanceStep] {
        guard let v else { return [] }
        guard case .array(let a) = v else { throw ConformanceError("\(what) must be an array") }
        return try a.enumerated().map { i, s in
            do { return try decodeStep(s) } catch { throw ConformanceError("\(what)[\(i)]: \(error)") }
        }
    }

    static func milliseconds(_ v: JSONValue, _ what: String) throws -> Int {
        guard case .number(let n) = v, let i = n.int64Value, i >= 0 else { throw ConformanceError("\(what) must be a number of milliseconds") }
        return Int(i)
    }

    static func decodeStep(_ v: JSONValue) throws -> ConformanceStep {
        guard case .object(let o) = v else { throw ConformanceError("a step must be an object") }
        let actions = o.keys.filter { $0 != "as" && $0 != "comment" }
        guard actions.count == 1, let action = actions.first, let value = o[action] else {
            throw ConformanceError("a step must have exactly one action (send, send-raw, retransmit, expect, expect-silence, new-session, restart, approve, wait)")
        }
        switch action {
        case "send":
            guard case .object = value else { throw ConformanceError("send must be a message template (an object)") }
            var name: String?
            if let a = o["as"] {
                guard case .string(let s) = a else { throw ConformanceError("as must be a string") }
                name = s
            }
            return .send(template: value, name: name)
        case "send-raw":
            guard case .string(let s) = value else { throw ConformanceError("send-raw must be a string") }
            return .sendRaw(s)
        case "retransmit":
            switch value {
            case .bool(true): return .retransmit(name: nil)
            case .string(let s): return .retransmit(name: s)
            default: throw ConformanceError("retransmit must be true or the name of a sent message")
            }
        case "expect":
            return .expect(try decodeExpectation(value))
        case "expect-silence":
            switch value {
            case .bool(true), .null: return .expectSilence(milliseconds: nil, ignoreRepeats: false)
            case .number: return .expectSilence(milliseconds: try milliseconds(value, "expect-silence"), ignoreRepeats: false)
            case .object(let so):
                return .expectSilence(
                    milliseconds: try so["ms"].map { try milliseconds($0, "expect-silence.ms") },
                    ignoreRepeats: so["ignore-repeats"] == .bool(true))
            default: throw ConformanceError("expect-silence must be true, a number of milliseconds or an object")
            }
        case "new-session":
            guard value == .bool(true) else { throw ConformanceError("new-session must be true") }
            return .newSession
        case "restart":
            guard value == .bool(true) else { throw ConformanceError("restart must be true") }
            return .restart
        case "approve":
            guard case .string(let s) = value else { throw ConformanceError("approve must be a string (the provider order id)") }
            return .approve(s)
        case "wait":
            return .wait(milliseconds: try milliseconds(value, "wait"))
        default:
            throw ConformanceError("unknown step \(action)")
        }
    }

    static func decodeExpectation(_ v: JSONValue) throws -> Expectation {
        guard case .object(let o) = v else { throw ConformanceError("expect must be an object") }
        let known: Set<String> = ["method", "fields", "save-as", "repeat-of", "optional", "within-ms", "comment"]
        if let k = o.keys.first(where: { !known.contains($0) }) { throw ConformanceError("expect: unknown key \(k)") }
        var method: MethodCode?
        switch o["method"] {
        case nil: break
        case .string(let s)?:
            guard let m = MethodCode.allCases.first(where: { $0.name == s.uppercased() }) else { throw ConformanceError("expect: unknown method \(s)") }
            method = m
        case .number(let n)?:
            guard let i = n.int64Value, let m = MethodCode(rawValue: Int(i)) else { throw ConformanceError("expect: unknown method \(n)") }
            method = m
        default:
            throw ConformanceError("expect: method must be a name or a code")
        }
        var fields: [Expectation.Field] = []
        if let f = o["fields"] {
            guard case .object(let fo) = f else { throw ConformanceError("expect: fields must be an object") }
            fields = fo.map { Expectation.Field(path: $0.key, constraint: $0.value) }
        }
        func name(_ key: String) throws -> String? {
            guard let v = o[key] else { return nil }
            guard case .string(let s) = v else { throw ConformanceError("expect: \(key) must be a string") }
            return s
        }
        return Expectation(
            method: method, fields: fields, saveAs: try name("save-as"), repeatOf: try name("repeat-of"),
            optional: o["optional"] == .bool(true), withinMilliseconds: try o["within-ms"].map { try milliseconds($0, "within-ms") })
    }
}
