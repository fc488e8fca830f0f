// Retransmissions to an order that already ended (RFC 8921 §11.4): the final answer was lost, the
// client repeats its request, and the stored machine answers it again; the order never re-opens.
import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation

@Suite("Server engine: answers for ended orders")
struct ClosedOrderTests {
    struct Setup {
        let store: ServerOrderStore
        let sink = CollectingSink()
        let engine: CPNPServerEngine
        let acme = TestCustomer("acme", port: 40_200)
        init() throws {
            store = try ServerOrderStore(path: TestPaths().database)
            engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        }
    }

    /// The client's retransmission timer fired: the machine resends its pending request.
    static func retransmit(_ order: inout ClientOrderStateMachine, _ s: Setup, now: CPNPTimestamp) async -> [CPNPMessage] {
        let a = order.timerFired(.retransmission, now: now + .seconds(1))
        #expect(a.contains { if case .send = $0 { true } else { false } })
        await s.acme.deliver(a, to: s.engine)
        return await s.acme.receive(s.sink, into: &order, engine: s.engine, now: now + .seconds(1))
    }

    @Test func theAckOfAWithdrawIsSentAgainWhenTheWithdrawIsRepeated() async throws {
        let s = try Setup()
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-withdrawn")!)
        try await s.acme.agree(&order, CPD.marseille(min: 10, max: 50), engine: s.engine, sink: s.sink, now: now)
        let poid = try #require(order.providerOrderID)

        // WITHDRAW: PROCESSING and ACK are both lost.
        await s.acme.deliver(try order.withdraw(session: s.acme.clientSession, now: now, using: &rng), to: s.engine)
        #expect(s.sink.take(for: s.acme.endpoint).map(\.method) == [.processing, .ack])
        let closed = try #require(try s.store.order(providerOrderID: poid))
        #expect(closed.state == .cancelled && !closed.isOpen)

        // The repeated WITHDRAW gets the stored ACK (Empty CPD), not a FAIL; nothing is written.
        let answers = await Self.retransmit(&order, s, now: now)
        guard case .ack(let ack)? = answers.first, answers.count == 1 else { Issue.record("expected one ACK, got \(answers.map(\.method))"); return }
        #expect(ack.cpd?.isEmpty == true)
        #expect(order.agreement == nil && order.transaction?.pending == nil)
        #expect(try s.store.order(providerOrderID: poid)?.revision == closed.revision)
        #expect(await s.engine.openOrderCount == 0)
    }

    @Test func theAckOfADeclineIsSentAgainAndAStaleMessageIsDiscarded() async throws {
        let s = try Setup()
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-declined")!)
        await s.acme.deliver(
            try order.quote(requestedCPD: CPD.marseille(min: 10, max: 50), session: s.acme.clientSession, now: now, using: &rng), to: s.engine)
        await s.acme.receive(s.sink, into: &order, engine: s.engine, now: now)
        let offer = try #require(order.offer)
        let decline = try order.decline(reasons: [.unacceptableGap], now: now)
        await s.acme.deliver(decline, to: s.engine)
        #expect(s.sink.take(for: s.acme.endpoint).map(\.method) == [.ack])

        let answers = await Self.retransmit(&order, s, now: now)
        #expect(answers.map(\.method) == [.ack])
        #expect(order.transaction?.pending == nil)

        // An ACCEPT of the declined offer after the fact: FAIL 1, and the order stays Cancelled.
        let declineSN = try #require(decline.compactMap { if case .send(let m) = $0 { m.sequenceNumber } else { nil } }.first)
        let late = CPNPMessage.accept(
            AcceptMessage(
                sequenceNumber: declineSN &+ 1, transactionID: offer.transactionID, customerOrderID: offer.customerOrderID,
                providerOrderID: offer.providerOrderID, nonce: offer.nonce, acceptedCPD: offer.offeredCPD))
        await s.engine.receive(s.acme.datagram(late))
        guard case .fail(let f)? = s.sink.take(for: s.acme.endpoint).first else { Issue.record("no FAIL"); return }
        #expect(f.statusCode == .messageValidationError)
        let stored = try #require(try s.store.order(providerOrderID: offer.providerOrderID))
        #expect(try stored.state == .cancelled && !stored.isOpen && s.store.reservations(providerOrderID: offer.providerOrderID).isEmpty)
        #expect(await s.engine.openOrderCount == 0)
    }
}
