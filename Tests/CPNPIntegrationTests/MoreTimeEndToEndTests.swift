// RFC 8921 Figures 11 and 12 against a real cpnpd: an order held for an operator (above 1000 Mbps
// in the demo policy) and short timers from a YAML configuration, so that the server asks for more
// time two seconds after the PROCESSING.
import CPNPTesting
import Testing
import CPNPCore
import Foundation
import Synchronization

@Suite("More time while an operator decides, against a real cpnpd", .enabled(if: Daemon.binary != nil, "cpnpd not built"), .serialized)
struct MoreTimeEndToEndTests {
    /// Expected offer time 12 s; ask 10 s before it for 10 s more, once: the client has 10 s to answer.
    /// (With 5 s the client's answer missed the deadline twice under the full suite on a loaded 2-CPU
    /// machine, the test process being one of the busiest there.)
    static func configuration() throws -> String {
        try Daemon.demoConfiguration(
            timers: """
                retransmission: {initial: 1s, max-retries: 3}
                offer-validity: 10m
                expected-offer-time: 60s
                approval-expected-offer-time: 12s
                more-time: {request-before: 10s, extension: 10s, max-requests: 1}
                """)
    }

    /// Quotes 2000 Mbps in Paris and runs until the server asked for more time and the client answered.
    static func heldOrder(_ client: TestClient, grant: Bool) async throws -> ClientOrderStateMachine {
        client.grantsMoreTime.withLock { $0 = grant }
        var order = ClientOrderStateMachine(customerOrderID: customerOrderID(grant ? "fig11" : "fig12"))
        var rng = SystemRandomNumberGenerator()
        try await client.act(&order) { try $0.quote(requestedCPD: CPD.paris(2000), session: client.session, now: TestClient.now(), using: &rng) }
        try await client.run(
            &order, timeout: .seconds(20), until: { _ in client.events.contains { if case .moreTimeRequested = $0 { true } else { false } } })
        return order
    }

    /// Figure 11: the client grants the extension; the operator approves after the first expected
    /// offer time has passed, and the OFFER still arrives.
    @Test(.timeLimit(.minutes(1)))
    func figure11MoreTimeGrantedThenApproved() async throws {
        try await withDaemon(configuration: try Self.configuration()) { daemon, client in
            var order = try await Self.heldOrder(client, grant: true)
            let poid = try #require(order.providerOrderID)
            let first = try #require(client.received.first { $0.method == .processing })
            guard case .processing(let p1) = first, let initial = p1.expectedOfferTime else { Issue.record("no expected offer time"); return }
            guard case .processing(let p2)? = client.received.last, let extended = p2.expectedOfferTime else { Issue.record("no request"); return }
            #expect(extended == initial + .seconds(10))
            #expect(order.expectedOfferTime == extended)

            // The grant is durable; wait until the first expected offer time is over.
            try await daemon.waitForOrder(poid) { $0.auditContains("more time granted until") }
            while TestClient.now() < initial + .milliseconds(500) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(try await daemon.show(poid).state == "AwaitingProcessing")

            #expect(try await daemon.admin(["approve", poid.rawValue]) == "\(poid): approved: offer sent\n")
            try await client.run(&order, until: { $0.state == .offerReceived })
            try await client.act(&order) { try $0.accept(now: TestClient.now()) }
            try await client.run(&order, until: { $0.state == .completed })
            let view = try await daemon.show(poid)
            #expect(view.state == "Completed" && view.entries(into: "Completed") == 1)
            #expect(view.reservations("committed") == ["PE-PAR-1:xe-0/0/0/incoming": "2000", "PE-PAR-1:xe-0/0/0/outgoing": "2000"])
        }
    }

    /// `cpnpd check-config` names a request for more time that would come after the deadline by its path.
    @Test(.timeLimit(.minutes(1)))
    func checkConfigNamesABadMoreTimeSettingByPath() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-more-time-\(UUID().uuidString).yaml")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(
            try Daemon.demoConfiguration(
                timers: """
                    approval-expected-offer-time: 3s
                    more-time: {request-before: 5s}
                    """
            ).utf8
        ).write(to: file)
        let (status, text) = try await Daemon.command(["check-config", file.path])
        #expect(status == 1)
        #expect(text.contains("timers.more-time.request-before: must be shorter than timers.approval-expected-offer-time"), "\(text)")
        let good = try Self.configuration()
        try Data(good.utf8).write(to: file)
        #expect(try await Daemon.command(["check-config", file.path]).status == 0)
    }

    /// Figure 12: the client refuses with FAIL 7; nobody approves before the first expected offer
    /// time, and the order ends then, holding nothing.
    @Test(.timeLimit(.minutes(1)))
    func figure12MoreTimeRejectedTheOrderEnds() async throws {
        try await withDaemon(configuration: try Self.configuration()) { daemon, client in
            let order = try await Self.heldOrder(client, grant: false)
            let poid = try #require(order.providerOrderID)
            #expect(order.state == .serverProcessing)
            try await daemon.waitForOrder(poid) { $0.auditContains("more time rejected") }
            let ended = try await daemon.waitForOrder(poid) { $0.isClosed }
            #expect(ended.state == "Cancelled" && !ended.hasReservations)
            #expect(ended.auditContains("expected offer time elapsed without an offer"))
            #expect(ended.audit.filter { $0.contains("more time requested") }.count == 1)
            #expect(try await daemon.admin(["approve", poid.rawValue]) == "\(poid): unknown or closed order\n")
        }
    }
}
