import Testing
@testable import CPNPCore

/// Test helpers for the CPD model (kept in a CPD* file; prefixed to avoid clashes).
enum CPDTestJSON {
    static func parse(_ text: String) -> JSONValue {
        do { return try JSONParser.parse(Array(text.utf8)) } catch { fatalError("bad test JSON \(text): \(error)") }
    }

    static func text(_ value: JSONValue) -> String { JSONSerializer.serializeString(value) }

    static func path(_ text: String) -> JSONPath {
        var comps: [JSONPath.Component] = []
        for segment in text.split(separator: ".") {
            var rest = Substring(segment)
            if let b = rest.firstIndex(of: "[") {
                if b > rest.startIndex { comps.append(.key(String(rest[..<b]))) }
                rest = rest[b...]
                while let open = rest.firstIndex(of: "["), let close = rest.firstIndex(of: "]") {
                    comps.append(.index(Int(rest[rest.index(after: open)..<close])!))
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                comps.append(.key(String(rest)))
            }
        }
        return JSONPath(comps)
    }
}

extension JSONValue {
    /// A copy with the value at `path` replaced (nil removes it; index == count appends).
    func cpdSetting(_ path: String, to value: JSONValue?) -> JSONValue {
        cpdSetting(CPDTestJSON.path(path).components[...], to: value)
    }

    private func cpdSetting(_ comps: ArraySlice<JSONPath.Component>, to value: JSONValue?) -> JSONValue {
        guard let first = comps.first else { return value! }
        switch (self, first) {
        case (.object(var o), .key(let k)):
            o[k] = comps.count == 1 ? value : o[k]!.cpdSetting(comps.dropFirst(), to: value)
            return .object(o)
        case (.array(var a), .index(let i)):
            if comps.count == 1 {
                if let value {
                    if i == a.count { a.append(value) } else { a[i] = value }
                } else {
                    a.remove(at: i)
                }
            } else {
                a[i] = a[i].cpdSetting(comps.dropFirst(), to: value)
            }
            return .array(a)
        default:
            fatalError("cannot follow \(first) in \(self.typeName)")
        }
    }
}

@Suite("CPD Negotiable")
struct CPDNegotiableTests {
    typealias NegotiableDecimal = Negotiable<CPNPDecimal>

    static func negotiable(_ text: String) -> NegotiableDecimal {
        do { return try NegotiableDecimal(json: CPDTestJSON.parse(text), at: .root) } catch { fatalError("\(text): \(error)") }
    }

    /// Every consequence listed in docs/protocol.md §4.3, plus edge cases.
    static let table: [(requested: String, offered: String, satisfied: Bool)] = [
        // R = "any" → every O satisfies.
        (#""any""#, "5", true),
        (#""any""#, #""any""#, true),
        (#""any""#, #"{"min":1}"#, true),
        (#""any""#, #"{"one-of":[1,2]}"#, true),
        // R = range, O fixed: inclusive bounds; O range: sub-interval; O "any": never.
        (#"{"min":80,"max":100}"#, "80", true),
        (#"{"min":80,"max":100}"#, "100", true),
        (#"{"min":80,"max":100}"#, "90.5", true),
        (#"{"min":80,"max":100}"#, "79.9", false),
        (#"{"min":80,"max":100}"#, "100.0000001", false),
        (#"{"min":80,"max":100}"#, #"{"min":85,"max":95}"#, true),
        (#"{"min":80,"max":100}"#, #"{"min":80,"max":100}"#, true),
        (#"{"min":80,"max":100}"#, #"{"min":70,"max":95}"#, false),
        (#"{"min":80,"max":100}"#, #"{"min":85}"#, false),
        (#"{"min":80,"max":100}"#, #""any""#, false),
        (#"{"min":80,"max":100}"#, #"{"one-of":[80,90,100]}"#, true),
        (#"{"min":80,"max":100}"#, #"{"one-of":[80,101]}"#, false),
        // Missing bound not checked.
        (#"{"min":80}"#, "1000000", true),
        (#"{"min":80}"#, "79", false),
        (#"{"min":80}"#, #"{"min":90}"#, true),
        (#"{"min":80}"#, #"{"max":90}"#, false),
        (#"{"max":50}"#, "50", true),
        (#"{"max":50}"#, "0", true),
        (#"{"max":50}"#, "50.0001", false),
        (#"{"max":0.1}"#, "0.05", true),
        (#"{"max":0.1}"#, "0.10", true),
        // R fixed → O fixed and equal (exact decimal equality).
        ("100", "100", true),
        ("100", "100.0", true),
        ("100", "1e2", true),
        ("100", "99", false),
        ("100", #"{"min":100,"max":100}"#, true),
        ("100", #"{"min":99,"max":100}"#, false),
        ("100", #"{"one-of":[100]}"#, true),
        ("100", #"{"one-of":[100,101]}"#, false),
        ("100", #""any""#, false),
        ("0.3", "0.30000000000000004", false),
        // R one-of L → O fixed ∈ L or O one-of ⊆ L.
        (#"{"one-of":[10,20]}"#, "10", true),
        (#"{"one-of":[10,20]}"#, "15", false),
        (#"{"one-of":[10,20]}"#, #"{"one-of":[20,10]}"#, true),
        (#"{"one-of":[10,20]}"#, #"{"one-of":[10,30]}"#, false),
        (#"{"one-of":[10,20]}"#, #"{"min":10,"max":10}"#, true),
        (#"{"one-of":[10,20]}"#, #"{"min":10,"max":20}"#, false),
        (#"{"one-of":[10,20]}"#, #""any""#, false),
    ]

    @Test func satisfactionTable() {
        for row in Self.table {
            let r = Self.negotiable(row.requested)
            let o = Self.negotiable(row.offered)
            #expect(o.satisfies(r) == row.satisfied, "R \(row.requested) O \(row.offered)")
        }
    }

    @Test func enumerationsAndStrings() {
        let explicit = Negotiable<CPDInvocationType>.fixed(.explicit)
        #expect(explicit.satisfies(.fixed(.explicit)))
        #expect(!Negotiable<CPDInvocationType>.fixed(.implicit).satisfies(explicit))
        #expect(Negotiable<CPDInvocationType>.fixed(.implicit).satisfies(.oneOf([.implicit, .explicit])))
        #expect(!Negotiable<CPDInvocationType>.any.satisfies(.oneOf([.implicit, .explicit])))
        // Strings are case-sensitive.
        #expect(!Negotiable<String>.fixed("Gold").satisfies(.fixed("gold")))
        #expect(Negotiable<String>.fixed("gold").satisfies(.oneOf(["gold", "silver"])))
    }

    @Test func illFormedOffersSatisfyOnlyAny() {
        let bad = NegotiableDecimal.range(min: 5, max: 1)
        #expect(!bad.satisfies(.range(min: 0, max: 10)))
        #expect(bad.satisfies(.any))
        #expect(!NegotiableDecimal.oneOf([]).satisfies(.range(min: 0, max: 10)))
    }

    @Test func roundTripForms() throws {
        for text in [#""any""#, "5", "0.05", #"{"min":1}"#, #"{"max":2.5}"#, #"{"min":1,"max":2}"#, #"{"one-of":[1,2]}"#] {
            let v = Self.negotiable(text)
            #expect(CPDTestJSON.text(v.json) == text)
            #expect(try NegotiableDecimal(json: v.json, at: .root) == v)
        }
        #expect(Self.negotiable(#"{"max":2,"min":1}"#) == .range(min: 1, max: 2))
        #expect(CPDTestJSON.text(NegotiableDecimal.range(min: 1, max: 2).json) == #"{"min":1,"max":2}"#)
        let e = try Negotiable<CPDReachability>(json: CPDTestJSON.parse(#"{"one-of":["global","restricted"]}"#), at: .root)
        #expect(e == .oneOf([.global, .restricted]))
        #expect(CPDTestJSON.text(Negotiable<CPDScopeModel>.fixed(.unspecifiedHose).json) == #""unspecified-hose""#)
        #expect(try Negotiable<Int64>(json: CPDTestJSON.parse("1500"), at: .root) == .fixed(1500))
    }

    static func decodeError<V: NegotiableValue>(_ text: String, as: V.Type) -> CPNPDecodingError? {
        do {
            _ = try Negotiable<V>(json: CPDTestJSON.parse(text), at: JSONPath.root.appending("x"))
            return nil
        } catch {
            return error
        }
    }

    @Test func decodeErrors() {
        let cases: [(String, CPNPDecodingError.Code, String)] = [
            ("{}", .invalidValue, "x"),
            (#"{"mini":1}"#, .invalidValue, "x"),
            (#"{"one-of":[]}"#, .invalidValue, "x.one-of"),
            (#"{"one-of":[1],"min":0}"#, .invalidValue, "x"),
            (#"{"one-of":5}"#, .wrongType, "x.one-of"),
            (#"{"one-of":[1,"two"]}"#, .wrongType, "x.one-of[1]"),
            (#"{"one-of":[1,"any"]}"#, .invalidValue, "x.one-of[1]"),
            (#"{"min":"1"}"#, .wrongType, "x.min"),
            (#"{"min":1,"max":null}"#, .wrongType, "x.max"),
            (#""fast""#, .wrongType, "x"),
            ("true", .wrongType, "x"),
            ("null", .wrongType, "x"),
            ("[1,2]", .wrongType, "x"),
        ]
        for (text, code, path) in cases {
            let e = Self.decodeError(text, as: CPNPDecimal.self)
            #expect(e?.code == code, "\(text)")
            #expect(e?.path.description == path, "\(text)")
        }
        #expect(Self.decodeError(#"{"min":"implicit"}"#, as: CPDInvocationType.self)?.code == .invalidValue)
        #expect(Self.decodeError(#""sometimes""#, as: CPDInvocationType.self)?.code == .invalidValue)
        #expect(Self.decodeError("3", as: CPDInvocationType.self)?.code == .wrongType)
        #expect(Self.decodeError("1500.5", as: Int64.self)?.code == .outOfRange)
        #expect(Self.decodeError(#"{"max":1500.5}"#, as: Int64.self)?.path.description == "x.max")
    }

    @Test func internalRules() {
        #expect(NegotiableDecimal.range(min: 5, max: 1).internalProblems == ["\"min\" is greater than \"max\""])
        #expect(NegotiableDecimal.range(min: nil, max: nil).internalProblems.count == 1)
        #expect(NegotiableDecimal.oneOf([]).internalProblems.count == 1)
        #expect(Negotiable<CPDInvocationType>.range(min: .explicit, max: nil).internalProblems.count == 1)
        #expect(NegotiableDecimal.range(min: 1, max: 1).isWellFormed)
        #expect(NegotiableDecimal.any.isWellFormed)
    }

    @Test func fixedAndPreferred() {
        #expect(NegotiableDecimal.fixed(3).isFixed)
        #expect(!NegotiableDecimal.any.isFixed && !NegotiableDecimal.range(min: 1, max: 1).isFixed && !NegotiableDecimal.oneOf([1]).isFixed)
        #expect(NegotiableDecimal.fixed(3).preferredValue == 3)
        #expect(NegotiableDecimal.range(min: 80, max: 100).preferredValue == 100)
        #expect(NegotiableDecimal.range(min: 80, max: nil).preferredValue == 80)
        #expect(NegotiableDecimal.oneOf([7, 8]).preferredValue == 7)
        #expect(NegotiableDecimal.any.preferredValue == nil)
        #expect(NegotiableDecimal.range(min: 80, max: 100).admits(80))
        #expect(!NegotiableDecimal.range(min: 80, max: 100).admits(79))
    }
}
