// Group commit in the engine (docs/design/storage.md): datagrams handled as one batch are committed in one store
// transaction per round, nothing is sent before its change is durable, a failing change is rolled back
// alone with its messages withheld, and the inbox drains in bounded batches.
import CPNPCore
import CPNPPolicy
@testable import CPNPStorage
@testable import CPNPServer
import CPNPRuntime
import CPNPTesting
import Foundation
import GRDB
import Synchronization
import Testing

@Suite("Server engine group commit")
struct GroupCommitEngineTests {
    /// A sink that, at every send, reads the store: an OFFER or ACK must reveal a state already durable.
    final class DurabilityCheckingSink: ServerMessageSink {
        let store: ServerOrderStore
        let inner = CollectingSink()
        let violations = Mutex<[String]>([])
        let checked = Mutex(0)
        init(store: ServerOrderStore) { self.store = store }

        func send(_ bytes: [UInt8], on session: CPNPSession) async {
            let m = try! CPNPCodec.decode(bytes)
            if let poid = m.providerOrderID {
                let stored = try? store.order(providerOrderID: poid)
                let ok: Bool
                switch m {
                case .offer: ok = stored?.machine.state == .offerProposed
                case .ack: ok = stored?.machine.state == .completed || stored?.isOpen == false
                default: ok = true
                }
                if !ok {
                    violations.withLock {
                        $0.append("\(m.method) for \(poid) sent while the store has \(stored?.machine.state.rawValue ?? "nothing")")
                    }
                }
                checked.withLock { $0 += 1 }
            }
            await inner.send(bytes, on: session)
        }
    }

    struct Party {
        var customer: TestCustomer
        var machine: ClientOrderStateMachine
    }

    static func parties(_ n: Int, prefix: String, mbps: Int = 5) throws -> ([Party], [InboundDatagram]) {
        var rng = SystemRandomNumberGenerator()
        var parties: [Party] = []
        var datagrams: [InboundDatagram] = []
        for i in 0..<n {
            let customer = TestCustomer("acme", port: UInt16(41_000 + i))
            var m = ClientOrderStateMachine(customerOrderID: CustomerOrderID("\(prefix)-\(i)")!)
            for case .send(let msg) in try m.quote(
                requestedCPD: CPD.paris(mbps: mbps), session: customer.clientSession, now: SystemWallClock().now(), using: &rng)
            {
                datagrams.append(customer.datagram(msg))
            }
            parties.append(Party(customer: customer, machine: m))
        }
        return (parties, datagrams)
    }

    /// Feeds each party what the engine sent it; returns the datagrams the parties answer with.
    static func deliver(_ sink: CollectingSink, to parties: inout [Party]) -> [InboundDatagram] {
        var out: [InboundDatagram] = []
        for i in parties.indices {
            for m in sink.take(for: parties[i].customer.endpoint) {
                for case .send(let reply) in parties[i].machine.messageReceived(
                    m, session: parties[i].customer.clientSession, now: SystemWallClock().now())
                {
                    out.append(parties[i].customer.datagram(reply))
                }
            }
        }
        return out
    }

    @Test func aBatchIsCommittedInOneTransactionPerRoundAndNothingIsSentBeforeItIsDurable() async throws {
        let paths = TestPaths()
        let store = try ServerOrderStore(path: paths.database)
        let sink = DurabilityCheckingSink(store: store)
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        var (parties, quotations) = try Self.parties(8, prefix: "gc-batch")

        await engine.receive(batch: quotations)
        // Round 1: the eight QUOTATIONs received reveal nothing, so nothing is written; round 2: the eight
        // decisions (PROCESSING + OFFER), each written with its QUOTATION's state change, in one transaction.
        var stats = await engine.commitStatistics
        #expect(stats.batches == 1 && stats.datagrams == 8)
        #expect(stats.transactions == 1 && stats.changes == 8 && stats.largestTransaction == 8)
        _ = Self.deliver(sink.inner, to: &parties)
        #expect(parties.allSatisfy { $0.machine.state == .offerReceived }, "\(parties.map(\.machine.state))")

        var accepts: [InboundDatagram] = []
        for i in parties.indices {
            for case .send(let m) in try parties[i].machine.accept(now: SystemWallClock().now()) { accepts.append(parties[i].customer.datagram(m)) }
        }
        await engine.receive(batch: accepts)
        // AcceptReceived for all eight (written with what follows), then Completed for all eight: one more transaction.
        stats = await engine.commitStatistics
        #expect(stats.transactions == 2 && stats.changes == 16 && stats.failedChanges == 0)
        _ = Self.deliver(sink.inner, to: &parties)
        #expect(parties.allSatisfy { $0.machine.state == .completed }, "\(parties.map(\.machine.state))")
        #expect(sink.violations.withLock { $0 } == [])
        #expect(sink.checked.withLock { $0 } >= 16)
        #expect(try store.orderCount(state: .completed) == 8)
        let (running, scanned) = await engine.reservedTotals()
        #expect(running == scanned)
        #expect(try store.reservationTotalMismatches() == [])
        // The audit trail still has every state change, the unwritten ones included (RFC 8921 §12.1).
        let completed = try #require(try store.orders(state: .completed).first)
        #expect(
            try store.audit(providerOrderID: completed.providerOrderID).map(\.to) == [
                .pqoReceived, .awaitingProcessing, .offerProposed, .acceptReceived, .completed,
            ])
    }

    @Test func aFailingChangeIsRolledBackAloneItsMessagesWithheldAndItsOrderForgotten() async throws {
        let paths = TestPaths()
        let store = try ServerOrderStore(path: paths.database)
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        var (parties, quotations) = try Self.parties(3, prefix: "gc-fail")
        // The store refuses to insert the second customer's order (as a full disk or a constraint would).
        try await store.writer.write { db in
            try db.execute(
                sql: """
                    CREATE TRIGGER refuse_gc BEFORE INSERT ON orders WHEN NEW.customer_order_id = 'gc-fail-1'
                    BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
                    """)
        }
        await engine.receive(batch: quotations)
        let stats = await engine.commitStatistics
        #expect(stats.failedChanges == 1)
        _ = Self.deliver(sink, to: &parties)
        #expect(parties[0].machine.state == .offerReceived && parties[2].machine.state == .offerReceived)
        #expect(parties[1].machine.state == .pqoSent, "nothing may reach a customer whose change failed")
        #expect(try store.order(clientIdentity: "acme", customerOrderID: CustomerOrderID("gc-fail-1")!) == nil)
        #expect(await engine.openOrderCount == 2)
        let (running, scanned) = await engine.reservedTotals()
        #expect(running == scanned)

        // Once the store accepts it again, the retransmitted QUOTATION is served normally.
        try await store.writer.write { db in try db.execute(sql: "DROP TRIGGER refuse_gc") }
        await engine.receive(quotations[1])
        _ = Self.deliver(sink, to: &parties)
        #expect(parties[1].machine.state == .offerReceived)
        #expect(try store.reservationTotalMismatches() == [])
    }

    @Test func aSecondDatagramForAnOrderClosesTheBatchFirst() async throws {
        let paths = TestPaths()
        let store = try ServerOrderStore(path: paths.database)
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        var (parties, quotations) = try Self.parties(2, prefix: "gc-dup")
        // A duplicated QUOTATION of the first customer within the same batch.
        await engine.receive(batch: [quotations[0], quotations[1], quotations[0]])
        let stats = await engine.commitStatistics
        // The duplicate closed the batch first: the first two QUOTATIONs were decided (and their offers
        // committed) before it was handled, so it got the first order's answer and opened nothing.
        #expect(stats.transactions == 1 && stats.changes == 2)
        _ = Self.deliver(sink, to: &parties)
        #expect(parties.allSatisfy { $0.machine.state == .offerReceived })
        #expect(try store.orderCount() == 2)
        #expect(await engine.openOrderCount == 2)
    }

    /// A closed order's stored machine answers through the same path as an open order's: its change
    /// is written with the batch, before its answer leaves, and it leaves memory again.
    @Test func closedOrdersAnswerThroughTheBatchCommit() async throws {
        let store = try ServerOrderStore(path: TestPaths().database)
        let sink = CollectingSink()
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: sink, logger: quietLogger("cpnpd-test"))
        var rng = SystemRandomNumberGenerator()
        let now = SystemWallClock().now()
        var repeats: [InboundDatagram] = []
        var customers: [TestCustomer] = []
        for i in 0..<2 {
            let customer = TestCustomer("acme", port: UInt16(41_100 + i))
            var order = ClientOrderStateMachine(customerOrderID: CustomerOrderID("gc-closed-\(i)")!)
            try await customer.agree(&order, CPD.marseille(min: 10, max: 20), engine: engine, sink: sink, now: now)
            let agreement = try #require(order.agreement)
            await customer.deliver(try order.withdraw(session: customer.clientSession, now: now, using: &rng), to: engine)
            #expect(sink.take(for: customer.endpoint).map(\.method) == [.processing, .ack])
            // A second WITHDRAW, in a new transaction: the Cancelled order refuses it with FAIL 1 (Table 6), stored.
            repeats.append(
                customer.datagram(
                    .withdraw(
                        WithdrawMessage(
                            sequenceNumber: 9, transactionID: .random(using: &rng), customerOrderID: agreement.customerOrderID,
                            providerOrderID: agreement.providerOrderID, nonce: agreement.nonce))))
            customers.append(customer)
        }
        let before = await engine.commitStatistics
        await engine.receive(batch: repeats)
        let after = await engine.commitStatistics
        #expect(after.transactions - before.transactions == 1 && after.changes - before.changes == 2)
        for customer in customers {
            guard case .fail(let fail)? = sink.take(for: customer.endpoint).first else { Issue.record("expected FAIL 1"); continue }
            #expect(fail.statusCode == .messageValidationError)
        }
        #expect(await engine.residentOrderCount == 0)
        #expect(await engine.openOrderCount == 0)
    }

    @Test func theInboxDrainsInBoundedBatchesAndDropsWhatExceedsItsCapacity() async throws {
        let store = try ServerOrderStore.inMemory()
        let engine = CPNPServerEngine(configuration: testConfiguration(), store: store, sink: CollectingSink(), logger: quietLogger("cpnpd-test"))
        let customer = TestCustomer("acme", port: 42_000)
        func junk(_ i: Int) -> InboundDatagram {
            InboundDatagram(bytes: Array("not json \(i)".utf8), session: customer.serverSession, identity: customer.identity)
        }
        // As if a drain were running: everything queues.
        engine.inbox.state.withLock { $0.draining = true }
        let capacity = engine.inbox.capacity
        var refused = 0
        for i in 0..<(capacity + 5) where !engine.submit(junk(i)) { refused += 1 }
        #expect(refused == 5)
        #expect(engine.inboxDepth == capacity)
        // Full, a copy of a queued datagram is still coalesced, not dropped.
        #expect(engine.submit(junk(capacity - 1)))
        await engine.drainInbox()
        let stats = await engine.commitStatistics
        #expect(stats.datagrams == capacity && stats.inboxDropped == 5 && stats.inboxCoalesced == 1)
        #expect(stats.batches == (capacity + CPNPServerEngine.maximumBatch - 1) / CPNPServerEngine.maximumBatch)
        #expect(engine.inboxDepth == 0)
        #expect(engine.inbox.state.withLock { $0.draining } == false)

        // Copies of a queued datagram (retransmissions while the engine is busy) are coalesced.
        engine.inbox.state.withLock { $0.draining = true }
        let (_, copies) = try Self.parties(2, prefix: "gc-copies")
        for _ in 0..<3 { #expect(engine.submit(copies[0])) }
        #expect(engine.submit(copies[1]))
        #expect(engine.inboxDepth == 2)
        await engine.drainInbox()
        let afterCopies = await engine.commitStatistics
        #expect(afterCopies.inboxCoalesced == 3 && afterCopies.datagrams == capacity + 2)
        // Once taken, the same bytes queue again (a later retransmission is handled).
        engine.inbox.state.withLock { $0.draining = true }
        #expect(engine.submit(copies[0]) && engine.inboxDepth == 1)
        await engine.drainInbox()
        #expect(await engine.commitStatistics.inboxCoalesced == 3)

        // A real submission starts a drain on its own and is answered.
        var (parties, quotations) = try Self.parties(3, prefix: "gc-submit")
        let sink = CollectingSink()
        let live = CPNPServerEngine(
            configuration: testConfiguration(), store: try ServerOrderStore.inMemory(), sink: sink, logger: quietLogger("cpnpd-test"))
        for q in quotations { #expect(live.submit(q)) }
        let deadline = ContinuousClock.now + .seconds(30)
        while parties.contains(where: { $0.machine.state != .offerReceived }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
            _ = Self.deliver(sink, to: &parties)
        }
        #expect(parties.allSatisfy { $0.machine.state == .offerReceived })
        #expect(await live.commitStatistics.datagrams == 3)
    }
}
