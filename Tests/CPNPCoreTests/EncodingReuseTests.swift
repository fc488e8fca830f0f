import Testing
import CPNPTesting
@testable import CPNPCore

/// What the codec derives once and reuses (docs/design/storage.md): JSON objects kept as ordered
/// members, a CPD's compact JSON and hash shared by its copies, the CPD's bytes written into a message.
@Suite struct EncodingReuseTests {
    /// The messages the codec writes with the CPD's own bytes are the bytes the JSON tree gives.
    @Test func aMessageWrittenWithItsCPDBytesIsTheTreeSerialized() throws {
        for message in try CodecTests.everyKind() {
            #expect(CPNPCodec.encode(message) == JSONSerializer.serialize(CPNPCodec.encodeJSON(message)), "\(message.method)")
            #expect(try CPNPCodec.decode(CPNPCodec.encode(message)) == message, "\(message.method)")
        }
    }

    /// A CPD changed after its bytes were taken gets new bytes, and no longer equals the original.
    @Test func aChangedCPDForgetsWhatItsOriginalDerived() {
        let original = CPDFixtures.cpd(
            #"{"components":["# + CPDFixtures.component(customerNode: "paris", bandwidth: "90") + ","
                + CPDFixtures.component(customerNode: "berlin", bandwidth: "50") + "]}")
        let copy = original
        #expect(copy.compactJSON == original.compactJSON && copy == original && copy.hashValue == original.hashValue)
        var changed = original
        _ = changed.compactJSON
        changed.components.removeLast()
        #expect(changed != original)
        #expect(changed.compactJSON == JSONSerializer.serialize(changed.json))
        #expect(changed.compactJSON != original.compactJSON)
        // Equal content built separately: equal, with the same hash and bytes.
        let rebuilt = CPD(components: original.components)
        #expect(rebuilt == original && rebuilt.hashValue == original.hashValue && rebuilt.compactJSON == original.compactJSON)
        #expect(Set([original, copy, rebuilt, changed]).count == 2)
    }

    /// A CPD's issues at a message's `cpd` and its loose fields are derived once per value and shared
    /// by its copies; a change to a copy derives them afresh.
    @Test func aCPDsIssuesAndLooseFieldsFollowItsChanges() {
        let loose = CPDFixtures.cpd(#"{"components":["# + CPDFixtures.component(customerNode: "paris", bandwidth: #"{"min":10,"max":90}"#) + "]}")
        let message = CPNPMessage.accept(
            AcceptMessage(
                sequenceNumber: 1, transactionID: GoldenVectorSource.tid, customerOrderID: GoldenVectorSource.coid,
                providerOrderID: GoldenVectorSource.poid, nonce: GoldenVectorSource.nonce, acceptedCPD: loose))
        let before = message.validationIssues()
        #expect(!loose.looseFields.isEmpty && before.contains { $0.severity == .error && $0.message.contains("concrete") })
        #expect(message.validationIssues() == before && loose.looseFields == loose.findLooseFields())
        var changed = loose
        changed.components.append(ConnectivityProvisioningComponent(profiles: []))
        #expect(changed.looseFields == loose.looseFields)
        #expect(changed.issuesInMessage.count == loose.issuesInMessage.count + 1)
        #expect(changed.issuesInMessage == changed.validate(at: JSONPath.root.appending("cpd")))
        var fixed = loose
        fixed.components = CPDFixtures.cpd(#"{"components":["# + CPDFixtures.component(customerNode: "paris", bandwidth: "90") + "]}").components
        #expect(fixed.looseFields.isEmpty && fixed.isConcrete && !loose.isConcrete)
        #expect(fixed.issuesInMessage == fixed.validate(at: JSONPath.root.appending("cpd")))
    }

    /// A CPD's store reference is derived once per value, from its compact JSON, and shared by its
    /// copies; a changed copy derives its own.
    @Test func aCPDsReferenceIsDerivedOncePerValue() {
        let original = CPDFixtures.cpd(#"{"components":["# + CPDFixtures.component(customerNode: "paris", bandwidth: "90") + "]}")
        var digested: [[UInt8]] = []
        func digest(_ bytes: [UInt8]) -> String {
            digested.append(bytes)
            return "d\(digested.count)"
        }
        let copy = original
        #expect(original.reference(digest: digest) == CPDReferences.prefix + "d1")
        #expect(copy.reference(digest: digest) == CPDReferences.prefix + "d1")
        #expect(digested == [original.compactJSON])
        var changed = copy
        changed.components.append(changed.components[0])
        #expect(changed.reference(digest: digest) == CPDReferences.prefix + "d2")
        #expect(digested == [original.compactJSON, changed.compactJSON] && original.reference(digest: digest) == CPDReferences.prefix + "d1")
    }

    /// Objects compare and hash regardless of key order, keep their insertion order when written,
    /// and stay right past the size at which they index their keys.
    @Test func jsonObjectsOfEverySize() throws {
        for size in [0, 1, 5, 16, 17, 40] {
            let pairs = (0..<size).map { ("key-\($0)", JSONValue.number(CPNPDecimal(Int64($0)))) }
            var object = JSONObject(pairs)
            let reversed = JSONObject(pairs.reversed())
            #expect(object == reversed && object.hashValue == reversed.hashValue, "size \(size)")
            #expect(object.keys == pairs.map(\.0))
            #expect(
                JSONSerializer.serializeString(.object(object)) == "{" + pairs.map { "\"\($0.0)\":\(Int($0.0.dropFirst(4))!)" }.joined(separator: ",")
                    + "}")
            guard size > 3 else { continue }
            object["key-2"] = nil
            object["key-0"] = .string("replaced")
            object["added"] = .bool(true)
            #expect(object["key-2"] == nil && object["key-0"] == .string("replaced") && object["added"] == .bool(true))
            #expect(object["key-\(size - 1)"] == .number(CPNPDecimal(Int64(size - 1))))
            #expect(object.keys == ["key-0", "key-1"] + (3..<size).map { "key-\($0)" } + ["added"])
            #expect(object != reversed)
        }
        // A repeated key is still refused in a large object (docs/protocol.md §2.2).
        let members = (0..<30).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(throws: CPNPDecodingError.self) { try JSONParser.parse(Array("{\(members),\"k7\":1}".utf8)) }
        guard case .object(let large) = try JSONParser.parse(Array("{\(members)}".utf8)) else { Issue.record("not an object"); return }
        #expect(large.count == 30 && large["k29"] == .number(CPNPDecimal(Int64(29))))
    }

    /// Strings with and without characters to escape.
    @Test func stringsAreEscapedOnlyWhereNeeded() {
        #expect(JSONSerializer.serializeString(.string("plain/ascii é")) == "\"plain/ascii é\"")
        #expect(JSONSerializer.serializeString(.string("q\"b\\n\n\u{1}")) == #""q\"b\\n\n\u0001""#)
    }
}
