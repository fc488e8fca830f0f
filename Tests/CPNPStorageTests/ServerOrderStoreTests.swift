// ServerOrderStore on real SQLite files: round trips of real machines, atomicity, durability, WAL,
// two processes' view of one file, exact reservations, the outbox, admin requests, index use, volume.
import CPNPTesting
@testable import CPNPCore
@testable import CPNPStorage
import Foundation
import GRDB
import GRDBSQLite
import Synchronization
import Testing

/// Everything the store holds about one order, to compare before and after a failed commit.
private struct Dump: Equatable {
    var order: StoredOrder?
    var audit: [AuditEntry]
    var reservations: HeldCapacity
    var totals: [Reservation.Key: CPNPDecimal]
    var outbox: [OutboxEntry]
    var admin: [AdminRequest]
    var openOrders: [ProviderOrderID]

    init(_ store: ServerOrderStore, _ id: ProviderOrderID) throws {
        order = try store.order(providerOrderID: id)
        audit = try store.audit(providerOrderID: id)
        reservations = try store.reservations(providerOrderID: id)
        totals = try store.reservedTotals()
        outbox = try store.outbox(providerOrderID: id)
        admin = try store.adminRequests(providerOrderID: id)
        openOrders = try store.openOrders().map(\.providerOrderID).sorted()
    }
}

@Suite("ServerOrderStore")
struct ServerOrderStoreTests {
    // MARK: Round trips

    @Test("a real order round-trips through every server state up to Completed, with its audit trail")
    func everyStateRoundTrips() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let store = try ServerOrderStore(path: dir.path("cpnpd.sqlite"))
        var d = Dialogue()
        var transitions: [OrderChange.Transition] = []
        var revision: Int64 = 0

        func commitAndCheck(_ state: ServerOrderStateMachine.State, reservations: HeldCapacity? = nil, outbox: [OutboxEvent] = []) throws {
            let change = d.serverChange(reservations: reservations, outbox: outbox, expectedRevision: revision)
            transitions += change.transitions
            revision = try store.commit(change)
            let stored = try #require(try store.order(providerOrderID: d.providerOrderID))
            #expect(stored.state == state)
            #expect(stored.machine.state == state)
            #expect(stored.machine == d.serverMachine)
            #expect(stored.isOpen)
            #expect(stored.revision == revision)
            #expect(stored.clientIdentity == StoreFixture.identity)
            #expect(stored.clientAddress == "192.0.2.10:40001")
            #expect(stored.customerOrderID == d.client.customerOrderID)
            #expect(stored.createdAt == StoreFixture.start)
            #expect(stored.updatedAt == d.now)
            let byClient = try #require(try store.order(clientIdentity: StoreFixture.identity, customerOrderID: d.client.customerOrderID))
            #expect(byClient == stored)
            // The order, its reservations and its audit trail as one committed state (`cpnpd admin show`).
            let details = try #require(try store.details(providerOrderID: d.providerOrderID))
            #expect(details.order == stored)
            #expect(details.reservations == (try store.reservations(providerOrderID: d.providerOrderID)))
            #expect(details.audit == (try store.audit(providerOrderID: d.providerOrderID)))
            #expect(details.audit.count == transitions.count)
        }

        try d.clientQuotes()
        d.serverReceivesQuotation()
        try commitAndCheck(.pqoReceived)
        #expect(revision == 1)

        d.now = StoreFixture.at(1)
        try d.serverAcknowledges()
        try commitAndCheck(.awaitingProcessing)
        d.deliverToClient()
        #expect(d.client.state == .serverProcessing)

        d.now = StoreFixture.at(2)
        try d.serverOffers()
        let offered = HeldCapacity(offered: [
            Reservation(linkID: "link-par-1", direction: .outgoing, mbps: 90), Reservation(linkID: "link-par-1", direction: .incoming, mbps: 90),
        ])
        try commitAndCheck(.offerProposed, reservations: offered)
        d.deliverToClient()
        #expect(d.client.state == .offerReceived)

        d.now = StoreFixture.at(3)
        try d.clientProcessesOffer()
        d.deliverToServer()
        try commitAndCheck(.processingReceived)

        d.now = StoreFixture.at(4)
        try d.clientAccepts()
        d.deliverToServer()
        let committed = HeldCapacity(committed: offered.offered)
        try commitAndCheck(.acceptReceived, reservations: committed)

        d.now = StoreFixture.at(5)
        try d.serverConfirmsAgreement()
        try commitAndCheck(.completed, outbox: [OutboxEvent(kind: .agreement, payload: StoreFixture.payload(d.serverMachine, "agreement"))])
        d.deliverToClient()
        #expect(d.client.state == .completed)
        #expect(revision == 6)

        let audit = try store.audit(providerOrderID: d.providerOrderID)
        #expect(audit.map { OrderChange.Transition(from: $0.from, to: $0.to, event: $0.event) } == transitions)
        #expect(audit.map(\.to) == [.pqoReceived, .awaitingProcessing, .offerProposed, .processingReceived, .acceptReceived, .completed])
        #expect(audit.map(\.at) == (0...5).map { StoreFixture.at($0) })
        #expect(audit.allSatisfy { $0.clientIdentity == StoreFixture.identity && $0.clientAddress == "192.0.2.10:40001" })
        #expect(audit.map(\.id) == audit.map(\.id).sorted())
        #expect(try store.reservations(providerOrderID: d.providerOrderID) == committed)
        #expect(try store.openOrders().map(\.providerOrderID) == [d.providerOrderID])
    }

    @Test("a declined offer closes the order and releases its reservations")
    func declineClosesAndReleases() throws {
        let store = try ServerOrderStore.inMemory()
        var d = Dialogue()
        try d.quoteAndAcknowledge(committingTo: store)
        d.deliverToClient()
        try d.serverOffers()
        try store.commit(d.serverChange(reservations: HeldCapacity(offered: [Reservation(linkID: "link-1", direction: .outgoing, mbps: 90)])))
        d.deliverToClient()
        try d.clientProcessesOffer()
        d.deliverToServer()
        try store.commit(d.serverChange())
        try d.clientDeclines()
        d.deliverToServer()
        #expect(d.serverMachine.state == .cancelled)

        // A closed order cannot hold reservations…
        #expect(throws: StoreError.reservationsOnClosedOrder(providerOrderID: d.providerOrderID.rawValue)) {
            try store.commit(d.serverChange(reservations: HeldCapacity(offered: [Reservation(linkID: "link-1", direction: .outgoing, mbps: 90)])))
        }
        // …and closing it releases them even when the change does not say so.
        try store.commit(d.serverChange())
        let stored = try #require(try store.order(providerOrderID: d.providerOrderID))
        #expect(stored.state == .cancelled)
        #expect(!stored.isOpen)
        #expect(stored.machine == d.serverMachine)
        #expect(try store.reservations(providerOrderID: d.providerOrderID).isEmpty)
        #expect(try store.reservedTotals().isEmpty)
        #expect(try store.openOrders().isEmpty)
        #expect(try store.openOrderCount(clientIdentity: StoreFixture.identity) == 0)
        #expect(try store.audit(providerOrderID: d.providerOrderID).last?.event == "DECLINE received")
        // The closed order is still found by the client's id (the latest one).
        #expect(
            try store.order(clientIdentity: StoreFixture.identity, customerOrderID: d.client.customerOrderID)?.providerOrderID == d.providerOrderID)
    }

    @Test("a withdrawn agreement goes Completed → Cancelled with its provisioning events")
    func withdrawal() throws {
        let store = try ServerOrderStore.inMemory()
        var d = Dialogue()
        try d.clientQuotes()
        d.serverReceivesQuotation()
        try d.serverAcknowledges()
        d.deliverToClient()
        try d.agreedOnServer()
        try store.commit(
            d.serverChange(
                reservations: HeldCapacity(committed: [Reservation(linkID: "link-1", direction: .outgoing, mbps: 90)]),
                outbox: [OutboxEvent(kind: .agreement, payload: StoreFixture.payload(d.serverMachine, "agreement"))]))
        d.deliverToClient()

        d.now = StoreFixture.at(60)
        try d.clientWithdraws()
        d.deliverToServer()
        #expect(d.serverMachine.withdrawalPending)
        try store.commit(d.serverChange())
        #expect(try store.order(providerOrderID: d.providerOrderID)?.machine.withdrawalPending == true)

        d.now = StoreFixture.at(61)
        try d.serverConfirmsWithdrawal()
        try store.commit(
            d.serverChange(
                reservations: .empty, outbox: [OutboxEvent(kind: .withdrawal, payload: StoreFixture.payload(d.serverMachine, "withdrawal"))]))
        let stored = try #require(try store.order(providerOrderID: d.providerOrderID))
        #expect(stored.state == .cancelled)
        #expect(!stored.isOpen)
        #expect(stored.machine.withdrawnAgreement != nil)
        #expect(try store.outbox(providerOrderID: d.providerOrderID).map(\.kind) == [.agreement, .withdrawal])
        #expect(try store.reservedTotals().isEmpty)
        #expect(try store.audit(providerOrderID: d.providerOrderID).suffix(2).map(\.event) == ["WITHDRAW received", "withdrawn, ACK sent"])
    }

    // MARK: Durability

    @Test("after closing and reopening the file, everything is there and a restored machine carries on")
    func reopenAfterClose() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path("state/cpnpd.sqlite")  // the parent directory is created
        var d = Dialogue()
        var adminID: Int64 = 0
        do {
            let store = try ServerOrderStore(path: path)
            try d.quoteAndAcknowledge(committingTo: store)
            d.deliverToClient()
            adminID = try store.enqueueAdminRequest(providerOrderID: d.providerOrderID, action: .approve, requestedBy: "ops", at: StoreFixture.at(1))
            try d.serverOffers()
            try store.commit(
                d.serverChange(
                    reservations: HeldCapacity(offered: [Reservation(linkID: "link-1", direction: .outgoing, mbps: StoreFixture.decimal("90.5"))]),
                    outbox: [OutboxEvent(kind: "offer-made", payload: .array([.string("x"), .number(StoreFixture.decimal("1.25"))]))]))
        }
        let store = try ServerOrderStore(path: path)
        let stored = try #require(try store.openOrders().first)
        #expect(stored.machine == d.serverMachine)
        #expect(stored.state == .offerProposed)
        #expect(try store.audit(providerOrderID: d.providerOrderID).count == 3)
        #expect(
            try store.reservations(providerOrderID: d.providerOrderID)
                == HeldCapacity(offered: [Reservation(linkID: "link-1", direction: .outgoing, mbps: StoreFixture.decimal("90.5"))]))
        #expect(try store.outbox(providerOrderID: d.providerOrderID).first?.payload == .array([.string("x"), .number(StoreFixture.decimal("1.25"))]))
        #expect(try store.pendingAdminRequests().map(\.id) == [adminID])

        // Restart recovery: re-arm the timers, then the negotiation carries on.
        let timers = stored.machine.armedTimers(now: StoreFixture.at(10))
        #expect(timers.contains { $0.0 == .offerValidity && $0.1 == StoreFixture.at(3_600) })
        #expect(timers.contains { $0.0 == .retransmission })
        d.server = stored.machine
        d.deliverToClient()
        try d.clientProcessesOffer()
        d.deliverToServer()
        #expect(d.serverMachine.state == .processingReceived)
        try store.commit(d.serverChange(expectedRevision: stored.revision))
        #expect(try store.order(providerOrderID: d.providerOrderID)?.state == .processingReceived)
    }

    @Test("a file store is in WAL mode; an in-memory one is not a file")
    func walMode() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        #expect(try ServerOrderStore(path: dir.path("a.sqlite")).journalMode() == "wal")
        #expect(try ClientOrderStore(path: dir.path("b.sqlite")).journalMode() == "wal")
        #expect(try ServerOrderStore.inMemory().journalMode() == "memory")
    }

    /// RFC 8921 §8.11: a commit a peer may observe survives a power loss, so it is synced before it
    /// returns (`synchronous = FULL`, 2). GRDB's pool sets its writer to NORMAL (1) after our set-up.
    @Test("a file store's writer syncs every commit (synchronous = FULL)")
    func writerSyncsEveryCommit() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let synchronous = { (writer: any DatabaseWriter) in
            try writer.writeWithoutTransaction { connection in try Int.fetchOne(connection, sql: "PRAGMA synchronous") }
        }
        #expect(try synchronous(ServerOrderStore(path: dir.path("a.sqlite")).writer) == 2)
        #expect(try synchronous(ClientOrderStore(path: dir.path("b.sqlite")).writer) == 2)
        // Opened again, as at a restart.
        #expect(try synchronous(ServerOrderStore(path: dir.path("a.sqlite")).writer) == 2)
    }

    @Test("two stores on one file (daemon and admin CLI) see each other's writes")
    func twoStoresOnOneFile() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path("cpnpd.sqlite")
        let daemon = try ServerOrderStore(path: path)
        let admin = try ServerOrderStore(path: path)

        var d = Dialogue()
        try d.quoteAndAcknowledge(committingTo: daemon)
        #expect(try admin.order(providerOrderID: d.providerOrderID)?.state == .awaitingProcessing)
        #expect(try admin.orders(state: .awaitingProcessing).map(\.providerOrderID) == [d.providerOrderID])

        #expect(throws: StoreError.unknownOrder("po-nope")) {
            try admin.enqueueAdminRequest(providerOrderID: StoreFixture.providerOrderID("po-nope"), action: .approve, at: StoreFixture.at(1))
        }
        let id = try admin.enqueueAdminRequest(
            providerOrderID: d.providerOrderID, action: .reject(.administrativelyProhibited, diagnostic: "not this week"),
            requestedBy: "alice", at: StoreFixture.at(1))
        let pending = try daemon.pendingAdminRequests()
        #expect(pending.count == 1)
        #expect(pending.first?.action == .reject(.administrativelyProhibited, diagnostic: "not this week"))
        #expect(pending.first?.requestedBy == "alice")

        // The daemon carries the decision out and settles the request in the same transaction.
        d.now = StoreFixture.at(2)
        try d.serverDo { s, _, now throws(OrderCommandError) in try s.reject(.administrativelyProhibited, diagnostic: "not this week", now: now) }
        var change = d.serverChange()
        change.processedAdminRequests = [AdminRequestResult(id: id, outcome: "FAIL 4 sent")]
        try daemon.commit(change)

        let seen = try #require(try admin.adminRequest(id: id))
        #expect(seen.processedAt == StoreFixture.at(2))
        #expect(seen.outcome == "FAIL 4 sent")
        #expect(try admin.pendingAdminRequests().isEmpty)
        #expect(try admin.order(providerOrderID: d.providerOrderID)?.state == .cancelled)
        #expect(try admin.markAdminRequestProcessed(id: id, at: StoreFixture.at(3), outcome: "again") == false)
    }

    @Test("two stores writing the same file concurrently lose nothing")
    func concurrentWritersOnOneFile() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path("cpnpd.sqlite")
        let stores = [try ServerOrderStore(path: path), try ServerOrderStore(path: path)]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, store) in stores.enumerated() {
                for worker in 0..<2 {
                    group.addTask {
                        for i in 0..<25 {
                            let key = "\(n)-\(worker)-\(i)"
                            let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(key)", providerOrderID: "p-\(key)")
                            try store.commit(
                                OrderChange(
                                    machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(i)), actions: actions,
                                    reservations: HeldCapacity(offered: [
                                        Reservation(linkID: "link-1", direction: .outgoing, mbps: StoreFixture.decimal("0.1"))
                                    ])))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try stores[0].orderCount() == 100)
        #expect(try stores[1].openOrderCount(clientIdentity: StoreFixture.identity) == 100)
        #expect(try stores[0].reservedTotal(for: Reservation.Key("link-1", .outgoing)) == StoreFixture.decimal("10"))
    }

    @Test("processes opening a new file at once all migrate it")
    func concurrentFirstOpen() async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path("new.sqlite")
        try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<4 { group.addTask { try ServerOrderStore(path: path).journalMode() } }
            for try await mode in group { #expect(mode == "wal") }
        }
        #expect(try ServerOrderStore(path: path).orderCount() == 0)
    }

    // MARK: Atomicity and guards

    @Test("a failure inside a commit leaves nothing written: no order change, audit, outbox, admin or reservation row")
    func atomicity() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let store = try ServerOrderStore(path: dir.path("cpnpd.sqlite"))
        var d = Dialogue()
        try d.quoteAndAcknowledge(committingTo: store)
        d.deliverToClient()
        try d.serverOffers()
        try store.commit(d.serverChange(reservations: HeldCapacity(offered: [Reservation(linkID: "link-1", direction: .outgoing, mbps: 90)])))
        d.deliverToClient()
        let adminID = try store.enqueueAdminRequest(providerOrderID: d.providerOrderID, action: .approve, at: StoreFixture.at(1))
        let before = try Dump(store, d.providerOrderID)

        // The machine moves on; the change writes the order, audit, outbox and admin rows first, then
        // replaces the reservations, the last of which violates a CHECK constraint (negative amount).
        d.now = StoreFixture.at(5)
        try d.clientProcessesOffer()
        d.deliverToServer()
        var change = d.serverChange(
            reservations: HeldCapacity(offered: [
                Reservation(linkID: "link-1", direction: .outgoing, mbps: 90),
                Reservation(linkID: "link-2", direction: .incoming, mbps: StoreFixture.decimal("-5")),
            ]),
            outbox: [OutboxEvent(kind: .activation, payload: .null)])
        change.processedAdminRequests = [AdminRequestResult(id: adminID, outcome: "done")]
        #expect(!change.transitions.isEmpty)
        #expect(throws: (any Error).self) { try store.commit(change) }
        #expect(try Dump(store, d.providerOrderID) == before)

        // A failing capacity check, after everything else was written, rolls back too.
        change.reservations = HeldCapacity(offered: [Reservation(linkID: "link-1", direction: .outgoing, mbps: 120)])
        change.capacityLimits = [Reservation.Key("link-1", .outgoing): 100]
        #expect(throws: StoreError.capacityExceeded(Reservation.Key("link-1", .outgoing), total: 120, limit: 100)) { try store.commit(change) }
        #expect(try Dump(store, d.providerOrderID) == before)

        // A batch is all or nothing as well.
        let (other, actions) = StoreFixture.quotedServerOrder(customerOrderID: "other", providerOrderID: "po-other")
        let good = OrderChange(machine: other, clientIdentity: StoreFixture.identity, at: StoreFixture.at(6), actions: actions)
        #expect(throws: (any Error).self) { try store.commit([good, change]) }
        #expect(try store.order(providerOrderID: StoreFixture.providerOrderID("po-other")) == nil)
        #expect(try Dump(store, d.providerOrderID) == before)

        // The same change without the faults commits everything.
        change.reservations = HeldCapacity(offered: [Reservation(linkID: "link-1", direction: .outgoing, mbps: 90)])
        try store.commit(change)
        let after = try Dump(store, d.providerOrderID)
        #expect(after.order?.state == .processingReceived)
        #expect(after.audit.count == before.audit.count + 1)
        #expect(after.outbox.count == 1)
        #expect(after.admin.first?.outcome == "done")
    }

    @Test("capacity limits hold across orders")
    func capacityLimits() throws {
        let store = try ServerOrderStore.inMemory()
        let link = Reservation.Key("link-1", .outgoing)
        func reserve(_ name: String, _ amount: CPNPDecimal) throws {
            let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(name)", providerOrderID: "p-\(name)")
            try store.commit(
                OrderChange(
                    machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions,
                    reservations: HeldCapacity(offered: [Reservation(link, mbps: amount)]), capacityLimits: [link: 100]))
        }
        try reserve("a", 60)
        #expect(throws: StoreError.capacityExceeded(link, total: 110, limit: 100)) { try reserve("b", 50) }
        #expect(try store.providerOrderIDExists("p-b") == false)
        try reserve("c", 40)
        #expect(try store.reservedTotal(for: link) == 100)
    }

    @Test("revisions, client identity and one open order per customer order id are enforced")
    func guards() throws {
        let store = try ServerOrderStore.inMemory()
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-1")
        #expect(throws: StoreError.revisionConflict(orderID: "p-1", expected: 3, actual: nil)) {
            try store.commit(
                OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions, expectedRevision: 3))
        }
        #expect(
            try store.commit(
                OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions, expectedRevision: 0)) == 1)
        #expect(throws: StoreError.revisionConflict(orderID: "p-1", expected: 0, actual: 1)) {
            try store.commit(OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, expectedRevision: 0))
        }
        // The same provider order id for another client, or for another customer order id: refused.
        #expect(throws: StoreError.providerOrderIDInUse(providerOrderID: "p-1", clientIdentity: StoreFixture.identity, customerOrderID: "c-1")) {
            try store.commit(OrderChange(machine: m, clientIdentity: StoreFixture.otherIdentity, at: StoreFixture.start, expectedRevision: 0))
        }
        let (clash, clashActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-9", providerOrderID: "p-1")
        #expect(throws: StoreError.providerOrderIDInUse(providerOrderID: "p-1", clientIdentity: StoreFixture.identity, customerOrderID: "c-1")) {
            try store.commit(OrderChange(machine: clash, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: clashActions))
        }
        // Another order of the same client with the same customer order id, while the first is open.
        let (twin, twinActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-2")
        #expect(throws: StoreError.openOrderExists(customerOrderID: "c-1", providerOrderID: "p-1")) {
            try store.commit(OrderChange(machine: twin, clientIdentity: StoreFixture.identity, at: StoreFixture.at(1), actions: twinActions))
        }
        // Another client may use the same customer order id.
        let (foreign, foreignActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-3")
        try store.commit(OrderChange(machine: foreign, clientIdentity: StoreFixture.otherIdentity, at: StoreFixture.at(1), actions: foreignActions))
        // Once the first is closed, the id may be used again; lookups prefer the open order.
        var closed = m
        _ = try closed.reject(.outOfResources, now: StoreFixture.at(2))
        try store.commit(
            OrderChange(
                machine: closed, clientIdentity: StoreFixture.identity, at: StoreFixture.at(2),
                transitions: [.init(from: .pqoReceived, to: .cancelled, event: "FAIL 5 sent")]))
        try store.commit(OrderChange(machine: twin, clientIdentity: StoreFixture.identity, at: StoreFixture.at(3), actions: twinActions))
        #expect(
            try store.order(clientIdentity: StoreFixture.identity, customerOrderID: StoreFixture.customerOrderID("c-1"))?.providerOrderID
                == StoreFixture.providerOrderID("p-2"))
        #expect(
            try store.order(clientIdentity: StoreFixture.otherIdentity, customerOrderID: StoreFixture.customerOrderID("c-1"))?.providerOrderID
                == StoreFixture.providerOrderID("p-3"))
        #expect(try store.order(clientIdentity: "CN=nobody", customerOrderID: StoreFixture.customerOrderID("c-1")) == nil)
        #expect(try store.audit(providerOrderID: StoreFixture.providerOrderID("p-1")).count == 2)
    }

    @Test("ids and counts for §13: customer and provider order ids, open orders per client")
    func identifierLookups() throws {
        let store = try ServerOrderStore.inMemory()
        for i in 0..<3 {
            let (m, a) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(i)", providerOrderID: "p-\(i)")
            try store.commit(OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(Int64(i)), actions: a))
        }
        #expect(try store.customerOrderIDExists(clientIdentity: StoreFixture.identity, "c-1"))
        #expect(try !store.customerOrderIDExists(clientIdentity: StoreFixture.otherIdentity, "c-1"))
        #expect(try !store.customerOrderIDExists(clientIdentity: StoreFixture.identity, "p-1"))
        #expect(try store.providerOrderIDExists("p-2"))
        #expect(try !store.providerOrderIDExists("c-2"))
        #expect(try store.openOrderCount(clientIdentity: StoreFixture.identity) == 3)
        #expect(try store.openOrderCount(clientIdentity: StoreFixture.otherIdentity) == 0)
        #expect(try store.orders(limit: 2).map(\.providerOrderID.rawValue) == ["p-2", "p-1"])
        #expect(try store.orders(limit: 2, offset: 2).map(\.providerOrderID.rawValue) == ["p-0"])
        #expect(try store.orders(state: .completed).isEmpty)
        #expect(try store.orderCount(state: .pqoReceived) == 3)
        #expect(throws: StoreError.self) { try store.orders(limit: -1) }
    }

    // MARK: Reservations

    @Test("reservations are summed exactly: 0.1 + 0.2 == 0.3")
    func exactReservations() throws {
        let store = try ServerOrderStore.inMemory()
        let link = Reservation.Key("link-1", .outgoing)
        let (a, aa) = StoreFixture.quotedServerOrder(customerOrderID: "c-a", providerOrderID: "p-a")
        let (b, ba) = StoreFixture.quotedServerOrder(customerOrderID: "c-b", providerOrderID: "p-b")
        try store.commit(
            OrderChange(
                machine: a, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: aa,
                reservations: HeldCapacity(offered: [
                    Reservation(link, mbps: StoreFixture.decimal("0.1")),
                    Reservation(linkID: "link-1", direction: .incoming, mbps: StoreFixture.decimal("100000000000000000000.000000000000000001")),
                ])))
        try store.commit(
            OrderChange(
                machine: b, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: ba,
                reservations: HeldCapacity(committed: [
                    Reservation(link, mbps: StoreFixture.decimal("0.2")),
                    Reservation(linkID: "link-1", direction: .incoming, mbps: StoreFixture.decimal("1e-18")),
                ])))
        let totals = try store.reservedTotals()
        #expect(totals[link] == StoreFixture.decimal("0.3"))
        #expect(totals[link]?.description == "0.3")
        #expect(totals[Reservation.Key("link-1", .incoming)] == StoreFixture.decimal("100000000000000000000.000000000000000002"))
        #expect(try store.reservedTotals(kind: .offered)[link] == StoreFixture.decimal("0.1"))
        #expect(try store.reservedTotals(kind: .committed)[link] == StoreFixture.decimal("0.2"))
        #expect(try store.reservedTotal(for: link) == StoreFixture.decimal("0.3"))
        #expect(try store.reservedTotal(for: link, kind: .committed) == StoreFixture.decimal("0.2"))
        #expect(try store.reservedTotal(for: Reservation.Key("link-9", .outgoing)) == 0)
        #expect(
            try store.reservations(providerOrderID: StoreFixture.providerOrderID("p-b"))
                == HeldCapacity(committed: [
                    Reservation(link, mbps: StoreFixture.decimal("0.2")),
                    Reservation(linkID: "link-1", direction: .incoming, mbps: StoreFixture.decimal("1e-18")),
                ]))

        // Replacing and keeping.
        try store.commit(OrderChange(machine: a, clientIdentity: StoreFixture.identity, at: StoreFixture.at(1)))  // nil: kept
        #expect(try store.reservations(providerOrderID: StoreFixture.providerOrderID("p-a")).offered.count == 2)
        try store.commit(
            OrderChange(
                machine: a, clientIdentity: StoreFixture.identity, at: StoreFixture.at(2),
                reservations: HeldCapacity(committed: [Reservation(link, mbps: StoreFixture.decimal("0.25"))])))
        #expect(try store.reservedTotal(for: link) == StoreFixture.decimal("0.45"))
        try store.commit(OrderChange(machine: a, clientIdentity: StoreFixture.identity, at: StoreFixture.at(3), reservations: .empty))
        #expect(try store.reservedTotal(for: link) == StoreFixture.decimal("0.2"))
    }

    // MARK: Outbox

    /// A claim with no undelivered event due only reads: the provisioning worker asks twice a second
    /// on the writer the engine commits on. A due event is claimed, by a write.
    @Test func aClaimWithNothingDueWritesNothing() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let store = try ServerOrderStore(path: dir.path("cpnpd.sqlite"))
        let trace = WriterStatementTrace(store)
        #expect(try store.claimDueOutbox(claimant: "w", now: StoreFixture.start, lease: .seconds(30)).isEmpty)
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-a", providerOrderID: "p-a")
        try store.commit(
            OrderChange(
                machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions,
                outbox: [OutboxEvent(kind: .activation, payload: StoreFixture.payload(m, "activation"), notBefore: StoreFixture.at(100))]))
        trace.reset()
        #expect(try store.claimDueOutbox(claimant: "w", now: StoreFixture.at(99), lease: .seconds(30)).isEmpty)
        #expect(trace.statements.isEmpty, "\(trace.statements)")
        let claimed = try store.claimDueOutbox(claimant: "w", now: StoreFixture.at(100), lease: .seconds(30))
        #expect(claimed.map(\.kind) == [.activation])
        #expect(trace.statements.contains { $0.hasPrefix("UPDATE outbox SET claimed_by") })
        #expect(try store.markDelivered(id: try #require(claimed.first).id, at: StoreFixture.at(101)))
        trace.reset()
        #expect(try store.claimDueOutbox(claimant: "w", now: StoreFixture.at(200), lease: .seconds(30)).isEmpty)
        #expect(trace.statements.isEmpty, "\(trace.statements)")
    }

    @Test("outbox: due times, per-order order, back-off, delivery, survival across a restart")
    func outboxLifecycle() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path("cpnpd.sqlite")
        let (a, aa) = StoreFixture.quotedServerOrder(customerOrderID: "c-a", providerOrderID: "p-a")
        let (b, ba) = StoreFixture.quotedServerOrder(customerOrderID: "c-b", providerOrderID: "p-b")
        var activationID: Int64 = 0
        do {
            let store = try ServerOrderStore(path: path)
            #expect(try store.nextOutboxAttempt() == nil)
            try store.commit(
                OrderChange(
                    machine: a, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: aa,
                    outbox: [
                        OutboxEvent(kind: .agreement, payload: StoreFixture.payload(a, "agreement")),
                        OutboxEvent(kind: .activation, payload: StoreFixture.payload(a, "activation"), notBefore: StoreFixture.at(100)),
                    ]))
            try store.commit(
                OrderChange(
                    machine: b, clientIdentity: StoreFixture.identity, at: StoreFixture.at(10), actions: ba,
                    outbox: [
                        OutboxEvent(kind: .agreement, payload: StoreFixture.payload(b, "agreement"))
                    ]))
            #expect(try store.undeliveredOutboxCount() == 3)

            let first = try store.dueOutbox(now: StoreFixture.start)
            #expect(first.map(\.kind) == [.agreement])
            #expect(first.first?.providerOrderID == StoreFixture.providerOrderID("p-a"))
            #expect(first.first?.payload == StoreFixture.payload(a, "agreement"))
            #expect(first.first?.attempts == 0)
            #expect(first.first?.createdAt == StoreFixture.start)
            let aAgreement = try #require(first.first).id

            let due = try store.dueOutbox(now: StoreFixture.at(10))
            #expect(due.map(\.providerOrderID.rawValue) == ["p-a", "p-b"])
            let bAgreement = due[1].id
            #expect(try store.dueOutbox(now: StoreFixture.at(10), limit: 1).map(\.id) == [aAgreement])

            // The hook failed for A: back off to t+60. B is delivered.
            #expect(try store.markAttemptFailed(id: aAgreement, error: "hook exited with 1", nextAttemptAt: StoreFixture.at(60)))
            #expect(try store.dueOutbox(now: StoreFixture.at(20)).map(\.id) == [bAgreement])
            #expect(try store.markDelivered(id: bAgreement, at: StoreFixture.at(20)))
            #expect(try store.markDelivered(id: bAgreement, at: StoreFixture.at(21)) == false)
            #expect(try store.markAttemptFailed(id: bAgreement, error: "late", nextAttemptAt: StoreFixture.at(99)) == false)
            #expect(try store.dueOutbox(now: StoreFixture.at(20)).isEmpty)
            #expect(try store.nextOutboxAttempt() == StoreFixture.at(60))

            // A's activation is due at t+100 but waits behind A's undelivered agreement.
            let late = try store.dueOutbox(now: StoreFixture.at(200))
            #expect(late.map(\.id) == [aAgreement])
            #expect(late.first?.attempts == 1)
            #expect(late.first?.lastError == "hook exited with 1")
            #expect(late.first?.nextAttemptAt == StoreFixture.at(60))
            #expect(try store.markDelivered(id: aAgreement, at: StoreFixture.at(200)))
            activationID = try #require(try store.dueOutbox(now: StoreFixture.at(200)).first).id
            #expect(try store.nextOutboxAttempt() == StoreFixture.at(100))
        }
        // Never lost across a restart.
        let store = try ServerOrderStore(path: path)
        #expect(try store.undeliveredOutboxCount() == 1)
        #expect(try store.dueOutbox(now: StoreFixture.at(99)).isEmpty)
        #expect(try store.dueOutbox(now: StoreFixture.at(100)).map(\.id) == [activationID])
        #expect(try store.markDelivered(id: activationID, at: StoreFixture.at(101)))
        #expect(try store.nextOutboxAttempt() == nil)
        let history = try store.outbox(providerOrderID: StoreFixture.providerOrderID("p-a"))
        #expect(history.map(\.kind) == [.agreement, .activation])
        #expect(history.map(\.deliveredAt) == [StoreFixture.at(200), StoreFixture.at(101)])
        #expect(history.map(\.attempts) == [2, 1])
        #expect(history.first?.lastError == nil)
    }

    // MARK: Admin requests

    @Test("admin requests: enqueue, pending, processed")
    func adminRequests() throws {
        let store = try ServerOrderStore.inMemory()
        let (m, a) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-1")
        try store.commit(OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: a))
        let approve = try store.enqueueAdminRequest(providerOrderID: m.providerOrderID, action: .approve, at: StoreFixture.at(1))
        let reject = try store.enqueueAdminRequest(
            providerOrderID: m.providerOrderID, action: .reject(.outOfResources, diagnostic: nil), at: StoreFixture.at(2))
        #expect(try store.pendingAdminRequests().map(\.id) == [approve, reject])
        #expect(try store.pendingAdminRequests(limit: 1).map(\.action) == [.approve])
        #expect(try store.markAdminRequestProcessed(id: approve, at: StoreFixture.at(3), outcome: "offer sent"))
        #expect(try store.pendingAdminRequests().map(\.id) == [reject])
        let done = try #require(try store.adminRequest(id: approve))
        #expect(done.processedAt == StoreFixture.at(3))
        #expect(done.createdAt == StoreFixture.at(1))
        #expect(try store.adminRequest(id: reject)?.action == .reject(.outOfResources, diagnostic: nil))
        #expect(try store.adminRequest(id: 999) == nil)
        #expect(try store.adminRequests(providerOrderID: m.providerOrderID).count == 2)
    }

    // MARK: Indexes and volume

    @Test("every hot-path query is answered through an index, never a full scan")
    func hotPathsUseIndexes() throws {
        let store = try ServerOrderStore.inMemory()
        typealias Statements = ServerOrderStore.SQL
        let cases: [(String, String, Int)] = [
            ("order by provider order id", Statements.orderByProviderID, 1),
            ("order by client and customer order id", Statements.orderByClientAndCustomerID(.sqlite), 2),
            ("open orders", Statements.openOrders, 0),
            ("resident orders (start-up)", Statements.residentOrders(.sqlite), 0),
            ("open orders per client (start-up)", Statements.openOrderCountsByClient, 0),
            ("open order count", Statements.openOrderCount, 1),
            ("customer order id exists", Statements.customerOrderIDExists, 2),
            ("provider order id exists", Statements.providerOrderIDExists, 1),
            ("order head in commit", Statements.orderHead, 1),
            ("other open order in commit", Statements.otherOpenOrder, 3),
            ("audit of an order", Statements.auditOfOrder, 1),
            ("reservations of an order", Statements.reservationsOfOrder, 1),
            ("reserved on a resource", Statements.reservedOnResource, 2),
            ("reserved on a resource by kind", Statements.reservedOnResourceOfKind, 3),
            ("kept reservation totals of a commit's resources", Statements.keptTotalsOfResources(2), 2),
            ("due outbox", Statements.dueOutbox, 2),
            ("next outbox attempt", Statements.nextOutboxAttempt, 0),
            ("pending admin requests", Statements.pendingAdminRequests, 1),
        ]
        for (name, sql, argumentCount) in cases {
            let plan = try store.queryPlan(sql, Array(repeating: "x", count: argumentCount))
            #expect(usesIndexesOnly(plan), "\(name): \(plan)")
        }
        // The open orders of a client through an index of open orders, not all of the client's orders.
        for sql in [Statements.openOrderCount, Statements.openOrderCountsByClient] {
            let plan = try store.queryPlan(sql, Array(repeating: "x", count: sql.filter { $0 == "?" }.count))
            #expect(plan.contains { $0.contains("orders_open") || $0.contains("orders_one_open_per_coi") }, "\(sql): \(plan)")
        }
        // A start reads the resident orders through their partial index, not every open order's row.
        let residentPlan = try store.queryPlan(Statements.residentOrders(.sqlite), [])
        #expect(residentPlan.contains { $0.contains("orders_resident") }, "\(residentPlan)")
        // Without the index no statement needed (migration server-v9-fewer-order-indexes).
        let orderIndexes = try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders'")
        }
        #expect(
            orderIndexes.contains("orders_customer_order") && orderIndexes.contains("orders_open") && !orderIndexes.contains("orders_client_coi_poi"))
        // One index by customer order id (migration server-v10-one-customer-order-index), and none of owners.
        #expect(!orderIndexes.contains("orders_client_coi") && !orderIndexes.contains("orders_one_open_per_coi"))
        #expect(!orderIndexes.contains("orders_owner"))
        // The lookups by customer order id read it.
        for sql in [Statements.orderByClientAndCustomerID(.sqlite), Statements.customerOrderIDExists, Statements.otherOpenOrder] {
            let plan = try store.queryPlan(sql, Array(repeating: "x", count: sql.filter { $0 == "?" }.count))
            #expect(plan.contains { $0.contains("orders_customer_order") }, "\(sql): \(plan)")
        }
    }

    @Test("the index by customer order id holds one open order per client and customer order id, and any number of closed ones")
    func oneOpenOrderPerCustomerOrderIDInTheSchema() throws {
        let store = try ServerOrderStore.inMemory()
        // Rows written without the store's own check (the look for another open order): the index alone.
        func insert(_ providerOrderID: String, client: String = "acme", customerOrderID: String = "c-1", open: Bool) throws {
            try store.writer.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO orders (provider_order_id, customer_order_id, client_identity, client_address, state, is_open,
                                            snapshot, revision, created_at, updated_at)
                        VALUES (?, ?, ?, '192.0.2.1', 'Closed', ?, '{}', 1, 0, 0)
                        """, arguments: [providerOrderID, customerOrderID, client, open ? 1 : 0])
            }
        }
        try insert("p-1", open: false)
        try insert("p-2", open: false)
        try insert("p-3", open: true)
        #expect(throws: DatabaseError.self) { try insert("p-4", open: true) }
        // Other clients, other customer order ids.
        try insert("p-5", client: "globex", open: true)
        try insert("p-6", customerOrderID: "c-2", open: true)
        // Closing the open one frees the id; reopening a closed one while another is open is refused.
        try store.writer.write { db in try db.execute(sql: "UPDATE orders SET is_open = 0 WHERE provider_order_id = 'p-3'") }
        try insert("p-4", open: true)
        #expect(throws: DatabaseError.self) {
            try store.writer.write { db in try db.execute(sql: "UPDATE orders SET is_open = 1 WHERE provider_order_id = 'p-1'") }
        }
        let open = try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT provider_order_id FROM orders WHERE is_open = 1 ORDER BY provider_order_id")
        }
        #expect(open == ["p-4", "p-5", "p-6"])
    }

    @Test("a write transaction's BEGIN and COMMIT are prepared once, and run once per commit")
    func transactionStatementsStayPrepared() throws {
        let store = try ServerOrderStore.inMemory()
        var d = Dialogue()
        try d.clientQuotes()
        d.serverReceivesQuotation()
        try store.commit(d.serverChange())
        d.now = StoreFixture.at(1)
        try d.serverAcknowledges()
        try store.commit(d.serverChange())
        // Each statement prepared on the writer's connection, with the times it ran.
        let runs = store.writer.writeWithoutTransaction { database in
            var runs: [String: Int32] = [:]
            var statement = sqlite3_next_stmt(database.sqliteConnection, nil)
            while let current = statement {
                if let sql = sqlite3_sql(current) { runs[String(cString: sql), default: 0] += sqlite3_stmt_status(current, SQLITE_STMTSTATUS_RUN, 0) }
                statement = sqlite3_next_stmt(database.sqliteConnection, current)
            }
            return runs
        }
        #expect(runs["BEGIN IMMEDIATE TRANSACTION"] == 2, "\(runs)")
        #expect(runs["COMMIT TRANSACTION"] == 2, "\(runs)")
        #expect(try store.order(providerOrderID: d.providerOrderID)?.summary.revision == 2)
    }

    @Test("a commit runs only the reads its change needs: none of the reservations of a new order, no look for another open order once stored open")
    func commitsSkipReadsTheyDoNotNeed() throws {
        let store = try ServerOrderStore.inMemory()
        let trace = WriterStatementTrace(store)
        func run(_ change: OrderChange) throws -> [String] {
            trace.reset()
            try store.commit(change)
            return trace.statements
        }
        let reservationsRead = ServerOrderStore.SQL.reservationsOfOrder
        let otherOpenRead = ServerOrderStore.SQL.otherOpenOrder
        let offered = HeldCapacity(offered: [Reservation(linkID: "link-par-1", direction: .outgoing, mbps: 90)])
        var d = Dialogue()
        try d.clientQuotes()
        d.serverReceivesQuotation()

        // A new order: the look for another open order, and no reservations to read.
        let created = try run(d.serverChange(reservations: offered))
        #expect(created.contains(otherOpenRead))
        #expect(!created.contains(reservationsRead))
        #expect(created.contains { $0.hasPrefix("INSERT INTO reservations") })

        // Stored open already: its reservations are read (they move), the other-open look is not run.
        d.now = StoreFixture.at(1)
        try d.serverAcknowledges()
        let acknowledged = try run(d.serverChange(reservations: offered))
        #expect(acknowledged.contains(reservationsRead))
        #expect(!acknowledged.contains(otherOpenRead))
        // The same reservations as stored: no row is written.
        #expect(
            !acknowledged.contains {
                $0.contains("INTO reservations") || $0.hasPrefix("DELETE FROM reservations") || $0.hasPrefix("UPDATE reservations")
            })
        #expect(try store.reservations(providerOrderID: d.providerOrderID) == offered)
        #expect(try store.reservedTotals() == [Reservation.Key("link-par-1", .outgoing): 90])

        // The agreement commits what was offered: the rows change kind in place.
        let committed = HeldCapacity(committed: offered.offered)
        let agreed = try run(d.serverChange(reservations: committed))
        #expect(agreed.contains("UPDATE reservations SET kind = ? WHERE provider_order_id = ?"))
        #expect(!agreed.contains { $0.contains("INTO reservations") || $0.hasPrefix("DELETE FROM reservations") })
        #expect(try store.reservations(providerOrderID: d.providerOrderID) == committed)
        #expect(try store.reservationTotalMismatches().isEmpty)
        #expect(try store.reservedTotal(for: Reservation.Key("link-par-1", .outgoing), kind: .committed) == 90)
        #expect(try store.reservedTotal(for: Reservation.Key("link-par-1", .outgoing), kind: .offered) == 0)

        // Other amounts (an UPDATE's offer next to the agreement): the rows are replaced.
        let updating = HeldCapacity(offered: [Reservation(linkID: "link-par-1", direction: .outgoing, mbps: 20)], committed: offered.offered)
        let replaced = try run(d.serverChange(reservations: updating))
        #expect(replaced.contains { $0.hasPrefix("DELETE FROM reservations") })
        #expect(replaced.contains { $0.hasPrefix("INSERT INTO reservations") })
        #expect(try store.reservations(providerOrderID: d.providerOrderID) == updating)
        #expect(try store.reservationTotalMismatches().isEmpty)
        #expect(try store.reservedTotals() == [Reservation.Key("link-par-1", .outgoing): 110])

        // The unique index still keeps one open order per customer order id: a second one is refused.
        let customerOrderID = d.client.customerOrderID.rawValue
        let (twin, twinActions) = StoreFixture.quotedServerOrder(customerOrderID: customerOrderID, providerOrderID: "p-twin")
        #expect(throws: StoreError.openOrderExists(customerOrderID: customerOrderID, providerOrderID: d.providerOrderID.rawValue)) {
            try store.commit(OrderChange(machine: twin, clientIdentity: StoreFixture.identity, at: StoreFixture.at(2), actions: twinActions))
        }
    }

    @Test("an order's update sets only the columns whose value changes, so SQLite rewrites no index of the others")
    func updatesSetOnlyTheColumnsThatChange() throws {
        let store = try ServerOrderStore.inMemory()
        let trace = WriterStatementTrace(store)
        var d = Dialogue()
        try d.clientQuotes()
        d.serverReceivesQuotation()
        var change = d.serverChange()
        change.clientAddress = "192.0.2.1:4000"
        try store.commit(change)
        func update(_ change: OrderChange) throws -> String? {
            trace.reset()
            try store.commit(change)
            return trace.statements.first { $0.hasPrefix("UPDATE orders") }
        }
        let first = try #require(try store.order(providerOrderID: d.providerOrderID))

        // The same machine again: its snapshot, revision and time only.
        change.at = StoreFixture.at(1)
        #expect(try update(change) == "UPDATE orders SET snapshot = ?, revision = ?, updated_at = ? WHERE provider_order_id = ?")
        // From another address: that too.
        change.clientAddress = "192.0.2.2:4001"
        #expect(try update(change) == "UPDATE orders SET snapshot = ?, revision = ?, updated_at = ?, client_address = ? WHERE provider_order_id = ?")
        // A new state of an order still open: the state, not is_open.
        d.now = StoreFixture.at(2)
        try d.serverAcknowledges()
        var acknowledged = d.serverChange()
        acknowledged.clientAddress = change.clientAddress
        let statement = try #require(try update(acknowledged))
        #expect(statement.contains("state = ?") && !statement.contains("is_open") && !statement.contains("client_address"), "\(statement)")

        let stored = try #require(try store.order(providerOrderID: d.providerOrderID))
        #expect(stored.revision == first.revision + 3)
        #expect(stored.state == d.serverMachine.state && stored.state != first.state)
        #expect(stored.isOpen && stored.clientAddress == "192.0.2.2:4001")
        #expect(stored.machine == d.serverMachine)
    }

    @Test("the engine's lookups run on the writer's connection, outside any transaction, and see every commit")
    func lookupsRunOnTheWriterWithoutATransaction() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path("cpnpd.sqlite")
        let store = try ServerOrderStore(path: path)
        let other = try ServerOrderStore(path: path)
        let trace = WriterStatementTrace(store)
        // Committed by another connection to the file (the admin CLI's, another process's): seen at once.
        var d = Dialogue()
        try d.quoteAndAcknowledge(committingTo: other)
        trace.reset()
        #expect(try store.order(providerOrderID: d.providerOrderID)?.state == .awaitingProcessing)
        #expect(
            try store.order(clientIdentity: StoreFixture.identity, customerOrderID: d.client.customerOrderID)?.providerOrderID == d.providerOrderID)
        #expect(try store.customerOrderIDExists(clientIdentity: StoreFixture.identity, d.client.customerOrderID.rawValue))
        let traced = trace.statements
        #expect(traced.contains(ServerOrderStore.SQL.orderByProviderID))
        #expect(traced.contains(ServerOrderStore.SQL.customerOrderIDExists))
        #expect(!traced.contains { $0.hasPrefix("BEGIN") || $0.hasPrefix("COMMIT") }, "\(traced)")
    }

    @Test("10,000 orders: insert, then look up by both keys")
    func tenThousandOrders() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let store = try ServerOrderStore(path: dir.path("cpnpd.sqlite"))
        var batch: [OrderChange] = []
        for i in 0..<10_000 {
            let (m, a) = StoreFixture.quotedServerOrder(customerOrderID: "c-\(i)", providerOrderID: "p-\(i)", seed: UInt64(i))
            batch.append(
                OrderChange(
                    machine: m, clientIdentity: "CN=client-\(i % 50)", at: StoreFixture.at(Int64(i)), actions: a,
                    reservations: HeldCapacity(offered: [Reservation(linkID: "link-\(i % 20)", direction: .outgoing, mbps: 1)])))
            if batch.count == 500 {
                try store.commit(batch)
                batch.removeAll()
            }
        }
        #expect(try store.orderCount() == 10_000)
        for i in stride(from: 0, to: 10_000, by: 97) {
            let byID = try #require(try store.order(providerOrderID: StoreFixture.providerOrderID("p-\(i)")))
            #expect(byID.customerOrderID.rawValue == "c-\(i)")
            let byClient = try #require(
                try store.order(clientIdentity: "CN=client-\(i % 50)", customerOrderID: StoreFixture.customerOrderID("c-\(i)")))
            #expect(byClient.providerOrderID == byID.providerOrderID)
            #expect(try store.customerOrderIDExists(clientIdentity: "CN=client-\(i % 50)", "c-\(i)"))
            #expect(try store.audit(providerOrderID: byID.providerOrderID).count == 1)
        }
        #expect(try store.openOrderCount(clientIdentity: "CN=client-7") == 200)
        #expect(try store.reservedTotal(for: Reservation.Key("link-3", .outgoing)) == 500)
        #expect(try store.reservedTotals().count == 20)
        let page = try store.orders(limit: 50, offset: 100)
        #expect(page.count == 50)
        #expect(page.first?.providerOrderID.rawValue == "p-9899")
        // Decoded in parallel chunks: every open order once, each with its own machine.
        let open = try store.openOrders()
        #expect(open.count == 10_000)
        #expect(Set(open.map(\.providerOrderID.rawValue)) == Set((0..<10_000).map { "p-\($0)" }))
        #expect(open.allSatisfy { $0.machine.customerOrderID.rawValue == "c-" + $0.providerOrderID.rawValue.dropFirst(2) })
    }
}

/// True when the plan reads tables through indexes only (`SEARCH … USING …`, `SCAN … USING INDEX`).
func usesIndexesOnly(_ plan: [String]) -> Bool {
    guard plan.contains(where: { $0.contains("INDEX") || $0.contains("PRIMARY KEY") }) else { return false }
    return !plan.contains { line in
        let l = line.trimmingCharacters(in: .whitespaces)
        return l.hasPrefix("SCAN ") && !l.contains("USING") && l != "SCAN CONSTANT ROW"
    }
}
