// Live state bounded by what is in flight (docs/design/storage.md): an agreement at rest leaves the
// engine's memory, comes back with its next message, and a restart loads only the orders in flight.
import Testing
import CPNPCore
import CPNPPolicy
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation

@Suite("Server engine: agreements at rest are read back, not kept in memory")
struct AtRestOrderTests {
    @Test func anAgreementAtRestLeavesMemoryAndItsNextMessagesReadItBack() async throws {
        let (store, sink, engine) = try engineUnderTest()
        let acme = TestCustomer("acme", port: 40_800)
        let now = SystemWallClock().now()
        var orders: [ClientOrderStateMachine] = []
        var rng = SystemRandomNumberGenerator()
        var accept: CPNPMessage?
        for i in 0..<3 {
            var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-rest-\(i)")!)
            await acme.deliver(
                try order.quote(requestedCPD: CPD.marseille(min: 10, max: 20), session: acme.clientSession, now: now, using: &rng), to: engine)
            await acme.receive(sink, into: &order, engine: engine, now: now)
            let accepting = try order.accept(now: now)
            for case .send(let m) in accepting { accept = m }
            await acme.deliver(accepting, to: engine)
            await acme.receive(sink, into: &order, engine: engine, now: now)
            #expect(order.state == .completed)
            orders.append(order)
        }
        #expect(await engine.residentOrderCount == 0)
        #expect(await engine.openOrderCount == 3)
        let poid = try #require(orders[0].providerOrderID)
        #expect(await engine.machine(poid)?.state == .completed, "introspection reads an order at rest from the store")
        var (running, scanned) = await engine.reservedTotals()
        #expect(running == scanned && !running.isEmpty)

        // The last ACCEPT's ACK was lost: its retransmission reads the order back and gets the cached ACK.
        await engine.receive(acme.datagram(try #require(accept)))
        #expect(sink.take(for: acme.endpoint).map(\.method) == [.ack])
        #expect(await engine.residentOrderCount == 0)
        // A copy the order discards (an ACK it never asked for) reads it back too, and it leaves again.
        let stray = CPNPMessage.ack(
            AckMessage(
                sequenceNumber: 1, transactionID: .random(using: &rng), customerOrderID: orders[0].customerOrderID,
                providerOrderID: try #require(orders[0].providerOrderID)))
        await engine.receive(acme.datagram(stray))
        #expect(sink.take(for: acme.endpoint).isEmpty)
        #expect(await engine.residentOrderCount == 0)

        // A WITHDRAW reads the agreement back; once withdrawn it is closed and its capacity released.
        await acme.deliver(try orders[0].withdraw(session: acme.clientSession, now: now, using: &rng), to: engine)
        await acme.receive(sink, into: &orders[0], engine: engine, now: now)
        #expect(orders[0].state == .cancelled)
        #expect(try store.order(providerOrderID: poid)?.isOpen == false)
        #expect(await engine.openOrderCount == 2)
        #expect(await engine.residentOrderCount == 0)
        (running, scanned) = await engine.reservedTotals()
        #expect(running == scanned)
        #expect(try store.reservationTotalMismatches() == [])

        // An UPDATE of another agreement at rest is decided against the totals of every order.
        await acme.deliver(
            try orders[2].update(
                requestedCPD: CPD.marseille(min: 30, max: 40), expectedResponseTime: now + .seconds(30), session: acme.clientSession, now: now,
                using: &rng), to: engine)
        await acme.receive(sink, into: &orders[2], engine: engine, now: now)
        #expect(orders[2].state == .offerReceived)
        #expect(await engine.residentOrderCount == 1)
        await acme.deliver(try orders[2].accept(now: now), to: engine)
        await acme.receive(sink, into: &orders[2], engine: engine, now: now)
        #expect(orders[2].state == .completed)
        #expect(await engine.residentOrderCount == 0)
        (running, scanned) = await engine.reservedTotals()
        #expect(running == scanned)
        #expect(try store.reservationTotalMismatches() == [])
    }

    @Test func aRestartLoadsOnlyTheOrdersInFlightAndCountsTheOthers() async throws {
        let paths = TestPaths()
        let acme = TestCustomer("acme", port: 40_801)
        let now = SystemWallClock().now()
        var inFlight = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-in-flight")!)
        do {
            let store = try ServerOrderStore(path: paths.database)
            let sink = CollectingSink()
            let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
            for i in 0..<4 {
                var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-agreed-\(i)")!)
                try await acme.agree(&order, CPD.marseille(min: 10, max: 20), engine: engine, sink: sink, now: now)
                #expect(order.state == .completed)
            }
            // One more order stops at the OFFER: its validity timer keeps it in flight.
            var rng = SystemRandomNumberGenerator()
            await acme.deliver(
                try inFlight.quote(requestedCPD: CPD.marseille(min: 10, max: 20), session: acme.clientSession, now: now, using: &rng), to: engine)
            await acme.receive(sink, into: &inFlight, engine: engine, now: now)
            #expect(inFlight.state == .offerReceived)
        }
        let store = try ServerOrderStore(path: paths.database)
        #expect(try store.residentOrders().map(\.customerOrderID.rawValue) == ["acme-in-flight"])
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: testConfiguration(maxOpenOrders: 5), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        #expect(try await engine.recover() == 1)
        #expect(await engine.residentOrderCount == 1)
        #expect(await engine.openOrderCount == 5)
        let (running, scanned) = await engine.reservedTotals()
        #expect(running == scanned && !running.isEmpty)

        // The open-order cap counts the orders at rest: a sixth order is refused (RFC 8921 §13).
        var sixth = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-sixth")!)
        var rng = SystemRandomNumberGenerator()
        await acme.deliver(
            try sixth.quote(requestedCPD: CPD.marseille(min: 10, max: 20), session: acme.clientSession, now: now, using: &rng), to: engine)
        let answers = await acme.receive(sink, into: &sixth, engine: engine, now: now)
        #expect(answers.contains { if case .fail(let f) = $0 { f.statusCode == .administrativelyProhibited } else { false } }, "\(answers)")

        // The order in flight completes after the restart.
        await acme.deliver(try inFlight.accept(now: now), to: engine)
        await acme.receive(sink, into: &inFlight, engine: engine, now: now)
        #expect(inFlight.state == .completed)
        #expect(await engine.residentOrderCount == 0)
        #expect(try store.reservationTotalMismatches() == [])
    }
}
