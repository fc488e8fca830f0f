import Synchronization
import Testing
import CPNPTesting
@testable import CPNPCore

/// A message's CPD recognised by its bytes (``CPNPCodec/parse(_:limits:documents:)``,
/// ``JSONParser/parse(_:limits:recognizing:candidates:)``): the parser steps over a value the
/// receiver holds already, and the result is the one a full parse gives.
@Suite struct RecognitionTests {
    static let held = Array(#"{"components":[{"profiles":[]}]}"#.utf8)

    /// The bytes at the top-level member are a candidate: the member is left out and the candidate named.
    @Test func theParserStepsOverACandidateAtTheTopLevelMember() throws {
        let document = Array(#"{"id":"a","cpd":{"components":[{"profiles":[]}]},"after":1}"#.utf8)
        var seen: [JSONObject] = []
        let recognized = try JSONParser.parse(document, recognizing: "cpd") { members in
            seen.append(members)
            return [Array("[1]".utf8), Self.held]
        }
        #expect(recognized.candidate == 1)
        guard case .object(var full) = try JSONParser.parse(document) else { Issue.record("not an object"); return }
        #expect(seen == [JSONObject([("id", .string("a"))])], "the candidates are asked once, given the members before the key")
        full["cpd"] = nil
        #expect(recognized.value == .object(full))
        #expect(JSONSerializer.serialize(recognized.value) == Array(#"{"id":"a","after":1}"#.utf8))
    }

    /// Anything else is parsed as always: other bytes, the key nested deeper, a candidate that is not
    /// a container, or no candidate at all.
    @Test func withoutAMatchTheValueIsParsed() throws {
        let documents = [
            #"{"id":"a","cpd":{"components":[{"profiles":[ ]}]}}"#,
            #"{"id":"a","cpd":{"components":[{"profiles":[]}],"x":1}}"#,
            #"{"id":"a","inner":{"cpd":{"components":[{"profiles":[]}]}}}"#,
            #"{"id":"a","cpd":null}"#,
            #"{"cpd":1}"#,
            #"[{"cpd":{"components":[{"profiles":[]}]}}]"#,
        ]
        for text in documents {
            let document = Array(text.utf8)
            let recognized = try JSONParser.parse(document, recognizing: "cpd") { _ in [Self.held, Array("1".utf8), Array("null".utf8)] }
            #expect(recognized.candidate == nil, "\(text)")
            #expect(recognized.value == (try JSONParser.parse(document)), "\(text)")
        }
    }

    /// A candidate is found only when every byte is equal: its last bytes are compared first, then
    /// the rest; a difference at the start, in the middle or at the end rules it out, and short
    /// candidates are compared whole.
    @Test func aCandidateMatchesOnlyByteForByte() throws {
        let value = #"{"components":[{"profiles":[]}],"name":"template 1"}"#
        let document = Array((#"{"id":"a","cpd":"# + value + "}").utf8)
        var differing: [[UInt8]] = []
        for offset in [1, value.utf8.count / 2, value.utf8.count - 3] {
            var bytes = Array(value.utf8)
            bytes[offset] = bytes[offset] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
            differing.append(bytes)
        }
        #expect(try JSONParser.parse(document, recognizing: "cpd") { _ in differing }.candidate == nil)
        #expect(try JSONParser.parse(document, recognizing: "cpd") { _ in differing + [Array(value.utf8)] }.candidate == differing.count)
        #expect(
            try JSONParser.parse(document, recognizing: "cpd", more: [differing[0], Array(value.utf8)]) { _ in differing }.candidate == 4,
            "the candidates known before the parse are numbered after the others")
        let short = Array(#"{"id":"a","cpd":[1],"n":2}"#.utf8)
        #expect(try JSONParser.parse(short, recognizing: "cpd") { _ in [Array("[2]".utf8), Array("[1]".utf8)] }.candidate == 1)
    }

    /// The strict rules hold around a recognised value: a repeated key, bytes after it, limits.
    @Test func aRecognisedValueKeepsTheRulesOfTheDocument() {
        let candidates: (JSONObject) -> [[UInt8]] = { _ in [Self.held] }
        let refused: [(String, CPNPDecodingError.Code)] = [
            (#"{"cpd":{"components":[{"profiles":[]}]},"cpd":{}}"#, .duplicateKey),
            (#"{"cpd":{"components":[{"profiles":[]}]}x}"#, .malformedJSON),
            (#"{"cpd":{"components":[{"profiles":[]}]}"#, .malformedJSON),
            (#"{"cpd":{"components":[{"profiles":[]}]}}}"#, .malformedJSON),
        ]
        for (text, code) in refused {
            let document = Array(text.utf8)
            #expect(throws: CPNPDecodingError.self, "\(text)") { try JSONParser.parse(document, recognizing: "cpd", candidates: candidates) }
            do {
                _ = try JSONParser.parse(document, recognizing: "cpd", candidates: candidates)
            } catch {
                #expect(error.code == code, "\(text)")
                #expect(throws: error, "the same error as a full parse: \(text)") { try JSONParser.parse(document) }
            }
        }
        let large = Array((#"{"cpd":{"components":[{"profiles":[]}]},"pad":""# + String(repeating: "x", count: 100) + #""}"#).utf8)
        #expect(throws: CPNPDecodingError.self) {
            try JSONParser.parse(large, limits: .init(maxBytes: 64), recognizing: "cpd", candidates: candidates)
        }
    }

    /// Every kind of message, encoded, decodes to the same message whether its CPD is recognised
    /// or parsed; the documents are asked for by the message's customer order id.
    @Test func everyMessageDecodesTheSameWithItsCPDRecognised() throws {
        var recognizedKinds = Set<MethodCode>()
        for message in try CodecTests.everyKind() {
            let bytes = CPNPCodec.encode(message)
            let decoy = CPDFixtures.cpd(#"{"components":["# + CPDFixtures.component(customerNode: "decoy", bandwidth: "1") + "]}")
            var askedFor: [CustomerOrderID] = []
            let parsed = try CPNPCodec.parse(bytes) { customerOrderID in
                askedFor.append(customerOrderID)
                return [decoy] + (message.carriedCPD.map { [$0] } ?? [])
            }
            #expect(try CPNPCodec.decode(parsed) == message, "\(message.method)")
            #expect(try CPNPCodec.decode(parsed) == CPNPCodec.decode(bytes), "\(message.method)")
            if let carried = message.carriedCPD {
                #expect(askedFor == [message.customerOrderID], "\(message.method)")
                #expect(parsed.recognizedCPD == carried, "\(message.method)")
                recognizedKinds.insert(message.method)
            } else {
                #expect(parsed.recognizedCPD == nil && askedFor.isEmpty, "\(message.method)")
            }
        }
        #expect(recognizedKinds.isSuperset(of: [.quotation, .offer, .accept, .ack, .withdraw, .update]))
    }

    /// Mutated messages give the same message or the same error with and without recognition, and
    /// both ways are taken: a mutation inside the CPD makes it unrecognised, one elsewhere does not.
    @Test func mutatedMessagesDecodeTheSameWithAndWithoutRecognition() throws {
        let messages = try CodecTests.everyKind().filter { $0.carriedCPD.map { !$0.isEmpty } ?? false }
        #expect(!messages.isEmpty)
        let corpus = messages.map { CPNPCodec.encode($0) }
        var mutator = JSONMutator(seed: 0x5EC0_611E, corpus: corpus)
        var recognized = 0
        var parsedAnyway = 0
        for round in 0..<6_000 {
            let index = round % messages.count
            var bytes = corpus[index]
            for _ in 0...mutator.rng.below(2) { mutator.mutate(&bytes) }
            let documents: (CustomerOrderID) -> [CPD] = { _ in [messages[index].carriedCPD!] }
            let withRecognition = Result { () throws(CPNPDecodingError) in try CPNPCodec.decode(bytes, documents: documents) }
            let without = Result { () throws(CPNPDecodingError) in try CPNPCodec.decode(bytes) }
            switch (withRecognition, without) {
            case (.success(let first), .success(let second)):
                #expect(first == second, "round \(round)")
            case (.failure(let first), .failure(let second)):
                #expect(first == second, "round \(round): \(first) / \(second)")
            default:
                Issue.record("round \(round): \(withRecognition) / \(without)")
            }
            if (try? CPNPCodec.parse(bytes, documents: documents).recognizedCPD) != nil { recognized += 1 } else { parsedAnyway += 1 }
        }
        #expect(recognized > 100 && parsedAnyway > 1_000, "recognised \(recognized), parsed \(parsedAnyway)")
    }

    /// A QUOTATION for `customerOrderID` carrying `cpd`, encoded.
    static func quotation(_ customerOrderID: String, _ cpd: CPD) -> [UInt8] {
        let s = GoldenVectorSource.self
        return CPNPCodec.encode(
            .quotation(
                QuotationMessage(sequenceNumber: 0, transactionID: s.tid, customerOrderID: CustomerOrderID(customerOrderID)!, requestedCPD: cpd)))
    }

    static func document(_ node: String) -> CPD {
        CPDFixtures.cpd(#"{"components":["# + CPDFixtures.component(customerNode: node, bandwidth: "10") + "]}")
    }

    /// A document remembered from one order's message is recognised in another order's: the message
    /// decodes as a full parse gives it, the document is the value remembered, and it moves to the
    /// most recently seen. A recognised document is not remembered twice.
    @Test func recentDocumentsAreRecognisedInOtherOrders() throws {
        var recent = RecentDocuments(capacity: 2)
        let (first, second, third) = (Self.document("first"), Self.document("second"), Self.document("third"))
        func receive(_ order: String, _ cpd: CPD) throws -> CPNPCodec.ParsedMessage {
            let bytes = Self.quotation(order, cpd)
            let parsed = try CPNPCodec.parse(bytes, documents: { _ in [] }, recent: &recent)
            let message = try CPNPCodec.decode(parsed)
            #expect(message == (try CPNPCodec.decode(bytes)), "\(order)")
            recent.remember(carriedBy: message, parsed: parsed, limits: .datagram)
            return parsed
        }
        #expect(try receive("co-a", first).recognizedCPD == nil, "nothing remembered yet")
        #expect(recent.documents == [first])
        let again = try receive("co-b", CPDFixtures.cpd(String(decoding: first.compactJSON, as: UTF8.self)))
        #expect(again.recognizedCPD == first)
        #expect(recent.documents.count == 1, "a recognised document is not remembered again")
        #expect(try receive("co-c", second).recognizedCPD == nil)
        #expect(try receive("co-d", first).recognizedCPD == first, "the first is now the most recently seen")
        #expect(recent.documents == [second, first])
        #expect(try receive("co-e", third).recognizedCPD == nil)
        #expect(recent.documents == [first, third], "the least recently seen is forgotten")
        #expect(try receive("co-f", second).recognizedCPD == nil)
        // The order's own documents come first; the empty CPD is never remembered.
        let own = try CPNPCodec.parse(Self.quotation("co-g", third), documents: { _ in [third] }, recent: &recent)
        #expect(own.recognizedCPD == third)
        #expect(recent.documents == [third, second], "an order's own document does not move the recent ones")
        _ = try receive("co-h", .empty)
        #expect(recent.documents == [third, second])
    }

    /// Documents parsed under looser limits than the next parse's are not offered to it, and a parse
    /// under other limits starts the memory again; a large message's document is not remembered.
    @Test func recentDocumentsKeepTheLimitsTheyWereParsedUnder() throws {
        var recent = RecentDocuments()
        let document = Self.document("limits")
        let bytes = Self.quotation("co-a", document)
        let message = try CPNPCodec.decode(bytes)
        recent.remember(carriedBy: message, parsed: try CPNPCodec.parse(bytes) { _ in [] }, limits: .datagram)
        #expect(recent.documents == [document])
        var stricter = JSONParser.Limits.datagram
        stricter.maxStringLength = 4
        #expect(throws: CPNPDecodingError.self, "the document's strings are longer than the stricter limit allows") {
            try CPNPCodec.parse(bytes, limits: stricter, documents: { _ in [] }, recent: &recent)
        }
        var looser = JSONParser.Limits.datagram
        looser.maxDepth += 8
        #expect(try CPNPCodec.parse(bytes, limits: looser, documents: { _ in [] }, recent: &recent).recognizedCPD == document)
        recent.remember(Self.document("other"), parsedUnder: looser)
        #expect(recent.documents == [Self.document("other")], "documents parsed under other limits are forgotten")
        var large = try CPNPCodec.parse(bytes) { _ in [] }
        large.byteCount = RecentDocuments.maximumMessageBytes + 1
        recent.remember(carriedBy: message, parsed: large, limits: looser)
        #expect(recent.documents == [Self.document("other")])
        var none = RecentDocuments(capacity: 0)
        none.remember(document, parsedUnder: .datagram)
        #expect(none.documents.isEmpty)
        // A message size of its own (a stream transport's, the portal's) changes no check of a document.
        var sizes = RecentDocuments()
        sizes.remember(document, parsedUnder: .datagram)
        var largerMessages = JSONParser.Limits.datagram
        largerMessages.maxBytes *= 64
        sizes.remember(Self.document("stream"), parsedUnder: largerMessages)
        #expect(sizes.documents == [document, Self.document("stream")])
    }

    /// A document made equal to one made lately is replaced by that one, which carries what was derived
    /// from it already (here its reference: the digest is not computed again); others are kept apart.
    @Test func madeDocumentsAreInterned() {
        var recent = RecentDocuments(capacity: 2)
        let first = Self.document("made")
        let equal = CPDFixtures.cpd(String(decoding: first.compactJSON, as: UTF8.self))
        let digests = Mutex(0)
        let digest: ([UInt8]) -> String = { _ in
            digests.withLock { $0 += 1 }; return String(repeating: "0", count: 64)
        }
        #expect(recent.interned(first) == first)
        _ = first.reference(digest: digest)
        let shared = recent.interned(equal)
        #expect(shared == first && recent.documents.count == 1)
        _ = shared.reference(digest: digest)
        #expect(digests.withLock { $0 } == 1, "the interned value's reference was derived already")
        _ = equal.reference(digest: digest)
        #expect(digests.withLock { $0 } == 2, "a value of its own derives it again")
        let other = Self.document("other")
        #expect(recent.interned(other) == other && recent.documents == [first, other])
        _ = recent.interned(Self.document("third"))
        #expect(recent.documents == [other, Self.document("third")], "the least recently made is forgotten")
        #expect(recent.candidates(under: .datagram).documents.isEmpty, "made documents are not offered for recognition")
    }

    /// Mutated messages decode the same whether their documents are offered as recent ones or not.
    @Test func mutatedMessagesDecodeTheSameWithRecentDocuments() throws {
        let messages = try CodecTests.everyKind().filter { $0.carriedCPD.map { !$0.isEmpty } ?? false }
        let corpus = messages.map { CPNPCodec.encode($0) }
        var mutator = JSONMutator(seed: 0x0DEC_0DE5, corpus: corpus)
        var recognized = 0
        var parsedAnyway = 0
        for round in 0..<3_000 {
            var recent = RecentDocuments()
            for message in messages { recent.remember(message.carriedCPD!, parsedUnder: .datagram) }
            var bytes = corpus[round % messages.count]
            for _ in 0...mutator.rng.below(2) { mutator.mutate(&bytes) }
            let withRecent = Result { () throws(CPNPDecodingError) in
                let parsed = try CPNPCodec.parse(bytes, documents: { _ in [] }, recent: &recent)
                if parsed.recognizedCPD != nil { recognized += 1 } else { parsedAnyway += 1 }
                return try CPNPCodec.decode(parsed)
            }
            let without = Result { () throws(CPNPDecodingError) in try CPNPCodec.decode(bytes) }
            switch (withRecent, without) {
            case (.success(let first), .success(let second)): #expect(first == second, "round \(round)")
            case (.failure(let first), .failure(let second)): #expect(first == second, "round \(round)")
            default: Issue.record("round \(round): \(withRecent) / \(without)")
            }
        }
        #expect(recognized > 30 && parsedAnyway > 500, "recognised \(recognized), parsed \(parsedAnyway)")
    }

    /// The machines name the CPDs a peer's next message may carry back: the offer's, then the agreement's.
    @Test func theMachinesNameTheDocumentsTheirPeerMaySendBack() throws {
        var dialogue = Dialogue()
        try dialogue.quote()
        #expect(dialogue.serverMachine.recognizableDocuments.isEmpty)
        #expect(dialogue.client.recognizableDocuments == [Fixture.requested])
        try dialogue.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        dialogue.deliverToClient()
        #expect(dialogue.serverMachine.recognizableDocuments == [Fixture.offered])
        #expect(dialogue.client.recognizableDocuments == [Fixture.offered, Fixture.requested])
        try dialogue.clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
        dialogue.deliverToServer()
        try dialogue.serverDo { s, _, now throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
        dialogue.deliverToClient()
        #expect(dialogue.serverMachine.recognizableDocuments.last == Fixture.offered)
        #expect(dialogue.serverMachine.agreement?.acceptedCPD == Fixture.offered)
        #expect(dialogue.client.recognizableDocuments.contains(Fixture.offered))
    }
}
