// Several real cpnpd processes on one PostgreSQL database (started by the test in a temporary
// directory), customers over real DTLS on loopback (docs/deployment.md): capacity is never
// overbooked across instances, any instance continues any order, and when one dies the others
// finish what it started.
import CPNPClient
import CPNPCore
import CPNPStorage
import CPNPTesting
import CPNPTransport
import Foundation
import Logging
import Synchronization
import Testing

@Suite(.enabled(if: Daemon.binary != nil, "cpnpd not found next to the test bundle: run `swift build` first"), .serialized)
struct SharedDatabaseEndToEndTests {
    /// The demo policy with room for many QUOTATIONs and open orders from one customer certificate.
    static func configuration(offerValidity: String = "10m") throws -> String {
        var yaml = try String(contentsOf: repositoryRoot.appendingPathComponent("Examples/cpnpd.yaml"), encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "quotations-per-minute: ", with: "quotations-per-minute: 100000 #")
        yaml = yaml.replacingOccurrences(of: "max-open-orders: 20\n", with: "max-open-orders: 100000\n")
        yaml = yaml.replacingOccurrences(of: "offer-validity: 10m", with: "offer-validity: \(offerValidity)")
        return yaml
    }

    /// `count` cpnpd on the database `url`, the first making the PKI the others use.
    static func instances(_ count: Int, url: String, configuration: String, arguments: [String] = []) async throws -> [Daemon] {
        let first = try await Daemon.start(sharing: url, configuration: configuration, arguments: arguments)
        var all = [first]
        for _ in 1..<count {
            all.append(try await Daemon.start(
                sharing: url, configuration: configuration, sibling: first, port: arguments.contains("--reuse-port") ? first.port : 0,
                arguments: arguments))
        }
        return all
    }

    static func customerEngine(pki: URL) async throws -> CPNPClientEngine {
        let security = try CPNPSecurityConfiguration(
            certificateFile: pki.appendingPathComponent("client-acme.pem").path, keyFile: pki.appendingPathComponent("client-acme-key.pem").path,
            trustRootsFile: pki.appendingPathComponent("ca.pem").path)
        var logger = Logger(label: "shared-database-customer")
        logger.logLevel = .critical
        let transport = try await DTLSTransport.client(bindingTo: "127.0.0.1", configuration: DTLSTransportConfiguration(security: security), logger: logger)
        let engine = CPNPClientEngine(
            transport: transport, store: try ClientOrderStore.inMemory(),
            configuration: CPNPClientEngine.Configuration(
                machine: .init(retransmission: RetransmissionPolicy(initialInterval: .milliseconds(300), maximumRetries: 7)),
                expectedResponseTime: .seconds(60), renewSessionWhenUnanswered: true),
            logger: logger)
        await engine.start()
        return engine
    }

    /// 50 customers race through three instances for a 200 Mbps link, 50 Mbps each way per order:
    /// exactly four agreements, the link booked to the megabit and never beyond.
    @Test(.timeLimit(.minutes(3)))
    func fiftyCustomersRaceForOneScarceLinkThroughThreeInstances() async throws {
        let postgres = try TemporaryPostgres.start()
        defer { postgres.stop() }
        try postgres.createDatabase("race")
        let url = postgres.url(database: "race")
        let daemons = try await Self.instances(3, url: url, configuration: try Self.configuration())
        defer { for d in daemons { d.stop() } }
        let servers = try daemons.map { try CPNPPeer.server(host: "127.0.0.1", port: $0.port) }
        let request = try CPD.marseille("50")
        let pki = daemons[0].pkiDirectory

        let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
            for customer in 0..<50 {
                group.addTask {
                    let engine = try await Self.customerEngine(pki: pki)
                    defer { Task { await engine.shutdown() } }
                    let id = try await engine.quote(request, to: servers[customer % 3])
                    guard case .offer = try await engine.awaitOffer(id) else { return "refused" }
                    _ = try await engine.accept(id)
                    return "agreed"
                }
            }
            var all: [String] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        let agreed = outcomes.filter { $0 == "agreed" }.count
        #expect(agreed == 4, "\(outcomes)")
        #expect(outcomes.count == 50)
        let committed = try postgres.psql(
            "SELECT direction || '=' || total FROM reservation_totals WHERE resource_id = 'PE-MRS-1:xe-1/0/0' AND kind = 'committed' ORDER BY direction",
            database: "race")
        #expect(committed == "incoming=200\noutgoing=200")
        let store = try ServerOrderStore(location: url)
        #expect(try store.reservationTotalMismatches().isEmpty)
        #expect(try store.orderCount(state: .completed) == 4)
        // Every instance took part: each decided QUOTATIONs and wrote itself as their driver.
        #expect(Int(try postgres.psql("SELECT COUNT(*) FROM instances", database: "race")) == 3)
        for d in daemons { #expect(d.terminate() == 0) }
    }

    /// An agreement reached through one instance is activated, updated and withdrawn through the others.
    @Test(.timeLimit(.minutes(2)))
    func anAgreementIsChangedThroughEveryOtherInstance() async throws {
        let postgres = try TemporaryPostgres.start()
        defer { postgres.stop() }
        try postgres.createDatabase("anywhere")
        let daemons = try await Self.instances(3, url: postgres.url(database: "anywhere"), configuration: try Self.configuration())
        defer { for d in daemons { d.stop() } }
        var clients: [TestClient] = []
        for d in daemons { clients.append(try await TestClient(pki: daemons[0].pkiDirectory, name: "acme", serverPort: d.port)) }
        defer { for c in clients { Task { await c.close() } } }

        var (order, _) = try await BadInputEndToEndTests.agreement(clients[0], explicit: true)
        let poid = try #require(order.providerOrderID)
        #expect(try daemons[1].show(poid).agreement?.hasPrefix("activation explicit, inactive") == true)
        var rng = SystemRandomNumberGenerator()

        // ACTIVATE through the second instance.
        let second = clients[1]
        try await second.act(&order) { try $0.activate(.now, session: second.session, now: TestClient.now(), using: &rng) }
        try await second.run(&order, until: { _ in second.events.contains(.activationConfirmed(.now)) })
        #expect(try daemons[0].show(poid).agreement?.hasPrefix("activation explicit, active") == true)

        // UPDATE through the third.
        let third = clients[2]
        try await third.act(&order) {
            try $0.update(requestedCPD: try CPD.marseille("60"), expectedResponseTime: TestClient.now() + .seconds(60),
                          session: third.session, now: TestClient.now(), using: &rng)
        }
        try await third.run(&order, until: { $0.state == .offerReceived })
        try await third.act(&order) { try $0.accept(now: TestClient.now()) }
        try await third.run(&order, until: { $0.state == .completed })
        #expect(Set(try daemons[0].show(poid).reservations("committed").values) == ["60"])

        // WITHDRAW through the second again.
        try await second.act(&order) { try $0.withdraw(session: second.session, now: TestClient.now(), using: &rng) }
        try await second.run(&order, until: { _ in second.events.contains(.withdrawalConfirmed) })
        let withdrawn = try daemons[2].show(poid)
        #expect(withdrawn.state == "Cancelled" && withdrawn.reservations("committed").isEmpty)
        // One order, one history: the three instances wrote one audit trail.
        #expect(withdrawn.auditContains("ACTIVATE") && withdrawn.auditContains("UPDATE") && withdrawn.auditContains("WITHDRAW"))
    }

    /// Two cpnpd on one port (SO_REUSEPORT). The one the customer talks to is killed between OFFER
    /// and ACCEPT: the customer's retransmitted ACCEPT, after a new DTLS handshake, reaches the other,
    /// which completes the order from the database.
    @Test(.timeLimit(.minutes(2)))
    func theSurvivorOnTheSamePortCompletesAnOfferTheDeadInstanceMade() async throws {
        let postgres = try TemporaryPostgres.start()
        defer { postgres.stop() }
        try postgres.createDatabase("failover")
        let daemons = try await Self.instances(2, url: postgres.url(database: "failover"), configuration: try Self.configuration(), arguments: ["--reuse-port"])
        defer { for d in daemons { d.stop() } }
        #expect(daemons[0].port == daemons[1].port)
        let client = try await TestClient(pki: daemons[0].pkiDirectory, name: "acme", serverPort: daemons[0].port)
        defer { Task { await client.close() } }
        var order = ClientOrderStateMachine(customerOrderID: customerOrderID("failover"))
        var rng = SystemRandomNumberGenerator()
        try await client.act(&order) { try $0.quote(requestedCPD: try CPD.marseille("50"), session: client.session, now: TestClient.now(), using: &rng) }
        try await client.run(&order, until: { $0.state == .offerReceived })
        let poid = try #require(order.providerOrderID)

        // The instance that made the offer drives the order; kill it.
        let owner = try postgres.psql("SELECT owner FROM orders WHERE provider_order_id = '\(poid.rawValue)'", database: "failover")
        let dead = try #require(daemons.firstIndex { $0.logText.contains("instance=\(owner)") }, "owner \(owner) not in the logs")
        daemons[dead].kill9()
        let survivor = daemons[1 - dead]

        try await client.act(&order) { try $0.accept(now: TestClient.now()) }
        try await client.run(&order, timeout: .seconds(60), until: { $0.state == .completed })
        let show = try survivor.show(poid)
        #expect(show.state == "Completed")
        #expect(Set(show.reservations("committed").values) == ["50"] && show.reservations("offered").isEmpty)
        #expect(try postgres.psql("SELECT COUNT(*) FROM orders", database: "failover") == "1")
        #expect(survivor.terminate() == 0)
    }
}
