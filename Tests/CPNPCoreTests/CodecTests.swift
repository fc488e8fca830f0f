import Testing
@testable import CPNPCore

/// Message codec (docs/protocol.md §2): round trips, extensibility, correlation, timestamps, limits.
@Suite struct CodecTests {
    static func text(_ m: CPNPMessage) -> String { String(decoding: CPNPCodec.encode(m), as: UTF8.self) }

    static func decode(_ s: String) throws(CPNPDecodingError) -> CPNPMessage { try CPNPCodec.decode(Array(s.utf8)) }

    /// Every message kind, with its optional attributes present and absent.
    static func everyKind() throws -> [CPNPMessage] {
        let full = try GoldenVectorSource.validMessages().map(\.message)
        let s = GoldenVectorSource.self
        let minimal: [CPNPMessage] = [
            .quotation(QuotationMessage(sequenceNumber: 0, transactionID: s.tid, customerOrderID: s.coid, requestedCPD: .empty)),
            .processing(ProcessingMessage(sequenceNumber: 1, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid)),
            .offer(
                OfferMessage(
                    sequenceNumber: 2, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid,
                    nonce: s.nonce, validityOfferTime: CPNPTimestamp(millisecondsSinceEpoch: 0), offeredCPD: .empty)),
            .accept(
                AcceptMessage(
                    sequenceNumber: 3, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid,
                    nonce: s.nonce, acceptedCPD: .empty)),
            .decline(DeclineMessage(sequenceNumber: 4, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid, nonce: s.nonce)),
            .ack(AckMessage(sequenceNumber: 5, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid)),
            .cancel(CancelMessage(sequenceNumber: 6, transactionID: s.tid, customerOrderID: s.coid)),
            .withdraw(WithdrawMessage(sequenceNumber: 7, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid, nonce: s.nonce)),
            .update(
                UpdateMessage(
                    sequenceNumber: 8, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid,
                    nonce: s.nonce, expectedResponseTime: CPNPTimestamp(millisecondsSinceEpoch: 1), requestedCPD: .empty)),
            .fail(
                FailMessage(
                    sequenceNumber: UInt32.max, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: nil,
                    statusCode: .unsupportedActivationType)),
            .activate(
                ActivateMessage(
                    sequenceNumber: 10, transactionID: s.tid, customerOrderID: s.coid, providerOrderID: s.poid,
                    nonce: s.nonce, activationSchedule: .now)),
        ]
        return full + minimal
    }

    @Test func roundTripOfEveryKind() throws {
        let messages = try Self.everyKind()
        #expect(Set(messages.map(\.method)) == Set(MethodCode.allCases))
        for m in messages {
            let bytes = CPNPCodec.encode(m)
            let deterministic = CPNPCodec.encode(m) == bytes
            #expect(deterministic, "encoding is not deterministic for \(m.method)")
            let decoded = try CPNPCodec.decode(bytes, limits: .stream)
            #expect(decoded == m, "\(m.method): \(Self.text(m))")
            let stable = CPNPCodec.encode(decoded) == bytes
            #expect(stable, "\(m.method): re-encoding differs")
            #expect(try CPNPCodec.decode(json: CPNPCodec.encodeJSON(m)) == m)
        }
    }

    @Test func keysComeInTheFixedOrder() throws {
        let m = try Self.everyKind().first { $0.method == .offer }!
        guard case .object(let o) = CPNPCodec.encodeJSON(m) else { Issue.record("not an object"); return }
        #expect(
            o.keys == [
                "version", "method", "sequence-number", "transaction-id", "customer-order-id",
                "provider-order-id", "nonce", "validity-offer-time", "cpd", "information-elements",
            ])
        #expect(!Self.text(m).contains("\n"))
    }

    @Test func unknownKeysAreIgnored() throws {
        let base = GoldenVectorSource.quotation
        let expected = try Self.decode(base)
        var o = try JSONParser.parse(Array(base.utf8)).object(at: .root)
        o["x-vendor-extension"] = .object(JSONObject([("nested", .array([.null, .bool(true)]))]))
        o["future-attribute"] = .number(42)
        o["information-elements"] = .object(
            JSONObject([
                ("x-unknown-ie", .string("ignored")),
                ("negotiation-options", .object(JSONObject([("cost", .null), ("x-option", .bool(false))]))),
                (
                    "customer-description",
                    .object(
                        JSONObject([
                            ("name", .string("ACME")), ("x-size", .number(3)),
                            ("contact", .object(JSONObject([("email", .string("a@b.example")), ("fax", .string("none"))]))),
                        ]))
                ),
                ("cost", .object(JSONObject([("amount", .string("10")), ("currency", .string("EUR")), ("vat", .string("20%"))]))),
            ]))
        guard case .quotation(var q) = expected else { Issue.record("not a quotation"); return }
        q.informationElements = InformationElements(
            customerDescription: CustomerDescription(name: "ACME", contact: ContactInformation(email: "a@b.example")),
            negotiationOptions: NegotiationOptions(costRequested: true),
            cost: Cost(amount: 10, currency: "EUR"))
        #expect(try CPNPCodec.decode(json: .object(o)) == .quotation(q))
    }

    /// Keys of every attribute of docs/protocol.md §3, with a value of the right type.
    static let plausibleValues: [(String, JSONValue)] = [
        ("provider-order-id", .string("pa-999")),
        ("nonce", .string("ffffffffffffffffffffffffffffffff")),
        ("expected-response-time", .string("2030-01-01T00:00:00Z")),
        ("expected-offer-time", .string("2030-01-01T00:00:00Z")),
        ("validity-offer-time", .string("2030-01-01T00:00:00Z")),
        ("activation-schedule", .number(0)),
        ("processing-subcode", .number(1)),
        ("status-code", .number(1)),
        ("diagnostic", .string("ignored")),
        ("reasons", .array([.number(1)])),
        ("cpd", .object(JSONObject([("components", .array([]))]))),
        ("information-elements", .object(JSONObject([("cost", .object(JSONObject([("amount", .string("1")), ("currency", .string("EUR"))])))]))),
    ]

    /// The attributes each method carries (M or O in docs/protocol.md §3); the others are "–".
    static let carried: [MethodCode: Set<String>] = [
        .quotation: ["expected-response-time", "cpd", "information-elements"],
        .processing: ["provider-order-id", "expected-offer-time", "processing-subcode"],
        .offer: ["provider-order-id", "nonce", "validity-offer-time", "cpd", "information-elements"],
        .accept: ["provider-order-id", "nonce", "cpd", "information-elements"],
        .decline: ["provider-order-id", "nonce", "reasons"],
        .ack: ["provider-order-id", "expected-response-time", "cpd", "information-elements"],
        .cancel: ["cpd"],
        .withdraw: ["provider-order-id", "nonce", "cpd", "information-elements"],
        .update: ["provider-order-id", "nonce", "expected-response-time", "cpd", "information-elements"],
        .fail: ["provider-order-id", "status-code", "diagnostic"],
        .activate: ["provider-order-id", "nonce", "activation-schedule", "information-elements"],
    ]

    @Test(arguments: [false, true]) func attributesAbsentFromAMethodAreIgnored(garbage: Bool) throws {
        #expect(Set(Self.carried.keys) == Set(MethodCode.allCases))
        for m in try Self.everyKind() {
            guard case .object(var o) = CPNPCodec.encodeJSON(m) else { continue }
            var added: [String] = []
            for (key, value) in Self.plausibleValues where !Self.carried[m.method]!.contains(key) {
                o[key] = garbage ? .array([.string("garbage"), .object(JSONObject())]) : value
                added.append(key)
            }
            #expect(!added.isEmpty || m.method == .fail)
            #expect(try CPNPCodec.decode(json: .object(o)) == m, "\(m.method) with \(added)")
        }
    }

    @Test func optionalNullMeansAbsent() throws {
        let s = GoldenVectorSource.message(6, #","provider-order-id":"pa-1","expected-response-time":null,"cpd":null,"information-elements":null"#)
        guard case .ack(let m) = try Self.decode(s) else { Issue.record("not an ACK"); return }
        #expect(m.cpd == nil && m.expectedResponseTime == nil && m.informationElements == nil)
    }

    @Test func correlationOfAMessageThatFailsValidation() throws {
        let bad = GoldenVectorSource.message(
            4, #","provider-order-id":"pa-000117","nonce":"NOT-A-NONCE","cpd":{"components":"oops"}"#)
        let json = try JSONParser.parse(Array(bad.utf8))
        #expect(throws: CPNPDecodingError.self) { try CPNPCodec.decode(json: json) }
        let c = try #require(CPNPCodec.correlation(of: json))
        #expect(c.method == .accept)
        #expect(c.sequenceNumber == 1_804_289_383)
        #expect(c.transactionID == GoldenVectorSource.tid)
        #expect(c.customerOrderID == GoldenVectorSource.coid)
        #expect(c.providerOrderID == GoldenVectorSource.poid)

        // Unknown method and version, out-of-range sequence number, bad provider id: still correlated.
        let worse =
            #"{"version":7,"method":99,"sequence-number":-5,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3","customer-order-id":"acme-2026-0042","provider-order-id":""}"#
        let w = try #require(CPNPCodec.correlation(of: try JSONParser.parse(Array(worse.utf8))))
        #expect(w.method == nil && w.sequenceNumber == nil && w.providerOrderID == nil)
        #expect(w.transactionID == GoldenVectorSource.tid)

        // Without a usable transaction id or customer order id there is nothing to answer.
        #expect(CPNPCodec.correlation(of: .array([])) == nil)
        let noTID = #"{"version":1,"method":1,"sequence-number":1,"transaction-id":"short","customer-order-id":"c"}"#
        #expect(CPNPCodec.correlation(of: try JSONParser.parse(Array(noTID.utf8))) == nil)
        let noCOID = #"{"version":1,"method":1,"sequence-number":1,"transaction-id":"9f2c1e0b7a5d4c3b2a1908f7e6d5c4b3"}"#
        #expect(CPNPCodec.correlation(of: try JSONParser.parse(Array(noCOID.utf8))) == nil)
    }

    @Test(arguments: [
        ("2026-11-21T11:05:00+01:00", "2026-11-21T10:05:00Z"),
        ("2026-11-21T04:35:00-05:30", "2026-11-21T10:05:00Z"),
        ("2026-11-21t10:05:00z", "2026-11-21T10:05:00Z"),
        ("2026-11-21T10:05:00.250+00:00", "2026-11-21T10:05:00.250Z"),
        ("2026-11-21T10:05:00.123456789Z", "2026-11-21T10:05:00.123Z"),
        ("2026-11-22T00:30:00+14:25", "2026-11-21T10:05:00Z"),
        ("2026-12-31T23:59:60Z", "2026-12-31T23:59:59.999Z"),
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("0001-01-01T00:30:00+01:00", "0000-12-31T23:30:00Z"),
    ])
    func rfc3339OffsetsAreAcceptedAndReencodedInUTC(input: String, utc: String) throws {
        let m = try Self.decode(GoldenVectorSource.message(2, #","provider-order-id":"p","expected-offer-time":"\#(input)""#))
        let text = Self.text(m)
        #expect(text.contains(#""expected-offer-time":"\#(utc)""#), "\(text)")
        #expect(try Self.decode(text) == m)
    }

    @Test(arguments: ["9999-12-31T23:30:00-01:00", "0000-01-01T00:30:00+01:00"])
    func timestampsOutsideYears0To9999InUTCAreRejected(input: String) {
        let s = GoldenVectorSource.message(11, GoldenVectorSource.ids + #","activation-schedule":"\#(input)""#)
        #expect { try Self.decode(s) } throws: { ($0 as? CPNPDecodingError)?.code == .outOfRange }
    }

    @Test func activationScheduleForms() throws {
        func schedule(_ v: String) throws -> ActivationSchedule {
            guard case .activate(let a) = try Self.decode(GoldenVectorSource.message(11, GoldenVectorSource.ids + #","activation-schedule":\#(v)"#))
            else { throw CPNPDecodingError(.invalidValue, at: .root, "not ACTIVATE") }
            return a.activationSchedule
        }
        #expect(try schedule("null") == .now)
        #expect(try schedule("0") == .deactivate)
        #expect(try schedule("0.0") == .deactivate)
        #expect(try schedule("-0") == .deactivate)
        #expect(try schedule(#""2026-12-01T07:00:00+01:00""#) == .at(CPNPTimestamp(rfc3339: "2026-12-01T06:00:00Z")!))
    }

    @Test(arguments: ["1250.00", "0.000000000000000000000000000001", "10000000000000000000000000000000", "-3.5", "0"])
    func costAmountsRoundTrip(amount: String) throws {
        let s = GoldenVectorSource.message(
            3,
            GoldenVectorSource.ids
                + #","validity-offer-time":"2026-11-22T10:00:00Z","cpd":{"components":[]},"information-elements":{"cost":{"amount":"\#(amount)","currency":"EUR"}}"#
        )
        let m = try Self.decode(s)
        let again = try Self.decode(Self.text(m))
        #expect(again == m)
        guard case .offer(let o) = again else { return }
        #expect(o.informationElements?.cost?.amount == CPNPDecimal(parsing: amount))
    }

    @Test func datagramAndStreamLimits() throws {
        let prefix = String(GoldenVectorSource.quotation.dropLast()) + #","x-padding":""#
        func padded(to size: Int) -> [UInt8] {
            Array((prefix + String(repeating: "x", count: size - prefix.utf8.count - 2) + #""}"#).utf8)
        }
        #expect(padded(to: 16_384).count == 16_384)
        _ = try CPNPCodec.decode(padded(to: 16_384))
        #expect { try CPNPCodec.decode(padded(to: 16_385)) } throws: { ($0 as? CPNPDecodingError)?.code == .documentTooLarge }
        _ = try CPNPCodec.decode(padded(to: 60_000), limits: .stream)
    }

    @Test func diagnosticIsClamped() throws {
        let m = FailMessage(
            sequenceNumber: 1, transactionID: GoldenVectorSource.tid, customerOrderID: GoldenVectorSource.coid,
            providerOrderID: nil, statusCode: .messageValidationError,
            diagnostic: "line1\nline2\u{7}" + String(repeating: "é", count: 300))
        #expect(m.diagnostic?.unicodeScalars.count == 256)
        #expect(m.diagnostic?.hasPrefix("line1line2é") == true)
        #expect(try CPNPCodec.decode(CPNPCodec.encode(.fail(m))) == .fail(m))
    }

    @Test func errorsNameTheField() {
        let s = GoldenVectorSource.replacing(GoldenVectorSource.quotation, #""reachability":"global"}]"#, #""reachability":"everywhere"}]"#)
        #expect {
            try Self.decode(s)
        } throws: { e in
            guard let e = e as? CPNPDecodingError else { return false }
            return e.path.description == "cpd.components[0].profiles[0].scope[1].reachability" && e.description.hasPrefix(e.path.description + ": ")
        }
    }
}

/// `CPNPMessage.validationIssues()`: semantic checks beyond decoding.
@Suite struct MessageValidationTests {
    let s = GoldenVectorSource.self

    static func issues(_ text: String) throws -> [CPDValidationIssue] {
        try CPNPCodec.decode(Array(text.utf8)).validationIssues()
    }

    static func errorPaths(_ text: String) throws -> [String] {
        try issues(text).errors.map(\.path.description)
    }

    @Test func goldenMessagesHaveNoErrors() throws {
        for (name, m) in try s.validMessages() {
            #expect(m.validationIssues().errors.isEmpty, "\(name): \(m.validationIssues())")
        }
        #expect(try Self.issues(s.quotation).isEmpty)
    }

    @Test func cpdIssuesHaveMessagePaths() throws {
        let text = s.replacing(s.quotation, #""from":"CE-1","to":"CE-2""#, #""from":"CE-1","to":"CE-9""#)
        #expect(try Self.errorPaths(text) == ["cpd.components[0].profiles[0].qos-guarantees.entries[0].to"])
    }

    @Test func cpdIssuesOfEveryCarriedCPD() throws {
        let badCPD = s.replacing(s.smallCPD, #""country":"FR"}}"#, #""country":"France"}}"#)
        let path = "cpd.components[0].profiles[0].customer-nodes[0].localization.country"
        let bodies: [(Int, String)] = [
            (1, #","cpd":"# + badCPD),
            (3, s.ids + #","validity-offer-time":"2026-11-22T10:00:00Z","cpd":"# + badCPD),
            (6, #","provider-order-id":"p","cpd":"# + badCPD),
            (7, #","cpd":"# + badCPD),
            (8, s.ids + #","cpd":"# + badCPD),
            (9, s.ids + #","expected-response-time":"2027-01-10T09:00:00Z","cpd":"# + badCPD),
        ]
        for (method, body) in bodies {
            #expect(try Self.errorPaths(s.message(method, body)).contains(path), "method \(method)")
        }
    }

    @Test func declineReasonsMustNotRepeat() throws {
        #expect(try Self.errorPaths(s.message(5, s.ids + #","reasons":[1,3,1]"#)) == ["reasons[2]"])
        #expect(try Self.errorPaths(s.message(5, s.ids + #","reasons":[3,2,1]"#)).isEmpty)
    }

    @Test func requestedCPDMustNotBeEmpty() throws {
        #expect(try Self.errorPaths(s.message(1, #","cpd":{"components":[]}"#)) == ["cpd.components"])
        #expect(
            try Self.errorPaths(s.message(9, s.ids + #","expected-response-time":"2027-01-10T09:00:00Z","cpd":{"components":[]}"#)) == [
                "cpd.components"
            ])
        #expect(
            try Self.errorPaths(s.message(3, s.ids + #","validity-offer-time":"2026-11-22T10:00:00Z","cpd":{"components":[]}"#)) == ["cpd.components"]
        )
        // The empty CPD is what an ACK carries after DECLINE or WITHDRAW.
        #expect(try Self.issues(s.message(6, #","provider-order-id":"p","cpd":{"components":[]}"#)).isEmpty)
    }

    @Test func acceptedCPDMustBeConcrete() throws {
        let issues = try Self.issues(s.message(4, s.ids + #","cpd":"# + s.smallCPD))
        #expect(issues.errors.map(\.path.description) == ["cpd.components[0].profiles[0].qos-guarantees.entries[0].one-way-delay-ms"])
        // CE-1 has no link identifier: only a warning.
        #expect(
            issues.filter { $0.severity == .warning }.map(\.path.description) == ["cpd.components[0].profiles[0].customer-nodes[0].link-identifiers"])
        let concrete = s.replacing(s.smallCPD, #"{"max":20}"#, "18")
        #expect(try Self.errorPaths(s.message(4, s.ids + #","cpd":"# + concrete)).isEmpty)
        // A loose offer is legal but cannot be accepted: a warning.
        let offer = try Self.issues(s.message(3, s.ids + #","validity-offer-time":"2026-11-22T10:00:00Z","cpd":"# + s.smallCPD))
        #expect(offer.errors.isEmpty && offer.map(\.path.description) == ["cpd"])
    }

    @Test func negotiationOptions() throws {
        func paths(_ options: String) throws -> [String] {
            try Self.errorPaths(String(s.quotation.dropLast()) + #","information-elements":{"negotiation-options":"# + options + "}}")
        }
        let np = "information-elements.negotiation-options"
        #expect(try paths(#"{"purpose":"testing"}"#) == ["\(np).test-period-end"])
        #expect(try paths(#"{"purpose":"testing","test-period-end":"2026-12-01T00:00:00Z"}"#).isEmpty)
        #expect(try paths(#"{"activation-schedule":"2026-12-01T00:00:00Z"}"#) == ["\(np).activation-schedule"])
        #expect(try paths(#"{"activation-type":"explicit","activation-schedule":"2026-12-01T00:00:00Z"}"#) == ["\(np).activation-schedule"])
        #expect(try paths(#"{"activation-type":"scheduled"}"#) == ["\(np).activation-schedule"])
        #expect(try paths(#"{"activation-type":"scheduled","activation-schedule":"2026-12-01T00:00:00Z"}"#).isEmpty)
        let warnings = try Self.issues(
            String(s.quotation.dropLast()) + #","information-elements":{"negotiation-options":{"test-period-end":"2026-12-01T00:00:00Z"}}}"#)
        #expect(warnings.map(\.severity) == [.warning])
    }

    @Test func negativeCost() throws {
        let text = s.message(
            3,
            s.ids + #","validity-offer-time":"2026-11-22T10:00:00Z","cpd":"# + s.replacing(s.smallCPD, #"{"max":20}"#, "18")
                + #","information-elements":{"cost":{"amount":"-1.00","currency":"EUR"}}"#)
        #expect(try Self.errorPaths(text) == ["information-elements.cost.amount"])
    }
}
