// Bad input against a real cpnpd (RFC 8921 §10.2, §11.3, §13): each message gets FAIL with the
// right code or is silently discarded, and the stored order is unchanged (`cpnpd admin show`).
// Silence is shown without sleeping: a probe that must be answered follows the bad message, and the
// daemon handles messages in order, so an answer to the bad message would arrive before the probe's.
import Testing
import CPNPCore
import CPNPTesting
import Foundation

@Suite("Bad input against a real cpnpd", .enabled(if: Daemon.binary != nil, "cpnpd not built"), .serialized)
struct BadInputEndToEndTests {
    /// A DECLINE for an order that does not exist: always answered with FAIL 1, never changes anything.
    static func probe() -> CPNPMessage {
        var rng = SystemRandomNumberGenerator()
        return .decline(
            DeclineMessage(
                sequenceNumber: .randomInitial(using: &rng), transactionID: .random(using: &rng), customerOrderID: customerOrderID("probe"),
                providerOrderID: ProviderOrderID("po-probe")!, nonce: .random(using: &rng)))
    }

    /// Sends `bytes` and shows that nothing answers them.
    static func expectSilence(_ client: TestClient, after bytes: [UInt8], _ what: Comment) async throws {
        try await client.sendRaw(bytes)
        let (before, answer) = try await client.roundTrip(probe())
        #expect(before.isEmpty, "\(what) was answered: \(before.map(\.method))")
        guard case .fail(let f) = answer else { Issue.record("probe answered \(answer.method)"); return }
        #expect(f.statusCode == .messageValidationError)
    }

    /// The FAIL answering `m` (and nothing before it).
    static func expectFail(_ client: TestClient, _ m: CPNPMessage) async throws -> FailMessage? {
        let (before, answer) = try await client.roundTrip(m)
        #expect(before.isEmpty)
        guard case .fail(let f) = answer else { Issue.record("\(m.method) answered \(answer.method)"); return nil }
        return f
    }

    /// An agreement of acme for 50 Mbps in Marseille, and the ACCEPT that made it.
    static func agreement(_ client: TestClient, explicit: Bool = false) async throws -> (ClientOrderStateMachine, AcceptMessage) {
        var order = ClientOrderStateMachine(customerOrderID: customerOrderID("victim"))
        var rng = SystemRandomNumberGenerator()
        let options = explicit ? InformationElements(negotiationOptions: NegotiationOptions(activationType: .explicit)) : nil
        try await client.act(&order) {
            try $0.quote(requestedCPD: CPD.marseille("50"), informationElements: options, session: client.session, now: TestClient.now(), using: &rng)
        }
        try await client.run(&order, until: { $0.state == .offerReceived })
        let actions = try order.accept(now: TestClient.now())
        try await client.perform(actions, &order)
        try await client.run(&order, until: { $0.state == .completed })
        guard case .accept(let accept)? = actions.compactMap({ if case .send(let m) = $0 { m } else { nil } }).first else {
            throw DaemonError(description: "no ACCEPT sent")
        }
        return (order, accept)
    }

    @Test(.timeLimit(.minutes(1)))
    func malformedStaleReplayedForgedAndForeignMessagesChangeNothing() async throws {
        let daemon = try await Daemon.start()
        defer { daemon.stop() }
        let acme = try await TestClient(pki: daemon.pkiDirectory, name: "acme", serverPort: daemon.port)
        let globex = try await TestClient(pki: daemon.pkiDirectory, name: "globex", serverPort: daemon.port)
        defer {
            Task {
                await acme.close(); await globex.close()
            }
        }

        let (order, accept) = try await Self.agreement(acme)
        let ag = try #require(order.agreement)
        let poid = ag.providerOrderID
        let before = try await daemon.show(poid)
        let ordersBefore = try await daemon.admin(["orders"])
        #expect(before.state == "Completed" && before.reservations("committed").count == 2)
        guard case .ack(let originalAck)? = acme.received.last else { Issue.record("no ACK"); return }
        var rng = SystemRandomNumberGenerator()

        // Malformed JSON: dropped (docs/protocol.md §5.5).
        try await Self.expectSilence(acme, after: Array(#"{"version":1,"method":4,"#.utf8), "malformed JSON")
        // A stale sequence number in the order's transaction: discarded (§11.3).
        var stale = accept
        stale.sequenceNumber = accept.sequenceNumber &- 1
        try await Self.expectSilence(acme, after: CPNPCodec.encode(.accept(stale)), "a stale sequence number")
        // The last sequence number again on another message: a replay, discarded (§11.3, §11.4).
        let forged = CPNPMessage.decline(
            DeclineMessage(
                sequenceNumber: accept.sequenceNumber, transactionID: accept.transactionID, customerOrderID: ag.customerOrderID,
                providerOrderID: poid, nonce: ag.nonce, reasons: [.unacceptableGap]))
        try await Self.expectSilence(acme, after: CPNPCodec.encode(forged), "a replayed sequence number")
        // The ACCEPT itself again: a retransmission, answered with the same ACK (§11.4).
        let (extra, again) = try await acme.roundTrip(.accept(accept))
        #expect(extra.isEmpty && again == .ack(originalAck))

        // A wrong nonce: FAIL 1 naming it.
        let wrongNonce = try await Self.expectFail(
            acme,
            .withdraw(
                WithdrawMessage(
                    sequenceNumber: .randomInitial(using: &rng), transactionID: .random(using: &rng), customerOrderID: ag.customerOrderID,
                    providerOrderID: poid, nonce: .random(using: &rng))))
        #expect(wrongNonce?.statusCode == .messageValidationError && wrongNonce?.diagnostic?.contains("nonce") == true)
        // An unknown order: FAIL 1.
        let unknown = try await Self.expectFail(
            acme,
            .update(
                UpdateMessage(
                    sequenceNumber: .randomInitial(using: &rng), transactionID: .random(using: &rng), customerOrderID: customerOrderID("nope"),
                    providerOrderID: ProviderOrderID("po-nope")!, nonce: ag.nonce, expectedResponseTime: TestClient.now() + .seconds(60),
                    requestedCPD: CPD.marseille("10"))))
        #expect(unknown?.statusCode == .messageValidationError && unknown?.providerOrderID == nil)
        // Globex withdrawing acme's order with acme's identifiers and nonce: no such order for globex (FAIL 1).
        let foreign = try await Self.expectFail(
            globex,
            .withdraw(
                WithdrawMessage(
                    sequenceNumber: .randomInitial(using: &rng), transactionID: .random(using: &rng), customerOrderID: ag.customerOrderID,
                    providerOrderID: poid, nonce: ag.nonce)))
        #expect(foreign?.statusCode == .messageValidationError && foreign?.providerOrderID == nil)

        // Nothing changed: the order, its reservations and audit trail, and the list of orders.
        #expect(try await daemon.show(poid).standing == before.standing)
        #expect(try await daemon.admin(["orders"]).split(separator: "\n").count == ordersBefore.split(separator: "\n").count)
        // And acme can still withdraw its order.
        var mine = order
        try await acme.act(&mine) { try $0.withdraw(session: acme.session, now: TestClient.now(), using: &rng) }
        try await acme.run(&mine, until: { _ in acme.events.contains(.withdrawalConfirmed) })
        #expect(try await daemon.show(poid).state == "Cancelled")
    }

    /// An ACTIVATE of a transaction the server closed, replayed after a newer ACTIVATE: discarded, and
    /// the newer one stays in force (it used to re-open the old transaction and re-apply it).
    @Test(.timeLimit(.minutes(1)))
    func aReplayedActivateOfAClosedTransactionIsDiscarded() async throws {
        try await withDaemon { daemon, client in
            var (order, _) = try await Self.agreement(client, explicit: true)
            let poid = try #require(order.providerOrderID)
            var rng = SystemRandomNumberGenerator()
            func activate(_ schedule: ActivationSchedule) async throws -> CPNPMessage {
                let n = client.events.count
                let actions = try order.activate(schedule, session: client.session, now: TestClient.now(), using: &rng)
                try await client.perform(actions, &order)
                try await client.run(&order, until: { _ in client.events[n...].contains(.activationConfirmed(schedule)) })
                return try #require(actions.compactMap { if case .send(let m) = $0 { m } else { nil } }.first)
            }
            let on = try await activate(.now)
            #expect(try await daemon.show(poid).agreement?.hasPrefix("activation explicit, active") == true)
            _ = try await activate(.deactivate)
            let off = try await daemon.show(poid)
            #expect(off.agreement?.hasPrefix("activation explicit, inactive") == true)

            try await Self.expectSilence(client, after: CPNPCodec.encode(on), "the replayed ACTIVATE")
            #expect(try await daemon.show(poid).text == off.text)
        }
    }
}

@Suite("cpnpd refuses a database URL", .enabled(if: Daemon.binary != nil, "cpnpd not built"))
struct DatabaseURLEndToEndTests {
    /// `cpnpd … --database URL` with a PostgreSQL server that cannot be reached, a URL missing a part,
    /// or a URL of another kind of database, stops with an error naming the option and the cause
    /// (never the password), and creates nothing (no folder `postgres:` holding a SQLite file, no PKI).
    @Test(.timeLimit(.minutes(1)), arguments: [["run"], ["admin", "orders"]])
    func aBadDatabaseURLIsAnErrorAndNothingIsCreated(_ command: [String]) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-url-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases = [
            (
                "postgres://cpnp:secret@127.0.0.1:1/cpnp?connect_timeout=5",
                "--database: the database is unavailable: cannot connect to postgres://cpnp:***@127.0.0.1:1/cpnp"
            ),
            ("postgres://cpnp:secret@127.0.0.1:5432", "--database: the URL names no database"),
            ("postgres://cpnp:secret@127.0.0.1/cpnp?sslmode=maybe", "--database: sslmode \"maybe\" is not one of"),
            ("mysql://cpnp:secret@127.0.0.1/cpnp", "--database: \"mysql://…\" is a URL of no database this cpnpd speaks to"),
        ]
        for (url, expected) in cases {
            let (status, text) = try await Daemon.command(command + ["--database", url], in: directory)
            #expect(status != 0)
            #expect(text.contains(expected), "\(url): \(text)")
            #expect(!text.contains("secret"), "\(url): the password is printed: \(text)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
        }
    }

    /// A reachable PostgreSQL that refuses the credentials, or has no such database: cpnpd stops at
    /// once with the server's own words, never the password.
    @Test(.timeLimit(.minutes(1)))
    func refusedCredentialsAndAMissingDatabaseAreNamed() async throws {
        let postgres = try await TemporaryPostgres.start()
        defer { postgres.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cpnpd-url-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases = [
            (postgres.url(password: "not-the-password"), "password authentication failed for user \"cpnp\" (SQLSTATE 28P01)"),
            (postgres.url(database: "nowhere"), "database \"nowhere\" does not exist (SQLSTATE 3D000)"),
        ]
        for (url, expected) in cases {
            let (status, text) = try await Daemon.command(["run", "--database", url], in: directory)
            #expect(status != 0)
            #expect(
                text.contains("--database: the database is unavailable: cannot connect to postgres://cpnp:***@127.0.0.1:\(postgres.port)/"), "\(text)"
            )
            #expect(text.contains(expected), "\(text)")
            #expect(!text.contains("not-the-password") && !text.contains(postgres.password))
        }
    }
}
