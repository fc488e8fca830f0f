// Walks every (state, event) pair of both order state machines and asserts the outcome RFC 8921
// prescribes (Figures 8 and 9, Tables 5 and 6 of §10, §11; resolutions in docs/protocol.md §6).
import CPNPTesting
import Testing
@testable import CPNPCore

/// The observable outcome of one event.
enum Outcome: Equatable, CustomStringConvertible {
    /// Silently discarded: nothing sent, nothing changed.
    case discard
    /// The machine is now in `state` and sent these methods, in order.
    case to(String, sends: [MethodCode])
    /// A local command refused with OrderCommandError; state unchanged.
    case refused

    var description: String {
        switch self {
        case .discard: "discard"
        case .to(let s, let m): "\(s) sending \(m.map(\.name))"
        case .refused: "refused"
        }
    }
}

// MARK: - Client

enum ClientEvent: String, CaseIterable {
    // Messages as if sent by the server of this order (identifiers and sequence numbers right).
    case quotation, processing, offer, accept, decline, ack, cancel, withdraw, update, fail, activate
    // Timers, fired far in the future.
    case tRetransmission, tExpectedResponseTime, tExpectedOfferTime, tOfferValidity, tWithdrawalRetry, tTestPeriodEnd
    // Local commands.
    case cApprove, cSendQuotation, cCancel, cOfferProcessing, cAccept, cDecline, cWithdraw, cUpdate, cActivate, cMoreTimeGranted, cMoreTimeRefused
}

typealias ClientState = ClientOrderStateMachine.State

/// Builds a client in `state` through real transitions against a real server machine.
func clientDialogue(in state: ClientState) throws -> Dialogue {
    var d = Dialogue()
    switch state {
    case .created: break
    case .awaitingProcessing: try d.clientDo { c, _, _ throws(OrderCommandError) in try c.processingApproved() }
    case .pqoSent: try d.quote()
    case .serverProcessing, .offerReceived, .offerProcessing, .acceptSent:
        try d.quote()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: Fixture.at(300), now: now) }
        d.deliverToClient()
        if state == .serverProcessing { break }
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        d.deliverToClient()
        if state == .offerReceived { break }
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
        if state == .offerProcessing { break }
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
    case .completed: try d.negotiate()
    case .cancelled:
        try d.quote()
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.cancel(now: now) }
    }
    #expect(d.client.state == state)
    return d
}

/// A message "from the server" of the right kind for this client's current transaction.
func messageForClient(_ method: MethodCode, _ c: ClientOrderStateMachine) -> CPNPMessage {
    let ids = TableMessageIDs(
        sequenceNumber: (c.transaction?.sequence.lastIncoming ?? 1_000) &+ 1,
        transactionID: c.transaction?.id ?? TransactionID("00000000000000000000000000000000")!,
        customerOrderID: c.customerOrderID, providerOrderID: c.providerOrderID ?? Fixture.providerOrderID,
        nonce: c.offer?.nonce ?? c.agreement?.nonce ?? Nonce("0123456789abcdef0123456789abcdef")!)
    var details = TableMessageDetails(failStatus: .outOfResources)
    details.expectedOfferTime = Fixture.at(400)
    details.acknowledgedCPD = c.state == .cancelled ? Fixture.requested : Fixture.offered
    return tableMessage(method, ids, details)
}

func apply(_ event: ClientEvent, to d: inout Dialogue) -> Outcome {
    var rng = Fixture.rng(7)
    let now = Fixture.start
    let before = d.client
    let actions: [ClientOrderStateMachine.Action]
    do {
        switch event {
        case .tRetransmission: actions = d.client.timerFired(.retransmission, now: Fixture.farFuture)
        case .tExpectedResponseTime: actions = d.client.timerFired(.expectedResponseTime, now: Fixture.farFuture)
        case .tExpectedOfferTime: actions = d.client.timerFired(.expectedOfferTime, now: Fixture.farFuture)
        case .tOfferValidity: actions = d.client.timerFired(.offerValidity, now: Fixture.farFuture)
        case .tWithdrawalRetry: actions = d.client.timerFired(.withdrawalRetry, now: Fixture.farFuture)
        case .tTestPeriodEnd: actions = d.client.timerFired(.testPeriodEnd, now: Fixture.farFuture)
        case .cApprove: actions = try d.client.processingApproved()
        case .cSendQuotation:
            actions = try d.client.sendQuotation(requestedCPD: Fixture.requested, session: Fixture.clientSession, now: now, using: &rng)
        case .cCancel: actions = try d.client.cancel(now: now)
        case .cOfferProcessing: actions = try d.client.offerProcessingStarted(now: now)
        case .cAccept: actions = try d.client.accept(now: now)
        case .cDecline: actions = try d.client.decline(reasons: [.unacceptableGap], now: now)
        case .cWithdraw: actions = try d.client.withdraw(session: Fixture.clientSession, now: now, using: &rng)
        case .cUpdate:
            actions = try d.client.update(
                requestedCPD: Fixture.updateRequested, expectedResponseTime: Fixture.at(600), session: Fixture.clientSession, now: now, using: &rng)
        case .cActivate: actions = try d.client.activate(.now, session: Fixture.clientSession, now: now, using: &rng)
        case .cMoreTimeGranted: actions = try d.client.moreTimeDecided(granted: true, now: now)
        case .cMoreTimeRefused: actions = try d.client.moreTimeDecided(granted: false, now: now)
        default:
            let method = MethodCode.allCases.first { "\($0.name.lowercased())" == event.rawValue }!
            actions = d.client.messageReceived(messageForClient(method, d.client), session: Fixture.clientSession, now: now)
        }
    } catch {
        #expect(d.client == before, "a refused command must not change the machine (\(event))")
        return .refused
    }
    if isDiscard(actions) {
        #expect(d.client == before, "a discard must not change the machine (\(event))")
        return .discard
    }
    return .to(d.client.state.rawValue, sends: sent(actions).map(\.method))
}

/// The expected outcome of each (client state, event) pair. Unlisted messages and timers are
/// discarded; unlisted commands are refused.
func expectedClientOutcome(_ s: ClientState, _ e: ClientEvent) -> Outcome {
    let same = s.rawValue
    switch (s, e) {
    // Figure 8 and Table 5: what the client accepts from the server.
    case (.pqoSent, .processing): return .to("ServerProcessing", sends: [])
    case (.pqoSent, .offer), (.serverProcessing, .offer): return .to("OfferReceived", sends: [])
    case (.serverProcessing, .processing): return .to(same, sends: [])  // request for more time: the application decides
    case (.pqoSent, .fail), (.serverProcessing, .fail), (.offerReceived, .fail), (.offerProcessing, .fail), (.acceptSent, .fail):
        return .to("Cancelled", sends: [])
    case (.acceptSent, .ack): return .to("Completed", sends: [])
    case (.cancelled, .ack), (.cancelled, .fail): return .to("Cancelled", sends: [])  // the CANCEL's answer
    // Timers.
    case (.pqoSent, .tRetransmission): return .to(same, sends: [.quotation])
    case (.acceptSent, .tRetransmission): return .to(same, sends: [.accept])
    case (.cancelled, .tRetransmission): return .to(same, sends: [.cancel])
    case (.pqoSent, .tExpectedResponseTime): return .to("Cancelled", sends: [.cancel])  // §8.5
    case (.serverProcessing, .tExpectedOfferTime): return .to("Cancelled", sends: [.cancel])  // §11.1.1
    case (.offerReceived, .tOfferValidity), (.offerProcessing, .tOfferValidity): return .to("Cancelled", sends: [])  // §9.1.8
    // Local commands (Figure 8 "sent" arrows).
    case (.created, .cApprove): return .to("AwaitingProcessing", sends: [])
    case (.awaitingProcessing, .cSendQuotation): return .to("PQOSent", sends: [.quotation])
    case (.created, .cCancel), (.awaitingProcessing, .cCancel): return .to("Cancelled", sends: [])
    case (.pqoSent, .cCancel), (.serverProcessing, .cCancel), (.offerReceived, .cCancel), (.offerProcessing, .cCancel):
        return .to("Cancelled", sends: [.cancel])
    // No CANCEL crosses the ACK: the ACCEPT's answer decides, and an agreement is withdrawn (§9.2.7).
    case (.acceptSent, .cCancel): return .to("AcceptSent", sends: [])
    case (.offerReceived, .cOfferProcessing): return .to("OfferProcessing", sends: [.processing])
    case (.offerReceived, .cAccept), (.offerProcessing, .cAccept): return .to("AcceptSent", sends: [.accept])
    case (.offerReceived, .cDecline), (.offerProcessing, .cDecline): return .to("Cancelled", sends: [.decline])
    case (.completed, .cWithdraw): return .to("Cancelled", sends: [.withdraw])
    case (.completed, .cUpdate): return .to("PQOSent", sends: [.update])
    default:
        switch e {
        case .cApprove, .cSendQuotation, .cCancel, .cOfferProcessing, .cAccept, .cDecline, .cWithdraw, .cUpdate, .cActivate,
            .cMoreTimeGranted, .cMoreTimeRefused:
            return .refused
        default:
            return .discard
        }
    }
}

@Suite("Client order state machine: every (state, event) pair")
struct ClientStateTableTests {
    @Test(arguments: ClientState.allCases)
    func everyEvent(state: ClientState) throws {
        let base = try clientDialogue(in: state)
        for event in ClientEvent.allCases {
            var d = base
            let outcome = apply(event, to: &d)
            #expect(outcome == expectedClientOutcome(state, event), "client \(state.rawValue) + \(event)")
        }
    }

    @Test func activateNeedsExplicitActivationType() throws {
        var d = Dialogue()
        try d.negotiate(offerIEs: Fixture.informationElements(activation: .explicit))
        #expect(apply(ClientEvent.cActivate, to: &d) == .to("Completed", sends: [.activate]))
        var immediate = Dialogue()
        try immediate.negotiate()
        #expect(apply(ClientEvent.cActivate, to: &immediate) == .refused)
    }

    @Test func moreTimeDecisionsOnlyWhenAsked() throws {
        var d = try clientDialogue(in: .serverProcessing)
        // A PROCESSING with a new expected offer time is a request for more time (§9.2.2).
        _ = apply(ClientEvent.processing, to: &d)
        #expect(d.client.pendingTimeDecision == Fixture.at(400))
        var granted = d
        #expect(apply(ClientEvent.cMoreTimeGranted, to: &granted) == .to("ServerProcessing", sends: [.ack]))
        #expect(granted.client.expectedOfferTime == Fixture.at(400))
        var refused = d
        #expect(apply(ClientEvent.cMoreTimeRefused, to: &refused) == .to("ServerProcessing", sends: [.fail]))
        #expect(refused.client.expectedOfferTime == Fixture.at(300))
    }

    @Test func expectedResponseTimeGovernsWithoutExpectedOfferTime() throws {
        var d = Dialogue()
        try d.quote()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: nil, now: now) }
        d.deliverToClient()
        #expect(d.client.state == .serverProcessing)
        #expect(apply(ClientEvent.tExpectedResponseTime, to: &d) == .to("Cancelled", sends: [.cancel]))
    }

    @Test func messagesOnAnotherSessionOrTransactionAreDiscarded() throws {
        var d = try clientDialogue(in: .pqoSent)
        let m = messageForClient(.processing, d.client)
        let before = d.client
        #expect(isDiscard(d.client.messageReceived(m, session: Fixture.otherClientSession, now: Fixture.start)))
        let other = CPNPMessage.processing(
            ProcessingMessage(
                sequenceNumber: m.sequenceNumber, transactionID: TransactionID("ffffffffffffffffffffffffffffffff")!,
                customerOrderID: Fixture.customerOrderID,
                providerOrderID: Fixture.providerOrderID))
        #expect(isDiscard(d.client.messageReceived(other, session: Fixture.clientSession, now: Fixture.start)))
        #expect(d.client == before)
    }
}

// MARK: - Server

enum ServerEvent: String, CaseIterable {
    // Messages as if sent by the client of this order.
    case quotation, processing, offer, accept, decline, ack, cancel, withdraw, update, fail, activate
    case tRetransmission, tOfferValidity, tExpectedOfferTime, tTestPeriodEnd, tScheduledActivation, tChildRetransmission
    case cAcknowledge, cMakeOffer, cReject, cRequestMoreTime, cAgreementConfirmed, cWithdrawalConfirmed, cChildOrder
}

typealias ServerState = ServerOrderStateMachine.State

/// The server states reachable without a child order.
let serverStates: [ServerState] = [.pqoReceived, .awaitingProcessing, .offerProposed, .processingReceived, .acceptReceived, .completed, .cancelled]

func serverDialogue(in state: ServerState) throws -> Dialogue {
    var d = Dialogue()
    switch state {
    case .cancelled:
        try d.quote()
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.cancel(now: now) }
        d.deliverToServer()
    case .completed:
        try d.negotiate()
    default:
        try d.quote()
        if state == .pqoReceived { break }
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: Fixture.at(300), now: now) }
        d.deliverToClient()
        if state == .awaitingProcessing { break }
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        d.deliverToClient()
        if state == .offerProposed { break }
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
        d.deliverToServer()
        if state == .processingReceived { break }
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
        d.deliverToServer()
    }
    #expect(d.server?.state == state)
    return d
}

/// A message "from the client" for this server order: the current transaction for in-transaction
/// methods, a new transaction for UPDATE, WITHDRAW and ACTIVATE.
func messageForServer(_ method: MethodCode, _ s: ServerOrderStateMachine) -> CPNPMessage {
    let newTransaction = [.update, .withdraw, .activate].contains(method)
    let ids = TableMessageIDs(
        sequenceNumber: newTransaction ? 77 : (s.transaction.sequence.lastIncoming ?? 1_000) &+ 1,
        transactionID: newTransaction ? TransactionID("0a0b0c0d0e0f00112233445566778899")! : s.transaction.id,
        customerOrderID: s.customerOrderID, providerOrderID: s.providerOrderID,
        nonce: s.offer?.nonce ?? s.agreement?.nonce ?? Nonce("0123456789abcdef0123456789abcdef")!)
    var details = TableMessageDetails(failStatus: .moreTimeRejected)
    details.declineReasons = [.unacceptableGap]
    details.acknowledgementExpectedResponseTime = Fixture.at(900)
    return tableMessage(method, ids, details)
}

/// The ids a table message carries.
struct TableMessageIDs {
    var sequenceNumber: SequenceNumber
    var transactionID: TransactionID
    var customerOrderID: CustomerOrderID
    var providerOrderID: ProviderOrderID
    var nonce: Nonce
}

/// What a table message carries that differs between the two directions.
struct TableMessageDetails {
    var failStatus: FailStatusCode
    var expectedOfferTime: CPNPTimestamp?
    var declineReasons: [DeclineReason] = []
    var acknowledgedCPD: CPD?
    var acknowledgementExpectedResponseTime: CPNPTimestamp?
}

/// One message of each method, for the state × event tables.
func tableMessage(_ method: MethodCode, _ ids: TableMessageIDs, _ details: TableMessageDetails) -> CPNPMessage {
    let (seq, tid, coid, poid, nonce) = (ids.sequenceNumber, ids.transactionID, ids.customerOrderID, ids.providerOrderID, ids.nonce)
    switch method {
    case .quotation:
        return .quotation(QuotationMessage(sequenceNumber: seq, transactionID: tid, customerOrderID: coid, requestedCPD: Fixture.requested))
    case .processing:
        return .processing(
            ProcessingMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, expectedOfferTime: details.expectedOfferTime))
    case .offer:
        return .offer(
            OfferMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, nonce: nonce,
                validityOfferTime: Fixture.at(3_600), offeredCPD: Fixture.offered))
    case .accept:
        return .accept(
            AcceptMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, nonce: nonce, acceptedCPD: Fixture.offered))
    case .decline:
        return .decline(
            DeclineMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, nonce: nonce, reasons: details.declineReasons))
    case .ack:
        return .ack(
            AckMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid,
                expectedResponseTime: details.acknowledgementExpectedResponseTime, cpd: details.acknowledgedCPD))
    case .cancel: return .cancel(CancelMessage(sequenceNumber: seq, transactionID: tid, customerOrderID: coid))
    case .withdraw:
        return .withdraw(WithdrawMessage(sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, nonce: nonce))
    case .update:
        return .update(
            UpdateMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, nonce: nonce,
                expectedResponseTime: Fixture.at(600), requestedCPD: Fixture.updateRequested))
    case .fail:
        return .fail(
            FailMessage(sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, statusCode: details.failStatus))
    case .activate:
        return .activate(
            ActivateMessage(
                sequenceNumber: seq, transactionID: tid, customerOrderID: coid, providerOrderID: poid, nonce: nonce, activationSchedule: .now))
    }
}

/// Applies an event; returns the outcome and the FAIL status sent, if any.
func apply(_ event: ServerEvent, to d: inout Dialogue) -> (Outcome, FailStatusCode?) {
    var rng = Fixture.rng(9)
    let now = Fixture.start
    var s = d.server!
    let before = s
    let actions: [ServerOrderStateMachine.Action]
    do {
        switch event {
        case .tRetransmission: actions = s.timerFired(.retransmission, now: Fixture.farFuture)
        case .tOfferValidity: actions = s.timerFired(.offerValidity, now: Fixture.farFuture)
        case .tExpectedOfferTime: actions = s.timerFired(.expectedOfferTime, now: Fixture.farFuture)
        case .tTestPeriodEnd: actions = s.timerFired(.testPeriodEnd, now: Fixture.farFuture)
        case .tScheduledActivation: actions = s.timerFired(.scheduledActivation, now: Fixture.farFuture)
        case .tChildRetransmission: actions = s.timerFired(.child(.retransmission), now: Fixture.farFuture)
        case .cAcknowledge: actions = try s.acknowledge(expectedOfferTime: Fixture.at(300), now: now)
        case .cMakeOffer: actions = try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &rng)
        case .cReject: actions = try s.reject(.outOfResources, diagnostic: "no capacity", now: now)
        case .cRequestMoreTime: actions = try s.requestMoreTime(until: Fixture.at(900), subcode: .requestExternalResources, now: now)
        case .cAgreementConfirmed: actions = try s.agreementConfirmed(now: now)
        case .cWithdrawalConfirmed: actions = try s.withdrawalConfirmed(now: now)
        case .cChildOrder:
            actions = try s.childOrderStarted(
                customerOrderID: CustomerOrderID("child-1")!, requestedCPD: Fixture.requested,
                session: CPNPSession(local: Fixture.clientEndpoint, remote: CPNPEndpoint(host: "127.0.0.2", port: 8921)), now: now, using: &rng)
        default:
            let method = MethodCode.allCases.first { $0.name.lowercased() == event.rawValue }!
            actions = s.messageReceived(messageForServer(method, s), session: Fixture.serverSession, now: now, using: &rng)
        }
    } catch {
        #expect(s == before, "a refused command must not change the machine (\(event))")
        return (.refused, nil)
    }
    d.server = s
    if isDiscard(actions) {
        #expect(s == before, "a discard must not change the machine (\(event))")
        return (.discard, nil)
    }
    let messages = sent(actions) + actions.compactMap { if case .sendToChildProvider(let m) = $0 { m } else { nil } }
    let failStatus = messages.compactMap { if case .fail(let f) = $0 { f.statusCode } else { nil } }.first
    // A FAIL for a failed check leaves the order as it was (§10.2; "bad input changes nothing"),
    // except that inside the live transaction the FAIL becomes the cached answer to the message
    // (§11.3, §11.4): a retransmission gets the same FAIL.
    if failStatus != nil && s.state == before.state && event.rawValue.first != "c" {
        let failSent = messages.first { $0.method == .fail }
        #expect(
            s.agreement == before.agreement && s.offer == before.offer && s.transaction.id == before.transaction.id
                && (s.transaction.cache == before.transaction.cache || s.transaction.cache?.answer == failSent)
                && s.requestedCPD == before.requestedCPD,
            "a FAIL answer to a bad \(event) must not change the order")
    }
    return (.to(s.state.rawValue, sends: messages.map(\.method)), failStatus)
}

func expectedServerOutcome(_ s: ServerState, _ e: ServerEvent) -> (Outcome, FailStatusCode?) {
    let same = s.rawValue
    let fail1 = (Outcome.to(same, sends: [.fail]), FailStatusCode?.some(.messageValidationError))
    switch (s, e) {
    // Figure 9 / Table 6.
    case (.pqoReceived, .cancel), (.awaitingProcessing, .cancel), (.offerProposed, .cancel), (.processingReceived, .cancel),
        (.acceptReceived, .cancel):
        return (.to("Cancelled", sends: [.ack]), nil)
    case (.offerProposed, .processing): return (.to("ProcessingReceived", sends: []), nil)
    case (.offerProposed, .accept), (.processingReceived, .accept): return (.to("AcceptReceived", sends: []), nil)
    case (.offerProposed, .decline), (.processingReceived, .decline): return (.to("Cancelled", sends: [.ack]), nil)
    case (.completed, .withdraw): return (.to("Completed", sends: [.processing]), nil)  // Figure 14
    case (.completed, .update): return (.to("PQOReceived", sends: []), nil)  // Figure 15; docs/protocol.md §6, A11
    case (.completed, .activate): return (.to("Completed", sends: [.fail]), .unsupportedActivationType)  // not explicit: FAIL 8
    // Timers.
    case (.offerProposed, .tRetransmission): return (.to(same, sends: [.offer]), nil)  // §11.2.1
    case (.offerProposed, .tOfferValidity), (.processingReceived, .tOfferValidity): return (.to("Cancelled", sends: []), nil)  // §9.1.8
    case (.awaitingProcessing, .tExpectedOfferTime): return (.to("Cancelled", sends: []), nil)
    // Provider decisions.
    case (.pqoReceived, .cAcknowledge): return (.to("AwaitingProcessing", sends: [.processing]), nil)
    case (.pqoReceived, .cMakeOffer), (.awaitingProcessing, .cMakeOffer): return (.to("OfferProposed", sends: [.offer]), nil)
    case (.pqoReceived, .cReject), (.awaitingProcessing, .cReject), (.acceptReceived, .cReject):
        return (.to("Cancelled", sends: [.fail]), .outOfResources)
    case (.awaitingProcessing, .cRequestMoreTime): return (.to(same, sends: [.processing]), nil)
    case (.acceptReceived, .cAgreementConfirmed): return (.to("Completed", sends: [.ack]), nil)
    case (.awaitingProcessing, .cChildOrder): return (.to("ChildPQOSent", sends: [.quotation]), nil)
    // From PQOReceived the customer first gets PROCESSING with subcode 2 (§9.2.2).
    case (.pqoReceived, .cChildOrder): return (.to("ChildPQOSent", sends: [.processing, .quotation]), nil)
    default:
        switch e {
        // Responses that match nothing are discarded, never answered (no FAIL ping-pong).
        case .processing, .ack, .fail: return (.discard, nil)
        // A QUOTATION on an existing order is a duplicate (the engine routes new orders).
        case .quotation: return (.discard, nil)
        // Once an ACCEPT was taken the transaction's outcome is decided: a message of it that fails a
        // check is discarded, since the client would take a FAIL for the ACCEPT's answer.
        // During a negotiation the FAIL ends it, as it ends it for the client (§9.2.10).
        case .offer, .accept, .decline, .cancel:
            switch s {
            case .acceptReceived, .completed: return (.discard, nil)
            case .cancelled: return fail1
            default: return (.to("Cancelled", sends: [.fail]), .messageValidationError)
            }
        case .withdraw, .update, .activate: return fail1
        case .tRetransmission, .tOfferValidity, .tExpectedOfferTime, .tTestPeriodEnd, .tScheduledActivation, .tChildRetransmission:
            return (.discard, nil)
        default: return (.refused, nil)
        }
    }
}

@Suite("Server order state machine: every (state, event) pair")
struct ServerStateTableTests {
    @Test(arguments: serverStates)
    func everyEvent(state: ServerState) throws {
        let base = try serverDialogue(in: state)
        for event in ServerEvent.allCases {
            var d = base
            let (outcome, status) = apply(event, to: &d)
            let (expected, expectedStatus) = expectedServerOutcome(state, event)
            #expect(outcome == expected, "server \(state.rawValue) + \(event)")
            #expect(status == expectedStatus, "server \(state.rawValue) + \(event): FAIL status")
        }
    }

    /// The Child* states of Figure 9: the parent mirrors a nested client machine (docs/protocol.md §6, A15).
    @Test func childStatesMirrorTheChildOrder() throws {
        var d = try serverDialogue(in: .awaitingProcessing)
        var rng = Fixture.rng(3)
        let upstream = CPNPSession(local: Fixture.clientEndpoint, remote: CPNPEndpoint(host: "127.0.0.2", port: 8921))
        var s = d.server!
        let start = try s.childOrderStarted(
            customerOrderID: CustomerOrderID("child-1")!, requestedCPD: Fixture.requested, expectedResponseTime: Fixture.at(500), session: upstream,
            now: Fixture.start, using: &rng)
        #expect(s.state == .childPQOSent)
        guard case .sendToChildProvider(.quotation(let q))? = start.first(where: { if case .sendToChildProvider = $0 { true } else { false } }) else {
            Issue.record("no QUOTATION to the child provider"); return
        }
        // The other provider, as a server machine.
        let childPOID = ProviderOrderID("pb-9")!
        var (upstreamServer, _) = ServerOrderStateMachine.quotationReceived(
            q, session: CPNPSession(local: upstream.remote, remote: upstream.local), providerOrderID: childPOID, now: Fixture.start, using: &rng)
        func forward(_ actions: [ServerOrderStateMachine.Action]) -> [CPNPMessage] { sent(actions) }
        var toChild = forward(try upstreamServer.acknowledge(expectedOfferTime: Fixture.at(200), now: Fixture.start))
        _ = s.childMessageReceived(toChild.removeFirst(), session: upstream, now: Fixture.start)
        #expect(s.state == .childServerProcessing)
        toChild = forward(
            try upstreamServer.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_000), now: Fixture.start, using: &rng))
        _ = s.childMessageReceived(toChild.removeFirst(), session: upstream, now: Fixture.start)
        #expect(s.state == .childOfferReceived)
        var toUpstream: [CPNPMessage] = []
        for a in try s.childCommand({ c throws(OrderCommandError) in try c.offerProcessingStarted(now: Fixture.start) }) {
            if case .sendToChildProvider(let m) = a { toUpstream.append(m) }
        }
        #expect(s.state == .childOfferProcessing)
        for a in try s.childCommand({ c throws(OrderCommandError) in try c.accept(now: Fixture.start) }) {
            if case .sendToChildProvider(let m) = a { toUpstream.append(m) }
        }
        #expect(s.state == .childAcceptSent)
        let upSession = CPNPSession(local: upstream.remote, remote: upstream.local)
        for m in toUpstream { _ = upstreamServer.messageReceived(m, session: upSession, now: Fixture.start, using: &rng) }
        #expect(upstreamServer.state == .acceptReceived)
        toChild = forward(try upstreamServer.agreementConfirmed(now: Fixture.start))
        let done = s.childMessageReceived(toChild.removeFirst(), session: upstream, now: Fixture.start)
        // ChildCompleted → the parent is back in AwaitingProcessing with the child agreement.
        #expect(s.state == .awaitingProcessing)
        #expect(s.childAgreements.count == 1)
        #expect(done.contains(.report(.child(.agreementReached(s.childAgreements[0])))))
        // A child agreement keeps its own ids in the snapshot, which leaves out only the order's.
        #expect(try ServerOrderStateMachine(snapshot: SnapshotTests.roundTrip(s.snapshot)) == s)
        guard case .object(let snapshot) = s.snapshot, case .array(let children)? = snapshot["child-agreements"],
            case .object(let child)? = children.first
        else {
            Issue.record("no child agreement in the snapshot")
            return
        }
        #expect(child["provider-order-id"] == .string("pb-9"))
        // The parent can now make its own offer.
        d.server = s
        #expect(apply(ServerEvent.cMakeOffer, to: &d).0 == .to("OfferProposed", sends: [.offer]))
    }

    @Test func localOnlyOrdersNeverRecurse() throws {
        var d = Dialogue()
        try d.quote(ies: InformationElements(negotiationOptions: NegotiationOptions(localOnly: true)))
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: nil, now: now) }
        #expect(apply(ServerEvent.cChildOrder, to: &d).0 == .refused)
    }

    @Test func cancellingTheParentCancelsTheChild() throws {
        var d = try serverDialogue(in: .awaitingProcessing)
        _ = apply(ServerEvent.cChildOrder, to: &d)
        #expect(d.server?.state == .childPQOSent)
        var rng = Fixture.rng(1)
        let cancel = messageForServer(.cancel, d.server!)
        let actions = d.server!.messageReceived(cancel, session: Fixture.serverSession, now: Fixture.start, using: &rng)
        #expect(d.server?.state == .cancelled)
        #expect(actions.contains { if case .sendToChildProvider(.cancel) = $0 { true } else { false } })
        #expect(sent(actions).map(\.method) == [.ack])
    }
}
