/// Durable snapshots of the order state machines, so that a store can persist exactly what a machine
/// is and a restart loses nothing (RFC 8921 §8.11: persistent storage of orders is recommended).
///
/// A snapshot is a JSON object; messages inside it use the wire encoding (``CPNPCodec``), so a
/// snapshot stays readable with `cpnp inspect`-style tools. ``ServerOrderStateMachine/armedTimers``
/// and ``ClientOrderStateMachine/armedTimers`` tell the engine which timers to re-arm after a restart.

/// Raised when a stored snapshot cannot be read back.
public typealias SnapshotError = CPNPDecodingError

enum SnapshotCoding {
    static func time(_ t: CPNPTimestamp?) -> JSONValue { t.map { .string($0.rfc3339) } ?? .null }
    static func int(_ i: some BinaryInteger) -> JSONValue { .number(CPNPDecimal(Int64(i))) }
    static func message(_ m: CPNPMessage?) -> JSONValue { m.map { CPNPCodec.encodeJSON($0, document: CPDReferences.value) } ?? .null }

    static func retransmission(_ p: RetransmissionPolicy) -> JSONValue {
        .object(JSONObject([
            ("initial-interval-ms", int(p.initialInterval.milliseconds)),
            ("maximum-retries", int(p.maximumRetries)),
            ("cached-answer-minimum-interval-ms", int(p.cachedAnswerMinimumInterval.milliseconds)),
        ]))
    }

    static func endpoint(_ e: CPNPEndpoint) -> JSONValue { .object(JSONObject([("host", .string(e.host)), ("port", int(e.port))])) }
    static func session(_ s: CPNPSession) -> JSONValue { .object(JSONObject([("local", endpoint(s.local)), ("remote", endpoint(s.remote))])) }

    static func sequence(_ s: SequenceCounters) -> JSONValue {
        .object(JSONObject([("next-outgoing", int(s.nextOutgoing)), ("last-incoming", s.lastIncoming.map { int($0) } ?? .null)]))
    }

    /// The value that stands for the order's offer where the snapshot holds it already (a server's
    /// pending OFFER and its cached answer are that offer): each CPD is encoded once.
    static let theOffer = "the-offer"

    static func message(_ m: CPNPMessage?, offer: OfferMessage?) -> JSONValue {
        if let offer, case .offer(let o)? = m, o == offer { return .string(theOffer) }
        return message(m)
    }

    static func pending(_ p: PendingRequest?, offer: OfferMessage? = nil) -> JSONValue {
        guard let p else { return .null }
        return .object(JSONObject([("message", message(p.message, offer: offer)), ("retries", int(p.retries))]))
    }

    static func cache(_ c: CachedExchange?, offer: OfferMessage? = nil) -> JSONValue {
        guard let c else { return .null }
        return .object(JSONObject([
            ("incoming", message(c.incoming)), ("answer", message(c.answer, offer: offer)), ("last-resend", time(c.lastResend)),
        ]))
    }

    static func schedule(_ s: ActivationSchedule?) -> JSONValue {
        switch s {
        case nil: .null
        case .now?: .string("now")
        case .deactivate?: .string("deactivate")
        case .at(let t)?: .string(t.rfc3339)
        }
    }

    static func activation(_ a: ActivationStatus) -> JSONValue {
        switch a {
        case .inactive: .string("inactive")
        case .active: .string("active")
        case .scheduled(let t): .string(t.rfc3339)
        }
    }

    static func agreement(_ a: Agreement?) -> JSONValue {
        guard let a else { return .null }
        return .object(JSONObject([
            ("customer-order-id", .string(a.customerOrderID.rawValue)),
            ("provider-order-id", .string(a.providerOrderID.rawValue)),
            ("nonce", .string(a.nonce.rawValue)),
            ("accepted-cpd", CPDReferences.value(a.acceptedCPD)),
            ("information-elements", a.informationElements.map(IEWriter.informationElements) ?? .null),
            ("activation-type", .string(a.activationType.rawValue)),
            ("purpose", .string(a.purpose.rawValue)),
            ("test-period-end", time(a.testPeriodEnd)),
            ("activation-schedule", time(a.activationSchedule)),
            ("activation", activation(a.activation)),
            ("agreed-at", time(a.agreedAt)),
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

    func make<T>(_ key: String, _ what: String, _ f: (String) -> T?) throws(SnapshotError) -> T {
        let s = try string(key)
        guard let v = f(s) else { throw SnapshotError(.invalidValue, at: path.appending(key), "invalid \(what) \"\(s)\"") }
        return v
    }

    func time(_ key: String) throws(SnapshotError) -> CPNPTimestamp? {
        isNull(key) ? nil : try make(key, "timestamp") { CPNPTimestamp(rfc3339: $0) }
    }

    func message(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> CPNPMessage? {
        if isNull(key) { return nil }
        let v = try value(key)
        if case .string(SnapshotCoding.theOffer) = v {
            guard let offer else { throw SnapshotError(.invalidValue, at: path.appending(key), "refers to the offer, but the order has none") }
            return .offer(offer)
        }
        return try CPNPCodec.decode(json: v)
    }

    func requiredMessage(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> CPNPMessage {
        guard let m = try message(key, offer: offer) else { throw SnapshotError(.missingField, at: path.appending(key), "message missing") }
        return m
    }

    func cpd(_ key: String) throws(SnapshotError) -> CPD { try CPDInterning.document(value(key), at: path.appending(key)) }

    func informationElements(_ key: String) throws(SnapshotError) -> InformationElements? {
        isNull(key) ? nil : try MessageReader.informationElements(value(key), path.appending(key))
    }

    func retransmission(_ key: String) throws(SnapshotError) -> RetransmissionPolicy {
        let rt = try sub(key)
        return RetransmissionPolicy(
            initialInterval: .milliseconds(try rt.int("initial-interval-ms", 1...86_400_000)),
            maximumRetries: Int(try rt.int("maximum-retries", 0...100)),
            cachedAnswerMinimumInterval: .milliseconds(try rt.int("cached-answer-minimum-interval-ms", 0...86_400_000)))
    }

    func endpoint(_ key: String) throws(SnapshotError) -> CPNPEndpoint {
        let r = try sub(key)
        return CPNPEndpoint(host: try r.string("host"), port: UInt16(try r.int("port", 0...65_535)))
    }

    func session(_ key: String) throws(SnapshotError) -> CPNPSession {
        let r = try sub(key)
        return CPNPSession(local: try r.endpoint("local"), remote: try r.endpoint("remote"))
    }

    func sequence(_ key: String) throws(SnapshotError) -> SequenceCounters {
        let r = try sub(key)
        let last = try r.optionalInt("last-incoming", 0...Int64(UInt32.max)).map { SequenceNumber($0) }
        return SequenceCounters(initialOutgoing: SequenceNumber(try r.int("next-outgoing", 0...Int64(UInt32.max))), lastIncoming: last)
    }

    func pending(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> PendingRequest? {
        guard let r = try optionalSub(key) else { return nil }
        return PendingRequest(message: try r.requiredMessage("message", offer: offer), retries: Int(try r.int("retries", 0...1_000)))
    }

    func cache(_ key: String, offer: OfferMessage? = nil) throws(SnapshotError) -> CachedExchange? {
        guard let r = try optionalSub(key) else { return nil }
        var c = CachedExchange(incoming: try r.requiredMessage("incoming"), answer: try r.message("answer", offer: offer))
        c.lastResend = try r.time("last-resend")
        return c
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
        guard let r = try optionalSub(key) else { return nil }
        let activation: ActivationStatus
        switch try r.string("activation") {
        case "inactive": activation = .inactive
        case "active": activation = .active
        default: activation = .scheduled(try r.make("activation", "timestamp") { CPNPTimestamp(rfc3339: $0) })
        }
        guard let agreedAt = try r.time("agreed-at") else { throw SnapshotError(.missingField, at: r.path.appending("agreed-at"), "missing") }
        return Agreement(
            customerOrderID: try r.make("customer-order-id", "customer order id") { CustomerOrderID($0) },
            providerOrderID: try r.make("provider-order-id", "provider order id") { ProviderOrderID($0) },
            nonce: try r.make("nonce", "nonce") { Nonce($0) },
            acceptedCPD: try r.cpd("accepted-cpd"),
            informationElements: try r.informationElements("information-elements"),
            activationType: try r.make("activation-type", "activation type") { ActivationType(rawValue: $0) },
            purpose: try r.make("purpose", "purpose") { Purpose(rawValue: $0) },
            testPeriodEnd: try r.time("test-period-end"),
            activationSchedule: try r.time("activation-schedule"),
            activation: activation, agreedAt: agreedAt)
    }
}

extension ClientOrderStateMachine {
    /// The machine as a JSON object, for a durable store.
    public var snapshot: JSONValue {
        typealias C = SnapshotCoding
        var tx: JSONValue = .null
        if let t = transaction {
            tx = .object(JSONObject([
                ("kind", .string(t.kind.rawValue)), ("id", .string(t.id.rawValue)), ("session", C.session(t.session)),
                ("sequence", C.sequence(t.sequence)), ("pending", C.pending(t.pending)), ("cache", C.cache(t.cache)),
                ("exhausted", .bool(t.exhausted)), ("activation-schedule", C.schedule(t.activationSchedule)),
                ("request-sequence-number", t.requestSequenceNumber.map { C.int($0) } ?? .null),
                ("withdraw-on-agreement", .bool(t.withdrawOnAgreement)),
                ("withdrawal-alarm", .bool(t.withdrawalAlarm)),
            ]))
        }
        return .object(JSONObject([
            ("kind", .string("client-order")),
            ("customer-order-id", .string(customerOrderID.rawValue)),
            ("configuration", .object(JSONObject([
                ("retransmission", C.retransmission(configuration.retransmission)),
                ("withdrawal-retry-interval-ms", C.int(configuration.withdrawalRetryInterval.milliseconds)),
                ("enforce-deadlines", .bool(configuration.enforceDeadlines)),
                ("silence-probe-interval-ms", configuration.silenceProbeInterval.map { C.int($0.milliseconds) } ?? .null),
            ]))),
            ("state", .string(state.rawValue)),
            ("provider-order-id", providerOrderID.map { .string($0.rawValue) } ?? .null),
            ("agreement", C.agreement(agreement)),
            ("requested-cpd", requestedCPD.map(CPDReferences.value) ?? .null),
            ("requested-information-elements", requestedInformationElements.map(IEWriter.informationElements) ?? .null),
            ("offer", C.message(offer.map { .offer($0) })),
            ("transaction", tx),
            ("expected-response-time", C.time(expectedResponseTime)),
            ("expected-offer-time", C.time(expectedOfferTime)),
            ("pending-time-decision", C.time(pendingTimeDecision)),
            ("last-end", lastEnd.map(Self.encode) ?? .null),
            ("spare-transaction", spareTransaction.map { spare in
                .object(JSONObject([("id", .string(spare.id.rawValue)), ("initial-sequence-number", C.int(spare.initialSequenceNumber))]))
            } ?? .null),
        ]))
    }

    static func encode(_ end: NegotiationEnd) -> JSONValue {
        typealias C = SnapshotCoding
        switch end {
        case .failed(let status, let diagnostic):
            return .object(JSONObject([("kind", .string("failed")), ("status-code", C.int(status.rawValue)), ("diagnostic", diagnostic.map { .string($0) } ?? .null)]))
        case .declinedByClient(let reasons):
            return .object(JSONObject([("kind", .string("declined")), ("reasons", .array(reasons.map { C.int($0.rawValue) }))]))
        case .cancelledByClient: return .object(JSONObject([("kind", .string("cancelled"))]))
        case .expectedResponseTimeElapsed: return .object(JSONObject([("kind", .string("expected-response-time-elapsed"))]))
        case .expectedOfferTimeElapsed: return .object(JSONObject([("kind", .string("expected-offer-time-elapsed"))]))
        case .offerExpired: return .object(JSONObject([("kind", .string("offer-expired"))]))
        case .noResponse: return .object(JSONObject([("kind", .string("no-response"))]))
        case .offerTimeRefused: return .object(JSONObject([("kind", .string("offer-time-refused"))]))
        }
    }

    static func decodeEnd(_ r: SnapshotReader) throws(SnapshotError) -> NegotiationEnd {
        switch try r.string("kind") {
        case "failed":
            let diagnostic = r.isNull("diagnostic") ? nil : try r.string("diagnostic")
            let code = try r.int("status-code", 1...8)
            return .failed(FailStatusCode(rawValue: Int(code))!, diagnostic: diagnostic)
        case "declined":
            var reasons: [DeclineReason] = []
            for (i, v) in try r.value("reasons").array(at: r.path.appending("reasons")).enumerated() {
                let n = try v.integer(at: r.path.appending("reasons").appending(index: i), in: 1...3)
                reasons.append(DeclineReason(rawValue: Int(n))!)
            }
            return .declinedByClient(reasons)
        case "cancelled": return .cancelledByClient
        case "expected-response-time-elapsed": return .expectedResponseTimeElapsed
        case "expected-offer-time-elapsed": return .expectedOfferTimeElapsed
        case "offer-expired": return .offerExpired
        case "no-response": return .noResponse
        case "offer-time-refused": return .offerTimeRefused
        default: throw SnapshotError(.invalidValue, at: r.path.appending("kind"), "unknown negotiation end")
        }
    }

    /// Restores a machine from ``snapshot``.
    public init(snapshot: JSONValue) throws(SnapshotError) {
        let r = try SnapshotReader(snapshot, at: .root)
        let c = try r.sub("configuration")
        let config = Configuration(
            retransmission: try c.retransmission("retransmission"),
            withdrawalRetryInterval: .milliseconds(try c.int("withdrawal-retry-interval-ms", 0...86_400_000)),
            enforceDeadlines: try c.bool("enforce-deadlines"),
            // Absent in snapshots written before the probe existed: the default.
            silenceProbeInterval: c.object["silence-probe-interval-ms"] == nil
                ? .seconds(15) : try c.optionalInt("silence-probe-interval-ms", 0...86_400_000).map { .milliseconds($0) })
        var m = ClientOrderStateMachine(customerOrderID: try r.make("customer-order-id", "customer order id") { CustomerOrderID($0) }, configuration: config)
        m.state = try r.make("state", "state") { State(rawValue: $0) }
        m.providerOrderID = r.isNull("provider-order-id") ? nil : try r.make("provider-order-id", "provider order id") { ProviderOrderID($0) }
        m.agreement = try r.agreement("agreement")
        m.requestedCPD = r.isNull("requested-cpd") ? nil : try r.cpd("requested-cpd")
        m.requestedInformationElements = try r.informationElements("requested-information-elements")
        if case .offer(let o)? = try r.message("offer") { m.offer = o }
        if let t = try r.optionalSub("transaction") {
            var tx = Transaction(
                kind: try t.make("kind", "transaction kind") { TransactionKind(rawValue: $0) },
                id: try t.make("id", "transaction id") { TransactionID($0) },
                session: try t.session("session"), sequence: try t.sequence("sequence"),
                pending: try t.pending("pending"), cache: try t.cache("cache"))
            tx.exhausted = try t.bool("exhausted")
            tx.activationSchedule = try t.schedule("activation-schedule")
            tx.requestSequenceNumber = try t.optionalInt("request-sequence-number", 0...Int64(UInt32.max)).map { SequenceNumber($0) }
            tx.withdrawOnAgreement = t.isNull("withdraw-on-agreement") ? false : try t.bool("withdraw-on-agreement")
            tx.withdrawalAlarm = t.isNull("withdrawal-alarm") ? false : try t.bool("withdrawal-alarm")
            m.transaction = tx
        }
        m.expectedResponseTime = try r.time("expected-response-time")
        m.expectedOfferTime = try r.time("expected-offer-time")
        m.pendingTimeDecision = try r.time("pending-time-decision")
        if let e = try r.optionalSub("last-end") { m.lastEnd = try Self.decodeEnd(e) }
        if let spare = try r.optionalSub("spare-transaction") {
            m.spareTransaction = SpareTransaction(
                id: try spare.make("id", "transaction id") { TransactionID($0) },
                initialSequenceNumber: SequenceNumber(try spare.int("initial-sequence-number", 0...Int64(UInt32.max))))
        }
        self = m
    }

    /// The timers that should be armed in the current state, with their deadlines: what an engine
    /// re-arms after a restart. A retransmission timer is re-armed to fire at `now`.
    public func armedTimers(now: CPNPTimestamp) -> [(Timer, CPNPTimestamp)] {
        var out: [(Timer, CPNPTimestamp)] = []
        if let tx = transaction, tx.pending != nil {
            out.append(tx.exhausted && tx.kind == .withdraw ? (.withdrawalRetry, now) : (.retransmission, now))
        }
        if configuration.enforceDeadlines {
            if state == .pqoSent || (state == .serverProcessing && expectedOfferTime == nil), let ert = expectedResponseTime {
                out.append((.expectedResponseTime, ert))
            }
            if state == .serverProcessing, let eot = expectedOfferTime { out.append((.expectedOfferTime, eot)) }
        }
        if state == .offerReceived || state == .offerProcessing, let o = offer { out.append((.offerValidity, o.validityOfferTime)) }
        if state == .completed, let end = agreement?.testPeriodEnd { out.append((.testPeriodEnd, end)) }
        if state == .serverProcessing, let interval = configuration.silenceProbeInterval { out.append((.silenceProbe, now.adding(interval))) }
        return out
    }
}

extension ServerOrderStateMachine {
    /// The machine as a JSON object, for a durable store.
    public var snapshot: JSONValue {
        typealias C = SnapshotCoding
        let t = transaction
        var child: JSONValue = .null
        var phaseName = state.rawValue
        if case .child(let c) = phase {
            child = c.snapshot
            phaseName = "Child"
        }
        return .object(JSONObject([
            ("kind", .string("server-order")),
            ("customer-order-id", .string(customerOrderID.rawValue)),
            ("provider-order-id", .string(providerOrderID.rawValue)),
            ("configuration", .object(JSONObject([("retransmission", C.retransmission(configuration.retransmission))]))),
            ("phase", .string(phaseName)),
            ("child", child),
            ("transaction", .object(JSONObject([
                ("id", .string(t.id.rawValue)), ("session", C.session(t.session)), ("sequence", C.sequence(t.sequence)),
                ("pending", C.pending(t.pending, offer: offer)), ("cache", C.cache(t.cache, offer: offer)),
            ]))),
            ("requested-cpd", CPDReferences.value(requestedCPD)),
            ("requested-information-elements", requestedInformationElements.map(IEWriter.informationElements) ?? .null),
            ("offer", C.message(offer.map { .offer($0) })),
            ("agreement", C.agreement(agreement)),
            ("withdrawn-agreement", C.agreement(withdrawnAgreement)),
            ("is-update", .bool(isUpdate)),
            ("withdrawal-pending", .bool(withdrawalPending)),
            ("expected-offer-time", C.time(expectedOfferTime)),
            ("requested-offer-time", C.time(requestedOfferTime)),
            ("child-agreements", .array(childAgreements.map { C.agreement($0) })),
            ("closed-transaction-ids", .array(closedTransactionIDs.map { .string($0.rawValue) })),
            ("refused-transactions", .array(refusedTransactions.map { refused in
                .object(JSONObject([
                    ("id", .string(refused.id.rawValue)), ("sequence-number", C.int(refused.sequenceNumber)),
                    ("answer", C.message(.fail(refused.answer))),
                ]))
            })),
            ("more-time-requests", C.int(moreTimeRequests)),
            ("more-time-refused", .bool(moreTimeRefused)),
        ]))
    }

    /// Restores a machine from ``snapshot``.
    public init(snapshot: JSONValue) throws(SnapshotError) {
        let r = try SnapshotReader(snapshot, at: .root)
        let config = Configuration(retransmission: try r.sub("configuration").retransmission("retransmission"))
        var offer: OfferMessage?
        if case .offer(let o)? = try r.message("offer") { offer = o }
        let t = try r.sub("transaction")
        let tx = Transaction(
            id: try t.make("id", "transaction id") { TransactionID($0) }, session: try t.session("session"),
            sequence: try t.sequence("sequence"), pending: try t.pending("pending", offer: offer), cache: try t.cache("cache", offer: offer))
        let phaseName = try r.string("phase")
        let phase: Phase
        switch phaseName {
        case "PQOReceived": phase = .pqoReceived
        case "AwaitingProcessing": phase = .awaitingProcessing
        case "OfferProposed": phase = .offerProposed
        case "ProcessingReceived": phase = .processingReceived
        case "AcceptReceived": phase = .acceptReceived
        case "Completed": phase = .completed
        case "Cancelled": phase = .cancelled
        case "Child": phase = .child(try ClientOrderStateMachine(snapshot: r.value("child")))
        default: throw SnapshotError(.invalidValue, at: r.path.appending("phase"), "unknown phase \(phaseName)")
        }
        var children: [Agreement] = []
        let list = try r.value("child-agreements").array(at: r.path.appending("child-agreements"))
        for i in list.indices {
            let wrapper = SnapshotReader.wrap(list[i])
            if let a = try SnapshotReader(wrapper, at: r.path).agreement("a") { children.append(a) }
        }
        // Keys added after the first schema: absent in older snapshots.
        var closed: [TransactionID] = []
        if !r.isNull("closed-transaction-ids") {
            let ids = try r.value("closed-transaction-ids").array(at: r.path.appending("closed-transaction-ids"))
            for i in ids.indices {
                let item = try SnapshotReader(SnapshotReader.wrap(ids[i]), at: r.path.appending("closed-transaction-ids"))
                closed.append(try item.make("a", "transaction id") { TransactionID($0) })
            }
        }
        var refused: [RefusedTransaction] = []
        if !r.isNull("refused-transactions") {
            let list = try r.value("refused-transactions").array(at: r.path.appending("refused-transactions"))
            for i in list.indices {
                let item = try SnapshotReader(list[i], at: r.path.appending("refused-transactions"))
                guard case .fail(let answer) = try item.requiredMessage("answer") else {
                    throw SnapshotError(.invalidValue, at: item.path.appending("answer"), "a refused transaction's answer must be a FAIL")
                }
                refused.append(RefusedTransaction(
                    id: try item.make("id", "transaction id") { TransactionID($0) },
                    sequenceNumber: SequenceNumber(try item.int("sequence-number", 0...Int64(UInt32.max))), answer: answer))
            }
        }
        self.init(
            restoring: try r.make("customer-order-id", "customer order id") { CustomerOrderID($0) },
            providerOrderID: try r.make("provider-order-id", "provider order id") { ProviderOrderID($0) },
            configuration: config, phase: phase, transaction: tx, requestedCPD: try r.cpd("requested-cpd"),
            requestedInformationElements: try r.informationElements("requested-information-elements"), offer: offer,
            agreement: try r.agreement("agreement"), withdrawnAgreement: try r.agreement("withdrawn-agreement"),
            isUpdate: try r.bool("is-update"), withdrawalPending: try r.bool("withdrawal-pending"),
            expectedOfferTime: try r.time("expected-offer-time"), requestedOfferTime: try r.time("requested-offer-time"),
            childAgreements: children, closedTransactionIDs: closed, refusedTransactions: refused,
            moreTimeRequests: Int(try r.optionalInt("more-time-requests", 0...1_000_000) ?? 0),
            moreTimeRefused: r.isNull("more-time-refused") ? false : try r.bool("more-time-refused"))
    }

    /// The timers that should be armed in the current state, with their deadlines: what an engine
    /// re-arms after a restart (offer validity, expected offer time, scheduled activation, test period end).
    public func armedTimers(now: CPNPTimestamp) -> [(Timer, CPNPTimestamp)] {
        var out: [(Timer, CPNPTimestamp)] = []
        if transaction.pending != nil { out.append((.retransmission, now)) }
        switch phase {
        case .offerProposed, .processingReceived:
            if let o = offer { out.append((.offerValidity, o.validityOfferTime)) }
        case .pqoReceived, .awaitingProcessing:
            if let eot = expectedOfferTime { out.append((.expectedOfferTime, eot)) }
        case .child(let c):
            if let eot = expectedOfferTime { out.append((.expectedOfferTime, eot)) }
            out += c.armedTimers(now: now).map { (.child($0.0), $0.1) }
        default:
            break
        }
        if let ag = agreement {
            if let end = ag.testPeriodEnd, ag.purpose == .testing { out.append((.testPeriodEnd, end)) }
            if case .scheduled(let t) = ag.activation { out.append((.scheduledActivation, t)) }
        }
        return out
    }
}

extension SnapshotReader {
    static func wrap(_ v: JSONValue) -> JSONValue { .object(JSONObject([("a", v)])) }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        let (s, a) = components
        return s * 1_000 + a / 1_000_000_000_000_000
    }
}
