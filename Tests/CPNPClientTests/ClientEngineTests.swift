// The client engine against a real provider engine over real DTLS on loopback (RFC 8921 §7, §11.1).
@testable import CPNPClient
import CPNPCore
import CPNPPolicy
import CPNPRuntime
import CPNPServer
import CPNPStorage
import CPNPTransport
import CPNPTesting
import Foundation
import NIOCore
import Testing

@Suite(.serialized)
struct ClientEngineTests {
    let pki: TestPKI
    init() throws { pki = try TestPKI() }

    func serverState(_ provider: InProcessProvider, _ poid: ProviderOrderID?) throws -> ServerOrderStateMachine.State? {
        guard let poid else { return nil }
        return try provider.store.order(providerOrderID: poid)?.machine.state
    }

    @Test(.timeLimit(.minutes(1)))
    func quoteAndAcceptReachCompletedOnBothSidesAndAreStored() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let (client, store) = try await makeClient(pki: pki)
        let request = try loadExample("l3vpn-3-sites.json")
        let id = try await client.quote(
            request, informationElements: InformationElements(negotiationOptions: NegotiationOptions(costRequested: true)), to: try provider.peer())
        guard case .offer(let offer) = try await client.awaitOffer(id) else { Issue.record("no offer"); return }
        #expect(offer.offeredCPD.satisfies(request))
        #expect(offer.informationElements?.cost != nil)
        let agreement = try await client.accept(id)
        #expect(agreement.acceptedCPD == offer.offeredCPD)
        #expect(try store.order(customerOrderID: id)?.state == .completed)
        #expect(try store.order(customerOrderID: id)?.machine.agreement == agreement)
        #expect(try serverState(provider, agreement.providerOrderID) == .completed)
        let committed = try provider.store.reservations(providerOrderID: agreement.providerOrderID)
        #expect(!committed.committed.isEmpty && committed.offered.isEmpty)
        await client.shutdown()
        await provider.stop()
    }

    /// An OFFER whose CPD is one the provider offered lately for another order is recognised by its
    /// bytes (``RecentDocuments``, Sources/CPNPCore/Model/CPDInterning.swift): remembered once, and
    /// the next orders negotiate as the first did.
    @Test(.timeLimit(.minutes(1)))
    func anOfferOfADocumentOfferedLatelyIsRecognised() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let (client, store) = try await makeClient(pki: pki)
        let request = try loadExample("l3vpn-3-sites.json")
        var offered: [CPD] = []
        // Two rounds: by the third, the demo network lacks capacity and the offer leaves a site out.
        for round in 0..<2 {
            let id = try await client.quote(request, to: try provider.peer())
            guard case .offer(let offer) = try await client.awaitOffer(id) else { Issue.record("no offer"); return }
            #expect(offer.offeredCPD != request, "an offer the request does not recognise")
            offered.append(offer.offeredCPD)
            #expect(await client.recentDocuments.documents == [offered[0]], "round \(round)")
            let agreement = try await client.accept(id)
            #expect(agreement.acceptedCPD == offer.offeredCPD)
            #expect(try store.order(customerOrderID: id)?.state == .completed)
        }
        #expect(Set(offered.map(\.compactJSON)).count == 1)
        await client.shutdown()
        await provider.stop()
    }

    /// On its transport's event loop, the engine takes each message from the socket's thread and
    /// hands its own to the transport without waiting: the same negotiation, the same outcome.
    @Test(.timeLimit(.minutes(1)))
    func onItsTransportsEventLoopTheEngineNegotiatesTheSame() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let (client, store) = try await makeClient(pki: pki, onEventLoop: true)
        for _ in 0..<3 {
            let id = try await client.quote(try loadExample("l3vpn-3-sites.json"), to: try provider.peer())
            guard case .offer(let offer) = try await client.awaitOffer(id) else { Issue.record("no offer"); return }
            let agreement = try await client.accept(id)
            #expect(agreement.acceptedCPD == offer.offeredCPD)
            #expect(try store.order(customerOrderID: id)?.state == .completed)
            #expect(try serverState(provider, agreement.providerOrderID) == .completed)
        }
        await client.shutdown()
        await provider.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func declineIsAcknowledgedAndReleasesTheOffer() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let (client, _) = try await makeClient(pki: pki)
        let id = try await client.quote(try loadExample("l3vpn-3-sites.json"), to: try provider.peer())
        guard case .offer(let offer) = try await client.awaitOffer(id) else { Issue.record("no offer"); return }
        #expect(try !provider.store.reservations(providerOrderID: offer.providerOrderID).isEmpty)
        try await client.decline(id, reasons: [.unacceptableGap])
        await client.settle(timeout: .seconds(10))
        let m = try await client.order(id)
        #expect(m.state == .cancelled)
        #expect(m.transaction?.pending == nil, "the ACK of the DECLINE arrived")
        #expect(try serverState(provider, offer.providerOrderID) == .cancelled)
        #expect(try provider.store.reservations(providerOrderID: offer.providerOrderID).isEmpty)
        await client.shutdown()
        await provider.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func withdrawUpdateAndActivateAnAgreedOrder() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let (client, _) = try await makeClient(pki: pki)
        let request = try loadExample("l3vpn-3-sites.json")
        let explicit = InformationElements(negotiationOptions: NegotiationOptions(activationType: .explicit))
        let id = try await client.quote(request, informationElements: explicit, to: try provider.peer())
        guard case .offer = try await client.awaitOffer(id) else { Issue.record("no offer"); return }
        let first = try await client.accept(id)
        #expect(first.activationType == .explicit && first.activation == .inactive)

        // ACTIVATE now, at a time, off (figure 16).
        #expect(try await client.activate(id, .now).activation == .active)
        #expect(try provider.store.order(providerOrderID: first.providerOrderID)?.machine.agreement?.activation == .active)
        let later = SystemWallClock().now().adding(.seconds(3_600))
        #expect(try await client.activate(id, .at(later)).activation == .scheduled(later))
        #expect(try await client.activate(id, .deactivate).activation == .inactive)
        #expect(try provider.store.order(providerOrderID: first.providerOrderID)?.machine.agreement?.activation == .inactive)

        // UPDATE (figure 15): a new nonce, the new CPD agreed on both sides.
        var json = request.json
        let edited = json.setNumber(at: "components[0].profiles[0].capacity[1].incoming-bandwidth-mbps", 50)
        #expect(edited)
        let smaller = try CPD(json: json, at: .root)
        try await client.update(id, request: smaller, informationElements: explicit)
        guard case .offer(let updateOffer) = try await client.awaitOffer(id) else { Issue.record("no update offer"); return }
        #expect(updateOffer.nonce != first.nonce)
        let second = try await client.accept(id)
        #expect(second.acceptedCPD == updateOffer.offeredCPD && second.acceptedCPD != first.acceptedCPD)
        #expect(try provider.store.order(providerOrderID: first.providerOrderID)?.machine.agreement?.acceptedCPD == second.acceptedCPD)

        // WITHDRAW (figure 14).
        try await client.withdraw(id)
        #expect(try await client.order(id).agreement == nil)
        #expect(try serverState(provider, first.providerOrderID) == .cancelled)
        #expect(try provider.store.reservations(providerOrderID: first.providerOrderID).isEmpty)
        await client.shutdown()
        await provider.stop()
    }

    /// An order above 1 Gbps waits for the operator; the server's expected offer time (1 h) exceeds the
    /// client's expected response time, so the client's more-time policy decides (§9.1.7, figure 11/12).
    @Test(.timeLimit(.minutes(1)))
    func moreTimePolicyGrantsWithinItsBoundAndCancelsBeyond() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let request = try aboveOneGbps()

        var generous = fastConfiguration(expectedResponseTime: .seconds(10))
        generous.moreTime = GrantMoreTime(upTo: .seconds(7_200))
        let (patient, _) = try await makeClient(pki: pki, configuration: generous)
        let a = try await patient.quote(request, to: try provider.peer())
        let waiting = try await patient.awaitFirstAnswer(a)
        #expect(waiting.state == .serverProcessing)
        let poid = try #require(waiting.providerOrderID)
        #expect(try serverState(provider, poid) == .awaitingProcessing)
        _ = await provider.engine.administrativeDecision(poid, approve: true)
        guard case .offer = try await patient.awaitOffer(a) else { Issue.record("no offer after approval"); return }
        try await patient.decline(a, reasons: [])
        await patient.settle(timeout: .seconds(5))

        var strict = fastConfiguration(expectedResponseTime: .seconds(10))
        strict.moreTime = GrantMoreTime(upTo: .seconds(60))
        let (impatient, _) = try await makeClient(pki: pki, configuration: strict)
        let b = try await impatient.quote(request, to: try provider.peer())
        #expect(try await impatient.awaitOffer(b) == .ended(.offerTimeRefused))
        await impatient.settle(timeout: .seconds(5))
        let refused = try await impatient.order(b)
        #expect(refused.state == .cancelled && refused.transaction?.pending == nil, "the server acknowledged the CANCEL")
        #expect(try serverState(provider, refused.providerOrderID) == .cancelled)
        await patient.shutdown()
        await impatient.shutdown()
        await provider.stop()
    }

    /// PROCESSING received reveals nothing: it is stored with the order's next save, the OFFER's,
    /// in order and at its own time (RFC 8921 §8.11).
    @Test(.timeLimit(.minutes(1)))
    func processingReceivedIsStoredWithTheOffer() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let (client, store) = try await makeClient(pki: pki)
        let id = try await client.quote(try loadExample("l3vpn-3-sites.json"), to: try provider.peer())
        guard case .offer = try await client.awaitOffer(id) else { Issue.record("no offer"); return }
        let stored = try #require(try store.order(customerOrderID: id))
        #expect(stored.state == .offerReceived)
        #expect(stored.revision == 2, "the QUOTATION's save, then the OFFER's with PROCESSING's change")
        let events = try store.events(customerOrderID: id)
        #expect(events.map(\.event) == ["processing approved", "QUOTATION sent", "PROCESSING received", "OFFER received"])
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.at <= $1.at })
        await client.shutdown()
        await provider.stop()
    }

    /// A change kept unsaved is written before anyone sees it: the order asked for, or shutdown.
    @Test(.timeLimit(.minutes(1)))
    func anUnsavedChangeIsStoredBeforeItIsShown() async throws {
        let provider = try await InProcessProvider(pki: pki)
        var patient = CPNPClientEngine.Configuration()
        patient.expectedResponseTime = .seconds(7_200)
        for shownBy in ["order", "shutdown"] {
            let (client, store) = try await makeClient(pki: pki, configuration: patient)
            let id = try await client.quote(try aboveOneGbps(), to: try provider.peer())
            let deadline = ContinuousClock.now + .seconds(20)
            while client.statistics.snapshot.messagesReceived == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(50))
            #expect(try store.order(customerOrderID: id)?.state == .pqoSent, "PROCESSING received, not stored yet")
            if shownBy == "order" {
                #expect(try await client.order(id).state == .serverProcessing)
            } else {
                await client.shutdown()
            }
            let stored = try #require(try store.order(customerOrderID: id))
            #expect(stored.state == .serverProcessing, "stored before \(shownBy)")
            #expect(try store.events(customerOrderID: id).map(\.event) == ["processing approved", "QUOTATION sent", "PROCESSING received"])
            if shownBy == "order" { await client.shutdown() }
        }
        await provider.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func cancelWhileTheServerProcesses() async throws {
        let provider = try await InProcessProvider(pki: pki)
        var patient = CPNPClientEngine.Configuration()
        patient.moreTime = GrantMoreTime(upTo: .seconds(7_200))
        let (client, _) = try await makeClient(pki: pki, configuration: patient)
        let id = try await client.quote(try aboveOneGbps(), to: try provider.peer())
        let m = try await client.awaitFirstAnswer(id)
        #expect(m.state == .serverProcessing)
        let after = try await client.cancel(id)
        #expect(after.state == .cancelled && after.lastEnd == .cancelledByClient && after.transaction?.pending == nil)
        #expect(try serverState(provider, m.providerOrderID) == .cancelled)
        await client.shutdown()
        await provider.stop()
    }

    /// The provider disappears after the agreement: the WITHDRAW goes unanswered, the engine raises the
    /// administrator alarm of §11.1.2 (an error naming it, the counter, the order's flag).
    @Test(.timeLimit(.minutes(1)))
    func anUnansweredWithdrawRaisesTheAlarm() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let (client, _) = try await makeClient(pki: pki, configuration: fastConfiguration())
        let id = try await client.quote(try loadExample("l3vpn-3-sites.json"), to: try provider.peer())
        guard case .offer = try await client.awaitOffer(id) else { Issue.record("no offer"); return }
        _ = try await client.accept(id)
        await provider.stop()
        let before = client.statistics.snapshot.unconfirmedWithdrawals
        await #expect(throws: CPNPClientError.withdrawalUnconfirmed(id)) { try await client.withdraw(id, timeout: .seconds(30)) }
        #expect(client.statistics.snapshot.unconfirmedWithdrawals == before + 1)
        #expect(try await client.order(id).withdrawalUnconfirmed)
        await client.shutdown()
    }

    /// A wait ends at its time limit; a wait that ends first (the order cancelled at its expected
    /// response time) leaves no limit armed.
    @Test(.timeLimit(.minutes(1)))
    func aWaitEndsAtItsTimeLimit() async throws {
        let silent = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: quietLogger("cpnp-client-test"))
        let (client, _) = try await makeClient(pki: pki, configuration: fastConfiguration(expectedResponseTime: .seconds(2)))
        let id = try await client.quote(
            try loadExample("l3vpn-3-sites.json"), to: try CPNPPeer.server(host: "127.0.0.1", port: silent.localAddress?.port ?? 0))
        let started = ContinuousClock.now
        await #expect(throws: CPNPClientError.timedOut("a test")) {
            try await client.wait(id, "a test", timeout: .milliseconds(300)) { _ in false }
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(10))
        let machine = try await client.wait(id, "the order to end", timeout: .seconds(600)) { $0.state == .cancelled }
        #expect(machine.state == .cancelled)
        #expect(client.waiterLimits.count == 0)
        await client.shutdown()
        await silent.close()
    }

    /// A server that never answers: the client cancels at the expected response time (§11.1.1).
    @Test(.timeLimit(.minutes(1)))
    func aSilentServerEndsAtTheExpectedResponseTime() async throws {
        let silent = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: quietLogger("cpnp-client-test"))
        let (client, _) = try await makeClient(pki: pki, configuration: fastConfiguration(expectedResponseTime: .seconds(2)))
        let started = ContinuousClock.now
        let id = try await client.quote(
            try loadExample("l3vpn-3-sites.json"), to: try CPNPPeer.server(host: "127.0.0.1", port: silent.localAddress?.port ?? 0))
        let outcome = try await client.awaitOffer(id)
        let elapsed = ContinuousClock.now - started
        #expect(outcome == .ended(.expectedResponseTimeElapsed) || outcome == .ended(.noResponse))
        #expect(elapsed < .seconds(10))
        #expect(try await client.order(id).state == .cancelled)
        await client.shutdown()
        await silent.close()
    }

    /// The order, its ids and nonce survive a restart of the client: a new engine on the same store and
    /// local port accepts the offer the old one received.
    @Test(.timeLimit(.minutes(1)))
    func aRestartedClientAcceptsFromTheStore() async throws {
        let provider = try await InProcessProvider(pki: pki)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-client-\(UUID().uuidString).sqlite").path
        let (first, _) = try await makeClient(pki: pki, store: try ClientOrderStore(path: file))
        let id = try await first.quote(try loadExample("l3vpn-3-sites.json"), to: try provider.peer())
        guard case .offer(let offer) = try await first.awaitOffer(id) else { Issue.record("no offer"); return }
        try await first.acknowledgeOffer(id)
        let port = try await first.order(id).transaction?.session.local.port
        await first.shutdown()

        let (second, _) = try await makeClient(pki: pki, store: try ClientOrderStore(path: file), port: Int(port ?? 0))
        #expect(try await second.resume(id).state == .offerProcessing)
        let agreement = try await second.accept(id)
        #expect(agreement.nonce == offer.nonce && agreement.providerOrderID == offer.providerOrderID)
        #expect(try serverState(provider, offer.providerOrderID) == .completed)
        await second.shutdown()
        await provider.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func bestOfThreeAcceptsTheCheapestAndDeclinesTheOthersWithReason2() async throws {
        var providers: [InProcessProvider] = []
        for fee in [1_500, 900, 1_200] as [Int64] {
            providers.append(try await InProcessProvider(pki: pki, configuration: providerConfiguration(baseFee: CPNPDecimal(fee))))
        }
        let (client, store) = try await makeClient(pki: pki)
        let result = try await client.negotiate(
            try loadExample("l3vpn-3-sites.json"),
            informationElements: InformationElements(negotiationOptions: NegotiationOptions(costRequested: true)),
            servers: try providers.map { try $0.peer() }, strategy: BestOfN(), group: "best-of-3")
        let winner = try #require(result.winner)
        #expect(winner.server == (try providers[1].peer()))
        #expect(result.agreement != nil)
        #expect(Set(result.declined.map(\.1)) == [.conflictWithAnotherOffer] && result.declined.count == 2)
        await client.settle(timeout: .seconds(5))
        for (i, p) in providers.enumerated() {
            let poid = result.rounds[0].candidates[i].offer?.providerOrderID
            #expect(try serverState(p, poid) == (i == 1 ? .completed : .cancelled))
        }
        #expect(try store.orders(group: "best-of-3").count == 3)
        await client.shutdown()
        for p in providers { await p.stop() }
    }

    /// Figure 4's N steps: the MRS link has 200 Mbps; a request for at least 300 gets a partial offer,
    /// the request is relaxed to it, and the second round's offer is accepted.
    @Test(.timeLimit(.minutes(1)))
    func multiRoundRelaxesTheRequestTowardsAPartialOffer() async throws {
        let provider = try await InProcessProvider(pki: pki)
        var json = try loadExample("l3vpn-3-sites.json").json
        let edited = json.setValue(at: "components[0].profiles[0].capacity[2].incoming-bandwidth-mbps", .object(JSONObject([("min", .number(300))])))
        #expect(edited)
        let request = try CPD(json: json, at: .root)
        let (client, _) = try await makeClient(pki: pki)
        let result = try await client.negotiate(
            request, servers: [try provider.peer()],
            strategy: MultiRound(base: AcceptIfSatisfies(), maximumRounds: 3, adjust: RelaxTowardsOffer(floor: 0.5)))
        #expect(result.rounds.count == 2)
        let partial = try #require(result.rounds[0].candidates[0].comparison)
        #expect(!partial.satisfies)
        #expect(result.rounds[1].request != request)
        #expect(result.agreement != nil)
        #expect(result.declined.count == 1 && result.declined[0].1 == .unacceptableGap)
        await client.shutdown()
        await provider.stop()
    }
}

/// The L3VPN example with CE-PAR-1 moved to the 10 Gbps link and 2 Gbps incoming: the demo policy
/// sends it to its operator (approval above 1 Gbps).
func aboveOneGbps() throws -> CPD {
    var json = try loadExample("l3vpn-3-sites.json").json
    let moved = json.setValue(at: "components[0].profiles[0].customer-nodes[0].link-identifiers", .array([.string("PE-PAR-1:xe-0/0/0")]))
    let raised = json.setNumber(at: "components[0].profiles[0].capacity[0].incoming-bandwidth-mbps", 2_000)
    guard moved, raised else { throw CPNPClientError.invalidArgument("the example changed") }
    return try CPD(json: json, at: .root)
}

extension JSONValue {
    /// Test helper: sets a number at a dotted path such as `components[0].profiles[0].capacity[1].x`.
    mutating func setNumber(at path: String, _ value: Int64) -> Bool { setValue(at: path, .number(CPNPDecimal(value))) }

    mutating func setValue(at path: String, _ value: JSONValue) -> Bool {
        var components: [JSONPath.Component] = []
        for part in path.split(separator: ".") {
            var name = Substring(part)
            var indexes: [Int] = []
            while let open = name.lastIndex(of: "["), let close = name.lastIndex(of: "]"), open < close,
                let i = Int(name[name.index(after: open)..<close])
            {
                indexes.insert(i, at: 0)
                name = name[..<open]
            }
            if !name.isEmpty { components.append(.key(String(name))) }
            components += indexes.map { .index($0) }
        }
        return set(components[...], value)
    }

    private mutating func set(_ path: ArraySlice<JSONPath.Component>, _ value: JSONValue) -> Bool {
        guard let first = path.first else { self = value; return true }
        switch (self, first) {
        case (.object(var o), .key(let k)):
            var child = o[k] ?? .null
            guard child.set(path.dropFirst(), value) else { return false }
            o[k] = child
            self = .object(o)
            return true
        case (.array(var a), .index(let i)) where a.indices.contains(i):
            guard a[i].set(path.dropFirst(), value) else { return false }
            self = .array(a)
            return true
        default:
            return false
        }
    }
}

/// A new order's customer order id carries the engine's clock first: ids made later sort later
/// (CustomerOrderID.timeOrdered), and none repeats.
@Test(.timeLimit(.minutes(1)))
func newCustomerOrderIDsSortByTheirCreationTime() async throws {
    let start = CPNPTimestamp(millisecondsSinceEpoch: 1_796_541_133_024)
    let clock = ManualClock(start)
    let transport = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: quietLogger("cpnp-client-test"))
    let client = CPNPClientEngine(transport: transport, store: try ClientOrderStore.inMemory(), clock: clock, logger: quietLogger("cpnp-client-test"))
    var ids: [CustomerOrderID] = []
    for step in 0..<20 {
        clock.set(start.adding(.milliseconds(Int64(step))))
        ids.append(await client.newCustomerOrderID())
    }
    #expect(ids == ids.sorted())
    #expect(Set(ids).count == ids.count)
    let hexTime = String(UInt64(start.millisecondsSinceEpoch), radix: 16)
    #expect(ids[0].rawValue.hasPrefix("co-" + String(repeating: "0", count: 12 - hexTime.count) + hexTime), "\(ids[0])")
    await transport.close()
}

/// RFC 8921 §13: an answer from a server the order was not sent to is discarded silently, even with
/// the right identifiers; the same answer from the right server is taken.
@Test(.timeLimit(.minutes(1)))
func answersFromAnotherServerAreDiscarded() async throws {
    let server = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: quietLogger("cpnp-client-test"))
    let forger = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: quietLogger("cpnp-client-test"))
    let clientTransport = try await PlainUDPTransport.bind(host: "127.0.0.1", port: 0, logger: quietLogger("cpnp-client-test"))
    let client = CPNPClientEngine(transport: clientTransport, store: try ClientOrderStore.inMemory(), logger: quietLogger("cpnp-client-test"))
    await client.start()
    let id = try await client.quote(
        try loadExample("l3vpn-3-sites.json"), to: try CPNPPeer.server(host: "127.0.0.1", port: server.localAddress?.port ?? 0))
    var inbound = server.inbound.makeAsyncIterator()
    guard let received = await inbound.next(), case .quotation(let q) = try CPNPCodec.decode(received.bytes) else {
        Issue.record("no QUOTATION"); return
    }
    var rng = SystemRandomNumberGenerator()
    let offer = CPNPMessage.offer(
        OfferMessage(
            sequenceNumber: .randomInitial(using: &rng), transactionID: q.transactionID, customerOrderID: q.customerOrderID,
            providerOrderID: ProviderOrderID("po-forged-or-not")!, nonce: .random(using: &rng),
            validityOfferTime: SystemWallClock().now().adding(.seconds(600)), offeredCPD: q.requestedCPD))
    let clientPeer = CPNPPeer(address: clientTransport.localAddress!)
    try await forger.send(CPNPCodec.encode(offer), to: clientPeer)
    try await Task.sleep(for: .milliseconds(300))
    #expect(try await client.order(id).state == .pqoSent, "the forged OFFER was discarded")
    try await server.send(CPNPCodec.encode(offer), to: received.peer)
    guard case .offer(let taken) = try await client.awaitOffer(id) else { Issue.record("the real OFFER was not taken"); return }
    #expect(taken.providerOrderID.rawValue == "po-forged-or-not")
    await client.shutdown()
    await server.close()
    await forger.close()
}
