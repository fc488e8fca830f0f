/// Durable snapshots of the order state machines, so that a store can persist exactly what a machine
/// is and a restart loses nothing (RFC 8921 §8.11: persistent storage of orders is recommended).
///
/// A snapshot is a JSON object; messages inside it use the wire encoding (``CPNPCodec``), so a
/// snapshot stays readable with `cpnp inspect`-style tools. ``ServerOrderStateMachine/armedTimers``
/// and ``ClientOrderStateMachine/armedTimers`` tell the engine which timers to re-arm after a restart.

/// Raised when a stored snapshot cannot be read back.
public typealias SnapshotError = CPNPDecodingError

enum SnapshotCoding {
    static func time(_ timestamp: CPNPTimestamp?) -> JSONValue { timestamp.map { .string($0.rfc3339) } ?? .null }
    static func int(_ value: some BinaryInteger) -> JSONValue { .number(CPNPDecimal(Int64(value))) }
    static func message(_ message: CPNPMessage?) -> JSONValue { message.map { CPNPCodec.encodeJSON($0, document: CPDReferences.value) } ?? .null }

    static func retransmission(_ policy: RetransmissionPolicy) -> JSONValue {
        .object(
            JSONObject([
                ("initial-interval-ms", int(policy.initialInterval.milliseconds)),
                ("maximum-retries", int(policy.maximumRetries)),
                ("cached-answer-minimum-interval-ms", int(policy.cachedAnswerMinimumInterval.milliseconds)),
            ]))
    }

    static func endpoint(_ endpoint: CPNPEndpoint) -> JSONValue {
        .object(JSONObject([("host", .string(endpoint.host)), ("port", int(endpoint.port))]))
    }
    static func session(_ session: CPNPSession) -> JSONValue {
        .object(JSONObject([("local", endpoint(session.local)), ("remote", endpoint(session.remote))]))
    }

    static func sequence(_ counters: SequenceCounters) -> JSONValue {
        .object(JSONObject([("next-outgoing", int(counters.nextOutgoing)), ("last-incoming", counters.lastIncoming.map { int($0) } ?? .null)]))
    }

    /// The value that stands for the order's offer where the snapshot holds it already (a server's
    /// pending OFFER and its cached answer are that offer): each CPD is encoded once.
    static let theOffer = "the-offer"

    static func message(_ storedMessage: CPNPMessage?, offer: OfferMessage?) -> JSONValue {
        if let offer, case .offer(let sentOffer)? = storedMessage, sentOffer == offer { return .string(theOffer) }
        return message(storedMessage)
    }

    static func pending(_ pending: PendingRequest?, offer: OfferMessage? = nil) -> JSONValue {
        guard let pending else { return .null }
        return .object(JSONObject([("message", message(pending.message, offer: offer)), ("retries", int(pending.retries))]))
    }

    static func cache(_ cache: CachedExchange?, offer: OfferMessage? = nil) -> JSONValue {
        guard let cache else { return .null }
        return .object(
            JSONObject([
                ("incoming", message(cache.incoming)), ("answer", message(cache.answer, offer: offer)), ("last-resend", time(cache.lastResend)),
            ]))
    }

    static func schedule(_ schedule: ActivationSchedule?) -> JSONValue {
        switch schedule {
        case nil: .null
        case .now?: .string("now")
        case .deactivate?: .string("deactivate")
        case .at(let timestamp)?: .string(timestamp.rfc3339)
        }
    }

    static func activation(_ status: ActivationStatus) -> JSONValue {
        switch status {
        case .inactive: .string("inactive")
        case .active: .string("active")
        case .scheduled(let timestamp): .string(timestamp.rfc3339)
        }
    }

    static func agreement(_ agreement: Agreement?) -> JSONValue {
        guard let agreement else { return .null }
        return .object(
            JSONObject([
                ("customer-order-id", .string(agreement.customerOrderID.rawValue)),
                ("provider-order-id", .string(agreement.providerOrderID.rawValue)),
                ("nonce", .string(agreement.nonce.rawValue)),
                ("accepted-cpd", CPDReferences.value(agreement.acceptedCPD)),
                ("information-elements", agreement.informationElements.map(IEWriter.informationElements) ?? .null),
                ("activation-type", .string(agreement.activationType.rawValue)),
                ("purpose", .string(agreement.purpose.rawValue)),
                ("test-period-end", time(agreement.testPeriodEnd)),
                ("activation-schedule", time(agreement.activationSchedule)),
                ("activation", activation(agreement.activation)),
                ("agreed-at", time(agreement.agreedAt)),
            ]))
    }
}

/// Reads a snapshot object with typed, path-naming errors.
struct SnapshotReader {
    let object: JSONObject
    let path: JSONPath

    init(_ value: JSONValue, at path: JSONPath) throws(SnapshotError) {
        object = try value.object(at: path)
        self.path = path
    }

    func value(_ key: String) throws(SnapshotError) -> JSONValue { try object.required(key, at: path) }
    func isNull(_ key: String) -> Bool { if case .null? = object[key] { true } else { object[key] == nil } }
    func sub(_ key: String) throws(SnapshotError) -> SnapshotReader { try SnapshotReader(value(key), at: path.appending(key)) }
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
        return try CPNPCodec.decode(json: json)
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
        return Agreement(
            customerOrderID: try reader.make("customer-order-id", "customer order id") { CustomerOrderID($0) },
            providerOrderID: try reader.make("provider-order-id", "provider order id") { ProviderOrderID($0) },
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
    /// The machine as a JSON object, for a durable store.
    public var snapshot: JSONValue {
        typealias Coding = SnapshotCoding
        var transactionValue: JSONValue = .null
        if let transaction {
            transactionValue = .object(
                JSONObject([
                    ("kind", .string(transaction.kind.rawValue)), ("id", .string(transaction.id.rawValue)),
                    ("session", Coding.session(transaction.session)),
                    ("sequence", Coding.sequence(transaction.sequence)), ("pending", Coding.pending(transaction.pending)),
                    ("cache", Coding.cache(transaction.cache)),
                    ("exhausted", .bool(transaction.exhausted)), ("activation-schedule", Coding.schedule(transaction.activationSchedule)),
                    ("request-sequence-number", transaction.requestSequenceNumber.map { Coding.int($0) } ?? .null),
                    ("withdraw-on-agreement", .bool(transaction.withdrawOnAgreement)),
                    ("withdrawal-alarm", .bool(transaction.withdrawalAlarm)),
                ]))
        }
        return .object(
            JSONObject([
                ("kind", .string("client-order")),
                ("customer-order-id", .string(customerOrderID.rawValue)),
                (
                    "configuration",
                    .object(
                        JSONObject([
                            ("retransmission", Coding.retransmission(configuration.retransmission)),
                            ("withdrawal-retry-interval-ms", Coding.int(configuration.withdrawalRetryInterval.milliseconds)),
                            ("enforce-deadlines", .bool(configuration.enforceDeadlines)),
                            ("silence-probe-interval-ms", configuration.silenceProbeInterval.map { Coding.int($0.milliseconds) } ?? .null),
                        ]))
                ),
                ("state", .string(state.rawValue)),
                ("provider-order-id", providerOrderID.map { .string($0.rawValue) } ?? .null),
                ("agreement", Coding.agreement(agreement)),
                ("requested-cpd", requestedCPD.map(CPDReferences.value) ?? .null),
                ("requested-information-elements", requestedInformationElements.map(IEWriter.informationElements) ?? .null),
                ("offer", Coding.message(offer.map { .offer($0) })),
                ("transaction", transactionValue),
                ("expected-response-time", Coding.time(expectedResponseTime)),
                ("expected-offer-time", Coding.time(expectedOfferTime)),
                ("pending-time-decision", Coding.time(pendingTimeDecision)),
                ("last-end", lastEnd.map(Self.encode) ?? .null),
                (
                    "spare-transaction",
                    spareTransaction.map { spare in
                        .object(
                            JSONObject([("id", .string(spare.id.rawValue)), ("initial-sequence-number", Coding.int(spare.initialSequenceNumber))]))
                    } ?? .null
                ),
            ]))
    }

    static func encode(_ end: NegotiationEnd) -> JSONValue {
        typealias Coding = SnapshotCoding
        switch end {
        case .failed(let status, let diagnostic):
            return .object(
                JSONObject([
                    ("kind", .string("failed")), ("status-code", Coding.int(status.rawValue)),
                    ("diagnostic", diagnostic.map { .string($0) } ?? .null),
                ]))
        case .declinedByClient(let reasons):
            return .object(JSONObject([("kind", .string("declined")), ("reasons", .array(reasons.map { Coding.int($0.rawValue) }))]))
        case .cancelledByClient: return .object(JSONObject([("kind", .string("cancelled"))]))
        case .expectedResponseTimeElapsed: return .object(JSONObject([("kind", .string("expected-response-time-elapsed"))]))
        case .expectedOfferTimeElapsed: return .object(JSONObject([("kind", .string("expected-offer-time-elapsed"))]))
        case .offerExpired: return .object(JSONObject([("kind", .string("offer-expired"))]))
        case .noResponse: return .object(JSONObject([("kind", .string("no-response"))]))
        case .offerTimeRefused: return .object(JSONObject([("kind", .string("offer-time-refused"))]))
        }
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
        order.state = try reader.make("state", "state") { State(rawValue: $0) }
        order.providerOrderID =
            reader.isNull("provider-order-id") ? nil : try reader.make("provider-order-id", "provider order id") { ProviderOrderID($0) }
        order.agreement = try reader.agreement("agreement")
        order.requestedCPD = reader.isNull("requested-cpd") ? nil : try reader.cpd("requested-cpd")
        order.requestedInformationElements = try reader.informationElements("requested-information-elements")
        if case .offer(let offer)? = try reader.message("offer") { order.offer = offer }
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
        order.pendingTimeDecision = try reader.time("pending-time-decision")
        if let endReader = try reader.optionalSub("last-end") { order.lastEnd = try Self.decodeEnd(endReader) }
        if let spare = try reader.optionalSub("spare-transaction") {
            order.spareTransaction = SpareTransaction(
                id: try spare.make("id", "transaction id") { TransactionID($0) },
                initialSequenceNumber: SequenceNumber(try spare.int("initial-sequence-number", 0...Int64(UInt32.max))))
        }
        self = order
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
    /// The machine as a JSON object, for a durable store.
    public var snapshot: JSONValue {
        typealias Coding = SnapshotCoding
        var child: JSONValue = .null
        var phaseName = state.rawValue
        if case .child(let childOrder) = phase {
            child = childOrder.snapshot
            phaseName = "Child"
        }
        return .object(
            JSONObject([
                ("kind", .string("server-order")),
                ("customer-order-id", .string(customerOrderID.rawValue)),
                ("provider-order-id", .string(providerOrderID.rawValue)),
                ("configuration", .object(JSONObject([("retransmission", Coding.retransmission(configuration.retransmission))]))),
                ("phase", .string(phaseName)),
                ("child", child),
                (
                    "transaction",
                    .object(
                        JSONObject([
                            ("id", .string(transaction.id.rawValue)), ("session", Coding.session(transaction.session)),
                            ("sequence", Coding.sequence(transaction.sequence)),
                            ("pending", Coding.pending(transaction.pending, offer: offer)), ("cache", Coding.cache(transaction.cache, offer: offer)),
                        ]))
                ),
                ("requested-cpd", CPDReferences.value(requestedCPD)),
                ("requested-information-elements", requestedInformationElements.map(IEWriter.informationElements) ?? .null),
                ("offer", Coding.message(offer.map { .offer($0) })),
                ("agreement", Coding.agreement(agreement)),
                ("withdrawn-agreement", Coding.agreement(withdrawnAgreement)),
                ("is-update", .bool(isUpdate)),
                ("withdrawal-pending", .bool(withdrawalPending)),
                ("expected-offer-time", Coding.time(expectedOfferTime)),
                ("requested-offer-time", Coding.time(requestedOfferTime)),
                ("child-agreements", .array(childAgreements.map { Coding.agreement($0) })),
                ("closed-transaction-ids", .array(closedTransactionIDs.map { .string($0.rawValue) })),
                (
                    "refused-transactions",
                    .array(
                        refusedTransactions.map { refused in
                            .object(
                                JSONObject([
                                    ("id", .string(refused.id.rawValue)), ("sequence-number", Coding.int(refused.sequenceNumber)),
                                    ("answer", Coding.message(.fail(refused.answer))),
                                ]))
                        })
                ),
                ("more-time-requests", Coding.int(moreTimeRequests)),
                ("more-time-refused", .bool(moreTimeRefused)),
            ]))
    }

    /// Restores a machine from ``snapshot``.
    public init(snapshot: JSONValue) throws(SnapshotError) {
        let reader = try SnapshotReader(snapshot, at: .root)
        let config = Configuration(retransmission: try reader.sub("configuration").retransmission("retransmission"))
        var offer: OfferMessage?
        if case .offer(let decodedOffer)? = try reader.message("offer") { offer = decodedOffer }
        let transactionReader = try reader.sub("transaction")
        let transaction = Transaction(
            id: try transactionReader.make("id", "transaction id") { TransactionID($0) }, session: try transactionReader.session("session"),
            sequence: try transactionReader.sequence("sequence"), pending: try transactionReader.pending("pending", offer: offer),
            cache: try transactionReader.cache("cache", offer: offer))
        let phaseName = try reader.string("phase")
        let phase: Phase
        switch phaseName {
        case "PQOReceived": phase = .pqoReceived
        case "AwaitingProcessing": phase = .awaitingProcessing
        case "OfferProposed": phase = .offerProposed
        case "ProcessingReceived": phase = .processingReceived
        case "AcceptReceived": phase = .acceptReceived
        case "Completed": phase = .completed
        case "Cancelled": phase = .cancelled
        case "Child": phase = .child(try ClientOrderStateMachine(snapshot: reader.value("child")))
        default: throw SnapshotError(.invalidValue, at: reader.path.appending("phase"), "unknown phase \(phaseName)")
        }
        var children: [Agreement] = []
        let list = try reader.value("child-agreements").array(at: reader.path.appending("child-agreements"))
        for i in list.indices {
            let wrapper = SnapshotReader.wrap(list[i])
            if let childAgreement = try SnapshotReader(wrapper, at: reader.path).agreement("a") { children.append(childAgreement) }
        }
        // Keys added after the first schema: absent in older snapshots.
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
                let item = try SnapshotReader(list[i], at: reader.path.appending("refused-transactions"))
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
            restoring: try reader.make("customer-order-id", "customer order id") { CustomerOrderID($0) },
            providerOrderID: try reader.make("provider-order-id", "provider order id") { ProviderOrderID($0) },
            configuration: config, phase: phase, transaction: transaction, requestedCPD: try reader.cpd("requested-cpd"),
            requestedInformationElements: try reader.informationElements("requested-information-elements"), offer: offer,
            agreement: try reader.agreement("agreement"), withdrawnAgreement: try reader.agreement("withdrawn-agreement"),
            isUpdate: try reader.bool("is-update"), withdrawalPending: try reader.bool("withdrawal-pending"),
            expectedOfferTime: try reader.time("expected-offer-time"), requestedOfferTime: try reader.time("requested-offer-time"),
            childAgreements: children, closedTransactionIDs: closed, refusedTransactions: refused,
            moreTimeRequests: Int(try reader.optionalInt("more-time-requests", 0...1_000_000) ?? 0),
            moreTimeRefused: reader.isNull("more-time-refused") ? false : try reader.bool("more-time-refused"))
    }

    /// The timers that should be armed in the current state, with their deadlines: what an engine
    /// re-arms after a restart (offer validity, expected offer time, scheduled activation, test period end).
    public func armedTimers(now: CPNPTimestamp) -> [(Timer, CPNPTimestamp)] {
        var out: [(Timer, CPNPTimestamp)] = []
        if transaction.pending != nil { out.append((.retransmission, now)) }
        switch phase {
        case .offerProposed, .processingReceived:
            if let offer { out.append((.offerValidity, offer.validityOfferTime)) }
        case .pqoReceived, .awaitingProcessing:
            if let expectedOfferTime { out.append((.expectedOfferTime, expectedOfferTime)) }
        case .child(let childOrder):
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
