// The provider's order store on a real PostgreSQL server (started by the test in a temporary
// directory): the same behaviour as on SQLite, and exact under several writers — capacity never
// overbooked, one writer per revision, orders of a dead instance claimed once, provisioning events
// claimed once (docs/design/storage.md, docs/deployment.md).
@testable import CPNPCore
@testable import CPNPStorage
import CPNPTesting
import Dispatch
import Foundation
import Synchronization
import Testing

@Suite(.serialized)
struct PostgresStoreTests {
    @Test func databaseURLs() throws {
        let full = try PostgresLocation(
            url: "postgres://ops%40x:p%3Ass@db.example:6432/orders?sslmode=verify-full&sslrootcert=/etc/ca.pem&pool_size=8")
        #expect(full.user == "ops@x" && full.password == "p:ss" && full.host == "db.example" && full.port == 6432 && full.database == "orders")
        #expect(full.tls == .verifyFull && full.rootCertificatePath == "/etc/ca.pem" && full.poolSize == 8)
        #expect(!full.description.contains("p:ss") && full.description.contains("***"))
        let plain = try PostgresLocation(url: "postgresql://cpnp@[::1]/cpnp")
        #expect(plain.host == "::1" && plain.port == 5432 && plain.password == nil && plain.tls == .prefer)
        let bad: [(String, String)] = [
            ("postgres://cpnp@db", "names no database"),
            ("postgres://db/cpnp", "names no user"),
            ("postgres://cpnp@db/cpnp?sslmode=always", "sslmode \"always\""),
            ("postgres://cpnp@db/cpnp?timeout=3", "unknown URL option \"timeout\""),
            ("postgres://cpnp@db/cpnp?sslrootcert=/x.pem", "verify-full only"),
            ("postgres://cpnp@db:0/cpnp", "out of range"),
            ("mysql://cpnp@db/cpnp", "not a PostgreSQL URL"),
        ]
        for (url, expected) in bad {
            #expect(throws: StoreError.self, "\(url)") { try PostgresLocation(url: url) }
            do { _ = try PostgresLocation(url: url) } catch { #expect(error.description.contains(expected), "\(url): \(error)") }
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func theStoreBehavesAsOnSQLite() async throws {
        let server = try await TemporaryPostgres.start()
        defer { server.stop() }
        try await server.createDatabase("orders")
        let url = server.url(database: "orders")
        // Three processes' worth of stores opening a new database at once: the migrations run once.
        let opened = Mutex<[Result<ServerOrderStore, any Error>]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            let result = Result { try ServerOrderStore(location: url) }
            opened.withLock { $0.append(result) }
        }
        let stores = try opened.withLock { $0 }.map { try $0.get() }
        #expect(
            try await server.psql("SELECT name FROM cpnp_migrations ORDER BY name", database: "orders")
                .split(separator: "\n").map(String.init) == [
                    "server-pg-v1", "server-pg-v2-instances", "server-pg-v3-clients", "server-pg-v4-webhooks", "server-pg-v5-outbox-documents",
                    "server-pg-v6-fewer-order-indexes", "server-pg-v7-one-customer-order-index",
                ])
        let orderIndexes = try await server.psql("SELECT indexname FROM pg_indexes WHERE tablename = 'orders'", database: "orders")
            .split(separator: "\n").map(String.init)
        #expect(
            orderIndexes.contains("orders_customer_order") && orderIndexes.contains("orders_open") && !orderIndexes.contains("orders_client_coi_poi"))
        #expect(!orderIndexes.contains("orders_client_coi") && !orderIndexes.contains("orders_one_open_per_coi"))
        // The claims of orphaned orders read it (SharedStore.swift).
        #expect(orderIndexes.contains("orders_owner"))
        let store = stores[0]
        #expect(store.dialect == .postgres && store.sharesOrders)

        // A new order, read back by either key, its documents stored once.
        let link = Reservation.Key("PE-PAR-1:xe-0/0/0", .outgoing)
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-1")
        let change = OrderChange(
            machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions,
            reservations: HeldCapacity(offered: [Reservation(link, mbps: 60)]), capacityLimits: [link: 100],
            expectedRevision: 0)
        #expect(try store.commit(change) == 1)
        let stored = try #require(try stores[1].order(providerOrderID: m.providerOrderID))
        #expect(stored.machine == m && stored.revision == 1 && stored.clientIdentity == StoreFixture.identity)
        #expect(try stores[2].order(clientIdentity: StoreFixture.identity, customerOrderID: m.customerOrderID)?.providerOrderID == m.providerOrderID)
        #expect(try store.audit(providerOrderID: m.providerOrderID).count == OrderChange.transitions(in: actions).count)
        #expect(try store.reservedTotal(for: link) == 60)
        // One snapshot (a repeatable-read transaction) for the order, its reservations and its audit trail.
        let details = try #require(try stores[2].details(providerOrderID: m.providerOrderID))
        #expect(details.order == stored && details.reservations == HeldCapacity(offered: [Reservation(link, mbps: 60)]))
        #expect(details.audit.count == OrderChange.transitions(in: actions).count)
        #expect(try stores[2].details(providerOrderID: StoreFixture.providerOrderID("p-none")) == nil)
        #expect(try await server.psql("SELECT COUNT(*) FROM documents", database: "orders") == "1")

        // The checks inside the transaction: revision, one open order per customer order id, capacity.
        #expect(throws: StoreError.revisionConflict(orderID: "p-1", expected: 0, actual: 1)) { try stores[1].commit(change) }
        let (twin, twinActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-2")
        #expect(throws: StoreError.openOrderExists(customerOrderID: "c-1", providerOrderID: "p-1")) {
            try store.commit(OrderChange(machine: twin, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: twinActions))
        }
        let (big, bigActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-3", providerOrderID: "p-3")
        #expect(throws: StoreError.self) {
            try store.commit(
                OrderChange(
                    machine: big, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: bigActions,
                    reservations: HeldCapacity(offered: [Reservation(link, mbps: 41)]), capacityLimits: [link: 100]))
        }
        #expect(try store.order(providerOrderID: big.providerOrderID) == nil)
        #expect(try store.reservedTotal(for: link) == 60)
        #expect(throws: StoreError.openOrderLimitReached(clientIdentity: StoreFixture.identity, limit: 1)) {
            var capped = OrderChange(machine: big, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: bigActions)
            capped.openOrderLimit = 1
            try store.commit(capped)
        }

        // Group commit: a failing change rolled back alone.
        let (a, aActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-a", providerOrderID: "p-a")
        let (b, bActions) = StoreFixture.quotedServerOrder(customerOrderID: "c-b", providerOrderID: "p-b")
        let results = try store.commit(batch: [
            OrderChange(
                machine: a, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: aActions,
                reservations: HeldCapacity(offered: [Reservation(link, mbps: 50)]), capacityLimits: [link: 100]),
            OrderChange(
                machine: b, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: bActions,
                reservations: HeldCapacity(offered: [Reservation(link, mbps: 30)]), capacityLimits: [link: 100]),
        ])
        #expect((try? results[0].get()) == nil && (try? results[1].get()) == 1)
        #expect(try store.reservedTotal(for: link) == 90)
        #expect(try store.reservationTotalMismatches().isEmpty)

        // An operator's request is settled once, whichever instance tries first.
        let request = try store.enqueueAdminRequest(providerOrderID: m.providerOrderID, action: .approve, at: StoreFixture.at(1))
        #expect(try stores[2].pendingAdminRequests().map(\.id) == [request])
        var settle = OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(2), expectedRevision: 1)
        settle.processedAdminRequests = [AdminRequestResult(id: request, outcome: "approved")]
        #expect(try stores[1].commit(settle) == 2)
        settle.expectedRevision = 2
        #expect(throws: StoreError.adminRequestAlreadyProcessed(id: request)) { try stores[2].commit(settle) }
        #expect(try store.pendingAdminRequests().isEmpty)

        // Listing with the insertion order as tie-break (PostgreSQL has no rowid).
        #expect(try store.orders(limit: 10).map(\.providerOrderID.rawValue) == ["p-b", "p-1"])
        #expect(try store.orderCount() == 2)

        // The index alone, without the store's look for another open order: p-1 is the open order of
        // c-1, so a second open row is refused and closed rows are not (orders_customer_order).
        func rawInsert(_ providerOrderID: String, open: Bool) -> String {
            """
            INSERT INTO orders (provider_order_id, customer_order_id, client_identity, client_address, state, is_open,
                                snapshot, revision, created_at, updated_at)
            VALUES ('\(providerOrderID)', 'c-1', '\(StoreFixture.identity)', '192.0.2.1', 'Closed', \(open ? 1 : 0), '{}', 1, 0, 0)
            """
        }
        await #expect(throws: TemporaryPostgresError.self) { _ = try await server.psql(rawInsert("p-raw-1", open: true), database: "orders") }
        _ = try await server.psql(rawInsert("p-raw-2", open: false), database: "orders")
        _ = try await server.psql(rawInsert("p-raw-3", open: false), database: "orders")
        #expect(
            try await server.psql("SELECT provider_order_id FROM orders WHERE customer_order_id = 'c-1' AND is_open = 1", database: "orders")
                == "p-1")
    }

    @Test(.timeLimit(.minutes(2)))
    func writersRacingForOneLinkNeverOverbookIt() async throws {
        let server = try await TemporaryPostgres.start()
        defer { server.stop() }
        try await server.createDatabase("race")
        let url = server.url(database: "race")
        let instances = try (0..<3).map { _ in try ServerOrderStore(location: url) }
        let link = Reservation.Key("scarce", .incoming)
        // 36 orders of 10 Mbps on a 100 Mbps link, from 12 threads over 3 stores (connection pools).
        let outcomes = Mutex<[Bool]>([])
        DispatchQueue.concurrentPerform(iterations: 12) { thread in
            for n in 0..<3 {
                let (m, actions) = StoreFixture.quotedServerOrder(
                    customerOrderID: "c-\(thread)-\(n)", providerOrderID: "p-\(thread)-\(n)", seed: UInt64(thread * 10 + n))
                let change = OrderChange(
                    machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions,
                    reservations: HeldCapacity(offered: [Reservation(link, mbps: 10)]), capacityLimits: [link: 100])
                let ok = (try? instances[thread % 3].commit(change)) != nil
                outcomes.withLock { $0.append(ok) }
            }
        }
        let accepted = outcomes.withLock { $0 }.filter { $0 }.count
        #expect(accepted == 10)
        #expect(try instances[1].reservedTotal(for: link) == 100)
        #expect(try instances[2].reservationTotalMismatches().isEmpty)
        #expect(try await server.psql("SELECT COUNT(*) FROM reservations", database: "race") == "10")

        // Releases race too (no capacity check, only the totals moved): none is lost.
        let released = Mutex<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 12) { thread in
            for n in 0..<3 {
                let (m, _) = StoreFixture.quotedServerOrder(
                    customerOrderID: "c-\(thread)-\(n)", providerOrderID: "p-\(thread)-\(n)", seed: UInt64(thread * 10 + n))
                guard (try? instances[0].order(providerOrderID: m.providerOrderID)) != nil else { continue }
                let release = OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(1), reservations: .empty)
                if (try? instances[(thread + 1) % 3].commit(release)) != nil { released.withLock { $0 += 1 } }
            }
        }
        #expect(released.withLock { $0 } == 10)
        #expect(try instances[1].reservedTotal(for: link) == 0)
        #expect(try instances[2].reservationTotalMismatches().isEmpty)

        // The same for a customer's cap on open orders: 12 new orders of one client, at most 15 open;
        // it has 10 open already (above, without reservations now), so exactly 5 are committed.
        let capped = Mutex<[Bool]>([])
        DispatchQueue.concurrentPerform(iterations: 12) { thread in
            let (m, actions) = StoreFixture.quotedServerOrder(
                customerOrderID: "cap-\(thread)", providerOrderID: "p-cap-\(thread)", seed: UInt64(100 + thread))
            var change = OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions)
            change.openOrderLimit = 15
            let ok = (try? instances[thread % 3].commit(change)) != nil
            capped.withLock { $0.append(ok) }
        }
        #expect(capped.withLock { $0 }.filter { $0 }.count == 5)
        #expect(try instances[0].openOrderCount(clientIdentity: StoreFixture.identity) == 15)
    }

    @Test(.timeLimit(.minutes(2)))
    func ordersOfAnInstanceThatStoppedAreClaimedOnce() async throws {
        let server = try await TemporaryPostgres.start()
        defer { server.stop() }
        try await server.createDatabase("claims")
        let url = server.url(database: "claims")
        let (a, b, c) = (try ServerOrderStore(location: url), try ServerOrderStore(location: url), try ServerOrderStore(location: url))
        let lease = Duration.seconds(5)
        try a.heartbeat(instance: "a", address: "", now: StoreFixture.start)
        try b.heartbeat(instance: "b", address: "", now: StoreFixture.start)
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-1")
        var change = OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions, expectedRevision: 0)
        change.owner = "a"
        #expect(try a.commit(change) == 1)
        #expect(try a.order(providerOrderID: m.providerOrderID)?.owner == "a")

        // While a sends heartbeats, nobody takes its order.
        try a.heartbeat(instance: "a", address: "", now: StoreFixture.at(4))
        #expect(try b.claimOrphanedOrders(instance: "b", now: StoreFixture.at(5), lease: lease).isEmpty)
        #expect(try b.liveInstances(now: StoreFixture.at(5), lease: lease) == ["a", "b"])

        // a stops: one claimant gets the order, with a new revision; the other, alive too, gets nothing.
        try b.heartbeat(instance: "b", address: "", now: StoreFixture.at(9))
        try c.heartbeat(instance: "c", address: "", now: StoreFixture.at(9))
        let claims = Mutex<[[StoredOrder]]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let claimed = (try? [b, c][i].claimOrphanedOrders(instance: ["b", "c"][i], now: StoreFixture.at(10), lease: lease)) ?? []
            claims.withLock { $0.append(claimed) }
        }
        let all = claims.withLock { $0 }.flatMap { $0 }
        #expect(all.count == 1)
        #expect(all.first?.revision == 2 && all.first?.owner != "a")
        // a, stalled rather than dead, can no longer commit from the state it had.
        var late = OrderChange(machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.at(11), expectedRevision: 1)
        late.owner = "a"
        #expect(throws: StoreError.revisionConflict(orderID: "p-1", expected: 1, actual: 2)) { try a.commit(late) }

        // A clean stop hands the orders back at once.
        let owner = try #require(all.first?.owner)
        try [b, c][owner == "b" ? 0 : 1].retire(instance: owner)
        #expect(try a.order(providerOrderID: m.providerOrderID)?.owner == nil)
        #expect(try a.claimOrphanedOrders(instance: "a", now: StoreFixture.at(12), lease: lease).count == 1)
    }

    @Test(.timeLimit(.minutes(2)))
    func aProvisioningEventIsClaimedByOneWorkerAtATime() async throws {
        let server = try await TemporaryPostgres.start()
        defer { server.stop() }
        try await server.createDatabase("outbox")
        let url = server.url(database: "outbox")
        let (a, b) = (try ServerOrderStore(location: url), try ServerOrderStore(location: url))
        let (m, actions) = StoreFixture.quotedServerOrder(customerOrderID: "c-1", providerOrderID: "p-1")
        try a.commit(
            OrderChange(
                machine: m, clientIdentity: StoreFixture.identity, at: StoreFixture.start, actions: actions,
                outbox: [
                    OutboxEvent(kind: .agreement, payload: StoreFixture.payload(m, "agreement"), document: m.requestedCPD),
                    OutboxEvent(kind: .activation, payload: StoreFixture.payload(m, "activation")),
                ]))
        try a.heartbeat(instance: "a", address: "", now: StoreFixture.at(1))
        try b.heartbeat(instance: "b", address: "", now: StoreFixture.at(1))
        let first = try a.claimDueOutbox(claimant: "a", now: StoreFixture.at(1), lease: .seconds(60), limit: 10)
        #expect(first.map(\.kind) == [.agreement])
        // Its document, stored once, is read back into the payload (under `cpd`, after its own members).
        var expected = try StoreFixture.payload(m, "agreement").object(at: .root)
        expected["cpd"] = m.requestedCPD.json
        #expect(first.first?.payload == .object(expected))
        // The other worker waits: the event is claimed, the next one is not first in line.
        #expect(try b.claimDueOutbox(claimant: "b", now: StoreFixture.at(2), lease: .seconds(60), limit: 10).isEmpty)
        // a died while handing it off: its claim lapses with its heartbeat (5 s), whatever the claim's own
        // lease; b takes the event, then the next once it is delivered.
        try b.heartbeat(instance: "b", address: "", now: StoreFixture.at(8))
        #expect(try b.claimDueOutbox(claimant: "b", now: StoreFixture.at(8), lease: .seconds(60), limit: 10).map(\.id) == first.map(\.id))
        #expect(try b.markAttemptFailed(id: first[0].id, error: "hook down", nextAttemptAt: StoreFixture.at(60)))
        // A failed attempt releases the claim; the event is due again at its next attempt.
        let retaken = try b.claimDueOutbox(claimant: "b", now: StoreFixture.at(70), lease: .seconds(60), limit: 10)
        #expect(retaken.map(\.id) == first.map(\.id))
        #expect(try b.markDelivered(id: retaken[0].id, at: StoreFixture.at(71)))
        #expect(try b.claimDueOutbox(claimant: "b", now: StoreFixture.at(72), lease: .seconds(60), limit: 10).map(\.kind) == [.activation])
        #expect(try a.undeliveredOutboxCount() == 1)
    }

    /// TLS to the database: `sslmode=require` encrypts, `verify-full` checks the server's certificate
    /// against `sslrootcert` and refuses another CA's, `disable` does not encrypt.
    @Test(.timeLimit(.minutes(2)))
    func tlsToTheDatabase() async throws {
        let server = try await TemporaryPostgres.start()
        defer { server.stop() }
        try await server.createDatabase("tls")
        let certificates = server.directory.appendingPathComponent("tls")
        try FileManager.default.createDirectory(at: certificates, withIntermediateDirectories: true)
        for name in ["server", "stranger"] {
            try await Self.run(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", certificates.appendingPathComponent("\(name).key").path, "-out",
                    certificates.appendingPathComponent("\(name).crt").path,
                ])
        }
        if getuid() == 0 { try await Self.run("/bin/chown", ["-R", "postgres", certificates.path]) }
        try await Self.run("/bin/chmod", ["600", certificates.appendingPathComponent("server.key").path])
        _ = try await server.psql("ALTER SYSTEM SET ssl = on")
        _ = try await server.psql("ALTER SYSTEM SET ssl_cert_file = '\(certificates.appendingPathComponent("server.crt").path)'")
        _ = try await server.psql("ALTER SYSTEM SET ssl_key_file = '\(certificates.appendingPathComponent("server.key").path)'")
        _ = try await server.psql("SELECT pg_reload_conf()")
        try? await Task.sleep(for: .milliseconds(300))

        func encrypted(_ options: String) throws -> Bool {
            let store = try ServerOrderStore(location: server.url(database: "tls") + options)
            return try store.database.read { db in
                try db.scalarInteger("SELECT CASE WHEN ssl THEN 1 ELSE 0 END FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            } == 1
        }
        #expect(try encrypted("?sslmode=require"))
        #expect(try encrypted("?sslmode=verify-full&sslrootcert=" + certificates.appendingPathComponent("server.crt").path))
        #expect(try !encrypted("?sslmode=disable"))
        #expect(throws: StoreError.self) {
            _ = try encrypted("?sslmode=verify-full&sslrootcert=" + certificates.appendingPathComponent("stranger.crt").path)
        }
    }

    static func run(_ tool: String, _ arguments: [String]) async throws {
        let (status, _) = try await BuiltExecutable.run(URL(fileURLWithPath: tool), arguments, standardError: .discarded)
        guard status == 0 else { throw StoreError.invalidArgument("\(tool) \(arguments.joined(separator: " ")) failed") }
    }
}
