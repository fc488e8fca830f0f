// Two engines on one PostgreSQL store (docs/deployment.md): what one instance holds in memory of an
// order another one took over is dropped at its next upkeep, so the customer's retransmission that
// reaches it is answered from the stored order.
import CPNPCore
import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation
import Testing

@Suite(.serialized)
struct SharedEngineTests {
    @Test(.timeLimit(.minutes(2)))
    func aStaleCopyIsDroppedAndARetransmissionAnsweredFromTheStore() async throws {
        let postgres = try await TemporaryPostgres.start(name: "cpnp-shared-engine")
        defer { postgres.stop(removeDirectory: true) }
        try await postgres.createDatabase("shared")
        let url = postgres.url(database: "shared")
        let start = SystemWallClock().now()
        let sinkA = CollectingSink(), sinkB = CollectingSink()
        let engineA = CPNPServerEngine(
            configuration: testConfiguration(), store: try ServerOrderStore(location: url), sink: sinkA, logger: quietLogger("cpnpd-test"))
        // B lives 10 s later: to it, A's heartbeat is older than the lease (A stalled).
        let clockB = ManualClock(start)
        let engineB = CPNPServerEngine(
            configuration: testConfiguration(), store: try ServerOrderStore(location: url), sink: sinkB, clock: clockB,
            logger: quietLogger("cpnpd-test"))
        #expect(engineA.sharesStore && engineB.sharesStore)
        _ = try await engineA.recover()
        _ = try await engineB.recover()

        // The customer quotes through A, which offers: A drives the order and holds it in memory.
        let acme = TestCustomer("acme", port: 40_900)
        var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("acme-shared-1")!)
        var rng = SystemRandomNumberGenerator()
        await acme.deliver(
            try order.quote(requestedCPD: CPD.marseille(min: 10, max: 20), session: acme.clientSession, now: start, using: &rng), to: engineA)
        await acme.receive(sinkA, into: &order, engine: engineA, now: start)
        #expect(order.state == .offerReceived)
        #expect(await engineA.residentOrderCount == 1)

        // A stalls past the lease: B takes the order over, and the customer's ACCEPT reaches B.
        clockB.set(start.adding(.seconds(10)))
        #expect(await engineB.maintainSharedStore() == 1)
        var accept: CPNPMessage?
        let accepting = try order.accept(now: start)
        for case .send(let m) in accepting { accept = m }
        await acme.deliver(accepting, to: engineB)
        let answers = await acme.receive(sinkB, into: &order, engine: engineB, now: start)
        // (B's takeover sent the OFFER again, as a restart would: a copy the customer discards.)
        #expect(answers.map(\.method).filter { $0 != .offer } == [.ack])
        #expect(order.state == .completed)

        // A wakes: its upkeep finds the order's revision moved and drops its copy.
        #expect(await engineA.maintainSharedStore() == 0, "B is alive: nothing to take over")
        #expect(await engineA.residentOrderCount == 0)

        // The ACK from B was lost, and the customer's retransmission reaches A: answered at once from
        // the stored agreement, not taken for an ACCEPT of an offer A still believes pending.
        await engineA.receive(acme.datagram(try #require(accept)))
        let again = sinkA.take(for: acme.endpoint)
        #expect(again.map(\.method) == [.ack])
        #expect(again.first?.transactionID == accept?.transactionID)
        let poid = try #require(order.providerOrderID)
        #expect(try ServerOrderStore(location: url).order(providerOrderID: poid)?.machine.state == .completed)
    }
}
