// ClientOrderStore on real SQLite files: round trips of a real client machine through its states,
// history, open orders for restart recovery, lookups, revisions, durability and index use. The
// round trip and the lookups run against VolatileClientOrderStore too, and a differential test
// holds the two implementations to the same answers.
import CPNPTesting
@testable import CPNPCore
@testable import CPNPStorage
import Foundation
import GRDB
import GRDBSQLite
import Testing

@Suite("ClientOrderStore")
struct ClientOrderStoreTests {
    @Test("a real client order round-trips through every state up to Completed, with its history", arguments: ClientStoreKind.allCases)
    func everyStateRoundTrips(_ kind: ClientStoreKind) throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let store = try kind.open(in: dir)
        var d = Dialogue()
        var transitions: [ClientOrderChange.Transition] = []
        var revision: Int64 = 0

        func saveAndCheck(_ state: ClientOrderStateMachine.State) throws {
            let change = d.clientChange()
            transitions += change.transitions
            revision = try store.save(change)
            let stored = try #require(try store.order(customerOrderID: d.client.customerOrderID))
            #expect(stored.state == state)
            #expect(stored.machine == d.client)
            #expect(stored.isOpen)
            #expect(stored.revision == revision)
            #expect(stored.serverAddress == "198.51.100.1:8921")
            #expect(stored.serverName == "provider.example")
            #expect(stored.providerOrderID == d.client.providerOrderID)
            #expect(stored.createdAt == StoreFixture.start)
            #expect(stored.updatedAt == d.now)
        }

        try d.clientQuotes()
        try saveAndCheck(.pqoSent)
        #expect(try store.order(customerOrderID: d.client.customerOrderID)?.providerOrderID == nil)
        d.serverReceivesQuotation()
        try d.serverAcknowledges()
        d.now = StoreFixture.at(1)
        d.deliverToClient()
        try saveAndCheck(.serverProcessing)
        #expect(try store.order(customerOrderID: d.client.customerOrderID)?.providerOrderID == d.providerOrderID)

        try d.serverOffers()
        d.now = StoreFixture.at(2)
        d.deliverToClient()
        try saveAndCheck(.offerReceived)
        d.now = StoreFixture.at(3)
        try d.clientProcessesOffer()
        try saveAndCheck(.offerProcessing)
        d.deliverToServer()
        d.now = StoreFixture.at(4)
        try d.clientAccepts()
        try saveAndCheck(.acceptSent)
        d.deliverToServer()
        try d.serverConfirmsAgreement()
        d.now = StoreFixture.at(5)
        d.deliverToClient()
        try saveAndCheck(.completed)
        #expect(try store.order(customerOrderID: d.client.customerOrderID)?.machine.agreement?.nonce == d.serverMachine.agreement?.nonce)

        let events = try store.events(customerOrderID: d.client.customerOrderID)
        #expect(events.map { ClientOrderChange.Transition(from: $0.from, to: $0.to, event: $0.event) } == transitions)
        #expect(events.last?.to == .completed)
        #expect(events.allSatisfy { $0.serverAddress == "198.51.100.1:8921" })
        #expect(try store.openOrders().map(\.customerOrderID) == [d.client.customerOrderID])
    }

    @Test("client snapshots name their documents, stored once; a snapshot with its documents inline still reads")
    func documentsAreStoredOnce() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let store = try ClientOrderStore(path: dir.path("cpnp.sqlite"))
        var d = Dialogue()
        try d.clientQuotes()
        try store.save(d.clientChange())
        d.serverReceivesQuotation()
        try d.serverAcknowledges()
        d.deliverToClient()
        try d.agreedOnServer()
        d.deliverToClient()
        #expect(d.client.state == .completed)
        try store.save(d.clientChange())
        let coi = d.client.customerOrderID.rawValue
        let (snapshot, documents) = try store.writer.read { db in
            (
                try String.fetchOne(db, sql: "SELECT snapshot FROM orders WHERE customer_order_id = ?", arguments: [coi]) ?? "",
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents") ?? 0
            )
        }
        // The requested and the offered document, whatever the copies the machine holds.
        #expect(documents == 2)
        #expect(snapshot.contains(CPDReferences.prefix) && !snapshot.contains("\"customer-node\""))

        // As the previous release wrote it: every document inline.
        let inline = JSONSerializer.serializeString(d.client.snapshot)
        #expect(inline.contains("\"customer-node\"") && !inline.contains(CPDReferences.prefix))
        try store.writer.write { db in try db.execute(sql: "UPDATE orders SET snapshot = ? WHERE customer_order_id = ?", arguments: [inline, coi]) }
        #expect(try ClientOrderStore(path: dir.path("cpnp.sqlite")).order(customerOrderID: d.client.customerOrderID)?.machine == d.client)
    }

    @Test("a declined order stays open until its DECLINE is acknowledged, then closes; history is kept")
    func declineKeepsRetransmissionOpen() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let path = dir.path("cpnp.sqlite")
        var d = Dialogue()
        do {
            let store = try ClientOrderStore(path: path)
            try d.clientQuotes()
            try store.save(d.clientChange())
            d.serverReceivesQuotation()
            try d.serverAcknowledges()
            d.deliverToClient()
            try d.offerProcessed()
            try d.clientDeclines()
            try store.save(d.clientChange())
            let stored = try #require(try store.order(customerOrderID: d.client.customerOrderID))
            #expect(stored.state == .cancelled)
            #expect(stored.isOpen)  // the DECLINE awaits its ACK
        }
        // After a restart the order is reloaded with its retransmission timer.
        let store = try ClientOrderStore(path: path)
        let reloaded = try #require(try store.openOrders().first)
        #expect(reloaded.machine == d.client)
        #expect(reloaded.machine.armedTimers(now: StoreFixture.at(9)).contains { $0.0 == .retransmission && $0.1 == StoreFixture.at(9) })
        d.client = reloaded.machine
        d.deliverToServer()
        d.deliverToClient()
        try store.save(ClientOrderChange(machine: d.client, at: StoreFixture.at(10), actions: d.clientActions, expectedRevision: reloaded.revision))
        let closed = try #require(try store.order(customerOrderID: d.client.customerOrderID))
        #expect(!closed.isOpen)
        #expect(closed.serverName == "provider.example")  // kept when not given
        #expect(try store.openOrders().isEmpty)
        #expect(try store.orders().count == 1)  // never deleted
        #expect(try store.events(customerOrderID: d.client.customerOrderID).count >= 2)
    }

    @Test("lookups by either id, groups, listings, revision conflicts", arguments: ClientStoreKind.allCases)
    func lookups(_ kind: ClientStoreKind) throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let store = try kind.open(in: dir)
        var dialogues: [Dialogue] = []
        for (i, poid) in ["po-1", "po-1", "po-2"].enumerated() {
            var d = Dialogue(customerOrderID: "order-\(i)", providerOrderID: poid, seed: UInt64(i))
            d.now = StoreFixture.at(Int64(i))
            try d.clientQuotes()
            d.serverReceivesQuotation()
            try d.serverAcknowledges()
            d.deliverToClient()
            try store.save(d.clientChange(group: i < 2 ? "best-of-2" : nil))
            dialogues.append(d)
        }
        #expect(try store.orders(identifiedBy: "order-2").map(\.customerOrderID.rawValue) == ["order-2"])
        #expect(try store.orders(identifiedBy: "po-1").map(\.customerOrderID.rawValue) == ["order-0", "order-1"])
        #expect(try store.orders(identifiedBy: "nothing").isEmpty)
        #expect(try store.orders(group: "best-of-2").map(\.customerOrderID.rawValue) == ["order-0", "order-1"])
        #expect(try store.orders().map(\.customerOrderID.rawValue) == ["order-2", "order-1", "order-0"])
        #expect(try store.orders(limit: 1, offset: 1).map(\.customerOrderID.rawValue) == ["order-1"])
        #expect(try store.orders(state: .serverProcessing).count == 3)
        #expect(try store.orders(state: .completed).isEmpty)
        #expect(try store.customerOrderIDExists("order-1"))
        #expect(try !store.customerOrderIDExists("order-9"))

        #expect(throws: StoreError.revisionConflict(orderID: "order-0", expected: 0, actual: 1)) {
            try store.save(ClientOrderChange(machine: dialogues[0].client, at: StoreFixture.at(9), expectedRevision: 0))
        }
        // A machine without a transaction needs an address the first time.
        let fresh = ClientOrderStateMachine(customerOrderID: StoreFixture.customerOrderID("order-new"))
        #expect(throws: StoreError.self) { try store.save(ClientOrderChange(machine: fresh, at: StoreFixture.start)) }
        #expect(try store.save(ClientOrderChange(machine: fresh, serverAddress: "[2001:db8::1]:8921", at: StoreFixture.start)) == 1)
        #expect(try store.save(ClientOrderChange(machine: fresh, at: StoreFixture.at(1))) == 2)
        #expect(try store.order(customerOrderID: StoreFixture.customerOrderID("order-new"))?.serverAddress == "[2001:db8::1]:8921")
        #expect(try store.order(customerOrderID: StoreFixture.customerOrderID("order-new"))?.state == .created)
    }

    /// A read of the in-memory store (one connection) does not expire the statements a save
    /// prepared: SQLite counts each statement's re-preparations.
    @Test("reads of an in-memory store leave the statements of a save prepared")
    func inMemoryReadsKeepStatementsPrepared() throws {
        let store = try ClientOrderStore.inMemory()
        var d = Dialogue()
        try d.clientQuotes()
        try store.save(d.clientChange())
        for _ in 0..<5 {
            #expect(try store.customerOrderIDExists(d.client.customerOrderID.rawValue))
            #expect(try store.order(customerOrderID: d.client.customerOrderID) != nil)
            try store.save(ClientOrderChange(machine: d.client, at: d.now))
        }
        let repreparations = try store.writer.writeWithoutTransaction { database in
            let head = try database.cachedStatement(sql: "SELECT revision, server_address FROM orders WHERE customer_order_id = ?")
            return sqlite3_stmt_status(head.sqliteStatement, SQLITE_STMTSTATUS_REPREPARE, 0)
        }
        #expect(repreparations == 0)
        #expect(try store.order(customerOrderID: d.client.customerOrderID)?.revision == 6)
    }

    @Test("client hot-path queries use indexes")
    func hotPathsUseIndexes() throws {
        let store = try ClientOrderStore.inMemory()
        typealias Statements = ClientOrderStore.SQL
        for (name, sql, n) in [
            ("by customer order id", Statements.byCustomerOrderID, 1), ("by provider order id", Statements.byProviderOrderID, 1),
            ("open orders", Statements.openOrders, 0), ("group", Statements.byGroup, 1), ("events", Statements.events, 1),
        ] {
            let plan = try store.queryPlan(sql, Array(repeating: "x", count: n))
            #expect(usesIndexesOnly(plan), "\(name): \(plan)")
        }
    }

    @Test("the volatile store answers every read as the SQLite store does, after the same saves")
    func volatileStoreMatchesSQLite() throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let sqlite = try ClientOrderStore(path: dir.path("cpnp.sqlite"))
        let volatile = VolatileClientOrderStore()
        let stores: [any ClientOrderStoring] = [sqlite, volatile]
        /// Applies `change` to both stores: the same revision, or the same error.
        func save(_ change: ClientOrderChange) {
            let outcomes = stores.map { store -> String in
                do { return "revision \(try store.save(change))" } catch { return "\(error)" }
            }
            #expect(outcomes[0] == outcomes[1], "\(change.machine.customerOrderID): \(outcomes)")
        }
        // Five orders, two of them created at the same time (ties go by insertion), two in a group,
        // one declined and its DECLINE acknowledged, one completed, one saved with a stale revision.
        var dialogues = (0..<5).map { i in Dialogue(customerOrderID: "order-\(i)", providerOrderID: i == 4 ? "po-1" : "po-\(i / 2)", seed: UInt64(i))
        }
        for i in dialogues.indices {
            dialogues[i].now = StoreFixture.at(Int64(min(i, 3)))
            try dialogues[i].clientQuotes()
            save(dialogues[i].clientChange(group: i < 2 ? "best-of-2" : nil))
        }
        for i in [1, 3, 4] {
            dialogues[i].serverReceivesQuotation()
            try dialogues[i].serverAcknowledges()
            dialogues[i].now = StoreFixture.at(10 + Int64(i))
            dialogues[i].deliverToClient()
            save(dialogues[i].clientChange())
        }
        try dialogues[1].offerProcessed()
        try dialogues[1].clientDeclines()
        save(dialogues[1].clientChange())
        dialogues[1].deliverToServer()
        dialogues[1].deliverToClient()
        save(ClientOrderChange(machine: dialogues[1].client, at: StoreFixture.at(30), actions: dialogues[1].clientActions))
        try dialogues[3].agreedOnServer()
        save(dialogues[3].clientChange())
        dialogues[3].deliverToClient()
        save(
            ClientOrderChange(
                machine: dialogues[3].client, serverAddress: "[2001:db8::7]:8921", at: StoreFixture.at(40), actions: dialogues[3].clientActions))
        save(ClientOrderChange(machine: dialogues[4].client, at: StoreFixture.at(50), expectedRevision: 1))
        save(ClientOrderChange(machine: ClientOrderStateMachine(customerOrderID: StoreFixture.customerOrderID("order-new")), at: StoreFixture.at(60)))

        func reads(_ store: any ClientOrderStoring) throws -> [String] {
            var lines: [String] = []
            func add(_ name: String, _ orders: [StoredClientOrder]) {
                lines.append(
                    "\(name): "
                        + orders.map { "\($0.customerOrderID) r\($0.revision) \($0.state) open=\($0.isOpen) \($0.serverAddress)" }.joined(
                            separator: ", "))
            }
            add("all", try store.orders(limit: 100, offset: 0, state: nil))
            add("page", try store.orders(limit: 2, offset: 1, state: nil))
            add("processing", try store.orders(limit: 100, offset: 0, state: .serverProcessing))
            add("open", try store.openOrders())
            add("group", try store.orders(group: "best-of-2"))
            for id in ["order-0", "po-1", "po-0", "nothing"] { add("identified by \(id)", try store.orders(identifiedBy: id)) }
            for dialogue in dialogues {
                let id = dialogue.client.customerOrderID
                let stored = try #require(try store.order(customerOrderID: id))
                lines.append(
                    "\(id): \(stored.serverName ?? "-") \(stored.group ?? "-") \(stored.createdAt) \(stored.updatedAt) \(stored.providerOrderID?.rawValue ?? "-")"
                )
                #expect(stored.machine == dialogue.client)
                lines.append(
                    "\(id) events: "
                        + (try store.events(customerOrderID: id)).map { "\($0.id) \($0.at) \($0.from)→\($0.to) \($0.event) \($0.serverAddress)" }
                        .joined(separator: ", "))
                lines.append("\(id) exists: \(try store.customerOrderIDExists(id.rawValue))")
            }
            lines.append("unknown exists: \(try store.customerOrderIDExists("order-9")) \(try store.customerOrderIDExists("not an id!"))")
            return lines
        }
        let expected = try reads(sqlite)
        #expect(try reads(volatile) == expected)
        #expect(expected.contains { $0.hasPrefix("open: ") && $0.contains("order-3") && !$0.contains("order-1") })
        #expect(throws: StoreError.invalidArgument("limit and offset must not be negative")) { try volatile.orders(limit: -1, offset: 0, state: nil) }
    }
}

/// The implementations of ``ClientOrderStoring`` the shared tests run against.
enum ClientStoreKind: String, CaseIterable, CustomTestStringConvertible {
    case sqliteFile, volatile

    var testDescription: String { rawValue }

    func open(in directory: TempDirectory) throws -> any ClientOrderStoring {
        switch self {
        case .sqliteFile: try ClientOrderStore(path: directory.path("cpnp.sqlite"))
        case .volatile: VolatileClientOrderStore()
        }
    }
}
