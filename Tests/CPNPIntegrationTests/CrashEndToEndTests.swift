// Crashes of cpnpd at exact points, made deterministic by its test-only `CPNPD_FAULT` hook (the
// process `_exit`s there, as after kill -9), then a restart on the same database: the client's
// retransmitted ACCEPT completes the order exactly once, with exact reservations.
import Testing
import CPNPCore
import CPNPTesting
import Foundation

@Suite("Crash recovery of a real cpnpd", .enabled(if: Daemon.binary != nil, "cpnpd not built"), .serialized)
struct CrashEndToEndTests {
    /// Quote → OFFER → ACCEPT with a daemon set to crash at `fault`; returns the order, its offered
    /// reservations, and the server's view right after the crash.
    static func acceptIntoCrash(
        _ daemon: Daemon, _ client: TestClient, _ prefix: String
    ) async throws -> (order: ClientOrderStateMachine, offered: [String: String], crashed: OrderView) {
        var order = ClientOrderStateMachine(customerOrderID: customerOrderID(prefix))
        var rng = SystemRandomNumberGenerator()
        try await client.act(&order) {
            try $0.quote(requestedCPD: try loadExample("l3vpn-3-sites.json"), session: client.session, now: TestClient.now(), using: &rng)
        }
        try await client.run(&order, until: { $0.state == .offerReceived })
        let poid = try #require(order.providerOrderID)
        let offered = try await daemon.show(poid).reservations("offered")
        #expect(offered.count == 6)

        try await client.act(&order) { try $0.accept(now: TestClient.now()) }
        #expect(try await daemon.waitForExit() == Daemon.faultExitStatus)
        #expect(daemon.logText.contains("test fault"))
        return (order, offered, try await daemon.show(poid))
    }

    /// After the restart: the ACCEPT retransmitted until answered, one Completed, committed = offered.
    static func completesExactlyOnce(
        _ daemon: Daemon, _ client: TestClient, _ order: inout ClientOrderStateMachine, offered: [String: String]
    ) async throws {
        try await daemon.restart()
        try await client.run(&order, until: { $0.state == .completed })
        let poid = try #require(order.providerOrderID)
        guard case .ack(let ack)? = client.received.last else { Issue.record("no ACK"); return }
        #expect(ack.cpd == order.agreement?.acceptedCPD)
        let view = try await daemon.show(poid)
        #expect(view.state == "Completed")
        #expect(view.entries(into: "Completed") == 1 && view.entries(into: "AcceptReceived") == 1)
        #expect(view.reservations("committed") == offered && view.reservations("offered").isEmpty)
        #expect(try await daemon.orderLines(poid).count == 1)
    }

    /// kill -9 between the commit of Completed and the ACK: the restarted daemon answers the
    /// retransmitted ACCEPT with the stored ACK.
    @Test(.timeLimit(.minutes(1)))
    func crashBeforeSendingTheAck() async throws {
        try await withDaemon(environment: ["CPNPD_FAULT": "crash-before-send:ack"]) { daemon, client in
            var (order, offered, crashed) = try await Self.acceptIntoCrash(daemon, client, "crash-ack")
            // Committed before the ACK would have revealed it.
            #expect(crashed.state == "Completed" && crashed.reservations("committed") == offered)
            #expect(order.state == .acceptSent)
            try await Self.completesExactlyOnce(daemon, client, &order, offered: offered)
        }
    }

    /// kill -9 after a WITHDRAW was stored but before its PROCESSING (the agreement not yet released):
    /// the restarted daemon releases it and answers the retransmitted WITHDRAW with the ACK.
    @Test(.timeLimit(.minutes(1)))
    func crashAfterAWithdrawWasStored() async throws {
        try await withDaemon { daemon, client in
            var order = ClientOrderStateMachine(customerOrderID: customerOrderID("crash-withdraw"))
            var rng = SystemRandomNumberGenerator()
            try await client.act(&order) {
                try $0.quote(requestedCPD: CPD.marseille("60"), session: client.session, now: TestClient.now(), using: &rng)
            }
            try await client.run(&order, until: { $0.state == .offerReceived })
            try await client.act(&order) { try $0.accept(now: TestClient.now()) }
            try await client.run(&order, until: { $0.state == .completed })
            let poid = try #require(order.providerOrderID)

            // The next PROCESSING the daemon sends is the WITHDRAW's: crash right before it.
            daemon.kill9()
            try await daemon.restart(environment: ["CPNPD_FAULT": "crash-before-send:processing"])
            try await client.act(&order) { try $0.withdraw(session: client.session, now: TestClient.now(), using: &rng) }
            try await client.run(&order, until: { _ in !daemon.process.isRunning })
            #expect(try await daemon.waitForExit() == Daemon.faultExitStatus)
            let crashed = try await daemon.show(poid)
            #expect(crashed.state == "Completed" && crashed.auditContains("WITHDRAW received") && crashed.reservations("committed").count == 2)

            try await daemon.restart()
            try await client.run(&order, until: { _ in client.events.contains(.withdrawalConfirmed) })
            guard case .ack(let ack)? = client.received.last else { Issue.record("no ACK"); return }
            #expect(ack.cpd?.isEmpty == true)
            let view = try await daemon.show(poid)
            #expect(view.state == "Cancelled" && view.isClosed && !view.hasReservations)
            #expect(view.entries(into: "Cancelled") == 1 && view.audit.filter { $0.contains("WITHDRAW received") }.count == 1)
        }
    }

    /// kill -9 once the ACCEPT is received (AcceptReceived) but before Completed is committed: that
    /// state revealed nothing and was never written (commits happen before a message reveals a change),
    /// so the restarted daemon holds the offer, still reserved, and the retransmitted ACCEPT completes it.
    @Test(.timeLimit(.minutes(1)))
    func crashBetweenAcceptReceivedAndCompleted() async throws {
        try await withDaemon(environment: ["CPNPD_FAULT": "crash-after-commit:AcceptReceived"]) { daemon, client in
            var (order, offered, crashed) = try await Self.acceptIntoCrash(daemon, client, "crash-accept")
            #expect(crashed.state == "OfferProposed" && crashed.reservations("offered") == offered)
            try await Self.completesExactlyOnce(daemon, client, &order, offered: offered)
        }
    }
}
