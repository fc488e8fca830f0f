// Repeated and retransmitted requests against a real cpnpd over DTLS (RFC 8921 §11.3, §11.4,
// Table 6): a second WITHDRAW of a withdrawn order is refused, and a retransmitted QUOTATION that
// was refused gets the same FAIL and creates nothing, whatever became of its order.
import CPNPTesting
import Testing
import CPNPCore
import Foundation

@Suite("Repeats and retransmissions against a real cpnpd", .enabled(if: Daemon.binary != nil, "cpnpd not built"), .serialized)
struct RepeatsEndToEndTests {
    @Test(.timeLimit(.minutes(1)))
    func aSecondWithdrawOfAWithdrawnOrderGetsFail1() async throws {
        try await withDaemon { daemon, client in
            var (order, _) = try await BadInputEndToEndTests.agreement(client)
            let agreement = try #require(order.agreement)
            var rng = SystemRandomNumberGenerator()
            try await client.act(&order) { try $0.withdraw(session: client.session, now: TestClient.now(), using: &rng) }
            try await client.run(&order, until: { _ in client.events.contains(.withdrawalConfirmed) })
            let withdrawn = try await daemon.show(agreement.providerOrderID)
            #expect(withdrawn.state == "Cancelled" && !withdrawn.hasReservations)

            // Same customer order id, provider order id and nonce, in a new transaction: the order is
            // not in Completed any more (Table 6), so FAIL 1, and its retransmission the same FAIL.
            let again = CPNPMessage.withdraw(
                WithdrawMessage(
                    sequenceNumber: .randomInitial(using: &rng), transactionID: .random(using: &rng), customerOrderID: agreement.customerOrderID,
                    providerOrderID: agreement.providerOrderID, nonce: agreement.nonce))
            let fail = try #require(try await BadInputEndToEndTests.expectFail(client, again))
            #expect(fail.statusCode == .messageValidationError)
            try await Task.sleep(for: .milliseconds(300))  // past the cached-answer rate limit
            let (_, repeated) = try await client.roundTrip(again)
            #expect(repeated == .fail(fail))
            let after = try await daemon.show(agreement.providerOrderID)
            #expect(after.state == "Cancelled" && !after.hasReservations)
            #expect(after.auditContains("WITHDRAW refused: FAIL 1"))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aRetransmittedRefusedQuotationGetsTheSameFailAndCreatesNothing() async throws {
        try await withDaemon { daemon, client in
            var rng = SystemRandomNumberGenerator()
            // A site where the demo provider has no network presence: FAIL 6.
            let berlin = CPD.site("CE-BER-1", site: "BERLIN-1", link: "PE-BER-1:xe-0/0/0", bandwidth: "10")
            let quotation = CPNPMessage.quotation(
                QuotationMessage(
                    sequenceNumber: .randomInitial(using: &rng), transactionID: .random(using: &rng), customerOrderID: customerOrderID("berlin"),
                    requestedCPD: berlin))
            let bytes = CPNPCodec.encode(quotation)
            let fail = try #require(try await BadInputEndToEndTests.expectFail(client, quotation))
            #expect(fail.statusCode == .networkPresenceError)
            let ordersBefore = try await daemon.admin(["orders"])
            for _ in 0..<3 {
                try await Task.sleep(for: .milliseconds(300))
                try await client.sendRaw(bytes)  // exactly the same datagram
                let (before, answer) = try await client.roundTrip(BadInputEndToEndTests.probe())
                #expect(before == [.fail(fail)], "the retransmission must get the cached FAIL, got \(before.map(\.method))")
                #expect(answer.method == .fail)
            }
            #expect(try await daemon.admin(["orders"]) == ordersBefore)
            #expect(ordersBefore.split(separator: "\n").filter { $0.contains(fail.providerOrderID?.rawValue ?? "-") }.count == 1)
        }
    }
}
