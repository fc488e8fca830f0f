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
