/// Durable snapshots of the order state machines, so that a store can persist exactly what a machine
/// is and a restart loses nothing (RFC 8921 §8.11: persistent storage of orders is recommended).
///
/// A snapshot is a JSON object; messages inside it use the wire encoding (``CPNPCodec``), so a
/// snapshot stays readable with `cpnp inspect`-style tools. ``ServerOrderStateMachine/armedTimers``
/// and ``ClientOrderStateMachine/armedTimers`` tell the engine which timers to re-arm after a restart.

/// Raised when a stored snapshot cannot be read back.
public typealias SnapshotError = CPNPDecodingError

/// Writes snapshots straight to bytes (``JSONWriter``), each CPD in place or as the reference a
/// store gives it (``CPDReferences``).
struct SnapshotCoding {
    var writer = JSONWriter(capacity: 2_048)
    /// The reference of a stored document; nil: documents are written in place.
    let reference: ((CPD) -> String)?
    /// The order's ids and its transaction's, when the snapshot is compact (the server's,
    /// docs/design/storage.md): members whose value is null are left out, and so are an agreement's
    /// ids and a message's header members that are these (``MessageHeader``). A reader takes an
    /// absent member for null, and the ids from here. Nil: every member is written.
    var compactFor: MessageHeader?

    init(reference: ((CPD) -> String)?, compactFor header: MessageHeader? = nil) {
        self.reference = reference
        compactFor = header
    }

    /// Runs `body` with every member written (a server order's child, which is a client's machine).
    mutating func inFull(_ body: (inout SnapshotCoding) -> Void) {
        let saved = compactFor
        compactFor = nil
        body(&self)
        compactFor = saved
    }

    /// Writes the key of a member whose value is null, unless the snapshot is compact.
    mutating func null(_ key: String) {
        guard compactFor == nil else { return }
        writer.key(key)
        writer.null()
    }

    /// Writes `cpd` as its reference, or in place.
    static func write(_ cpd: CPD, into writer: inout JSONWriter, reference: ((CPD) -> String)?) {
        if let reference { writer.string(reference(cpd)) } else { writer.raw(cpd.compactJSON) }
    }

    mutating func document(_ key: String, _ cpd: CPD?) {
        guard let cpd else { return null(key) }
        writer.key(key)
        Self.write(cpd, into: &writer, reference: reference)
    }

    mutating func message(_ key: String, _ message: CPNPMessage?) {
        guard let message else { return null(key) }
        writer.key(key)
        let reference = reference
        CPNPCodec.write(message, into: &writer, header: compactFor) { cpd, writer in Self.write(cpd, into: &writer, reference: reference) }
    }

    mutating func optionalInteger(_ key: String, _ value: (some BinaryInteger)?) {
        guard let value else { return null(key) }
        writer.member(key, value)
    }

    mutating func optionalString(_ key: String, _ value: String?) {
        guard let value else { return null(key) }
        writer.member(key, value)
    }

    mutating func time(_ key: String, _ value: CPNPTimestamp?) {
        guard let value else { return null(key) }
        writer.member(key, time: value)
    }

    mutating func retransmission(_ policy: RetransmissionPolicy) {
        writer.object("retransmission") { fields in
            fields.member("initial-interval-ms", policy.initialInterval.milliseconds)
            fields.member("maximum-retries", policy.maximumRetries)
            fields.member("cached-answer-minimum-interval-ms", policy.cachedAnswerMinimumInterval.milliseconds)
        }
    }

    mutating func session(_ session: CPNPSession) {
        writer.object("session") { fields in
            for (key, endpoint) in [("local", session.local), ("remote", session.remote)] {
                fields.object(key) { address in
                    address.member("host", endpoint.host)
                    address.member("port", endpoint.port)
                }
            }
        }
    }

    mutating func sequence(_ counters: SequenceCounters) {
        writer.key("sequence")
        writer.beginObject()
        writer.member("next-outgoing", counters.nextOutgoing)
        optionalInteger("last-incoming", counters.lastIncoming)
        writer.endObject()
    }

    /// The value that stands for the order's offer where the snapshot holds it already (a server's
    /// pending OFFER and its cached answer are that offer): each CPD is encoded once.
    static let theOffer = "the-offer"

    mutating func message(_ key: String, _ storedMessage: CPNPMessage?, offer: OfferMessage?) {
        if let offer, case .offer(let sentOffer)? = storedMessage, sentOffer == offer { return writer.member(key, Self.theOffer) }
        message(key, storedMessage)
    }

    mutating func pending(_ pending: PendingRequest?, offer: OfferMessage? = nil) {
        guard let pending else { return null("pending") }
        writer.key("pending")
        writer.beginObject()
        message("message", pending.message, offer: offer)
        writer.member("retries", pending.retries)
        writer.endObject()
    }

    mutating func cache(_ cache: CachedExchange?, offer: OfferMessage? = nil) {
        guard let cache else { return null("cache") }
        writer.key("cache")
        writer.beginObject()
        message("incoming", cache.incoming)
        message("answer", cache.answer, offer: offer)
        time("last-resend", cache.lastResend)
        writer.endObject()
    }

    mutating func schedule(_ schedule: ActivationSchedule?) {
        switch schedule {
        case nil: optionalString("activation-schedule", nil)
        case .now?: writer.member("activation-schedule", "now")
        case .deactivate?: writer.member("activation-schedule", "deactivate")
        case .at(let timestamp)?: writer.member("activation-schedule", timestamp.rfc3339)
        }
    }

    static func activation(_ status: ActivationStatus) -> String {
        switch status {
        case .inactive: "inactive"
        case .active: "active"
        case .scheduled(let timestamp): timestamp.rfc3339
        }
    }

    mutating func informationElements(_ key: String, _ elements: InformationElements?) {
        guard let elements else { return null(key) }
        writer.key(key)
        IEWriter.write(elements, into: &writer)
    }

    /// An agreement as an object (no key: an array element), or null. Its ids are left out when they
    /// are the order's (``compactFor``).
    mutating func agreement(_ agreement: Agreement?) {
        guard let agreement else { return writer.null() }
        writer.beginObject()
        if compactFor?.customerOrderID != agreement.customerOrderID || compactFor?.providerOrderID != agreement.providerOrderID {
            writer.member("customer-order-id", agreement.customerOrderID.rawValue)
            writer.member("provider-order-id", agreement.providerOrderID.rawValue)
        }
        writer.member("nonce", agreement.nonce.rawValue)
        document("accepted-cpd", agreement.acceptedCPD)
        informationElements("information-elements", agreement.informationElements)
        writer.member("activation-type", agreement.activationType.rawValue)
        writer.member("purpose", agreement.purpose.rawValue)
        time("test-period-end", agreement.testPeriodEnd)
        time("activation-schedule", agreement.activationSchedule)
        writer.member("activation", Self.activation(agreement.activation))
        writer.member("agreed-at", time: agreement.agreedAt)
        writer.endObject()
    }

    mutating func agreement(_ key: String, _ value: Agreement?) {
        guard value != nil || compactFor == nil else { return }
        writer.key(key)
        agreement(value)
    }
}

/// Reads a snapshot object with typed, path-naming errors.
struct SnapshotReader {
    let object: JSONObject
    let path: JSONPath
    /// The order's ids and its transaction's, which the messages and agreements of a compact snapshot
    /// may leave out (``MessageHeader``), passed on to the readers of its members.
    var messageHeader: MessageHeader?

    init(_ value: JSONValue, at path: JSONPath) throws(SnapshotError) {
        object = try value.object(at: path)
        self.path = path
    }

    func value(_ key: String) throws(SnapshotError) -> JSONValue { try object.required(key, at: path) }
    func isNull(_ key: String) -> Bool { if case .null? = object[key] { true } else { object[key] == nil } }
    func sub(_ key: String) throws(SnapshotError) -> SnapshotReader { try member(value(key), at: path.appending(key)) }
    /// A reader of `value`, a member of this one's, with its ``messageHeader``.
    func member(_ value: JSONValue, at path: JSONPath) throws(SnapshotError) -> SnapshotReader {
        var reader = try SnapshotReader(value, at: path)
        reader.messageHeader = messageHeader
        return reader
    }
    func optionalSub(_ key: String) throws(SnapshotError) -> SnapshotReader? { isNull(key) ? nil : try sub(key) }

    func string(_ key: String) throws(SnapshotError) -> String { try value(key).string(at: path.appending(key), maxLength: 1 << 20) }
    func bool(_ key: String) throws(SnapshotError) -> Bool { try value(key).bool(at: path.appending(key)) }
    func int(_ key: String, _ range: ClosedRange<Int64>) throws(SnapshotError) -> Int64 { try value(key).integer(at: path.appending(key), in: range) }
    func optionalInt(_ key: String, _ range: ClosedRange<Int64>) throws(SnapshotError) -> Int64? { isNull(key) ? nil : try int(key, range) }

    func make<T>(_ key: String, _ what: String, _ parse: (String) -> T?) throws(SnapshotError) -> T {
        let text = try string(key)
        guard let parsed = parse(text) else { throw SnapshotError(.invalidValue, at: path.appending(key), "invalid \(what) \"\(text)\"") }
        return parsed
    }

    func time(_ key: String) throws(SnapshotError) -> CPNPTimestamp? {
        isNull(key) ? nil : try make(key, "timestamp") { CPNPTimestamp(rfc3339: $0) }
    }

    func message(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> CPNPMessage? {
        if isNull(key) { return nil }
        let json = try value(key)
        if case .string(SnapshotCoding.theOffer) = json {
            guard let offer else { throw SnapshotError(.invalidValue, at: path.appending(key), "refers to the offer, but the order has none") }
            return .offer(offer)
        }
        return try CPNPCodec.decode(json: messageHeader?.restored(json) ?? json)
    }

    func requiredMessage(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> CPNPMessage {
        guard let decoded = try message(key, offer: offer) else { throw SnapshotError(.missingField, at: path.appending(key), "message missing") }
        return decoded
    }

    func cpd(_ key: String) throws(SnapshotError) -> CPD { try CPDInterning.document(value(key), at: path.appending(key)) }

    func informationElements(_ key: String) throws(SnapshotError) -> InformationElements? {
        isNull(key) ? nil : try MessageReader.informationElements(value(key), path.appending(key))
    }

    func retransmission(_ key: String) throws(SnapshotError) -> RetransmissionPolicy {
        let reader = try sub(key)
        return RetransmissionPolicy(
            initialInterval: .milliseconds(try reader.int("initial-interval-ms", 1...86_400_000)),
            maximumRetries: Int(try reader.int("maximum-retries", 0...100)),
            cachedAnswerMinimumInterval: .milliseconds(try reader.int("cached-answer-minimum-interval-ms", 0...86_400_000)))
    }

    func endpoint(_ key: String) throws(SnapshotError) -> CPNPEndpoint {
        let reader = try sub(key)
        return CPNPEndpoint(host: try reader.string("host"), port: UInt16(try reader.int("port", 0...65_535)))
    }

    func session(_ key: String) throws(SnapshotError) -> CPNPSession {
        let reader = try sub(key)
        return CPNPSession(local: try reader.endpoint("local"), remote: try reader.endpoint("remote"))
    }

    func sequence(_ key: String) throws(SnapshotError) -> SequenceCounters {
        let reader = try sub(key)
        let last = try reader.optionalInt("last-incoming", 0...Int64(UInt32.max)).map { SequenceNumber($0) }
        return SequenceCounters(initialOutgoing: SequenceNumber(try reader.int("next-outgoing", 0...Int64(UInt32.max))), lastIncoming: last)
    }

    func pending(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> PendingRequest? {
        guard let reader = try optionalSub(key) else { return nil }
        return PendingRequest(message: try reader.requiredMessage("message", offer: offer), retries: Int(try reader.int("retries", 0...1_000)))
    }

    func cache(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> CachedExchange? {
        guard let reader = try optionalSub(key) else { return nil }
        var exchange = CachedExchange(incoming: try reader.requiredMessage("incoming"), answer: try reader.message("answer", offer: offer))
        exchange.lastResend = try reader.time("last-resend")
        return exchange
    }

    func schedule(_ key: String) throws(SnapshotError) -> ActivationSchedule? {
        if isNull(key) { return nil }
        switch try string(key) {
        case "now": return .now
        case "deactivate": return .deactivate
        default: return .at(try make(key, "timestamp") { CPNPTimestamp(rfc3339: $0) })
        }
    }

    /// An agreement, or nil. Without ids of its own, it has the order's (``messageHeader``).
    func agreement(_ key: String) throws(SnapshotError) -> Agreement? {
        guard let reader = try optionalSub(key) else { return nil }
        let activation: ActivationStatus
        switch try reader.string("activation") {
        case "inactive": activation = .inactive
        case "active": activation = .active
        default: activation = .scheduled(try reader.make("activation", "timestamp") { CPNPTimestamp(rfc3339: $0) })
        }
        guard let agreedAt = try reader.time("agreed-at") else {
            throw SnapshotError(.missingField, at: reader.path.appending("agreed-at"), "missing")
        }
        let ids: (CustomerOrderID, ProviderOrderID)
        if let header = messageHeader, let providerOrderID = header.providerOrderID, reader.isNull("customer-order-id"),
            reader.isNull("provider-order-id")
        {
            ids = (header.customerOrderID, providerOrderID)
        } else {
            ids = (
                try reader.make("customer-order-id", "customer order id") { CustomerOrderID($0) },
                try reader.make("provider-order-id", "provider order id") { ProviderOrderID($0) }
            )
        }
        return Agreement(
            customerOrderID: ids.0, providerOrderID: ids.1,
            nonce: try reader.make("nonce", "nonce") { Nonce($0) },
            acceptedCPD: try reader.cpd("accepted-cpd"),
            informationElements: try reader.informationElements("information-elements"),
            activationType: try reader.make("activation-type", "activation type") { ActivationType(rawValue: $0) },
            purpose: try reader.make("purpose", "purpose") { Purpose(rawValue: $0) },
            testPeriodEnd: try reader.time("test-period-end"),
            activationSchedule: try reader.time("activation-schedule"),
            activation: activation, agreedAt: agreedAt)
    }
}

extension ClientOrderStateMachine {
    /// The machine as a JSON object, for a durable store (each CPD in place).
    public var snapshot: JSONValue { (try? JSONParser.parse(snapshotJSON(), limits: .stored)) ?? .null }

    /// The machine as compact JSON, for a durable store, written without building a tree; each CPD
    /// in place, or as `reference` names it (``CPDReferences``; docs/design/storage.md).
    public func snapshotJSON(reference: ((CPD) -> String)? = nil) -> [UInt8] {
        var coding = SnapshotCoding(reference: reference)
        write(into: &coding)
        return coding.writer.bytes
    }

    func write(into coding: inout SnapshotCoding) {
        coding.writer.beginObject()
        coding.writer.member("kind", "client-order")
        coding.writer.member("customer-order-id", customerOrderID.rawValue)
        coding.writer.key("configuration")
        coding.writer.beginObject()
        coding.retransmission(configuration.retransmission)
        coding.writer.member("withdrawal-retry-interval-ms", configuration.withdrawalRetryInterval.milliseconds)
        coding.writer.member("enforce-deadlines", configuration.enforceDeadlines)
        coding.optionalInteger("silence-probe-interval-ms", configuration.silenceProbeInterval?.milliseconds)
        coding.writer.endObject()
        coding.writer.member("state", state.rawValue)
        coding.optionalString("provider-order-id", providerOrderID?.rawValue)
        coding.agreement("agreement", agreement)
        coding.document("requested-cpd", requestedCPD)
        coding.informationElements("requested-information-elements", requestedInformationElements)
        coding.message("offer", offer.map { .offer($0) })
        coding.writer.key("transaction")
        if let transaction {
            coding.writer.beginObject()
            coding.writer.member("kind", transaction.kind.rawValue)
            coding.writer.member("id", transaction.id.rawValue)
            coding.session(transaction.session)
            coding.sequence(transaction.sequence)
            coding.pending(transaction.pending)
            coding.cache(transaction.cache)
            coding.writer.member("exhausted", transaction.exhausted)
            coding.schedule(transaction.activationSchedule)
            coding.optionalInteger("request-sequence-number", transaction.requestSequenceNumber)
            coding.writer.member("withdraw-on-agreement", transaction.withdrawOnAgreement)
            coding.writer.member("withdrawal-alarm", transaction.withdrawalAlarm)
            coding.writer.endObject()
        } else {
            coding.writer.null()
        }
        coding.writer.member("expected-response-time", time: expectedResponseTime)
        coding.writer.member("expected-offer-time", time: expectedOfferTime)
        coding.writer.member("pending-time-decision", time: pendingTimeDecision)
        coding.writer.key("last-end")
        if let lastEnd { Self.write(lastEnd, into: &coding.writer) } else { coding.writer.null() }
        coding.writer.key("spare-transaction")
        if let spareTransaction {
            coding.writer.beginObject()
            coding.writer.member("id", spareTransaction.id.rawValue)
            coding.writer.member("initial-sequence-number", spareTransaction.initialSequenceNumber)
            coding.writer.endObject()
        } else {
            coding.writer.null()
        }
        coding.writer.endObject()
    }

    static func write(_ end: NegotiationEnd, into writer: inout JSONWriter) {
        writer.beginObject()
        switch end {
        case .failed(let status, let diagnostic):
            writer.member("kind", "failed")
            writer.member("status-code", status.rawValue)
            writer.key("diagnostic")
            if let diagnostic { writer.string(diagnostic) } else { writer.null() }
        case .declinedByClient(let reasons):
            writer.member("kind", "declined")
            writer.key("reasons")
            writer.beginArray()
            for reason in reasons { writer.integer(reason.rawValue) }
            writer.endArray()
        case .cancelledByClient: writer.member("kind", "cancelled")
        case .expectedResponseTimeElapsed: writer.member("kind", "expected-response-time-elapsed")
        case .expectedOfferTimeElapsed: writer.member("kind", "expected-offer-time-elapsed")
        case .offerExpired: writer.member("kind", "offer-expired")
        case .noResponse: writer.member("kind", "no-response")
        case .offerTimeRefused: writer.member("kind", "offer-time-refused")
        }
        writer.endObject()
    }

    static func decodeEnd(_ reader: SnapshotReader) throws(SnapshotError) -> NegotiationEnd {
        switch try reader.string("kind") {
        case "failed":
            let diagnostic = reader.isNull("diagnostic") ? nil : try reader.string("diagnostic")
            let code = try reader.int("status-code", 1...8)
            return .failed(FailStatusCode(rawValue: Int(code))!, diagnostic: diagnostic)
        case "declined":
            var reasons: [DeclineReason] = []
            for (i, item) in try reader.value("reasons").array(at: reader.path.appending("reasons")).enumerated() {
                let rawReason = try item.integer(at: reader.path.appending("reasons").appending(index: i), in: 1...3)
                reasons.append(DeclineReason(rawValue: Int(rawReason))!)
            }
            return .declinedByClient(reasons)
        case "cancelled": return .cancelledByClient
        case "expected-response-time-elapsed": return .expectedResponseTimeElapsed
        case "expected-offer-time-elapsed": return .expectedOfferTimeElapsed
        case "offer-expired": return .offerExpired
        case "no-response": return .noResponse
        case "offer-time-refused": return .offerTimeRefused
        default: throw SnapshotError(.invalidValue, at: reader.path.appending("kind"), "unknown negotiation end")
        }
    }

    /// Restores a machine from ``snapshot``.
    public init(snapshot: JSONValue) throws(SnapshotError) {
        let reader = try SnapshotReader(snapshot, at: .root)
        let configurationReader = try reader.sub("configuration")
        let config = Configuration(
            retransmission: try configurationReader.retransmission("retransmission"),
            withdrawalRetryInterval: .milliseconds(try configurationReader.int("withdrawal-retry-interval-ms", 0...86_400_000)),
            enforceDeadlines: try configurationReader.bool("enforce-deadlines"),
            // Absent in snapshots written before the probe existed: the default.
            silenceProbeInterval: configurationReader.object["silence-probe-interval-ms"] == nil
                ? .seconds(15) : try configurationReader.optionalInt("silence-probe-interval-ms", 0...86_400_000).map { .milliseconds($0) })
        var order = ClientOrderStateMachine(
            customerOrderID: try reader.make("customer-order-id", "customer order id") { CustomerOrderID($0) }, configuration: config)
        let state = try reader.make("state", "state") { State(rawValue: $0) }
        order.providerOrderID =
            reader.isNull("provider-order-id") ? nil : try reader.make("provider-order-id", "provider order id") { ProviderOrderID($0) }
        let agreement = try reader.agreement("agreement")
        order.requestedCPD = reader.isNull("requested-cpd") ? nil : try reader.cpd("requested-cpd")
        order.requestedInformationElements = try reader.informationElements("requested-information-elements")
        var offer: OfferMessage?
        if case .offer(let decodedOffer)? = try reader.message("offer") { offer = decodedOffer }
        if let transactionReader = try reader.optionalSub("transaction") {
            var transaction = Transaction(
                kind: try transactionReader.make("kind", "transaction kind") { TransactionKind(rawValue: $0) },
                id: try transactionReader.make("id", "transaction id") { TransactionID($0) },
                session: try transactionReader.session("session"), sequence: try transactionReader.sequence("sequence"),
                pending: try transactionReader.pending("pending"), cache: try transactionReader.cache("cache"))
            transaction.exhausted = try transactionReader.bool("exhausted")
            transaction.activationSchedule = try transactionReader.schedule("activation-schedule")
            transaction.requestSequenceNumber = try transactionReader.optionalInt("request-sequence-number", 0...Int64(UInt32.max)).map {
                SequenceNumber($0)
            }
            transaction.withdrawOnAgreement =
                transactionReader.isNull("withdraw-on-agreement") ? false : try transactionReader.bool("withdraw-on-agreement")
            transaction.withdrawalAlarm = transactionReader.isNull("withdrawal-alarm") ? false : try transactionReader.bool("withdrawal-alarm")
            order.transaction = transaction
        }
        order.expectedResponseTime = try reader.time("expected-response-time")
        order.expectedOfferTime = try reader.time("expected-offer-time")
        order.phase = try Self.phase(
            state, agreement: agreement, offer: offer, timeDecision: reader.time("pending-time-decision"), reader: reader)
        if let endReader = try reader.optionalSub("last-end") { order.lastEnd = try Self.decodeEnd(endReader) }
        if let spare = try reader.optionalSub("spare-transaction") {
            order.spareTransaction = SpareTransaction(
                id: try spare.make("id", "transaction id") { TransactionID($0) },
                initialSequenceNumber: SequenceNumber(try spare.int("initial-sequence-number", 0...Int64(UInt32.max))))
        }
        self = order
    }

    /// The phase a snapshot's flat members describe. Each member must be what its state holds: an
    /// offer in the states that evaluate or accepted one (and, declined, after them), an agreement in
    /// Completed and none before the QUOTATION, an expected offer time awaiting a decision only in
    /// PQOSent and ServerProcessing. Anything else is a corrupt snapshot, named by its member.
    private static func phase(
        _ state: State, agreement: Agreement?, offer: OfferMessage?, timeDecision: CPNPTimestamp?, reader: SnapshotReader
    ) throws(SnapshotError) -> Phase {
        func corrupt(_ member: String, _ problem: String) -> SnapshotError {
            SnapshotError(.invalidValue, at: reader.path.appending(member), "\(problem) in state \(state.rawValue)")
        }
        if timeDecision != nil, state != .pqoSent, state != .serverProcessing {
            throw corrupt("pending-time-decision", "a decision on the expected offer time is unexpected")
        }
        switch state {
        case .created, .awaitingProcessing:
            if agreement != nil { throw corrupt("agreement", "an agreement is unexpected") }
            if offer != nil { throw corrupt("offer", "an offer is unexpected") }
            return state == .created ? .created : .awaitingProcessing
        case .pqoSent, .serverProcessing:
            if offer != nil { throw corrupt("offer", "an offer is unexpected") }
            let step: NegotiationStep = state == .pqoSent ? .pqoSent(timeDecision: timeDecision) : .serverProcessing(timeDecision: timeDecision)
            return .negotiating(step, inForce: agreement)
        case .offerReceived, .offerProcessing, .acceptSent:
            guard let offer else { throw corrupt("offer", "the offer is missing") }
            let step: NegotiationStep =
                switch state {
                case .offerReceived: .offerReceived(offer)
                case .offerProcessing: .offerProcessing(offer)
                default: .acceptSent(offer)
                }
            return .negotiating(step, inForce: agreement)
        case .completed:
            guard let agreement else { throw corrupt("agreement", "the agreement is missing") }
            return .completed(agreement, declinedOffer: offer)
        case .cancelled:
            return .cancelled(withdrawing: agreement, declinedOffer: offer)
        }
    }

    /// The timers that should be armed in the current state, with their deadlines: what an engine
    /// re-arms after a restart. A retransmission timer is re-armed to fire at `now`.
    public func armedTimers(now: CPNPTimestamp) -> [(Timer, CPNPTimestamp)] {
        var out: [(Timer, CPNPTimestamp)] = []
        if let transaction, transaction.pending != nil {
            out.append(transaction.exhausted && transaction.kind == .withdraw ? (.withdrawalRetry, now) : (.retransmission, now))
        }
        if configuration.enforceDeadlines {
            if state == .pqoSent || (state == .serverProcessing && expectedOfferTime == nil), let expectedResponseTime {
                out.append((.expectedResponseTime, expectedResponseTime))
            }
            if state == .serverProcessing, let expectedOfferTime { out.append((.expectedOfferTime, expectedOfferTime)) }
        }
        if state == .offerReceived || state == .offerProcessing, let offer { out.append((.offerValidity, offer.validityOfferTime)) }
        if state == .completed, let end = agreement?.testPeriodEnd { out.append((.testPeriodEnd, end)) }
        if state == .serverProcessing, let interval = configuration.silenceProbeInterval { out.append((.silenceProbe, now.adding(interval))) }
        return out
    }
}

extension ServerOrderStateMachine {
    /// The machine as a JSON object, for a durable store (each CPD in place).
    public var snapshot: JSONValue { (try? JSONParser.parse(snapshotJSON(), limits: .stored)) ?? .null }

    /// The machine as compact JSON, for a durable store, written without building a tree; each CPD
    /// in place, or as `reference` names it (``CPDReferences``; docs/design/storage.md).
    ///
    /// Compact: a member is left out where it holds its default (null, false, zero, an empty list, the
    /// default configuration, an agreement's ids that are the order's), and so are a message's
    /// version and the ids that are the order's and the transaction's (``MessageHeader``).
    /// ``init(snapshot:)`` reads them back as such, and still reads snapshots written in full by
    /// earlier releases.
    public func snapshotJSON(reference: ((CPD) -> String)? = nil) -> [UInt8] {
        var coding = SnapshotCoding(
            reference: reference,
            compactFor: MessageHeader(transactionID: transaction.id, customerOrderID: customerOrderID, providerOrderID: providerOrderID))
        coding.writer.beginObject()
        coding.writer.member("kind", "server-order")
        coding.writer.member("customer-order-id", customerOrderID.rawValue)
        coding.writer.member("provider-order-id", providerOrderID.rawValue)
        if configuration != Configuration() {
            coding.writer.key("configuration")
            coding.writer.beginObject()
            coding.retransmission(configuration.retransmission)
            coding.writer.endObject()
        }
        if case .negotiating(.child(let childOrder), _) = phase {
            coding.writer.member("phase", "Child")
            coding.writer.key("child")
            coding.inFull { childOrder.write(into: &$0) }
        } else {
            coding.writer.member("phase", state.rawValue)
        }
        coding.writer.key("transaction")
        coding.writer.beginObject()
        coding.writer.member("id", transaction.id.rawValue)
        coding.session(transaction.session)
        coding.sequence(transaction.sequence)
        coding.pending(transaction.pending, offer: offer)
        coding.cache(transaction.cache, offer: offer)
        coding.writer.endObject()
        coding.document("requested-cpd", requestedCPD)
        coding.informationElements("requested-information-elements", requestedInformationElements)
        coding.message("offer", offer.map { .offer($0) })
        coding.agreement("agreement", agreement)
        coding.agreement("withdrawn-agreement", withdrawnAgreement)
        if isUpdate { coding.writer.member("is-update", true) }
        if withdrawalPending { coding.writer.member("withdrawal-pending", true) }
        coding.time("expected-offer-time", expectedOfferTime)
        coding.time("requested-offer-time", requestedOfferTime)
        if !childAgreements.isEmpty {
            coding.writer.key("child-agreements")
            coding.writer.beginArray()
            for childAgreement in childAgreements { coding.agreement(childAgreement) }
            coding.writer.endArray()
        }
        if !closedTransactionIDs.isEmpty {
            coding.writer.key("closed-transaction-ids")
            coding.writer.beginArray()
            for id in closedTransactionIDs { coding.writer.string(id.rawValue) }
            coding.writer.endArray()
        }
        if !refusedTransactions.isEmpty {
            coding.writer.key("refused-transactions")
            coding.writer.beginArray()
            for refused in refusedTransactions {
                coding.writer.beginObject()
                coding.writer.member("id", refused.id.rawValue)
                coding.writer.member("sequence-number", refused.sequenceNumber)
                coding.message("answer", .fail(refused.answer))
                coding.writer.endObject()
            }
            coding.writer.endArray()
        }
        if moreTimeRequests != 0 { coding.writer.member("more-time-requests", moreTimeRequests) }
        if moreTimeRefused { coding.writer.member("more-time-refused", true) }
        coding.writer.endObject()
        return coding.writer.bytes
    }

    /// Restores a machine from ``snapshot``.
    public init(snapshot: JSONValue) throws(SnapshotError) {
        var reader = try SnapshotReader(snapshot, at: .root)
        let config =
            reader.isNull("configuration")
            ? Configuration() : Configuration(retransmission: try reader.sub("configuration").retransmission("retransmission"))
        let orderIDs = (
            try reader.make("customer-order-id", "customer order id") { CustomerOrderID($0) },
            try reader.make("provider-order-id", "provider order id") { ProviderOrderID($0) }
        )
        let transactionID = try reader.sub("transaction").make("id", "transaction id") { TransactionID($0) }
        reader.messageHeader = MessageHeader(transactionID: transactionID, customerOrderID: orderIDs.0, providerOrderID: orderIDs.1)
        var offer: OfferMessage?
        if case .offer(let decodedOffer)? = try reader.message("offer") { offer = decodedOffer }
        let transactionReader = try reader.sub("transaction")
        let transaction = Transaction(
            id: transactionID, session: try transactionReader.session("session"),
            sequence: try transactionReader.sequence("sequence"), pending: try transactionReader.pending("pending", offer: offer),
            cache: try transactionReader.cache("cache", offer: offer))
        let phase = try Self.phase(
            reader.string("phase"), offer: offer, agreement: reader.agreement("agreement"),
            withdrawnAgreement: reader.agreement("withdrawn-agreement"),
            isUpdate: reader.isNull("is-update") ? false : reader.bool("is-update"),
            withdrawalPending: reader.isNull("withdrawal-pending") ? false : reader.bool("withdrawal-pending"), reader: reader)
        var children: [Agreement] = []
        if !reader.isNull("child-agreements") {
            let list = try reader.value("child-agreements").array(at: reader.path.appending("child-agreements"))
            for i in list.indices {
                let wrapper = SnapshotReader.wrap(list[i])
                if let childAgreement = try reader.member(wrapper, at: reader.path).agreement("a") {
                    children.append(childAgreement)
                }
            }
        }
        // Absent: empty (compact snapshots), or older than these keys.
        var closed: [TransactionID] = []
        if !reader.isNull("closed-transaction-ids") {
            let ids = try reader.value("closed-transaction-ids").array(at: reader.path.appending("closed-transaction-ids"))
            for i in ids.indices {
                let item = try SnapshotReader(SnapshotReader.wrap(ids[i]), at: reader.path.appending("closed-transaction-ids"))
                closed.append(try item.make("a", "transaction id") { TransactionID($0) })
            }
        }
        var refused: [RefusedTransaction] = []
        if !reader.isNull("refused-transactions") {
            let list = try reader.value("refused-transactions").array(at: reader.path.appending("refused-transactions"))
            for i in list.indices {
                let item = try reader.member(list[i], at: reader.path.appending("refused-transactions"))
                guard case .fail(let answer) = try item.requiredMessage("answer") else {
                    throw SnapshotError(.invalidValue, at: item.path.appending("answer"), "a refused transaction's answer must be a FAIL")
                }
                refused.append(
                    RefusedTransaction(
                        id: try item.make("id", "transaction id") { TransactionID($0) },
                        sequenceNumber: SequenceNumber(try item.int("sequence-number", 0...Int64(UInt32.max))), answer: answer))
            }
        }
        self.init(
            restoring: orderIDs.0, providerOrderID: orderIDs.1, configuration: config, phase: phase, transaction: transaction,
            requestedCPD: try reader.cpd("requested-cpd"),
            requestedInformationElements: try reader.informationElements("requested-information-elements"),
            expectedOfferTime: try reader.time("expected-offer-time"), requestedOfferTime: try reader.time("requested-offer-time"),
            childAgreements: children, closedTransactionIDs: closed, refusedTransactions: refused,
            moreTimeRequests: Int(try reader.optionalInt("more-time-requests", 0...1_000_000) ?? 0),
            moreTimeRefused: reader.isNull("more-time-refused") ? false : try reader.bool("more-time-refused"))
    }

    /// The phase a snapshot's flat members describe. Each member must be what its phase holds: an
    /// offer exactly in the states that have one, an agreement in Completed and, as the one in force,
    /// exactly when an UPDATE is negotiated, a withdrawn agreement only in Cancelled and a pending
    /// withdrawal only in Completed. Anything else is a corrupt snapshot, named by its member.
    private static func phase(
        _ name: String, offer: OfferMessage?, agreement: Agreement?, withdrawnAgreement: Agreement?, isUpdate: Bool,
        withdrawalPending: Bool, reader: SnapshotReader
    ) throws(SnapshotError) -> Phase {
        func corrupt(_ member: String, _ problem: String) -> SnapshotError {
            SnapshotError(.invalidValue, at: reader.path.appending(member), "\(problem) in phase \(name)")
        }
        let phases = [
            "PQOReceived", "AwaitingProcessing", "OfferProposed", "ProcessingReceived", "AcceptReceived", "Child", "Completed", "Cancelled",
        ]
        guard phases.contains(name) else { throw SnapshotError(.invalidValue, at: reader.path.appending("phase"), "unknown phase \(name)") }
        let negotiating = name != "Completed" && name != "Cancelled"
        let hasOffer = name == "OfferProposed" || name == "ProcessingReceived" || name == "AcceptReceived"
        if hasOffer != (offer != nil) { throw corrupt("offer", hasOffer ? "the offer is missing" : "an offer is unexpected") }
        if withdrawnAgreement != nil, name != "Cancelled" { throw corrupt("withdrawn-agreement", "a withdrawn agreement is unexpected") }
        if withdrawalPending, name != "Completed" { throw corrupt("withdrawal-pending", "a pending withdrawal is unexpected") }
        if isUpdate != (negotiating && agreement != nil) {
            let problem =
                !negotiating
                ? "an update is unexpected" : isUpdate ? "an update without an agreement in force" : "an agreement in force without an update"
            throw corrupt("is-update", problem)
        }
        switch name {
        case "PQOReceived": return .negotiating(.pqoReceived, inForce: agreement)
        case "AwaitingProcessing": return .negotiating(.awaitingProcessing, inForce: agreement)
        case "OfferProposed": return .negotiating(.offerProposed(offer!), inForce: agreement)
        case "ProcessingReceived": return .negotiating(.processingReceived(offer!), inForce: agreement)
        case "AcceptReceived": return .negotiating(.acceptReceived(offer!), inForce: agreement)
        case "Child": return .negotiating(.child(try ClientOrderStateMachine(snapshot: reader.value("child"))), inForce: agreement)
        case "Completed":
            guard let agreement else { throw corrupt("agreement", "the agreement is missing") }
            return .completed(agreement, withdrawalPending: withdrawalPending)
        case "Cancelled":
            if agreement != nil { throw corrupt("agreement", "an agreement in force is unexpected") }
            return .cancelled(withdrawn: withdrawnAgreement)
        default: throw SnapshotError(.invalidValue, at: reader.path.appending("phase"), "unknown phase \(name)")
        }
    }

    /// The timers that should be armed in the current state, with their deadlines: what an engine
    /// re-arms after a restart (offer validity, expected offer time, scheduled activation, test period end).
    public func armedTimers(now: CPNPTimestamp) -> [(Timer, CPNPTimestamp)] {
        var out: [(Timer, CPNPTimestamp)] = []
        if transaction.pending != nil { out.append((.retransmission, now)) }
        switch phase {
        case .negotiating(.offerProposed(let offer), _), .negotiating(.processingReceived(let offer), _):
            out.append((.offerValidity, offer.validityOfferTime))
        case .negotiating(.pqoReceived, _), .negotiating(.awaitingProcessing, _):
            if let expectedOfferTime { out.append((.expectedOfferTime, expectedOfferTime)) }
        case .negotiating(.child(let childOrder), _):
            if let expectedOfferTime { out.append((.expectedOfferTime, expectedOfferTime)) }
            out += childOrder.armedTimers(now: now).map { (.child($0.0), $0.1) }
        default:
            break
        }
        if let agreement {
            if let end = agreement.testPeriodEnd, agreement.purpose == .testing { out.append((.testPeriodEnd, end)) }
            if case .scheduled(let time) = agreement.activation { out.append((.scheduledActivation, time)) }
        }
        return out
    }
}

extension SnapshotReader {
    static func wrap(_ value: JSONValue) -> JSONValue { .object(JSONObject([("a", value)])) }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
