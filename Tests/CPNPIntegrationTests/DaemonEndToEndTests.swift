// End to end: a real `cpnpd` process on loopback with its embedded defaults (demo policy, dev PKI
// made on first run, SQLite), and a client running the core's ClientOrderStateMachine over the real
// DTLS transport with the dev client certificate. Bounded by deadlines; the daemon is always stopped.
import Testing
import CPNPCore
import CPNPTesting
import Foundation

@Suite(.enabled(if: Daemon.binary != nil, "cpnpd not found next to the test bundle: run `swift build` before `swift test`"), .serialized)
struct DaemonEndToEndTests {
    @Test(.timeLimit(.minutes(1)))
    func quoteOfferAcceptReachesCompletedOverDTLS() async throws {
        try await withDaemon { daemon, client in
            var order = ClientOrderStateMachine(customerOrderID: customerOrderID("e2e"))
            var rng = SystemRandomNumberGenerator()
            let cpd = try loadExample("l3vpn-3-sites.json")
            let now = TestClient.now()
            try await client.act(&order) {
                try $0.quote(
                    requestedCPD: cpd, informationElements: InformationElements(negotiationOptions: NegotiationOptions(costRequested: true)),
                    expectedResponseTime: now.adding(.seconds(60)), session: client.session, now: now, using: &rng)
            }
            try await client.run(&order, until: { $0.state == .offerReceived })
            let offer = try #require(order.offer)
            #expect(offer.offeredCPD.comparison(against: cpd).satisfies)
            #expect(offer.informationElements?.cost?.currency == "EUR")

            try await client.act(&order) { try $0.accept(now: TestClient.now()) }
            try await client.run(&order, until: { $0.state == .completed })
            #expect(order.agreement?.acceptedCPD == offer.offeredCPD)

            // The operator sees the order Completed with its audit trail.
            let show = try await daemon.show(try #require(order.providerOrderID))
            #expect(show.state == "Completed")
            #expect(show.auditContains("OfferProposed") && show.auditContains("AcceptReceived"))

            // SIGTERM: graceful shutdown, exit status 0.
            #expect(await daemon.terminate() == 0)
        }
    }

    /// kill -9 between OFFER and ACCEPT: after a restart on the same database the order, its timers
    /// and its reservation come back, and the client's ACCEPT completes the negotiation.
    @Test(.timeLimit(.minutes(1)))
    func killedBetweenOfferAndAcceptTheNegotiationCompletesAfterRestart() async throws {
        try await withDaemon { daemon, client in
            var order = ClientOrderStateMachine(customerOrderID: customerOrderID("crash"))
            var rng = SystemRandomNumberGenerator()
            try await client.act(&order) {
                try $0.quote(requestedCPD: try loadExample("l3vpn-3-sites.json"), session: client.session, now: TestClient.now(), using: &rng)
            }
            try await client.run(&order, until: { $0.state == .offerReceived })
            let poid = try #require(order.providerOrderID)
            let offered = try await daemon.show(poid).reservations("offered")
            #expect(!offered.isEmpty)

            daemon.kill9()
            try await daemon.restart()

            try await client.act(&order) { try $0.accept(now: TestClient.now()) }
            try await client.run(&order, until: { $0.state == .completed })
            let show = try await daemon.show(poid)
            #expect(show.state == "Completed")
            // Exactly the offered amounts, now committed: nothing lost, nothing doubled.
            #expect(show.reservations("committed") == offered && show.reservations("offered").isEmpty)
            #expect(try await daemon.orderLines(poid).count == 1)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anUnknownClientIsRefusedWithFail3() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        // A certificate from the same CA but not a customer profile: authenticated, not authorized.
        try await daemon.issueClientCertificate("initech")
        let client = try await TestClient(pki: daemon.pkiDirectory, name: "initech", serverPort: daemon.port)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("initech-1")!)
        var rng = SystemRandomNumberGenerator()
        try await client.act(&order) {
            try $0.quote(requestedCPD: try loadExample("l3vpn-3-sites.json"), session: client.session, now: TestClient.now(), using: &rng)
        }
        try await client.run(&order, until: { $0.state == .cancelled })
        await client.close()
        #expect(order.lastEnd == .failed(.authorizationFailed, diagnostic: "the client identity is not a known customer"))
    }
}
