// RETRANS_TIMER doubling and maximum retries (RFC 8921 §11.4), sequence numbers (§11.3,
// docs/protocol.md §5.1), cached answers to duplicates, and offer validity (§9.1.8).
import CPNPTesting
import Testing
@testable import CPNPCore

private func armed(_ actions: [ClientOrderStateMachine.Action], _ timer: ClientOrderStateMachine.Timer) -> CPNPTimestamp? {
    for a in actions { if case .armTimer(timer, let at) = a { return at } }
    return nil
}

private func armed(_ actions: [ServerOrderStateMachine.Action], _ timer: ServerOrderStateMachine.Timer) -> CPNPTimestamp? {
    for a in actions { if case .armTimer(timer, let at) = a { return at } }
    return nil
}

@Suite("Retransmission, sequence numbers, cached answers, validity")
struct RetransmissionAndSequenceTests {
    @Test func quotationRetransmissionDoublesThenCancels() throws {
        var c = ClientOrderStateMachine(customerOrderID: Fixture.customerOrderID)
        var rng = Fixture.rng()
        let first = try c.quote(requestedCPD: Fixture.requested, session: Fixture.clientSession, now: Fixture.start, using: &rng)
        let q = try #require(sent(first).first)
        var deadline = try #require(armed(first, .retransmission))
        #expect(deadline == Fixture.at(1))
        var intervals: [Int64] = []
        var now = deadline
        for _ in 0..<3 {
            let a = c.timerFired(.retransmission, now: now)
            // The same message, byte for byte: same sequence number (§11.4).
            #expect(sent(a) == [q])
            #expect(CPNPCodec.encode(sent(a)[0]) == CPNPCodec.encode(q))
            deadline = try #require(armed(a, .retransmission))
            intervals.append(deadline.duration(since: now).components.seconds)
            now = deadline
        }
        #expect(intervals == [2, 4, 8])
        // Retries exhausted: the order is cancelled and the server told so.
        let last = c.timerFired(.retransmission, now: now)
        #expect(c.state == .cancelled)
        #expect(sent(last).map(\.method) == [.cancel])
        #expect(last.contains(.report(.negotiationEnded(.noResponse))))
        if case .cancel(let m) = sent(last)[0] { #expect(m.sequenceNumber == q.sequenceNumber &+ 1) }
    }

    @Test func serverOfferRetransmissionStopsAfterMaxRetriesAndTheOfferLivesUntilValidity() throws {
        var d = try serverDialogue(in: .offerProposed)
        var s = try #require(d.server)
        let offer = try #require(d.toClient.last ?? s.offer.map { .offer($0) })
        var now = Fixture.at(1)
        for expected in [2, 4, 8] as [Int64] {
            let a = s.timerFired(.retransmission, now: now)
            #expect(sent(a) == [offer])
            let next = try #require(armed(a, .retransmission))
            #expect(next.duration(since: now).components.seconds == expected)
            now = next
        }
        let exhausted = s.timerFired(.retransmission, now: now)
        #expect(sent(exhausted).isEmpty)
        #expect(s.state == .offerProposed)  // docs/protocol.md §6, A26: kept until validity expiry
        _ = s.timerFired(.offerValidity, now: Fixture.at(3_600))
        #expect(s.state == .cancelled)
        d.server = s
    }

    @Test func duplicatesGetTheCachedAnswerWithoutStateChange() throws {
        var d = Dialogue()
        try d.quote()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: Fixture.at(300), now: now) }
        d.toClient.removeAll()
        // The PROCESSING was lost: the client retransmits its QUOTATION.
        let retransmitted = sent(d.client.timerFired(.retransmission, now: Fixture.at(1)))
        try #require(retransmitted.count == 1)
        var rng = Fixture.rng(5)
        var s = try #require(d.server)
        let before = s.state
        let answer = s.messageReceived(retransmitted[0], session: Fixture.serverSession, now: Fixture.at(1), using: &rng)
        #expect(sent(answer).map(\.method) == [.processing])
        #expect(s.state == before)
        // Rate-limited: a second duplicate within 250 ms is discarded.
        #expect(isDiscard(s.messageReceived(retransmitted[0], session: Fixture.serverSession, now: Fixture.at(1), using: &rng)))
        // A later one is answered again.
        #expect(
            sent(s.messageReceived(retransmitted[0], session: Fixture.serverSession, now: Fixture.at(2), using: &rng)).map(\.method) == [.processing])
    }

    @Test func clientResendsItsAnswerWhenTheOfferIsRetransmitted() throws {
        var d = try clientDialogue(in: .offerProcessing)
        // The server did not get the client's PROCESSING and resends the OFFER (same number).
        var s = try #require(d.server)
        let resent = sent(s.timerFired(.retransmission, now: Fixture.at(1)))
        #expect(resent.map(\.method) == [.offer])
        let answer = d.client.messageReceived(resent[0], session: Fixture.clientSession, now: Fixture.at(1))
        #expect(sent(answer).map(\.method) == [.processing])
        #expect(d.client.state == .offerProcessing)
        // After ACCEPT, a retransmitted OFFER is answered with the ACCEPT.
        _ = try d.client.accept(now: Fixture.at(2))
        let again = d.client.messageReceived(resent[0], session: Fixture.clientSession, now: Fixture.at(3))
        #expect(sent(again).map(\.method) == [.accept])
    }

    @Test func staleSequenceNumbersAreDiscardedEverywhere() throws {
        var d = try clientDialogue(in: .offerReceived)
        let stale = messageForClient(.fail, d.client).withSequenceNumber(d.client.transaction!.sequence.lastIncoming! &- 1)
        #expect(isDiscard(d.client.messageReceived(stale, session: Fixture.clientSession, now: Fixture.start)))
        #expect(d.client.state == .offerReceived)

        var sd = try serverDialogue(in: .offerProposed)
        var rng = Fixture.rng()
        let s0 = sd.server!
        let staleCancel = messageForServer(.cancel, s0).withSequenceNumber(s0.transaction.sequence.lastIncoming! &- 1)
        #expect(isDiscard(sd.server!.messageReceived(staleCancel, session: Fixture.serverSession, now: Fixture.start, using: &rng)))
        #expect(sd.server == s0)
    }

    @Test func sequenceNumbersOfNewMessagesGrowByOne() throws {
        var d = Dialogue()
        try d.negotiate()
        // QUOTATION, PROCESSING, ACCEPT from the client; PROCESSING, OFFER, ACK from the server.
        let fromClient = d.sentByClient.map(\.sequenceNumber)
        let fromServer = d.sentByServer.map(\.sequenceNumber)
        #expect(fromClient.count == 3 && fromServer.count == 3)
        #expect(zip(fromClient, fromClient.dropFirst()).allSatisfy { $1 == $0 &+ 1 })
        #expect(zip(fromServer, fromServer.dropFirst()).allSatisfy { $1 == $0 &+ 1 })
        // Initial numbers are random in 0 … 2^31−1 so a transaction never wraps.
        #expect(fromClient[0] < 0x8000_0000 && fromServer[0] < 0x8000_0000)
        #expect(d.client.transaction?.sequence.lastIncoming == fromServer.last)
        #expect(d.server?.transaction.sequence.lastIncoming == fromClient.last)
    }

    @Test func theClientNeverAcceptsAnExpiredOffer() throws {
        var d = try clientDialogue(in: .offerReceived)
        let before = d.client
        #expect(throws: OrderCommandError.self) { try d.client.accept(now: Fixture.at(3_600)) }
        #expect(d.client == before)
        // An offer that arrives already expired ends the negotiation without an ACCEPT.
        var q = Dialogue()
        try q.quote()
        try q.acknowledge()
        q.now = Fixture.at(100)
        try q.serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: Fixture.at(200), now: now, using: &r)
        }
        q.now = Fixture.at(250)
        q.deliverToClient()
        #expect(q.client.state == .cancelled)
        #expect(q.clientEvents.last == .negotiationEnded(.offerExpired))
    }

    @Test func theServerForgetsAnExpiredOffer() throws {
        var d = try serverDialogue(in: .processingReceived)
        var s = try #require(d.server)
        let late = messageForServer(.accept, s)
        var rng = Fixture.rng()
        let answer = s.messageReceived(late, session: Fixture.serverSession, now: Fixture.at(3_600), using: &rng)
        #expect(sent(answer).map(\.method) == [.fail])
        _ = s.timerFired(.offerValidity, now: Fixture.at(3_600))
        #expect(s.state == .cancelled && s.offer == nil)
        d.server = s
    }

    @Test func theAckOfAnAcceptMustCarryTheOfferedCPD() throws {
        var d = try clientDialogue(in: .acceptSent)
        var ack = messageForClient(.ack, d.client)
        if case .ack(var a) = ack { a.cpd = Fixture.partial; ack = .ack(a) }
        #expect(isDiscard(d.client.messageReceived(ack, session: Fixture.clientSession, now: Fixture.start)))
        #expect(d.client.state == .acceptSent)
    }

    /// The FAIL ends the client's negotiation (§9.2.10), so it ends the server's too: the offer is
    /// withdrawn, and nothing the client sends next can reach an agreement the client gave up on.
    @Test func wrongNonceIsAnsweredWithFail1ThatEndsTheNegotiationOnBothSides() throws {
        var d = try serverDialogue(in: .offerProposed)
        var s = try #require(d.server)
        var rng = Fixture.rng()
        var decline = messageForServer(.decline, s)
        if case .decline(var m) = decline { m.nonce = Nonce("ffffffffffffffffffffffffffffffff")!; decline = .decline(m) }
        let a = s.messageReceived(decline, session: Fixture.serverSession, now: Fixture.start, using: &rng)
        guard case .fail(let f)? = sent(a).first else { Issue.record("no FAIL"); return }
        #expect(f.statusCode == .messageValidationError)
        #expect(f.diagnostic?.contains("nonce") == true)
        #expect(s.state == .cancelled && s.offer == nil)
        #expect(a.contains { if case .report(.negotiationEnded(.rejected(.messageValidationError))) = $0 { true } else { false } })
        // The FAIL is fresh for the client (next outgoing number), so a real client sees it.
        #expect(f.sequenceNumber == d.server!.transaction.sequence.nextOutgoing)
        d.server = s
    }

    /// The ACK closing a WITHDRAW was lost; a message with the next sequence number and another
    /// nonce gets FAIL 1 but must not take the transaction over, or the real retransmission would be
    /// stale and the client would retry forever (found by `StateMachinePropertyTests`; §11.3, §11.4).
    @Test func aClosedWithdrawalKeepsItsAckForTheRetransmissionOfTheWithdraw() throws {
        var d = Dialogue()
        try d.negotiate()
        try d.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        let withdraw = try #require(d.toServer.last)
        d.deliverToServer()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        let ack = try #require(d.sentByServer.last)
        #expect(ack.method == .ack && d.server?.state == .cancelled)
        d.toClient.removeAll()
        guard case .withdraw(var forged) = withdraw else { Issue.record("not a WITHDRAW"); return }
        forged.sequenceNumber = withdraw.sequenceNumber &+ 1
        forged.nonce = Nonce("ffffffffffffffffffffffffffffffff")!
        var s = try #require(d.server)
        var rng = Fixture.rng(9)
        let lastIncoming = s.transaction.sequence.lastIncoming
        let refusal = sent(s.messageReceived(.withdraw(forged), session: Fixture.serverSession, now: Fixture.at(5), using: &rng))
        guard case .fail(let fail)? = refusal.first else { Issue.record("no FAIL: \(refusal)"); return }
        #expect(fail.statusCode == .messageValidationError && fail.sequenceNumber == ack.sequenceNumber &+ 1)
        #expect(s.transaction.sequence.lastIncoming == lastIncoming && s.transaction.cache?.answer == ack)
        #expect(sent(s.messageReceived(withdraw, session: Fixture.serverSession, now: Fixture.at(6), using: &rng)) == [ack])
    }

    @Test func withdrawalCyclesRepeatEveryInterval() throws {
        var d = Dialogue()
        try d.negotiate()
        var rng = Fixture.rng()
        let w = try d.client.withdraw(session: Fixture.clientSession, now: Fixture.start, using: &rng)
        let withdraw = try #require(sent(w).first)
        var now = Fixture.at(1)
        for _ in 0..<3 { now = armed(d.client.timerFired(.retransmission, now: now), .retransmission)! }
        let exhausted = d.client.timerFired(.retransmission, now: now)
        let next = try #require(armed(exhausted, .withdrawalRetry))
        #expect(next == now.adding(.seconds(300)))
        #expect(exhausted.contains { if case .report(.withdrawalUnconfirmed) = $0 { true } else { false } })
        let again = d.client.timerFired(.withdrawalRetry, now: next)
        #expect(sent(again) == [withdraw])
        // The withdrawal interval never goes below 60 s (docs/protocol.md §6, A1).
        #expect(ClientOrderStateMachine.Configuration(withdrawalRetryInterval: .seconds(5)).withdrawalRetryInterval == .seconds(60))
    }
}
