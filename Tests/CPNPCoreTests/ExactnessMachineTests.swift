// Interleavings the state machines once got wrong (RFC 8921 §9.1.10.3, §9.2.7, §9.2.8, §11.1,
// §11.3, §11.4, Table 6), each replayed step by step between a real client and server machine.
import CPNPTesting
import Testing
@testable import CPNPCore

@Suite("State machines: exact under odd interleavings")
struct ExactnessMachineTests {
    /// PROCESSING and OFFER delivered, the ACCEPT sent and still in flight.
    static func acceptSent() throws -> Dialogue {
        var d = Dialogue()
        try d.quote()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: Fixture.at(300), now: now) }
        d.deliverToClient()
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        d.deliverToClient()
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
        return d
    }

    // MARK: CANCEL after ACCEPT

    @Test func aCancelAfterTheAcceptWaitsForItsAnswerAndWithdrawsTheAgreement() throws {
        var d = try Self.acceptSent()
        // The application cancels while the ACCEPT is in flight: no CANCEL crosses the ACK.
        let sentBefore = d.sentByClient.count
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.cancel(now: now) }
        #expect(d.sentByClient.count == sentBefore)
        #expect(d.client.state == .acceptSent)

        d.deliverToServer()  // the ACCEPT
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
        d.deliverToClient()  // the ACK: agreement, then WITHDRAW at once
        #expect(d.client.state == .cancelled)
        guard case .withdraw(let w)? = d.toServer.last else { Issue.record("expected a WITHDRAW, sent \(d.trace)"); return }
        #expect(w.nonce == d.server?.agreement?.nonce)
        #expect(w.transactionID != d.server?.transaction.id)
        d.deliverToServer()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        while !d.toClient.isEmpty { d.deliverToClient() }
        #expect(d.server?.state == .cancelled)
        #expect(d.client.state == .cancelled && d.client.agreement == nil && d.client.transaction?.pending == nil)
        #expect(d.clientEvents.contains(.withdrawalConfirmed))
    }

    @Test func anAcceptUnansweredAfterEveryRetryIsFollowedByCancelAndWithdraw() throws {
        var d = try Self.acceptSent()
        // The server agrees, and every ACK is lost.
        d.deliverToServer()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
        d.toClient.removeAll()
        for _ in 0...ClientOrderStateMachine.Configuration().retransmission.maximumRetries {
            d.toServer.removeAll()
            d.recordClient(d.client.timerFired(.retransmission, now: Fixture.at(100)))
        }
        #expect(d.clientEvents.contains(.negotiationEnded(.noResponse)))
        #expect(d.toServer.map(\.method) == [.cancel, .withdraw])
        while !d.toServer.isEmpty { d.deliverToServer() }
        // The CANCEL is refused (the order is agreed); the WITHDRAW removes the agreement.
        #expect(d.server?.withdrawalPending == true)
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        while !d.toClient.isEmpty { d.deliverToClient() }
        #expect(d.server?.state == .cancelled && d.client.state == .cancelled)
        #expect(d.clientEvents.contains(.withdrawalConfirmed))
    }

    @Test func theAcceptOfAnUpdateCannotBeCancelled() throws {
        var d = Dialogue()
        try d.negotiate()
        try d.clientDo { c, r, now throws(OrderCommandError) in
            try c.update(
                requestedCPD: Fixture.updateRequested, expectedResponseTime: Fixture.at(900), session: Fixture.clientSession, now: now, using: &r)
        }
        d.deliverToServer()
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.updateRequested, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        d.deliverToClient()
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
        let before = d.client
        #expect(throws: OrderCommandError.self) { try d.clientDo { c, _, now throws(OrderCommandError) in try c.cancel(now: now) } }
        #expect(d.client == before)
    }

    // MARK: New transactions while a request is pending

    @Test func aNewUpdateOrWithdrawWaitsForThePendingCancelOfAnUpdate() throws {
        var d = Dialogue()
        try d.negotiate()
        try d.clientDo { c, r, now throws(OrderCommandError) in
            try c.update(
                requestedCPD: Fixture.updateRequested, expectedResponseTime: Fixture.at(900), session: Fixture.clientSession, now: now, using: &r)
        }
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.cancel(now: now) }
        #expect(d.client.state == .completed)
        #expect(d.client.transaction?.pending?.message.method == .cancel)
        let before = d.client
        #expect(throws: OrderCommandError.self) {
            try d.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        }
        #expect(throws: OrderCommandError.self) {
            try d.clientDo { c, r, now throws(OrderCommandError) in
                try c.update(
                    requestedCPD: Fixture.updateRequested, expectedResponseTime: Fixture.at(900), session: Fixture.clientSession, now: now, using: &r)
            }
        }
        #expect(d.client == before)
        // Once the CANCEL is answered the client may withdraw.
        while !d.toServer.isEmpty { d.deliverToServer() }
        while !d.toClient.isEmpty { d.deliverToClient() }
        #expect(d.client.transaction?.pending == nil)
        try d.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        #expect(d.client.state == .cancelled)
    }

    // MARK: Refused and closed transactions

    @Test func aRefusedWithdrawNeverOpensLaterAndItsRetransmissionGetsTheSameFail() throws {
        var d = Dialogue()
        try d.negotiate()
        let server = try #require(d.server)
        let agreement = try #require(server.agreement)
        var rng = Fixture.rng(7)
        // A WITHDRAW with a wrong nonce is refused…
        let refused = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 5, transactionID: .random(using: &rng), customerOrderID: Fixture.customerOrderID,
                providerOrderID: Fixture.providerOrderID, nonce: .random(using: &rng)))
        var s = server
        let first = s.messageReceived(refused, session: Fixture.serverSession, now: Fixture.at(10), using: &rng)
        guard case .fail(let fail)? = sent(first).first else { Issue.record("expected FAIL"); return }
        #expect(first.contains { if case .persist = $0 { true } else { false } })
        // … its retransmission gets the same FAIL …
        #expect(sent(s.messageReceived(refused, session: Fixture.serverSession, now: Fixture.at(11), using: &rng)) == [.fail(fail)])
        // … and the same transaction, even with the right nonce, never opens (§11.3), also after a restart.
        let replay = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 6, transactionID: refused.transactionID, customerOrderID: Fixture.customerOrderID,
                providerOrderID: Fixture.providerOrderID, nonce: agreement.nonce))
        var restored = try ServerOrderStateMachine(snapshot: s.snapshot)
        #expect(restored == s)
        #expect(isDiscard(restored.messageReceived(replay, session: Fixture.serverSession, now: Fixture.at(12), using: &rng)))
        #expect(restored.state == .completed && !restored.withdrawalPending)
    }

    @Test func aSecondWithdrawOfAWithdrawnOrderIsRefused() throws {
        var d = Dialogue()
        try d.negotiate()
        let agreement = try #require(d.server?.agreement)
        try d.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        d.deliverToServer()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        var rng = Fixture.rng(9)
        let again = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 1, transactionID: .random(using: &rng), customerOrderID: Fixture.customerOrderID,
                providerOrderID: Fixture.providerOrderID, nonce: agreement.nonce))
        let actions = d.server!.messageReceived(again, session: Fixture.serverSession, now: Fixture.at(20), using: &rng)
        guard case .fail(let f)? = sent(actions).first else { Issue.record("expected FAIL 1, got \(actions)"); return }
        #expect(f.statusCode == .messageValidationError)
        #expect(d.server?.state == .cancelled)
    }

    @Test func closedAndRefusedTransactionsSurviveASnapshot() throws {
        var d = Dialogue()
        try d.negotiate()
        let quotationTransaction = try #require(d.server?.transaction.id)
        try d.clientDo { c, r, now throws(OrderCommandError) in
            try c.update(
                requestedCPD: Fixture.updateRequested, expectedResponseTime: Fixture.at(900), session: Fixture.clientSession, now: now, using: &r)
        }
        d.deliverToServer()
        var rng = Fixture.rng(11)
        let refused = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 5, transactionID: .random(using: &rng), customerOrderID: Fixture.customerOrderID,
                providerOrderID: Fixture.providerOrderID, nonce: .random(using: &rng)))
        _ = d.server!.messageReceived(refused, session: Fixture.serverSession, now: Fixture.at(5), using: &rng)
        let server = try #require(d.server)
        #expect(server.closedTransactionIDs.contains(quotationTransaction))
        #expect(server.refusedTransactions.map(\.id) == [refused.transactionID])
        let restored = try ServerOrderStateMachine(snapshot: server.snapshot)
        #expect(restored.closedTransactionIDs == server.closedTransactionIDs)
        #expect(restored.refusedTransactions == server.refusedTransactions)
        #expect(restored == server)
    }

    // MARK: A FAIL inside the live transaction

    @Test func aFailAnsweringAnInvalidMessageEndsTheNegotiationAndIsCachedForItsRetransmission() throws {
        var d = Dialogue()
        try d.quote()
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        d.deliverToClient()
        let offer = try #require(d.client.offer)
        var rng = Fixture.rng(3)
        // An ACCEPT with the wrong nonce and the next sequence number of the transaction.
        let lastIncoming = try #require(d.server?.transaction.sequence.lastIncoming)
        let bad = CPNPMessage.accept(
            AcceptMessage(
                sequenceNumber: lastIncoming &+ 1, transactionID: offer.transactionID, customerOrderID: Fixture.customerOrderID,
                providerOrderID: Fixture.providerOrderID,
                nonce: .random(using: &rng), acceptedCPD: offer.offeredCPD))
        var s = try #require(d.server)
        let next = s.transaction.sequence.nextOutgoing
        let actions = s.messageReceived(bad, session: Fixture.serverSession, now: Fixture.at(1), using: &rng)
        let persist = actions.firstIndex { if case .persist = $0 { true } else { false } }
        let send = actions.firstIndex { if case .send = $0 { true } else { false } }
        #expect(persist != nil && send != nil && persist! < send!)
        guard case .fail(let fail)? = sent(actions).first else { Issue.record("expected FAIL"); return }
        #expect(fail.sequenceNumber == next)
        // The FAIL ends the client's negotiation (§9.2.10), so it ends here too.
        #expect(s.state == .cancelled)
        // The same bytes again: the same FAIL, nothing new.
        #expect(sent(s.messageReceived(bad, session: Fixture.serverSession, now: Fixture.at(2), using: &rng)) == [.fail(fail)])
        #expect(s.transaction.sequence.nextOutgoing == next &+ 1)
    }

    // MARK: Test periods

    @Test func aTestPeriodEndingDuringAFailedUpdateEndsTheAgreementOnBothSides() throws {
        var d = Dialogue()
        let testing = Fixture.informationElements(purpose: .testing, testPeriodEnd: Fixture.at(60))
        try d.negotiate(offerIEs: testing, requestIEs: testing)
        try d.clientDo { c, r, now throws(OrderCommandError) in
            try c.update(
                requestedCPD: Fixture.updateRequested, expectedResponseTime: Fixture.at(900), session: Fixture.clientSession, now: now, using: &r)
        }
        d.deliverToServer()
        // The test period ends while the update is negotiated: the timers are stale on both sides.
        d.now = Fixture.at(61)
        #expect(isDiscard(d.client.timerFired(.testPeriodEnd, now: d.now)))
        #expect(isDiscard(d.server!.timerFired(.testPeriodEnd, now: d.now)))
        // The provider refuses the update: the testing agreement does not come back to life.
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.reject(.outOfResources, now: now) }
        d.deliverToClient()
        #expect(d.server?.state == .cancelled && d.server?.agreement == nil)
        #expect(d.client.state == .cancelled && d.client.agreement == nil)
        #expect(d.clientEvents.contains(.testPeriodEnded))
        #expect(d.serverEvents.contains { if case .testPeriodEnded = $0 { true } else { false } })
    }

    @Test func aTestPeriodEndingDuringAWithdrawAcknowledgesTheWithdraw() throws {
        var d = Dialogue()
        let testing = Fixture.informationElements(purpose: .testing, testPeriodEnd: Fixture.at(60))
        try d.negotiate(offerIEs: testing, requestIEs: testing)
        try d.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        d.deliverToServer()
        d.deliverToClient()  // PROCESSING
        d.now = Fixture.at(61)
        d.recordServer(d.server!.timerFired(.testPeriodEnd, now: d.now))
        #expect(d.server?.state == .cancelled && d.server?.withdrawalPending == false)
        guard case .ack(let ack)? = d.toClient.last else { Issue.record("expected the WITHDRAW's ACK"); return }
        #expect(ack.cpd?.isEmpty == true)
        d.deliverToClient()
        #expect(d.clientEvents.contains(.withdrawalConfirmed))
        #expect(d.client.transaction?.pending == nil)
    }

    // MARK: The withdrawal alarm (§11.1.2)

    @Test func theWithdrawalAlarmStandsOnlyWhileNoCycleIsAnswered() throws {
        var d = Dialogue()
        try d.negotiate()
        try d.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        // Every retransmission unanswered: the alarm is raised and reported.
        let retries = ClientOrderStateMachine.Configuration().retransmission.maximumRetries
        for _ in 0...retries { d.recordClient(d.client.timerFired(.retransmission, now: Fixture.at(60))) }
        #expect(d.client.withdrawalUnconfirmed)
        #expect(d.clientEvents.contains { if case .withdrawalUnconfirmed = $0 { true } else { false } })
        #expect(try ClientOrderStateMachine(snapshot: d.client.snapshot).withdrawalUnconfirmed)
        // The next cycle is answered PROCESSING: the provider is working on it, no alarm.
        d.toServer.removeAll()
        d.recordClient(d.client.timerFired(.withdrawalRetry, now: Fixture.at(400)))
        d.deliverToServer()
        d.deliverToClient()
        #expect(!d.client.withdrawalUnconfirmed)
        #expect(d.client.transaction?.pending != nil)
    }

    @Test func aSnapshotHoldsTheOfferOnceWhereItIsAlsoPendingAndTheCachedAnswer() throws {
        var d = Dialogue()
        try d.quote()
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        let server = try #require(d.server)
        #expect(server.transaction.pending?.message == .offer(try #require(server.offer)))
        #expect(server.transaction.cache?.answer == .offer(try #require(server.offer)))
        let text = String(decoding: JSONSerializer.serialize(server.snapshot), as: UTF8.self)
        func occurrences(_ needle: String) -> Int { text.split(separator: needle, omittingEmptySubsequences: false).count - 1 }
        #expect(occurrences("\"the-offer\"") == 2)
        #expect(occurrences("\"method\":3,") == 1, "the OFFER is encoded once: \(text)")
        #expect(try ServerOrderStateMachine(snapshot: server.snapshot) == server)
    }

    // MARK: A silent server

    @Test func aClientHearingNothingProbesAndGetsTheOutstandingOffer() throws {
        var d = Dialogue()
        try d.quote(expectedResponseTime: nil)
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: Fixture.at(300), now: now) }
        d.deliverToClient()
        #expect(d.client.state == .serverProcessing)
        // The OFFER is lost (e.g. the server restarted and the client had no session yet).
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(3_600), now: now, using: &r)
        }
        d.toClient.removeAll()
        // The probe retransmits the QUOTATION; the server answers with the OFFER, not PROCESSING.
        d.now = Fixture.at(15)
        d.recordClient(d.client.timerFired(.silenceProbe, now: d.now))
        #expect(d.toServer.map(\.method) == [.quotation])
        d.deliverToServer()
        #expect(d.toClient.map(\.method) == [.offer])
        d.deliverToClient()
        #expect(d.client.state == .offerReceived)
    }

    @Test func aClientThatEnforcesNoDeadlineAnnouncesNone() throws {
        var client = ClientOrderStateMachine(customerOrderID: Fixture.customerOrderID, configuration: .init(enforceDeadlines: false))
        var rng = Fixture.rng()
        let actions = try client.quote(
            requestedCPD: Fixture.requested, expectedResponseTime: Fixture.at(600), session: Fixture.clientSession, now: Fixture.start, using: &rng)
        guard case .quotation(let q)? = sent(actions).first else { Issue.record("no QUOTATION"); return }
        #expect(q.expectedResponseTime == nil)
        #expect(!actions.contains { if case .armTimer(.expectedResponseTime, _) = $0 { true } else { false } })
    }

    @Test func aChildOrderStartedBeforeProcessingAcknowledgesWithSubcode2() throws {
        var d = Dialogue()
        try d.quote()
        try d.serverDo { s, r, now throws(OrderCommandError) in
            try s.childOrderStarted(
                customerOrderID: CustomerOrderID("child-1")!, requestedCPD: Fixture.requested, expectedOfferTime: Fixture.at(300),
                session: Fixture.otherClientSession, now: now, using: &r)
        }
        guard case .processing(let p)? = d.toClient.first else { Issue.record("expected PROCESSING"); return }
        #expect(p.processingSubcode == .requestExternalResources)
        #expect(d.server?.state == .childPQOSent)
    }
}
