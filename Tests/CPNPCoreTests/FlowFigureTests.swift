// Scripted exchanges between a client machine and a server machine joined in memory, one test per
// flow figure of RFC 8921 (Figures 4, 6, 11, 12, 13, 14, 15, 16). Each asserts the message trace
// the figure draws and the state each side ends in.
import CPNPTesting
import Testing
@testable import CPNPCore

extension Dialogue {
    mutating func acknowledge(_ eot: CPNPTimestamp? = Fixture.at(300)) throws {
        try serverDo { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: eot, now: now) }
        deliverToClient()
    }

    mutating func offer(_ cpd: CPD = Fixture.offered, ies: InformationElements? = nil) throws {
        try serverDo { s, r, now throws(OrderCommandError) in
            try s.makeOffer(offeredCPD: cpd, validityOfferTime: now.adding(.seconds(3_600)), informationElements: ies, now: now, using: &r)
        }
        deliverToClient()
    }

    mutating func clientProcessing() throws {
        try clientDo { c, _, now throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
        deliverToServer()
    }

    mutating func acceptAndConfirm() throws {
        try clientDo { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
        deliverToServer()
        #expect(server?.state == .acceptReceived)
        try serverDo { s, _, now throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
        deliverToClient()
    }

    mutating func decline(_ reasons: [DeclineReason] = [.unacceptableGap]) throws {
        try clientDo { c, _, now throws(OrderCommandError) in try c.decline(reasons: reasons, now: now) }
        deliverToServer()
        deliverToClient()
    }

    /// A new negotiation cycle with a fresh order on both sides (Figure 4's next step).
    mutating func nextCycle(_ coid: String) {
        client = ClientOrderStateMachine(customerOrderID: CustomerOrderID(coid)!)
        server = nil
        now = now.adding(.seconds(10))
    }
}

@Suite("RFC 8921 flow figures, client and server machines joined in memory")
struct FlowFigureTests {
    /// Figure 4: 1-step successful and failed cycles; N-step successful and failed negotiations.
    @Test func figure4OverallNegotiationProcess() throws {
        // 1-step successful negotiation cycle.
        var d = Dialogue()
        try d.quote()
        try d.acknowledge()
        try d.offer()
        try d.acceptAndConfirm()
        #expect(d.trace == ["C>S QUOTATION", "S>C PROCESSING", "S>C OFFER", "C>S ACCEPT", "S>C ACK"])
        #expect(d.client.state == .completed && d.server?.state == .completed)

        // 1-step failed negotiation cycle: the offer is declined.
        var f = Dialogue()
        try f.quote()
        try f.acknowledge()
        try f.offer(Fixture.partial)
        try f.decline()
        #expect(f.trace == ["C>S QUOTATION", "S>C PROCESSING", "S>C OFFER", "C>S DECLINE", "S>C ACK"])
        #expect(f.client.state == .cancelled && f.server?.state == .cancelled)

        // N-step successful: (a) declined, (b) accepted.
        var n = Dialogue()
        try n.quote()
        try n.acknowledge()
        try n.offer(Fixture.partial)
        #expect(!Fixture.partial.comparison(against: Fixture.requested).satisfies)
        try n.decline()
        n.nextCycle("acme-2026-0042-b")
        try n.quote()
        try n.acknowledge()
        try n.offer(Fixture.offered)
        #expect(Fixture.offered.comparison(against: Fixture.requested).satisfies)
        try n.acceptAndConfirm()
        #expect(n.trace.filter { $0.hasPrefix("C>S") } == ["C>S QUOTATION", "C>S DECLINE", "C>S QUOTATION", "C>S ACCEPT"])
        #expect(n.client.state == .completed && n.server?.state == .completed)

        // N-step failed: (i), (j), (k) declined, (l) the server fails to make an offer.
        var x = Dialogue()
        for step in ["i", "j", "k"] {
            x.nextCycle("acme-\(step)")
            try x.quote()
            try x.acknowledge()
            try x.offer(Fixture.partial)
            try x.decline()
            #expect(x.client.state == .cancelled && x.server?.state == .cancelled)
        }
        x.nextCycle("acme-l")
        try x.quote()
        try x.acknowledge()
        try x.serverDo { s, _, now throws(OrderCommandError) in try s.reject(.outOfResources, diagnostic: "no capacity left", now: now) }
        x.deliverToClient()
        #expect(x.trace.suffix(3) == ["C>S QUOTATION", "S>C PROCESSING", "S>C FAIL"])
        #expect(x.client.state == .cancelled && x.server?.state == .cancelled)
        #expect(x.clientEvents.last == .negotiationEnded(.failed(.outOfResources, diagnostic: "no capacity left")))
    }

    /// Figure 6: QUOTATION (Requested CPD) … ACCEPT (Accepted CPD), ACK (Accepted CPD).
    @Test func figure6ConnectivityProvisioningDocuments() throws {
        var d = Dialogue()
        try d.negotiate()
        #expect(d.trace == ["C>S QUOTATION", "S>C PROCESSING", "S>C OFFER", "C>S PROCESSING", "C>S ACCEPT", "S>C ACK"])
        #expect(d.client.state == .completed && d.server?.state == .completed)
        // The three-way handshake carries the same CPD; both sides agree on it and on the nonce.
        #expect(d.client.agreement?.acceptedCPD == Fixture.offered)
        #expect(d.client.agreement == d.server?.agreement)
        #expect(d.client.agreement?.nonce != nil)
    }

    /// Figure 11: the server asks for more time and the client grants it.
    @Test func figure11MoreTimeGranted() throws {
        var d = Dialogue()
        try d.quote()
        try d.acknowledge(Fixture.at(300))
        try d.serverDo { s, _, now throws(OrderCommandError) in
            try s.requestMoreTime(until: Fixture.at(500), subcode: .requestExternalResources, now: now)
        }
        d.deliverToClient()
        #expect(d.clientEvents.last == .moreTimeRequested(until: Fixture.at(500), subcode: .requestExternalResources, isExtension: true))
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.moreTimeDecided(granted: true, now: now) }
        d.deliverToServer()
        #expect(d.server?.expectedOfferTime == Fixture.at(500))
        #expect(d.client.expectedOfferTime == Fixture.at(500))
        try d.offer()
        try d.clientProcessing()
        try d.acceptAndConfirm()
        #expect(
            d.trace == [
                "C>S QUOTATION", "S>C PROCESSING", "S>C PROCESSING", "C>S ACK", "S>C OFFER", "C>S PROCESSING", "C>S ACCEPT", "S>C ACK",
            ])
        #expect(d.client.state == .completed && d.server?.state == .completed)
    }

    /// Figure 12: the client refuses more time with FAIL 7; the original deadline stands.
    @Test func figure12MoreTimeRejected() throws {
        var d = Dialogue()
        try d.quote()
        try d.acknowledge(Fixture.at(300))
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.requestMoreTime(until: Fixture.at(500), now: now) }
        d.deliverToClient()
        try d.clientDo { c, _, now throws(OrderCommandError) in try c.moreTimeDecided(granted: false, now: now) }
        d.deliverToServer()
        #expect(d.trace == ["C>S QUOTATION", "S>C PROCESSING", "S>C PROCESSING", "C>S FAIL"])
        #expect(d.serverEvents.last == .moreTimeRejected)
        #expect(d.server?.expectedOfferTime == Fixture.at(300))
        #expect(d.server?.state == .awaitingProcessing && d.client.state == .serverProcessing)
        // No offer by the original time: both sides give up (§11.1.1, §11.2.1).
        d.now = Fixture.at(300)
        d.recordClient(d.client.timerFired(.expectedOfferTime, now: d.now))
        #expect(d.client.state == .cancelled)
        d.deliverToServer()
        #expect(d.server?.state == .cancelled)
        #expect(d.trace.last == "S>C ACK")
    }

    /// Figure 13: DECLINE, answered by ACK with the Empty CPD (docs/protocol.md §6, A2).
    @Test func figure13Decline() throws {
        var d = Dialogue()
        try d.quote()
        try d.acknowledge()
        try d.offer(Fixture.partial)
        try d.clientProcessing()
        try d.decline([.unacceptableGap])
        #expect(d.trace == ["C>S QUOTATION", "S>C PROCESSING", "S>C OFFER", "C>S PROCESSING", "C>S DECLINE", "S>C ACK"])
        #expect(d.serverEvents.contains(.negotiationEnded(.declined([.unacceptableGap]))))
        #expect(d.clientEvents.last == .cancellationConfirmed)
        #expect(d.client.state == .cancelled && d.server?.state == .cancelled)
    }

    /// Figure 14: WITHDRAW, PROCESSING, ACK with the Empty CPD.
    @Test func figure14Withdraw() throws {
        var d = Dialogue()
        try d.negotiate()
        d.trace = []
        try d.clientDo { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        d.deliverToServer()
        d.deliverToClient()
        // PROCESSING stops the client's retransmissions.
        #expect(isDiscard(d.client.timerFired(.retransmission, now: d.now.adding(.seconds(5)))))
        #expect(d.serverEvents.last.map { if case .withdrawalRequested = $0 { true } else { false } } == true)
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        let ack = d.toClient.first
        d.deliverToClient()
        #expect(d.trace == ["C>S WITHDRAW", "S>C PROCESSING", "S>C ACK"])
        if case .ack(let a)? = ack { #expect(a.cpd == .empty) } else { Issue.record("no ACK") }
        #expect(d.clientEvents.last == .withdrawalConfirmed)
        #expect(d.client.state == .cancelled && d.server?.state == .cancelled)
        #expect(d.server?.agreement == nil)
    }

    /// Figure 15: UPDATE renegotiates a Completed order; a new nonce replaces the old one.
    @Test func figure15Update() throws {
        var d = Dialogue()
        try d.negotiate()
        let oldNonce = try #require(d.client.agreement?.nonce)
        d.trace = []
        try d.clientDo { c, r, now throws(OrderCommandError) in
            try c.update(
                requestedCPD: Fixture.updateRequested, expectedResponseTime: now.adding(.seconds(600)), session: Fixture.clientSession, now: now,
                using: &r)
        }
        d.deliverToServer()
        #expect(d.server?.state == .pqoReceived)
        #expect(d.server?.agreement?.nonce == oldNonce)  // the agreement stays until the new ACK
        try d.acknowledge()
        try d.offer(Fixture.updateRequested)
        try d.clientProcessing()
        try d.acceptAndConfirm()
        #expect(d.trace == ["C>S UPDATE", "S>C PROCESSING", "S>C OFFER", "C>S PROCESSING", "C>S ACCEPT", "S>C ACK"])
        #expect(d.client.state == .completed && d.server?.state == .completed)
        #expect(d.client.agreement?.acceptedCPD == Fixture.updateRequested)
        #expect(d.client.agreement?.nonce != oldNonce)
        #expect(d.client.agreement == d.server?.agreement)
    }

    /// Figure 15, failed: a rejected UPDATE leaves the original agreement in force (docs/protocol.md §6, A11).
    @Test func figure15UpdateRejectedKeepsTheAgreement() throws {
        var d = Dialogue()
        try d.negotiate()
        let agreement = d.client.agreement
        try d.clientDo { c, r, now throws(OrderCommandError) in
            try c.update(
                requestedCPD: Fixture.updateRequested, expectedResponseTime: now.adding(.seconds(600)), session: Fixture.clientSession, now: now,
                using: &r)
        }
        d.deliverToServer()
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.reject(.outOfResources, now: now) }
        d.deliverToClient()
        #expect(d.client.state == .completed && d.server?.state == .completed)
        #expect(d.client.agreement == agreement && d.server?.agreement == agreement)
    }

    /// Figure 16: ACTIVATE, ACK — now, scheduled, and deactivation with 0.
    @Test func figure16Activate() throws {
        var d = Dialogue()
        try d.negotiate(offerIEs: Fixture.informationElements(activation: .explicit))
        #expect(d.server?.agreement?.activation == .inactive)
        d.trace = []
        for (schedule, expected) in [
            (ActivationSchedule.now, ActivationStatus.active),
            (.deactivate, .inactive),
            (.at(Fixture.at(7_200)), .scheduled(Fixture.at(7_200))),
        ] {
            try d.clientDo { c, r, now throws(OrderCommandError) in try c.activate(schedule, session: Fixture.clientSession, now: now, using: &r) }
            d.deliverToServer()
            d.deliverToClient()
            #expect(d.server?.agreement?.activation == expected)
            #expect(d.client.agreement?.activation == expected)
            #expect(d.clientEvents.last == .activationConfirmed(schedule))
        }
        #expect(d.trace == ["C>S ACTIVATE", "S>C ACK", "C>S ACTIVATE", "S>C ACK", "C>S ACTIVATE", "S>C ACK"])
        // The scheduled activation happens when its timer fires.
        var s = try #require(d.server)
        let fired = s.timerFired(.scheduledActivation, now: Fixture.at(7_200))
        #expect(fired.contains(.report(.activationChanged(.active))))
        #expect(s.agreement?.activation == .active)
    }
}
