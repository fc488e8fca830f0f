/// The client side of one order (RFC 8921 §8.11.1, Figure 8; validation §10.1; behaviour §11.1).
///
/// A value type without I/O: every call takes one event and returns the actions the engine must
/// perform, in order (persist before send). Local commands that are not allowed in the current
/// state throw ``OrderCommandError`` and change nothing; received messages and timers never throw:
/// whatever fails validation is discarded silently (RFC 8921 §10.1, §13).
///
/// An UPDATE of a completed order is negotiated like a quotation (PQOSent … AcceptSent) while the
/// agreement is kept; it replaces the agreement on ACK and survives a failed update (docs/protocol.md §6, A11).
public struct ClientOrderStateMachine: Sendable, Hashable {
    /// The client order states of RFC 8921 §8.11.1.
    public enum State: String, Sendable, Hashable, CaseIterable {
        case created = "Created"
        case awaitingProcessing = "AwaitingProcessing"
        case pqoSent = "PQOSent"
        case serverProcessing = "ServerProcessing"
        case offerReceived = "OfferReceived"
        case offerProcessing = "OfferProcessing"
        case acceptSent = "AcceptSent"
        case completed = "Completed"
        case cancelled = "Cancelled"
    }

    /// Timers the engine arms on request and reports back with ``timerFired(_:now:)``.
    public enum Timer: String, Sendable, Hashable, CaseIterable {
        /// RETRANS_TIMER of the pending request (RFC 8921 §11.4).
        case retransmission
        /// EXPECTED_RESPONSE_TIME of the QUOTATION or UPDATE (§8.5).
        case expectedResponseTime
        /// EXPECTED_OFFER_TIME accepted from the server (§9.1.7).
        case expectedOfferTime
        /// VALIDITY_OFFER_TIME of the offer under evaluation (§9.1.8).
        case offerValidity
        /// Next withdrawal cycle after an unanswered WITHDRAW (§11.1.2).
        case withdrawalRetry
        /// End of the test period of a testing-purpose agreement (§9.1.10.3).
        case testPeriodEnd
        /// Nothing heard for ``Configuration/silenceProbeInterval`` while the server processes the
        /// request: the client retransmits its last message, and the server answers with the latest
        /// message of the transaction (§11.4), e.g. an OFFER a restart could not deliver.
        case silenceProbe
    }

    /// Side effects requested by the machine.
    public enum Action: Sendable, Hashable {
        /// Store the machine as it is now (before any following send).
        case persist(from: State, to: State, event: String)
        /// Send this message on the order's session.
        case send(CPNPMessage)
        case armTimer(Timer, at: CPNPTimestamp)
        case cancelTimer(Timer)
        /// Tell the application.
        case report(Event)
        /// The received message or timer was ignored.
        case discard(DiscardReason)
    }

    /// What the application learns.
    public enum Event: Sendable, Hashable {
        /// The server acknowledged the request (PROCESSING).
        case processing(ProviderOrderID, expectedOfferTime: CPNPTimestamp?)
        /// The server wants until `until`; answer with ``moreTimeDecided(granted:now:)``.
        case moreTimeRequested(until: CPNPTimestamp, subcode: ProcessingSubcode?, isExtension: Bool)
        /// An offer arrived; accept, decline or cancel before `validityOfferTime`.
        case offerReceived(OfferMessage)
        case agreementReached(Agreement)
        /// The negotiation (quotation or update) ended without agreement.
        case negotiationEnded(NegotiationEnd)
        /// The server confirmed a CANCEL or DECLINE.
        case cancellationConfirmed
        /// The server refused a CANCEL or DECLINE (e.g. the order was already agreed: withdraw it).
        case cancellationRefused(FailStatusCode, diagnostic: String?)
        /// The test period of a testing-purpose agreement ended (§9.1.10.3).
        case testPeriodEnded
        case withdrawalConfirmed
        /// WITHDRAW unanswered after every retry: administrator alarm (§11.1.2); another cycle is scheduled.
        case withdrawalUnconfirmed(nextAttempt: CPNPTimestamp)
        case withdrawalRefused(FailStatusCode, diagnostic: String?)
        case activationConfirmed(ActivationSchedule)
        case activationRefused(FailStatusCode, diagnostic: String?)
        /// A request got no answer after every retry.
        case requestUnanswered(MethodCode)
    }

    /// Why a negotiation ended without agreement.
    public enum NegotiationEnd: Sendable, Hashable {
        case failed(FailStatusCode, diagnostic: String?)
        case cancelledByClient
        case declinedByClient([DeclineReason])
        case expectedResponseTimeElapsed
        case expectedOfferTimeElapsed
        case offerExpired
        case noResponse
        case offerTimeRefused
    }

    /// What kind of exchange the open transaction is.
    public enum TransactionKind: String, Sendable, Hashable {
        case quotation, update, withdraw, activate
    }

    /// The open transaction (RFC 8921 §8.4): the exchange, kept as the server's machine keeps its
    /// own, and what the client's requests need besides.
    public struct Transaction: Sendable, Hashable {
        public var kind: TransactionKind
        public var exchange: OrderTransaction
        public var id: TransactionID {
            get { exchange.id }
            set { exchange.id = newValue }
        }
        public var session: CPNPSession {
            get { exchange.session }
            set { exchange.session = newValue }
        }
        public var sequence: SequenceCounters {
            get { exchange.sequence }
            set { exchange.sequence = newValue }
        }
        public var pending: PendingRequest? {
            get { exchange.pending }
            set { exchange.pending = newValue }
        }
        public var cache: CachedExchange? {
            get { exchange.cache }
            set { exchange.cache = newValue }
        }
        /// Set when the pending request's retries are exhausted (withdrawal cycles).
        public var exhausted = false
        public var activationSchedule: ActivationSchedule?
        /// The sequence number of the QUOTATION or UPDATE that opened the transaction: the silence
        /// probe rebuilds that message from it (``openingRequest``) to retransmit it.
        public var requestSequenceNumber: SequenceNumber?
        /// The application cancelled after the ACCEPT was sent: the ACCEPT's answer decides, and an
        /// agreement it reaches is withdrawn at once, so that no CANCEL crosses the ACK (Figure 8).
        public var withdrawOnAgreement = false
        /// A withdrawal cycle ended with no answer at all: the administrator alarm (§11.1.2), until
        /// the provider answers a later cycle.
        public var withdrawalAlarm = false

        public init(
            kind: TransactionKind, id: TransactionID, session: CPNPSession, sequence: SequenceCounters, pending: PendingRequest? = nil,
            cache: CachedExchange? = nil
        ) {
            self.kind = kind
            exchange = OrderTransaction(id: id, session: session, sequence: sequence, pending: pending, cache: cache)
        }
    }

    /// A transaction id and initial sequence number drawn in advance from the CSPRNG, for the
    /// WITHDRAW the machine sends on its own (``Transaction/withdrawOnAgreement``).
    public struct SpareTransaction: Sendable, Hashable {
        public var id: TransactionID
        public var initialSequenceNumber: SequenceNumber
        public init(id: TransactionID, initialSequenceNumber: SequenceNumber) {
            self.id = id
            self.initialSequenceNumber = initialSequenceNumber
        }
    }

    /// Parameters of the machine (RFC 8921 §8.5, §11.1).
    public struct Configuration: Sendable, Hashable {
        public var retransmission: RetransmissionPolicy
        /// Spacing of withdrawal cycles: default 300 s, never below 60 s (docs/protocol.md §6, A1).
        public var withdrawalRetryInterval: Duration
        /// When false, expected response/offer times are not enforced and a QUOTATION carries no
        /// EXPECTED_RESPONSE_TIME (§11.1.1; docs/protocol.md §6, A23).
        public var enforceDeadlines: Bool
        /// How long the client waits in ServerProcessing without hearing from the server before it
        /// retransmits its last message (``Timer/silenceProbe``); nil never probes. Default 15 s.
        public var silenceProbeInterval: Duration?

        public init(
            retransmission: RetransmissionPolicy = .init(), withdrawalRetryInterval: Duration = .seconds(300), enforceDeadlines: Bool = true,
            silenceProbeInterval: Duration? = .seconds(15)
        ) {
            self.retransmission = retransmission
            self.withdrawalRetryInterval = max(withdrawalRetryInterval, .seconds(60))
            self.enforceDeadlines = enforceDeadlines
            self.silenceProbeInterval = silenceProbeInterval.map { max($0, .seconds(1)) }
        }
    }

    /// Where the order is, each case with what it holds (RFC 8921 §8.11.1); ``state`` maps it to the
    /// RFC's names. Its data is boxed, as the server machine's is.
    indirect enum Phase: Sendable, Hashable {
        case created, awaitingProcessing
        /// A QUOTATION, or an UPDATE of the agreement `inForce`, being negotiated. The agreement stays in
        /// force until the update is agreed or ends (docs/protocol.md §6, A11).
        case negotiating(NegotiationStep, inForce: Agreement?)
        /// Agreed. `declinedOffer`: the offer of an UPDATE the client declined, kept for its answer.
        case completed(Agreement, declinedOffer: OfferMessage?)
        /// Ended. `withdrawing`: the agreement a WITHDRAW ends, until the provider confirms it
        /// (§11.1.2); `declinedOffer`: the offer the client declined, kept for its answer.
        case cancelled(withdrawing: Agreement?, declinedOffer: OfferMessage?)
    }

    /// The steps of a negotiation (Figure 8), each with what it holds.
    enum NegotiationStep: Sendable, Hashable {
        /// The QUOTATION or UPDATE is sent. `timeDecision`: the expected offer time of a PROCESSING that
        /// awaits the application's decision (§9.1.7).
        case pqoSent(timeDecision: CPNPTimestamp?)
        case serverProcessing(timeDecision: CPNPTimestamp?)
        /// The offer under evaluation.
        case offerReceived(OfferMessage)
        case offerProcessing(OfferMessage)
        /// The offer accepted, awaiting the provider's ACK.
        case acceptSent(OfferMessage)
    }

    public let customerOrderID: CustomerOrderID
    public let configuration: Configuration
    var phase: Phase = .created
    public internal(set) var providerOrderID: ProviderOrderID?
    /// The CPD requested by the current negotiation.
    public internal(set) var requestedCPD: CPD?
    public internal(set) var requestedInformationElements: InformationElements?
    public internal(set) var transaction: Transaction?
    public internal(set) var expectedResponseTime: CPNPTimestamp?
    public internal(set) var expectedOfferTime: CPNPTimestamp?
    public internal(set) var lastEnd: NegotiationEnd?

    /// The RFC state.
    public var state: State {
        switch phase {
        case .created: .created
        case .awaitingProcessing: .awaitingProcessing
        case .negotiating(.pqoSent, _): .pqoSent
        case .negotiating(.serverProcessing, _): .serverProcessing
        case .negotiating(.offerReceived, _): .offerReceived
        case .negotiating(.offerProcessing, _): .offerProcessing
        case .negotiating(.acceptSent, _): .acceptSent
        case .completed: .completed
        case .cancelled: .cancelled
        }
    }
    /// The agreement in force: once Completed, while an UPDATE of it is negotiated, and while a
    /// WITHDRAW of it awaits the provider's answer.
    public var agreement: Agreement? {
        switch phase {
        case .created, .awaitingProcessing: nil
        case .negotiating(_, let inForce): inForce
        case .completed(let agreement, _): agreement
        case .cancelled(let withdrawing, _): withdrawing
        }
    }
    /// The offer under evaluation or accepted; after a DECLINE, the declined offer.
    public var offer: OfferMessage? {
        switch phase {
        case .created, .awaitingProcessing: nil
        case .negotiating(.offerReceived(let offer), _), .negotiating(.offerProcessing(let offer), _), .negotiating(.acceptSent(let offer), _):
            offer
        case .negotiating: nil
        case .completed(_, let declined), .cancelled(_, let declined): declined
        }
    }
    /// A PROCESSING whose expected-offer-time awaits the application's decision.
    public var pendingTimeDecision: CPNPTimestamp? {
        switch phase {
        case .negotiating(.pqoSent(let decision), _), .negotiating(.serverProcessing(let decision), _): decision
        default: nil
        }
    }
    /// Drawn at each command that opens a transaction (``SpareTransaction``).
    public internal(set) var spareTransaction: SpareTransaction?

    /// A WITHDRAW went unanswered after every retry: the administrator alarm of §11.1.2 stands until
    /// a later withdrawal cycle gets the provider's ACK or FAIL.
    public var withdrawalUnconfirmed: Bool {
        guard let currentTransaction = transaction else { return false }
        return currentTransaction.kind == .withdraw && currentTransaction.withdrawalAlarm && currentTransaction.pending != nil
    }

    /// The CPDs the provider's next message about this order may carry back: the offered one (the
    /// ACK of an ACCEPT), the requested one (an OFFER of what was asked) and the agreed one. A
    /// receiver recognises them by their bytes (``CPNPCodec/parse(_:limits:documents:)``).
    public var recognizableDocuments: [CPD] {
        var documents: [CPD] = []
        if let offered = offer?.offeredCPD { documents.append(offered) }
        if let requestedCPD { documents.append(requestedCPD) }
        if let agreed = agreement?.acceptedCPD { documents.append(agreed) }
        return documents
    }

    public init(customerOrderID: CustomerOrderID, configuration: Configuration = .init()) {
        self.customerOrderID = customerOrderID
        self.configuration = configuration
    }

    /// The negotiation at `step`, keeping the agreement in force.
    private func negotiation(_ step: NegotiationStep) -> Phase { .negotiating(step, inForce: agreement) }

    /// Where a negotiation that did not reach agreement ends: back to Completed when it was an update
    /// of an agreement still in force, else Cancelled (docs/protocol.md §6, A11).
    private func ended(declinedOffer: OfferMessage?) -> Phase {
        agreement.map { .completed($0, declinedOffer: declinedOffer) } ?? .cancelled(withdrawing: nil, declinedOffer: declinedOffer)
    }

    /// Sets the expected offer time that awaits the application's decision (PQOSent, ServerProcessing).
    private mutating func awaitTimeDecision(_ decision: CPNPTimestamp?) {
        switch phase {
        case .negotiating(.pqoSent, let inForce): phase = .negotiating(.pqoSent(timeDecision: decision), inForce: inForce)
        case .negotiating(.serverProcessing, let inForce): phase = .negotiating(.serverProcessing(timeDecision: decision), inForce: inForce)
        default: break
        }
    }

    /// Replaces the agreement in force (an activation changed it), wherever the order is.
    private mutating func replaceAgreement(_ updated: Agreement) {
        switch phase {
        case .negotiating(let step, _): phase = .negotiating(step, inForce: updated)
        case .completed(_, let declined): phase = .completed(updated, declinedOffer: declined)
        case .cancelled(_?, let declined): phase = .cancelled(withdrawing: updated, declinedOffer: declined)
        case .created, .awaitingProcessing, .cancelled(nil, _): break
        }
    }

    // MARK: - Local commands (Figure 8 "sent" arrows)

    /// Created → AwaitingProcessing (Figure 8: administrative approval).
    public mutating func processingApproved() throws(OrderCommandError) -> [Action] {
        try require([.created], "approve processing")
        return transition(to: .awaitingProcessing, "processing approved")
    }

    /// AwaitingProcessing → PQOSent: sends QUOTATION (RFC 8921 §9.2.1, §11.1.1).
    public mutating func sendQuotation(
        requestedCPD: CPD, informationElements: InformationElements? = nil, expectedResponseTime: CPNPTimestamp? = nil,
        session: CPNPSession, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) throws(OrderCommandError) -> [Action] {
        try require([.awaitingProcessing], "send a QUOTATION")
        var currentTransaction = Transaction(
            kind: .quotation, id: .random(using: &rng), session: session,
            sequence: SequenceCounters(initialOutgoing: .randomInitial(using: &rng)))
        drawSpareTransaction(using: &rng)
        // A client that does not enforce deadlines does not announce one either (§11.1.1).
        let quotation = QuotationMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID,
            expectedResponseTime: configuration.enforceDeadlines ? expectedResponseTime : nil, requestedCPD: requestedCPD,
            informationElements: informationElements)
        currentTransaction.pending = PendingRequest(message: .quotation(quotation))
        currentTransaction.requestSequenceNumber = quotation.sequenceNumber
        transaction = currentTransaction
        self.requestedCPD = requestedCPD
        requestedInformationElements = informationElements
        self.expectedResponseTime = expectedResponseTime
        expectedOfferTime = nil
        var actions = transition(to: .negotiating(.pqoSent(timeDecision: nil), inForce: nil), "QUOTATION sent")
        actions += [.send(.quotation(quotation)), .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval))]
        if let expectedResponseTime, configuration.enforceDeadlines { actions.append(.armTimer(.expectedResponseTime, at: expectedResponseTime)) }
        return actions
    }

    /// Created → PQOSent in one step: approval then QUOTATION.
    public mutating func quote(
        requestedCPD: CPD, informationElements: InformationElements? = nil, expectedResponseTime: CPNPTimestamp? = nil,
        session: CPNPSession, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) throws(OrderCommandError) -> [Action] {
        let approvalActions = try processingApproved()
        return approvalActions
            + (try sendQuotation(
                requestedCPD: requestedCPD, informationElements: informationElements, expectedResponseTime: expectedResponseTime,
                session: session, now: now, using: &rng))
    }

    /// Answers a pending expected-offer-time: grant (ACK for an extension) or refuse (CANCEL for the
    /// first one, FAIL 7 for an extension) (RFC 8921 §9.2.2, §11.1.1; docs/protocol.md §6, A22).
    public mutating func moreTimeDecided(granted: Bool, now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        guard let until = pendingTimeDecision, var currentTransaction = transaction, let providerOrderID else {
            throw OrderCommandError(.noPendingDecision, "no expected offer time awaits a decision")
        }
        awaitTimeDecision(nil)
        if state == .pqoSent {
            if granted {
                expectedOfferTime = until
                var actions = transition(to: negotiation(.serverProcessing(timeDecision: nil)), "expected offer time \(until.rfc3339) accepted")
                actions += [.cancelTimer(.expectedResponseTime), .armTimer(.expectedOfferTime, at: until)] + armSilenceProbe(now: now)
                return actions
            }
            return cancelNegotiation(.offerTimeRefused, now: now, event: "expected offer time refused")
        }
        // An extension request in ServerProcessing: answer it, and cache the answer.
        let answer: CPNPMessage
        if granted {
            answer = .ack(
                AckMessage(
                    sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id,
                    customerOrderID: customerOrderID,
                    providerOrderID: providerOrderID, expectedResponseTime: until))
            expectedOfferTime = until
        } else {
            answer = .fail(
                FailMessage(
                    sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id,
                    customerOrderID: customerOrderID,
                    providerOrderID: providerOrderID, statusCode: .moreTimeRejected))
        }
        currentTransaction.cache?.answer = answer
        transaction = currentTransaction
        var actions = transition(
            to: negotiation(.serverProcessing(timeDecision: nil)), granted ? "more time granted until \(until.rfc3339)" : "more time refused")
        actions.append(.send(answer))
        if granted && configuration.enforceDeadlines { actions.append(.armTimer(.expectedOfferTime, at: until)) }
        return actions
    }

    /// OfferReceived → OfferProcessing: sends PROCESSING to stop the OFFER's retransmission (Figure 8).
    public mutating func offerProcessingStarted(now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        try require([.offerReceived], "acknowledge the offer")
        guard var currentTransaction = transaction, let offer else { throw invalid("acknowledge the offer") }
        let processing = ProcessingMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID,
            providerOrderID: offer.providerOrderID)
        currentTransaction.cache?.answer = .processing(processing)
        transaction = currentTransaction
        return transition(to: negotiation(.offerProcessing(offer)), "PROCESSING sent") + [.send(.processing(processing))]
    }

    /// OfferReceived/OfferProcessing → AcceptSent: sends ACCEPT with the offer's fields (RFC 8921 §9.2.4).
    /// Never accepts an expired offer.
    public mutating func accept(informationElements: InformationElements? = nil, now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        try require([.offerReceived, .offerProcessing], "accept")
        guard var currentTransaction = transaction, let offer else { throw invalid("accept") }
        guard now < offer.validityOfferTime else {
            throw OrderCommandError(.offerExpired, "the offer expired at \(offer.validityOfferTime.rfc3339)")
        }
        let acceptMessage = AcceptMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID,
            providerOrderID: offer.providerOrderID, nonce: offer.nonce, acceptedCPD: offer.offeredCPD,
            informationElements: informationElements)
        currentTransaction.pending = PendingRequest(message: .accept(acceptMessage))
        currentTransaction.cache?.answer = .accept(acceptMessage)
        transaction = currentTransaction
        var actions = transition(to: negotiation(.acceptSent(offer)), "ACCEPT sent")
        actions += [
            .cancelTimer(.offerValidity), .send(.accept(acceptMessage)),
            .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval)),
        ]
        return actions
    }

    /// OfferReceived/OfferProcessing → Cancelled: sends DECLINE (RFC 8921 §9.2.5).
    public mutating func decline(reasons: [DeclineReason] = [], now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        try require([.offerReceived, .offerProcessing], "decline")
        guard var currentTransaction = transaction, let offer else { throw invalid("decline") }
        let declineMessage = DeclineMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID,
            providerOrderID: offer.providerOrderID, nonce: offer.nonce, reasons: reasons)
        currentTransaction.pending = PendingRequest(message: .decline(declineMessage))
        currentTransaction.cache?.answer = .decline(declineMessage)
        transaction = currentTransaction
        lastEnd = .declinedByClient(reasons)
        let expired = expireTestingAgreement(now: now)
        var actions = transition(to: ended(declinedOffer: offer), "DECLINE sent")
        actions += [
            .cancelTimer(.offerValidity), .send(.decline(declineMessage)),
            .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval)),
        ]
        actions.append(.report(.negotiationEnded(.declinedByClient(reasons))))
        return actions + expired
    }

    /// Cancels the order (or the update in progress) at any stage before agreement (RFC 8921 §9.2.7).
    /// Before a QUOTATION was sent this is a local abort and sends nothing.
    ///
    /// Once the ACCEPT is sent, a CANCEL would cross the server's ACK, and the client could not tell
    /// the ACK of the ACCEPT from that of the CANCEL: both carry the offered CPD. So in AcceptSent the
    /// ACCEPT's answer decides: a FAIL ends the negotiation, and an ACK's agreement is withdrawn at
    /// once. An UPDATE's ACCEPT cannot be cancelled (the agreement it replaces could not be restored).
    public mutating func cancel(now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        switch state {
        case .created, .awaitingProcessing:
            lastEnd = .cancelledByClient
            return transition(to: .cancelled(withdrawing: nil, declinedOffer: nil), "aborted locally") + [
                .report(.negotiationEnded(.cancelledByClient))
            ]
        case .acceptSent:
            guard var currentTransaction = transaction, currentTransaction.kind == .quotation, spareTransaction != nil else {
                throw OrderCommandError(
                    .invalidState, "the ACCEPT of the UPDATE awaits its answer and cannot be cancelled; update again once it is answered")
            }
            guard !currentTransaction.withdrawOnAgreement else { return [] }
            currentTransaction.withdrawOnAgreement = true
            transaction = currentTransaction
            return [.persist(from: state, to: state, event: "cancel requested after ACCEPT: an agreement will be withdrawn at once")]
        case .pqoSent, .serverProcessing, .offerReceived, .offerProcessing:
            return cancelNegotiation(.cancelledByClient, now: now, event: "CANCEL sent")
        case .completed, .cancelled:
            throw invalid("cancel (use withdraw for an agreed order)")
        }
    }

    /// Completed → Cancelled: sends WITHDRAW in a new transaction (RFC 8921 §9.2.8, §11.1.2; docs/protocol.md §6, A19).
    /// Refused while an earlier request (a CANCEL of an update, an ACTIVATE) awaits its answer.
    public mutating func withdraw(
        session: CPNPSession, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) throws(OrderCommandError) -> [Action] {
        try require([.completed], "withdraw")
        try requireNoPendingRequest("withdraw")
        guard let agreement else { throw invalid("withdraw") }
        let spare = SpareTransaction(id: .random(using: &rng), initialSequenceNumber: .randomInitial(using: &rng))
        drawSpareTransaction(using: &rng)
        return openWithdrawal(
            spare, providerOrderID: agreement.providerOrderID, nonce: agreement.nonce, session: session, now: now, event: "WITHDRAW sent")
    }

    /// Sends WITHDRAW of the order (`providerOrderID`, `nonce`) in the transaction `spare`: → Cancelled.
    private mutating func openWithdrawal(
        _ spare: SpareTransaction, providerOrderID: ProviderOrderID, nonce: Nonce, session: CPNPSession, now: CPNPTimestamp, event: String
    ) -> [Action] {
        var currentTransaction = Transaction(
            kind: .withdraw, id: spare.id, session: session, sequence: SequenceCounters(initialOutgoing: spare.initialSequenceNumber))
        let withdrawMessage = WithdrawMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID,
            providerOrderID: providerOrderID, nonce: nonce)
        currentTransaction.pending = PendingRequest(message: .withdraw(withdrawMessage))
        transaction = currentTransaction
        var actions = transition(to: .cancelled(withdrawing: agreement, declinedOffer: offer), event)
        actions += [
            .cancelTimer(.silenceProbe), .cancelTimer(.testPeriodEnd), .send(.withdraw(withdrawMessage)),
            .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval)),
        ]
        return actions
    }

    private mutating func drawSpareTransaction(using rng: inout some RandomNumberGenerator) {
        spareTransaction = SpareTransaction(id: .random(using: &rng), initialSequenceNumber: .randomInitial(using: &rng))
    }

    /// A new transaction may not drop the answer of a request still pending (e.g. the CANCEL of an
    /// update): the command waits until that request is answered or given up (§11.4).
    private func requireNoPendingRequest(_ what: String) throws(OrderCommandError) {
        if let currentTransaction = transaction, let pending = currentTransaction.pending {
            throw OrderCommandError(.invalidState, "cannot \(what) while the \(pending.message.method) sent before awaits its answer")
        }
    }

    /// Completed → PQOSent with the agreement kept: sends UPDATE in a new transaction (RFC 8921 §9.2.9, §11.1.3).
    public mutating func update(
        requestedCPD: CPD, informationElements: InformationElements? = nil, expectedResponseTime: CPNPTimestamp,
        session: CPNPSession, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) throws(OrderCommandError) -> [Action] {
        try require([.completed], "update")
        guard let agreement else { throw invalid("update") }
        try requireNoPendingRequest("update")
        var currentTransaction = Transaction(
            kind: .update, id: .random(using: &rng), session: session,
            sequence: SequenceCounters(initialOutgoing: .randomInitial(using: &rng)))
        drawSpareTransaction(using: &rng)
        let updateMessage = UpdateMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID,
            providerOrderID: agreement.providerOrderID, nonce: agreement.nonce, expectedResponseTime: expectedResponseTime,
            requestedCPD: requestedCPD, informationElements: informationElements)
        currentTransaction.pending = PendingRequest(message: .update(updateMessage))
        currentTransaction.requestSequenceNumber = updateMessage.sequenceNumber
        transaction = currentTransaction
        self.requestedCPD = requestedCPD
        requestedInformationElements = informationElements
        self.expectedResponseTime = expectedResponseTime
        expectedOfferTime = nil
        var actions = transition(to: .negotiating(.pqoSent(timeDecision: nil), inForce: agreement), "UPDATE sent")
        actions += [.send(.update(updateMessage)), .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval))]
        if configuration.enforceDeadlines { actions.append(.armTimer(.expectedResponseTime, at: expectedResponseTime)) }
        return actions
    }

    /// Sends ACTIVATE for an agreement whose activation type is explicit (RFC 8921 §9.2.11).
    public mutating func activate(
        _ schedule: ActivationSchedule, session: CPNPSession, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) throws(OrderCommandError) -> [Action] {
        try require([.completed], "activate")
        guard let agreement else { throw invalid("activate") }
        guard agreement.activationType == .explicit else {
            throw OrderCommandError(.activationNotExplicit, "the agreed activation type is \(agreement.activationType.rawValue), not explicit")
        }
        try requireNoPendingRequest("activate")
        var currentTransaction = Transaction(
            kind: .activate, id: .random(using: &rng), session: session,
            sequence: SequenceCounters(initialOutgoing: .randomInitial(using: &rng)))
        drawSpareTransaction(using: &rng)
        currentTransaction.activationSchedule = schedule
        let activateMessage = ActivateMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID,
            providerOrderID: agreement.providerOrderID, nonce: agreement.nonce, activationSchedule: schedule)
        currentTransaction.pending = PendingRequest(message: .activate(activateMessage))
        transaction = currentTransaction
        return [
            .persist(from: state, to: state, event: "ACTIVATE sent (\(schedule))"),
            .send(.activate(activateMessage)), .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval)),
        ]
    }

    // MARK: - Received messages (Table 5)

    /// Handles a message received on `session` (RFC 8921 §10.1). Answers from an unknown server
    /// must be filtered by the engine before (§13).
    public mutating func messageReceived(_ message: CPNPMessage, session: CPNPSession, now: CPNPTimestamp) -> [Action] {
        guard var currentTransaction = transaction, message.transactionID == currentTransaction.id, message.customerOrderID == customerOrderID else {
            return [.discard(.unknownTransaction)]
        }
        guard session == currentTransaction.session else { return [.discard(.sessionMismatch)] }
        switch currentTransaction.exchange.arrival(of: message, now: now, policy: configuration.retransmission) {
        case .stale:
            return [.discard(.staleSequenceNumber)]
        case .duplicate(let answer):
            guard let answer else { return [.discard(.duplicate)] }
            transaction = currentTransaction
            return [.send(answer)]
        case .fresh:
            break
        }
        let actions = dispatch(message, now: now)
        if case .discard = actions.first, actions.count == 1 { return actions }
        // Legitimate: record its sequence number and cache it for duplicates (§11.3, §11.4).
        if var updatedTransaction = transaction, updatedTransaction.id == message.transactionID {
            updatedTransaction.exchange.record(message)
            transaction = updatedTransaction
        }
        return actions
    }

    private mutating func dispatch(_ message: CPNPMessage, now: CPNPTimestamp) -> [Action] {
        guard let currentTransaction = transaction else { return [.discard(.unknownTransaction)] }
        if let receivedProviderOrderID = message.providerOrderID, let known = providerOrderID, receivedProviderOrderID != known {
            return [.discard(.mismatch("provider-order-id"))]
        }
        switch (state, message) {
        case (.pqoSent, .processing(let processing)) where currentTransaction.kind == .quotation || currentTransaction.kind == .update:
            return processingReceived(processing, firstAnswer: true, now: now)
        case (.serverProcessing, .processing(let processing)):
            return processingReceived(processing, firstAnswer: false, now: now)
        case (.pqoSent, .offer(let receivedOffer)), (.serverProcessing, .offer(let receivedOffer)):
            return offerReceived(receivedOffer, now: now)
        case (.pqoSent, .fail(let fail)), (.serverProcessing, .fail(let fail)), (.offerReceived, .fail(let fail)),
            (.offerProcessing, .fail(let fail)), (.acceptSent, .fail(let fail)):
            guard currentTransaction.kind == .quotation || currentTransaction.kind == .update else {
                return [.discard(.unexpected(.fail, inState: state.rawValue))]
            }
            return endNegotiation(.failed(fail.statusCode, diagnostic: fail.diagnostic), now: now, event: "FAIL \(fail.statusCode.rawValue) received")
        case (.acceptSent, .ack(let ack)):
            return acceptAcknowledged(ack, now: now)
        case (.cancelled, .processing(let processing)) where currentTransaction.kind == .withdraw && currentTransaction.pending != nil:
            // Figure 14: the server is processing the withdrawal; stop retransmitting and wait for the
            // ACK, repeating the WITHDRAW after a withdrawal interval if it never comes (§11.1.2, §11.4).
            guard processing.providerOrderID == providerOrderID else { return [.discard(.mismatch("provider-order-id"))] }
            transaction?.exhausted = true
            transaction?.withdrawalAlarm = false
            return [
                .persist(from: state, to: state, event: "PROCESSING received for WITHDRAW"), .cancelTimer(.retransmission),
                .armTimer(.withdrawalRetry, at: now.adding(configuration.withdrawalRetryInterval)),
            ]
        case (.cancelled, .ack(let ack)), (.completed, .ack(let ack)):
            return closingAckReceived(ack)
        case (.cancelled, .fail(let fail)), (.completed, .fail(let fail)):
            return closingFailReceived(fail)
        default:
            switch message.method {
            case .ack, .fail, .processing: return [.discard(.unsolicitedResponse(message.method))]
            default: return [.discard(.unexpected(message.method, inState: state.rawValue))]
            }
        }
    }

    private mutating func processingReceived(_ processing: ProcessingMessage, firstAnswer: Bool, now: CPNPTimestamp) -> [Action] {
        if let agreement, processing.providerOrderID != agreement.providerOrderID { return [.discard(.mismatch("provider-order-id"))] }
        var actions: [Action] = []
        if firstAnswer {
            providerOrderID = processing.providerOrderID
            transaction?.pending = nil
            actions.append(.cancelTimer(.retransmission))
            actions.append(.report(.processing(processing.providerOrderID, expectedOfferTime: processing.expectedOfferTime)))
            if let proposedOfferTime = processing.expectedOfferTime, configuration.enforceDeadlines {
                if let expectedResponseTime, proposedOfferTime > expectedResponseTime {
                    // The server proposes more time than asked: the application decides (§9.1.7).
                    awaitTimeDecision(proposedOfferTime)
                    return [.persist(from: state, to: state, event: "PROCESSING received, expected offer time beyond expected response time")]
                        + actions + [.report(.moreTimeRequested(until: proposedOfferTime, subcode: processing.processingSubcode, isExtension: false))]
                }
                expectedOfferTime = proposedOfferTime
                return transition(to: negotiation(.serverProcessing(timeDecision: pendingTimeDecision)), "PROCESSING received") + actions
                    + [.cancelTimer(.expectedResponseTime), .armTimer(.expectedOfferTime, at: proposedOfferTime)] + armSilenceProbe(now: now)
            }
            expectedOfferTime = processing.expectedOfferTime
            return transition(to: negotiation(.serverProcessing(timeDecision: pendingTimeDecision)), "PROCESSING received") + actions
                + armSilenceProbe(now: now)
        }
        // In ServerProcessing: a new expected offer time is a request for more time (§9.2.2; docs/protocol.md §6, A18).
        guard let proposedOfferTime = processing.expectedOfferTime, proposedOfferTime != expectedOfferTime else {
            return [.persist(from: state, to: state, event: "PROCESSING received")]
        }
        awaitTimeDecision(proposedOfferTime)
        return [
            .persist(from: state, to: state, event: "more time requested until \(proposedOfferTime.rfc3339)"),
            .report(.moreTimeRequested(until: proposedOfferTime, subcode: processing.processingSubcode, isExtension: true)),
        ]
    }

    private mutating func offerReceived(_ receivedOffer: OfferMessage, now: CPNPTimestamp) -> [Action] {
        if let agreement, receivedOffer.providerOrderID != agreement.providerOrderID { return [.discard(.mismatch("provider-order-id"))] }
        providerOrderID = receivedOffer.providerOrderID
        awaitTimeDecision(nil)
        transaction?.pending = nil
        guard now < receivedOffer.validityOfferTime else {
            // Already expired: the server forgets it silently; so do we (§9.1.8).
            var actions = endNegotiation(.offerExpired, now: now, event: "expired OFFER received")
            actions.insert(.cancelTimer(.retransmission), at: 1)
            return actions
        }
        var actions = transition(to: negotiation(.offerReceived(receivedOffer)), "OFFER received")
        actions += [
            .cancelTimer(.retransmission), .cancelTimer(.expectedResponseTime), .cancelTimer(.expectedOfferTime),
            .cancelTimer(.silenceProbe), .armTimer(.offerValidity, at: receivedOffer.validityOfferTime), .report(.offerReceived(receivedOffer)),
        ]
        return actions
    }

    private mutating func acceptAcknowledged(_ ack: AckMessage, now: CPNPTimestamp) -> [Action] {
        guard let offer, ack.providerOrderID == offer.providerOrderID else { return [.discard(.mismatch("provider-order-id"))] }
        // Three-way handshake: the ACK carries the accepted (= offered) CPD (Table 5; docs/protocol.md §6, A25).
        guard ack.cpd == offer.offeredCPD else { return [.discard(.mismatch("cpd differs from the offered CPD"))] }
        let newAgreement = Agreement.make(offer: offer, requestOptions: requestedInformationElements?.negotiationOptions, agreedAt: now)
        transaction?.pending = nil
        lastEnd = nil
        var actions = transition(to: .completed(newAgreement, declinedOffer: nil), "ACK received, agreement reached")
        actions += [.cancelTimer(.retransmission), .report(.agreementReached(newAgreement))]
        if transaction?.withdrawOnAgreement == true, let spare = spareTransaction, let session = transaction?.session {
            // The application cancelled after the ACCEPT: withdraw what the ACK agreed (§9.2.8).
            spareTransaction = nil
            actions.append(.cancelTimer(.testPeriodEnd))
            return actions
                + openWithdrawal(
                    spare, providerOrderID: newAgreement.providerOrderID, nonce: newAgreement.nonce, session: session, now: now,
                    event: "WITHDRAW sent: cancelled after ACCEPT")
        }
        if let end = newAgreement.testPeriodEnd {
            actions.append(.armTimer(.testPeriodEnd, at: end))
        } else {
            actions.append(.cancelTimer(.testPeriodEnd))
        }
        return actions
    }

    private mutating func closingAckReceived(_ ack: AckMessage) -> [Action] {
        guard var currentTransaction = transaction, let pending = currentTransaction.pending else { return [.discard(.unsolicitedResponse(.ack))] }
        if let providerOrderID, ack.providerOrderID != providerOrderID { return [.discard(.mismatch("provider-order-id"))] }
        let event: Event
        switch pending.message {
        case .withdraw:
            // Table 5: the ACK of a WITHDRAW carries the Empty CPD.
            guard ack.cpd?.isEmpty ?? true else { return [.discard(.mismatch("ACK of WITHDRAW must carry the empty CPD"))] }
            event = .withdrawalConfirmed
            if case .cancelled(_, let declined) = phase { phase = .cancelled(withdrawing: nil, declinedOffer: declined) }
        case .cancel, .decline:
            event = .cancellationConfirmed
        case .activate(let activate):
            event = .activationConfirmed(activate.activationSchedule)
            if var updatedAgreement = agreement {
                switch activate.activationSchedule {
                case .now: updatedAgreement.activation = .active
                case .deactivate: updatedAgreement.activation = .inactive
                case .at(let time): updatedAgreement.activation = .scheduled(time)
                }
                replaceAgreement(updatedAgreement)
            }
        default:
            return [.discard(.unsolicitedResponse(.ack))]
        }
        currentTransaction.pending = nil
        currentTransaction.exhausted = false
        transaction = currentTransaction
        return [
            .persist(from: state, to: state, event: "ACK received"), .cancelTimer(.retransmission), .cancelTimer(.withdrawalRetry), .report(event),
        ]
    }

    private mutating func closingFailReceived(_ fail: FailMessage) -> [Action] {
        guard var currentTransaction = transaction, let pending = currentTransaction.pending else { return [.discard(.unsolicitedResponse(.fail))] }
        let event: Event
        switch pending.message {
        case .withdraw: event = .withdrawalRefused(fail.statusCode, diagnostic: fail.diagnostic)
        case .activate: event = .activationRefused(fail.statusCode, diagnostic: fail.diagnostic)
        case .cancel, .decline: event = .cancellationRefused(fail.statusCode, diagnostic: fail.diagnostic)
        default: return [.discard(.unsolicitedResponse(.fail))]
        }
        currentTransaction.pending = nil
        currentTransaction.exhausted = false
        transaction = currentTransaction
        return [
            .persist(from: state, to: state, event: "FAIL \(fail.statusCode.rawValue) received"), .cancelTimer(.retransmission),
            .cancelTimer(.withdrawalRetry), .report(event),
        ]
    }

    // MARK: - Timers

    /// Handles a timer the engine armed (RFC 8921 §8.5, §11.1, §11.4). Stale timers are discarded.
    public mutating func timerFired(_ timer: Timer, now: CPNPTimestamp) -> [Action] {
        switch timer {
        case .retransmission:
            return retransmissionTimerFired(now: now)
        case .expectedResponseTime:
            guard configuration.enforceDeadlines, state == .pqoSent || state == .serverProcessing,
                expectedOfferTime == nil || state == .pqoSent, let expectedResponseTime = expectedResponseTime, now >= expectedResponseTime
            else { return [.discard(.staleTimer)] }
            return cancelNegotiation(.expectedResponseTimeElapsed, now: now, event: "expected response time elapsed")
        case .expectedOfferTime:
            guard configuration.enforceDeadlines, state == .serverProcessing, let expectedOfferTime, now >= expectedOfferTime else {
                return [.discard(.staleTimer)]
            }
            return cancelNegotiation(.expectedOfferTimeElapsed, now: now, event: "expected offer time elapsed")
        case .offerValidity:
            guard state == .offerReceived || state == .offerProcessing, let offer, now >= offer.validityOfferTime else {
                return [.discard(.staleTimer)]
            }
            return endNegotiation(.offerExpired, now: now, event: "offer expired")
        case .testPeriodEnd:
            return testPeriodEnded(now: now)
        case .silenceProbe:
            guard state == .serverProcessing, let currentTransaction = transaction, let interval = configuration.silenceProbeInterval else {
                return [.discard(.staleTimer)]
            }
            let next = now.adding(interval)
            // While the application decides on more time there is nothing to ask the server.
            guard pendingTimeDecision == nil, let last = currentTransaction.cache?.answer ?? openingRequest else {
                return [.armTimer(.silenceProbe, at: next)]
            }
            // A retransmission of the client's last message (same sequence number, §11.4).
            return [.send(last), .armTimer(.silenceProbe, at: next)]
        case .withdrawalRetry:
            guard var currentTransaction = transaction, currentTransaction.kind == .withdraw, currentTransaction.exhausted,
                let pending = currentTransaction.pending
            else { return [.discard(.staleTimer)] }
            // A new withdrawal cycle: the same message again (same sequence number, §11.4).
            currentTransaction.exhausted = false
            currentTransaction.pending = PendingRequest(message: pending.message)
            transaction = currentTransaction
            return [.send(pending.message), .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval))]
        }
    }

    private mutating func testPeriodEnded(now: CPNPTimestamp) -> [Action] {
        guard state == .completed, let testingAgreement = agreement, testingAgreement.purpose == .testing, let end = testingAgreement.testPeriodEnd,
            now >= end
        else {
            return [.discard(.staleTimer)]
        }
        // The server ends the order at the same time, without a message.
        transaction?.pending = nil
        return transition(to: .cancelled(withdrawing: nil, declinedOffer: offer), "test period ended") + [
            .cancelTimer(.retransmission), .report(.testPeriodEnded),
        ]
    }

    private mutating func retransmissionTimerFired(now: CPNPTimestamp) -> [Action] {
        guard var currentTransaction = transaction, let pending = currentTransaction.pending, !currentTransaction.exhausted else {
            return [.discard(.staleTimer)]
        }
        if let resend = currentTransaction.exchange.retransmission(now: now, policy: configuration.retransmission) {
            transaction = currentTransaction
            return [.send(resend.message), .armTimer(.retransmission, at: resend.next)]
        }
        // Retries exhausted.
        switch pending.message {
        case .accept(let accept) where currentTransaction.kind == .quotation && spareTransaction != nil:
            // The server may have agreed and lost every ACK, or be agreeing now: CANCEL (honoured
            // before the agreement) and WITHDRAW (honoured after it) leave no agreement either way,
            // so the two sides cannot disagree (§9.2.7, §9.2.8, §11.4).
            let spare = spareTransaction!
            spareTransaction = nil
            let session = currentTransaction.session
            return cancelNegotiation(.noResponse, now: now, event: "ACCEPT unanswered", retransmitCancel: false)
                + openWithdrawal(
                    spare, providerOrderID: accept.providerOrderID, nonce: accept.nonce, session: session, now: now,
                    event: "WITHDRAW sent: the unanswered ACCEPT may have reached an agreement")
        case .quotation, .update, .accept:
            return cancelNegotiation(.noResponse, now: now, event: "\(pending.message.method) unanswered", retransmitCancel: false)
        case .withdraw:
            currentTransaction.exhausted = true
            currentTransaction.withdrawalAlarm = true
            transaction = currentTransaction
            let next = now.adding(configuration.withdrawalRetryInterval)
            return [
                .persist(from: state, to: state, event: "WITHDRAW unanswered, alarm raised"),
                .report(.withdrawalUnconfirmed(nextAttempt: next)), .armTimer(.withdrawalRetry, at: next),
            ]
        default:
            currentTransaction.pending = nil
            transaction = currentTransaction
            return [
                .persist(from: state, to: state, event: "\(pending.message.method) unanswered"), .report(.requestUnanswered(pending.message.method)),
            ]
        }
    }

    // MARK: - Helpers

    /// The QUOTATION or UPDATE that opened the transaction, as it was sent: the same fields and
    /// sequence number, so that the server takes it for a retransmission (§11.4).
    var openingRequest: CPNPMessage? {
        guard let currentTransaction = transaction, let sequenceNumber = currentTransaction.requestSequenceNumber, let requestedCPD else {
            return nil
        }
        switch currentTransaction.kind {
        case .quotation:
            return .quotation(
                QuotationMessage(
                    sequenceNumber: sequenceNumber, transactionID: currentTransaction.id, customerOrderID: customerOrderID,
                    expectedResponseTime: configuration.enforceDeadlines ? expectedResponseTime : nil, requestedCPD: requestedCPD,
                    informationElements: requestedInformationElements))
        case .update:
            guard let agreement, let expectedResponseTime else { return nil }
            return .update(
                UpdateMessage(
                    sequenceNumber: sequenceNumber, transactionID: currentTransaction.id, customerOrderID: customerOrderID,
                    providerOrderID: agreement.providerOrderID,
                    nonce: agreement.nonce, expectedResponseTime: expectedResponseTime, requestedCPD: requestedCPD,
                    informationElements: requestedInformationElements))
        case .withdraw, .activate:
            return nil
        }
    }

    private func armSilenceProbe(now: CPNPTimestamp) -> [Action] {
        configuration.silenceProbeInterval.map { [.armTimer(.silenceProbe, at: now.adding($0))] } ?? []
    }

    /// Ends a testing agreement whose test period ended while an update was negotiated: the update
    /// did not make it permanent (§9.1.10.3). The server applies the same rule.
    private mutating func expireTestingAgreement(now: CPNPTimestamp) -> [Action] {
        guard case .negotiating(let step, let testingAgreement?) = phase, testingAgreement.purpose == .testing,
            let end = testingAgreement.testPeriodEnd, end <= now
        else {
            return []
        }
        phase = .negotiating(step, inForce: nil)
        return [.cancelTimer(.testPeriodEnd), .report(.testPeriodEnded)]
    }

    /// Sends CANCEL in the negotiation's transaction and ends it (RFC 8921 §8.5, §9.2.7).
    private mutating func cancelNegotiation(_ end: NegotiationEnd, now: CPNPTimestamp, event: String, retransmitCancel: Bool = true) -> [Action] {
        guard var currentTransaction = transaction else { return endNegotiation(end, now: now, event: event) }
        let cancelMessage = CancelMessage(
            sequenceNumber: currentTransaction.sequence.takeOutgoing(), transactionID: currentTransaction.id, customerOrderID: customerOrderID)
        currentTransaction.pending = retransmitCancel ? PendingRequest(message: .cancel(cancelMessage)) : nil
        transaction = currentTransaction
        var actions = endNegotiation(end, now: now, event: event)
        actions.append(.send(.cancel(cancelMessage)))
        if retransmitCancel { actions.append(.armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval))) }
        return actions
    }

    /// Ends the negotiation without agreement, without sending anything.
    private mutating func endNegotiation(_ end: NegotiationEnd, now: CPNPTimestamp, event: String) -> [Action] {
        lastEnd = end
        if case .cancel = transaction?.pending?.message {} else { transaction?.pending = nil }
        let expired = expireTestingAgreement(now: now)
        var actions = transition(to: ended(declinedOffer: nil), expired.isEmpty ? event : "\(event); test period had ended")
        actions += [
            .cancelTimer(.retransmission), .cancelTimer(.expectedResponseTime), .cancelTimer(.expectedOfferTime),
            .cancelTimer(.offerValidity), .cancelTimer(.silenceProbe), .report(.negotiationEnded(end)),
        ]
        return actions + expired
    }

    private mutating func transition(to next: Phase, _ event: String) -> [Action] {
        let from = state
        phase = next
        return [.persist(from: from, to: state, event: event)]
    }

    private func require(_ states: Set<State>, _ what: String) throws(OrderCommandError) {
        guard states.contains(state) else { throw invalid(what) }
    }

    private func invalid(_ what: String) -> OrderCommandError {
        OrderCommandError(.invalidState, "cannot \(what) in state \(state.rawValue)")
    }
}
