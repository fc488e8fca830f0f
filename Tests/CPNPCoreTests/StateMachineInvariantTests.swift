// Property-based tests (x-sheep/swift-property-based): random sequences of events applied to a
// client machine and a server machine joined in memory (local commands and decisions, delivery,
// loss, duplication, timers, hostile injections) keep the invariants of the order state machines.
import CPNPTesting
import Testing
import PropertyBased
import Synchronization
@testable import CPNPCore

/// One random world: a client and a server machine, messages in flight, a clock.
private struct World {
    var d = Dialogue()
    var lastToServer: CPNPMessage?
    var lastToClient: CPNPMessage?
    var violations: [String] = []

    mutating func check<A>(_ actions: [A], isPersist: (A) -> Bool, sentMessage: (A) -> CPNPMessage?, who: String) {
        // Durability: when a list changes state and sends, the persist comes first.
        if let p = actions.firstIndex(where: isPersist), let s = actions.firstIndex(where: { sentMessage($0) != nil }), s < p {
            violations.append("\(who): send before persist")
        }
        // No message leaves with a required attribute missing: the codec round-trips it.
        for case let m? in actions.map(sentMessage) {
            guard let decoded = try? CPNPCodec.decode(CPNPCodec.encode(m)), decoded == m else {
                violations.append("\(who): \(m.method) does not round-trip through the codec")
                continue
            }
        }
    }

    mutating func client(_ a: [ClientOrderStateMachine.Action]) {
        check(
            a, isPersist: { if case .persist = $0 { true } else { false } }, sentMessage: { if case .send(let m) = $0 { m } else { nil } },
            who: "client")
        d.recordClient(a)
    }

    mutating func server(_ a: [ServerOrderStateMachine.Action]) {
        check(
            a, isPersist: { if case .persist = $0 { true } else { false } }, sentMessage: { if case .send(let m, _) = $0 { m } else { nil } },
            who: "server")
        d.recordServer(a)
    }

    mutating func clientCommand(
        _ body: (inout ClientOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ClientOrderStateMachine.Action]
    ) {
        let before = d.client
        do {
            client(try body(&d.client, &d.rng, d.now))
        } catch {
            if d.client != before { violations.append("client: a refused command changed the machine") }
        }
    }

    mutating func serverCommand(
        _ body: (inout ServerOrderStateMachine, inout SplitMix64, CPNPTimestamp) throws(OrderCommandError) -> [ServerOrderStateMachine.Action]
    ) {
        guard var s = d.server else { return }
        let before = s
        do {
            let a = try body(&s, &d.rng, d.now)
            d.server = s
            server(a)
        } catch {
            if s != before { violations.append("server: a refused command changed the machine") }
        }
    }

    mutating func apply(_ event: Int) {
        switch event {
        case 0:
            clientCommand { c, r, now throws(OrderCommandError) in
                try c.quote(
                    requestedCPD: Fixture.requested, expectedResponseTime: now.adding(.seconds(600)), session: Fixture.clientSession, now: now,
                    using: &r)
            }
        case 1: serverCommand { s, _, now throws(OrderCommandError) in try s.acknowledge(expectedOfferTime: now.adding(.seconds(300)), now: now) }
        case 2:
            serverCommand { s, r, now throws(OrderCommandError) in
                try s.makeOffer(offeredCPD: Fixture.offered, validityOfferTime: now.adding(.seconds(900)), now: now, using: &r)
            }
        case 3: serverCommand { s, _, now throws(OrderCommandError) in try s.reject(.outOfResources, now: now) }
        case 4: serverCommand { s, _, now throws(OrderCommandError) in try s.requestMoreTime(until: now.adding(.seconds(500)), now: now) }
        case 5: clientCommand { c, _, now throws(OrderCommandError) in try c.moreTimeDecided(granted: true, now: now) }
        case 6: clientCommand { c, _, now throws(OrderCommandError) in try c.moreTimeDecided(granted: false, now: now) }
        case 7: clientCommand { c, _, now throws(OrderCommandError) in try c.offerProcessingStarted(now: now) }
        case 8: clientCommand { c, _, now throws(OrderCommandError) in try c.accept(now: now) }
        case 9: clientCommand { c, _, now throws(OrderCommandError) in try c.decline(reasons: [.unacceptableGap], now: now) }
        case 10: clientCommand { c, _, now throws(OrderCommandError) in try c.cancel(now: now) }
        case 11: serverCommand { s, _, now throws(OrderCommandError) in try s.agreementConfirmed(now: now) }
        case 12: clientCommand { c, r, now throws(OrderCommandError) in try c.withdraw(session: Fixture.clientSession, now: now, using: &r) }
        case 13: serverCommand { s, _, now throws(OrderCommandError) in try s.withdrawalConfirmed(now: now) }
        case 14:
            clientCommand { c, r, now throws(OrderCommandError) in
                try c.update(
                    requestedCPD: Fixture.updateRequested, expectedResponseTime: now.adding(.seconds(600)), session: Fixture.clientSession, now: now,
                    using: &r)
            }
        case 15: clientCommand { c, r, now throws(OrderCommandError) in try c.activate(.now, session: Fixture.clientSession, now: now, using: &r) }
        case 16:
            guard !d.toServer.isEmpty else { return }
            lastToServer = d.toServer.first
            if d.server == nil, case .quotation(let q)? = d.toServer.first {
                d.toServer.removeFirst()
                let (sm, a) = ServerOrderStateMachine.quotationReceived(
                    q, session: Fixture.serverSession, providerOrderID: Fixture.providerOrderID, now: d.now, using: &d.rng)
                d.server = sm
                server(a)
            } else if d.server != nil {
                let m = d.toServer.removeFirst()
                server(d.server!.messageReceived(m, session: Fixture.serverSession, now: d.now, using: &d.rng))
            }
        case 17:
            guard !d.toClient.isEmpty else { return }
            lastToClient = d.toClient.first
            let m = d.toClient.removeFirst()
            client(d.client.messageReceived(m, session: Fixture.clientSession, now: d.now))
        case 18: if !d.toServer.isEmpty { d.toServer.removeFirst() }
        case 19: if !d.toClient.isEmpty { d.toClient.removeFirst() }
        case 20: if let m = lastToServer { d.toServer.insert(m, at: 0) }
        case 21: if let m = lastToClient { d.toClient.insert(m, at: 0) }
        case 22:
            d.now = d.now.adding(.seconds(Int64(d.rng.below(8) + 1)))
            client(d.client.timerFired(.retransmission, now: d.now))
        case 23:
            d.now = d.now.adding(.seconds(Int64(d.rng.below(8) + 1)))
            guard d.server != nil else { return }
            server(d.server!.timerFired(.retransmission, now: d.now))
        case 24:
            d.now = d.now.adding(.seconds(400))
            let timer = ClientOrderStateMachine.Timer.allCases[d.rng.below(ClientOrderStateMachine.Timer.allCases.count)]
            client(d.client.timerFired(timer, now: d.now))
        case 25:
            d.now = d.now.adding(.seconds(400))
            guard d.server != nil else { return }
            let timers: [ServerOrderStateMachine.Timer] = [.offerValidity, .expectedOfferTime, .testPeriodEnd, .scheduledActivation]
            server(d.server!.timerFired(timers[d.rng.below(timers.count)], now: d.now))
        case 26:
            hostile()
        default:
            progress()
        }
    }

    /// The sensible next step: deliver what is in flight, else the next command for the states.
    mutating func progress() {
        if !d.toServer.isEmpty { return apply(16) }
        if !d.toClient.isEmpty { return apply(17) }
        if d.client.pendingTimeDecision != nil { return apply(d.rng.oneIn(3) ? 6 : 5) }
        switch d.server?.state {
        case .pqoReceived?: return apply(1)
        case .awaitingProcessing?: return apply(d.rng.oneIn(6) ? 4 : 2)
        case .acceptReceived?: return apply(11)
        case .completed? where d.server?.withdrawalPending == true: return apply(13)
        default: break
        }
        switch d.client.state {
        case .offerReceived: apply(d.rng.oneIn(3) ? 7 : 8)
        case .offerProcessing: apply(d.rng.oneIn(5) ? 9 : 8)
        case .completed: apply([14, 12, 15, 14][d.rng.below(4)])
        default: apply(22)
        }
    }

    /// Hostile: a message valid for the server's current state and transaction but with a wrong
    /// nonce must be answered by at most a FAIL and change nothing, except that a FAIL inside a
    /// negotiation ends it (the client ends it on that FAIL too): Cancelled, or the agreement kept.
    mutating func hostile() {
        guard var s = d.server else { return }
        let methods: [MethodCode] = [.accept, .decline, .withdraw, .update, .activate]
        let forged = Self.withWrongNonce(messageForServer(methods[d.rng.below(methods.count)], s))
        let before = s
        let a = s.messageReceived(forged, session: Fixture.serverSession, now: d.now, using: &d.rng)
        let negotiating: Set<ServerOrderStateMachine.State> = [.pqoReceived, .awaitingProcessing, .offerProposed, .processingReceived]
        let failInTransaction = sent(a).contains { if case .fail(let f) = $0 { f.transactionID == before.transaction.id } else { false } }
        if failInTransaction && negotiating.contains(before.state) {
            if s.agreement != before.agreement || s.offer != nil || (s.state != .cancelled && s.state != .completed) {
                violations.append(
                    "server: a FAIL for a \(forged.method) with a wrong nonce did not end the negotiation in \(before.state.rawValue) cleanly")
            }
        } else if s.state != before.state || s.agreement != before.agreement || s.offer != before.offer {
            violations.append("server: a \(forged.method) with a wrong nonce changed the order in \(before.state.rawValue)")
        }
        if sent(a).contains(where: { $0.method != .fail }) {
            violations.append("server: answered a \(forged.method) with a wrong nonce with something other than FAIL")
        }
        d.server = s
    }

    static func withWrongNonce(_ m: CPNPMessage) -> CPNPMessage {
        let wrong = Nonce("0000000000000000ffffffffffffffff")!
        switch m {
        case .accept(var x): x.nonce = wrong; return .accept(x)
        case .decline(var x): x.nonce = wrong; return .decline(x)
        case .withdraw(var x): x.nonce = wrong; return .withdraw(x)
        case .update(var x): x.nonce = wrong; return .update(x)
        case .activate(var x): x.nonce = wrong; return .activate(x)
        default: return m
        }
    }
}

@Suite("Order state machines: invariants under random event sequences")
struct StateMachineInvariantTests {
    @Test func invariantsHold() async {
        let coverage = Coverage()
        await propertyCheck(count: 300, input: Gen.int(in: 0...60).array(of: 1...120), Gen.int(in: 0...1_000_000)) { events, seed in
            await Task.yield()
            var w = World()
            w.d.rng = SplitMix64(seed: UInt64(seed))
            w.apply(0)
            var wasCancelled = (client: false, server: false)
            var lastSequence: (client: (TransactionID?, SequenceNumber?, SequenceNumber), server: (TransactionID?, SequenceNumber?, SequenceNumber))?
            for e in events {
                w.apply(e)
                let c = w.d.client
                // A Completed order has a nonce and an accepted CPD (and so the server's, when Completed).
                if c.state == .completed {
                    #expect(c.agreement != nil && !(c.agreement?.acceptedCPD.isEmpty ?? true), "client Completed without an agreement")
                }
                if let s = w.d.server, s.state == .completed {
                    #expect(s.agreement != nil && !(s.agreement?.acceptedCPD.isEmpty ?? true), "server Completed without an agreement")
                }
                // Cancelled is terminal.
                if wasCancelled.client { #expect(c.state == .cancelled, "client left Cancelled for \(c.state.rawValue)") }
                if wasCancelled.server { #expect(w.d.server?.state == .cancelled, "server left Cancelled") }
                wasCancelled.client = wasCancelled.client || c.state == .cancelled
                wasCancelled.server = wasCancelled.server || w.d.server?.state == .cancelled
                // Sequence numbers only grow within a transaction.
                let now = (
                    client: (c.transaction?.id, c.transaction?.sequence.lastIncoming, c.transaction?.sequence.nextOutgoing ?? 0),
                    server: (
                        w.d.server?.transaction.id, w.d.server?.transaction.sequence.lastIncoming, w.d.server?.transaction.sequence.nextOutgoing ?? 0
                    )
                )
                if let last = lastSequence {
                    if last.client.0 != nil, last.client.0 == now.client.0 {
                        #expect((now.client.1 ?? 0) >= (last.client.1 ?? 0) && now.client.2 >= last.client.2, "client sequence numbers went back")
                    }
                    if last.server.0 != nil, last.server.0 == now.server.0 {
                        #expect((now.server.1 ?? 0) >= (last.server.1 ?? 0) && now.server.2 >= last.server.2, "server sequence numbers went back")
                    }
                }
                lastSequence = now
                coverage.note(client: c.state, server: w.d.server?.state, updating: c.agreement != nil && c.state != .completed)
            }
            #expect(w.violations.isEmpty, "\(w.violations)")
        }
        // The random runs do reach the interesting places, so the invariants are not vacuous.
        let seen = coverage.seen.withLock { $0 }
        #expect(seen.contains("client Completed") && seen.contains("server Completed"), "\(seen)")
        #expect(seen.contains("client OfferProcessing") && seen.contains("server AcceptReceived"), "\(seen)")
        #expect(seen.contains("update in progress"), "\(seen)")
    }
}

private final class Coverage: Sendable {
    let seen = Mutex<Set<String>>([])
    func note(client: ClientOrderStateMachine.State, server: ServerOrderStateMachine.State?, updating: Bool) {
        seen.withLock { s in
            s.insert("client \(client.rawValue)")
            if let server { s.insert("server \(server.rawValue)") }
            if updating { s.insert("update in progress") }
        }
    }
}
