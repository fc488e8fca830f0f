/// The server side of one order (RFC 8921 §8.11.2, Figure 9; validation §10.2; behaviour §11.2).
///
/// A value type without I/O. The engine creates it from a QUOTATION with
/// ``quotationReceived(_:session:providerOrderID:now:configuration:using:)``, feeds it received
/// messages, timer firings and the decision engine's choices, and performs the returned actions in
/// order (persist before send: an OFFER is durable before it leaves; the ACK of an ACCEPT is sent
/// only once Completed is stored).
///
/// Bad input never changes state: a failed check is answered with FAIL 1 (stateless) or silently
/// discarded (stale or duplicate sequence numbers; unsolicited ACK, FAIL or PROCESSING, to avoid
/// answer loops). An UPDATE renegotiates while the agreement is kept (docs/protocol.md §6, A11). Child orders
/// towards other providers are a nested ``ClientOrderStateMachine`` (Figure 9 Child* states).
public struct ServerOrderStateMachine: Sendable, Hashable {
    /// The server order states of RFC 8921 §8.11.2.
    public enum State: String, Sendable, Hashable, CaseIterable {
        case pqoReceived = "PQOReceived"
        case awaitingProcessing = "AwaitingProcessing"
        case offerProposed = "OfferProposed"
        case processingReceived = "ProcessingReceived"
        case acceptReceived = "AcceptReceived"
        case completed = "Completed"
        case cancelled = "Cancelled"
        case childCreated = "ChildCreated"
        case childPQOSent = "ChildPQOSent"
        case childServerProcessing = "ChildServerProcessing"
        case childOfferReceived = "ChildOfferReceived"
        case childOfferProcessing = "ChildOfferProcessing"
        case childAcceptSent = "ChildAcceptSent"
        case childCompleted = "ChildCompleted"
    }

    public enum Timer: Sendable, Hashable {
        /// RETRANS_TIMER of the OFFER or of a time-extension PROCESSING (§11.2.1, §11.4).
        case retransmission
        /// VALIDITY_OFFER_TIME of the offer (§9.1.8).
        case offerValidity
        /// The expected offer time in force (§9.1.7).
        case expectedOfferTime
        /// End of the test period of a testing-purpose agreement (§9.1.10.3).
        case testPeriodEnd
        /// A scheduled activation (§9.2.11).
        case scheduledActivation
        /// A timer of the child order.
        case child(ClientOrderStateMachine.Timer)
    }

    public enum Action: Sendable, Hashable {
        /// Store the machine as it is now, with an audit entry (§8.11, §12.1), before any following send.
        case persist(from: State, to: State, event: String)
        /// Send to the client, on `session`.
        case send(CPNPMessage, to: CPNPSession)
        case armTimer(Timer, at: CPNPTimestamp)
        case cancelTimer(Timer)
        case report(Event)
        case discard(DiscardReason)
        /// Send this message to the child order's provider.
        case sendToChildProvider(CPNPMessage)
    }

    /// What the engine (decision engine, inventory, provisioning) learns.
    public enum Event: Sendable, Hashable {
        /// A QUOTATION (or an UPDATE) awaits a decision: acknowledge, offer or reject.
        case quotationReceived(CPD, InformationElements?)
        case updateReceived(CPD, InformationElements?)
        /// An ACCEPT passed validation: commit resources, then ``agreementConfirmed(now:)``.
        case acceptReceived
        case agreementReached(Agreement)
        /// The offer was declined, cancelled, expired or refused: release what it reserved.
        case negotiationEnded(NegotiationEnd)
        case moreTimeGranted(until: CPNPTimestamp)
        case moreTimeRejected
        /// A valid WITHDRAW: release the agreement, then ``withdrawalConfirmed(now:)``.
        case withdrawalRequested(Agreement)
        case withdrawn(Agreement)
        case activationChanged(ActivationStatus)
        case testPeriodEnded(Agreement)
        case child(ClientOrderStateMachine.Event)
    }

    public enum NegotiationEnd: Sendable, Hashable {
        case declined([DeclineReason])
        case cancelledByClient
        case offerExpired
        case expectedOfferTimeElapsed
        case rejected(FailStatusCode)
    }

    public struct Configuration: Sendable, Hashable {
        public var retransmission: RetransmissionPolicy
        public init(retransmission: RetransmissionPolicy = .init()) { self.retransmission = retransmission }
    }

    /// The open transaction (RFC 8921 §8.4), kept as the client's machine keeps its own.
    public typealias Transaction = OrderTransaction

    /// Where the order is, each case with what it holds (RFC 8921 §8.11.2); ``state`` maps it to the
    /// RFC's names. Its data is boxed: the engine copies machines as it moves them, and a phase
    /// changes a few times per negotiation.
    indirect enum Phase: Sendable, Hashable {
        /// A QUOTATION, or an UPDATE of the agreement `inForce`, being negotiated. The agreement stays in
        /// force until the update is agreed or ends (docs/protocol.md §6, A11).
        case negotiating(NegotiationStep, inForce: Agreement?)
        /// Agreed. `withdrawalPending`: a WITHDRAW was answered with PROCESSING and awaits
        /// ``withdrawalConfirmed(now:)`` (§11.2.2).
        case completed(Agreement, withdrawalPending: Bool)
        /// Ended. `withdrawn`: the agreement ended by WITHDRAW or by its test period, kept for the audit
        /// trail; a second WITHDRAW of it is refused with FAIL 1, as it matches no order in Completed (Table 6).
        case cancelled(withdrawn: Agreement?)
    }

    /// The steps of a negotiation (Figure 9), each with what it holds.
    enum NegotiationStep: Sendable, Hashable {
        case pqoReceived, awaitingProcessing
        /// The OFFER is sent; the client has not answered it yet.
        case offerProposed(OfferMessage)
        /// The client answered the OFFER with PROCESSING (§9.2.2).
        case processingReceived(OfferMessage)
        /// The client accepted the OFFER; the agreement awaits ``agreementConfirmed(now:)``.
        case acceptReceived(OfferMessage)
        /// A child order with another provider (§8.8).
        indirect case child(ClientOrderStateMachine)

        /// The OFFER of this step, if it has one.
        var offer: OfferMessage? {
            switch self {
            case .offerProposed(let offer), .processingReceived(let offer), .acceptReceived(let offer): offer
            case .pqoReceived, .awaitingProcessing, .child: nil
            }
        }
    }

    public let customerOrderID: CustomerOrderID
    public let providerOrderID: ProviderOrderID
    public let configuration: Configuration
    var phase: Phase
    public internal(set) var transaction: Transaction
    public internal(set) var requestedCPD: CPD
    public internal(set) var requestedInformationElements: InformationElements?
    /// The OFFER sent in this negotiation, until the client's answer ends it (§9.2.3).
    public var offer: OfferMessage? {
        guard case .negotiating(let step, _) = phase else { return nil }
        return step.offer
    }
    /// The agreement in force: once Completed, and while an UPDATE of it is negotiated.
    public var agreement: Agreement? {
        switch phase {
        case .negotiating(_, let inForce): inForce
        case .completed(let agreement, _): agreement
        case .cancelled: nil
        }
    }
    /// The agreement ended by WITHDRAW or by its test period (``Phase/cancelled(withdrawn:)``).
    public var withdrawnAgreement: Agreement? {
        guard case .cancelled(let withdrawn) = phase else { return nil }
        return withdrawn
    }
    /// An UPDATE is being negotiated while the agreement stays in force.
    public var isUpdate: Bool {
        guard case .negotiating(_, let inForce) = phase else { return false }
        return inForce != nil
    }
    /// A WITHDRAW was answered with PROCESSING and awaits ``withdrawalConfirmed(now:)``.
    public var withdrawalPending: Bool {
        guard case .completed(_, let pending) = phase else { return false }
        return pending
    }
    /// The expected offer time in force, and one requested but not yet granted.
    public internal(set) var expectedOfferTime: CPNPTimestamp?
    public internal(set) var requestedOfferTime: CPNPTimestamp?
    /// The EXPECTED_RESPONSE_TIME of the QUOTATION or UPDATE being answered (RFC 8921 §9.1.6), when it gave one.
    public var customerExpectedResponseTime: CPNPTimestamp? {
        switch transaction.cache?.incoming {
        case .quotation(let quotation)?: quotation.expectedResponseTime
        case .update(let update)?: update.expectedResponseTime
        default: nil
        }
    }
    public internal(set) var childAgreements: [Agreement] = []
    /// Transactions of this order closed by a newer one, oldest first (at most
    /// ``closedTransactionMemory``): their messages are replays, discarded silently (§11.3).
    public internal(set) var closedTransactionIDs: [TransactionID] = []
    /// How many closed transaction ids an order remembers.
    public static let closedTransactionMemory = 32
    /// New transactions (UPDATE, WITHDRAW, ACTIVATE) refused with FAIL, newest last (at most
    /// ``refusedTransactionMemory``): a retransmission gets the same FAIL again, any other message of
    /// such a transaction is a replay and is discarded, so a refusal never opens later (§11.3, Table 6).
    public internal(set) var refusedTransactions: [RefusedTransaction] = []
    /// How many refused transactions an order remembers.
    public static let refusedTransactionMemory = 16
    /// Requests for more time sent in the current negotiation (§9.2.2, §11.2.1).
    public internal(set) var moreTimeRequests = 0
    /// The client refused a request for more time in the current negotiation (FAIL 7), or left one
    /// unanswered: no further request is made (§11.2.1).
    public internal(set) var moreTimeRefused = false

    /// A new transaction refused with a FAIL: its id, the sequence number of the refused message,
    /// and the FAIL (§11.3, §11.4).
    public struct RefusedTransaction: Sendable, Hashable {
        public var id: TransactionID
        public var sequenceNumber: SequenceNumber
        public var answer: FailMessage
        public init(id: TransactionID, sequenceNumber: SequenceNumber, answer: FailMessage) {
            self.id = id
            self.sequenceNumber = sequenceNumber
            self.answer = answer
        }
    }

    /// The RFC state.
    public var state: State {
        switch phase {
        case .negotiating(.pqoReceived, _): .pqoReceived
        case .negotiating(.awaitingProcessing, _): .awaitingProcessing
        case .negotiating(.offerProposed, _): .offerProposed
        case .negotiating(.processingReceived, _): .processingReceived
        case .negotiating(.acceptReceived, _): .acceptReceived
        case .completed: .completed
        case .cancelled: .cancelled
        case .negotiating(.child(let child), _):
            switch child.state {
            case .created, .awaitingProcessing: .childCreated
            case .pqoSent: .childPQOSent
            case .serverProcessing: .childServerProcessing
            case .offerReceived: .childOfferReceived
            case .offerProcessing: .childOfferProcessing
            case .acceptSent: .childAcceptSent
            case .completed: .childCompleted
            case .cancelled: .awaitingProcessing
            }
        }
    }

    /// The CPDs a customer's next message about this order may carry back: the offered one (ACCEPT)
    /// and the agreed one (WITHDRAW). A receiver recognises them by their bytes
    /// (``CPNPCodec/parse(_:limits:documents:)``) instead of parsing them again.
    public var recognizableDocuments: [CPD] {
        var documents: [CPD] = []
        if let offered = offer?.offeredCPD { documents.append(offered) }
        if let agreed = agreement?.acceptedCPD { documents.append(agreed) }
        return documents
    }

    /// The child order, when one is being negotiated.
    public var childOrder: ClientOrderStateMachine? {
        if case .negotiating(.child(let child), _) = phase { return child }
        return nil
    }

    /// The negotiation at `step`, keeping the agreement in force.
    private func negotiation(_ step: NegotiationStep) -> Phase { .negotiating(step, inForce: agreement) }

    /// Replaces the agreement in force (an activation changed it), wherever the order is.
    private mutating func replaceAgreement(_ updated: Agreement) {
        switch phase {
        case .negotiating(let step, _): phase = .negotiating(step, inForce: updated)
        case .completed(_, let pending): phase = .completed(updated, withdrawalPending: pending)
        case .cancelled: break
        }
    }

    init(
        restoring customerOrderID: CustomerOrderID, providerOrderID: ProviderOrderID, configuration: Configuration, phase: Phase,
        transaction: Transaction, requestedCPD: CPD, requestedInformationElements: InformationElements?,
        expectedOfferTime: CPNPTimestamp?, requestedOfferTime: CPNPTimestamp?, childAgreements: [Agreement],
        closedTransactionIDs: [TransactionID] = [], refusedTransactions: [RefusedTransaction] = [],
        moreTimeRequests: Int = 0, moreTimeRefused: Bool = false
    ) {
        self.customerOrderID = customerOrderID
        self.providerOrderID = providerOrderID
        self.configuration = configuration
        self.phase = phase
        self.transaction = transaction
        self.requestedCPD = requestedCPD
        self.requestedInformationElements = requestedInformationElements
        self.expectedOfferTime = expectedOfferTime
        self.requestedOfferTime = requestedOfferTime
        self.childAgreements = childAgreements
        self.closedTransactionIDs = closedTransactionIDs
        self.refusedTransactions = refusedTransactions
        self.moreTimeRequests = moreTimeRequests
        self.moreTimeRefused = moreTimeRefused
    }

    private init(
        quotation: QuotationMessage, session: CPNPSession, providerOrderID: ProviderOrderID, initialSequence: SequenceNumber,
        configuration: Configuration
    ) {
        customerOrderID = quotation.customerOrderID
        self.providerOrderID = providerOrderID
        self.configuration = configuration
        phase = .negotiating(.pqoReceived, inForce: nil)
        var sequence = SequenceCounters(initialOutgoing: initialSequence)
        sequence.accept(quotation.sequenceNumber)
        transaction = Transaction(
            id: quotation.transactionID, session: session, sequence: sequence, cache: CachedExchange(incoming: .quotation(quotation)))
        requestedCPD = quotation.requestedCPD
        requestedInformationElements = quotation.informationElements
    }

    /// Creates the order for a QUOTATION (RFC 8921 §11.2.1): PQOReceived, or Cancelled with FAIL 1
    /// when the request is invalid. `providerOrderID` must never equal a customer order id of that
    /// client (§13); `rng` must be a CSPRNG.
    /// With `requestValidated`, the caller has checked the message's ``CPNPMessage/validationIssues()``
    /// already and the CPD rules are not checked again.
    public static func quotationReceived(
        _ quotation: QuotationMessage, session: CPNPSession, providerOrderID: ProviderOrderID, now: CPNPTimestamp,
        configuration: Configuration = .init(), requestValidated: Bool = false, using rng: inout some RandomNumberGenerator
    ) -> (ServerOrderStateMachine, [Action]) {
        var order = ServerOrderStateMachine(
            quotation: quotation, session: session, providerOrderID: providerOrderID,
            initialSequence: .randomInitial(using: &rng), configuration: configuration)
        if let problem = Self.requestProblem(
            cpd: quotation.requestedCPD, expectedResponseTime: quotation.expectedResponseTime, now: now, validated: requestValidated)
        {
            let fail = order.makeFail(.messageValidationError, problem)
            order.transaction.cache?.answer = fail
            order.phase = .cancelled(withdrawn: nil)
            return (order, [.persist(from: .pqoReceived, to: .cancelled, event: "invalid QUOTATION: \(problem)"), .send(fail, to: session)])
        }
        return (
            order,
            [
                .persist(from: .pqoReceived, to: .pqoReceived, event: "QUOTATION received"),
                .report(.quotationReceived(quotation.requestedCPD, quotation.informationElements)),
            ]
        )
    }

    // MARK: - Decisions of the provider (Figure 9 "sent" arrows)

    /// PQOReceived → AwaitingProcessing: sends PROCESSING with the provider order id (§9.2.2), with
    /// `subcode` when the decision needs an upgrade of local resources (1) or other providers (2).
    public mutating func acknowledge(
        expectedOfferTime: CPNPTimestamp?, subcode: ProcessingSubcode? = nil, now: CPNPTimestamp
    ) throws(OrderCommandError) -> [Action] {
        try require([.pqoReceived], "acknowledge")
        let processing = ProcessingMessage(
            sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
            providerOrderID: providerOrderID, expectedOfferTime: expectedOfferTime, processingSubcode: subcode)
        transaction.cache?.answer = .processing(processing)
        self.expectedOfferTime = expectedOfferTime
        var actions = transition(to: negotiation(.awaitingProcessing), "PROCESSING sent")
        actions.append(.send(.processing(processing), to: transaction.session))
        if let expectedOfferTime { actions.append(.armTimer(.expectedOfferTime, at: expectedOfferTime)) }
        return actions
    }

    /// PQOReceived/AwaitingProcessing → OfferProposed: sends OFFER with a fresh nonce (§9.2.3, §11.2.1).
    public mutating func makeOffer(
        offeredCPD: CPD, validityOfferTime: CPNPTimestamp, informationElements: InformationElements? = nil,
        now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) throws(OrderCommandError) -> [Action] {
        try require([.pqoReceived, .awaitingProcessing], "make an offer")
        guard validityOfferTime > now else { throw OrderCommandError(.invalidArgument, "validity-offer-time must be in the future") }
        var nonce = Nonce.random(using: &rng)
        if let old = agreement?.nonce, old == nonce { nonce = Nonce.random(using: &rng) }
        let newOffer = OfferMessage(
            sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
            providerOrderID: providerOrderID, nonce: nonce, validityOfferTime: validityOfferTime, offeredCPD: offeredCPD,
            informationElements: informationElements)
        requestedOfferTime = nil
        transaction.pending = PendingRequest(message: .offer(newOffer))
        // A duplicate of the client's last message is answered with the latest message of the
        // transaction, the outstanding OFFER, not the PROCESSING that came before it (§11.4).
        transaction.cache?.answer = .offer(newOffer)
        var actions = transition(to: negotiation(.offerProposed(newOffer)), "OFFER sent")
        actions += [
            .cancelTimer(.expectedOfferTime), .send(.offer(newOffer), to: transaction.session),
            .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval)),
            .armTimer(.offerValidity, at: validityOfferTime),
        ]
        return actions
    }

    /// PQOReceived/AwaitingProcessing/AcceptReceived → Cancelled (or back to Completed for an update):
    /// sends FAIL (§9.2.10, §11.2.1).
    public mutating func reject(_ status: FailStatusCode, diagnostic: String? = nil, now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        try require([.pqoReceived, .awaitingProcessing, .acceptReceived], "reject")
        let fail = makeFail(status, diagnostic, sequence: transaction.sequence.takeOutgoing())
        transaction.cache?.answer = fail
        transaction.pending = nil
        var actions = endNegotiation(.rejected(status), now: now, event: "FAIL \(status.rawValue) sent")
        actions.append(.send(fail, to: transaction.session))
        return actions
    }

    /// Asks the client for more time: PROCESSING with a new expected-offer-time (§9.2.2, §11.2.1).
    public mutating func requestMoreTime(until: CPNPTimestamp, subcode: ProcessingSubcode? = nil, now: CPNPTimestamp) throws(OrderCommandError)
        -> [Action]
    {
        try require([.awaitingProcessing], "request more time")
        guard requestedOfferTime == nil else { throw OrderCommandError(.invalidState, "a request for more time is already pending") }
        guard until > now else { throw OrderCommandError(.invalidArgument, "the new expected offer time must be in the future") }
        let processing = ProcessingMessage(
            sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
            providerOrderID: providerOrderID, expectedOfferTime: until, processingSubcode: subcode)
        requestedOfferTime = until
        moreTimeRequests += 1
        transaction.pending = PendingRequest(message: .processing(processing))
        transaction.cache?.answer = .processing(processing)
        return [
            .persist(from: state, to: state, event: "more time requested until \(until.rfc3339)"),
            .send(.processing(processing), to: transaction.session),
            .armTimer(.retransmission, at: now.adding(configuration.retransmission.initialInterval)),
        ]
    }

    /// AcceptReceived → Completed: sends ACK with the accepted CPD (§9.2.6; docs/protocol.md §6, A16). Call it once the
    /// commitment of resources is durable.
    public mutating func agreementConfirmed(now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        try require([.acceptReceived], "confirm the agreement")
        guard let offer else { throw invalid("confirm the agreement") }
        let newAgreement = Agreement.make(offer: offer, requestOptions: requestedInformationElements?.negotiationOptions, agreedAt: now)
        let hadTestPeriod = agreement?.testPeriodEnd != nil
        let ack = AckMessage(
            sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
            providerOrderID: providerOrderID, cpd: newAgreement.acceptedCPD)
        transaction.cache?.answer = .ack(ack)
        var actions = transition(to: .completed(newAgreement, withdrawalPending: false), "ACK sent, agreement reached")
        actions.append(.send(.ack(ack), to: transaction.session))
        actions.append(.report(.agreementReached(newAgreement)))
        if let end = newAgreement.testPeriodEnd {
            actions.append(.armTimer(.testPeriodEnd, at: end))
        } else if hadTestPeriod {
            actions.append(.cancelTimer(.testPeriodEnd))
        }
        if case .scheduled(let time) = newAgreement.activation { actions.append(.armTimer(.scheduledActivation, at: time)) }
        return actions
    }

    /// Completed → Cancelled after a WITHDRAW: sends ACK with the Empty CPD (§9.2.8, §11.2.2). Call it once
    /// the agreement's resources are released.
    public mutating func withdrawalConfirmed(now: CPNPTimestamp) throws(OrderCommandError) -> [Action] {
        guard case .completed(let currentAgreement, withdrawalPending: true) = phase else { throw invalid("confirm a withdrawal") }
        let ack = AckMessage(
            sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
            providerOrderID: providerOrderID, cpd: .empty)
        transaction.cache?.answer = .ack(ack)
        var actions = transition(to: .cancelled(withdrawn: currentAgreement), "withdrawn, ACK sent")
        actions += [
            .cancelTimer(.testPeriodEnd), .cancelTimer(.scheduledActivation), .send(.ack(ack), to: transaction.session),
            .report(.withdrawn(currentAgreement)),
        ]
        return actions
    }

    private func isWithdraw(_ message: CPNPMessage) -> Bool {
        if case .withdraw = message { return true }
        return false
    }

    // MARK: - Child orders (Figure 9, §8.8, §11.2.1)

    /// PQOReceived/AwaitingProcessing → ChildPQOSent: negotiates a child order with another provider.
    /// From PQOReceived the client first gets PROCESSING with subcode 2, "request external resources"
    /// (§9.2.2), and `expectedOfferTime`. Refused when the client restricted the order to this
    /// provider's domain (`local-only`, §8.8).
    public mutating func childOrderStarted(
        customerOrderID childID: CustomerOrderID, requestedCPD: CPD, informationElements: InformationElements? = nil,
        expectedResponseTime: CPNPTimestamp? = nil, expectedOfferTime: CPNPTimestamp? = nil, session: CPNPSession, now: CPNPTimestamp,
        configuration childConfiguration: ClientOrderStateMachine.Configuration = .init(),
        using rng: inout some RandomNumberGenerator
    ) throws(OrderCommandError) -> [Action] {
        try require([.pqoReceived, .awaitingProcessing], "start a child order")
        if requestedInformationElements?.negotiationOptions?.localOnly == true {
            throw OrderCommandError(.localOnly, "the client restricted this order to the provider's own domain (local-only)")
        }
        var child = ClientOrderStateMachine(customerOrderID: childID, configuration: childConfiguration)
        let actions = try child.quote(
            requestedCPD: requestedCPD, informationElements: informationElements, expectedResponseTime: expectedResponseTime,
            session: session, now: now, using: &rng)
        var acknowledged: [Action] = []
        if state == .pqoReceived {
            acknowledged = try acknowledge(expectedOfferTime: expectedOfferTime, subcode: .requestExternalResources, now: now)
        }
        let from = state
        phase = negotiation(.child(child))
        return acknowledged + [.persist(from: from, to: state, event: "child order \(childID) started")] + mapChild(actions)
    }

    /// A message from the child order's provider.
    public mutating func childMessageReceived(_ message: CPNPMessage, session: CPNPSession, now: CPNPTimestamp) -> [Action] {
        withChild { child in child.messageReceived(message, session: session, now: now) } ?? [.discard(.unknownTransaction)]
    }

    /// A timer of the child order fired.
    public mutating func childTimerFired(_ timer: ClientOrderStateMachine.Timer, now: CPNPTimestamp) -> [Action] {
        withChild { child in child.timerFired(timer, now: now) } ?? [.discard(.staleTimer)]
    }

    /// Runs a local command on the child order (accept, decline, cancel, more-time decision).
    public mutating func childCommand(
        _ command: (inout ClientOrderStateMachine) throws(OrderCommandError) -> [ClientOrderStateMachine.Action]
    ) throws(OrderCommandError) -> [Action] {
        guard case .negotiating(.child(let original), let inForce) = phase else { throw invalid("command a child order") }
        var child = original
        phase = .negotiating(.awaitingProcessing, inForce: inForce)
        let actions: [ClientOrderStateMachine.Action]
        do {
            actions = try command(&child)
        } catch {
            // A refused command changes nothing, as every command of this machine.
            phase = .negotiating(.child(original), inForce: inForce)
            throw error
        }
        phase = .negotiating(.child(child), inForce: inForce)
        return settleChild(child, actions)
    }

    private mutating func withChild(_ body: (inout ClientOrderStateMachine) -> [ClientOrderStateMachine.Action]) -> [Action]? {
        guard case .negotiating(.child(var child), let inForce) = phase else { return nil }
        phase = .negotiating(.awaitingProcessing, inForce: inForce)
        let actions = body(&child)
        phase = .negotiating(.child(child), inForce: inForce)
        return settleChild(child, actions)
    }

    /// Maps the child's actions; when the child reaches Completed or Cancelled the parent returns to
    /// AwaitingProcessing (ChildCompleted → AwaitingProcessing; docs/protocol.md §6, A15).
    private mutating func settleChild(_ child: ClientOrderStateMachine, _ actions: [ClientOrderStateMachine.Action]) -> [Action] {
        var out = mapChild(actions)
        if child.state == .completed, let childAgreement = child.agreement {
            childAgreements.append(childAgreement)
            phase = negotiation(.awaitingProcessing)
            out.insert(.persist(from: .childCompleted, to: .awaitingProcessing, event: "child order \(child.customerOrderID) completed"), at: 0)
        } else if child.state == .cancelled {
            // A cancelled child leaves the parent free to try another provider or to FAIL 5 (docs/protocol.md §6, A15).
            phase = negotiation(.awaitingProcessing)
            out.insert(.persist(from: .childCompleted, to: .awaitingProcessing, event: "child order \(child.customerOrderID) ended"), at: 0)
        }
        return out
    }

    private func mapChild(_ actions: [ClientOrderStateMachine.Action]) -> [Action] {
        actions.map { action in
            switch action {
            case .persist(let from, let to, let event): .persist(from: state, to: state, event: "child \(from.rawValue)→\(to.rawValue): \(event)")
            case .send(let message): .sendToChildProvider(message)
            case .armTimer(let timer, let time): .armTimer(.child(timer), at: time)
            case .cancelTimer(let timer): .cancelTimer(.child(timer))
            case .report(let event): .report(.child(event))
            case .discard(let reason): .discard(reason)
            }
        }
    }

    // MARK: - Received messages (Table 6)

    /// Handles a message from the client of this order (RFC 8921 §10.2). The engine routes messages by
    /// client identity and customer order id, and checks access filters before.
    public mutating func messageReceived(
        _ message: CPNPMessage, session: CPNPSession, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) -> [Action] {
        guard message.customerOrderID == customerOrderID else { return [.discard(.unknownTransaction)] }
        // A message of a transaction already closed (an old UPDATE, WITHDRAW, ACTIVATE …) is a replay
        // or a late duplicate: it must not re-open that transaction (§11.3).
        if message.transactionID != transaction.id, closedTransactionIDs.contains(message.transactionID) {
            return [.discard(.duplicate)]
        }
        if message.transactionID != transaction.id, let answer = answerToRefusedTransaction(message, session: session) { return answer }
        // UPDATE, WITHDRAW and ACTIVATE open new transactions, matched on COI, POI and NONCE (Table 6; docs/protocol.md §6, A19).
        switch message {
        case .update, .withdraw, .activate:
            if message.transactionID != transaction.id { return newTransaction(message, session: session, now: now, using: &rng) }
        default:
            break
        }
        guard message.transactionID == transaction.id else {
            return answerOutsideSession(message, session: session, "transaction-id does not match the order's transaction", using: &rng)
        }
        guard session == transaction.session else {
            return answerOutsideSession(message, session: session, "the 4-tuple does not match the transaction's session", using: &rng)
        }
        switch transaction.arrival(of: message, now: now, policy: configuration.retransmission) {
        case .stale:
            return [.discard(.staleSequenceNumber)]
        case .duplicate(let answer):
            guard let answer else { return [.discard(.duplicate)] }
            return [.send(answer, to: transaction.session)]
        case .fresh:
            break
        }
        if let receivedProviderOrderID = message.providerOrderID, receivedProviderOrderID != providerOrderID {
            return answerInvalid(message, session: session, "provider-order-id does not match", now: now, using: &rng)
        }
        return dispatch(message, now: now, using: &rng)
    }

    private mutating func dispatch(_ message: CPNPMessage, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator) -> [Action] {
        switch (phase, message) {
        case (.negotiating(.offerProposed(let offer), _), .processing):
            transaction.record(message)
            transaction.pending = nil
            return transition(to: negotiation(.processingReceived(offer)), "PROCESSING received") + [.cancelTimer(.retransmission)]

        case (.negotiating(.offerProposed(let offer), _), .accept(let acceptMessage)),
            (.negotiating(.processingReceived(let offer), _), .accept(let acceptMessage)):
            if let issue = message.validationIssues().first(where: { $0.severity == .error }) {
                return answerInvalid(message, session: transaction.session, issue.description, now: now, using: &rng)
            }
            guard acceptMessage.nonce == offer.nonce else {
                return answerInvalid(message, session: transaction.session, "nonce does not match the offer", now: now, using: &rng)
            }
            guard acceptMessage.acceptedCPD == offer.offeredCPD else {
                return answerInvalid(message, session: transaction.session, "accepted CPD differs from the offered CPD", now: now, using: &rng)
            }
            guard now < offer.validityOfferTime else {
                return answerInvalid(message, session: transaction.session, "the offer has expired", now: now, using: &rng)
            }
            transaction.record(message)
            transaction.pending = nil
            return transition(to: negotiation(.acceptReceived(offer)), "ACCEPT received")
                + [.cancelTimer(.retransmission), .cancelTimer(.offerValidity), .report(.acceptReceived)]

        case (.negotiating(.offerProposed(let offer), _), .decline(let declineMessage)),
            (.negotiating(.processingReceived(let offer), _), .decline(let declineMessage)):
            guard declineMessage.nonce == offer.nonce else {
                return answerInvalid(message, session: transaction.session, "nonce does not match the offer", now: now, using: &rng)
            }
            transaction.record(message)
            let ack = AckMessage(
                sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
                providerOrderID: providerOrderID, cpd: .empty)
            transaction.cache?.answer = .ack(ack)
            transaction.pending = nil
            // docs/protocol.md §6, A2: the ACK of a DECLINE carries the Empty CPD.
            return endNegotiation(.declined(declineMessage.reasons), now: now, event: "DECLINE received") + [
                .send(.ack(ack), to: transaction.session)
            ]

        case (.negotiating, .cancel):
            transaction.record(message)
            // docs/protocol.md §6, A3: the offered CPD if an offer exists, else the requested one.
            let cpd = offer?.offeredCPD ?? requestedCPD
            let ack = AckMessage(
                sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
                providerOrderID: providerOrderID, cpd: cpd)
            transaction.cache?.answer = .ack(ack)
            transaction.pending = nil
            var actions = cancelChild(now: now)
            actions = endNegotiation(.cancelledByClient, now: now, event: "CANCEL received") + actions
            actions.append(.send(.ack(ack), to: transaction.session))
            return actions

        case (.negotiating(.awaitingProcessing, _), .ack(let ackMessage)) where requestedOfferTime != nil:
            transaction.record(message)
            let until = ackMessage.expectedResponseTime.map { min($0, requestedOfferTime!) } ?? requestedOfferTime!
            expectedOfferTime = until
            requestedOfferTime = nil
            transaction.pending = nil
            return [
                .persist(from: state, to: state, event: "more time granted until \(until.rfc3339)"),
                .cancelTimer(.retransmission), .armTimer(.expectedOfferTime, at: until), .report(.moreTimeGranted(until: until)),
            ]

        case (.negotiating(.awaitingProcessing, _), .fail(let fail)) where requestedOfferTime != nil && fail.statusCode == .moreTimeRejected:
            transaction.record(message)
            requestedOfferTime = nil
            moreTimeRefused = true
            transaction.pending = nil
            // The server must still answer before the initial expected offer time (§11.2.1).
            return [.persist(from: state, to: state, event: "more time rejected"), .cancelTimer(.retransmission), .report(.moreTimeRejected)]

        case (.completed, .cancel):
            return answerInvalid(message, session: transaction.session, "the order is already agreed; use WITHDRAW", now: now, using: &rng)

        default:
            switch message.method {
            case .ack, .fail, .processing:
                return [.discard(.unsolicitedResponse(message.method))]
            case .quotation:
                return [.discard(.duplicate)]
            default:
                return answerInvalid(
                    message, session: transaction.session, "\(message.method) is not valid in state \(state.rawValue)", now: now, using: &rng)
            }
        }
    }

    /// UPDATE, WITHDRAW or ACTIVATE with a new transaction id (Table 6).
    private mutating func newTransaction(
        _ message: CPNPMessage, session: CPNPSession, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) -> [Action] {
        guard case .completed(let currentAgreement, let withdrawalPending) = phase else {
            return refuse(.messageValidationError, message, session: session, "no completed order matches", using: &rng)
        }
        if withdrawalPending, !isWithdraw(message) {
            return refuse(.messageValidationError, message, session: session, "a withdrawal is in progress", using: &rng)
        }
        guard message.providerOrderID == providerOrderID, message.nonce == currentAgreement.nonce else {
            return refuse(.messageValidationError, message, session: session, "provider-order-id or nonce does not match the agreement", using: &rng)
        }
        switch message {
        case .withdraw:
            guard !withdrawalPending else {
                return refuse(.messageValidationError, message, session: session, "a withdrawal is already in progress", using: &rng)
            }
            openTransaction(message, session: session, using: &rng)
            // Figure 14: PROCESSING now, ACK with the Empty CPD once the engine released the agreement.
            let processing = ProcessingMessage(
                sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
                providerOrderID: providerOrderID)
            transaction.cache?.answer = .processing(processing)
            phase = .completed(currentAgreement, withdrawalPending: true)
            return [
                .persist(from: state, to: state, event: "WITHDRAW received"), .send(.processing(processing), to: session),
                .report(.withdrawalRequested(currentAgreement)),
            ]

        case .update(let update):
            if let issue = message.validationIssues().first(where: { $0.severity == .error }) {
                return refuse(.messageValidationError, message, session: session, issue.description, using: &rng)
            }
            if let problem = Self.requestProblem(
                cpd: update.requestedCPD, expectedResponseTime: update.expectedResponseTime, now: now, validated: true)
            {
                return refuse(.messageValidationError, message, session: session, problem, using: &rng)
            }
            openTransaction(message, session: session, using: &rng)
            requestedCPD = update.requestedCPD
            requestedInformationElements = update.informationElements
            moreTimeRequests = 0
            moreTimeRefused = false
            expectedOfferTime = nil
            requestedOfferTime = nil
            return transition(to: .negotiating(.pqoReceived, inForce: currentAgreement), "UPDATE received") + [
                .report(.updateReceived(update.requestedCPD, update.informationElements))
            ]

        case .activate(let activateMessage):
            guard currentAgreement.activationType == .explicit else {
                return refuse(
                    .unsupportedActivationType, message, session: session,
                    "the agreed activation type is \(currentAgreement.activationType.rawValue), not explicit", using: &rng)
            }
            openTransaction(message, session: session, using: &rng)
            var updated = currentAgreement
            var actions: [Action] = []
            switch activateMessage.activationSchedule {
            case .now: updated.activation = .active
            case .deactivate: updated.activation = .inactive
            case .at(let time):
                if time <= now {
                    updated.activation = .active
                } else {
                    updated.activation = .scheduled(time)
                    actions.append(.armTimer(.scheduledActivation, at: time))
                }
            }
            if case .scheduled = updated.activation {} else { actions.insert(.cancelTimer(.scheduledActivation), at: 0) }
            replaceAgreement(updated)
            let ack = AckMessage(
                sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
                providerOrderID: providerOrderID)
            transaction.cache?.answer = .ack(ack)
            // docs/protocol.md §6, A7: the ACK of an ACTIVATE carries no CPD.
            return [.persist(from: state, to: state, event: "ACTIVATE received (\(activateMessage.activationSchedule))")] + actions
                + [.send(.ack(ack), to: session), .report(.activationChanged(updated.activation))]
        default:
            return refuse(.messageValidationError, message, session: session, "unexpected \(message.method)", using: &rng)
        }
    }

    // MARK: - Timers

    /// Handles a timer the engine armed; stale timers are discarded.
    public mutating func timerFired(_ timer: Timer, now: CPNPTimestamp) -> [Action] {
        switch timer {
        case .retransmission:
            guard let pending = transaction.pending else { return [.discard(.staleTimer)] }
            guard let resend = transaction.retransmission(now: now, policy: configuration.retransmission) else {
                // docs/protocol.md §6, A26: an unanswered OFFER stays until its validity expires; an unanswered request
                // for more time is treated as not granted.
                transaction.pending = nil
                if case .processing = pending.message {
                    requestedOfferTime = nil
                    moreTimeRefused = true
                    return [.persist(from: state, to: state, event: "request for more time unanswered"), .report(.moreTimeRejected)]
                }
                return [.persist(from: state, to: state, event: "OFFER retransmissions exhausted")]
            }
            return [.send(resend.message, to: transaction.session), .armTimer(.retransmission, at: resend.next)]

        case .offerValidity:
            guard state == .offerProposed || state == .processingReceived, let offer, now >= offer.validityOfferTime else {
                return [.discard(.staleTimer)]
            }
            transaction.pending = nil
            return endNegotiation(.offerExpired, now: now, event: "offer expired, silently removed")

        case .expectedOfferTime:
            guard let expectedOfferTime, now >= expectedOfferTime else { return [.discard(.staleTimer)] }
            switch phase {
            case .negotiating(.pqoReceived, _), .negotiating(.awaitingProcessing, _), .negotiating(.child, _):
                // The client cancels at this time (§11.1.1); so does the server, silently.
                transaction.pending = nil
                let childActions = cancelChild(now: now)
                return endNegotiation(.expectedOfferTimeElapsed, now: now, event: "expected offer time elapsed without an offer") + childActions
            default:
                return [.discard(.staleTimer)]
            }

        case .testPeriodEnd:
            // During an UPDATE negotiation the agreement ends when the negotiation does, unless the
            // update makes it permanent (``endNegotiation``).
            guard case .completed(let endedAgreement, let withdrawalPending) = phase, endedAgreement.purpose == .testing,
                let end = endedAgreement.testPeriodEnd, now >= end
            else {
                return [.discard(.staleTimer)]
            }
            guard withdrawalPending else {
                return transition(to: .cancelled(withdrawn: endedAgreement), "test period ended") + [
                    .cancelTimer(.scheduledActivation), .report(.testPeriodEnded(endedAgreement)),
                ]
            }
            // A WITHDRAW answered PROCESSING is complete too: ACK with the Empty CPD (§9.2.8).
            let ack = AckMessage(
                sequenceNumber: transaction.sequence.takeOutgoing(), transactionID: transaction.id, customerOrderID: customerOrderID,
                providerOrderID: providerOrderID, cpd: .empty)
            transaction.cache?.answer = .ack(ack)
            return transition(to: .cancelled(withdrawn: endedAgreement), "test period ended during a WITHDRAW, ACK sent")
                + [.cancelTimer(.scheduledActivation), .send(.ack(ack), to: transaction.session), .report(.testPeriodEnded(endedAgreement))]

        case .scheduledActivation:
            guard var scheduledAgreement = agreement, case .scheduled(let time) = scheduledAgreement.activation, now >= time else {
                return [.discard(.staleTimer)]
            }
            scheduledAgreement.activation = .active
            replaceAgreement(scheduledAgreement)
            return [.persist(from: state, to: state, event: "scheduled activation"), .report(.activationChanged(.active))]

        case .child(let childTimer):
            return childTimerFired(childTimer, now: now)
        }
    }

    // MARK: - Helpers

    /// The problem with a requested CPD or deadline, if any (FAIL 1 diagnostic).
    /// `validated`: the CPD rules were checked with the message's validation issues.
    static func requestProblem(cpd: CPD, expectedResponseTime: CPNPTimestamp?, now: CPNPTimestamp, validated: Bool) -> String? {
        if cpd.isEmpty { return "cpd: the requested CPD is empty" }
        if !validated, let issue = cpd.validate(at: JSONPath.root.appending("cpd")).errors.first { return issue.description }
        if let expectedResponseTime, expectedResponseTime <= now { return "expected-response-time: already in the past" }
        return nil
    }

    private mutating func openTransaction(_ message: CPNPMessage, session: CPNPSession, using rng: inout some RandomNumberGenerator) {
        var sequence = SequenceCounters(initialOutgoing: .randomInitial(using: &rng))
        sequence.accept(message.sequenceNumber)
        if transaction.id != message.transactionID {
            closedTransactionIDs.append(transaction.id)
            if closedTransactionIDs.count > Self.closedTransactionMemory { closedTransactionIDs.removeFirst() }
        }
        transaction = Transaction(id: message.transactionID, session: session, sequence: sequence, cache: CachedExchange(incoming: message))
    }

    /// FAIL 1 answering a message of the live transaction that failed a Table 6 check (§10.2). The
    /// message passed the sequence check, so it is recorded as received and the FAIL becomes its
    /// cached answer: the FAIL takes the next sequence number, is persisted before it is sent, and a
    /// retransmission gets it again (§11.3, §11.4). ACK, FAIL and PROCESSING are never answered (no
    /// answer loops).
    ///
    /// A FAIL in the transaction ends the client's negotiation (§9.2.10), so while one is under way
    /// it ends here too (Cancelled, or back to Completed for an update): otherwise the client could
    /// end on the FAIL while its next message takes this side on to an agreement. Once an ACCEPT was
    /// taken (AcceptReceived, Completed) the outcome is decided, and a FAIL would reach a client whose
    /// ACK was lost as the answer to its ACCEPT: such a message is discarded silently instead, like a
    /// message of a closed transaction. A Cancelled order answers FAIL and stays as it is.
    private mutating func answerInvalid(
        _ message: CPNPMessage, session: CPNPSession, _ diagnostic: String, now: CPNPTimestamp, using rng: inout some RandomNumberGenerator
    ) -> [Action] {
        switch message.method {
        case .ack, .fail, .processing: return [.discard(.mismatch(diagnostic))]
        default: break
        }
        if state == .acceptReceived || state == .completed { return [.discard(.mismatch(diagnostic))] }
        // A transaction closed by its final answer keeps that answer, and its incoming number, for
        // retransmissions of the request it answered: a later message gets FAIL 1 but is not recorded,
        // or the retransmitted request would be stale and never answered again (§11.3, §11.4).
        if state == .cancelled, let answer = transaction.cache?.answer, answer.method == .ack || answer.method == .fail {
            let fail = makeFail(.messageValidationError, diagnostic)
            return [
                .persist(from: state, to: state, event: "\(message.method) after the transaction closed answered FAIL 1: \(diagnostic)"),
                .send(fail, to: session),
            ]
        }
        transaction.record(message)
        let fail = makeFail(.messageValidationError, diagnostic)
        transaction.cache?.answer = fail
        let event = "invalid \(message.method) answered FAIL 1: \(diagnostic)"
        guard state != .cancelled else { return [.persist(from: state, to: state, event: event), .send(fail, to: session)] }
        transaction.pending = nil
        let child = cancelChild(now: now)
        return endNegotiation(.rejected(.messageValidationError), now: now, event: event) + child + [.send(fail, to: session)]
    }

    /// FAIL 1 answering a message that names this order but not its live transaction and session
    /// (another transaction id, or another 4-tuple): a random sequence number, nothing recorded (§10.2).
    private mutating func answerOutsideSession(
        _ message: CPNPMessage, session: CPNPSession, _ diagnostic: String, using rng: inout some RandomNumberGenerator
    ) -> [Action] {
        switch message.method {
        case .ack, .fail, .processing: return [.discard(.mismatch(diagnostic))]
        default: break
        }
        let fail = FailMessage(
            sequenceNumber: .randomInitial(using: &rng), transactionID: message.transactionID, customerOrderID: message.customerOrderID,
            providerOrderID: message.providerOrderID == providerOrderID ? providerOrderID : nil, statusCode: .messageValidationError,
            diagnostic: diagnostic)
        return [.send(.fail(fail), to: session)]
    }

    /// Refuses an UPDATE, WITHDRAW or ACTIVATE opening a new transaction for a reason the engine
    /// checked, such as the access filters (Table 6: FAIL 3): remembered like the machine's own
    /// refusals, so a retransmission gets the same FAIL and the transaction never opens later.
    public mutating func refuseNewTransaction(
        _ message: CPNPMessage, status: FailStatusCode, diagnostic: String, session: CPNPSession, using rng: inout some RandomNumberGenerator
    ) -> [Action] {
        guard [.update, .withdraw, .activate].contains(message.method), message.transactionID != transaction.id,
            message.customerOrderID == customerOrderID
        else { return [.discard(.unknownTransaction)] }
        if let answer = answerToRefusedTransaction(message, session: session) { return answer }
        return refuse(status, message, session: session, diagnostic, using: &rng)
    }

    /// A transaction refused with FAIL stays refused: its retransmission (same sequence number) gets
    /// the same FAIL, and any other message of it is a replay (§11.3, §11.4). nil for another transaction.
    private func answerToRefusedTransaction(_ message: CPNPMessage, session: CPNPSession) -> [Action]? {
        guard let refused = refusedTransactions.first(where: { $0.id == message.transactionID }) else { return nil }
        guard message.sequenceNumber == refused.sequenceNumber, [.update, .withdraw, .activate].contains(message.method) else {
            return [.discard(.duplicate)]
        }
        return [.send(.fail(refused.answer), to: session)]
    }

    /// Refuses an UPDATE, WITHDRAW or ACTIVATE opening a new transaction (Table 6): the FAIL is
    /// remembered with the transaction, persisted, then sent, so that a retransmission gets the same
    /// FAIL and a later replay never opens the transaction (§11.3).
    private mutating func refuse(
        _ status: FailStatusCode, _ message: CPNPMessage, session: CPNPSession, _ diagnostic: String, using rng: inout some RandomNumberGenerator
    ) -> [Action] {
        let fail = FailMessage(
            sequenceNumber: .randomInitial(using: &rng), transactionID: message.transactionID, customerOrderID: message.customerOrderID,
            providerOrderID: message.providerOrderID == providerOrderID ? providerOrderID : nil, statusCode: status, diagnostic: diagnostic)
        refusedTransactions.append(RefusedTransaction(id: message.transactionID, sequenceNumber: message.sequenceNumber, answer: fail))
        if refusedTransactions.count > Self.refusedTransactionMemory { refusedTransactions.removeFirst() }
        return [
            .persist(from: state, to: state, event: "\(message.method) refused: FAIL \(status.rawValue) (\(diagnostic))"),
            .send(.fail(fail), to: session),
        ]
    }

    private mutating func makeFail(_ status: FailStatusCode, _ diagnostic: String?, sequence: SequenceNumber? = nil) -> CPNPMessage {
        .fail(
            FailMessage(
                sequenceNumber: sequence ?? transaction.sequence.takeOutgoing(), transactionID: transaction.id,
                customerOrderID: customerOrderID, providerOrderID: providerOrderID, statusCode: status, diagnostic: diagnostic))
    }

    /// Cancels a child negotiation when the parent order ends.
    private mutating func cancelChild(now: CPNPTimestamp) -> [Action] {
        guard case .negotiating(.child(var child), let inForce) = phase else { return [] }
        let actions = (try? child.cancel(now: now)) ?? []
        phase = .negotiating(.awaitingProcessing, inForce: inForce)
        return mapChild(actions)
    }

    /// Ends the negotiation: Cancelled, or back to Completed when an update fails (docs/protocol.md §6, A11). A testing
    /// agreement whose test period ended while the update was negotiated ends now (§9.1.10.3).
    private mutating func endNegotiation(_ end: NegotiationEnd, now: CPNPTimestamp, event: String) -> [Action] {
        var inForce = agreement
        var ended: Agreement?
        if let testingAgreement = inForce, testingAgreement.purpose == .testing, let testEnd = testingAgreement.testPeriodEnd, testEnd <= now {
            ended = testingAgreement
            inForce = nil
        }
        let next: Phase = inForce.map { .completed($0, withdrawalPending: false) } ?? .cancelled(withdrawn: ended)
        requestedOfferTime = nil
        var actions = transition(to: next, ended == nil ? event : "\(event); test period had ended")
        actions += [.cancelTimer(.retransmission), .cancelTimer(.offerValidity), .cancelTimer(.expectedOfferTime), .report(.negotiationEnded(end))]
        if let ended { actions += [.cancelTimer(.testPeriodEnd), .cancelTimer(.scheduledActivation), .report(.testPeriodEnded(ended))] }
        return actions
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
