/// Encodes and decodes CPNP messages as JSON objects (docs/protocol.md §2–§3).
///
/// Decoding is total: any input yields a message or a ``CPNPDecodingError`` naming the field.
/// Encoding is deterministic (fixed key order), so a retransmission is byte-identical.
public enum CPNPCodec {
    /// Decodes one message from its bytes (`limits` defaults to the datagram limit of 16,384 bytes).
    public static func decode(
        _ bytes: some Collection<UInt8>, limits: JSONParser.Limits = .datagram
    ) throws(CPNPDecodingError) -> CPNPMessage {
        try decode(json: JSONParser.parse(bytes, limits: limits))
    }

    /// Decodes one message from a parsed JSON value.
    public static func decode(json: JSONValue) throws(CPNPDecodingError) -> CPNPMessage {
        let root = JSONPath.root
        guard case .object(let o) = json else {
            throw CPNPDecodingError(.notAnObject, at: root, "a CPNP message must be a JSON object, found \(json.typeName)")
        }
        let version = try o.required(Key.version, at: root)
        guard case .number(let v) = version else {
            throw JSONValue.wrongType("an integer", version, root.appending(Key.version))
        }
        guard v.int64Value == 1 else {
            throw CPNPDecodingError(.unsupportedVersion, at: root.appending(Key.version), "version \(v) is not supported, only 1")
        }
        let methodValue = try o.required(Key.method, at: root)
        guard case .number(let mv) = methodValue else {
            throw JSONValue.wrongType("an integer", methodValue, root.appending(Key.method))
        }
        guard let mi = mv.int64Value, let method = MethodCode(rawValue: Int(mi)) else {
            throw CPNPDecodingError(.unknownMethod, at: root.appending(Key.method), "unknown method code \(mv)")
        }
        let r = MessageReader(object: o)
        let seq = SequenceNumber(try r.required(Key.sequenceNumber) { v, p throws(CPNPDecodingError) in try v.integer(at: p, in: 0...Int64(UInt32.max)) })
        let tid = try r.required(Key.transactionID, MessageReader.transactionID)
        let coid = try r.required(Key.customerOrderID, MessageReader.customerOrderID)

        switch method {
        case .quotation:
            return .quotation(QuotationMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                expectedResponseTime: try r.optional(Key.expectedResponseTime, MessageReader.timestamp),
                requestedCPD: try r.required(Key.cpd, MessageReader.cpd),
                informationElements: try r.optional(Key.informationElements, MessageReader.informationElements)))
        case .processing:
            return .processing(ProcessingMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                expectedOfferTime: try r.optional(Key.expectedOfferTime, MessageReader.timestamp),
                processingSubcode: try r.optional(Key.processingSubcode, MessageReader.code(ProcessingSubcode.init(rawValue:), "processing subcode"))))
        case .offer:
            return .offer(OfferMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                nonce: try r.required(Key.nonce, MessageReader.nonce),
                validityOfferTime: try r.required(Key.validityOfferTime, MessageReader.timestamp),
                offeredCPD: try r.required(Key.cpd, MessageReader.cpd),
                informationElements: try r.optional(Key.informationElements, MessageReader.informationElements)))
        case .accept:
            return .accept(AcceptMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                nonce: try r.required(Key.nonce, MessageReader.nonce),
                acceptedCPD: try r.required(Key.cpd, MessageReader.cpd),
                informationElements: try r.optional(Key.informationElements, MessageReader.informationElements)))
        case .decline:
            return .decline(DeclineMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                nonce: try r.required(Key.nonce, MessageReader.nonce),
                reasons: try r.optional(Key.reasons, MessageReader.reasons) ?? []))
        case .ack:
            return .ack(AckMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                expectedResponseTime: try r.optional(Key.expectedResponseTime, MessageReader.timestamp),
                cpd: try r.optional(Key.cpd, MessageReader.cpd),
                informationElements: try r.optional(Key.informationElements, MessageReader.informationElements)))
        case .cancel:
            return .cancel(CancelMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                cpd: try r.optional(Key.cpd, MessageReader.cpd)))
        case .withdraw:
            return .withdraw(WithdrawMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                nonce: try r.required(Key.nonce, MessageReader.nonce),
                acceptedCPD: try r.optional(Key.cpd, MessageReader.cpd),
                informationElements: try r.optional(Key.informationElements, MessageReader.informationElements)))
        case .update:
            return .update(UpdateMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                nonce: try r.required(Key.nonce, MessageReader.nonce),
                expectedResponseTime: try r.required(Key.expectedResponseTime, MessageReader.timestamp),
                requestedCPD: try r.required(Key.cpd, MessageReader.cpd),
                informationElements: try r.optional(Key.informationElements, MessageReader.informationElements)))
        case .fail:
            return .fail(FailMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.optional(Key.providerOrderID, MessageReader.providerOrderID),
                statusCode: try r.required(Key.statusCode, MessageReader.code(FailStatusCode.init(rawValue:), "status code")),
                diagnostic: try r.optional(Key.diagnostic) { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 256) }))
        case .activate:
            return .activate(ActivateMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid,
                providerOrderID: try r.required(Key.providerOrderID, MessageReader.providerOrderID),
                nonce: try r.required(Key.nonce, MessageReader.nonce),
                activationSchedule: try r.requiredAllowingNull(Key.activationSchedule, MessageReader.activationSchedule),
                informationElements: try r.optional(Key.informationElements, MessageReader.informationElements)))
        }
    }

    /// The identifiers of a message that failed to decode, as far as they are readable, so that a
    /// server can still answer FAIL 1 to the right transaction (RFC 8921 §10.2; docs/protocol.md §6, A6).
    public static func correlation(of json: JSONValue) -> MessageCorrelation? {
        guard case .object(let o) = json else { return nil }
        let r = MessageReader(object: o)
        guard let tid = try? r.required(Key.transactionID, MessageReader.transactionID),
            let coid = try? r.required(Key.customerOrderID, MessageReader.customerOrderID)
        else { return nil }
        let seq = try? r.required(Key.sequenceNumber) { v, p throws(CPNPDecodingError) in try v.integer(at: p, in: 0...Int64(UInt32.max)) }
        var method: MethodCode?
        if case .number(let m)? = o[Key.method], let i = m.int64Value { method = MethodCode(rawValue: Int(i)) }
        return MessageCorrelation(
            method: method,
            sequenceNumber: seq.map { SequenceNumber($0) },
            transactionID: tid,
            customerOrderID: coid,
            providerOrderID: try? r.required(Key.providerOrderID, MessageReader.providerOrderID))
    }

    /// Encodes a message as compact, deterministic JSON bytes.
    public static func encode(_ message: CPNPMessage) -> [UInt8] {
        guard let document = message.carriedCPD else { return JSONSerializer.serialize(encodeJSON(message)) }
        // The CPD's bytes are encoded once per document and written in place of its value.
        guard case .object(let object) = encodeJSON(message, document: { _ in .null }) else { return [] }
        return JSONSerializer.serialize(object, writingMember: Key.cpd, as: document.compactJSON)
    }

    /// Encodes a message as a JSON value with the keys in the fixed order of docs/protocol.md §2.3.
    public static func encodeJSON(_ message: CPNPMessage) -> JSONValue {
        encodeJSON(message, document: \.json)
    }

    /// As ``encodeJSON(_:)``, with each CPD written by `document` (snapshots write a reference, ``CPDReferences``).
    static func encodeJSON(_ message: CPNPMessage, document: (CPD) -> JSONValue) -> JSONValue {
        var o = JSONObject()
        o[Key.version] = .number(CPNPDecimal(Int64(CPNPMessage.version)))
        o[Key.method] = .number(CPNPDecimal(Int64(message.method.rawValue)))
        o[Key.sequenceNumber] = .number(CPNPDecimal(Int64(message.sequenceNumber)))
        o[Key.transactionID] = .string(message.transactionID.rawValue)
        o[Key.customerOrderID] = .string(message.customerOrderID.rawValue)
        if let p = message.providerOrderID { o[Key.providerOrderID] = .string(p.rawValue) }
        if let n = message.nonce { o[Key.nonce] = .string(n.rawValue) }
        func time(_ t: CPNPTimestamp?) -> JSONValue? { t.map { .string($0.rfc3339) } }
        switch message {
        case .quotation(let m):
            o[Key.expectedResponseTime] = time(m.expectedResponseTime)
            o[Key.cpd] = document(m.requestedCPD)
            o[Key.informationElements] = m.informationElements.map(IEWriter.informationElements)
        case .processing(let m):
            o[Key.expectedOfferTime] = time(m.expectedOfferTime)
            o[Key.processingSubcode] = m.processingSubcode.map { .number(CPNPDecimal(Int64($0.rawValue))) }
        case .offer(let m):
            o[Key.validityOfferTime] = time(m.validityOfferTime)
            o[Key.cpd] = document(m.offeredCPD)
            o[Key.informationElements] = m.informationElements.map(IEWriter.informationElements)
        case .accept(let m):
            o[Key.cpd] = document(m.acceptedCPD)
            o[Key.informationElements] = m.informationElements.map(IEWriter.informationElements)
        case .decline(let m):
            if !m.reasons.isEmpty {
                o[Key.reasons] = .array(m.reasons.map { .number(CPNPDecimal(Int64($0.rawValue))) })
            }
        case .ack(let m):
            o[Key.expectedResponseTime] = time(m.expectedResponseTime)
            o[Key.cpd] = m.cpd.map(document)
            o[Key.informationElements] = m.informationElements.map(IEWriter.informationElements)
        case .cancel(let m):
            o[Key.cpd] = m.cpd.map(document)
        case .withdraw(let m):
            o[Key.cpd] = m.acceptedCPD.map(document)
            o[Key.informationElements] = m.informationElements.map(IEWriter.informationElements)
        case .update(let m):
            o[Key.expectedResponseTime] = time(m.expectedResponseTime)
            o[Key.cpd] = document(m.requestedCPD)
            o[Key.informationElements] = m.informationElements.map(IEWriter.informationElements)
        case .fail(let m):
            o[Key.statusCode] = .number(CPNPDecimal(Int64(m.statusCode.rawValue)))
            o[Key.diagnostic] = m.diagnostic.map { .string($0) }
        case .activate(let m):
            switch m.activationSchedule {
            case .now: o[Key.activationSchedule] = .null
            case .deactivate: o[Key.activationSchedule] = .number(0)
            case .at(let t): o[Key.activationSchedule] = .string(t.rfc3339)
            }
            o[Key.informationElements] = m.informationElements.map(IEWriter.informationElements)
        }
        return .object(o)
    }

    /// Wire keys (docs/protocol.md §3).
    public enum Key {
        public static let version = "version"
        public static let method = "method"
        public static let sequenceNumber = "sequence-number"
        public static let transactionID = "transaction-id"
        public static let customerOrderID = "customer-order-id"
        public static let providerOrderID = "provider-order-id"
        public static let nonce = "nonce"
        public static let expectedResponseTime = "expected-response-time"
        public static let expectedOfferTime = "expected-offer-time"
        public static let validityOfferTime = "validity-offer-time"
        public static let activationSchedule = "activation-schedule"
        public static let processingSubcode = "processing-subcode"
        public static let statusCode = "status-code"
        public static let diagnostic = "diagnostic"
        public static let reasons = "reasons"
        public static let cpd = "cpd"
        public static let informationElements = "information-elements"
    }
}

/// The readable identifiers of a message that failed validation.
public struct MessageCorrelation: Sendable, Hashable {
    public var method: MethodCode?
    public var sequenceNumber: SequenceNumber?
    public var transactionID: TransactionID
    public var customerOrderID: CustomerOrderID
    public var providerOrderID: ProviderOrderID?
}

/// Reads attributes of one JSON object with paths rooted at the message.
struct MessageReader {
    let object: JSONObject
    let base = JSONPath.root

    typealias Decode<T> = (JSONValue, JSONPath) throws(CPNPDecodingError) -> T

    func required<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T {
        let v = try object.required(key, at: base)
        if case .null = v { throw CPNPDecodingError(.wrongType, at: base.appending(key), "mandatory attribute is null") }
        return try decode(v, base.appending(key))
    }

    /// Mandatory key whose value may be `null` (ACTIVATION_SCHEDULE).
    func requiredAllowingNull<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T {
        try decode(try object.required(key, at: base), base.appending(key))
    }

    /// Optional key; absent or `null` → nil.
    func optional<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T? {
        guard let v = object[key] else { return nil }
        if case .null = v { return nil }
        return try decode(v, base.appending(key))
    }

    static func transactionID(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> TransactionID {
        let s = try v.string(at: p, maxLength: 64)
        guard let t = TransactionID(s) else {
            throw CPNPDecodingError(.invalidValue, at: p, "transaction id must be 16…64 characters of [0-9A-Za-z_-]")
        }
        return t
    }

    static func customerOrderID(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> CustomerOrderID {
        let s = try v.string(at: p, maxLength: 128)
        guard let c = CustomerOrderID(s) else {
            throw CPNPDecodingError(.invalidValue, at: p, "customer order id must be 1…128 printable characters")
        }
        return c
    }

    static func providerOrderID(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> ProviderOrderID {
        let s = try v.string(at: p, maxLength: 128)
        guard let c = ProviderOrderID(s) else {
            throw CPNPDecodingError(.invalidValue, at: p, "provider order id must be 1…128 printable characters")
        }
        return c
    }

    static func nonce(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> Nonce {
        let s = try v.string(at: p, maxLength: 32)
        guard let n = Nonce(s) else {
            throw CPNPDecodingError(.invalidValue, at: p, "nonce must be 32 lowercase hexadecimal characters")
        }
        return n
    }

    static func timestamp(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> CPNPTimestamp {
        let s = try v.string(at: p, maxLength: 64)
        guard let t = CPNPTimestamp(rfc3339: s) else {
            throw CPNPDecodingError(.invalidValue, at: p, "not an RFC 3339 date-time: \"\(s)\"")
        }
        // An offset can move the instant out of years 0…9999, which RFC 3339 cannot write in UTC.
        guard t >= earliestTime, t <= latestTime else {
            throw CPNPDecodingError(.outOfRange, at: p, "\"\(s)\" is outside the years 0000…9999 in UTC")
        }
        return t
    }

    static let earliestTime = CPNPTimestamp(year: 0, month: 1, day: 1)!
    static let latestTime = CPNPTimestamp(year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59, millisecond: 999)!

    static func cpd(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> CPD {
        try CPDInterning.document(v, at: p)
    }

    static func code<T>(_ make: @escaping (Int) -> T?, _ what: String) -> Decode<T> {
        return { (v: JSONValue, p: JSONPath) throws(CPNPDecodingError) -> T in
            let i = try v.integer(at: p, in: 0...1000)
            guard let c = make(Int(i)) else { throw CPNPDecodingError(.invalidValue, at: p, "unknown \(what) \(i)") }
            return c
        }
    }

    static func reasons(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> [DeclineReason] {
        let a = try v.array(at: p, maxCount: 16)
        var out: [DeclineReason] = []
        for (i, e) in a.enumerated() {
            out.append(try code(DeclineReason.init(rawValue:), "decline reason")(e, p.appending(index: i)))
        }
        return out
    }

    static func activationSchedule(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> ActivationSchedule {
        switch v {
        case .null: return .now
        case .number(let d):
            guard d.isZero else { throw CPNPDecodingError(.invalidValue, at: p, "the only number allowed is 0 (deactivate)") }
            return .deactivate
        case .string:
            return .at(try timestamp(v, p))
        default:
            throw JSONValue.wrongType("null, 0 or an RFC 3339 date-time", v, p)
        }
    }

    static func informationElements(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> InformationElements {
        let o = try v.object(at: p)
        let r = Sub(object: o, base: p)
        return InformationElements(
            customerDescription: try r.optional("customer-description") { v, p throws(CPNPDecodingError) in
                let o = try v.object(at: p)
                let r = Sub(object: o, base: p)
                return CustomerDescription(
                    name: try r.optional("name") { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 256) },
                    contact: try r.optional("contact", contact))
            },
            providerDescription: try r.optional("provider-description") { v, p throws(CPNPDecodingError) in
                let o = try v.object(at: p)
                let r = Sub(object: o, base: p)
                return ProviderDescription(
                    name: try r.optional("name") { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 256) },
                    contact: try r.optional("contact", contact),
                    asNumber: try r.optional("as-number") { v, p throws(CPNPDecodingError) in
                        UInt32(try v.integer(at: p, in: 0...Int64(UInt32.max)))
                    })
            },
            negotiationOptions: try r.optional("negotiation-options", negotiationOptions),
            cost: try r.optional("cost", cost))
    }

    static func contact(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> ContactInformation {
        let o = try v.object(at: p)
        let r = Sub(object: o, base: p)
        var phones: [String] = []
        if let a = try r.optional("telephone-numbers", { v, p throws(CPNPDecodingError) in try v.array(at: p, maxCount: 16) }) {
            for (i, e) in a.enumerated() { phones.append(try e.string(at: p.appending("telephone-numbers").appending(index: i), maxLength: 64)) }
        }
        return ContactInformation(
            email: try r.optional("email") { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 256) },
            postalAddress: try r.optional("postal-address") { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 1024) },
            telephoneNumbers: phones)
    }

    static func negotiationOptions(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> NegotiationOptions {
        let o = try v.object(at: p)
        let r = Sub(object: o, base: p)
        func enumValue<E: RawRepresentable<String>>(_ key: String, _: E.Type) throws(CPNPDecodingError) -> E? {
            try r.optional(key) { v, p throws(CPNPDecodingError) in
                let s = try v.string(at: p, maxLength: 32)
                guard let e = E(rawValue: s) else { throw CPNPDecodingError(.invalidValue, at: p, "unknown value \"\(s)\"") }
                return e
            }
        }
        var costRequested = false
        if let c = o["cost"] {
            switch c {
            case .null: costRequested = true
            default: throw JSONValue.wrongType("null (asks the server to price its offer)", c, p.appending("cost"))
            }
        }
        return NegotiationOptions(
            purpose: try enumValue("purpose", Purpose.self),
            testPeriodEnd: try r.optional("test-period-end", timestamp),
            activationType: try enumValue("activation-type", ActivationType.self),
            activationSchedule: try r.optional("activation-schedule", timestamp),
            localOnly: try r.optional("local-only") { v, p throws(CPNPDecodingError) in try v.bool(at: p) },
            costRequested: costRequested,
            providerChain: try r.optional("provider-chain") { v, p throws(CPNPDecodingError) in
                try v.array(at: p, maxCount: 16).enumerated().map { i, e throws(CPNPDecodingError) in try e.string(at: p.appending(index: i), maxLength: 256) }
            } ?? [])
    }

    static func cost(_ v: JSONValue, _ p: JSONPath) throws(CPNPDecodingError) -> Cost {
        let o = try v.object(at: p)
        let r = Sub(object: o, base: p)
        let amountText = try r.required("amount") { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 40) }
        guard let amount = CPNPDecimal(parsing: amountText), amountText.utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == 0x2e || $0 == 0x2d }) else {
            throw CPNPDecodingError(.invalidValue, at: p.appending("amount"), "amount must be a decimal string such as \"1250.00\"")
        }
        let currency = try r.required("currency") { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 3) }
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ (0x41...0x5a).contains($0) }) else {
            throw CPNPDecodingError(.invalidValue, at: p.appending("currency"), "currency must be an ISO 4217 code such as \"EUR\"")
        }
        return Cost(
            amount: amount, currency: currency,
            period: try r.optional("period") { v, p throws(CPNPDecodingError) in try v.string(at: p, maxLength: 32) })
    }

    /// A reader for a nested object.
    struct Sub {
        let object: JSONObject
        let base: JSONPath
        func required<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T {
            try decode(try object.required(key, at: base), base.appending(key))
        }
        func optional<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T? {
            guard let v = object[key] else { return nil }
            if case .null = v { return nil }
            return try decode(v, base.appending(key))
        }
    }
}

/// Encodes information elements with a fixed key order.
enum IEWriter {
    static func informationElements(_ ie: InformationElements) -> JSONValue {
        var o = JSONObject()
        if let c = ie.customerDescription {
            var d = JSONObject()
            if let n = c.name { d["name"] = .string(n) }
            if let ct = c.contact { d["contact"] = contact(ct) }
            o["customer-description"] = .object(d)
        }
        if let pd = ie.providerDescription {
            var d = JSONObject()
            if let n = pd.name { d["name"] = .string(n) }
            if let a = pd.asNumber { d["as-number"] = .number(CPNPDecimal(Int64(a))) }
            if let ct = pd.contact { d["contact"] = contact(ct) }
            o["provider-description"] = .object(d)
        }
        if let n = ie.negotiationOptions {
            var d = JSONObject()
            if let v = n.purpose { d["purpose"] = .string(v.rawValue) }
            if let v = n.testPeriodEnd { d["test-period-end"] = .string(v.rfc3339) }
            if let v = n.activationType { d["activation-type"] = .string(v.rawValue) }
            if let v = n.activationSchedule { d["activation-schedule"] = .string(v.rfc3339) }
            if let v = n.localOnly { d["local-only"] = .bool(v) }
            if n.costRequested { d["cost"] = .null }
            if !n.providerChain.isEmpty { d["provider-chain"] = .array(n.providerChain.map { .string($0) }) }
            o["negotiation-options"] = .object(d)
        }
        if let c = ie.cost {
            var d = JSONObject()
            d["amount"] = .string(c.amountText)  // never scientific notation, which decoding refuses; the currency's minor-unit digits
            d["currency"] = .string(c.currency)
            if let p = c.period { d["period"] = .string(p) }
            o["cost"] = .object(d)
        }
        return .object(o)
    }

    static func contact(_ c: ContactInformation) -> JSONValue {
        var d = JSONObject()
        if let e = c.email { d["email"] = .string(e) }
        if let p = c.postalAddress { d["postal-address"] = .string(p) }
        if !c.telephoneNumbers.isEmpty { d["telephone-numbers"] = .array(c.telephoneNumbers.map { .string($0) }) }
        return .object(d)
    }
}
