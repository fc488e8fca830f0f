/// The header members a stored message leaves out where they are its order's and transaction's
/// (the server's snapshots, docs/design/storage.md): the version, the transaction id and the order ids.
/// A provider order id the message lacks while the order has one is written as null. The snapshot's
/// agreements leave out the same order ids (Sources/CPNPCore/StateMachines/Snapshots.swift).
struct MessageHeader: Sendable {
    var transactionID: TransactionID
    var customerOrderID: CustomerOrderID
    var providerOrderID: ProviderOrderID?

    /// `json` with the members it left out put back, ready for ``CPNPCodec/decode(json:)``.
    func restored(_ json: JSONValue) -> JSONValue {
        guard case .object(var object) = json else { return json }
        typealias Key = CPNPCodec.Key
        if object[Key.version] == nil { object[Key.version] = .number(1) }
        if object[Key.transactionID] == nil { object[Key.transactionID] = .string(transactionID.rawValue) }
        if object[Key.customerOrderID] == nil { object[Key.customerOrderID] = .string(customerOrderID.rawValue) }
        switch object[Key.providerOrderID] {
        case .null?: object[Key.providerOrderID] = nil
        case nil: object[Key.providerOrderID] = providerOrderID.map { .string($0.rawValue) }
        default: break
        }
        return .object(object)
    }
}

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

    /// Decodes one message from its bytes, taking its CPD from `documents` when the bytes at its
    /// top-level `cpd` member are one of theirs (``parse(_:limits:documents:)``).
    public static func decode(
        _ bytes: some Collection<UInt8>, limits: JSONParser.Limits = .datagram, documents: (CustomerOrderID) -> [CPD]
    ) throws(CPNPDecodingError) -> CPNPMessage {
        try decode(parse(bytes, limits: limits, documents: documents))
    }

    /// A message parsed, its CPD perhaps recognised (``parse(_:limits:documents:)``).
    public struct ParsedMessage: Sendable {
        /// The message as JSON; without its `cpd` member when ``recognizedCPD`` is set.
        public var json: JSONValue
        /// The CPD found at `cpd` as the bytes of one the receiver holds.
        public var recognizedCPD: CPD?
        /// The size of the message.
        public var byteCount = 0
    }

    /// Parses one message, recognising its CPD by bytes: `documents` names, for the customer order id
    /// read before `cpd`, the CPDs the receiver holds for that order (an ACCEPT carries the offered CPD,
    /// an ACK the accepted one). When the bytes at `cpd` are one of those documents' compact JSON, the
    /// parser steps over them and the message takes that document, without building or decoding a
    /// tree; otherwise the CPD is parsed as always. Both ways give an equal message.
    public static func parse(
        _ bytes: some Collection<UInt8>, limits: JSONParser.Limits = .datagram, documents: (CustomerOrderID) -> [CPD]
    ) throws(CPNPDecodingError) -> ParsedMessage {
        var none = RecentDocuments(capacity: 0)
        return try parse(bytes, limits: limits, documents: documents, recent: &none)
    }

    /// ``parse(_:limits:documents:)``, recognising as well the documents `recent` offers: those of
    /// other orders seen lately (``RecentDocuments``). A document recognised there becomes its most
    /// recently seen; the receiver remembers a new one once it accepted the message
    /// (``RecentDocuments/remember(carriedBy:parsed:limits:)``).
    public static func parse(
        _ bytes: some Collection<UInt8>, limits: JSONParser.Limits = .datagram, documents: (CustomerOrderID) -> [CPD],
        recent: inout RecentDocuments
    ) throws(CPNPDecodingError) -> ParsedMessage {
        let others = recent.candidates(under: limits)
        var held: [CPD] = []
        let parsed = try JSONParser.parse(bytes, limits: limits, recognizing: Key.cpd, more: others.bytes) { members in
            guard case .string(let text)? = members[Key.customerOrderID], let customerOrderID = CustomerOrderID(text) else { return [] }
            held = documents(customerOrderID)
            return held.map(\.compactJSON)
        }
        var recognized: CPD?
        if let index = parsed.candidate {
            if index < held.count {
                recognized = held[index]
            } else {
                recognized = others.documents[index - held.count]
                recent.touch(index - held.count)
            }
        }
        return ParsedMessage(json: parsed.value, recognizedCPD: recognized, byteCount: bytes.count)
    }

    /// Decodes a parsed message, taking its recognised CPD as its `cpd`.
    public static func decode(_ parsed: ParsedMessage) throws(CPNPDecodingError) -> CPNPMessage {
        try decode(json: parsed.json, recognizedCPD: parsed.recognizedCPD)
    }

    /// Decodes one message from a parsed JSON value.
    public static func decode(json: JSONValue) throws(CPNPDecodingError) -> CPNPMessage {
        try decode(json: json, recognizedCPD: nil)
    }

    private static func decode(json: JSONValue, recognizedCPD: CPD?) throws(CPNPDecodingError) -> CPNPMessage {
        let root = JSONPath.root
        guard case .object(let object) = json else {
            throw CPNPDecodingError(.notAnObject, at: root, "a CPNP message must be a JSON object, found \(json.typeName)")
        }
        let version = try object.required(Key.version, at: root)
        guard case .number(let versionNumber) = version else {
            throw JSONValue.wrongType("an integer", version, root.appending(Key.version))
        }
        guard versionNumber.int64Value == 1 else {
            throw CPNPDecodingError(.unsupportedVersion, at: root.appending(Key.version), "version \(versionNumber) is not supported, only 1")
        }
        let methodValue = try object.required(Key.method, at: root)
        guard case .number(let methodNumber) = methodValue else {
            throw JSONValue.wrongType("an integer", methodValue, root.appending(Key.method))
        }
        guard let methodInteger = methodNumber.int64Value, let method = MethodCode(rawValue: Int(methodInteger)) else {
            throw CPNPDecodingError(.unknownMethod, at: root.appending(Key.method), "unknown method code \(methodNumber)")
        }
        let reader = MessageReader(object: object, recognizedCPD: recognizedCPD)
        let sequenceNumber = SequenceNumber(
            try reader.required(Key.sequenceNumber) { value, path throws(CPNPDecodingError) in try value.integer(at: path, in: 0...Int64(UInt32.max))
            })
        let transactionID = try reader.required(Key.transactionID, MessageReader.transactionID)
        let customerOrderID = try reader.required(Key.customerOrderID, MessageReader.customerOrderID)

        switch method {
        case .quotation:
            return .quotation(
                QuotationMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    expectedResponseTime: try reader.optional(Key.expectedResponseTime, MessageReader.timestamp),
                    requestedCPD: try reader.requiredCPD(),
                    informationElements: try reader.optional(Key.informationElements, MessageReader.informationElements)))
        case .processing:
            return .processing(
                ProcessingMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    expectedOfferTime: try reader.optional(Key.expectedOfferTime, MessageReader.timestamp),
                    processingSubcode: try reader.optional(
                        Key.processingSubcode, MessageReader.code(ProcessingSubcode.init(rawValue:), "processing subcode"))))
        case .offer:
            return .offer(
                OfferMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    nonce: try reader.required(Key.nonce, MessageReader.nonce),
                    validityOfferTime: try reader.required(Key.validityOfferTime, MessageReader.timestamp),
                    offeredCPD: try reader.requiredCPD(),
                    informationElements: try reader.optional(Key.informationElements, MessageReader.informationElements)))
        case .accept:
            return .accept(
                AcceptMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    nonce: try reader.required(Key.nonce, MessageReader.nonce),
                    acceptedCPD: try reader.requiredCPD(),
                    informationElements: try reader.optional(Key.informationElements, MessageReader.informationElements)))
        case .decline:
            return .decline(
                DeclineMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    nonce: try reader.required(Key.nonce, MessageReader.nonce),
                    reasons: try reader.optional(Key.reasons, MessageReader.reasons) ?? []))
        case .ack:
            return .ack(
                AckMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    expectedResponseTime: try reader.optional(Key.expectedResponseTime, MessageReader.timestamp),
                    cpd: try reader.optionalCPD(),
                    informationElements: try reader.optional(Key.informationElements, MessageReader.informationElements)))
        case .cancel:
            return .cancel(
                CancelMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    cpd: try reader.optionalCPD()))
        case .withdraw:
            return .withdraw(
                WithdrawMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    nonce: try reader.required(Key.nonce, MessageReader.nonce),
                    acceptedCPD: try reader.optionalCPD(),
                    informationElements: try reader.optional(Key.informationElements, MessageReader.informationElements)))
        case .update:
            return .update(
                UpdateMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    nonce: try reader.required(Key.nonce, MessageReader.nonce),
                    expectedResponseTime: try reader.required(Key.expectedResponseTime, MessageReader.timestamp),
                    requestedCPD: try reader.requiredCPD(),
                    informationElements: try reader.optional(Key.informationElements, MessageReader.informationElements)))
        case .fail:
            return .fail(
                FailMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.optional(Key.providerOrderID, MessageReader.providerOrderID),
                    statusCode: try reader.required(Key.statusCode, MessageReader.code(FailStatusCode.init(rawValue:), "status code")),
                    diagnostic: try reader.optional(Key.diagnostic) { value, path throws(CPNPDecodingError) in
                        try value.string(at: path, maxLength: 256)
                    }))
        case .activate:
            return .activate(
                ActivateMessage(
                    sequenceNumber: sequenceNumber, transactionID: transactionID, customerOrderID: customerOrderID,
                    providerOrderID: try reader.required(Key.providerOrderID, MessageReader.providerOrderID),
                    nonce: try reader.required(Key.nonce, MessageReader.nonce),
                    activationSchedule: try reader.requiredAllowingNull(Key.activationSchedule, MessageReader.activationSchedule),
                    informationElements: try reader.optional(Key.informationElements, MessageReader.informationElements)))
        }
    }

    /// The identifiers of a message that failed to decode, as far as they are readable, so that a
    /// server can still answer FAIL 1 to the right transaction (RFC 8921 §10.2; docs/protocol.md §6, A6).
    public static func correlation(of json: JSONValue) -> MessageCorrelation? {
        guard case .object(let object) = json else { return nil }
        let reader = MessageReader(object: object)
        guard let transactionID = try? reader.required(Key.transactionID, MessageReader.transactionID),
            let customerOrderID = try? reader.required(Key.customerOrderID, MessageReader.customerOrderID)
        else { return nil }
        let sequenceNumber = try? reader.required(Key.sequenceNumber) { value, path throws(CPNPDecodingError) in
            try value.integer(at: path, in: 0...Int64(UInt32.max))
        }
        var method: MethodCode?
        if case .number(let methodNumber)? = object[Key.method], let methodInteger = methodNumber.int64Value {
            method = MethodCode(rawValue: Int(methodInteger))
        }
        return MessageCorrelation(
            method: method,
            sequenceNumber: sequenceNumber.map { SequenceNumber($0) },
            transactionID: transactionID,
            customerOrderID: customerOrderID,
            providerOrderID: try? reader.required(Key.providerOrderID, MessageReader.providerOrderID))
    }

    /// Encodes a message as compact, deterministic JSON bytes, written member by member (no tree); a
    /// CPD's bytes are those it encoded once (``ConnectivityProvisioningDocument/compactJSON``).
    public static func encode(_ message: CPNPMessage) -> [UInt8] {
        var writer = JSONWriter(capacity: 320 + (message.carriedCPD?.compactJSON.count ?? 0))
        write(message, into: &writer) { document, writer in writer.raw(document.compactJSON) }
        return writer.bytes
    }

    /// The encoding of ``encode(_:)`` as a JSON value (tools, tests), the keys in the fixed order of
    /// docs/protocol.md §2.3.
    public static func encodeJSON(_ message: CPNPMessage) -> JSONValue {
        // Parsing what was just written cannot fail; the limits are those of a stored value, not of a datagram.
        (try? JSONParser.parse(encode(message), limits: .stored)) ?? .null
    }

    /// Writes `message` as one JSON object, each CPD written by `document` (snapshots write a
    /// reference, ``CPDReferences``), the keys in the fixed order of docs/protocol.md §2.3. With
    /// `header`, the version and the ids that `header` holds are left out (``MessageHeader``).
    static func write(
        _ message: CPNPMessage, into writer: inout JSONWriter, header: MessageHeader? = nil, document: (CPD, inout JSONWriter) -> Void
    ) {
        writer.beginObject()
        if header == nil { writer.member(Key.version, CPNPMessage.version) }
        writer.member(Key.method, message.method.rawValue)
        writer.member(Key.sequenceNumber, message.sequenceNumber)
        if message.transactionID != header?.transactionID { writer.member(Key.transactionID, message.transactionID.rawValue) }
        if message.customerOrderID != header?.customerOrderID { writer.member(Key.customerOrderID, message.customerOrderID.rawValue) }
        if let header, message.providerOrderID == nil, header.providerOrderID != nil {
            writer.key(Key.providerOrderID)
            writer.null()
        } else if message.providerOrderID != header?.providerOrderID {
            writer.member(Key.providerOrderID, ifPresent: message.providerOrderID?.rawValue)
        }
        writer.member(Key.nonce, ifPresent: message.nonce?.rawValue)
        func time(_ key: String, _ timestamp: CPNPTimestamp?) { writer.member(key, ifPresent: timestamp?.rfc3339) }
        func cpd(_ carried: CPD?) {
            guard let carried else { return }
            writer.key(Key.cpd)
            document(carried, &writer)
        }
        func informationElements(_ elements: InformationElements?) {
            guard let elements else { return }
            writer.key(Key.informationElements)
            IEWriter.write(elements, into: &writer)
        }
        switch message {
        case .quotation(let quotation):
            time(Key.expectedResponseTime, quotation.expectedResponseTime)
            cpd(quotation.requestedCPD)
            informationElements(quotation.informationElements)
        case .processing(let processing):
            time(Key.expectedOfferTime, processing.expectedOfferTime)
            if let subcode = processing.processingSubcode { writer.member(Key.processingSubcode, subcode.rawValue) }
        case .offer(let offer):
            time(Key.validityOfferTime, offer.validityOfferTime)
            cpd(offer.offeredCPD)
            informationElements(offer.informationElements)
        case .accept(let accept):
            cpd(accept.acceptedCPD)
            informationElements(accept.informationElements)
        case .decline(let decline):
            if !decline.reasons.isEmpty {
                writer.key(Key.reasons)
                writer.beginArray()
                for reason in decline.reasons { writer.integer(reason.rawValue) }
                writer.endArray()
            }
        case .ack(let ack):
            time(Key.expectedResponseTime, ack.expectedResponseTime)
            cpd(ack.cpd)
            informationElements(ack.informationElements)
        case .cancel(let cancel):
            cpd(cancel.cpd)
        case .withdraw(let withdraw):
            cpd(withdraw.acceptedCPD)
            informationElements(withdraw.informationElements)
        case .update(let update):
            time(Key.expectedResponseTime, update.expectedResponseTime)
            cpd(update.requestedCPD)
            informationElements(update.informationElements)
        case .fail(let fail):
            writer.member(Key.statusCode, fail.statusCode.rawValue)
            writer.member(Key.diagnostic, ifPresent: fail.diagnostic)
        case .activate(let activate):
            writer.key(Key.activationSchedule)
            switch activate.activationSchedule {
            case .now: writer.null()
            case .deactivate: writer.integer(0)
            case .at(let timestamp): writer.string(timestamp.rfc3339)
            }
            informationElements(activate.informationElements)
        }
        writer.endObject()
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
    /// The CPD recognised by its bytes, left out of `object` (``CPNPCodec/parse(_:limits:documents:)``).
    var recognizedCPD: CPD? = nil
    let base = JSONPath.root

    func requiredCPD() throws(CPNPDecodingError) -> CPD {
        if let recognizedCPD { return recognizedCPD }
        return try required(CPNPCodec.Key.cpd, Self.cpd)
    }

    func optionalCPD() throws(CPNPDecodingError) -> CPD? {
        if let recognizedCPD { return recognizedCPD }
        return try optional(CPNPCodec.Key.cpd, Self.cpd)
    }

    typealias Decode<T> = (JSONValue, JSONPath) throws(CPNPDecodingError) -> T

    func required<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T {
        let value = try object.required(key, at: base)
        if case .null = value { throw CPNPDecodingError(.wrongType, at: base.appending(key), "mandatory attribute is null") }
        return try decode(value, base.appending(key))
    }

    /// Mandatory key whose value may be `null` (ACTIVATION_SCHEDULE).
    func requiredAllowingNull<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T {
        try decode(try object.required(key, at: base), base.appending(key))
    }

    /// Optional key; absent or `null` → nil.
    func optional<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T? {
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        return try decode(value, base.appending(key))
    }

    static func transactionID(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> TransactionID {
        let text = try value.string(at: path, maxLength: 64)
        guard let identifier = TransactionID(text) else {
            throw CPNPDecodingError(.invalidValue, at: path, "transaction id must be 16…64 characters of [0-9A-Za-z_-]")
        }
        return identifier
    }

    static func customerOrderID(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> CustomerOrderID {
        let text = try value.string(at: path, maxLength: 128)
        guard let identifier = CustomerOrderID(text) else {
            throw CPNPDecodingError(.invalidValue, at: path, "customer order id must be 1…128 printable characters")
        }
        return identifier
    }

    static func providerOrderID(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> ProviderOrderID {
        let text = try value.string(at: path, maxLength: 128)
        guard let identifier = ProviderOrderID(text) else {
            throw CPNPDecodingError(.invalidValue, at: path, "provider order id must be 1…128 printable characters")
        }
        return identifier
    }

    static func nonce(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> Nonce {
        let text = try value.string(at: path, maxLength: 32)
        guard let nonce = Nonce(text) else {
            throw CPNPDecodingError(.invalidValue, at: path, "nonce must be 32 lowercase hexadecimal characters")
        }
        return nonce
    }

    static func timestamp(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> CPNPTimestamp {
        let text = try value.string(at: path, maxLength: 64)
        guard let timestamp = CPNPTimestamp(rfc3339: text) else {
            throw CPNPDecodingError(.invalidValue, at: path, "not an RFC 3339 date-time: \"\(text)\"")
        }
        // An offset can move the instant out of years 0…9999, which RFC 3339 cannot write in UTC.
        guard timestamp >= earliestTime, timestamp <= latestTime else {
            throw CPNPDecodingError(.outOfRange, at: path, "\"\(text)\" is outside the years 0000…9999 in UTC")
        }
        return timestamp
    }

    static let earliestTime = CPNPTimestamp(year: 0, month: 1, day: 1)!
    static let latestTime = CPNPTimestamp(year: 9999, month: 12, day: 31, hour: 23, minute: 59, second: 59, millisecond: 999)!

    static func cpd(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> CPD {
        try CPDInterning.document(value, at: path)
    }

    static func code<T>(_ make: @escaping (Int) -> T?, _ what: String) -> Decode<T> {
        return { (value: JSONValue, path: JSONPath) throws(CPNPDecodingError) -> T in
            let integer = try value.integer(at: path, in: 0...1000)
            guard let decoded = make(Int(integer)) else { throw CPNPDecodingError(.invalidValue, at: path, "unknown \(what) \(integer)") }
            return decoded
        }
    }

    static func reasons(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> [DeclineReason] {
        let elements = try value.array(at: path, maxCount: 16)
        var out: [DeclineReason] = []
        for (i, element) in elements.enumerated() {
            out.append(try code(DeclineReason.init(rawValue:), "decline reason")(element, path.appending(index: i)))
        }
        return out
    }

    static func activationSchedule(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> ActivationSchedule {
        switch value {
        case .null: return .now
        case .number(let decimal):
            guard decimal.isZero else { throw CPNPDecodingError(.invalidValue, at: path, "the only number allowed is 0 (deactivate)") }
            return .deactivate
        case .string:
            return .at(try timestamp(value, path))
        default:
            throw JSONValue.wrongType("null, 0 or an RFC 3339 date-time", value, path)
        }
    }

    static func informationElements(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> InformationElements {
        let object = try value.object(at: path)
        let reader = Sub(object: object, base: path)
        return InformationElements(
            customerDescription: try reader.optional("customer-description") { value, path throws(CPNPDecodingError) in
                let object = try value.object(at: path)
                let reader = Sub(object: object, base: path)
                return CustomerDescription(
                    name: try reader.optional("name") { value, path throws(CPNPDecodingError) in try value.string(at: path, maxLength: 256) },
                    contact: try reader.optional("contact", contact))
            },
            providerDescription: try reader.optional("provider-description") { value, path throws(CPNPDecodingError) in
                let object = try value.object(at: path)
                let reader = Sub(object: object, base: path)
                return ProviderDescription(
                    name: try reader.optional("name") { value, path throws(CPNPDecodingError) in try value.string(at: path, maxLength: 256) },
                    contact: try reader.optional("contact", contact),
                    asNumber: try reader.optional("as-number") { value, path throws(CPNPDecodingError) in
                        UInt32(try value.integer(at: path, in: 0...Int64(UInt32.max)))
                    })
            },
            negotiationOptions: try reader.optional("negotiation-options", negotiationOptions),
            cost: try reader.optional("cost", cost))
    }

    static func contact(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> ContactInformation {
        let object = try value.object(at: path)
        let reader = Sub(object: object, base: path)
        var phones: [String] = []
        if let numbers = try reader.optional(
            "telephone-numbers", { value, path throws(CPNPDecodingError) in try value.array(at: path, maxCount: 16) })
        {
            for (i, number) in numbers.enumerated() {
                phones.append(try number.string(at: path.appending("telephone-numbers").appending(index: i), maxLength: 64))
            }
        }
        return ContactInformation(
            email: try reader.optional("email") { value, path throws(CPNPDecodingError) in try value.string(at: path, maxLength: 256) },
            postalAddress: try reader.optional("postal-address") { value, path throws(CPNPDecodingError) in
                try value.string(at: path, maxLength: 1024)
            },
            telephoneNumbers: phones)
    }

    static func negotiationOptions(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> NegotiationOptions {
        let object = try value.object(at: path)
        let reader = Sub(object: object, base: path)
        func enumValue<E: RawRepresentable<String>>(_ key: String, _: E.Type) throws(CPNPDecodingError) -> E? {
            try reader.optional(key) { value, path throws(CPNPDecodingError) in
                let text = try value.string(at: path, maxLength: 32)
                guard let decoded = E(rawValue: text) else { throw CPNPDecodingError(.invalidValue, at: path, "unknown value \"\(text)\"") }
                return decoded
            }
        }
        var costRequested = false
        if let costValue = object["cost"] {
            switch costValue {
            case .null: costRequested = true
            default: throw JSONValue.wrongType("null (asks the server to price its offer)", costValue, path.appending("cost"))
            }
        }
        return NegotiationOptions(
            purpose: try enumValue("purpose", Purpose.self),
            testPeriodEnd: try reader.optional("test-period-end", timestamp),
            activationType: try enumValue("activation-type", ActivationType.self),
            activationSchedule: try reader.optional("activation-schedule", timestamp),
            localOnly: try reader.optional("local-only") { value, path throws(CPNPDecodingError) in try value.bool(at: path) },
            costRequested: costRequested,
            providerChain: try reader.optional("provider-chain") { value, path throws(CPNPDecodingError) in
                try value.array(at: path, maxCount: 16).enumerated().map { i, element throws(CPNPDecodingError) in
                    try element.string(at: path.appending(index: i), maxLength: 256)
                }
            } ?? [])
    }

    static func cost(_ value: JSONValue, _ path: JSONPath) throws(CPNPDecodingError) -> Cost {
        let object = try value.object(at: path)
        let reader = Sub(object: object, base: path)
        let amountText = try reader.required("amount") { value, path throws(CPNPDecodingError) in try value.string(at: path, maxLength: 40) }
        guard let amount = CPNPDecimal(parsing: amountText), amountText.utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == 0x2e || $0 == 0x2d })
        else {
            throw CPNPDecodingError(.invalidValue, at: path.appending("amount"), "amount must be a decimal string such as \"1250.00\"")
        }
        let currency = try reader.required("currency") { value, path throws(CPNPDecodingError) in try value.string(at: path, maxLength: 3) }
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ (0x41...0x5a).contains($0) }) else {
            throw CPNPDecodingError(.invalidValue, at: path.appending("currency"), "currency must be an ISO 4217 code such as \"EUR\"")
        }
        return Cost(
            amount: amount, currency: currency,
            period: try reader.optional("period") { value, path throws(CPNPDecodingError) in try value.string(at: path, maxLength: 32) })
    }

    /// A reader for a nested object.
    struct Sub {
        let object: JSONObject
        let base: JSONPath
        func required<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T {
            try decode(try object.required(key, at: base), base.appending(key))
        }
        func optional<T>(_ key: String, _ decode: Decode<T>) throws(CPNPDecodingError) -> T? {
            guard let value = object[key] else { return nil }
            if case .null = value { return nil }
            return try decode(value, base.appending(key))
        }
    }
}

/// Encodes information elements with a fixed key order.
enum IEWriter {
    /// Writes the information elements as one JSON object (RFC 8921 §9.1.9; docs/protocol.md §3).
    static func write(_ informationElements: InformationElements, into writer: inout JSONWriter) {
        writer.beginObject()
        if let customer = informationElements.customerDescription {
            writer.object("customer-description") { fields in
                fields.member("name", ifPresent: customer.name)
                if let contactInformation = customer.contact { contact(contactInformation, into: &fields) }
            }
        }
        if let provider = informationElements.providerDescription {
            writer.object("provider-description") { fields in
                fields.member("name", ifPresent: provider.name)
                if let asNumber = provider.asNumber { fields.member("as-number", asNumber) }
                if let contactInformation = provider.contact { contact(contactInformation, into: &fields) }
            }
        }
        if let options = informationElements.negotiationOptions {
            writer.object("negotiation-options") { fields in
                fields.member("purpose", ifPresent: options.purpose?.rawValue)
                fields.member("test-period-end", ifPresent: options.testPeriodEnd?.rfc3339)
                fields.member("activation-type", ifPresent: options.activationType?.rawValue)
                fields.member("activation-schedule", ifPresent: options.activationSchedule?.rfc3339)
                if let value = options.localOnly { fields.member("local-only", value) }
                if options.costRequested {
                    fields.key("cost")
                    fields.null()
                }
                if !options.providerChain.isEmpty {
                    fields.key("provider-chain")
                    fields.beginArray()
                    for provider in options.providerChain { fields.string(provider) }
                    fields.endArray()
                }
            }
        }
        if let cost = informationElements.cost {
            writer.object("cost") { fields in
                fields.member("amount", cost.amountText)  // never scientific notation, which decoding refuses; the currency's minor-unit digits
                fields.member("currency", cost.currency)
                fields.member("period", ifPresent: cost.period)
            }
        }
        writer.endObject()
    }

    /// The contact members, inside the description's object.
    static func contact(_ information: ContactInformation, into writer: inout JSONWriter) {
        writer.object("contact") { fields in
            fields.member("email", ifPresent: information.email)
            fields.member("postal-address", ifPresent: information.postalAddress)
            if !information.telephoneNumbers.isEmpty {
                fields.key("telephone-numbers")
                fields.beginArray()
                for number in information.telephoneNumbers { fields.string(number) }
                fields.endArray()
            }
        }
    }
}
