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
            for testCase in try loadCases(file: path) {
                guard seen.insert(testCase.id).inserted else { throw ConformanceError("\(path): case id \(testCase.id) is used twice") }
                cases.append(testCase)
            }
        }
        return cases
    }

    /// The cases of one file.
    public static func loadCases(file path: String) throws -> [ConformanceCase] {
        let root = try parse(path)
        let name = (path as NSString).lastPathComponent
        do {
            guard case .object(let object) = root else { throw ConformanceError("the top level must be an object") }
            guard object["format"] == .string(format) else { throw ConformanceError("format must be \"\(format)\"") }
            guard case .array(let list)? = object["cases"] else { throw ConformanceError("cases must be an array") }
            return try list.enumerated().map { index, caseJSON in
                do { return try decodeCase(caseJSON, file: name) } catch { throw ConformanceError("cases[\(index)]: \(error)") }
            }
        } catch {
            throw ConformanceError("\(path): \(error)")
        }
    }

    /// A target profile file.
    public static func loadTarget(file path: String) throws -> TargetProfile {
        guard case .object(let object) = try parse(path) else { throw ConformanceError("\(path): a target profile must be a JSON object") }
        do { return try TargetProfile(json: object) } catch { throw ConformanceError("\(path): \(error)") }
    }

    static func parse(_ path: String) throws -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConformanceError("cannot read \(path)") }
        do { return try JSONParser.parse(Array(data), limits: .init(maxBytes: 16 << 20)) } catch {
            throw ConformanceError("\(path): \(error)")
        }
    }

    static func decodeCase(_ json: JSONValue, file: String) throws -> ConformanceCase {
        guard case .object(let object) = json else { throw ConformanceError("a case must be an object") }
        guard case .string(let caseID)? = object["id"], !caseID.isEmpty, !caseID.contains(where: \.isWhitespace) else {
            throw ConformanceError("id must be a non-empty string without spaces")
        }
        do {
            guard case .string(let title)? = object["title"] else { throw ConformanceError("title must be a string") }
            let refs = try strings(object["rfc"], "rfc")
            guard !refs.isEmpty else { throw ConformanceError("rfc must name at least one reference") }
            var setup: [(String, JSONValue)] = []
            if let setupValue = object["setup"] {
                guard case .object(let setupObject) = setupValue else { throw ConformanceError("setup must be an object") }
                setup = setupObject.map { ($0.key, $0.value) }
            }
            let steps = try decodeSteps(object["steps"], "steps")
            guard !steps.isEmpty else { throw ConformanceError("steps must not be empty") }
            return ConformanceCase(
                id: caseID, title: title, references: refs, requires: try strings(object["requires"], "requires"), setup: setup,
                steps: steps, cleanup: try decodeSteps(object["cleanup"], "cleanup"), file: file)
        } catch {
            throw ConformanceError("case \(caseID): \(error)")
        }
    }

    static func strings(_ value: JSONValue?, _ what: String) throws -> [String] {
        switch value {
        case nil: return []
        case .string(let string)?: return [string]
        case .array(let array)?:
            return try array.map {
                guard case .string(let string) = $0 else { throw ConformanceError("\(what) must hold strings") }
                return string
            }
        default: throw ConformanceError("\(what) must be a string or an array of strings")
        }
    }

    static func decodeSteps(_ value: JSONValue?, _ what: String) throws -> [ConformanceStep] {
        guard let value else { return [] }
        guard case .array(let array) = value else { throw ConformanceError("\(what) must be an array") }
        return try array.enumerated().map { index, step in
            do { return try decodeStep(step) } catch { throw ConformanceError("\(what)[\(index)]: \(error)") }
        }
    }

    static func milliseconds(_ value: JSONValue, _ what: String) throws -> Int {
        guard case .number(let number) = value, let count = number.int64Value, count >= 0 else {
            throw ConformanceError("\(what) must be a number of milliseconds")
        }
        return Int(count)
    }

    static func decodeStep(_ json: JSONValue) throws -> ConformanceStep {
        guard case .object(let object) = json else { throw ConformanceError("a step must be an object") }
        let actions = object.keys.filter { $0 != "as" && $0 != "comment" }
        guard actions.count == 1, let action = actions.first, let value = object[action] else {
            throw ConformanceError(
                "a step must have exactly one action (send, send-raw, retransmit, expect, expect-silence, new-session, restart, approve, wait)")
        }
        switch action {
        case "send":
            guard case .object = value else { throw ConformanceError("send must be a message template (an object)") }
            var name: String?
            if let asValue = object["as"] {
                guard case .string(let asName) = asValue else { throw ConformanceError("as must be a string") }
                name = asName
            }
            return .send(template: value, name: name)
        case "send-raw":
            guard case .string(let text) = value else { throw ConformanceError("send-raw must be a string") }
            return .sendRaw(text)
        case "retransmit":
            switch value {
            case .bool(true): return .retransmit(name: nil)
            case .string(let sentName): return .retransmit(name: sentName)
            default: throw ConformanceError("retransmit must be true or the name of a sent message")
            }
        case "expect":
            return .expect(try decodeExpectation(value))
        case "expect-silence":
            switch value {
            case .bool(true), .null: return .expectSilence(milliseconds: nil, ignoreRepeats: false)
            case .number: return .expectSilence(milliseconds: try milliseconds(value, "expect-silence"), ignoreRepeats: false)
            case .object(let options):
                return .expectSilence(
                    milliseconds: try options["ms"].map { try milliseconds($0, "expect-silence.ms") },
                    ignoreRepeats: options["ignore-repeats"] == .bool(true))
            default: throw ConformanceError("expect-silence must be true, a number of milliseconds or an object")
            }
        case "new-session":
            guard value == .bool(true) else { throw ConformanceError("new-session must be true") }
            return .newSession
        case "restart":
            guard value == .bool(true) else { throw ConformanceError("restart must be true") }
            return .restart
        case "approve":
            guard case .string(let template) = value else { throw ConformanceError("approve must be a string (the provider order id)") }
            return .approve(template)
        case "wait":
            return .wait(milliseconds: try milliseconds(value, "wait"))
        default:
            throw ConformanceError("unknown step \(action)")
        }
    }

    static func decodeExpectation(_ json: JSONValue) throws -> Expectation {
        guard case .object(let object) = json else { throw ConformanceError("expect must be an object") }
        let known: Set<String> = ["method", "fields", "save-as", "repeat-of", "optional", "within-ms", "comment"]
        if let unknownKey = object.keys.first(where: { !known.contains($0) }) { throw ConformanceError("expect: unknown key \(unknownKey)") }
        var method: MethodCode?
        switch object["method"] {
        case nil: break
        case .string(let methodName)?:
            guard let named = MethodCode.allCases.first(where: { $0.name == methodName.uppercased() }) else {
                throw ConformanceError("expect: unknown method \(methodName)")
            }
            method = named
        case .number(let number)?:
            guard let code = number.int64Value, let coded = MethodCode(rawValue: Int(code)) else {
                throw ConformanceError("expect: unknown method \(number)")
            }
            method = coded
        default:
            throw ConformanceError("expect: method must be a name or a code")
        }
        var fields: [Expectation.Field] = []
        if let fieldsValue = object["fields"] {
            guard case .object(let fieldsObject) = fieldsValue else { throw ConformanceError("expect: fields must be an object") }
            fields = fieldsObject.map { Expectation.Field(path: $0.key, constraint: $0.value) }
        }
        func name(_ key: String) throws -> String? {
            guard let value = object[key] else { return nil }
            guard case .string(let string) = value else { throw ConformanceError("expect: \(key) must be a string") }
            return string
        }
        return Expectation(
            method: method, fields: fields, saveAs: try name("save-as"), repeatOf: try name("repeat-of"),
            optional: object["optional"] == .bool(true), withinMilliseconds: try object["within-ms"].map { try milliseconds($0, "within-ms") })
    }
}
