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

extension LoadAndKillTests {
    @Suite(.enabled(if: Daemon.binary != nil, "cpnpd not found next to the test bundle: run `swift build` first"), .serialized)
    struct SharedDatabaseEndToEndTests {
        /// A PostgreSQL server of the test's own, with an empty database `name`, and the database's URL.
        static func database(_ name: String) async throws -> (TemporaryPostgres, String) {
            let postgres = try await TemporaryPostgres.start()
            try await postgres.createDatabase(name)
            return (postgres, postgres.url(database: name))
        }

        /// `count` cpnpd on the database `url`, the first making the PKI the others use.
        static func instances(_ count: Int, url: String, configuration: String, arguments: [String] = []) async throws -> [Daemon] {
            let first = try await Daemon.start(sharing: url, configuration: configuration, arguments: arguments)
            var all = [first]
            for _ in 1..<count {
                all.append(
                    try await Daemon.start(
                        sharing: url, configuration: configuration, sibling: first, port: arguments.contains("--reuse-port") ? first.port : 0,
                        arguments: arguments))
            }
            return all
        }

        /// 50 customers race through three instances for a 200 Mbps link, 50 Mbps each way per order:
        /// exactly four agreements, the link booked to the megabit and never beyond.
        @Test(.timeLimit(.minutes(3)))
        func fiftyCustomersRaceForOneScarceLinkThroughThreeInstances() async throws {
            let (postgres, url) = try await Self.database("race")
            defer { postgres.stop() }
            let daemons = try await Self.instances(3, url: url, configuration: try LoadAndKillTests.configuration())
            defer { for d in daemons { d.stop() } }
            let servers = try daemons.map { try CPNPPeer.server(host: "127.0.0.1", port: $0.port) }
            let request = CPD.marseille("50")
            let pki = daemons[0].pkiDirectory

            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for customer in 0..<50 {
                    group.addTask {
                        let engine = try await customerEngine(pki: pki)
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
            let committed = try await postgres.psql(
                "SELECT direction || '=' || total FROM reservation_totals WHERE resource_id = 'PE-MRS-1:xe-1/0/0' AND kind = 'committed' ORDER BY direction",
                database: "race")
            #expect(committed == "incoming=200\noutgoing=200")
            let store = try ServerOrderStore(location: url)
            #expect(try store.reservationTotalMismatches().isEmpty)
            #expect(try store.orderCount(state: .completed) == 4)
            // The three instances shared the database (each registered its heartbeat).
            #expect(Int(try await postgres.psql("SELECT COUNT(*) FROM instances", database: "race")) == 3)
            for d in daemons { #expect(await d.terminate() == 0) }
        }

        /// An agreement reached through one instance is activated, updated and withdrawn through the others.
        @Test(.timeLimit(.minutes(2)))
        func anAgreementIsChangedThroughEveryOtherInstance() async throws {
            let (postgres, url) = try await Self.database("anywhere")
            defer { postgres.stop() }
            let daemons = try await Self.instances(3, url: url, configuration: try LoadAndKillTests.configuration())
            defer { for d in daemons { d.stop() } }
            var clients: [TestClient] = []
            for d in daemons { clients.append(try await TestClient(pki: daemons[0].pkiDirectory, name: "acme", serverPort: d.port)) }
            defer { for c in clients { Task { await c.close() } } }

            var (order, _) = try await BadInputEndToEndTests.agreement(clients[0], explicit: true)
            let poid = try #require(order.providerOrderID)
            #expect(try await daemons[1].show(poid).agreement?.hasPrefix("activation explicit, inactive") == true)
            var rng = SystemRandomNumberGenerator()

            // ACTIVATE through the second instance.
            let second = clients[1]
            try await second.act(&order) { try $0.activate(.now, session: second.session, now: TestClient.now(), using: &rng) }
            try await second.run(&order, until: { _ in second.events.contains(.activationConfirmed(.now)) })
            #expect(try await daemons[0].show(poid).agreement?.hasPrefix("activation explicit, active") == true)

            // UPDATE through the third.
            let third = clients[2]
            try await third.act(&order) {
                try $0.update(
                    requestedCPD: CPD.marseille("60"), expectedResponseTime: TestClient.now() + .seconds(60),
                    session: third.session, now: TestClient.now(), using: &rng)
            }
            try await third.run(&order, until: { $0.state == .offerReceived })
            try await third.act(&order) { try $0.accept(now: TestClient.now()) }
            try await third.run(&order, until: { $0.state == .completed })
            #expect(Set(try await daemons[0].show(poid).reservations("committed").values) == ["60"])

            // WITHDRAW through the second again.
            try await second.act(&order) { try $0.withdraw(session: second.session, now: TestClient.now(), using: &rng) }
            try await second.run(&order, until: { _ in second.events.contains(.withdrawalConfirmed) })
            let withdrawn = try await daemons[2].show(poid)
            #expect(withdrawn.state == "Cancelled" && withdrawn.reservations("committed").isEmpty)
            // One order, one history: the three instances wrote one audit trail.
            #expect(withdrawn.auditContains("ACTIVATE") && withdrawn.auditContains("UPDATE") && withdrawn.auditContains("WITHDRAW"))
        }

        /// An order held for an operator through one instance, approved with `cpnpd admin` against the
        /// shared database: the instance the customer talks to carries the approval out, once, and the
        /// customer gets the OFFER at once.
        @Test(.timeLimit(.minutes(2)))
        func anApprovalIsCarriedOutOnceByTheInstanceHoldingTheOrder() async throws {
            let (postgres, url) = try await Self.database("approval")
            defer { postgres.stop() }
            let daemons = try await Self.instances(2, url: url, configuration: try LoadAndKillTests.configuration())
            defer { for d in daemons { d.stop() } }
            let client = try await TestClient(pki: daemons[0].pkiDirectory, name: "acme", serverPort: daemons[1].port)
            defer { Task { await client.close() } }
            var order = ClientOrderStateMachine(customerOrderID: customerOrderID("approval"))
            var rng = SystemRandomNumberGenerator()
            // Above 1 Gbps the demo policy asks an operator.
            try await client.act(&order) { try $0.quote(requestedCPD: CPD.paris(2000), session: client.session, now: TestClient.now(), using: &rng) }
            try await client.run(&order, until: { $0.state == .serverProcessing })
            let poid = try #require(order.providerOrderID)

            let started = ContinuousClock.now
            #expect(try await daemons[0].admin(["approve", poid.rawValue]).contains("approved: offer sent"))
            try await client.run(&order, timeout: .seconds(20), until: { $0.state == .offerReceived })
            #expect(ContinuousClock.now - started < .seconds(10), "the OFFER came late: not from the instance the customer talks to")
            #expect(daemons.map { $0.logText.components(separatedBy: "administrative request processed").count - 1 } == [0, 1])
            #expect(try await postgres.psql("SELECT COUNT(*) FROM admin_requests WHERE processed_at IS NOT NULL", database: "approval") == "1")
        }

        /// Two cpnpd on one port (SO_REUSEPORT). The one the customer talks to is killed between OFFER
        /// and ACCEPT: the customer's retransmitted ACCEPT, after a new DTLS handshake, reaches the other,
        /// which completes the order from the database.
        @Test(.timeLimit(.minutes(2)))
        func theSurvivorOnTheSamePortCompletesAnOfferTheDeadInstanceMade() async throws {
            let (postgres, url) = try await Self.database("failover")
            defer { postgres.stop() }
            let daemons = try await Self.instances(2, url: url, configuration: try LoadAndKillTests.configuration(), arguments: ["--reuse-port"])
            defer { for d in daemons { d.stop() } }
            #expect(daemons[0].port == daemons[1].port)
            let client = try await TestClient(pki: daemons[0].pkiDirectory, name: "acme", serverPort: daemons[0].port)
            defer { Task { await client.close() } }
            var order = ClientOrderStateMachine(customerOrderID: customerOrderID("failover"))
            var rng = SystemRandomNumberGenerator()
            try await client.act(&order) {
                try $0.quote(requestedCPD: CPD.marseille("50"), session: client.session, now: TestClient.now(), using: &rng)
            }
            try await client.run(&order, until: { $0.state == .offerReceived })
            let poid = try #require(order.providerOrderID)

            // The instance that made the offer drives the order; kill it.
            let owner = try await postgres.psql("SELECT owner FROM orders WHERE provider_order_id = '\(poid.rawValue)'", database: "failover")
            let dead = try #require(daemons.firstIndex { $0.logText.contains("instance=\(owner)") }, "owner \(owner) not in the logs")
            daemons[dead].kill9()
            let survivor = daemons[1 - dead]

            try await client.act(&order) { try $0.accept(now: TestClient.now()) }
            try await client.run(&order, timeout: .seconds(60), until: { $0.state == .completed })
            let show = try await survivor.show(poid)
            #expect(show.state == "Completed")
            #expect(Set(show.reservations("committed").values) == ["50"] && show.reservations("offered").isEmpty)
            #expect(try await postgres.psql("SELECT COUNT(*) FROM orders", database: "failover") == "1")
            #expect(await survivor.terminate() == 0)
        }

        /// kill -9 of one instance at a time, three times, while four customers negotiate and withdraw
        /// through all three. Afterwards every order is consistent on both sides and the capacity totals
        /// equal a recount; an offer a killed instance made, never answered, still expired (within the
        /// lease of its validity); and each provisioning event was handed off, a second time only when a
        /// kill cut its first hand-off short.
        @Test(.timeLimit(.minutes(5)))
        func killNineOfOneInstanceAtATimeUnderLoad() async throws {
            let (postgres, url) = try await Self.database("kills")
            defer { postgres.stop() }
            let hooks = FileManager.default.temporaryDirectory.appendingPathComponent("cpnp-shared-hooks-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: hooks, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: hooks) }
            var yaml = try LoadAndKillTests.configuration(offerValidity: "6s", unlimitedCapacity: true)
            // Each hand-off in a file of its own (instances deliver at the same time).
            yaml = yaml.replacingOccurrences(
                of: "  # command: [/usr/local/bin/provision-order, --verbose]   # order JSON on stdin",
                with: "  command: [/bin/sh, -c, 'cat > \(hooks.path)/event-$$-$(date +%s%N).json']")
            let daemons = try await Self.instances(3, url: url, configuration: yaml)
            defer { for d in daemons { d.stop() } }
            let servers = try daemons.map { try CPNPPeer.server(host: "127.0.0.1", port: $0.port) }
            let pki = daemons[0].pkiDirectory

            // An offer the first instance makes and nobody answers; that instance is the first killed.
            let lonely = try await TestClient(pki: pki, name: "acme", serverPort: daemons[0].port)
            defer { Task { await lonely.close() } }
            var unanswered = ClientOrderStateMachine(customerOrderID: customerOrderID("unanswered"))
            var rng = SystemRandomNumberGenerator()
            try await lonely.act(&unanswered) {
                try $0.quote(requestedCPD: CPD.paris(10), session: lonely.session, now: TestClient.now(), using: &rng)
            }
            try await lonely.run(&unanswered, until: { $0.state == .offerReceived })
            let unansweredOrder = try #require(unanswered.providerOrderID)
            let validity = try #require(unanswered.offer?.validityOfferTime)

            let stop = StopFlag()
            let request = try loadExample("l3vpn-3-sites.json")
            let load = Task {
                try await withThrowingTaskGroup(of: (ClientOrderStore, Int, [String]).self) { group in
                    for customer in 0..<4 {
                        group.addTask {
                            let store = try ClientOrderStore.inMemory()
                            let engine = try await customerEngine(pki: pki, store: store)
                            var (completed, errors, n) = (0, [String](), customer)
                            while !stop.isSet {
                                n += 1
                                do {
                                    let id = try await engine.quote(request, to: servers[n % 3])
                                    guard case .offer = try await engine.awaitOffer(id) else { continue }
                                    _ = try await engine.accept(id)
                                    completed += 1
                                    if n % 3 == 0 { try await engine.withdraw(id, timeout: .seconds(90)) }
                                } catch {
                                    errors.append("\(error)")
                                }
                            }
                            await engine.settle(timeout: .seconds(20))
                            await engine.shutdown()
                            return (store, completed, errors)
                        }
                    }
                    var all: [(ClientOrderStore, Int, [String])] = []
                    for try await r in group { all.append(r) }
                    return all
                }
            }
            var seed = SplitMix64(seed: 0x5EED)
            for round in 0..<3 {
                try await Task.sleep(for: .milliseconds(Int.random(in: 600...1_500, using: &seed)))
                let victim = round == 0 ? 0 : Int.random(in: 0..<3, using: &seed)
                daemons[victim].kill9()
                try await Task.sleep(for: .milliseconds(Int.random(in: 200...800, using: &seed)))
                try await daemons[victim].restart()
            }
            try await Task.sleep(for: .seconds(1))
            stop.set()
            let results = try await load.value
            let completed = results.reduce(0) { $0 + $1.1 }
            #expect(completed >= 4, "too little load to mean anything: \(completed); errors: \(results.flatMap { $0.2 }.prefix(5))")

            // The unanswered offer expired although the instance that made it died: taken over, its timer fired.
            let deadline = ContinuousClock.now + .seconds(30)
            while try await postgres.psql("SELECT state FROM orders WHERE provider_order_id = '\(unansweredOrder.rawValue)'", database: "kills")
                != "Cancelled",
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(200))
            }
            let expiredAt = try await postgres.psql(
                "SELECT at FROM audit WHERE provider_order_id = '\(unansweredOrder.rawValue)' AND event LIKE 'offer expired%'", database: "kills")
            let expiry = try #require(Int64(expiredAt), "the offer made by the killed instance never expired")
            #expect(expiry >= validity.millisecondsSinceEpoch)
            #expect(expiry - validity.millisecondsSinceEpoch <= 8_000, "expired \(expiry - validity.millisecondsSinceEpoch) ms late")

            // Orders the last killed instance had in flight are taken over after the lease; then both sides agree.
            try await Task.sleep(for: .seconds(7))  // the lease (5 s) and a round of upkeep
            try expectConsistent(provider: try ServerOrderStore(location: url), customers: results.map { $0.0 })

            // Provisioning: every event handed off, a repeat only for a hand-off a kill cut short.
            let delivered = try await postgres.psql("SELECT id FROM outbox WHERE delivered_at IS NOT NULL", database: "kills").split(separator: "\n")
                .map(
                    String.init)
            // A hand-off a kill cut short leaves an empty or partial file (the hook's input ended early).
            var cutShort = 0
            let handedOff = try FileManager.default.contentsOfDirectory(atPath: hooks.path).compactMap { name -> String? in
                let bytes = Array(try Data(contentsOf: hooks.appendingPathComponent(name)))
                guard let json = try? JSONParser.parse(bytes) else {
                    cutShort += 1
                    return nil
                }
                guard case .object(let o) = json, case .number(let id)? = o["event-id"] else {
                    throw DaemonError(description: "\(name): no event-id")
                }
                return id.description
            }
            #expect(cutShort <= 3, "\(cutShort) hand-offs cut short for 3 kills")
            // Each delivered event was handed off. One handed off by an instance killed before it recorded
            // the success is handed off again once the claim lapses with that instance's heartbeat.
            let undelivered = try await postgres.psql("SELECT id FROM outbox WHERE delivered_at IS NULL", database: "kills").split(separator: "\n")
                .map(
                    String.init)
            #expect(Set(delivered).isSubset(of: Set(handedOff)), "delivered but never handed off: \(Set(delivered).subtracting(handedOff))")
            #expect(Set(handedOff).subtracting(delivered).isSubset(of: Set(undelivered)))
            #expect(undelivered.count <= 3, "\(undelivered.count) events undelivered after 3 kills")
            #expect(handedOff.count - Set(handedOff).count <= 3, "\(handedOff.count - Set(handedOff).count) repeated hand-offs for 3 kills")
            print(
                "shared database under kills: \(completed) agreements, \(delivered.count) events, "
                    + "\(handedOff.count - Set(handedOff).count) repeated hand-offs, \(results.reduce(0) { $0 + $1.2.count }) client errors")
            for d in daemons { #expect(await d.terminate() == 0) }
        }

        /// PostgreSQL stops for a few seconds while customers negotiate (and withdraw every third
        /// agreement) through two instances, then comes back on the same port. An instance whose query
        /// hangs past the lease loses its orders to the other, which may answer from its own address;
        /// the customer's next retransmission still gets its answer. Nothing was acknowledged that is not durable: afterwards every
        /// order is consistent on both sides, the instances carried on by themselves (new agreements
        /// after the outage), and their logs say why commits failed meanwhile.
        @Test(.timeLimit(.minutes(4)))
        func anOutageOfTheDatabaseUnderLoadLosesNothing() async throws {
            let (postgres, url) = try await Self.database("outage")
            defer { postgres.stop() }
            let yaml = try LoadAndKillTests.configuration(unlimitedCapacity: true)
            let daemons = try await Self.instances(2, url: url, configuration: yaml)
            defer { for d in daemons { d.stop() } }
            let servers = try daemons.map { try CPNPPeer.server(host: "127.0.0.1", port: $0.port) }
            let pki = daemons[0].pkiDirectory
            let stop = StopFlag()
            let afterOutage = Counter()
            let outageOver = StopFlag()
            let request = try loadExample("l3vpn-3-sites.json")
            let load = Task {
                try await withThrowingTaskGroup(of: ClientOrderStore.self) { group in
                    for customer in 0..<4 {
                        group.addTask {
                            let store = try ClientOrderStore.inMemory()
                            let engine = try await customerEngine(pki: pki, store: store)
                            var n = customer
                            while !stop.isSet {
                                n += 1
                                do {
                                    let id = try await engine.quote(request, to: servers[n % 2])
                                    guard case .offer = try await engine.awaitOffer(id) else { continue }
                                    _ = try await engine.accept(id)
                                    if outageOver.isSet { afterOutage.add() }
                                    if n % 3 == 0 { try await engine.withdraw(id, timeout: .seconds(90)) }
                                } catch {
                                    try? await Task.sleep(for: .milliseconds(100))
                                }
                            }
                            await engine.settle(timeout: .seconds(30))
                            await engine.shutdown()
                            return store
                        }
                    }
                    var all: [ClientOrderStore] = []
                    for try await r in group { all.append(r) }
                    return all
                }
            }
            // /readyz of each instance, every 50 ms and each on its own, until the end.
            let probing = StopFlag()
            let readyz = Task {
                await withTaskGroup(of: Set<Int>.self) { group in
                    for d in daemons {
                        group.addTask {
                            var seen: Set<Int> = []
                            while !probing.isSet {
                                if let answer = try? await d.http("/readyz") { seen.insert(answer.status) }
                                try? await Task.sleep(for: .milliseconds(50))
                            }
                            return seen
                        }
                    }
                    var all: [Set<Int>] = []
                    for await seen in group { all.append(seen) }
                    return all
                }
            }
            try await Task.sleep(for: .seconds(2))
            postgres.stop(mode: .immediate)
            try await Task.sleep(for: .seconds(4))
            // The database stays down until an instance noticed, and a second longer: an instance
            // becomes ready again only at an upkeep that reaches the database, so /readyz has a
            // whole second of 503 to be seen in.
            let noticeDeadline = ContinuousClock.now + .seconds(20)
            while !daemons.contains(where: { $0.logText.contains("not ready: the database does not answer") }), ContinuousClock.now < noticeDeadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(1))
            try await postgres.restart()
            outageOver.set()
            let deadline = ContinuousClock.now + .seconds(60)
            while afterOutage.value < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
            stop.set()
            let customers = try await load.value
            #expect(afterOutage.value >= 4, "the instances did not carry on after the outage")
            #expect(
                daemons.contains { $0.logText.contains("commit failed; messages withheld") || $0.logText.contains("store read failed") },
                "no instance logged the outage")
            // An instance that found the database gone said it was not ready, and ready again at its next
            // upkeep (one whose every call waited through the outage may not have noticed it).
            func readyAgain(_ log: String) -> Bool? {
                guard let down = log.range(of: "not ready: the database does not answer", options: .backwards) else { return nil }
                return log[down.upperBound...].contains("ready again: the database answers")
            }
            let readyDeadline = ContinuousClock.now + .seconds(10)
            while daemons.contains(where: { readyAgain($0.logText) == false }), ContinuousClock.now < readyDeadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            for d in daemons { #expect(readyAgain(d.logText) != false, "\(d.logText.suffix(2_000))") }
            #expect(daemons.contains { readyAgain($0.logText) != nil }, "no instance said it was not ready")
            // /readyz said so too: 503 meanwhile, 200 again now.
            probing.set()
            let seen = await readyz.value
            #expect(seen.contains { $0.contains(503) }, "no /readyz answered 503 during the outage: \(seen)")
            #expect(seen.allSatisfy { $0.contains(200) })
            for d in daemons {
                let answer = try await d.http("/readyz")
                #expect(answer.status == 200 && answer.body == "ready\n")
            }
            try await Task.sleep(for: .seconds(2))
            try expectConsistent(provider: try ServerOrderStore(location: url), customers: customers)
            for d in daemons { #expect(await d.terminate() == 0) }
        }
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    func add() { count.withLock { $0 += 1 } }
}
