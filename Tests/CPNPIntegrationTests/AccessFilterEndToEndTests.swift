// Access filters on UPDATE, WITHDRAW and ACTIVATE against a real cpnpd over DTLS (RFC 8921 §13,
// Table 6): a customer profile limited to 127.0.0.1/32; the same customer certificate from
// 127.0.0.2 (Linux routes all of 127/8 to lo) gets FAIL 3 and changes nothing, from 127.0.0.1 it
// succeeds. The order is read back with `cpnpd admin show`.
import Testing
import CPNPCore
import CPNPTesting
import Foundation

@Suite("Access filters against a real cpnpd", .enabled(if: Daemon.binary != nil, "cpnpd not built"), .serialized)
struct AccessFilterEndToEndTests {
    /// The demo configuration with acme admitted from 127.0.0.1 only.
    static func configuration() throws -> String {
        let demo = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        let acmePrefixes = #"source-prefixes: [127.0.0.0/8, "::1/128", 10.0.0.0/8, 192.0.2.0/24]"#
        guard demo.contains(acmePrefixes) else { throw DaemonError(description: "acme's source-prefixes changed in Examples/cpnpd.yaml") }
        return demo.replacingOccurrences(of: acmePrefixes, with: "source-prefixes: [127.0.0.1/32]")
    }

    /// The first message `actions` send.
    static func message(_ actions: [ClientOrderStateMachine.Action]) throws -> CPNPMessage {
        guard let m = actions.compactMap({ if case .send(let m) = $0 { m } else { nil } }).first else {
            throw DaemonError(description: "the command sent nothing")
        }
        return m
    }

    @Test(.timeLimit(.minutes(2)))
    func updateWithdrawAndActivateFromADisallowedAddressGetFail3AndChangeNothing() async throws {
        try await withDaemon(configuration: try Self.configuration()) { daemon, acme in
            var (order, _) = try await BadInputEndToEndTests.agreement(acme, explicit: true)
            let poid = try #require(order.providerOrderID)
            let agreed = try await daemon.show(poid)
            #expect(agreed.state == "Completed")
            #expect(agreed.agreement?.hasPrefix("activation explicit, inactive") == true, "\(agreed)")
            let ordersBefore = try await daemon.admin(["orders"])

            // The same customer certificate, from an address outside the filter.
            let outsider = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port, host: "127.0.0.2")
            defer { Task { await outsider.close() } }
            var rng = SystemRandomNumberGenerator()
            let now = TestClient.now()
            var copy = order
            let update = try Self.message(
                copy.update(
                    requestedCPD: CPD.marseille("60"), expectedResponseTime: now + .seconds(60), session: outsider.session, now: now, using: &rng))
            copy = order
            let withdraw = try Self.message(copy.withdraw(session: outsider.session, now: now, using: &rng))
            copy = order
            let activate = try Self.message(copy.activate(.now, session: outsider.session, now: now, using: &rng))
            for message in [update, withdraw, activate] {
                let (before, answer) = try await outsider.roundTrip(message)
                #expect(before.isEmpty, "\(message.method): \(before.map(\.method))")
                guard case .fail(let fail) = answer else { Issue.record("\(message.method) answered \(answer.method)"); continue }
                #expect(fail.statusCode == .authorizationFailed, "\(message.method): \(fail)")
                #expect(fail.providerOrderID == poid)
                #expect(fail.diagnostic?.contains("source address") == true, "\(fail.diagnostic ?? "")")
            }
            // Nothing changed: the order, its reservations and agreement, and the list of orders. The
            // audit trail records each refusal (the refused transactions never open later, §11.3).
            let refused = try await daemon.show(poid)
            #expect(refused.standing == agreed.standing)
            #expect(refused.audit.filter { $0.contains("refused: FAIL 3") }.count == 3)
            #expect(try await daemon.admin(["orders"]).split(separator: "\n").count == ordersBefore.split(separator: "\n").count)

            // A new QUOTATION from there is refused the same way (decision check 2;
            // the refused order is recorded as ended, like any refused QUOTATION).
            var stranger = ClientOrderStateMachine(customerOrderID: customerOrderID("outside"))
            let quotation = try Self.message(
                stranger.quote(
                    requestedCPD: CPD.marseille("10"), session: outsider.session, now: TestClient.now(), using: &rng))
            guard case .fail(let quotationFail) = try await outsider.roundTrip(quotation).answer else {
                Issue.record("the QUOTATION from 127.0.0.2 was not refused")
                return
            }
            #expect(quotationFail.statusCode == .authorizationFailed)
            #expect(try await daemon.show(poid).standing == agreed.standing)

            // From 127.0.0.1 the same three requests succeed.
            try await acme.act(&order) { try $0.activate(.now, session: acme.session, now: TestClient.now(), using: &rng) }
            try await acme.run(&order, until: { _ in acme.events.contains(.activationConfirmed(.now)) })
            #expect(try await daemon.show(poid).agreement?.hasPrefix("activation explicit, active") == true)

            try await acme.act(&order) {
                try $0.update(
                    requestedCPD: CPD.marseille("60"), expectedResponseTime: TestClient.now() + .seconds(60),
                    session: acme.session, now: TestClient.now(), using: &rng)
            }
            try await acme.run(&order, until: { $0.state == .offerReceived })
            try await acme.act(&order) { try $0.accept(now: TestClient.now()) }
            try await acme.run(&order, until: { $0.state == .completed })
            let updated = try await daemon.show(poid)
            #expect(Set(updated.reservations("committed").values) == ["60"], "\(updated)")

            try await acme.act(&order) { try $0.withdraw(session: acme.session, now: TestClient.now(), using: &rng) }
            try await acme.run(&order, until: { _ in acme.events.contains(.withdrawalConfirmed) })
            #expect(try await daemon.show(poid).state == "Cancelled")
        }
    }
}
