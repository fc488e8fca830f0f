// The conformance vectors' model: cases, steps, expectations and target profiles, as documented in
// conformance/README.md. Everything is plain JSON read with the core's parser, so that the files
// stay implementation-neutral.
public import CPNPCore
import Foundation

/// One conformance case: a message flow played against a server (conformance/README.md, "Cases").
public struct ConformanceCase: Sendable, Hashable {
    /// Unique, stable identifier, e.g. `fig6-negotiation-with-processing`.
    public var id: String
    /// One line saying what the case shows.
    public var title: String
    /// Where the RFC requires the behaviour: `RFC 8921 Figure 6`, `RFC 8921 Table 6 ACCEPT` …
    public var references: [String]
    /// Hooks or target-profile entries the case needs: `restart`, `approve`, `target.KEY`.
    public var requires: [String]
    /// Variables defined before the first step (values may hold placeholders).
    public var setup: [(name: String, value: JSONValue)]
    /// The flow.
    public var steps: [ConformanceStep]
    /// Steps run after the flow whatever its outcome, to release what it created; their failures
    /// are ignored.
    public var cleanup: [ConformanceStep]
    /// The file the case came from.
    public var file: String

    public static func == (a: ConformanceCase, b: ConformanceCase) -> Bool { a.id == b.id && a.file == b.file }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// One step of a case.
public enum ConformanceStep: Sendable, Hashable {
    /// Sends a message built from a template (placeholders expanded); `name` keeps it for later
    /// `retransmit` steps and `{{name.key}}` references.
    case send(template: JSONValue, name: String?)
    /// Sends these bytes as they are (malformed input).
    case sendRaw(String)
    /// Sends again the exact datagram of the last `send` (or of the one called `name`).
    case retransmit(name: String?)
    /// Waits for the next message and checks it.
    case expect(Expectation)
    /// Nothing may arrive for this long (silent discard).
    case expectSilence(milliseconds: Int?, ignoreRepeats: Bool)
    /// A new DTLS association from a new local port: a new transport 4-tuple (RFC 8921 §8.3).
    case newSession
    /// Restarts the server (the runner's restart hook), then renews the DTLS association from the
    /// same local port.
    case restart
    /// Approves a held order (the runner's approve hook) given its provider order id (a template).
    case approve(String)
    /// Waits (a server timer).
    case wait(milliseconds: Int)
}

/// What an `expect` step requires of the next message.
public struct Expectation: Sendable, Hashable {
    /// METHOD_CODE; nil accepts any.
    public var method: MethodCode?
    /// Constraints on fields, by dotted path (`status-code`, `cpd.components`); values are
    /// literal JSON (compared as JSON values) or operator objects (`{"$present": false}` …).
    public var fields: [Field]
    /// Keeps the received message under this name.
    public var saveAs: String?
    /// The message must equal the earlier received message saved under this name (a cached
    /// answer resent); otherwise such repeats are skipped as spontaneous retransmissions.
    public var repeatOf: String?
    /// When the next message does not match, the step is skipped and the message is kept for the
    /// following step.
    public var optional: Bool
    /// How long to wait; the target profile's `answer-ms` when nil.
    public var withinMilliseconds: Int?

    public struct Field: Sendable, Hashable {
        public var path: String
        public var constraint: JSONValue
    }
}

/// What the runner must know about the server under test (conformance/README.md, "Target
/// profiles"): CPDs it serves or refuses, timing, rate limits.
public struct TargetProfile: Sendable {
    /// The profile as written; `{{target.a.b}}` reads from it.
    public var json: JSONObject
    /// How long `expect-silence` waits by default.
    public var silenceMilliseconds: Int
    /// How long `expect` waits by default.
    public var answerMilliseconds: Int
    /// The server's limit on new QUOTATIONs per client and minute; the runner paces itself.
    public var quotationsPerMinute: Int?
    /// The server's limit on FAILs per client and minute; the runner paces itself.
    public var failsPerMinute: Int?

    public init(json: JSONObject) throws(ConformanceError) {
        self.json = json
        func int(_ key: String) throws(ConformanceError) -> Int? {
            guard let value = json[key], value != .null else { return nil }
            guard case .number(let number) = value, let integer = number.int64Value else {
                throw ConformanceError("target profile: \(key) must be an integer")
            }
            return Int(integer)
        }
        silenceMilliseconds = try int("silence-ms") ?? 1_000
        answerMilliseconds = try int("answer-ms") ?? 10_000
        quotationsPerMinute = try int("quotations-per-minute")
        failsPerMinute = try int("fails-per-minute")
    }

    /// The value at a dotted path (`cpds.served`), if present and not null.
    public func value(at path: String) -> JSONValue? {
        let value = JSONValue.object(json).value(atDottedPath: path)
        return value == .null ? nil : value
    }
}

/// A problem in a case file, a target profile or a hook.
public struct ConformanceError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// The transport failed (no DTLS association): the server cannot be reached at all.
    public var isTransportFailure = false
    public init(_ description: String, isTransportFailure: Bool = false) {
        self.description = description
        self.isTransportFailure = isTransportFailure
    }
}

extension JSONValue {
    /// Follows a dotted path of object keys and array indexes (`cpd.components.0`).
    func value(atDottedPath path: String) -> JSONValue? {
        var current = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false).map(String.init) where !part.isEmpty {
            switch current {
            case .object(let object):
                guard let next = object[part] else { return nil }
                current = next
            case .array(let array):
                guard let index = Int(part), array.indices.contains(index) else { return nil }
                current = array[index]
            default:
                return nil
            }
        }
        return current
    }
}
