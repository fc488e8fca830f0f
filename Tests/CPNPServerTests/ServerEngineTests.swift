// The server engine in process: real store (SQLite file), demo policy, real order machines on the
// client side; every message goes through the codec as bytes.
import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation
import Synchronization

@Suite("Server engine (in process)")
struct ServerEngineTests {
    @Test func quoteOfferAcceptCompletesAndCommitsReservations() async throws {
        let (store, sink, engine) = try engineUnderTest()
        let acme = TestCustomer("acme", port: 40_001)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-1")!)
        let cpd = try loadExample("l3vpn-3-sites.json")
        let ies = InformationElements(negotiationOptions: NegotiationOptions(costRequested: true))
        await acme.deliver(
            try order.quote(
                requestedCPD: cpd, informationElements: ies, expectedResponseTime: now.adding(.seconds(60)),
                session: acme.clientSession, now: now, using: &rng), to: engine)
        let answers = await acme.receive(sink, into: &order, engine: engine, now: now)
        #expect(answers.map(\.method) == [.processing, .offer])
        let offer = try #require(order.offer)
        #expect(offer.offeredCPD.isConcrete)
        #expect(offer.informationElements?.cost != nil)
        // The offer is durable and its capacity reserved before the client sees it.
        let poid = offer.providerOrderID
        #expect(try store.order(providerOrderID: poid)?.state == .offerProposed)
        let offered = try store.reservations(providerOrderID: poid)
        #expect(!offered.offered.isEmpty && offered.committed.isEmpty)

        await acme.deliver(try order.accept(now: now), to: engine)
        let ack = await acme.receive(sink, into: &order, engine: engine, now: now)
        #expect(ack.map(\.method) == [.ack])
        #expect(order.state == .completed)
        let stored = try #require(try store.order(providerOrderID: poid))
        #expect(stored.state == .completed)
        // Both sides agree on the document and its identifiers (each stamps its own agreement time).
        let serverAgreement = try #require(stored.machine.agreement)
        let clientAgreement = try #require(order.agreement)
        #expect(serverAgreement.acceptedCPD == clientAgreement.acceptedCPD && serverAgreement.nonce == clientAgreement.nonce)
        #expect(serverAgreement.providerOrderID == clientAgreement.providerOrderID && serverAgreement.activation == clientAgreement.activation)
        let committed = try store.reservations(providerOrderID: poid)
        #expect(committed.offered.isEmpty)
        #expect(committed.committed.map(\.mbps).reduce(0, +) == offered.offered.map(\.mbps).reduce(0, +))
        #expect(try store.outbox(providerOrderID: poid).map(\.kind) == [.agreement, .activation])
        let audit = try store.audit(providerOrderID: poid).map(\.to)
        #expect(audit.contains(.offerProposed) && audit.last == .completed)
    }

    /// An OFFER made at once follows a PROCESSING that announces no later time than the QUOTATION's
    /// EXPECTED_RESPONSE_TIME: a later one would ask the customer for more time (RFC 8921 §9.2.2).
    @Test func anImmediateOffersProcessingAsksForNoMoreTimeThanTheCustomerGave() async throws {
        let configuration = testConfiguration()
        let (_, sink, engine) = try engineUnderTest(configuration: configuration)
        let acme = TestCustomer("acme", port: 40_001)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        let soon = now.adding(configuration.timers.expectedOfferTime / 3)
        for (index, deadline) in [soon, nil].enumerated() {
            var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-\(index)")!)
            await acme.deliver(
                try order.quote(
                    requestedCPD: try loadExample("l3vpn-3-sites.json"), expectedResponseTime: deadline, session: acme.clientSession, now: now,
                    using: &rng), to: engine)
            let answers = await acme.receive(sink, into: &order, engine: engine, now: now)
            #expect(answers.map(\.method) == [.processing, .offer])
            guard case .processing(let processing)? = answers.first else { continue }
            let announced = try #require(processing.expectedOfferTime)
            if let deadline {
                #expect(announced == deadline, "the customer's deadline, not the configured \(configuration.timers.expectedOfferTime)")
            } else {
                #expect(announced >= now.adding(configuration.timers.expectedOfferTime), "no deadline given: the configured time")
            }
            #expect(order.state == .offerReceived && order.pendingTimeDecision == nil)
        }
    }

    @Test func concurrentQuotationsNeverOverbookALink() async throws {
        let (store, sink, engine) = try engineUnderTest()
        // Each asks 10…50 Mbps on the 200 Mbps Marseille link.
        let request = CPD.marseille(min: 10, max: 50)
        let now = SystemWallClock().now()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let c = TestCustomer("acme", port: UInt16(41_000 + i))
                    var rng = SystemRandomNumberGenerator()
                    var o = ClientOrderStateMachine(customerOrderID: CustomerOrderID("load-\(i)")!)
                    let a = try! o.quote(requestedCPD: request, session: c.clientSession, now: now, using: &rng)
                    await c.deliver(a, to: engine)
                }
            }
        }
        let totals = try store.reservedTotals()
        for (key, total) in totals {
            let link = try #require(ServerConfiguration.demo.policy.links.first { $0.id == key.linkID })
            #expect(total <= (key.direction == .incoming ? link.capacity.incoming : link.capacity.outgoing), "\(key) overbooked: \(total)")
        }
        let marseilleIn = totals[Reservation.Key("PE-MRS-1:xe-1/0/0", .incoming)] ?? 0
        #expect(marseilleIn == 200)  // fully used, never more
        let all = sink.sent.withLock { $0.map { try! CPNPCodec.decode($0.bytes) } }
        // OFFERs are retransmitted while the clients stay silent: count orders, not messages.
        let offers = Set(all.compactMap { if case .offer(let o) = $0 { o.customerOrderID } else { nil } }).count
        let fails = all.compactMap { if case .fail(let f) = $0 { f.statusCode } else { nil } }
        #expect(
            offers >= 4 && offers + fails.count == 200,
            "offers \(offers), fails \(fails.count), processing \(all.filter { $0.method == .processing }.count)")
        #expect(fails.allSatisfy { $0 == .outOfResources })
    }

    @Test func restartRecoversOpenOrdersAndTheNegotiationCompletes() async throws {
        let paths = TestPaths()
        let acme = TestCustomer("acme", port: 40_002)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-restart")!)
        let sink = CollectingSink()
        do {
            let engine = CPNPServerEngine(
                configuration: testConfiguration(), store: try ServerOrderStore(path: paths.database), sink: sink, logger: quietLogger("cpnpd-test"))
            await acme.deliver(
                try order.quote(requestedCPD: CPD.marseille(min: 10, max: 50), session: acme.clientSession, now: now, using: &rng), to: engine)
            await acme.receive(sink, into: &order, engine: engine, now: now)
            #expect(order.state == .offerReceived)
        }
        // A new engine on the same database: the order, its timers and reservations come back.
        let store = try ServerOrderStore(path: paths.database)
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        #expect(try await engine.recover() == 1)
        await acme.deliver(try order.accept(now: now), to: engine)
        await acme.receive(sink, into: &order, engine: engine, now: now)
        #expect(order.state == .completed)
        #expect(try store.openOrders().first?.state == .completed)
        #expect(try store.reservedTotals(kind: .committed)[Reservation.Key("PE-MRS-1:xe-1/0/0", .incoming)] == 50)
    }

    @Test func badInputGetsFailOrSilenceAndChangesNothing() async throws {
        let (store, sink, engine) = try engineUnderTest()
        let acme = TestCustomer("acme", port: 40_003)
        let globex = TestCustomer("globex", port: 40_004)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-2")!)
        await acme.deliver(
            try order.quote(requestedCPD: CPD.marseille(min: 10, max: 50), session: acme.clientSession, now: now, using: &rng), to: engine)
        await acme.receive(sink, into: &order, engine: engine, now: now)
        await acme.deliver(try order.accept(now: now), to: engine)
        await acme.receive(sink, into: &order, engine: engine, now: now)
        let ag = try #require(order.agreement)
        let before = try #require(try store.order(providerOrderID: ag.providerOrderID))

        // Malformed JSON: silence.
        await engine.receive(InboundDatagram(bytes: Array("{\"version\":1,".utf8), session: acme.serverSession, identity: acme.identity))
        #expect(sink.take(for: acme.endpoint).isEmpty)
        // A WITHDRAW from another customer with acme's identifiers: FAIL 1, acme's order untouched.
        let w = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 1, transactionID: .random(using: &rng), customerOrderID: ag.customerOrderID,
                providerOrderID: ag.providerOrderID, nonce: ag.nonce))
        await engine.receive(globex.datagram(w))
        let answer = sink.take(for: globex.endpoint)
        #expect(answer.map(\.method) == [.fail])
        // Wrong nonce from acme itself: FAIL 1 naming the nonce.
        let bad = CPNPMessage.withdraw(
            WithdrawMessage(
                sequenceNumber: 1, transactionID: .random(using: &rng), customerOrderID: ag.customerOrderID,
                providerOrderID: ag.providerOrderID, nonce: Nonce("ffffffffffffffffffffffffffffffff")!))
        await engine.receive(acme.datagram(bad))
        guard case .fail(let f)? = sink.take(for: acme.endpoint).first else { Issue.record("no FAIL"); return }
        #expect(f.statusCode == .messageValidationError && f.diagnostic?.contains("nonce") == true)
        // A replayed ACCEPT (stale transaction): nothing changes.
        let after = try #require(try store.order(providerOrderID: ag.providerOrderID))
        #expect(after.machine.agreement == before.machine.agreement && after.state == .completed)
        #expect(try store.reservations(providerOrderID: ag.providerOrderID) == store.reservations(providerOrderID: before.providerOrderID))
        // An unknown order: FAIL 1.
        let unknown = CPNPMessage.decline(
            DeclineMessage(
                sequenceNumber: 5, transactionID: .random(using: &rng), customerOrderID: CustomerOrderID("nope")!,
                providerOrderID: ProviderOrderID("po-nope")!, nonce: ag.nonce))
        await engine.receive(acme.datagram(unknown))
        #expect(sink.take(for: acme.endpoint).map(\.method) == [.fail])
    }

    @Test func administrativeApprovalAndRejection() async throws {
        let (store, sink, engine) = try engineUnderTest()
        let acme = TestCustomer("acme", port: 40_005)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        // Above 1000 Mbps: held for an operator, the client gets PROCESSING with a later expected offer time.
        var big = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-big")!)
        await acme.deliver(try big.quote(requestedCPD: CPD.paris(mbps: 2000), session: acme.clientSession, now: now, using: &rng), to: engine)
        #expect(await acme.receive(sink, into: &big, engine: engine, now: now).map(\.method) == [.processing])
        let poid = try #require(big.providerOrderID)
        #expect(await engine.ordersAwaitingApproval == [poid])
        // `cpnpd admin approve` writes a request; the engine applies it.
        _ = try store.enqueueAdminRequest(providerOrderID: poid, action: .approve, requestedBy: "test", at: now)
        await engine.processAdminRequests()
        #expect(await acme.receive(sink, into: &big, engine: engine, now: now).map(\.method) == [.offer])
        #expect(big.state == .offerReceived)

        var other = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-big-2")!)
        await acme.deliver(try other.quote(requestedCPD: CPD.paris(mbps: 3000), session: acme.clientSession, now: now, using: &rng), to: engine)
        await acme.receive(sink, into: &other, engine: engine, now: now)
        let poid2 = try #require(other.providerOrderID)
        _ = try store.enqueueAdminRequest(
            providerOrderID: poid2, action: .reject(.administrativelyProhibited, diagnostic: "not this quarter"), requestedBy: "test", at: now)
        await engine.processAdminRequests()
        let fail = await acme.receive(sink, into: &other, engine: engine, now: now)
        guard case .fail(let f)? = fail.first else { Issue.record("no FAIL"); return }
        #expect(f.statusCode == .administrativelyProhibited && f.diagnostic == "not this quarter")
        #expect(other.state == .cancelled)
        #expect(try store.order(providerOrderID: poid2)?.state == .cancelled)
    }

    /// A QUOTATION whose CPD bytes are those of a valid QUOTATION received lately, for another order
    /// from another address, is recognised by them (``RecentDocuments``,
    /// Sources/CPNPCore/Model/CPDInterning.swift) and negotiated as the first was. An invalid
    /// QUOTATION's CPD is not remembered.
    @Test func aQuotationOfADocumentQuotedLatelyIsRecognised() async throws {
        let (store, sink, engine) = try engineUnderTest()
        let acme = TestCustomer("acme", port: 40_001)
        let other = TestCustomer("acme", port: 40_002)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        let cpd = try loadExample("l3vpn-3-sites.json")
        var first = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-recent")!)
        await acme.deliver(try first.quote(requestedCPD: cpd, session: acme.clientSession, now: now, using: &rng), to: engine)
        #expect(await acme.receive(sink, into: &first, engine: engine, now: now).map(\.method) == [.processing, .offer])
        #expect(await engine.recentDocuments.documents == [cpd])
        var second = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-recent-2")!)
        await other.deliver(try second.quote(requestedCPD: cpd, session: other.clientSession, now: now, using: &rng), to: engine)
        #expect(await other.receive(sink, into: &second, engine: engine, now: now).map(\.method) == [.processing, .offer])
        #expect(await engine.recentDocuments.documents.count == 1, "recognised, so not remembered a second time")
        #expect(second.offer?.offeredCPD == first.offer?.offeredCPD)
        #expect(await engine.recentOffers.documents.count == 1, "the second offer is the first's value")
        let secondID = try #require(second.providerOrderID)
        let stored = try #require(try store.order(providerOrderID: secondID))
        #expect(stored.machine.requestedCPD == cpd && stored.providerOrderID != first.providerOrderID)
        // A QUOTATION whose CPD has an error (a component without profiles): FAIL, nothing remembered.
        let invalid = CPDFixtures.cpd(#"{"components":[{"profiles":[]}]}"#)
        await engine.receive(
            acme.datagram(
                .quotation(
                    QuotationMessage(
                        sequenceNumber: 0, transactionID: .random(using: &rng), customerOrderID: CustomerOrderID("acme-invalid")!,
                        requestedCPD: invalid))))
        guard case .fail(let fail)? = sink.take(for: acme.endpoint).first else { Issue.record("no FAIL"); return }
        #expect(fail.statusCode == .messageValidationError)
        #expect(await engine.recentDocuments.documents == [cpd])
    }

    /// An ACCEPT whose CPD bytes are the OFFER's is recognised by them (Sources/CPNPCore/Codec/MessageCodec.swift,
    /// `parse(_:limits:documents:)`); one that writes the same CPD otherwise is parsed and compared by
    /// structure. Both are agreed; a different CPD is refused either way.
    @Test func anAcceptIsAgreedWhetherItsCPDBytesAreTheOffersOrNot() async throws {
        let (store, sink, engine) = try engineUnderTest()
        let acme = TestCustomer("acme", port: 40_001)
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        let cpd = try loadExample("l3vpn-3-sites.json")
        /// The ACCEPT's bytes, its CPD's first member written after a space (an equal CPD, other bytes).
        func respaced(_ bytes: [UInt8]) throws -> [UInt8] {
            let text = String(decoding: bytes, as: UTF8.self)
            let respaced = text.replacingOccurrences(of: #""cpd":{"components""#, with: #""cpd":{ "components""#)
            #expect(respaced != text)
            return Array(respaced.utf8)
        }
        for (index, rewrite) in [false, true].enumerated() {
            var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-bytes-\(index)")!)
            await acme.deliver(try order.quote(requestedCPD: cpd, session: acme.clientSession, now: now, using: &rng), to: engine)
            #expect(await acme.receive(sink, into: &order, engine: engine, now: now).map(\.method) == [.processing, .offer])
            for case .send(let accept) in try order.accept(now: now) {
                let bytes = CPNPCodec.encode(accept)
                await engine.receive(
                    InboundDatagram(bytes: rewrite ? try respaced(bytes) : bytes, session: acme.serverSession, identity: acme.identity))
            }
            #expect(await acme.receive(sink, into: &order, engine: engine, now: now).map(\.method) == [.ack], "rewritten: \(rewrite)")
            #expect(order.state == .completed)
            #expect(try store.order(providerOrderID: order.providerOrderID!)?.state == .completed)
        }
        // An ACCEPT of another CPD, byte for byte valid, is refused (RFC 8921 §8.11).
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-bytes-other")!)
        await acme.deliver(try order.quote(requestedCPD: cpd, session: acme.clientSession, now: now, using: &rng), to: engine)
        await acme.receive(sink, into: &order, engine: engine, now: now)
        for case .send(.accept(var accept)) in try order.accept(now: now) {
            accept.acceptedCPD = CPD.paris(mbps: 1)
            await engine.receive(acme.datagram(.accept(accept)))
        }
        let answers = sink.take(for: acme.endpoint)
        guard case .fail(let fail)? = answers.first else { Issue.record("no FAIL: \(answers.map(\.method))"); return }
        #expect(fail.statusCode == .messageValidationError && fail.diagnostic?.contains("differs from the offered CPD") == true)
    }
}

extension CPD {
    /// One site in Marseille on the 200 Mbps link, asking `min…max` Mbps both ways.
    static func marseille(min: Int, max: Int) -> CPD {
        site("CE-MRS-1", site: "MARSEILLE-BR", link: "PE-MRS-1:xe-1/0/0", bandwidth: "{\"min\":\(min),\"max\":\(max)}")
    }

    /// One site in Paris on the 10 Gbps link, `mbps` both ways.
    static func paris(mbps: Int) -> CPD {
        site("CE-PAR-9", site: "PARIS-DC1", link: "PE-PAR-1:xe-0/0/0", bandwidth: "\(mbps)")
    }
}
